//! Authenticator apps for users in a store. Enrollment is two steps: `begin`
//! keeps a new secret (sealed by the vault) beside the execution that asked,
//! and `confirm` makes it the user's once a code from the app checks, giving
//! ten single-use recovery codes (kept as SHA-256 digests). `verify` checks a
//! code or a recovery code: each 30-second step works once per user (RFC 6238
//! §5.2), no step older than the last one used works, and failures count
//! toward a lockout like passwords' (`passwords.lockout`), counted before the
//! check.

use crate::credentials::password::Lockout;
use crate::credentials::totp::{normalize_recovery_code, qr_svg, recovery_code, Authenticator, RECOVERY_CODES};
use crate::error::{Error, ErrorCode, Result};
use crate::store::Store;
use crate::user::User;
use crate::vault::Vault;
use serde_json::{json, Value};

/// The user's authenticator: `{sealed, lastStep, recovery: [digest], createdAt}`.
const ENROLLED: &str = "totp";
/// A secret waiting for its first code, by the enrollment's id (an execution).
const PENDING: &str = "totp_pending";
/// Steps and recovery codes already used, by user.
const USED: &str = "totp_used";
/// Failure counters, by user.
const FAILURES: &str = "totp_failures";
/// How long a begun enrollment waits for its first code.
const PENDING_TTL: u64 = 15 * 60;

/// What an app needs to enroll: the URI (and its QR code) or the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrollment {
    pub secret: String,
    pub uri: String,
    pub qr_svg: String,
}

/// How `verify` succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    Code,
    /// A recovery code; `left` remain.
    RecoveryCode { left: usize },
}

fn invalid() -> Error {
    Error::new(ErrorCode::InvalidCode, "the authenticator code is wrong or was used already")
}

fn digest(s: &str) -> String {
    crate::b64::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, s.as_bytes()).as_ref())
}

fn secret_of(vault: &Vault, id: &str, record: &Value) -> Result<Vec<u8>> {
    let plain = vault.open_sealed(id, &record["sealed"])?;
    plain.as_str().and_then(crate::b64::decode).ok_or_else(|| Error::new(ErrorCode::Storage, "a stored authenticator secret is malformed"))
}

fn authenticator(secret: &[u8], issuer: &str, user: &User) -> Result<Authenticator> {
    Authenticator::new(secret, issuer, user.login_ids.first().map_or(user.user_id.as_str(), String::as_str))
}

fn enrollment(a: &Authenticator) -> Result<Enrollment> {
    let uri = a.uri()?;
    Ok(Enrollment { secret: a.secret_base32(), qr_svg: qr_svg(&uri)?, uri })
}

/// Starts enrolling `user`: a new secret kept (sealed) under `id` for 15
/// minutes. Shown to the user as [`Enrollment`] (issuer `issuer`).
pub fn begin(store: &dyn Store, vault: &Vault, id: &str, user: &User, issuer: &str, now: u64) -> Result<Enrollment> {
    let secret = Authenticator::generate_secret()?;
    let a = authenticator(&secret, issuer, user)?;
    let sealed = vault.seal(&format!("{PENDING}:{id}"), &Value::String(crate::b64::encode(&secret)))?;
    store.put_record(PENDING, id, &json!({"userId": user.user_id, "sealed": sealed}), Some(now + PENDING_TTL))?;
    enrollment(&a)
}

/// The enrollment begun under `id`, to show it again; `None` once it is
/// confirmed or expired.
pub fn pending(store: &dyn Store, vault: &Vault, id: &str, issuer: &str) -> Result<Option<Enrollment>> {
    let Some(record) = store.record(PENDING, id)? else {
        return Ok(None);
    };
    let user_id = record["userId"].as_str().unwrap_or_default();
    let user = super::get_user(store, user_id)?;
    let secret = secret_of(vault, &format!("{PENDING}:{id}"), &record)?;
    enrollment(&authenticator(&secret, issuer, &user)?).map(Some)
}

/// Finishes the enrollment begun under `id` for `user_id` with a code from
/// the app: the secret becomes the user's (replacing any earlier one) and
/// the recovery codes are returned, the only time they are seen.
pub fn confirm(store: &dyn Store, vault: &Vault, lockout: &Lockout, id: &str, user_id: &str, code: &str, now: u64) -> Result<Vec<String>> {
    let record = store.record(PENDING, id)?.ok_or_else(|| Error::new(ErrorCode::ExpiredCode, "the enrollment expired; start it again"))?;
    if record["userId"].as_str() != Some(user_id) {
        return Err(Error::new(ErrorCode::AccessDenied, "the enrollment belongs to another user"));
    }
    let user = super::get_user(store, user_id)?;
    let count = attempt(store, lockout, user_id, now)?;
    let secret = secret_of(vault, &format!("{PENDING}:{id}"), &record)?;
    let Some(step) = authenticator(&secret, "", &user)?.check(code, now) else {
        return Err(failed(lockout, count));
    };
    let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| recovery_code()).collect::<Result<_>>()?;
    let recovery: Vec<String> = codes.iter().map(|c| digest(&format!("{user_id}\u{0}{}", c.replace('-', "")))).collect();
    let sealed = vault.seal(&format!("{ENROLLED}:{user_id}"), &Value::String(crate::b64::encode(&secret)))?;
    store.put_record(ENROLLED, user_id, &json!({"sealed": sealed, "lastStep": step, "recovery": recovery, "createdAt": now}), None)?;
    store.insert_record(USED, &format!("{user_id}\u{0}step\u{0}{step}"), &json!(true), Some(now + 120))?;
    store.delete_record(PENDING, id)?;
    store.delete_record(FAILURES, user_id)?;
    Ok(codes)
}

