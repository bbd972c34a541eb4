//! PEM and the DER envelopes of keys: SubjectPublicKeyInfo (RFC 5280),
//! PKCS#8 (RFC 5208, 5958), PKCS#1 RSA keys (RFC 8017) and SEC1 EC keys.
//! The DER is read and written by RustCrypto's `der`, `spki`, `pkcs8` and
//! `pkcs1` crates; key checks and signature maths stay in aws-lc.
//!
//! The PEM armor is read here: `pem-rfc7468` reads only bodies wrapped at
//! 64 columns, while keys pasted on one line (an environment variable) or
//! wrapped at 76 are common. Any whitespace in the body is accepted; PEM
//! headers (legacy encrypted keys) are refused.

use super::alg::truncate;
use super::key::{key_err, Curve, Key};
use super::material::{ec_material, ec_public_material, okp_material, okp_public_material, rsa_material, rsa_public_material, Material};
use crate::b64;
use crate::error::{Error, Result};
use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::{rsa, signature};
use der::asn1::{AnyRef, BitStringRef, ObjectIdentifier, UintRef};
use der::{Decode, Encode};

const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_EC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
pub(super) const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
pub(super) const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
pub(super) const OID_P521: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// The parts of a SubjectPublicKeyInfo or a PKCS#8 PrivateKeyInfo that
/// choose the key type.
struct KeyInfo<'a> {
    alg: ObjectIdentifier,
    /// The parameters' OID when there is one (EC curves).
    curve: Option<ObjectIdentifier>,
    key: &'a [u8],
}

/// The named curve of an AlgorithmIdentifier's parameters: absent or NULL
/// is `Some(None)`; anything but an OID is malformed (`None`).
fn curve_param(params: Option<AnyRef<'_>>) -> Option<Option<ObjectIdentifier>> {
    match params {
        None => Some(None),
        Some(p) if p.is_null() => Some(None),
        Some(p) => p.decode_as::<ObjectIdentifier>().ok().map(Some),
    }
}

fn parse_spki(der: &[u8]) -> Option<KeyInfo<'_>> {
    let info = spki::SubjectPublicKeyInfoRef::from_der(der).ok()?;
    let curve = curve_param(info.algorithm.parameters)?;
    Some(KeyInfo { alg: info.algorithm.oid, curve, key: info.subject_public_key.as_bytes()? })
}

fn parse_pkcs8(der: &[u8]) -> Option<KeyInfo<'_>> {
    let info = pkcs8::PrivateKeyInfo::from_der(der).ok()?;
    let curve = curve_param(info.algorithm.parameters)?;
    Some(KeyInfo { alg: info.algorithm.oid, curve, key: info.private_key })
}

fn der_error(_: der::Error) -> Error {
    Error::internal("a key could not be DER-encoded")
}

/// RSAPublicKey (RFC 8017 A.1.1) from its modulus and exponent.
pub(super) fn rsa_public_key_der(n: &[u8], e: &[u8]) -> Result<Vec<u8>> {
    let key = pkcs1::RsaPublicKey { modulus: UintRef::new(n).map_err(der_error)?, public_exponent: UintRef::new(e).map_err(der_error)? };
    key.to_der().map_err(der_error)
}

/// (n, e) of an RSAPublicKey.
fn parse_rsa_public_key(der: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let key = pkcs1::RsaPublicKey::from_der(der).ok()?;
    Some((key.modulus.as_bytes().to_vec(), key.public_exponent.as_bytes().to_vec()))
}

/// The eight integers of a two-prime RSAPrivateKey (RFC 8017 A.1.2): n, e,
/// d, p, q, dp, dq, qi. Multi-prime keys are `None`.
fn parse_rsa_private_key(der: &[u8]) -> Option<[Vec<u8>; 8]> {
    let k = pkcs1::RsaPrivateKey::from_der(der).ok()?;
    if k.other_prime_infos.is_some() {
        return None;
    }
    let parts = [k.modulus, k.public_exponent, k.private_exponent, k.prime1, k.prime2, k.exponent1, k.exponent2, k.coefficient];
    Some(parts.map(|p| p.as_bytes().to_vec()))
}

/// A two-prime RSAPrivateKey from n, e, d, p, q, dp, dq, qi.
pub(super) fn rsa_private_key_der(parts: [&[u8]; 8]) -> Result<Vec<u8>> {
    let [n, e, d, p, q, dp, dq, qi] = parts.map(UintRef::new);
    let key = pkcs1::RsaPrivateKey {
        modulus: n.map_err(der_error)?,
        public_exponent: e.map_err(der_error)?,
        private_exponent: d.map_err(der_error)?,
        prime1: p.map_err(der_error)?,
        prime2: q.map_err(der_error)?,
        exponent1: dp.map_err(der_error)?,
        exponent2: dq.map_err(der_error)?,
        coefficient: qi.map_err(der_error)?,
        other_prime_infos: None,
    };
    key.to_der().map_err(der_error)
}

