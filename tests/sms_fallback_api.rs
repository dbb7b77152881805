//! `settings.sms_fallback` through the control API of a real daemon (issue 13 point 2): a valid
//! setting is stored and shown, each bad one is refused with a 4xx JSON error naming its field,
//! and campaigns without it are as before.

mod common;

use campaignd::client::ClientError;
use campaignd::simulator::{Limits, SimConfig};
use common::{batch_campaign, list_campaign, spawn_app, spawn_app_with, SHIPPED_CONFIG};
use serde_json::{json, Value};

/// Status, field and message of a refused create.
fn refusal(e: ClientError) -> (u16, String, Option<String>, String) {
    match e {
        ClientError::Api { status, code, field, message } => (status, code, field, message),
        other => panic!("expected an API error, got {other}"),
    }
}

/// A batch_single campaign of app `main` (offline for 2 h) texting with `fallback`.
fn with_fallback(fallback: Value) -> Value {
    let mut v = batch_campaign("texted");
    v["settings"] = json!({"ttl_ms": 7_200_000, "sms_fallback": fallback});
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_sms_fallback_is_stored_and_shown_and_bad_ones_name_their_field() {
    let app = spawn_app().await;
    // The shipped configuration's template 1000001 of the simulator: 您好{1}，…{2}…
    let fallback = json!({"template_id": "1000001", "params": ["${name}", "订单已发货"], "after_ms": 5000});
    let made = app.api.create(&with_fallback(fallback.clone())).await.unwrap();
    assert_eq!(made.mode, "batch_single");
    let shown = serde_json::to_value(made.sms_fallback.as_ref().expect("the setting is echoed")).unwrap();
    assert_eq!(shown, fallback);
    let again = app.api.campaign(&made.id).await.unwrap();
    assert_eq!(again.sms_fallback, made.sms_fallback, "read back from the store");

    let mut app_campaign = with_fallback(json!({"template_id": "1000001", "params": ["a", "b"], "after_ms": 5000}));
    app_campaign["message"] = json!({"notification": {"title": "All", "body": "of you"}});
    app_campaign["mode"] = "app".into();
    let mut too_late = with_fallback(json!({"template_id": "1000001", "params": ["a", "b"], "after_ms": 259_200_001}));
    too_late["settings"]["ttl_ms"] = 259_200_000.into();
    let cases = [
        (app_campaign, "settings.sms_fallback", "batch_single or list"),
        (
            with_fallback(json!({"template_id": "404", "params": [], "after_ms": 5000})),
            "settings.sms_fallback.template_id",
            "not configured",
        ),
        (
            with_fallback(json!({"template_id": "1000001", "params": ["only one"], "after_ms": 5000})),
            "settings.sms_fallback.params",
            "2 placeholders",
        ),
        (too_late, "settings.sms_fallback.after_ms", "3 days"),
        (
            with_fallback(json!({"template_id": "1000001", "params": ["张".repeat(40), "b"], "after_ms": 5000})),
            "settings.sms_fallback.params",
            "characters",
        ),
        (
            with_fallback(json!({"template_id": "1000001", "params": ["a", "b"], "after_ms": 7_200_001})),
            "settings.sms_fallback.after_ms",
            "offline time",
        ),
        (
            with_fallback(json!({"template_id": "1000001", "params": ["a", "b"], "after_ms": 5000, "delay": 1})),
            "settings.sms_fallback.delay",
            "unknown field",
        ),
    ];
    for (body, field, says) in cases {
        let (status, code, got, message) = refusal(app.api.create(&body).await.unwrap_err());
        assert_eq!((status, code.as_str(), got.as_deref()), (400, "invalid_field", Some(field)), "{body}");
        assert!(message.contains(says), "{field}: {message}");
    }

    // Without the setting nothing changed: no sms_fallback key in the view's JSON.
    let plain = app.api.create(&list_campaign("plain", None)).await.unwrap();
    assert_eq!(plain.sms_fallback, None);
    assert!(serde_json::to_value(&plain).unwrap().get("sms_fallback").is_none());
    assert_eq!(app.api.list().await.unwrap().len(), 2, "only the two valid campaigns were stored");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_without_an_sms_gateway_refuses_the_setting_and_says_what_to_configure() {
    let (_, rest) = SHIPPED_CONFIG.split_once("# --- sms begin\n").expect("the shipped sms section");
    let (section, _) = rest.split_once("# --- sms end\n").expect("its end");
    // The test config has already pointed base_url at the simulator: turn that line into a
    // comment and drop the rest of the section around it.
    let (head, from_url) = section.split_once("base_url = ").expect("the section's base_url");
    let (_, tail) = from_url.split_once('\n').expect("the line's end");
    let sim = SimConfig { limits: Limits::unlimited(), ..SimConfig::default() };
    let app = spawn_app_with(sim, &[(head, "# no SMS gateway in this test: "), (tail, "")]).await;
    let body = with_fallback(json!({"template_id": "1000001", "params": ["a", "b"], "after_ms": 5000}));
    let (status, _, field, message) = refusal(app.api.create(&body).await.unwrap_err());
    assert_eq!((status, field.as_deref()), (400, Some("settings.sms_fallback")));
    assert!(message.contains("[apps.main.sms]"), "{message}");
    assert!(app.api.create(&batch_campaign("no texts")).await.is_ok());
    app.stop().await;
}
