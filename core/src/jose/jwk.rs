//! JWK (RFC 7517, 7518 §6) import and export, and the RFC 7638 thumbprint.

use super::alg::{truncate, Algorithm};
use super::key::{key_err, Curve, Key, MIN_HMAC_SECRET};
use super::material::{
    ec_material, ec_point, ec_public_material, oct_material, okp_material, okp_public_material, rsa_material, rsa_public_material,
    strip_zeros, Material,
};
use super::pem;
use crate::b64;
use crate::error::{Error, Result};
use aws_lc_rs::encoding::AsBigEndian;
use aws_lc_rs::signature;
use aws_lc_rs::{digest, rsa};
use serde_json::{Map, Value};

impl Key {
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
                    let parts = pem::rsa_private_parts(pair)?;
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

}

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
                    let der = pem::rsa_private_key_der([&n, &e, &d, &crt[0], &crt[1], &crt[2], &crt[3], &crt[4]])?;
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
