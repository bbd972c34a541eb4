//! `screen`: a page that waits for the person. Its inputs go to `form.*`
//! (only the declared ones), and an interaction picks where the flow goes.

use super::prelude::*;
use std::collections::HashSet;

#[derive(Debug, Clone, PartialEq)]
pub struct ScreenStep {
    pub title: String,
    pub inputs: Vec<Input>,
    pub interactions: Vec<Interaction>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputType {
    Text,
    Email,
    Phone,
    Password,
    Hidden,
    Select,
}

impl InputType {
    pub fn parse(s: &str) -> Option<InputType> {
        Some(match s {
            "text" => InputType::Text,
            "email" => InputType::Email,
            "phone" => InputType::Phone,
            "password" => InputType::Password,
            "hidden" => InputType::Hidden,
            "select" => InputType::Select,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            InputType::Text => "text",
            InputType::Email => "email",
            InputType::Phone => "phone",
            InputType::Password => "password",
            InputType::Hidden => "hidden",
            InputType::Select => "select",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    pub name: String,
    pub input_type: InputType,
    pub label: String,
    pub required: bool,
    /// Choices of a `select` input.
    pub options: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Interaction {
    pub id: String,
    pub label: String,
    pub next: String,
}

impl StepType for ScreenStep {
    const NAME: &'static str = "screen";
    const ON_ERROR: bool = false;

    fn parse(p: &mut StepParser<'_>, f: &mut Fields<'_>) -> Option<Self> {
        let id = f.step.unwrap_or("");
        let title = f.string(p.p, "title", false).unwrap_or_default();
        let default_next = f.string(p.p, "next", false);
        let mut inputs = Vec::new();
        let mut names = HashSet::new();
        for (i, item) in f.array(p.p, "inputs", false).into_iter().flatten().enumerate() {
            let Value::Object(m) = item else {
                p.p.add(Some(id), format!("inputs.{i}"), "must be an object");
                continue;
            };
            let mut g = Fields::new(Some(id), format!("inputs.{i}"), m);
            let name = g.string(p.p, "name", true).unwrap_or_default();
            if !name.is_empty() && !names.insert(name.clone()) {
                p.p.add(Some(id), g.path("name"), format!("input {name:?} is declared twice"));
            }
            let input_type = match g.string(p.p, "type", false).as_deref() {
                None => InputType::Text,
                Some(t) => InputType::parse(t).unwrap_or_else(|| {
                    p.p.add(
                        Some(id),
                        g.path("type"),
                        format!("unknown input type {t:?}; expected text, email, phone, password, hidden or select"),
                    );
                    InputType::Text
                }),
            };
            let label = g.string(p.p, "label", false).unwrap_or_else(|| name.clone());
            let required = g.boolean(p.p, "required").unwrap_or(false);
            let mut options = Vec::new();
            for (j, o) in g.array(p.p, "options", input_type == InputType::Select).into_iter().flatten().enumerate() {
                match o.as_str() {
                    Some(s) => options.push(s.to_owned()),
                    None => p.p.add(Some(id), format!("inputs.{i}.options.{j}"), "must be a string"),
                }
            }
            g.finish(p.p);
            inputs.push(Input { name, input_type, label, required, options });
        }
        let mut interactions = Vec::new();
        for (i, item) in f.array(p.p, "interactions", false).into_iter().flatten().enumerate() {
            let Value::Object(m) = item else {
                p.p.add(Some(id), format!("interactions.{i}"), "must be an object");
                continue;
            };
            let mut g = Fields::new(Some(id), format!("interactions.{i}"), m);
            let iid = g.string(p.p, "id", true).unwrap_or_default();
            let label = g.string(p.p, "label", false).unwrap_or_else(|| iid.clone());
            let next = match g.string(p.p, "next", false) {
                Some(n) => {
                    p.edges.push((id.to_owned(), g.path("next"), n.clone()));
                    n
                }
                None => match &default_next {
                    Some(n) => n.clone(),
                    None => {
                        p.p.add(Some(id), g.path("next"), "is required (or give the screen a next)");
                        String::new()
                    }
                },
            };
            g.finish(p.p);
            interactions.push(Interaction { id: iid, label, next });
        }
        if let Some(n) = &default_next {
            p.edges.push((id.to_owned(), "next".into(), n.clone()));
        }
        if interactions.is_empty() {
            match &default_next {
                Some(n) => interactions.push(Interaction { id: "submit".into(), label: "Continue".into(), next: n.clone() }),
                None => p.p.add(Some(id), "interactions", "a screen needs at least one interaction or a next"),
            }
        }
        Some(ScreenStep { title, inputs, interactions })
    }

    async fn run(&self, run: &mut StepRun<'_>) -> Result<Next> {
        let _ = run;
        Ok(Next::Wait)
    }

    fn form_inputs(&self, names: &mut BTreeSet<String>) {
        names.extend(self.inputs.iter().map(|i| i.name.clone()));
    }
}
