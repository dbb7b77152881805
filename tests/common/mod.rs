//! Helpers shared by the integration tests: start simulators on ephemeral ports, build clients
//! for them, and talk raw HTTP when a test must bypass the client's own checks.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use campaignd::secret::Secret;
use campaignd::simulator::{self, RunningSimulator, SimConfig, Simulator};
use campaignd::upstream::getui::client::CallObserver;
use campaignd::upstream::getui::{GetuiClient, GetuiSettings};
use campaignd::upstream::http::{build_client, read_body, PoolSettings};
use http_body_util::Full;

/// Starts a simulator with `config` on 127.0.0.1:0.
pub async fn start_sim(config: SimConfig) -> RunningSimulator {
    let sim = Simulator::bind("127.0.0.1:0".parse().unwrap(), config)
        .await
        .expect("bind simulator");
    sim.spawn()
}

/// Client settings for a simulator's development app.
pub fn settings_for(base_url: &str) -> GetuiSettings {
    GetuiSettings {
        base_url: base_url.to_owned(),
        app_id: simulator::DEV_APP_ID.into(),
        app_key: simulator::DEV_APP_KEY.into(),
        master_secret: Secret::new(simulator::DEV_MASTER_SECRET),
        request_timeout: Duration::from_secs(5),
        token_refresh_margin: Duration::from_secs(3600),
        pool: PoolSettings::default(),
    }
}

/// Every (endpoint, code) the client reported, in order.
#[derive(Default)]
pub struct Calls(Mutex<Vec<(&'static str, i64)>>);

impl CallObserver for Calls {
    fn observe(&self, endpoint: &'static str, code: i64, _elapsed: Duration) {
        self.0.lock().unwrap().push((endpoint, code));
    }
}

impl Calls {
    pub fn list(&self) -> Vec<(&'static str, i64)> {
        self.0.lock().unwrap().clone()
    }

    pub fn count(&self, endpoint: &str) -> usize {
        self.list().iter().filter(|(e, _)| *e == endpoint).count()
    }
}

/// A client for `sim` that reports its calls.
pub fn client_for(sim: &RunningSimulator) -> (GetuiClient, Arc<Calls>) {
    client_with(settings_for(&sim.getui_base_url()))
}

/// A client with the given settings that reports its calls.
pub fn client_with(settings: GetuiSettings) -> (GetuiClient, Arc<Calls>) {
    let calls = Arc::new(Calls::default());
    let client =
        GetuiClient::with_observer(settings, Some(calls.clone() as Arc<dyn CallObserver>)).unwrap();
    (client, calls)
}

/// The n-th test cid: 32 lowercase hex digits, spread over the id space.
pub fn cid(n: u64) -> String {
    format!("{:016x}{:016x}", n.wrapping_mul(0x9e37_79b9_7f4a_7c15), n)
}

/// Sends a raw request and returns the HTTP status and the parsed JSON body.
pub async fn raw(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let client = build_client(&PoolSettings::default()).unwrap();
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/json");
    if let Some(t) = token {
        req = req.header("token", t);
    }
    let req = req
        .body(Full::new(Bytes::from(serde_json::to_vec(&body).unwrap())))
        .unwrap();
    let resp = client.request(req).await.expect("request");
    let status = resp.status().as_u16();
    let bytes = read_body(resp.into_body()).await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

/// Signs in with raw HTTP and returns the token.
pub async fn raw_token(base: &str) -> String {
    let ts = now_ms().to_string();
    let sign = campaignd::upstream::getui::auth::sign(
        simulator::DEV_APP_KEY,
        &ts,
        simulator::DEV_MASTER_SECRET,
    );
    let (status, body) = raw(
        "POST",
        &format!("{base}/{}/auth", simulator::DEV_APP_ID),
        None,
        serde_json::json!({"sign": sign, "timestamp": ts, "appkey": simulator::DEV_APP_KEY}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["data"]["token"].as_str().unwrap().to_owned()
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}
