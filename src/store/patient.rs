//! The dispatcher's view of a shared store: calls that fail while the store is unreachable
//! wait for it to come back and are made again, so that losing NATS pauses dispatch instead
//! of failing it.
//!
//! Why here and not in the dispatcher: the dispatcher already treats a store call as "done or
//! failed for good" (a failed `ack` means the chunk goes out again, a failed `pending_chunks`
//! ends the runner). While NATS is down every call fails, and after it is back those answers
//! would cost duplicates (a list chunk sent twice without being counted as replayed) or churn.
//! Waiting inside the call keeps every chunk with the shard that holds it: a shard blocked in
//! `mark_inflight` has not sent yet, one blocked in `ack` has sent and records the result once
//! NATS answers. With every shard blocked, nothing is sent: the pause. The runners and the
//! scheduler block in their reads the same way, so nothing spins.
//!
//! Only calls safe to make twice wait: reads, `mark_inflight`, `ack` (the NATS backend counts
//! a chunk's tombstone once however often it is acknowledged) and `flush`. Other writes fail
//! as before (the API, which has no patience, answers 503 meanwhile). A call failing while
//! the store reports itself healthy is tried again every half second for [`HEALTHY_GRACE`]
//! and then fails: the health check reads one bucket, and on a cluster that lost a node the
//! other streams may still be electing their leaders (an `ack` given up on then would mean a
//! list chunk sent twice). Every wait ends at the daemon's shutdown or after the patience
//! given.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{
    Ack, BindOutcome, CampaignPage, CampaignRecord, Change, Chunk, CidPage, DeliveryWindow, LeaseOutcome, PageQuery,
    PhoneBinding, Progress, ReceiptKey, Store, StoreError, StoreFuture, StoredBinding, Suppression, TextingEntry,
    UploadCommit,
};
use crate::domain::texting::SmsTally;
use crate::domain::{CampaignSpec, CampaignState, CompactCid, StoreIdentity};

/// How long a call that keeps failing while the store says it is healthy is tried again:
/// longer than a JetStream leader election after a node is lost.
pub const HEALTHY_GRACE: Duration = Duration::from_secs(60);

/// Time between two health checks during an outage, and before a retry when healthy.
const RECHECK_EVERY: Duration = Duration::from_millis(500);

/// A [`Store`] whose idempotent calls outlast an outage of the store they wrap.
pub struct PatientStore {
    inner: Arc<dyn Store>,
    /// Longest one call waits for the store to come back.
    patience: Duration,
    shutdown: CancellationToken,
}

impl PatientStore {
    /// Wraps `inner`; a call waits at most `patience`, and not past `shutdown`.
    pub fn wrap(inner: Arc<dyn Store>, patience: Duration, shutdown: CancellationToken) -> Arc<PatientStore> {
        Arc::new(PatientStore { inner, patience, shutdown })
    }

    /// Makes `call` until it succeeds, fails for good, or the wait runs out (its last error).
    async fn patiently<T, F, Fut>(&self, what: &'static str, mut call: F) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let deadline = Instant::now() + self.patience;
        let mut healthy_since: Option<Instant> = None;
        let mut logged = false;
        loop {
            let err = match call().await {
                Ok(v) => return Ok(v),
                Err(e) if !maybe_transient(&e) => return Err(e),
                Err(e) => e,
            };
            if self.shutdown.is_cancelled() || Instant::now() >= deadline {
                return Err(err);
            }
            if self.inner.health().await.is_ok() {
                if healthy_since.is_none() {
                    tracing::info!(call = what, error = %err, "store call failed while NATS answers; trying again");
                }
                let since = *healthy_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= HEALTHY_GRACE {
                    return Err(err);
                }
                self.pause(RECHECK_EVERY).await;
                continue;
            }
            healthy_since = None;
            if !logged {
                tracing::warn!(call = what, error = %err, "store unavailable; waiting for it to come back");
                logged = true;
            }
            if !self.wait_healthy(deadline).await {
                return Err(err);
            }
            tracing::info!(call = what, "store back; trying again");
        }
    }

    /// Polls the store's health until it is back (true), or shutdown or `deadline` (false).
    async fn wait_healthy(&self, deadline: Instant) -> bool {
        while Instant::now() < deadline && !self.shutdown.is_cancelled() {
            if self.inner.health().await.is_ok() {
                return true;
            }
            self.pause(RECHECK_EVERY).await;
        }
        false
    }

