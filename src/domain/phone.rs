//! A phone number bound to a cid for SMS fallback: parsed from what users type into E.164,
//! printed only masked, and hashed into the legacy API's "pn" (reference
//! `getui-legacy-and-sms.md` §1.7 and §4.1 points 1–2).
//!
//! Phone numbers are personal data: nothing here prints a whole number, not even an error,
//! which names what is wrong by position and count only.

use std::fmt;
use std::str::FromStr;

use md5::{Digest, Md5};

use super::FieldError;

/// China's country calling code, without the `+`.
const CN_CODE: &str = "86";
/// Digits of a CN mobile number without the country code.
const CN_MOBILE_DIGITS: usize = 11;
/// Fewest and most digits (country code included) of an E.164 number. ITU-T E.164 caps a
/// number at 15 digits; 8 keeps out the shortest fragments that no mobile network uses.
const E164_DIGITS: std::ops::RangeInclusive<usize> = 8..=15;
/// Longest input looked at; separators included. Keeps parsing bounded on hostile input.
const MAX_INPUT_CHARS: usize = 40;

/// Why a text is not a phone number campaignd can text. Messages never repeat the number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    /// Nothing but spaces.
    #[error("is empty: give a mobile number such as 13800000000 or +8613800000000")]
    Empty,
    /// A character that is neither a digit nor a tolerated separator (space, `-`), or a `+`
    /// that is not the first character.
    #[error(
        "character {position} ({found:?}) is not a digit: only digits, a leading + or 00, spaces and - are allowed"
    )]
    NotADigit {
        /// 1-based position of the character in the input.
        position: usize,
        /// The character (never a digit, so never part of the number).
        found: char,
    },
    /// Fewer digits than the form needs.
    #[error("has {digits} digits, too short: {expected}")]
    TooShort {
        /// Digits found.
        digits: usize,
        /// What was expected.
        expected: &'static str,
    },
    /// More digits than the form allows.
    #[error("has {digits} digits, too long: {expected}")]
    TooLong {
        /// Digits found (or a lower bound when the input was cut at its length limit).
        digits: usize,
        /// What was expected.
        expected: &'static str,
    },
    /// Eleven digits after +86 that do not start with 13–19.
    #[error("is not a CN mobile number: after +86 it must start with 13 to 19")]
    NotCnMobile,
    /// A country code starting with 0 (after `+` or `00`).
    #[error("has no country code: after + or 00 the number must not start with 0")]
    NoCountryCode,
}

impl PhoneError {
    /// This error as a request field error, e.g. for `pn` or `cidpnlist.<cid>`.
    pub fn at(&self, field: impl Into<String>) -> FieldError {
        FieldError::new(field, self.to_string())
    }
}

/// A phone number in E.164 (`+` then 8–15 digits), with CN mobiles checked more closely.
///
/// `Debug` and `Display` print [`PhoneNumber::masked`]; only [`PhoneNumber::e164`] gives the
/// whole number, for the one place that seals it or hands it to the SMS gateway.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PhoneNumber {
    /// Always `+` and digits.
    e164: String,
}

const CN_NATIONAL: &str = "11 digits starting with 13 to 19 (optionally after +86, 0086 or 86)";
const INTERNATIONAL: &str = "+ or 00, the country code and the number, 8 to 15 digits in all";

