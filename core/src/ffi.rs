//! What Swift and Kotlin need to carry the core's own records (the
//! `uniffi` feature, which only `bindings/uniffi` turns on): JSON objects
//! cross as JSON text, which every platform parses with its own library.

use serde_json::{Map, Value};

/// A JSON object (claims, headers); JSON text on the foreign side.
pub type JsonObject = Map<String, Value>;

uniffi::custom_type!(JsonObject, String, {
    remote,
    lower: |m| Value::Object(m).to_string(),
    try_lift: |text| match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(uniffi::deps::anyhow::anyhow!("a JSON object was expected")),
    },
});
