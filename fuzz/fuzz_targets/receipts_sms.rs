//! The vendor callbacks and answers of the SMS fallback:
//!
//! - Getui receipt bodies (`POST /getui/{app}/receipts`), read by `wire::getui::receipt` and
//!   judged as `api::sms_callbacks` judges them (cid, kind, receipt bits). Lines are signed with
//!   md5, so with byte 0 odd every JSON-object line is first given the right `appid` and `sign`,
//!   letting hostile field values reach the checks behind the signature;
//! - Tencent Cloud SMS status reports (`POST /sms/{app}/status`, a JSON array);
//! - Tencent Cloud SMS `SendSms` answers, through `upstream::sms::client`'s fuzzing entry
//!   (bytes 1-2 of the input are the HTTP status).
//!
//! Byte 0 modulo 4 picks: 0 and 1 receipts (raw, re-signed), 2 status reports, 3 SendSms answer.
#![no_main]

use campaignd::dev::{DEV_APP_ID, DEV_MASTER_SECRET};
use campaignd::domain::texting::{receipt_bits, SmsTally};
use campaignd::domain::CompactCid;
use campaignd::wire::getui::receipt::{self, expected_sign, ReceiptLimits};
use campaignd::wire::tencent_sms::{StatusReport, REPORT_SUCCESS};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const LIMITS: ReceiptLimits = ReceiptLimits { max_body_bytes: 4 << 20, max_lines: 100_000 };

/// A JSON-object line given this app's `appid` and the `sign` its fields call for.
fn resign(line: &[u8]) -> Vec<u8> {
    let Ok(Value::Object(mut map)) = serde_json::from_slice::<Value>(line) else { return line.to_vec() };
    map.insert("appid".into(), DEV_APP_ID.into());
    let field = |k: &str| map.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
    let sign = expected_sign(DEV_APP_ID, &field("cid"), &field("taskid"), &field("msgid"), DEV_MASTER_SECRET);
    map.insert("sign".into(), sign.into());
    serde_json::to_vec(&map).unwrap_or_default()
}

fn receipts(body: &[u8]) {
    let Ok(parsed) = receipt::parse_body(body, DEV_APP_ID, DEV_MASTER_SECRET, LIMITS) else { return };
    let _ = parsed.refused_count();
    for line in &parsed.lines {
        match &line.result {
            Ok(l) => {
                let _ = CompactCid::parse(&l.cid.trim().to_ascii_lowercase());
                let _ = (l.kind().as_str(), l.is_arrival_evidence(), receipt_bits::of(l));
            }
            Err(e) => {
                let _ = (e.label(), e.to_string());
            }
        }
    }
}

fn status_reports(body: &[u8]) {
    let mut de = serde_json::Deserializer::from_slice(body);
    let Ok(reports) = serde_path_to_error::deserialize::<_, Vec<StatusReport>>(&mut de) else { return };
    if de.end().is_err() {
        return;
    }
    let mut tally = SmsTally::default();
    for report in &reports {
        if report.report_status.trim() == REPORT_SUCCESS {
            tally.delivered += 1;
        } else {
            let code: String = report.errmsg.trim().chars().take(64).collect();
            tally.fail(if code.is_empty() { "FAIL" } else { &code }, 1);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    match pick % 4 {
        0 => receipts(rest),
        1 => {
            let body: Vec<u8> = rest.split(|&b| b == b'\n').map(resign).collect::<Vec<_>>().join(&b'\n');
            receipts(&body);
        }
        2 => status_reports(rest),
        _ => {
            let [hi, lo, body @ ..] = rest else { return };
            campaignd::upstream::sms::client::decode_answer_for_fuzzing(u16::from_be_bytes([*hi, *lo]), body);
        }
    }
});
