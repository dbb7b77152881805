//! The legacy Getui server SDK protocol (gt-push-sdk 4.1.1.2 and its PHP/Java siblings): one
//! POST endpoint taking JSON whose `clientData`/`singleDatas` fields are base64 protobuf,
//! some bodies gzip-compressed (reference `getui-legacy-and-sms.md` §1). This module reads
//! it without I/O: request structs, size-capped decoders, the `connect` signature and the
//! template rebuilt from its action chain. `domain::legacy` maps the result to a campaign.

mod error;
mod lenient;
pub mod proto;
pub mod request;
pub mod template;

use std::io::Read;

use base64::Engine;
use md5::{Digest, Md5};
use prost::Message;

pub use error::{results, LegacyError};
pub use request::{
    AppPushRequest, BatchRequest, BindRequest, CidsRequest, Connect, ContentIdRequest, Envelope, LegacyCondition,
    ListRequest, PushFields, SingleRequest, StopTaskRequest, TaskRequest,
};
pub use template::{read_template, LegacyClick, LegacyKind, LegacyLooks, LegacyPopup, LegacySms, LegacyTemplate};

/// Largest decoded `clientData`: a template is a few hundred bytes, an APNs payload ≤ 4 KB,
/// so 64 KiB leaves room for any honest template and none for abuse.
pub const MAX_CLIENT_DATA_BYTES: usize = 64 * 1024;
/// Largest decoded `singleDatas`: 5000 items of a few KB of JSON each.
pub const MAX_SINGLE_DATAS_BYTES: usize = 32 * 1024 * 1024;
/// Most items of one `pushMessageToSingleBatchAction` (the SDK's own cap).
pub const MAX_BATCH_ITEMS: usize = 5000;

/// The `connect` signature: lowercase md5 hex of `appkey + timeStamp + masterSecret`.
pub fn connect_sign(appkey: &str, time_stamp: i64, master_secret: &str) -> String {
    let mut h = Md5::new();
    h.update(appkey.as_bytes());
    h.update(time_stamp.to_string().as_bytes());
    h.update(master_secret.as_bytes());
    hex::encode(h.finalize())
}

/// Inflates a gzip body, refusing it once the output would exceed `max_out` bytes: a few KB of
/// gzip can inflate to gigabytes, so the reader stops at the cap and never allocates beyond it.
pub fn inflate_gzip(body: &[u8], max_out: usize) -> Result<Vec<u8>, LegacyError> {
    let limit = u64::try_from(max_out).unwrap_or(u64::MAX).saturating_add(1);
    let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(max_out));
    flate2::read::GzDecoder::new(body).take(limit).read_to_end(&mut out).map_err(LegacyError::Gzip)?;
    if out.len() > max_out {
        return Err(LegacyError::TooLarge { what: "the inflated body", limit: max_out });
    }
    Ok(out)
}

/// Decodes `clientData` (base64 of protobuf `Transparent`).
pub fn decode_client_data(b64: &str) -> Result<proto::Transparent, LegacyError> {
    let bytes = base64_capped(b64, "clientData", MAX_CLIENT_DATA_BYTES)?;
    proto::Transparent::decode(bytes.as_slice()).map_err(|source| LegacyError::Protobuf {
        field: "clientData",
        message: "Transparent",
        source,
    })
}

/// Decodes `singleDatas` (base64 of protobuf `SingleBatchRequest`), at most
/// [`MAX_BATCH_ITEMS`] items.
pub fn decode_single_datas(b64: &str) -> Result<proto::SingleBatchRequest, LegacyError> {
    let bytes = base64_capped(b64, "singleDatas", MAX_SINGLE_DATAS_BYTES)?;
    let batch = proto::SingleBatchRequest::decode(bytes.as_slice()).map_err(|source| LegacyError::Protobuf {
        field: "singleDatas",
        message: "SingleBatchRequest",
        source,
    })?;
    if batch.batch_item.len() > MAX_BATCH_ITEMS {
        let count = batch.batch_item.len();
        return Err(LegacyError::TooMany { what: "singleDatas.batchItem", count, limit: MAX_BATCH_ITEMS });
    }
    Ok(batch)
}

/// Reads one batch item's `data` (a JSON string of a single push).
pub fn parse_batch_item(item: &proto::SingleBatchItem) -> Result<SingleRequest, LegacyError> {
    let data = item.data.as_deref().unwrap_or_default();
    serde_json::from_str(data)
        .map_err(|source| LegacyError::Json { what: format!("batch item {}", item.seq_id.unwrap_or_default()), source })
}

