//! Core errors become JS `Error`s whose `.code` is the stable idflow code.

use idflow::{Error, ErrorCode};
use napi::bindgen_prelude::*;
use std::result::Result;
use napi::JsValue;
use napi_derive::napi;

/// Builds a JS `Error` with `.code` and `.family`, wrapped so napi throws
/// (or rejects with) this very object.
pub(crate) fn js_err(env: &Env, err: Error) -> napi::Error {
    let built = (|| -> napi::Result<napi::Error> {
        let mut obj = env.create_error(napi::Error::new(Status::GenericFailure, err.message.clone()))?;
        obj.set_named_property("code", err.code.as_str())?;
        obj.set_named_property("family", err.code.family().as_str())?;
        obj.set_named_property("name", "IdflowError")?;
        Ok(napi::Error::from(obj.to_unknown()))
    })();
    built.unwrap_or_else(|e| e)
}

pub(crate) use idflow::error::guard;

/// `guard`, then convert the error for JS.
pub(crate) fn run<T>(env: &Env, f: impl FnOnce() -> Result<T, Error>) -> napi::Result<T> {
    guard(f).map_err(|e| js_err(env, e))
}

#[napi(js_name = "errorCodes")]
pub fn error_codes() -> Vec<&'static str> {
    ErrorCode::ALL.iter().map(|c| c.as_str()).collect()
}

/// Test hook: throws the error for `code`.
#[napi(js_name = "_debugRaise")]
pub fn debug_raise(env: Env, code: String) -> napi::Result<()> {
    let code = ErrorCode::parse(&code).unwrap_or(ErrorCode::Internal);
    Err(js_err(&env, Error::new(code, "raised by _debugRaise")))
}

/// Test hook: panics inside the guard, to prove panics surface as `internal`.
#[napi(js_name = "_debugPanic")]
#[allow(clippy::panic)]
pub fn debug_panic(env: Env) -> napi::Result<()> {
    run(&env, || -> Result<(), Error> { panic!("deliberate panic for the binding test") })
}
