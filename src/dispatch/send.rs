//! Sending one chunk: pacing, the upstream call with retries, and the per-recipient tally.

use std::future::Future;
use std::num::NonZeroU32;
use std::time::Instant;

use bytes::Bytes;

use super::decide::answers;
use super::decide::call::{CallPlan, Retry};
use super::decide::parts;
use super::decide::texting::PushAnswer;
use super::failure::described;
use super::{CampaignRun, Context};
use crate::domain::{CompactCid, Counts, ResultName, Tally};
use crate::store::{Change, Chunk};
use crate::upstream::getui::GetuiClient;
use crate::upstream::ProviderError;
use crate::wire::getui::compact::BatchBody;

pub(super) use super::decide::call::RepeatGuard;

/// How a call with retries ended.
pub(super) enum Outcome<T> {
    /// The upstream answered with success.
    Done(T),
    /// It failed for good; every recipient of the call gets this result.
    GaveUp(ResultName),
    /// The daemon is stopping; nothing is recorded and the chunk stays pending.
    Abandoned,
}

/// Calls an upstream that drops repeated request_ids until it succeeds, fails for good, or
/// the daemon stops.
pub(super) async fn call<T, E, F, Fut>(ctx: &Context, run: &CampaignRun, attempt: F) -> Outcome<T>
where
    E: ProviderError,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    call_guarded(ctx, run, RepeatGuard::RequestId, attempt).await
}

