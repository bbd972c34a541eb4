//! The upstream providers' tools: `idflow provider-token` and `idflow
//! oauth test`.

use crate::{current_thread_runtime, pretty};
use clap::Subcommand;
use idflow::Error;

#[derive(Subcommand)]
pub(crate) enum OauthCommand {
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
        #[arg(long, env = "IDFLOW_DB", default_value = "./idflow.db")]
        db: String,
        /// Public base URL, as given to `idflow serve` (makes the callback URL).
        #[arg(long)]
        base_url: Option<String>,
    },
}

/// The upstream access token kept for `user` at `provider`.
pub(crate) fn provider_token(config: &str, db: &str, user: &str, provider: &str) -> Result<String, Error> {
    let runtime = current_thread_runtime()?;
    let p = runtime.block_on(async { idflow::oidc::provider::Provider::open_file(config, Some(db), None) })?;
    Ok(pretty(&runtime.block_on(p.provider_token(user, provider))?))
}

pub(crate) fn run(command: OauthCommand) -> Result<String, Error> {
    match command {
        OauthCommand::Test { config, provider, db, base_url } => {
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
    }
}
