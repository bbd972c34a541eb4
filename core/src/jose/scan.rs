//! Allocation-light scanners for JWS headers and JWT claims.
//!
//! Verification needs only a handful of members (`alg`, `kid`, `crit`, `b64`;
//! `exp`, `nbf`, `iat`, `iss`, `aud` and the required claims), so the hot path
//! reads just those and skips the rest without building a JSON tree. The
//! skipping is still strict: duplicate member names are refused at every
//! depth and nesting is capped, exactly as [`crate::json::parse_strict`] does,
//! so the fast path accepts precisely what the tree parser accepts.

use crate::json::MAX_DEPTH;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

fn push_key<'de, E: de::Error>(seen: &mut Vec<Cow<'de, str>>, key: Cow<'de, str>) -> Result<(), E> {
    if seen.contains(&key) {
        return Err(E::custom(format_args!("duplicate member name {:?}", super::alg::truncate(&key))));
    }
    seen.push(key);
    Ok(())
}

/// Skips any JSON value, refusing duplicate member names and deep nesting.
#[derive(Clone, Copy)]
pub(crate) struct StrictSkip {
    pub depth: usize,
}

impl StrictSkip {
    fn nested<E: de::Error>(self) -> Result<StrictSkip, E> {
        if self.depth >= MAX_DEPTH {
            return Err(E::custom(format_args!("nesting is deeper than {MAX_DEPTH} levels")));
        }
        Ok(StrictSkip { depth: self.depth + 1 })
    }
}

impl<'de> DeserializeSeed<'de> for StrictSkip {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictSkip {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let inner = self.nested()?;
        while seq.next_element_seed(inner)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let inner = self.nested()?;
        let mut seen: Vec<Cow<'de, str>> = Vec::new();
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            push_key(&mut seen, key)?;
            map.next_value_seed(inner)?;
        }
        Ok(())
    }
}

/// A member that must be a string: `Err(())` records a value of another type.
struct StringOrOther;

impl<'de> DeserializeSeed<'de> for StringOrOther {
    type Value = Result<Cow<'de, str>, ()>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StringOrOther {
    type Value = Result<Cow<'de, str>, ()>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Ok(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Ok(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Ok(Cow::Owned(v)))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Err(()))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Err(()))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Err(()))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Err(()))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Err(()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        StrictSkip { depth: 1 }.visit_seq(seq).map(|()| Err(()))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        StrictSkip { depth: 1 }.visit_map(map).map(|()| Err(()))
    }
}

/// A NumericDate member: `Some(v)` for a finite number, `None` for anything else.
struct NumberOrOther;

impl<'de> DeserializeSeed<'de> for NumberOrOther {
    type Value = Option<f64>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NumberOrOther {
    type Value = Option<f64>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(v as f64))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(v as f64))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(v.is_finite().then_some(v))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        StrictSkip { depth: 1 }.visit_seq(seq).map(|()| None)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        StrictSkip { depth: 1 }.visit_map(map).map(|()| None)
    }
}

/// `aud`: one string, an array of strings, or something invalid.
pub(crate) enum Audience<'de> {
    One(Cow<'de, str>),
    Many(Vec<Cow<'de, str>>),
    Invalid,
}

struct AudienceSeed;

impl<'de> DeserializeSeed<'de> for AudienceSeed {
    type Value = Audience<'de>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for AudienceSeed {
    type Value = Audience<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Audience::One(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Audience::One(Cow::Owned(v.to_owned())))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Audience::Invalid)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Audience::Invalid)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Audience::Invalid)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Audience::Invalid)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Audience::Invalid)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        let mut valid = true;
        while let Some(item) = seq.next_element_seed(StringOrOther)? {
            match item {
                Ok(s) => items.push(s),
                Err(()) => valid = false,
            }
        }
        Ok(if valid { Audience::Many(items) } else { Audience::Invalid })
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        StrictSkip { depth: 1 }.visit_map(map).map(|()| Audience::Invalid)
    }
}

/// What verification reads from a protected header.
pub(crate) struct HeaderScan<'de> {
    /// `None`: no alg; `Some(Err)`: not a string.
    pub alg: Option<Result<Cow<'de, str>, ()>>,
    pub kid: Option<Result<Cow<'de, str>, ()>>,
    /// The names a `crit` lists (or "(malformed)").
    pub crit: Option<String>,
    /// `b64` present with a value other than `true`.
    pub b64_not_true: bool,
}

struct HeaderVisitor;

impl<'de> Visitor<'de> for HeaderVisitor {
    type Value = HeaderScan<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut scan = HeaderScan { alg: None, kid: None, crit: None, b64_not_true: false };
        let mut seen: Vec<Cow<'de, str>> = Vec::with_capacity(4);
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match &*key {
                "alg" => scan.alg = Some(map.next_value_seed(StringOrOther)?),
                "kid" => scan.kid = Some(map.next_value_seed(StringOrOther)?),
                "crit" | "b64" => {
                    let value = map.next_value_seed(CritOrB64)?;
                    if &*key == "crit" {
                        scan.crit = Some(value.0);
                    } else {
                        scan.b64_not_true = !value.1;
                    }
                }
                _ => map.next_value_seed(StrictSkip { depth: 1 })?,
            }
            push_key(&mut seen, key)?;
        }
        Ok(scan)
    }
}

