//! OpenID Connect: the provider (OP) and the client (RP).

pub mod client;
pub mod discovery;
pub mod params;
pub mod provider;
pub mod redirect_uri;
pub mod upstream;
