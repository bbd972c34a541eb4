//! Keys: generation, JWK / PEM import and export, RFC 7638 thumbprints, and the
//! raw sign/verify primitives over aws-lc.
//!
//! A [`Key`] is parsed once: it holds aws-lc key objects ready to sign or
//! verify, so no call re-parses DER or PEM. Keys are cheap to clone (shared).

use super::alg::{truncate, Algorithm, KeyType};
use crate::error::{Error, Result};
use crate::{b64, der};
use aws_lc_rs::encoding::{AsBigEndian, AsDer, EcPublicKeyUncompressedBin, Pkcs8V1Der};
use aws_lc_rs::signature::{self, KeyPair as _, ParsedPublicKey};
use aws_lc_rs::{digest, hmac, rand, rsa};
use serde_json::{Map, Value};
use std::fmt;
use std::sync::{Arc, OnceLock};

/// Smallest RSA modulus accepted anywhere, in bits.
pub const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus accepted (aws-lc's verification bound).
pub const MAX_RSA_BITS: usize = 8192;
/// Smallest HMAC secret accepted at all; each HS* also needs its hash length.
pub const MIN_HMAC_SECRET: usize = 32;

/// An elliptic curve for ECDSA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    P256,
    P384,
    P521,
}

impl Curve {
    pub const fn name(self) -> &'static str {
        match self {
            Curve::P256 => "P-256",
            Curve::P384 => "P-384",
            Curve::P521 => "P-521",
        }
    }
    fn parse(name: &str) -> Option<Curve> {
        match name {
            "P-256" => Some(Curve::P256),
            "P-384" => Some(Curve::P384),
            "P-521" => Some(Curve::P521),
            _ => None,
        }
    }
    pub const fn algorithm(self) -> Algorithm {
        match self {
            Curve::P256 => Algorithm::ES256,
            Curve::P384 => Algorithm::ES384,
            Curve::P521 => Algorithm::ES512,
        }
    }
    /// Bytes per coordinate, and per signature half.
    pub const fn coordinate_len(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
            Curve::P521 => 66,
        }
    }
    fn oid(self) -> &'static [u8] {
        match self {
            Curve::P256 => der::OID_P256,
            Curve::P384 => der::OID_P384,
            Curve::P521 => der::OID_P521,
        }
    }
    fn from_oid(oid: &[u8]) -> Option<Curve> {
        [Curve::P256, Curve::P384, Curve::P521].into_iter().find(|c| c.oid() == oid)
    }
    fn signing(self) -> &'static signature::EcdsaSigningAlgorithm {
        match self {
            Curve::P256 => &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            Curve::P384 => &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
            Curve::P521 => &signature::ECDSA_P521_SHA512_FIXED_SIGNING,
        }
    }
    fn verification(self) -> &'static signature::EcdsaVerificationAlgorithm {
        match self {
            Curve::P256 => &signature::ECDSA_P256_SHA256_FIXED,
            Curve::P384 => &signature::ECDSA_P384_SHA384_FIXED,
            Curve::P521 => &signature::ECDSA_P521_SHA512_FIXED,
        }
    }
}

/// What a key is used for (`key_ops` of RFC 7517 §4.3, reduced to JWS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOp {
    Sign,
    Verify,
}

enum Material {
    Oct {
        secret: Vec<u8>,
        macs: [OnceLock<hmac::Key>; 3],
    },
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
        /// One parsed public key per RSA algorithm, made on first use.
        verifiers: [OnceLock<Option<ParsedPublicKey>>; 6],
        private: Option<rsa::KeyPair>,
    },
    Ec {
        curve: Curve,
        x: Vec<u8>,
        y: Vec<u8>,
        verifier: ParsedPublicKey,
        private: Option<signature::EcdsaKeyPair>,
    },
    Okp {
        x: Vec<u8>,
        verifier: ParsedPublicKey,
        private: Option<signature::Ed25519KeyPair>,
    },
}

/// A signing or verification key with its JWK metadata.
///
/// `kid` defaults to the RFC 7638 thumbprint. `alg`, `use` and `key_ops`, when
/// set, restrict what the key may do, and every sign/verify checks them.
#[derive(Clone)]
pub struct Key {
    material: Arc<Material>,
    kid: String,
    /// Whether `kid` was given (JWK, generated, `with_kid`) rather than
    /// defaulted to the thumbprint of an imported PEM/secret.
    kid_explicit: bool,
    alg: Option<Algorithm>,
    use_: Option<String>,
    key_ops: Option<Vec<String>>,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never prints key material.
        f.debug_struct("Key")
            .field("kty", &self.key_type().as_str())
            .field("kid", &self.kid)
            .field("alg", &self.alg.map(Algorithm::as_str))
            .field("private", &self.has_private())
            .finish()
    }
}

