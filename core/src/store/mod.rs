//! Storage behind the engine and the provider.
//!
//! [`Store`] is the seam: the engine calls only these methods, so the
//! embedded SQLite store, the in-memory store and a networked
//! backend can be swapped without changing callers. Every method is one
//! atomic operation; `save_execution` is a compare-and-swap on the
//! execution's version, which is what makes a replayed or concurrent `next`
//! lose cleanly instead of double-running a step.

mod memory;
mod metered;
#[cfg(feature = "postgres")]
mod postgres;
mod sqlite;

pub use memory::MemoryStore;
pub use metered::{Metered, Observer};
#[cfg(feature = "postgres")]
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

use crate::error::Result;
use crate::user::{User, UserQuery};
use serde_json::Value;

/// The store `database` names: a `postgres://` (or `postgresql://`) URL,
/// else the SQLite file at that path; a fresh in-memory store for `None`.
pub fn open(database: Option<&str>) -> Result<std::sync::Arc<dyn Store>> {
    Ok(match database {
        None => std::sync::Arc::new(MemoryStore::new()),
        Some(url) if is_postgres_url(url) => open_postgres(url)?,
        Some(path) => std::sync::Arc::new(SqliteStore::open(path)?),
    })
}

/// The placeholder in a `database` that names one store per project.
pub const PROJECT_PLACEHOLDER: &str = "{project}";

/// The store of project `project_id`: [`open`] on `database` with every
/// `{project}` replaced by the project id (`data/{project}.db`,
/// `postgres://host/idflow?schema={project}`), so projects served in one
/// process never share a store. The id must then be a safe name (letters,
/// digits, `_` and `-`, at most 63 bytes): it becomes a file name or a
/// PostgreSQL schema.
pub fn open_for_project(database: Option<&str>, project_id: &str) -> Result<std::sync::Arc<dyn Store>> {
    match database {
        Some(d) if d.contains(PROJECT_PLACEHOLDER) => {
            let id = safe_project_id(project_id)?;
            open(Some(&d.replace(PROJECT_PLACEHOLDER, id)))
        }
        other => open(other),
    }
}

/// `id` when it may name a file, a URL path segment and a schema.
pub fn safe_project_id(id: &str) -> Result<&str> {
    if safe_name(id) {
        Ok(id)
    } else {
        Err(crate::error::Error::config(format!(
            "projectId {id:?} cannot name its own store or path: use letters, digits, _ and - (at most 63)"
        )))
    }
}

/// Whether `name` is letters, digits, `_` and `-`, 1 to 63 bytes: safe as
/// a file name, a URL path segment and a (quoted) PostgreSQL identifier.
pub(crate) fn safe_name(name: &str) -> bool {
    (1..=63).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `database` as it may be shown or logged: a URL's password is masked.
pub fn display_name(database: &str) -> String {
    match url::Url::parse(database) {
        Ok(mut u) if is_postgres_url(database) && u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(_) if is_postgres_url(database) => database.to_owned(),
        // Unparseable: what follows "://" may still hold a secret.
        _ if is_postgres_url(database) => "postgres://(unparseable URL)".to_owned(),
        _ => database.to_owned(),
    }
}

/// Whether `database` names a PostgreSQL server rather than a file.
pub fn is_postgres_url(database: &str) -> bool {
    ["postgres://", "postgresql://"].iter().any(|p| database.get(..p.len()).is_some_and(|s| s.eq_ignore_ascii_case(p)))
}

#[cfg(feature = "postgres")]
fn open_postgres(url: &str) -> Result<std::sync::Arc<dyn Store>> {
    Ok(std::sync::Arc::new(PostgresStore::open(url)?))
}

#[cfg(not(feature = "postgres"))]
fn open_postgres(_: &str) -> Result<std::sync::Arc<dyn Store>> {
    Err(crate::error::Error::config("this build of idflow has no PostgreSQL store (the `postgres` feature; `idflow serve` has it)"))
}

/// Stored JSON text (a record, a context) back as a value.
pub(super) fn parse_json(text: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|_| crate::error::Error::new(crate::error::ErrorCode::Storage, "a stored record is not valid JSON"))
}

/// A user from its stored JSON.
pub(super) fn parse_user(text: &str) -> Result<User> {
    User::from_json(&parse_json(text)?)
        .ok_or_else(|| crate::error::Error::new(crate::error::ErrorCode::Storage, "a stored user is malformed"))
}

/// Seconds since the epoch as the databases keep them (a signed 64-bit
/// integer), saturating.
pub(super) fn clamp(t: u64) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

/// A flow execution as stored between requests.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionRecord {
    pub id: String,
    pub flow_id: String,
    /// The screen step the execution waits on.
    pub step_id: String,
    /// Bumped by every save; saves must name the version they read.
    pub version: u64,
    /// The flow context (passwords never included).
    pub context: Value,
    /// Seconds since the epoch.
    pub expires_at: u64,
}


/// A refresh token issued at the end of a flow.
#[derive(Debug, Clone, PartialEq)]
pub struct RefreshRecord {
    pub jti: String,
    pub user_id: String,
    pub expires_at: u64,
    pub revoked: bool,
}

/// A connection pool's state at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolUse {
    /// Connections the pool may open.
    pub max: usize,
    /// Connections open now.
    pub open: usize,
    /// Open connections that no call holds.
    pub idle: usize,
    /// Calls waiting for a connection.
    pub waiting: usize,
}

/// One record to write: `(kind, id) = value` until `expires_at`.
#[derive(Debug, Clone, Copy)]
pub struct RecordWrite<'a> {
    pub kind: &'a str,
    pub id: &'a str,
    pub value: &'a Value,
    pub expires_at: Option<u64>,
}

