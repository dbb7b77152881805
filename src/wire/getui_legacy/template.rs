//! Rebuilds the template a legacy SDK encoded into `Transparent`: which kind, its looks and
//! click, its display window, APNs payload and SMS fallback (reference §1.4 and §1.6).
//! The action chain is followed from actionId 1 through its `Goto` links, as the device does.

use std::collections::HashMap;

use super::proto::action_chain::Type;
use super::proto::{ActionChain, SmsInfo, Transparent};
use super::LegacyError;

/// A legacy template as campaignd understands it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyTemplate {
    /// What the device is told to do.
    pub kind: LegacyKind,
    /// The request's `transmissionContent` (the template's pass-through payload; may be "").
    pub transmission_content: String,
    /// The APNs payload JSON (`pushInfo.apnJson` when `invalidAPN` is not true).
    pub apns_json: Option<String>,
    /// Display window `(startMs, endMs)` from a `duration=` condition.
    pub display_ms: Option<(i64, i64)>,
    /// SMS fallback (短信补量).
    pub sms: Option<LegacySms>,
    /// The template's appKey.
    pub app_key: String,
    /// The template's appId.
    pub app_id: String,
}

/// The kinds of legacy templates campaignd accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegacyKind {
    /// Notification (templateId 0, click starts the app) or Link (1, click opens a URL).
    Notification {
        /// What it shows.
        looks: LegacyLooks,
        /// What a tap does.
        click: LegacyClick,
    },
    /// Transmission (4). Also the APN-only template (5), whose content is all in `apns_json`.
    Transmission {
        /// Start the app on arrival (transmissionType 1).
        auto_start: bool,
    },
    /// NotyPopLoad (2): notification → popup → download.
    PopupDownload {
        /// The notification.
        looks: LegacyLooks,
        /// The popup and the download.
        popup: LegacyPopup,
    },
    /// Revoke (8): withdraw an earlier task from devices.
    Revoke {
        /// The task to revoke.
        task_id: String,
    },
}

/// What a notification shows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LegacyLooks {
    /// Title.
    pub title: String,
    /// Text.
    pub text: String,
    /// Embedded icon file name.
    pub logo: String,
    /// Icon URL.
    pub logo_url: String,
    /// Ring on arrival.
    pub ring: bool,
    /// Vibrate on arrival (`buzz`).
    pub vibrate: bool,
    /// Swipe-away allowed.
    pub clearable: bool,
}

/// What tapping a notification does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegacyClick {
    /// Start the app (Notification template).
    StartApp,
    /// Open this URL (Link template).
    Url(String),
}

/// The popup and download of a NotyPopLoad template.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LegacyPopup {
    /// Popup title.
    pub title: String,
    /// Popup text.
    pub content: String,
    /// Popup image URL.
    pub image: String,
    /// Confirm and cancel labels.
    pub buttons: [String; 2],
    /// Download title.
    pub download_title: String,
    /// Download URL.
    pub download_url: String,
    /// Download icon.
    pub download_logo: String,
    /// Install without asking.
    pub auto_install: bool,
    /// Start the app after installing.
    pub auto_start: bool,
}

/// The SMS fallback of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacySms {
    /// The SMS template id.
    pub template_id: String,
    /// Template variables in the SDK's order, without the AppLink entries.
    pub vars: Vec<(String, String)>,
    /// The AppLink URL (`url` entry after `applinkIdentification`).
    pub applink_url: Option<String>,
    /// Delay after the push, ms.
    pub offline_send_ms: i64,
}

/// Template ids of the SDK's templates (`Transparent.templateId`).
mod ids {
    pub const NOTIFICATION: i32 = 0;
    pub const LINK: i32 = 1;
    pub const NOTY_POP_LOAD: i32 = 2;
    pub const TRANSMISSION: i32 = 4;
    pub const APN: i32 = 5;
    pub const START_ACTIVITY: i32 = 7;
    pub const REVOKE: i32 = 8;
}

/// Stands for an absent `templateId` (no SDK template uses −1).
const NO_TEMPLATE_ID: i32 = -1;

/// Most actions followed from actionId 1: the SDK's longest chain has 6, and a loop must end.
const MAX_STEPS: usize = 16;