fn key_err(msg: impl Into<String>) -> Error {
    Error::invalid_key(msg)
}

fn rng_failure(_: aws_lc_rs::error::Unspecified) -> Error {
    Error::internal("key generation failed in aws-lc")
}

fn rsa_bits(n: &[u8]) -> usize {
    let skip = n.iter().take_while(|&&b| b == 0).count();
    match n.get(skip) {
        None => 0,
        Some(&first) => (n.len() - skip - 1) * 8 + (8 - first.leading_zeros() as usize),
    }
}

fn rsa_algorithm_index(alg: Algorithm) -> Option<usize> {
    match alg {
        Algorithm::RS256 => Some(0),
        Algorithm::RS384 => Some(1),
        Algorithm::RS512 => Some(2),
        Algorithm::PS256 => Some(3),
        Algorithm::PS384 => Some(4),
        Algorithm::PS512 => Some(5),
        _ => None,
    }
}

const RSA_VERIFY: [&signature::RsaParameters; 6] = [
    &signature::RSA_PKCS1_2048_8192_SHA256,
    &signature::RSA_PKCS1_2048_8192_SHA384,
    &signature::RSA_PKCS1_2048_8192_SHA512,
    &signature::RSA_PSS_2048_8192_SHA256,
    &signature::RSA_PSS_2048_8192_SHA384,
    &signature::RSA_PSS_2048_8192_SHA512,
];

const RSA_SIGN: [&'static dyn signature::RsaEncoding; 6] = [
    &signature::RSA_PKCS1_SHA256,
    &signature::RSA_PKCS1_SHA384,
    &signature::RSA_PKCS1_SHA512,
    &signature::RSA_PSS_SHA256,
    &signature::RSA_PSS_SHA384,
    &signature::RSA_PSS_SHA512,
];

fn hmac_index(alg: Algorithm) -> Option<(usize, hmac::Algorithm)> {
    match alg {
        Algorithm::HS256 => Some((0, hmac::HMAC_SHA256)),
        Algorithm::HS384 => Some((1, hmac::HMAC_SHA384)),
        Algorithm::HS512 => Some((2, hmac::HMAC_SHA512)),
        _ => None,
    }
}

impl Key {
    fn from_material(material: Material, kid: Option<String>) -> Key {
        let mut key = Key {
            material: Arc::new(material),
            kid: String::new(),
            kid_explicit: kid.is_some(),
            alg: None,
            use_: None,
            key_ops: None,
        };
        key.kid = kid.unwrap_or_else(|| key.thumbprint());
        key
    }

    // ---- construction -------------------------------------------------

    /// Generates a new key for `alg`. `rsa_bits` (2048, 3072 or 4096) applies
    /// to RS*/PS* and defaults to 2048. The key's `alg` is set and its `kid`
    /// is its thumbprint.
    pub fn generate(alg: Algorithm, rsa_bits: Option<u32>) -> Result<Key> {
        let material = match alg.key_type() {
            KeyType::Oct => {
                let mut secret = vec![0u8; alg.hash_len()];
                getrandom::fill(&mut secret)
                    .map_err(|_| Error::internal("the operating system's random generator failed"))?;
                oct_material(secret)
            }
            KeyType::Rsa => {
                let size = match rsa_bits.unwrap_or(2048) {
                    2048 => rsa::KeySize::Rsa2048,
                    3072 => rsa::KeySize::Rsa3072,
                    4096 => rsa::KeySize::Rsa4096,
                    other => {
                        return Err(Error::invalid_request(format!(
                            "RSA key size must be 2048, 3072 or 4096 bits, got {other}"
                        )))
                    }
                };
                rsa_material(rsa::KeyPair::generate(size).map_err(rng_failure)?)?
            }
            KeyType::Ec => {
                let curve = match alg {
                    Algorithm::ES256 => Curve::P256,
                    Algorithm::ES384 => Curve::P384,
                    _ => Curve::P521,
                };
                let pair = signature::EcdsaKeyPair::generate(curve.signing()).map_err(rng_failure)?;
                ec_material(curve, pair)?
            }
            KeyType::Okp => okp_material(signature::Ed25519KeyPair::generate().map_err(rng_failure)?)?,
        };
        let mut key = Key::from_material(material, None);
        key.kid_explicit = true;
        key.alg = Some(alg);
        Ok(key)
    }

