//! The raw ceiling: how fast the simulator absorbs `/push/list/cid` calls when the load test
//! itself sends pre-built bodies of distinct cids over N keep-alive connections, with no daemon
//! in between. Dispatch throughput divided by this rate is the `ceiling_ratio`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use bytes::Bytes;
use campaignd::upstream::http::{build_client, read_body, HttpClient};
use campaignd::wire::getui::auth::sign;
use hyper::Request;

/// The credentials of the shipped configuration, which the simulator also uses by default.
const APP_ID: &str = "campaignd-dev-app";
const APP_KEY: &str = "campaignd-dev-key";
const MASTER_SECRET: &str = "campaignd-dev-master-secret";
const CIDS_PER_CALL: usize = 1000;

/// What one ceiling run measured.
pub struct Ceiling {
    pub recipients: u64,
    pub seconds: f64,
}

impl Ceiling {
    pub fn recipients_per_sec(&self) -> f64 {
        self.recipients as f64 / self.seconds.max(1e-9)
    }
}

/// Sends `n` distinct cids (from `encode(base + i)`) to the simulator at `sim_url` as
/// 1000-cid list pushes over `connections` concurrent keep-alive connections.
pub async fn measure(
    sim_url: &str,
    connections: usize,
    n: u64,
    encode: impl Fn(u64, &mut [u8; 32]),
) -> anyhow::Result<Ceiling> {
    let client = build_client(&Default::default())?;
    let v2 = format!("{sim_url}/v2/{APP_ID}");
    let token = authenticate(&client, &v2).await?;
    let taskid = list_task(&client, &v2, &token).await?;
    // Every body is built before the clock starts: only the simulator's work is timed.
    let bodies = Arc::new(bodies(&taskid, n, encode));
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut senders = tokio::task::JoinSet::new();
    for _ in 0..connections.max(1) {
        let (client, bodies, next, token) = (client.clone(), bodies.clone(), next.clone(), token.clone());
        let url = format!("{v2}/push/list/cid");
        senders.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(i) else { return Ok::<_, anyhow::Error>(()) };
                let answer = post(&client, &url, &token, body.clone()).await?;
                if code_of(&answer) != Some(0) {
                    bail!("the simulator refused a list push: {}", String::from_utf8_lossy(&answer));
                }
            }
        });
    }
    while let Some(done) = senders.join_next().await {
        done??;
    }
    Ok(Ceiling { recipients: n, seconds: started.elapsed().as_secs_f64() })
}

fn bodies(taskid: &str, n: u64, encode: impl Fn(u64, &mut [u8; 32])) -> Vec<Bytes> {
    let mut out = Vec::with_capacity((n as usize).div_ceil(CIDS_PER_CALL));
    let mut hex = [0u8; 32];
    let mut i = 0u64;
    while i < n {
        let end = (i + CIDS_PER_CALL as u64).min(n);
        let mut body = Vec::with_capacity(40 + 35 * CIDS_PER_CALL + taskid.len());
        body.extend_from_slice(b"{\"audience\":{\"cid\":[");
        for k in i..end {
            encode(k, &mut hex);
            if k > i {
                body.push(b',');
            }
            body.push(b'"');
            body.extend_from_slice(&hex);
            body.push(b'"');
        }
        body.extend_from_slice(format!("]}},\"taskid\":\"{taskid}\",\"is_async\":false}}").as_bytes());
        out.push(Bytes::from(body));
        i = end;
    }
    out
}

async fn authenticate(client: &HttpClient, v2: &str) -> anyhow::Result<String> {
    let ts = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis().to_string();
    let body = serde_json::json!({"sign": sign(APP_KEY, &ts, MASTER_SECRET), "timestamp": ts, "appkey": APP_KEY});
    let answer = post(client, &format!("{v2}/auth"), "", Bytes::from(body.to_string())).await?;
    let v: serde_json::Value = serde_json::from_slice(&answer).context("the simulator's auth answer")?;
    match v["data"]["token"].as_str() {
        Some(t) => Ok(t.to_owned()),
        None => bail!("the simulator refused auth: {v}"),
    }
}

async fn list_task(client: &HttpClient, v2: &str, token: &str) -> anyhow::Result<String> {
    let body = serde_json::json!({"push_message": {"notification": {
        "title": "Load test", "body": "Same for everyone", "click_type": "startapp"}}});
    let answer = post(client, &format!("{v2}/push/list/message"), token, Bytes::from(body.to_string())).await?;
    let v: serde_json::Value = serde_json::from_slice(&answer).context("the simulator's list/message answer")?;
    match v["data"]["taskid"].as_str() {
        Some(t) => Ok(t.to_owned()),
        None => bail!("the simulator refused the list message: {v}"),
    }
}

async fn post(client: &HttpClient, url: &str, token: &str, body: Bytes) -> anyhow::Result<Bytes> {
    let req = Request::post(url)
        .header("content-type", "application/json;charset=utf-8")
        .header("token", token)
        .body(http_body_util::Full::new(body))?;
    let resp = client.request(req).await?;
    read_body(resp.into_body()).await.map_err(anyhow::Error::msg)
}

/// The `code` of a Getui answer, read without building the (large) `data` map.
fn code_of(answer: &[u8]) -> Option<i64> {
    #[derive(serde::Deserialize)]
    struct Code {
        code: i64,
    }
    serde_json::from_slice::<Code>(answer).ok().map(|c| c.code)
}
