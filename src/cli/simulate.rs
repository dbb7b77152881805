//! `campaignd simulate`: a local Getui RestAPI v2, WeCom API and Tencent Cloud SMS gateway for
//! development, tests and demos; `campaignd simulate callback` plays the WeCom server against a
//! callback URL.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context};
use campaignd::simulator::{
    self, CallbackPlayer, FaultProfile, Inbound, Limits, ReceiptSimConfig, ReportSettings, SimConfig, Simulator,
    SmsSimConfig, StatusShares,
};
use campaignd::wire::tencent_sms::SendWindow;
use clap::{Args, ValueEnum};
use tokio_util::sync::CancellationToken;

/// Options of `campaignd simulate`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8781")]
    listen: SocketAddr,
    /// Fault profile: clean (none), realistic (latency), flaky (latency, 5xx and dropped
    /// connections, some after the request took effect), ratelimited (latency, recurring 10005/30015 bursts), chaos (all of
    /// these and 3-second tokens).
    #[arg(long, default_value = "clean", value_parser = clap::builder::PossibleValuesParser::new(FaultProfile::NAMES))]
    profile: String,
    /// AppId expected in request paths.
    #[arg(long, default_value = simulator::DEV_APP_ID)]
    app_id: String,
    /// AppKey expected by /auth.
    #[arg(long, default_value = simulator::DEV_APP_KEY)]
    app_key: String,
    /// MasterSecret that signs /auth (the default is a published development value).
    #[arg(long, default_value = simulator::DEV_MASTER_SECRET)]
    master_secret: String,
    /// Token lifetime in seconds (Getui: 86400). The chaos profile uses 3.
    #[arg(long, default_value_t = 86_400)]
    token_ttl_secs: u64,
    /// Percent of cids answered successed_online.
    #[arg(long, default_value_t = 70.0)]
    online_percent: f64,
    /// Percent of cids answered successed_offline (the rest: successed_ignore).
    #[arg(long, default_value_t = 25.0)]
    offline_percent: f64,
    /// Quotas and per-minute limits: the documented values, or none (for load tests).
    #[arg(long, value_enum, default_value_t = LimitSet::Documented)]
    limits: LimitSet,
    /// Seed of the fault generator.
    #[arg(long, default_value_t = 0x5eed)]
    seed: u64,
    /// Answer every /v2 call with 301 pointing at this base (e.g. http://127.0.0.1:9000/v2/),
    /// as a wrong data centre does.
    #[arg(long)]
    redirect_to: Option<String>,
    /// Tencent Cloud SMS: POST status reports (JSON arrays) to this URL, e.g. a daemon's
    /// http://127.0.0.1:8780/sms/main/status. Without it no reports are sent.
    #[arg(long)]
    sms_callback_url: Option<String>,
    /// Tencent Cloud SMS: milliseconds from an accepted text to its status report.
    #[arg(long, default_value_t = 500)]
    sms_report_delay_ms: u64,
    /// Tencent Cloud SMS: percent of texts reported FAIL (chosen by number, so the same every run).
    #[arg(long, default_value_t = 0.0)]
    sms_report_fail_percent: f64,
    /// Tencent Cloud SMS: texts per number and Beijing day (Tencent's default 2); 0 for no cap.
    #[arg(long, default_value_t = 2)]
    sms_daily_limit: u32,
    /// Tencent Cloud SMS: shift the simulator's Beijing clock by this many seconds (marketing
    /// window and calendar day); also settable with POST /_sim/sms/clock {"offset_secs": N}.
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    sms_clock_offset_secs: i64,
    /// Tencent Cloud SMS: send marketing texts at any hour (no 08:00-22:00 window).
    #[arg(long)]
    sms_no_window: bool,
    /// Getui receipts (消息回执): POST signed receipt lines (one JSON object per line,
    /// text/plain) for delivered messages to this URL, e.g. a daemon's
    /// http://127.0.0.1:8780/getui/main/receipts. Without it no receipts are sent.
    #[arg(long)]
    receipts_url: Option<String>,
    /// Getui receipts: percent of successed_offline devices that come back online and so get
    /// an arrival line (chosen by cid, so the same every run); the others never get one.
    #[arg(long, default_value_t = 60.0)]
    receipt_return_percent: f64,
    /// Getui receipts: a returning offline device comes back within this many milliseconds of
    /// the push (its delay is chosen by cid).
    #[arg(long, default_value_t = 1000)]
    receipt_return_spread_ms: u64,
    /// Getui receipts: percent of delivered messages that also get a click line (actionId 10010),
    /// chosen by cid.
    #[arg(long, default_value_t = 20.0)]
    receipt_click_percent: f64,
    #[command(subcommand)]
    play: Option<Play>,
}

#[derive(Debug, clap::Subcommand)]
enum Play {
    /// Play the WeCom server once: send one encrypted, signed callback (a text, an event, or the
    /// URL check) to a daemon's /wecom/{app}/callback and print its decrypted answer.
    Callback(Box<CallbackArgs>),
}

