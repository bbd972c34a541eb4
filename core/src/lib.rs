//! idflow: one Rust core for PKCE, JOSE/JWT, OpenID Connect and identity
//! flows, shared by the Python, Node, Swift and Kotlin bindings and the
//! `idflow` binary. Bindings only convert types and errors; all behaviour
//! lives here. See docs/ARCHITECTURE.md for the architecture.

#[cfg(feature = "uniffi")]
uniffi::setup_scaffolding!("idflow_core");
#[cfg(feature = "uniffi")]
mod ffi;

mod b64;
pub mod connectors;
pub mod credentials;
mod env;
pub mod error;
pub mod flow;
mod ids;
pub mod jose;
pub mod messaging;
pub mod oidc;
pub mod options;
mod json;
pub mod pkce;
mod placeholders;
pub mod project;
pub mod store;
pub mod user;
pub mod users;
pub mod vault;

pub use error::{Error, ErrorCode, ErrorFamily, Result};
