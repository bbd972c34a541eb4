//! Passwords: the policy a new password meets, Argon2id hashing (PHC
//! strings), verification of the hashes users bring from other systems
//! (Argon2, bcrypt, PBKDF2), and the lockout after failed attempts.
//!
//! Hashing and verification use RustCrypto's `argon2`, `pbkdf2` and the
//! `bcrypt` crate; the digests compare in constant time. Both are slow on
//! purpose, so the async entry points run them on the blocking pool, never
//! on the runtime's worker threads.
//!
//! Passwords are normalised to Unicode NFKC before they are checked and
//! hashed (NIST SP 800-63B §5.1.1.2): "é" typed as one character or as "e"
//! and a combining accent is the same password. A hash made elsewhere of the
//! password's other form still verifies, and is replaced at the next sign-in.

use crate::error::{Error, ErrorCode, Result};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Argon2, Params, Version};
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::borrow::Cow;
use std::sync::OnceLock;
use unicode_normalization::{is_nfkc_quick, IsNormalized, UnicodeNormalization};

/// `password` in Unicode NFKC.
pub fn normalize(password: &str) -> Cow<'_, str> {
    match is_nfkc_quick(password.chars()) {
        IsNormalized::Yes => Cow::Borrowed(password),
        _ => Cow::Owned(password.nfkc().collect()),
    }
}

/// The `passwords` section of the project file; every field has a default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PasswordSettings {
    pub policy: PasswordPolicy,
    pub hashing: PasswordHashing,
    pub lockout: Lockout,
}

/// What a new password must be.
#[derive(Debug, Clone, PartialEq)]
pub struct PasswordPolicy {
    /// Characters (Unicode scalar values). Defaults to 12; at least 8.
    pub min_length: usize,
    /// Characters. Defaults to 128; at most 1024.
    pub max_length: usize,
    /// Refuse the built-in list of common passwords. Defaults to true.
    pub refuse_common: bool,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        PasswordPolicy { min_length: 12, max_length: 128, refuse_common: true }
    }
}

/// Argon2id's cost. The defaults are OWASP's (2025): 19 MiB, 2 passes, 1 lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordHashing {
    /// KiB of memory. Defaults to 19456; 8192 to 1048576.
    pub memory_kib: u32,
    /// Passes. Defaults to 2; 1 to 10.
    pub iterations: u32,
    /// Lanes. Defaults to 1; 1 to 16.
    pub parallelism: u32,
}

impl Default for PasswordHashing {
    fn default() -> Self {
        PasswordHashing { memory_kib: 19 * 1024, iterations: 2, parallelism: 1 }
    }
}

/// How many failed sign-ins lock a login id, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lockout {
    /// Failures that lock. Defaults to 5.
    pub max_failures: u64,
    /// Seconds from the first failure counted until the lock ends. Defaults to 900.
    pub lock_seconds: u64,
}

impl Default for Lockout {
    fn default() -> Self {
        Lockout { max_failures: 5, lock_seconds: 900 }
    }
}

/// The fields of `passwords` and its objects (the project's documentation
/// test reads them).
pub(crate) const FIELDS: [&str; 5] = ["minLength", "maxLength", "refuseCommon", "hashing", "lockout"];
pub(crate) const HASHING_FIELDS: [&str; 3] = ["memoryKiB", "iterations", "parallelism"];
pub(crate) const LOCKOUT_FIELDS: [&str; 2] = ["maxFailures", "lockSeconds"];

/// The largest password accepted anywhere, in bytes: verifying is work, and
/// a megabyte of "password" is an attack, not a password.
const MAX_PASSWORD_BYTES: usize = 4096;

fn object<'a>(v: &'a Value, what: &str, fields: &[&str]) -> Result<&'a Map<String, Value>> {
    let m = v.as_object().ok_or_else(|| Error::config(format!("{what} must be an object")))?;
    if let Some(k) = m.keys().find(|k| !fields.contains(&k.as_str())) {
        return Err(Error::config(format!("unknown field {what}.{k}")));
    }
    Ok(m)
}

