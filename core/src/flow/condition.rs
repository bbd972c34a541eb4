//! Evaluating `condition` steps against the context.

use super::context::Context;
use super::model::{Condition, Operator};
use serde_json::Value;

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn loose_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(_), _) | (_, Value::Number(_)) => match (number(a), number(b)) {
            (Some(x), Some(y)) => x == y,
            _ => false,
        },
        (Value::Bool(x), Value::String(s)) | (Value::String(s), Value::Bool(x)) => s == if *x { "true" } else { "false" },
        _ => a == b,
    }
}

fn text(v: &Value) -> Option<&str> {
    v.as_str()
}

/// Whether `condition` holds. A missing value satisfies only `notExists`,
/// `notEquals` and `isFalse`-free checks that say so; comparisons of
/// mismatched types are false rather than errors.
pub fn evaluate(condition: &Condition, ctx: &Context) -> bool {
    match condition {
        Condition::And(parts) => parts.iter().all(|c| evaluate(c, ctx)),
        Condition::Or(parts) => parts.iter().any(|c| evaluate(c, ctx)),
        Condition::Compare { key, operator, value } => {
            let actual = ctx.get(key).filter(|v| !v.is_null());
            let expected = value.as_ref().unwrap_or(&Value::Null);
            match operator {
                Operator::Exists => actual.is_some(),
                Operator::NotExists => actual.is_none(),
                Operator::IsTrue => actual.is_some_and(|a| loose_eq(a, &Value::Bool(true))),
                Operator::IsFalse => actual.is_some_and(|a| loose_eq(a, &Value::Bool(false))),
                Operator::Equals => actual.is_some_and(|a| loose_eq(a, expected)),
                Operator::NotEquals => !actual.is_some_and(|a| loose_eq(a, expected)),
                Operator::Contains => match actual {
                    Some(Value::String(s)) => text(expected).is_some_and(|e| s.contains(e)),
                    Some(Value::Array(items)) => items.iter().any(|i| loose_eq(i, expected)),
                    _ => false,
                },
                Operator::StartsWith => {
                    actual.and_then(text).zip(text(expected)).is_some_and(|(a, e)| a.starts_with(e))
                }
                Operator::EndsWith => actual.and_then(text).zip(text(expected)).is_some_and(|(a, e)| a.ends_with(e)),
                Operator::GreaterThan => actual.and_then(number).zip(number(expected)).is_some_and(|(a, e)| a > e),
                Operator::LessThan => actual.and_then(number).zip(number(expected)).is_some_and(|(a, e)| a < e),
                Operator::In => match (actual, expected) {
                    (Some(a), Value::Array(options)) => options.iter().any(|o| loose_eq(a, o)),
                    _ => false,
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cmp(key: &str, operator: Operator, value: Option<Value>) -> Condition {
        Condition::Compare { key: key.into(), operator, value }
    }

    #[test]
    fn operators() {
        let mut c = Context::new();
        for (k, v) in [("form.email", json!("a@example.com")), ("form.age", json!("42")), ("form.ok", json!(true)),
            ("form.tags", json!(["x", "y"])), ("form.none", Value::Null)] {
            c.set(k, v).unwrap_or_default();
        }
        let t = |cond: Condition| evaluate(&cond, &c);
        assert!(t(cmp("form.email", Operator::EndsWith, Some(json!("@example.com")))));
        assert!(t(cmp("form.email", Operator::StartsWith, Some(json!("a@")))));
        assert!(t(cmp("form.email", Operator::Contains, Some(json!("example")))));
        assert!(t(cmp("form.tags", Operator::Contains, Some(json!("y")))));
        assert!(t(cmp("form.age", Operator::GreaterThan, Some(json!(40)))));
        assert!(!t(cmp("form.age", Operator::LessThan, Some(json!(40)))));
        assert!(t(cmp("form.age", Operator::Equals, Some(json!(42)))));
        assert!(t(cmp("form.age", Operator::In, Some(json!([1, 42])))));
        assert!(t(cmp("form.ok", Operator::IsTrue, None)));
        assert!(!t(cmp("form.ok", Operator::IsFalse, None)));
        assert!(t(cmp("form.none", Operator::NotExists, None)));
        assert!(t(cmp("form.missing", Operator::NotExists, None)));
        assert!(t(cmp("form.missing", Operator::NotEquals, Some(json!("x")))));
        assert!(!t(cmp("form.missing", Operator::Equals, Some(json!("x")))));
        assert!(!t(cmp("form.email", Operator::GreaterThan, Some(json!(1)))));
        assert!(t(Condition::And(vec![cmp("form.ok", Operator::Exists, None), Condition::Or(vec![
            cmp("form.age", Operator::Equals, Some(json!(1))), cmp("form.age", Operator::Equals, Some(json!("42")))])])));
    }
}
