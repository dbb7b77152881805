//! Legacy Getui SDK pushes as campaigns: the template, settings, audience and SMS fallback the
//! legacy wire carries ([`crate::wire::getui_legacy`]) mapped to the same [`CreateCampaign`](super::campaign::CreateCampaign)
//! parts a `/v1` client would send, so validation and the v2 render stay one code path.

use serde_json::{Map, Value};

use super::campaign::{AppAudience, AudienceCondition, CreateSettings, DisplayWindow, NetworkType, TagMatch};
use super::message::{ApnsTemplate, LinkTemplate, MessageTemplate, NotificationTemplate, PopupDownloadTemplate};
use super::sms::SmsFallback;
use super::FieldError;
use crate::wire::getui_legacy::{
    ContentIdRequest, LegacyClick, LegacyCondition, LegacyKind, LegacyLooks, LegacyPopup, LegacySms, LegacyTemplate,
    PushFields,
};

/// The campaign message of a legacy template. A Link becomes `link` (the seed's LinkTemplate,
/// as `/v1` models it); the APN-only template becomes a `transmission` of the request's
/// transmissionContent (often "") beside `ios`. Revoke is not a message: it is refused here and
/// the handler answers it as unsupported.
pub fn message_of(t: &LegacyTemplate) -> Result<MessageTemplate, FieldError> {
    let mut m = MessageTemplate::default();
    match &t.kind {
        LegacyKind::Notification { looks, click: LegacyClick::StartApp } => {
            m.notification = Some(notification(looks, &t.transmission_content))
        }
        LegacyKind::Notification { looks, click: LegacyClick::Url(url) } => m.link = Some(link(looks, url)),
        // v2 has no "start the app on arrival" for a pass-through message: auto_start is dropped.
        LegacyKind::Transmission { .. } => m.transmission = Some(t.transmission_content.clone()),
        LegacyKind::PopupDownload { looks, popup } => m.popup_download = Some(popup_download(looks, popup)),
        LegacyKind::Revoke { task_id } => {
            return Err(FieldError::new(
                "clientData",
                format!(
                    "the revoke template (task {task_id}) is not a campaign; campaignd does not revoke legacy tasks"
                ),
            ))
        }
    }
    m.ios = t.apns_json.as_deref().map(apns_of).transpose()?;
    Ok(m)
}

