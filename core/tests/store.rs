//! The `Store` contract, run against every implementation, and SQLite
//! persistence across a reopen in the middle of a flow.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use idflow::flow::{parse_flow, EngineConfig, FlowEngine, FlowStatus};
use idflow::jose::{Algorithm, Key};
use idflow::store::{ExecutionRecord, MemoryStore, RecordWrite, RefreshRecord, SqliteStore, Store};
use idflow::user::User;
use idflow::ErrorCode;
use serde_json::{json, Map, Value};
use std::sync::Arc;

fn contract(store: &dyn Store) {
    let ann = User::new("U1".into(), "Ann@Example.com", 10);
    store.create_user(&ann).unwrap();
    assert_eq!(store.user("U1").unwrap(), Some(ann.clone()));
    assert_eq!(store.user_by_login_id("ANN@example.COM").unwrap().map(|u| u.user_id), Some("U1".into()));
    assert_eq!(store.user_by_login_id("bob@example.com").unwrap(), None);
    // Login ids are unique; a failed create leaves nothing behind.
    let mut clash = User::new("U2".into(), "bob@example.com", 10);
    clash.login_ids.push("ann@example.com".into());
    assert_eq!(store.create_user(&clash).map_err(|e| e.code), Err(ErrorCode::UserExists));
    assert_eq!(store.user("U2").unwrap(), None);
    assert_eq!(store.user_by_login_id("bob@example.com").unwrap(), None);
    assert_eq!(store.create_user(&ann).map_err(|e| e.code), Err(ErrorCode::UserExists));
    // Updates move login ids.
    let bob = User::new("U2".into(), "bob@example.com", 11);
    store.create_user(&bob).unwrap();
    let mut ann2 = ann.clone();
    ann2.login_ids = vec!["ann@new.example".into()];
    ann2.name = Some("Ann".into());
    store.update_user(&ann2).unwrap();
    assert_eq!(store.user_by_login_id("ann@example.com").unwrap(), None);
    assert_eq!(store.user_by_login_id("ann@new.example").unwrap().and_then(|u| u.name), Some("Ann".into()));
    let mut steal = bob.clone();
    steal.login_ids.push("ann@new.example".into());
    assert_eq!(store.update_user(&steal).map_err(|e| e.code), Err(ErrorCode::UserExists));
    assert_eq!(store.user_by_login_id("bob@example.com").unwrap().map(|u| u.user_id), Some("U2".into()));
    let ghost = User::new("U404".into(), "ghost@example.com", 1);
    assert_eq!(store.update_user(&ghost).map_err(|e| e.code), Err(ErrorCode::UserNotFound));
    // Executions: compare-and-swap on the version.
    let rec = ExecutionRecord { id: "E1".into(), flow_id: "f".into(), step_id: "a".into(), version: 0, context: json!({"form": {"x": 1}}), expires_at: 99 };
    store.insert_execution(&rec).unwrap();
    assert!(store.insert_execution(&rec).is_err());
    assert_eq!(store.execution("E1").unwrap(), Some(rec.clone()));
    let next = ExecutionRecord { version: 1, step_id: "b".into(), ..rec.clone() };
    assert!(store.save_execution(&next, 0).unwrap());
    assert!(!store.save_execution(&next, 0).unwrap(), "a stale version loses");
    assert_eq!(store.execution("E1").unwrap().map(|r| r.step_id), Some("b".into()));
    store.delete_execution("E1").unwrap();
    assert_eq!(store.execution("E1").unwrap(), None);
    assert!(!store.save_execution(&next, 1).unwrap());
    // Search and delete.
    use idflow::user::UserQuery;
    let all = store.search_users(&UserQuery::default()).unwrap();
    assert_eq!(all.iter().map(|u| u.user_id.as_str()).collect::<Vec<_>>(), ["U1", "U2"]);
    let q = UserQuery { text: Some("ANN".into()), ..UserQuery::default() };
    assert_eq!(store.search_users(&q).unwrap().len(), 1);
    let page = UserQuery { limit: 1, offset: 1, ..UserQuery::default() };
    assert_eq!(store.search_users(&page).unwrap()[0].user_id, "U2");
    let disabled = UserQuery { status: Some(idflow::user::UserStatus::Disabled), ..UserQuery::default() };
    assert!(store.search_users(&disabled).unwrap().is_empty());
    store.delete_user("U2").unwrap();
    assert_eq!(store.user_by_login_id("bob@example.com").unwrap(), None);
    assert_eq!(store.delete_user("U2").map_err(|e| e.code), Err(ErrorCode::UserNotFound));
    store.create_user(&User::new("U3".into(), "bob@example.com", 12)).unwrap();
    // Refresh tokens.
    store.insert_refresh(&RefreshRecord { jti: "R1".into(), user_id: "U1".into(), expires_at: 5, revoked: false }).unwrap();
    assert_eq!(store.refresh("R1").unwrap().map(|r| r.user_id), Some("U1".into()));
    assert_eq!(store.refresh("R2").unwrap(), None);
    // Provider records: upsert, first-use-wins insert, expiry, listing, purge.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    store.put_record("code", "c1", &json!({"a": 1}), Some(now + 60)).unwrap();
    store.put_record("code", "c1", &json!({"a": 2}), Some(now + 60)).unwrap();
    assert_eq!(store.record("code", "c1").unwrap(), Some(json!({"a": 2})));
    assert_eq!(store.record("grant", "c1").unwrap(), None, "kinds are separate");
    assert!(store.insert_record("used", "c1", &json!(true), Some(now + 60)).unwrap());
    assert!(!store.insert_record("used", "c1", &json!(true), Some(now + 60)).unwrap(), "the second use loses");
    store.put_record("used", "old", &json!(1), Some(now - 1)).unwrap();
    assert_eq!(store.record("used", "old").unwrap(), None, "expired records read as absent");
    assert!(store.insert_record("used", "old", &json!(2), None).unwrap(), "an expired record can be claimed again");
    assert_eq!(store.record("used", "old").unwrap(), Some(json!(2)));
    store.put_record("key", "b", &json!("B"), None).unwrap();
    store.put_record("key", "a", &json!("A"), None).unwrap();
    store.put_record("key", "z", &json!("Z"), Some(now - 5)).unwrap();
    assert_eq!(store.records("key").unwrap(), vec![("a".to_owned(), json!("A")), ("b".to_owned(), json!("B"))]);
    store.delete_record("key", "a").unwrap();
    // Taking: the live record once, then nothing; an expired one never.
    store.put_record("once", "t1", &json!({"n": 1}), Some(now + 60)).unwrap();
    assert_eq!(store.take_record("once", "t1").unwrap(), Some(json!({"n": 1})));
    assert_eq!(store.take_record("once", "t1").unwrap(), None, "taken once");
    assert_eq!(store.record("once", "t1").unwrap(), None);
    store.put_record("once", "old", &json!(1), Some(now - 1)).unwrap();
    assert_eq!(store.take_record("once", "old").unwrap(), None, "an expired record is not taken");
    assert_eq!(store.records("key").unwrap().len(), 1);
    assert!(store.purge_expired(now).unwrap() >= 1);
    assert_eq!(store.record("code", "c1").unwrap(), Some(json!({"a": 2})), "live records survive a purge");
    // Redeem once and replace: both writes or neither.
    let marker = json!({"at": now});
    let next = json!({"n": 1});
    let m = RecordWrite { kind: "rt_used", id: "old", value: &marker, expires_at: Some(now + 60) };
    let t = RecordWrite { kind: "rt", id: "new", value: &next, expires_at: Some(now + 60) };
    assert!(store.redeem_and_put(&m, &t).unwrap());
    assert_eq!(store.record("rt", "new").unwrap(), Some(next.clone()));
    let other = json!({"n": 2});
    let t2 = RecordWrite { kind: "rt", id: "newer", value: &other, expires_at: Some(now + 60) };
    assert!(!store.redeem_and_put(&m, &t2).unwrap(), "redeemed once");
    assert_eq!(store.record("rt", "newer").unwrap(), None, "a lost redemption writes nothing");
    assert_eq!(store.record("rt_used", "old").unwrap(), Some(marker));
    // Counters: atomic increments within a window; an expired one restarts.
    assert_eq!(store.hit("rate", "w1", now + 60).unwrap(), 1);
    assert_eq!(store.hit("rate", "w1", now + 60).unwrap(), 2);
    assert_eq!(store.record("rate", "w1").unwrap(), Some(json!(2)));
    store.put_record("rate", "w0", &json!(7), Some(now - 1)).unwrap();
    assert_eq!(store.hit("rate", "w0", now + 60).unwrap(), 1, "a past window starts again");
}

