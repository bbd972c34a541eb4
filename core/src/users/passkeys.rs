//! Passkeys for users in a store. Registration and sign-in are two steps
//! each: `begin_*` keeps the ceremony's state (its challenge) beside the
//! execution that asked and returns the options for the browser; `finish_*`
//! checks the browser's answer against it, once. Credentials are kept per
//! user (several each), each credential id belongs to one user only, and a
//! sign-in is username-less: the passkey names its user by the random
//! handle given at its registration, never by a login id.

use crate::credentials::passkey::{self as rp, AuthenticationResult, DiscoverableAuthentication, Passkey, PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential, Uuid};
use crate::error::{Error, ErrorCode, Result};
use crate::store::Store;
use crate::user::{User, UserStatus};
use serde_json::{json, Value};
use webauthn_rs::prelude::Webauthn;

/// The user's WebAuthn user handle (a random UUID), both ways.
const HANDLE: &str = "passkey_handle";
const HANDLE_USER: &str = "passkey_handle_user";
/// The user's passkeys: `{keys: [{id, createdAt, lastUsedAt, passkey}]}`.
const KEYS: &str = "passkeys";
/// Which user a credential id belongs to (first registration wins).
const CREDENTIAL: &str = "passkey_credential";
/// A ceremony under way, by execution id, and its single-use marker.
const CEREMONY: &str = "passkey_ceremony";
const CEREMONY_USED: &str = "passkey_ceremony_used";
/// How long a ceremony waits for the browser (WebAuthn's default timeout).
const CEREMONY_TTL: u64 = 300;

fn internal(e: impl std::fmt::Display) -> Error {
    Error::internal(format!("passkey state: {e}"))
}

/// The user's handle, made on first use.
fn handle(store: &dyn Store, user_id: &str) -> Result<Uuid> {
    if let Some(h) = store.record(HANDLE, user_id)?.and_then(|v| v["uuid"].as_str().and_then(|s| Uuid::parse_str(s).ok())) {
        return Ok(h);
    }
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|_| Error::internal("the operating system's random generator failed"))?;
    let uuid = Uuid::from_bytes(bytes);
    if !store.insert_record(HANDLE, user_id, &json!({"uuid": uuid.to_string()}), None)? {
        // Another registration made one first: use it.
        return handle(store, user_id);
    }
    store.put_record(HANDLE_USER, &uuid.to_string(), &json!({"userId": user_id}), None)?;
    Ok(uuid)
}

fn keys(store: &dyn Store, user_id: &str) -> Result<Vec<Value>> {
    Ok(store.record(KEYS, user_id)?.and_then(|v| v["keys"].as_array().cloned()).unwrap_or_default())
}

fn passkey_of(entry: &Value) -> Result<Passkey> {
    serde_json::from_value(entry["passkey"].clone()).map_err(internal)
}

/// Takes the ceremony begun under `id`, once: `expired_code` when there is
/// none (or it was used), `access_denied` when it is of another kind.
fn take(store: &dyn Store, id: &str, kind: &str) -> Result<Value> {
    let gone = || Error::new(ErrorCode::ExpiredCode, "the passkey request expired or was used; start again");
    let record = store.record(CEREMONY, id)?.ok_or_else(gone)?;
    if record["kind"] != kind {
        return Err(Error::new(ErrorCode::AccessDenied, "this passkey answer is for another ceremony"));
    }
    if !store.insert_record(CEREMONY_USED, id, &json!(true), Some(crate::ids::now_secs() + CEREMONY_TTL))? {
        return Err(gone());
    }
    store.delete_record(CEREMONY, id)?;
    Ok(record)
}

fn keep(store: &dyn Store, id: &str, record: Value, now: u64) -> Result<()> {
    store.delete_record(CEREMONY_USED, id)?;
    store.put_record(CEREMONY, id, &record, Some(now + CEREMONY_TTL))
}

/// Begins registering a passkey for `user` under `id` (an execution);
/// the options for `navigator.credentials.create`. The user's passkeys are
/// excluded, so one authenticator is not registered twice.
pub fn begin_registration(store: &dyn Store, rp: &Webauthn, id: &str, user: &User, now: u64) -> Result<Value> {
    let name = user.login_ids.first().map_or(user.user_id.as_str(), String::as_str);
    let display = user.name.as_deref().unwrap_or(name);
    let exclude = keys(store, &user.user_id)?.iter().map(passkey_of).map(|p| p.map(|p| p.cred_id().clone())).collect::<Result<Vec<_>>>()?;
    let (ccr, state) = rp
        .start_passkey_registration(handle(store, &user.user_id)?, name, display, Some(exclude).filter(|e| !e.is_empty()))
        .map_err(|e| Error::internal(format!("passkey registration: {e}")))?;
    let options = rp::creation_options(&ccr)?;
    let state = serde_json::to_value(&state).map_err(internal)?;
    keep(store, id, json!({"kind": "create", "userId": user.user_id, "state": state, "options": options}), now)?;
    Ok(options)
}

