//! `end`: the flow is complete.

use super::prelude::*;

/// The end of a flow; it has no settings.
#[derive(Debug, Clone, PartialEq)]
pub struct EndStep;

impl StepType for EndStep {
    const NAME: &'static str = "end";
    const ON_ERROR: bool = false;

    fn parse(p: &mut StepParser<'_>, f: &mut Fields<'_>) -> Option<Self> {
        let _ = (p, f);
        Some(EndStep)
    }

    async fn run(&self, run: &mut StepRun<'_>) -> Result<Next> {
        let _ = run;
        Ok(Next::End)
    }
}
