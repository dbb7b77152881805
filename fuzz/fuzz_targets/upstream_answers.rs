//! A broken or hostile upstream: the answers of Getui RestAPI v2 and WeCom as their clients
//! read them (`upstream::getui::client`, `upstream::wecom::client`, through their fuzzing
//! entries), and what the client and the dispatcher make of them next.
//!
//! Input: byte 0 picks the vendor and endpoint, bytes 1-2 the HTTP status (big-endian), the
//! rest is the body.
#![no_main]

use campaignd::upstream::{getui, wecom};
use libfuzzer_sys::fuzz_target;

/// The members of the send whose answer is read (mixed case, as callers spell them).
const USERS: [&str; 4] = ["LiLei", "hanmei", "zhang.san@corp", "Wang_Wu-1"];

fuzz_target!(|data: &[u8]| {
    let [pick, hi, lo, body @ ..] = data else { return };
    let status = u16::from_be_bytes([*hi, *lo]);
    if pick & 0x80 == 0 {
        getui::client::decode_answer_for_fuzzing(*pick, status, body);
    } else {
        wecom::client::decode_answer_for_fuzzing(*pick, status, body, &USERS);
    }
});
