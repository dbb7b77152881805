//! Campaigns: the validated specification, the settings, and the state machine
//! `draft → scheduled → running ⇄ paused → completed | cancelled | failed`.

use serde::{Deserialize, Serialize};

use super::message::MessageTemplate;
use super::sms::{AppSmsFacts, SmsFacts, SmsFallback};
use super::{Channel, FieldError};
use crate::wire::getui::MAX_TTL_MS;
use crate::wire::getui::{checks, regions};

/// How recipients are cut into upstream calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// `list` when the message has no variables, else `batch_single` (resolved at creation).
    Auto,
    /// Same content to everyone: one list task, `/push/list/cid` calls of ≤ 1000 ids.
    List,
    /// Per-recipient content: `/push/single/batch/cid` calls of ≤ 200 messages.
    BatchSingle,
    /// The whole app or tag conditions: one `/push/all` or `/push/tag` call.
    App,
}

/// What to do with a list chunk that may have been sent when the daemon died.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Replay {
    /// Send it again: nobody is missed, some may get it twice (counted as replayed).
    #[default]
    AtLeastOnce,
    /// Skip it: nobody gets it twice, some may miss it (counted as skipped_after_crash).
    AtMostOnce,
}

/// Which networks a device may receive on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum NetworkType {
    /// Any network.
    #[default]
    Any,
    /// Wi-Fi only.
    Wifi,
}

/// Delivery settings of a campaign.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct CampaignSettings {
    /// Messages per second (like Getui's set_speed); `None` is unlimited.
    pub speed: Option<u32>,
    /// Offline retention in ms (−1: none; at most 3 days).
    pub ttl_ms: Option<i64>,
    /// Network restriction.
    pub network_type: NetworkType,
    /// Task group for group reports.
    pub group: Option<String>,
    /// When to start, ms since the epoch.
    pub schedule_at_ms: Option<i64>,
    /// Crash policy for list chunks.
    pub replay: Replay,
    /// Display window `(begin, end)` in ms since the epoch (v2 `push_message.duration`).
    #[serde(default)]
    pub display_ms: Option<(i64, i64)>,
    /// App campaigns only: the schedule time travels as v2 `settings.schedule_time` and the
    /// upstream holds the task, instead of the daemon waiting in `scheduled`.
    #[serde(default)]
    pub upstream_schedule: bool,
    /// Text the recipients the push did not reach (issue 13). Never written when absent, so
    /// records without it keep the bytes older versions wrote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sms_fallback: Option<SmsFallback>,
}

/// Who waits for a scheduled app campaign's time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleVia {
    /// campaignd keeps the campaign `scheduled` and sends at the time (any mode; survives restarts).
    #[default]
    Daemon,
    /// App campaigns: sent at once with v2 `schedule_time`; Getui fires it (VIP feature, ≤ 7 days).
    Upstream,
}

/// The display window of a notification: shown only between `begin` and `end`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisplayWindow {
    /// `yyyyMMddHHmm` (Beijing time) or RFC 3339.
    pub begin: String,
    /// Same forms; more than 10 minutes after `begin`.
    pub end: String,
}

/// Shortest display window v2 accepts (it must exceed 10 minutes).
pub const MIN_DISPLAY_WINDOW_MS: i64 = 10 * 60_000;

/// How the values of one audience condition combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TagMatch {
    /// The device matches any of the values.
    Or,
    /// The device matches all of the values.
    And,
    /// The device matches none of the values.
    Not,
}

/// One condition of an app audience; conditions are ANDed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AudienceCondition {
    /// `phone_type`, `region`, `custom_tag` or `portrait`.
    pub key: String,
    /// Values of that key.
    pub values: Vec<String>,
    /// How values combine; OR unless given (the vendor SDK's default).
    #[serde(default = "default_opt")]
    pub opt: TagMatch,
}

fn default_opt() -> TagMatch {
    TagMatch::Or
}

/// The audience of an app campaign; no conditions means the whole app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AppAudience {
    /// Conditions, ANDed.
    #[serde(default)]
    pub conditions: Vec<AudienceCondition>,
}

/// A campaign as validated at creation. Immutable afterwards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CampaignSpec {
    /// Free-form name.
    pub name: String,
    /// App name from the configuration.
    pub app: String,
    /// The app's send channel.
    pub channel: Channel,
    /// Send mode, never `Auto` once created.
    pub mode: Mode,
    /// The message.
    pub message: MessageTemplate,
    /// Settings.
    pub settings: CampaignSettings,
    /// App campaigns only.
    pub audience: Option<AppAudience>,
    /// Set when the legacy SDK ingress made the campaign (issue 14); never written otherwise,
    /// so records of `/v1` campaigns keep the bytes older versions wrote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legacy: Option<LegacyOrigin>,
}