    /// An HMAC key from a secret of at least 32 bytes. PEM text is refused:
    /// a public key must never become an HMAC secret.
    pub fn from_hmac_secret(secret: &[u8]) -> Result<Key> {
        if secret.len() < MIN_HMAC_SECRET {
            return Err(key_err(format!(
                "HMAC secret must be at least {MIN_HMAC_SECRET} bytes, got {}",
                secret.len()
            )));
        }
        let text = String::from_utf8_lossy(&secret[..secret.len().min(64)]);
        if text.trim_start().starts_with("-----BEGIN") || text.trim_start().starts_with("ssh-") {
            return Err(key_err(
                "the HMAC secret looks like a PEM/SSH key; asymmetric keys are never used as HMAC secrets",
            ));
        }
        Ok(Key::from_material(oct_material(secret.to_vec()), None))
    }

    /// Imports a JWK given as JSON text.
    pub fn from_jwk_json(text: &str) -> Result<Key> {
        let map = crate::json::parse_object(text.as_bytes())
            .map_err(|e| key_err(format!("JWK is not valid JSON: {e}")))?;
        Key::from_jwk(&map)
    }

    /// Imports a JWK (public or private) from a parsed JSON object.
    pub fn from_jwk(jwk: &Map<String, Value>) -> Result<Key> {
        match parse_jwk(jwk)? {
            Parsed::Key(key) => Ok(key),
            Parsed::NotForJws(reason) => Err(key_err(reason)),
        }
    }

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
                let (n, e) = der::parse_rsa_public_key(&der)
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

    // ---- metadata -----------------------------------------------------

    /// Returns a copy with this `kid`.
    pub fn with_kid(mut self, kid: impl Into<String>) -> Key {
        self.kid = kid.into();
        self.kid_explicit = true;
        self
    }

    /// Returns a copy restricted to `alg`; it must suit the key type.
    pub fn with_alg(mut self, alg: Algorithm) -> Result<Key> {
        self.check_alg_fits(alg)?;
        self.alg = Some(alg);
        Ok(self)
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }
    /// Whether the `kid` was set explicitly rather than defaulted to the thumbprint.
    pub fn has_explicit_kid(&self) -> bool {
        self.kid_explicit
    }
    pub fn alg(&self) -> Option<Algorithm> {
        self.alg
    }
    pub fn key_use(&self) -> Option<&str> {
        self.use_.as_deref()
    }
    pub fn key_ops(&self) -> Option<&[String]> {
        self.key_ops.as_deref()
    }
    pub fn key_type(&self) -> KeyType {
        match &*self.material {
            Material::Oct { .. } => KeyType::Oct,
            Material::Rsa { .. } => KeyType::Rsa,
            Material::Ec { .. } => KeyType::Ec,
            Material::Okp { .. } => KeyType::Okp,
        }
    }
    pub fn curve(&self) -> Option<Curve> {
        match &*self.material {
            Material::Ec { curve, .. } => Some(*curve),
            _ => None,
        }
    }
    /// Whether the key can sign (a private key, or an HMAC secret).
    pub fn has_private(&self) -> bool {
        match &*self.material {
            Material::Oct { .. } => true,
            Material::Rsa { private, .. } => private.is_some(),
            Material::Ec { private, .. } => private.is_some(),
            Material::Okp { private, .. } => private.is_some(),
        }
    }
    /// RSA modulus size in bits.
    pub fn rsa_bits(&self) -> Option<usize> {
        match &*self.material {
            Material::Rsa { n, .. } => Some(rsa_bits(n)),
            _ => None,
        }
    }

    /// The algorithm used when signing without naming one: the key's `alg`,
    /// else RS256, the curve's ES*, EdDSA, or HS256.
    pub fn default_algorithm(&self) -> Algorithm {
        self.alg.unwrap_or(match &*self.material {
            Material::Oct { .. } => Algorithm::HS256,
            Material::Rsa { .. } => Algorithm::RS256,
            Material::Ec { curve, .. } => curve.algorithm(),
            Material::Okp { .. } => Algorithm::EdDSA,
        })
    }

    /// The public half (metadata kept). Fails for HMAC keys, which have none.
    pub fn public_key(&self) -> Result<Key> {
        let material = match &*self.material {
            Material::Oct { .. } => return Err(key_err("an HMAC (oct) key has no public form")),
            Material::Rsa { n, e, .. } => rsa_public_material(n.clone(), e.clone())?,
            Material::Ec { curve, x, y, .. } => ec_public_material(*curve, x.clone(), y.clone())?,
            Material::Okp { x, .. } => okp_public_material(x.clone())?,
        };
        Ok(Key { material: Arc::new(material), ..self.clone() })
    }

