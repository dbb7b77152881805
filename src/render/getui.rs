//! Getui: a campaign's spec, and one recipient's variables, into v2 push bodies.
//!
//! [`GetuiRenderer`] is built once per campaign run and holds what every body of the run
//! shares (settings, group, network, display window, the app push's conditions); per recipient
//! it only fills in the message.

use std::borrow::Cow;
use std::cell::Cell;

use crate::domain::campaign::{AudienceCondition, NetworkType, TagMatch};
use crate::domain::message::{json_len, MessageTemplate, NotificationCopy, MAX_APNS_BYTES};
use crate::domain::CampaignSpec;
use crate::wire::getui::checks;
use crate::wire::getui::compact::{BatchBody, BatchMessage, PushMessageJson};
use crate::wire::getui::{
    AllAudience, AllPush, BatchPush, CidAudience, Condition, ListCidPush, ListMessage, Notification, OptType, Push,
    PushMessage, Settings, SingleCidPush, TagAudience, TagPush,
};

/// v2 importance of a notification that rings or vibrates (3) and of a silent one (2): v2 has
/// levels, not separate ring and vibrate switches.
const AUDIBLE_LEVEL: u8 = 3;
const SILENT_LEVEL: u8 = 2;

/// One recipient's message as Getui carries it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GetuiMessage {
    /// The Getui-channel message.
    pub push_message: PushMessage,
    /// Vendor channels (`{"ios": ...}`), when the template has an iOS payload.
    pub push_channel: Option<serde_json::Value>,
}

impl GetuiMessage {
    /// Bytes of the APNs payload, if there is one.
    pub fn apns_bytes(&self) -> usize {
        self.push_channel.as_ref().and_then(|c| c.get("ios")).map_or(0, json_len)
    }

    /// True when the copy fits every limit: Getui's `push_message` rules and Apple's 4 KB. A
    /// recipient's variables can make a copy outgrow a limit its template met.
    pub fn fits(&self) -> bool {
        checks::check_push_message(&self.push_message).is_ok() && self.apns_bytes() <= MAX_APNS_BYTES
    }
}

