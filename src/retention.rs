//! Retention: removes finished campaigns older than `store.retention_days`, in bounded
//! batches, so the store (and every pass over it) stays the size of recent history.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::clock::now_ms;
use crate::store::Store;

/// Campaigns removed per store command: small, so other writes interleave with a long purge.
pub const BATCH: usize = 200;
/// Commands per pass; what is left waits for the next pass.
const BATCHES_PER_PASS: usize = 50;
/// Time between passes.
const EVERY: Duration = Duration::from_secs(600);

/// Runs a pass at once and then every ten minutes until `shutdown`; `keep_days` of 0 keeps
/// everything, so nothing runs.
pub async fn run(store: Arc<dyn Store>, keep_days: u32, shutdown: CancellationToken) {
    if keep_days == 0 {
        return;
    }
    let keep_ms = i64::from(keep_days) * 86_400_000;
    loop {
        pass(store.as_ref(), now_ms() - keep_ms).await;
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(EVERY) => {}
        }
    }
}

/// Removes up to `BATCH × BATCHES_PER_PASS` campaigns that finished before `before_ms`; the
/// work runs on the store's writer thread, not on an async worker. Answers how many went.
pub async fn pass(store: &dyn Store, before_ms: i64) -> usize {
    let mut removed = 0;
    for _ in 0..BATCHES_PER_PASS {
        match store.expire_finished(before_ms, BATCH).await {
            Ok(n) => {
                removed += n;
                if n < BATCH {
                    break;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "retention pass failed; retrying at the next one");
                break;
            }
        }
    }
    if removed > 0 {
        tracing::info!(removed, "removed finished campaigns past store.retention_days");
    }
    removed
}
