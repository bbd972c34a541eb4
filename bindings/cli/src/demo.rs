//! The demo project `idflow serve` runs without `--config`: the project
//! file `demo/project.json` and its flow `demo/sign-up-or-in.json`, built
//! into the binary (a static binary has no folder of its own to read).
//!
//! Project `local`: its application (client id `local`) is public with
//! PKCE, redirects to any loopback port (`http://127.0.0.1/callback`,
//! `http://[::1]/callback`) and signs users in with `sign-up-or-in`: a
//! password sign-in, or a sign-up with a password whose email is then
//! verified by a code that the `console` mail transport prints to the
//! terminal (development only: refused for a base URL that is not loopback).

use idflow::project::Project;
use idflow::Error;
use serde_json::Value;
use std::path::Path;

const PROJECT: &str = include_str!("../demo/project.json");
const FLOW: &str = include_str!("../demo/sign-up-or-in.json");

/// The demo project served at `base_url`.
pub fn project(base_url: &str) -> Result<Project, Error> {
    let parse = |text: &str| serde_json::from_str::<Value>(text).map_err(|e| Error::internal(format!("the demo project is not JSON: {e}")));
    let mut doc = parse(PROJECT)?;
    doc["baseUrl"] = Value::from(base_url);
    // The one flow file the project names, inline: there is no folder to read it from.
    doc["flows"] = Value::Array(vec![parse(FLOW)?]);
    Project::from_json(&doc.to_string(), Path::new("."))
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    #[test]
    fn the_demo_project_is_valid_and_serves_at_the_given_base_url() {
        let project = super::project("http://127.0.0.1:8080").expect("the demo project loads");
        assert_eq!(project.issuer(), "http://127.0.0.1:8080/local");
        let provider = idflow::oidc::provider::Provider::new(project, std::sync::Arc::new(idflow::store::MemoryStore::new())).expect("a provider");
        let app = provider.application("local").expect("the demo application");
        assert!(app.public);
    }
}
