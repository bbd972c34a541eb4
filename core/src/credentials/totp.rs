//! Authenticator apps (RFC 6238): secrets, codes checked with a window of
//! one step either side, `otpauth://` URIs and their QR code, and recovery
//! codes. Codes and URIs come from the maintained `totp-rs` crate (SHA-1,
//! six digits, 30-second steps: what every authenticator app reads); the
//! QR code from the `qrcode` crate, drawn as SVG. Keeping a secret, refusing
//! a replayed step and counting failures is `crate::users::totp`'s work.

use crate::error::{Error, ErrorCode, Result};
use totp_rs::{Builder, Secret, Totp};

/// Bytes of a new secret: 160 bits, RFC 4226 §4's recommendation.
pub const SECRET_BYTES: usize = 20;

/// Recovery codes given at enrollment.
pub const RECOVERY_CODES: usize = 10;

/// One user's authenticator: its secret, labelled for the app.
pub struct Authenticator {
    totp: Totp,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Authenticator")
    }
}

/// A colon separates issuer and account in an `otpauth` label, so neither
/// may hold one.
fn label(s: &str) -> String {
    s.replace(':', " ").trim().to_owned()
}

impl Authenticator {
    /// A fresh secret from the OS CSPRNG.
    pub fn generate_secret() -> Result<Vec<u8>> {
        let mut bytes = vec![0u8; SECRET_BYTES];
        getrandom::fill(&mut bytes).map_err(|_| Error::internal("the operating system's random generator failed"))?;
        Ok(bytes)
    }

    /// The authenticator for `secret`, shown in apps as `issuer` and
    /// `account` (the user's login id).
    pub fn new(secret: &[u8], issuer: &str, account: &str) -> Result<Authenticator> {
        let issuer = label(issuer);
        let totp = Builder::new()
            .with_secret(Secret::new(secret.to_vec().into_boxed_slice()))
            .with_issuer((!issuer.is_empty()).then_some(issuer))
            .with_account_name(label(account))
            .build()
            .map_err(|e| Error::new(ErrorCode::Config, format!("authenticator: {e}")))?;
        Ok(Authenticator { totp })
    }

    /// The secret in base32, for typing into an app by hand.
    pub fn secret_base32(&self) -> String {
        self.totp.secret().to_base32()
    }

    /// The `otpauth://totp/...` URI an app scans.
    pub fn uri(&self) -> Result<String> {
        self.totp.to_url().map_err(|e| Error::internal(format!("otpauth URI: {e}")))
    }

    /// The step (time / 30 s) whose code `code` is, within one step of
    /// `now` either side; `None` for a wrong code. Six digits only (spaces
    /// allowed, as apps show `123 456`); compared in constant time.
    pub fn check(&self, code: &str, now: u64) -> Option<u64> {
        let digits: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        if digits.len() != 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        self.totp.check(&digits, now)
    }

    /// The code at `time` (seconds since the epoch).
    pub fn code_at(&self, time: u64) -> String {
        self.totp.generate(time).to_string()
    }
}

/// `text` (an `otpauth` URI) as an SVG QR code.
pub fn qr_svg(text: &str) -> Result<String> {
    let code = qrcode::QrCode::new(text.as_bytes()).map_err(|e| Error::internal(format!("QR code: {e}")))?;
    Ok(code.render::<qrcode::render::svg::Color<'_>>().min_dimensions(200, 200).build())
}

/// A new recovery code: 10 characters of base32 (50 bits) as `XXXXX-XXXXX`.
pub fn recovery_code() -> Result<String> {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bytes = [0u8; 10];
    getrandom::fill(&mut bytes).map_err(|_| Error::internal("the operating system's random generator failed"))?;
    let chars: String = bytes.iter().map(|b| char::from(ALPHABET[usize::from(b % 32)])).collect();
    Ok(format!("{}-{}", &chars[..5], &chars[5..]))
}

/// A recovery code as typed, made comparable: upper case, without the dash
/// and spaces; `None` when it cannot be one.
pub fn normalize_recovery_code(typed: &str) -> Option<String> {
    let s: String = typed.chars().filter(|c| *c != '-' && !c.is_whitespace()).map(|c| c.to_ascii_uppercase()).collect();
    (s.len() == 10 && s.bytes().all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))).then_some(s)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    // RFC 6238 Appendix B, SHA-1, the 20-byte ASCII secret: 8-digit codes
    // whose last six digits are the six-digit code.
    #[test]
    fn rfc_6238_test_vectors() {
        let a = Authenticator::new(b"12345678901234567890", "Example", "ann@example.com").unwrap();
        for (time, eight) in [(59, "94287082"), (1_111_111_109, "07081804"), (1_111_111_111, "14050471"), (1_234_567_890, "89005924"), (2_000_000_000, "69279037")] {
            assert_eq!(a.code_at(time), eight[2..], "at {time}");
        }
    }

    #[test]
    fn a_code_works_one_step_either_side_and_never_further() {
        let a = Authenticator::new(&Authenticator::generate_secret().unwrap(), "Example", "ann@example.com").unwrap();
        let now = 1_700_000_000;
        let code = a.code_at(now);
        assert_eq!(a.check(&code, now), Some(now / 30));
        assert_eq!(a.check(&code, now + 30), Some(now / 30));
        assert_eq!(a.check(&code, now - 30), Some(now / 30));
        assert_eq!(a.check(&code, now + 90), None);
        assert_eq!(a.check(&format!("{} {}", &code[..3], &code[3..]), now), Some(now / 30));
        for bad in ["", "12345", "1234567", "12a456", "１２３４５６"] {
            assert_eq!(a.check(bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn the_uri_labels_issuer_and_account_and_the_qr_is_svg() {
        let a = Authenticator::new(b"12345678901234567890", "My:App", "ann@example.com").unwrap();
        let uri = a.uri().unwrap();
        assert!(uri.starts_with("otpauth://totp/My%20App:ann%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"), "{uri}");
        assert!(uri.contains("issuer=My%20App"), "{uri}");
        let svg = qr_svg(&uri).unwrap();
        assert!(svg.contains("<svg") && !svg.contains("<script"), "{svg}");
    }

    #[test]
    fn recovery_codes_are_random_and_read_back_loosely() {
        let a = recovery_code().unwrap();
        assert_eq!(a.len(), 11);
        assert_ne!(a, recovery_code().unwrap());
        assert_eq!(normalize_recovery_code(&a.to_lowercase()), Some(a.replace('-', "")));
        assert_eq!(normalize_recovery_code("ABCDE-FGHI1"), None, "1 is not base32");
        assert_eq!(normalize_recovery_code("ABCDE"), None);
    }
}