/// Standard base64, padded or not; whitespace (line breaks of old Java encoders) is ignored.
/// The length is checked before decoding, so a huge field costs no allocation.
fn base64_capped(b64: &str, field: &'static str, max: usize) -> Result<Vec<u8>, LegacyError> {
    if b64.len() / 4 * 3 > max.saturating_add(3) * 2 {
        // Far beyond the cap even with whitespace: refuse before copying anything.
        return Err(LegacyError::TooLarge { what: field, limit: max });
    }
    let compact: Vec<u8> = b64.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if compact.len() / 4 * 3 > max.saturating_add(3) {
        return Err(LegacyError::TooLarge { what: field, limit: max });
    }
    let bytes = LENIENT_B64.decode(&compact).map_err(|source| LegacyError::Base64 { field, source })?;
    if bytes.len() > max {
        return Err(LegacyError::TooLarge { what: field, limit: max });
    }
    Ok(bytes)
}

/// Standard alphabet, padding optional (the SDKs pad; hand-written clients may not).
const LENIENT_B64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

#[cfg(test)]
mod tests {
    use std::io::Write;

    use base64::engine::general_purpose::STANDARD;

    use super::*;

    /// clientData of capture #1 (reference §1.6): a TransmissionTemplate with SMS info.
    const CAPTURE_1_CLIENT_DATA: &str = "CgASC3B1c2htZXNzYWdlGgAiB0FLX3Rlc3QqCEFJRF90ZXN0MgA6BFgBaAFCBwgBEAAYrk5CGQiuThADGGTiCADqCAYKABIAGgDwCAD4CGRCBAhkEAdKAFAEYiwKBTEwMDAwEg4KBG5hbWUSBuW8oOS4iRILCgVtb25leRICMTIY4NQDIAAoAA==";

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn connect_sign_matches_the_sdk() {
        assert_eq!(connect_sign("AK_test", 1796133432132, "MS_test"), "19df44b7e2cc2e9ec88b01c2bd1d9faf");
    }

    #[test]
    fn capture_1_client_data_is_a_transmission_with_sms() {
        let raw = decode_client_data(CAPTURE_1_CLIENT_DATA).unwrap();
        assert_eq!((raw.action.as_deref(), raw.template_id), (Some("pushmessage"), Some(4)));
        assert_eq!(raw.action_chain.len(), 3);
        let t = read_template(&raw, "hello-透传").unwrap();
        assert_eq!(t.kind, LegacyKind::Transmission { auto_start: false });
        assert_eq!((t.app_key.as_str(), t.app_id.as_str()), ("AK_test", "AID_test"));
        assert_eq!((t.transmission_content.as_str(), t.apns_json.as_deref(), t.display_ms), ("hello-透传", None, None));
        let sms = t.sms.unwrap();
        assert_eq!(sms.template_id, "10000");
        assert_eq!(sms.vars, vec![("name".into(), "张三".into()), ("money".into(), "12".into())]);
        assert_eq!((sms.applink_url, sms.offline_send_ms), (None, 60000));
    }

    #[test]
    fn base64_tolerates_missing_padding_and_line_breaks() {
        let unpadded = CAPTURE_1_CLIENT_DATA.trim_end_matches('=');
        let wrapped: String = CAPTURE_1_CLIENT_DATA
            .as_bytes()
            .chunks(76)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join("\r\n");
        let want = decode_client_data(CAPTURE_1_CLIENT_DATA).unwrap();
        assert_eq!(decode_client_data(unpadded).unwrap(), want);
        assert_eq!(decode_client_data(&wrapped).unwrap(), want);
    }

    #[test]
    fn bad_base64_and_truncated_protobuf_answer_error() {
        for bad in ["not base64!", "QUJD$", "@@@@"] {
            let e = decode_client_data(bad).unwrap_err();
            assert!(matches!(e, LegacyError::Base64 { .. }), "{bad}: {e}");
            assert_eq!(e.result(), results::ERROR);
        }
        let bytes = STANDARD.decode(CAPTURE_1_CLIENT_DATA).unwrap();
        for cut in [1, 10, bytes.len() / 2, bytes.len() - 1] {
            let e = decode_client_data(&STANDARD.encode(&bytes[..cut])).unwrap_err();
            assert!(matches!(e, LegacyError::Protobuf { .. }), "cut at {cut}: {e}");
            assert_eq!(e.result(), "Error");
        }
    }

    #[test]
    fn oversized_fields_are_refused_before_decoding() {
        let huge = "A".repeat(MAX_CLIENT_DATA_BYTES * 2);
        let e = decode_client_data(&huge).unwrap_err();
        assert!(matches!(e, LegacyError::TooLarge { .. }));
        assert_eq!(e.result(), results::DATA_TOO_BIG);
    }

    #[test]
    fn gzip_round_trip() {
        let body = r#"{"action":"pushMessageToListAction","contentId":"OSL-1"}"#.as_bytes();
        assert_eq!(inflate_gzip(&gzip(body), 1024).unwrap(), body);
        // Exactly at the cap is allowed; one byte over is not.
        assert_eq!(inflate_gzip(&gzip(body), body.len()).unwrap(), body);
        assert!(matches!(inflate_gzip(&gzip(body), body.len() - 1), Err(LegacyError::TooLarge { .. })));
    }

