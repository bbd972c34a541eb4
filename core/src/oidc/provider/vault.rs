//! Provider tokens at rest ("manage tokens from provider"): the upstream's
//! access and refresh tokens of a user, sealed with AES-256-GCM under the
//! project's data key. The key is `encryption.key` in the project file
//! (base64 of 32 bytes, usually `${IDFLOW_DATA_KEY}`); without one, a random
//! key is generated once and kept in the store. The record id is the
//! additional authenticated data, so a sealed blob cannot be moved to
//! another user or provider.

use crate::error::{Error, ErrorCode, Result};
use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use serde_json::{json, Value};

pub(crate) struct Vault {
    key: LessSafeKey,
}

fn sealed_err() -> Error {
    Error::new(ErrorCode::Storage, "a sealed provider token could not be opened (wrong data key?)")
}

impl Vault {
    /// The project's data key, or the store's generated one.
    pub(crate) fn open(config: Option<&Value>, store: &dyn crate::store::Store) -> Result<Vault> {
        let configured = match config {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => {
                if let Some(k) = m.keys().find(|k| k.as_str() != "key") {
                    return Err(Error::config(format!("unknown field encryption.{k}")));
                }
                match m.get("key") {
                    Some(Value::String(s)) => Some(crate::connectors::resolve_env(s)?),
                    _ => return Err(Error::config("encryption.key must be a string (base64 of 32 bytes)")),
                }
            }
            Some(_) => return Err(Error::config("encryption must be an object")),
        };
        let bytes = match configured {
            Some(text) => crate::b64::decode_std(text.trim())
                .or_else(|| crate::b64::decode(text.trim()))
                .filter(|b| b.len() == 32)
                .ok_or_else(|| Error::config("encryption.key must be base64 of exactly 32 bytes"))?,
            None => match store.record("data_key", "default")?.and_then(|v| v.as_str().and_then(crate::b64::decode)) {
                Some(b) if b.len() == 32 => b,
                _ => {
                    let mut b = vec![0u8; 32];
                    getrandom::fill(&mut b).map_err(|_| Error::internal("the operating system's random generator failed"))?;
                    if !store.insert_record("data_key", "default", &Value::String(crate::b64::encode(&b)), None)? {
                        // Another process made one first: use theirs.
                        return Vault::open(None, store);
                    }
                    b
                }
            },
        };
        let key = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| Error::internal("AES-256-GCM key"))?;
        Ok(Vault { key: LessSafeKey::new(key) })
    }

    pub(crate) fn seal(&self, id: &str, plain: &Value) -> Result<Value> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|_| Error::internal("the operating system's random generator failed"))?;
        let mut data = plain.to_string().into_bytes();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(id.as_bytes()), &mut data)
            .map_err(|_| Error::internal("sealing failed"))?;
        Ok(json!({"alg": "A256GCM", "nonce": crate::b64::encode(nonce), "sealed": crate::b64::encode(&data)}))
    }

    pub(crate) fn open_sealed(&self, id: &str, sealed: &Value) -> Result<Value> {
        let field = |k: &str| sealed.get(k).and_then(Value::as_str).and_then(crate::b64::decode).ok_or_else(sealed_err);
        let nonce: [u8; NONCE_LEN] = field("nonce")?.try_into().map_err(|_| sealed_err())?;
        let mut data = field("sealed")?;
        let plain = self
            .key
            .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(id.as_bytes()), &mut data)
            .map_err(|_| sealed_err())?;
        serde_json::from_slice(plain).map_err(|_| sealed_err())
    }
}