/// Like [`call`], for any `guard`. A retry after a failure that may have delivered is counted
/// under `retries_total{reason="maybe_delivered"}` and, unless the upstream drops it as a
/// repeat, adds its recipients to the campaign's `replayed`, just before it is sent. What to
/// do after each failure is the [`CallPlan`]'s; this loop waits, pauses, calls and records.
pub(super) async fn call_guarded<T, E, F, Fut>(
    ctx: &Context,
    run: &CampaignRun,
    guard: RepeatGuard,
    mut attempt: F,
) -> Outcome<T>
where
    E: ProviderError,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut plan = CallPlan::new(guard);
    let mut first_attempt: Option<Instant> = None;
    loop {
        // A call its app is ready for goes even after shutdown began: the caller has marked its
        // chunk in flight, and one more round trip costs less than the restarted daemon sending
        // the chunk again as replayed. A call still waiting for its app is let go.
        tokio::select! {
            biased;
            _ = run.app.ready_for_call() => {}
            _ = ctx.shutdown.cancelled() => return Outcome::Abandoned,
        }
        let first = *first_attempt.get_or_insert_with(Instant::now);
        add_replayed(ctx, run, plan.sending(first.elapsed())).await;
        let err = match attempt().await {
            Ok(v) => return Outcome::Done(v),
            Err(e) => e,
        };
        let (wait, reason) = match plan.failed(described(&err), &ctx.policy, fastrand::f64()) {
            Retry::GiveUp(result) => {
                tracing::warn!(campaign = run.id, error = %err, result = result.as_str(), "giving up on a call");
                return Outcome::GaveUp(result);
            }
            Retry::PauseApp { wait, reason } => {
                retried(ctx, run, &err, reason, wait);
                // The app's wait, at the top of the loop, holds this call too.
                run.app.pause_for(wait);
                continue;
            }
            Retry::Wait { wait, reason } => (wait, reason),
        };
        retried(ctx, run, &err, reason, wait);
        tokio::select! {
            _ = ctx.shutdown.cancelled() => return Outcome::Abandoned,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Counts a retry under `reason`.
fn retried(ctx: &Context, run: &CampaignRun, err: &impl ProviderError, reason: &str, wait: std::time::Duration) {
    ctx.metrics.retries_total.with_label_values(&[run.app.name.as_str(), reason]).inc();
    tracing::debug!(campaign = run.id, error = %err, ?wait, "retrying");
}

/// Counts `n` recipients about to be sent again as `replayed`. Abandoning the call instead
/// leaves the chunk in flight, and the restart counts it then.
async fn add_replayed(ctx: &Context, run: &CampaignRun, n: u64) {
    if n == 0 {
        return;
    }
    tracing::info!(campaign = run.id, recipients = n, "re-sending a call whose answer was lost");
    if let Err(e) = ctx.store.change(run.id, Change::AddReplayed(n)).await {
        tracing::error!(campaign = run.id, error = %e, "cannot record replayed recipients");
    }
}

/// Waits for `n` messages' worth of the campaign's speed bucket before part `index` of a
/// chunk. Returns false when the wait was cut short: by shutdown, or by a pause or cancel
/// while the part is one a stop still holds back ([`parts::held_by_stop`]: the chunk's first),
/// so the chunk stays pending; once part of a chunk is sent, the rest follows.
pub(super) async fn pace(ctx: &Context, run: &CampaignRun, n: usize, index: usize) -> bool {
    if !parts::may_start(index, run.stop.is_cancelled()) {
        return false;
    }
    let pacing = run.pacing(ctx.members.live());
    let Some(limiter) = &pacing.limiter else { return true };
    let Some(n) = NonZeroU32::new(n as u32) else { return true };
    let started = Instant::now();
    let stopped = async {
        if parts::held_by_stop(index) {
            run.stop.cancelled().await
        } else {
            std::future::pending().await
        }
    };
    tokio::select! {
        _ = ctx.shutdown.cancelled() => return false,
        _ = stopped => return false,
        r = limiter.until_n_ready(n) => {
            // `n` never exceeds the burst (parts are cut to it), so this cannot fail.
            if r.is_err() {
                tracing::error!(campaign = run.id, "chunk part larger than the speed burst");
            }
        }
    }
    ctx.metrics.waited(&run.app.name, "campaign_speed", started.elapsed());
    true
}

/// Durably notes, before the chunk's first byte leaves, that it may be sent: after a crash it
/// counts as maybe-sent (the replay policy decides). False when the store failed.
pub(super) async fn mark_inflight(ctx: &Context, run: &CampaignRun, seq: u64, marked: &mut bool) -> bool {
    if *marked {
        return true;
    }
    if let Err(e) = ctx.store.mark_inflight(run.id, seq).await {
        tracing::error!(campaign = run.id, error = %e, "cannot mark a chunk in flight");
        return false;
    }
    *marked = true;
    true
}

/// Sends a list chunk through the campaign's Getui list task; `None` when abandoned.
pub(super) async fn send_list(
    ctx: &Context,
    run: &CampaignRun,
    client: &GetuiClient,
    seq: u64,
    chunk: &Chunk,
) -> Option<Sent> {
    let taskid = run.list_taskid.get()?;
    let cids: Vec<[u8; 16]> = (0..chunk.len()).map(|i| chunk.cid(i).0).collect();
    let mut sent = Sent::new(run);
    let mut marked = false;
    let part_size = run.pacing(ctx.members.live()).part_size;
    for (i, part) in parts::cut(&cids, part_size) {
        if !pace(ctx, run, part.len(), i).await {
            return None;
        }
        if !mark_inflight(ctx, run, seq, &mut marked).await {
            return None;
        }
        // `/push/list/cid` takes no request_id: nothing upstream recognises a repeat.
        let guard = RepeatGuard::Unguarded { recipients: part.len() as u64 };
        match call_guarded(ctx, run, guard, || client.push_list_cids(taskid, part)).await {
            Outcome::Done(statuses) => {
                let mut tally = Tally::default();
                for (cid, r) in part.iter().zip(answers::list_in_order(part, &statuses)) {
                    tally.add(r);
                    sent.note(|| Some(CompactCid(*cid)), r, taskid, Vec::new());
                }
                tally.add_to(&mut sent.counts);
            }
            Outcome::GaveUp(r) => {
                for cid in part {
                    sent.push(|| Some(CompactCid(*cid)), r, taskid, Vec::new());
                }
            }
            Outcome::Abandoned => return None,
        }
    }
    Some(sent)
}

/// A sent chunk's results, and, when the campaign has SMS fallback, each recipient's push
/// answer with the taskid that carried it (what the texting is decided from).
pub(super) struct Sent {
    pub counts: Counts,
    pub pushed: Option<Vec<PushAnswer>>,
}

impl Sent {
    fn new(run: &CampaignRun) -> Sent {
        Sent { counts: Counts::default(), pushed: run.texting.then(Vec::new) }
    }

    /// Counts only (a channel without SMS fallback).
    pub(super) fn counts(counts: Counts) -> Sent {
        Sent { counts, pushed: None }
    }

    /// Counts one recipient; `cid` is only worked out when the campaign texts.
    fn push(
        &mut self,
        cid: impl FnOnce() -> Option<CompactCid>,
        result: ResultName,
        taskid: &str,
        params: Vec<String>,
    ) {
        self.counts.add(result, 1);
        self.note(cid, result, taskid, params);
    }

    /// What [`Self::push`] does but count: the answer row a texting campaign keeps.
    fn note(
        &mut self,
        cid: impl FnOnce() -> Option<CompactCid>,
        result: ResultName,
        taskid: &str,
        params: Vec<String>,
    ) {
        if let Some(rows) = &mut self.pushed {
            if let Some(cid) = cid() {
                let online = result == ResultName::SuccessedOnline;
                rows.push(PushAnswer { cid, online, taskid: taskid.to_owned(), params });
            }
        }
    }
}

/// Sends a batch_single chunk, one personal copy per recipient; `None` when abandoned.
pub(super) async fn send_batch(
    ctx: &Context,
    run: &CampaignRun,
    client: &GetuiClient,
    seq: u64,
    chunk: &Chunk,
) -> Option<Sent> {
    let mut sent = Sent::new(run);
    let part_size = run.pacing(ctx.members.live()).part_size.max(1);
    let parts = batch_parts(run, seq, chunk, part_size, &mut sent);
    for (index, part) in parts.into_iter().enumerate() {
        let BatchPart { body, recipients } = part;
        if !pace(ctx, run, recipients.len(), index).await {
            return None;
        }
        let (n, body) = (body.len(), Bytes::from(body.into_json()));
        // Every message carries its request_id and Getui drops a repeat of one, so a retry
        // after a lost answer delivers nothing twice and needs no counting.
        match call(ctx, run, || client.push_single_batch_json(body.clone(), n)).await {
            // The answer is keyed by taskid, in no useful order: each message's result is
            // looked up by its recipient, in the order the messages were added.
            Outcome::Done(statuses) => {
                for (cid, params) in recipients {
                    let (result, taskid) = match statuses.get(&cid.0) {
                        Some((taskid, word)) => (answers::word_result(Some(word)), taskid),
                        None => (answers::word_result(None), ""),
                    };
                    sent.push(|| Some(cid), result, taskid, params);
                }
            }
            Outcome::GaveUp(r) => {
                for (cid, params) in recipients {
                    sent.push(|| Some(cid), r, "", params);
                }
            }
            Outcome::Abandoned => return None,
        }
    }
    Some(sent)
}

/// One call's worth of a batch_single chunk: its body, written as each copy is made, and
/// each message's recipient with, when the campaign texts, its SMS parameters.
struct BatchPart {
    body: BatchBody,
    recipients: Vec<(CompactCid, Vec<String>)>,
}

/// Room made in a batch body per message it will hold: a short notification with its request
/// id and cid takes about 250 bytes, so most bodies are written without growing (each growth
/// copies the body so far).
const MESSAGE_BYTES: usize = 384;

/// Renders each recipient's copy into the body of its part (`part_size` messages a call). A
/// recipient whose copy cannot be sent (it outgrows a limit, its request id does not derive)
/// is counted in `sent` at once.
fn batch_parts(run: &CampaignRun, seq: u64, chunk: &Chunk, part_size: usize, sent: &mut Sent) -> Vec<BatchPart> {
    let mut parts: Vec<BatchPart> = Vec::with_capacity(chunk.len().div_ceil(part_size));
    let ids = run.request_key.chunk_ids(seq);
    let mut rid = String::new();
    for i in 0..chunk.len() {
        let vars = chunk.vars_of(i);
        let lookup = |k: &str| vars.get(k);
        let msg = run.getui.message(&lookup);
        let cid = chunk.cid(i);
        let admitted = parts::admit(msg.fits(), || ids.as_ref().map(|ids| ids.write_id(i as u8, &mut rid)));
        match admitted {
            Ok(()) => {}
            Err(result) => {
                sent.push(|| Some(cid), result, "", run.sms_params(&lookup));
                continue;
            }
        }
        if parts.last().is_none_or(|p| p.body.len() >= part_size) {
            let body = BatchBody::with_capacity(part_size.min(chunk.len() - i) * MESSAGE_BYTES);
            parts.push(BatchPart { body, recipients: Vec::with_capacity(part_size) });
        }
        let Some(part) = parts.last_mut() else { continue };
        match run.getui.write_single(&mut part.body, &rid, &cid.0, &msg, &lookup) {
            Ok(()) => part.recipients.push((cid, run.sms_params(&lookup))),
            Err(e) => {
                tracing::error!(campaign = run.id, error = %e, "cannot write a message into its batch");
                sent.push(|| Some(cid), ResultName::Failed, "", run.sms_params(&lookup));
            }
        }
    }
    // A part whose only message could not be written has nothing to send.
    parts.retain(|p| !p.body.is_empty());
    parts
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::testing::fixture;
    use super::*;
    use crate::dispatch::decide::retry::{backoff, RetryPolicy};
    use crate::upstream::getui::client::CidStatus;
    use crate::upstream::getui::GetuiError;

    fn unavailable() -> GetuiError {
        GetuiError::Http { endpoint: "POST /push/list/cid", status: 503 }
    }

    #[test]
    fn the_core_reads_every_status_word_as_the_getui_client_does() {
        for word in ["successed_online", "successed_offline", "successed_ignore", "something_new"] {
            let expected = match CidStatus::parse(word) {
                CidStatus::SuccessedOnline => ResultName::SuccessedOnline,
                CidStatus::SuccessedOffline => ResultName::SuccessedOffline,
                CidStatus::SuccessedIgnore => ResultName::SuccessedIgnore,
                CidStatus::Other(_) => ResultName::SuccessedUnknown,
            };
            assert_eq!(answers::status_result(Some(word)), expected, "{word}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn call_guarded_waits_exactly_the_planned_backoffs_and_counts_each_resend_replayed() {
        let policy = RetryPolicy::default();
        let (_dir, ctx, run) = fixture(policy.clone()).await;
        // The loop draws its jitter from the thread's generator: seed it, and replay the draws.
        fastrand::seed(7);
        let mut rng = fastrand::Rng::with_seed(7);
        let planned: Vec<Duration> = (1..=3).map(|n| backoff(policy.base, policy.cap, n, rng.f64())).collect();
        let mut sent_at = Vec::new();
        let guard = RepeatGuard::Unguarded { recipients: 3 };
        let outcome = call_guarded(&ctx, &run, guard, || {
            sent_at.push(tokio::time::Instant::now());
            let failed = sent_at.len() <= 3;
            async move {
                if failed {
                    Err(unavailable())
                } else {
                    Ok("answered")
                }
            }
        })
        .await;
        assert!(matches!(outcome, Outcome::Done("answered")));
        let waited: Vec<Duration> = sent_at.windows(2).map(|w| w[1] - w[0]).collect();
        // Tokio's timer rounds a deadline up to its next millisecond.
        let ticks: Vec<Duration> =
            planned.iter().map(|d| Duration::from_millis(d.as_nanos().div_ceil(1_000_000) as u64)).collect();
        assert_eq!(waited, ticks);
        let rec = ctx.store.get(run.id).await.expect("readable").expect("the campaign");
        assert_eq!(rec.replayed, 9, "three resends of three recipients whose answer was lost");
        let retries = ctx.metrics.retries_total.with_label_values(&["main", "maybe_delivered"]).get();
        assert_eq!(retries, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn call_guarded_gives_up_after_the_budget_without_waiting_after_the_last_failure() {
        let policy = RetryPolicy { max_attempts: 2, ..RetryPolicy::default() };
        let (_dir, ctx, run) = fixture(policy).await;
        let started = tokio::time::Instant::now();
        let mut attempts = 0;
        let outcome = call_guarded(&ctx, &run, RepeatGuard::RequestId, || {
            attempts += 1;
            async { Err::<(), _>(unavailable()) }
        })
        .await;
        assert!(matches!(outcome, Outcome::GaveUp(ResultName::UpstreamUnavailable)));
        assert_eq!(attempts, 2);
        assert!(started.elapsed() <= Duration::from_millis(100), "one backoff of at most the base");
        let rec = ctx.store.get(run.id).await.expect("readable").expect("the campaign");
        assert_eq!(rec.replayed, 0, "request ids make the resend harmless");
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_during_a_retry_wait_abandons_the_call() {
        let (_dir, ctx, run) = fixture(RetryPolicy::default()).await;
        let shutdown = ctx.shutdown.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            shutdown.cancel();
        });
        let mut attempts = 0;
        let outcome = call_guarded(&ctx, &run, RepeatGuard::RequestId, || {
            attempts += 1;
            async { Err::<(), _>(unavailable()) }
        })
        .await;
        assert!(matches!(outcome, Outcome::Abandoned));
        assert_eq!(attempts, 1, "the wait (at least 50 ms) was cut short at 10 ms");
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_its_app_is_ready_for_still_goes_after_shutdown_began() {
        let (_dir, ctx, run) = fixture(RetryPolicy::default()).await;
        ctx.shutdown.cancel();
        // An unbiased choice between the two would abandon about half of these.
        for n in 0..32 {
            let mut attempts = 0;
            let outcome = call_guarded(&ctx, &run, RepeatGuard::RequestId, || {
                attempts += 1;
                async { Ok::<_, GetuiError>("answered") }
            })
            .await;
            assert!(matches!(outcome, Outcome::Done("answered")), "call {n} was abandoned");
            assert_eq!(attempts, 1);
        }
        // A call its app holds back is still let go.
        run.app.pause_for(Duration::from_secs(60));
        let outcome = call_guarded(&ctx, &run, RepeatGuard::RequestId, || async { Ok::<_, GetuiError>(()) }).await;
        assert!(matches!(outcome, Outcome::Abandoned));
    }

    #[tokio::test]
    async fn a_paused_run_holds_back_a_chunks_first_part_but_not_the_rest() {
        let (_dir, ctx, run) = fixture(RetryPolicy::default()).await;
        assert!(pace(&ctx, &run, 10, 0).await, "running: the first part goes");
        run.stop.cancel();
        assert!(!pace(&ctx, &run, 10, 0).await, "paused before the chunk began: it stays pending");
        assert!(pace(&ctx, &run, 10, 1).await, "paused mid-chunk: the rest follows");
    }
}
