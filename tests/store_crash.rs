//! What a sled store keeps when its process dies without closing it. The test runs itself again
//! as a child process that writes, waits for the answers, and aborts at once (no flush, no
//! destructor); the parent then opens the store and checks what the writer promised:
//! - an acknowledgement that completes its campaign is durable when it is answered;
//! - any other acknowledgement is durable within 50 ms of its answer (it waits for a later
//!   flush, so a crash inside that window may undo it, which the replay policy covers), however
//!   busy the writer is with commands that ask for no flush.

mod common;

use std::process::Command;
use std::time::Duration;

use campaignd::domain::{Action, CampaignState, Counts, ResultName};
use campaignd::store::{Ack, Change, Chunk, SledStore, Store, StoreSettings, UploadCommit};
use common::list_spec;

/// Set in the child: the store directory it writes to.
const CHILD_DIR: &str = "STORE_CRASH_CHILD_DIR";
/// Set in the child: which [`Scene`] it plays.
const CHILD_SCENE: &str = "STORE_CRASH_CHILD_SCENE";
const TEST: &str = "acknowledgements_outlive_an_abort_in_time_and_a_completing_one_at_once";

fn settings(dir: &std::path::Path) -> StoreSettings {
    StoreSettings { path: dir.to_path_buf(), cache_bytes: 8 << 20 }
}

fn online(n: u64) -> Counts {
    let mut c = Counts::default();
    c.add(ResultName::SuccessedOnline, n);
    c
}

/// A running campaign of `chunks` one-recipient chunks.
async fn running(store: &dyn Store, chunks: u64) -> u64 {
    let id = store.create(list_spec("crash"), 1).await.unwrap().id;
    for seq in 0..chunks {
        let chunk = Chunk { cids: vec![seq as u8; 16], ..Chunk::default() };
        store.stage_chunk(id, seq, chunk).await.unwrap();
    }
    let commit = UploadCommit { first_seq: 0, chunks, recipients: chunks, duplicates: 0, rejected: 0 };
    store.commit_upload(id, commit).await.unwrap();
    store.change(id, Change::Act(Action::Start, 2)).await.unwrap();
    id
}

/// What a child does before it aborts.
#[derive(Clone, Copy, Debug)]
enum Scene {
    /// One of three chunks acknowledged, then 200 ms (four times the writer's longest wait; the
    /// child dies before sled's own flush, every 500 ms, first runs).
    Idle,
    /// One of three chunks acknowledged, then another campaign's upload stages a chunk every
    /// 10 ms for 200 ms (staged chunks ask for no flush of their own, and they must not keep
    /// putting the acknowledgement's off).
    Staging,
    /// Both chunks acknowledged, which completes the campaign; the abort comes the moment the
    /// second answer is in.
    Completing,
}

async fn child(dir: &str, scene: &str) {
    let store = SledStore::open(&settings(std::path::Path::new(dir))).unwrap();
    if scene == "Idle" {
        let id = running(&*store, 3).await;
        store.flush().await.unwrap();
        store.ack(Ack { campaign: id, seq: 0, counts: online(1) }).await.unwrap();
        std::thread::sleep(Duration::from_millis(200));
    } else if scene == "Staging" {
        let id = running(&*store, 3).await;
        let draft = store.create(list_spec("draft"), 1).await.unwrap().id;
        store.flush().await.unwrap();
        store.ack(Ack { campaign: id, seq: 0, counts: online(1) }).await.unwrap();
        for seq in 0..20 {
            store.stage_chunk(draft, seq, Chunk { cids: vec![7; 16], ..Chunk::default() }).await.unwrap();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    } else {
        let id = running(&*store, 2).await;
        store.flush().await.unwrap();
        store.ack(Ack { campaign: id, seq: 0, counts: online(1) }).await.unwrap();
        store.ack(Ack { campaign: id, seq: 1, counts: online(1) }).await.unwrap();
    }
    std::process::abort();
}

/// Runs `scene` in a child process on a new store and opens that store once the child died.
fn after_abort(runtime: &tokio::runtime::Runtime, scene: Scene) -> (tempfile::TempDir, std::sync::Arc<SledStore>) {
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR, dir.path())
        .env(CHILD_SCENE, format!("{scene:?}"))
        .status()
        .unwrap();
    assert!(!status.success(), "the child aborts after its writes: {status:?}");
    let store = runtime.block_on(async { SledStore::open(&settings(dir.path())).unwrap() });
    (dir, store)
}

#[test]
fn acknowledgements_outlive_an_abort_in_time_and_a_completing_one_at_once() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    if let (Ok(dir), Ok(scene)) = (std::env::var(CHILD_DIR), std::env::var(CHILD_SCENE)) {
        runtime.block_on(child(&dir, &scene));
        return;
    }
    for scene in [Scene::Idle, Scene::Staging] {
        let (_dir, store) = after_abort(&runtime, scene);
        runtime.block_on(async {
            let progress = store.progress(1).await.unwrap();
            assert_eq!(
                (progress.counts.total(), progress.acked_chunks),
                (1, 1),
                "{scene:?}: an ack 200 ms before the abort is kept"
            );
            let pending: Vec<u64> = store.pending_chunks(1, 0, 10).await.unwrap().into_iter().map(|(s, _)| s).collect();
            assert_eq!(pending, [1, 2]);
            assert_eq!(store.get(1).await.unwrap().map(|r| r.state), Some(CampaignState::Running));
            store.close().await.unwrap();
        });
    }
    let (_dir, store) = after_abort(&runtime, Scene::Completing);
    runtime.block_on(async {
        let completed = store.get(1).await.unwrap().expect("the campaign kept");
        assert_eq!(
            (completed.state, completed.counts.total()),
            (CampaignState::Completed, 2),
            "the ack that completed it was durable when answered"
        );
        store.close().await.unwrap();
    });
}
