//! The secrets people sign in with, apart from any store: password policy,
//! hashing and verification; authenticator-app codes and recovery codes.
//! How they apply to users in a store is `crate::users::password` and
//! `crate::users::totp`.

pub mod password;
pub mod totp;