fn number(m: &Map<String, Value>, what: &str, k: &str, range: std::ops::RangeInclusive<u64>, into: &mut u64) -> Result<()> {
    match m.get(k) {
        None | Some(Value::Null) => Ok(()),
        Some(v) => {
            *into = v
                .as_u64()
                .filter(|n| range.contains(n))
                .ok_or_else(|| Error::config(format!("{what}.{k} must be a whole number from {} to {}", range.start(), range.end())))?;
            Ok(())
        }
    }
}

impl PasswordSettings {
    /// `passwords` from the project file.
    pub fn from_json(value: Option<&Value>) -> Result<PasswordSettings> {
        let mut s = PasswordSettings::default();
        let Some(value) = value.filter(|v| !v.is_null()) else { return Ok(s) };
        let m = object(value, "passwords", &FIELDS)?;
        let (mut min, mut max) = (s.policy.min_length as u64, s.policy.max_length as u64);
        number(m, "passwords", "minLength", 8..=1024, &mut min)?;
        number(m, "passwords", "maxLength", 8..=1024, &mut max)?;
        if min > max {
            return Err(Error::config("passwords.minLength must not exceed passwords.maxLength"));
        }
        (s.policy.min_length, s.policy.max_length) = (min as usize, max as usize);
        if let Some(v) = m.get("refuseCommon").filter(|v| !v.is_null()) {
            s.policy.refuse_common = v.as_bool().ok_or_else(|| Error::config("passwords.refuseCommon must be true or false"))?;
        }
        if let Some(h) = m.get("hashing").filter(|v| !v.is_null()) {
            let h = object(h, "passwords.hashing", &HASHING_FIELDS)?;
            let mut mem = u64::from(s.hashing.memory_kib);
            let mut t = u64::from(s.hashing.iterations);
            let mut p = u64::from(s.hashing.parallelism);
            number(h, "passwords.hashing", "memoryKiB", 8192..=1_048_576, &mut mem)?;
            number(h, "passwords.hashing", "iterations", 1..=10, &mut t)?;
            number(h, "passwords.hashing", "parallelism", 1..=16, &mut p)?;
            // The ranges above keep every value within u32.
            s.hashing = PasswordHashing { memory_kib: mem as u32, iterations: t as u32, parallelism: p as u32 };
        }
        if let Some(l) = m.get("lockout").filter(|v| !v.is_null()) {
            let l = object(l, "passwords.lockout", &LOCKOUT_FIELDS)?;
            number(l, "passwords.lockout", "maxFailures", 1..=1000, &mut s.lockout.max_failures)?;
            number(l, "passwords.lockout", "lockSeconds", 1..=86_400, &mut s.lockout.lock_seconds)?;
        }
        Ok(s)
    }
}

fn weak(message: impl Into<String>) -> Error {
    Error::new(ErrorCode::WeakPassword, message)
}

/// The built-in list, read once.
fn common_passwords() -> &'static HashSet<&'static str> {
    static LIST: OnceLock<HashSet<&'static str>> = OnceLock::new();
    LIST.get_or_init(|| include_str!("common-passwords.txt").lines().filter(|l| !l.is_empty() && !l.starts_with('#')).collect())
}

impl PasswordPolicy {
    /// Checks a new password for the user whose login id is `login_id`;
    /// `weak_password` says which rule it breaks (never the password).
    pub fn check(&self, password: &str, login_id: Option<&str>) -> Result<()> {
        let password = normalize(password);
        let password = password.as_ref();
        let length = password.chars().count();
        if length < self.min_length {
            return Err(weak(format!("the password must have at least {} characters", self.min_length)));
        }
        if length > self.max_length || password.len() > MAX_PASSWORD_BYTES {
            return Err(weak(format!("the password must have at most {} characters", self.max_length)));
        }
        if password.chars().any(char::is_control) {
            return Err(weak("the password must not contain control characters"));
        }
        let folded = password.to_lowercase();
        if login_id.is_some_and(|id| !id.trim().is_empty() && folded == id.trim().to_lowercase()) {
            return Err(weak("the password must not be the login id"));
        }
        if self.refuse_common && common_passwords().contains(folded.as_str()) {
            return Err(weak("the password is one of the most common passwords"));
        }
        Ok(())
    }
}

