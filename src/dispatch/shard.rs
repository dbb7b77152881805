//! A shard: takes chunks off the runners' queue, leases each (so that of several daemons
//! sharing the store only one sends it), settles a chunk some earlier holder left in flight by
//! the campaign's replay policy, sends it through its channel's module under a renewed lease,
//! and acknowledges the results (metrics, then the store; the store's acknowledgement also
//! frees the lease).

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use tokio::sync::{mpsc, Mutex};

use super::decide::replay::{self, InflightChunk};
use super::send::Sent;
use super::{send, texting, wecom, CampaignRun, Context, Upstream, Work};
use crate::domain::{Counts, Mode};
use crate::store::{Ack, Change, Chunk, LeaseOutcome};

/// One shard: takes chunks off the shared queue, sends each, acknowledges what it got.
pub(super) async fn shard_loop(ctx: Arc<Context>, rx: Arc<Mutex<mpsc::Receiver<Work>>>) {
    loop {
        let work = {
            let mut rx = rx.lock().await;
            tokio::select! {
                _ = ctx.shutdown.cancelled() => None,
                w = rx.recv() => w,
            }
        };
        let Some(work) = work else { return };
        if work.run.stop.is_cancelled() {
            continue; // paused or cancelled before it was sent: released
        }
        if !take_lease(&ctx, &work).await {
            continue; // another daemon sends it; it stays pending until acknowledged
        }
        if !settle_replay(&ctx, &work).await {
            continue;
        }
        ctx.metrics.chunks_inflight.inc();
        send_leased(&ctx, &work).await;
        ctx.metrics.chunks_inflight.dec();
    }
}

/// Sends a leased chunk and acknowledges it; a chunk not acknowledged (abandoned at a stop,
/// its texting state not kept) gives its lease back, so it need not wait out the lease to be
/// sent again (its in-flight mark, if any, then settles it as a replay).
async fn send_leased(ctx: &Context, work: &Work) {
    let (run, seq) = (&work.run, work.seq);
    let started = std::time::Instant::now();
    let sent = under_lease(ctx, run, seq, send_chunk(ctx, run, seq, &work.chunk)).await;
    if let Some(sent) = sent {
        // The texting state is kept before the ack: a chunk acknowledged without it would
        // never be texted, while one sent again finds it kept and leaves it as it is.
        let staged = match sent.pushed {
            Some(pushed) => texting::stage(ctx, run, seq, pushed).await,
            None => true,
        };
        if staged {
            acknowledge(ctx, run, seq, sent.counts).await;
            ctx.metrics.chunk_duration_seconds.observe(started.elapsed().as_secs_f64());
            return;
        }
    }
    release(ctx, run, seq).await;
}

/// Takes the chunk's lease for this daemon; false when another live daemon holds it, when it
/// was acknowledged since the runner read it (another daemon finished it), or when the store
/// cannot say (a later pass tries again).
async fn take_lease(ctx: &Context, work: &Work) -> bool {
    let (id, seq) = (work.run.id, work.seq);
    match ctx.store.lease_chunk(id, seq, &ctx.member, ctx.lease_ms()).await {
        Ok(LeaseOutcome::Taken) => {
            tracing::trace!(campaign = id, seq, member = %ctx.member, "leased a chunk");
            true
        }
        Ok(LeaseOutcome::TakenOver) => {
            tracing::warn!(
                campaign = id,
                seq,
                "taking over a chunk whose holder's lease expired (it may have died mid-send)"
            );
            true
        }
        Ok(LeaseOutcome::Held | LeaseOutcome::Done) => false,
        Err(e) => {
            tracing::warn!(campaign = id, seq, error = %e, "cannot lease a chunk; trying again later");
            false
        }
    }
}

/// A chunk marked in flight was maybe sent by an earlier holder that never acknowledged it: a
/// daemon that died (its lease taken over), this daemon before a restart, or an attempt whose
/// acknowledgement failed. The campaign's replay policy decides, as [`replay::settle`] says:
/// at-most-once acknowledges it as skipped, at-least-once counts its recipients in `replayed`
/// before it goes again. True when the chunk is to be sent.
async fn settle_replay(ctx: &Context, work: &Work) -> bool {
    let (run, seq) = (&work.run, work.seq);
    match ctx.store.chunk_inflight(run.id, seq).await {
        Ok(false) => return true,
        Ok(true) => {}
        Err(e) => {
            tracing::error!(campaign = run.id, seq, error = %e, "cannot read a chunk's in-flight mark");
            release(ctx, run, seq).await;
            return false;
        }
    }
    let chunk = InflightChunk { seq, recipients: work.chunk.len() as u64 };
    let plan = replay::settle(&[chunk], run.spec.settings.replay);
    if let Some((seq, counts)) = plan.skipped.into_iter().next() {
        tracing::warn!(campaign = run.id, seq, "skipping a chunk in flight at its last holder's stop (at-most-once)");
        acknowledge(ctx, run, seq, counts).await;
        return false;
    }
    let replayed = plan.replayed;
    tracing::warn!(campaign = run.id, seq, replayed, "re-sending a chunk in flight at its last holder's stop");
    // Counted before it goes, so the report never shows fewer replays than were sent.
    if let Err(e) = ctx.store.change(run.id, Change::AddReplayed(replayed)).await {
        tracing::error!(campaign = run.id, error = %e, "cannot record replayed recipients; not re-sending yet");
        release(ctx, run, seq).await;
        return false;
    }
    true
}

