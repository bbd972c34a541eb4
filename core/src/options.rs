//! The options object a binding hands to a core call, by its camelCase
//! names (`{codeVerifier, nonce, params}` in Node; Python takes keyword
//! arguments that pyo3 types). Read here, strictly, so that every language
//! refuses the same mistakes: an unknown name, or a value of the wrong type,
//! is an `invalid_request` error that names it, never a silent default.

use crate::error::{Error, Result};
use serde_json::{Map, Value};

pub struct Options<'a> {
    map: &'a Map<String, Value>,
    what: &'static str,
}

impl<'a> Options<'a> {
    /// Checks that `map` has only `known` names; `what` names the call in errors.
    pub fn new(map: &'a Map<String, Value>, what: &'static str, known: &[&str]) -> Result<Options<'a>> {
        if let Some(k) = map.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(Error::invalid_request(format!("{what}: unknown option {k:?} (known: {})", known.join(", "))));
        }
        Ok(Options { map, what })
    }

    /// A string option; `null` and absence are `None`.
    pub fn string(&self, name: &str) -> Result<Option<String>> {
        match self.map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(Error::invalid_request(format!("{}: {name} must be a string", self.what))),
        }
    }

    /// A list of strings, given as a list or as one space-separated string.
    pub fn words(&self, name: &str) -> Result<Option<Vec<String>>> {
        let wrong = || Error::invalid_request(format!("{}: {name} must be a string or a list of strings", self.what));
        match self.map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.split(' ').filter(|x| !x.is_empty()).map(str::to_owned).collect())),
            Some(Value::Array(items)) => items.iter().map(|v| v.as_str().map(str::to_owned).ok_or_else(wrong)).collect::<Result<_>>().map(Some),
            Some(_) => Err(wrong()),
        }
    }

    /// An object of string values, as name/value pairs.
    pub fn string_pairs(&self, name: &str) -> Result<Vec<(String, String)>> {
        match self.map.get(name) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.clone(), s.clone())),
                    _ => Err(Error::invalid_request(format!("{}: {name}.{k} must be a string", self.what))),
                })
                .collect(),
            Some(_) => Err(Error::invalid_request(format!("{}: {name} must be an object of strings", self.what))),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn reads_known_options_and_names_every_mistake() {
        let m = map(json!({"nonce": "n", "params": {"a": "1"}, "prompt": "login consent", "state": null}));
        let o = Options::new(&m, "exchangeCode", &["nonce", "params", "prompt", "state"]).unwrap();
        assert_eq!(o.string("nonce").unwrap().as_deref(), Some("n"));
        assert_eq!(o.string("state").unwrap(), None);
        assert_eq!(o.string_pairs("params").unwrap(), vec![("a".to_owned(), "1".to_owned())]);
        assert_eq!(o.words("prompt").unwrap(), Some(vec!["login".to_owned(), "consent".to_owned()]));
        let err = |m: Value, check: &dyn Fn(&Options) -> Result<()>| {
            let m = map(m);
            let e = Options::new(&m, "exchangeCode", &["nonce", "params", "prompt"]).and_then(|o| check(&o)).unwrap_err();
            assert_eq!(e.code, crate::error::ErrorCode::InvalidRequest);
            e.message
        };
        assert!(err(json!({"nonse": "n"}), &|_| Ok(())).contains("unknown option \"nonse\""));
        assert!(err(json!({"nonce": 7}), &|o| o.string("nonce").map(drop)).contains("nonce must be a string"));
        assert!(err(json!({"params": {"a": 1}}), &|o| o.string_pairs("params").map(drop)).contains("params.a must be a string"));
        assert!(err(json!({"params": ["a"]}), &|o| o.string_pairs("params").map(drop)).contains("object of strings"));
        assert!(err(json!({"prompt": ["login", 1]}), &|o| o.words("prompt").map(drop)).contains("list of strings"));
    }
}
