//! One set of behavioural checks of the `Store` trait, run against both backends: sled in a
//! temporary directory, and NATS JetStream on a `nats-server` this test starts on a free
//! loopback port (and kills). Without `nats-server` on PATH the NATS half says it was skipped;
//! under `CI=true` it fails instead.

mod common;

use std::sync::Arc;
use std::time::Duration;

use campaignd::domain::texting::SmsTally;
use campaignd::domain::CompactCid;
use campaignd::domain::{Action, CampaignState, Counts, ResultName};
use campaignd::store::{
    Ack, Change, Chunk, CidPage, DeliveryWindow, LeaseOutcome, NatsStore, PageQuery, PhoneBinding, ReceiptKey,
    SledStore, Store, StoreError, StoreSettings, Suppression, TextingEntry, UploadCommit,
};
use common::{all_bytes, list_spec, NatsServer};

/// Longest one check may take.
const LIMIT: Duration = Duration::from_secs(120);

/// Where a check's store lives.
enum Backend {
    Sled(tempfile::TempDir),
    Nats(NatsServer),
}

/// One open handle; sled's must be closed before the directory is opened again.
struct Opened {
    store: Arc<dyn Store>,
    sled: Option<Arc<SledStore>>,
}

impl std::ops::Deref for Opened {
    type Target = dyn Store;
    fn deref(&self) -> &(dyn Store + 'static) {
        &*self.store
    }
}

impl Backend {
    async fn open(&self) -> Opened {
        match self {
            Backend::Sled(dir) => {
                let s =
                    SledStore::open(&StoreSettings { path: dir.path().to_path_buf(), cache_bytes: 8 << 20 }).unwrap();
                Opened { store: s.clone(), sled: Some(s) }
            }
            Backend::Nats(server) => {
                let s = NatsStore::open(&server.settings("conformance")).await.expect("NATS store opens");
                Opened { store: s, sled: None }
            }
        }
    }

    /// A second handle on the same store, open at once with the first: sled allows one per
    /// directory (the same handle is shared); NATS gets its own connection.
    async fn second(&self, first: &Opened) -> Arc<dyn Store> {
        match self {
            Backend::Sled(_) => first.store.clone(),
            Backend::Nats(_) => self.open().await.store,
        }
    }

    async fn close(&self, opened: Opened) {
        opened.store.flush().await.unwrap();
        if let Some(s) = opened.sled {
            s.close().await.unwrap();
        }
    }
}

/// Runs `check` against sled and against NATS, each as its own test, bounded by [`LIMIT`].
macro_rules! on_both_backends {
    ($($check:ident),* $(,)?) => {
        mod sled {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let backend = super::Backend::Sled(tempfile::tempdir().unwrap());
                    tokio::time::timeout(super::LIMIT, super::$check(&backend)).await.expect("check finished in time");
                }
            )*
        }
        mod nats {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let Some(server) = super::NatsServer::start_or_skip(stringify!($check)) else { return };
                    let backend = super::Backend::Nats(server);
                    tokio::time::timeout(super::LIMIT, super::$check(&backend)).await.expect("check finished in time");
                }
            )*
        }
    };
}

on_both_backends!(
    lifecycle_census_active_index_and_pages,
    uploads_are_staged_then_committed_or_discarded,
    pending_chunks_come_in_order_and_acks_fold_into_progress,
    inflight_marks_and_identity_survive_a_reopen,
    suppressions_are_per_app_case_insensitive_and_durable,
    callback_deliveries_are_noted_once,
    expiry_removes_finished_campaigns_with_what_they_hold,
    committed_cids_come_in_bounded_pages,
    two_handles_changing_one_campaign_lose_no_update,
    phone_bindings_are_one_to_one_sealed_and_durable,
    texting_states_are_kept_once_found_when_due_and_finished_into_the_tally,
    sms_serials_are_taken_once_and_receipt_bits_accumulate,
    heartbeats_count_the_daemons_heard_from_lately,
    chunk_leases_go_to_one_holder_and_return_when_they_expire,
    claims_tie_a_key_to_the_first_campaign_for_good,
    a_phone_is_found_by_its_md5,
);

/// The directory whose files hold the backend's bytes.
impl Backend {
    fn data_dir(&self) -> &std::path::Path {
        match self {
            Backend::Sled(dir) => dir.path(),
            Backend::Nats(server) => server.dir.path(),
        }
    }
}

fn texting(campaign: u64, seq: u64, due_ms: i64, state: &[u8]) -> TextingEntry {
    TextingEntry { campaign, seq, due_ms, state: state.to_vec(), revision: 0 }
}

