//! Sending one chunk: pacing, the upstream call with retries, and the per-recipient tally.

use std::future::Future;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use super::retry::{Attempts, Verdict};
use super::{CampaignRun, Context};
use crate::domain::{Counts, RequestId, ResultName};
use crate::render::getui::{batch, list_cid_push};
use crate::store::{Change, Chunk};
use crate::upstream::getui::client::{CidStatus, PushOutcome};
use crate::upstream::getui::GetuiClient;
use crate::upstream::ProviderError;

/// How a call with retries ended.
pub(super) enum Outcome<T> {
    /// The upstream answered with success.
    Done(T),
    /// It failed for good; every recipient of the call gets this result.
    GaveUp(ResultName),
    /// The daemon is stopping; nothing is recorded and the chunk stays pending.
    Abandoned,
}

/// What keeps a retried call from reaching its recipients twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RepeatGuard {
    /// The upstream drops a repeated request_id (batch_single messages, the list task, app
    /// pushes), so a retry never delivers twice and is not counted as a repeat.
    RequestId,
    /// Nothing does (`/push/list/cid`, WeCom without its duplicate check): a retry after a
    /// failure that may have delivered may reach these recipients again.
    Unguarded {
        /// Recipients of the call.
        recipients: u64,
    },
    /// WeCom's duplicate check drops an identical send made within `window` of the first.
    Window {
        /// Recipients of the call.
        recipients: u64,
        /// The `duplicate_check_interval` the sends carry.
        window: Duration,
    },
}

impl RepeatGuard {
    /// Whether a retry after a maybe-delivered failure is a possible repeat at all.
    fn counts_repeats(self) -> bool {
        self != RepeatGuard::RequestId
    }

