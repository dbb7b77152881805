//! The control API's JSON shapes, shared by the server (`api`) and its client (`client`).
//! Plain data; no I/O.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A campaign as the API shows it (`GET /v1/campaigns/{id}`, and the answer to create and to
/// every state change).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CampaignView {
    /// Campaign id.
    pub id: String,
    /// Name.
    pub name: String,
    /// App name.
    pub app: String,
    /// Channel.
    pub channel: String,
    /// Send mode (`list`, `batch_single`, `app`).
    pub mode: String,
    /// Who made it: `v1` (this API) or `legacy` (the legacy Getui SDK ingress, `/apiex.htm`).
    #[serde(default)]
    pub origin: String,
    /// Legacy campaigns: the SDK call (`single`, `content`, `list`, `app`, `batch`) and, for a
    /// list part, its task's campaign id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legacy: Option<LegacyView>,
    /// Lifecycle state.
    pub state: String,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339, once started.
    pub started_at: Option<String>,
    /// RFC 3339, once final.
    pub finished_at: Option<String>,
    /// RFC 3339, when scheduled.
    pub schedule_at: Option<String>,
    /// Who waits for `schedule_at`: `daemon` or `upstream` (Getui's schedule_time).
    #[serde(default)]
    pub schedule_via: Option<String>,
    /// The push's result in Getui's words: `do_not_send` (not yet), `sending`, `send_success`,
    /// `send_failed`, `has_delete` (cancelled), or `scheduled_upstream` (Getui holds it).
    #[serde(default)]
    pub send_result: String,
    /// `notification`, `link`, `transmission` or `popup_download`.
    #[serde(default)]
    pub message_kind: String,
    /// RFC 3339 begin and end of the display window.
    #[serde(default)]
    pub display_window: Option<[String; 2]>,
    /// Speed, messages/s.
    pub speed: Option<u32>,
    /// Task group.
    pub group: Option<String>,
    /// Upload totals.
    pub recipients: RecipientTotals,
    /// Sending progress.
    pub progress: ProgressView,
    /// Getui task of a list or app campaign.
    pub taskid: Option<String>,
    /// App campaigns: Getui's own counts of the task (it fans the push out itself), refreshed
    /// every minute for a day.
    #[serde(default)]
    pub upstream: Option<UpstreamCounts>,
    /// A cancelled schedule Getui held: whether its task was deleted there.
    #[serde(default)]
    pub withdrawal: Option<String>,
    /// Why it failed.
    pub failure: Option<String>,
    /// `settings.sms_fallback` as given at creation; absent when the campaign has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sms_fallback: Option<SmsFallbackView>,
    /// SMS fallback campaigns: what became of the recipients on the second channel; absent
    /// for campaigns without `sms_fallback`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sms: Option<SmsView>,
}

/// A campaign's `settings.sms_fallback`: text the recipients the push did not reach.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmsFallbackView {
    /// The configured template's id.
    pub template_id: String,
    /// Its parameters in order, `${vars}` as given.
    pub params: Vec<String>,
    /// Delay after the push, ms.
    pub after_ms: u64,
}

/// The second dimension of an SMS-fallback campaign's report: recipients per outcome on the
/// second channel (`domain::texting::SmsTally`), and whether `sms/stop` was called.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmsView {
    /// Reached by the push (its answer or an arrival receipt) when the text was due.
    pub reached: u64,
    /// With a click receipt when the text was due.
    pub clicked: u64,
    /// Texts the gateway accepted.
    pub sms_sent: u64,
    /// Of those, reported delivered.
    pub sms_delivered: u64,
    /// Texts refused at send time or reported undelivered, by code.
    pub sms_failed: BTreeMap<String, u64>,
    /// Recipients not texted, by reason (`no_binding`, `reached`, `too_long`, `stopped`, …).
    pub sms_skipped: BTreeMap<String, u64>,
    /// Recipients of a call whose answer was lost, not sent again (`at_most_once`).
    pub sms_maybe_sent: u64,
    /// Recipients of a call sent again after its answer was lost (`at_least_once`).
    pub sms_replayed: u64,
    /// Chunks whose texting is finished.
    pub chunks_done: u64,
    /// `POST /v1/campaigns/{id}/sms/stop` was called: texts not yet sent are skipped.
    pub stopped: bool,
}

/// Getui's counts of a task (`/report/push/task`, section `total`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamCounts {
    /// Devices targeted.
    pub target_num: u64,
    /// Devices that received it.
    pub receive_num: u64,
    /// Devices that displayed it.
    pub display_num: u64,
    /// Devices where it was tapped.
    pub click_num: u64,
    /// RFC 3339, when fetched.
    pub fetched_at: String,
}