async fn texting_states_are_kept_once_found_when_due_and_finished_into_the_tally(backend: &Backend) {
    let store = backend.open().await;
    let id = uploaded(&*store, 3, 2).await;
    assert!(store.texting_stage(texting(id, 1, 2_000, b"b")).await.unwrap());
    assert!(store.texting_stage(texting(id, 0, 1_000, b"a")).await.unwrap());
    // Sent again after a crash, with a later due time: the first state stays.
    assert!(!store.texting_stage(texting(id, 0, 5_000, b"again")).await.unwrap());
    assert!(store.texting_due(999, 10).await.unwrap().is_empty(), "nothing due yet");
    let due = store.texting_due(2_000, 10).await.unwrap();
    let seen: Vec<(u64, i64, &[u8])> = due.iter().map(|e| (e.seq, e.due_ms, e.state.as_slice())).collect();
    assert_eq!(seen, [(0, 1_000, &b"a"[..]), (1, 2_000, &b"b"[..])], "earliest first, the first state kept");

    let mut first = due[0].clone();
    first.state = b"planned".to_vec();
    first.revision = store.texting_save(first.clone()).await.unwrap();
    let again = store.texting_due(1_500, 10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].state, b"planned");
    if matches!(backend, Backend::Nats(_)) {
        // Another daemon moving the same state on from the old revision is refused.
        let stale = TextingEntry { revision: due[0].revision, ..first.clone() };
        assert!(matches!(store.texting_save(stale).await, Err(StoreError::Conflict { .. })));
    }

    let tally = SmsTally { sent: 2, chunks_done: 1, ..SmsTally::default() };
    store.texting_finish(again[0].clone(), tally.clone()).await.unwrap();
    let rest = store.texting_due(10_000, 10).await.unwrap();
    assert_eq!(rest.iter().map(|e| e.seq).collect::<Vec<_>>(), [1]);
    backend.close(store).await;
    let store = backend.open().await;
    let rec = store.get(id).await.unwrap().unwrap();
    assert_eq!(rec.sms, tally, "the tally is in the record, durably");
    assert_eq!(store.texting_due(10_000, 10).await.unwrap().len(), 1, "the other state survives a reopen");
    backend.close(store).await;
}

async fn sms_serials_are_taken_once_and_receipt_bits_accumulate(backend: &Backend) {
    let store = backend.open().await;
    store.note_sms_serials("main", 7, vec!["sid-1".into(), "sid-2".into()]).await.unwrap();
    assert_eq!(store.take_sms_serial("main", "sid-1").await.unwrap(), Some(7));
    assert_eq!(store.take_sms_serial("main", "sid-1").await.unwrap(), None, "a repeated report finds nothing");
    assert_eq!(store.take_sms_serial("other", "sid-2").await.unwrap(), None, "serials are per app");

    let key = |t: &str, n: u8| ReceiptKey { taskid: t.into(), cid: CompactCid([n; 16]) };
    let before = store.note_receipts("main", vec![(key("RASS_1", 1), 1), (key("RASS_1", 1), 4)]).await.unwrap();
    assert_eq!(before, [0, 1], "a later mark of one body sees the earlier");
    assert_eq!(store.note_receipts("main", vec![(key("RASS_1", 1), 1)]).await.unwrap(), [5]);
    backend.close(store).await;
    let store = backend.open().await;
    let marks = store.receipt_marks("main", vec![key("RASS_1", 1), key("RASS_2", 1), key("RASS_1", 2)]).await.unwrap();
    assert_eq!(marks, [5, 0, 0], "per taskid and cid, durably");
    assert_eq!(store.receipt_marks("other", vec![key("RASS_1", 1)]).await.unwrap(), [0], "per app");
    backend.close(store).await;
}

