//! `oauth`: sends the person to an upstream provider (`oauthProviders`)
//! and waits for the callback, which resumes the flow at `next`.

use super::prelude::*;
use crate::flow::engine::INTERNAL;

/// The upstream provider by name, an optional `prompt`, and where the flow
/// resumes after the callback.
#[derive(Debug, Clone, PartialEq)]
pub struct OAuthStep {
    pub provider: String,
    pub prompt: Option<String>,
    pub next: String,
}

impl StepType for OAuthStep {
    const NAME: &'static str = "oauth";
    const ON_ERROR: bool = true;

    fn parse(p: &mut StepParser<'_>, f: &mut Fields<'_>) -> Option<Self> {
        let provider = f.string(p.p, "provider", true).unwrap_or_default();
        let prompt = f.string(p.p, "prompt", false);
        let next = p.target(f, "next", true);
        Some(OAuthStep { provider, prompt, next })
    }

    async fn run(&self, run: &mut StepRun<'_>) -> Result<Next> {
        let Some(starter) = &run.engine.oauth else {
            return Err(Error::new(ErrorCode::StepFailed, format!("oauth step for provider {:?}: no OIDC provider runs this engine", self.provider)));
        };
        let url = starter.start(&self.provider, self.prompt.as_deref(), run.execution_id, run.step_id).await?;
        run.ctx.set(&format!("{INTERNAL}.redirect"), Value::String(url))?;
        Ok(Next::Wait)
    }
}
