//! The secrets people sign in with, apart from any store: password policy,
//! hashing and verification. How they apply to users in a store is
//! `crate::users::password`.

pub mod password;