async fn heartbeats_count_the_daemons_heard_from_lately(backend: &Backend) {
    let store = backend.open().await;
    let other = backend.second(&store).await;
    let now = common::now_ms() as i64;
    assert_eq!(store.heartbeat("a", now).await.unwrap(), 1);
    match backend {
        Backend::Sled(_) => assert_eq!(other.heartbeat("b", now).await.unwrap(), 1, "a sled store has one daemon"),
        Backend::Nats(_) => {
            assert_eq!(other.heartbeat("b", now).await.unwrap(), 2, "two daemons on one NATS store");
            assert_eq!(store.heartbeat("a", now).await.unwrap(), 2, "a heartbeat again is still one daemon");
            // b stops: its share returns to a once its note ages out.
            tokio::time::sleep(campaignd::store::nats::MEMBER_TTL + Duration::from_secs(2)).await;
            assert_eq!(store.heartbeat("a", now).await.unwrap(), 1);
        }
    }
    backend.close(store).await;
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

async fn phone_bindings_are_one_to_one_sealed_and_durable(backend: &Backend) {
    use campaignd::domain::phone::PhoneNumber;
    use campaignd::domain::CompactCid;
    use campaignd::seal::{aad, SealKey};

    let key = SealKey::from_text(campaignd::dev::DEV_SEAL_KEY_HEX).unwrap();
    let cid = |n: u8| CompactCid([n; 16]);
    let cid_hex = |n: u8| hex::encode([n; 16]);
    let pair = |app: &str, n: u8, phone: &str| {
        let p = PhoneNumber::parse(phone).unwrap();
        PhoneBinding {
            cid: cid(n),
            sealed: key.seal(p.e164().as_bytes(), &aad(&[app, &cid_hex(n)])),
            pn_md5: p.pn_md5(),
        }
    };
    let open = |app: &str, n: u8, sealed: &Option<Vec<u8>>| {
        sealed.as_ref().map(|s| String::from_utf8(key.open(s, &aad(&[app, &cid_hex(n)])).unwrap()).unwrap())
    };
    let store = backend.open().await;
    let out = store.bind_phones("a", vec![pair("a", 1, "13812345678"), pair("a", 2, "13987654321")]).await.unwrap();
    assert!(out.iter().all(|o| o.changed && o.displaced.is_none()));
    // The same phone in another app is another binding.
    store.bind_phones("b", vec![pair("b", 9, "13812345678")]).await.unwrap();
    // The latest bind of a phone wins: cid 1 loses it to cid 3.
    let moved = store.bind_phones("a", vec![pair("a", 3, "+86 138 1234 5678")]).await.unwrap();
    assert_eq!(moved[0].displaced, Some(cid(1)));
    let phones = store.phones_of("a", vec![cid(1), cid(2), cid(3)]).await.unwrap();
    assert_eq!(open("a", 1, &phones[0]), None, "the displaced cid answers 7");
    assert_eq!(open("a", 2, &phones[1]).as_deref(), Some("+8613987654321"));
    assert_eq!(open("a", 3, &phones[2]).as_deref(), Some("+8613812345678"));
    assert_eq!(open("b", 9, &store.phones_of("b", vec![cid(9)]).await.unwrap()[0]).as_deref(), Some("+8613812345678"));
    // Binding a pair again changes nothing; a cid bound anew frees its old phone.
    assert!(!store.bind_phones("a", vec![pair("a", 3, "13812345678")]).await.unwrap()[0].changed);
    store.bind_phones("a", vec![pair("a", 2, "13700000001")]).await.unwrap();
    let freed = store.bind_phones("a", vec![pair("a", 4, "13987654321")]).await.unwrap();
    assert_eq!(freed[0].displaced, None, "cid 2 had left that phone");
    // Within one call later pairs see earlier ones.
    let chain = store.bind_phones("a", vec![pair("a", 5, "13600000000"), pair("a", 6, "13600000000")]).await.unwrap();
    assert_eq!(chain[1].displaced, Some(cid(5)));
    // Unbind: true only for a bound cid; the phone is free again.
    assert_eq!(store.unbind_phones("a", vec![cid(6), cid(6), cid(1)]).await.unwrap(), [true, false, false]);
    assert_eq!(store.bind_phones("a", vec![pair("a", 7, "13600000000")]).await.unwrap()[0].displaced, None);
    backend.close(store).await;

    let store = backend.open().await;
    let phones = store.phones_of("a", vec![cid(1), cid(2), cid(3), cid(4), cid(7)]).await.unwrap();
    let opened: Vec<Option<String>> = [1, 2, 3, 4, 7].iter().zip(&phones).map(|(n, p)| open("a", *n, p)).collect();
    assert_eq!(
        opened,
        [
            None,
            Some("+8613700000001".into()),
            Some("+8613812345678".into()),
            Some("+8613987654321".into()),
            Some("+8613600000000".into())
        ],
        "bindings survive a reopen"
    );
    // What is on disk holds no bound number in plain text, in any form.
    backend.close(store).await;
    let bytes = all_bytes(backend.data_dir());
    assert!(!bytes.is_empty());
    for digits in ["13812345678", "13987654321", "13700000001", "13600000000"] {
        assert!(!contains(&bytes, digits.as_bytes()), "{digits} stored in plain text");
    }
}

fn chunk(n: u8) -> Chunk {
    Chunk { cids: (0..n).flat_map(|i| [i; 16]).collect(), ..Chunk::default() }
}

fn online(n: u64) -> Counts {
    let mut c = Counts::default();
    c.add(ResultName::SuccessedOnline, n);
    c
}

/// A campaign with `chunks` committed chunks of `n` recipients.
async fn uploaded(store: &dyn Store, chunks: u64, n: u8) -> u64 {
    let rec = store.create(list_spec("conformance"), 1).await.unwrap();
    for seq in 0..chunks {
        store.stage_chunk(rec.id, seq, chunk(n)).await.unwrap();
    }
    let commit = UploadCommit { first_seq: 0, chunks, recipients: chunks * u64::from(n), duplicates: 0, rejected: 0 };
    store.commit_upload(rec.id, commit).await.unwrap();
    rec.id
}

async fn census_of(store: &dyn Store, state: CampaignState) -> u64 {
    store.census().await.unwrap().into_iter().find(|(s, _)| *s == state).map_or(0, |(_, n)| n)
}

async fn active_ids(store: &dyn Store) -> Vec<u64> {
    store.active_campaigns().await.unwrap().iter().map(|r| r.id).collect()
}

async fn lifecycle_census_active_index_and_pages(backend: &Backend) {
    let store = backend.open().await;
    let draft = store.create(list_spec("conformance"), 1).await.unwrap();
    assert_eq!(draft.state, CampaignState::Draft);
    assert!(draft.request_salt.is_some());
    let err = store.change(draft.id, Change::Act(Action::Start, 2)).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { state: CampaignState::Draft, .. }), "no recipients: {err}");
    let running = uploaded(&*store, 1, 2).await;
    let cancelled = uploaded(&*store, 1, 2).await;
    assert!(running > draft.id && cancelled > running, "ids grow");
    let rec = store.change(running, Change::Act(Action::Start, 5)).await.unwrap();
    assert_eq!((rec.state, rec.started_ms), (CampaignState::Running, Some(5)));
    store.change(running, Change::SetListTask("RASL-1".into())).await.unwrap();
    store.change(cancelled, Change::Act(Action::Cancel, 6)).await.unwrap();
    assert!(store.pending_chunks(cancelled, 0, 10).await.unwrap().is_empty(), "a cancel drops unsent chunks");
    let got = store.get(running).await.unwrap().unwrap();
    assert_eq!((got.state, got.list_taskid.as_deref()), (CampaignState::Running, Some("RASL-1")));
    assert!(store.get(9_999).await.unwrap().is_none());
    assert!(matches!(store.change(9_999, Change::AddReplayed(1)).await, Err(StoreError::NotFound(9_999))));

    let ids: Vec<u64> = store.list().await.unwrap().iter().map(|r| r.id).collect();
    assert_eq!(ids, [draft.id, running, cancelled], "every campaign, oldest first");
    assert_eq!(active_ids(&*store).await, [draft.id, running]);
    assert_eq!(census_of(&*store, CampaignState::Draft).await, 1);
    assert_eq!(census_of(&*store, CampaignState::Running).await, 1);
    assert_eq!(census_of(&*store, CampaignState::Cancelled).await, 1);

    let page = store.campaigns_page(PageQuery { state: None, after: 0, limit: 2 }).await.unwrap();
    assert_eq!(page.campaigns.iter().map(|r| r.id).collect::<Vec<_>>(), [draft.id, running]);
    assert_eq!(page.next_after, Some(running));
    let rest = store.campaigns_page(PageQuery { state: None, after: running, limit: 2 }).await.unwrap();
    assert_eq!((rest.campaigns.len(), rest.next_after), (1, None));
    let only =
        store.campaigns_page(PageQuery { state: Some(CampaignState::Running), after: 0, limit: 9 }).await.unwrap();
    assert_eq!(only.campaigns.iter().map(|r| r.id).collect::<Vec<_>>(), [running]);

    assert!(matches!(store.delete(running).await, Err(StoreError::Conflict { .. })), "a running campaign stays");
    store.delete(draft.id).await.unwrap();
    assert!(store.get(draft.id).await.unwrap().is_none());
    assert_eq!(active_ids(&*store).await, [running]);
    assert_eq!(census_of(&*store, CampaignState::Draft).await, 0);
    backend.close(store).await;
}