    /// Sleeps `d`, or less when the daemon stops.
    async fn pause(&self, d: Duration) {
        tokio::select! {
            _ = self.shutdown.cancelled() => {}
            _ = tokio::time::sleep(d) => {}
        }
    }
}

/// Errors an outage can cause; the others (not found, refused by the state machine,
/// unreadable, closing) would be the same answer the next time.
fn maybe_transient(e: &StoreError) -> bool {
    matches!(e, StoreError::Db(_) | StoreError::Unavailable { .. })
}

impl Store for PatientStore {
    fn identity(&self) -> StoreIdentity {
        self.inner.identity()
    }

    fn health(&self) -> StoreFuture<'_, ()> {
        self.inner.health()
    }

    // Waiting: reads and the idempotent writes of the dispatch path.

    fn mark_inflight(&self, id: u64, seq: u64) -> StoreFuture<'_, ()> {
        Box::pin(self.patiently("mark_inflight", move || self.inner.mark_inflight(id, seq)))
    }

    fn ack(&self, ack: Ack) -> StoreFuture<'_, ()> {
        Box::pin(self.patiently("ack", move || self.inner.ack(ack.clone())))
    }

    fn flush(&self) -> StoreFuture<'_, ()> {
        Box::pin(self.patiently("flush", move || self.inner.flush()))
    }

    fn get(&self, id: u64) -> StoreFuture<'_, Option<CampaignRecord>> {
        Box::pin(self.patiently("get", move || self.inner.get(id)))
    }

    fn list(&self) -> StoreFuture<'_, Vec<CampaignRecord>> {
        Box::pin(self.patiently("list", move || self.inner.list()))
    }

    fn active_campaigns(&self) -> StoreFuture<'_, Vec<CampaignRecord>> {
        Box::pin(self.patiently("active_campaigns", move || self.inner.active_campaigns()))
    }

    fn campaigns_page(&self, query: PageQuery) -> StoreFuture<'_, CampaignPage> {
        Box::pin(self.patiently("campaigns_page", move || self.inner.campaigns_page(query)))
    }

    fn census(&self) -> StoreFuture<'_, Vec<(CampaignState, u64)>> {
        Box::pin(self.patiently("census", move || self.inner.census()))
    }

    fn pending_chunks(&self, id: u64, from_seq: u64, max: usize) -> StoreFuture<'_, Vec<(u64, Chunk)>> {
        Box::pin(self.patiently("pending_chunks", move || self.inner.pending_chunks(id, from_seq, max)))
    }

    fn committed_cids(&self, id: u64, from_seq: u64, max_bytes: usize) -> StoreFuture<'_, CidPage> {
        Box::pin(self.patiently("committed_cids", move || self.inner.committed_cids(id, from_seq, max_bytes)))
    }

    fn inflight_chunks(&self, id: u64) -> StoreFuture<'_, Vec<u64>> {
        Box::pin(self.patiently("inflight_chunks", move || self.inner.inflight_chunks(id)))
    }

    fn progress(&self, id: u64) -> StoreFuture<'_, Progress> {
        Box::pin(self.patiently("progress", move || self.inner.progress(id)))
    }

    fn suppression(&self, app: &str, user: &str) -> StoreFuture<'_, Option<Suppression>> {
        let (app, user) = (app.to_owned(), user.to_owned());
        Box::pin(async move { self.patiently("suppression", || self.inner.suppression(&app, &user)).await })
    }

    fn suppressed_among(&self, app: &str, users: Vec<String>) -> StoreFuture<'_, Vec<bool>> {
        let app = app.to_owned();
        Box::pin(async move {
            self.patiently("suppressed_among", || self.inner.suppressed_among(&app, users.clone())).await
        })
    }

    fn delivery_noted(&self, key: &str) -> StoreFuture<'_, bool> {
        let key = key.to_owned();
        Box::pin(async move { self.patiently("delivery_noted", || self.inner.delivery_noted(&key)).await })
    }

    fn bindings_of(&self, app: &str, cids: Vec<CompactCid>) -> StoreFuture<'_, Vec<Option<StoredBinding>>> {
        let app = app.to_owned();
        Box::pin(async move { self.patiently("bindings_of", || self.inner.bindings_of(&app, cids.clone())).await })
    }

    fn binding_of_pn(&self, app: &str, pn_md5: &str) -> StoreFuture<'_, Option<(CompactCid, Vec<u8>)>> {
        let (app, pn_md5) = (app.to_owned(), pn_md5.to_owned());
        Box::pin(async move { self.patiently("binding_of_pn", || self.inner.binding_of_pn(&app, &pn_md5)).await })
    }

    fn claimed(&self, key: &str) -> StoreFuture<'_, Option<u64>> {
        let key = key.to_owned();
        Box::pin(async move { self.patiently("claimed", || self.inner.claimed(&key)).await })
    }

    fn chunk_inflight(&self, id: u64, seq: u64) -> StoreFuture<'_, bool> {
        Box::pin(self.patiently("chunk_inflight", move || self.inner.chunk_inflight(id, seq)))
    }

    /// Taking a lease again as the same holder renews it, so a lease whose answer was lost is
    /// this daemon's when asked again.
    fn lease_chunk(&self, id: u64, seq: u64, holder: &str, ttl_ms: u64) -> StoreFuture<'_, LeaseOutcome> {
        let holder = holder.to_owned();
        Box::pin(
            async move { self.patiently("lease_chunk", || self.inner.lease_chunk(id, seq, &holder, ttl_ms)).await },
        )
    }

    fn texting_due(&self, now_ms: i64, max: usize) -> StoreFuture<'_, Vec<TextingEntry>> {
        Box::pin(self.patiently("texting_due", move || self.inner.texting_due(now_ms, max)))
    }

    fn receipt_marks(&self, app: &str, keys: Vec<ReceiptKey>) -> StoreFuture<'_, Vec<u8>> {
        let app = app.to_owned();
        Box::pin(async move { self.patiently("receipt_marks", || self.inner.receipt_marks(&app, keys.clone())).await })
    }

    // Failing as before: writes that must not be applied twice, and the rare reads of
    // housekeeping.

    fn create(&self, spec: CampaignSpec, now_ms: i64) -> StoreFuture<'_, CampaignRecord> {
        self.inner.create(spec, now_ms)
    }

    /// A lease not given back expires by itself.
    fn release_chunk(&self, id: u64, seq: u64, holder: &str) -> StoreFuture<'_, ()> {
        self.inner.release_chunk(id, seq, holder)
    }

    /// The membership loop keeps the last group size when a heartbeat fails.
    fn heartbeat(&self, member: &str, now_ms: i64) -> StoreFuture<'_, usize> {
        self.inner.heartbeat(member, now_ms)
    }

    fn change(&self, id: u64, change: Change) -> StoreFuture<'_, CampaignRecord> {
        self.inner.change(id, change)
    }

    fn delete(&self, id: u64) -> StoreFuture<'_, ()> {
        self.inner.delete(id)
    }

    fn stage_chunk(&self, id: u64, seq: u64, chunk: Chunk) -> StoreFuture<'_, ()> {
        self.inner.stage_chunk(id, seq, chunk)
    }

    fn commit_upload(&self, id: u64, commit: UploadCommit) -> StoreFuture<'_, CampaignRecord> {
        self.inner.commit_upload(id, commit)
    }

    fn staged_chunk(&self, id: u64, seq: u64) -> StoreFuture<'_, Option<Chunk>> {
        Box::pin(self.patiently("staged_chunk", move || self.inner.staged_chunk(id, seq)))
    }

    fn discard_upload(&self, id: u64, first_seq: u64, chunks: u64) -> StoreFuture<'_, ()> {
        self.inner.discard_upload(id, first_seq, chunks)
    }

    fn expire_finished(&self, before_ms: i64, max: usize) -> StoreFuture<'_, usize> {
        self.inner.expire_finished(before_ms, max)
    }

    fn size_on_disk(&self) -> StoreFuture<'_, u64> {
        self.inner.size_on_disk()
    }

    fn queued_chunk_messages(&self) -> StoreFuture<'_, Option<u64>> {
        self.inner.queued_chunk_messages()
    }

    fn set_suppression(&self, app: &str, user: &str, entry: Option<Suppression>) -> StoreFuture<'_, bool> {
        self.inner.set_suppression(app, user, entry)
    }

    fn suppressions(&self, app: &str, after: &str, limit: usize) -> StoreFuture<'_, Vec<(String, Suppression)>> {
        self.inner.suppressions(app, after, limit)
    }

    fn first_delivery(&self, key: &str, now_ms: i64, window: DeliveryWindow) -> StoreFuture<'_, bool> {
        self.inner.first_delivery(key, now_ms, window)
    }

    fn claim(&self, key: &str, id: u64) -> StoreFuture<'_, u64> {
        self.inner.claim(key, id)
    }

    fn bind_phones(&self, app: &str, pairs: Vec<PhoneBinding>) -> StoreFuture<'_, Vec<BindOutcome>> {
        self.inner.bind_phones(app, pairs)
    }

    fn unbind_phones(&self, app: &str, cids: Vec<CompactCid>) -> StoreFuture<'_, Vec<bool>> {
        self.inner.unbind_phones(app, cids)
    }

    fn texting_stage(&self, entry: TextingEntry) -> StoreFuture<'_, bool> {
        self.inner.texting_stage(entry)
    }

    fn texting_save(&self, entry: TextingEntry) -> StoreFuture<'_, u64> {
        self.inner.texting_save(entry)
    }

    fn texting_finish(&self, entry: TextingEntry, tally: SmsTally) -> StoreFuture<'_, ()> {
        self.inner.texting_finish(entry, tally)
    }

    fn note_sms_serials(&self, app: &str, campaign: u64, sids: Vec<String>) -> StoreFuture<'_, ()> {
        self.inner.note_sms_serials(app, campaign, sids)
    }

    fn take_sms_serial(&self, app: &str, sid: &str) -> StoreFuture<'_, Option<u64>> {
        self.inner.take_sms_serial(app, sid)
    }

    fn note_receipts(&self, app: &str, marks: Vec<(ReceiptKey, u8)>) -> StoreFuture<'_, Vec<u8>> {
        self.inner.note_receipts(app, marks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

    /// A store that is down until `up` is set: every read fails, health says so.
    struct Flaky {
        up: AtomicBool,
        calls: AtomicU32,
        always_fails: bool,
    }

    impl Flaky {
        fn outcome<T: Default>(&self) -> Result<T, StoreError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self.always_fails || !self.up.load(Ordering::SeqCst) {
                return Err(StoreError::Db("nats: timed out".into()));
            }
            Ok(T::default())
        }
    }

    /// Only the calls the tests make are answered; the rest are never reached.
    macro_rules! unreached {
        ($($name:ident($($arg:ident: $ty:ty),*) -> $out:ty;)*) => {
            $(fn $name(&self, $($arg: $ty),*) -> StoreFuture<'_, $out> {
                $(let _ = $arg;)*
                Box::pin(async { Err(StoreError::Closed) })
            })*
        };
    }

    impl Store for Flaky {
        fn identity(&self) -> StoreIdentity {
            StoreIdentity::from_bytes(&[7; 6]).expect("six bytes")
        }
        fn health(&self) -> StoreFuture<'_, ()> {
            let up = self.up.load(Ordering::SeqCst);
            Box::pin(async move {
                if up {
                    Ok(())
                } else {
                    Err(StoreError::Unavailable { url: "nats://x".into(), message: "down".into() })
                }
            })
        }
        fn progress(&self, _id: u64) -> StoreFuture<'_, Progress> {
            let r = self.outcome();
            Box::pin(async move { r })
        }
        fn get(&self, _id: u64) -> StoreFuture<'_, Option<CampaignRecord>> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Box::pin(async { Err(StoreError::NotFound(1)) })
        }
        unreached! {
            create(spec: CampaignSpec, now_ms: i64) -> CampaignRecord;
            change(id: u64, change: Change) -> CampaignRecord;
            delete(id: u64) -> ();
            stage_chunk(id: u64, seq: u64, chunk: Chunk) -> ();
            commit_upload(id: u64, commit: UploadCommit) -> CampaignRecord;
            discard_upload(id: u64, first_seq: u64, chunks: u64) -> ();
            staged_chunk(id: u64, seq: u64) -> Option<Chunk>;
            mark_inflight(id: u64, seq: u64) -> ();
            ack(ack: Ack) -> ();
            flush() -> ();
            list() -> Vec<CampaignRecord>;
            active_campaigns() -> Vec<CampaignRecord>;
            campaigns_page(query: PageQuery) -> CampaignPage;
            census() -> Vec<(CampaignState, u64)>;
            expire_finished(before_ms: i64, max: usize) -> usize;
            pending_chunks(id: u64, from_seq: u64, max: usize) -> Vec<(u64, Chunk)>;
            committed_cids(id: u64, from_seq: u64, max_bytes: usize) -> CidPage;
            inflight_chunks(id: u64) -> Vec<u64>;
            size_on_disk() -> u64;
            queued_chunk_messages() -> Option<u64>;
            set_suppression(app: &str, user: &str, entry: Option<Suppression>) -> bool;
            suppression(app: &str, user: &str) -> Option<Suppression>;
            suppressed_among(app: &str, users: Vec<String>) -> Vec<bool>;
            suppressions(app: &str, after: &str, limit: usize) -> Vec<(String, Suppression)>;
            first_delivery(key: &str, now_ms: i64, window: DeliveryWindow) -> bool;
            delivery_noted(key: &str) -> bool;
            bind_phones(app: &str, pairs: Vec<PhoneBinding>) -> Vec<BindOutcome>;
            unbind_phones(app: &str, cids: Vec<CompactCid>) -> Vec<bool>;
            bindings_of(app: &str, cids: Vec<CompactCid>) -> Vec<Option<StoredBinding>>;
            binding_of_pn(app: &str, pn_md5: &str) -> Option<(CompactCid, Vec<u8>)>;
            claim(key: &str, id: u64) -> u64;
            claimed(key: &str) -> Option<u64>;
            texting_stage(entry: TextingEntry) -> bool;
            texting_due(now_ms: i64, max: usize) -> Vec<TextingEntry>;
            texting_save(entry: TextingEntry) -> u64;
            texting_finish(entry: TextingEntry, tally: SmsTally) -> ();
            note_sms_serials(app: &str, campaign: u64, sids: Vec<String>) -> ();
            take_sms_serial(app: &str, sid: &str) -> Option<u64>;
            note_receipts(app: &str, marks: Vec<(ReceiptKey, u8)>) -> Vec<u8>;
            receipt_marks(app: &str, keys: Vec<ReceiptKey>) -> Vec<u8>;
            chunk_inflight(id: u64, seq: u64) -> bool;
            lease_chunk(id: u64, seq: u64, holder: &str, ttl_ms: u64) -> LeaseOutcome;
            release_chunk(id: u64, seq: u64, holder: &str) -> ();
            heartbeat(member: &str, now_ms: i64) -> usize;
        }
    }

    fn flaky(up: bool, always_fails: bool) -> Arc<Flaky> {
        Arc::new(Flaky { up: AtomicBool::new(up), calls: AtomicU32::new(0), always_fails })
    }

    #[tokio::test(start_paused = true)]
    async fn a_read_during_an_outage_waits_and_succeeds_once_the_store_is_back() {
        let inner = flaky(false, false);
        let store = PatientStore::wrap(inner.clone(), Duration::from_secs(600), CancellationToken::new());
        let back = inner.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(30)).await;
            back.up.store(true, Ordering::SeqCst);
        });
        let started = tokio::time::Instant::now();
        store.progress(1).await.expect("answered after the outage");
        assert!(started.elapsed() >= Duration::from_secs(30));
        assert_eq!(inner.calls.load(Ordering::SeqCst), 2, "one failed call, one after the store came back");
    }

    #[tokio::test(start_paused = true)]
    async fn the_wait_ends_at_shutdown_and_at_the_patience() {
        let shutdown = CancellationToken::new();
        let store = PatientStore::wrap(flaky(false, false), Duration::from_secs(600), shutdown.clone());
        let stop = shutdown.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            stop.cancel();
        });
        assert!(store.progress(1).await.is_err(), "given up at shutdown");
        let store = PatientStore::wrap(flaky(false, false), Duration::from_secs(20), CancellationToken::new());
        let started = tokio::time::Instant::now();
        assert!(store.progress(1).await.is_err());
        assert!(started.elapsed() < Duration::from_secs(22), "given up after the patience");
    }

    #[tokio::test(start_paused = true)]
    async fn failures_of_a_healthy_store_and_lasting_answers_are_not_waited_on() {
        let inner = flaky(true, true);
        let store = PatientStore::wrap(inner.clone(), Duration::from_secs(600), CancellationToken::new());
        let started = tokio::time::Instant::now();
        assert!(store.progress(1).await.is_err());
        let waited = started.elapsed();
        assert!(waited >= HEALTHY_GRACE && waited < HEALTHY_GRACE + Duration::from_secs(2), "{waited:?}");
        let calls = inner.calls.load(Ordering::SeqCst);
        assert!((100..=130).contains(&calls), "tried every half second: {calls}");
        let inner = flaky(false, false);
        let store = PatientStore::wrap(inner.clone(), Duration::from_secs(600), CancellationToken::new());
        assert!(matches!(store.get(1).await, Err(StoreError::NotFound(1))));
        assert_eq!(inner.calls.load(Ordering::SeqCst), 1, "not found is an answer");
    }
}
