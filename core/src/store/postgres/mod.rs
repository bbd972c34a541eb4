//! The PostgreSQL store (feature `postgres`): one database shared by any
//! number of `idflow serve` processes. tokio-postgres through a deadpool
//! connection pool, on a small runtime of its own, so the synchronous
//! [`Store`] calls of the engine and the provider block only their own
//! thread (through `block_in_place` on a multi-threaded runtime) while the
//! pool's connections keep running. Every method is one statement or one
//! transaction; the races the provider depends on ("first use wins",
//! compare-and-swap on executions, counters) are single statements that
//! PostgreSQL orders. Migrations run once, under an advisory lock, however
//! many servers start together; expiry purges run on one server at a time.

mod connect;

use super::{clamp, parse_json, parse_user, ExecutionRecord, PoolUse, RecordWrite, RefreshRecord, Store, UserQuery};
use crate::error::{Error, ErrorCode, Result};
use crate::user::{normalize_login_id, User};
use deadpool_postgres::{GenericClient, Object, Pool};
use serde_json::Value;
use std::future::Future;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

/// Schema steps; entry `i` migrates version `i` to `i + 1`. Append only.
const MIGRATIONS: &[&str] = &["CREATE TABLE users (user_id TEXT PRIMARY KEY, data TEXT NOT NULL);
     CREATE TABLE login_ids (login_id TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(user_id) ON DELETE CASCADE);
     CREATE INDEX login_ids_user ON login_ids(user_id);
     CREATE TABLE passwords (user_id TEXT PRIMARY KEY REFERENCES users(user_id) ON DELETE CASCADE, hash TEXT NOT NULL);
     CREATE TABLE executions (id TEXT PRIMARY KEY, flow_id TEXT NOT NULL, step_id TEXT NOT NULL,
         version BIGINT NOT NULL, context TEXT NOT NULL, expires_at BIGINT NOT NULL);
     CREATE INDEX executions_expiry ON executions(expires_at);
     CREATE TABLE refresh_tokens (jti TEXT PRIMARY KEY, user_id TEXT NOT NULL, expires_at BIGINT NOT NULL,
         revoked BOOLEAN NOT NULL DEFAULT false);
     CREATE TABLE records (kind TEXT NOT NULL, id TEXT NOT NULL, value TEXT NOT NULL, expires_at BIGINT,
         PRIMARY KEY (kind, id));
     CREATE INDEX records_expiry ON records(expires_at) WHERE expires_at IS NOT NULL;"];

/// Advisory lock keys (any constant both sides agree on): migrations, and
/// the expiry purge.
const MIGRATION_LOCK: i64 = 0x1df1_0001;
/// With the schema's hash: the purge of each schema has its own lock.
const PURGE_LOCK: i32 = 0x1df1_0002;

pub(super) fn pg(e: impl std::fmt::Display) -> Error {
    Error::new(ErrorCode::Storage, format!("postgres: {e}"))
}

fn now() -> i64 {
    clamp(crate::ids::now_secs())
}

/// A [`Store`] in a PostgreSQL database.
pub struct PostgresStore {
    pool: Pool,
    /// The URL's `schema`, created by the first migration.
    schema: Option<String>,
    /// The pool's own runtime (taken on drop, which may happen inside
    /// another runtime, where a runtime cannot be dropped in place).
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PostgresStore")
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user:password@host:port/db?sslmode=...`),
    /// creating and migrating the schema as needed.
    pub fn open(url: &str) -> Result<PostgresStore> {
        let (pool, runtime, schema) = connect::pool(url)?;
        let store = PostgresStore { pool, schema, runtime: Some(runtime) };
        store.block(store.migrate())?;
        Ok(store)
    }

    /// Runs `fut` on the pool's runtime and waits for it: directly on a
    /// thread outside any runtime, through `block_in_place` on a worker of
    /// a multi-threaded one, and on a scoped helper thread elsewhere.
    fn block<T: Send>(&self, fut: impl Future<Output = Result<T>> + Send) -> Result<T> {
        let Some(rt) = self.runtime.as_ref() else {
            return Err(Error::internal("the PostgreSQL store is closed"));
        };
        match tokio::runtime::Handle::try_current() {
            Err(_) => rt.block_on(fut),
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(|| rt.block_on(fut)),
            Ok(_) => {
                std::thread::scope(|s| s.spawn(|| rt.block_on(fut)).join()).unwrap_or_else(|_| Err(Error::internal("a PostgreSQL call panicked")))
            }
        }
    }

    async fn client(&self) -> Result<Object> {
        self.pool.get().await.map_err(pg)
    }

    /// Brings the schema to the newest version, once: concurrent starters
    /// queue on an advisory lock held for the transaction.
    async fn migrate(&self) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        exec(&tx, "SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
        if let Some(schema) = &self.schema {
            // The name was checked (letters, digits, _ and -) and is quoted.
            tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"")).await.map_err(pg)?;
        }
        tx.batch_execute("CREATE TABLE IF NOT EXISTS idflow_schema (version INTEGER NOT NULL)").await.map_err(pg)?;
        let version: i32 = match opt(&tx, "SELECT version FROM idflow_schema", &[]).await? {
            Some(row) => row.get(0),
            None => {
                exec(&tx, "INSERT INTO idflow_schema (version) VALUES (0)", &[]).await?;
                0
            }
        };
        let known = MIGRATIONS.len() as i32;
        if version > known {
            return Err(Error::new(ErrorCode::Storage, format!("the database schema is version {version}, newer than this idflow knows ({known})")));
        }
        for step in MIGRATIONS.iter().skip(version as usize) {
            tx.batch_execute(step).await.map_err(pg)?;
        }
        exec(&tx, "UPDATE idflow_schema SET version = $1", &[&known]).await?;
        tx.commit().await.map_err(pg)
    }

    async fn insert_user(&self, user: &User, password_hash: Option<&str>) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let data = user.to_json().to_string();
        let n = exec(&tx, "INSERT INTO users (user_id, data) VALUES ($1, $2) ON CONFLICT DO NOTHING", &[&user.user_id, &data]).await?;
        if n == 0 {
            return Err(Error::new(ErrorCode::UserExists, "a user with this user id exists"));
        }
        claim_login_ids(&tx, user).await?; // an error drops `tx`, rolling everything back
        if let Some(h) = password_hash {
            exec(&tx, "INSERT INTO passwords (user_id, hash) VALUES ($1, $2)", &[&user.user_id, &h]).await?;
        }
        tx.commit().await.map_err(pg)
    }
}

/// Statement parameters.
type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

// Every statement goes through the connection's statement cache: a query
// is parsed and planned once per connection, then each call is one round
// trip.
async fn exec(c: &impl GenericClient, sql: &str, params: Params<'_>) -> Result<u64> {
    let statement = c.prepare_cached(sql).await.map_err(pg)?;
    c.execute(&statement, params).await.map_err(pg)
}

async fn opt(c: &impl GenericClient, sql: &str, params: Params<'_>) -> Result<Option<Row>> {
    let statement = c.prepare_cached(sql).await.map_err(pg)?;
    c.query_opt(&statement, params).await.map_err(pg)
}

async fn one(c: &impl GenericClient, sql: &str, params: Params<'_>) -> Result<Row> {
    let statement = c.prepare_cached(sql).await.map_err(pg)?;
    c.query_one(&statement, params).await.map_err(pg)
}

async fn all(c: &impl GenericClient, sql: &str, params: Params<'_>) -> Result<Vec<Row>> {
    let statement = c.prepare_cached(sql).await.map_err(pg)?;
    c.query(&statement, params).await.map_err(pg)
}

/// The user in a row's first column (its JSON).
fn user_of(row: &tokio_postgres::Row) -> Result<User> {
    parse_user(row.get(0))
}

/// Claims every login id of `user` inside `tx`; the caller's transaction
/// rolls back on a clash.
async fn claim_login_ids(tx: &deadpool_postgres::Transaction<'_>, user: &User) -> Result<()> {
    for login_id in &user.login_ids {
        let id = normalize_login_id(login_id);
        let n = exec(tx, "INSERT INTO login_ids (login_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING", &[&id, &user.user_id]).await?;
        if n == 0 {
            return Err(Error::new(ErrorCode::UserExists, format!("login id {id:?} already belongs to a user")));
        }
    }
    Ok(())
}

/// Inserts a record unless a live one holds its key (an expired one is
/// replaced): one statement, so the check and the write cannot interleave.
const INSERT_IF_ABSENT: &str = "INSERT INTO records (kind, id, value, expires_at) VALUES ($1, $2, $3, $4)
     ON CONFLICT (kind, id) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at
     WHERE records.expires_at IS NOT NULL AND records.expires_at <= $5";
const UPSERT: &str = "INSERT INTO records (kind, id, value, expires_at) VALUES ($1, $2, $3, $4)
     ON CONFLICT (kind, id) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at";

impl Store for PostgresStore {
    fn networked(&self) -> bool {
        true
    }

    fn pool_use(&self) -> Option<PoolUse> {
        let s = self.pool.status();
        Some(PoolUse { max: s.max_size, open: s.size, idle: s.available, waiting: s.waiting })
    }

    fn create_user(&self, user: &User) -> Result<()> {
        self.block(self.insert_user(user, None))
    }

    fn create_user_with_password(&self, user: &User, password_hash: &str) -> Result<()> {
        self.block(self.insert_user(user, Some(password_hash)))
    }

    fn password_hash(&self, user_id: &str) -> Result<Option<String>> {
        self.block(async {
            let row = opt(&self.client().await?, "SELECT hash FROM passwords WHERE user_id = $1", &[&user_id]).await?;
            Ok(row.map(|r| r.get(0)))
        })
    }

    fn set_password_hash(&self, user_id: &str, hash: Option<&str>, expected: Option<&str>) -> Result<bool> {
        self.block(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(pg)?;
            // The user's row lock orders concurrent changes of its password.
            if opt(&tx, "SELECT 1 FROM users WHERE user_id = $1 FOR UPDATE", &[&user_id]).await?.is_none() {
                return Err(Error::new(ErrorCode::UserNotFound, "no user with this user id"));
            }
            let current: Option<String> = opt(&tx, "SELECT hash FROM passwords WHERE user_id = $1", &[&user_id]).await?.map(|r| r.get(0));
            if expected.is_some_and(|e| current.as_deref() != Some(e)) {
                return Ok(false);
            }
            match hash {
                Some(h) => {
                    let sql = "INSERT INTO passwords (user_id, hash) VALUES ($1, $2) ON CONFLICT (user_id) DO UPDATE SET hash = excluded.hash";
                    exec(&tx, sql, &[&user_id, &h]).await
                }
                None => exec(&tx, "DELETE FROM passwords WHERE user_id = $1", &[&user_id]).await,
            }?;
            tx.commit().await.map_err(pg)?;
            Ok(true)
        })
    }

    fn update_user(&self, user: &User) -> Result<()> {
        self.block(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(pg)?;
            let data = user.to_json().to_string();
            let n = exec(&tx, "UPDATE users SET data = $2 WHERE user_id = $1", &[&user.user_id, &data]).await?;
            if n == 0 {
                return Err(Error::new(ErrorCode::UserNotFound, "no user with this user id"));
            }
            exec(&tx, "DELETE FROM login_ids WHERE user_id = $1", &[&user.user_id]).await?;
            claim_login_ids(&tx, user).await?;
            tx.commit().await.map_err(pg)
        })
    }

    fn user(&self, user_id: &str) -> Result<Option<User>> {
        self.block(async {
            opt(&self.client().await?, "SELECT data FROM users WHERE user_id = $1", &[&user_id]).await?.map(|row| user_of(&row)).transpose()
        })
    }

    fn user_by_login_id(&self, login_id: &str) -> Result<Option<User>> {
        let id = normalize_login_id(login_id);
        self.block(async {
            opt(&self.client().await?, "SELECT u.data FROM login_ids l JOIN users u ON u.user_id = l.user_id WHERE l.login_id = $1", &[&id])
                .await?
                .map(|row| user_of(&row))
                .transpose()
        })
    }

    fn delete_user(&self, user_id: &str) -> Result<()> {
        self.block(async {
            // Login ids and the password go with the user (ON DELETE CASCADE).
            let n = exec(&self.client().await?, "DELETE FROM users WHERE user_id = $1", &[&user_id]).await?;
            if n == 0 {
                return Err(Error::new(ErrorCode::UserNotFound, "no user with this user id"));
            }
            Ok(())
        })
    }

    fn search_users(&self, query: &UserQuery) -> Result<Vec<User>> {
        // Rows in user-id order, filtered by the same `UserQuery::matches`
        // as the other stores, so all three agree exactly.
        self.block(async {
            let rows = all(&self.client().await?, "SELECT data FROM users ORDER BY user_id COLLATE \"C\"", &[]).await?;
            query.page(rows.iter().map(user_of))
        })
    }

    fn insert_execution(&self, r: &ExecutionRecord) -> Result<()> {
        let context = r.context.to_string();
        self.block(async {
            let sql = "INSERT INTO executions (id, flow_id, step_id, version, context, expires_at) VALUES ($1, $2, $3, $4, $5, $6)";
            exec(&self.client().await?, sql, &[&r.id, &r.flow_id, &r.step_id, &clamp(r.version), &context, &clamp(r.expires_at)]).await.map(|_| ())
        })
    }

    fn execution(&self, id: &str) -> Result<Option<ExecutionRecord>> {
        self.block(async {
            let row =
                opt(&self.client().await?, "SELECT flow_id, step_id, version, context, expires_at FROM executions WHERE id = $1", &[&id]).await?;
            row.map(|r| {
                Ok(ExecutionRecord {
                    id: id.to_owned(),
                    flow_id: r.get(0),
                    step_id: r.get(1),
                    version: r.get::<_, i64>(2) as u64,
                    context: parse_json(r.get::<_, &str>(3))?,
                    expires_at: r.get::<_, i64>(4) as u64,
                })
            })
            .transpose()
        })
    }

    fn save_execution(&self, r: &ExecutionRecord, expected_version: u64) -> Result<bool> {
        let context = r.context.to_string();
        self.block(async {
            let sql = "UPDATE executions SET step_id = $2, version = $3, context = $4, expires_at = $5 WHERE id = $1 AND version = $6";
            let params: Params<'_> = &[&r.id, &r.step_id, &clamp(r.version), &context, &clamp(r.expires_at), &clamp(expected_version)];
            Ok(exec(&self.client().await?, sql, params).await? == 1)
        })
    }

    fn delete_execution(&self, id: &str) -> Result<()> {
        self.block(async { exec(&self.client().await?, "DELETE FROM executions WHERE id = $1", &[&id]).await.map(|_| ()) })
    }

    fn insert_refresh(&self, r: &RefreshRecord) -> Result<()> {
        self.block(async {
            let sql = "INSERT INTO refresh_tokens (jti, user_id, expires_at, revoked) VALUES ($1, $2, $3, $4)";
            exec(&self.client().await?, sql, &[&r.jti, &r.user_id, &clamp(r.expires_at), &r.revoked]).await.map(|_| ())
        })
    }

    fn refresh(&self, jti: &str) -> Result<Option<RefreshRecord>> {
        self.block(async {
            let row = opt(&self.client().await?, "SELECT user_id, expires_at, revoked FROM refresh_tokens WHERE jti = $1", &[&jti]).await?;
            Ok(row.map(|r| RefreshRecord { jti: jti.to_owned(), user_id: r.get(0), expires_at: r.get::<_, i64>(1) as u64, revoked: r.get(2) }))
        })
    }

    fn put_record(&self, kind: &str, id: &str, value: &Value, expires_at: Option<u64>) -> Result<()> {
        let text = value.to_string();
        let expires = expires_at.map(clamp);
        self.block(async { exec(&self.client().await?, UPSERT, &[&kind, &id, &text, &expires]).await.map(|_| ()) })
    }

    fn insert_record(&self, kind: &str, id: &str, value: &Value, expires_at: Option<u64>) -> Result<bool> {
        let text = value.to_string();
        let expires = expires_at.map(clamp);
        self.block(async { Ok(exec(&self.client().await?, INSERT_IF_ABSENT, &[&kind, &id, &text, &expires, &now()]).await? == 1) })
    }

    fn redeem_and_put(&self, marker: &RecordWrite<'_>, then: &RecordWrite<'_>) -> Result<bool> {
        let (marker_text, then_text) = (marker.value.to_string(), then.value.to_string());
        let (marker_expires, then_expires) = (marker.expires_at.map(clamp), then.expires_at.map(clamp));
        self.block(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(pg)?;
            let n = exec(&tx, INSERT_IF_ABSENT, &[&marker.kind, &marker.id, &marker_text, &marker_expires, &now()]).await?;
            if n != 1 {
                return Ok(false); // dropping the transaction rolls it back
            }
            exec(&tx, UPSERT, &[&then.kind, &then.id, &then_text, &then_expires]).await?;
            tx.commit().await.map_err(pg)?;
            Ok(true)
        })
    }

    fn hit(&self, kind: &str, id: &str, expires_at: u64) -> Result<u64> {
        self.block(async {
            let row = one(
                &self.client().await?,
                "INSERT INTO records (kind, id, value, expires_at) VALUES ($1, $2, '1', $3)
                     ON CONFLICT (kind, id) DO UPDATE SET
                         value = CASE WHEN records.expires_at IS NOT NULL AND records.expires_at <= $4 THEN '1'
                                      ELSE (records.value::BIGINT + 1)::TEXT END,
                         expires_at = CASE WHEN records.expires_at IS NOT NULL AND records.expires_at <= $4 THEN excluded.expires_at
                                           ELSE records.expires_at END
                     RETURNING value::BIGINT",
                &[&kind, &id, &clamp(expires_at), &now()],
            )
            .await?;
            Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
        })
    }

    fn record(&self, kind: &str, id: &str) -> Result<Option<Value>> {
        self.block(async {
            let row = opt(
                &self.client().await?,
                "SELECT value FROM records WHERE kind = $1 AND id = $2 AND (expires_at IS NULL OR expires_at > $3)",
                &[&kind, &id, &now()],
            )
            .await?;
            row.map(|r| parse_json(r.get::<_, &str>(0))).transpose()
        })
    }

    fn take_record(&self, kind: &str, id: &str) -> Result<Option<Value>> {
        self.block(async {
            let sql = "DELETE FROM records WHERE kind = $1 AND id = $2 AND (expires_at IS NULL OR expires_at > $3) RETURNING value";
            let row = opt(&self.client().await?, sql, &[&kind, &id, &now()]).await?;
            row.map(|r| parse_json(r.get::<_, &str>(0))).transpose()
        })
    }

    fn delete_record(&self, kind: &str, id: &str) -> Result<()> {
        self.block(async { exec(&self.client().await?, "DELETE FROM records WHERE kind = $1 AND id = $2", &[&kind, &id]).await.map(|_| ()) })
    }

    fn records(&self, kind: &str) -> Result<Vec<(String, Value)>> {
        self.block(async {
            let sql = "SELECT id, value FROM records WHERE kind = $1 AND (expires_at IS NULL OR expires_at > $2) ORDER BY id COLLATE \"C\"";
            let rows = all(&self.client().await?, sql, &[&kind, &now()]).await?;
            rows.iter().map(|r| Ok((r.get::<_, String>(0), parse_json(r.get::<_, &str>(1))?))).collect()
        })
    }

    fn purge_expired(&self, now: u64) -> Result<usize> {
        let now = clamp(now);
        self.block(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(pg)?;
            // One server purges at a time; the others skip this round.
            let locked: bool = one(&tx, "SELECT pg_try_advisory_xact_lock($1, hashtext(current_schema()))", &[&PURGE_LOCK]).await?.get(0);
            if !locked {
                return Ok(0);
            }
            let a = exec(&tx, "DELETE FROM records WHERE expires_at IS NOT NULL AND expires_at <= $1", &[&now]).await?;
            let b = exec(&tx, "DELETE FROM executions WHERE expires_at <= $1", &[&now]).await?;
            tx.commit().await.map_err(pg)?;
            Ok((a + b) as usize)
        })
    }
}
