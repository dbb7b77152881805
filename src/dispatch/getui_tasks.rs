//! The Getui tasks a campaign creates once: the list task every chunk of a list campaign is
//! sent through, and the single `/push/all` or `/push/tag` of an app campaign.

use super::send::{self, Outcome};
use super::{CampaignRun, Context, Upstream};
use crate::clock::now_ms;
use crate::domain::RequestId;
use crate::render::getui::AppPush;
use crate::store::Change;
use crate::upstream::getui::GetuiClient;

/// Creates the campaign's list task once (a fixed request_id makes a repeat harmless).
pub(super) async fn ensure_list_task(ctx: &Context, run: &CampaignRun, client: &GetuiClient) -> bool {
    if run.list_taskid.get().is_some() {
        return true;
    }
    let Ok(rid) = RequestId::derive(&run.request_key, RequestId::MAX_CHUNK, 0) else {
        return false;
    };
    let msg = run.getui.list_message(rid.as_str());
    match send::call(ctx, run, || client.create_list_message(&msg)).await {
        // Several daemons may start the campaign together: the store keeps the first task
        // stored, and every daemon sends through that one.
        Outcome::Done(taskid) => match ctx.store.change(run.id, Change::SetListTask(taskid.clone())).await {
            Ok(rec) => {
                let stored = rec.list_taskid.unwrap_or(taskid);
                run.list_taskid.set(stored).is_ok() || run.list_taskid.get().is_some()
            }
            Err(e) => {
                tracing::error!(campaign = run.id, error = %e, "cannot store the list task");
                false
            }
        },
        Outcome::GaveUp(r) => {
            fail(ctx, run, format!("the upstream refused to create the list task ({})", r.as_str())).await;
            false
        }
        Outcome::Abandoned => false,
    }
}

/// App campaigns: one `/push/all` or `/push/tag` call; the upstream fans out.
pub(super) async fn run_app_push(ctx: &Context, run: &CampaignRun) {
    let Ok(rid) = RequestId::derive(&run.request_key, RequestId::MAX_CHUNK, 1) else {
        return;
    };
    let Upstream::Getui(client) = &run.app.upstream else {
        return fail(ctx, run, "app-wide pushes need a Getui app".into()).await;
    };
    if let Some(taskid) = &run.app_taskid {
        // Pushed earlier with schedule_time: Getui fired it; nothing to send again.
        if let Err(e) = ctx.store.change(run.id, Change::SetAppTask(taskid.clone(), now_ms())).await {
            tracing::error!(campaign = run.id, error = %e, "cannot complete an upstream-held schedule");
        }
        return;
    }
    let outcome = match run.getui.app_push(rid.as_str()) {
        AppPush::All(push) => send::call(ctx, run, || client.push_all(&push)).await,
        AppPush::Tag(push) => send::call(ctx, run, || client.push_tag(&push)).await,
    };
    match outcome {
        Outcome::Done(taskid) => {
            if let Err(e) = ctx.store.change(run.id, Change::SetAppTask(taskid, now_ms())).await {
                tracing::error!(campaign = run.id, error = %e, "cannot record the app task");
            }
        }
        Outcome::GaveUp(r) => fail(ctx, run, format!("the upstream refused the app push ({})", r.as_str())).await,
        Outcome::Abandoned => {}
    }
}

/// Marks the campaign failed for `why`.
async fn fail(ctx: &Context, run: &CampaignRun, why: String) {
    tracing::error!(campaign = run.id, reason = why, "campaign failed");
    let _ = ctx.store.change(run.id, Change::Fail(why, now_ms())).await;
}
