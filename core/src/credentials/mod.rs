//! The secrets people sign in with, apart from any store: password policy,
//! hashing and verification; authenticator-app codes and recovery codes;
//! the passkey relying party. How they apply to users in a store is
//! `crate::users::password`, `crate::users::totp` and
//! `crate::users::passkeys`.

pub mod passkey;
pub mod password;
pub mod totp;
