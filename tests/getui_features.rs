//! What the Getui push documents promise, end to end through the API, the dispatcher and the
//! simulator: tag conditions over the simulated device population, templates and the APNs
//! payload on the wire, message settings, upstream-held schedules, and the refusals of each.

mod common;

use campaignd::client::ClientError;
use campaignd::protocol::CampaignView;
use common::{raw, spawn_app, TestApp};
use serde_json::{json, Value};

/// The field a refused create names.
async fn refused_field(app: &TestApp, body: Value) -> String {
    match app.api.create(&body).await {
        Err(ClientError::Api { status: 400, field: Some(f), .. }) => f,
        other => panic!("expected a 400 naming a field, got {other:?}"),
    }
}

/// The last body the simulated Getui received at `endpoint` (e.g. `push/tag`).
async fn last_body(app: &TestApp, endpoint: &str) -> Value {
    let (status, body) =
        raw("GET", &format!("http://{}/_sim/last/{endpoint}", app.sim.local_addr()), None, Value::Null).await;
    assert_eq!(status, 200, "{endpoint} was never called: {body}");
    body
}

/// An RFC 3339 time one hour from now, whole seconds.
fn in_an_hour() -> String {
    time::OffsetDateTime::from_unix_timestamp(common::now_ms() as i64 / 1000 + 3600)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

async fn run_to_end(app: &TestApp, body: Value, recipients: u64) -> CampaignView {
    let id = app.create(body).await;
    if recipients > 0 {
        app.upload_range(&id, 0, recipients).await;
    }
    app.api.act(&id, "start").await.unwrap();
    app.wait_final(&id, 60).await
}

fn app_campaign(conditions: Value) -> Value {
    json!({
        "name": "seed-scenario", "app": "main",
        "message": {"link": {"title": "Autumn", "body": "New arrivals", "url": "https://example.com/autumn"}},
        "settings": {"speed": 500, "group": "autumn-ab"},
        "audience": {"conditions": conditions}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_conditions_reach_exactly_the_matching_devices() {
    let app = spawn_app().await;
    // The seed's scenario: city(A|B|C) && !tag(tagtest) && phonetype(android), cities given as
    // a code, a name with its suffix, and a province name.
    let conditions = json!([
        {"key": "region", "values": ["33010000", "成都市", "上海"]},
        {"key": "custom_tag", "values": ["tagtest"], "opt": "not"},
        {"key": "phone_type", "values": ["ANDROID"]}
    ]);
    let done = run_to_end(&app, app_campaign(conditions), 0).await;
    assert_eq!((done.state.as_str(), done.mode.as_str()), ("completed", "app"));
    assert!(done.taskid.as_deref().is_some_and(|t| t.starts_with("RASA-")), "{done:?}");

    let wire = last_body(&app, "push/tag").await;
    assert_eq!(wire["audience"]["tag"][0]["values"], json!(["33010000", "51010000", "31000000"]));
    assert_eq!(wire["audience"]["tag"][1]["opt_type"], "not");
    assert_eq!(wire["audience"]["tag"][2], json!({"key": "phone_type", "values": ["android"], "opt_type": "or"}));
    assert_eq!((wire["settings"]["speed"].as_u64(), wire["group_name"].as_str()), (Some(500), Some("autumn-ab")));
    assert_eq!(wire["push_message"]["notification"]["click_type"], "url");

    let (_, devices) = raw("GET", &format!("http://{}/_sim/devices", app.sim.local_addr()), None, Value::Null).await;
    let devices = devices.as_array().expect("device list");
    let (mut reached, mut expected) = (0, 0);
    for d in devices {
        let region = d["region"].as_str().unwrap();
        let in_city = ["33010000", "51010000", "31010000"].contains(&region);
        let tagged = d["custom_tag"].as_array().unwrap().iter().any(|t| t == "tagtest");
        let wanted = in_city && !tagged && d["phone_type"] == "android";
        let got = d["deliveries"].as_u64().unwrap();
        assert_eq!(got, u64::from(wanted), "device {d} wanted={wanted}");
        reached += got;
        expected += u64::from(wanted);
    }
    assert!(expected > 100, "the scenario should reach a real share of 20 000 devices, got {expected}");
    assert_eq!(reached, expected);
    // Getui's own counts of the task show up in the campaign.
    let counted = app.wait_for(&done.id, 30, |v| v.upstream.is_some()).await;
    assert_eq!(counted.upstream.unwrap().target_num, expected);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_push_without_conditions_goes_to_everyone_via_push_all() {
    let app = spawn_app().await;
    let done = run_to_end(&app, app_campaign(json!([])), 0).await;
    assert_eq!(done.state, "completed");
    assert_eq!(last_body(&app, "push/all").await["audience"], "all");
    let s = app.sim.ledger().summary();
    assert_eq!((s.unique_cids, s.duplicates), (20_000, 0));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_conditions_name_the_value() {
    let app = spawn_app().await;
    let cases = [
        (json!([{"key": "age", "values": ["0010"]}]), "audience.conditions[0].key"),
        (json!([{"key": "region", "values": ["33010000", "Atlantis"]}]), "audience.conditions[0].values[1]"),
        (json!([{"key": "region", "values": ["99010000"]}]), "audience.conditions[0].values[0]"),
        (json!([{"key": "phone_type", "values": ["symbian"]}]), "audience.conditions[0].values[0]"),
        (json!([{"key": "custom_tag", "values": []}]), "audience.conditions[0].values"),
        (json!([{"key": "custom_tag", "values": ["vip"], "opt": "xor"}]), "audience.conditions[0].opt"),
    ];
    for (conditions, field) in cases {
        assert_eq!(refused_field(&app, app_campaign(conditions)).await, field);
    }
    assert!(app.api.list().await.unwrap().is_empty(), "nothing refused was stored");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_and_apns_payload_travel_as_v2_fields() {
    let app = spawn_app().await;
    let ios = json!({"title": "Hi ${name}", "body": "Code ${code}", "badge": "+1", "sound": "silent",
                     "category": "ACTIONABLE", "content_available": true, "payload": {"screen": "sale"},
                     "loc_key": "SALE_BODY", "loc_args": ["20%"]});
    // batch_single: per-recipient variables in the notification and the APNs alert.
    let personal = json!({"name": "personal", "app": "main",
        "message": {"notification": {"title": "Hi ${name}", "body": "Your code is ${code}", "ring": false,
                                     "vibrate": false, "transmission_content": "{\"code\":\"${code}\"}"},
                    "ios": ios}});
    let id = app.create(personal).await;
    let up = app.api.upload(&id, "application/x-ndjson", common::ndjson_range(0, 3)).await.unwrap();
    assert_eq!(up.accepted, 3);
    app.api.act(&id, "start").await.unwrap();
    assert_eq!(app.wait_final(&id, 30).await.progress.sent, 3);
    let batch = last_body(&app, "push/single/batch/cid").await;
    let first = &batch["msg_list"][0];
    let n = &first["push_message"]["notification"];
    assert_eq!((n["title"].as_str(), n["click_type"].as_str()), (Some("Hi user0"), Some("payload")));
    assert_eq!((n["payload"].as_str(), n["channel_level"].as_u64()), (Some("{\"code\":\"0\"}"), Some(2)));
    let apns = &first["push_channel"]["ios"];
    assert_eq!(apns["aps"]["alert"]["title"], "Hi user0");
    assert_eq!(apns["aps"]["alert"]["loc-key"], "SALE_BODY");
    assert_eq!(
        (apns["aps"]["sound"].as_str(), apns["aps"]["content-available"].as_u64()),
        (Some("com.gexin.ios.silence"), Some(1))
    );
    assert_eq!((apns["auto_badge"].as_str(), apns["payload"].as_str()), (Some("+1"), Some("{\"screen\":\"sale\"}")));

    // list: a transmission, then a popup-download notification.
    let transmission = json!({"name": "pass", "app": "main", "message": {"transmission": "{\"sync\":true}"}});
    run_to_end(&app, transmission, 10).await;
    let msg = last_body(&app, "push/list/message").await;
    assert_eq!(msg["push_message"], json!({"transmission": "{\"sync\":true}"}));
    let popup = json!({"name": "apk", "app": "main", "message": {"popup_download": {
        "title": "New version", "body": "Tap to update", "popup_title": "Update?", "popup_content": "3.2 is out",
        "download_title": "shop-3.2.apk", "download_url": "https://example.com/shop-3.2.apk"}}});
    let done = run_to_end(&app, popup, 10).await;
    assert_eq!(done.message_kind, "popup_download");
    let n = last_body(&app, "push/list/message").await["push_message"]["notification"].clone();
    assert_eq!(n["click_type"], "payload", "v2 has no popup template: the app gets it in the payload");
    let carried: Value = serde_json::from_str(n["payload"].as_str().unwrap()).unwrap();
    assert_eq!(carried["popup"]["title"], "Update?");
    assert_eq!(carried["download"], json!({"title": "shop-3.2.apk", "url": "https://example.com/shop-3.2.apk"}));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_templates_name_the_field() {
    let app = spawn_app().await;
    let with = |message: Value| json!({"name": "t", "app": "main", "message": message});
    let cases = [
        (with(json!({})), "message"),
        (with(json!({"transmission": "x", "link": {"title": "t", "body": "b", "url": "https://x"}})), "message"),
        (with(json!({"link": {"title": "t", "body": "b", "url": "u".repeat(1025)}})), "message.link.url"),
        (with(json!({"notification": {"title": "t".repeat(51), "body": "b"}})), "message.notification.title"),
        (
            with(json!({"notification": {"title": "t", "body": "b", "clearable": false}})),
            "message.notification.clearable",
        ),
        (with(json!({"transmission": "x".repeat(3073)})), "message.transmission"),
        (with(json!({"transmission": "x", "ios": {"badge": "many"}})), "message.ios.badge"),
        (with(json!({"transmission": "x", "ios": {"body": "x".repeat(5000)}})), "message.ios"),
        (with(json!({"link": {"title": "t", "body": "b"}})), "message.link"),
    ];
    for (body, field) in cases {
        assert_eq!(refused_field(&app, body).await, field);
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_settings_reach_the_wire_and_the_devices() {
    let app = spawn_app().await;
    let settings = json!({"offline": false, "network_type": "wifi",
                          "display_window": {"begin": "2026-01-01T00:00:00Z", "end": "2099-01-01T00:00:00Z"}});
    let body = json!({"name": "settings", "app": "main", "message": {"notification": {"title": "t", "body": "b"}},
                      "settings": settings});
    let done = run_to_end(&app, body, 400).await;
    assert_eq!(done.display_window.as_ref().map(|w| w[0].as_str()), Some("2026-01-01T00:00:00Z"));
    let msg = last_body(&app, "push/list/message").await;
    assert_eq!(msg["settings"]["ttl"], -1, "offline off is ttl -1");
    assert_eq!(msg["push_message"]["network_type"], 1);
    assert_eq!(msg["push_message"]["duration"], "1767225600000-4070908800000");
    assert_eq!(done.progress.results.get("successed_offline"), None, "nothing is stored offline: {done:?}");
    // Wi-Fi only: online devices off Wi-Fi wait offline, so fewer are reached online than the
    // same list without the restriction.
    let plain = json!({"name": "plain", "app": "main", "message": {"notification": {"title": "t", "body": "b"}}});
    let free = run_to_end(&app, plain, 400).await;
    let online = |v: &CampaignView| v.progress.results.get("successed_online").copied().unwrap_or(0);
    assert!(online(&done) < online(&free), "wifi {} vs any {}", online(&done), online(&free));
    assert!(free.progress.results.get("successed_offline").is_some_and(|&n| n > 0));
    assert_eq!(done.progress.sent, free.progress.sent);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_settings_name_the_field() {
    let app = spawn_app().await;
    let with =
        |settings: Value| json!({"name": "t", "app": "main", "message": {"transmission": "x"}, "settings": settings});
    let window = |b: &str, e: &str| with(json!({"display_window": {"begin": b, "end": e}}));
    let cases = [
        (with(json!({"ttl_ms": 259_200_001})), "settings.ttl_ms"),
        (with(json!({"offline": false, "ttl_ms": 60_000})), "settings.ttl_ms"),
        (with(json!({"network_type": "5g"})), "settings.network_type"),
        (with(json!({"speed": 0})), "settings.speed"),
        (window("2099-01-01T00:00:00Z", "2099-01-01T00:10:00Z"), "settings.display_window.end"),
        (window("2099-01-01T00:00:00Z", "2098-01-01T00:00:00Z"), "settings.display_window.end"),
        (window("someday", "2099-01-01T00:00:00Z"), "settings.display_window.begin"),
        (with(json!({"schedule_at": in_an_hour(), "schedule_via": "upstream"})), "settings.schedule_via"),
        (with(json!({"schedule_at": "201901010000"})), "settings.schedule_at"),
        (with(json!({"schedule_at": "2099-13-01T00:00:00Z"})), "settings.schedule_at"),
        (with(json!({"schedule_at": "209901010000"})), "settings.schedule_at"),
    ];
    for (body, field) in cases {
        assert_eq!(refused_field(&app, body).await, field);
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_campaigns_can_leave_the_schedule_to_getui() {
    let app = spawn_app().await;
    let at_text = in_an_hour();
    let at =
        time::OffsetDateTime::parse(&at_text, &time::format_description::well_known::Rfc3339).unwrap().unix_timestamp()
            * 1000;
    let mut body = app_campaign(json!([{"key": "phone_type", "values": ["ios"]}]));
    body["settings"]["schedule_at"] = at_text.clone().into();
    body["settings"]["schedule_via"] = "upstream".into();
    let id = app.create(body).await;
    let started = app.api.act(&id, "start").await.unwrap();
    assert_eq!(started.state, "running", "pushed at once; Getui holds the time");
    let done = app.wait_for(&id, 30, |v| v.taskid.is_some()).await;
    assert_eq!(done.state, "scheduled", "waits, cancellable, until Getui fires it");
    assert_eq!((done.schedule_via.as_deref(), done.send_result.as_str()), (Some("upstream"), "scheduled_upstream"));
    let wire = last_body(&app, "push/tag").await;
    assert_eq!(wire["settings"]["schedule_time"].as_i64(), Some(at));
    // Getui holds it: nothing delivered yet, and its schedule query agrees.
    assert_eq!(app.sim.ledger().summary().deliveries, 0);
    let token = common::raw_token(&app.sim.getui_base_url()).await;
    let url = format!(
        "{}/{}/task/schedule/{}",
        app.sim.getui_base_url(),
        campaignd::simulator::DEV_APP_ID,
        done.taskid.unwrap()
    );
    let (_, info) = raw("GET", &url, Some(&token), Value::Null).await;
    let entry = info["data"].as_object().unwrap().values().next().unwrap().clone();
    assert_eq!(entry["send_result"], "do_not_send");
    assert_eq!(entry["push_time"], at.to_string());
    // Deleting would orphan Getui's task; cancelling deletes it there too.
    assert!(matches!(app.api.delete(&id).await, Err(ClientError::Api { status: 409, .. })));
    app.api.act(&id, "cancel").await.unwrap();
    let cancelled = app.wait_for(&id, 30, |v| v.withdrawal.is_some()).await;
    assert!(cancelled.withdrawal.as_deref().unwrap().starts_with("deleted"), "{cancelled:?}");
    assert_eq!(cancelled.send_result, "has_delete");
    let (_, info) = raw("GET", &url, Some(&token), Value::Null).await;
    assert_eq!(info["data"].as_object().unwrap().values().next().unwrap()["send_result"], "has_delete");
    app.stop().await;
}
