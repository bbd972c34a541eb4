//! OpenID Connect: the provider (OP) and the client (RP).

pub mod client;
pub mod discovery;
pub mod params;
pub mod provider;
pub mod redirect_uri;
pub mod session;
pub mod social;

use crate::jose::Algorithm;

/// The left half of the hash of `token`, base64url: an ID token's `at_hash`
/// and `c_hash` (OIDC Core §3.1.3.6, §3.3.2.11), made by the provider and
/// checked by the client. The hash is the one of the signing `alg`.
pub(crate) fn half_hash(alg: Algorithm, token: &str) -> String {
    use aws_lc_rs::digest::{digest, SHA256, SHA384, SHA512};
    let algorithm = match alg {
        Algorithm::RS384 | Algorithm::PS384 | Algorithm::ES384 | Algorithm::HS384 => &SHA384,
        Algorithm::RS512 | Algorithm::PS512 | Algorithm::ES512 | Algorithm::HS512 | Algorithm::EdDSA => &SHA512,
        _ => &SHA256,
    };
    let d = digest(algorithm, token.as_bytes());
    crate::b64::encode(&d.as_ref()[..d.as_ref().len() / 2])
}
