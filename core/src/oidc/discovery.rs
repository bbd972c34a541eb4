//! OpenID Provider Metadata (OpenID Connect Discovery 1.0 §3, RFC 8414 §2,
//! RFC 9101 §10.1, RP-Initiated Logout §2.1): the one type that idflow's
//! provider publishes at `/.well-known/openid-configuration` and that its
//! client reads from any provider.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A discovery document. Fields that a provider may leave out are optional
/// or empty; fields this type does not know are ignored when read. The
/// issuer and the endpoints are what a client acts on: a value of the wrong
/// type there is an error naming the field. The lists and flags only
/// describe the provider: a `null`, or a value of another type, reads as
/// absent (and a list keeps its strings), rather than refusing a provider
/// over a field the client never uses.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProviderMetadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userinfo_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_session_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    #[serde(default, deserialize_with = "lenient::strings", skip_serializing_if = "Vec::is_empty")]
    pub response_types_supported: Vec<String>,
    #[serde(default, deserialize_with = "lenient::strings", skip_serializing_if = "Vec::is_empty")]
    pub response_modes_supported: Vec<String>,
    #[serde(default, deserialize_with = "lenient::strings", skip_serializing_if = "Vec::is_empty")]
    pub subject_types_supported: Vec<String>,
    #[serde(default, deserialize_with = "lenient::strings", skip_serializing_if = "Vec::is_empty")]
    pub id_token_signing_alg_values_supported: Vec<String>,
    #[serde(default, deserialize_with = "lenient::strings", skip_serializing_if = "Vec::is_empty")]
    pub scopes_supported: Vec<String>,
    #[serde(default, deserialize_with = "lenient::strings", skip_serializing_if = "Vec::is_empty")]
    pub claims_supported: Vec<String>,
    #[serde(default, deserialize_with = "lenient::strings", skip_serializing_if = "Vec::is_empty")]
    pub grant_types_supported: Vec<String>,
    #[serde(default, deserialize_with = "lenient::strings", skip_serializing_if = "Vec::is_empty")]
    pub code_challenge_methods_supported: Vec<String>,
    #[serde(default, deserialize_with = "lenient::strings", skip_serializing_if = "Vec::is_empty")]
    pub token_endpoint_auth_methods_supported: Vec<String>,
    #[serde(default, deserialize_with = "lenient::strings", skip_serializing_if = "Vec::is_empty")]
    pub token_endpoint_auth_signing_alg_values_supported: Vec<String>,
    #[serde(default, deserialize_with = "lenient::strings", skip_serializing_if = "Vec::is_empty")]
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    #[serde(default, deserialize_with = "lenient::strings", skip_serializing_if = "Vec::is_empty")]
    pub prompt_values_supported: Vec<String>,
    #[serde(default, deserialize_with = "lenient::strings", skip_serializing_if = "Vec::is_empty")]
    pub acr_values_supported: Vec<String>,
    #[serde(default, deserialize_with = "lenient::flag", skip_serializing_if = "Option::is_none")]
    pub claims_parameter_supported: Option<bool>,
    #[serde(default, deserialize_with = "lenient::flag", skip_serializing_if = "Option::is_none")]
    pub request_parameter_supported: Option<bool>,
    #[serde(default, deserialize_with = "lenient::strings", skip_serializing_if = "Vec::is_empty")]
    pub request_object_signing_alg_values_supported: Vec<String>,
    #[serde(default, deserialize_with = "lenient::flag", skip_serializing_if = "Option::is_none")]
    pub request_uri_parameter_supported: Option<bool>,
    #[serde(default, deserialize_with = "lenient::flag", skip_serializing_if = "Option::is_none")]
    pub authorization_response_iss_parameter_supported: Option<bool>,
}

