//! Signing a user out everywhere: a moment before which every sign-in of
//! the user is void. A password change or reset sets it, and so does the
//! removal of a password that someone else may have used. The provider
//! reads it for its browser sessions (the cookie, `prompt=none`) and for
//! grants, so codes, refresh tokens and access tokens at userinfo from an
//! earlier sign-in stop working. Moments are in milliseconds, so a sign-in
//! made just before the change, in the same second, ends too.

use crate::error::Result;
use crate::ids::now_millis;
use crate::store::Store;
use serde_json::{json, Value};

const KIND: &str = "signed_out";

/// Ends every sign-in of `user_id` made until now; `user_not_found` when
/// there is no such user. The moment only moves forward.
pub fn sign_out_everywhere(store: &dyn Store, user_id: &str) -> Result<()> {
    super::get_user(store, user_id)?;
    let now = now_millis();
    let at = signed_out_at(store, user_id)?.map_or(now, |t| t.max(now));
    store.put_record(KIND, user_id, &json!({"atMs": at}), None)
}

/// Whether a sign-in of `user_id` made at `signed_in_ms` (milliseconds
/// since the epoch) has been ended since.
pub fn sign_in_ended(store: &dyn Store, user_id: &str, signed_in_ms: u64) -> Result<bool> {
    Ok(signed_out_at(store, user_id)?.is_some_and(|at| signed_in_ms <= at))
}

/// Forgets the user's sign-out moment (the user is deleted).
pub(crate) fn forget(store: &dyn Store, user_id: &str) -> Result<()> {
    store.delete_record(KIND, user_id)
}

fn signed_out_at(store: &dyn Store, user_id: &str) -> Result<Option<u64>> {
    Ok(store.record(KIND, user_id)?.and_then(|v| v.get("atMs").and_then(Value::as_u64)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::store::MemoryStore;
    use crate::ErrorCode;

    #[test]
    fn earlier_sign_ins_end_and_later_ones_stay() {
        let store = MemoryStore::new();
        for id in ["U1", "U2"] {
            store.create_user(&crate::user::User::new(id.into(), &format!("{id}@example.com"), 0)).unwrap();
        }
        assert_eq!(sign_out_everywhere(&store, "U9").unwrap_err().code, ErrorCode::UserNotFound);
        assert!(!sign_in_ended(&store, "U1", 0).unwrap(), "never signed out");
        let before = now_millis();
        sign_out_everywhere(&store, "U1").unwrap();
        assert!(sign_in_ended(&store, "U1", before).unwrap());
        assert!(!sign_in_ended(&store, "U1", now_millis() + 1).unwrap());
        assert!(!sign_in_ended(&store, "U2", before).unwrap(), "only that user");
        // The moment never goes back (a clock step back on another server).
        store.put_record(KIND, "U1", &json!({"atMs": u64::MAX - 1}), None).unwrap();
        sign_out_everywhere(&store, "U1").unwrap();
        assert!(sign_in_ended(&store, "U1", u64::MAX - 1).unwrap());
        forget(&store, "U1").unwrap();
        assert!(!sign_in_ended(&store, "U1", 0).unwrap());
    }
}
