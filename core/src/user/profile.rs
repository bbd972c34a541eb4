//! The checked OIDC profile fields of a user (OIDC Core §5.1): the
//! `address` object and the shapes of URLs, birthdates, time zones and
//! locales.

use super::*;

/// A postal address (OIDC Core §5.1.1): `/v1` names in camelCase, claim
/// names in snake_case ([`Address::to_claim`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Address {
    pub formatted: Option<String>,
    pub street_address: Option<String>,
    pub locality: Option<String>,
    pub region: Option<String>,
    pub postal_code: Option<String>,
    pub country: Option<String>,
}

/// The address fields: `/v1` name, claim name.
const ADDRESS_FIELDS: [(&str, &str); 6] = [
    ("formatted", "formatted"),
    ("streetAddress", "street_address"),
    ("locality", "locality"),
    ("region", "region"),
    ("postalCode", "postal_code"),
    ("country", "country"),
];

impl Address {
    fn slots(&self) -> [&Option<String>; 6] {
        [&self.formatted, &self.street_address, &self.locality, &self.region, &self.postal_code, &self.country]
    }

    fn slots_mut(&mut self) -> [&mut Option<String>; 6] {
        [
            &mut self.formatted,
            &mut self.street_address,
            &mut self.locality,
            &mut self.region,
            &mut self.postal_code,
            &mut self.country,
        ]
    }

    /// The `/v1` shape (camelCase; absent parts left out).
    pub fn to_json(&self) -> Value {
        self.object(|(name, _)| name)
    }

    /// The `address` claim (OIDC Core §5.1.1; snake_case).
    pub fn to_claim(&self) -> Value {
        self.object(|(_, claim)| claim)
    }

    fn object(&self, key: impl Fn((&'static str, &'static str)) -> &'static str) -> Value {
        let mut out = Map::new();
        for (names, slot) in ADDRESS_FIELDS.into_iter().zip(self.slots()) {
            if let Some(v) = slot {
                out.insert(key(names).to_owned(), v.clone().into());
            }
        }
        Value::Object(out)
    }

    /// Reads the `/v1` shape; `Err` names an unknown or non-string part.
    pub fn from_json(v: &Value) -> Result<Address, String> {
        let obj = v.as_object().ok_or("user field address takes an object")?;
        let mut a = Address::default();
        for (k, val) in obj {
            let i = ADDRESS_FIELDS
                .iter()
                .position(|(name, _)| name == k)
                .ok_or_else(|| format!("address.{k} is not an address field; expected one of {}", ADDRESS_FIELDS.map(|f| f.0).join(", ")))?;
            *a.slots_mut()[i] = match val {
                Value::Null => None,
                Value::String(s) => Some(s.clone()),
                _ => return Err(format!("address.{k} takes a string")),
            };
        }
        Ok(a)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.slots().iter().all(|s| s.is_none())
    }
}

/// `value` when it passes `ok`; else an error naming the expected form.
pub(super) fn checked(value: Option<String>, ok: fn(&str) -> bool, expected: &str) -> Result<Option<String>, String> {
    match value {
        Some(v) if !ok(&v) => Err(format!("{v:?} is not {expected}")),
        v => Ok(v),
    }
}

pub(super) fn is_web_url(s: &str) -> bool {
    url::Url::parse(s).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
}

pub(super) fn is_birthdate(s: &str) -> bool {
    let digits = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_digit());
    match s.split('-').collect::<Vec<_>>().as_slice() {
        [y] => digits(y, 4),
        [y, m, d] => {
            digits(y, 4)
                && digits(m, 2)
                && digits(d, 2)
                && (1..=12).contains(&m.parse::<u8>().unwrap_or(0))
                && (1..=31).contains(&d.parse::<u8>().unwrap_or(0))
        }
        _ => false,
    }
}

pub(super) fn is_zoneinfo(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"/_-+".contains(&b))
        && !s.starts_with('/')
        && !s.contains("..")
}

pub(super) fn is_locale(s: &str) -> bool {
    let mut parts = s.split(['-', '_']);
    let first_ok = parts.next().is_some_and(|p| (2..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphabetic()));
    first_ok && parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}
