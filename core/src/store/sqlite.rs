//! The embedded default store: one SQLite file (WAL), schema migrations
//! versioned in code (`PRAGMA user_version`), every write in a transaction,
//! so a crash mid-step leaves either the old or the new state.

use super::{clamp, parse_json, parse_user, ExecutionRecord, RecordWrite, RefreshRecord, Store, UserQuery};
use crate::error::{Error, ErrorCode, Result};
use crate::user::{normalize_login_id, User};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde_json::Value;
use std::path::Path;
use std::sync::Mutex;

/// Schema steps; entry `i` migrates version `i` to `i + 1`. Append only.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE users (user_id TEXT PRIMARY KEY, data TEXT NOT NULL);
     CREATE TABLE login_ids (login_id TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(user_id) ON DELETE CASCADE);
     CREATE INDEX login_ids_user ON login_ids(user_id);
     CREATE TABLE executions (id TEXT PRIMARY KEY, flow_id TEXT NOT NULL, step_id TEXT NOT NULL,
         version INTEGER NOT NULL, context TEXT NOT NULL, expires_at INTEGER NOT NULL);
     CREATE TABLE refresh_tokens (jti TEXT PRIMARY KEY, user_id TEXT NOT NULL, expires_at INTEGER NOT NULL,
         revoked INTEGER NOT NULL DEFAULT 0);",
    "CREATE TABLE records (kind TEXT NOT NULL, id TEXT NOT NULL, value TEXT NOT NULL, expires_at INTEGER,
         PRIMARY KEY (kind, id)) WITHOUT ROWID;",
    "CREATE TABLE passwords (user_id TEXT PRIMARY KEY REFERENCES users(user_id) ON DELETE CASCADE,
         hash TEXT NOT NULL) WITHOUT ROWID;",
];

/// Statements through the connection's statement cache, so hot paths do
/// not re-parse their SQL on every call.
trait Cached {
    fn exec<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;
    fn row<T, P: rusqlite::Params, F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>;
}

impl Cached for Connection {
    fn exec<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    fn row<T, P: rusqlite::Params, F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T> {
        self.prepare_cached(sql)?.query_row(params, f)
    }
}

/// Runs `f` again while SQLite answers "busy" or "locked", for up to 10 s.
fn busy_retry<T>(mut f: impl FnMut() -> rusqlite::Result<T>) -> Result<T> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match f() {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(e.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            r => return r.map_err(db),
        }
    }
}

fn db(e: rusqlite::Error) -> Error {
    Error::new(ErrorCode::Storage, format!("sqlite: {e}"))
}

/// A [`Store`] in one SQLite database file.
pub struct SqliteStore {
    conn: Mutex<Connection>,
    /// The database file (`None` in memory).
    path: Option<std::path::PathBuf>,
}

/// Makes `path` (and its WAL and shared-memory files) readable by its
/// owner only: the database holds sessions, users and sealed secrets.
#[cfg(unix)]
fn owner_only(path: &Path) -> Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(Error::new(ErrorCode::Storage, format!("cannot create {}: {e}", path.display()))),
    }
    let mut files = vec![path.to_path_buf()];
    for suffix in ["-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        files.push(p.into());
    }
    for f in files.iter().filter(|f| f.exists()) {
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| Error::new(ErrorCode::Storage, format!("cannot restrict {} to its owner: {e}", f.display())))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn owner_only(_: &Path) -> Result<()> {
    Ok(())
}

