//! Keys: generation, JWK / PEM import and export, RFC 7638 thumbprints, and the
//! raw sign/verify primitives over aws-lc.
//!
//! A [`Key`] is parsed once: it holds aws-lc key objects ready to sign or
//! verify, so no call re-parses DER or PEM. Keys are cheap to clone (shared).

use super::alg::{truncate, Algorithm, KeyType};
use crate::error::{Error, Result};
use super::material::{
    ec_material, ec_public_material, oct_material, okp_material, okp_public_material, rsa_bits, rsa_material,
    rsa_public_material, Material,
};
use super::pem;
use aws_lc_rs::signature::{self, ParsedPublicKey};
use aws_lc_rs::{hmac, rand, rsa};
use std::fmt;
use std::sync::Arc;

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
    pub(super) fn parse(name: &str) -> Option<Curve> {
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
    pub(super) fn oid(self) -> der::asn1::ObjectIdentifier {
        match self {
            Curve::P256 => pem::OID_P256,
            Curve::P384 => pem::OID_P384,
            Curve::P521 => pem::OID_P521,
        }
    }
    pub(super) fn from_oid(oid: der::asn1::ObjectIdentifier) -> Option<Curve> {
        [Curve::P256, Curve::P384, Curve::P521].into_iter().find(|c| c.oid() == oid)
    }
    pub(super) fn signing(self) -> &'static signature::EcdsaSigningAlgorithm {
        match self {
            Curve::P256 => &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            Curve::P384 => &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
            Curve::P521 => &signature::ECDSA_P521_SHA512_FIXED_SIGNING,
        }
    }
    pub(super) fn verification(self) -> &'static signature::EcdsaVerificationAlgorithm {
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

/// A signing or verification key with its JWK metadata.
///
/// `kid` defaults to the RFC 7638 thumbprint. `alg`, `use` and `key_ops`, when
/// set, restrict what the key may do, and every sign/verify checks them.
#[derive(Clone)]
pub struct Key {
    pub(super) material: Arc<Material>,
    pub(super) kid: String,
    /// Whether `kid` was given (JWK, generated, `with_kid`) rather than
    /// defaulted to the thumbprint of an imported PEM/secret.
    kid_explicit: bool,
    pub(super) alg: Option<Algorithm>,
    pub(super) use_: Option<String>,
    pub(super) key_ops: Option<Vec<String>>,
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

pub(super) fn key_err(msg: impl Into<String>) -> Error {
    Error::invalid_key(msg)
}

fn rng_failure(_: aws_lc_rs::error::Unspecified) -> Error {
    Error::internal("key generation failed in aws-lc")
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

pub(super) const RSA_VERIFY: [&signature::RsaParameters; 6] = [
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
    pub(super) fn from_material(material: Material, kid: Option<String>) -> Key {
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
                    pem::rsa_public_key_der(n, e).ok().and_then(|der| ParsedPublicKey::new(RSA_VERIFY[idx], der).ok())
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

}

