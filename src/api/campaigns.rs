//! `/v1/campaigns` and `/v1/groups`: create, list, show, delete, state changes and reports.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};

use super::{json, ApiError, ApiState};
use crate::clock::now_ms;
use crate::domain::campaign::{CreateCampaign, Validation};
use crate::domain::{Action, CampaignSpec, CampaignState, FieldError, Mode};
use crate::protocol::{
    CampaignList, CampaignView, GroupReportView, LegacyView, ProgressView, RecipientTotals, ReportView,
    SmsFallbackView, SmsView, UpstreamCounts,
};
use crate::store::{CampaignRecord, Change, PageQuery, Progress};

/// Largest create body.
const MAX_CREATE_BYTES: usize = 256 * 1024;
/// A scheduled campaign can no longer be deleted this close to its start (the seed's rule).
const DELETE_CUTOFF_MS: i64 = 60_000;

type Answer = Result<Response<Full<Bytes>>, ApiError>;

pub(super) async fn create(state: &Arc<ApiState>, req: Request<Incoming>) -> Answer {
    let body = super::read_whole_body(state, req.into_body(), MAX_CREATE_BYTES).await.map_err(|e| match e {
        super::BodyError::TimedOut(deadline) => ApiError::body_timeout(deadline),
        super::BodyError::Unreadable => {
            ApiError::too_large(format!("a campaign definition is at most {MAX_CREATE_BYTES} bytes"))
        }
    })?;
    let spec = validate(state, parse_create(&body)?)?;
    let rec = state.store.create(spec, now_ms()).await?;
    tracing::info!(campaign = rec.id, name = rec.spec.name, mode = ?rec.spec.mode, "campaign created");
    json(201, &view(state, &rec).await?)
}

/// Validates a create request against the configured apps and SMS gateways, now.
pub(super) fn validate(state: &ApiState, request: CreateCampaign) -> Result<CampaignSpec, FieldError> {
    let rules = Validation {
        app_channel: &|app| state.apps.get(app).copied(),
        now_ms: now_ms(),
        horizon_ms: state.settings.schedule_horizon_ms,
        app_sms: &|app| state.sms.get(app),
    };
    request.validate(&rules)
}

/// Parses a create body; errors name the field (`settings.speed`) or say the JSON is broken.
fn parse_create(body: &[u8]) -> Result<CreateCampaign, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let request = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data if field != "." => ApiError::invalid(field, strip_position(&inner)),
            serde_json::error::Category::Data => ApiError::invalid("body", strip_position(&inner)),
            _ => ApiError::bad_body(format!("the body is not valid JSON: {inner}")),
        }
    })?;
    // One object and nothing after it but whitespace: `{...}xyz` or two objects are refused,
    // not silently cut short.
    de.end().map_err(|e| ApiError {
        field: Some("body".into()),
        ..ApiError::bad_body(format!("the body has bytes after its JSON object ({})", strip_position(&e)))
    })?;
    Ok(request)
}

fn strip_position(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.find(" at line ") {
        Some(i) => s[..i].to_owned(),
        None => s,
    }
}

/// Campaigns per page of `GET /v1/campaigns` unless `limit` says otherwise.
const DEFAULT_PAGE: usize = 100;
/// Largest `limit`.
const MAX_PAGE: usize = 1000;

/// `GET ?state=&after=&limit=`: one page in id order, with the cursor of the next.
pub(super) async fn list(state: &Arc<ApiState>, query: Option<&str>) -> Answer {
    let page = state.store.campaigns_page(parse_list_query(query)?).await?;
    let mut campaigns: Vec<CampaignView> = Vec::with_capacity(page.campaigns.len());
    for r in &page.campaigns {
        campaigns.push(view(state, r).await?);
    }
    json(200, &CampaignList { campaigns, next_after: page.next_after.map(|id| id.to_string()) })
}