/// Which legacy SDK call made a campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegacyOrigin {
    /// `single`, `content` (a `getContentId` task), `list` (one `pushMessageToList` call's
    /// part of a task), `app` or `batch`.
    pub call: String,
    /// A list part: the campaign of its task (`getContentId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<u64>,
}

impl LegacyOrigin {
    /// The id the legacy SDK was given for campaign `id`: `OSS-` a single push, `OSL-` a list
    /// task (its parts answer with their task's), `OSA-` an app push, `OSB-` a batch's group.
    pub fn legacy_id(&self, id: u64) -> String {
        match self.call.as_str() {
            "single" => format!("OSS-{id}"),
            "content" | "list" => format!("OSL-{}", self.task.unwrap_or(id)),
            "app" => format!("OSA-{id}"),
            _ => format!("OSB-{id}"),
        }
    }
}

/// The campaign id inside a legacy id (`OSA-12` → 12), whatever its prefix.
pub fn parse_legacy_id(s: &str) -> Option<u64> {
    let (prefix, id) = s.split_once('-')?;
    matches!(prefix, "OSS" | "OSL" | "OSA" | "OSB").then_some(())?;
    id.parse().ok()
}

/// The lifecycle state of a campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CampaignState {
    /// Created; recipients may be uploaded.
    Draft,
    /// Started with a future schedule time.
    Scheduled,
    /// Sending.
    Running,
    /// Stopped by request; resumable.
    Paused,
    /// Every recipient reached a result.
    Completed,
    /// Stopped for good by request.
    Cancelled,
    /// Could not run (e.g. the list task could not be created).
    Failed,
}

impl CampaignState {
    /// Every state, for the `campaigns{state}` gauge.
    pub const ALL: [CampaignState; 7] = [
        CampaignState::Draft,
        CampaignState::Scheduled,
        CampaignState::Running,
        CampaignState::Paused,
        CampaignState::Completed,
        CampaignState::Cancelled,
        CampaignState::Failed,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            CampaignState::Draft => "draft",
            CampaignState::Scheduled => "scheduled",
            CampaignState::Running => "running",
            CampaignState::Paused => "paused",
            CampaignState::Completed => "completed",
            CampaignState::Cancelled => "cancelled",
            CampaignState::Failed => "failed",
        }
    }

    /// True once nothing more will happen.
    pub fn is_final(self) -> bool {
        matches!(self, CampaignState::Completed | CampaignState::Cancelled | CampaignState::Failed)
    }
}

/// A request to change a campaign's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Begin now, or at the schedule time.
    Start,
    /// Stop sending until resumed.
    Pause,
    /// Continue after a pause.
    Resume,
    /// Stop for good.
    Cancel,
}

impl Action {
    /// The wire name (also the URL segment).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Pause => "pause",
            Action::Resume => "resume",
            Action::Cancel => "cancel",
        }
    }
}

/// The state after `action`, or `None` if the action is not allowed in `state`.
pub fn transition(state: CampaignState, action: Action, scheduled_in_future: bool) -> Option<CampaignState> {
    use CampaignState::*;
    match (state, action) {
        (Draft, Action::Start) if scheduled_in_future => Some(Scheduled),
        (Draft, Action::Start) => Some(Running),
        (Running, Action::Pause) => Some(Paused),
        (Paused, Action::Resume) => Some(Running),
        (Draft | Scheduled | Running | Paused, Action::Cancel) => Some(Cancelled),
        _ => None,
    }
}

/// Parses a schedule time: the seed's `yyyyMMddHHmm` (Beijing time, UTC+8, as Getui's console
/// uses) or RFC 3339 with an explicit offset. Returns ms since the epoch.
pub fn parse_schedule(s: &str) -> Result<i64, String> {
    use time::macros::{format_description, offset};
    let compact = format_description!("[year][month][day][hour][minute]");
    let parsed = if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) {
        time::PrimitiveDateTime::parse(s, compact).map(|t| t.assume_offset(offset!(+8)))
    } else {
        time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
    };
    parsed.map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64).map_err(|_| {
        format!("{s:?} is neither yyyyMMddHHmm (Beijing time) nor RFC 3339 such as 2026-11-23T10:00:00+08:00")
    })
}

/// The create request as sent by clients (`POST /v1/campaigns`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CreateCampaign {
    /// Free-form name, 1–100 characters.
    pub name: String,
    /// App name from the configuration.
    pub app: String,
    /// `getui` or `wecom`; the app's channel when left out.
    #[serde(default)]
    pub channel: Option<String>,
    /// Send mode (default `auto`).
    #[serde(default = "default_mode")]
    pub mode: Mode,
    /// The message.
    pub message: MessageTemplate,
    /// Settings.
    #[serde(default)]
    pub settings: CreateSettings,
    /// App campaigns only.
    #[serde(default)]
    pub audience: Option<AppAudience>,
}

fn default_mode() -> Mode {
    Mode::Auto
}

