//! Legacy Getui SDK pushes as campaigns: the template, settings, audience and SMS fallback the
//! legacy wire carries ([`crate::wire::getui_legacy`]) mapped to the same [`CreateCampaign`]
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
