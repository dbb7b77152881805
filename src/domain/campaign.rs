//! Campaigns: the validated specification, the settings, and the state machine
//! `draft → scheduled → running ⇄ paused → completed | cancelled | failed`.

use serde::{Deserialize, Serialize};

use super::message::MessageTemplate;
use super::FieldError;
use crate::upstream::getui::checks;
use crate::upstream::getui::wire::{OptType, MAX_TTL_MS};

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
    pub opt: OptType,
}

fn default_opt() -> OptType {
    OptType::Or
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
    /// Send channel (`getui`).
    pub channel: String,
    /// Send mode, never `Auto` once created.
    pub mode: Mode,
    /// The message.
    pub message: MessageTemplate,
    /// Settings.
    pub settings: CampaignSettings,
    /// App campaigns only.
    pub audience: Option<AppAudience>,
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
    /// `getui` (default).
    #[serde(default = "default_channel")]
    pub channel: String,
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

fn default_channel() -> String {
    "getui".into()
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
}

/// Longest schedule horizon accepted (the seed and Getui: 7 days).
pub const SCHEDULE_HORIZON_MS: i64 = 7 * 86_400_000;

impl CreateCampaign {
    /// Validates every field and resolves `auto`; `app_exists` says whether an app name is
    /// configured. Errors name the field.
    pub fn validate(self, app_exists: &dyn Fn(&str) -> bool, now_ms: i64) -> Result<CampaignSpec, FieldError> {
        let name_len = self.name.chars().count();
        if name_len == 0 || name_len > 100 {
            return Err(FieldError::new("name", "must be 1 to 100 characters"));
        }
        if !app_exists(&self.app) {
            return Err(FieldError::new("app", format!("no app named {:?} in the configuration", self.app)));
        }
        if self.channel != "getui" {
            return Err(FieldError::new("channel", "must be \"getui\""));
        }
        self.message.validate()?;
        let settings = validate_settings(&self.settings, now_ms)?;
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
        Ok(CampaignSpec {
            name: self.name,
            app: self.app,
            channel: self.channel,
            mode,
            message: self.message,
            settings,
            audience,
        })
    }
}

fn validate_settings(s: &CreateSettings, now_ms: i64) -> Result<CampaignSettings, FieldError> {
    if s.speed == Some(0) {
        return Err(FieldError::new(
            "settings.speed",
            "must be at least 1 message per second; leave it out for no limit",
        ));
    }
    if let Some(ttl) = s.ttl_ms {
        if !(-1..=MAX_TTL_MS).contains(&ttl) {
            return Err(FieldError::new(
                "settings.ttl_ms",
                format!("must be -1 (no offline storage) or 0..={MAX_TTL_MS} (3 days)"),
            ));
        }
    }
    if let Some(g) = &s.group {
        checks::check_group_name(g)
            .map_err(|_| FieldError::new("settings.group", "must be 1 to 100 of letters, digits, '-' and '_'"))?;
    }
    let schedule_at_ms = match &s.schedule_at {
        None => None,
        Some(text) => {
            let at = parse_schedule(text).map_err(|m| FieldError::new("settings.schedule_at", m))?;
            if at <= now_ms {
                return Err(FieldError::new("settings.schedule_at", "is in the past"));
            }
            if at - now_ms > SCHEDULE_HORIZON_MS {
                return Err(FieldError::new("settings.schedule_at", "is more than 7 days ahead"));
            }
            Some(at)
        }
    };
    Ok(CampaignSettings {
        speed: s.speed,
        ttl_ms: s.ttl_ms,
        network_type: s.network_type,
        group: s.group.clone(),
        schedule_at_ms,
        replay: s.replay,
    })
}

fn validate_audience(a: AppAudience) -> Result<AppAudience, FieldError> {
    for (i, c) in a.conditions.iter().enumerate() {
        if !["phone_type", "region", "custom_tag", "portrait"].contains(&c.key.as_str()) {
            return Err(FieldError::new(
                format!("audience.conditions[{i}].key"),
                "must be phone_type, region, custom_tag or portrait",
            ));
        }
        if c.values.is_empty() {
            return Err(FieldError::new(format!("audience.conditions[{i}].values"), "must not be empty"));
        }
    }
    Ok(a)
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

    fn validate(v: serde_json::Value) -> Result<CampaignSpec, FieldError> {
        request(v).validate(&|a| a == "main", 1_795_400_000_000)
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
        assert_eq!(spec.audience.unwrap().conditions[0].opt, OptType::Or);
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

    #[test]
    fn schedule_formats() {
        // 2026-11-23 10:00 Beijing time is 02:00 UTC.
        let compact = parse_schedule("202611231000").unwrap();
        let rfc = parse_schedule("2026-11-23T02:00:00Z").unwrap();
        assert_eq!(compact, rfc);
        assert!(parse_schedule("202613011000").is_err());
        assert!(parse_schedule("2026-11-23 10:00").is_err());
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
