//! The `idflow` command: `serve` (the OIDC provider over HTTP), key
//! generation and rotation, JWT sign/verify/decode, PKCE, flow validation
//! and connector tests. Bad input exits with status 2 and a one-line message
//! on stderr naming the error code.

mod demo;
mod serve;

use clap::{Args, Parser, Subcommand, ValueEnum};
use idflow::jose::{self, Algorithm, Key, KeySet, Validation};
use idflow::{pkce, Error};
use serde_json::{Map, Value};
use std::io::Read;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "idflow", version, about = "idflow: PKCE, JOSE/JWT and OpenID Connect tools")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the OpenID Connect provider (the demo project when no --config).
    Serve {
        /// Project file (JSON, or TOML by its .toml name). Without it, the demo project.
        #[arg(long)]
        config: Option<String>,
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: String,
        /// SQLite database file.
        #[arg(long, default_value = "./idflow.db")]
        db: String,
        /// Public base URL (the issuer is BASE_URL/PROJECT_ID), e.g. behind a proxy.
        #[arg(long)]
        base_url: Option<String>,
        /// Seconds a request header may take to arrive.
        #[arg(long, default_value_t = 10)]
        header_timeout: u64,
        /// Seconds a request body may take to arrive.
        #[arg(long, default_value_t = 30)]
        body_timeout: u64,
        /// Seconds an idle keep-alive connection stays open.
        #[arg(long, default_value_t = 60)]
        idle_timeout: u64,
        /// Open connections at most; at the cap the longest-idle one closes.
        #[arg(long, default_value_t = 1024)]
        max_connections: usize,
    },
    /// Print the upstream access token kept for a user (oauthProviders with
    /// manageProviderTokens), refreshed first when it has expired.
    ProviderToken {
        /// The project file (JSON or TOML).
        #[arg(long)]
        config: String,
        #[arg(long, default_value = "./idflow.db")]
        db: String,
        /// The idflow user id.
        #[arg(long)]
        user: String,
        /// The oauthProviders name.
        #[arg(long)]
        provider: String,
    },
    /// Try a custom OAuth provider (oauthProviders) by hand.
    #[command(subcommand)]
    Oauth(OauthCommand),
    /// Generate and inspect keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Sign, verify and decode JWTs.
    #[command(subcommand)]
    Jwt(JwtCommand),
    /// Make a PKCE verifier and S256 challenge, or check a pair.
    Pkce(PkceArgs),
    /// Work with flow files.
    #[command(subcommand)]
    Flow(FlowCommand),
    /// Work with a project's connectors.
    #[command(subcommand)]
    Connector(ConnectorCommand),
}

#[derive(Subcommand)]
enum OauthCommand {
    /// Print the upstream authorization URL; after you sign in there and
    /// paste the address the browser lands on (the callback URL), print the
    /// claims and the user the mapping makes. Nothing is saved.
    Test {
        /// The project file (JSON or TOML).
        #[arg(long)]
        config: String,
        /// The oauthProviders name.
        #[arg(long)]
        provider: String,
        /// Holds the project's keys (private_key_jwt) and the pending request.
        #[arg(long, default_value = "./idflow.db")]
        db: String,
        /// Public base URL, as given to `idflow serve` (makes the callback URL).
        #[arg(long)]
        base_url: Option<String>,
    },
}

#[derive(Subcommand)]
enum ConnectorCommand {
    /// Call a connector once and print status, headers, body and duration (or the error).
    Test {
        /// The project file (JSON, or TOML by its .toml name).
        #[arg(long)]
        config: String,
        /// The connector's id.
        #[arg(long)]
        connector: String,
        #[arg(long, default_value = "GET")]
        method: String,
        /// Path and query appended to the connector's base URL.
        #[arg(long, default_value = "")]
        endpoint: String,
        /// A JSON body.
        #[arg(long)]
        body: Option<String>,
    },
}

