//! One campaign's runner: it prepares the campaign by mode (the list task, or the one app
//! push), then feeds the pending chunks to the shards in seq order, pass after pass, until
//! none is pending or the run stops.
//!
//! One pass is not enough when daemons share the store: a chunk another daemon holds is
//! skipped by the shard (its lease is held) and stays pending; it is acknowledged by its
//! holder, or, if the holder died, its lease expires and a later pass sends it. A pass that
//! has run for a lease time starts over from the first pending chunk, so such a chunk goes
//! out about a lease time after its holder died, not only once the rest of a long campaign
//! was sent. Crash replay of list chunks left in flight is decided per chunk when its lease
//! is taken (`shard`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::{getui_tasks, CampaignRun, Context, Upstream, Work};
use crate::domain::Mode;

/// Pause between passes that left chunks pending (held by other daemons): short next to a
/// lease, so a chunk whose holder died is picked up soon after its lease expires.
const PASS_PAUSE: Duration = Duration::from_millis(500);

/// Drives one campaign: prepares it by mode, then feeds its chunks to the shards.
pub(super) async fn run_campaign(ctx: Arc<Context>, run: Arc<CampaignRun>, tx: mpsc::Sender<Work>) {
    match run.spec.mode {
        Mode::App => return getui_tasks::run_app_push(&ctx, &run).await,
        Mode::List => {
            if let Upstream::Getui(client) = &run.app.upstream {
                if !getui_tasks::ensure_list_task(&ctx, &run, client).await {
                    return;
                }
            }
        }
        Mode::BatchSingle | Mode::Auto => {}
    }
    loop {
        feed(&ctx, &run, &tx).await;
        run.wait_drained().await;
        if run.stop.is_cancelled() || !still_pending(&ctx, &run).await {
            return;
        }
        tokio::select! {
            _ = run.stop.cancelled() => return,
            _ = tokio::time::sleep(PASS_PAUSE) => {}
        }
    }
}

/// Whether any chunk of the campaign is still unacknowledged (a store error counts as "no":
/// the scheduler starts the runner again at its next pass).
async fn still_pending(ctx: &Context, run: &CampaignRun) -> bool {
    match ctx.store.pending_chunks(run.id, 0, 1).await {
        Ok(b) => !b.is_empty(),
        Err(e) => {
            tracing::error!(campaign = run.id, error = %e, "cannot read chunks");
            false
        }
    }
}

