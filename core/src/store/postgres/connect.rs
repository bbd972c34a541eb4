//! Connecting: the `postgres://` URL (with idflow's own options), TLS on
//! rustls, and the connection pool on a runtime of its own.

use super::pg;
use crate::error::{Error, Result};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use std::time::Duration;
use tokio_postgres::config::SslMode;

/// Connections in the pool unless the URL says `pool_size=`.
const DEFAULT_POOL_SIZE: usize = 16;
/// How long a call waits for a free connection, or for a new one.
const POOL_WAIT: Duration = Duration::from_secs(10);

/// The pool for `url`, the runtime its connections run on, and the
/// URL's `schema`.
pub(super) fn pool(url: &str) -> Result<(Pool, tokio::runtime::Runtime, Option<String>)> {
    let options = parse_url(url)?;
    let schema = options.schema.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("idflow-postgres")
        .enable_all()
        .build()
        .map_err(|e| Error::internal(format!("the PostgreSQL runtime: {e}")))?;
    let manager_config = ManagerConfig { recycling_method: RecyclingMethod::Fast };
    let manager = if options.config.get_ssl_mode() == SslMode::Disable {
        Manager::from_config(options.config, tokio_postgres::NoTls, manager_config)
    } else {
        Manager::from_config(options.config, tls(options.root_cert.as_deref())?, manager_config)
    };
    // The pool's timeouts run on its runtime.
    let guard = runtime.enter();
    let pool = Pool::builder(manager)
        .max_size(options.pool_size)
        .wait_timeout(Some(POOL_WAIT))
        .create_timeout(Some(POOL_WAIT))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .map_err(pg)?;
    drop(guard);
    Ok((pool, runtime, schema))
}

/// What `postgres://` URL options idflow reads itself (the rest go to
/// tokio-postgres): `sslrootcert` (a PEM file of CA certificates trusted
/// besides the system's), `pool_size`, and `schema` (where idflow's tables
/// are, created when missing: one per project when several share a
/// database).
struct Options {
    config: tokio_postgres::Config,
    root_cert: Option<String>,
    pool_size: usize,
    schema: Option<String>,
}

fn parse_url(url: &str) -> Result<Options> {
    let bad = |m: &str| Error::config(format!("the PostgreSQL URL is not valid: {m}"));
    let mut parsed = url::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
    let mut root_cert = None;
    let mut pool_size = DEFAULT_POOL_SIZE;
    let mut schema = None;
    let mut kept: Vec<(String, String)> = Vec::new();
    for (k, v) in parsed.query_pairs() {
        match k.as_ref() {
            "sslrootcert" => root_cert = Some(v.into_owned()),
            "pool_size" => {
                pool_size = v.parse().ok().filter(|n| (1..=1000).contains(n)).ok_or_else(|| bad("pool_size must be a number from 1 to 1000"))?;
            }
            "schema" => {
                if !crate::store::safe_name(&v) {
                    return Err(bad("schema must be letters, digits, _ and - (at most 63)"));
                }
                schema = Some(v.into_owned());
            }
            _ => kept.push((k.into_owned(), v.into_owned())),
        }
    }
    if kept.is_empty() {
        parsed.set_query(None);
    } else {
        parsed.query_pairs_mut().clear().extend_pairs(kept);
    }
    // The message of a parse error never repeats the URL (it may hold a
    // password).
    let mut config: tokio_postgres::Config = parsed.as_str().parse().map_err(|e: tokio_postgres::Error| bad(&e.to_string()))?;
    if let Some(s) = &schema {
        // Every connection looks there first (and only there).
        let options = [config.get_options().unwrap_or_default(), &format!("-c search_path=\"{s}\"")].join(" ");
        config.options(options.trim());
    }
    Ok(Options { config, root_cert, pool_size, schema })
}

/// TLS for `sslmode=prefer` (the default) and `require`: rustls on aws-lc,
/// trusting the system's roots and `sslrootcert`. Unlike libpq's
/// `require`, the server's certificate is always verified.
fn tls(root_cert: Option<&str>) -> Result<tokio_postgres_rustls::MakeRustlsConnect> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if let Some(path) = root_cert {
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
            .map_err(|e| Error::config(format!("sslrootcert {path}: {e}")))?;
        if certs.is_empty() {
            return Err(Error::config(format!("sslrootcert {path}: no PEM certificate in it")));
        }
        for c in certs {
            roots.add(c).map_err(|e| Error::config(format!("sslrootcert {path}: {e}")))?;
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::internal(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}
