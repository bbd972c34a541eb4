//! `pkce.*` (RFC 7636).

use crate::error::run;
use idflow::pkce::{self, Method};
use napi::bindgen_prelude::*;
use napi_derive::napi;

#[napi(object)]
pub struct PkcePair {
    pub verifier: String,
    pub challenge: String,
    pub method: String,
}

#[napi(js_name = "pkceGenerate")]
pub fn generate(env: Env, length: Option<u32>) -> napi::Result<PkcePair> {
    let p = run(&env, || pkce::generate(length.map(|l| l as usize)))?;
    Ok(PkcePair { verifier: p.verifier, challenge: p.challenge, method: p.method.as_str().to_owned() })
}

#[napi(js_name = "pkceGenerateVerifier")]
pub fn generate_verifier(env: Env, length: Option<u32>) -> napi::Result<String> {
    run(&env, || pkce::generate_verifier(length.map(|l| l as usize)))
}

#[napi(js_name = "pkceChallenge")]
pub fn challenge(env: Env, verifier: String, method: Option<String>, allow_plain: Option<bool>) -> napi::Result<String> {
    run(&env, || {
        pkce::challenge(&verifier, Method::parse(method.as_deref().unwrap_or("S256"))?, allow_plain.unwrap_or(false))
    })
}

#[napi(js_name = "pkceVerify")]
pub fn verify(
    env: Env,
    verifier: String,
    challenge: String,
    method: Option<String>,
    allow_plain: Option<bool>,
) -> napi::Result<bool> {
    run(&env, || {
        pkce::verify(&verifier, &challenge, Method::parse(method.as_deref().unwrap_or("S256"))?, allow_plain.unwrap_or(false))
    })
}
