//! Percent-decoding of URL path segments and query values, in one place for the API, the
//! WeCom callback and the simulators.
//!
//! Decoding only: a `+` stays a `+` (no form decoding), because WeCom's base64 values carry
//! `+` literally. A `%` not followed by two hex digits is kept as it is, and bytes that do not
//! form UTF-8 become U+FFFD.

/// The decoded text of `s`.
pub fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_escapes_and_keeps_the_rest() {
        assert_eq!(decode("%E6%98%A5-a"), "春-a");
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%zz%4"), "%zz%4");
        assert_eq!(decode("x%2By+z"), "x+y+z");
        assert_eq!(decode("%FF"), "\u{FFFD}");
    }
}