async fn uploads_are_staged_then_committed_or_discarded(backend: &Backend) {
    let store = backend.open().await;
    let rec = store.create(list_spec("conformance"), 1).await.unwrap();
    // A chunk larger than one NATS message (1 MiB): it is stored in parts and read back whole.
    let mut heavy = chunk(100);
    heavy.vars = (0..100).map(|i| vec![("name".to_owned(), format!("{i:04}").repeat(3_000))]).collect();
    store.stage_chunk(rec.id, 0, heavy.clone()).await.unwrap();
    store.stage_chunk(rec.id, 1, chunk(9)).await.unwrap();
    store.stage_chunk(rec.id, 1, chunk(3)).await.unwrap(); // staged again: replaced
    assert!(store.pending_chunks(rec.id, 0, 10).await.unwrap().is_empty(), "staged chunks are invisible");
    let commit = UploadCommit { first_seq: 0, chunks: 2, recipients: 103, duplicates: 4, rejected: 5 };
    let rec = store.commit_upload(rec.id, commit).await.unwrap();
    assert_eq!((rec.chunk_count, rec.recipients, rec.duplicates, rec.rejected), (2, 103, 4, 5));
    assert_eq!(store.pending_chunks(rec.id, 0, 10).await.unwrap(), vec![(0, heavy), (1, chunk(3))]);
    let err = store.stage_chunk(rec.id, 1, chunk(1)).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "a committed chunk cannot be staged over: {err}");

    // A failed upload leaves nothing behind.
    store.stage_chunk(rec.id, 2, chunk(4)).await.unwrap();
    store.stage_chunk(rec.id, 3, chunk(4)).await.unwrap();
    store.discard_upload(rec.id, 2, 2).await.unwrap();
    let late = UploadCommit { first_seq: 2, chunks: 0, recipients: 0, duplicates: 0, rejected: 0 };
    let rec = store.commit_upload(rec.id, late).await.unwrap();
    assert_eq!(rec.chunk_count, 2);
    assert_eq!(store.pending_chunks(rec.id, 0, 10).await.unwrap().len(), 2, "the discarded chunks are gone");

    // A commit that lost the race (wrong first chunk) is refused and its chunks discarded.
    store.stage_chunk(rec.id, 5, chunk(4)).await.unwrap();
    let stale = UploadCommit { first_seq: 5, chunks: 1, recipients: 4, duplicates: 0, rejected: 0 };
    assert!(matches!(store.commit_upload(rec.id, stale).await, Err(StoreError::Conflict { .. })));
    let right = UploadCommit { first_seq: 2, chunks: 4, recipients: 16, duplicates: 0, rejected: 0 };
    store.commit_upload(rec.id, right).await.unwrap();
    let seqs: Vec<u64> = store.pending_chunks(rec.id, 0, 10).await.unwrap().iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, [0, 1], "nothing of the refused upload shows");

    // Only drafts take uploads.
    let started = uploaded(&*store, 1, 1).await;
    store.change(started, Change::Act(Action::Start, 2)).await.unwrap();
    store.stage_chunk(started, 1, chunk(1)).await.unwrap();
    let more = UploadCommit { first_seq: 1, chunks: 1, recipients: 1, duplicates: 0, rejected: 0 };
    assert!(matches!(store.commit_upload(started, more).await, Err(StoreError::Conflict { .. })));
    backend.close(store).await;
}

