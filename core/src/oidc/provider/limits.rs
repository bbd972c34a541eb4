//! Rate limits (`rateLimits` in the project, on by default) and the
//! client's address (`trustedProxies`). Counters are fixed windows in the
//! store, so every process serving one database counts together.
//!
//! What is counted: failed client authentications per client id and per
//! address (checked before the secret is), flow starts per address,
//! answers per execution, social-login API calls per address, and failed
//! password sign-ins per address (checked before the next answer runs). Over a
//! limit the provider answers 429 with `Retry-After` and code
//! `rate_limited`. A request whose address the host does not know (a web
//! app that mounts `Provider.handle` without one) is not counted per
//! address.

use super::state::RateCount;
use super::http::HttpRequest;
use crate::error::{Error, ErrorCode, Result};
use crate::ids::now_secs;
use serde_json::Value;
use std::net::IpAddr;

/// The limits, each per window; every field has a default.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimits {
    /// Defaults to true.
    pub enabled: bool,
    /// Window length in seconds. Defaults to 60.
    pub window: u64,
    /// Failed client authentications per client id. Defaults to 10.
    pub client_auth_failures_per_client: u64,
    /// Failed client authentications per address. Defaults to 30.
    pub client_auth_failures_per_ip: u64,
    /// Flow starts per address. Defaults to 60.
    pub flow_starts_per_ip: u64,
    /// Answers (`/v1/flow/next`) per execution. Defaults to 30.
    pub answers_per_execution: u64,
    /// Social-login API calls (`/v1/auth/oauth/*`) per address. Defaults to 60.
    pub social_api_per_ip: u64,
    /// Failed password sign-ins (`invalid_credentials`, `user_locked`) per
    /// address, whichever login ids they tried. Defaults to 30.
    pub password_failures_per_ip: u64,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            enabled: true,
            window: 60,
            client_auth_failures_per_client: 10,
            client_auth_failures_per_ip: 30,
            flow_starts_per_ip: 60,
            answers_per_execution: 30,
            social_api_per_ip: 60,
            password_failures_per_ip: 30,
        }
    }
}

const FIELDS: [&str; 8] = [
    "enabled", "windowSeconds", "clientAuthFailuresPerClient", "clientAuthFailuresPerIp", "flowStartsPerIp",
    "answersPerExecution", "socialApiPerIp", "passwordFailuresPerIp",
];

impl RateLimits {
    /// `rateLimits` from the project file.
    pub fn from_json(value: Option<&Value>) -> Result<RateLimits> {
        let mut limits = RateLimits::default();
        let obj = match value {
            None | Some(Value::Null) => return Ok(limits),
            Some(Value::Object(m)) => m,
            Some(_) => return Err(Error::config("rateLimits must be an object")),
        };
        if let Some(k) = obj.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return Err(Error::config(format!("unknown field rateLimits.{k}")));
        }
        if let Some(v) = obj.get("enabled") {
            limits.enabled = v.as_bool().ok_or_else(|| Error::config("rateLimits.enabled must be true or false"))?;
        }
        let number = |k: &str, into: &mut u64| -> Result<()> {
            if let Some(v) = obj.get(k) {
                *into = v.as_u64().filter(|n| *n > 0).ok_or_else(|| Error::config(format!("rateLimits.{k} must be a positive number")))?;
            }
            Ok(())
        };
        number("windowSeconds", &mut limits.window)?;
        number("clientAuthFailuresPerClient", &mut limits.client_auth_failures_per_client)?;
        number("clientAuthFailuresPerIp", &mut limits.client_auth_failures_per_ip)?;
        number("flowStartsPerIp", &mut limits.flow_starts_per_ip)?;
        number("answersPerExecution", &mut limits.answers_per_execution)?;
        number("socialApiPerIp", &mut limits.social_api_per_ip)?;
        number("passwordFailuresPerIp", &mut limits.password_failures_per_ip)?;
        Ok(limits)
    }

    /// Seconds until the current window ends (`Retry-After`).
    pub fn retry_after(&self) -> u64 {
        self.window - now_secs() % self.window
    }
}

