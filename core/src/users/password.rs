//! Password sign-in, sign-up and changes over a store: the rules of
//! [`crate::credentials::password`] applied to users.
//!
//! A sign-in answers `invalid_credentials` alike for an unknown login id, a
//! user without a password and a wrong password, and spends the same work
//! on each. Attempts are counted per login id (known or not, so the lock
//! reveals nothing either) before they are checked; after
//! `lockout.maxFailures` the login id answers `user_locked` until
//! `lockout.lockSeconds` after the first counted attempt. A success clears
//! the count, and a hash that is not Argon2id at the configured cost is
//! replaced, unless the password changed meanwhile.

use crate::credentials::password::{check_hash, PasswordSettings};
use crate::error::{Error, ErrorCode, Result};
use crate::ids::random_id;
use crate::store::Store;
use crate::user::{normalize_login_id, User, UserStatus};

/// The store record kind of the failure counters.
const FAILURES: &str = "password_failures";

fn wrong() -> Error {
    Error::new(ErrorCode::InvalidCredentials, "the login id or password is wrong")
}

fn locked() -> Error {
    Error::new(ErrorCode::UserLocked, "too many failed sign-ins for this login id; try again later")
}

/// The counter's id: the user's when it exists (one count for all its login
/// ids), else the login id's; a digest, so the store holds no login ids in
/// clear.
fn counter_id(login_id: &str, user: Option<&User>) -> String {
    let key = match user {
        Some(u) => format!("user\u{0}{}", u.user_id),
        None => format!("login\u{0}{}", normalize_login_id(login_id)),
    };
    crate::b64::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, key.as_bytes()).as_ref())
}

/// Counts an attempt before it is checked, so parallel guesses cannot slip
/// past the lock: `user_locked` once the attempts of this window exceed
/// `maxFailures`. A success clears the count.
fn attempt(store: &dyn Store, settings: &PasswordSettings, counter: &str, now: u64) -> Result<u64> {
    let count = store.hit(FAILURES, counter, now + settings.lockout.lock_seconds)?;
    if count > settings.lockout.max_failures {
        return Err(locked());
    }
    Ok(count)
}

/// The error of a failed check: `user_locked` when it was the last allowed.
fn failed(settings: &PasswordSettings, count: u64) -> Error {
    if count >= settings.lockout.max_failures {
        locked()
    } else {
        wrong()
    }
}

/// Signs in with a login id and password; the user on success.
pub async fn sign_in(store: &dyn Store, settings: &PasswordSettings, login_id: &str, password: String, now: u64) -> Result<User> {
    let user = store.user_by_login_id(login_id)?;
    let counter = counter_id(login_id, user.as_ref());
    let count = attempt(store, settings, &counter, now)?;
    let stored = match &user {
        Some(u) => store.password_hash(&u.user_id)?,
        None => None,
    };
    let checked = settings.hashing.verify_async(password.clone(), stored.clone()).await?;
    let (Some(user), Some(stored), true) = (user, stored, checked.matches) else {
        return Err(failed(settings, count));
    };
    if user.status == UserStatus::Disabled {
        return Err(Error::new(ErrorCode::AccessDenied, "this user is disabled"));
    }
    store.delete_record(FAILURES, &counter)?;
    if checked.needs_rehash {
        // Best effort: the sign-in stands if the upgrade fails, and a
        // change made meanwhile (the compare fails) stands too.
        if let Ok(fresh) = settings.hashing.hash_async(password).await {
            let _ = store.set_password_hash(&user.user_id, Some(&fresh), Some(&stored));
        }
    }
    Ok(user)
}

/// Creates a user with `login_id` and a password that meets the policy;
/// `user_exists` when the login id is taken. The user and its hash are
/// stored together or not at all.
pub async fn sign_up(store: &dyn Store, settings: &PasswordSettings, login_id: &str, password: String, now: u64) -> Result<User> {
    if normalize_login_id(login_id).is_empty() {
        return Err(Error::invalid_request("the login id must not be empty"));
    }
    settings.policy.check(&password, Some(login_id))?;
    if store.user_by_login_id(login_id)?.is_some() {
        return Err(Error::new(ErrorCode::UserExists, "a user with this login id exists"));
    }
    let hash = settings.hashing.hash_async(password).await?;
    let user = User::new(random_id("U")?, login_id, now);
    store.create_user_with_password(&user, &hash)?;
    Ok(user)
}

/// Sets a user's password (a reset, or an administrator's); the policy
/// applies. Every earlier sign-in of the user ends
/// ([`super::sessions::sign_out_everywhere`]).
pub async fn set(store: &dyn Store, settings: &PasswordSettings, user_id: &str, password: String) -> Result<()> {
    let user = super::get_user(store, user_id)?;
    settings.policy.check(&password, user.login_ids.first().map(String::as_str))?;
    let hash = settings.hashing.hash_async(password).await?;
    store.set_password_hash(user_id, Some(&hash), None)?;
    super::sessions::sign_out_everywhere(store, user_id)
}

/// Changes a signed-in user's password: the current one must match (a
/// wrong one counts toward the lockout like a failed sign-in). Every
/// earlier sign-in of the user ends, the one that changed it included
/// (its flow, still running, signs in anew).
pub async fn change(store: &dyn Store, settings: &PasswordSettings, user_id: &str, current: String, new: String, now: u64) -> Result<()> {
    let user = super::get_user(store, user_id)?;
    let login_id = user.login_ids.first().cloned().unwrap_or_default();
    settings.policy.check(&new, Some(&login_id))?;
    let counter = counter_id(&login_id, Some(&user));
    let count = attempt(store, settings, &counter, now)?;
    let stored = store.password_hash(user_id)?;
    let checked = settings.hashing.verify_async(current, stored.clone()).await?;
    let (Some(stored), true) = (stored, checked.matches) else {
        return Err(failed(settings, count));
    };
    let hash = settings.hashing.hash_async(new).await?;
    if !store.set_password_hash(user_id, Some(&hash), Some(&stored))? {
        return Err(Error::invalid_request("the password changed meanwhile; try again"));
    }
    store.delete_record(FAILURES, &counter)?;
    super::sessions::sign_out_everywhere(store, user_id)
}

/// Stores a hash made elsewhere (a migration): Argon2, bcrypt or PBKDF2,
/// checked first. The next sign-in replaces it with Argon2id.
pub fn import_hash(store: &dyn Store, user_id: &str, hash: &str) -> Result<()> {
    check_hash(hash)?;
    store.set_password_hash(user_id, Some(hash), None)?;
    Ok(())
}

/// Removes a user's password and ends every sign-in of the user (whoever
/// knew it is signed out); `user_not_found` when the user is absent.
pub fn remove(store: &dyn Store, user_id: &str) -> Result<()> {
    store.set_password_hash(user_id, None, None)?;
    super::sessions::sign_out_everywhere(store, user_id)
}

/// Whether the user has a password.
pub fn has_password(store: &dyn Store, user_id: &str) -> Result<bool> {
    super::get_user(store, user_id)?;
    Ok(store.password_hash(user_id)?.is_some())
}

/// Clears the failures counted against a login id and its user (an
/// administrator unlocking it, or a reset).
pub fn unlock(store: &dyn Store, login_id: &str) -> Result<()> {
    let user = store.user_by_login_id(login_id)?;
    store.delete_record(FAILURES, &counter_id(login_id, None))?;
    if let Some(u) = user {
        store.delete_record(FAILURES, &counter_id(login_id, Some(&u)))?;
    }
    Ok(())
}