fn some(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

fn notification(l: &LegacyLooks, transmission_content: &str) -> NotificationTemplate {
    NotificationTemplate {
        title: l.title.clone(),
        body: l.text.clone(),
        click_type: "startapp".into(),
        url: None,
        intent: None,
        payload: None,
        transmission_content: some(transmission_content),
        logo: some(&l.logo),
        logo_url: some(&l.logo_url),
        ring: l.ring,
        vibrate: l.vibrate,
        clearable: l.clearable,
    }
}

fn link(l: &LegacyLooks, url: &str) -> LinkTemplate {
    LinkTemplate {
        title: l.title.clone(),
        body: l.text.clone(),
        url: url.to_owned(),
        logo: some(&l.logo),
        logo_url: some(&l.logo_url),
        ring: l.ring,
        vibrate: l.vibrate,
        clearable: l.clearable,
    }
}

/// Empty button labels get the `/v1` defaults (下载 / 取消), as the SDK's console shows them.
fn popup_download(l: &LegacyLooks, p: &LegacyPopup) -> PopupDownloadTemplate {
    let label = |s: &str, default: &str| if s.is_empty() { default.to_owned() } else { s.to_owned() };
    PopupDownloadTemplate {
        title: l.title.clone(),
        body: l.text.clone(),
        logo: some(&l.logo),
        popup_title: p.title.clone(),
        popup_content: p.content.clone(),
        popup_image: some(&p.image),
        popup_buttons: [label(&p.buttons[0], "下载"), label(&p.buttons[1], "取消")],
        download_title: p.download_title.clone(),
        download_url: p.download_url.clone(),
        ring: l.ring,
        vibrate: l.vibrate,
    }
}

/// Getui's silent sound, which `/v1` spells `silent`.
const GETUI_SILENT_SOUND: &str = "com.gexin.ios.silence";

/// The APNs JSON of `setApnInfo` as far as [`ApnsTemplate`] goes: `aps.alert` (a string is
/// the body), sound, badge (`autoBadge` too), category, content-available; every other
/// top-level key is the app's custom payload.
pub fn apns_of(json: &str) -> Result<ApnsTemplate, FieldError> {
    let field = "clientData.pushInfo.apnJson";
    let Value::Object(mut root) = serde_json::from_str(json).map_err(|e| FieldError::new(field, e.to_string()))? else {
        return Err(FieldError::new(field, "is not a JSON object"));
    };
    let aps = match root.remove("aps") {
        Some(Value::Object(a)) => a,
        None | Some(Value::Null) => Map::new(),
        Some(_) => return Err(FieldError::new(format!("{field}.aps"), "is not a JSON object")),
    };
    let mut t = ApnsTemplate::default();
    read_alert(&mut t, aps.get("alert"));
    t.sound = text(aps.get("sound")).map(|s| if s == GETUI_SILENT_SOUND { "silent".into() } else { s });
    t.badge = text(aps.get("badge"))
        .or_else(|| text(aps.get("autoBadge")))
        .or_else(|| text(root.remove("autoBadge").as_ref()));
    t.category = text(aps.get("category"));
    t.content_available = aps.get("content-available").and_then(Value::as_i64) == Some(1);
    t.payload = (!root.is_empty()).then_some(Value::Object(root));
    Ok(t)
}

fn read_alert(t: &mut ApnsTemplate, alert: Option<&Value>) {
    match alert {
        Some(Value::String(body)) => t.body = Some(body.clone()),
        Some(Value::Object(a)) => {
            t.title = text(a.get("title"));
            t.body = text(a.get("body"));
            t.subtitle = text(a.get("subtitle"));
            t.loc_key = text(a.get("loc-key"));
            t.loc_args = texts(a.get("loc-args"));
            t.title_loc_key = text(a.get("title-loc-key"));
            t.title_loc_args = texts(a.get("title-loc-args"));
            t.action_loc_key = text(a.get("action-loc-key"));
            t.launch_image = text(a.get("launch-image"));
        }
        _ => {}
    }
}

/// A string, or a number as text (badges arrive as numbers).
fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn texts(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array).map(|a| a.iter().filter_map(|x| text(Some(x))).collect()).unwrap_or_default()
}

/// The delivery settings of a push. `isOffline: false` is `offline: false` (v2 ttl −1, and
/// offlineExpireTime is then ignored, as the legacy server did); a positive offlineExpireTime
/// is `ttl_ms` (0 or absent leaves campaignd's default). pushNetWorkType 1 is Wi-Fi only; 2
/// ("mobile only") has no v2 equivalent and is sent as any network. A display window too far
/// from the epoch to be a date is written as its raw number, which validation refuses by name.
pub fn settings_of(push: &PushFields, t: &LegacyTemplate) -> CreateSettings {
    let offline = push.is_offline;
    let ttl_ms = match offline {
        Some(false) => None,
        _ => push.offline_expire_time.filter(|&ms| ms > 0),
    };
    let network_type = if push.push_network_type == 1 { NetworkType::Wifi } else { NetworkType::Any };
    let display_window = t.display_ms.map(|(begin, end)| DisplayWindow { begin: rfc3339(begin), end: rfc3339(end) });
    CreateSettings { offline, ttl_ms, network_type, display_window, ..CreateSettings::default() }
}

/// [`settings_of`] plus what `getContentIdAction` adds: `taskGroupName` → `group`, `speed`
/// (0 is unlimited) and `pushTime` → `schedule_at`, unchanged (it is already the
/// `yyyyMMddHHmm` Beijing time that `schedule_at` takes).
pub fn content_settings_of(req: &ContentIdRequest, t: &LegacyTemplate) -> CreateSettings {
    let speed = req.speed.filter(|&s| s > 0).map(|s| u32::try_from(s).unwrap_or(u32::MAX));
    CreateSettings {
        speed,
        group: req.task_group_name.clone().filter(|g| !g.is_empty()),
        schedule_at: req.push_time.clone().filter(|p| !p.trim().is_empty()),
        ..settings_of(&req.push, t)
    }
}