/// Reads the list's query; a bad value is refused naming its parameter.
fn parse_list_query(query: Option<&str>) -> Result<PageQuery, ApiError> {
    let mut q = PageQuery { state: None, after: 0, limit: DEFAULT_PAGE };
    for (key, value) in query.unwrap_or("").split('&').filter_map(|p| p.split_once('=')) {
        match key {
            "state" if value.is_empty() => q.state = None,
            "state" => {
                let found = CampaignState::ALL.into_iter().find(|s| s.as_str() == value);
                let names: Vec<&str> = CampaignState::ALL.iter().map(|s| s.as_str()).collect();
                q.state = Some(
                    found.ok_or_else(|| ApiError::invalid("state", format!("must be one of {}", names.join(", "))))?,
                );
            }
            "after" => {
                q.after = value
                    .parse()
                    .map_err(|_| ApiError::invalid("after", "must be a campaign id (a number) from next_after"))?
            }
            "limit" => {
                q.limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE).contains(n))
                    .ok_or_else(|| ApiError::invalid("limit", format!("must be a number in 1..={MAX_PAGE}")))?
            }
            _ => {}
        }
    }
    Ok(q)
}

pub(super) async fn show(state: &Arc<ApiState>, id: u64) -> Answer {
    json(200, &view(state, &get(state, id).await?).await?)
}

pub(super) async fn get(state: &ApiState, id: u64) -> Result<CampaignRecord, ApiError> {
    state
        .store
        .get(id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found(format!("no campaign {id}")))
}

pub(super) async fn delete(state: &Arc<ApiState>, id: u64) -> Answer {
    let rec = get(state, id).await?;
    if let Some(at) = rec.spec.settings.schedule_at_ms {
        if rec.state == CampaignState::Scheduled && at - now_ms() < DELETE_CUTOFF_MS {
            return Err(ApiError::conflict(
                rec.state,
                "the campaign starts within one minute and can no longer be deleted; cancel it instead",
            ));
        }
    }
    if rec.state == CampaignState::Scheduled && rec.app_taskid.is_some() {
        return Err(ApiError::conflict(
            rec.state,
            "Getui holds this campaign's scheduled task: cancel the campaign, which deletes the task at Getui too",
        ));
    }
    state.store.delete(id).await?;
    state.uploads.forget(id);
    Ok(super::json_response(204, Vec::new()))
}

pub(super) async fn act(state: &Arc<ApiState>, id: u64, action: &str) -> Answer {
    let action = match action {
        "start" => Action::Start,
        "pause" => Action::Pause,
        "resume" => Action::Resume,
        _ => Action::Cancel,
    };
    let rec = change_state(state, id, action).await?;
    json(200, &view(state, &rec).await?)
}

/// Starts, pauses, resumes or cancels a campaign and wakes the dispatcher.
pub(super) async fn change_state(state: &ApiState, id: u64, action: Action) -> Result<CampaignRecord, ApiError> {
    if action == Action::Start && state.uploads.in_progress(id) {
        let rec = get(state, id).await?;
        return Err(ApiError::conflict(rec.state, "an upload to this campaign is still in progress"));
    }
    let rec = state.store.change(id, Change::Act(action, now_ms())).await?;
    if rec.state != CampaignState::Draft {
        state.uploads.forget(id);
    }
    state.wake_dispatcher.notify_one();
    tracing::info!(campaign = id, action = action.as_str(), state = rec.state.as_str(), "campaign state changed");
    Ok(rec)
}

pub(super) async fn report(state: &Arc<ApiState>, id: u64) -> Answer {
    json(200, &report_of(state, &get(state, id).await?).await?)
}

pub(super) async fn group_report(state: &Arc<ApiState>, group: &str) -> Answer {
    let records = state.store.list().await.map_err(ApiError::internal)?;
    let mut campaigns: Vec<ReportView> = Vec::new();
    for r in records.iter().filter(|r| r.spec.settings.group.as_deref() == Some(group)) {
        campaigns.push(report_of(state, r).await?);
    }
    if campaigns.is_empty() {
        return Err(ApiError::not_found(format!("no campaign in group {group:?}")));
    }
    let mut results = BTreeMap::new();
    for c in &campaigns {
        for (k, v) in &c.results {
            *results.entry(k.clone()).or_insert(0) += v;
        }
    }
    json(200, &GroupReportView { group: group.to_owned(), campaigns, results })
}

