//! Recipients as uploaded: one line each, plain text (a cid) or NDJSON (`{"cid", "vars"}`).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::CompactCid;
use crate::wire::json_object::{sorted_last_wins, Text};

/// Most variables one recipient may carry.
pub const MAX_VARS: usize = 32;
/// Longest variable value, in characters.
pub const MAX_VAR_CHARS: usize = 1024;
/// Most bytes of variables one recipient may carry, names and values together (UTF-8). Bounds
/// what a chunk of recipients weighs in memory and on disk whatever the upload holds.
pub const MAX_VARS_BYTES: usize = 4096;

/// One parsed recipient; its variables borrow from the line where they can (a name or value
/// without escapes), so a line costs no string of its own on its way into a chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient<'a> {
    /// The device; for a WeCom member, the fingerprint of the member id.
    pub cid: CompactCid,
    /// Template variables, sorted by name.
    pub vars: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    /// The WeCom member id, for WeCom campaigns.
    pub user: Option<String>,
}

/// Longest WeCom member id (UserID), in bytes.
pub const MAX_USER_BYTES: usize = 64;

/// Checks a WeCom member id: 1 to 64 of letters, digits, `_`, `-`, `.` and `@` (WeCom's UserID
/// alphabet; `|` would split a `touser` list).
pub fn parse_user(s: &str) -> Result<String, String> {
    let s = s.trim();
    let ok = !s.is_empty()
        && s.len() <= MAX_USER_BYTES
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'@'));
    if ok {
        Ok(s.to_owned())
    } else {
        let shown: String = s.chars().take(40).collect();
        Err(format!("{shown:?} is not a WeCom member id (1-64 of letters, digits, '_', '-', '.', '@')"))
    }
}

/// Parses a line of a WeCom campaign's upload: a member id. Ids compare case-insensitively,
/// so the duplicate filter sees `LiLei` and `lilei` as one member.
pub fn parse_user_line(line: &str) -> Result<Recipient<'static>, String> {
    let user = parse_user(line)?;
    let digest = <sha2::Sha256 as sha2::Digest>::digest(user.to_lowercase().as_bytes());
    let mut fingerprint = [0u8; 16];
    fingerprint.copy_from_slice(&digest[..16]);
    Ok(Recipient { cid: CompactCid(fingerprint), vars: Vec::new(), user: Some(user) })
}

/// Parses a plain-text line: a cid (32 hex digits; upper case is folded to lower case).
pub fn parse_text_line(line: &str) -> Result<Recipient<'static>, String> {
    Ok(Recipient { cid: parse_cid(line.trim())?, vars: Vec::new(), user: None })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NdjsonLine<'a> {
    #[serde(borrow)]
    cid: Option<Cow<'a, str>>,
    #[serde(borrow)]
    alias: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    vars: Vars<'a>,
}

/// `vars` as written: each name with its value as text, `None` for a value that is no string,
/// number or boolean (so the error can name it). Read straight into a list: a map of JSON
/// values would allocate a tree node and a `Value` per variable only to be taken apart.
#[derive(Default)]
struct Vars<'a>(Vec<(Cow<'a, str>, Option<Cow<'a, str>>)>);

impl<'de: 'a, 'a> Deserialize<'de> for Vars<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct VarsVisitor;
        impl<'de> Visitor<'de> for VarsVisitor {
            type Value = Vars<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of variable names to values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vars<'de>, A::Error> {
                let mut vars = Vec::with_capacity(map.size_hint().unwrap_or(0).min(MAX_VARS));
                while let Some(name) = map.next_key::<Text<'de>>()? {
                    vars.push((name.0, map.next_value::<Scalar<'de>>()?.0));
                }
                Ok(Vars(vars))
            }
        }
        d.deserialize_map(VarsVisitor)
    }
}