/// The private key of aws-lc's PKCS#8 encoding of an RSA pair, as its parts.
pub(super) fn rsa_private_parts(pair: &rsa::KeyPair) -> Result<[Vec<u8>; 8]> {
    let pkcs8 = AsDer::<Pkcs8V1Der>::as_der(pair).map_err(|_| Error::internal("aws-lc could not encode the RSA key"))?;
    parse_pkcs8(pkcs8.as_ref())
        .and_then(|info| parse_rsa_private_key(info.key))
        .ok_or_else(|| Error::internal("aws-lc produced an unreadable RSA key"))
}

/// SubjectPublicKeyInfo from an algorithm, its parameters and the key bits.
fn spki(alg: ObjectIdentifier, params: Option<AnyRef<'_>>, key: &[u8]) -> Result<Vec<u8>> {
    let info = spki::SubjectPublicKeyInfoRef {
        algorithm: spki::AlgorithmIdentifierRef { oid: alg, parameters: params },
        subject_public_key: BitStringRef::from_bytes(key).map_err(der_error)?,
    };
    info.to_der().map_err(der_error)
}

impl Key {
    /// Imports a PEM key: `PRIVATE KEY` (PKCS#8), `PUBLIC KEY` (SPKI),
    /// `RSA PRIVATE KEY` / `RSA PUBLIC KEY` (PKCS#1) or `EC PRIVATE KEY` (SEC1).
    pub fn from_pem(text: &str) -> Result<Key> {
        let (label, der) = parse_pem(text)?;
        let material = match label.as_str() {
            "PRIVATE KEY" => pkcs8_material(&der)?,
            "PUBLIC KEY" => spki_material(&der)?,
            "RSA PRIVATE KEY" => rsa_material(
                rsa::KeyPair::from_der(&der).map_err(|e| key_err(format!("RSA PRIVATE KEY rejected: {e}")))?,
            )?,
            "RSA PUBLIC KEY" => {
                let (n, e) = parse_rsa_public_key(&der)
                    .ok_or_else(|| key_err("RSA PUBLIC KEY is not a valid PKCS#1 structure"))?;
                rsa_public_material(n, e)?
            }
            "EC PRIVATE KEY" => {
                let mut found = None;
                for curve in [Curve::P256, Curve::P384, Curve::P521] {
                    if let Ok(pair) = signature::EcdsaKeyPair::from_private_key_der(curve.signing(), &der) {
                        found = Some(ec_material(curve, pair)?);
                        break;
                    }
                }
                found.ok_or_else(|| key_err("EC PRIVATE KEY is not a P-256, P-384 or P-521 key"))?
            }
            "ENCRYPTED PRIVATE KEY" => {
                return Err(key_err("encrypted PEM keys are not supported; decrypt the key first"))
            }
            other => return Err(key_err(format!("unsupported PEM label {:?}", truncate(other)))),
        };
        Ok(Key::from_material(material, None))
    }

    /// PEM: PKCS#8 `PRIVATE KEY` with `private`, else SPKI `PUBLIC KEY`.
    pub fn to_pem(&self, private: bool) -> Result<String> {
        let (label, der) = if private { ("PRIVATE KEY", self.pkcs8_der()?) } else { ("PUBLIC KEY", self.spki_der()?) };
        let body = b64::encode_std(der);
        let mut out = format!("-----BEGIN {label}-----\n");
        for chunk in body.as_bytes().chunks(64) {
            out.push_str(&String::from_utf8_lossy(chunk));
            out.push('\n');
        }
        out.push_str(&format!("-----END {label}-----\n"));
        Ok(out)
    }

    fn pkcs8_der(&self) -> Result<Vec<u8>> {
        let encoded = match &*self.material {
            Material::Oct { .. } => return Err(key_err("HMAC (oct) keys have no PEM form; use to_jwk")),
            Material::Rsa { private: Some(pair), .. } => AsDer::<Pkcs8V1Der>::as_der(pair).map(|d| d.as_ref().to_vec()),
            Material::Ec { private: Some(pair), .. } => pair.to_pkcs8v1().map(|d| d.as_ref().to_vec()),
            Material::Okp { private: Some(pair), .. } => AsDer::<Pkcs8V1Der>::as_der(pair).map(|d| d.as_ref().to_vec()),
            _ => return Err(key_err("this is a public key; there is no private key to export")),
        };
        encoded.map_err(|_| Error::internal("aws-lc could not encode the key"))
    }

    fn spki_der(&self) -> Result<Vec<u8>> {
        match &*self.material {
            Material::Oct { .. } => Err(key_err("HMAC (oct) keys have no PEM form; use to_jwk")),
            Material::Rsa { n, e, .. } => {
                spki(OID_RSA, Some(AnyRef::NULL), &rsa_public_key_der(n, e)?)
            }
            Material::Ec { curve, x, y, .. } => {
                let mut point = Vec::with_capacity(1 + x.len() + y.len());
                point.push(4);
                point.extend_from_slice(x);
                point.extend_from_slice(y);
                let curve = curve.oid();
                spki(OID_EC, Some(AnyRef::from(&curve)), &point)
            }
            Material::Okp { x, .. } => spki(OID_ED25519, None, x),
        }
    }
}