    fn check_alg_fits(&self, alg: Algorithm) -> Result<()> {
        let kty = self.key_type();
        if alg.key_type() != kty {
            return Err(key_err(format!(
                "a {} key cannot be used with alg {alg}",
                kty.as_str()
            )));
        }
        match &*self.material {
            Material::Ec { curve, .. } if curve.algorithm() != alg => Err(key_err(format!(
                "a {} key can only be used with {}, not {alg}",
                curve.name(),
                curve.algorithm()
            ))),
            Material::Oct { secret, .. } if secret.len() < alg.hash_len() => Err(key_err(format!(
                "{alg} needs an HMAC secret of at least {} bytes, this one has {}",
                alg.hash_len(),
                secret.len()
            ))),
            _ => Ok(()),
        }
    }

    /// Checks that this key may perform `op` with `alg`: the key type and
    /// curve fit, and the key's own `alg`, `use` and `key_ops` agree.
    pub fn check_usable(&self, alg: Algorithm, op: KeyOp) -> Result<()> {
        self.check_alg_fits(alg)?;
        if let Some(own) = self.alg {
            if own != alg {
                return Err(key_err(format!(
                    "key {:?} is restricted to {own}, the token uses {alg}",
                    truncate(&self.kid)
                )));
            }
        }
        if let Some(u) = &self.use_ {
            if u != "sig" {
                return Err(key_err(format!("key {:?} has use {:?}, not \"sig\"", truncate(&self.kid), truncate(u))));
            }
        }
        if let Some(ops) = &self.key_ops {
            let needed = match op {
                KeyOp::Sign => "sign",
                KeyOp::Verify => "verify",
            };
            if !ops.iter().any(|o| o == needed) {
                return Err(key_err(format!("key {:?} key_ops does not include {needed:?}", truncate(&self.kid))));
            }
        }
        if op == KeyOp::Sign && !self.has_private() {
            return Err(key_err("signing needs a private key; this is a public key"));
        }
        Ok(())
    }

    // ---- primitives ---------------------------------------------------

    /// Signs `message` with `alg` (after [`Key::check_usable`]).
    pub fn sign_bytes(&self, alg: Algorithm, message: &[u8]) -> Result<Vec<u8>> {
        self.check_usable(alg, KeyOp::Sign)?;
        let failed = |_| Error::internal("signing failed in aws-lc");
        match &*self.material {
            Material::Oct { .. } => Ok(hmac::sign(self.mac(alg)?, message).as_ref().to_vec()),
            Material::Rsa { private: Some(pair), .. } => {
                let idx = rsa_algorithm_index(alg).ok_or_else(|| key_err("not an RSA algorithm"))?;
                let mut sig = vec![0u8; pair.public_modulus_len()];
                pair.sign(RSA_SIGN[idx], &rand::SystemRandom::new(), message, &mut sig).map_err(failed)?;
                Ok(sig)
            }
            Material::Ec { private: Some(pair), .. } => {
                Ok(pair.sign(&rand::SystemRandom::new(), message).map_err(failed)?.as_ref().to_vec())
            }
            Material::Okp { private: Some(pair), .. } => Ok(pair.sign(message).as_ref().to_vec()),
            _ => Err(key_err("signing needs a private key; this is a public key")),
        }
    }