    #[test]
    fn gzip_bomb_is_refused_within_the_cap() {
        let bomb = gzip(&vec![0u8; 10 * 1024 * 1024]);
        assert!(bomb.len() < 64 * 1024, "10 MB of zeros compress to {} bytes", bomb.len());
        let e = inflate_gzip(&bomb, 1024 * 1024).unwrap_err();
        assert!(matches!(e, LegacyError::TooLarge { limit: 1_048_576, .. }), "{e}");
        assert_eq!(e.result(), results::DATA_TOO_BIG);
    }

    #[test]
    fn broken_gzip_answers_error() {
        let mut body = gzip(b"hello hello hello");
        assert_eq!(inflate_gzip(b"plain text", 100).unwrap_err().result(), "Error");
        body.truncate(body.len() - 6);
        assert!(matches!(inflate_gzip(&body, 100), Err(LegacyError::Gzip(_))));
    }

    /// Random bytes, and random mutations of a real vector, into every decoder: errors, never
    /// a panic (the profile aborts on panic, so a panic would fail the whole test binary).
    #[test]
    fn hostile_bytes_never_panic() {
        let mut rng = fastrand::Rng::with_seed(14);
        let real = STANDARD.decode(CAPTURE_1_CLIENT_DATA).unwrap();
        for round in 0..3000 {
            let bytes: Vec<u8> = if round % 2 == 0 {
                (0..rng.usize(0..300)).map(|_| rng.u8(..)).collect()
            } else {
                let mut m = real.clone();
                for _ in 0..rng.usize(1..6) {
                    let i = rng.usize(..m.len());
                    m[i] = rng.u8(..);
                }
                m
            };
            let b64 = STANDARD.encode(&bytes);
            if let Ok(t) = decode_client_data(&b64) {
                let _ = read_template(&t, "");
            }
            if let Ok(batch) = decode_single_datas(&b64) {
                batch.batch_item.iter().for_each(|i| drop(parse_batch_item(i)));
            }
            let _ = inflate_gzip(&bytes, 4096);
            let _ = decode_client_data(&String::from_utf8_lossy(&bytes));
            let _ = serde_json::from_slice::<SingleRequest>(&bytes);
        }
    }

    fn batch_b64(items: usize) -> String {
        let item = |i: usize| proto::SingleBatchItem {
            seq_id: Some(i as i32),
            data: Some(format!(
                r#"{{"action": "pushMessageToSingleAction", "appkey": "AK_test", "clientData": "{CAPTURE_1_CLIENT_DATA}", "transmissionContent": "hello-透传", "isOffline": true, "offlineExpireTime": 43200000, "pushNetWorkType": 0, "appId": "AID_test", "clientId": "cid-{i}", "type": 2, "pushType": "TransmissionMsg", "version": "3.0.0.0"}}"#
            )),
        };
        let batch = proto::SingleBatchRequest {
            batch_id: Some("1bab884a-ed8f-11f1-99f5-02fc00000001".into()),
            batch_item: (0..items).map(item).collect(),
        };
        STANDARD.encode(batch.encode_to_vec())
    }

    /// Capture #11: two items whose data is the JSON of a single push.
    #[test]
    fn single_datas_decode_to_single_requests() {
        let batch = decode_single_datas(&batch_b64(2)).unwrap();
        assert_eq!(batch.batch_id.as_deref(), Some("1bab884a-ed8f-11f1-99f5-02fc00000001"));
        let second = parse_batch_item(&batch.batch_item[1]).unwrap();
        assert_eq!((second.client_id.as_str(), second.alias.as_str(), second.request_id), ("cid-1", "", None));
        assert_eq!(second.push.offline_expire_time, Some(43200000));
        let t =
            read_template(&decode_client_data(&second.push.client_data).unwrap(), &second.push.transmission_content);
        assert_eq!(t.unwrap().sms.unwrap().template_id, "10000");
        let bad = proto::SingleBatchItem { seq_id: Some(3), data: Some("{".into()) };
        assert!(parse_batch_item(&bad).unwrap_err().to_string().contains("batch item 3"));
    }

    #[test]
    fn more_than_5000_batch_items_are_refused() {
        assert_eq!(decode_single_datas(&batch_b64(MAX_BATCH_ITEMS)).unwrap().batch_item.len(), MAX_BATCH_ITEMS);
        let e = decode_single_datas(&batch_b64(MAX_BATCH_ITEMS + 1)).unwrap_err();
        assert!(matches!(e, LegacyError::TooMany { count: 5001, .. }), "{e}");
    }
}
