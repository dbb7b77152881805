//! Reading many keys of a KV bucket at once: an ordered push consumer over the bucket's
//! stream, last value per key, bounded in count and time. The crate's `keys()` lists a whole
//! bucket; this takes a key pattern, so a campaign's tombstones or one app's suppressions are
//! read without the rest.

use std::time::Duration;

use async_nats::jetstream::consumer::{push, DeliverPolicy, ReplayPolicy};
use async_nats::jetstream::kv;
use bytes::Bytes;
use futures_util::StreamExt;

use super::nats_err;
use crate::store::StoreError;

/// Longest a scan may take.
const SCAN_TIMEOUT: Duration = Duration::from_secs(30);

/// Latest value of every live key of `kv` matching `pattern` (`*` and `>` allowed), at most
/// `max` (more is an error, not a silent cut). `headers_only` skips the values.
pub(super) async fn scan(
    client: &async_nats::Client,
    kv: &kv::Store,
    pattern: &str,
    headers_only: bool,
    max: usize,
) -> Result<Vec<(String, Bytes)>, StoreError> {
    let work = async {
        let consumer = kv
            .stream
            .create_consumer(push::OrderedConfig {
                deliver_subject: client.new_inbox(),
                description: Some("campaignd key scan".into()),
                filter_subject: format!("{}{pattern}", kv.prefix),
                headers_only,
                replay_policy: ReplayPolicy::Instant,
                deliver_policy: DeliverPolicy::LastPerSubject,
                ..Default::default()
            })
            .await
            .map_err(nats_err)?;
        let mut out = Vec::new();
        if consumer.cached_info().num_pending == 0 {
            return Ok(out);
        }
        let mut messages = consumer.messages().await.map_err(nats_err)?;
        while let Some(message) = messages.next().await {
            let message = message.map_err(nats_err)?;
            let pending = message.info().map_err(nats_err)?.pending;
            let removed = message
                .headers
                .as_ref()
                .and_then(|h| h.get("KV-Operation"))
                .is_some_and(|op| matches!(op.as_str(), "DEL" | "PURGE"));
            if !removed {
                if let Some(key) = message.subject.as_str().strip_prefix(kv.prefix.as_str()) {
                    if out.len() >= max {
                        return Err(StoreError::Db(format!("more than {max} keys match {pattern}")));
                    }
                    out.push((key.to_owned(), message.payload.clone()));
                }
            }
            if pending == 0 {
                break;
            }
        }
        Ok(out)
    };
    tokio::time::timeout(SCAN_TIMEOUT, work)
        .await
        .map_err(|_| StoreError::Db(format!("reading the keys {pattern} took over {SCAN_TIMEOUT:?}")))?
}