    /// Verifies `signature` over `message` with `alg`. A wrong signature is
    /// `invalid_signature`; an unsuitable key is `invalid_key`.
    pub fn verify_bytes(&self, alg: Algorithm, message: &[u8], signature: &[u8]) -> Result<()> {
        self.check_usable(alg, KeyOp::Verify)?;
        let bad = || Error::invalid_signature("signature verification failed");
        match &*self.material {
            Material::Oct { .. } => hmac::verify(self.mac(alg)?, message, signature).map_err(|_| bad()),
            Material::Rsa { n, e, verifiers, .. } => {
                let idx = rsa_algorithm_index(alg).ok_or_else(|| key_err("not an RSA algorithm"))?;
                let parsed = verifiers[idx].get_or_init(|| {
                    ParsedPublicKey::new(RSA_VERIFY[idx], der::rsa_public_key(n, e)).ok()
                });
                let parsed = parsed.as_ref().ok_or_else(|| key_err("RSA public key rejected by aws-lc"))?;
                if signature.len() != n.len() - n.iter().take_while(|&&b| b == 0).count() {
                    return Err(Error::invalid_signature("RSA signature has the wrong length"));
                }
                parsed.verify_sig(message, signature).map_err(|_| bad())
            }
            Material::Ec { curve, verifier, .. } => {
                if signature.len() != 2 * curve.coordinate_len() {
                    return Err(Error::invalid_signature(format!(
                        "{alg} signature must be {} bytes (R || S), got {}",
                        2 * curve.coordinate_len(),
                        signature.len()
                    )));
                }
                verifier.verify_sig(message, signature).map_err(|_| bad())
            }
            Material::Okp { verifier, .. } => {
                if signature.len() != 64 {
                    return Err(Error::invalid_signature("EdDSA signature must be 64 bytes"));
                }
                verifier.verify_sig(message, signature).map_err(|_| bad())
            }
        }
    }

    fn mac(&self, alg: Algorithm) -> Result<&hmac::Key> {
        match (&*self.material, hmac_index(alg)) {
            (Material::Oct { secret, macs }, Some((i, a))) => Ok(macs[i].get_or_init(|| hmac::Key::new(a, secret))),
            _ => Err(key_err(format!("a {} key cannot be used with {alg}", self.key_type().as_str()))),
        }
    }

    // ---- export -------------------------------------------------------

    /// The RFC 7638 SHA-256 thumbprint, base64url.
    pub fn thumbprint(&self) -> String {
        b64::encode(digest::digest(&digest::SHA256, self.canonical_jwk().as_bytes()))
    }

    /// The RFC 7638 canonical JSON of the required members.
    pub fn canonical_jwk(&self) -> String {
        match &*self.material {
            Material::Oct { secret, .. } => format!(r#"{{"k":"{}","kty":"oct"}}"#, b64::encode(secret)),
            Material::Rsa { n, e, .. } => {
                format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, b64::encode(e), b64::encode(n))
            }
            Material::Ec { curve, x, y, .. } => format!(
                r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
                curve.name(),
                b64::encode(x),
                b64::encode(y)
            ),
            Material::Okp { x, .. } => format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, b64::encode(x)),
        }
    }

    /// The key as a JWK. Private members only with `include_private`; an HMAC
    /// key cannot be exported without them.
    pub fn to_jwk(&self, include_private: bool) -> Result<Map<String, Value>> {
        let mut jwk = Map::new();
        let s = |v: &[u8]| Value::String(b64::encode(v));
        jwk.insert("kty".into(), self.key_type().as_str().into());
        match &*self.material {
            Material::Oct { secret, .. } => {
                if !include_private {
                    return Err(key_err("an HMAC (oct) key has no public form"));
                }
                jwk.insert("k".into(), s(secret));
            }
            Material::Rsa { n, e, private, .. } => {
                jwk.insert("n".into(), s(n));
                jwk.insert("e".into(), s(e));
                if let (true, Some(pair)) = (include_private, private) {
                    let pkcs8 = AsDer::<Pkcs8V1Der>::as_der(pair)
                        .map_err(|_| Error::internal("aws-lc could not encode the RSA key"))?;
                    let parts = der::parse_pkcs8(pkcs8.as_ref())
                        .and_then(|info| der::parse_rsa_private_key(info.key))
                        .ok_or_else(|| Error::internal("aws-lc produced an unreadable RSA key"))?;
                    for (name, value) in ["d", "p", "q", "dp", "dq", "qi"].iter().zip(&parts[2..]) {
                        jwk.insert((*name).into(), s(value));
                    }
                }
            }
            Material::Ec { curve, x, y, private, .. } => {
                jwk.insert("crv".into(), curve.name().into());
                jwk.insert("x".into(), s(x));
                jwk.insert("y".into(), s(y));
                if let (true, Some(pair)) = (include_private, private) {
                    let d = AsBigEndian::<aws_lc_rs::encoding::EcPrivateKeyBin>::as_be_bytes(&pair.private_key())
                        .map_err(|_| Error::internal("aws-lc could not export the EC key"))?;
                    jwk.insert("d".into(), s(d.as_ref()));
                }
            }
            Material::Okp { x, private, .. } => {
                jwk.insert("crv".into(), "Ed25519".into());
                jwk.insert("x".into(), s(x));
                if let (true, Some(pair)) = (include_private, private) {
                    let seed = pair
                        .seed()
                        .and_then(|seed| seed.as_be_bytes())
                        .map_err(|_| Error::internal("aws-lc could not export the Ed25519 key"))?;
                    jwk.insert("d".into(), s(seed.as_ref()));
                }
            }
        }
        jwk.insert("kid".into(), self.kid.clone().into());
        if let Some(alg) = self.alg {
            jwk.insert("alg".into(), alg.as_str().into());
        }
        if let Some(u) = &self.use_ {
            jwk.insert("use".into(), u.clone().into());
        }
        if let Some(ops) = &self.key_ops {
            jwk.insert("key_ops".into(), ops.iter().cloned().map(Value::String).collect());
        }
        Ok(jwk)
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
                Ok(der::spki(der::OID_RSA, Some(&[der::TAG_NULL, 0]), &der::rsa_public_key(n, e)))
            }
            Material::Ec { curve, x, y, .. } => {
                let mut point = Vec::with_capacity(1 + x.len() + y.len());
                point.push(4);
                point.extend_from_slice(x);
                point.extend_from_slice(y);
                Ok(der::spki(der::OID_EC, Some(&der::element(der::TAG_OID, curve.oid())), &point))
            }
            Material::Okp { x, .. } => Ok(der::spki(der::OID_ED25519, None, x)),
        }
    }
}

