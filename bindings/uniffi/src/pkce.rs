//! PKCE (RFC 7636).

use crate::error::{guard, IdflowError};
use idflow::pkce::{self, Method};

#[derive(Debug, Clone, uniffi::Record)]
pub struct PkcePair {
    pub verifier: String,
    pub challenge: String,
    pub method: String,
}

#[uniffi::export(default(length = None))]
pub fn pkce_generate(length: Option<u32>) -> Result<PkcePair, IdflowError> {
    let p = guard(|| pkce::generate(length.map(|l| l as usize)))?;
    Ok(PkcePair { verifier: p.verifier, challenge: p.challenge, method: p.method.as_str().to_owned() })
}

#[uniffi::export(default(length = None))]
pub fn pkce_generate_verifier(length: Option<u32>) -> Result<String, IdflowError> {
    guard(|| pkce::generate_verifier(length.map(|l| l as usize)))
}

#[uniffi::export(default(method = "S256", allow_plain = false))]
pub fn pkce_challenge(verifier: String, method: String, allow_plain: bool) -> Result<String, IdflowError> {
    guard(|| pkce::challenge(&verifier, Method::parse(&method)?, allow_plain))
}

#[uniffi::export(default(method = "S256", allow_plain = false))]
pub fn pkce_verify(verifier: String, challenge: String, method: String, allow_plain: bool) -> Result<bool, IdflowError> {
    guard(|| pkce::verify(&verifier, &challenge, Method::parse(&method)?, allow_plain))
}
