//! The provider's signing keys, kept in the store (`signing_key` records)
//! with the private key sealed by the data key ([`Vault`]): generated on
//! first start, rotated at run time. A rotated-in key is published at once
//! and signs from its `activeFrom` (after `signing.prepublish`, so relying
//! parties' JWKS caches hold it first); the newest key whose time has come
//! signs, and a key it superseded stays published until every token it
//! signed has expired. Every process reloads the keys from the store every
//! few seconds ([`KEY_REFRESH_SECS`]), so a rotation reaches all servers on
//! one database without a restart. A record from before sealing (a plain
//! private JWK) is sealed when it is first loaded; one retired by an older
//! version (`retiredAt`) counts as superseded then. The `impl Provider`
//! at the end is the provider's side: the keys in use, reloads, rotation.

use crate::error::{Error, ErrorCode, Result};
use crate::ids::now_secs;
use crate::jose::{Algorithm, Key, KeySet};
use crate::store::Store;
use crate::vault::Vault;
use super::state::{Records, SigningKey};
use serde_json::{json, Value};
use std::sync::Arc;

/// What the data key's seal of a key is bound to: `signing_key:{id}`.
const KIND: &str = <SigningKey as super::state::Record>::KIND;

/// How often a provider reloads its keys from the store (seconds).
pub const KEY_REFRESH_SECS: u64 = 5;

/// How much longer than its tokens a superseded key stays published: the
/// reload interval and a minute of clock skew between servers.
const SUPERSEDED_GRACE: u64 = KEY_REFRESH_SECS + 60;

/// How long a new key is published before it signs, by default (seconds).
pub const DEFAULT_PREPUBLISH: u64 = 3600;

/// The keys a provider uses: the active private key and the published set.
#[derive(Debug, Clone)]
pub struct SigningKeys {
    pub active: Key,
    pub alg: Algorithm,
    /// Public keys of the active key and of retired keys still in use.
    pub published: KeySet,
    /// The JWKS document, serialized once.
    pub jwks_json: String,
}

/// A stored key: the key, its algorithm, when it signs from, and when an
/// older version retired it (if it did).
fn stored_key(records: Records<'_>, vault: &Vault, id: &str, record: SigningKey) -> Result<(Key, Algorithm, u64, Option<u64>)> {
    let bad = || Error::new(ErrorCode::Storage, "a stored signing key is malformed");
    let alg = Algorithm::parse(&record.alg)?;
    let active_from = record.active_from.unwrap_or(record.created_at);
    let retired = record.retired_at;
    let key = match (&record.sealed, &record.jwk) {
        (Some(sealed), _) => {
            let jwk = vault.open_sealed(&format!("{KIND}:{id}"), sealed)?;
            Key::from_jwk(jwk.as_object().ok_or_else(bad)?)?
        }
        (None, Some(jwk)) => {
            let key = Key::from_jwk(jwk)?;
            // Written before keys were sealed: seal it now.
            let sealed = SigningKey { sealed: Some(vault.seal(&format!("{KIND}:{id}"), &Value::Object(jwk.clone()))?), jwk: None, ..record.clone() };
            records.put(id, &sealed, None)?;
            key
        }
        (None, None) => return Err(bad()),
    };
    Ok((key, alg, active_from, retired))
}

/// The record id of the first key: every process that starts on an empty
/// store proposes its key under this one id, and only the first write wins.
const FIRST_KEY_ID: &str = "000000000000000000000000-first";

fn new_key(records: Records<'_>, vault: &Vault, alg: Algorithm, first: bool, prepublish: u64) -> Result<(String, u64)> {
    let key = Key::generate(alg, None)?;
    let kid = key.kid().to_owned();
    let jwk = key.to_jwk(true)?;
    let now = now_secs();
    // Ids sort by creation time (ns), so the newest key is the last record.
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let id = if first { FIRST_KEY_ID.to_owned() } else { format!("{nanos:024}-{kid}") };
    let active_from = now + prepublish;
    let record = SigningKey {
        kid: kid.clone(),
        alg: alg.as_str().to_owned(),
        created_at: now,
        active_from: Some(active_from),
        retired_at: None,
        sealed: Some(vault.seal(&format!("{KIND}:{id}"), &Value::Object(jwk))?),
        jwk: None,
    };
    if first {
        records.insert(&id, &record, None)?;
    } else {
        records.put(&id, &record, None)?;
    }
    Ok((kid, active_from))
}

/// Loads the keys, generating the first one with `alg` when there is none.
/// Processes starting together on a new store agree on one first key.
/// `max_token_ttl` bounds how long a retired key stays published.
pub fn load_or_create(store: &dyn Store, vault: &Vault, alg: Algorithm, max_token_ttl: u64) -> Result<SigningKeys> {
    if Records(store).all::<SigningKey>()?.is_empty() {
        new_key(Records(store), vault, alg, true, 0)?;
    }
    load(store, vault, max_token_ttl)
}

/// Loads the keys already in the store.
pub fn load(store: &dyn Store, vault: &Vault, max_token_ttl: u64) -> Result<SigningKeys> {
    load_at(store, vault, max_token_ttl, now_secs())
}

