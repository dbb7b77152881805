//! Sending one chunk of WeCom member ids: suppressed members are skipped, the rest go out in
//! `message/send` calls of at most 1000, and each member is counted `sent` or `invaliduser`.

use std::time::Instant;

use super::decide::{answers, parts};
use super::send::{call_guarded, mark_inflight, pace, Outcome, RepeatGuard};
use super::{CampaignRun, Context};
use crate::domain::{Counts, ResultName};
use crate::render;
use crate::store::Chunk;
use crate::upstream::wecom::error::GETTOKEN;
use crate::upstream::wecom::{SendOutcome, WecomClient, WecomError};
use crate::upstream::{CodeLabel, ProviderError};

const SEND_ENDPOINT: &str = "POST /cgi-bin/message/send";

/// Sends a chunk to its members; `None` when abandoned (shutdown, pause) or the store failed,
/// so the chunk stays pending.
pub(super) async fn send_users(
    ctx: &Context,
    run: &CampaignRun,
    client: &WecomClient,
    seq: u64,
    chunk: &Chunk,
) -> Option<Counts> {
    let mut counts = Counts::default();
    let users = unsuppressed(ctx, run, chunk, &mut counts).await?;
    let Some(message) = run.spec.message.wecom.as_ref().map(render::wecom::app_message) else {
        counts.add(ResultName::ParamInvalid, users.len() as u64);
        return Some(counts);
    };
    let mut marked = false;
    let part_size = run.pacing(ctx.members.live()).part_size;
    for (i, part) in parts::cut(&users, parts::wecom_part_size(part_size)) {
        if !pace(ctx, run, part.len(), i).await {
            return None;
        }
        if !mark_inflight(ctx, run, seq, &mut marked).await {
            return None;
        }
        let attempt = || observed(ctx, run, client.send(&message, part));
        let guard = RepeatGuard::wecom(part.len(), client.duplicate_check_window());
        match call_guarded(ctx, run, guard, attempt).await {
            Outcome::Done(outcome) => answers::tally_wecom(&mut counts, part, &outcome.invalid_users),
            Outcome::GaveUp(r) => counts.add(r, part.len() as u64),
            Outcome::Abandoned => return None,
        }
    }
    Some(counts)
}

/// The chunk's members minus those on the app's suppression list (counted `suppressed`).
/// One store call for the whole chunk.
async fn unsuppressed<'c>(
    ctx: &Context,
    run: &CampaignRun,
    chunk: &'c Chunk,
    counts: &mut Counts,
) -> Option<Vec<&'c str>> {
    let suppressed = match ctx.store.suppressed_among(&run.app.name, chunk.users.clone()).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(campaign = run.id, error = %e, "cannot read the suppression list");
            return None;
        }
    };
    Some(answers::unsuppressed(counts, &chunk.users, suppressed))
}

/// Records the exchange in the upstream metrics, whatever its outcome.
async fn observed(
    ctx: &Context,
    run: &CampaignRun,
    send: impl std::future::Future<Output = Result<SendOutcome, WecomError>>,
) -> Result<SendOutcome, WecomError> {
    let started = Instant::now();
    let result = send.await;
    let code = result.as_ref().map_or_else(ProviderError::code_label, |_| CodeLabel::SUCCESS);
    // A failed token fetch ends the attempt before any `message/send`; the client already
    // reported it under `gettoken`, so it is not counted again as a send.
    if result.as_ref().err().map(ProviderError::endpoint) != Some(GETTOKEN) {
        ctx.metrics.observe_upstream(&run.app.name, SEND_ENDPOINT, code, started.elapsed());
    }
    result
}