impl ProviderMetadata {
    /// Reads a discovery document (a JSON object, duplicate keys refused).
    /// A known field of the wrong type, or an empty issuer, authorization or
    /// token endpoint, is a `config` error naming it.
    pub fn from_json(bytes: &[u8]) -> Result<ProviderMetadata> {
        let doc: Map<String, Value> =
            crate::json::parse_object(bytes).map_err(|_| Error::config("the discovery document is not a JSON object"))?;
        for required in ["issuer", "authorization_endpoint", "token_endpoint"] {
            if doc.get(required).and_then(Value::as_str).is_none_or(str::is_empty) {
                return Err(Error::config(format!("the discovery document has no {required}")));
            }
        }
        for optional in ["userinfo_endpoint", "jwks_uri", "end_session_endpoint", "revocation_endpoint"] {
            if !matches!(doc.get(optional), None | Some(Value::Null | Value::String(_))) {
                return Err(Error::config(format!("the discovery document's {optional} is not a URL string")));
            }
        }
        serde_json::from_value(Value::Object(doc)).map_err(|e| Error::config(format!("the discovery document is not valid: {e}")))
    }

    /// The document as JSON, in the order of the fields above.
    pub fn to_json(&self) -> Value {
        // A struct of strings, lists and booleans always serializes.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// Readers for the descriptive fields (see [`ProviderMetadata`]).
mod lenient {
    use serde::{Deserialize, Deserializer};
    use serde_json::Value;

    pub(super) fn strings<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::Array(items) => items
                .into_iter()
                .filter_map(|v| match v {
                    Value::String(s) => Some(s),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        })
    }

    pub(super) fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
        Ok(Value::deserialize(d)?.as_bool())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_it_writes_and_ignores_unknown_fields() {
        let meta = ProviderMetadata {
            issuer: "https://op.example".into(),
            authorization_endpoint: "https://op.example/authorize".into(),
            token_endpoint: "https://op.example/token".into(),
            jwks_uri: Some("https://op.example/jwks".into()),
            scopes_supported: vec!["openid".into()],
            claims_parameter_supported: Some(true),
            ..Default::default()
        };
        let mut json = meta.to_json();
        assert!(json.get("userinfo_endpoint").is_none(), "absent fields are left out");
        json["x_vendor_extension"] = "ignored".into();
        assert_eq!(ProviderMetadata::from_json(json.to_string().as_bytes()).unwrap(), meta);
    }

    #[test]
    fn descriptive_fields_of_another_type_read_as_absent() {
        // Real providers send nulls and odd values in fields a client only reads.
        let doc = r#"{"issuer":"https://op","authorization_endpoint":"https://op/a","token_endpoint":"https://op/t",
            "userinfo_endpoint":null,"scopes_supported":null,"claims_supported":["sub",7,"email"],
            "response_types_supported":"code","claims_parameter_supported":"true","request_parameter_supported":false}"#;
        let meta = ProviderMetadata::from_json(doc.as_bytes()).unwrap();
        assert_eq!(meta.userinfo_endpoint, None);
        assert!(meta.scopes_supported.is_empty() && meta.response_types_supported.is_empty());
        assert_eq!(meta.claims_supported, ["sub", "email"]);
        assert_eq!((meta.claims_parameter_supported, meta.request_parameter_supported), (None, Some(false)));
    }

    #[test]
    fn bad_documents_are_config_errors_naming_the_field() {
        let base = r#""issuer":"https://op","authorization_endpoint":"https://op/a","token_endpoint":"https://op/t""#;
        for (doc, needle) in [
            ("[]".to_owned(), "not a JSON object"),
            (r#"{"issuer":"https://op","token_endpoint":"https://op/t"}"#.to_owned(), "authorization_endpoint"),
            (r#"{"issuer":"","authorization_endpoint":"https://op/a","token_endpoint":"https://op/t"}"#.to_owned(), "issuer"),
            (format!(r#"{{{base},"jwks_uri":7}}"#), "jwks_uri is not a URL string"),
            (format!(r#"{{{base},"userinfo_endpoint":["https://op/u"]}}"#), "userinfo_endpoint is not a URL string"),
            (r#"{"issuer":"https://op","authorization_endpoint":"https://op/a","token_endpoint":7}"#.to_owned(), "token_endpoint"),
            (format!(r#"{{{base},"issuer":"https://op"}}"#), "not a JSON object"),
        ] {
            let err = ProviderMetadata::from_json(doc.as_bytes()).unwrap_err();
            assert_eq!(err.code, crate::error::ErrorCode::Config, "{doc}");
            assert!(err.message.contains(needle), "{doc}: {}", err.message);
        }
    }
}