/// Settings as sent by clients.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CreateSettings {
    /// Messages per second.
    #[serde(default)]
    pub speed: Option<u32>,
    /// Offline retention in ms.
    #[serde(default)]
    pub ttl_ms: Option<i64>,
    /// Store for offline devices (default true); false sends ttl −1, no offline storage.
    #[serde(default)]
    pub offline: Option<bool>,
    /// Show the notification only within this window.
    #[serde(default)]
    pub display_window: Option<DisplayWindow>,
    /// `daemon` (default) or `upstream` (app campaigns only).
    #[serde(default)]
    pub schedule_via: ScheduleVia,
    /// `any` or `wifi`.
    #[serde(default)]
    pub network_type: NetworkType,
    /// Task group.
    #[serde(default)]
    pub group: Option<String>,
    /// `yyyyMMddHHmm` or RFC 3339.
    #[serde(default)]
    pub schedule_at: Option<String>,
    /// Crash policy for list chunks.
    #[serde(default)]
    pub replay: Replay,
    /// Text those the push did not reach (cid-addressed Getui campaigns).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sms_fallback: Option<SmsFallback>,
}

/// Default schedule horizon (the seed and Getui: 7 days); `dispatch.schedule_horizon_days`
/// changes it for daemon-held schedules.
pub const SCHEDULE_HORIZON_MS: i64 = 7 * 86_400_000;

/// What validation needs to know about the world.
pub struct Validation<'a> {
    /// The channel of a configured app, `None` for an unknown name.
    pub app_channel: &'a dyn Fn(&str) -> Option<Channel>,
    /// Now, ms since the epoch.
    pub now_ms: i64,
    /// Longest daemon-held schedule, ms ahead.
    pub horizon_ms: i64,
    /// The SMS gateway of a configured app, `None` when it has no `[apps.NAME.sms]`.
    pub app_sms: &'a dyn Fn(&str) -> Option<&'a AppSmsFacts>,
}

impl CreateCampaign {
    /// Validates every field and resolves `auto`. Errors name the field.
    pub fn validate(self, v: &Validation<'_>) -> Result<CampaignSpec, FieldError> {
        let name_len = self.name.chars().count();
        if name_len == 0 || name_len > 100 {
            return Err(FieldError::new("name", "must be 1 to 100 characters"));
        }
        let Some(channel) = (v.app_channel)(&self.app) else {
            return Err(FieldError::new("app", format!("no app named {:?} in the configuration", self.app)));
        };
        let channel_name = channel.as_str();
        if self.channel.as_deref().is_some_and(|c| c != channel_name) {
            return Err(FieldError::new(
                "channel",
                format!(
                    "app {:?} sends through {channel_name}; set channel to {channel_name:?} or leave it out",
                    self.app
                ),
            ));
        }
        let settings = validate_settings(&self.settings, v)?;
        if channel == Channel::Wecom {
            return self.validate_wecom(settings);
        }
        self.message.validate()?;
        let mode = match self.mode {
            Mode::Auto if self.audience.is_some() => Mode::App,
            Mode::Auto if self.message.variables().is_empty() => Mode::List,
            Mode::Auto => Mode::BatchSingle,
            m => m,
        };
        if mode == Mode::List && !self.message.variables().is_empty() {
            return Err(FieldError::new(
                "mode",
                "list campaigns send one content to all: remove the ${...} variables or use batch_single",
            ));
        }
        let audience = match (mode, self.audience) {
            (Mode::App, a) => Some(validate_audience(a.unwrap_or_default())?),
            (_, Some(_)) => {
                return Err(FieldError::new(
                    "audience",
                    "only app campaigns take an audience; list and batch_single campaigns get recipients by upload",
                ))
            }
            (_, None) => None,
        };
        if mode == Mode::App && !self.message.variables().is_empty() {
            return Err(FieldError::new("message", "app campaigns cannot use per-recipient ${...} variables"));
        }
        if settings.upstream_schedule && mode != Mode::App {
            return Err(FieldError::new(
                "settings.schedule_via",
                "only app campaigns can be scheduled by the upstream; list and batch_single campaigns use \"daemon\"",
            ));
        }
        if let Some(fallback) = &settings.sms_fallback {
            check_sms_fallback(fallback, &self.app, mode, self.settings.offline, settings.ttl_ms, v)?;
        }
        Ok(CampaignSpec {
            name: self.name,
            app: self.app,
            channel,
            mode,
            message: self.message,
            settings,
            audience,
            legacy: None,
        })
    }