/// Rebuilds the template of `t`; `transmission_content` is the request's JSON field.
pub fn read_template(t: &Transparent, transmission_content: &str) -> Result<LegacyTemplate, LegacyError> {
    // Without a templateId (hand-made clients) the chain alone says what the template is.
    let template_id = t.template_id.unwrap_or(NO_TEMPLATE_ID);
    if template_id == ids::START_ACTIVITY {
        return Err(LegacyError::Unsupported(
            "StartActivityTemplate (templateId 7) opens an Android activity by intent; use a Notification \
             or Transmission template"
                .into(),
        ));
    }
    let apns_json = apns_json(t);
    // The APN template's content is all in apnJson; its chain (if any) says nothing to Android.
    let kind = if template_id == ids::APN {
        if apns_json.is_none() {
            return Err(LegacyError::Template("an APN template without pushInfo.apnJson".into()));
        }
        LegacyKind::Transmission { auto_start: false }
    } else {
        Chain::new(&t.action_chain)?.kind()?
    };
    if template_id != NO_TEMPLATE_ID {
        check_template_id(template_id, &kind)?;
    }
    Ok(LegacyTemplate {
        kind,
        transmission_content: transmission_content.to_owned(),
        apns_json,
        display_ms: display_window(&t.condition)?,
        sms: t.sms_info.as_ref().map(read_sms).transpose()?,
        app_key: t.app_key.clone().unwrap_or_default(),
        app_id: t.app_id.clone().unwrap_or_default(),
    })
}

/// The chain says what the device does; `templateId` must agree, so a forged or damaged
/// message is refused rather than sent as something else.
fn check_template_id(id: i32, kind: &LegacyKind) -> Result<(), LegacyError> {
    let agrees = match kind {
        LegacyKind::Notification { click: LegacyClick::StartApp, .. } => id == ids::NOTIFICATION,
        LegacyKind::Notification { click: LegacyClick::Url(_), .. } => id == ids::LINK,
        LegacyKind::PopupDownload { .. } => id == ids::NOTY_POP_LOAD,
        LegacyKind::Transmission { .. } => id == ids::TRANSMISSION || id == ids::APN,
        LegacyKind::Revoke { .. } => id == ids::REVOKE,
    };
    if agrees {
        Ok(())
    } else {
        Err(LegacyError::Template(format!("templateId {id} does not match its action chain ({kind:?})")))
    }
}

fn apns_json(t: &Transparent) -> Option<String> {
    let info = t.push_info.as_ref()?;
    if info.invalid_apn == Some(true) {
        return None;
    }
    info.apn_json.clone().filter(|j| !j.trim().is_empty())
}

/// The action chain by id.
struct Chain<'a> {
    by_id: HashMap<i32, &'a ActionChain>,
}

impl<'a> Chain<'a> {
    fn new(actions: &'a [ActionChain]) -> Result<Self, LegacyError> {
        let mut by_id = HashMap::with_capacity(actions.len());
        for a in actions {
            let id = a.action_id.ok_or_else(|| LegacyError::Template("an action without actionId".into()))?;
            by_id.insert(id, a);
        }
        Ok(Chain { by_id })
    }