/// Options of `campaignd simulate callback`.
#[derive(Debug, Args)]
struct CallbackArgs {
    /// The callback URL.
    #[arg(long, default_value = "http://127.0.0.1:8780/wecom/staff/callback")]
    url: String,
    /// The member sending it (FromUserName).
    #[arg(long, default_value = "zhangsan")]
    from: String,
    /// Send this text message (e.g. TD to opt out, 订阅 to opt back in).
    #[arg(long, conflicts_with_all = ["event", "verify"])]
    text: Option<String>,
    /// Send this event.
    #[arg(long, value_enum, conflicts_with = "verify")]
    event: Option<EventName>,
    /// EventKey of a click or view event (menu key or URL).
    #[arg(long, default_value = "")]
    key: String,
    /// Do the URL verification (GET) with this echo string instead.
    #[arg(long)]
    verify: Option<String>,
    /// Callback Token (default: the simulator's published development value).
    #[arg(long, default_value = simulator::DEV_WECOM_CALLBACK_TOKEN)]
    token: String,
    /// EncodingAESKey (default: the simulator's published development value).
    #[arg(long, default_value = simulator::DEV_WECOM_AES_KEY)]
    aes_key: String,
    /// CorpID (the receive id inside the ciphertext).
    #[arg(long, default_value = simulator::DEV_WECOM_CORP_ID)]
    corp_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum EventName {
    Subscribe,
    Unsubscribe,
    EnterAgent,
    Click,
    View,
}

/// Sends one callback and prints the answer; fails unless the daemon answered 200.
fn play_callback(args: CallbackArgs) -> anyhow::Result<()> {
    let player = CallbackPlayer {
        url: args.url.clone(),
        token: args.token.clone(),
        encoding_aes_key: args.aes_key.clone(),
        corp_id: args.corp_id.clone(),
        agent_id: simulator::DEV_WECOM_AGENT_ID,
    };
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    rt.block_on(async move {
        if let Some(echo) = &args.verify {
            let (status, body) = player.verify_url(echo).await?;
            println!("GET {}: HTTP {status}, body {body:?}", args.url);
            return if status == 200 && body == *echo { Ok(()) } else { bail!("the URL check failed") };
        }
        let inbound = match (&args.text, args.event) {
            (Some(t), _) => Inbound::Text { content: t.clone() },
            (None, Some(EventName::Subscribe)) => Inbound::Subscribe,
            (None, Some(EventName::Unsubscribe)) => Inbound::Unsubscribe,
            (None, Some(EventName::EnterAgent)) => Inbound::EnterAgent,
            (None, Some(EventName::Click)) => Inbound::Click { key: args.key.clone() },
            (None, Some(EventName::View)) => Inbound::View { url: args.key.clone() },
            (None, None) => bail!("say what to send: --text TEXT, --event NAME or --verify ECHO"),
        };
        let answer = player.push(&args.from, inbound).await?;
        match (&answer.reply, answer.status) {
            (Some(reply), _) => {
                println!("POST {}: HTTP {}, passive reply (decrypted):\n{reply}", args.url, answer.status)
            }
            (None, 200) => println!("POST {}: HTTP 200, empty answer (accepted, no reply)", args.url),
            (None, status) => bail!("POST {}: HTTP {status}: {}", args.url, answer.body),
        }
        Ok(())
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LimitSet {
    /// auth 100/min and 100000/day, app pushes 5/min and 100/day, list pushes 2000000 cids/day.
    Documented,
    /// No quota and no per-minute limit.
    None,
}

impl SimulateArgs {
    fn to_config(&self) -> anyhow::Result<SimConfig> {
        let percent = |p: f64, flag: &str| -> anyhow::Result<u16> {
            if !(0.0..=100.0).contains(&p) {
                bail!("--{flag} must be between 0 and 100, got {p}");
            }
            Ok((p * 100.0).round() as u16)
        };
        let shares = StatusShares {
            online_bp: percent(self.online_percent, "online-percent")?,
            offline_bp: percent(self.offline_percent, "offline-percent")?,
        };
        if u32::from(shares.online_bp) + u32::from(shares.offline_bp) > 10_000 {
            bail!("--online-percent plus --offline-percent exceed 100");
        }
        if self.token_ttl_secs == 0 {
            bail!("--token-ttl-secs must be at least 1");
        }
        let sms = SmsSimConfig {
            marketing_window: (!self.sms_no_window).then(SendWindow::default),
            daily_limit_per_number: (self.sms_daily_limit > 0).then_some(self.sms_daily_limit),
            clock_offset_secs: self.sms_clock_offset_secs,
            reports: ReportSettings {
                url: self.sms_callback_url.clone(),
                delay: Duration::from_millis(self.sms_report_delay_ms),
                fail_bp: percent(self.sms_report_fail_percent, "sms-report-fail-percent")?,
                ..ReportSettings::default()
            },
            ..SmsSimConfig::default()
        };
        if let Some(url) =
            self.receipts_url.as_deref().filter(|u| !u.starts_with("http://") && !u.starts_with("https://"))
        {
            bail!("--receipts-url must be an http:// or https:// URL, got {url:?}");
        }
        let receipts = ReceiptSimConfig {
            url: self.receipts_url.clone(),
            return_bp: percent(self.receipt_return_percent, "receipt-return-percent")?,
            return_spread: Duration::from_millis(self.receipt_return_spread_ms),
            click_bp: percent(self.receipt_click_percent, "receipt-click-percent")?,
            ..ReceiptSimConfig::default()
        };
        let profile = FaultProfile::by_name(&self.profile)
            .with_context(|| format!("unknown profile {:?}; choose one of {:?}", self.profile, FaultProfile::NAMES))?;
        Ok(SimConfig {
            app_id: self.app_id.clone(),
            app_key: self.app_key.clone(),
            master_secret: self.master_secret.clone(),
            token_ttl: Duration::from_secs(self.token_ttl_secs),
            shares,
            limits: match self.limits {
                LimitSet::Documented => Limits::default(),
                LimitSet::None => Limits::unlimited(),
            },
            profile,
            seed: self.seed,
            redirect_to: self.redirect_to.clone(),
            sms,
            receipts,
            ..SimConfig::default()
        })
    }
}

/// Runs the simulator until Ctrl-C or SIGTERM.
pub fn run(mut args: SimulateArgs) -> anyhow::Result<()> {
    if let Some(Play::Callback(play)) = args.play.take() {
        return play_callback(*play);
    }
    super::init_logging("info");
    let config = args.to_config()?;
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    rt.block_on(async move {
        let sim = Simulator::bind(args.listen, config.clone()).await.with_context(|| {
            format!("cannot listen on {}; is another simulator running? try --listen 127.0.0.1:0", args.listen)
        })?;
        print_banner(&sim, &config, &args);
        let token = CancellationToken::new();
        tokio::spawn(super::signals::stop_on_signal(token.clone()));
        sim.run(token).await;
        eprintln!("simulator stopped");
        Ok(())
    })
}

fn print_banner(sim: &Simulator, config: &SimConfig, args: &SimulateArgs) {
    let secret_note = if config.master_secret == simulator::DEV_MASTER_SECRET {
        format!("{}  (published development value)", config.master_secret)
    } else {
        "(as given by --master-secret)".to_owned()
    };
    println!("campaignd simulate: Getui RestAPI v2 simulator");
    println!("  base_url       {}", sim.getui_base_url());
    println!("  app_id         {}", config.app_id);
    println!("  app_key        {}", config.app_key);
    println!("  master_secret  {secret_note}");
    println!("  profile        {}", config.profile.name);
    println!("  limits         {:?}", args.limits);
    println!("  ledger         http://{}/_sim/ledger", sim.local_addr());
    println!(
        "  devices        http://{}/_sim/devices  (the app's {} devices, for tag pushes)",
        sim.local_addr(),
        simulator::DEVICE_POPULATION
    );
    match &config.receipts.url {
        Some(url) => println!(
            "  receipts       {url}  ({}% of offline devices return within {} ms, {}% click)",
            f64::from(config.receipts.return_bp) / 100.0,
            config.receipts.return_spread.as_millis(),
            f64::from(config.receipts.click_bp) / 100.0
        ),
        None => println!("  receipts       off (--receipts-url)"),
    }
    println!("  device         http://{}/_sim/device/{{cid}}  (status and receipt facts of one cid)", sim.local_addr());
    println!("  receipt stats  http://{}/_sim/receipts", sim.local_addr());
    println!("WeCom simulator on the same port");
    println!("  base_url       {}", sim.wecom_base_url());
    println!("  corp_id        {}", simulator::DEV_WECOM_CORP_ID);
    println!("  agent_id       {}", simulator::DEV_WECOM_AGENT_ID);
    println!("  secret         {}  (published development value)", simulator::DEV_WECOM_SECRET);
    println!("  ledger         http://{}/_sim/wecom/ledger", sim.local_addr());
    println!("Tencent Cloud SMS simulator (SendSms 2021-01-11) on the same port");
    println!("  base_url       {}", sim.sms_base_url());
    println!("  secret_id      {}", simulator::DEV_SMS_SECRET_ID);
    println!("  secret_key     {}  (published example value)", simulator::DEV_SMS_SECRET_KEY);
    println!("  sdk_app_id     {}", simulator::DEV_SMS_SDK_APP_ID);
    println!("  sign_name      {}", simulator::DEV_SMS_SIGN_NAME);
    for (id, text) in simulator::DEV_SMS_TEMPLATES {
        println!("  template       {id}: {text}");
    }
    match &config.sms.marketing_window {
        Some(_) => println!("  window         08:00-22:00 Beijing (clock offset {} s)", config.sms.clock_offset_secs),
        None => println!("  window         none"),
    }
    println!("  reports        {}", config.sms.reports.url.as_deref().unwrap_or("off (--sms-callback-url)"));
    println!("  ledger         http://{}/_sim/sms/ledger", sim.local_addr());
    println!("Stop with Ctrl-C.");
}
