//! Cost that must not grow with history (issue 10, point 3): a store written before the
//! active-campaign index existed still opens and resumes, `GET /v1/campaigns` is paged, and
//! finished campaigns past `store.retention_days` are removed while recent ones still report.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use campaignd::client::{ApiClient, ClientError};
use campaignd::config::Config;
use campaignd::daemon::Daemon;
use campaignd::domain::campaign::{CreateCampaign, Validation, SCHEDULE_HORIZON_MS};
use campaignd::domain::{Action, CampaignSpec, CompactCid, Counts, ResultName};
use campaignd::secret::Secret;
use campaignd::simulator::{Limits, RunningSimulator, SimConfig};
use campaignd::store::{Ack, Change, Chunk, SledStore, Store, StoreSettings, UploadCommit};
use common::{cid, config_text, list_campaign, spawn_app, start_sim, DEV_TOKEN};
use tokio_util::sync::CancellationToken;

const DAY_MS: i64 = 86_400_000;

fn now_ms() -> i64 {
    common::now_ms() as i64
}

fn spec(name: &str, group: &str) -> CampaignSpec {
    let mut body = list_campaign(name, None);
    body["settings"]["group"] = group.into();
    let req: CreateCampaign = serde_json::from_value(body).unwrap();
    let rules = Validation {
        app_channel: &|_| Some(campaignd::domain::Channel::Getui),
        now_ms: now_ms(),
        horizon_ms: SCHEDULE_HORIZON_MS,
        app_sms: &|_| None,
    };
    req.validate(&rules).unwrap()
}

fn open_store(dir: &Path) -> Arc<SledStore> {
    SledStore::open(&StoreSettings { path: dir.to_path_buf(), cache_bytes: 8 << 20 }).unwrap()
}

/// A chunk of the test cids `from..from + n`.
fn chunk(from: u64, n: u64) -> Chunk {
    let cids = (from..from + n).flat_map(|i| CompactCid::parse(&cid(i)).unwrap().0).collect();
    Chunk { cids, ..Chunk::default() }
}

/// Creates a campaign with `chunks` chunks of 10 recipients; answers its id.
async fn uploaded(store: &SledStore, name: &str, group: &str, chunks: u64) -> u64 {
    let rec = store.create(spec(name, group), now_ms()).await.unwrap();
    for seq in 0..chunks {
        store.stage_chunk(rec.id, seq, chunk(rec.id * 1000 + seq * 10, 10)).await.unwrap();
    }
    let commit = UploadCommit { first_seq: 0, chunks, recipients: chunks * 10, duplicates: 0, rejected: 0 };
    store.commit_upload(rec.id, commit).await.unwrap();
    rec.id
}

/// A daemon on the store in `dir`, sending to `sim`.
struct Running {
    api: ApiClient,
    addr: std::net::SocketAddr,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

async fn start_daemon(sim: &RunningSimulator, dir: &Path) -> Running {
    let text = config_text(&sim.getui_base_url(), dir, &[]);
    let config = Config::from_toml(&text, Path::new("test.toml")).unwrap();
    let daemon = Daemon::build(&config, |_| None).await.expect("daemon starts");
    let addr = daemon.local_addr();
    let shutdown = daemon.shutdown_token();
    let task = tokio::spawn(async move { daemon.run().await.expect("daemon stops cleanly") });
    let api = ApiClient::new(&format!("http://{addr}"), Secret::new(DEV_TOKEN)).unwrap();
    Running { api, addr, shutdown, task }
}

impl Running {
    async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap();
    }
}