/// Runs `send` while renewing the chunk's lease every third of its length, so a send slower
/// than the lease (a low `speed`, upstream retries) keeps its chunk.
async fn under_lease<T>(ctx: &Context, run: &CampaignRun, seq: u64, send: impl Future<Output = T>) -> T {
    tokio::select! {
        out = send => out,
        never = keep_lease(ctx, run, seq) => match never {},
    }
}

/// Renews the lease until dropped.
async fn keep_lease(ctx: &Context, run: &CampaignRun, seq: u64) -> Infallible {
    loop {
        tokio::time::sleep(ctx.lease / 3).await;
        match ctx.store.lease_chunk(run.id, seq, &ctx.member, ctx.lease_ms()).await {
            Ok(LeaseOutcome::Taken | LeaseOutcome::TakenOver) => {}
            Ok(LeaseOutcome::Held | LeaseOutcome::Done) => {
                tracing::warn!(
                    campaign = run.id,
                    seq,
                    "lost the lease of a chunk being sent: another daemon may send it too (renewals came too late)"
                );
            }
            Err(e) => tracing::warn!(campaign = run.id, seq, error = %e, "cannot renew a chunk's lease"),
        }
    }
}

/// Gives the chunk's lease back (an error only delays the chunk until the lease expires).
async fn release(ctx: &Context, run: &CampaignRun, seq: u64) {
    if let Err(e) = ctx.store.release_chunk(run.id, seq, &ctx.member).await {
        tracing::warn!(campaign = run.id, seq, error = %e, "cannot release a chunk's lease; it returns when it expires");
    }
}

/// Counts a settled chunk's results in the metrics and records them in the store.
pub(super) async fn acknowledge(ctx: &Context, run: &CampaignRun, seq: u64, counts: Counts) {
    for (result, n) in &counts.0 {
        ctx.metrics
            .recipients_total
            .with_label_values(&[run.app.name.as_str(), run.spec.channel.as_str(), result.as_str()])
            .inc_by(*n);
    }
    if let Err(e) = ctx.store.ack(Ack { campaign: run.id, seq, counts }).await {
        tracing::error!(campaign = run.id, seq, error = %e, "cannot record a sent chunk; it will be sent again");
    }
}

/// Sends a chunk by the campaign's channel and mode; `None` when abandoned at shutdown. The
/// channel's module sends, and `send` holds what the channels share, so neither imports the
/// other.
async fn send_chunk(ctx: &Context, run: &CampaignRun, seq: u64, chunk: &Chunk) -> Option<Sent> {
    match (&run.app.upstream, run.spec.mode) {
        (Upstream::Wecom(client), _) => wecom::send_users(ctx, run, client, seq, chunk).await.map(Sent::counts),
        (Upstream::Getui(client), Mode::BatchSingle) => send::send_batch(ctx, run, client, seq, chunk).await,
        (Upstream::Getui(client), _) => send::send_list(ctx, run, client, seq, chunk).await,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::fixture;
    use super::*;
    use crate::dispatch::RetryPolicy;
    use crate::domain::{Action, Replay, ResultName};
    use crate::store::UploadCommit;

    /// A running campaign with one committed chunk of three recipients, marked in flight (a
    /// holder died mid-send), under `replay`.
    async fn marked(replay: Replay) -> (tempfile::TempDir, Context, Work) {
        let (dir, ctx, mut run) = fixture(RetryPolicy::default()).await;
        run.spec.settings.replay = replay;
        let chunk = Chunk { cids: vec![7; 48], ..Chunk::default() };
        ctx.store.stage_chunk(run.id, 0, chunk.clone()).await.expect("a staged chunk");
        let commit = UploadCommit { first_seq: 0, chunks: 1, recipients: 3, duplicates: 0, rejected: 0 };
        ctx.store.commit_upload(run.id, commit).await.expect("a committed upload");
        ctx.store.change(run.id, Change::Act(Action::Start, 2)).await.expect("started");
        ctx.store.mark_inflight(run.id, 0).await.expect("a mark");
        let work = Work::hand_out(&Arc::new(run), 0, chunk, None).expect("handed out");
        (dir, ctx, work)
    }

    #[tokio::test]
    async fn at_least_once_counts_a_chunk_left_in_flight_replayed_before_sending_it_again() {
        let (_dir, ctx, work) = marked(Replay::AtLeastOnce).await;
        assert!(settle_replay(&ctx, &work).await, "to be sent again");
        let rec = ctx.store.get(work.run.id).await.unwrap().unwrap();
        assert_eq!(rec.replayed, 3);
        assert_eq!(ctx.store.pending_chunks(work.run.id, 0, 9).await.unwrap().len(), 1, "still pending");
    }

    #[tokio::test]
    async fn at_most_once_acknowledges_a_chunk_left_in_flight_as_skipped() {
        let (_dir, ctx, work) = marked(Replay::AtMostOnce).await;
        assert!(!settle_replay(&ctx, &work).await, "not sent");
        ctx.store.flush().await.unwrap();
        let p = ctx.store.progress(work.run.id).await.unwrap();
        assert_eq!(p.counts.get(ResultName::SkippedAfterCrash), 3);
        assert_eq!(ctx.store.get(work.run.id).await.unwrap().unwrap().replayed, 0);
    }

    #[tokio::test]
    async fn an_unmarked_chunk_is_sent_with_nothing_counted() {
        let (_dir, ctx, run) = fixture(RetryPolicy::default()).await;
        let work = Work::hand_out(&Arc::new(run), 0, Chunk::default(), None).expect("handed out");
        assert!(settle_replay(&ctx, &work).await);
    }
}