/// The outcome of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    pub matches: bool,
    /// The hash is not Argon2id at the configured cost (an imported bcrypt
    /// or PBKDF2 hash, or older parameters): store a new one.
    pub needs_rehash: bool,
}

/// Which kind of stored hash a string is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashKind {
    /// `$argon2id$`, `$argon2i$`, `$argon2d$` (PHC).
    Argon2,
    /// `$2a$`, `$2b$`, `$2y$` (bcrypt).
    Bcrypt,
    /// `$pbkdf2-sha256$` / `$pbkdf2-sha512$` (PHC).
    Pbkdf2Phc,
    /// `pbkdf2_sha256$iterations$salt$hash` (Django).
    Pbkdf2Django,
}

fn bad_hash(message: impl Into<String>) -> Error {
    Error::invalid_request(message)
}

/// Recognises an imported hash and checks that it is well formed and that
/// verifying it costs a bounded amount of work; the hash itself is never
/// part of an error message.
pub fn check_hash(hash: &str) -> Result<HashKind> {
    if hash.len() > 512 {
        return Err(bad_hash("the password hash is too long"));
    }
    if hash.starts_with("$argon2") {
        let parsed = PasswordHash::new(hash).map_err(|_| bad_hash("the Argon2 hash is not a valid PHC string"))?;
        if !["argon2id", "argon2i", "argon2d"].contains(&parsed.algorithm.as_str()) {
            return Err(bad_hash("unknown Argon2 variant"));
        }
        let params = Params::try_from(&parsed).map_err(|_| bad_hash("the Argon2 hash has invalid parameters"))?;
        if params.m_cost() > 262_144 || params.t_cost() > 20 || params.p_cost() > 16 {
            return Err(bad_hash("the Argon2 hash's cost is beyond what idflow verifies (256 MiB, 20 passes, 16 lanes)"));
        }
        if parsed.hash.is_none() || parsed.salt.is_none() {
            return Err(bad_hash("the Argon2 hash lacks its salt or output"));
        }
        return Ok(HashKind::Argon2);
    }
    if ["$2a$", "$2b$", "$2y$"].iter().any(|p| hash.starts_with(p)) {
        let parts: bcrypt::HashParts = hash.parse().map_err(|_| bad_hash("the bcrypt hash is malformed"))?;
        if parts.get_cost() > 14 {
            return Err(bad_hash("the bcrypt hash's cost is beyond what idflow verifies (14)"));
        }
        return Ok(HashKind::Bcrypt);
    }
    if hash.starts_with("$pbkdf2-sha256$") || hash.starts_with("$pbkdf2-sha512$") {
        let parsed = PasswordHash::new(hash).map_err(|_| bad_hash("the PBKDF2 hash is not a valid PHC string"))?;
        let params = pbkdf2::Params::try_from(&parsed).map_err(|_| bad_hash("the PBKDF2 hash has invalid parameters"))?;
        if params.rounds > 2_000_000 || params.rounds < 1000 {
            return Err(bad_hash("PBKDF2 rounds must be 1000 to 2000000"));
        }
        if parsed.hash.is_none() || parsed.salt.is_none() {
            return Err(bad_hash("the PBKDF2 hash lacks its salt or output"));
        }
        return Ok(HashKind::Pbkdf2Phc);
    }
    if hash.starts_with("pbkdf2_sha256$") {
        django(hash)?;
        return Ok(HashKind::Pbkdf2Django);
    }
    Err(bad_hash("unknown password hash format; idflow reads Argon2 and PBKDF2 PHC strings, bcrypt and Django's pbkdf2_sha256"))
}

