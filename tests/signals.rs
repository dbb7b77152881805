//! Signals that must not mislead (issue 10, point 7): the stall alert's gauge counts running
//! campaigns only, per-campaign progress series leave with their campaign, and WeCom token
//! failures are labelled with the endpoint that failed.

mod common;

use std::time::{Duration, Instant};

use campaignd::simulator::{Limits, SimConfig};
use common::{list_campaign, spawn_app, spawn_app_with, TestApp};
use serde_json::json;

async fn metrics_text(app: &TestApp) -> String {
    let client = campaignd::upstream::http::build_client(&Default::default()).unwrap();
    let req = hyper::Request::get(format!("http://{}/metrics", app.addr)).body(Default::default()).unwrap();
    let resp = client.request(req).await.unwrap();
    let body = campaignd::upstream::http::read_body(resp.into_body()).await.unwrap();
    String::from_utf8(body.to_vec()).unwrap()
}

/// The value of the series whose name and labels are exactly `series`, if exported.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Polls /metrics until `ready` holds (at most 15 s) and answers the text it held on.
async fn metrics_until(app: &TestApp, what: &str, ready: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let text = metrics_text(app).await;
        if ready(&text) {
            return text;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}; /metrics:\n{text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_recipients_count_running_campaigns_and_waiting_ones_apart() {
    let app = spawn_app().await;
    let tomorrow = time::OffsetDateTime::now_utc() + time::Duration::days(1);
    let mut body = list_campaign("tomorrow", None);
    body["settings"]["schedule_at"] = tomorrow.format(&time::format_description::well_known::Rfc3339).unwrap().into();
    let scheduled = app.create(body).await;
    app.upload_range(&scheduled, 0, 3).await;
    assert_eq!(app.api.act(&scheduled, "start").await.unwrap().state, "scheduled");
    let draft = app.create(list_campaign("draft", None)).await;
    app.upload_range(&draft, 100, 2).await;

    let text = metrics_until(&app, "the waiting gauge", |t| {
        value(t, r#"campaignd_waiting_recipients{app="main",state="scheduled"}"#) == Some(3.0)
            && value(t, r#"campaignd_waiting_recipients{app="main",state="draft"}"#) == Some(2.0)
    })
    .await;
    assert_eq!(
        value(&text, r#"campaignd_pending_recipients{app="main"}"#),
        Some(0.0),
        "nothing is running, so the stall alert has nothing to page about"
    );
    app.stop().await;
}

fn progress_series(id: &str) -> String {
    format!(r#"campaignd_campaign_progress_ratio{{app="main",campaign="{id}"}}"#)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_progress_series_leaves_when_the_campaign_is_deleted_or_finishes() {
    let app = spawn_app().await;
    let deleted = app.create(list_campaign("deleted", None)).await;
    metrics_until(&app, "the draft's series", |t| value(t, &progress_series(&deleted)).is_some()).await;
    app.api.delete(&deleted).await.unwrap();
    metrics_until(&app, "the deleted campaign's series to go", |t| value(t, &progress_series(&deleted)).is_none())
        .await;

    let finished = app.create(list_campaign("finished", None)).await;
    app.upload_range(&finished, 0, 20).await;
    app.api.act(&finished, "start").await.unwrap();
    assert_eq!(app.wait_final(&finished, 30).await.state, "completed");
    metrics_until(&app, "the finished campaign's series to go", |t| value(t, &progress_series(&finished)).is_none())
        .await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wecom_token_failures_are_labelled_with_gettoken() {
    let mut sim = SimConfig { limits: Limits::unlimited(), ..SimConfig::default() };
    sim.wecom.secret = "a-secret-the-daemon-does-not-have".into();
    let app = spawn_app_with(sim, &[]).await;
    let id = app
        .create(json!({"name": "meeting", "app": "staff",
                       "message": {"wecom": {"msgtype": "text", "text": {"content": "三点开会"}}}}))
        .await;
    app.api.upload(&id, "text/plain", "zhangsan\nlisi\n".to_owned()).await.unwrap();
    app.api.act(&id, "start").await.unwrap();
    let gettoken = r#"campaignd_upstream_requests_total{app="staff",code="40001",endpoint="GET /cgi-bin/gettoken"}"#;
    let text = metrics_until(&app, "a gettoken failure", |t| value(t, gettoken).is_some_and(|n| n >= 1.0)).await;
    let mislabelled: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("campaignd_upstream_requests_total{app=\"staff\""))
        .filter(|l| l.contains("message/send"))
        .collect();
    assert!(mislabelled.is_empty(), "no message/send was made: {mislabelled:?}");
    app.stop().await;
}

#[test]
fn the_alert_rules_watch_running_campaigns_and_wecom_sign_in() {
    let rules = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/dashboards/alerts.yml")).unwrap();
    let expr_of = |alert: &str| {
        let at = rules.find(&format!("alert: {alert}")).unwrap_or_else(|| panic!("no alert {alert}"));
        let rest = &rules[at..];
        let line = rest.lines().find(|l| l.trim_start().starts_with("expr:")).unwrap();
        line.trim_start().trim_start_matches("expr:").trim().to_owned()
    };
    let stalled = expr_of("CampaigndDispatchStalled");
    assert!(stalled.contains("campaignd_pending_recipients") && !stalled.contains("waiting"), "{stalled}");
    let wecom = expr_of("CampaigndWecomTokenRefreshFailing");
    assert!(wecom.contains(r#"endpoint="GET /cgi-bin/gettoken""#), "{wecom}");

    // The rules' own unit tests: a scheduled campaign does not page, a stalled running one
    // does, and failing gettoken calls raise the WeCom alert.
    let promtool = std::process::Command::new("promtool")
        .args(["test", "rules", "dashboards/alerts.test.yml"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output();
    match promtool {
        Ok(out) => assert!(out.status.success(), "promtool: {}", String::from_utf8_lossy(&out.stdout)),
        Err(_) => {
            assert!(std::env::var("CI").is_err(), "CI must have promtool: .ci/run installs Debian's prometheus");
            eprintln!("SKIPPED the rule unit tests: promtool is not installed");
        }
    }
}
