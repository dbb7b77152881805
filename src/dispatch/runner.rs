//! One campaign's runner: it prepares the campaign by mode (the list task, or the one app
//! push), settles the chunks a crash left in flight, then feeds the pending chunks to the
//! shards in seq order and waits until every chunk it handed out is settled.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::decide::replay::{self, InflightChunk};
use super::{getui_tasks, shard, CampaignRun, Context, Upstream, Work};
use crate::domain::Mode;
use crate::store::Change;

/// Drives one campaign: prepares it by mode, then feeds its chunks to the shards.
pub(super) async fn run_campaign(
    ctx: Arc<Context>,
    run: Arc<CampaignRun>,
    tx: mpsc::Sender<Work>,
    first_in_process: bool,
) {
    match run.spec.mode {
        Mode::App => return getui_tasks::run_app_push(&ctx, &run).await,
        Mode::List => {
            if let Upstream::Getui(client) = &run.app.upstream {
                if !getui_tasks::ensure_list_task(&ctx, &run, client).await {
                    return;
                }
            }
            if first_in_process {
                settle_inflight(&ctx, &run).await;
            }
        }
        Mode::BatchSingle | Mode::Auto => {}
    }
    feed(&ctx, &run, &tx).await;
    run.wait_drained().await;
}

/// Hands every pending chunk to the shards, in order, until none is left or the run stops.
async fn feed(ctx: &Context, run: &Arc<CampaignRun>, tx: &mpsc::Sender<Work>) {
    let mut cursor = 0;
    loop {
        if run.stop.is_cancelled() {
            return;
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
            run.outstanding.fetch_add(1, Ordering::AcqRel);
            let work = Work { run: run.clone(), seq, chunk };
            tokio::select! {
                _ = run.stop.cancelled() => return, // `work` is dropped: released
                sent = tx.send(work) => if sent.is_err() { return },
            }
        }
    }
}

/// List chunks that were in flight when the daemon last died: send again (at-least-once,
/// counted as replayed) or record them as skipped (at-most-once), as [`replay::settle`] says.
async fn settle_inflight(ctx: &Context, run: &CampaignRun) {
    let seqs = match ctx.store.inflight_chunks(run.id).await {
        Ok(s) if !s.is_empty() => s,
        _ => return,
    };
    let mut inflight = Vec::with_capacity(seqs.len());
    for seq in seqs {
        let Ok(found) = ctx.store.pending_chunks(run.id, seq, 1).await else {
            continue;
        };
        // Acknowledged after all (the ack landed, the in-flight mark did not clear): settled.
        let Some((_, chunk)) = found.into_iter().find(|(s, _)| *s == seq) else {
            continue;
        };
        inflight.push(InflightChunk { seq, recipients: chunk.len() as u64 });
    }
    let plan = replay::settle(&inflight, run.spec.settings.replay);
    for (seq, counts) in plan.skipped {
        shard::acknowledge(ctx, run, seq, counts).await;
    }
    if plan.replayed > 0 {
        let replayed = plan.replayed;
        tracing::warn!(campaign = run.id, replayed, "re-sending list chunks that were in flight at the last stop");
        if let Err(e) = ctx.store.change(run.id, Change::AddReplayed(replayed)).await {
            tracing::error!(campaign = run.id, error = %e, "cannot record replayed recipients");
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