// ---- material builders ------------------------------------------------------

fn oct_material(secret: Vec<u8>) -> Material {
    Material::Oct { secret, macs: Default::default() }
}

fn check_rsa_size(n: &[u8]) -> Result<()> {
    let bits = rsa_bits(n);
    if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
        return Err(key_err(format!(
            "RSA modulus must be {MIN_RSA_BITS} to {MAX_RSA_BITS} bits, got {bits}"
        )));
    }
    Ok(())
}

fn strip_zeros(v: &[u8]) -> Vec<u8> {
    let skip = v.iter().take_while(|&&b| b == 0).count();
    v[skip.min(v.len().saturating_sub(1))..].to_vec()
}

fn rsa_public_material(n: Vec<u8>, e: Vec<u8>) -> Result<Material> {
    let (n, e) = (strip_zeros(&n), strip_zeros(&e));
    check_rsa_size(&n)?;
    // Parse once now so a bad key fails at import, not at first verify.
    ParsedPublicKey::new(RSA_VERIFY[0], der::rsa_public_key(&n, &e))
        .map_err(|e| key_err(format!("RSA public key rejected: {e}")))?;
    Ok(Material::Rsa { n, e, verifiers: Default::default(), private: None })
}

fn rsa_material(pair: rsa::KeyPair) -> Result<Material> {
    let public = pair.public_key();
    let n = public.modulus().big_endian_without_leading_zero().to_vec();
    let e = public.exponent().big_endian_without_leading_zero().to_vec();
    check_rsa_size(&n)?;
    Ok(Material::Rsa { n, e, verifiers: Default::default(), private: Some(pair) })
}

fn ec_point(curve: Curve, x: &[u8], y: &[u8]) -> Result<Vec<u8>> {
    let len = curve.coordinate_len();
    if x.len() != len || y.len() != len {
        return Err(key_err(format!("{} coordinates x and y must each be {len} bytes", curve.name())));
    }
    let mut point = Vec::with_capacity(1 + 2 * len);
    point.push(4);
    point.extend_from_slice(x);
    point.extend_from_slice(y);
    Ok(point)
}

fn ec_public_material(curve: Curve, x: Vec<u8>, y: Vec<u8>) -> Result<Material> {
    let point = ec_point(curve, &x, &y)?;
    let verifier = ParsedPublicKey::new(curve.verification(), &point)
        .map_err(|_| key_err(format!("the point is not on {}", curve.name())))?;
    Ok(Material::Ec { curve, x, y, verifier, private: None })
}

fn ec_material(curve: Curve, pair: signature::EcdsaKeyPair) -> Result<Material> {
    let point = AsBigEndian::<EcPublicKeyUncompressedBin>::as_be_bytes(pair.public_key())
        .map_err(|_| Error::internal("aws-lc could not export the EC public key"))?;
    let point = point.as_ref();
    let len = curve.coordinate_len();
    if point.len() != 1 + 2 * len {
        return Err(Error::internal("aws-lc returned an EC point of unexpected size"));
    }
    let (x, y) = (point[1..=len].to_vec(), point[1 + len..].to_vec());
    let verifier = ParsedPublicKey::new(curve.verification(), point)
        .map_err(|_| Error::internal("aws-lc rejected its own EC public key"))?;
    Ok(Material::Ec { curve, x, y, verifier, private: Some(pair) })
}

