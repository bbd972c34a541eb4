//! Key material: the parsed aws-lc keys behind a [`Key`](super::Key), with
//! the public parts kept for JWK export, and the checks every import path
//! runs (RSA sizes, points on the curve) when material is built.

use crate::error::{Error, Result};
use super::key::{key_err, Curve, MAX_RSA_BITS, MIN_RSA_BITS, RSA_VERIFY};
use super::pem;
use aws_lc_rs::encoding::{AsBigEndian, EcPublicKeyUncompressedBin};
use aws_lc_rs::signature::{self, KeyPair as _, ParsedPublicKey};
use aws_lc_rs::{hmac, rsa};
use std::sync::OnceLock;

pub(super) enum Material {
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

pub(super) fn rsa_bits(n: &[u8]) -> usize {
    let skip = n.iter().take_while(|&&b| b == 0).count();
    match n.get(skip) {
        None => 0,
        Some(&first) => (n.len() - skip - 1) * 8 + (8 - first.leading_zeros() as usize),
    }
}

// ---- material builders ------------------------------------------------------

pub(super) fn oct_material(secret: Vec<u8>) -> Material {
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

pub(super) fn strip_zeros(v: &[u8]) -> Vec<u8> {
    let skip = v.iter().take_while(|&&b| b == 0).count();
    v[skip.min(v.len().saturating_sub(1))..].to_vec()
}

pub(super) fn rsa_public_material(n: Vec<u8>, e: Vec<u8>) -> Result<Material> {
    let (n, e) = (strip_zeros(&n), strip_zeros(&e));
    check_rsa_size(&n)?;
    // Parse once now so a bad key fails at import, not at first verify.
    ParsedPublicKey::new(RSA_VERIFY[0], pem::rsa_public_key_der(&n, &e)?)
        .map_err(|e| key_err(format!("RSA public key rejected: {e}")))?;
    Ok(Material::Rsa { n, e, verifiers: Default::default(), private: None })
}

pub(super) fn rsa_material(pair: rsa::KeyPair) -> Result<Material> {
    let public = pair.public_key();
    let n = public.modulus().big_endian_without_leading_zero().to_vec();
    let e = public.exponent().big_endian_without_leading_zero().to_vec();
    check_rsa_size(&n)?;
    Ok(Material::Rsa { n, e, verifiers: Default::default(), private: Some(pair) })
}

pub(super) fn ec_point(curve: Curve, x: &[u8], y: &[u8]) -> Result<Vec<u8>> {
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

pub(super) fn ec_public_material(curve: Curve, x: Vec<u8>, y: Vec<u8>) -> Result<Material> {
    let point = ec_point(curve, &x, &y)?;
    let verifier = ParsedPublicKey::new(curve.verification(), &point)
        .map_err(|_| key_err(format!("the point is not on {}", curve.name())))?;
    Ok(Material::Ec { curve, x, y, verifier, private: None })
}

pub(super) fn ec_material(curve: Curve, pair: signature::EcdsaKeyPair) -> Result<Material> {
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

pub(super) fn okp_public_material(x: Vec<u8>) -> Result<Material> {
    if x.len() != 32 {
        return Err(key_err("Ed25519 public key x must be 32 bytes"));
    }
    let verifier =
        ParsedPublicKey::new(&signature::ED25519, &x).map_err(|_| key_err("Ed25519 public key rejected"))?;
    Ok(Material::Okp { x, verifier, private: None })
}

pub(super) fn okp_material(pair: signature::Ed25519KeyPair) -> Result<Material> {
    let x = pair.public_key().as_ref().to_vec();
    let verifier = ParsedPublicKey::new(&signature::ED25519, &x)
        .map_err(|_| Error::internal("aws-lc rejected its own Ed25519 key"))?;
    Ok(Material::Okp { x, verifier, private: Some(pair) })
}