    /// WeCom campaigns: one application message to an uploaded list of member ids.
    fn validate_wecom(self, settings: CampaignSettings) -> Result<CampaignSpec, FieldError> {
        self.message.validate_wecom()?;
        if !matches!(self.mode, Mode::Auto | Mode::List) {
            return Err(FieldError::new("mode", "WeCom campaigns are list campaigns: leave mode out or use \"list\""));
        }
        if self.audience.is_some() {
            return Err(FieldError::new("audience", "WeCom campaigns send to uploaded member ids; remove audience"));
        }
        let s = &self.settings;
        let getui_only = [
            (s.ttl_ms.is_some() || s.offline.is_some(), "settings.ttl_ms"),
            (s.network_type != NetworkType::Any, "settings.network_type"),
            (s.display_window.is_some(), "settings.display_window"),
            (settings.upstream_schedule, "settings.schedule_via"),
            (s.sms_fallback.is_some(), "settings.sms_fallback"),
        ];
        if let Some((_, field)) = getui_only.iter().find(|(set, _)| *set) {
            return Err(FieldError::new(*field, "is a Getui setting; WeCom campaigns do not take it"));
        }
        Ok(CampaignSpec {
            name: self.name,
            app: self.app,
            channel: Channel::Wecom,
            mode: Mode::List,
            message: self.message,
            settings,
            audience: None,
            legacy: None,
        })
    }
}

fn validate_settings(s: &CreateSettings, v: &Validation<'_>) -> Result<CampaignSettings, FieldError> {
    if s.speed == Some(0) {
        return Err(FieldError::new(
            "settings.speed",
            "must be at least 1 message per second; leave it out for no limit",
        ));
    }
    let upstream_schedule = s.schedule_via == ScheduleVia::Upstream;
    let schedule_at_ms = match &s.schedule_at {
        None if upstream_schedule => {
            return Err(FieldError::new("settings.schedule_at", "schedule_via \"upstream\" needs a schedule_at time"))
        }
        None => None,
        Some(text) => Some(check_schedule(text, v, upstream_schedule)?),
    };
    let display_ms = s.display_window.as_ref().map(|w| check_display_window(w, v.now_ms)).transpose()?;
    Ok(CampaignSettings {
        speed: s.speed,
        ttl_ms: offline_ttl(s.offline, s.ttl_ms)?,
        network_type: s.network_type,
        group: s.group.clone().map(check_group).transpose()?,
        schedule_at_ms,
        replay: s.replay,
        display_ms,
        upstream_schedule,
        sms_fallback: s.sms_fallback.clone(),
    })
}

/// `settings.sms_fallback` against the app's SMS gateway and the campaign's mode and offline
/// time ([`SmsFallback::validate`]).
fn check_sms_fallback(
    fallback: &SmsFallback,
    app: &str,
    mode: Mode,
    offline: Option<bool>,
    ttl_ms: Option<i64>,
    v: &Validation<'_>,
) -> Result<(), FieldError> {
    let configured = (v.app_sms)(app);
    // App campaigns are refused for their mode whatever the configuration says.
    if configured.is_none() && mode != Mode::App {
        return Err(FieldError::new(
            "settings.sms_fallback",
            format!(
                "app {app:?} has no SMS gateway: configure [apps.{app}.sms] (base_url, secret_id, sdk_app_id, \
                 sign_name) and its [[apps.{app}.sms.templates]]"
            ),
        ));
    }
    let none = AppSmsFacts::default();
    let sms = configured.unwrap_or(&none);
    let facts = SmsFacts { templates: &sms.templates, sign_name: &sms.sign_name, mode, ttl_ms, offline };
    fallback.validate(&facts)
}

fn check_group(g: String) -> Result<String, FieldError> {
    checks::check_group_name(&g)
        .map_err(|_| FieldError::new("settings.group", "must be 1 to 100 of letters, digits, '-' and '_'"))?;
    Ok(g)
}

/// `offline` and `ttl_ms` together give v2's `ttl`: −1 is no offline storage.
fn offline_ttl(offline: Option<bool>, ttl_ms: Option<i64>) -> Result<Option<i64>, FieldError> {
    match (offline, ttl_ms) {
        (Some(false), None | Some(-1)) => Ok(Some(-1)),
        (Some(false), Some(_)) => Err(FieldError::new(
            "settings.ttl_ms",
            "offline is false, so nothing is stored offline: drop ttl_ms or set offline to true",
        )),
        (Some(true), Some(-1)) => {
            Err(FieldError::new("settings.ttl_ms", "-1 means no offline storage; give 0..=259200000 ms"))
        }
        (_, Some(ttl)) if !(-1..=MAX_TTL_MS).contains(&ttl) => Err(FieldError::new(
            "settings.ttl_ms",
            format!("must be -1 (no offline storage) or 0..={MAX_TTL_MS} (3 days)"),
        )),
        (_, ttl) => Ok(ttl),
    }
}