/// Proxies whose `X-Forwarded-For` is believed: addresses or CIDR ranges.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

impl TrustedProxies {
    /// `trustedProxies` from the project file (`["10.0.0.0/8", "127.0.0.1"]`).
    pub fn from_json(value: Option<&Value>) -> Result<TrustedProxies> {
        let items = match value {
            None | Some(Value::Null) => return Ok(TrustedProxies::default()),
            Some(Value::Array(a)) => a,
            Some(_) => return Err(Error::config("trustedProxies must be an array of addresses or CIDR ranges")),
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let bad = || Error::config(format!("trustedProxies[{i}] is not an IP address or CIDR range"));
            let text = item.as_str().ok_or_else(bad)?;
            let (ip, bits) = match text.split_once('/') {
                Some((ip, bits)) => (ip.parse::<IpAddr>().map_err(|_| bad())?, Some(bits.parse::<u8>().map_err(|_| bad())?)),
                None => (text.parse::<IpAddr>().map_err(|_| bad())?, None),
            };
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let bits = bits.unwrap_or(max);
            if bits > max {
                return Err(bad());
            }
            out.push((ip, bits));
        }
        Ok(TrustedProxies(out))
    }

    fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|(net, bits)| match (net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => prefix_eq(&n.octets(), &a.octets(), *bits),
            (IpAddr::V6(n), IpAddr::V6(a)) => prefix_eq(&n.octets(), &a.octets(), *bits),
            _ => false,
        })
    }

    /// The client's address: the peer, or, when the peer is a trusted
    /// proxy, the last address in `X-Forwarded-For` that is not one.
    pub fn client_ip(&self, req: &HttpRequest) -> Option<IpAddr> {
        let peer = req.peer?;
        if !self.contains(peer) {
            return Some(peer);
        }
        let forwarded: Vec<IpAddr> = req
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("x-forwarded-for"))
            .flat_map(|(_, v)| v.split(','))
            .filter_map(|a| a.trim().parse().ok())
            .collect();
        Some(forwarded.into_iter().rev().find(|a| !self.contains(*a)).unwrap_or(peer))
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let full = usize::from(bits / 8);
    if a[..full] != b[..full] {
        return false;
    }
    let rest = bits % 8;
    rest == 0 || {
        let mask = 0xffu8 << (8 - rest);
        a[full] & mask == b[full] & mask
    }
}

/// An attempt counted by [`Provider::attempt`], in the window it began in.
pub(super) struct Attempt {
    passed_id: String,
    expires: u64,
}

pub(super) fn rate_limited(what: &str) -> Error {
    Error::new(ErrorCode::RateLimited, format!("too many {what}; wait and try again"))
}

impl super::Provider {
    /// The store id of a window's counter; keys are hashed so that an
    /// attacker-chosen client id cannot make a huge one.
    fn counter_id(&self, bucket: &str, key: &str) -> (String, u64) {
        let window = now_secs() / self.limits.window;
        (format!("{bucket}:{}:{window}", super::token_digest(key)), (window + 1) * self.limits.window)
    }

    /// Counts one event of `bucket` for `key`; `rate_limited` once the
    /// window holds more than `limit`.
    pub(super) fn count(&self, bucket: &str, key: &str, limit: u64, what: &str) -> Result<()> {
        if !self.limits.enabled {
            return Ok(());
        }
        let (id, expires) = self.counter_id(bucket, key);
        if self.records().hit(&id, expires)? > limit {
            return Err(rate_limited(what));
        }
        Ok(())
    }

    /// Whether `bucket` already holds `limit` events for `key` this window.
    pub(super) fn at_limit(&self, bucket: &str, key: &str, limit: u64) -> Result<bool> {
        if !self.limits.enabled {
            return Ok(false);
        }
        let (id, _) = self.counter_id(bucket, key);
        Ok(self.records().get::<RateCount>(&id)?.is_some_and(|n| n.0 >= limit))
    }

