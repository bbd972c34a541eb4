//! A database of its own for a test, on the PostgreSQL server that
//! `tests/run.sh` starts (`IDFLOW_TEST_POSTGRES`). Without that variable the
//! test is skipped with a message, except in CI, where it fails.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

/// A fresh, empty database named after `name`; its URL, or `None` (skip)
/// outside CI when no server is given.
pub fn fresh_database(name: &str) -> Option<String> {
    let Ok(base) = std::env::var("IDFLOW_TEST_POSTGRES") else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("IDFLOW_TEST_POSTGRES is not set: tests/run.sh starts a private PostgreSQL for these tests");
        }
        eprintln!("skipped: IDFLOW_TEST_POSTGRES is not set (bash tests/run.sh starts a private PostgreSQL)");
        return None;
    };
    let db = format!("t_{}_{}", name.replace(|c: char| !c.is_ascii_alphanumeric(), "_"), std::process::id());
    let admin = base.clone();
    let statement = format!("DROP DATABASE IF EXISTS {db}; CREATE DATABASE {db}");
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let (client, connection) = tokio_postgres::connect(&admin, tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(connection);
            for s in statement.split("; ") {
                client.batch_execute(s).await.unwrap();
            }
        });
    })
    .join()
    .unwrap();
    let mut url = url::Url::parse(&base).unwrap();
    url.set_path(&format!("/{db}"));
    Some(url.to_string())
}

/// Runs `statements` (`;`-separated, no parameters) on the database at
/// `url`, returning the rows of the last one as text columns.
pub fn sql(url: &str, statements: &str) -> Vec<Vec<String>> {
    let (url, statements) = (url.to_owned(), statements.to_owned());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(connection);
            let mut rows = Vec::new();
            for message in client.simple_query(&statements).await.unwrap() {
                match message {
                    tokio_postgres::SimpleQueryMessage::Row(r) => rows.push((0..r.len()).map(|i| r.get(i).unwrap_or_default().to_owned()).collect()),
                    tokio_postgres::SimpleQueryMessage::CommandComplete(_) => {}
                    _ => {}
                }
            }
            rows
        })
    })
    .join()
    .unwrap()
}