async fn pending_chunks_come_in_order_and_acks_fold_into_progress(backend: &Backend) {
    let store = backend.open().await;
    let id = uploaded(&*store, 5, 2).await;
    store.change(id, Change::Act(Action::Start, 2)).await.unwrap();
    let seqs = |v: Vec<(u64, Chunk)>| v.into_iter().map(|(s, _)| s).collect::<Vec<_>>();
    // NATS counts the chunk messages waiting in its stream (the backlog metric); sled leaves
    // the count to the dispatcher.
    let queued = store.queued_chunk_messages().await.unwrap();
    assert!(matches!(queued, None | Some(5)), "{queued:?}");
    assert_eq!(seqs(store.pending_chunks(id, 0, 2).await.unwrap()), [0, 1]);
    assert_eq!(seqs(store.pending_chunks(id, 3, 10).await.unwrap()), [3, 4]);
    // Out of order: chunk 1 is acknowledged first; it waits for chunk 0 to be folded.
    store.ack(Ack { campaign: id, seq: 1, counts: online(2) }).await.unwrap();
    store.ack(Ack { campaign: id, seq: 1, counts: online(2) }).await.unwrap(); // a duplicate counts nothing
    assert_eq!(seqs(store.pending_chunks(id, 0, 10).await.unwrap()), [0, 2, 3, 4], "acked chunks are skipped");
    let p = store.progress(id).await.unwrap();
    assert_eq!((p.counts.total(), p.acked_chunks), (2, 1));
    assert_eq!(store.get(id).await.unwrap().unwrap().folded, 0);
    store.ack(Ack { campaign: id, seq: 0, counts: online(2) }).await.unwrap();
    let rec = store.get(id).await.unwrap().unwrap();
    assert_eq!((rec.folded, rec.counts.total()), (2, 4), "folded in order");
    for seq in 2..5 {
        store.ack(Ack { campaign: id, seq, counts: online(2) }).await.unwrap();
    }
    let rec = store.get(id).await.unwrap().unwrap();
    assert_eq!((rec.state, rec.folded, rec.counts.total()), (CampaignState::Completed, 5, 10));
    assert!(rec.finished_ms.is_some());
    let p = store.progress(id).await.unwrap();
    assert_eq!((p.counts.total(), p.acked_chunks), (10, 5));
    assert!(store.pending_chunks(id, 0, 10).await.unwrap().is_empty());
    assert_eq!(store.queued_chunk_messages().await.unwrap().unwrap_or(0), 0, "none left in the stream");
    assert!(active_ids(&*store).await.is_empty());
    assert_eq!(census_of(&*store, CampaignState::Completed).await, 1);
    assert!(matches!(store.pending_chunks(9_999, 0, 1).await, Err(StoreError::NotFound(9_999))));
    assert!(store.size_on_disk().await.unwrap() > 0);
    backend.close(store).await;
}