/// What uploads brought in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientTotals {
    /// Recipients accepted.
    pub total: u64,
    /// Lines dropped as duplicates.
    pub duplicates: u64,
    /// Lines refused.
    pub rejected: u64,
}

/// How far sending has come.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProgressView {
    /// Recipients with a result.
    pub sent: u64,
    /// Recipients without one yet (not counting those a cancel dropped).
    pub pending: u64,
    /// Recipients never sent because the campaign was cancelled.
    pub not_sent: u64,
    /// Recipients per result name.
    pub results: BTreeMap<String, u64>,
    /// Recent rate, recipients/s.
    pub rate_per_sec: f64,
    /// Seconds to go at that rate.
    pub eta_seconds: Option<u64>,
    /// Recipients of list chunks sent again after a crash (possible duplicates).
    pub replayed: u64,
}

/// The answer to an upload.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadView {
    /// Recipients added.
    pub accepted: u64,
    /// Lines dropped as duplicates of earlier recipients.
    pub duplicates: u64,
    /// Lines refused.
    pub rejected: u64,
    /// The first refused lines and why.
    pub first_rejected: Vec<RejectedLine>,
    /// Recipients of the campaign after this upload.
    pub campaign_total: u64,
}

/// One refused upload line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedLine {
    /// 1-based line number.
    pub line: u64,
    /// Why.
    pub reason: String,
}

/// A campaign's report (`GET /v1/campaigns/{id}/report`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportView {
    /// The campaign.
    pub campaign: CampaignView,
    /// Seconds from start to finish (or to now).
    pub duration_seconds: f64,
    /// Recipients with a result per second of that duration.
    pub recipients_per_sec: f64,
    /// Recipients that reached a result, per result name.
    pub results: BTreeMap<String, u64>,
    /// Of those, the ones the upstream accepted.
    pub delivered: u64,
    /// Of those, the ones that failed.
    pub failed: u64,
    /// SMS fallback campaigns: the second channel's outcomes (as in the campaign view).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sms: Option<SmsView>,
}

/// A task group's campaigns side by side (`GET /v1/groups/{group}/report`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupReportView {
    /// The group.
    pub group: String,
    /// Its campaigns.
    pub campaigns: Vec<ReportView>,
    /// Results of all of them added up.
    pub results: BTreeMap<String, u64>,
}

/// One suppressed member of a WeCom app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuppressionView {
    /// Member id (lower case: WeCom ids compare case-insensitively).
    pub user: String,
    /// `unsubscribe`, `keyword` or `api`.
    pub reason: String,
    /// RFC 3339.
    pub since: String,
}

/// A page of campaigns (`GET /v1/campaigns?state=&after=&limit=`), in id order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CampaignList {
    /// The campaigns.
    pub campaigns: Vec<CampaignView>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(default)]
    pub next_after: Option<String>,
}

/// A page of an app's suppression list (`GET /v1/apps/{app}/suppressions`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuppressionList {
    /// The app.
    pub app: String,
    /// Members, in id order.
    pub users: Vec<SuppressionView>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_after: Option<String>,
}

/// One cid's answer of a bind, unbind or query of `/v1/apps/{app}/cid-pn` (the legacy
/// `batchRet` entry). `code` is 0–8 as `domain::sms::BindCode` documents; `pn` is the masked
/// number (`138****5678`), on a query with code 0 only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindRet {
    /// The cid as given.
    pub cid: String,
    /// The per-cid code.
    pub code: u8,
    /// Query only: the masked number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pn: Option<String>,
    /// Why, when the code is not 0 (never quoting a number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The answer of a bind, unbind or query call: `result` "0" and one entry per cid, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindAnswerView {
    /// "0": the call was carried out (each cid's own code says how it went).
    pub result: String,
    /// Per cid.
    #[serde(rename = "batchRet")]
    pub batch_ret: Vec<BindRet>,
}

/// The answer of `POST /v1/apps/{app}/cid-pn/import`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindImportView {
    /// Lines read.
    pub lines: u64,
    /// Pairs bound (a pair already bound so counts too).
    pub bound: u64,
    /// Binds that moved a phone off another cid (that cid is now unbound).
    pub replaced: u64,
    /// Lines refused.
    pub bad_lines: u64,
    /// The first refused lines and why.
    pub first_bad: Vec<RejectedLine>,
}

/// How a legacy SDK call made a campaign (`CampaignView::legacy`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegacyView {
    /// The SDK call.
    pub call: String,
    /// The legacy id the SDK was given (`OSS-…`, `OSL-…`, `OSA-…`, `OSB-…`).
    pub legacy_id: String,
    /// A list part: the campaign id of its task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
}