/// Milliseconds since the epoch as RFC 3339 in Beijing time (what the legacy console shows).
fn rfc3339(ms: i64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map(|t| t.to_offset(time::macros::offset!(+8)));
    at.ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| ms.to_string())
}

/// The SMS fallback of a template. Legacy SMS templates name their variables (`${name}`)
/// while the configured gateway templates number them (`{1}`), so `var_order` (the template's
/// `legacy_vars` in the configuration) says which variable is `{1}`, `{2}`, … The AppLink URL
/// has no place in [`SmsFallback`] and is left to the caller.
pub fn sms_fallback_of(sms: &LegacySms, var_order: Option<&[String]>) -> Result<SmsFallback, FieldError> {
    let field = "clientData.smsInfo";
    let Some(order) = var_order else {
        return Err(FieldError::new(
            format!("{field}.smsTemplateId"),
            format!(
                "SMS template {:?} has no legacy_vars in the configuration: list its variable names in the order \
                 of its {{1}}, {{2}}, … placeholders",
                sms.template_id
            ),
        ));
    };
    let value = |name: &String| {
        sms.vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).ok_or_else(|| {
            FieldError::new(
                format!("{field}.smsContent"),
                format!("SMS template {:?} needs the variable {name:?}, which the push does not give", sms.template_id),
            )
        })
    };
    let params = order.iter().map(value).collect::<Result<Vec<_>, _>>()?;
    let after_ms = u64::try_from(sms.offline_send_ms)
        .map_err(|_| FieldError::new(format!("{field}.offlineSendtime"), "must not be negative"))?;
    Ok(SmsFallback { template_id: sms.template_id.clone(), params, after_ms })
}

/// The audience of an app push: `conditions` (keys phoneType, region, tag; optType 0 OR,
/// 1 AND, 2 NOT) and the older phoneTypeList / provinceList / tagList (each one OR
/// condition). Nothing at all is the whole app. Values are checked by campaign validation.
pub fn audience_of(req: &ContentIdRequest) -> Result<AppAudience, FieldError> {
    let mut conditions =
        req.conditions.iter().enumerate().map(|(i, c)| condition(i, c)).collect::<Result<Vec<_>, _>>()?;
    let lists = [("phone_type", &req.phone_type_list), ("region", &req.province_list), ("custom_tag", &req.tag_list)];
    for (key, values) in lists {
        if !values.is_empty() {
            conditions.push(AudienceCondition { key: key.into(), values: normalized(key, values), opt: TagMatch::Or });
        }
    }
    Ok(AppAudience { conditions })
}

fn condition(i: usize, c: &LegacyCondition) -> Result<AudienceCondition, FieldError> {
    let key = match c.key.as_str() {
        "phoneType" => "phone_type",
        "region" => "region",
        "tag" => "custom_tag",
        other => {
            return Err(FieldError::new(
                format!("conditions[{i}].key"),
                format!("{other:?} is not a condition campaignd can send; use phoneType, region or tag"),
            ))
        }
    };
    let opt = match c.opt_type {
        0 => TagMatch::Or,
        1 => TagMatch::And,
        2 => TagMatch::Not,
        n => {
            return Err(FieldError::new(
                format!("conditions[{i}].optType"),
                format!("{n} is not 0 (OR), 1 (AND) or 2 (NOT)"),
            ))
        }
    };
    Ok(AudienceCondition { key: key.into(), values: normalized(key, &c.values), opt })
}

