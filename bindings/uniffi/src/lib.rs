//! Swift and Kotlin binding (uniffi proc-macros, no UDL). Only conversion of
//! types and errors lives here; behaviour is in the `idflow` core crate.
//! The core's own records (settings, token sets, sessions) derive uniffi
//! in core behind its `uniffi` feature; JSON values (claims, headers, JWKs)
//! cross as JSON text, which every platform parses with its own library.

uniffi::setup_scaffolding!("idflow");

mod error;
mod flow;
mod jose;
mod oidc;
mod pkce;
mod provider;
mod session;

pub use error::IdflowError;

/// JSON text that must hold an object (claims, headers, flow inputs).
pub(crate) fn json_object(text: &str, what: &str) -> Result<serde_json::Map<String, serde_json::Value>, idflow::Error> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(m)) => Ok(m),
        _ => Err(idflow::Error::invalid_request(format!("{what} must be a JSON object"))),
    }
}
pub use flow::{FlowEngine, FlowProblem};
pub use oidc::{AuthorizationRequest, OidcClient, TokenResponse};
pub use jose::{JwksCache, Key, KeySet, VerifiedJws, VerifyOptions};
pub use pkce::PkcePair;
pub use provider::{HttpHeader, HttpResponse, Provider};
pub use session::{Session, SessionManager, SessionStatus, SessionStorage};
