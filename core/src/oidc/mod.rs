//! OpenID Connect: the provider (OP) side. The client (RP) side arrives
//! with the social-login work.

pub mod provider;