async fn report_of(state: &ApiState, rec: &CampaignRecord) -> Result<ReportView, ApiError> {
    let progress = state.store.progress(rec.id).await.map_err(ApiError::internal)?;
    let campaign = view_with(state, rec, &progress);
    let counts = progress.counts;
    let end = rec.finished_ms.unwrap_or_else(now_ms);
    let duration_seconds = rec.started_ms.map_or(0.0, |s| (end - s).max(0) as f64 / 1000.0);
    let sent = counts.total();
    let delivered: u64 = counts.0.iter().filter(|(r, _)| r.is_success()).map(|(_, n)| n).sum();
    Ok(ReportView {
        duration_seconds,
        recipients_per_sec: if duration_seconds > 0.0 { sent as f64 / duration_seconds } else { 0.0 },
        results: campaign.progress.results.clone(),
        delivered,
        failed: sent - delivered,
        sms: campaign.sms.clone(),
        campaign,
    })
}

/// Recent sending rate of one campaign, from the samples its status reads saw.
#[derive(Default)]
pub(super) struct RateWindow {
    samples: VecDeque<(Instant, u64)>,
}

impl RateWindow {
    /// Adds a sample and returns recipients/s over the last ten seconds of samples.
    fn sample(&mut self, sent: u64) -> Option<f64> {
        let now = Instant::now();
        while self.samples.front().is_some_and(|(t, _)| now.duration_since(*t).as_secs_f64() > 10.0) {
            self.samples.pop_front();
        }
        if self.samples.back().is_none_or(|(t, _)| now.duration_since(*t).as_millis() >= 100) {
            self.samples.push_back((now, sent));
        }
        let (t0, s0) = *self.samples.front()?;
        let dt = now.duration_since(t0).as_secs_f64();
        (dt >= 0.5).then(|| sent.saturating_sub(s0) as f64 / dt)
    }
}

/// The API's view of a campaign, with live progress.
pub(super) async fn view(state: &ApiState, rec: &CampaignRecord) -> Result<CampaignView, ApiError> {
    let progress = state.store.progress(rec.id).await.map_err(ApiError::internal)?;
    Ok(view_with(state, rec, &progress))
}

/// The view of a campaign whose progress is `progress`.
fn view_with(state: &ApiState, rec: &CampaignRecord, progress: &Progress) -> CampaignView {
    let sent = progress.counts.total();
    let unsent = rec.recipients.saturating_sub(sent);
    let (pending, not_sent) = if rec.state == CampaignState::Cancelled { (0, unsent) } else { (unsent, 0) };
    let running = rec.state == CampaignState::Running;
    let rate = if running {
        let mut rates = state.rates.lock().unwrap_or_else(|p| p.into_inner());
        let window = rates.entry(rec.id).or_default();
        window.sample(sent).or_else(|| average_rate(rec, sent))
    } else {
        None
    }
    .unwrap_or(0.0);
    let eta_seconds = (running && rate > 0.0).then(|| (pending as f64 / rate).ceil() as u64);
    CampaignView {
        id: rec.id.to_string(),
        name: rec.spec.name.clone(),
        app: rec.spec.app.clone(),
        channel: rec.spec.channel.as_str().to_owned(),
        mode: match rec.spec.mode {
            Mode::List | Mode::Auto => "list",
            Mode::BatchSingle => "batch_single",
            Mode::App => "app",
        }
        .into(),
        origin: if rec.spec.legacy.is_some() { "legacy" } else { "v1" }.into(),
        legacy: rec.spec.legacy.as_ref().map(|l| LegacyView {
            call: l.call.clone(),
            legacy_id: l.legacy_id(rec.id),
            task: l.task.map(|t| t.to_string()),
        }),
        state: rec.state.as_str().into(),
        created_at: rfc3339(rec.created_ms),
        started_at: rec.started_ms.map(rfc3339),
        finished_at: rec.finished_ms.map(rfc3339),
        schedule_at: rec.spec.settings.schedule_at_ms.map(rfc3339),
        schedule_via: rec
            .spec
            .settings
            .schedule_at_ms
            .map(|_| if rec.spec.settings.upstream_schedule { "upstream" } else { "daemon" }.to_owned()),
        send_result: send_result(rec).into(),
        message_kind: rec.spec.message.kind().unwrap_or_default().into(),
        display_window: rec.spec.settings.display_ms.map(|(b, e)| [rfc3339(b), rfc3339(e)]),
        speed: rec.spec.settings.speed,
        group: rec.spec.settings.group.clone(),
        recipients: RecipientTotals { total: rec.recipients, duplicates: rec.duplicates, rejected: rec.rejected },
        progress: ProgressView {
            sent,
            pending,
            not_sent,
            results: progress.counts.named().into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            rate_per_sec: (rate * 10.0).round() / 10.0,
            eta_seconds,
            replayed: rec.replayed,
        },
        taskid: rec.list_taskid.clone().or_else(|| rec.app_taskid.clone()),
        upstream: rec.upstream_report.as_ref().map(|r| UpstreamCounts {
            target_num: r.target,
            receive_num: r.received,
            display_num: r.displayed,
            click_num: r.clicked,
            fetched_at: rfc3339(r.fetched_ms),
        }),
        withdrawal: rec.withdrawal.clone(),
        failure: rec.failure.clone(),
        sms_fallback: rec.spec.settings.sms_fallback.as_ref().map(|f| SmsFallbackView {
            template_id: f.template_id.clone(),
            params: f.params.clone(),
            after_ms: f.after_ms,
        }),
        sms: sms_view(rec),
    }
}