async fn inflight_marks_and_identity_survive_a_reopen(backend: &Backend) {
    let store = backend.open().await;
    let identity = store.identity();
    let id = uploaded(&*store, 3, 1).await;
    store.change(id, Change::Act(Action::Start, 2)).await.unwrap();
    store.mark_inflight(id, 2).await.unwrap();
    store.mark_inflight(id, 0).await.unwrap();
    assert_eq!(store.inflight_chunks(id).await.unwrap(), [0, 2]);
    backend.close(store).await;

    let store = backend.open().await;
    assert_eq!(store.identity(), identity, "the identity is drawn once");
    assert_eq!(store.inflight_chunks(id).await.unwrap(), [0, 2], "in-flight marks outlive a restart");
    store.ack(Ack { campaign: id, seq: 0, counts: online(1) }).await.unwrap();
    assert_eq!(store.inflight_chunks(id).await.unwrap(), [2], "an ack clears its mark");
    let other = store.create(list_spec("conformance"), 3).await.unwrap();
    assert!(other.id > id, "ids keep growing across a reopen");
    backend.close(store).await;
}

async fn chunk_leases_go_to_one_holder_and_return_when_they_expire(backend: &Backend) {
    use LeaseOutcome::{Held, Taken, TakenOver};
    let store = backend.open().await;
    let other = backend.second(&store).await;
    let id = uploaded(&*store, 3, 1).await;
    store.change(id, Change::Act(Action::Start, 2)).await.unwrap();
    assert!(!store.chunk_inflight(id, 1).await.unwrap());
    store.mark_inflight(id, 1).await.unwrap();
    assert!(other.chunk_inflight(id, 1).await.unwrap(), "the mark is seen through every handle");
    let shared = matches!(backend, Backend::Nats(_));
    assert_eq!(store.lease_chunk(id, 0, "a", 60_000).await.unwrap(), Taken);
    if !shared {
        // One process per sled store: every lease is the caller's.
        assert_eq!(other.lease_chunk(id, 0, "b", 60_000).await.unwrap(), Taken);
        backend.close(store).await;
        return;
    }
    assert_eq!(other.lease_chunk(id, 0, "b", 60_000).await.unwrap(), Held, "a live lease is held");
    assert_eq!(store.lease_chunk(id, 0, "a", 60_000).await.unwrap(), Taken, "its holder renews it");
    other.release_chunk(id, 0, "b").await.unwrap();
    assert_eq!(other.lease_chunk(id, 0, "b", 60_000).await.unwrap(), Held, "only the holder releases");
    store.release_chunk(id, 0, "a").await.unwrap();
    assert_eq!(other.lease_chunk(id, 0, "b", 60_000).await.unwrap(), Taken, "a released lease is free");
    // A holder that stops renewing (died) loses the chunk once the lease expires.
    assert_eq!(store.lease_chunk(id, 1, "a", 1).await.unwrap(), Taken);
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(other.lease_chunk(id, 1, "b", 60_000).await.unwrap(), TakenOver);
    assert_eq!(store.lease_chunk(id, 1, "a", 60_000).await.unwrap(), Held);
    // The acknowledgement frees the lease along with the mark, and a daemon that read the
    // chunk as pending before learns that it is done.
    other.ack(Ack { campaign: id, seq: 1, counts: online(1) }).await.unwrap();
    assert!(!store.chunk_inflight(id, 1).await.unwrap());
    assert_eq!(store.lease_chunk(id, 1, "a", 60_000).await.unwrap(), LeaseOutcome::Done);
    other.ack(Ack { campaign: id, seq: 0, counts: online(1) }).await.unwrap();
    assert_eq!(store.lease_chunk(id, 0, "a", 60_000).await.unwrap(), LeaseOutcome::Done, "folded, too");
    backend.close(store).await;
}

