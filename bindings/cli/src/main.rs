//! The `idflow` command: `serve` (the OIDC provider over HTTP), key
//! generation and rotation, JWT sign/verify/decode, PKCE, flow validation
//! and connector tests. Bad input exits with status 2 and a one-line message
//! on stderr naming the error code.

mod demo;
mod flows;
mod jwt;
mod keys;
mod metrics;
mod serve;
mod upstream;

use clap::{Args, Parser, Subcommand};
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
        /// Project file (JSON, or TOML by its .toml name), or a folder of
        /// them. Without it, the demo project. Repeat it to serve several
        /// projects, each at its own issuer BASE_URL/PROJECT_ID with every
        /// endpoint under it; --db then names one store per project with
        /// {project}.
        #[arg(long)]
        config: Vec<String>,
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: String,
        /// The store: a SQLite file, or a postgres:// URL (several servers
        /// on one PostgreSQL database serve as one provider). {project} in
        /// it is replaced by the project id (data/{project}.db, or
        /// postgres://host/db?schema={project}).
        #[arg(long, env = "IDFLOW_DB", default_value = "./idflow.db")]
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
        /// Serve GET /metrics (Prometheus text) on this host:port, a listener
        /// of its own for the monitoring network only. Off by default.
        #[arg(long)]
        metrics_addr: Option<String>,
    },
    /// Print the upstream access token kept for a user (oauthProviders with
    /// manageProviderTokens), refreshed first when it has expired.
    ProviderToken {
        /// The project file (JSON or TOML).
        #[arg(long)]
        config: String,
        #[arg(long, env = "IDFLOW_DB", default_value = "./idflow.db")]
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
    Oauth(upstream::OauthCommand),
    /// Generate and inspect keys.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Sign, verify and decode JWTs.
    #[command(subcommand)]
    Jwt(jwt::JwtCommand),
    /// Make a PKCE verifier and S256 challenge, or check a pair.
    Pkce(PkceArgs),
    /// Work with flow files.
    #[command(subcommand)]
    Flow(flows::FlowCommand),
    /// Work with a project's connectors.
    #[command(subcommand)]
    Connector(flows::ConnectorCommand),
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

fn pretty(v: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

fn run(cli: Cli) -> Result<String, Error> {
    match cli.command {
        Command::Serve { config, addr, db, base_url, header_timeout, body_timeout, idle_timeout, max_connections, metrics_addr } => {
            if header_timeout == 0 || body_timeout == 0 || idle_timeout == 0 || max_connections == 0 {
                return Err(Error::config("--header-timeout, --body-timeout, --idle-timeout and --max-connections must be positive"));
            }
            let limits = serve::Limits {
                header_timeout: std::time::Duration::from_secs(header_timeout),
                body_timeout: std::time::Duration::from_secs(body_timeout),
                idle_timeout: std::time::Duration::from_secs(idle_timeout),
                max_connections,
            };
            serve::serve(serve::ServeArgs { config, addr, db, base_url, limits, metrics_addr })
        }
        Command::ProviderToken { config, db, user, provider } => upstream::provider_token(&config, &db, &user, &provider),
        Command::Oauth(command) => upstream::run(command),
        Command::Keys(command) => keys::run(command),
        Command::Jwt(command) => jwt::run(command),
        Command::Connector(command) => flows::run_connector(command),
        Command::Flow(command) => flows::run_flow(command),
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
