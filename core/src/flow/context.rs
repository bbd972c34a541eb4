//! The execution context a flow reads and writes: `form.*`, `connectors.*`
//! (response bodies), `connectorResponses.*` (their HTTP status, headers and
//! body), `user.*`, `request.*`, `claims.*`, `oauth.*`, addressed by dotted
//! paths whose numeric segments index arrays (`connectors.random.items.0.id`).

use crate::error::{Error, ErrorCode, Result};
use serde_json::{Map, Value};

/// A flow's context: one JSON object whose top-level members are the roots.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Context {
    root: Map<String, Value>,
}

impl Context {
    pub fn new() -> Context {
        Context::default()
    }

    /// A context from a JSON object (e.g. one restored from the store).
    pub fn from_value(value: Value) -> Result<Context> {
        match value {
            Value::Object(root) => Ok(Context { root }),
            _ => Err(Error::new(ErrorCode::Storage, "a stored flow context must be a JSON object")),
        }
    }

    pub fn as_value(&self) -> Value {
        Value::Object(self.root.clone())
    }

    pub fn into_value(self) -> Value {
        Value::Object(self.root)
    }

    /// The value at `path`, if there is one.
    pub fn get(&self, path: &str) -> Option<&Value> {
        let mut segments = path.split('.');
        let mut current = self.root.get(segments.next()?)?;
        for segment in segments {
            current = match current {
                Value::Object(m) => m.get(segment)?,
                Value::Array(items) => items.get(segment.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(current)
    }

    /// Sets `path` to `value`, creating objects on the way. A path through a
    /// non-object (a string, a number) is refused.
    pub fn set(&mut self, path: &str, value: Value) -> Result<()> {
        let segments: Vec<&str> = path.split('.').collect();
        if segments.iter().any(|s| s.is_empty()) {
            return Err(Error::new(ErrorCode::StepFailed, format!("context path {path:?} has an empty segment")));
        }
        let (last, parents) = segments.split_last().ok_or_else(|| Error::new(ErrorCode::StepFailed, "empty context path"))?;
        let mut current = &mut self.root;
        for segment in parents {
            let entry = current.entry((*segment).to_owned()).or_insert_with(|| Value::Object(Map::new()));
            current = match entry {
                Value::Object(m) => m,
                _ => {
                    return Err(Error::new(
                        ErrorCode::StepFailed,
                        format!("context path {path:?} passes through {segment:?}, which is not an object"),
                    ))
                }
            };
        }
        current.insert((*last).to_owned(), value);
        Ok(())
    }

    /// Removes `path` (used to drop password inputs once consumed).
    pub fn remove(&mut self, path: &str) -> Option<Value> {
        let (parent, last) = match path.rsplit_once('.') {
            Some((p, l)) => (Some(p), l),
            None => (None, path),
        };
        let map = match parent {
            None => &mut self.root,
            Some(p) => {
                let mut current = &mut self.root;
                for segment in p.split('.') {
                    current = match current.get_mut(segment) {
                        Some(Value::Object(m)) => m,
                        _ => return None,
                    };
                }
                current
            }
        };
        map.remove(last)
    }
}

/// Text for a value placed into a string: strings as they are, `null` and
/// missing values as nothing, everything else as JSON.
pub fn value_text(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_read_objects_and_arrays() {
        let mut c = Context::new();
        c.set("connectors.random", json!({"items": [{"id": 7}], "employment": {"title": "Chef"}})).unwrap_or_default();
        assert_eq!(c.get("connectors.random.items.0.id"), Some(&json!(7)));
        assert_eq!(c.get("connectors.random.employment.title"), Some(&json!("Chef")));
        assert_eq!(c.get("connectors.random.items.1.id"), None);
        assert_eq!(c.get("connectors.random.items.x"), None);
        assert_eq!(c.get("form.email"), None);
        c.set("form.email", json!("a@b.c")).unwrap_or_default();
        assert_eq!(value_text(c.get("form.email")), "a@b.c");
        assert!(c.set("form.email.deeper", json!(1)).is_err());
        assert_eq!(c.remove("form.email"), Some(json!("a@b.c")));
        assert_eq!(c.get("form.email"), None);
        assert_eq!(value_text(c.get("connectors.random.items.0.id")), "7");
    }
}
