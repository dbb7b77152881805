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