fn check_schedule(text: &str, v: &Validation<'_>, upstream: bool) -> Result<i64, FieldError> {
    let field = "settings.schedule_at";
    let at = parse_schedule(text).map_err(|m| FieldError::new(field, m))?;
    if at <= v.now_ms {
        return Err(FieldError::new(field, format!("{text} is in the past; give a future time")));
    }
    // Getui holds scheduled tasks for at most 7 days, whatever the daemon allows.
    let horizon = if upstream { v.horizon_ms.min(SCHEDULE_HORIZON_MS) } else { v.horizon_ms };
    if at - v.now_ms > horizon {
        let days = horizon as f64 / 86_400_000.0;
        return Err(FieldError::new(field, format!("{text} is more than {days} days ahead")));
    }
    Ok(at)
}

fn check_display_window(w: &DisplayWindow, now_ms: i64) -> Result<(i64, i64), FieldError> {
    let begin = parse_schedule(&w.begin).map_err(|m| FieldError::new("settings.display_window.begin", m))?;
    let end = parse_schedule(&w.end).map_err(|m| FieldError::new("settings.display_window.end", m))?;
    if end - begin <= MIN_DISPLAY_WINDOW_MS {
        return Err(FieldError::new("settings.display_window.end", "must be more than 10 minutes after begin"));
    }
    if end <= now_ms {
        return Err(FieldError::new("settings.display_window.end", "is in the past; nobody would see the message"));
    }
    Ok((begin, end))
}

/// Condition keys of v2 `/push/tag` (`reference/getui-v2.md` §2.2).
pub const CONDITION_KEYS: [&str; 4] = ["phone_type", "region", "custom_tag", "portrait"];
/// Most conditions one app push takes.
const MAX_CONDITIONS: usize = 100;

/// Checks every condition and normalizes its values to what the wire carries: phone types in
/// lower case, regions as 8-digit codes (names resolved), tags as given.
fn validate_audience(a: AppAudience) -> Result<AppAudience, FieldError> {
    if a.conditions.len() > MAX_CONDITIONS {
        return Err(FieldError::new("audience.conditions", format!("at most {MAX_CONDITIONS} conditions")));
    }
    let conditions = a.conditions.into_iter().enumerate().map(|(i, c)| validate_condition(i, c));
    Ok(AppAudience { conditions: conditions.collect::<Result<_, _>>()? })
}

fn validate_condition(i: usize, c: AudienceCondition) -> Result<AudienceCondition, FieldError> {
    let at = |rest: &str| format!("audience.conditions[{i}].{rest}");
    if !CONDITION_KEYS.contains(&c.key.as_str()) {
        return Err(FieldError::new(
            at("key"),
            format!("{:?} is not a v2 condition key; use phone_type, region, custom_tag or portrait", c.key),
        ));
    }
    if c.values.is_empty() || c.values.len() > 1000 {
        return Err(FieldError::new(at("values"), "must hold 1 to 1000 values"));
    }
    let values = c.values.iter().enumerate().map(|(j, v)| {
        normalize_value(&c.key, v).map_err(|problem| FieldError::new(at(&format!("values[{j}]")), problem))
    });
    Ok(AudienceCondition { values: values.collect::<Result<_, _>>()?, ..c })
}

fn normalize_value(key: &str, value: &str) -> Result<String, String> {
    match key {
        "phone_type" => match value.to_ascii_lowercase().as_str() {
            v @ ("android" | "ios") => Ok(v.to_owned()),
            _ => Err(format!("{value:?} is not a phone type; use android or ios")),
        },
        "region" => regions::resolve(value).ok_or_else(|| {
            format!(
                "{value:?} is neither an 8-digit region code such as 33010000 (Hangzhou) nor a province or city \
                 name such as 浙江 or 杭州"
            )
        }),
        _ if value.trim().is_empty() || value.chars().count() > 32 => {
            Err(format!("{value:?} must be 1 to 32 characters (Getui's tag limit)"))
        }
        _ => Ok(value.to_owned()),
    }
}