impl SqliteStore {
    /// A new user (and its password hash) in one transaction.
    fn insert_user(&self, user: &User, password_hash: Option<&str>) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
        let inserted = tx
            .exec("INSERT OR IGNORE INTO users (user_id, data) VALUES (?1, ?2)", params![user.user_id, user.to_json().to_string()])
            .map_err(db)?;
        if inserted == 0 {
            return Err(Error::new(ErrorCode::UserExists, "a user with this user id exists"));
        }
        claim_login_ids(&tx, user)?; // an error drops `tx`, rolling everything back
        if let Some(h) = password_hash {
            tx.exec("INSERT INTO passwords (user_id, hash) VALUES (?1, ?2)", params![user.user_id, h]).map_err(db)?;
        }
        tx.commit().map_err(db)
    }

    /// Opens (creating and migrating as needed) the database at `path`.
    /// The file and its WAL files are made owner-only (0600); SQLite
    /// creates the WAL files with the database file's mode.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore> {
        let path = path.as_ref();
        let text = path.to_string_lossy();
        if text == ":memory:" || text.starts_with("file:") {
            return SqliteStore::init(Connection::open(path).map_err(db)?, None);
        }
        owner_only(path)?;
        let conn = Connection::open(path).map_err(db)?;
        SqliteStore::init(conn, Some(path.to_path_buf()))
    }

    /// A private in-memory database (tests).
    pub fn open_in_memory() -> Result<SqliteStore> {
        SqliteStore::init(Connection::open_in_memory().map_err(db)?, None)
    }

    fn init(conn: Connection, path: Option<std::path::PathBuf>) -> Result<SqliteStore> {
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(db)?;
        conn.set_prepared_statement_cache_capacity(64);
        // Switching to WAL takes an exclusive lock that SQLite does not wait
        // for: a second process opening the new file at the same moment
        // retries instead of failing.
        busy_retry(|| conn.pragma_update(None, "journal_mode", "WAL"))?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(db)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(db)?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(db)?;
        let known = MIGRATIONS.len() as i64;
        if version > known {
            return Err(Error::new(
                ErrorCode::Storage,
                format!("the database schema is version {version}, newer than this idflow knows ({known})"),
            ));
        }
        for (i, step) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            // Several processes may open a new database at once: the write
            // lock orders them, and each step re-reads the version under
            // it, so a step runs exactly once.
            busy_retry(|| conn.execute_batch("BEGIN IMMEDIATE"))?;
            let applied = (|| -> rusqlite::Result<()> {
                let now: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
                if now <= i as i64 {
                    conn.execute_batch(step)?;
                    conn.pragma_update(None, "user_version", (i + 1) as i64)?;
                }
                Ok(())
            })();
            match applied {
                Ok(()) => conn.execute_batch("COMMIT").map_err(db)?,
                Err(e) => {
                    let _ = conn.execute_batch("ROLLBACK");
                    return Err(db(e));
                }
            }
        }
        Ok(SqliteStore { conn: Mutex::new(conn), path })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn load_user(conn: &Connection, user_id: &str) -> Result<Option<User>> {
    let data: Option<String> = conn
        .row("SELECT data FROM users WHERE user_id = ?1", params![user_id], |r| r.get(0))
        .optional()
        .map_err(db)?;
    data.as_deref().map(parse_user).transpose()
}

fn taken(login_id: &str) -> Error {
    Error::new(ErrorCode::UserExists, format!("login id {login_id:?} already belongs to a user"))
}

/// Claims every login id of `user` inside `tx`; the caller's transaction
/// rolls back on a clash.
fn claim_login_ids(tx: &rusqlite::Transaction<'_>, user: &User) -> Result<()> {
    for login_id in &user.login_ids {
        let id = normalize_login_id(login_id);
        let n = tx
            .exec("INSERT OR IGNORE INTO login_ids (login_id, user_id) VALUES (?1, ?2)", params![id, user.user_id])
            .map_err(db)?;
        if n == 0 {
            return Err(taken(&id));
        }
    }
    Ok(())
}

impl Store for SqliteStore {
    fn data_key_file(&self) -> Option<std::path::PathBuf> {
        self.path.as_ref().map(|p| {
            let mut name = p.as_os_str().to_owned();
            name.push(".key");
            name.into()
        })
    }

    fn create_user(&self, user: &User) -> Result<()> {
        self.insert_user(user, None)
    }

    fn create_user_with_password(&self, user: &User, password_hash: &str) -> Result<()> {
        self.insert_user(user, Some(password_hash))
    }

    fn password_hash(&self, user_id: &str) -> Result<Option<String>> {
        self.conn().row("SELECT hash FROM passwords WHERE user_id = ?1", params![user_id], |r| r.get(0)).optional().map_err(db)
    }