    fn get(&self, id: i32) -> Result<&'a ActionChain, LegacyError> {
        self.by_id.get(&id).copied().ok_or_else(|| LegacyError::Template(format!("the chain has no action {id}")))
    }

    /// The first action from `id` on that is not a `Goto` (`None` at the end of actions).
    fn first_real(&self, id: i32) -> Result<Option<&'a ActionChain>, LegacyError> {
        let mut at = id;
        for _ in 0..MAX_STEPS {
            let a = self.get(at)?;
            match kind_of(a)? {
                Type::Goto => at = next_of(a)?,
                Type::Eoa => return Ok(None),
                _ => return Ok(Some(a)),
            }
        }
        Err(LegacyError::Template(format!("the chain loops or is longer than {MAX_STEPS} actions")))
    }

    /// The first action after `a` that does something.
    fn after(&self, a: &ActionChain) -> Result<Option<&'a ActionChain>, LegacyError> {
        self.first_real(next_of(a)?)
    }

    fn kind(&self) -> Result<LegacyKind, LegacyError> {
        let first = self.first_real(1)?.ok_or_else(|| LegacyError::Template("the chain does nothing".into()))?;
        match kind_of(first)? {
            Type::Startapp => Ok(LegacyKind::Transmission { auto_start: first.autostart.unwrap_or(false) }),
            Type::Notification => self.notification(first),
            Type::Mmsinbox2 if first.stype.as_deref() == Some("terminatetask") => revoke(first),
            other => Err(unsupported_action(other)),
        }
    }

    /// A notification and what follows a tap: start the app, open a URL, or a download popup.
    fn notification(&self, n: &ActionChain) -> Result<LegacyKind, LegacyError> {
        let looks = looks(n);
        let then = self.after(n)?.ok_or_else(|| LegacyError::Template("the notification leads nowhere".into()))?;
        match kind_of(then)? {
            Type::Startapp => Ok(LegacyKind::Notification { looks, click: LegacyClick::StartApp }),
            Type::Startweb => {
                let url = then.url.clone().unwrap_or_default();
                Ok(LegacyKind::Notification { looks, click: LegacyClick::Url(url) })
            }
            Type::Popup => Ok(LegacyKind::PopupDownload { looks, popup: self.popup(then)? }),
            other => Err(unsupported_action(other)),
        }
    }

    /// The popup's confirm button leads to the download.
    fn popup(&self, p: &ActionChain) -> Result<LegacyPopup, LegacyError> {
        let label = |i: usize| p.buttons.get(i).and_then(|b| b.text.clone()).unwrap_or_default();
        let confirm = p.buttons.first().and_then(|b| b.next);
        let download = match confirm {
            Some(id) => self.first_real(id)?,
            None => None,
        };
        let d = download
            .filter(|d| d.r#type == Some(Type::Appdownload as i32))
            .ok_or_else(|| LegacyError::Template("the popup's first button does not lead to an appdownload".into()))?;
        Ok(LegacyPopup {
            title: p.title.clone().unwrap_or_default(),
            content: p.text.clone().unwrap_or_default(),
            image: p.img.clone().unwrap_or_default(),
            buttons: [label(0), label(1)],
            download_title: d.name.clone().unwrap_or_default(),
            download_url: d.url.clone().unwrap_or_default(),
            download_logo: d.logo.clone().unwrap_or_default(),
            auto_install: d.auto_install.unwrap_or(false),
            auto_start: d.autostart.unwrap_or(false),
        })
    }
}

fn kind_of(a: &ActionChain) -> Result<Type, LegacyError> {
    let raw = a.r#type.ok_or_else(|| LegacyError::Template("an action without type".into()))?;
    Type::try_from(raw).map_err(|_| LegacyError::Template(format!("unknown action type {raw}")))
}

fn next_of(a: &ActionChain) -> Result<i32, LegacyError> {
    a.next.ok_or_else(|| LegacyError::Template(format!("action {} has no next", a.action_id.unwrap_or_default())))
}

fn unsupported_action(t: Type) -> LegacyError {
    LegacyError::Unsupported(format!("an action chain with a {t:?} action"))
}

fn revoke(a: &ActionChain) -> Result<LegacyKind, LegacyError> {
    match a.taskid.as_deref().map(str::trim) {
        Some(id) if !id.is_empty() => Ok(LegacyKind::Revoke { task_id: id.to_owned() }),
        _ => Err(LegacyError::Template("a revoke without taskid".into())),
    }
}

fn looks(n: &ActionChain) -> LegacyLooks {
    LegacyLooks {
        title: n.title.clone().unwrap_or_default(),
        text: n.text.clone().unwrap_or_default(),
        logo: n.logo.clone().unwrap_or_default(),
        logo_url: n.logo_url.clone().unwrap_or_default(),
        // The SDK always writes all three; absent means the SDK's defaults (true).
        ring: n.ring.unwrap_or(true),
        vibrate: n.buzz.unwrap_or(true),
        clearable: n.clearable.unwrap_or(true),
    }
}

