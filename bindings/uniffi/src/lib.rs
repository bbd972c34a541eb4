//! Swift and Kotlin binding (uniffi proc-macros, no UDL). Only conversion of
//! types and errors lives here; behaviour is in the `idflow` core crate.
//! JSON values (claims, headers, JWKs) cross as JSON text, which every
//! platform parses with its own JSON library.

uniffi::setup_scaffolding!("idflow");

mod error;
mod flow;
mod jose;
mod oidc;
mod pkce;
mod provider;
mod session;

pub use error::IdflowError;
pub use flow::{FlowEngine, FlowProblem};
pub use oidc::{AuthorizationRequest, OidcClient, TokenResponse};
pub use jose::{JwksCache, Key, KeySet, VerifiedJws, VerifyOptions};
pub use pkce::PkcePair;
pub use provider::{HttpHeader, HttpResponse, Provider};
pub use session::{Session, SessionManager, SessionStatus, SessionStorage};