fn pkcs8_material(der: &[u8]) -> Result<Material> {
    let info = parse_pkcs8(der).ok_or_else(|| key_err("PRIVATE KEY is not a valid PKCS#8 structure"))?;
    if info.alg == OID_RSA {
        let pair = rsa::KeyPair::from_pkcs8(der).map_err(|e| key_err(format!("RSA private key rejected: {e}")))?;
        rsa_material(pair)
    } else if info.alg == OID_EC {
        let curve = info
            .curve
            .and_then(Curve::from_oid)
            .ok_or_else(|| key_err("EC private key is not on P-256, P-384 or P-521"))?;
        let pair = signature::EcdsaKeyPair::from_pkcs8(curve.signing(), der)
            .map_err(|e| key_err(format!("EC private key rejected: {e}")))?;
        ec_material(curve, pair)
    } else if info.alg == OID_ED25519 {
        let pair = signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
            .map_err(|e| key_err(format!("Ed25519 private key rejected: {e}")))?;
        okp_material(pair)
    } else {
        Err(key_err("unsupported private key algorithm (expected RSA, EC or Ed25519)"))
    }
}

fn spki_material(der: &[u8]) -> Result<Material> {
    let info = parse_spki(der).ok_or_else(|| key_err("PUBLIC KEY is not a valid SubjectPublicKeyInfo"))?;
    if info.alg == OID_RSA {
        let (n, e) = parse_rsa_public_key(info.key).ok_or_else(|| key_err("RSA public key is malformed"))?;
        rsa_public_material(n, e)
    } else if info.alg == OID_EC {
        let curve = info
            .curve
            .and_then(Curve::from_oid)
            .ok_or_else(|| key_err("EC public key is not on P-256, P-384 or P-521"))?;
        let len = curve.coordinate_len();
        if info.key.len() != 1 + 2 * len || info.key[0] != 4 {
            return Err(key_err("EC public key must be an uncompressed point"));
        }
        ec_public_material(curve, info.key[1..=len].to_vec(), info.key[1 + len..].to_vec())
    } else if info.alg == OID_ED25519 {
        okp_public_material(info.key.to_vec())
    } else {
        Err(key_err("unsupported public key algorithm (expected RSA, EC or Ed25519)"))
    }
}

fn parse_pem(text: &str) -> Result<(String, Vec<u8>)> {
    let text = text.trim();
    let rest = text
        .strip_prefix("-----BEGIN ")
        .ok_or_else(|| key_err("not a PEM block: expected \"-----BEGIN ...-----\""))?;
    let (label, rest) = rest.split_once("-----").ok_or_else(|| key_err("malformed PEM header line"))?;
    let footer = format!("-----END {label}-----");
    let body = rest.split_once(&footer).map(|(b, _)| b).ok_or_else(|| key_err("PEM block has no matching END line"))?;
    if body.contains(':') {
        return Err(key_err("PEM headers (encrypted legacy keys) are not supported"));
    }
    let joined: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let der = b64::decode_std(&joined).ok_or_else(|| key_err("PEM body is not valid base64"))?;
    Ok((label.to_owned(), der))
}


#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn integers_round_trip_with_sign_padding() {
        let der = rsa_public_key_der(&[0x80, 1], &[1, 0, 1]).unwrap();
        assert_eq!(parse_rsa_public_key(&der), Some((vec![0x80, 1], vec![1, 0, 1])));
        let long = vec![0xffu8; 300];
        let der = rsa_public_key_der(&long, &[3]).unwrap();
        assert_eq!(parse_rsa_public_key(&der).map(|(n, _)| n), Some(long));
    }

    #[test]
    fn truncated_input_is_none() {
        let der = rsa_public_key_der(&[5; 40], &[3]).unwrap();
        for cut in 0..der.len() {
            assert!(parse_rsa_public_key(&der[..cut]).is_none());
        }
        let spki = spki(OID_ED25519, None, &[7; 32]).unwrap();
        assert!(parse_spki(&spki).is_some_and(|i| i.alg == OID_ED25519 && i.curve.is_none() && i.key == [7; 32]));
        for cut in 0..spki.len() {
            assert!(parse_spki(&spki[..cut]).is_none());
        }
    }

    #[test]
    fn trailing_bytes_and_bad_parameters_are_refused() {
        let mut der = rsa_public_key_der(&[5; 40], &[3]).unwrap();
        der.push(0);
        assert!(parse_rsa_public_key(&der).is_none(), "trailing data");
        let p256 = OID_P256;
        let ec = spki(OID_EC, Some(AnyRef::from(&p256)), &[4; 65]).unwrap();
        assert!(parse_spki(&ec).is_some_and(|i| i.curve == Some(OID_P256)));
        let odd = spki(OID_EC, Some(AnyRef::new(der::Tag::Integer, &[1]).unwrap()), &[4; 65]).unwrap();
        assert!(parse_spki(&odd).is_none(), "parameters that are neither absent, NULL nor an OID");
    }
}