async fn suppressions_are_per_app_case_insensitive_and_durable(backend: &Backend) {
    let store = backend.open().await;
    let entry = |reason: &str| Some(Suppression { reason: reason.into(), since_ms: 7 });
    assert!(store.set_suppression("staff", "LiLei", entry("unsubscribe")).await.unwrap());
    assert!(!store.set_suppression("staff", "lilei", entry("keyword")).await.unwrap(), "already on the list");
    assert!(store.set_suppression("staff", "hanmei", entry("api")).await.unwrap());
    assert!(store.set_suppression("other", "zed", entry("api")).await.unwrap());
    backend.close(store).await;
    let store = backend.open().await;
    assert_eq!(store.suppression("staff", "LILEI").await.unwrap().unwrap().reason, "keyword");
    assert!(store.suppression("other", "lilei").await.unwrap().is_none(), "per app");
    let among = store.suppressed_among("staff", vec!["HanMei".into(), "nobody".into(), "lilei".into()]).await;
    assert_eq!(among.unwrap(), [true, false, true]);
    let listed: Vec<String> = store.suppressions("staff", "", 10).await.unwrap().into_iter().map(|(u, _)| u).collect();
    assert_eq!(listed, ["hanmei", "lilei"]);
    let after: Vec<String> =
        store.suppressions("staff", "hanmei", 10).await.unwrap().into_iter().map(|(u, _)| u).collect();
    assert_eq!(after, ["lilei"]);
    assert_eq!(store.suppressions("staff", "", 1).await.unwrap().len(), 1);
    assert!(store.set_suppression("staff", "LILEI", None).await.unwrap());
    assert!(!store.set_suppression("staff", "lilei", None).await.unwrap(), "already off");
    assert!(store.suppression("staff", "lilei").await.unwrap().is_none());
    backend.close(store).await;
}

async fn callback_deliveries_are_noted_once(backend: &Backend) {
    let window = DeliveryWindow { max_entries: 100, max_age_ms: 60_000 };
    let store = backend.open().await;
    assert!(store.first_delivery("staff:msg:li:1", 1_000, window).await.unwrap());
    assert!(!store.first_delivery("staff:msg:li:1", 2_000, window).await.unwrap(), "a retry");
    backend.close(store).await;
    let store = backend.open().await;
    assert!(!store.first_delivery("staff:msg:li:1", 3_000, window).await.unwrap(), "a retry after a restart");
    assert!(store.delivery_noted("staff:msg:li:1").await.unwrap());
    assert!(!store.delivery_noted("staff:msg:li:2").await.unwrap());
    assert!(store.first_delivery("staff:msg:li:1", 1_000 + 60_001, window).await.unwrap(), "outside the window");
    backend.close(store).await;
}

async fn claims_tie_a_key_to_the_first_campaign_for_good(backend: &Backend) {
    let store = backend.open().await;
    assert_eq!(store.claimed("legacy:req-1").await.unwrap(), None);
    assert_eq!(store.claim("legacy:req-1", 7).await.unwrap(), 7);
    assert_eq!(store.claim("legacy:req-1", 8).await.unwrap(), 7, "a second claim gets the first campaign");
    assert_eq!(store.claim("legacy:req-2 with spaces/and.dots", 9).await.unwrap(), 9);
    backend.close(store).await;
    let store = backend.open().await;
    assert_eq!(store.claimed("legacy:req-1").await.unwrap(), Some(7), "claims survive a reopen");
    assert_eq!(store.claim("legacy:req-1", 10).await.unwrap(), 7);
    assert_eq!(store.claimed("legacy:req-2 with spaces/and.dots").await.unwrap(), Some(9));
    backend.close(store).await;
}

async fn a_phone_is_found_by_its_md5(backend: &Backend) {
    let store = backend.open().await;
    let pn = |c: char| c.to_string().repeat(32);
    let cid = |n: u8| CompactCid([n; 16]);
    let binding = |n: u8, md5: String, sealed: Vec<u8>| PhoneBinding { cid: cid(n), sealed, pn_md5: md5 };
    store.bind_phones("a", vec![binding(1, pn('a'), vec![1, 2, 3]), binding(2, pn('b'), Vec::new())]).await.unwrap();
    assert_eq!(store.binding_of_pn("a", &pn('a')).await.unwrap(), Some((cid(1), vec![1, 2, 3])));
    assert_eq!(store.binding_of_pn("a", &pn('b')).await.unwrap(), Some((cid(2), Vec::new())), "md5 only");
    assert_eq!(store.binding_of_pn("a", &pn('c')).await.unwrap(), None);
    assert_eq!(store.binding_of_pn("b", &pn('a')).await.unwrap(), None, "per app");
    let found = store.bindings_of("a", vec![cid(2), cid(3)]).await.unwrap();
    assert_eq!(found, [Some((pn('b'), Vec::new())), None]);
    backend.close(store).await;
}

