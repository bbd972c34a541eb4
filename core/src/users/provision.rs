//! Provisioning: how a sign-in finds or creates its user. The flow
//! engine's `generateJwt` step signs in, signs up, or does either by a
//! login id; social login signs in by the upstream identity, merging into
//! the user with the same verified email when the project allows it. Both
//! refuse a disabled user. The `tenants` claim a signed-in user carries is
//! made here too.

use crate::error::{Error, ErrorCode, Result};
use crate::ids::random_id;
use crate::store::Store;
use crate::user::{normalize_login_id, User, UserStatus};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// What a sign-in by login id may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignUpMode {
    /// Only an existing user (`user_not_found` otherwise).
    SignIn,
    /// Only a new user (`user_exists` otherwise).
    SignUp,
    /// The existing user, or a new one.
    SignUpOrIn,
}

/// `access_denied` for a disabled user.
fn ensure_enabled(user: &User) -> Result<()> {
    if user.status == UserStatus::Disabled {
        return Err(Error::new(ErrorCode::AccessDenied, "this user is disabled"));
    }
    Ok(())
}

/// The user with `login_id`, created when `mode` allows it.
pub fn by_login_id(store: &dyn Store, login_id: &str, mode: SignUpMode, now: u64) -> Result<User> {
    let user = match (mode, store.user_by_login_id(login_id)?) {
        (SignUpMode::SignIn, None) => return Err(Error::new(ErrorCode::UserNotFound, "no user has this login id")),
        (SignUpMode::SignUp, Some(_)) => return Err(Error::new(ErrorCode::UserExists, "a user with this login id exists")),
        (_, Some(user)) => user,
        (_, None) => {
            let user = User::new(random_id("U")?, login_id, now);
            store.create_user(&user)?;
            user
        }
    };
    ensure_enabled(&user)?;
    Ok(user)
}

/// A sign-in by an identity another system verified.
#[derive(Debug, Clone, Copy)]
pub struct ExternalSignIn<'a> {
    /// The identity's login id (`{provider}:{subject}`).
    pub login_id: &'a str,
    /// A verified email whose user this identity joins when it has no user
    /// yet (only when the project merges users by email). The user must
    /// have that email, verified, too.
    pub merge_by_email: Option<&'a str>,
    /// An email to add as a login id, unless another user has it.
    pub promote_email: Option<&'a str>,
}

/// The user of `identity`: found by its login id, else merged by verified
/// email, else created. `profile` updates the user before it is saved
/// (it learns whether the user is new); a disabled user is refused before.
pub fn external(store: &dyn Store, identity: &ExternalSignIn<'_>, now: u64, profile: impl FnOnce(&mut User, bool)) -> Result<User> {
    let (mut user, created) = match store.user_by_login_id(identity.login_id)? {
        Some(u) => (u, false),
        None => {
            let merged = match identity.merge_by_email {
                Some(e) => store.user_by_login_id(e)?.filter(|u| u.email.as_deref() == Some(e) && u.verified_email),
                None => None,
            };
            match merged {
                Some(mut u) => {
                    u.login_ids.push(identity.login_id.to_owned());
                    (u, false)
                }
                None => (User::new(random_id("U")?, identity.login_id, now), true),
            }
        }
    };
    ensure_enabled(&user)?;
    profile(&mut user, created);
    if let Some(e) = identity.promote_email {
        let e = normalize_login_id(e);
        let owner = store.user_by_login_id(&e)?;
        if owner.as_ref().is_none_or(|o| o.user_id == user.user_id) && !user.login_ids.iter().any(|l| normalize_login_id(l) == e) {
            user.login_ids.push(e);
        }
    }
    user.updated_time = now;
    if created {
        store.create_user(&user)?;
    } else {
        store.update_user(&user)?;
    }
    Ok(user)
}

/// The `tenants` claim, `{tenant_id: {roles, permissions}}`, where the
/// permissions are what `roles` (the project's: role name → permissions)
/// grant, deduplicated, in first-seen order; `None` for a user in no
/// tenant.
pub fn tenants_claim(user: &User, roles: &HashMap<String, Vec<String>>) -> Option<Value> {
    if user.tenants.is_empty() {
        return None;
    }
    let tenants: Map<String, Value> = user
        .tenants
        .iter()
        .map(|t| {
            let mut permissions: Vec<&str> = Vec::new();
            for role in &t.roles {
                for p in roles.get(role).into_iter().flatten() {
                    if !permissions.contains(&p.as_str()) {
                        permissions.push(p);
                    }
                }
            }
            (t.tenant_id.clone(), json!({"roles": t.roles, "permissions": permissions}))
        })
        .collect();
    Some(Value::Object(tenants))
}