impl PhoneNumber {
    /// Parses what a user typed. Accepted forms:
    ///
    /// - a CN mobile: `13800000000`, `+8613800000000`, `008613800000000`, `8613800000000`,
    ///   with spaces or `-` anywhere (`86 138 0000 0000`, `138-0000-0000`); it must have 11
    ///   digits starting with 13–19;
    /// - any other country as `+<country code><number>` or `00<country code><number>`, 8–15
    ///   digits in all, kept as given (campaignd has no per-country numbering tables).
    ///
    /// Bare digits that are neither 11 nor `86` + 11 are refused: without a `+` the country is
    /// unknown.
    pub fn parse(input: &str) -> Result<PhoneNumber, PhoneError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(PhoneError::Empty);
        }
        let mut digits = String::with_capacity(16);
        let mut plus = false;
        for (i, c) in trimmed.chars().enumerate() {
            if i >= MAX_INPUT_CHARS {
                return Err(PhoneError::TooLong { digits: digits.len(), expected: INTERNATIONAL });
            }
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' => {}
                '+' if i == 0 => plus = true,
                found => return Err(PhoneError::NotADigit { position: i + 1, found }),
            }
        }
        if digits.is_empty() {
            return Err(PhoneError::Empty);
        }
        let international = if plus { Some(digits.as_str()) } else { digits.strip_prefix("00") };
        match international {
            Some(rest) => match rest.strip_prefix(CN_CODE) {
                Some(national) => Self::cn(national),
                None => Self::other(rest),
            },
            None if digits.len() == CN_MOBILE_DIGITS + CN_CODE.len() && digits.starts_with(CN_CODE) => {
                Self::cn(&digits[CN_CODE.len()..])
            }
            None if digits.len() < CN_MOBILE_DIGITS => {
                Err(PhoneError::TooShort { digits: digits.len(), expected: CN_NATIONAL })
            }
            None if digits.len() > CN_MOBILE_DIGITS => {
                Err(PhoneError::TooLong { digits: digits.len(), expected: CN_NATIONAL })
            }
            None => Self::cn(&digits),
        }
    }

    /// A CN mobile from its national digits.
    fn cn(national: &str) -> Result<PhoneNumber, PhoneError> {
        match national.len() {
            n if n < CN_MOBILE_DIGITS => Err(PhoneError::TooShort { digits: n, expected: CN_NATIONAL }),
            n if n > CN_MOBILE_DIGITS => Err(PhoneError::TooLong { digits: n, expected: CN_NATIONAL }),
            _ => {
                let b = national.as_bytes();
                if b[0] != b'1' || !(b'3'..=b'9').contains(&b[1]) {
                    return Err(PhoneError::NotCnMobile);
                }
                Ok(PhoneNumber { e164: format!("+{CN_CODE}{national}") })
            }
        }
    }

    /// Any other country's number from its digits after `+` (country code first).
    fn other(digits: &str) -> Result<PhoneNumber, PhoneError> {
        if digits.starts_with('0') {
            return Err(PhoneError::NoCountryCode);
        }
        match digits.len() {
            n if n < *E164_DIGITS.start() => Err(PhoneError::TooShort { digits: n, expected: INTERNATIONAL }),
            n if n > *E164_DIGITS.end() => Err(PhoneError::TooLong { digits: n, expected: INTERNATIONAL }),
            _ => Ok(PhoneNumber { e164: format!("+{digits}") }),
        }
    }

    /// The whole number in E.164, e.g. `+8613800000000`. Personal data: seal it at rest and
    /// never log it.
    pub fn e164(&self) -> &str {
        &self.e164
    }

    /// True for a China (+86) mobile number.
    pub fn is_cn(&self) -> bool {
        self.cn_national().is_some()
    }

    /// The 11 national digits of a CN mobile; `None` for other countries.
    fn cn_national(&self) -> Option<&str> {
        self.e164.strip_prefix('+').and_then(|d| d.strip_prefix(CN_CODE))
    }

    /// The number as answers and logs may show it.
    ///
    /// - CN mobiles: the national number's first 3 and last 4 digits, the 4 between as `*`:
    ///   `138****5678` (the form Chinese apps and carriers use).
    /// - Other countries: `+`, the first 2 digits, `****`, the last 2 digits: `+44****56`.
    ///   That shows at most half of an 8-digit number and always a fixed-width middle, so the
    ///   length stays hidden too.
    pub fn masked(&self) -> String {
        match self.cn_national() {
            Some(n) => format!("{}****{}", &n[..3], &n[n.len() - 4..]),
            None => {
                let d = &self.e164[1..];
                format!("+{}****{}", &d[..2], &d[d.len() - 2..])
            }
        }
    }

    /// The legacy API's "pn": md5 of the phone number, 32 lowercase hex digits.
    ///
    /// For a CN mobile the 11-digit national number is hashed (`13800000000`, no `+86`).
    /// Getui's Java demo (§1.7) only says "the mobile number (手机号) after md5, 32 lowercase
    /// hex"; a 手机号 is written as those 11 digits in China and the legacy service texted CN
    /// numbers only, so this is the form customers' own pn values most likely hold (the exact
    /// form is not confirmed by any source). Other countries' numbers have no legacy: their
    /// E.164 form, `+` included, is hashed, so they never collide with a CN pn.
    pub fn pn_md5(&self) -> String {
        let hashed = self.cn_national().unwrap_or(&self.e164);
        hex::encode(Md5::digest(hashed.as_bytes()))
    }
}