/// The second channel's outcomes, for campaigns with `sms_fallback` only.
fn sms_view(rec: &CampaignRecord) -> Option<SmsView> {
    rec.spec.settings.sms_fallback.as_ref()?;
    let t = &rec.sms;
    Some(SmsView {
        reached: t.reached,
        clicked: t.clicked,
        sms_sent: t.sent,
        sms_delivered: t.delivered,
        sms_failed: t.failed.clone(),
        sms_skipped: t.skipped.clone(),
        sms_maybe_sent: t.maybe_sent,
        sms_replayed: t.replayed,
        chunks_done: t.chunks_done,
        stopped: rec.sms_stopped,
    })
}

/// The campaign's push result in the words of Getui's scheduled-task query.
pub(super) fn send_result(rec: &CampaignRecord) -> &'static str {
    let s = &rec.spec.settings;
    match rec.state {
        CampaignState::Scheduled if s.upstream_schedule && rec.app_taskid.is_some() => "scheduled_upstream",
        CampaignState::Draft | CampaignState::Scheduled => "do_not_send",
        CampaignState::Running | CampaignState::Paused => "sending",
        CampaignState::Completed => "send_success",
        CampaignState::Failed => "send_failed",
        CampaignState::Cancelled => "has_delete",
    }
}

fn average_rate(rec: &CampaignRecord, sent: u64) -> Option<f64> {
    let elapsed = (now_ms() - rec.started_ms?) as f64 / 1000.0;
    (elapsed > 0.0).then(|| sent as f64 / elapsed)
}

pub(super) fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_errors_name_the_field() {
        let e = parse_create(br#"{"name":"x","app":"main","message":{},"settings":{"speed":"fast"}}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("settings.speed"), "{e:?}");
        let e = parse_create(br#"{"name":"x","app":"main","message":{},"colour":1}"#).unwrap_err();
        assert!(e.message.contains("colour"), "{e:?}");
        let e = parse_create(b"{not json").unwrap_err();
        assert_eq!((e.status, e.code), (400, "bad_request"));
        let e = parse_create(br#"{"app":"main","message":{}}"#).unwrap_err();
        assert!(e.message.contains("name"), "{e:?}");
    }

    #[test]
    fn list_queries_are_checked_naming_the_parameter() {
        let q = parse_list_query(None).unwrap();
        assert_eq!((q.state, q.after, q.limit), (None, 0, DEFAULT_PAGE));
        let q = parse_list_query(Some("state=running&after=41&limit=1000&other=x")).unwrap();
        assert_eq!((q.state, q.after, q.limit), (Some(CampaignState::Running), 41, 1000));
        for (query, field) in [
            ("limit=1001", "limit"),
            ("limit=0", "limit"),
            ("limit=many", "limit"),
            ("state=done", "state"),
            ("after=-1", "after"),
            ("after=x", "after"),
        ] {
            let e = parse_list_query(Some(query)).unwrap_err();
            assert_eq!((e.status, e.field.as_deref()), (400, Some(field)), "{query}: {e:?}");
        }
    }

    #[test]
    fn timestamps_are_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }
}
