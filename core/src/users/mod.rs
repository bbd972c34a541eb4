//! Managing users in a store: create, read, update, delete, search. The
//! model is [`crate::user`]; how a sign-in finds or creates its user is
//! [`provision`].

pub mod passkeys;
pub mod password;
pub mod provision;
pub mod sessions;
pub mod totp;

use crate::error::{Error, ErrorCode, Result};
use crate::ids::{now_secs, random_id};
use crate::store::Store;
use crate::user::{apply_fields, normalize_login_id, User, UserQuery};
use serde_json::{Map, Value};

/// Creates a user with `login_id` and `fields`; `user_exists` when taken.
pub fn create_user(store: &dyn Store, login_id: &str, fields: &Map<String, Value>) -> Result<User> {
    if normalize_login_id(login_id).is_empty() {
        return Err(Error::invalid_request("loginId must not be empty"));
    }
    let mut user = User::new(random_id("U")?, login_id, now_secs());
    apply_fields(&mut user, fields)?;
    store.create_user(&user)?;
    Ok(user)
}

/// The user with `user_id`; `user_not_found` when absent.
pub fn get_user(store: &dyn Store, user_id: &str) -> Result<User> {
    store.user(user_id)?.ok_or_else(|| Error::new(ErrorCode::UserNotFound, "no user with this user id"))
}

/// Applies `fields` to the user and saves it.
pub fn update_user(store: &dyn Store, user_id: &str, fields: &Map<String, Value>) -> Result<User> {
    let mut user = get_user(store, user_id)?;
    apply_fields(&mut user, fields)?;
    user.updated_time = now_secs();
    store.update_user(&user)?;
    Ok(user)
}

pub fn delete_user(store: &dyn Store, user_id: &str) -> Result<()> {
    store.delete_user(user_id)?;
    passkeys::forget(store, user_id)?;
    totp::forget(store, user_id)?;
    sessions::forget(store, user_id)
}

pub fn search_users(store: &dyn Store, query: &UserQuery) -> Result<Vec<User>> {
    if query.limit == 0 || query.limit > 1000 {
        return Err(Error::invalid_request("limit must be between 1 and 1000"));
    }
    store.search_users(query)
}