fn okp_public_material(x: Vec<u8>) -> Result<Material> {
    if x.len() != 32 {
        return Err(key_err("Ed25519 public key x must be 32 bytes"));
    }
    let verifier =
        ParsedPublicKey::new(&signature::ED25519, &x).map_err(|_| key_err("Ed25519 public key rejected"))?;
    Ok(Material::Okp { x, verifier, private: None })
}

fn okp_material(pair: signature::Ed25519KeyPair) -> Result<Material> {
    let x = pair.public_key().as_ref().to_vec();
    let verifier = ParsedPublicKey::new(&signature::ED25519, &x)
        .map_err(|_| Error::internal("aws-lc rejected its own Ed25519 key"))?;
    Ok(Material::Okp { x, verifier, private: Some(pair) })
}

fn pkcs8_material(der: &[u8]) -> Result<Material> {
    let info = der::parse_pkcs8(der).ok_or_else(|| key_err("PRIVATE KEY is not a valid PKCS#8 structure"))?;
    if info.alg_oid == der::OID_RSA {
        let pair = rsa::KeyPair::from_pkcs8(der).map_err(|e| key_err(format!("RSA private key rejected: {e}")))?;
        rsa_material(pair)
    } else if info.alg_oid == der::OID_EC {
        let curve = info
            .param_oid
            .and_then(Curve::from_oid)
            .ok_or_else(|| key_err("EC private key is not on P-256, P-384 or P-521"))?;
        let pair = signature::EcdsaKeyPair::from_pkcs8(curve.signing(), der)
            .map_err(|e| key_err(format!("EC private key rejected: {e}")))?;
        ec_material(curve, pair)
    } else if info.alg_oid == der::OID_ED25519 {
        let pair = signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
            .map_err(|e| key_err(format!("Ed25519 private key rejected: {e}")))?;
        okp_material(pair)
    } else {
        Err(key_err("unsupported private key algorithm (expected RSA, EC or Ed25519)"))
    }
}

fn spki_material(der: &[u8]) -> Result<Material> {
    let info = der::parse_spki(der).ok_or_else(|| key_err("PUBLIC KEY is not a valid SubjectPublicKeyInfo"))?;
    if info.alg_oid == der::OID_RSA {
        let (n, e) = der::parse_rsa_public_key(info.key).ok_or_else(|| key_err("RSA public key is malformed"))?;
        rsa_public_material(n, e)
    } else if info.alg_oid == der::OID_EC {
        let curve = info
            .param_oid
            .and_then(Curve::from_oid)
            .ok_or_else(|| key_err("EC public key is not on P-256, P-384 or P-521"))?;
        let len = curve.coordinate_len();
        if info.key.len() != 1 + 2 * len || info.key[0] != 4 {
            return Err(key_err("EC public key must be an uncompressed point"));
        }
        ec_public_material(curve, info.key[1..=len].to_vec(), info.key[1 + len..].to_vec())
    } else if info.alg_oid == der::OID_ED25519 {
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

// ---- JWK parsing ------------------------------------------------------------

pub(crate) enum Parsed {
    Key(Key),
    /// A well-formed JWK that is not a JWS key idflow supports (an encryption
    /// key, an unknown kty or curve). Key sets skip these (RFC 7517 §5).
    NotForJws(String),
}

fn member<'a>(jwk: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>> {
    match jwk.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(key_err(format!("JWK member {name:?} must be a string"))),
    }
}

fn bytes_member(jwk: &Map<String, Value>, name: &str) -> Result<Option<Vec<u8>>> {
    match member(jwk, name)? {
        None => Ok(None),
        Some(s) => b64::decode(s)
            .map(Some)
            .ok_or_else(|| key_err(format!("JWK member {name:?} is not unpadded base64url"))),
    }
}

fn required_bytes(jwk: &Map<String, Value>, name: &str, kty: &str) -> Result<Vec<u8>> {
    bytes_member(jwk, name)?.ok_or_else(|| key_err(format!("{kty} JWK is missing {name:?}")))
}