#[derive(Subcommand)]
enum FlowCommand {
    /// Check a flow file and print every problem (exit 2 when there are any).
    Validate {
        /// The flow JSON file, or - for stdin.
        file: String,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
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
    /// Make a new signing key active in a provider database; old public keys
    /// stay published until the tokens they signed expire. Restart `serve`.
    Rotate {
        #[arg(long, default_value = "./idflow.db")]
        db: String,
        /// The project file, for its signing.alg and token lifetimes.
        #[arg(long)]
        config: Option<String>,
        /// Algorithm of the new key (default: the project's signing.alg, else RS256).
        #[arg(long)]
        alg: Option<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum KeyFormat {
    Jwk,
    Pem,
}

#[derive(Subcommand)]
enum JwtCommand {
    /// Sign claims (JSON) into a compact JWT.
    Sign {
        /// Private key file (JWK JSON or PEM).
        #[arg(long)]
        key: String,
        /// Claims as JSON text, @FILE, or - for stdin.
        #[arg(long)]
        claims: String,
        /// Extra header members as JSON text (may set "alg", "typ", "kid").
        #[arg(long)]
        header: Option<String>,
    },
    /// Verify a JWT and print its claims.
    Verify(VerifyArgs),
    /// Decode a JWT WITHOUT verifying it (debugging only).
    Decode {
        /// The token, or - for stdin.
        token: String,
    },
}

#[derive(Args)]
struct VerifyArgs {
    /// The token, or - for stdin.
    #[arg(allow_hyphen_values = true)]
    token: String,
    /// Key file (JWK, JWKS or PEM).
    #[arg(long)]
    key: String,
    /// Allowed algorithm; repeat for several. Required.
    #[arg(long = "alg", required = true)]
    algorithms: Vec<String>,
    #[arg(long)]
    issuer: Option<String>,
    /// Accepted audience; repeat for several.
    #[arg(long = "audience")]
    audience: Vec<String>,
    /// Clock leeway in seconds (default 60, at most 300).
    #[arg(long, default_value_t = 60)]
    leeway: u64,
    /// Required claim; repeat for several (default: exp).
    #[arg(long = "require")]
    require: Vec<String>,
    /// Pin the clock (seconds since the epoch).
    #[arg(long)]
    now: Option<u64>,
}

#[derive(Args)]
struct PkceArgs {
    /// Verifier length, 43 to 128.
    #[arg(long, default_value_t = pkce::DEFAULT_VERIFIER_LEN)]
    length: usize,
    /// Check this verifier against --challenge instead of generating.
    #[arg(long, requires = "challenge", allow_hyphen_values = true)]
    verifier: Option<String>,
    #[arg(long, allow_hyphen_values = true)]
    challenge: Option<String>,
}

fn read_input(arg: &str) -> Result<String, Error> {
    if arg == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).map_err(|e| Error::invalid_request(format!("cannot read stdin: {e}")))?;
        Ok(s.trim().to_owned())
    } else if let Some(path) = arg.strip_prefix('@') {
        read_file(path)
    } else {
        Ok(arg.to_owned())
    }
}

fn read_file(path: &str) -> Result<String, Error> {
    if path == "-" {
        return read_input("-");
    }
    std::fs::read_to_string(path).map_err(|e| Error::invalid_request(format!("cannot read {path}: {e}")))
}

fn json_object(text: &str, what: &str) -> Result<Map<String, Value>, Error> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(Error::invalid_request(format!("{what} must be a JSON object"))),
    }
}

enum Keys {
    One(Key),
    Set(KeySet),
}

