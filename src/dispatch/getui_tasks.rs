//! The Getui tasks a campaign creates once: the list task every chunk of a list campaign is
//! sent through, and the single `/push/all` or `/push/tag` of an app campaign.

use super::send::{self, Outcome};
use super::{CampaignRun, Context, Upstream};
use crate::clock::now_ms;
use crate::domain::message::Rendered;
use crate::domain::RequestId;
use crate::store::Change;
use crate::upstream::getui::GetuiClient;
use crate::wire::getui::{AllAudience, Condition, ListMessage, Push, Settings, TagAudience};

/// Creates the campaign's list task once (a fixed request_id makes a repeat harmless).
pub(super) async fn ensure_list_task(ctx: &Context, run: &CampaignRun, client: &GetuiClient) -> bool {
    if run.list_taskid.get().is_some() {
        return true;
    }
    let Ok(rid) = RequestId::derive(&run.request_key, RequestId::MAX_CHUNK, 0) else {
        return false;
    };
    let rendered = run.render(&|_| None);
    let msg = ListMessage {
        request_id: Some(rid.as_str().into()),
        group_name: run.spec.settings.group.clone(),
        settings: run.wire_settings.clone(),
        push_message: rendered.push_message,
        push_channel: rendered.push_channel,
    };
    match send::call(ctx, run, || client.create_list_message(&msg)).await {
        Outcome::Done(taskid) => match ctx.store.change(run.id, Change::SetListTask(taskid.clone())).await {
            Ok(_) => run.list_taskid.set(taskid).is_ok() || run.list_taskid.get().is_some(),
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
    let s = &run.spec.settings;
    let settings = Settings {
        ttl: s.ttl_ms,
        speed: s.speed,
        schedule_time: s.schedule_at_ms.filter(|_| s.upstream_schedule),
        ..Settings::default()
    };
    let Rendered { push_message: message, push_channel } = run.render(&|_| None);
    let conditions = run.spec.audience.as_ref().map(|a| a.conditions.clone()).unwrap_or_default();
    let outcome = if conditions.is_empty() {
        let push = Push {
            request_id: rid.as_str().into(),
            group_name: run.spec.settings.group.clone(),
            audience: AllAudience,
            settings: Some(settings),
            push_message: message,
            push_channel,
        };
        send::call(ctx, run, || client.push_all(&push)).await
    } else {
        let tag = conditions.into_iter().map(|c| Condition { key: c.key, values: c.values, opt_type: c.opt }).collect();
        let push = Push {
            request_id: rid.as_str().into(),
            group_name: run.spec.settings.group.clone(),
            audience: TagAudience { tag },
            settings: Some(settings),
            push_message: message,
            push_channel,
        };
        send::call(ctx, run, || client.push_tag(&push)).await
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
