//! An in-memory [`Store`] for tests and embedding; one lock, so every
//! method is atomic.

use super::{ExecutionRecord, RecordWrite, RefreshRecord, Store, UserQuery};
use crate::error::{Error, ErrorCode, Result};
use crate::user::{normalize_login_id, User};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Default)]
struct Inner {
    users: HashMap<String, User>,
    login_ids: HashMap<String, String>,
    executions: HashMap<String, ExecutionRecord>,
    refresh: HashMap<String, RefreshRecord>,
    records: std::collections::BTreeMap<(String, String), (Value, Option<u64>)>,
    passwords: HashMap<String, String>,
}

fn live(expires_at: Option<u64>) -> bool {
    expires_at.is_none_or(|t| t > crate::ids::now_secs())
}

#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn taken(login_id: &str) -> Error {
    Error::new(ErrorCode::UserExists, format!("login id {login_id:?} already belongs to a user"))
}

fn create_user_locked(inner: &mut Inner, user: &User) -> Result<()> {
    if inner.users.contains_key(&user.user_id) {
        return Err(Error::new(ErrorCode::UserExists, "a user with this user id exists"));
    }
    let ids: Vec<String> = user.login_ids.iter().map(|l| normalize_login_id(l)).collect();
    if let Some(t) = ids.iter().find(|l| inner.login_ids.contains_key(*l)) {
        return Err(taken(t));
    }
    for id in ids {
        inner.login_ids.insert(id, user.user_id.clone());
    }
    inner.users.insert(user.user_id.clone(), user.clone());
    Ok(())
}

impl Store for MemoryStore {
    fn create_user_with_password(&self, user: &User, password_hash: &str) -> Result<()> {
        let mut inner = self.lock();
        create_user_locked(&mut inner, user)?;
        inner.passwords.insert(user.user_id.clone(), password_hash.to_owned());
        Ok(())
    }

    fn password_hash(&self, user_id: &str) -> Result<Option<String>> {
        Ok(self.lock().passwords.get(user_id).cloned())
    }

    fn set_password_hash(&self, user_id: &str, hash: Option<&str>, expected: Option<&str>) -> Result<bool> {
        let mut inner = self.lock();
        if !inner.users.contains_key(user_id) {
            return Err(Error::new(ErrorCode::UserNotFound, "no user with this user id"));
        }
        if expected.is_some_and(|e| inner.passwords.get(user_id).map(String::as_str) != Some(e)) {
            return Ok(false);
        }
        match hash {
            Some(h) => inner.passwords.insert(user_id.to_owned(), h.to_owned()),
            None => inner.passwords.remove(user_id),
        };
        Ok(true)
    }

    fn create_user(&self, user: &User) -> Result<()> {
        create_user_locked(&mut self.lock(), user)
    }

    fn update_user(&self, user: &User) -> Result<()> {
        let mut inner = self.lock();
        let Some(old) = inner.users.get(&user.user_id).cloned() else {
            return Err(Error::new(ErrorCode::UserNotFound, "no user with this user id"));
        };
        let ids: Vec<String> = user.login_ids.iter().map(|l| normalize_login_id(l)).collect();
        if let Some(t) = ids.iter().find(|l| inner.login_ids.get(*l).is_some_and(|owner| owner != &user.user_id)) {
            return Err(taken(t));
        }
        for id in &old.login_ids {
            inner.login_ids.remove(&normalize_login_id(id));
        }
        for id in ids {
            inner.login_ids.insert(id, user.user_id.clone());
        }
        inner.users.insert(user.user_id.clone(), user.clone());
        Ok(())
    }

    fn user(&self, user_id: &str) -> Result<Option<User>> {
        Ok(self.lock().users.get(user_id).cloned())
    }

    fn user_by_login_id(&self, login_id: &str) -> Result<Option<User>> {
        let inner = self.lock();
        Ok(inner.login_ids.get(&normalize_login_id(login_id)).and_then(|id| inner.users.get(id)).cloned())
    }

    fn delete_user(&self, user_id: &str) -> Result<()> {
        let mut inner = self.lock();
        let user = inner.users.remove(user_id).ok_or_else(|| Error::new(ErrorCode::UserNotFound, "no user with this user id"))?;
        for id in &user.login_ids {
            inner.login_ids.remove(&normalize_login_id(id));
        }
        inner.passwords.remove(user_id);
        Ok(())
    }

    fn search_users(&self, query: &UserQuery) -> Result<Vec<User>> {
        let inner = self.lock();
        let mut all: Vec<&User> = inner.users.values().collect();
        all.sort_by(|a, b| a.user_id.cmp(&b.user_id));
        query.page(all.into_iter().map(|u| Ok::<User, Error>(u.clone())))
    }