async fn expiry_removes_finished_campaigns_with_what_they_hold(backend: &Backend) {
    let store = backend.open().await;
    let mut ids = Vec::new();
    for finished in [100, 200, 300] {
        let id = uploaded(&*store, 2, 3).await;
        store.change(id, Change::Act(Action::Start, 50)).await.unwrap();
        store.ack(Ack { campaign: id, seq: 1, counts: online(3) }).await.unwrap();
        store.mark_inflight(id, 0).await.unwrap();
        store.change(id, Change::Fail("no".into(), finished)).await.unwrap();
        ids.push(id);
    }
    let draft = store.create(list_spec("conformance"), 1).await.unwrap().id;
    assert_eq!(store.expire_finished(250, 1).await.unwrap(), 1, "at most `max` per call");
    assert_eq!(store.expire_finished(250, 10).await.unwrap(), 1);
    assert_eq!(store.expire_finished(250, 10).await.unwrap(), 0);
    for gone in &ids[..2] {
        assert!(store.get(*gone).await.unwrap().is_none());
        assert!(store.inflight_chunks(*gone).await.unwrap().is_empty());
    }
    let kept = store.get(ids[2]).await.unwrap().unwrap();
    assert_eq!(kept.state, CampaignState::Failed);
    assert_eq!(store.progress(ids[2]).await.unwrap().counts.total(), 3, "a retained campaign keeps its report");
    assert_eq!(active_ids(&*store).await, [draft]);
    assert_eq!(census_of(&*store, CampaignState::Failed).await, 1);
    backend.close(store).await;
}

async fn committed_cids_come_in_bounded_pages(backend: &Backend) {
    let store = backend.open().await;
    let id = uploaded(&*store, 10, 4).await;
    store.stage_chunk(id, 10, chunk(4)).await.unwrap(); // staged, not committed
    let (mut pages, mut cids, mut next) = (0, Vec::new(), Some(0));
    while let Some(from) = next {
        let page = store.committed_cids(id, from, 150).await.unwrap();
        assert!(page.cids.len() <= 3 * 4 * 16, "a page stops once it passes its byte budget");
        cids.extend_from_slice(&page.cids);
        next = page.next;
        pages += 1;
        assert!(pages <= 10, "the pages end");
    }
    assert!(pages > 1);
    assert_eq!(cids, (0..10).flat_map(|_| chunk(4).cids).collect::<Vec<u8>>(), "every committed cid, in order");
    assert_eq!(store.committed_cids(id, 10, 8_000).await.unwrap(), CidPage::default());
    assert!(matches!(store.committed_cids(999, 0, 8_000).await, Err(StoreError::NotFound(999))));
    backend.close(store).await;
}

/// Two handles (for NATS: two connections, as two daemons would have) change one campaign at
/// once, and acknowledge its chunks at once: every change and every chunk counts exactly once.
async fn two_handles_changing_one_campaign_lose_no_update(backend: &Backend) {
    let first = backend.open().await;
    let second = backend.second(&first).await;
    let id = uploaded(&*first, 40, 1).await;
    first.change(id, Change::Act(Action::Start, 2)).await.unwrap();
    let mut tasks = Vec::new();
    for (which, store) in [first.store.clone(), second.clone()].into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            for _ in 0..50 {
                store.change(id, Change::AddReplayed(1)).await.unwrap();
            }
            for seq in (which as u64..40).step_by(2) {
                store.ack(Ack { campaign: id, seq, counts: online(1) }).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let rec = second.get(id).await.unwrap().unwrap();
    assert_eq!(rec.replayed, 100, "no lost update");
    assert_eq!((rec.state, rec.folded, rec.counts.total()), (CampaignState::Completed, 40, 40));
    drop(second);
    backend.close(first).await;
}

/// NATS only (sled allows one handle per directory): two daemons starting together on an empty
/// server agree on one store identity (the first `create` wins), and campaigns they create at
/// once get distinct ids from the shared counter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_handles_opened_together_share_one_identity_and_never_reuse_an_id() {
    let Some(server) = NatsServer::start_or_skip("the shared identity and id counter check") else { return };
    let check = async {
        let settings = server.settings("together");
        // Four at once, as daemons started together race to create the streams and buckets.
        let (a, b, c, d) = tokio::join!(
            NatsStore::open(&settings),
            NatsStore::open(&settings),
            NatsStore::open(&settings),
            NatsStore::open(&settings)
        );
        let (a, b) = (a.expect("first handle"), b.expect("second handle"));
        let (c, d) = (c.expect("third handle"), d.expect("fourth handle"));
        assert_eq!(a.identity(), b.identity(), "one identity for the shared store");
        assert_eq!((c.identity(), d.identity()), (a.identity(), a.identity()));
        let create_many = |store: Arc<NatsStore>| {
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for _ in 0..20 {
                    ids.push(store.create(list_spec("conformance"), 1).await.unwrap().id);
                }
                ids
            })
        };
        let (from_a, from_b) = tokio::join!(create_many(a.clone()), create_many(b.clone()));
        let mut ids = [from_a.unwrap(), from_b.unwrap()].concat();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 40, "every id distinct");
        assert_eq!(census_of(&*a, CampaignState::Draft).await, 40);
        let other = NatsStore::open(&server.settings("elsewhere")).await.unwrap();
        assert_ne!(other.identity(), a.identity(), "another prefix is another store");
    };
    tokio::time::timeout(LIMIT, check).await.expect("check finished in time");
}