/// `duration=<startMs>-<endMs>` among the conditions; empty conditions are the SDK's filler,
/// other keys are ignored (no SDK template writes one).
fn display_window(conditions: &[String]) -> Result<Option<(i64, i64)>, LegacyError> {
    let mut window = None;
    for c in conditions {
        let Some(range) = c.trim().strip_prefix("duration=") else { continue };
        let bad = || LegacyError::Template(format!("condition {c:?} is not duration=<startMs>-<endMs>"));
        let (begin, end) = range.split_once('-').ok_or_else(bad)?;
        let begin: i64 = begin.trim().parse().map_err(|_| bad())?;
        let end: i64 = end.trim().parse().map_err(|_| bad())?;
        if begin >= end {
            return Err(bad());
        }
        window = Some((begin, end));
    }
    Ok(window)
}

/// AppLink entries (`applinkIdentification`, `url`) are the SDK's, not template variables.
fn read_sms(s: &SmsInfo) -> Result<LegacySms, LegacyError> {
    let template_id = s.sms_template_id.clone().unwrap_or_default();
    if template_id.trim().is_empty() {
        return Err(LegacyError::Template("smsInfo.smsTemplateId is empty".into()));
    }
    let mut vars = Vec::with_capacity(s.sms_content.len());
    let mut applink_url = None;
    for e in &s.sms_content {
        let key = e.key.clone().unwrap_or_default();
        let value = e.value.clone().unwrap_or_default();
        match key.as_str() {
            "applinkIdentification" => {}
            "url" => applink_url = Some(value),
            _ => vars.push((key, value)),
        }
    }
    Ok(LegacySms { template_id, vars, applink_url, offline_send_ms: s.offline_sendtime.unwrap_or(0) })
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use prost::Message;

    use super::*;
    use crate::wire::getui_legacy::decode_client_data;
    use crate::wire::getui_legacy::proto::{AppStartUp, Button, InnerFiled, PushInfo, SmsContentEntry};

    fn action(id: i32, ty: Type, next: Option<i32>) -> ActionChain {
        ActionChain { action_id: Some(id), r#type: Some(ty as i32), next, ..Default::default() }
    }

    fn startapp(autostart: bool) -> ActionChain {
        ActionChain {
            appid: Some(String::new()),
            appstartupid: Some(AppStartUp { android: Some("".into()), symbia: Some("".into()), ios: Some("".into()) }),
            autostart: Some(autostart),
            failed_action: Some(100),
            ..action(10030, Type::Startapp, Some(100))
        }
    }

    /// The notification action of capture #5 (title T, text X, all flags true, four fields).
    fn notification_action() -> ActionChain {
        let field = |k: &str, v: &str, t: i32| InnerFiled { key: Some(k.into()), val: Some(v.into()), r#type: Some(t) };
        ActionChain {
            logo: Some("".into()),
            logo_url: Some("".into()),
            title: Some("T".into()),
            text: Some("X".into()),
            clearable: Some(true),
            ring: Some(true),
            buzz: Some(true),
            field: vec![
                field("notifyStyle", "0", 1),
                field("channel", "Default", 0),
                field("channelName", "Default", 0),
                field("channelLevel", "3", 1),
            ],
            ..action(10000, Type::Notification, Some(10010))
        }
    }

    /// A `Transparent` as the Python SDK fills it, with `chain` and `template_id`.
    fn transparent(template_id: i32, chain: Vec<ActionChain>) -> Transparent {
        Transparent {
            id: Some("".into()),
            action: Some("pushmessage".into()),
            task_id: Some("".into()),
            app_key: Some("AK_test".into()),
            app_id: Some("AID_test".into()),
            message_id: Some("".into()),
            push_info: Some(PushInfo { invalid_apn: Some(true), invalid_mpn: Some(true), ..Default::default() }),
            action_chain: chain,
            condition: vec!["".into()],
            template_id: Some(template_id),
            ..Default::default()
        }
    }

    /// Through the wire: protobuf, base64, the capped decoder, then the template reader.
    fn wire_read(t: &Transparent, tc: &str) -> Result<LegacyTemplate, LegacyError> {
        let b64 = base64::engine::general_purpose::STANDARD.encode(t.encode_to_vec());
        read_template(&decode_client_data(&b64)?, tc)
    }

    fn notification_chain(then: ActionChain) -> Vec<ActionChain> {
        vec![
            action(1, Type::Goto, Some(10000)),
            notification_action(),
            action(10010, Type::Goto, Some(then.action_id.unwrap_or_default())),
            then,
            action(100, Type::Eoa, None),
        ]
    }

    fn looks_tx() -> LegacyLooks {
        LegacyLooks {
            title: "T".into(),
            text: "X".into(),
            ring: true,
            vibrate: true,
            clearable: true,
            ..Default::default()
        }
    }

    #[test]
    fn notification_of_capture_5_starts_the_app() {
        let t = wire_read(&transparent(0, notification_chain(startapp(true))), "tc").unwrap();
        assert_eq!(t.kind, LegacyKind::Notification { looks: looks_tx(), click: LegacyClick::StartApp });
        assert_eq!(
            (t.transmission_content.as_str(), t.app_key.as_str(), t.app_id.as_str()),
            ("tc", "AK_test", "AID_test")
        );
        assert_eq!((t.apns_json, t.display_ms, t.sms), (None, None, None));
    }

    #[test]
    fn link_opens_its_url() {
        let web = ActionChain { url: Some("https://example.com/x".into()), ..action(10040, Type::Startweb, Some(100)) };
        let t = wire_read(&transparent(1, notification_chain(web)), "").unwrap();
        assert_eq!(
            t.kind,
            LegacyKind::Notification { looks: looks_tx(), click: LegacyClick::Url("https://example.com/x".into()) }
        );
    }

    /// The chain of the Python SDK's NotyPopLoadTemplate: notification → popup → appdownload.
    #[test]
    fn noty_pop_load_reads_popup_and_download() {
        let button = |text: &str, next: i32| Button { text: Some(text.into()), next: Some(next) };
        let popup = ActionChain {
            title: Some("pt".into()),
            text: Some("pc".into()),
            img: Some("https://img/p.png".into()),
            buttons: vec![button("下载", 10040), button("取消", 100)],
            ..action(10020, Type::Popup, Some(6))
        };
        let download = ActionChain {
            name: Some("App".into()),
            url: Some("https://dl/app.apk".into()),
            logo: Some("dl.png".into()),
            auto_install: Some(true),
            autostart: Some(false),
            appstartupid: Some(AppStartUp::default()),
            ..action(10040, Type::Appdownload, Some(6))
        };
        let mut chain = notification_chain(popup);
        chain.insert(4, download);
        let t = wire_read(&transparent(2, chain), "").unwrap();
        let LegacyKind::PopupDownload { looks, popup } = t.kind else { panic!("not a popup: {:?}", t.kind) };
        assert_eq!(looks, looks_tx());
        assert_eq!(
            popup,
            LegacyPopup {
                title: "pt".into(),
                content: "pc".into(),
                image: "https://img/p.png".into(),
                buttons: ["下载".into(), "取消".into()],
                download_title: "App".into(),
                download_url: "https://dl/app.apk".into(),
                download_logo: "dl.png".into(),
                auto_install: true,
                auto_start: false,
            }
        );
    }

    #[test]
    fn revoke_names_the_old_task() {
        let revoke = ActionChain {
            stype: Some("terminatetask".into()),
            taskid: Some("OSS-0531_RZBMR2SwQj66QmqOy86".into()),
            field: vec![InnerFiled { key: Some("force".into()), val: Some("false".into()), r#type: Some(5) }],
            ..action(1, Type::Mmsinbox2, Some(100))
        };
        let t = wire_read(&transparent(8, vec![revoke, action(100, Type::Eoa, None)]), "").unwrap();
        assert_eq!(t.kind, LegacyKind::Revoke { task_id: "OSS-0531_RZBMR2SwQj66QmqOy86".into() });
    }

    #[test]
    fn transmission_keeps_auto_start_and_the_display_window() {
        let mut t =
            transparent(4, vec![action(1, Type::Goto, Some(10030)), startapp(true), action(100, Type::Eoa, None)]);
        t.condition = vec!["".into(), "duration=1796133432132-1796137032132".into()];
        let read = wire_read(&t, "hello").unwrap();
        assert_eq!(read.kind, LegacyKind::Transmission { auto_start: true });
        assert_eq!(read.display_ms, Some((1796133432132, 1796137032132)));
        t.condition = vec!["duration=5-x".into()];
        assert_eq!(wire_read(&t, "").unwrap_err().result(), "Error");
        t.condition = vec!["duration=9-5".into()];
        assert!(matches!(wire_read(&t, ""), Err(LegacyError::Template(_))));
    }

    #[test]
    fn apn_template_needs_apn_json_and_others_keep_it() {
        let mut t = transparent(5, vec![]);
        assert!(matches!(wire_read(&t, ""), Err(LegacyError::Template(_))));
        t.push_info =
            Some(PushInfo { invalid_apn: Some(false), apn_json: Some(r#"{"aps":{}}"#.into()), ..Default::default() });
        let read = wire_read(&t, "").unwrap();
        assert_eq!(
            (read.kind, read.apns_json.as_deref()),
            (LegacyKind::Transmission { auto_start: false }, Some(r#"{"aps":{}}"#))
        );
        // invalidAPN true means "no APNs payload", whatever apnJson holds.
        t.push_info = Some(PushInfo { invalid_apn: Some(true), apn_json: Some("{}".into()), ..Default::default() });
        assert!(wire_read(&t, "").is_err());
    }

    #[test]
    fn start_activity_broken_chains_and_mismatched_ids_are_refused() {
        let tx = vec![action(1, Type::Goto, Some(10030)), startapp(false), action(100, Type::Eoa, None)];
        assert!(matches!(wire_read(&transparent(7, tx.clone()), ""), Err(LegacyError::Unsupported(_))));
        // A Transmission chain claiming to be a Notification.
        assert!(matches!(wire_read(&transparent(0, tx.clone()), ""), Err(LegacyError::Template(_))));
        // Without templateId the chain decides.
        let mut anonymous = transparent(0, notification_chain(startapp(false)));
        anonymous.template_id = None;
        assert!(matches!(wire_read(&anonymous, "").unwrap().kind, LegacyKind::Notification { .. }));
        // A Goto loop ends with an error, not a hang.
        let looped = vec![action(1, Type::Goto, Some(2)), action(2, Type::Goto, Some(1))];
        assert!(matches!(wire_read(&transparent(4, looped), ""), Err(LegacyError::Template(_))));
        // A link to a missing action, and no chain at all.
        assert!(wire_read(&transparent(4, vec![action(1, Type::Goto, Some(10030))]), "").is_err());
        assert!(wire_read(&transparent(4, vec![]), "").is_err());
        // An action type outside the schema.
        let mut odd = action(1, Type::Goto, Some(2));
        odd.r#type = Some(99);
        assert!(wire_read(&transparent(4, vec![odd]), "").is_err());
    }

    /// Capture #4: AppLink entries come first and are not template variables.
    #[test]
    fn applink_entries_leave_the_vars() {
        let entry = |k: &str, v: &str| SmsContentEntry { key: Some(k.into()), value: Some(v.into()) };
        let mut t =
            transparent(4, vec![action(1, Type::Goto, Some(10030)), startapp(false), action(100, Type::Eoa, None)]);
        t.sms_info = Some(SmsInfo {
            sms_template_id: Some("10000".into()),
            sms_content: vec![
                entry("applinkIdentification", "1"),
                entry("url", "https://example.com/a?n=pl&p="),
                entry("name", "张三"),
                entry("money", "12"),
            ],
            offline_sendtime: Some(60000),
            sms_send_duration: Some(0),
            sms_checked: Some(false),
            sms_checked_error_msg: None,
        });
        let sms = wire_read(&t, "").unwrap().sms.unwrap();
        assert_eq!(sms.vars, vec![("name".into(), "张三".into()), ("money".into(), "12".into())]);
        assert_eq!(sms.applink_url.as_deref(), Some("https://example.com/a?n=pl&p="));
        assert_eq!((sms.template_id.as_str(), sms.offline_send_ms), ("10000", 60000));
        t.sms_info = Some(SmsInfo { sms_template_id: Some(" ".into()), ..Default::default() });
        assert!(matches!(wire_read(&t, ""), Err(LegacyError::Template(_))));
    }
}
