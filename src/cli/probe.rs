//! `campaignd probe`: sign in to an app's upstream and send one test push.

use std::path::PathBuf;

use anyhow::Context;
use campaignd::config::Config;
use campaignd::upstream::getui::GetuiClient;
use campaignd::upstream::ProviderError;
use campaignd::wire::getui::{CidAudience, Notification, PushMessage, SingleCidPush};
use clap::Args;

/// Options of `campaignd probe`.
#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// Configuration file (TOML).
    #[arg(long, short, env = "CAMPAIGND_CONFIG", default_value = campaignd::config::DEFAULT_PATH)]
    config: PathBuf,
    /// App to probe, by its name in the configuration.
    #[arg(long, default_value = "main")]
    app: String,
    /// Cid that receives the test push (32 lowercase hex digits).
    #[arg(long, default_value = "0123456789abcdef0123456789abcdef")]
    cid: String,
    /// Only sign in; send no push (use this against a real app).
    #[arg(long)]
    no_push: bool,
}

/// Signs in, optionally pushes, and prints what the upstream answered.
pub fn run(args: ProbeArgs) -> anyhow::Result<()> {
    super::init_logging("warn");
    let config = Config::load(&args.config)?;
    let settings = config.getui_settings(&args.app)?;
    let base = settings.base_url.clone();
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    rt.block_on(async move {
        let client = GetuiClient::new(settings)?;
        let expires = client
            .authenticate()
            .await
            .with_context(|| format!("signing in to {base} failed; is `campaignd simulate` running?"))?;
        println!("signed in to {}: token valid until {} (ms epoch)", client.current_base(), expires);
        if args.no_push {
            return Ok(());
        }
        let now = campaignd::clock::now_ms();
        let request_id = format!("probe-{now}");
        let push = SingleCidPush {
            request_id: request_id.as_str().into(),
            group_name: None,
            audience: CidAudience { cid: vec![args.cid.as_str().into()] },
            settings: None,
            push_message: PushMessage {
                notification: Some(Notification {
                    title: "campaignd probe".into(),
                    body: "Test push sent by `campaignd probe`.".into(),
                    click_type: "startapp".into(),
                    ..Notification::default()
                }),
                ..PushMessage::default()
            },
            push_channel: None,
        };
        let outcome = client
            .push_single_cid(&push)
            .await
            .map_err(|e| anyhow::anyhow!("test push failed ({}): {e}", e.class().as_str()))?;
        for (task, cid, status) in outcome.statuses() {
            println!("test push to {cid}: {status:?} (task {task}, request_id {request_id})");
        }
        Ok(())
    })
}