    /// Recipients a retry made `since_first` after the call's first attempt may reach twice.
    fn exposed(self, since_first: Duration) -> u64 {
        match self {
            RepeatGuard::RequestId => 0,
            RepeatGuard::Unguarded { recipients } => recipients,
            RepeatGuard::Window { recipients, window } if since_first >= window => recipients,
            RepeatGuard::Window { .. } => 0,
        }
    }
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
/// repeat, adds its recipients to the campaign's `replayed`, just before it is sent.
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
    let mut attempts = Attempts::default();
    let mut first_attempt: Option<Instant> = None;
    let mut repeats_maybe_delivered = false;
    loop {
        tokio::select! {
            _ = ctx.shutdown.cancelled() => return Outcome::Abandoned,
            _ = run.app.ready_for_call() => {}
        }
        let first = *first_attempt.get_or_insert_with(Instant::now);
        if repeats_maybe_delivered {
            add_replayed(ctx, run, guard.exposed(first.elapsed())).await;
        }
        let err = match attempt().await {
            Ok(v) => return Outcome::Done(v),
            Err(e) => e,
        };
        match attempts.after(&err, &ctx.policy, fastrand::f64()) {
            Verdict::GiveUp(result) => {
                tracing::warn!(campaign = run.id, error = %err, result = result.as_str(), "giving up on a call");
                return Outcome::GaveUp(result);
            }
            Verdict::RetryAfter { wait, app_wide } => {
                repeats_maybe_delivered = guard.counts_repeats() && err.maybe_delivered();
                let reason = if repeats_maybe_delivered { "maybe_delivered" } else { err.class().as_str() };
                ctx.metrics.retries_total.with_label_values(&[run.app.name.as_str(), reason]).inc();
                tracing::debug!(campaign = run.id, error = %err, ?wait, "retrying");
                if app_wide {
                    run.app.pause_for(wait);
                    continue;
                }
                tokio::select! {
                    _ = ctx.shutdown.cancelled() => return Outcome::Abandoned,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
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

/// Waits for `n` messages' worth of the campaign's speed bucket. Returns false when the wait
/// was cut short: by shutdown, or by a pause or cancel before the chunk's first call
/// (`first`), so the chunk stays pending; once part of a chunk is sent, the rest follows.
pub(super) async fn pace(ctx: &Context, run: &CampaignRun, n: usize, first: bool) -> bool {
    if first && run.stop.is_cancelled() {
        return false;
    }
    let Some(limiter) = &run.speed else { return true };
    let Some(n) = NonZeroU32::new(n as u32) else { return true };
    let started = Instant::now();
    let stopped = async {
        if first {
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
) -> Option<Counts> {
    let taskid = run.list_taskid.get()?;
    let ids: Vec<String> = (0..chunk.len()).map(|i| chunk.cid(i).to_string()).collect();
    let mut counts = Counts::default();
    let mut marked = false;
    for (i, part) in ids.chunks(run.part_size).enumerate() {
        if !pace(ctx, run, part.len(), i == 0).await {
            return None;
        }
        if !mark_inflight(ctx, run, seq, &mut marked).await {
            return None;
        }
        let push = list_cid_push(taskid, part);
        // `/push/list/cid` takes no request_id: nothing upstream recognises a repeat.
        let guard = RepeatGuard::Unguarded { recipients: part.len() as u64 };
        match call_guarded(ctx, run, guard, || client.push_list_cid(&push)).await {
            Outcome::Done(outcome) => tally(&mut counts, part.iter().map(String::as_str), &outcome),
            Outcome::GaveUp(r) => counts.add(r, part.len() as u64),
            Outcome::Abandoned => return None,
        }
    }
    Some(counts)
}

/// Sends a batch_single chunk, one personal copy per recipient; `None` when abandoned.
pub(super) async fn send_batch(
    ctx: &Context,
    run: &CampaignRun,
    client: &GetuiClient,
    seq: u64,
    chunk: &Chunk,
) -> Option<Counts> {
    let mut counts = Counts::default();
    let mut messages = Vec::with_capacity(chunk.len());
    for i in 0..chunk.len() {
        let vars = chunk.vars_of(i);
        let lookup = |k: &str| vars.iter().find(|(name, _)| name == k).map(|(_, v)| v.clone());
        let msg = run.getui.message(&lookup);
        // A rendered copy can outgrow a limit its template met: that recipient alone fails.
        if !msg.fits() {
            counts.add(ResultName::ParamInvalid, 1);
            continue;
        }
        let Ok(request_id) = RequestId::derive(&run.request_key, seq, i as u8) else {
            counts.add(ResultName::Failed, 1);
            continue;
        };
        let (rid, cid) = (request_id.into_string().into(), chunk.cid(i).to_string().into());
        messages.push(run.getui.single(rid, cid, msg));
    }
    // Each part takes its messages out of the list, so none is copied.
    let mut rest = messages.into_iter().peekable();
    let mut first = true;
    while rest.peek().is_some() {
        let part: Vec<_> = rest.by_ref().take(run.part_size).collect();
        let part_len = part.len();
        if !pace(ctx, run, part_len, std::mem::take(&mut first)).await {
            return None;
        }
        let batch = batch(part);
        // Every message carries its request_id and Getui drops a repeat of one, so a retry
        // after a lost answer delivers nothing twice and needs no counting.
        match call(ctx, run, || client.push_single_batch_cid(&batch)).await {
            Outcome::Done(outcome) => {
                // One result per message, in the order the messages were added.
                for r in outcome.in_order(&batch) {
                    counts.add(result_of(r.status), 1);
                }
            }
            Outcome::GaveUp(r) => counts.add(r, part_len as u64),
            Outcome::Abandoned => return None,
        }
    }
    Some(counts)
}

/// Counts each recipient by the status the answer gave it; one the answer left out was not a
/// valid target.
fn tally<'a>(counts: &mut Counts, cids: impl Iterator<Item = &'a str>, outcome: &PushOutcome) {
    let single_task = (outcome.tasks.len() == 1).then(|| outcome.tasks.values().next()).flatten();
    for cid in cids {
        let status = match single_task {
            Some(m) => m.get(cid).map(|s| CidStatus::parse(s)),
            None => outcome.status_of(cid),
        };
        counts.add(result_of(status), 1);
    }
}

fn result_of(status: Option<CidStatus>) -> ResultName {
    match status {
        Some(CidStatus::SuccessedOnline) => ResultName::SuccessedOnline,
        Some(CidStatus::SuccessedOffline) => ResultName::SuccessedOffline,
        Some(CidStatus::SuccessedIgnore) => ResultName::SuccessedIgnore,
        Some(CidStatus::Other(_)) => ResultName::SuccessedUnknown,
        None => ResultName::TargetInvalid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn repeats_are_exposed_only_where_nothing_upstream_drops_them() {
        let window = Duration::from_secs(1800);
        assert!(!RepeatGuard::RequestId.counts_repeats());
        assert_eq!(RepeatGuard::RequestId.exposed(Duration::from_secs(5)), 0);
        let unguarded = RepeatGuard::Unguarded { recipients: 1000 };
        assert!(unguarded.counts_repeats());
        assert_eq!(unguarded.exposed(Duration::ZERO), 1000);
        let checked = RepeatGuard::Window { recipients: 1000, window };
        assert!(checked.counts_repeats());
        assert_eq!(checked.exposed(Duration::from_secs(10)), 0);
        assert_eq!(checked.exposed(window), 1000, "past the window WeCom delivers the repeat");
    }

    #[test]
    fn tally_counts_each_status_and_missing_ids() {
        let mut m = BTreeMap::new();
        m.insert("a".to_owned(), "successed_online".to_owned());
        m.insert("b".to_owned(), "successed_ignore".to_owned());
        m.insert("c".to_owned(), "something_new".to_owned());
        let outcome = PushOutcome { tasks: BTreeMap::from([("t".to_owned(), m)]) };
        let mut counts = Counts::default();
        tally(&mut counts, ["a", "b", "c", "d"].into_iter(), &outcome);
        assert_eq!(counts.get(ResultName::SuccessedOnline), 1);
        assert_eq!(counts.get(ResultName::SuccessedIgnore), 1);
        assert_eq!(counts.get(ResultName::SuccessedUnknown), 1);
        assert_eq!(counts.get(ResultName::TargetInvalid), 1);
    }
}