/// Checks a code from the user's app, or one of its recovery codes.
/// `invalid_code` for a wrong or used one, `user_locked` after too many
/// failures, `access_denied` when the user has no authenticator.
pub fn verify(store: &dyn Store, vault: &Vault, lockout: &Lockout, user_id: &str, code: &str, now: u64) -> Result<Verified> {
    let user = super::get_user(store, user_id)?;
    let mut record = store.record(ENROLLED, user_id)?.ok_or_else(|| Error::new(ErrorCode::AccessDenied, "the user has no authenticator app"))?;
    let count = attempt(store, lockout, user_id, now)?;
    if let Some(normalized) = normalize_recovery_code(code) {
        let d = digest(&format!("{user_id}\u{0}{normalized}"));
        let known = record["recovery"].as_array().is_some_and(|a| a.iter().any(|v| v.as_str() == Some(d.as_str())));
        // The marker makes a code single use even when two requests race.
        if !known || !store.insert_record(USED, &format!("{user_id}\u{0}recovery\u{0}{d}"), &json!(true), None)? {
            return Err(failed(lockout, count));
        }
        let left: Vec<Value> = record["recovery"].as_array().map(|a| a.iter().filter(|v| v.as_str() != Some(d.as_str())).cloned().collect()).unwrap_or_default();
        let n = left.len();
        record["recovery"] = Value::Array(left);
        store.put_record(ENROLLED, user_id, &record, None)?;
        store.delete_record(FAILURES, user_id)?;
        return Ok(Verified::RecoveryCode { left: n });
    }
    let secret = secret_of(vault, &format!("{ENROLLED}:{user_id}"), &record)?;
    let step = authenticator(&secret, "", &user)?.check(code, now);
    let last = record["lastStep"].as_u64().unwrap_or(0);
    let fresh = match step {
        Some(s) if s > last => store.insert_record(USED, &format!("{user_id}\u{0}step\u{0}{s}"), &json!(true), Some(now + 120))?,
        _ => false,
    };
    let Some(step) = step.filter(|_| fresh) else {
        return Err(failed(lockout, count));
    };
    record["lastStep"] = step.into();
    store.put_record(ENROLLED, user_id, &record, None)?;
    store.delete_record(FAILURES, user_id)?;
    Ok(Verified::Code)
}

/// Whether the user has an authenticator app; `user_not_found` when absent.
pub fn is_enrolled(store: &dyn Store, user_id: &str) -> Result<bool> {
    super::get_user(store, user_id)?;
    Ok(store.record(ENROLLED, user_id)?.is_some())
}

/// Recovery codes the user has left (0 without an authenticator).
pub fn recovery_codes_left(store: &dyn Store, user_id: &str) -> Result<usize> {
    super::get_user(store, user_id)?;
    Ok(store.record(ENROLLED, user_id)?.and_then(|r| r["recovery"].as_array().map(Vec::len)).unwrap_or(0))
}

/// Removes the user's authenticator app and its recovery codes.
pub fn remove(store: &dyn Store, user_id: &str) -> Result<()> {
    super::get_user(store, user_id)?;
    store.delete_record(ENROLLED, user_id)
}

/// Forgets the user's authenticator (the user is deleted).
pub(crate) fn forget(store: &dyn Store, user_id: &str) -> Result<()> {
    store.delete_record(ENROLLED, user_id)?;
    store.delete_record(FAILURES, user_id)
}

fn attempt(store: &dyn Store, lockout: &Lockout, user_id: &str, now: u64) -> Result<u64> {
    let count = store.hit(FAILURES, user_id, now + lockout.lock_seconds)?;
    if count > lockout.max_failures {
        return Err(Error::new(ErrorCode::UserLocked, "too many wrong authenticator codes; try again later"));
    }
    Ok(count)
}

