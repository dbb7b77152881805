//! Simulated upstreams for the demo, the tests and the load test: Getui, WeCom and the
//! Tencent Cloud SMS gateway, on one listener.
//!
//! Nothing outside this machine is reachable, so campaignd ships a Getui v2 simulator that
//! behaves like the real API where the daemon can tell: same paths, JSON and codes, token
//! expiry, the sign check, request_id dedup, size limits, quotas, scheduled tasks, and injected
//! faults. It records every delivery in a [`Ledger`] that tests read over HTTP, and can post
//! Getui's receipt lines (消息回执) of delivered messages to a URL ([`ReceiptSimConfig`]).
//!
//! Where the vendor's documents are silent the simulator makes a documented choice (README,
//! "Simulator"). It never imports the daemon's upper layers.

mod faults;
mod getui;
mod ledger;
mod limits;
mod sms;
mod wecom;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use faults::{Fault, FaultProfile, RateLimitBurst};
pub use getui::population::POPULATION as DEVICE_POPULATION;
pub use getui::push::plain_status;
pub use getui::receipts::{
    arrives_after, clicks, returns_after, ByKind, ReceiptSimConfig, ReceiptStats, ACTION_ARRIVAL, ACTION_CLICKED,
};
pub use ledger::{Ledger, LedgerSummary};
pub use limits::Limits;
pub use sms::{report_fails, PhoneTexts, ReportSettings, SmsLedger, SmsLedgerSummary, SmsSimConfig};
pub use wecom::{
    CallbackAnswer, CallbackPlayer, Delivery, Inbound, PlayerError, Signing, WecomLedgerSummary, WecomSimConfig,
};

// The development credentials the simulators accept live in `crate::dev`; re-exported here.
pub use crate::dev::{
    DEV_APP_ID, DEV_APP_KEY, DEV_MASTER_SECRET, DEV_SMS_SDK_APP_ID, DEV_SMS_SECRET_ID, DEV_SMS_SECRET_KEY,
    DEV_SMS_SIGN_NAME, DEV_SMS_TEMPLATES, DEV_WECOM_AES_KEY, DEV_WECOM_AGENT_ID, DEV_WECOM_CALLBACK_TOKEN,
    DEV_WECOM_CORP_ID, DEV_WECOM_SECRET,
};

/// Shares (in basis points, out of 10 000) of the per-cid statuses; the rest is
/// `successed_ignore`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusShares {
    /// `successed_online`.
    pub online_bp: u16,
    /// `successed_offline`.
    pub offline_bp: u16,
}

impl Default for StatusShares {
    fn default() -> Self {
        StatusShares { online_bp: 7_000, offline_bp: 2_500 }
    }
}

/// How the simulated Getui behaves.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// AppId expected in the URL.
    pub app_id: String,
    /// AppKey expected in `/auth`.
    pub app_key: String,
    /// MasterSecret that signs `/auth`.
    pub master_secret: String,
    /// How long an issued token lives (the real one: a day). A profile may shorten it.
    pub token_ttl: Duration,
    /// Per-cid status shares.
    pub shares: StatusShares,
    /// Quotas and per-minute limits.
    pub limits: Limits,
    /// Injected faults.
    pub profile: FaultProfile,
    /// Seed of the fault generator.
    pub seed: u64,
    /// When set, every `/v2` call is answered with 301 and this host list entry
    /// (e.g. `http://127.0.0.1:9000/v2/`), as a wrong data centre would.
    pub redirect_to: Option<String>,
    /// How far ahead a scheduled push may be (the real one: 7 days).
    pub schedule_horizon: Duration,
    /// The simulated WeCom application (served on the same listener under `/cgi-bin/`).
    pub wecom: WecomSimConfig,
    /// The simulated Tencent Cloud SMS gateway (served on the same listener at `POST /`).
    pub sms: SmsSimConfig,
    /// Getui's receipt callback (消息回执): where and how delivered messages are reported.
    pub receipts: ReceiptSimConfig,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            app_id: DEV_APP_ID.into(),
            app_key: DEV_APP_KEY.into(),
            master_secret: DEV_MASTER_SECRET.into(),
            token_ttl: Duration::from_secs(86_400),
            shares: StatusShares::default(),
            limits: Limits::default(),
            profile: FaultProfile::clean(),
            seed: 0x5eed,
            redirect_to: None,
            schedule_horizon: Duration::from_secs(7 * 86_400),
            wecom: WecomSimConfig::default(),
            sms: SmsSimConfig::default(),
            receipts: ReceiptSimConfig::default(),
        }
    }
}