fn load_keys(path: &str) -> Result<Keys, Error> {
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

fn load_key(path: &str) -> Result<Key, Error> {
    match load_keys(path)? {
        Keys::One(k) => Ok(k),
        Keys::Set(_) => Err(Error::invalid_request("--key must name a single key, not a JWKS")),
    }
}

fn pretty(v: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

fn run(cli: Cli) -> Result<String, Error> {
    match cli.command {
        Command::Serve { config, addr, db, base_url, header_timeout, body_timeout, idle_timeout, max_connections } => {
            if header_timeout == 0 || body_timeout == 0 || idle_timeout == 0 || max_connections == 0 {
                return Err(Error::config("--header-timeout, --body-timeout, --idle-timeout and --max-connections must be positive"));
            }
            let limits = serve::Limits {
                header_timeout: std::time::Duration::from_secs(header_timeout),
                body_timeout: std::time::Duration::from_secs(body_timeout),
                idle_timeout: std::time::Duration::from_secs(idle_timeout),
                max_connections,
            };
            serve::serve(serve::ServeArgs { config, addr, db, base_url, limits })
        }
        Command::ProviderToken { config, db, user, provider } => {
            let runtime = current_thread_runtime()?;
            let p = runtime.block_on(async { idflow::oidc::provider::Provider::open_file(&config, Some(&db), None) })?;
            Ok(pretty(&runtime.block_on(p.provider_token(&user, &provider))?))
        }
        Command::Oauth(OauthCommand::Test { config, provider, db, base_url }) => {
            let runtime = current_thread_runtime()?;
            let p = runtime.block_on(async { idflow::oidc::provider::Provider::open_file(&config, Some(&db), base_url.as_deref()) })?;
            let url = runtime.block_on(p.oauth_test_start(&provider))?;
            {
                use std::io::Write;
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{url}");
                let _ = out.flush();
            }
            eprintln!("Open the URL above and sign in at {provider:?}. Then paste the address the browser lands on and press Enter:");
            let mut answer = String::new();
            std::io::stdin().read_line(&mut answer).map_err(|e| Error::invalid_request(format!("could not read the answer: {e}")))?;
            if answer.trim().is_empty() {
                return Err(Error::invalid_request("no answer was pasted"));
            }
            Ok(pretty(&runtime.block_on(p.oauth_test_finish(&answer))?))
        }
        Command::Keys(KeysCommand::Rotate { db, config, alg }) => {
            let project = match &config {
                Some(path) => Some(idflow::project::Project::from_file(path)?),
                None => None,
            };
            let alg = match alg {
                Some(a) => Algorithm::parse(&a)?,
                None => project.as_ref().map_or(Algorithm::RS256, |p| p.signing_alg),
            };
            let store = idflow::store::SqliteStore::open(&db)?;
            // The new key is sealed with the data key `serve` uses: the
            // project's encryption.key, or the key file beside the database.
            let vault = idflow::oidc::provider::Vault::open(project.as_ref().and_then(|p| p.extra.get("encryption")), &store)?;
            let kid = idflow::oidc::provider::keys::rotate(&store, &vault, alg)?;
            Ok(pretty(&serde_json::json!({"active": kid, "alg": alg.as_str()})))
        }
        Command::Keys(KeysCommand::Generate { alg, bits, kid, format }) => {
            let mut key = Key::generate(Algorithm::parse(&alg)?, bits)?;
            if let Some(kid) = kid {
                key = key.with_kid(kid);
            }
            match format {
                KeyFormat::Jwk => Ok(pretty(&key.to_jwk(true)?)),
                KeyFormat::Pem => key.to_pem(true),
            }
        }
        Command::Keys(KeysCommand::Public { key, format }) => {
            let public = load_key(&key)?.public_key()?;
            match format {
                KeyFormat::Jwk => Ok(pretty(&KeySet::new(vec![public])?.to_public_jwks()?)),
                KeyFormat::Pem => public.to_pem(false),
            }
        }
        Command::Jwt(JwtCommand::Sign { key, claims, header }) => {
            let key = load_key(&key)?;
            let claims = json_object(&read_input(&claims)?, "--claims")?;
            let header = header.map(|h| json_object(&h, "--header")).transpose()?;
            jose::sign(&claims, &key, header.as_ref())
        }
        Command::Jwt(JwtCommand::Verify(args)) => {
            let token = read_input(&args.token)?;
            let algs = args.algorithms.iter().map(|a| Algorithm::parse(a)).collect::<Result<Vec<_>, _>>()?;
            let mut v = Validation::new(&algs);
            v.issuer = args.issuer;
            v.audience = args.audience;
            v.leeway = args.leeway;
            if !args.require.is_empty() {
                v.required_claims = args.require;
            }
            v.now = args.now;
            let verified = match load_keys(&args.key)? {
                Keys::One(k) => jose::verify(&token, &k, &v)?,
                Keys::Set(s) => jose::verify(&token, &s, &v)?,
            };
            Ok(pretty(&verified.claims))
        }
        Command::Jwt(JwtCommand::Decode { token }) => {
            let t = jose::decode_unverified(&read_input(&token)?)?;
            Ok(pretty(&serde_json::json!({"header": t.header, "claims": t.claims, "verified": false})))
        }
        Command::Connector(ConnectorCommand::Test { config, connector, method, endpoint, body }) => {
            let project = idflow::project::Project::from_file(&config)?;
            let body = body
                .map(|b| serde_json::from_str::<Value>(&b).map_err(|_| Error::invalid_request("--body must be JSON")))
                .transpose()?;
            let key = Key::generate(project.signing_alg, None)?;
            let engine = project.engine(key, std::sync::Arc::new(idflow::store::MemoryStore::new()))?;
            let runtime = current_thread_runtime()?;
            let result = runtime.block_on(engine.test_connector(&connector, &method, &endpoint, body))?;
            let text = pretty(&result.to_json());
            match result.error {
                None => Ok(text),
                Some(e) => {
                    println!("{text}");
                    Err(e)
                }
            }
        }
        Command::Flow(FlowCommand::Validate { file }) => {
            let problems = idflow::flow::validate_flow(&read_file(&file)?);
            if problems.is_empty() {
                return Ok(format!("{file}: ok"));
            }
            let lines: Vec<String> = problems.iter().map(|p| format!("  {p}")).collect();
            Err(Error::new(
                idflow::ErrorCode::InvalidFlow,
                format!("{file}: {} problem(s)\n{}", problems.len(), lines.join("\n")),
            ))
        }
        Command::Pkce(PkceArgs { length, verifier: Some(verifier), challenge: Some(challenge) }) => {
            let _ = length;
            if pkce::verify(&verifier, &challenge, pkce::Method::S256, false)? {
                Ok("match".to_owned())
            } else {
                Err(Error::new(idflow::ErrorCode::InvalidGrant, "code_verifier does not match code_challenge"))
            }
        }
        Command::Pkce(PkceArgs { length, .. }) => {
            let pair = pkce::generate(Some(length))?;
            Ok(pretty(&serde_json::json!({
                "code_verifier": pair.verifier,
                "code_challenge": pair.challenge,
                "code_challenge_method": pair.method.as_str(),
            })))
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(out) => {
            use std::io::Write;
            let _ = writeln!(std::io::stdout(), "{}", out.trim_end());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("idflow: {}: {}", e.code.as_str(), e.message);
            ExitCode::from(2)
        }
    }
}

/// The runtime of the one-shot commands (`provider-token`, `oauth test`,
/// `connector test`): one thread, IO and timers; `serve` has its own.
fn current_thread_runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::internal(format!("no async runtime: {e}")))
}
