//! The legacy task calls: `getScheduleTaskAction` and `delScheduleTaskAction` on a scheduled
//! app push, `stopTaskAction` on any task, `stop_sms` on a push's SMS fallback. They act on
//! the campaign the task's id names, as `/v1` state changes do.

use serde_json::{json, Value};

use super::{Cx, Refusal};
use crate::api::campaigns::{change_state, get, send_result};
use crate::clock::now_ms;
use crate::domain::campaign::parse_legacy_id;
use crate::domain::{Action, CampaignState};
use crate::store::{CampaignRecord, Change};
use crate::wire::getui_legacy::request::{StopTaskRequest, TaskRequest};

/// A scheduled task can no longer be deleted this close to its time (the seed's rule, as for
/// `DELETE /v1/campaigns/{id}`).
const DELETE_CUTOFF_MS: i64 = 60_000;

/// The campaign of a legacy id, if it is this app's and came from the legacy ingress.
async fn campaign_of(cx: &Cx<'_>, legacy_id: &str) -> Result<CampaignRecord, Refusal> {
    let missing = || Refusal::new("NullMsgCommon", format!("no task {legacy_id:?}"));
    let id = parse_legacy_id(legacy_id).ok_or_else(missing)?;
    let rec = get(cx.state, id).await.map_err(|_| missing())?;
    if rec.spec.app != cx.app.name || rec.spec.legacy.is_none() {
        return Err(missing());
    }
    Ok(rec)
}

/// `yyyyMMddHHmm` in Beijing time, as `pushTime` is written.
fn beijing_minutes(ms: i64) -> String {
    let format = time::macros::format_description!("[year][month][day][hour][minute]");
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map(|t| t.to_offset(time::macros::offset!(+8)))
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_default()
}

/// `getScheduleTaskAction`: the fields of Getui's scheduled-task query.
pub(super) async fn schedule(cx: &Cx<'_>, req: TaskRequest) -> Result<Value, Refusal> {
    cx.check_app_id(Some(&req.app_id))?;
    let rec = campaign_of(cx, &req.task_id).await?;
    let Some(at) = rec.spec.settings.schedule_at_ms else {
        return Err(Refusal::new("TaskNotScheduled", format!("task {} has no pushTime", req.task_id)));
    };
    // v2's query answers the transmission content; a notification shows its text instead.
    let m = &rec.spec.message;
    let content = m
        .transmission
        .clone()
        .or_else(|| m.notification.as_ref().map(|n| n.body.clone()))
        .unwrap_or_else(|| serde_json::to_string(m).unwrap_or_default());
    Ok(json!({
        "result": "ok",
        "taskId": req.task_id,
        "pushContent": content,
        "pushTime": beijing_minutes(at),
        "creatTime": rec.created_ms,
        "sendResult": send_result(&rec),
    }))
}

/// `delScheduleTaskAction`: cancels a scheduled task unless it fires within a minute.
pub(super) async fn delete_schedule(cx: &Cx<'_>, req: TaskRequest) -> Result<Value, Refusal> {
    cx.check_app_id(Some(&req.app_id))?;
    let rec = campaign_of(cx, &req.task_id).await?;
    let Some(at) = rec.spec.settings.schedule_at_ms else {
        return Err(Refusal::new("TaskNotScheduled", format!("task {} has no pushTime", req.task_id)));
    };
    if !matches!(rec.state, CampaignState::Draft | CampaignState::Scheduled) {
        return Err(Refusal::new(
            "Error",
            format!("task {} is {}, no longer scheduled", req.task_id, rec.state.as_str()),
        ));
    }
    if at - now_ms() < DELETE_CUTOFF_MS {
        return Err(Refusal::new("Error", "the task fires within one minute and can no longer be deleted"));
    }
    change_state(cx.state, rec.id, Action::Cancel).await?;
    Ok(json!({"result": "ok"}))
}

/// `stopTaskAction`: cancels the task and, for a list task, its parts still sending.
pub(super) async fn stop(cx: &Cx<'_>, req: StopTaskRequest) -> Result<Value, Refusal> {
    let rec = campaign_of(cx, &req.content_id).await?;
    for id in with_parts(cx, &rec, false).await? {
        let current = get(cx.state, id).await?;
        if !current.state.is_final() {
            change_state(cx.state, id, Action::Cancel).await?;
        }
    }
    Ok(json!({"result": "ok"}))
}

/// `stop_sms`: the texts of the task's SMS fallback not yet sent are cancelled.
pub(super) async fn stop_sms(cx: &Cx<'_>, req: TaskRequest) -> Result<Value, Refusal> {
    cx.check_app_id(Some(&req.app_id))?;
    let rec = campaign_of(cx, &req.task_id).await?;
    // A finished part may still have texts waiting for their time.
    for id in with_parts(cx, &rec, true).await? {
        cx.state.store.change(id, Change::StopSms).await?;
    }
    cx.state.wake_dispatcher.notify_one();
    Ok(json!({"result": "ok"}))
}

/// The campaign and, for a list task, its parts: those not yet finished (read from the active
/// index, so the cost follows the active campaigns), or with `finished_too` all of them (a
/// read of every record: `stop_sms` is rare).
async fn with_parts(cx: &Cx<'_>, rec: &CampaignRecord, finished_too: bool) -> Result<Vec<u64>, Refusal> {
    let mut ids = vec![rec.id];
    if rec.spec.legacy.as_ref().is_some_and(|l| l.call == "content") {
        let store = &cx.state.store;
        let candidates = if finished_too { store.list().await? } else { store.active_campaigns().await? };
        let parts = candidates.iter().filter(|r| r.spec.legacy.as_ref().is_some_and(|l| l.task == Some(rec.id)));
        ids.extend(parts.map(|r| r.id));
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_times_are_written_in_beijing_minutes() {
        let at = crate::domain::campaign::parse_schedule("203001011200").unwrap();
        assert_eq!(beijing_minutes(at), "203001011200");
    }
}
