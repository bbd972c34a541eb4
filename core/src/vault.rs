//! Secrets at rest: provider tokens ("manage tokens from provider") and
//! the private signing keys, sealed with AES-256-GCM under the data key.
//! The key never lives in the database it protects: it is `encryption.key`
//! in the project file (base64 of 32 bytes, usually `${IDFLOW_DATA_KEY}`),
//! or else a key file beside the SQLite database (`{db}.key`, mode 0600,
//! made on first start), so a copied database file alone opens nothing.
//! A store without a file (in memory) keeps a generated key in the store,
//! as nothing of it outlives the process; a PostgreSQL store needs
//! `encryption.key`. The record id is the additional
//! authenticated data, so a sealed blob cannot be moved to another record.

use crate::error::{Error, ErrorCode, Result};
use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use serde_json::{json, Value};
use std::path::Path;

/// The data key that seals secrets at rest.
pub struct Vault {
    key: LessSafeKey,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Vault")
    }
}

fn sealed_err() -> Error {
    Error::new(ErrorCode::Storage, "a sealed secret could not be opened (wrong data key: encryption.key or the database's .key file?)")
}

fn random_key() -> Result<Vec<u8>> {
    let mut b = vec![0u8; 32];
    getrandom::fill(&mut b).map_err(|_| Error::internal("the operating system's random generator failed"))?;
    Ok(b)
}

/// Reads the key file at `path`, creating it (0600, written whole before
/// it appears, so a second process starting at once reads a complete key)
/// with `initial` or a fresh key when it does not exist.
fn key_file(path: &Path, initial: Option<Vec<u8>>) -> Result<Vec<u8>> {
    let read = |path: &Path| -> Result<Vec<u8>> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::config(format!("cannot read the data key file {}: {e}", path.display())))?;
        crate::b64::decode_std(text.trim())
            .filter(|b| b.len() == 32)
            .ok_or_else(|| Error::config(format!("{} is not a data key (base64 of 32 bytes)", path.display())))
    };
    if path.exists() {
        return read(path);
    }
    let bytes = match initial {
        Some(b) => b,
        None => random_key()?,
    };
    let tmp = path.with_extension(format!("key.{}.tmp", crate::ids::random_id("")?));
    {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut f = options.open(&tmp).map_err(|e| Error::config(format!("cannot create the data key file {}: {e}", tmp.display())))?;
        f.write_all(format!("{}\n", crate::b64::encode_std(&bytes)).as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(|e| Error::config(format!("cannot write the data key file {}: {e}", tmp.display())))?;
    }
    // A hard link appears whole and fails if the name is taken: the first
    // process to link wins, the others read its key.
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read(path),
        Err(e) => Err(Error::config(format!("cannot create the data key file {}: {e}", path.display()))),
    }
}

impl Vault {
    /// The data key: `encryption.key` from the project, else the store's
    /// key file, else (a store without a file) a key kept in the store.
    pub fn open(config: Option<&Value>, store: &dyn crate::store::Store) -> Result<Vault> {
        let configured = match config {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => {
                if let Some(k) = m.keys().find(|k| k.as_str() != "key") {
                    return Err(Error::config(format!("unknown field encryption.{k}")));
                }
                match m.get("key") {
                    Some(Value::String(s)) => Some(crate::env::resolve_env(s)?),
                    _ => return Err(Error::config("encryption.key must be a string (base64 of 32 bytes)")),
                }
            }
            Some(_) => return Err(Error::config("encryption must be an object")),
        };
        let stored = || -> Result<Option<Vec<u8>>> {
            Ok(store.record("data_key", "default")?.and_then(|v| v.as_str().and_then(crate::b64::decode)).filter(|b| b.len() == 32))
        };
        let bytes = match (configured, store.data_key_file()) {
            (Some(text), _) => crate::b64::decode_std(text.trim())
                .or_else(|| crate::b64::decode(text.trim()))
                .filter(|b| b.len() == 32)
                .ok_or_else(|| Error::config("encryption.key must be base64 of exactly 32 bytes"))?,
            (None, Some(path)) => {
                // A database from before the key file kept its key inside:
                // it moves out, so what it sealed still opens.
                let legacy = stored()?;
                let bytes = key_file(&path, legacy.clone())?;
                if legacy.is_some() {
                    store.delete_record("data_key", "default")?;
                }
                bytes
            }
            (None, None) if store.networked() => {
                return Err(Error::config(
                    "encryption.key is required with a PostgreSQL store: every server needs the same data key, and it must not live in the database it protects",
                ))
            }
            (None, None) => match stored()? {
                Some(b) => b,
                None => {
                    let b = random_key()?;
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