/// Django's `pbkdf2_sha256$iterations$salt$base64(hash)`.
fn django(hash: &str) -> Result<(u32, &str, Vec<u8>)> {
    let mut parts = hash.split('$');
    let (Some("pbkdf2_sha256"), Some(iterations), Some(salt), Some(out), None) = (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad_hash("the pbkdf2_sha256 hash is malformed"));
    };
    let iterations: u32 = iterations.parse().ok().filter(|i| (1000..=2_000_000).contains(i)).ok_or_else(|| bad_hash("PBKDF2 rounds must be 1000 to 2000000"))?;
    use base64::Engine as _;
    let out = base64::engine::general_purpose::STANDARD.decode(out).map_err(|_| bad_hash("the pbkdf2_sha256 hash is malformed"))?;
    if salt.is_empty() || out.len() < 16 || out.len() > 64 {
        return Err(bad_hash("the pbkdf2_sha256 hash is malformed"));
    }
    Ok((iterations, salt, out))
}

impl PasswordHashing {
    fn argon2(&self) -> Result<Argon2<'static>> {
        let params = Params::new(self.memory_kib, self.iterations, self.parallelism, None)
            .map_err(|e| Error::config(format!("invalid Argon2 parameters: {e}")))?;
        Ok(Argon2::new(argon2::Algorithm::Argon2id, Version::V0x13, params))
    }

    /// A new Argon2id PHC string for `password`, with a fresh random salt.
    pub fn hash(&self, password: &str) -> Result<String> {
        if password.len() > MAX_PASSWORD_BYTES {
            return Err(weak("the password is too long"));
        }
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).map_err(|_| Error::internal("no randomness for a salt"))?;
        let salt = SaltString::encode_b64(&salt).map_err(|_| Error::internal("salt encoding failed"))?;
        Ok(self.argon2()?.hash_password(normalize(password).as_bytes(), &salt).map_err(|_| Error::internal("password hashing failed"))?.to_string())
    }

    /// Checks `password` against a stored hash of any kind [`check_hash`]
    /// accepts. A wrong password is `matches: false`, never an error; a
    /// stored hash that cannot be read is `internal`.
    pub fn verify(&self, password: &str, stored: &str) -> Result<Checked> {
        let kind = check_hash(stored).map_err(|_| Error::internal("a stored password hash cannot be read"))?;
        if password.len() > MAX_PASSWORD_BYTES {
            return Ok(Checked { matches: false, needs_rehash: false });
        }
        let normalized = normalize(password);
        if self.matches(kind, &normalized, stored)? {
            return Ok(Checked { matches: true, needs_rehash: !self.is_current(stored) });
        }
        // A hash made elsewhere of the password as typed, not normalised:
        // it matches, and is replaced by the normalised one.
        if normalized != password && self.matches(kind, password, stored)? {
            return Ok(Checked { matches: true, needs_rehash: true });
        }
        Ok(Checked { matches: false, needs_rehash: false })
    }

    fn matches(&self, kind: HashKind, password: &str, stored: &str) -> Result<bool> {
        Ok(match kind {
            HashKind::Argon2 => {
                let parsed = PasswordHash::new(stored).map_err(|_| Error::internal("a stored password hash cannot be read"))?;
                Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok()
            }
            // Never the first 72 bytes only: a longer password must match whole.
            HashKind::Bcrypt => bcrypt::non_truncating_verify(password.as_bytes(), stored).unwrap_or(false),
            HashKind::Pbkdf2Phc => {
                let parsed = PasswordHash::new(stored).map_err(|_| Error::internal("a stored password hash cannot be read"))?;
                pbkdf2::Pbkdf2.verify_password(password.as_bytes(), &parsed).is_ok()
            }
            HashKind::Pbkdf2Django => {
                let (iterations, salt, expected) = django(stored)?;
                let mut out = vec![0u8; expected.len()];
                pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password.as_bytes(), salt.as_bytes(), iterations, &mut out);
                aws_lc_rs::constant_time::verify_slices_are_equal(&out, &expected).is_ok()
            }
        })
    }

    /// Whether `stored` is Argon2id (v19) at exactly this cost.
    pub fn is_current(&self, stored: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(stored) else { return false };
        let Ok(params) = Params::try_from(&parsed) else { return false };
        parsed.algorithm.as_str() == "argon2id"
            && parsed.version == Some(19)
            && (params.m_cost(), params.t_cost(), params.p_cost()) == (self.memory_kib, self.iterations, self.parallelism)
    }

    /// Spends what a real verification would when there is no hash to
    /// check (an unknown login id), so timing tells nothing.
    pub fn verify_nothing(&self, password: &str) {
        static DUMMY: OnceLock<std::sync::Mutex<Vec<(PasswordHashing, String)>>> = OnceLock::new();
        let cache = DUMMY.get_or_init(Default::default);
        let known = cache.lock().ok().and_then(|c| c.iter().find(|(h, _)| h == self).map(|(_, s)| s.clone()));
        let stored = match known {
            Some(s) => s,
            None => match self.hash("idflow: no such user") {
                Ok(s) => {
                    if let Ok(mut c) = cache.lock() {
                        c.push((*self, s.clone()));
                    }
                    s
                }
                Err(_) => return,
            },
        };
        let _ = self.verify(password, &stored);
    }

    /// [`PasswordHashing::hash`] on the blocking pool.
    pub async fn hash_async(&self, password: String) -> Result<String> {
        let me = *self;
        blocking(move || me.hash(&password)).await
    }

    /// [`PasswordHashing::verify`] (or [`PasswordHashing::verify_nothing`]
    /// for `None`) on the blocking pool.
    pub async fn verify_async(&self, password: String, stored: Option<String>) -> Result<Checked> {
        let me = *self;
        blocking(move || match stored {
            Some(s) => me.verify(&password, &s),
            None => {
                me.verify_nothing(&password);
                Ok(Checked { matches: false, needs_rehash: false })
            }
        })
        .await
    }
}

