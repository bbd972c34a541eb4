//! The provider's signing keys, kept in the store (`signing_key` records)
//! with the private key sealed by the data key ([`Vault`]): generated on
//! first start, rotated on demand. The newest unretired key signs; a
//! retired key stays published in the JWKS until every token it signed has
//! expired. A record from before sealing (a plain private JWK) is sealed
//! when it is first loaded.

use crate::error::{Error, ErrorCode, Result};
use crate::ids::now_secs;
use crate::jose::{Algorithm, Key, KeySet};
use crate::store::Store;
use crate::vault::Vault;
use serde_json::{json, Value};

const KIND: &str = "signing_key";

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

fn stored_key(store: &dyn Store, vault: &Vault, id: &str, value: &Value) -> Result<(Key, Algorithm, u64, Option<u64>)> {
    let bad = || Error::new(ErrorCode::Storage, "a stored signing key is malformed");
    let alg = Algorithm::parse(value.get("alg").and_then(Value::as_str).ok_or_else(bad)?)?;
    let created = value.get("createdAt").and_then(Value::as_u64).ok_or_else(bad)?;
    let retired = value.get("retiredAt").and_then(Value::as_u64);
    let key = match (value.get("sealed"), value.get("jwk").and_then(Value::as_object)) {
        (Some(sealed), _) => {
            let jwk = vault.open_sealed(&format!("{KIND}:{id}"), sealed)?;
            Key::from_jwk(jwk.as_object().ok_or_else(bad)?)?
        }
        (None, Some(jwk)) => {
            let key = Key::from_jwk(jwk)?;
            // Written before keys were sealed: seal it now.
            let mut sealed = value.clone();
            if let Some(m) = sealed.as_object_mut() {
                m.remove("jwk");
                m.insert("sealed".into(), vault.seal(&format!("{KIND}:{id}"), &Value::Object(jwk.clone()))?);
            }
            store.put_record(KIND, id, &sealed, None)?;
            key
        }
        (None, None) => return Err(bad()),
    };
    Ok((key, alg, created, retired))
}

/// The record id of the first key: every process that starts on an empty
/// store proposes its key under this one id, and only the first write wins.
const FIRST_KEY_ID: &str = "000000000000000000000000-first";

fn new_key(store: &dyn Store, vault: &Vault, alg: Algorithm, first: bool) -> Result<String> {
    let key = Key::generate(alg, None)?;
    let kid = key.kid().to_owned();
    let jwk = key.to_jwk(true)?;
    let now = now_secs();
    // Ids sort by creation time (ns), so the newest key is the last record.
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let id = if first { FIRST_KEY_ID.to_owned() } else { format!("{nanos:024}-{kid}") };
    let record = json!({"kid": kid, "alg": alg.as_str(), "createdAt": now, "sealed": vault.seal(&format!("{KIND}:{id}"), &Value::Object(jwk))?});
    if first {
        store.insert_record(KIND, &id, &record, None)?;
    } else {
        store.put_record(KIND, &id, &record, None)?;
    }
    Ok(kid)
}

/// Loads the keys, generating the first one with `alg` when there is none.
/// Processes starting together on a new store agree on one first key.
/// `max_token_ttl` bounds how long a retired key stays published.
pub fn load_or_create(store: &dyn Store, vault: &Vault, alg: Algorithm, max_token_ttl: u64) -> Result<SigningKeys> {
    if store.records(KIND)?.is_empty() {
        new_key(store, vault, alg, true)?;
    }
    load(store, vault, max_token_ttl)
}

/// Loads the keys already in the store.
pub fn load(store: &dyn Store, vault: &Vault, max_token_ttl: u64) -> Result<SigningKeys> {
    let now = now_secs();
    let mut active: Option<(Key, Algorithm)> = None;
    let mut published = Vec::new();
    for (id, value) in store.records(KIND)? {
        let (key, alg, _, retired) = stored_key(store, vault, &id, &value)?;
        match retired {
            None => {
                published.push(key.public_key()?.with_alg(alg)?);
                active = Some((key, alg));
            }
            Some(t) if t + max_token_ttl > now => published.push(key.public_key()?.with_alg(alg)?),
            Some(_) => {}
        }
    }
    let (active, alg) = active.ok_or_else(|| Error::config("the store holds no active signing key"))?;
    let active = active.with_alg(alg)?;
    published.reverse(); // newest first
    let published = KeySet::new(published)?;
    let jwks_json = Value::Object(published.to_public_jwks()?).to_string();
    Ok(SigningKeys { active, alg, published, jwks_json })
}

/// Makes a new key (with `alg`) the active one and retires the others;
/// returns the new key id. A running provider picks it up on restart.
pub fn rotate(store: &dyn Store, vault: &Vault, alg: Algorithm) -> Result<String> {
    let now = now_secs();
    for (id, mut value) in store.records(KIND)? {
        if value.get("retiredAt").is_none() {
            value["retiredAt"] = now.into();
            store.put_record(KIND, &id, &value, None)?;
        }
    }
    new_key(store, vault, alg, false)
}
