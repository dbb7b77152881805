//! A shard: leases chunks from the runners' queue, sends each through its channel's module,
//! and acknowledges the results (metrics, then the store).

use std::sync::Arc;

use tokio::sync::{mpsc, Mutex};

use super::send::Sent;
use super::{send, texting, wecom, CampaignRun, Context, Upstream, Work};
use crate::domain::{Counts, Mode};
use crate::store::{Ack, Chunk};

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
        ctx.metrics.chunks_inflight.inc();
        let started = std::time::Instant::now();
        if let Some(sent) = send_chunk(&ctx, &work.run, work.seq, &work.chunk).await {
            // The texting state is kept before the ack: a chunk acknowledged without it would
            // never be texted, while one sent again finds it kept and leaves it as it is.
            if let Some(pushed) = sent.pushed {
                if !texting::stage(&ctx, &work.run, work.seq, pushed).await {
                    ctx.metrics.chunks_inflight.dec();
                    continue;
                }
            }
            acknowledge(&ctx, &work.run, work.seq, sent.counts).await;
            ctx.metrics.chunk_duration_seconds.observe(started.elapsed().as_secs_f64());
        }
        ctx.metrics.chunks_inflight.dec();
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
