//! `idflow keys`: generate a key, print its public half, rotate the
//! signing key `serve` uses; and reading the key files `jwt` takes.

use crate::{json_object, pretty, read_file};
use clap::{Subcommand, ValueEnum};
use idflow::jose::{Algorithm, Key, KeySet};
use idflow::Error;

#[derive(Subcommand)]
pub(crate) enum KeysCommand {
    /// Generate a private key and print it (JWK by default).
    Generate {
        /// Algorithm: HS256..HS512, RS256..RS512, PS256..PS512, ES256, ES384, ES512, EdDSA.
        #[arg(long, default_value = "ES256")]
        alg: String,
        /// RSA modulus size: 2048, 3072 or 4096.
        #[arg(long)]
        bits: Option<u32>,
        /// Key id; defaults to the RFC 7638 thumbprint.
        #[arg(long)]
        kid: Option<String>,
        #[arg(long, value_enum, default_value_t = KeyFormat::Jwk)]
        format: KeyFormat,
    },
    /// Print the public half of a key file (JWK or PEM) as a JWKS or PEM.
    Public {
        /// Key file (JWK JSON or PEM), or - for stdin.
        key: String,
        #[arg(long, value_enum, default_value_t = KeyFormat::Jwk)]
        format: KeyFormat,
    },
    /// Add a signing key to a provider database: every running `serve` on it
    /// publishes it within seconds and signs with it after --prepublish;
    /// the old key stays published until the tokens it signed expire.
    Rotate {
        /// The store (as `serve --db`; {project} is the project's id).
        #[arg(long, env = "IDFLOW_DB", default_value = "./idflow.db")]
        db: String,
        /// The project file, for its signing.alg and token lifetimes.
        #[arg(long)]
        config: Option<String>,
        /// Algorithm of the new key (default: the project's signing.alg, else RS256).
        #[arg(long)]
        alg: Option<String>,
        /// Seconds the new key is published before it signs (default: the
        /// project's signing.prepublish, else 3600), so relying parties'
        /// JWKS caches hold it first.
        #[arg(long)]
        prepublish: Option<u64>,
    },
}
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum KeyFormat {
    Jwk,
    Pem,
}
pub(crate) enum Keys {
    One(Key),
    Set(KeySet),
}
pub(crate) fn load_keys(path: &str) -> Result<Keys, Error> {
    let text = read_file(path)?;
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') {
        let doc = json_object(trimmed, "key file")?;
        if doc.contains_key("keys") {
            return Ok(Keys::Set(KeySet::from_jwks(&doc)?));
        }
        return Ok(Keys::One(Key::from_jwk(&doc)?));
    }
    Ok(Keys::One(Key::from_pem(&text)?))
}
pub(crate) fn load_key(path: &str) -> Result<Key, Error> {
    match load_keys(path)? {
        Keys::One(k) => Ok(k),
        Keys::Set(_) => Err(Error::invalid_request("--key must name a single key, not a JWKS")),
    }
}

pub(crate) fn run(command: KeysCommand) -> Result<String, Error> {
    match command {
        KeysCommand::Rotate { db, config, alg, prepublish } => {
            let project = match &config {
                Some(path) => Some(idflow::project::Project::from_file(path)?),
                None => None,
            };
            let alg = match alg {
                Some(a) => Algorithm::parse(&a)?,
                None => project.as_ref().map_or(Algorithm::RS256, |p| p.signing_alg),
            };
            // {project} in --db names the project's own store.
            let store = match &project {
                Some(p) => idflow::store::open_for_project(Some(&db), &p.project_id)?,
                None if db.contains(idflow::store::PROJECT_PLACEHOLDER) => {
                    return Err(Error::config("--db names one store per project ({project}): give --config for its project id"))
                }
                None => idflow::store::open(Some(&db))?,
            };
            // The new key is sealed with the data key `serve` uses: the
            // project's encryption.key, or the key file beside the database.
            let vault = idflow::vault::Vault::open(project.as_ref().and_then(|p| p.extra.get("encryption")), &*store)?;
            let prepublish = prepublish.or(project.as_ref().map(|p| p.signing_prepublish)).unwrap_or(idflow::oidc::provider::keys::DEFAULT_PREPUBLISH);
            // Running servers on this database publish it within seconds.
            Ok(pretty(&idflow::oidc::provider::keys::rotate(&*store, &vault, alg, prepublish)?.to_json()))
        }
        KeysCommand::Generate { alg, bits, kid, format } => {
            let mut key = Key::generate(Algorithm::parse(&alg)?, bits)?;
            if let Some(kid) = kid {
                key = key.with_kid(kid);
            }
            match format {
                KeyFormat::Jwk => Ok(pretty(&key.to_jwk(true)?)),
                KeyFormat::Pem => key.to_pem(true),
            }
        }
        KeysCommand::Public { key, format } => {
            let public = load_key(&key)?.public_key()?;
            match format {
                KeyFormat::Jwk => Ok(pretty(&KeySet::new(vec![public])?.to_public_jwks()?)),
                KeyFormat::Pem => public.to_pem(false),
            }
        }
    }
}
