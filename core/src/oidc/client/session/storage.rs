//! What a session manager keeps in the app's storage: the storage trait
//! (and an in-memory one), the stored session and the pending sign-in, with
//! the format version that refuses newer records instead of overwriting
//! them.

use super::*;

/// What a storage call returns.
pub type StorageFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// Where the session lives between app launches. The text is opaque JSON;
/// keep it as a secret (it holds the refresh token).
pub trait SessionStorage: Send + Sync {
    /// The stored text, or `None` when nobody is signed in.
    fn load(&self) -> StorageFuture<'_, Option<String>>;
    fn save(&self, session: String) -> StorageFuture<'_, ()>;
    fn clear(&self) -> StorageFuture<'_, ()>;
}

/// Storage in memory: the double for tests, or a backend's per-user cache.
#[derive(Debug, Default)]
pub struct MemoryStorage {
    pub(super) value: SyncMutex<Option<String>>,
}

impl MemoryStorage {
    pub fn new() -> MemoryStorage {
        MemoryStorage::default()
    }

    /// What is stored now.
    pub fn get(&self) -> Option<String> {
        self.value.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl SessionStorage for MemoryStorage {
    fn load(&self) -> StorageFuture<'_, Option<String>> {
        Box::pin(async move { Ok(self.get()) })
    }
    fn save(&self, session: String) -> StorageFuture<'_, ()> {
        Box::pin(async move {
            *self.value.lock().unwrap_or_else(|p| p.into_inner()) = Some(session);
            Ok(())
        })
    }
    fn clear(&self) -> StorageFuture<'_, ()> {
        Box::pin(async move {
            *self.value.lock().unwrap_or_else(|p| p.into_inner()) = None;
            Ok(())
        })
    }
}

/// The stored record's format: 2 is `{"v":2,"session":{...},"pending":{...}}`;
/// 1 (read, never written) was the session's fields at the top level.
const STORAGE_VERSION: u64 = 2;

/// A sign-in started by `begin`, waiting for its callback.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Pending {
    pub(super) state: String,
    pub(super) nonce: String,
    pub(super) code_verifier: Option<String>,
    pub(super) redirect_uri: String,
    pub(super) expires_at: u64,
}

impl Pending {
    pub(super) fn to_json(&self) -> Value {
        json!({"state": self.state, "nonce": self.nonce, "code_verifier": self.code_verifier,
            "redirect_uri": self.redirect_uri, "expires_at": self.expires_at})
    }

    pub(super) fn from_json(v: &Map<String, Value>) -> Option<Pending> {
        let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        Some(Pending {
            state: text("state").filter(|s| !s.is_empty())?,
            nonce: text("nonce")?,
            code_verifier: text("code_verifier"),
            redirect_uri: text("redirect_uri")?,
            expires_at: v.get("expires_at").and_then(Value::as_u64)?,
        })
    }

    pub(super) fn request(&self) -> AuthorizationRequest {
        AuthorizationRequest {
            url: String::new(),
            state: self.state.clone(),
            nonce: self.nonce.clone(),
            code_verifier: self.code_verifier.clone(),
            redirect_uri: self.redirect_uri.clone(),
        }
    }
}

/// What the storage holds.
#[derive(Debug, Default)]
pub(super) struct Stored {
    pub(super) session: Option<Session>,
    pub(super) pending: Option<Pending>,
}

pub(super) fn unreadable(what: &str) -> Error {
    Error::new(ErrorCode::Storage, format!("the stored session is unreadable: {what}"))
}

/// A record this version does not know how to read (written by a newer
/// one): refused and never overwritten.
fn newer_format(doc: &Map<String, Value>) -> Option<Error> {
    let v = doc.get("v").and_then(Value::as_u64).filter(|v| *v > STORAGE_VERSION)?;
    Some(Error::new(
        ErrorCode::Storage,
        format!("the stored session is in format {v}, written by a newer version of idflow; it is left as it is"),
    ))
}

/// The refusal of `text` when a newer version of idflow wrote it.
pub(super) fn newer_record(text: &str) -> Option<Error> {
    crate::json::parse_object(text.as_bytes()).ok().as_ref().and_then(newer_format)
}

impl Stored {
    pub(super) fn parse(text: &str) -> Result<Stored> {
        let doc = crate::json::parse_object(text.as_bytes()).map_err(|_| unreadable("not a JSON object"))?;
        if let Some(e) = newer_format(&doc) {
            return Err(e);
        }
        match doc.get("v").and_then(Value::as_u64) {
            Some(1) => Ok(Stored { session: Some(Session::from_fields(&doc)?), pending: None }),
            Some(2) => Ok(Stored {
                session: doc.get("session").and_then(Value::as_object).map(Session::from_fields).transpose()?,
                pending: match doc.get("pending").and_then(Value::as_object) {
                    Some(p) => Some(Pending::from_json(p).ok_or_else(|| unreadable("a bad pending sign-in"))?),
                    None => None,
                },
            }),
            _ => Err(unreadable("unknown version")),
        }
    }

    /// The text to save, or `None` when there is nothing to keep.
    pub(super) fn to_text(session: Option<&Session>, pending: Option<&Pending>) -> Option<String> {
        if session.is_none() && pending.is_none() {
            return None;
        }
        let mut v = json!({"v": STORAGE_VERSION});
        if let Some(s) = session {
            v["session"] = s.to_json();
        }
        if let Some(p) = pending {
            v["pending"] = p.to_json();
        }
        Some(v.to_string())
    }
}

pub(super) fn storage_error(what: &str, e: Error) -> Error {
    match e.code {
        ErrorCode::Storage => e,
        _ => Error::new(ErrorCode::Storage, format!("{what}: {}", e.message)),
    }
}