/// The keys as they stand at `now`: the newest key whose `activeFrom` has
/// come signs; keys still waiting are published; a key superseded (by a
/// newer key's activation, or retired by an older version) is published
/// until `max_token_ttl` after that.
fn load_at(store: &dyn Store, vault: &Vault, max_token_ttl: u64, now: u64) -> Result<SigningKeys> {
    let mut keys = Vec::new();
    for (id, record) in Records(store).all::<SigningKey>()? {
        keys.push(stored_key(Records(store), vault, &id, record)?);
    }
    // In the order they sign: by `activeFrom`, then by creation (record
    // ids, made from the rotating host's clock, only break ties), so a
    // rotation from a host whose clock is behind still takes over.
    keys.sort_by_key(|(_, _, from, _)| *from);
    let signing = keys.iter().rposition(|(_, _, from, retired)| *from <= now && retired.is_none());
    let mut published = Vec::new();
    for (i, (key, alg, from, retired)) in keys.iter().enumerate() {
        // When a newer key first signed (never before this one could).
        let superseded = keys[i + 1..].iter().map(|(_, _, f, _)| *f).filter(|f| *f <= now).min().map(|f| f.max(*from));
        let ended = match (superseded, retired) {
            (Some(s), Some(r)) => Some(s.min(*r)),
            (s, r) => s.or(*r),
        };
        // Servers may sign with a superseded key until their next reload,
        // and clocks differ: it stays published that much longer.
        let shown = Some(i) == signing || *from > now || ended.is_some_and(|t| t + max_token_ttl + SUPERSEDED_GRACE > now);
        if shown {
            published.push(key.public_key()?.with_alg(*alg)?);
        }
    }
    let (active, alg) = signing.map(|i| (keys[i].0.clone(), keys[i].1)).ok_or_else(|| Error::config("the store holds no active signing key"))?;
    let active = active.with_alg(alg)?;
    published.reverse(); // newest first
    let published = KeySet::new(published)?;
    let jwks_json = Value::Object(published.to_public_jwks()?).to_string();
    Ok(SigningKeys { active, alg, published, jwks_json })
}

/// A key added by [`rotate`].
#[derive(Debug, Clone, PartialEq)]
pub struct Rotation {
    pub kid: String,
    pub alg: Algorithm,
    /// When it starts signing (Unix seconds).
    pub signs_from: u64,
}

impl Rotation {
    /// `{"kid", "alg", "signsFrom"}`.
    pub fn to_json(&self) -> Value {
        json!({"kid": self.kid, "alg": self.alg.as_str(), "signsFrom": self.signs_from})
    }
}

/// Adds a new key (with `alg`): published at once, it signs `prepublish`
/// seconds from now, and the key it supersedes stays published until its
/// tokens expire. Every provider on the store picks it up within
/// [`KEY_REFRESH_SECS`].
pub fn rotate(store: &dyn Store, vault: &Vault, alg: Algorithm, prepublish: u64) -> Result<Rotation> {
    if alg.key_type() == crate::jose::KeyType::Oct {
        return Err(Error::invalid_request("a signing key must be asymmetric (RS*, PS*, ES*, EdDSA)"));
    }
    let (kid, signs_from) = new_key(Records(store), vault, alg, false, prepublish)?;
    Ok(Rotation { kid, alg, signs_from })
}

/// The signing keys in use and the discovery document that names their algorithms.
pub(super) struct Live {
    pub(super) keys: Arc<SigningKeys>,
    pub(super) discovery_json: String,
}

impl super::Provider {
    /// The signing keys as they stand (reloaded every few seconds).
    pub fn signing_keys(&self) -> Arc<SigningKeys> {
        self.keys()
    }

    pub(super) fn live(&self) -> Arc<Live> {
        use std::sync::atomic::Ordering::Relaxed;
        let now = crate::ids::now_secs();
        let last = self.keys_loaded.load(Relaxed);
        // One request per interval reloads; the others keep the keys they have.
        if now >= last + KEY_REFRESH_SECS && self.keys_loaded.compare_exchange(last, now, Relaxed, Relaxed).is_ok() {
            // A store that cannot be read now keeps the keys in use; the
            // metrics count it (idflow_key_reload_failures_total).
            if self.reload_keys().is_err() {
                self.metrics.key_reload_failed();
            }
        }
        self.live.read().map_or_else(|p| p.into_inner().clone(), |l| l.clone())
    }

    pub(crate) fn keys(&self) -> Arc<SigningKeys> {
        self.live().keys.clone()
    }

    /// Adds a signing key (with `alg`, by default `signing.alg`) that every
    /// provider on the store publishes within seconds and signs with after
    /// `prepublish` seconds (by default `signing.prepublish`); the key it
    /// supersedes stays published until its tokens expire.
    pub fn rotate_keys(&self, alg: Option<&str>, prepublish: Option<u64>) -> Result<Rotation> {
        let alg = match alg {
            Some(a) => crate::jose::Algorithm::parse(a)?,
            None => self.project.signing_alg,
        };
        let rotated = rotate(&*self.store, &self.vault, alg, prepublish.unwrap_or(self.project.signing_prepublish))?;
        self.reload_keys()?;
        Ok(rotated)
    }

    /// Reloads the signing keys from the store now (a rotation by another
    /// process, a prepublished key whose time came); providers also do it
    /// by themselves every few seconds.
    pub fn reload_keys(&self) -> Result<()> {
        let _one_at_a_time = self.keys_reload.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let keys = Arc::new(load(&*self.store, &self.vault, self.max_token_ttl)?);
        let discovery_json = self.metadata_for(&keys).to_json().to_string();
        let live = Arc::new(Live { keys, discovery_json });
        match self.live.write() {
            Ok(mut l) => *l = live,
            Err(p) => *p.into_inner() = live,
        }
        Ok(())
    }
}
