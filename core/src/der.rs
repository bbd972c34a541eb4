//! The little DER that key import/export needs: SubjectPublicKeyInfo (RFC 5280),
//! PKCS#8 (RFC 5208) envelopes, and PKCS#1 RSA key structures (RFC 8017).
//! Signature maths stays in aws-lc; this only moves bytes in and out of
//! envelopes whose layout is fixed.

pub(crate) const TAG_INTEGER: u8 = 0x02;
pub(crate) const TAG_BIT_STRING: u8 = 0x03;
pub(crate) const TAG_OCTET_STRING: u8 = 0x04;
pub(crate) const TAG_NULL: u8 = 0x05;
pub(crate) const TAG_OID: u8 = 0x06;
pub(crate) const TAG_SEQUENCE: u8 = 0x30;

// Object identifiers, DER content bytes.
pub(crate) const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
pub(crate) const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
pub(crate) const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
pub(crate) const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
pub(crate) const OID_P521: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x23];
pub(crate) const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

/// A cursor over DER bytes.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// Reads one element; returns its tag and content.
    pub(crate) fn any(&mut self) -> Option<(u8, &'a [u8])> {
        let (&tag, rest) = self.rest.split_first()?;
        let (&first, mut rest) = rest.split_first()?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            let mut len = 0usize;
            for &b in &rest[..n] {
                len = (len << 8) | usize::from(b);
            }
            if len < 0x80 {
                return None; // not minimal
            }
            rest = &rest[n..];
            len
        };
        if rest.len() < len {
            return None;
        }
        let (content, after) = rest.split_at(len);
        self.rest = after;
        Some((tag, content))
    }

    pub(crate) fn expect(&mut self, tag: u8) -> Option<&'a [u8]> {
        match self.any()? {
            (t, content) if t == tag => Some(content),
            _ => None,
        }
    }

    /// An INTEGER's magnitude, without the sign-padding zero.
    pub(crate) fn unsigned(&mut self) -> Option<&'a [u8]> {
        let content = self.expect(TAG_INTEGER)?;
        match content {
            [] => None,
            [first, ..] if first & 0x80 != 0 => None, // negative
            [0, rest @ ..] if !rest.is_empty() => Some(rest),
            _ => Some(content),
        }
    }
}

/// Appends one element.
pub(crate) fn write(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
}

pub(crate) fn element(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    write(&mut out, tag, content);
    out
}

/// An unsigned big-endian magnitude as an INTEGER.
pub(crate) fn write_unsigned(out: &mut Vec<u8>, magnitude: &[u8]) {
    let trimmed = {
        let skip = magnitude.iter().take_while(|&&b| b == 0).count();
        &magnitude[skip.min(magnitude.len().saturating_sub(1))..]
    };
    if trimmed.is_empty() {
        write(out, TAG_INTEGER, &[0]);
    } else if trimmed[0] & 0x80 != 0 {
        let mut padded = Vec::with_capacity(trimmed.len() + 1);
        padded.push(0);
        padded.extend_from_slice(trimmed);
        write(out, TAG_INTEGER, &padded);
    } else {
        write(out, TAG_INTEGER, trimmed);
    }
}

/// SubjectPublicKeyInfo from an algorithm OID, optional parameters element
/// (already encoded) and the key bits.
pub(crate) fn spki(alg_oid: &[u8], params: Option<&[u8]>, key: &[u8]) -> Vec<u8> {
    let mut alg = element(TAG_OID, alg_oid);
    if let Some(p) = params {
        alg.extend_from_slice(p);
    }
    let mut body = element(TAG_SEQUENCE, &alg);
    let mut bits = Vec::with_capacity(key.len() + 1);
    bits.push(0);
    bits.extend_from_slice(key);
    write(&mut body, TAG_BIT_STRING, &bits);
    element(TAG_SEQUENCE, &body)
}

/// The parts of a SubjectPublicKeyInfo or a PKCS#8 PrivateKeyInfo.
pub(crate) struct KeyInfo<'a> {
    pub alg_oid: &'a [u8],
    /// The parameters' OID when there is one (EC curves).
    pub param_oid: Option<&'a [u8]>,
    pub key: &'a [u8],
}

