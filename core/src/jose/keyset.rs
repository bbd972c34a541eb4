//! JWK Sets (RFC 7517 §5) and key selection.
//!
//! Selection is exact: a token's `kid` picks exactly the key with that `kid`
//! (no fallback to "try the others"); a token without `kid` is accepted only
//! when the set holds a single key. Keys in a set that are not JWS keys
//! idflow supports (encryption keys, unknown kty or curves) are skipped, as
//! RFC 7517 §5 asks; a malformed supported key fails the whole set.

use super::alg::truncate;
use super::jwk::{parse_jwk, Parsed};
use super::key::Key;
use crate::error::{Error, Result};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// A set of keys selected by `kid`.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: Vec<Key>,
    by_kid: HashMap<String, usize>,
}

impl KeySet {
    /// A set from keys; `kid`s must be unique.
    pub fn new(keys: Vec<Key>) -> Result<KeySet> {
        let mut set = KeySet::default();
        for key in keys {
            set.push(key)?;
        }
        Ok(set)
    }

    fn push(&mut self, key: Key) -> Result<()> {
        if self.by_kid.contains_key(key.kid()) {
            return Err(Error::invalid_key(format!(
                "duplicate kid {:?} in key set",
                truncate(key.kid())
            )));
        }
        self.by_kid.insert(key.kid().to_owned(), self.keys.len());
        self.keys.push(key);
        Ok(())
    }

    /// Parses `{"keys": [...]}` JSON text.
    pub fn from_jwks_json(text: &str) -> Result<KeySet> {
        let doc = crate::json::parse_object(text.as_bytes())
            .map_err(|e| Error::invalid_key(format!("JWKS is not a valid JSON object: {e}")))?;
        KeySet::from_jwks(&doc)
    }

    /// Parses a JWKS object.
    pub fn from_jwks(doc: &Map<String, Value>) -> Result<KeySet> {
        let items = match doc.get("keys") {
            Some(Value::Array(items)) => items,
            _ => return Err(Error::invalid_key("JWKS must have a \"keys\" array")),
        };
        let mut set = KeySet::default();
        for (i, item) in items.iter().enumerate() {
            let Value::Object(jwk) = item else {
                return Err(Error::invalid_key(format!("JWKS keys[{i}] is not an object")));
            };
            match parse_jwk(jwk).map_err(|e| Error::invalid_key(format!("JWKS keys[{i}]: {}", e.message)))? {
                Parsed::Key(key) if key.key_use().is_some_and(|u| u != "sig") => {}
                Parsed::Key(key) => set.push(key)?,
                Parsed::NotForJws(_) => {}
            }
        }
        Ok(set)
    }

    pub fn keys(&self) -> &[Key] {
        &self.keys
    }
    pub fn len(&self) -> usize {
        self.keys.len()
    }
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
    pub fn get(&self, kid: &str) -> Option<&Key> {
        self.by_kid.get(kid).map(|&i| &self.keys[i])
    }

    /// The key for a token header's `kid` (see the module doc).
    pub fn select(&self, kid: Option<&str>) -> Result<&Key> {
        match kid {
            Some(kid) => self.get(kid).ok_or_else(|| {
                Error::invalid_key(format!("no key with kid {:?} in the key set", truncate(kid)))
            }),
            None => match self.keys.as_slice() {
                [only] => Ok(only),
                [] => Err(Error::invalid_key("the key set is empty")),
                _ => Err(Error::invalid_key(
                    "the token has no kid and the key set holds several keys",
                )),
            },
        }
    }

    /// The public JWKS document (private members never included).
    pub fn to_public_jwks(&self) -> Result<Map<String, Value>> {
        let keys = self
            .keys
            .iter()
            .filter(|k| k.key_type() != super::alg::KeyType::Oct)
            .map(|k| k.to_jwk(false).map(Value::Object))
            .collect::<Result<Vec<_>>>()?;
        let mut doc = Map::new();
        doc.insert("keys".into(), Value::Array(keys));
        Ok(doc)
    }
}

/// Where verification finds its key: one key, or a set selected by `kid`.
pub trait KeySource {
    fn select_key(&self, kid: Option<&str>) -> Result<&Key>;
}

impl KeySource for Key {
    /// A single key the caller chose: a token `kid` must match the key's
    /// `kid` when the key has an explicit one (JWK, generated, `with_kid`);
    /// a key imported from PEM or a secret carries no `kid` of its own.
    fn select_key(&self, kid: Option<&str>) -> Result<&Key> {
        match kid {
            Some(kid) if self.has_explicit_kid() && kid != self.kid() => Err(Error::invalid_key(format!(
                "token kid {:?} does not match the key's kid",
                truncate(kid)
            ))),
            _ => Ok(self),
        }
    }
}

impl KeySource for KeySet {
    fn select_key(&self, kid: Option<&str>) -> Result<&Key> {
        self.select(kid)
    }
}