/// Finishes the registration begun under `id` with the browser's answer
/// (the JSON of the `PublicKeyCredential`), for `user_id` only.
pub fn finish_registration(store: &dyn Store, rp: &Webauthn, id: &str, user_id: &str, credential: &str, now: u64) -> Result<()> {
    let record = take(store, id, "create")?;
    if record["userId"].as_str() != Some(user_id) {
        return Err(Error::new(ErrorCode::AccessDenied, "the passkey request belongs to another user"));
    }
    let answer: RegisterPublicKeyCredential = serde_json::from_str(credential).map_err(|_| rp::refused("the answer is not a WebAuthn credential"))?;
    let state: PasskeyRegistration = serde_json::from_value(record["state"].clone()).map_err(internal)?;
    let passkey = rp.finish_passkey_registration(&answer, &state).map_err(|e| rp::refused(&e.to_string()))?;
    let cred_id = crate::b64::encode(AsRef::<[u8]>::as_ref(passkey.cred_id()));
    if !store.insert_record(CREDENTIAL, &cred_id, &json!({"userId": user_id}), None)? {
        return Err(rp::refused("this credential is registered already"));
    }
    let mut all = keys(store, user_id)?;
    all.push(json!({"id": cred_id, "createdAt": now, "lastUsedAt": null, "passkey": passkey}));
    store.put_record(KEYS, user_id, &json!({"keys": all}), None)
}

/// Begins a username-less sign-in under `id`; the options for
/// `navigator.credentials.get`.
pub fn begin_sign_in(store: &dyn Store, rp: &Webauthn, id: &str, now: u64) -> Result<Value> {
    let (rcr, state) = rp.start_discoverable_authentication().map_err(|e| Error::internal(format!("passkey sign-in: {e}")))?;
    let options = rp::request_options(&rcr)?;
    let state = serde_json::to_value(&state).map_err(internal)?;
    keep(store, id, json!({"kind": "get", "state": state, "options": options}), now)?;
    Ok(options)
}

/// Finishes the sign-in begun under `id`: the user the passkey names, and
/// the RFC 8176 methods it proves. An unknown passkey, a bad signature, a
/// sign count that went back (a cloned key) or a disabled user is refused.
pub fn finish_sign_in(store: &dyn Store, rp: &Webauthn, id: &str, credential: &str, now: u64) -> Result<(User, [&'static str; 2])> {
    let record = take(store, id, "get")?;
    let answer: PublicKeyCredential = serde_json::from_str(credential).map_err(|_| rp::refused("the answer is not a WebAuthn credential"))?;
    let state: DiscoverableAuthentication = serde_json::from_value(record["state"].clone()).map_err(internal)?;
    let (uuid, cred_id) = rp.identify_discoverable_authentication(&answer).map_err(|_| rp::refused("it names no user"))?;
    let unknown = || rp::refused("it is not registered here");
    let user_id = store.record(HANDLE_USER, &uuid.to_string())?.and_then(|v| v["userId"].as_str().map(str::to_owned)).ok_or_else(unknown)?;
    let cred_id = crate::b64::encode(cred_id);
    let mut all = keys(store, &user_id)?;
    let entry = all.iter_mut().find(|k| k["id"] == cred_id.as_str()).ok_or_else(unknown)?;
    let mut passkey = passkey_of(entry)?;
    let result: AuthenticationResult = rp.finish_discoverable_authentication_v2(&answer, state, &passkey).map_err(|e| rp::refused(&e.to_string()))?;
    let user = store.user(&user_id)?.ok_or_else(unknown)?;
    if user.status == UserStatus::Disabled {
        return Err(Error::new(ErrorCode::AccessDenied, "the user is disabled"));
    }
    passkey.update_credential(&result);
    entry["passkey"] = serde_json::to_value(&passkey).map_err(internal)?;
    entry["lastUsedAt"] = now.into();
    store.put_record(KEYS, &user_id, &json!({"keys": all}), None)?;
    Ok((user, rp::amr(&result)))
}

/// The options of the ceremony under way for `id`, with its kind
/// (`create` or `get`), for the screen that runs it.
pub fn ceremony(store: &dyn Store, id: &str) -> Result<Option<(String, Value)>> {
    Ok(store.record(CEREMONY, id)?.map(|r| (r["kind"].as_str().unwrap_or_default().to_owned(), r["options"].clone())))
}

/// The user's passkeys: `[{id, createdAt, lastUsedAt}]`.
pub fn list(store: &dyn Store, user_id: &str) -> Result<Vec<Value>> {
    super::get_user(store, user_id)?;
    Ok(keys(store, user_id)?.iter().map(|k| json!({"id": k["id"], "createdAt": k["createdAt"], "lastUsedAt": k["lastUsedAt"]})).collect())
}

/// Removes one of the user's passkeys; `invalid_request` when the user has
/// no passkey with that id.
pub fn remove(store: &dyn Store, user_id: &str, credential_id: &str) -> Result<()> {
    super::get_user(store, user_id)?;
    let mut all = keys(store, user_id)?;
    let before = all.len();
    all.retain(|k| k["id"] != credential_id);
    if all.len() == before {
        return Err(Error::invalid_request("the user has no passkey with this id"));
    }
    store.put_record(KEYS, user_id, &json!({"keys": all}), None)?;
    store.delete_record(CREDENTIAL, credential_id)
}

/// Forgets everything of the user's passkeys (the user is deleted).
pub(crate) fn forget(store: &dyn Store, user_id: &str) -> Result<()> {
    for k in keys(store, user_id)? {
        if let Some(id) = k["id"].as_str() {
            store.delete_record(CREDENTIAL, id)?;
        }
    }
    if let Some(h) = store.record(HANDLE, user_id)?.and_then(|v| v["uuid"].as_str().map(str::to_owned)) {
        store.delete_record(HANDLE_USER, &h)?;
    }
    store.delete_record(HANDLE, user_id)?;
    store.delete_record(KEYS, user_id)
}
