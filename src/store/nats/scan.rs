//! Reading many keys of a KV bucket at once, by key pattern, so a campaign's tombstones or one
//! app's suppressions are read without the rest of the bucket.
//!
//! The keys come from the stream's per-subject counts (`STREAM.INFO` with a subject filter),
//! which is exact at one instant whatever is written meanwhile. (An ordered consumer, as the
//! crate's `keys()` uses, waits for a last message that a concurrent purge can remove, and then
//! never ends.) It relies on keys being removed by purging their subject without a marker,
//! which [`remove`] does, so every subject listed is a live key.

use std::time::Duration;

use async_nats::jetstream::kv;
use bytes::Bytes;
use futures_util::StreamExt;

use super::nats_err;
use crate::store::StoreError;

/// Longest a scan may take.
const SCAN_TIMEOUT: Duration = Duration::from_secs(30);

/// Every key of `kv` matching `pattern` (`*` and `>` allowed), at most `max` (more is an
/// error, not a silent cut), in no particular order.
pub(super) async fn keys(kv: &kv::Store, pattern: &str, max: usize) -> Result<Vec<String>, StoreError> {
    let work = async {
        let mut subjects = kv.stream.info_with_subjects(format!("{}{pattern}", kv.prefix)).await.map_err(nats_err)?;
        let mut out = Vec::new();
        while let Some(item) = subjects.next().await {
            let (subject, _) = item.map_err(nats_err)?;
            if let Some(key) = subject.strip_prefix(kv.prefix.as_str()) {
                if out.len() >= max {
                    return Err(StoreError::Db(format!("more than {max} keys match {pattern}")));
                }
                out.push(key.to_owned());
            }
        }
        Ok(out)
    };
    tokio::time::timeout(SCAN_TIMEOUT, work)
        .await
        .map_err(|_| StoreError::Db(format!("listing the keys {pattern} took over {SCAN_TIMEOUT:?}")))?
}

/// The value of every key of `kv` matching `pattern`, as [`keys`] lists them; a key removed
/// between the listing and its read is left out.
pub(super) async fn values(kv: &kv::Store, pattern: &str, max: usize) -> Result<Vec<(String, Bytes)>, StoreError> {
    let mut out = Vec::new();
    for key in keys(kv, pattern, max).await? {
        if let Some(value) = kv.get(&key).await.map_err(nats_err)? {
            out.push((key, value));
        }
    }
    Ok(out)
}

/// Removes `key` (every message of its subject, leaving no delete marker).
pub(super) async fn remove(kv: &kv::Store, key: &str) -> Result<(), StoreError> {
    kv.stream.purge().filter(format!("{}{key}", kv.prefix)).await.map_err(nats_err).map(drop)
}