/// A plain valid notification campaign for app `main`, for the unit tests of the layers above.
#[cfg(test)]
pub(crate) fn sample_spec() -> CampaignSpec {
    let req: CreateCampaign = serde_json::from_value(serde_json::json!({
        "name": "t", "app": "main", "message": {"notification": {"title": "a", "body": "b"}}
    }))
    .expect("the sample campaign parses");
    let rules = Validation {
        app_channel: &|_| Some(Channel::Getui),
        now_ms: 0,
        horizon_ms: SCHEDULE_HORIZON_MS,
        app_sms: &|_| None,
    };
    req.validate(&rules).expect("the sample campaign is valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(body: serde_json::Value) -> CreateCampaign {
        serde_json::from_value(body).unwrap()
    }

    fn base() -> serde_json::Value {
        serde_json::json!({
            "name": "spring", "app": "main",
            "message": {"notification": {"title": "Sale", "body": "20% off"}}
        })
    }

    const NOW: i64 = 1_795_400_000_000;

    fn validate(v: serde_json::Value) -> Result<CampaignSpec, FieldError> {
        let channel = |a: &str| match a {
            "main" => Some(Channel::Getui),
            "staff" => Some(Channel::Wecom),
            _ => None,
        };
        let sms = main_sms();
        let app_sms = |a: &str| (a == "main").then_some(&sms);
        request(v).validate(&Validation {
            app_channel: &channel,
            now_ms: NOW,
            horizon_ms: SCHEDULE_HORIZON_MS,
            app_sms: &app_sms,
        })
    }

    /// App `main`'s SMS gateway: the simulator's sign name and templates.
    fn main_sms() -> AppSmsFacts {
        AppSmsFacts::new(crate::dev::DEV_SMS_SIGN_NAME, crate::dev::DEV_SMS_TEMPLATES)
    }

    #[test]
    fn auto_mode_follows_the_message() {
        assert_eq!(validate(base()).unwrap().mode, Mode::List);
        let mut v = base();
        v["message"]["notification"]["body"] = "Hi ${name}".into();
        assert_eq!(validate(v).unwrap().mode, Mode::BatchSingle);
        let mut v = base();
        v["audience"] = serde_json::json!({"conditions": [{"key": "phone_type", "values": ["android"]}]});
        let spec = validate(v).unwrap();
        assert_eq!(spec.mode, Mode::App);
        assert_eq!(spec.audience.unwrap().conditions[0].opt, TagMatch::Or);
    }

    #[test]
    fn bad_fields_are_named() {
        let cases = [
            ("app", serde_json::json!("nope")),
            ("name", serde_json::json!("")),
            ("channel", serde_json::json!("sms")),
        ];
        for (field, value) in cases {
            let mut v = base();
            v[field] = value;
            assert_eq!(validate(v).unwrap_err().field, field);
        }
        let mut v = base();
        v["settings"] = serde_json::json!({"ttl_ms": 259_200_001});
        assert_eq!(validate(v).unwrap_err().field, "settings.ttl_ms");
        let mut v = base();
        v["settings"] = serde_json::json!({"group": "has space"});
        assert_eq!(validate(v).unwrap_err().field, "settings.group");
        let mut v = base();
        v["settings"] = serde_json::json!({"schedule_at": "tomorrow"});
        assert_eq!(validate(v).unwrap_err().field, "settings.schedule_at");
        let mut v = base();
        v["message"]["notification"]["title"] = "x".repeat(51).into();
        assert_eq!(validate(v).unwrap_err().field, "message.notification.title");
        let mut v = base();
        v["mode"] = "list".into();
        v["message"]["notification"]["body"] = "Hi ${name}".into();
        assert_eq!(validate(v).unwrap_err().field, "mode");
    }

    fn with(path: &[&str], value: serde_json::Value) -> serde_json::Value {
        let mut v = base();
        let mut at = &mut v;
        for p in &path[..path.len() - 1] {
            at = &mut at[*p];
        }
        at[path[path.len() - 1]] = value;
        v
    }

    fn field_of(v: serde_json::Value) -> String {
        validate(v).unwrap_err().field
    }

    #[test]
    fn conditions_are_normalized_and_checked() {
        let seed = serde_json::json!({"conditions": [
            {"key": "region", "values": ["杭州市", "51010000", "浙江"]},
            {"key": "custom_tag", "values": ["tagtest"], "opt": "not"},
            {"key": "phone_type", "values": ["ANDROID"]}]});
        let spec = validate(with(&["audience"], seed)).unwrap();
        let c = spec.audience.unwrap().conditions;
        assert_eq!(c[0].values, ["33010000", "51010000", "33000000"]);
        assert_eq!((c[1].opt, c[2].opt), (TagMatch::Not, TagMatch::Or));
        assert_eq!(c[2].values, ["android"]);
        let bad = |cond: serde_json::Value| field_of(with(&["audience"], serde_json::json!({"conditions": [cond]})));
        assert_eq!(bad(serde_json::json!({"key": "age", "values": ["0010"]})), "audience.conditions[0].key");
        assert_eq!(
            bad(serde_json::json!({"key": "region", "values": ["33010000", "Atlantis"]})),
            "audience.conditions[0].values[1]"
        );
        assert_eq!(
            bad(serde_json::json!({"key": "phone_type", "values": ["symbian"]})),
            "audience.conditions[0].values[0]"
        );
        assert_eq!(bad(serde_json::json!({"key": "custom_tag", "values": []})), "audience.conditions[0].values");
        assert_eq!(
            bad(serde_json::json!({"key": "custom_tag", "values": ["x".repeat(33)]})),
            "audience.conditions[0].values[0]"
        );
        let opt = with(
            &["audience"],
            serde_json::json!({"conditions": [{"key": "custom_tag", "values": ["a"], "opt": "maybe"}]}),
        );
        assert!(serde_json::from_value::<CreateCampaign>(opt).is_err());
    }

    #[test]
    fn offline_settings_map_to_ttl() {
        let s = |v: serde_json::Value| validate(with(&["settings"], v));
        assert_eq!(s(serde_json::json!({"offline": false})).unwrap().settings.ttl_ms, Some(-1));
        assert_eq!(s(serde_json::json!({"offline": true, "ttl_ms": 600000})).unwrap().settings.ttl_ms, Some(600_000));
        assert_eq!(s(serde_json::json!({"offline": false, "ttl_ms": 600000})).unwrap_err().field, "settings.ttl_ms");
        assert_eq!(s(serde_json::json!({"offline": true, "ttl_ms": -1})).unwrap_err().field, "settings.ttl_ms");
        assert_eq!(s(serde_json::json!({"network_type": "wifi"})).unwrap().settings.network_type, NetworkType::Wifi);
        assert_eq!(s(serde_json::json!({"speed": 0})).unwrap_err().field, "settings.speed");
    }

    #[test]
    fn display_window_must_exceed_ten_minutes() {
        // NOW is 2026-11-22T22:13:20Z; these are Beijing times on 2026-11-24.
        let w = |b: &str, e: &str| with(&["settings"], serde_json::json!({"display_window": {"begin": b, "end": e}}));
        let spec = validate(w("202611240900", "202611241800")).unwrap();
        let (b, e) = spec.settings.display_ms.unwrap();
        assert_eq!(e - b, 9 * 3_600_000);
        assert_eq!(field_of(w("202611240900", "202611240910")), "settings.display_window.end");
        assert_eq!(field_of(w("202611240900", "202611240800")), "settings.display_window.end");
        assert_eq!(field_of(w("9am", "202611241800")), "settings.display_window.begin");
        assert_eq!(field_of(w("202601010900", "202601011800")), "settings.display_window.end");
    }

    #[test]
    fn schedules_respect_the_horizon_and_who_holds_them() {
        let sched =
            |at: &str, via: &str| with(&["settings"], serde_json::json!({"schedule_at": at, "schedule_via": via}));
        assert_eq!(field_of(sched("202611200900", "daemon")), "settings.schedule_at");
        assert!(validate(sched("202611250900", "daemon")).is_ok());
        assert_eq!(field_of(sched("202612250900", "daemon")), "settings.schedule_at");
        // Upstream scheduling is for app campaigns only.
        assert_eq!(field_of(sched("202611250900", "upstream")), "settings.schedule_via");
        let mut app = sched("202611250900", "upstream");
        app["audience"] = serde_json::json!({"conditions": []});
        assert!(validate(app.clone()).unwrap().settings.upstream_schedule);
        // A longer daemon horizon does not stretch Getui's 7 days.
        let long = Validation {
            app_channel: &|_| Some(Channel::Getui),
            now_ms: NOW,
            horizon_ms: 30 * 86_400_000,
            app_sms: &|_| None,
        };
        assert!(request(sched("202612100900", "daemon")).validate(&long).is_ok());
        app["settings"]["schedule_at"] = "202612100900".into();
        assert_eq!(request(app).validate(&long).unwrap_err().field, "settings.schedule_at");
    }

    #[test]
    fn schedule_formats() {
        // 2026-11-23 10:00 Beijing time is 02:00 UTC.
        let compact = parse_schedule("202611231000").unwrap();
        let rfc = parse_schedule("2026-11-23T02:00:00Z").unwrap();
        assert_eq!(compact, rfc);
        assert!(parse_schedule("202613011000").is_err());
        assert!(parse_schedule("2026-11-23 10:00").is_err());
    }

    /// A batch_single campaign of app `main` with `settings.sms_fallback = fallback`.
    fn with_fallback(fallback: serde_json::Value) -> serde_json::Value {
        let mut v = base();
        v["message"]["notification"]["body"] = "Hi ${name}".into();
        v["settings"] = serde_json::json!({"ttl_ms": 7_200_000, "sms_fallback": fallback});
        v
    }

    #[test]
    fn sms_fallback_is_kept_in_the_spec_and_absent_when_not_given() {
        let f = serde_json::json!({"template_id": "1234567", "params": ["${name}", "12"], "after_ms": 60_000});
        let spec = validate(with_fallback(f.clone())).unwrap();
        assert_eq!(spec.mode, Mode::BatchSingle);
        let kept = spec.settings.sms_fallback.clone().unwrap();
        assert_eq!((kept.template_id.as_str(), kept.params.len(), kept.after_ms), ("1234567", 2, 60_000));
        assert_eq!(serde_json::to_value(&spec.settings).unwrap()["sms_fallback"], f);
        // Absent: not written at all, so stored settings keep their older bytes.
        let plain = validate(base()).unwrap().settings;
        assert_eq!(plain.sms_fallback, None);
        assert!(serde_json::to_value(&plain).unwrap().get("sms_fallback").is_none());
        let named = rmp_serde::to_vec_named(&plain).unwrap();
        assert!(!named.windows(12).any(|w| w == b"sms_fallback"));
        let back: CampaignSettings = rmp_serde::from_slice(&named).unwrap();
        assert_eq!(back, plain);
        // Present: written and read back, byte for byte again.
        let bytes = rmp_serde::to_vec_named(&spec.settings).unwrap();
        let back: CampaignSettings = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(back, spec.settings);
        assert_eq!(rmp_serde::to_vec_named(&back).unwrap(), bytes);
        // Unknown fields stay refused, inside the setting too.
        let mut odd = with_fallback(serde_json::json!({"template_id": "1234567", "after_ms": 1, "delay": 2}));
        assert!(serde_json::from_value::<CreateCampaign>(odd.clone()).is_err());
        odd["settings"] = serde_json::json!({"sms": {}});
        assert!(serde_json::from_value::<CreateCampaign>(odd).is_err());
    }

    #[test]
    fn sms_fallback_is_validated_against_the_apps_gateway() {
        let f = |template_id: &str, params: &[&str], after_ms: u64| {
            with_fallback(serde_json::json!({"template_id": template_id, "params": params, "after_ms": after_ms}))
        };
        assert!(validate(f("1000001", &["${name}", "x"], 5_000)).is_ok());
        assert_eq!(field_of(f("999", &[], 5_000)), "settings.sms_fallback.template_id");
        assert_eq!(field_of(f("1000001", &["a"], 5_000)), "settings.sms_fallback.params");
        assert_eq!(field_of(f("1000001", &["a", "b"], 7_200_001)), "settings.sms_fallback.after_ms");
        let mut long = f("1000001", &["a", "b"], crate::domain::sms::MAX_AFTER_MS + 1);
        long["settings"]["ttl_ms"] = 259_200_000.into();
        let e = validate(long).unwrap_err();
        assert!(e.field == "settings.sms_fallback.after_ms" && e.message.contains("3 days"), "{e}");
        assert_eq!(field_of(f("1000001", &["张".repeat(40).as_str(), "b"], 5_000)), "settings.sms_fallback.params");
        // Variables only where recipients carry them.
        let mut list = f("1000001", &["${name}", "b"], 5_000);
        list["mode"] = "list".into();
        list["message"]["notification"]["body"] = "Hi".into();
        assert_eq!(field_of(list), "settings.sms_fallback.params[0]");
        // Offline storage off.
        let mut off = f("1000001", &["a", "b"], 5_000);
        off["settings"] = serde_json::json!({"offline": false, "sms_fallback": off["settings"]["sms_fallback"]});
        assert_eq!(field_of(off), "settings.offline");
        // App campaigns: refused for their mode.
        let mut app = f("1000001", &["a", "b"], 5_000);
        app["message"]["notification"]["body"] = "Hi".into();
        app["audience"] = serde_json::json!({"conditions": []});
        let e = validate(app).unwrap_err();
        assert_eq!(e.field, "settings.sms_fallback");
        assert!(e.message.contains("batch_single or list"), "{e}");
        // WeCom campaigns do not take it.
        let mut wecom = f("1000001", &["a", "b"], 5_000);
        wecom["app"] = "staff".into();
        wecom["message"] = serde_json::json!({"wecom": {"msgtype": "text", "text": {"content": "hi"}}});
        wecom["settings"] = serde_json::json!({"sms_fallback": wecom["settings"]["sms_fallback"]});
        assert_eq!(field_of(wecom), "settings.sms_fallback");
    }

    #[test]
    fn an_app_without_an_sms_gateway_says_what_to_configure() {
        let req = with_fallback(serde_json::json!({"template_id": "1000001", "params": ["a", "b"], "after_ms": 1}));
        let rules = Validation {
            app_channel: &|_| Some(Channel::Getui),
            now_ms: NOW,
            horizon_ms: SCHEDULE_HORIZON_MS,
            app_sms: &|_| None,
        };
        let e = request(req).validate(&rules).unwrap_err();
        assert_eq!(e.field, "settings.sms_fallback");
        assert!(e.message.contains("[apps.main.sms]") && e.message.contains("templates"), "{e}");
    }

    #[test]
    fn state_machine() {
        use CampaignState::*;
        assert_eq!(transition(Draft, Action::Start, false), Some(Running));
        assert_eq!(transition(Draft, Action::Start, true), Some(Scheduled));
        assert_eq!(transition(Running, Action::Pause, false), Some(Paused));
        assert_eq!(transition(Paused, Action::Resume, false), Some(Running));
        assert_eq!(transition(Scheduled, Action::Cancel, false), Some(Cancelled));
        assert_eq!(transition(Completed, Action::Cancel, false), None);
        assert_eq!(transition(Running, Action::Start, false), None);
        assert_eq!(transition(Draft, Action::Pause, false), None);
        assert_eq!(transition(Cancelled, Action::Resume, false), None);
    }
}