/// A bound, not yet running simulator.
pub struct Simulator {
    listener: TcpListener,
    addr: SocketAddr,
    getui: Arc<getui::GetuiSim>,
    wecom: Arc<wecom::WecomSim>,
    sms: Arc<sms::SmsSim>,
}

impl Simulator {
    /// Binds `addr` (port 0 picks a free port).
    pub async fn bind(addr: SocketAddr, config: SimConfig) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let wecom = Arc::new(wecom::WecomSim::with_faults(config.wecom.clone(), config.profile.clone(), config.seed));
        let sms = Arc::new(sms::SmsSim::with_faults(config.sms.clone(), config.profile.clone(), config.seed));
        Ok(Simulator { listener, addr, getui: Arc::new(getui::GetuiSim::new(config)), wecom, sms })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The Getui base URL to configure in a client: `http://ADDR/v2`.
    pub fn getui_base_url(&self) -> String {
        format!("http://{}/v2", self.addr)
    }

    /// The WeCom base URL to configure in a client: `http://ADDR/cgi-bin`.
    pub fn wecom_base_url(&self) -> String {
        format!("http://{}/cgi-bin", self.addr)
    }

    /// The delivery ledger (also served at `GET /_sim/ledger`).
    pub fn ledger(&self) -> Arc<Ledger> {
        self.getui.ledger()
    }

    /// The Tencent Cloud SMS base URL to configure in a client: `http://ADDR`.
    pub fn sms_base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The SMS ledger (also served at `GET /_sim/sms/ledger`).
    pub fn sms_ledger(&self) -> Arc<SmsLedger> {
        self.sms.ledger()
    }

    /// Serves until `shutdown` is cancelled.
    pub async fn run(self, shutdown: CancellationToken) {
        let getui = self.getui;
        let wecom = self.wecom;
        let sms = self.sms;
        sms.start_reports(shutdown.clone());
        getui.start_receipts(shutdown.clone());
        crate::serve::serve(
            self.listener,
            move |req, _peer| {
                let getui = getui.clone();
                let wecom = wecom.clone();
                let sms = sms.clone();
                async move {
                    if sms::owns(req.method(), req.uri().path()) {
                        sms.handle(req).await
                    } else if wecom::owns(req.uri().path()) {
                        wecom.handle(req).await
                    } else {
                        getui.handle(req).await
                    }
                }
            },
            shutdown,
        )
        .await;
    }

    /// Starts serving on a background task; the returned guard stops it when dropped.
    pub fn spawn(self) -> RunningSimulator {
        let token = CancellationToken::new();
        let addr = self.addr;
        let ledger = self.ledger();
        let sms_ledger = self.sms_ledger();
        let getui = self.getui.clone();
        let task = tokio::spawn(self.run(token.clone()));
        RunningSimulator { addr, ledger, sms_ledger, getui, token, task: Some(task) }
    }
}

/// A simulator serving on a background task.
pub struct RunningSimulator {
    addr: SocketAddr,
    ledger: Arc<Ledger>,
    sms_ledger: Arc<SmsLedger>,
    getui: Arc<getui::GetuiSim>,
    token: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl RunningSimulator {
    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The Getui base URL: `http://ADDR/v2`.
    pub fn getui_base_url(&self) -> String {
        format!("http://{}/v2", self.addr)
    }

    /// The WeCom base URL: `http://ADDR/cgi-bin`.
    pub fn wecom_base_url(&self) -> String {
        format!("http://{}/cgi-bin", self.addr)
    }

    /// The Tencent Cloud SMS base URL: `http://ADDR`.
    pub fn sms_base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The delivery ledger.
    pub fn ledger(&self) -> &Arc<Ledger> {
        &self.ledger
    }

    /// The SMS gateway's ledger.
    pub fn sms_ledger(&self) -> &Arc<SmsLedger> {
        &self.sms_ledger
    }

    /// The Getui receipt poster's counters (`GET /_sim/receipts`).
    pub fn receipt_stats(&self) -> ReceiptStats {
        self.getui.receipt_stats()
    }

    /// Stops serving and waits for in-flight requests.
    pub async fn stop(mut self) {
        self.token.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for RunningSimulator {
    fn drop(&mut self) {
        self.token.cancel();
    }
}
