//! JOSE: keys, key sets, compact JWS/JWT signing and strict verification, and
//! a remote JWKS cache. Everything cryptographic runs on aws-lc with keys
//! parsed once; the strictness rules live in [`jwt`].

mod alg;
pub mod jwks_cache;
pub mod jwt;
mod jwk;
mod key;
mod keyset;
mod material;
mod pem;
pub mod mint;
mod scan;

pub use alg::{Algorithm, KeyType};
pub use jwks_cache::{JwksCache, JwksCacheOptions};
pub use jwt::{decode_unverified, sign, sign_json, sign_payload, verify, verify_jws, verify_payload, Jws, Token, Validation, ValidationOptions, VerifiedPayload};
pub use key::{Curve, Key, KeyOp, MIN_HMAC_SECRET, MIN_RSA_BITS};
pub use keyset::{KeySet, KeySource};
pub use mint::{add_custom_claims, Minter, TokenKind};