    fn set_password_hash(&self, user_id: &str, hash: Option<&str>, expected: Option<&str>) -> Result<bool> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
        let exists: Option<i64> = tx.row("SELECT 1 FROM users WHERE user_id = ?1", params![user_id], |r| r.get(0)).optional().map_err(db)?;
        if exists.is_none() {
            return Err(Error::new(ErrorCode::UserNotFound, "no user with this user id"));
        }
        let current: Option<String> = tx.row("SELECT hash FROM passwords WHERE user_id = ?1", params![user_id], |r| r.get(0)).optional().map_err(db)?;
        if expected.is_some_and(|e| current.as_deref() != Some(e)) {
            return Ok(false);
        }
        match hash {
            Some(h) => tx.exec("INSERT INTO passwords (user_id, hash) VALUES (?1, ?2) ON CONFLICT (user_id) DO UPDATE SET hash = excluded.hash", params![user_id, h]),
            None => tx.exec("DELETE FROM passwords WHERE user_id = ?1", params![user_id]),
        }
        .map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(true)
    }

    fn update_user(&self, user: &User) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
        let n = tx
            .exec("UPDATE users SET data = ?2 WHERE user_id = ?1", params![user.user_id, user.to_json().to_string()])
            .map_err(db)?;
        if n == 0 {
            return Err(Error::new(ErrorCode::UserNotFound, "no user with this user id"));
        }
        tx.exec("DELETE FROM login_ids WHERE user_id = ?1", params![user.user_id]).map_err(db)?;
        claim_login_ids(&tx, user)?;
        tx.commit().map_err(db)
    }

    fn user(&self, user_id: &str) -> Result<Option<User>> {
        load_user(&self.conn(), user_id)
    }

    fn user_by_login_id(&self, login_id: &str) -> Result<Option<User>> {
        let conn = self.conn();
        let owner: Option<String> = conn
            .row("SELECT user_id FROM login_ids WHERE login_id = ?1", params![normalize_login_id(login_id)], |r| r.get(0))
            .optional()
            .map_err(db)?;
        match owner {
            None => Ok(None),
            Some(id) => load_user(&conn, &id),
        }
    }

    fn delete_user(&self, user_id: &str) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
        tx.exec("DELETE FROM passwords WHERE user_id = ?1", params![user_id]).map_err(db)?;
        tx.exec("DELETE FROM login_ids WHERE user_id = ?1", params![user_id]).map_err(db)?;
        let n = tx.exec("DELETE FROM users WHERE user_id = ?1", params![user_id]).map_err(db)?;
        if n == 0 {
            return Err(Error::new(ErrorCode::UserNotFound, "no user with this user id"));
        }
        tx.commit().map_err(db)
    }

    fn search_users(&self, query: &UserQuery) -> Result<Vec<User>> {
        // Rows are read in user-id order and filtered by the same
        // `UserQuery::matches` the memory store uses, so both agree exactly.
        let conn = self.conn();
        let mut stmt = conn.prepare_cached("SELECT data FROM users ORDER BY user_id").map_err(db)?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(db)?;
        query.page(rows.map(|row| parse_user(&row.map_err(db)?)))
    }

    fn insert_execution(&self, r: &ExecutionRecord) -> Result<()> {
        self.conn()
            .exec(
                "INSERT INTO executions (id, flow_id, step_id, version, context, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![r.id, r.flow_id, r.step_id, r.version as i64, r.context.to_string(), r.expires_at as i64],
            )
            .map(|_| ())
            .map_err(db)
    }

    fn execution(&self, id: &str) -> Result<Option<ExecutionRecord>> {
        let row = self
            .conn()
            .row(
                "SELECT flow_id, step_id, version, context, expires_at FROM executions WHERE id = ?1",
                params![id],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?, r.get::<_, String>(3)?, r.get::<_, i64>(4)?)),
            )
            .optional()
            .map_err(db)?;
        match row {
            None => Ok(None),
            Some((flow_id, step_id, version, context, expires_at)) => Ok(Some(ExecutionRecord {
                id: id.to_owned(),
                flow_id,
                step_id,
                version: version as u64,
                context: parse_json(&context)?,
                expires_at: expires_at as u64,
            })),
        }
    }

    fn save_execution(&self, r: &ExecutionRecord, expected_version: u64) -> Result<bool> {
        let n = self
            .conn()
            .exec(
                "UPDATE executions SET step_id = ?2, version = ?3, context = ?4, expires_at = ?5 WHERE id = ?1 AND version = ?6",
                params![r.id, r.step_id, r.version as i64, r.context.to_string(), r.expires_at as i64, expected_version as i64],
            )
            .map_err(db)?;
        Ok(n == 1)
    }

    fn delete_execution(&self, id: &str) -> Result<()> {
        self.conn().exec("DELETE FROM executions WHERE id = ?1", params![id]).map(|_| ()).map_err(db)
    }

    fn insert_refresh(&self, r: &RefreshRecord) -> Result<()> {
        self.conn()
            .exec(
                "INSERT INTO refresh_tokens (jti, user_id, expires_at, revoked) VALUES (?1, ?2, ?3, ?4)",
                params![r.jti, r.user_id, r.expires_at as i64, r.revoked],
            )
            .map(|_| ())
            .map_err(db)
    }

    fn refresh(&self, jti: &str) -> Result<Option<RefreshRecord>> {
        self.conn()
            .row(
                "SELECT user_id, expires_at, revoked FROM refresh_tokens WHERE jti = ?1",
                params![jti],
                |r| {
                    Ok(RefreshRecord {
                        jti: jti.to_owned(),
                        user_id: r.get(0)?,
                        expires_at: r.get::<_, i64>(1)? as u64,
                        revoked: r.get(2)?,
                    })
                },
            )
            .optional()
            .map_err(db)
    }

    fn put_record(&self, kind: &str, id: &str, value: &Value, expires_at: Option<u64>) -> Result<()> {
        self.conn()
            .exec(
                "INSERT OR REPLACE INTO records (kind, id, value, expires_at) VALUES (?1, ?2, ?3, ?4)",
                params![kind, id, value.to_string(), expires_at.map(clamp)],
            )
            .map(|_| ())
            .map_err(db)
    }

    fn insert_record(&self, kind: &str, id: &str, value: &Value, expires_at: Option<u64>) -> Result<bool> {
        // One statement: replaces only an expired row, so the check and the
        // write cannot interleave with another writer.
        let n = self
            .conn()
            .exec(
                "INSERT INTO records (kind, id, value, expires_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (kind, id) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at
                 WHERE records.expires_at IS NOT NULL AND records.expires_at <= ?5",
                params![kind, id, value.to_string(), expires_at.map(clamp), clamp(crate::ids::now_secs())],
            )
            .map_err(db)?;
        Ok(n == 1)
    }

    fn hit(&self, kind: &str, id: &str, expires_at: u64) -> Result<u64> {
        let now = clamp(crate::ids::now_secs());
        let n: i64 = self
            .conn()
            .row(
                "INSERT INTO records (kind, id, value, expires_at) VALUES (?1, ?2, '1', ?3)
                 ON CONFLICT (kind, id) DO UPDATE SET
                     value = CASE WHEN records.expires_at IS NOT NULL AND records.expires_at <= ?4 THEN '1'
                                  ELSE CAST(CAST(records.value AS INTEGER) + 1 AS TEXT) END,
                     expires_at = CASE WHEN records.expires_at IS NOT NULL AND records.expires_at <= ?4 THEN excluded.expires_at
                                       ELSE records.expires_at END
                 RETURNING CAST(value AS INTEGER)",
                params![kind, id, clamp(expires_at), now],
                |r| r.get(0),
            )
            .map_err(db)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    fn redeem_and_put(&self, marker: &RecordWrite<'_>, then: &RecordWrite<'_>) -> Result<bool> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
        let n = tx
            .exec(
                "INSERT INTO records (kind, id, value, expires_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (kind, id) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at
                 WHERE records.expires_at IS NOT NULL AND records.expires_at <= ?5",
                params![marker.kind, marker.id, marker.value.to_string(), marker.expires_at.map(clamp), clamp(crate::ids::now_secs())],
            )
            .map_err(db)?;
        if n != 1 {
            return Ok(false); // dropping the transaction rolls it back
        }
        tx.exec(
            "INSERT OR REPLACE INTO records (kind, id, value, expires_at) VALUES (?1, ?2, ?3, ?4)",
            params![then.kind, then.id, then.value.to_string(), then.expires_at.map(clamp)],
        )
        .map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(true)
    }

    fn record(&self, kind: &str, id: &str) -> Result<Option<Value>> {
        let text: Option<String> = self
            .conn()
            .row(
                "SELECT value FROM records WHERE kind = ?1 AND id = ?2 AND (expires_at IS NULL OR expires_at > ?3)",
                params![kind, id, clamp(crate::ids::now_secs())],
                |r| r.get(0),
            )
            .optional()
            .map_err(db)?;
        text.map(|t| parse_json(&t)).transpose()
    }

    fn take_record(&self, kind: &str, id: &str) -> Result<Option<Value>> {
        let text: Option<String> = self
            .conn()
            .row(
                "DELETE FROM records WHERE kind = ?1 AND id = ?2 AND (expires_at IS NULL OR expires_at > ?3) RETURNING value",
                params![kind, id, clamp(crate::ids::now_secs())],
                |r| r.get(0),
            )
            .optional()
            .map_err(db)?;
        text.map(|t| parse_json(&t)).transpose()
    }

    fn delete_record(&self, kind: &str, id: &str) -> Result<()> {
        self.conn().exec("DELETE FROM records WHERE kind = ?1 AND id = ?2", params![kind, id]).map(|_| ()).map_err(db)
    }

    fn records(&self, kind: &str) -> Result<Vec<(String, Value)>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached("SELECT id, value FROM records WHERE kind = ?1 AND (expires_at IS NULL OR expires_at > ?2) ORDER BY id")
            .map_err(db)?;
        let rows = stmt
            .query_map(params![kind, clamp(crate::ids::now_secs())], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(db)?;
        let mut out = Vec::new();
        for row in rows {
            let (id, text) = row.map_err(db)?;
            out.push((id, parse_json(&text)?));
        }
        Ok(out)
    }

    fn purge_expired(&self, now: u64) -> Result<usize> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
        let a = tx.exec("DELETE FROM records WHERE expires_at IS NOT NULL AND expires_at <= ?1", params![clamp(now)]).map_err(db)?;
        let b = tx.exec("DELETE FROM executions WHERE expires_at <= ?1", params![clamp(now)]).map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(a + b)
    }
}

