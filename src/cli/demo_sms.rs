//! The demo's SMS act (issue 13): 20,000 recipients of a personal campaign, 6,000 of them with
//! a bound phone number, texted a few seconds after the push when the push did not reach them
//! (no `successed_online` answer and no arrival receipt from the simulated device). The act
//! passes only if the simulated gateway's ledger holds exactly the bound, unreached numbers.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use campaignd::client::{channel_body, ApiClient};
use campaignd::domain::CompactCid;
use campaignd::protocol::{CampaignView, SmsView};
use campaignd::simulator::{arrives_after, plain_status, ReceiptSimConfig, RunningSimulator, StatusShares};

/// Recipients of the SMS act's campaign.
pub(super) const RECIPIENTS: u64 = 20_000;
/// Of them, bound to a phone number: three in ten.
const BOUND: u64 = 6_000;
/// Texts are due this long after the push. Reached offline devices come back within the
/// simulator's one-second return spread, and their receipts must be in the store by then: the
/// other four seconds are room for a slow (debug, busy) build to take the act's receipt burst.
const AFTER_MS: u64 = 5_000;
/// First index of the act's cids, apart from the other campaigns'.
const FIRST: u64 = 1 << 41;

fn bound(i: u64) -> bool {
    i % 10 < 3
}

fn phone(i: u64) -> String {
    format!("136{:08}", i % 100_000_000)
}

/// Binds the numbers, runs the campaign, waits for the texts and their delivery reports, and
/// compares the texted numbers with the bound recipients the push did not reach.
pub(super) async fn run_sms(
    api: &ApiClient,
    sim: &RunningSimulator,
    shares: StatusShares,
    receipts: &ReceiptSimConfig,
    chunk_size: u64,
    cid: impl Fn(u64) -> String,
) -> anyhow::Result<()> {
    receipts_drained(sim).await?;
    let lost_before = lost_receipts(sim);
    let recipients = FIRST..FIRST + RECIPIENTS;
    bind(api, recipients.clone().filter(|i| bound(*i - FIRST)).map(|i| (cid(i), phone(i)))).await?;
    let campaign = api
        .create(&serde_json::json!({
            "name": "demo-sms-fallback", "app": "main",
            "message": {"notification": {"title": "Hi ${name}", "body": "New arrivals for you"}},
            "settings": {"ttl_ms": 7_200_000, "group": "demo",
                         "sms_fallback": {"template_id": "1000001", "params": ["会员", "春季新品已上架"], "after_ms": AFTER_MS}}
        }))
        .await?;
    let lines: String =
        recipients.clone().map(|i| format!("{{\"cid\":\"{}\",\"vars\":{{\"name\":\"user{i}\"}}}}\n", cid(i))).collect();
    api.upload(&campaign.id, "application/x-ndjson", lines).await?;
    api.act(&campaign.id, "start").await?;
    let done = wait_texted(api, &campaign.id, RECIPIENTS.div_ceil(chunk_size.max(1))).await?;
    let sms = done.sms.clone().context("the campaign view has no sms section")?;

    // Who the push reached, as the simulator decides it: online at once, or offline and back
    // (with its arrival receipt) before the texts were due.
    let reached = |i: u64| {
        let c = CompactCid::parse(&cid(i)).unwrap_or(CompactCid([0; 16]));
        arrives_after(&c, plain_status(&c, shares), receipts).is_some_and(|d| d < Duration::from_millis(AFTER_MS))
    };
    let expected: BTreeSet<String> =
        recipients.clone().filter(|i| bound(*i - FIRST) && !reached(*i)).map(|i| format!("+86{}", phone(i))).collect();
    let ledger = sim.sms_ledger();
    let texted: BTreeSet<String> = recipients
        .filter(|i| bound(*i - FIRST))
        .map(|i| format!("+86{}", phone(i)))
        .filter(|p| ledger.texts_of(p).count > 0)
        .collect();
    print_sms(&done, &sms, expected.len());
    if texted != expected || ledger.summary().duplicates != 0 {
        bail!(
            "SMS ledger differs from the bound, unreached recipients: {} texted, {} expected, {} not expected, {} missing, {} duplicates; in this act the simulator gave up {} receipt posts and dropped {} lines",
            texted.len(),
            expected.len(),
            texted.difference(&expected).count(),
            expected.difference(&texted).count(),
            ledger.summary().duplicates,
            lost_receipts(sim).0 - lost_before.0,
            lost_receipts(sim).1 - lost_before.1
        );
    }
    println!(
        "SMS ledger agrees: exactly the {} bound recipients the push did not reach were texted, once each",
        texted.len()
    );
    Ok(())
}

/// Waits until the simulator has posted the receipts of the campaigns before this act. It
/// holds at most `queue` lines waiting and drops the rest, as a real sender would, and the
/// million-recipient campaign before this act fills it: the act's own receipts, which decide
/// who is texted, must find room.
async fn receipts_drained(sim: &RunningSimulator) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let stats = sim.receipt_stats();
        if stats.queued == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "the simulator still holds {} receipt lines after a minute: is the daemon taking them?",
                stats.queued
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Receipt posts the simulator gave up on so far, and lines it dropped from a full queue:
/// either way their recipients are texted although the push reached them.
fn lost_receipts(sim: &RunningSimulator) -> (u64, u64) {
    let s = sim.receipt_stats();
    (s.failed_posts, s.dropped)
}

/// Imports the bindings as NDJSON, as a real list would be.
async fn bind(api: &ApiClient, pairs: impl Iterator<Item = (String, String)>) -> anyhow::Result<()> {
    let body: String = pairs.map(|(c, p)| format!("{{\"cid\":\"{c}\",\"phone\":\"{p}\"}}\n")).collect();
    let (tx, chunked) = channel_body(2);
    tx.send(Bytes::from(body)).await.context("cannot stream the bindings")?;
    drop(tx);
    let imported = api.import_phones("main", "application/x-ndjson", chunked).await?;
    if imported.bound != BOUND {
        bail!("bound {} of {BOUND} numbers", imported.bound);
    }
    Ok(())
}

/// Waits until every chunk's texting finished, and the gateway has reported on every text (or
/// ten seconds passed for the reports).
async fn wait_texted(api: &ApiClient, id: &str, chunks: u64) -> anyhow::Result<CampaignView> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut reports_since: Option<Instant> = None;
    loop {
        let v = api.campaign(id).await?;
        if let Some(s) = &v.sms {
            if v.state == "completed" && s.chunks_done >= chunks {
                let since = *reports_since.get_or_insert_with(Instant::now);
                let reported = s.sms_delivered + s.sms_failed.values().sum::<u64>();
                if reported >= s.sms_sent || since.elapsed() > Duration::from_secs(10) {
                    return Ok(v);
                }
            }
        }
        if Instant::now() > deadline {
            bail!("the SMS act did not finish within two minutes: {:?}", v.sms);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn print_sms(v: &CampaignView, s: &SmsView, expected: usize) {
    let skipped = |k: &str| s.sms_skipped.get(k).copied().unwrap_or(0);
    println!(
        "\nSMS fallback: campaign {} to {RECIPIENTS} recipients, {BOUND} with a bound number, texts due {} s after the push",
        v.name,
        AFTER_MS / 1000
    );
    println!(
        "  reached by push {} (answer or receipt), clicked {}, texted {} (expected {expected}), delivered {}, failed {:?}",
        s.reached, s.clicked, s.sms_sent, s.sms_delivered, s.sms_failed
    );
    println!(
        "  not texted: no binding {}, too long {}, stopped {}",
        skipped("no_binding"),
        skipped("too_long"),
        skipped("stopped")
    );
}