#[test]
fn memory_store_keeps_the_contract() {
    contract(&MemoryStore::new());
}

#[test]
fn sqlite_store_keeps_the_contract() {
    contract(&SqliteStore::open_in_memory().unwrap());
}

fn temp_db(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("idflow-store-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("idflow.db")
}

#[tokio::test]
async fn a_flow_survives_reopening_the_database() {
    let path = temp_db("reopen");
    let key = Key::generate(Algorithm::ES256, None).unwrap();
    let flow = json!({"id": "f", "start": "ask", "steps": {
        "ask": {"type": "screen", "inputs": [{"name": "email", "type": "email", "required": true}], "next": "jwt"},
        "jwt": {"type": "generateJwt", "mode": "signUpOrIn", "next": "end"},
        "end": {"type": "end"}}})
    .to_string();
    let make = |store: Arc<SqliteStore>| {
        let mut e = FlowEngine::new(EngineConfig::new("http://idflow.test/p", key.clone()), store);
        e.add_flow(parse_flow(&flow).unwrap()).unwrap();
        e
    };
    let execution_id = {
        let engine = make(Arc::new(SqliteStore::open(&path).unwrap()));
        let r = engine.start("f", Map::new(), None).await.unwrap();
        assert_eq!(r.status, FlowStatus::Waiting);
        r.execution_id
    }; // engine and store dropped: the process "restarts"
    let engine = make(Arc::new(SqliteStore::open(&path).unwrap()));
    let mut input = Map::new();
    input.insert("email".into(), Value::from("persist@example.com"));
    let r = engine.next(&execution_id, "ask", "submit", input).await.unwrap();
    assert_eq!(r.status, FlowStatus::Completed, "{:?}", r.error);
    assert_eq!(r.auth_info.unwrap().user["loginIds"], json!(["persist@example.com"]));
    let reopened = SqliteStore::open(&path).unwrap();
    assert!(reopened.user_by_login_id("persist@example.com").unwrap().is_some());
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[test]
fn a_newer_schema_is_refused_not_damaged() {
    let path = temp_db("schema");
    SqliteStore::open(&path).unwrap();
    let conn = rusqlite_version_bump(&path);
    drop(conn);
    let err = SqliteStore::open(&path).err().unwrap();
    assert_eq!(err.code, ErrorCode::Storage);
    assert!(err.message.contains("newer"), "{}", err.message);
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

fn rusqlite_version_bump(path: &std::path::Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.pragma_update(None, "user_version", 999).unwrap();
    conn
}

#[test]
fn concurrent_use_from_many_threads() {
    let store = Arc::new(SqliteStore::open(temp_db("threads")).unwrap());
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..25 {
                    store.create_user(&User::new(format!("U{t}-{i}"), &format!("u{t}-{i}@example.com"), 1)).unwrap();
                    // Everyone races for the same login id: exactly one wins.
                    let _ = store.create_user(&User::new(format!("X{t}-{i}"), &format!("race-{i}@example.com"), 1));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    for i in 0..25 {
        assert!(store.user_by_login_id(&format!("race-{i}@example.com")).unwrap().is_some());
    }
    assert!(store.user_by_login_id("u7-24@example.com").unwrap().is_some());
}

#[test]
fn management_api() {
    use idflow::users;
    let store = SqliteStore::open_in_memory().unwrap();
    let fields: Map<String, Value> = serde_json::from_value(json!({"name": "Ann", "verifiedEmail": true, "customAttributes": {"plan": "pro"}})).unwrap();
    let ann = users::create_user(&store, "Ann@Example.com", &fields).unwrap();
    assert_eq!((ann.name.as_deref(), ann.verified_email), (Some("Ann"), true));
    assert_eq!(users::create_user(&store, "ann@example.com", &Map::new()).map_err(|e| e.code), Err(ErrorCode::UserExists));
    let changes: Map<String, Value> = serde_json::from_value(json!({"status": "disabled", "customAttributes": {"plan": null, "team": "x"}})).unwrap();
    let updated = users::update_user(&store, &ann.user_id, &changes).unwrap();
    assert_eq!(updated.status, idflow::user::UserStatus::Disabled);
    assert_eq!(updated.custom_attributes, serde_json::from_value::<Map<String, Value>>(json!({"team": "x"})).unwrap());
    let bad: Map<String, Value> = serde_json::from_value(json!({"colour": "red"})).unwrap();
    assert_eq!(users::update_user(&store, &ann.user_id, &bad).map_err(|e| e.code), Err(ErrorCode::InvalidRequest));
    let q = idflow::user::UserQuery { text: Some("example".into()), ..Default::default() };
    assert_eq!(users::search_users(&store, &q).unwrap().len(), 1);
    let zero = idflow::user::UserQuery { limit: 0, ..Default::default() };
    assert!(users::search_users(&store, &zero).is_err());
    users::delete_user(&store, &ann.user_id).unwrap();
    assert_eq!(users::get_user(&store, &ann.user_id).map_err(|e| e.code), Err(ErrorCode::UserNotFound));
}

/// Several processes starting at once on a new database file: migrations
/// run once (no "table already exists"), and they agree on one first
/// signing key. Threads with their own connections stand in for processes;
/// the real binary is tested in bindings/cli/tests.
#[test]
fn many_openers_of_a_new_database_migrate_once_and_share_the_first_key() {
    for round in 0..5 {
        let path = temp_db(&format!("race-{round}"));
        let barrier = Arc::new(std::sync::Barrier::new(4));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let (path, barrier) = (path.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    let store = SqliteStore::open(&path).unwrap();
                    let vault = idflow::vault::Vault::open(None, &store).unwrap();
                    let keys = idflow::oidc::provider::keys::load_or_create(&store, &vault, Algorithm::ES256, 600).unwrap();
                    keys.active.kid().to_owned()
                })
            })
            .collect();
        let kids: Vec<String> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert!(kids.iter().all(|k| k == &kids[0]), "round {round}: {kids:?}");
    }
}

#[cfg(feature = "postgres")]
#[path = "support/postgres.rs"]
mod pg_support;

/// The same contract and races on PostgreSQL (`IDFLOW_TEST_POSTGRES`, set
/// by tests/run.sh), each test in a database of its own.
#[cfg(feature = "postgres")]
mod postgres {
    use super::pg_support as support;
    use super::*;
    use idflow::store::PostgresStore;

    #[test]
    fn postgres_store_keeps_the_contract() {
        let Some(url) = support::fresh_database("contract") else {
            return;
        };
        contract(&PostgresStore::open(&url).unwrap());
        // Reopened (another server, or a restart): everything is still there.
        let again = PostgresStore::open(&url).unwrap();
        assert_eq!(
            again
                .user_by_login_id("ann@new.example")
                .unwrap()
                .map(|u| u.user_id),
            Some("U1".into())
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_store_works_from_async_code_and_a_current_thread_runtime() {
        let Some(url) = support::fresh_database("runtimes") else {
            return;
        };
        let store = Arc::new(PostgresStore::open(&url).unwrap());
        store
            .create_user(&User::new("U1".into(), "rt@example.com", 1))
            .unwrap();
        let s = store.clone();
        let found = tokio::spawn(async move { s.user_by_login_id("rt@example.com").unwrap() })
            .await
            .unwrap();
        assert_eq!(found.map(|u| u.user_id), Some("U1".into()));
        let s = store.clone();
        let other = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap()
                .block_on(async move { s.user("U1").unwrap().is_some() })
        });
        assert!(other.join().unwrap());
    }

    #[test]
    fn races_between_servers_have_one_winner() {
        let Some(url) = support::fresh_database("races") else {
            return;
        };
        // Four "servers" (stores with pools of their own) on one database.
        let stores: Vec<Arc<PostgresStore>> = (0..4)
            .map(|_| Arc::new(PostgresStore::open(&url).unwrap()))
            .collect();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        // One-time records (deliveries, states) that every server takes at once.
        for i in 0..25 {
            stores[0].put_record("completion", &format!("p{i}"), &json!(i), Some(now + 60)).unwrap();
        }
        let handles: Vec<_> = stores
            .iter()
            .enumerate()
            .map(|(t, store)| {
                let store = store.clone();
                std::thread::spawn(move || {
                    let mut wins = (0, 0, 0, 0);
                    for i in 0..25 {
                        // A login id, a single-use code, a refresh
                        // redemption and a one-time record, each claimed by
                        // every server at once.
                        if store
                            .create_user(&User::new(
                                format!("X{t}-{i}"),
                                &format!("race-{i}@example.com"),
                                1,
                            ))
                            .is_ok()
                        {
                            wins.0 += 1;
                        }
                        if store
                            .insert_record("code_used", &format!("c{i}"), &json!(t), Some(now + 60))
                            .unwrap()
                        {
                            wins.1 += 1;
                        }
                        let marker = json!(t);
                        let next = json!({"by": t});
                        let m = RecordWrite {
                            kind: "rt_used",
                            id: &format!("r{i}"),
                            value: &marker,
                            expires_at: Some(now + 60),
                        };
                        let n = RecordWrite {
                            kind: "rt",
                            id: &format!("r{i}-next-{t}"),
                            value: &next,
                            expires_at: Some(now + 60),
                        };
                        if store.redeem_and_put(&m, &n).unwrap() {
                            wins.2 += 1;
                        }
                        store.hit("rate", "window", now + 60).unwrap();
                        if store.take_record("completion", &format!("p{i}")).unwrap().is_some() {
                            wins.3 += 1;
                        }
                    }
                    wins
                })
            })
            .collect();
        let wins = handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .fold((0, 0, 0, 0), |a, w| (a.0 + w.0, a.1 + w.1, a.2 + w.2, a.3 + w.3));
        assert_eq!(wins, (25, 25, 25, 25), "each race has exactly one winner");
        assert_eq!(
            stores[0].record("rate", "window").unwrap(),
            Some(json!(100)),
            "no increment is lost"
        );
        let successors = (0..25)
            .filter(|i| {
                (0..4).any(|t| {
                    stores[1]
                        .record("rt", &format!("r{i}-next-{t}"))
                        .unwrap()
                        .is_some()
                })
            })
            .count();
        assert_eq!(
            successors, 25,
            "every redemption stored its successor, and only the winner's"
        );
    }

    #[test]
    fn many_servers_starting_on_a_new_database_migrate_once_and_share_the_first_key() {
        let Some(url) = support::fresh_database("migrate") else {
            return;
        };
        let barrier = Arc::new(std::sync::Barrier::new(4));
        let key = json!({"key": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="});
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let (url, barrier, key) = (url.clone(), barrier.clone(), key.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    let store = PostgresStore::open(&url).unwrap();
                    let vault = idflow::vault::Vault::open(Some(&key), &store).unwrap();
                    let keys = idflow::oidc::provider::keys::load_or_create(
                        &store,
                        &vault,
                        Algorithm::ES256,
                        600,
                    )
                    .unwrap();
                    keys.active.kid().to_owned()
                })
            })
            .collect();
        let kids: Vec<String> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert!(kids.iter().all(|k| k == &kids[0]), "{kids:?}");
    }

    #[test]
    fn the_data_key_never_lives_in_the_database() {
        let Some(url) = support::fresh_database("vault") else {
            return;
        };
        let store = PostgresStore::open(&url).unwrap();
        let err = idflow::vault::Vault::open(None, &store).unwrap_err();
        assert_eq!(err.code, ErrorCode::Config);
        assert!(err.message.contains("encryption.key"), "{}", err.message);
        assert_eq!(store.record("data_key", "default").unwrap(), None);
    }

    #[test]
    fn bad_urls_and_newer_schemas_are_clear_errors() {
        for (url, says) in [
            ("postgres://idflow@127.0.0.1:1/x?sslmode=bogus", "not valid"),
            ("postgres://idflow@127.0.0.1:1/x?pool_size=0", "pool_size"),
            (
                "postgres://idflow@127.0.0.1:1/x?sslmode=require&sslrootcert=/nonexistent.pem",
                "sslrootcert",
            ),
        ] {
            let err = PostgresStore::open(url).unwrap_err();
            assert_eq!(err.code, ErrorCode::Config, "{url}: {}", err.message);
            assert!(err.message.contains(says), "{url}: {}", err.message);
        }
        let err = PostgresStore::open("postgres://idflow:s3cret-pw@127.0.0.1:1/x?sslmode=disable")
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::Storage);
        assert!(!err.message.contains("s3cret-pw"), "{}", err.message);
        let Some(url) = support::fresh_database("schema") else {
            return;
        };
        drop(PostgresStore::open(&url).unwrap());
        support::sql(&url, "UPDATE idflow_schema SET version = 999");
        let err = PostgresStore::open(&url).unwrap_err();
        assert_eq!(err.code, ErrorCode::Storage);
        assert!(err.message.contains("newer"), "{}", err.message);
    }
}