    /// Counts an attempt that may turn out a failure of `bucket` for `key`,
    /// before it runs: `rate_limited` once more than `limit` attempts of
    /// this window have not been marked passed. Only failures, and attempts
    /// still running, count toward the limit, so parallel requests cannot
    /// slip past it. Mark the attempt with [`Provider::passed`] when it did
    /// not fail; `None` when limits are off.
    pub(super) fn attempt(&self, bucket: &str, key: &str, limit: u64, what: &str) -> Result<Option<Attempt>> {
        if !self.limits.enabled {
            return Ok(None);
        }
        let (id, expires) = self.counter_id(bucket, key);
        let ticket = Attempt { passed_id: format!("{id}:passed"), expires };
        // The passes are read before this attempt draws its number: every
        // pass counted then is of an earlier attempt. Read after, a pass of
        // a later attempt (refused at once, racing this one) would free a
        // place this attempt never held, and one attempt too many would run.
        let passed = self.records().get::<RateCount>(&ticket.passed_id)?.map_or(0, |n| n.0);
        let attempts = self.records().hit(&id, expires)?;
        if attempts.saturating_sub(passed) > limit {
            // A refused attempt ran nothing: it is not a failure.
            self.passed(Some(ticket))?;
            return Err(rate_limited(what));
        }
        Ok(Some(ticket))
    }

    /// Marks an attempt of [`Provider::attempt`] as not failed.
    pub(super) fn passed(&self, attempt: Option<Attempt>) -> Result<()> {
        if let Some(a) = attempt {
            self.records().hit(&a.passed_id, a.expires)?;
        }
        Ok(())
    }

    /// The client's address as text, when the host gave the peer.
    pub(super) fn client_ip(&self, req: &HttpRequest) -> Option<String> {
        self.proxies.client_ip(req).map(|ip| ip.to_string())
    }

    /// Counts a request of `bucket` from the client's address.
    pub(super) fn count_ip(&self, req: &HttpRequest, bucket: &str, limit: u64, what: &str) -> Result<()> {
        match self.client_ip(req) {
            Some(ip) => self.count(bucket, &ip, limit, what),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_rate_limit_field_is_documented() {
        crate::project::assert_documented("rateLimits", &FIELDS);
    }

    #[test]
    fn forwarded_addresses_count_only_behind_trusted_proxies() {
        let proxies = TrustedProxies::from_json(Some(&json!(["10.0.0.0/8", "::1"]))).unwrap();
        let req = |peer: &str, xff: &str| {
            HttpRequest::new("GET", "/", vec![("X-Forwarded-For".into(), xff.into())], vec![]).with_peer(Some(peer.parse().unwrap()))
        };
        assert_eq!(proxies.client_ip(&req("203.0.113.9", "1.2.3.4")), Some("203.0.113.9".parse().unwrap()), "an untrusted peer's header is ignored");
        assert_eq!(proxies.client_ip(&req("10.1.2.3", "1.2.3.4, 10.9.9.9")), Some("1.2.3.4".parse().unwrap()));
        assert_eq!(proxies.client_ip(&req("10.1.2.3", "6.6.6.6, 1.2.3.4")), Some("1.2.3.4".parse().unwrap()), "only the nearest untrusted hop counts");
        assert_eq!(proxies.client_ip(&req("::1", "")), Some("::1".parse().unwrap()));
        assert_eq!(proxies.client_ip(&HttpRequest::new("GET", "/", vec![], vec![])), None);
        assert!(TrustedProxies::from_json(Some(&json!(["10.0.0.0/33"]))).is_err());
        assert!(TrustedProxies::from_json(Some(&json!(["proxy.example"]))).is_err());
    }

    #[test]
    fn limits_parse_with_defaults_and_name_bad_fields() {
        assert_eq!(RateLimits::from_json(None).unwrap(), RateLimits::default());
        let l = RateLimits::from_json(Some(&json!({"flowStartsPerIp": 5, "enabled": false}))).unwrap();
        assert_eq!((l.flow_starts_per_ip, l.enabled, l.window), (5, false, 60));
        assert!(RateLimits::from_json(Some(&json!({"flowStarts": 5}))).unwrap_err().message.contains("rateLimits.flowStarts"));
        assert!(RateLimits::from_json(Some(&json!({"windowSeconds": 0}))).is_err());
    }
}