/// Reads `crit` (names joined) or `b64` (whether it is `true`) in one seed.
struct CritOrB64;

impl<'de> DeserializeSeed<'de> for CritOrB64 {
    type Value = (String, bool);
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        let value = crate::json::StrictValueSeed.deserialize(d)?;
        let names = match &value {
            serde_json::Value::Array(items) if !items.is_empty() => {
                items.iter().map(|v| v.as_str().unwrap_or("?")).collect::<Vec<_>>().join(", ")
            }
            _ => String::from("(malformed)"),
        };
        Ok((names, value == serde_json::Value::Bool(true)))
    }
}

/// What claim validation reads from a JWT payload.
pub(crate) struct ClaimsScan<'de> {
    pub exp: Option<Option<f64>>,
    pub nbf: Option<Option<f64>>,
    pub iat: Option<Option<f64>>,
    pub iss: Option<Result<Cow<'de, str>, ()>>,
    pub aud: Option<Audience<'de>>,
    /// One flag per required claim, in order.
    pub required_present: Vec<bool>,
}

struct ClaimsVisitor<'r> {
    required: &'r [String],
}

impl<'de> Visitor<'de> for ClaimsVisitor<'_> {
    type Value = ClaimsScan<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut scan = ClaimsScan {
            exp: None,
            nbf: None,
            iat: None,
            iss: None,
            aud: None,
            required_present: vec![false; self.required.len()],
        };
        let mut seen: Vec<Cow<'de, str>> = Vec::with_capacity(12);
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match &*key {
                "exp" => scan.exp = Some(map.next_value_seed(NumberOrOther)?),
                "nbf" => scan.nbf = Some(map.next_value_seed(NumberOrOther)?),
                "iat" => scan.iat = Some(map.next_value_seed(NumberOrOther)?),
                "iss" => scan.iss = Some(map.next_value_seed(StringOrOther)?),
                "aud" => scan.aud = Some(map.next_value_seed(AudienceSeed)?),
                _ => map.next_value_seed(StrictSkip { depth: 1 })?,
            }
            for (flag, name) in scan.required_present.iter_mut().zip(self.required) {
                if *name == *key {
                    *flag = true;
                }
            }
            push_key(&mut seen, key)?;
        }
        Ok(scan)
    }
}

fn finish<'de, T>(
    de: &mut serde_json::Deserializer<serde_json::de::SliceRead<'de>>,
    value: Result<T, serde_json::Error>,
) -> Result<T, String> {
    let value = value.map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    Ok(value)
}

/// Checks that `bytes` are one strict JSON object (no tree is built).
pub(crate) fn check_object(bytes: &[u8]) -> Result<(), String> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = de::Deserializer::deserialize_map(&mut de, StrictSkip { depth: 0 });
    finish(&mut de, value)
}

pub(crate) fn scan_header(bytes: &[u8]) -> Result<HeaderScan<'_>, String> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = de::Deserializer::deserialize_map(&mut de, HeaderVisitor);
    finish(&mut de, value)
}

pub(crate) fn scan_claims<'de>(bytes: &'de [u8], required: &[String]) -> Result<ClaimsScan<'de>, String> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = de::Deserializer::deserialize_map(&mut de, ClaimsVisitor { required });
    finish(&mut de, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_scan_reads_members_and_refuses_duplicates() {
        let h = scan_header(br#"{"alg":"ES256","kid":"k\u0031","x":{"a":[1,{"b":2}]}}"#).unwrap_or_else(|e| unreachable!("{e}"));
        assert!(matches!(h.alg, Some(Ok(ref a)) if a == "ES256"));
        assert!(matches!(h.kid, Some(Ok(ref k)) if k == "k1"));
        assert!(scan_header(br#"{"alg":"ES256","alg":"HS256"}"#).is_err());
        assert!(scan_header(br#"{"alg":"ES256","x":{"a":1,"a":2}}"#).is_err());
        assert!(scan_header(br#"{"alg":"ES256","x":[{"a":1,"a":2}]}"#).is_err());
        assert!(scan_header(b"[1]").is_err());
        assert!(scan_header(br#"{"alg":"ES256"} "#).is_ok());
        assert!(scan_header(br#"{"alg":"ES256"}x"#).is_err());
        let deep = format!(r#"{{"alg":"ES256","x":{}1{}}}"#, "[".repeat(100), "]".repeat(100));
        assert!(scan_header(deep.as_bytes()).is_err());
    }

    #[test]
    fn claims_scan_types() {
        let req = vec!["exp".to_owned(), "sub".to_owned()];
        let c = scan_claims(br#"{"exp":1.5,"iat":"x","aud":["a",1],"iss":2,"sub":null}"#, &req)
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(c.exp, Some(Some(1.5)));
        assert_eq!(c.iat, Some(None));
        assert!(matches!(c.aud, Some(Audience::Invalid)));
        assert!(matches!(c.iss, Some(Err(()))));
        assert_eq!(c.required_present, vec![true, true]);
        assert!(scan_claims(br#"{"a":{"b":1,"b":1}}"#, &req).is_err());
    }
}
