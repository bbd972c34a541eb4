//! Node binding (napi-rs). Only conversion of types and errors lives here;
//! behaviour is in the `idflow` core crate. `node/index.js` arranges these
//! exports into the public `pkce`, `jwt`, `Key`, `KeySet`, `JwksCache` API.

mod error;
mod flow;
mod jose;
mod pkce;
mod oidc;
mod provider;
mod session;
