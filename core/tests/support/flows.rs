//! What the flow tests share: answers as JSON objects, and the `amr` of a
//! completed flow's session JWT (the "local" project's audience).

use idflow::flow::FlowResponse;
use idflow::jose::{self, Algorithm, Key, Validation};
use serde_json::{Map, Value};

pub fn obj(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

pub fn amr(key: &Key, r: &FlowResponse) -> Value {
    let mut v = Validation::new(&[Algorithm::ES256]);
    v.audience = vec!["local".into()];
    jose::verify(&r.auth_info.as_ref().expect("a session").session_jwt, &key.public_key().unwrap(), &v).unwrap().claims["amr"].clone()
}
