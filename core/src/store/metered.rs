//! A store that reports how long each of its calls took, and whether it
//! failed, to an observer (the provider's metrics): one wrapper for every
//! backend, so memory, SQLite and PostgreSQL are measured alike. The
//! operation names are the trait's method names, a closed set.

use super::{ExecutionRecord, PoolUse, RecordWrite, RefreshRecord, Store, UserQuery};
use crate::error::Result;
use crate::user::User;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Told of each call: the operation, how long it took, whether it failed.
pub type Observer = Arc<dyn Fn(&'static str, Duration, bool) + Send + Sync>;

/// `inner`, each call timed and reported to `observer`.
pub struct Metered {
    inner: Arc<dyn Store>,
    observer: Observer,
}

impl Metered {
    pub fn new(inner: Arc<dyn Store>, observer: Observer) -> Metered {
        Metered { inner, observer }
    }

    fn timed<T>(&self, op: &'static str, call: impl FnOnce(&dyn Store) -> Result<T>) -> Result<T> {
        let started = Instant::now();
        let result = call(&*self.inner);
        (self.observer)(op, started.elapsed(), result.is_err());
        result
    }
}

impl Store for Metered {
    fn create_user(&self, user: &User) -> Result<()> {
        self.timed("create_user", |s| s.create_user(user))
    }
    fn update_user(&self, user: &User) -> Result<()> {
        self.timed("update_user", |s| s.update_user(user))
    }
    fn user(&self, user_id: &str) -> Result<Option<User>> {
        self.timed("user", |s| s.user(user_id))
    }
    fn user_by_login_id(&self, login_id: &str) -> Result<Option<User>> {
        self.timed("user_by_login_id", |s| s.user_by_login_id(login_id))
    }
    fn delete_user(&self, user_id: &str) -> Result<()> {
        self.timed("delete_user", |s| s.delete_user(user_id))
    }
    fn search_users(&self, query: &UserQuery) -> Result<Vec<User>> {
        self.timed("search_users", |s| s.search_users(query))
    }
    fn create_user_with_password(&self, user: &User, password_hash: &str) -> Result<()> {
        self.timed("create_user_with_password", |s| s.create_user_with_password(user, password_hash))
    }
    fn password_hash(&self, user_id: &str) -> Result<Option<String>> {
        self.timed("password_hash", |s| s.password_hash(user_id))
    }
    fn set_password_hash(&self, user_id: &str, hash: Option<&str>, expected: Option<&str>) -> Result<bool> {
        self.timed("set_password_hash", |s| s.set_password_hash(user_id, hash, expected))
    }
    fn insert_execution(&self, record: &ExecutionRecord) -> Result<()> {
        self.timed("insert_execution", |s| s.insert_execution(record))
    }
    fn execution(&self, id: &str) -> Result<Option<ExecutionRecord>> {
        self.timed("execution", |s| s.execution(id))
    }
    fn save_execution(&self, record: &ExecutionRecord, expected_version: u64) -> Result<bool> {
        self.timed("save_execution", |s| s.save_execution(record, expected_version))
    }
    fn delete_execution(&self, id: &str) -> Result<()> {
        self.timed("delete_execution", |s| s.delete_execution(id))
    }
    fn insert_refresh(&self, record: &RefreshRecord) -> Result<()> {
        self.timed("insert_refresh", |s| s.insert_refresh(record))
    }
    fn refresh(&self, jti: &str) -> Result<Option<RefreshRecord>> {
        self.timed("refresh", |s| s.refresh(jti))
    }
    fn put_record(&self, kind: &str, id: &str, value: &Value, expires_at: Option<u64>) -> Result<()> {
        self.timed("put_record", |s| s.put_record(kind, id, value, expires_at))
    }
    fn insert_record(&self, kind: &str, id: &str, value: &Value, expires_at: Option<u64>) -> Result<bool> {
        self.timed("insert_record", |s| s.insert_record(kind, id, value, expires_at))
    }
    fn redeem_and_put(&self, marker: &RecordWrite<'_>, then: &RecordWrite<'_>) -> Result<bool> {
        self.timed("redeem_and_put", |s| s.redeem_and_put(marker, then))
    }
    fn hit(&self, kind: &str, id: &str, expires_at: u64) -> Result<u64> {
        self.timed("hit", |s| s.hit(kind, id, expires_at))
    }
    fn record(&self, kind: &str, id: &str) -> Result<Option<Value>> {
        self.timed("record", |s| s.record(kind, id))
    }
    fn take_record(&self, kind: &str, id: &str) -> Result<Option<Value>> {
        self.timed("take_record", |s| s.take_record(kind, id))
    }
    fn delete_record(&self, kind: &str, id: &str) -> Result<()> {
        self.timed("delete_record", |s| s.delete_record(kind, id))
    }
    fn records(&self, kind: &str) -> Result<Vec<(String, Value)>> {
        self.timed("records", |s| s.records(kind))
    }
    fn purge_expired(&self, now: u64) -> Result<usize> {
        self.timed("purge_expired", |s| s.purge_expired(now))
    }
    fn data_key_file(&self) -> Option<std::path::PathBuf> {
        self.inner.data_key_file()
    }
    fn networked(&self) -> bool {
        self.inner.networked()
    }
    fn pool_use(&self) -> Option<PoolUse> {
        self.inner.pool_use()
    }
}