    fn insert_execution(&self, record: &ExecutionRecord) -> Result<()> {
        let mut inner = self.lock();
        if inner.executions.contains_key(&record.id) {
            return Err(Error::new(ErrorCode::Storage, "execution id collision"));
        }
        inner.executions.insert(record.id.clone(), record.clone());
        Ok(())
    }

    fn execution(&self, id: &str) -> Result<Option<ExecutionRecord>> {
        Ok(self.lock().executions.get(id).cloned())
    }

    fn save_execution(&self, record: &ExecutionRecord, expected_version: u64) -> Result<bool> {
        let mut inner = self.lock();
        match inner.executions.get(&record.id) {
            Some(current) if current.version == expected_version => {
                inner.executions.insert(record.id.clone(), record.clone());
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn delete_execution(&self, id: &str) -> Result<()> {
        self.lock().executions.remove(id);
        Ok(())
    }

    fn insert_refresh(&self, record: &RefreshRecord) -> Result<()> {
        self.lock().refresh.insert(record.jti.clone(), record.clone());
        Ok(())
    }

    fn refresh(&self, jti: &str) -> Result<Option<RefreshRecord>> {
        Ok(self.lock().refresh.get(jti).cloned())
    }

    fn put_record(&self, kind: &str, id: &str, value: &Value, expires_at: Option<u64>) -> Result<()> {
        self.lock().records.insert((kind.to_owned(), id.to_owned()), (value.clone(), expires_at));
        Ok(())
    }

    fn insert_record(&self, kind: &str, id: &str, value: &Value, expires_at: Option<u64>) -> Result<bool> {
        let mut inner = self.lock();
        let key = (kind.to_owned(), id.to_owned());
        if inner.records.get(&key).is_some_and(|(_, e)| live(*e)) {
            return Ok(false);
        }
        inner.records.insert(key, (value.clone(), expires_at));
        Ok(true)
    }

    fn hit(&self, kind: &str, id: &str, expires_at: u64) -> Result<u64> {
        let mut inner = self.lock();
        let entry = inner.records.entry((kind.to_owned(), id.to_owned())).or_insert((Value::from(0u64), Some(expires_at)));
        if !live(entry.1) {
            *entry = (Value::from(0u64), Some(expires_at));
        }
        let n = entry.0.as_u64().unwrap_or(0) + 1;
        entry.0 = Value::from(n);
        Ok(n)
    }

    fn redeem_and_put(&self, marker: &RecordWrite<'_>, then: &RecordWrite<'_>) -> Result<bool> {
        let mut inner = self.lock();
        let key = (marker.kind.to_owned(), marker.id.to_owned());
        if inner.records.get(&key).is_some_and(|(_, e)| live(*e)) {
            return Ok(false);
        }
        inner.records.insert(key, (marker.value.clone(), marker.expires_at));
        inner.records.insert((then.kind.to_owned(), then.id.to_owned()), (then.value.clone(), then.expires_at));
        Ok(true)
    }

    fn record(&self, kind: &str, id: &str) -> Result<Option<Value>> {
        let inner = self.lock();
        Ok(inner.records.get(&(kind.to_owned(), id.to_owned())).filter(|(_, e)| live(*e)).map(|(v, _)| v.clone()))
    }

    fn take_record(&self, kind: &str, id: &str) -> Result<Option<Value>> {
        let mut inner = self.lock();
        let key = (kind.to_owned(), id.to_owned());
        if !inner.records.get(&key).is_some_and(|(_, e)| live(*e)) {
            return Ok(None);
        }
        Ok(inner.records.remove(&key).map(|(v, _)| v))
    }

    fn delete_record(&self, kind: &str, id: &str) -> Result<()> {
        self.lock().records.remove(&(kind.to_owned(), id.to_owned()));
        Ok(())
    }

    fn records(&self, kind: &str) -> Result<Vec<(String, Value)>> {
        let inner = self.lock();
        Ok(inner
            .records
            .iter()
            .filter(|((k, _), (_, e))| k == kind && live(*e))
            .map(|((_, id), (v, _))| (id.clone(), v.clone()))
            .collect())
    }

    fn purge_expired(&self, now: u64) -> Result<usize> {
        let mut inner = self.lock();
        let before = inner.records.len() + inner.executions.len();
        inner.records.retain(|_, (_, e)| e.is_none_or(|t| t > now));
        inner.executions.retain(|_, r| r.expires_at > now);
        Ok(before - inner.records.len() - inner.executions.len())
    }
}