fn failed(lockout: &Lockout, count: u64) -> Error {
    if count >= lockout.max_failures {
        Error::new(ErrorCode::UserLocked, "too many wrong authenticator codes; try again later")
    } else {
        invalid()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::store::MemoryStore;

    fn setup() -> (MemoryStore, Vault, User) {
        let store = MemoryStore::new();
        let vault = Vault::open(None, &store).unwrap();
        let user = User::new("U1".into(), "ann@example.com", 0);
        store.create_user(&user).unwrap();
        (store, vault, user)
    }

    fn code(e: &Enrollment, time: u64) -> String {
        let secret = totp_rs::Secret::try_from_base32(&e.secret).unwrap();
        Authenticator::new(secret.as_bytes(), "x", "y").unwrap().code_at(time)
    }

    #[test]
    fn enroll_verify_once_and_recover() {
        let (store, vault, user) = setup();
        let lock = Lockout::default();
        let now = crate::ids::now_secs();
        let e = begin(&store, &vault, "E1", &user, "Example", now).unwrap();
        assert!(e.uri.starts_with("otpauth://totp/Example:ann%40example.com?secret="), "{}", e.uri);
        assert!(pending(&store, &vault, "E1", "Example").unwrap().is_some_and(|p| p.uri == e.uri), "shown again");
        assert!(!is_enrolled(&store, "U1").unwrap());
        let wrong = if code(&e, now) == "000000" { "000001" } else { "000000" };
        assert_eq!(confirm(&store, &vault, &lock, "E1", "U1", wrong, now).unwrap_err().code, ErrorCode::InvalidCode);
        assert_eq!(confirm(&store, &vault, &lock, "E1", "U2", &code(&e, now), now).unwrap_err().code, ErrorCode::AccessDenied);
        let codes = confirm(&store, &vault, &lock, "E1", "U1", &code(&e, now), now).unwrap();
        assert_eq!(codes.len(), 10);
        assert!(is_enrolled(&store, "U1").unwrap());
        assert!(pending(&store, &vault, "E1", "Example").unwrap().is_none());
        // The step used to confirm does not sign in again; the next one does, once.
        assert_eq!(verify(&store, &vault, &lock, "U1", &code(&e, now), now).unwrap_err().code, ErrorCode::InvalidCode);
        assert_eq!(verify(&store, &vault, &lock, "U1", &code(&e, now + 60), now + 60).unwrap(), Verified::Code);
        assert_eq!(verify(&store, &vault, &lock, "U1", &code(&e, now + 60), now + 60).unwrap_err().code, ErrorCode::InvalidCode);
        // The step before the last used one is in the window but never used:
        // refused all the same (RFC 6238 §5.2).
        assert_eq!(verify(&store, &vault, &lock, "U1", &code(&e, now + 30), now + 60).unwrap_err().code, ErrorCode::InvalidCode);
        // A recovery code works once, however it is typed.
        assert_eq!(verify(&store, &vault, &lock, "U1", &codes[3].to_lowercase(), now + 60).unwrap(), Verified::RecoveryCode { left: 9 });
        assert_eq!(verify(&store, &vault, &lock, "U1", &codes[3], now + 60).unwrap_err().code, ErrorCode::InvalidCode);
        assert_eq!(verify(&store, &vault, &lock, "U1", &code(&e, now + 90), now + 90).unwrap(), Verified::Code, "failures were cleared");
        assert_eq!(recovery_codes_left(&store, "U1").unwrap(), 9);
        remove(&store, "U1").unwrap();
        assert_eq!(verify(&store, &vault, &lock, "U1", &code(&e, now + 120), now + 120).unwrap_err().code, ErrorCode::AccessDenied);
        assert_eq!(is_enrolled(&store, "U9").unwrap_err().code, ErrorCode::UserNotFound);
    }

    #[test]
    fn guesses_lock_the_user_before_they_are_checked() {
        let (store, vault, user) = setup();
        let lock = Lockout { max_failures: 3, lock_seconds: 900 };
        let now = crate::ids::now_secs();
        let e = begin(&store, &vault, "E1", &user, "Example", now).unwrap();
        confirm(&store, &vault, &lock, "E1", "U1", &code(&e, now), now).unwrap();
        let right = code(&e, now + 30);
        let wrong = if right == "000000" { "000001" } else { "000000" };
        assert_eq!(verify(&store, &vault, &lock, "U1", wrong, now + 30).unwrap_err().code, ErrorCode::InvalidCode);
        assert_eq!(verify(&store, &vault, &lock, "U1", wrong, now + 30).unwrap_err().code, ErrorCode::InvalidCode);
        assert_eq!(verify(&store, &vault, &lock, "U1", wrong, now + 30).unwrap_err().code, ErrorCode::UserLocked);
        assert_eq!(verify(&store, &vault, &lock, "U1", &right, now + 30).unwrap_err().code, ErrorCode::UserLocked, "even the right code, while locked");
    }

    #[test]
    fn a_secret_is_sealed_to_its_record() {
        let (store, vault, user) = setup();
        let now = crate::ids::now_secs();
        let e = begin(&store, &vault, "E1", &user, "Example", now).unwrap();
        let record = store.record(PENDING, "E1").unwrap().unwrap();
        assert!(!record.to_string().contains(&e.secret), "the secret is not kept in clear");
        store.put_record(PENDING, "E2", &record, None).unwrap();
        assert_eq!(pending(&store, &vault, "E2", "Example").map(|_| ()).unwrap_err().code, ErrorCode::Storage, "a sealed secret cannot move to another record");
    }
}