/// One pass: hands every pending chunk not already handed out to the shards, in order, until
/// none is left or the run stops.
async fn feed(ctx: &Context, run: &Arc<CampaignRun>, tx: &mpsc::Sender<Work>) {
    let mut cursor = 0;
    let mut from_start = Instant::now();
    loop {
        if run.stop.is_cancelled() {
            return;
        }
        if from_start.elapsed() >= ctx.lease {
            // Chunks this daemon handed out are skipped by `hand_out`; those held by others are
            // skipped by the shard, unless their lease ran out.
            cursor = 0;
            from_start = Instant::now();
        }
        let batch = match ctx.store.pending_chunks(run.id, cursor, 16).await {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(campaign = run.id, error = %e, "cannot read chunks");
                return;
            }
        };
        if batch.is_empty() {
            return;
        }
        for (seq, chunk) in batch {
            cursor = seq + 1;
            // A paced campaign waits here, not in a shard: the shards stay free for the others.
            let slot = tokio::select! {
                _ = run.stop.cancelled() => return,
                slot = run.admit() => match slot {
                    Some(slot) => slot,
                    None => return,
                },
            };
            let Some(work) = Work::hand_out(run, seq, chunk, slot) else { continue };
            tokio::select! {
                _ = run.stop.cancelled() => return, // `work` is dropped: released
                sent = tx.send(work) => if sent.is_err() { return },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::fixture;
    use super::*;
    use crate::dispatch::RetryPolicy;
    use crate::domain::Counts;
    use crate::store::{Ack, Chunk, UploadCommit};

    /// A run whose campaign holds `n` committed chunks of one recipient each.
    async fn with_chunks(n: u64) -> (tempfile::TempDir, Context, Arc<CampaignRun>) {
        let (dir, ctx, run) = fixture(RetryPolicy::default()).await;
        for seq in 0..n {
            let chunk = Chunk { cids: vec![seq as u8; 16], ..Chunk::default() };
            ctx.store.stage_chunk(run.id, seq, chunk).await.expect("a staged chunk");
        }
        let commit = UploadCommit { first_seq: 0, chunks: n, recipients: n, duplicates: 0, rejected: 0 };
        ctx.store.commit_upload(run.id, commit).await.expect("a committed upload");
        (dir, ctx, Arc::new(run))
    }

    #[tokio::test]
    async fn the_feed_hands_out_pending_chunks_in_seq_order_across_pages() {
        let (_dir, ctx, run) = with_chunks(40).await;
        ctx.store.ack(Ack { campaign: run.id, seq: 17, counts: Counts::default() }).await.expect("an ack");
        ctx.store.flush().await.expect("a flush");
        let (tx, mut rx) = mpsc::channel(64);
        feed(&ctx, &run, &tx).await;
        drop(tx);
        let mut seqs = Vec::new();
        while let Some(work) = rx.recv().await {
            seqs.push(work.seq);
        }
        let expected: Vec<u64> = (0..40).filter(|s| *s != 17).collect();
        assert_eq!(seqs, expected, "in order, the acknowledged one left out");
        run.wait_drained().await;
    }

    #[tokio::test]
    async fn a_paced_campaign_has_two_chunks_out_at_a_time_so_it_never_holds_more_shards() {
        let (dir, ctx, run) = with_chunks(6).await;
        let mut rec = ctx.store.get(run.id).await.unwrap().unwrap();
        rec.spec.settings.speed = Some(50);
        let paced = Arc::new(CampaignRun::new(&rec, ctx.store.identity(), run.app.clone(), &ctx.shutdown));
        let (tx, mut rx) = mpsc::channel(64);
        let feeding = tokio::spawn({
            let (ctx, paced) = (Arc::new(ctx), paced.clone());
            async move { feed(&ctx, &paced, &tx).await }
        });
        let first = rx.recv().await.expect("a first chunk");
        let second = rx.recv().await.expect("a second chunk");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert!(rx.try_recv().is_err(), "a third chunk waits while two are out, in the feed and not in a shard");
        drop(first);
        let third = tokio::time::timeout(std::time::Duration::from_secs(5), rx.recv()).await.expect("in time");
        assert_eq!(third.map(|w| w.seq), Some(2), "a settled chunk frees its slot for the next");
        assert_eq!(second.seq, 1);
        paced.stop.cancel();
        feeding.await.expect("the feed ends at the stop");
        drop(dir);
    }

    #[tokio::test]
    async fn a_pass_skips_the_chunks_this_process_still_holds() {
        let (_dir, ctx, run) = with_chunks(5).await;
        let (tx, mut rx) = mpsc::channel(64);
        let held = Work::hand_out(&run, 2, Chunk::default(), None).expect("chunk 2 handed out");
        feed(&ctx, &run, &tx).await;
        let mut seqs = Vec::new();
        while let Ok(work) = rx.try_recv() {
            seqs.push(work.seq);
        }
        assert_eq!(seqs, [0, 1, 3, 4], "chunk 2 is with a shard already");
        drop(held);
        feed(&ctx, &run, &tx).await;
        assert_eq!(rx.try_recv().map(|w| w.seq).ok(), Some(0), "settled chunks are handed out again");
    }

    #[tokio::test]
    async fn a_stop_ends_the_feed_and_every_chunk_handed_out_is_released() {
        let (_dir, ctx, run) = with_chunks(10).await;
        let (tx, mut rx) = mpsc::channel::<Work>(2);
        let consume = async {
            let mut seqs = Vec::new();
            for _ in 0..3 {
                seqs.extend(rx.recv().await.map(|w| w.seq));
            }
            run.stop.cancel();
            seqs
        };
        let ((), seqs) = tokio::join!(feed(&ctx, &run, &tx), consume);
        assert_eq!(seqs, [0, 1, 2]);
        drop(rx); // the chunks still queued are released with the queue
        run.wait_drained().await;
    }
}