pub(crate) fn parse_spki(der: &[u8]) -> Option<KeyInfo<'_>> {
    let mut outer = Reader::new(der);
    let mut seq = Reader::new(outer.expect(TAG_SEQUENCE)?);
    if !outer.is_empty() {
        return None;
    }
    let (alg_oid, param_oid) = algorithm_identifier(seq.expect(TAG_SEQUENCE)?)?;
    let bits = seq.expect(TAG_BIT_STRING)?;
    let (&unused, key) = bits.split_first()?;
    if unused != 0 || !seq.is_empty() {
        return None;
    }
    Some(KeyInfo { alg_oid, param_oid, key })
}

pub(crate) fn parse_pkcs8(der: &[u8]) -> Option<KeyInfo<'_>> {
    let mut outer = Reader::new(der);
    let mut seq = Reader::new(outer.expect(TAG_SEQUENCE)?);
    if !outer.is_empty() {
        return None;
    }
    let version = seq.expect(TAG_INTEGER)?;
    if version != [0] && version != [1] {
        return None;
    }
    let (alg_oid, param_oid) = algorithm_identifier(seq.expect(TAG_SEQUENCE)?)?;
    let key = seq.expect(TAG_OCTET_STRING)?;
    Some(KeyInfo { alg_oid, param_oid, key })
}

fn algorithm_identifier(content: &[u8]) -> Option<(&[u8], Option<&[u8]>)> {
    let mut alg = Reader::new(content);
    let oid = alg.expect(TAG_OID)?;
    let param = match alg.any() {
        None => None,
        Some((TAG_OID, p)) => Some(p),
        Some((TAG_NULL, [])) => None,
        Some(_) => return None,
    };
    Some((oid, param))
}

/// RSAPublicKey (RFC 8017 A.1.1) from its modulus and exponent.
pub(crate) fn rsa_public_key(n: &[u8], e: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(n.len() + e.len() + 8);
    write_unsigned(&mut body, n);
    write_unsigned(&mut body, e);
    element(TAG_SEQUENCE, &body)
}

/// (n, e) of an RSAPublicKey.
pub(crate) fn parse_rsa_public_key(der: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut outer = Reader::new(der);
    let mut seq = Reader::new(outer.expect(TAG_SEQUENCE)?);
    let n = seq.unsigned()?.to_vec();
    let e = seq.unsigned()?.to_vec();
    if !seq.is_empty() || !outer.is_empty() {
        return None;
    }
    Some((n, e))
}

/// The eight integers after the version in RSAPrivateKey (RFC 8017 A.1.2):
/// n, e, d, p, q, dp, dq, qi.
pub(crate) fn parse_rsa_private_key(der: &[u8]) -> Option<[Vec<u8>; 8]> {
    let mut outer = Reader::new(der);
    let mut seq = Reader::new(outer.expect(TAG_SEQUENCE)?);
    if seq.expect(TAG_INTEGER)? != [0] {
        return None; // multi-prime keys are not supported
    }
    let mut parts: [Vec<u8>; 8] = Default::default();
    for part in parts.iter_mut() {
        *part = seq.unsigned()?.to_vec();
    }
    Some(parts)
}

pub(crate) fn rsa_private_key(parts: [&[u8]; 8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(parts.iter().map(|p| p.len() + 5).sum::<usize>() + 3);
    write(&mut body, TAG_INTEGER, &[0]);
    for part in parts {
        write_unsigned(&mut body, part);
    }
    element(TAG_SEQUENCE, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_round_trip_with_sign_padding() {
        let der = rsa_public_key(&[0x80, 1], &[1, 0, 1]);
        assert_eq!(parse_rsa_public_key(&der), Some((vec![0x80, 1], vec![1, 0, 1])));
        let long = vec![0xffu8; 300];
        let der = rsa_public_key(&long, &[3]);
        assert_eq!(parse_rsa_public_key(&der).map(|(n, _)| n), Some(long));
    }

    #[test]
    fn truncated_input_is_none() {
        let der = rsa_public_key(&[5; 40], &[3]);
        for cut in 0..der.len() {
            assert!(parse_rsa_public_key(&der[..cut]).is_none());
        }
    }
}