/// Runs a hash on the blocking pool, at most two per CPU at once: each takes
/// its Argon2 memory, so a burst of sign-ins waits rather than exhausting
/// memory and threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    static SLOTS: OnceLock<tokio::sync::Semaphore> = OnceLock::new();
    let slots = SLOTS.get_or_init(|| tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get() * 2)));
    let _slot = slots.acquire().await.map_err(|_| Error::internal("password hashing is shut down"))?;
    tokio::task::spawn_blocking(f).await.map_err(|_| Error::internal("password hashing panicked"))?
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cheap() -> PasswordHashing {
        PasswordHashing { memory_kib: 8192, iterations: 1, parallelism: 1 }
    }

    #[test]
    fn settings_have_defaults_ranges_and_named_errors() {
        assert_eq!(PasswordSettings::from_json(None).unwrap(), PasswordSettings::default());
        let s = PasswordSettings::from_json(Some(&json!({"minLength": 8, "hashing": {"memoryKiB": 8192, "iterations": 1}, "lockout": {"maxFailures": 3}}))).unwrap();
        assert_eq!((s.policy.min_length, s.hashing.memory_kib, s.hashing.iterations, s.hashing.parallelism), (8, 8192, 1, 1));
        assert_eq!((s.lockout.max_failures, s.lockout.lock_seconds), (3, 900));
        for (bad, names) in [
            (json!({"minLength": 4}), "passwords.minLength"),
            (json!({"minLength": 20, "maxLength": 10}), "minLength"),
            (json!({"hashing": {"memoryKiB": 1024}}), "passwords.hashing.memoryKiB"),
            (json!({"hashing": {"cost": 1}}), "passwords.hashing.cost"),
            (json!({"lockout": {"maxFailures": 0}}), "passwords.lockout.maxFailures"),
            (json!({"pepper": "x"}), "passwords.pepper"),
            (json!([]), "passwords"),
        ] {
            let e = PasswordSettings::from_json(Some(&bad)).unwrap_err();
            assert_eq!(e.code, ErrorCode::Config);
            assert!(e.message.contains(names), "{bad}: {e}");
        }
    }

    #[test]
    fn the_policy_names_the_rule_a_password_breaks() {
        let p = PasswordPolicy::default();
        p.check("correct horse battery", Some("ann@example.com")).unwrap();
        for (pw, rule) in [
            ("short", "at least 12"),
            ("qwerty123456", "most common"),
            ("QWERTY123456", "most common"),
            ("ann@example.com", "login id"),
            ("tab\there is bad", "control"),
        ] {
            let e = p.check(pw, Some("ann@example.com")).unwrap_err();
            assert_eq!(e.code, ErrorCode::WeakPassword, "{pw}");
            assert!(e.message.contains(rule) && !e.message.contains(pw), "{pw}: {e}");
        }
        assert!(p.check(&"x".repeat(129), None).is_err());
        // Length counts characters, not bytes.
        p.check("ééééééééééééé", None).unwrap();
    }

    #[test]
    fn argon2id_hashes_verify_and_know_their_cost() {
        let h = cheap();
        let stored = h.hash("correct horse battery").unwrap();
        assert!(stored.starts_with("$argon2id$v=19$m=8192,t=1,p=1$"), "{stored}");
        assert_eq!(h.verify("correct horse battery", &stored).unwrap(), Checked { matches: true, needs_rehash: false });
        assert_eq!(h.verify("correct horse batterz", &stored).unwrap(), Checked { matches: false, needs_rehash: false });
        let stronger = PasswordHashing { iterations: 2, ..h };
        assert_eq!(stronger.verify("correct horse battery", &stored).unwrap(), Checked { matches: true, needs_rehash: true });
        // Two hashes of one password differ (fresh salts).
        assert_ne!(h.hash("correct horse battery").unwrap(), stored);
    }

    #[test]
    fn imported_hashes_are_checked_before_they_are_trusted() {
        for bad in ["", "plain", "$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", "$2b$31$abc", "$pbkdf2-sha256$i=1,l=32$c2FsdA$aGFzaA", "pbkdf2_sha256$10$salt$aGFzaA=="] {
            assert_eq!(check_hash(bad).unwrap_err().code, ErrorCode::InvalidRequest, "{bad}");
        }
        let bcrypt = bcrypt::hash_with_salt("hunter2 hunter2", 4, [7u8; 16]).unwrap().format_for_version(bcrypt::Version::TwoB);
        assert_eq!(check_hash(&bcrypt).unwrap(), HashKind::Bcrypt);
        let h = cheap();
        assert_eq!(h.verify("hunter2 hunter2", &bcrypt).unwrap(), Checked { matches: true, needs_rehash: true });
        assert!(!h.verify("hunter3 hunter3", &bcrypt).unwrap().matches);
    }

    #[tokio::test]
    async fn the_async_forms_run_off_the_runtime() {
        let h = cheap();
        let stored = h.hash_async("correct horse battery".into()).await.unwrap();
        assert!(h.verify_async("correct horse battery".into(), Some(stored)).await.unwrap().matches);
        assert!(!h.verify_async("anything at all".into(), None).await.unwrap().matches);
    }

    #[test]
    fn passwords_compare_in_nfkc() {
        let h = PasswordHashing { memory_kib: 8192, iterations: 1, parallelism: 1 };
        let composed = "caf\u{e9} au lait, s'il vous pla\u{ee}t";
        let decomposed = "cafe\u{301} au lait, s'il vous plai\u{302}t";
        let stored = h.hash(composed).unwrap();
        assert_eq!(h.verify(decomposed, &stored).unwrap(), Checked { matches: true, needs_rehash: false });
        // Compatibility forms too: full-width letters are the ASCII ones.
        let wide = h.hash("\u{ff50}\u{ff41}\u{ff53}\u{ff53}word phrase").unwrap();
        assert!(h.verify("password phrase", &wide).unwrap().matches);
        // A hash made elsewhere of the unnormalised form still matches, and is replaced.
        let elsewhere = bcrypt::non_truncating_hash(decomposed, 4).unwrap();
        assert_eq!(h.verify(decomposed, &elsewhere).unwrap(), Checked { matches: true, needs_rehash: true });
        assert!(!h.verify("cafe au lait, s'il vous plait", &stored).unwrap().matches);
        // The policy counts characters after normalisation.
        let policy = PasswordPolicy { min_length: 8, ..PasswordPolicy::default() };
        assert!(policy.check("e\u{301}e\u{301}e\u{301}e\u{301}", None).is_err(), "four characters, eight code points");
    }

}
