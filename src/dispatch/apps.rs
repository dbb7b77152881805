//! Per-app sending state shared by every shard: the upstream client, the API-call bucket and
//! the pause imposed by rate-limit answers.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use std::collections::HashMap;

use super::decide::parts::shared_calls;
use crate::metrics::Metrics;
use crate::seal::SealKey;
use crate::upstream::getui::GetuiClient;
use crate::upstream::sms::TencentSmsClient;
use crate::upstream::wecom::WecomClient;
use crate::wire::tencent_sms::SendWindow;

/// The client of the channel an app sends through.
pub enum Upstream {
    /// Getui RestAPI v2.
    Getui(GetuiClient),
    /// WeCom application messages.
    Wecom(WecomClient),
}

/// An app's SMS gateway for fallback texts (`[apps.NAME.sms]`).
pub struct SmsGateway {
    /// The Tencent Cloud SMS client.
    pub client: TencentSmsClient,
    /// The approved signature's content.
    pub sign_name: String,
    /// Template texts by id.
    pub templates: HashMap<String, String>,
    /// The marketing window texts must be sent in (`None`: any time).
    pub window: Option<SendWindow>,
    /// Opens the bound numbers (`store.seal_key_env`); without it nobody can be texted.
    pub seal: Option<SealKey>,
    /// No text before this time (unix seconds): set when the gateway refused a call for its
    /// own send window, whatever `window` says.
    pub refused_until: AtomicI64,
}

/// How long texts wait after the gateway refused a call for its send window.
const GATEWAY_WINDOW_WAIT_S: i64 = 60;

impl SmsGateway {
    /// A gateway for `client`, its signature, templates, window and seal key.
    pub fn new(
        client: TencentSmsClient,
        sign_name: String,
        templates: HashMap<String, String>,
        window: Option<SendWindow>,
        seal: Option<SealKey>,
    ) -> SmsGateway {
        SmsGateway { client, sign_name, templates, window, seal, refused_until: AtomicI64::new(0) }
    }

    /// True when texts may be sent at `unix_s`.
    pub fn window_open(&self, unix_s: i64) -> bool {
        unix_s >= self.refused_until.load(Ordering::Relaxed) && self.window.as_ref().is_none_or(|w| w.contains(unix_s))
    }

    /// The gateway refused a call for its send window at `unix_s`: texts wait a minute.
    pub fn refused_for_window(&self, unix_s: i64) {
        self.refused_until.fetch_max(unix_s + GATEWAY_WINDOW_WAIT_S, Ordering::Relaxed);
    }
}

/// One configured app, ready to send.
pub struct AppSender {
    /// The app's name (metric label).
    pub name: String,
    /// Its upstream client.
    pub upstream: Upstream,
    /// Its SMS gateway, for campaigns with `sms_fallback`.
    pub sms: Option<SmsGateway>,
    /// The app's whole `calls_per_second`; `None`: unlimited.
    calls_per_second: Option<NonZeroU32>,
    /// This daemon's share of it (the whole budget divided among the daemons sending).
    calls: RwLock<Option<Arc<DefaultDirectRateLimiter>>>,
    /// Nobody calls the upstream for this app before this instant (ms since `epoch`).
    paused_until_ms: AtomicU64,
    epoch: Instant,
    metrics: Arc<Metrics>,
}

impl AppSender {
    /// `calls_per_second`: the app's API budget (`None`: unlimited).
    pub fn new(name: &str, upstream: Upstream, calls_per_second: Option<u32>, metrics: Arc<Metrics>) -> Self {
        let calls_per_second = calls_per_second.and_then(NonZeroU32::new);
        let calls = calls_per_second.map(|n| Arc::new(RateLimiter::direct(Quota::per_second(n))));
        AppSender {
            name: name.to_owned(),
            upstream,
            sms: None,
            calls_per_second,
            calls: RwLock::new(calls),
            paused_until_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            metrics,
        }
    }

    /// Gives the app an SMS gateway for fallback texts.
    pub fn with_sms(mut self, gateway: Option<SmsGateway>) -> Self {
        self.sms = gateway;
        self
    }

    /// Waits for the app's pause (after a rate-limit answer) and for a token of its call bucket.
    pub async fn ready_for_call(&self) {
        let started = Instant::now();
        loop {
            let until = self.paused_until_ms.load(Ordering::Relaxed);
            let now = self.epoch.elapsed().as_millis() as u64;
            if until <= now {
                break;
            }
            tokio::time::sleep(Duration::from_millis(until - now)).await;
        }
        self.metrics.waited(&self.name, "upstream", started.elapsed());
        let calls = self.calls.read().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(calls) = calls {
            let t = Instant::now();
            calls.until_ready().await;
            self.metrics.waited(&self.name, "app_calls", t.elapsed());
        }
    }

    /// Takes this daemon's share of the app's call budget when `members` daemons send.
    pub fn share_calls(&self, members: usize) {
        let share =
            self.calls_per_second.map(|n| Arc::new(RateLimiter::direct(Quota::per_second(shared_calls(n, members)))));
        *self.calls.write().unwrap_or_else(|p| p.into_inner()) = share;
    }

    /// Pauses every call of this app for `d` (extends, never shortens, a running pause).
    pub fn pause_for(&self, d: Duration) {
        let until = self.epoch.elapsed().as_millis() as u64 + d.as_millis() as u64;
        self.paused_until_ms.fetch_max(until, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::sms::client::test_settings;

    fn gateway(window: Option<SendWindow>) -> SmsGateway {
        let client = TencentSmsClient::new(test_settings("http://127.0.0.1:9")).expect("a client");
        SmsGateway::new(client, "s".into(), HashMap::new(), window, None)
    }

    #[test]
    fn a_gateway_that_refused_a_call_for_its_window_holds_texts_a_minute() {
        let g = gateway(None);
        let now = 1_800_000_000;
        assert!(g.window_open(now), "notification texts: no window");
        g.refused_for_window(now);
        assert!(!g.window_open(now + 59), "held after the gateway's refusal, not tried every pass");
        assert!(g.window_open(now + 60));
        // 08:00–22:00 Beijing: 1_800_000_000 is 2027-01-15 08:00 UTC, 16:00 in Beijing.
        let marketing = gateway(Some(SendWindow::default()));
        assert!(marketing.window_open(now));
        assert!(!marketing.window_open(now + 7 * 3_600), "23:00 in Beijing");
    }
}
