//! A real Prometheus scrapes a real daemon during a simulated campaign with faults; every
//! PromQL expression of every dashboard panel and alert rule must be valid and return series.
//! The rules file must pass `promtool check rules`.
//!
//! Without Prometheus on the machine the test says it was skipped; under `CI=true` a missing
//! Prometheus fails it (`.ci/run` installs Debian's `prometheus`).

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use campaignd::simulator::{CallbackPlayer, Delivery, FaultProfile, Inbound, Limits, Signing, SimConfig};
use campaignd::simulator::{SmsSimConfig, DEV_APP_ID, DEV_MASTER_SECRET};
use campaignd::upstream::http::{build_client, PoolSettings};
use campaignd::wire::getui::receipt::ReceiptLine;
use common::{batch_campaign, cid, list_campaign, ndjson_range, spawn_app_with, TestApp};
use http_body_util::Full;

struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn on_path(tool: &str) -> bool {
    Command::new(tool).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

/// Every `expr` of every panel target of a Grafana dashboard, variables filled in.
fn dashboard_exprs(path: &str) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let dash: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(!text.contains("\"uid\": \"prometheus\""), "{path}: no hard-coded data source");
    let mut out = Vec::new();
    for panel in dash["panels"].as_array().unwrap() {
        assert_eq!(
            panel["datasource"]["uid"], "${datasource}",
            "{path}: panel {} must use the variable",
            panel["title"]
        );
        for t in panel["targets"].as_array().unwrap() {
            out.push(t["expr"].as_str().unwrap().replace("$app", ".*").replace("$campaign", ".*"));
        }
    }
    out
}

/// Every alert expression, with threshold comparisons turned into `bool` ones so that the
/// expression returns its series whether or not the alert would fire.
fn rule_exprs(path: &str) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("expr: "))
        .map(|e| {
            [" >= ", " <= ", " == ", " != ", " > ", " < "]
                .iter()
                .fold(e.to_owned(), |acc, op| acc.replace(op, &format!("{}bool ", op.trim_end().to_owned() + " ")))
        })
        .collect()
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn query(prom: &str, expr: &str) -> serde_json::Value {
    let (status, body) =
        common::raw("GET", &format!("{prom}/api/v1/query?query={}", encode(expr)), None, serde_json::Value::Null).await;
    assert_eq!(status, 200, "query {expr} failed: {body}");
    body
}