pub(crate) fn parse_jwk(jwk: &Map<String, Value>) -> Result<Parsed> {
    let kty = member(jwk, "kty")?.ok_or_else(|| key_err("JWK is missing \"kty\""))?;
    let use_ = member(jwk, "use")?.map(str::to_owned);
    let kid = member(jwk, "kid")?.map(str::to_owned);
    let key_ops = match jwk.get("key_ops") {
        None => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| key_err("JWK \"key_ops\" must be an array of strings"))?,
        ),
        Some(_) => return Err(key_err("JWK \"key_ops\" must be an array of strings")),
    };
    let alg = match member(jwk, "alg")? {
        None => None,
        Some(name) => match Algorithm::parse(name) {
            Ok(a) => Some(a),
            Err(_) => return Ok(Parsed::NotForJws(format!("JWK alg {:?} is not a supported JWS algorithm", truncate(name)))),
        },
    };
    // A `use` other than "sig" is kept: such a key imports (thumbprints,
    // export) but `check_usable` refuses it for JWS, and key sets skip it.
    // Certificates (x5c/x5u) are not validated; only the key members count.
    let material = match kty {
        "oct" => {
            let k = required_bytes(jwk, "k", kty)?;
            if k.len() < MIN_HMAC_SECRET {
                return Err(key_err(format!("oct JWK \"k\" must be at least {MIN_HMAC_SECRET} bytes")));
            }
            oct_material(k)
        }
        "RSA" => {
            if jwk.contains_key("oth") {
                return Err(key_err("multi-prime RSA keys (\"oth\") are not supported"));
            }
            let n = required_bytes(jwk, "n", kty)?;
            let e = required_bytes(jwk, "e", kty)?;
            match bytes_member(jwk, "d")? {
                None => rsa_public_material(n, e)?,
                Some(d) => {
                    let mut crt = Vec::with_capacity(5);
                    for name in ["p", "q", "dp", "dq", "qi"] {
                        crt.push(bytes_member(jwk, name)?.ok_or_else(|| {
                            key_err("RSA private JWK needs p, q, dp, dq and qi as well as d")
                        })?);
                    }
                    let der = der::rsa_private_key([&n, &e, &d, &crt[0], &crt[1], &crt[2], &crt[3], &crt[4]]);
                    let pair = rsa::KeyPair::from_der(&der)
                        .map_err(|e| key_err(format!("RSA private JWK rejected: {e}")))?;
                    let material = rsa_material(pair)?;
                    if let Material::Rsa { n: got, .. } = &material {
                        if *got != strip_zeros(&n) {
                            return Err(key_err("RSA private JWK members are inconsistent"));
                        }
                    }
                    material
                }
            }
        }
        "EC" => {
            let crv = member(jwk, "crv")?.ok_or_else(|| key_err("EC JWK is missing \"crv\""))?;
            let Some(curve) = Curve::parse(crv) else {
                return Ok(Parsed::NotForJws(format!("EC curve {:?} is not supported", truncate(crv))));
            };
            let x = required_bytes(jwk, "x", kty)?;
            let y = required_bytes(jwk, "y", kty)?;
            match bytes_member(jwk, "d")? {
                None => ec_public_material(curve, x, y)?,
                Some(d) => {
                    if d.len() != curve.coordinate_len() {
                        return Err(key_err(format!("{} \"d\" must be {} bytes", curve.name(), curve.coordinate_len())));
                    }
                    let point = ec_point(curve, &x, &y)?;
                    let pair = signature::EcdsaKeyPair::from_private_key_and_public_key(curve.signing(), &d, &point)
                        .map_err(|_| key_err("EC private JWK: d does not match x and y"))?;
                    ec_material(curve, pair)?
                }
            }
        }
        "OKP" => {
            let crv = member(jwk, "crv")?.ok_or_else(|| key_err("OKP JWK is missing \"crv\""))?;
            if crv != "Ed25519" {
                return Ok(Parsed::NotForJws(format!("OKP curve {:?} is not supported for signatures", truncate(crv))));
            }
            let x = required_bytes(jwk, "x", kty)?;
            match bytes_member(jwk, "d")? {
                None => okp_public_material(x)?,
                Some(d) => {
                    if x.len() != 32 || d.len() != 32 {
                        return Err(key_err("Ed25519 x and d must each be 32 bytes"));
                    }
                    let pair = signature::Ed25519KeyPair::from_seed_and_public_key(&d, &x)
                        .map_err(|_| key_err("Ed25519 private JWK: d does not match x"))?;
                    okp_material(pair)?
                }
            }
        }
        other => return Ok(Parsed::NotForJws(format!("kty {:?} is not supported", truncate(other)))),
    };
    let mut key = Key::from_material(material, kid);
    key.use_ = use_;
    key.key_ops = key_ops;
    if let Some(alg) = alg {
        key = key.with_alg(alg)?;
    }
    Ok(Parsed::Key(key))
}