/// The SDK's phone types are upper case (`ANDROID`, `IOS`); campaigns take lower case.
fn normalized(key: &str, values: &[String]) -> Vec<String> {
    if key == "phone_type" {
        values.iter().map(|v| v.to_ascii_lowercase()).collect()
    } else {
        values.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::campaign::{CampaignSpec, CreateCampaign, Mode, Validation, SCHEDULE_HORIZON_MS};
    use crate::domain::sms::AppSmsFacts;
    use crate::domain::Channel;
    use crate::wire::getui_legacy::{decode_client_data, read_template, SingleRequest};

    const NOW: i64 = 1_795_400_000_000; // 2026-11-23 10:13:20 +08:00

    /// Capture #1: the single push of a TransmissionTemplate with SMS info.
    const CAPTURE_1: &str = r#"{"requestId": "1b60fd8e-ed8f-11f1-99f5-02fc00000001", "action": "pushMessageToSingleAction", "appkey": "AK_test", "clientData": "CgASC3B1c2htZXNzYWdlGgAiB0FLX3Rlc3QqCEFJRF90ZXN0MgA6BFgBaAFCBwgBEAAYrk5CGQiuThADGGTiCADqCAYKABIAGgDwCAD4CGRCBAhkEAdKAFAEYiwKBTEwMDAwEg4KBG5hbWUSBuW8oOS4iRILCgVtb25leRICMTIY4NQDIAAoAA==", "transmissionContent": "hello-\u900f\u4f20", "isOffline": true, "offlineExpireTime": 43200000, "pushNetWorkType": 0, "appId": "AID_test", "clientId": "cid-A", "alias": "", "type": 2, "pushType": "TransmissionMsg", "version": "4.1.1.2", "authToken": ""}"#;

    /// Validates as `POST /v1/campaigns` would, for app `main` whose SMS gateway has the
    /// legacy docs' template 10000 (numbered as the configured gateway numbers it).
    fn validate(
        message: MessageTemplate,
        settings: CreateSettings,
        audience: Option<AppAudience>,
    ) -> Result<CampaignSpec, FieldError> {
        let sms = AppSmsFacts::new("campaignd", [("10000", "尊敬的{1},你的余额还剩{2}, 请尽快充值。")]);
        let app_sms = |a: &str| (a == "main").then_some(&sms);
        let request = CreateCampaign {
            name: "legacy".into(),
            app: "main".into(),
            channel: None,
            mode: Mode::Auto,
            message,
            settings,
            audience,
        };
        request.validate(&Validation {
            app_channel: &|a| (a == "main").then_some(Channel::Getui),
            now_ms: NOW,
            horizon_ms: SCHEDULE_HORIZON_MS,
            app_sms: &app_sms,
        })
    }

    fn template(kind: LegacyKind) -> LegacyTemplate {
        LegacyTemplate {
            kind,
            transmission_content: String::new(),
            apns_json: None,
            display_ms: None,
            sms: None,
            app_key: "AK_test".into(),
            app_id: "AID_test".into(),
        }
    }

    fn looks() -> LegacyLooks {
        LegacyLooks {
            title: "T".into(),
            text: "X".into(),
            ring: true,
            vibrate: false,
            clearable: true,
            ..Default::default()
        }
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn capture_1_becomes_a_valid_list_campaign_with_sms_fallback() {
        let req: SingleRequest = serde_json::from_str(CAPTURE_1).unwrap();
        let t =
            read_template(&decode_client_data(&req.push.client_data).unwrap(), &req.push.transmission_content).unwrap();
        let message = message_of(&t).unwrap();
        assert_eq!(message.transmission.as_deref(), Some("hello-透传"));
        let fallback = sms_fallback_of(t.sms.as_ref().unwrap(), Some(&names(&["name", "money"]))).unwrap();
        assert_eq!(
            fallback,
            SmsFallback { template_id: "10000".into(), params: names(&["张三", "12"]), after_ms: 60000 }
        );
        let settings = CreateSettings { sms_fallback: Some(fallback.clone()), ..settings_of(&req.push, &t) };
        let spec = validate(message, settings, None).unwrap();
        assert_eq!(
            (spec.mode, spec.settings.ttl_ms, spec.settings.sms_fallback),
            (Mode::List, Some(43200000), Some(fallback))
        );
    }

    #[test]
    fn sms_fallback_needs_every_variable_in_the_configured_order() {
        let sms = LegacySms {
            template_id: "10000".into(),
            vars: vec![("name".into(), "张三".into()), ("money".into(), "12".into())],
            applink_url: None,
            offline_send_ms: 60000,
        };
        let swapped = sms_fallback_of(&sms, Some(&names(&["money", "name"]))).unwrap();
        assert_eq!(swapped.params, names(&["12", "张三"]));
        let no_config = sms_fallback_of(&sms, None).unwrap_err();
        assert!(no_config.message.contains("legacy_vars"), "{no_config}");
        let missing = sms_fallback_of(&sms, Some(&names(&["name", "date"]))).unwrap_err();
        assert!(missing.message.contains("\"date\""), "{missing}");
        let early = LegacySms { offline_send_ms: -1, ..sms };
        assert_eq!(sms_fallback_of(&early, Some(&[])).unwrap_err().field, "clientData.smsInfo.offlineSendtime");
    }

    #[test]
    fn notification_keeps_its_looks_payload_and_display_window() {
        let mut t = template(LegacyKind::Notification { looks: looks(), click: LegacyClick::StartApp });
        t.transmission_content = "tc".into();
        t.display_ms = Some((NOW + 3_600_000, NOW + 7_200_000));
        let m = message_of(&t).unwrap();
        let n = m.notification.clone().unwrap();
        assert_eq!((n.title.as_str(), n.body.as_str(), n.click_type.as_str()), ("T", "X", "startapp"));
        assert_eq!((n.transmission_content.as_deref(), n.logo, n.ring, n.vibrate), (Some("tc"), None, true, false));
        let push = PushFields { is_offline: Some(true), offline_expire_time: Some(3_600_000), ..Default::default() };
        let settings = settings_of(&push, &t);
        let spec = validate(m, settings, None).unwrap();
        assert_eq!(spec.settings.display_ms, t.display_ms);
        t.transmission_content.clear();
        assert_eq!(message_of(&t).unwrap().notification.unwrap().transmission_content, None);
    }

    #[test]
    fn link_and_popup_download_validate_as_v1_templates() {
        let url = LegacyClick::Url("https://example.com/x".into());
        let link = message_of(&template(LegacyKind::Notification { looks: looks(), click: url })).unwrap();
        assert_eq!(link.link.as_ref().map(|l| l.url.as_str()), Some("https://example.com/x"));
        validate(link, CreateSettings::default(), None).unwrap();
        let popup = LegacyPopup {
            title: "pt".into(),
            content: "pc".into(),
            buttons: [String::new(), "不要".into()],
            download_title: "App".into(),
            download_url: "https://dl/app.apk".into(),
            ..Default::default()
        };
        let m = message_of(&template(LegacyKind::PopupDownload { looks: looks(), popup })).unwrap();
        let p = m.popup_download.clone().unwrap();
        assert_eq!(
            (p.popup_buttons.clone(), p.popup_image, p.download_url.as_str()),
            (["下载".to_owned(), "不要".to_owned()], None, "https://dl/app.apk")
        );
        validate(m, CreateSettings::default(), None).unwrap();
    }

    #[test]
    fn revoke_is_not_a_message() {
        let e = message_of(&template(LegacyKind::Revoke { task_id: "OSS-1".into() })).unwrap_err();
        assert!(e.message.contains("OSS-1"), "{e}");
    }

    #[test]
    fn apn_json_becomes_the_ios_template() {
        let json = r#"{"aps":{"alert":{"title":"Hi","body":"there","loc-args":["a",1]},"sound":"com.gexin.ios.silence","badge":3,"content-available":1,"category":"c"},"order":"42"}"#;
        let ios = apns_of(json).unwrap();
        assert_eq!(
            (ios.title.as_deref(), ios.body.as_deref(), ios.loc_args.clone()),
            (Some("Hi"), Some("there"), names(&["a", "1"]))
        );
        assert_eq!(
            (ios.sound.as_deref(), ios.badge.as_deref(), ios.category.as_deref()),
            (Some("silent"), Some("3"), Some("c"))
        );
        assert!(ios.content_available);
        assert_eq!(ios.payload, Some(serde_json::json!({"order": "42"})));
        assert_eq!(apns_of(r#"{"aps":{"alert":"plain"}}"#).unwrap().body.as_deref(), Some("plain"));
        assert!(apns_of("[1]").is_err() && apns_of("{").is_err() && apns_of(r#"{"aps":5}"#).is_err());
        // The APN-only template: an empty transmission beside the iOS payload.
        let mut t = template(LegacyKind::Transmission { auto_start: false });
        t.apns_json = Some(json.into());
        let m = message_of(&t).unwrap();
        assert_eq!((m.transmission.as_deref(), m.ios.is_some()), (Some(""), true));
        validate(m, CreateSettings::default(), None).unwrap();
    }

    #[test]
    fn offline_and_network_settings() {
        let t = template(LegacyKind::Transmission { auto_start: false });
        let off = PushFields { is_offline: Some(false), offline_expire_time: Some(0), ..Default::default() };
        let s = settings_of(&off, &t);
        assert_eq!((s.offline, s.ttl_ms, s.network_type), (Some(false), None, NetworkType::Any));
        let spec = validate(message_of(&t).unwrap(), s, None).unwrap();
        assert_eq!(spec.settings.ttl_ms, Some(-1));
        let wifi = PushFields { push_network_type: 1, offline_expire_time: Some(600_000), ..Default::default() };
        let s = settings_of(&wifi, &t);
        assert_eq!((s.offline, s.ttl_ms, s.network_type), (None, Some(600_000), NetworkType::Wifi));
        let mobile = PushFields { push_network_type: 2, ..Default::default() };
        assert_eq!(settings_of(&mobile, &t).network_type, NetworkType::Any);
    }

    /// Capture #7 (conditions) and #9 (the old lists), as app campaigns.
    #[test]
    fn app_audiences_of_both_condition_styles() {
        let new_style = r#"{"taskGroupName": "grp-app", "clientData": "", "isOffline": true, "offlineExpireTime": 600000, "conditions": [{"key": "phoneType", "values": ["ANDROID"], "optType": 0}, {"key": "region", "values": ["\u6d59\u6c5f", "33010000"], "optType": 1}, {"key": "tag", "values": ["haha"], "optType": 2}], "speed": 100, "contentType": 2, "appIdList": ["AID_test"], "pushTime": "202611241200"}"#;
        let req: ContentIdRequest = serde_json::from_str(new_style).unwrap();
        let t = template(LegacyKind::Transmission { auto_start: false });
        let a = audience_of(&req).unwrap();
        let keys: Vec<(&str, TagMatch)> = a.conditions.iter().map(|c| (c.key.as_str(), c.opt)).collect();
        assert_eq!(keys, [("phone_type", TagMatch::Or), ("region", TagMatch::And), ("custom_tag", TagMatch::Not)]);
        assert_eq!(a.conditions[0].values, ["android"]);
        let settings = content_settings_of(&req, &t);
        assert_eq!(
            (settings.speed, settings.group.as_deref(), settings.schedule_at.as_deref()),
            (Some(100), Some("grp-app"), Some("202611241200"))
        );
        let spec = validate(message_of(&t).unwrap(), settings, Some(a)).unwrap();
        assert_eq!(spec.mode, Mode::App);
        assert_eq!(spec.audience.unwrap().conditions[1].values, ["33000000", "33010000"]);

        let old_style = r#"{"clientData": "", "isOffline": false, "offlineExpireTime": 0, "phoneTypeList": ["IOS"], "provinceList": ["\u6d59\u6c5f"], "tagList": ["t1"], "speed": 0, "contentType": 2}"#;
        let req: ContentIdRequest = serde_json::from_str(old_style).unwrap();
        let a = audience_of(&req).unwrap();
        assert!(a.conditions.iter().all(|c| c.opt == TagMatch::Or));
        assert_eq!(a.conditions[0].values, ["ios"]);
        assert_eq!(content_settings_of(&req, &t).speed, None);
        validate(message_of(&t).unwrap(), content_settings_of(&req, &t), Some(a)).unwrap();
    }

    #[test]
    fn unknown_condition_keys_and_opt_types_are_refused() {
        let whole: ContentIdRequest = serde_json::from_str(r#"{"contentType": 2}"#).unwrap();
        assert!(audience_of(&whole).unwrap().conditions.is_empty());
        let custom: ContentIdRequest =
            serde_json::from_str(r#"{"conditions": [{"key": "age", "values": ["1"]}]}"#).unwrap();
        assert_eq!(audience_of(&custom).unwrap_err().field, "conditions[0].key");
        let opt: ContentIdRequest =
            serde_json::from_str(r#"{"conditions": [{"key": "tag", "values": ["a"], "optType": 3}]}"#).unwrap();
        assert_eq!(audience_of(&opt).unwrap_err().field, "conditions[0].optType");
    }
}