/// An app campaign's single push: to the whole app, or to the devices its conditions match.
#[derive(Debug, Clone, PartialEq)]
pub enum AppPush<'a> {
    /// `/push/all`.
    All(AllPush<'a>),
    /// `/push/tag`.
    Tag(TagPush<'a>),
}

/// What every Getui body of one campaign run shares, prepared once.
#[derive(Debug, Clone)]
pub struct GetuiRenderer {
    message: MessageTemplate,
    group_name: Option<String>,
    /// List and single pushes: the offline retention only.
    settings: Option<Settings>,
    /// The app push: retention, upstream pacing and an upstream-held schedule.
    app_settings: Settings,
    network_type: Option<u8>,
    duration: Option<String>,
    conditions: Vec<Condition>,
    /// The message's `push_message` JSON with holes for its variables, when it can be written
    /// that way (see [`MessagePieces`]).
    pieces: Option<MessagePieces>,
}

impl GetuiRenderer {
    /// Prepares the bodies of `spec`'s campaign.
    pub fn new(spec: &CampaignSpec) -> GetuiRenderer {
        let s = &spec.settings;
        let conditions = spec.audience.as_ref().map_or(&[][..], |a| &a.conditions[..]);
        let mut renderer = GetuiRenderer {
            message: spec.message.clone(),
            group_name: s.group.clone(),
            settings: s.ttl_ms.map(|ttl| Settings { ttl: Some(ttl), ..Settings::default() }),
            app_settings: Settings {
                ttl: s.ttl_ms,
                speed: s.speed,
                schedule_time: s.schedule_at_ms.filter(|_| s.upstream_schedule),
                ..Settings::default()
            },
            network_type: (s.network_type == NetworkType::Wifi).then_some(1),
            duration: s.display_ms.map(|(begin, end)| format!("{begin}-{end}")),
            conditions: conditions.iter().map(condition).collect(),
            pieces: None,
        };
        renderer.pieces = MessagePieces::of(&renderer);
        renderer
    }

    /// One recipient's message; an unknown variable becomes the empty string.
    pub fn message<'v>(&self, vars: &dyn Fn(&str) -> Option<&'v str>) -> GetuiMessage {
        let copy = self.message.personalize(vars);
        GetuiMessage {
            push_message: PushMessage {
                network_type: self.network_type,
                duration: self.duration.clone(),
                notification: copy.notification.map(notification),
                transmission: copy.transmission,
                revoke: None,
            },
            push_channel: copy.ios.map(|ios| {
                let mut channels = serde_json::Map::new();
                channels.insert("ios".into(), ios);
                serde_json::Value::Object(channels)
            }),
        }
    }

    /// One element of `/push/single/batch/cid`: `message` to `cid`.
    pub fn single<'a>(&self, request_id: Cow<'a, str>, cid: Cow<'a, str>, message: GetuiMessage) -> SingleCidPush<'a> {
        Push {
            request_id,
            group_name: self.group_name.clone(),
            audience: CidAudience { cid: vec![cid] },
            settings: self.settings.clone(),
            push_message: message.push_message,
            push_channel: message.push_channel,
        }
    }

    /// Appends `message`, the copy of `vars`, to `cid` to a `/push/single/batch/cid` body: the
    /// element [`Self::single`] makes, written without being built. When the template has
    /// pieces the copy's JSON is written from them and `vars`, not serialized from `message`.
    pub fn write_single<'v>(
        &self,
        body: &mut BatchBody,
        request_id: &str,
        cid: &[u8; 16],
        message: &GetuiMessage,
        vars: &dyn Fn(&str) -> Option<&'v str>,
    ) -> Result<(), serde_json::Error> {
        let write_pieces;
        let push_message = match &self.pieces {
            Some(pieces) => {
                write_pieces = |out: &mut Vec<u8>| pieces.write(vars, out);
                PushMessageJson::WrittenBy(&write_pieces)
            }
            None => PushMessageJson::Value(&message.push_message),
        };
        body.push(&BatchMessage {
            request_id,
            cid,
            group_name: self.group_name.as_deref(),
            settings: self.settings.as_ref(),
            push_message,
            push_channel: message.push_channel.as_ref(),
        })
    }

    /// `/push/list/message`: the content of the campaign's list task.
    pub fn list_message<'a>(&self, request_id: &'a str) -> ListMessage<'a> {
        let message = self.message(&|_| None);
        ListMessage {
            request_id: Some(request_id.into()),
            group_name: self.group_name.clone(),
            settings: self.settings.clone(),
            push_message: message.push_message,
            push_channel: message.push_channel,
        }
    }

    /// The app campaign's push: `/push/all` without conditions, `/push/tag` with them.
    pub fn app_push<'a>(&self, request_id: &'a str) -> AppPush<'a> {
        let message = self.message(&|_| None);
        if self.conditions.is_empty() {
            AppPush::All(self.app_push_to(request_id, AllAudience, message))
        } else {
            AppPush::Tag(self.app_push_to(request_id, TagAudience { tag: self.conditions.clone() }, message))
        }
    }

    fn app_push_to<'a, A>(&self, request_id: &'a str, audience: A, message: GetuiMessage) -> Push<'a, A> {
        Push {
            request_id: request_id.into(),
            group_name: self.group_name.clone(),
            audience,
            settings: Some(self.app_settings.clone()),
            push_message: message.push_message,
            push_channel: message.push_channel,
        }
    }
}