impl FromStr for PhoneNumber {
    type Err = PhoneError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PhoneNumber::parse(s)
    }
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhoneNumber({})", self.masked())
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e164(s: &str) -> String {
        PhoneNumber::parse(s).unwrap().e164().to_owned()
    }

    #[test]
    fn cn_mobiles_in_every_common_form_normalise_to_one_e164() {
        for input in [
            "13800000000",
            "+8613800000000",
            "008613800000000",
            "8613800000000",
            "86 138 0000 0000",
            "+86 138-0000-0000",
            "  138 0000 0000  ",
            "0086-138-0000-0000",
        ] {
            assert_eq!(e164(input), "+8613800000000", "{input}");
        }
        for prefix in 13..=19 {
            assert!(PhoneNumber::parse(&format!("{prefix}012345678")).unwrap().is_cn());
        }
    }

    #[test]
    fn other_countries_are_kept_as_given() {
        assert_eq!(e164("+447911123456"), "+447911123456");
        assert_eq!(e164("+1 415-555-0132"), "+14155550132");
        assert_eq!(e164("001 415 555 0132"), "+14155550132");
        assert_eq!(e164("+49301234"), "+49301234"); // 8 digits: the shortest accepted
        assert_eq!(e164("+123456789012345"), "+123456789012345"); // 15: the longest
        assert!(!PhoneNumber::parse("+447911123456").unwrap().is_cn());
    }

    #[test]
    fn bad_input_is_refused_with_what_is_wrong() {
        let err = |s: &str| PhoneNumber::parse(s).unwrap_err();
        assert_eq!(err(""), PhoneError::Empty);
        assert_eq!(err("   "), PhoneError::Empty);
        assert_eq!(err(" - "), PhoneError::Empty);
        assert_eq!(err("138abc00000"), PhoneError::NotADigit { position: 4, found: 'a' });
        assert_eq!(err("138.0000.0000"), PhoneError::NotADigit { position: 4, found: '.' });
        assert_eq!(err("86+13800000000"), PhoneError::NotADigit { position: 3, found: '+' });
        assert!(matches!(err("1380000000"), PhoneError::TooShort { digits: 10, .. }));
        assert!(matches!(err("138000000001"), PhoneError::TooLong { digits: 12, .. }));
        assert!(matches!(err("+86138000000"), PhoneError::TooShort { digits: 9, .. }));
        assert!(matches!(err("+86138000000000"), PhoneError::TooLong { digits: 12, .. }));
        assert_eq!(err("12800000000"), PhoneError::NotCnMobile);
        assert_eq!(err("+8623800000000"), PhoneError::NotCnMobile);
        assert_eq!(err("+0441234567"), PhoneError::NoCountryCode);
        assert!(matches!(err("+4930123"), PhoneError::TooShort { digits: 7, .. }));
        assert!(matches!(err("+1234567890123456"), PhoneError::TooLong { digits: 16, .. }));
        assert!(matches!(err(&"1".repeat(200)), PhoneError::TooLong { .. }));
    }

    #[test]
    fn errors_never_repeat_the_number_and_name_the_field() {
        for input in ["13800005678x", "1380000567", "12800005678", "+86138000056789"] {
            let e = PhoneNumber::parse(input).unwrap_err();
            let text = e.at("cidpnlist.cid-1").to_string();
            assert!(text.starts_with("cidpnlist.cid-1: "), "{text}");
            assert!(!text.contains("5678"), "{text}");
        }
    }

    #[test]
    fn masked_shows_only_the_ends() {
        let cn = PhoneNumber::parse("13812345678").unwrap();
        assert_eq!(cn.masked(), "138****5678");
        let uk = PhoneNumber::parse("+447911123456").unwrap();
        assert_eq!(uk.masked(), "+44****56");
        let short = PhoneNumber::parse("+49301234").unwrap();
        assert_eq!(short.masked(), "+49****34");
    }

    #[test]
    fn debug_and_display_print_only_the_masked_number() {
        let p = PhoneNumber::parse("+86 138 1234 5678").unwrap();
        assert_eq!(format!("{p}"), "138****5678");
        assert_eq!(format!("{p:?}"), "PhoneNumber(138****5678)");
        assert!(!format!("{p:?} {p} {:?}", Some(&p)).contains("12345678"));
    }

    #[test]
    fn pn_md5_hashes_the_cn_national_number() {
        // md5("13800000000"), computed independently (`printf 13800000000 | md5sum`).
        let p = PhoneNumber::parse("+86 138 0000 0000").unwrap();
        assert_eq!(p.pn_md5(), "5daad257487f1b493114181a22e37eb5");
        // Every input form of one number gives one pn.
        assert_eq!(PhoneNumber::parse("13800000000").unwrap().pn_md5(), p.pn_md5());
        // Other countries hash the E.164 form, `+` included.
        let uk = PhoneNumber::parse("+447911123456").unwrap();
        assert_eq!(uk.pn_md5(), "ab811448ae29b043839fadb8cbc8bbbb"); // md5("+447911123456")
    }

    #[test]
    fn md5_matches_the_rfc_1321_vectors() {
        // The pn relies on plain md5 hex; pin the crate against RFC 1321's test suite.
        assert_eq!(hex::encode(Md5::digest(b"")), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(hex::encode(Md5::digest(b"abc")), "900150983cd24fb0d6963f7d28e17f72");
    }
}