/// A variable's value as text, as JSON writes it, borrowed from the line when it holds no
/// escapes; `None` for null, an array or an object.
struct Scalar<'a>(Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl<'de> Visitor<'de> for ScalarVisitor {
            type Value = Scalar<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Scalar<'de>, E> {
                Ok(Scalar(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar<'de>, E> {
                Ok(Scalar(Some(Cow::Owned(v.to_owned()))))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar<'de>, E> {
                Ok(Scalar(Some(Cow::Owned(v))))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar<'de>, E> {
                Ok(Scalar(Some(v.to_string().into())))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar<'de>, E> {
                Ok(Scalar(Some(v.to_string().into())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar<'de>, E> {
                Ok(Scalar(Some(v.to_string().into())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar<'de>, E> {
                // Written as serde_json writes a number it read.
                Ok(Scalar(serde_json::Number::from_f64(v).map(|n| n.to_string().into())))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Scalar<'de>, E> {
                Ok(Scalar(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar<'de>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Scalar(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar<'de>, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Scalar(None))
            }
        }
        d.deserialize_any(ScalarVisitor)
    }
}

/// Parses an NDJSON line: `{"cid": "...", "vars": {"name": "Li"}}`.
pub fn parse_ndjson_line(line: &str) -> Result<Recipient<'_>, String> {
    let parsed: NdjsonLine =
        serde_json::from_str(line).map_err(|e| format!("not a JSON object of cid and vars: {e}"))?;
    let cid = match (parsed.cid, parsed.alias) {
        (Some(c), None) => parse_cid(&c)?,
        (None, Some(_)) => return Err("alias recipients are not supported yet; send the device's cid".into()),
        (Some(_), Some(_)) => return Err("give either cid or alias, not both".into()),
        (None, None) => return Err("missing \"cid\"".into()),
    };
    let named = sorted_last_wins(parsed.vars.0);
    if named.len() > MAX_VARS {
        return Err(format!("more than {MAX_VARS} vars"));
    }
    let mut bytes = 0usize;
    // Collected into the list `named` already holds: the pairs have the same size.
    let vars = named
        .into_iter()
        .map(|(k, v)| {
            let Some(value) = v else {
                return Err(format!("var {k:?} must be a string, number or boolean"));
            };
            // A value of at most MAX_VAR_CHARS bytes has at most as many characters.
            if value.len() > MAX_VAR_CHARS && value.chars().count() > MAX_VAR_CHARS {
                return Err(format!("var {k:?} is longer than {MAX_VAR_CHARS} characters"));
            }
            bytes += k.len() + value.len();
            if bytes > MAX_VARS_BYTES {
                return Err(format!("vars take more than {MAX_VARS_BYTES} bytes (names and values together)"));
            }
            Ok((k, value))
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(Recipient { cid, vars, user: None })
}

/// A cid of 32 hex digits in either case. Lowercase, as lists nearly always are, is read in one
/// pass; only a 32-byte id that is not is looked at again for capitals (looking for them in
/// every id first was 1.8% of the daemon's samples in a 4M list run).
fn parse_cid(s: &str) -> Result<CompactCid, String> {
    let parsed = CompactCid::parse(s).or_else(|| {
        let has_capitals = s.len() == 32 && s.bytes().any(|b| b.is_ascii_uppercase());
        has_capitals.then(|| CompactCid::parse(&s.to_ascii_lowercase())).flatten()
    });
    parsed.ok_or_else(|| {
        let shown: String = s.chars().take(40).collect();
        format!("{shown:?} is not a Getui cid (32 hex digits)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CID: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn text_lines() {
        assert_eq!(parse_text_line(CID).unwrap().cid.to_string(), CID);
        assert_eq!(parse_text_line(&format!(" {}\r", CID.to_uppercase())).unwrap().cid.to_string(), CID);
        assert!(parse_text_line("hello").unwrap_err().contains("not a Getui cid"));
    }

    #[test]
    fn wecom_member_lines() {
        let a = parse_user_line(" LiLei\r").unwrap();
        assert_eq!(a.user.as_deref(), Some("LiLei"));
        assert_eq!(a.cid, parse_user_line("lilei").unwrap().cid, "ids compare case-insensitively");
        assert_ne!(a.cid, parse_user_line("hanmei").unwrap().cid);
        assert!(parse_user_line("a|b").is_err());
        assert!(parse_user_line(&"x".repeat(65)).is_err());
        assert!(parse_user_line("zhang.san@corp-1_x").is_ok());
    }

    #[test]
    fn ndjson_lines() {
        let line = format!(r#"{{"cid":"{CID}","vars":{{"name":"Li","n":3}}}}"#);
        let r = parse_ndjson_line(&line).unwrap();
        assert_eq!(owned(r.vars), vec![("n".to_owned(), "3".to_owned()), ("name".to_owned(), "Li".to_owned())]);
        assert!(parse_ndjson_line(r#"{"vars":{}}"#).unwrap_err().contains("missing"));
        assert!(parse_ndjson_line("[1,2]").is_err());
        assert!(parse_ndjson_line(&format!(r#"{{"cid":"{CID}","vars":{{"a":[1]}}}}"#)).is_err());
        assert!(parse_ndjson_line(r#"{"alias":"bob"}"#).unwrap_err().contains("alias"));
    }

    fn owned(vars: Vec<(Cow<'_, str>, Cow<'_, str>)>) -> Vec<(String, String)> {
        vars.into_iter().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
    }

    #[test]
    fn names_and_values_without_escapes_borrow_from_the_line() {
        let line = format!(r#"{{"cid":"{CID}","vars":{{"name":"Li","n\u0061me2":"L\u00ed","n":3}}}}"#);
        let r = parse_ndjson_line(&line).unwrap();
        let borrowed: Vec<(bool, bool)> =
            r.vars.iter().map(|(k, v)| (matches!(k, Cow::Borrowed(_)), matches!(v, Cow::Borrowed(_)))).collect();
        // Sorted: n (a number, written out), name, name2 (escaped name and value).
        assert_eq!(borrowed, [(true, false), (true, true), (false, false)]);
        assert_eq!(owned(r.vars)[2], ("name2".to_owned(), "Lí".to_owned()));
    }

    /// What `vars` meant when they were read as a sorted map of JSON values.
    fn vars_as_a_map_of_values(line: &str) -> Result<Vec<(String, String)>, String> {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let map: std::collections::BTreeMap<String, serde_json::Value> =
            serde_json::from_value(v["vars"].clone()).unwrap_or_default();
        map.into_iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => Ok((k, s)),
                serde_json::Value::Number(n) => Ok((k, n.to_string())),
                serde_json::Value::Bool(b) => Ok((k, b.to_string())),
                _ => Err(format!("var {k:?} must be a string, number or boolean")),
            })
            .collect()
    }

    #[test]
    fn vars_read_as_a_list_mean_what_a_sorted_map_of_json_values_meant() {
        for vars in [
            r#"{"b":"2","a":"1"}"#,
            r#"{"n":"first","n":"last","a":0}"#,
            r#"{"i":-17,"u":18446744073709551615,"f":1.5,"e":1e21,"z":-0.0,"t":true,"x":false}"#,
            r#"{"\u006e\u0061me":"L\u00ed \"Lei\"","名":"李"}"#,
            r#"{"ok":"1","bad":null}"#,
            r#"{"ok":"1","bad":[1,{"a":2}]}"#,
            r#"{"bad":{"a":[]},"ok":"1"}"#,
            r#"{}"#,
        ] {
            let line = format!(r#"{{"cid":"{CID}","vars":{vars}}}"#);
            let read = parse_ndjson_line(&line).map(|r| owned(r.vars));
            assert_eq!(read, vars_as_a_map_of_values(&line), "{vars}");
        }
    }

    #[test]
    fn vars_are_capped_in_count_and_total_bytes() {
        let line = |vars: serde_json::Value| serde_json::json!({"cid": CID, "vars": vars}).to_string();
        let many: serde_json::Map<_, _> = (0..=MAX_VARS).map(|i| (format!("v{i}"), "x".into())).collect();
        assert!(parse_ndjson_line(&line(many.into())).unwrap_err().contains(&format!("more than {MAX_VARS} vars")));
        // Five values of 1000 characters: each within MAX_VAR_CHARS, together over MAX_VARS_BYTES.
        let heavy: serde_json::Map<_, _> = (0..5).map(|i| (format!("v{i}"), "x".repeat(1000).into())).collect();
        let err = parse_ndjson_line(&line(heavy.into())).unwrap_err();
        assert!(err.contains("more than 4096 bytes"), "{err}");
        let fits: serde_json::Map<_, _> = (0..4).map(|i| (format!("v{i}"), "x".repeat(1000).into())).collect();
        assert_eq!(parse_ndjson_line(&line(fits.into())).unwrap().vars.len(), 4);
    }
}
