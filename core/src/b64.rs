//! Strict base64url (RFC 4648 §5, no padding) as JOSE requires (RFC 7515 §2).
//!
//! Padding, the standard alphabet, whitespace and non-zero trailing bits are
//! all refused, so one value has exactly one encoding.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;

const STRICT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(false),
);

pub(crate) fn encode(bytes: impl AsRef<[u8]>) -> String {
    STRICT.encode(bytes)
}

pub(crate) fn encode_into(bytes: impl AsRef<[u8]>, out: &mut String) {
    STRICT.encode_string(bytes, out)
}

/// Decodes strict base64url; `None` for anything that is not canonical.
pub(crate) fn decode(text: &str) -> Option<Vec<u8>> {
    STRICT.decode(text).ok()
}

/// Standard base64 with padding (PEM bodies).
pub(crate) fn encode_std(bytes: impl AsRef<[u8]>) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub(crate) fn decode_std(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_padding_and_standard_alphabet() {
        assert_eq!(decode("YQ").as_deref(), Some(&b"a"[..]));
        assert!(decode("YQ==").is_none());
        assert!(decode("+/").is_none());
        assert!(decode("YR").is_none(), "non-zero trailing bits");
        assert!(decode("Y Q").is_none());
        assert_eq!(encode([0xfb, 0xff]), "-_8");
    }
}