pub trait Store: Send + Sync {
    /// Creates a user; `user_exists` when one of its login ids is taken.
    fn create_user(&self, user: &User) -> Result<()>;
    /// Replaces a user; `user_not_found` when absent, `user_exists` when a
    /// changed login id collides with another user's.
    fn update_user(&self, user: &User) -> Result<()>;
    fn user(&self, user_id: &str) -> Result<Option<User>>;
    /// The user owning `login_id` (normalised before the lookup).
    fn user_by_login_id(&self, login_id: &str) -> Result<Option<User>>;
    /// Deletes a user and frees its login ids; `user_not_found` when absent.
    fn delete_user(&self, user_id: &str) -> Result<()>;
    /// Users matching `query`, ordered by user id.
    fn search_users(&self, query: &UserQuery) -> Result<Vec<User>>;
    /// Creates a user and its password hash in one step, or neither.
    fn create_user_with_password(&self, user: &User, password_hash: &str) -> Result<()>;
    /// The user's password hash (a PHC or bcrypt string), if it has one.
    /// Hashes live apart from the user, so no user JSON ever carries one.
    fn password_hash(&self, user_id: &str) -> Result<Option<String>>;
    /// Sets the user's password hash (`None` removes it); `user_not_found`
    /// when the user is absent. With `expected`, only while the stored hash
    /// is still that one (a rehash on sign-in must not undo a change made
    /// meanwhile). Returns whether it wrote.
    fn set_password_hash(&self, user_id: &str, hash: Option<&str>, expected: Option<&str>) -> Result<bool>;

    /// Inserts a new execution (version 0).
    fn insert_execution(&self, record: &ExecutionRecord) -> Result<()>;
    fn execution(&self, id: &str) -> Result<Option<ExecutionRecord>>;
    /// Saves `record` only if the stored version is still `expected_version`;
    /// returns false (nothing written) when another save came first.
    fn save_execution(&self, record: &ExecutionRecord, expected_version: u64) -> Result<bool>;
    fn delete_execution(&self, id: &str) -> Result<()>;

    fn insert_refresh(&self, record: &RefreshRecord) -> Result<()>;
    fn refresh(&self, jti: &str) -> Result<Option<RefreshRecord>>;

    /// Provider state (signing keys, pending authorization requests, codes,
    /// grants, sessions, revocations) as JSON records named by `(kind, id)`.
    /// A record past `expires_at` (seconds since the epoch; `None` = never)
    /// reads as absent. Upserts `value`.
    fn put_record(&self, kind: &str, id: &str, value: &Value, expires_at: Option<u64>) -> Result<()>;
    /// Inserts only when no live record `(kind, id)` exists; returns false
    /// (nothing written) otherwise. This is the provider's atomic
    /// "first use wins" (single-use codes, refresh rotation, `jti` replay).
    fn insert_record(&self, kind: &str, id: &str, value: &Value, expires_at: Option<u64>) -> Result<bool>;
    /// Redeem once and replace, in one transaction: inserts `marker` only
    /// when no live record of its kind and id exists and, in that case
    /// only, writes `then` too. Returns false (nothing written) when the
    /// marker existed. A crash leaves both writes or neither, so a
    /// rotated refresh token is never spent without its successor stored.
    fn redeem_and_put(&self, marker: &RecordWrite<'_>, then: &RecordWrite<'_>) -> Result<bool>;
    /// Adds one to the counter `(kind, id)` (created at 1, living until
    /// `expires_at`) and returns its new value, atomically: the rate
    /// limits' fixed windows.
    fn hit(&self, kind: &str, id: &str, expires_at: u64) -> Result<u64>;
    fn record(&self, kind: &str, id: &str) -> Result<Option<Value>>;
    /// Deletes the live record `(kind, id)` and returns it, in one atomic
    /// step: of callers racing for a one-time record (a delivery, a state,
    /// a confirmation), one gets it and the others get `None`.
    fn take_record(&self, kind: &str, id: &str) -> Result<Option<Value>>;
    fn delete_record(&self, kind: &str, id: &str) -> Result<()>;
    /// Every live record of `kind`, ordered by id.
    fn records(&self, kind: &str) -> Result<Vec<(String, Value)>>;
    /// Where the data key that seals secrets in this store lives, for a
    /// store in a file (beside it, never inside it); `None` otherwise.
    fn data_key_file(&self) -> Option<std::path::PathBuf> {
        None
    }
    /// Whether the store is a server that several processes share (and
    /// that outlives them): its data key must come from the project
    /// (`encryption.key`), never from the database it protects.
    fn networked(&self) -> bool {
        false
    }
    /// How the store's connection pool is used, for a store that has one.
    fn pool_use(&self) -> Option<PoolUse> {
        None
    }
    /// Drops expired records and executions; returns how many went.
    fn purge_expired(&self, now: u64) -> Result<usize>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_choose_postgres_and_never_show_their_password() {
        assert!(is_postgres_url("postgres://h/db") && is_postgres_url("PostgreSQL://h/db"));
        assert!(!is_postgres_url("./postgres.db") && !is_postgres_url("postgres"));
        assert_eq!(display_name("postgres://idflow:s3cret@db.internal:5432/idflow?sslmode=require"), "postgres://idflow:***@db.internal:5432/idflow?sslmode=require");
        assert_eq!(display_name("postgres://idflow@db.internal/idflow"), "postgres://idflow@db.internal/idflow");
        assert_eq!(display_name("postgres://u:s3cret@[bad"), "postgres://(unparseable URL)");
        assert_eq!(display_name("./idflow.db"), "./idflow.db");
    }
}
