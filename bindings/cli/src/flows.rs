//! `idflow flow validate` and `idflow connector test`.

use crate::{current_thread_runtime, pretty, read_file};
use clap::Subcommand;
use idflow::jose::Key;
use idflow::Error;
use serde_json::Value;

#[derive(Subcommand)]
pub(crate) enum FlowCommand {
    /// Check a flow file and print every problem (exit 2 when there are any).
    Validate {
        /// The flow JSON file, or - for stdin.
        file: String,
    },
}
#[derive(Subcommand)]
pub(crate) enum ConnectorCommand {
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

pub(crate) fn run_flow(command: FlowCommand) -> Result<String, Error> {
    match command {
        FlowCommand::Validate { file } => {
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
    }
}

pub(crate) fn run_connector(command: ConnectorCommand) -> Result<String, Error> {
    match command {
        ConnectorCommand::Test { config, connector, method, endpoint, body } => {
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
    }
}