/// Removes the index trees, leaving the layout the previous version wrote.
fn strip_to_previous_layout(dir: &Path) {
    // The stopped daemon's sled flusher may hold the file lock a moment longer.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let db = loop {
        match sled::Config::new().path(dir).open() {
            Ok(db) => break db,
            Err(e) if std::time::Instant::now() < deadline => {
                eprintln!("waiting for the store's lock: {e}");
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(e) => panic!("cannot open {}: {e}", dir.display()),
        }
    };
    for tree in ["active", "finished"] {
        db.drop_tree(tree).unwrap();
    }
    assert!(!db.tree_names().iter().any(|n| n.as_ref() == b"active"), "previous layout: no index");
    db.flush().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_of_the_previous_version_opens_and_its_running_campaign_resumes() {
    let sim = start_sim(SimConfig { limits: Limits::unlimited(), ..SimConfig::default() }).await;
    let dir = tempfile::tempdir().unwrap();
    let (running, finished) = {
        let store = open_store(dir.path());
        let running = uploaded(&store, "was-running", "g", 3).await;
        store.change(running, Change::Act(Action::Start, now_ms())).await.unwrap();
        let finished = uploaded(&store, "was-cancelled", "g", 1).await;
        store.change(finished, Change::Act(Action::Cancel, now_ms())).await.unwrap();
        store.close().await.unwrap();
        (running, finished)
    };
    strip_to_previous_layout(dir.path());

    let daemon = start_daemon(&sim, dir.path()).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let done = loop {
        let v = daemon.api.campaign(&running.to_string()).await.unwrap();
        if v.state == "completed" {
            break v;
        }
        assert!(Instant::now() < deadline, "the resumed campaign did not finish: {v:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(done.progress.sent, 30);
    assert_eq!(sim.ledger().summary().unique_cids, 30, "every recipient of the old store was sent");
    let states: Vec<(String, String)> = daemon.api.list().await.unwrap().into_iter().map(|v| (v.id, v.state)).collect();
    assert_eq!(states, [(running.to_string(), "completed".to_owned()), (finished.to_string(), "cancelled".to_owned())]);
    daemon.stop().await;
}

fn field_of(e: ClientError) -> (u16, Option<String>) {
    match e {
        ClientError::Api { status, field, .. } => (status, field),
        other => panic!("expected a refusal, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_campaign_list_comes_in_pages_with_a_cursor_and_a_state_filter() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(app.create(list_campaign(&format!("c{i}"), None)).await);
    }
    for id in [&ids[1], &ids[3]] {
        app.api.act(id, "cancel").await.unwrap();
    }

    let first = app.api.list_page(None, None, 2).await.unwrap();
    let got: Vec<&str> = first.campaigns.iter().map(|v| v.id.as_str()).collect();
    assert_eq!(got, [ids[0].as_str(), ids[1].as_str()]);
    assert_eq!(first.next_after.as_deref(), Some(ids[1].as_str()));
    let second = app.api.list_page(None, first.next_after.as_deref(), 2).await.unwrap();
    assert_eq!(second.campaigns.iter().map(|v| v.id.as_str()).collect::<Vec<_>>(), [&ids[2], &ids[3]]);
    let last = app.api.list_page(None, second.next_after.as_deref(), 2).await.unwrap();
    assert_eq!((last.campaigns.len(), last.next_after), (1, None), "the last page has no cursor");

    let cancelled = app.api.list_page(Some("cancelled"), None, 100).await.unwrap();
    assert_eq!(cancelled.campaigns.iter().map(|v| v.id.as_str()).collect::<Vec<_>>(), [&ids[1], &ids[3]]);
    let drafts = app.api.list_page(Some("draft"), Some(&ids[0]), 1).await.unwrap();
    assert_eq!(drafts.campaigns[0].id, ids[2], "state and cursor combine");
    assert_eq!(app.api.list().await.unwrap().len(), 5, "the client follows every page");

    assert_eq!(field_of(app.api.list_page(None, None, 1001).await.unwrap_err()), (400, Some("limit".into())));
    assert_eq!(field_of(app.api.list_page(None, None, 0).await.unwrap_err()), (400, Some("limit".into())));
    assert_eq!(field_of(app.api.list_page(Some("done"), None, 10).await.unwrap_err()), (400, Some("state".into())));
    assert_eq!(field_of(app.api.list_page(None, Some("-3"), 10).await.unwrap_err()), (400, Some("after".into())));
    app.stop().await;
}

fn delivered(n: u64) -> Counts {
    let mut c = Counts::default();
    c.add(ResultName::SuccessedOnline, n);
    c
}

/// A campaign of two chunks, one sent, that failed at `finished_ms` (its second chunk stays).
async fn failed_at(store: &SledStore, name: &str, finished_ms: i64) -> u64 {
    let id = uploaded(store, name, "spring", 2).await;
    store.change(id, Change::Act(Action::Start, finished_ms - 1)).await.unwrap();
    store.ack(Ack { campaign: id, seq: 0, counts: delivered(10) }).await.unwrap();
    store.change(id, Change::Fail("upstream refused".into(), finished_ms)).await.unwrap();
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_campaigns_past_retention_are_removed_and_recent_ones_still_report() {
    let sim = start_sim(SimConfig { limits: Limits::unlimited(), ..SimConfig::default() }).await;
    let dir = tempfile::tempdir().unwrap();
    let (old, recent) = {
        let store = open_store(dir.path());
        let old = failed_at(&store, "old", now_ms() - 40 * DAY_MS).await;
        let recent = failed_at(&store, "recent", now_ms() - DAY_MS).await;
        store.close().await.unwrap();
        (old, recent)
    };

    // The shipped configuration keeps finished campaigns 30 days.
    let daemon = start_daemon(&sim, dir.path()).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match daemon.api.campaign(&old.to_string()).await {
            Err(ClientError::Api { status: 404, .. }) => break,
            Ok(v) => assert!(Instant::now() < deadline, "still kept after 40 days: {v:#?}"),
            Err(e) => panic!("{e}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let kept = daemon.api.campaign(&recent.to_string()).await.unwrap();
    assert_eq!((kept.state.as_str(), kept.progress.sent), ("failed", 10));
    let group = daemon.api.group_report("spring").await.unwrap();
    let ids: Vec<&str> = group.campaigns.iter().map(|c| c.campaign.id.as_str()).collect();
    assert_eq!(ids, [recent.to_string().as_str()], "the group report answers for the retained campaign");
    assert_eq!(group.results.values().sum::<u64>(), 10);
    let listed: Vec<String> = daemon.api.list().await.unwrap().into_iter().map(|v| v.id).collect();
    assert_eq!(listed, [recent.to_string()]);
    let (status, _) =
        common::raw("GET", &format!("http://{}/readyz", daemon.addr), None, serde_json::Value::Null).await;
    assert_eq!(status, 200);
    daemon.stop().await;

    let store = open_store(dir.path());
    assert!(store.get(old).await.unwrap().is_none(), "the record is gone for good");
    assert_eq!(store.pending_chunks(recent, 0, 10).await.unwrap().len(), 1, "a retained campaign keeps its leftovers");
    store.close().await.unwrap();
}