/// `/push/single/batch/cid` of `messages`, answered with per-message details.
pub fn batch(messages: Vec<SingleCidPush<'_>>) -> BatchPush<'_> {
    BatchPush { is_async: false, msg_list: messages }
}

/// `/push/list/cid`: the list task `taskid` to `cids`, answered with per-cid details.
pub fn list_cid_push<'a>(taskid: &'a str, cids: &'a [String]) -> ListCidPush<'a> {
    ListCidPush {
        audience: CidAudience { cid: cids.iter().map(|c| Cow::Borrowed(c.as_str())).collect() },
        taskid: taskid.into(),
        is_async: false,
    }
}

/// A template's `push_message` JSON cut at its variables: fixed bytes, and the variable whose
/// value, escaped, fills each hole. Made once per run; a copy is then the fixed bytes and its
/// escaped values, byte for byte what serializing the copy writes (a test compares the two), at
/// a fraction of the cost for a batch_single campaign, which writes one copy per recipient.
///
/// Only for templates whose variables all land in plain string fields: an iOS payload is a JSON
/// value, and a popup's payload is JSON inside a string, so a value there is not escaped once;
/// those copies are serialized whole.
#[derive(Debug, Clone)]
struct MessagePieces(Vec<Piece>);

#[derive(Debug, Clone)]
enum Piece {
    Fixed(Vec<u8>),
    Var(String),
}

/// Marks a hole while the pieces are cut: private-use characters, which serde_json writes as
/// they are, around the variable's number. A template holding either is not cut.
const HOLE_OPEN: char = '\u{E000}';
const HOLE_CLOSE: char = '\u{E001}';

impl MessagePieces {
    fn of(renderer: &GetuiRenderer) -> Option<MessagePieces> {
        let t = &renderer.message;
        if t.ios.is_some() || t.popup_download.is_some() {
            return None;
        }
        let plain = serde_json::to_string(&renderer.message(&|_| None).push_message).ok()?;
        if plain.contains([HOLE_OPEN, HOLE_CLOSE]) {
            return None;
        }
        let names: Vec<String> = t.variables().into_iter().collect();
        let holes: Vec<String> = (0..names.len()).map(|i| format!("{HOLE_OPEN}{i}{HOLE_CLOSE}")).collect();
        // A name `variables` missed would be cut as empty text: then the template stays whole.
        let missed = Cell::new(false);
        let hole = |name: &str| {
            let at = names.iter().position(|n| n == name);
            missed.set(missed.get() || at.is_none());
            at.map(|i| holes[i].as_str())
        };
        let marked = renderer.message(&hole);
        if missed.get() || marked.push_channel.is_some() {
            return None;
        }
        let json = serde_json::to_string(&marked.push_message).ok()?;
        let mut pieces = Vec::with_capacity(2 * names.len() + 1);
        let mut rest = json.as_str();
        while let Some(open) = rest.find(HOLE_OPEN) {
            let after = &rest[open + HOLE_OPEN.len_utf8()..];
            let close = after.find(HOLE_CLOSE)?;
            let name = names.get(after[..close].parse::<usize>().ok()?)?;
            pieces.push(Piece::Fixed(rest.as_bytes()[..open].to_vec()));
            pieces.push(Piece::Var(name.clone()));
            rest = &after[close + HOLE_CLOSE.len_utf8()..];
        }
        pieces.push(Piece::Fixed(rest.as_bytes().to_vec()));
        Some(MessagePieces(pieces))
    }

    /// Appends the copy's `push_message` JSON to `out`; an unknown variable is the empty string.
    fn write<'v>(&self, vars: &dyn Fn(&str) -> Option<&'v str>, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        for piece in &self.0 {
            match piece {
                Piece::Fixed(bytes) => out.extend_from_slice(bytes),
                Piece::Var(name) => {
                    let at = out.len();
                    serde_json::to_writer(&mut *out, vars(name).unwrap_or_default())?;
                    // The hole is inside a string already: drop the quotes serde_json adds.
                    out.pop();
                    out.remove(at);
                }
            }
        }
        Ok(())
    }
}

fn notification(n: NotificationCopy) -> Notification {
    Notification {
        title: n.title,
        body: n.body,
        click_type: n.click_type,
        url: n.url,
        intent: n.intent,
        payload: n.payload,
        logo: n.logo,
        logo_url: n.logo_url,
        channel_level: Some(if n.audible { AUDIBLE_LEVEL } else { SILENT_LEVEL }),
        ..Notification::default()
    }
}

