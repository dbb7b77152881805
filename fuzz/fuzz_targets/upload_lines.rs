//! The upload line parsers (`POST /v1/campaigns/{id}/recipients`): the body is split into
//! lines as `api::upload` splits it, and every line goes through the plain-text cid parser, the
//! NDJSON parser and the WeCom member-id parser.
#![no_main]

use campaignd::domain::recipient::{parse_ndjson_line, parse_text_line, parse_user_line};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for raw in data.split(|&b| b == b'\n') {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let Ok(text) = std::str::from_utf8(raw) else { continue };
        if text.trim().is_empty() {
            continue;
        }
        let _ = parse_text_line(text);
        let _ = parse_ndjson_line(text);
        let _ = parse_user_line(text);
    }
});