/// SMS fallback series for their panel and alert: 100 bound recipients of a campaign that texts
/// 100 ms after the push, and receipt lines, one of them forged.
async fn sms_fallback_and_receipts(app: &TestApp) {
    let pairs: Vec<(String, String)> = (0..50).map(|i| (cid(900_000 + i), format!("135{i:08}"))).collect();
    app.api.bind_phones("main", &pairs).await.unwrap();
    let mut texting = batch_campaign("texting");
    texting["settings"] = serde_json::json!({"ttl_ms": 7_200_000,
        "sms_fallback": {"template_id": "1000001", "params": ["会员", "新品"], "after_ms": 100}});
    let id = app.create(texting).await;
    app.api.upload(&id, "application/x-ndjson", ndjson_range(900_000, 50)).await.unwrap();
    app.api.act(&id, "start").await.unwrap();
    let line = |action: &str, secret: &str| {
        let l = ReceiptLine::signed(DEV_APP_ID, &cid(900_001), "RASS_obs", "1", action, 0, secret);
        serde_json::to_string(&l).unwrap()
    };
    let body = [line("0", DEV_MASTER_SECRET), line("10010", DEV_MASTER_SECRET), line("0", "forged")].join("\n");
    let url = format!("http://{}/getui/main/receipts", app.addr);
    let client = build_client(&PoolSettings::default()).unwrap();
    let req = hyper::Request::post(url).body(Full::new(Bytes::from(body))).unwrap();
    assert_eq!(client.request(req).await.unwrap().status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboards_and_alerts_have_data_in_a_real_prometheus() {
    if !on_path("prometheus") || !on_path("promtool") {
        assert!(std::env::var("CI").is_err(), "CI must have Prometheus: .ci/run installs Debian's prometheus package");
        eprintln!("SKIPPED: prometheus/promtool not installed (apt-get install prometheus)");
        return;
    }
    let check = Command::new("promtool").args(["check", "rules", "dashboards/alerts.yml"]).output().unwrap();
    assert!(check.status.success(), "promtool: {}", String::from_utf8_lossy(&check.stdout));

    // A campaign long enough to be scraped many times, under faults so retries happen.
    let profile = FaultProfile { server_error_share: 0.05, ..FaultProfile::by_name("realistic").unwrap() };
    // Notification texts (no marketing window), so the SMS fallback part runs at any hour.
    let sms = SmsSimConfig { marketing_window: None, ..SmsSimConfig::default() };
    let sim = SimConfig { profile, limits: Limits::unlimited(), sms, ..SimConfig::default() };
    let app = spawn_app_with(sim, &[("marketing = true", "marketing = false")]).await;
    let id = app.create(list_campaign("observed", Some(1_000))).await;
    app.upload_range(&id, 0, 60_000).await;
    app.api.act(&id, "start").await.unwrap();
    // A WeCom send, so the staff app's token fetch (gettoken) has series for its alert.
    let note = serde_json::json!({"name": "note", "app": "staff",
                                 "message": {"wecom": {"msgtype": "text", "text": {"content": "hi"}}}});
    let staff = app.create(note).await;
    app.api.upload(&staff, "text/plain", "zhangsan\n".to_owned()).await.unwrap();
    app.api.act(&staff, "start").await.unwrap();
    // WeCom callbacks, one accepted and one forged, for the callback panel and alert.
    let wecom = CallbackPlayer::dev(format!("http://{}/wecom/staff/callback", app.addr));
    assert_eq!(wecom.text("zhangsan", "hello").await.unwrap().status, 200);
    let forged = Delivery::new("zhangsan", Inbound::EnterAgent).signed(Signing { tamper: true, ..Signing::default() });
    assert_eq!(wecom.deliver(&forged).await.unwrap().status, 403);

    sms_fallback_and_receipts(&app).await;

    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: campaignd\n    static_configs:\n      - targets: ['{}']\n",
            app.addr
        ),
    )
    .unwrap();
    let _prom = Reaped(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let prom = format!("http://127.0.0.1:{port}");

    // Wait until Prometheus holds a dozen scrapes of the running campaign.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let url = format!("{prom}/api/v1/query?query={}", encode("count_over_time(campaignd_chunks_inflight[1m])"));
        let answer = common::try_raw("GET", &url, None, serde_json::Value::Null).await;
        let (status, body) = answer.unwrap_or((0, serde_json::Value::Null));
        let n = body["data"]["result"][0]["value"][1].as_str().and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        if status == 200 && n >= 12.0 {
            break;
        }
        assert!(Instant::now() < deadline, "Prometheus did not scrape the daemon: {body}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let v = app.api.campaign(&id).await.unwrap();
    assert_eq!(v.state, "running", "the campaign must still run while the expressions are checked");

    let mut exprs = dashboard_exprs("dashboards/campaignd-overview.json");
    exprs.extend(dashboard_exprs("dashboards/campaignd-campaign.json"));
    let rules = rule_exprs("dashboards/alerts.yml");
    assert_eq!(rules.len(), 8, "{rules:?}");
    exprs.extend(rules);
    let mut empty = Vec::new();
    for e in &exprs {
        let body = query(&prom, e).await;
        assert_eq!(body["status"], "success", "{e}: {body}");
        if body["data"]["result"].as_array().is_none_or(|r| r.is_empty()) {
            empty.push(e.clone());
        }
    }
    assert!(empty.is_empty(), "expressions without series:\n{}", empty.join("\n"));
    app.api.act(&id, "cancel").await.unwrap();
    app.stop().await;
}