fn condition(c: &AudienceCondition) -> Condition {
    let opt_type = match c.opt {
        TagMatch::Or => OptType::Or,
        TagMatch::And => OptType::And,
        TagMatch::Not => OptType::Not,
    };
    Condition { key: c.key.clone(), values: c.values.clone(), opt_type }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::message::substitute;
    use serde_json::{json, Value};

    /// A spec straight from its stored JSON shape, so each test shows every setting it uses.
    fn spec(message: Value, settings: Value, audience: Option<Value>) -> CampaignSpec {
        let mut all = json!({"speed": null, "ttl_ms": null, "network_type": "any", "group": null,
            "schedule_at_ms": null, "replay": "at_least_once", "display_ms": null, "upstream_schedule": false});
        for (k, v) in settings.as_object().expect("settings are an object") {
            all[k] = v.clone();
        }
        serde_json::from_value(json!({"name": "t", "app": "main", "channel": "getui", "mode": "list",
            "message": message, "settings": all, "audience": audience}))
        .expect("a valid spec")
    }

    fn message_of(message: Value) -> GetuiMessage {
        GetuiRenderer::new(&spec(message, json!({}), None)).message(&|_| None)
    }

    fn vars(k: &str) -> Option<&'static str> {
        match k {
            "name" => Some("Li"),
            "pct" => Some("20"),
            _ => None,
        }
    }

    #[test]
    fn a_copy_written_from_the_pieces_is_the_copy_serialized() {
        let templates = [
            json!({"notification": {"title": "Hi ${name}", "body": "${pct}% \"off\" \\ ${nobody}${name}${name}",
                "click_type": "url", "url": "https://s.example/?u=${name}&p=${pct}", "logo": "i.png", "ring": true}}),
            json!({"notification": {"title": "${name}", "body": "b", "transmission_content": "{\"u\":\"${name}\"}"}}),
            json!({"notification": {"title": "no vars", "body": "a $ {x} and ${ unclosed"}}),
            json!({"transmission": "${pct}:${name}"}),
            json!({"link": {"title": "t ${name}", "body": "b\n", "url": "https://l.example/${pct}"}}),
        ];
        let every_setting = json!({"network_type": "wifi", "display_ms": [1767225600000i64, 4070908800000i64],
            "group": "g\"1", "ttl_ms": 60000});
        let values: [&[(&str, &str)]; 4] = [
            &[("name", "Li"), ("pct", "20")],
            &[("name", "q\"uo\\te\n\t\u{1}\u{7f} 李 🎉"), ("pct", "\u{E000}0\u{E001}")],
            &[],
            &[("name", "${pct}"), ("pct", "")],
        ];
        for template in templates {
            for settings in [json!({}), every_setting.clone()] {
                let cut = GetuiRenderer::new(&spec(template.clone(), settings, None));
                assert!(cut.pieces.is_some(), "{template}");
                let whole = GetuiRenderer { pieces: None, ..cut.clone() };
                for v in values {
                    let lookup = |k: &str| v.iter().find(|(n, _)| *n == k).map(|(_, x)| *x);
                    let msg = cut.message(&lookup);
                    let (mut a, mut b) = (BatchBody::default(), BatchBody::default());
                    cut.write_single(&mut a, "rid", &[7; 16], &msg, &lookup).unwrap();
                    whole.write_single(&mut b, "rid", &[7; 16], &msg, &lookup).unwrap();
                    let (a, b) = (String::from_utf8(a.into_json()).unwrap(), String::from_utf8(b.into_json()).unwrap());
                    assert_eq!(a, b, "{template} {v:?}");
                }
            }
        }
    }

    #[test]
    fn templates_whose_values_are_not_escaped_once_are_serialized_whole() {
        let note = json!({"title": "Hi ${name}", "body": "b"});
        let uncut = [
            json!({"notification": note, "ios": {"title": "Hi ${name}", "body": "b"}}),
            json!({"popup_download": {"title": "t", "body": "b", "popup_title": "${name}", "popup_content": "c",
                "download_title": "d", "download_url": "https://d.example/a.apk"}}),
            json!({"notification": {"title": "Hi ${name} \u{E000}", "body": "b"}}),
            json!({"notification": {"title": "Hi", "body": "b", "logo": "\u{E001}.png"}}),
        ];
        for template in uncut {
            assert!(GetuiRenderer::new(&spec(template.clone(), json!({}), None)).pieces.is_none(), "{template}");
        }
        assert!(GetuiRenderer::new(&spec(json!({"notification": note}), json!({}), None)).pieces.is_some());
    }

    #[test]
    fn a_notification_gets_its_variables_network_and_display_window() {
        let s = spec(
            json!({"notification": {"title": "Hi ${name}", "body": "${pct}% off ${nobody}", "click_type": "url",
                "url": "https://s.example/?u=${name}", "logo": "i.png", "ring": false, "vibrate": true}}),
            json!({"network_type": "wifi", "display_ms": [1767225600000i64, 4070908800000i64]}),
            None,
        );
        let m = GetuiRenderer::new(&s).message(&vars);
        assert!(m.fits());
        assert_eq!(m.push_channel, None);
        assert_eq!(
            serde_json::to_value(&m.push_message).unwrap(),
            json!({"network_type": 1, "duration": "1767225600000-4070908800000", "notification": {
                "title": "Hi Li", "body": "20% off ", "click_type": "url", "url": "https://s.example/?u=Li",
                "logo": "i.png", "channel_level": 3}})
        );
    }

    #[test]
    fn variables_are_found_and_rendered() {
        let t = spec(
            json!({"notification": {"title": "Sale", "body": "Hi ${name}, ${pct}% off ${name}"}}),
            json!({}),
            None,
        );
        assert_eq!(t.message.variables().into_iter().collect::<Vec<_>>(), vec!["name", "pct"]);
        let msg = GetuiRenderer::new(&t).message(&|k| (k == "name").then_some("Li"));
        assert_eq!(msg.push_message.notification.unwrap().body, "Hi Li, % off Li");
        assert_eq!(substitute("broken ${name", &|_| Some("x")), "broken ${name");
    }

    #[test]
    fn each_kind_maps_to_its_v2_shape() {
        let n = message_of(json!({"notification": {
            "title": "t", "body": "b", "transmission_content": "{\"k\":1}", "ring": false, "vibrate": false}}));
        let w = n.push_message.notification.unwrap();
        assert_eq!(
            (w.click_type.as_str(), w.payload.as_deref(), w.channel_level),
            ("payload", Some("{\"k\":1}"), Some(2))
        );
        let l = message_of(json!({"link": {"title": "t", "body": "b", "url": "https://x.cn"}}));
        let w = l.push_message.notification.unwrap();
        assert_eq!((w.click_type.as_str(), w.url.as_deref(), w.channel_level), ("url", Some("https://x.cn"), Some(3)));
        let p = message_of(json!({"popup_download": {"title": "t", "body": "b", "popup_title": "p",
            "popup_content": "c", "download_title": "d", "download_url": "https://x.cn/a.apk"}}));
        let w = p.push_message.notification.unwrap();
        assert_eq!(w.click_type, "payload");
        let carried: Value = serde_json::from_str(w.payload.as_deref().unwrap()).unwrap();
        assert_eq!(carried["download"]["url"], "https://x.cn/a.apk");
        assert_eq!(carried["popup"]["buttons"], json!(["下载", "取消"]));
        let t = spec(json!({"transmission": "hello ${name}"}), json!({}), None);
        let m = GetuiRenderer::new(&t).message(&|_| Some("Li"));
        assert_eq!(serde_json::to_value(&m.push_message).unwrap(), json!({"transmission": "hello Li"}));
    }

    #[test]
    fn apns_payload_uses_v2_keys() {
        let t = spec(
            json!({"transmission": "x", "ios": {
                "title": "Hi ${name}", "body": "b", "loc_key": "LK", "loc_args": ["a"], "badge": "+1",
                "sound": "silent", "category": "ACTIONABLE", "content_available": true, "payload": {"k": 1}}}),
            json!({}),
            None,
        );
        t.message.validate().unwrap();
        let m = GetuiRenderer::new(&t).message(&|_| Some("Li"));
        assert_eq!(
            m.push_channel.clone().unwrap(),
            json!({"ios": {"type": "notify", "auto_badge": "+1", "payload": "{\"k\":1}", "aps": {
                "alert": {"title": "Hi Li", "body": "b", "loc-key": "LK", "loc-args": ["a"]},
                "sound": "com.gexin.ios.silence", "category": "ACTIONABLE", "content-available": 1}}})
        );
        assert_eq!(m.apns_bytes(), m.push_channel.unwrap()["ios"].to_string().len());
    }

    #[test]
    fn a_copy_that_outgrows_a_limit_does_not_fit() {
        let t = spec(json!({"notification": {"title": "${name}", "body": "b"}}), json!({}), None);
        let r = GetuiRenderer::new(&t);
        let xs = |n: usize| "x".repeat(n);
        let (x50, x51, x3000, x4100) = (xs(50), xs(51), xs(3000), xs(4100));
        assert!(r.message(&|_| Some(&x50)).fits());
        assert!(!r.message(&|_| Some(&x51)).fits());
        let ios = spec(json!({"transmission": "x", "ios": {"body": "${name}"}}), json!({}), None);
        let r = GetuiRenderer::new(&ios);
        assert!(r.message(&|_| Some(&x3000)).fits());
        assert!(!r.message(&|_| Some(&x4100)).fits(), "over Apple's 4 KB");
    }

    #[test]
    fn single_pushes_carry_ttl_group_and_their_own_cid() {
        let s = spec(
            json!({"notification": {"title": "Hi ${name}", "body": "b"}}),
            json!({"ttl_ms": 3_600_000, "group": "spring-2026", "speed": 50}),
            None,
        );
        let r = GetuiRenderer::new(&s);
        let one = r.single("req-0000000001".into(), "cid-a".into(), r.message(&vars));
        let two = r.single("req-0000000002".into(), "cid-b".into(), r.message(&|_| None));
        assert_eq!(
            serde_json::to_value(batch(vec![one, two])).unwrap(),
            json!({"is_async": false, "msg_list": [
                {"request_id": "req-0000000001", "group_name": "spring-2026", "audience": {"cid": ["cid-a"]},
                 "settings": {"ttl": 3_600_000},
                 "push_message": {"notification": {"title": "Hi Li", "body": "b", "click_type": "startapp", "channel_level": 3}}},
                {"request_id": "req-0000000002", "group_name": "spring-2026", "audience": {"cid": ["cid-b"]},
                 "settings": {"ttl": 3_600_000},
                 "push_message": {"notification": {"title": "Hi ", "body": "b", "click_type": "startapp", "channel_level": 3}}}
            ]})
        );
    }

    #[test]
    fn a_list_message_has_the_group_and_no_settings_without_ttl() {
        let s =
            spec(json!({"transmission": "{\"sync\":true}", "ios": {"body": "sync"}}), json!({"group": "ops_1"}), None);
        let list = GetuiRenderer::new(&s).list_message("req-list-000001");
        assert_eq!(
            serde_json::to_value(&list).unwrap(),
            json!({"request_id": "req-list-000001", "group_name": "ops_1",
                   "push_message": {"transmission": "{\"sync\":true}"},
                   "push_channel": {"ios": {"type": "notify", "aps": {"alert": {"body": "sync"}, "content-available": 0}}}})
        );
        let offline = spec(json!({"transmission": "x"}), json!({"ttl_ms": -1}), None);
        let list = GetuiRenderer::new(&offline).list_message("req-list-000002");
        assert_eq!(serde_json::to_value(&list).unwrap()["settings"], json!({"ttl": -1}));
        let cids = vec!["cid-a".to_owned(), "cid-b".to_owned()];
        assert_eq!(
            serde_json::to_value(list_cid_push("RASL_1", &cids)).unwrap(),
            json!({"audience": {"cid": ["cid-a", "cid-b"]}, "taskid": "RASL_1", "is_async": false})
        );
    }

    #[test]
    fn an_app_push_without_conditions_goes_to_all() {
        let s = spec(
            json!({"transmission": "ping"}),
            json!({"ttl_ms": 600_000, "speed": 100}),
            Some(json!({"conditions": []})),
        );
        let AppPush::All(push) = GetuiRenderer::new(&s).app_push("req-app-0000001") else {
            panic!("no conditions is the whole app");
        };
        assert_eq!(
            serde_json::to_value(&push).unwrap(),
            json!({"request_id": "req-app-0000001", "audience": "all", "settings": {"ttl": 600_000, "speed": 100},
                   "push_message": {"transmission": "ping"}})
        );
    }

    #[test]
    fn an_app_push_with_conditions_goes_to_tags_and_may_be_held_upstream() {
        let conditions = json!({"conditions": [
            {"key": "phone_type", "values": ["android"], "opt": "or"},
            {"key": "region", "values": ["33010000"], "opt": "and"},
            {"key": "custom_tag", "values": ["vip"], "opt": "not"}]});
        let held = json!({"schedule_at_ms": 1_795_568_400_000i64, "upstream_schedule": true, "group": "g"});
        let s = spec(json!({"notification": {"title": "All", "body": "of you"}}), held, Some(conditions.clone()));
        let AppPush::Tag(push) = GetuiRenderer::new(&s).app_push("req-app-0000002") else {
            panic!("conditions make a tag push");
        };
        assert_eq!(
            serde_json::to_value(&push).unwrap(),
            json!({"request_id": "req-app-0000002", "group_name": "g",
                   "audience": {"tag": [
                       {"key": "phone_type", "values": ["android"], "opt_type": "or"},
                       {"key": "region", "values": ["33010000"], "opt_type": "and"},
                       {"key": "custom_tag", "values": ["vip"], "opt_type": "not"}]},
                   "settings": {"schedule_time": 1_795_568_400_000i64},
                   "push_message": {"notification": {"title": "All", "body": "of you", "click_type": "startapp",
                                                     "channel_level": 3}}})
        );
        // A daemon-held schedule does not travel.
        let daemon = json!({"schedule_at_ms": 1_795_568_400_000i64, "upstream_schedule": false});
        let s = spec(json!({"transmission": "x"}), daemon, Some(conditions));
        let AppPush::Tag(push) = GetuiRenderer::new(&s).app_push("req-app-0000003") else { panic!("a tag push") };
        assert_eq!(push.settings, Some(Settings::default()));
    }

    #[test]
    fn domain_and_wire_tag_matches_are_written_alike() {
        for opt in [TagMatch::Or, TagMatch::And, TagMatch::Not] {
            let c = AudienceCondition { key: "custom_tag".into(), values: vec!["v".into()], opt };
            let wire = condition(&c).opt_type;
            assert_eq!(rmp_serde::to_vec_named(&opt).unwrap(), rmp_serde::to_vec_named(&wire).unwrap());
            assert_eq!(serde_json::to_value(opt).unwrap(), serde_json::to_value(wire).unwrap());
        }
    }

    /// Every Getui message of the store-v1 fixtures renders as the code before this module did
    /// (its output was saved as `rendered-v1.json`, with the vars name=Li and pct=20).
    #[test]
    fn messages_render_as_before_the_render_module() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/store-v1");
        let before: Value =
            serde_json::from_str(&std::fs::read_to_string(format!("{dir}/rendered-v1.json")).unwrap()).unwrap();
        let mut checked = 0;
        for (name, expected) in before.as_object().unwrap() {
            let text = std::fs::read_to_string(format!("{dir}/records/{name}.json")).unwrap();
            let mut spec: CampaignSpec =
                serde_json::from_value(serde_json::from_str::<Value>(&text).unwrap()["spec"].clone()).unwrap();
            if spec.message.wecom.is_some() {
                continue;
            }
            // The old rendering left network and display settings to the dispatcher.
            spec.settings.network_type = NetworkType::Any;
            spec.settings.display_ms = None;
            let m = GetuiRenderer::new(&spec).message(&vars);
            let got = json!({"push_message": m.push_message, "push_channel": m.push_channel, "fits": m.fits()});
            assert_eq!(&got, expected, "{name}");
            checked += 1;
        }
        assert_eq!(checked, 7);
    }
}
