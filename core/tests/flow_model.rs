//! Flow parsing and validation: every problem, at once, with step and field.

use idflow::flow::{parse_flow, validate_flow, ClaimValue, StepKind};
use idflow::users::provision::SignUpMode;
use idflow::ErrorCode;
use std::collections::BTreeSet;

fn read(name: &str) -> String {
    std::fs::read_to_string(format!("{}/../tests/flows/{name}", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| unreachable!("{name}: {e}"))
}

#[test]
fn the_documented_connector_flow_parses() {
    let flow = parse_flow(&read("random-user.json")).unwrap_or_else(|e| unreachable!("{e}"));
    assert_eq!(flow.id, "random-user");
    assert_eq!(flow.start, "random");
    let Some(StepKind::Connector(c)) = flow.step("random").map(|s| &s.kind) else { unreachable!("connector step") };
    assert_eq!((c.context_key.as_str(), c.endpoint.as_str(), c.timeout), ("random", "/users?size=1", 5.0));
    assert_eq!(flow.step("random").and_then(|s| s.on_error.as_deref()), Some("failed"));
    let Some(StepKind::CustomClaims(idflow::flow::CustomClaimsStep { claims, .. })) = flow.step("claims").map(|s| &s.kind) else { unreachable!() };
    assert_eq!(claims[0].key, "dob");
    assert_eq!(claims[0].value, ClaimValue::Dynamic("connectors.random.date_of_birth".into()));
    let Some(StepKind::GenerateJwt(j)) = flow.step("jwt").map(|s| &s.kind) else { unreachable!() };
    assert_eq!(j.mode, SignUpMode::SignUpOrIn);
    assert!(validate_flow(&read("sign-up-or-in.json")).is_empty(), "{:?}", validate_flow(&read("sign-up-or-in.json")));
}

#[test]
fn every_problem_is_reported_at_once() {
    let problems = validate_flow(&read("invalid.json"));
    let got: BTreeSet<(Option<String>, String)> = problems.iter().map(|p| (p.step.clone(), p.field.clone())).collect();
    let expected_doc: serde_json::Value =
        serde_json::from_str(&read("invalid.expected.json")).unwrap_or_else(|e| unreachable!("{e}"));
    let expected: BTreeSet<(Option<String>, String)> = expected_doc["problems"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|pair| (pair[0].as_str().map(str::to_owned), pair[1].as_str().unwrap_or_default().to_owned()))
        .collect();
    assert_eq!(got, expected, "problems: {problems:#?}");
    assert!(problems.iter().all(|p| !p.message.is_empty()));
    let err = parse_flow(&read("invalid.json")).err().unwrap_or_else(|| unreachable!("invalid"));
    assert_eq!(err.code, ErrorCode::InvalidFlow);
    assert!(err.message.contains("teleport") && err.message.contains("nowhere"), "{}", err.message);
}

#[test]
fn malformed_documents_are_one_clear_problem() {
    for (text, needle) in [
        ("", "not valid JSON"),
        ("[1]", "must be a JSON object"),
        (r#"{"id":"a","id":"b"}"#, "duplicate"),
        (r#"{"id":"x","start":"s","steps":{}}"#, "must not be empty"),
        (r#"{"id":"x","start":"s"}"#, "is required"),
    ] {
        let problems = validate_flow(text);
        assert!(problems.iter().any(|p| p.message.contains(needle)), "{text:?}: {problems:?}");
    }
    let problems = validate_flow(r#"{"id":"x","start":"a","steps":{"a":{"type":"customClaims","claims":[{"key":"n","type":"static","value":1}],"next":"a"}}}"#);
    assert!(problems.iter().any(|p| p.message.contains("no end step")), "{problems:?}");
}

#[test]
fn reserved_claims_cannot_be_overwritten() {
    for reserved in idflow::flow::RESERVED_CLAIMS {
        let text = format!(
            r#"{{"id":"x","start":"c","steps":{{"c":{{"type":"customClaims","claims":[{{"key":"{reserved}","type":"static","value":1}}],"next":"e"}},"e":{{"type":"end"}}}}}}"#
        );
        let problems = validate_flow(&text);
        assert_eq!(problems.len(), 1, "{reserved}: {problems:?}");
        assert_eq!(problems[0].field, "claims.0.key");
    }
}

#[test]
fn connector_templates_name_what_they_read() {
    let flow = |endpoint: &str, body: &str| {
        format!(
            r#"{{"id":"x","start":"c","steps":{{"c":{{"type":"connector","connector":"api","method":"POST","endpoint":{endpoint:?},"headers":{{"X-Id":"{{{{form.email}}}}"}},"body":{body},"contextKey":"api","next":"done"}},"done":{{"type":"end"}}}}}}"#
        )
    };
    assert!(validate_flow(&flow("/users/{{form.email}}", r#"{"who":"{{form.email}}","n":[1,"{{connectors.prev.id}}"]}"#)).is_empty());
    for (endpoint, body, field, needle) in [
        // The whole form would escape the rule that only declared inputs are kept.
        ("/users", r#"{"all":"{{form}}"}"#, "body.all", "needs a name after \"form\""),
        ("/users/{{frm.email}}", "{}", "endpoint", "must start with one of"),
        ("/users", r#"{"list":["ok","{{user}}"]}"#, "body.list[1]", "needs a name"),
        ("/users/{{form.email", "{}", "endpoint", "without a closing"),
    ] {
        let problems = validate_flow(&flow(endpoint, body));
        assert!(
            problems.iter().any(|p| p.step.as_deref() == Some("c") && p.field == field && p.message.contains(needle)),
            "{endpoint} {body}: {problems:?}"
        );
    }
}
