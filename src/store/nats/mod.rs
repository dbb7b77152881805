//! [`Store`] on NATS JetStream (`store.backend = "nats"`), laid out so that several daemons can
//! share one set of campaigns.
//!
//! Layout (prefix `P` = `store.nats.stream_prefix`; names in `layout`):
//! - KV `P_campaigns`: `rec.{id}` → the campaign record, in the same bytes as sled stores it
//!   (`codec::encode_named`). Every change reads the record with its revision, applies the
//!   shared rules of `store::rules`, and writes it back with `update(key, value, revision)`;
//!   a revision conflict (another daemon changed it meanwhile) re-reads and retries, so no
//!   update is lost.
//! - KV `P_meta`: `identity`, created once with `create` (the first daemon wins, the others
//!   read it); `next_id`, the campaign id counter, advanced by a revision-checked update.
//! - KV `P_index`: `{state}.{id}`, one key per campaign, moved after each state change. The
//!   active campaigns, the census and the pages are read from these keys (listed from the
//!   stream's per-subject counts, see `scan`), so only the records a call returns are
//!   decoded. The record is the truth: a daemon that dies between the record and the index
//!   leaves a stale key, which [`NatsStore::open`] repairs. Listing keys still costs one
//!   entry per campaign kept; `list` and `expire_finished` read every finished record (sled
//!   has a finish-time index for the latter; a `fin.{ms}.{id}` key here would be the next
//!   step once histories grow).
//! - Stream `P_chunks`, subjects `P.chunk.{id}.{seq}.{part}`: one message per chunk, split in
//!   parts of at most [`PART_BYTES`] (a NATS message is at most 1 MiB by default), the first
//!   part's `Campaignd-Parts` header saying how many. The stream keeps the last message per
//!   subject; staging purges `P.chunk.{id}.{seq}.*` before publishing, so a re-staged chunk
//!   leaves no stale part. A staged chunk is invisible until a revision-checked commit raises
//!   the record's `chunk_count` over it; a discarded upload purges its subjects. Chunks are
//!   read by subject (`STREAM.MSG.GET` last-by-subject), in seq order, so the order does not
//!   depend on the order uploads were published in.
//!
//!   Why not the work-queue stream with one durable pull consumer per campaign: the
//!   `Store` trait reads chunks by sequence (`pending_chunks(from_seq)`, `committed_cids`)
//!   and the dispatcher owns leasing and retries. Messages addressed by subject keep every
//!   trait method exact; the ack wait and redelivery a pull consumer would give are done by
//!   the chunk leases in `P_leases` instead, which also tell a takeover (the holder died)
//!   from a first send.
//! - KV `P_done`: `{id}.{seq}` → the acknowledged chunk's counts (a tombstone), created with
//!   `create` so a second acknowledgement of one chunk counts nothing. The chunk's subjects are
//!   purged next; tombstones are folded, in order, into the record (revision-checked) and then
//!   deleted, as sled's are. `pending_chunks` skips any chunk with a tombstone, so a daemon
//!   dying between the tombstone and the purge does not send it twice.
//! - KV `P_inflight`: `{id}.{seq}`, the list chunks about to be sent; they outlive a restart.
//! - KV `P_leases`: `{id}.{seq}` → `expiry ms ‖ member id`, the chunk leases that let several
//!   daemons share a running campaign (see `leases`): a shard takes a chunk's lease before
//!   sending it and the acknowledgement removes it; a dead daemon's lease expires after
//!   `store.nats.lease_ms` (the ack wait) and another daemon takes the chunk over.
//! - KV `P_bindings`: cid↔phone bindings, `c.{hex app}.{cid}` → `pn_md5 ‖ sealed number` and
//!   `p.{hex app}.{hex pn_md5}` → cid (16 bytes). KV has no multi-key transaction, so a bind
//!   writes the reverse entry first and removes what it displaced after; a read trusts a cid
//!   record only when the reverse entry names that cid back, so a crash between the writes
//!   never shows a phone on two cids (the next bind of either tidies up).
//! - KV `P_suppressed`: `{hex app}.{hex lowercased user}` → the suppression.
//! - KV `P_deliveries`: `{hex key}` → when the callback delivery was noted. `first_delivery`
//!   is a KV `create`: of two daemons handling one WeCom retry, only one wins; an entry older
//!   than the caller's window is noted afresh by a revision-checked update. The bucket's
//!   `max_age` (two days; the API's window is one) bounds it, not an entry count.
//!
//! Keys are removed by purging their subject (no delete marker), except a deleted campaign's
//! record, which goes by `purge_expect_revision` so a change made meanwhile stops the delete.
//! Every write returns once JetStream has acknowledged it (stored; on R3, by a majority), so
//! `flush` only flushes the connection. `size_on_disk` adds up the streams' bytes;
//! `queued_chunk_messages` is the chunk stream's message count (the backlog metric). The KV
//! streams are created with the settings `create_key_value` would use, by hand: that call
//! first asks for account info in a shape nats-server 2.9 (Debian bookworm's) cannot answer.

mod health;
mod layout;
mod leases;
mod scan;
mod texting;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};
use bytes::Bytes;
use futures_util::StreamExt;

use self::layout::{
    delivery_key, index_key, parse_index_key, parse_seq_key, record_key, seq_key, suppression_key, suppression_user,
    Names,
};
use self::scan::{keys, remove, values};
use super::bindings::{cid_value, parse_cid_bytes, split_cid_value, BindKey};
use super::codec::{decode, encode_compact, encode_named, StoredCids};
use super::{
    rules, Ack, BindOutcome, CampaignPage, CampaignRecord, Change, Chunk, CidPage, DeliveryWindow, LeaseOutcome,
    PageQuery, PhoneBinding, Progress, Store, StoreError, StoreFuture, Suppression, UploadCommit,
};
use super::{ReceiptKey, StoredBinding, TextingEntry};
use crate::clock::now_ms;
use crate::domain::texting::SmsTally;
use crate::domain::CompactCid;
use crate::domain::{CampaignSpec, CampaignState, Counts, StoreIdentity};
use crate::secret::Secret;

/// Where and how to reach NATS.
#[derive(Debug, Clone)]
pub struct NatsSettings {
    /// Seed URLs, comma-separated.
    pub url: String,
    /// Start of every stream, bucket and subject name.
    pub stream_prefix: String,
    /// Copies of every stream and bucket: 1, or 3 on a cluster.
    pub replicas: usize,
    /// A token, or `user:password`.
    pub credentials: Option<Secret>,
}

/// Largest part of a chunk in one message (NATS's default payload limit is 1 MiB).
pub const PART_BYTES: usize = 512 * 1024;

/// Header of a chunk's first part: how many parts it has.
const PARTS_HEADER: &str = "Campaignd-Parts";

/// How long a connection attempt at start may take per server.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How often a revision-checked update is retried before giving up: only a storm of
/// concurrent changes to one campaign gets there.
const MAX_CAS_ATTEMPTS: usize = 1_000;

/// Most keys one scan reads (campaigns in the index, tombstones of a campaign, …).
const SCAN_MAX: usize = 1_000_000;

/// Most records one page of the campaign list examines (as sled's).
const PAGE_SCAN_MAX: usize = 5_000;

/// Suppression lookups of one `suppressed_among` call in flight at once.
const SUPPRESSION_LOOKUPS: usize = 32;

/// How long a callback delivery is remembered at most (the API's window is a day).
const DELIVERY_MAX_AGE: Duration = Duration::from_secs(2 * 86_400);

/// How long a daemon counts as alive after its last heartbeat: a dead daemon's share of the
/// group's speeds and call budgets returns to the others within this plus one heartbeat.
pub const MEMBER_TTL: Duration = Duration::from_secs(5);

/// Any NATS error, as a store failure.
pub(crate) fn nats_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Db(format!("nats: {e}"))
}

/// The NATS-backed store. Cheap to share: every handle holds the same connection.
pub struct NatsStore {
    client: async_nats::Client,
    js: jetstream::Context,
    names: Names,
    chunks: stream::Stream,
    meta: kv::Store,
    campaigns: kv::Store,
    index: kv::Store,
    done: kv::Store,
    inflight: kv::Store,
    suppressed: kv::Store,
    deliveries: kv::Store,
    bindings: kv::Store,
    texting: kv::Store,
    serials: kv::Store,
    receipts: kv::Store,
    members: kv::Store,
    leases: kv::Store,
    identity: StoreIdentity,
    /// The seed URLs, for the messages of [`StoreError::Unavailable`].
    url: String,
}

/// A record with the revision it was read at.
struct Versioned {
    rec: CampaignRecord,
    revision: u64,
}

impl NatsStore {
    /// Connects, creates the streams and buckets that are missing (an existing one is left as
    /// it is), reads or makes the store identity, and repairs the state index.
    pub async fn open(settings: &NatsSettings) -> Result<Arc<NatsStore>, StoreError> {
        let unavailable =
            |e: &dyn std::fmt::Display| StoreError::Unavailable { url: settings.url.clone(), message: e.to_string() };
        let seeds: Vec<&str> = settings.url.split(',').map(str::trim).filter(|u| !u.is_empty()).collect();
        let options = match settings.credentials.as_ref().map(|c| c.expose().to_owned()) {
            Some(c) => match c.split_once(':') {
                Some((user, pass)) => async_nats::ConnectOptions::with_user_and_password(user.into(), pass.into()),
                None => async_nats::ConnectOptions::with_token(c),
            },
            None => async_nats::ConnectOptions::new(),
        };
        let client = options
            .name("campaignd")
            .connection_timeout(CONNECT_TIMEOUT)
            .connect(seeds.as_slice())
            .await
            .map_err(|e| unavailable(&e))?;
        let js = jetstream::new(client.clone());
        let names = Names::new(&settings.stream_prefix);
        let created = js
            .get_or_create_stream(stream::Config {
                name: names.chunk_stream(),
                subjects: vec![names.chunk_subjects()],
                max_messages_per_subject: 1,
                num_replicas: settings.replicas,
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await;
        let chunks = match created {
            Ok(stream) => stream,
            // Another daemon starting at once may have made it first (see `open_bucket`).
            Err(e) => made_by_another(|| js.get_stream(names.chunk_stream()))
                .await
                .ok_or_else(|| unavailable(&format!("JetStream is not enabled or not answering: {e}")))?,
        };
        let mut buckets = Vec::new();
        for what in layout::BUCKETS {
            buckets.push(open_bucket(&js, &names, what, settings.replicas).await?);
        }
        let [meta, campaigns, index, done, inflight, suppressed, deliveries, bindings, texting, serials, receipts, members, leases]: [kv::Store;
            13] =
            buckets.try_into().map_err(|_| StoreError::Db("bucket list".into()))?;
        let identity = load_identity(&meta).await?;
        let store = NatsStore {
            client,
            js,
            names,
            chunks,
            meta,
            campaigns,
            index,
            done,
            inflight,
            suppressed,
            deliveries,
            bindings,
            texting,
            serials,
            receipts,
            members,
            leases,
            identity,
            url: settings.url.clone(),
        };
        store.reindex().await?;
        Ok(Arc::new(store))
    }

    /// Makes the state index agree with the records (a daemon may have died between the two).
    async fn reindex(&self) -> Result<(), StoreError> {
        let records = self.all_records().await?;
        let wanted: BTreeSet<String> = records.iter().map(|r| index_key(r.state, r.id)).collect();
        let present: BTreeSet<String> = self.index_keys().await?.into_iter().map(|(k, _, _)| k).collect();
        for stale in present.difference(&wanted) {
            remove(&self.index, stale).await?;
        }
        for missing in wanted.difference(&present) {
            self.index.put(missing, Bytes::new()).await.map_err(nats_err)?;
        }
        Ok(())
    }

    /// Every index key with its state and campaign id.
    async fn index_keys(&self) -> Result<Vec<(String, CampaignState, u64)>, StoreError> {
        let keys = keys(&self.index, ">", SCAN_MAX).await?;
        Ok(keys.into_iter().filter_map(|k| parse_index_key(&k).map(|(s, id)| (k, s, id))).collect())
    }

    /// Every campaign record, in id order.
    async fn all_records(&self) -> Result<Vec<CampaignRecord>, StoreError> {
        let values = values(&self.campaigns, "rec.*", SCAN_MAX).await?;
        let mut records = values.iter().map(|(_, v)| decode::<CampaignRecord>(v)).collect::<Result<Vec<_>, _>>()?;
        records.sort_by_key(|r| r.id);
        Ok(records)
    }

    async fn read(&self, id: u64) -> Result<Option<Versioned>, StoreError> {
        let Some(entry) = self.campaigns.entry(record_key(id)).await.map_err(nats_err)? else {
            return Ok(None);
        };
        if entry.operation != kv::Operation::Put {
            return Ok(None);
        }
        Ok(Some(Versioned { rec: decode(&entry.value)?, revision: entry.revision }))
    }

    async fn read_existing(&self, id: u64) -> Result<Versioned, StoreError> {
        self.read(id).await?.ok_or(StoreError::NotFound(id))
    }

    /// Reads campaign `id`, lets `edit` change it, and writes it back if the revision is still
    /// the one read; otherwise does it all again. `edit` answers `Ok(None)` for "nothing to
    /// write". Keeps the state index in step.
    async fn update<T>(
        &self,
        id: u64,
        mut edit: impl FnMut(&mut CampaignRecord) -> Result<Option<T>, StoreError>,
    ) -> Result<Option<(CampaignRecord, T)>, StoreError> {
        for _ in 0..MAX_CAS_ATTEMPTS {
            let Versioned { mut rec, revision } = self.read_existing(id).await?;
            let before = rec.state;
            let Some(out) = edit(&mut rec)? else {
                return Ok(None);
            };
            match self.campaigns.update(record_key(id), encode_named(&rec)?.into(), revision).await {
                Ok(_) => {
                    if rec.state != before {
                        self.move_index(id, before, rec.state).await?;
                    }
                    return Ok(Some((rec, out)));
                }
                Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => continue,
                Err(e) => return Err(nats_err(e)),
            }
        }
        Err(StoreError::Db(format!("campaign {id} kept changing under {MAX_CAS_ATTEMPTS} attempts to update it")))
    }

    /// Moves a campaign's index key after its record went from `from` to `to`. Two changes of
    /// one campaign are ordered by their revisions, but their index moves are not; so the
    /// record is read again afterwards and, if it moved on meanwhile, the key follows it (the
    /// later change's own check does the same, so the last one to finish leaves it right).
    async fn move_index(&self, id: u64, from: CampaignState, to: CampaignState) -> Result<(), StoreError> {
        self.index.put(index_key(to, id), Bytes::new()).await.map_err(nats_err)?;
        remove(&self.index, &index_key(from, id)).await?;
        let now = self.read(id).await?.map(|v| v.rec.state);
        if now != Some(to) {
            remove(&self.index, &index_key(to, id)).await?;
            if let Some(state) = now {
                self.index.put(index_key(state, id), Bytes::new()).await.map_err(nats_err)?;
            }
        }
        Ok(())
    }

    /// Removes every message on `subject` (wildcards allowed) from the chunk stream.
    async fn purge_chunks(&self, subject: String) -> Result<(), StoreError> {
        self.chunks.purge().filter(subject).await.map_err(nats_err).map(drop)
    }

    /// Purges every key of `kv` matching `pattern`.
    async fn purge_keys(&self, kv: &kv::Store, pattern: &str) -> Result<(), StoreError> {
        for key in keys(kv, pattern, SCAN_MAX).await? {
            remove(kv, &key).await?;
        }
        Ok(())
    }

    /// Whether chunk `seq` was acknowledged. The acknowledgement writes the tombstone before
    /// it frees the lease, so a lease just taken sees it; the tombstone is read before the
    /// record because folding advances the record first and deletes the tombstone after.
    async fn acknowledged(&self, id: u64, seq: u64) -> Result<bool, StoreError> {
        if self.done.get(seq_key(id, seq)).await.map_err(nats_err)?.is_some() {
            return Ok(true);
        }
        Ok(self.read(id).await?.is_none_or(|v| seq < v.rec.folded))
    }

    /// Everything a campaign holds besides its record: chunks, tombstones, in-flight marks,
    /// leases.
    async fn remove_contents(&self, id: u64) -> Result<(), StoreError> {
        self.purge_chunks(self.names.campaign_chunks(id)).await?;
        self.purge_keys(&self.done, &format!("{id}.*")).await?;
        self.purge_keys(&self.inflight, &format!("{id}.*")).await?;
        self.purge_keys(&self.leases, &format!("{id}.*")).await
    }

    async fn binding(&self, app: &str, key: &BindKey) -> Result<Option<Bytes>, StoreError> {
        self.bindings.get(layout::binding_key(app, key)).await.map_err(nats_err)
    }

    /// A cid's record, if the reverse entry of its phone names it back (see the module doc).
    async fn bound_record(&self, app: &str, cid: CompactCid) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        let Some(v) = self.binding(app, &BindKey::Cid(cid)).await? else { return Ok(None) };
        let (md5, sealed) = split_cid_value(&v)?;
        match self.binding(app, &BindKey::Pn(md5.to_owned())).await? {
            Some(owner) if parse_cid_bytes(&owner)? == cid => Ok(Some((md5.to_owned(), sealed.to_vec()))),
            _ => Ok(None),
        }
    }

    /// The campaign a claim key (already in its `layout::claim_key` form) is tied to.
    async fn claimed_at(&self, key: &str) -> Result<Option<u64>, StoreError> {
        let Some(v) = self.meta.get(key).await.map_err(nats_err)? else { return Ok(None) };
        let id: [u8; 8] =
            v.as_ref().try_into().map_err(|_| StoreError::Codec("a claim is not a campaign id".into()))?;
        Ok(Some(u64::from_be_bytes(id)))
    }

    /// One pair of a bind: reverse entry, then the cid record, then what it displaced.
    async fn bind_one(&self, app: &str, pair: PhoneBinding) -> Result<BindOutcome, StoreError> {
        let current = self.bound_record(app, pair.cid).await?;
        if current.as_ref().is_some_and(|(md5, _)| *md5 == pair.pn_md5) {
            return Ok(BindOutcome { displaced: None, changed: false });
        }
        let pn_key = BindKey::Pn(pair.pn_md5.clone());
        let owner = match self.binding(app, &pn_key).await? {
            Some(o) => Some(parse_cid_bytes(&o)?).filter(|o| *o != pair.cid),
            None => None,
        };
        self.bindings
            .put(layout::binding_key(app, &pn_key), Bytes::copy_from_slice(&pair.cid.0))
            .await
            .map_err(nats_err)?;
        self.bindings
            .put(layout::binding_key(app, &BindKey::Cid(pair.cid)), cid_value(&pair.pn_md5, &pair.sealed).into())
            .await
            .map_err(nats_err)?;
        if let Some((old_md5, _)) = current {
            remove(&self.bindings, &layout::binding_key(app, &BindKey::Pn(old_md5))).await?;
        }
        let mut displaced = None;
        if let Some(o) = owner {
            let key = BindKey::Cid(o);
            // Only a record still on this phone goes: the owner may have been rebound since.
            if let Some(v) = self.binding(app, &key).await? {
                if split_cid_value(&v)?.0 == pair.pn_md5 {
                    remove(&self.bindings, &layout::binding_key(app, &key)).await?;
                    displaced = Some(o);
                }
            }
        }
        Ok(BindOutcome { displaced, changed: true })
    }

    /// Acknowledged chunks of `id` not yet folded: seq → counts.
    async fn tombstones(&self, id: u64) -> Result<BTreeMap<u64, Counts>, StoreError> {
        let mut out = BTreeMap::new();
        for (key, value) in values(&self.done, &format!("{id}.*"), SCAN_MAX).await? {
            if let Some(seq) = parse_seq_key(&key) {
                out.insert(seq, decode(&value)?);
            }
        }
        Ok(out)
    }

    /// Folds the contiguous acknowledged chunks into the record, then deletes their
    /// tombstones (a crash between the two leaves tombstones below `folded`, ignored and
    /// removed by the next fold).
    async fn fold(&self, id: u64) -> Result<(), StoreError> {
        for _ in 0..MAX_CAS_ATTEMPTS {
            let Versioned { mut rec, revision } = self.read_existing(id).await?;
            let before = (rec.folded, rec.state);
            let mut done = self.tombstones(id).await?;
            let stale: Vec<u64> = done.range(..rec.folded).map(|(s, _)| *s).collect();
            if !rules::fold(&mut rec, &mut done, now_ms()) {
                for seq in stale {
                    remove(&self.done, &seq_key(id, seq)).await?;
                }
                return Ok(());
            }
            match self.campaigns.update(record_key(id), encode_named(&rec)?.into(), revision).await {
                Ok(_) => {
                    if rec.state != before.1 {
                        self.move_index(id, before.1, rec.state).await?;
                    }
                    for seq in stale.into_iter().chain(before.0..rec.folded) {
                        remove(&self.done, &seq_key(id, seq)).await?;
                    }
                    return Ok(());
                }
                Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => continue,
                Err(e) => return Err(nats_err(e)),
            }
        }
        Err(StoreError::Db(format!("campaign {id} kept changing while its acknowledgements were folded")))
    }

    /// Chunk `seq` of `id` as stored, or `None` when it is not there (acknowledged, discarded).
    async fn read_chunk(&self, id: u64, seq: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let first = match self.chunks.get_last_raw_message_by_subject(&self.names.chunk_part(id, seq, 0)).await {
            Ok(m) => m,
            Err(e) if e.kind() == stream::LastRawMessageErrorKind::NoMessageFound => return Ok(None),
            Err(e) => return Err(nats_err(e)),
        };
        let parts: u32 = first.headers.get(PARTS_HEADER).and_then(|v| v.as_str().parse().ok()).unwrap_or(1);
        let mut value = first.payload.to_vec();
        for part in 1..parts {
            match self.chunks.get_last_raw_message_by_subject(&self.names.chunk_part(id, seq, part)).await {
                Ok(m) => value.extend_from_slice(&m.payload),
                // Purged between two reads (acknowledged meanwhile): gone as a whole.
                Err(e) if e.kind() == stream::LastRawMessageErrorKind::NoMessageFound => return Ok(None),
                Err(e) => return Err(nats_err(e)),
            }
        }
        Ok(Some(value))
    }

    /// Committed, unacknowledged chunks of `rec` from `from_seq` on, in order, while `take`
    /// wants more.
    async fn committed_chunks(
        &self,
        rec: &CampaignRecord,
        from_seq: u64,
        mut take: impl FnMut(u64, Vec<u8>) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        // A cancelled campaign's chunks were purged: nothing to look up one by one.
        if from_seq >= rec.chunk_count || rec.state == CampaignState::Cancelled {
            return Ok(());
        }
        for seq in from_seq..rec.chunk_count {
            let Some(value) = self.read_chunk(rec.id, seq).await? else { continue };
            // An acknowledgement purges the chunk after its tombstone, so a chunk still here
            // has none unless its acknowledgement was cut short: one lookup for the chunks
            // found, not a read of every tombstone per page (their number grows while a chunk
            // before them is out, e.g. with a daemon that died, until its lease expires).
            if self.done.get(seq_key(rec.id, seq)).await.map_err(nats_err)?.is_some() {
                continue;
            }
            if !take(seq, value)? {
                break;
            }
        }
        Ok(())
    }
}

/// Opens bucket `what`, creating it if missing (an existing one is used as it is).
///
/// The bucket's stream is created here with the settings the crate's `create_key_value`
/// would use, because that call first asks for the account's info in a shape newer than
/// nats-server 2.9 (Debian bookworm's) answers.
async fn open_bucket(
    js: &jetstream::Context,
    names: &Names,
    what: &str,
    replicas: usize,
) -> Result<kv::Store, StoreError> {
    let bucket = names.bucket(what);
    if let Ok(existing) = js.get_key_value(&bucket).await {
        return Ok(existing);
    }
    let max_age = match what {
        layout::DELIVERIES => DELIVERY_MAX_AGE,
        layout::MEMBERS => MEMBER_TTL,
        _ => Duration::ZERO,
    };
    let created = js
        .get_or_create_stream(stream::Config {
            name: format!("KV_{bucket}"),
            description: Some(format!("campaignd {what}")),
            subjects: vec![format!("$KV.{bucket}.>")],
            max_messages_per_subject: 1,
            max_bytes: -1,
            max_messages: -1,
            max_message_size: -1,
            max_age,
            storage: stream::StorageType::File,
            allow_rollup: true,
            deny_delete: true,
            deny_purge: false,
            allow_direct: true,
            num_replicas: replicas,
            discard: stream::DiscardPolicy::New,
            ..Default::default()
        })
        .await;
    if let Err(e) = created {
        // Daemons starting together race to create it: the loser's create is refused (e.g.
        // "subjects overlap") although the bucket now exists.
        return made_by_another(|| js.get_key_value(&bucket)).await.ok_or_else(|| nats_err(e));
    }
    js.get_key_value(&bucket).await.map_err(nats_err)
}

/// What `get` finds after a create lost a race to another opener: tried a few times, as the
/// winner's stream may take a moment to show.
async fn made_by_another<T, E, F, Fut>(mut get: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    for _ in 0..20 {
        if let Ok(found) = get().await {
            return Some(found);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// Reads the store identity, or makes it: of daemons starting together, the first `create`
/// wins and the others read what it wrote.
async fn load_identity(meta: &kv::Store) -> Result<StoreIdentity, StoreError> {
    const KEY: &str = "identity";
    let parse = |b: &[u8]| {
        StoreIdentity::from_bytes(b)
            .ok_or_else(|| StoreError::Codec(format!("the store identity is {} bytes, not 6", b.len())))
    };
    if let Some(b) = meta.get(KEY).await.map_err(nats_err)? {
        return parse(&b);
    }
    let fresh =
        StoreIdentity::random().map_err(|e| StoreError::Db(format!("no random source for the store identity: {e}")))?;
    match meta.create(KEY, Bytes::copy_from_slice(fresh.as_bytes().as_slice())).await {
        Ok(_) => {
            tracing::info!(identity = %fresh, "new store identity");
            Ok(fresh)
        }
        Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
            let b = meta.get(KEY).await.map_err(nats_err)?.ok_or_else(|| StoreError::Db("identity vanished".into()))?;
            parse(&b)
        }
        Err(e) => Err(nats_err(e)),
    }
}

impl NatsStore {
    /// The next campaign id, from the CAS'd counter.
    async fn next_id(&self) -> Result<u64, StoreError> {
        const KEY: &str = "next_id";
        for _ in 0..MAX_CAS_ATTEMPTS {
            let written = match self.meta.entry(KEY).await.map_err(nats_err)? {
                Some(e) if e.operation == kv::Operation::Put => {
                    let last = e
                        .value
                        .as_ref()
                        .try_into()
                        .map(u64::from_be_bytes)
                        .map_err(|_| StoreError::Codec("the id counter is not 8 bytes".into()))?;
                    let next = last + 1;
                    self.meta
                        .update(KEY, Bytes::copy_from_slice(&next.to_be_bytes()), e.revision)
                        .await
                        .map(|_| next)
                        .map_err(|e| (e.kind() == kv::UpdateErrorKind::WrongLastRevision, nats_err(e)))
                }
                _ => self
                    .meta
                    .create(KEY, Bytes::copy_from_slice(&1u64.to_be_bytes()))
                    .await
                    .map(|_| 1)
                    .map_err(|e| (e.kind() == kv::CreateErrorKind::AlreadyExists, nats_err(e))),
            };
            match written {
                Ok(id) => return Ok(id),
                Err((true, _)) => continue,
                Err((false, e)) => return Err(e),
            }
        }
        Err(StoreError::Db("the campaign id counter kept changing".into()))
    }

    async fn create_campaign(&self, spec: CampaignSpec, now: i64) -> Result<CampaignRecord, StoreError> {
        let id = self.next_id().await?;
        let rec = rules::new_record(id, spec, now)?;
        self.campaigns.create(record_key(id), encode_named(&rec)?.into()).await.map_err(nats_err)?;
        self.index.put(index_key(rec.state, id), Bytes::new()).await.map_err(nats_err)?;
        Ok(rec)
    }

    async fn change_campaign(&self, id: u64, change: Change) -> Result<CampaignRecord, StoreError> {
        let (rec, cancelled) = self
            .update(id, |rec| rules::apply_change(rec, change.clone()).map(Some))
            .await?
            .ok_or(StoreError::NotFound(id))?;
        if cancelled {
            // Its unsent chunks go, as sled's do.
            self.purge_chunks(self.names.campaign_chunks(id)).await?;
            self.purge_keys(&self.inflight, &format!("{id}.*")).await?;
        }
        Ok(rec)
    }

    async fn delete_campaign(&self, id: u64) -> Result<(), StoreError> {
        let Versioned { rec, revision } = self.read_existing(id).await?;
        rules::check_delete(&rec)?;
        // The record goes first, and only if nobody changed it since it was checked.
        match self.campaigns.purge_expect_revision(record_key(id), Some(revision)).await {
            Ok(()) => {}
            Err(e) => {
                let now = self.read_existing(id).await?;
                rules::check_delete(&now.rec)?;
                return Err(StoreError::Db(format!("campaign {id} changed while being deleted, retry: {e}")));
            }
        }
        remove(&self.index, &index_key(rec.state, id)).await?;
        self.remove_contents(id).await
    }

    async fn stage(&self, id: u64, seq: u64, chunk: Chunk) -> Result<(), StoreError> {
        let Versioned { rec, .. } = self.read_existing(id).await?;
        if seq < rec.chunk_count {
            return Err(StoreError::Conflict { state: rec.state, message: "chunk already committed".into() });
        }
        self.purge_chunks(self.names.chunk_parts(id, seq)).await?;
        let value = encode_compact(&chunk)?;
        let parts: Vec<&[u8]> = if value.is_empty() { vec![&[]] } else { value.chunks(PART_BYTES).collect() };
        let mut acks = Vec::with_capacity(parts.len());
        for (i, part) in (0u32..).zip(&parts) {
            let mut headers = async_nats::HeaderMap::new();
            if i == 0 {
                headers.insert(PARTS_HEADER, parts.len().to_string().as_str());
            }
            let subject = self.names.chunk_part(id, seq, i);
            let ack =
                self.js.publish_with_headers(subject, headers, Bytes::copy_from_slice(part)).await.map_err(nats_err)?;
            acks.push(ack);
        }
        for ack in acks {
            ack.await.map_err(nats_err)?;
        }
        Ok(())
    }

    async fn commit(&self, id: u64, commit: UploadCommit) -> Result<CampaignRecord, StoreError> {
        let committed = self.update(id, |rec| rules::apply_commit(rec, commit).map(Some)).await;
        match committed {
            Ok(Some((rec, ()))) => Ok(rec),
            Ok(None) => Err(StoreError::NotFound(id)),
            Err(refused @ StoreError::Conflict { .. }) => {
                self.discard(id, commit.first_seq, commit.chunks).await?;
                Err(refused)
            }
            Err(e) => Err(e),
        }
    }

    async fn discard(&self, id: u64, first_seq: u64, chunks: u64) -> Result<(), StoreError> {
        let committed = self.read(id).await?.map_or(0, |v| v.rec.chunk_count);
        for seq in first_seq.max(committed)..first_seq.saturating_add(chunks) {
            self.purge_chunks(self.names.chunk_parts(id, seq)).await?;
        }
        Ok(())
    }

    async fn acknowledge(&self, ack: Ack) -> Result<(), StoreError> {
        let Versioned { rec, .. } = self.read_existing(ack.campaign).await?;
        let key = seq_key(ack.campaign, ack.seq);
        if ack.seq < rec.folded {
            return remove(&self.leases, &key).await; // a late duplicate acknowledgement
        }
        // Tombstone first: a crash after it but before the purge still counts the chunk once.
        match self.done.create(&key, encode_compact(&ack.counts)?.into()).await {
            Ok(_) => {}
            // Counted once already; the rest is done again, as an earlier attempt may have
            // stopped after the tombstone (NATS lost mid-ack) and the purge and fold are
            // idempotent.
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {}
            Err(e) => return Err(nats_err(e)),
        }
        self.purge_chunks(self.names.chunk_parts(ack.campaign, ack.seq)).await?;
        remove(&self.inflight, &key).await?;
        // The chunk is done: whoever held it, nobody needs the lease any more.
        remove(&self.leases, &key).await?;
        if self.frontier_acknowledged(ack.campaign).await? {
            self.fold(ack.campaign).await?;
        }
        Ok(())
    }

    /// Whether the first chunk not yet folded has its tombstone, so a fold would advance.
    /// Otherwise a chunk before this one is still out (on another daemon, or on a dead one
    /// until its lease expires) and folding would read every tombstone to find the same gap:
    /// a cost per acknowledgement growing with the gap. Whoever writes the tombstone that
    /// closes the gap folds the lot; each acknowledgement checks after writing its own, so of
    /// two racing ones the later sees both.
    async fn frontier_acknowledged(&self, id: u64) -> Result<bool, StoreError> {
        let Versioned { rec, .. } = self.read_existing(id).await?;
        if rec.folded >= rec.chunk_count {
            return Ok(true); // nothing left to fold but stale tombstones, which a fold removes
        }
        Ok(self.done.get(seq_key(id, rec.folded)).await.map_err(nats_err)?.is_some())
    }

    async fn page(&self, q: PageQuery) -> Result<CampaignPage, StoreError> {
        let mut ids: Vec<(u64, CampaignState)> =
            self.index_keys().await?.into_iter().filter(|(_, _, id)| *id > q.after).map(|(_, s, id)| (id, s)).collect();
        ids.sort_unstable_by_key(|(id, _)| *id);
        let mut campaigns = Vec::new();
        let mut last = None;
        let mut examined = 0;
        let mut rest = ids.iter();
        for (id, state) in rest.by_ref() {
            examined += 1;
            last = Some(*id);
            if q.state.is_none_or(|s| s == *state) {
                if let Some(v) = self.read(*id).await? {
                    campaigns.push(v.rec);
                }
                if campaigns.len() >= q.limit {
                    break;
                }
            }
            if examined >= PAGE_SCAN_MAX {
                break;
            }
        }
        let more = rest.next().is_some();
        Ok(CampaignPage { campaigns, next_after: last.filter(|_| more) })
    }

    async fn expire(&self, before_ms: i64, max: usize) -> Result<usize, StoreError> {
        let mut due = Vec::new();
        for (_, state, id) in self.index_keys().await? {
            if !state.is_final() {
                continue;
            }
            if let Some(v) = self.read(id).await? {
                let finished = v.rec.finished_ms.unwrap_or(v.rec.created_ms);
                if finished < before_ms {
                    due.push((finished, id, state));
                }
            }
        }
        due.sort_unstable_by_key(|(finished, id, _)| (*finished, *id));
        due.truncate(max);
        for (_, id, state) in &due {
            // Contents first, then the record, then its index key: a crash midway is finished
            // by the next pass.
            self.remove_contents(*id).await?;
            remove(&self.campaigns, &record_key(*id)).await?;
            remove(&self.index, &index_key(*state, *id)).await?;
        }
        Ok(due.len())
    }

    async fn live_progress(&self, id: u64) -> Result<Progress, StoreError> {
        let Some(Versioned { rec, .. }) = self.read(id).await? else {
            return Ok(Progress::default());
        };
        let mut counts = rec.counts.clone();
        let mut acked_chunks = rec.folded;
        for (seq, c) in self.tombstones(id).await? {
            if seq >= rec.folded {
                counts.merge(&c);
                acked_chunks += 1;
            }
        }
        Ok(Progress { counts, acked_chunks })
    }

    async fn bytes_stored(&self) -> Result<u64, StoreError> {
        let mut names = vec![self.names.chunk_stream()];
        names.extend(layout::BUCKETS.iter().map(|b| format!("KV_{}", self.names.bucket(b))));
        let mut total = 0;
        for name in names {
            let info = self.js.get_stream(&name).await.map_err(nats_err)?.get_info().await.map_err(nats_err)?;
            total += info.state.bytes;
        }
        Ok(total)
    }

    async fn note_delivery(&self, key: &str, now: i64, window: DeliveryWindow) -> Result<bool, StoreError> {
        let key = delivery_key(key);
        let stamp = || Bytes::copy_from_slice(&now.to_be_bytes());
        match self.deliveries.create(&key, stamp()).await {
            Ok(_) => return Ok(true),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {}
            Err(e) => return Err(nats_err(e)),
        }
        let Some(entry) = self.deliveries.entry(&key).await.map_err(nats_err)? else {
            return Ok(false);
        };
        let noted = entry.value.as_ref().try_into().map(i64::from_be_bytes).unwrap_or(i64::MIN);
        if entry.operation == kv::Operation::Put && noted >= now.saturating_sub(window.max_age_ms) {
            return Ok(false);
        }
        // Forgotten (deleted, or older than the window): noted afresh, once.
        match self.deliveries.update(&key, stamp(), entry.revision).await {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => Ok(false),
            Err(e) => Err(nats_err(e)),
        }
    }
}

impl Store for NatsStore {
    fn identity(&self) -> StoreIdentity {
        self.identity
    }

    fn create(&self, spec: CampaignSpec, now_ms: i64) -> StoreFuture<'_, CampaignRecord> {
        Box::pin(self.create_campaign(spec, now_ms))
    }

    fn change(&self, id: u64, change: Change) -> StoreFuture<'_, CampaignRecord> {
        Box::pin(self.change_campaign(id, change))
    }

    fn delete(&self, id: u64) -> StoreFuture<'_, ()> {
        Box::pin(self.delete_campaign(id))
    }

    fn stage_chunk(&self, id: u64, seq: u64, chunk: Chunk) -> StoreFuture<'_, ()> {
        Box::pin(self.stage(id, seq, chunk))
    }

    fn commit_upload(&self, id: u64, commit: UploadCommit) -> StoreFuture<'_, CampaignRecord> {
        Box::pin(self.commit(id, commit))
    }

    fn staged_chunk(&self, id: u64, seq: u64) -> StoreFuture<'_, Option<Chunk>> {
        Box::pin(async move {
            let Versioned { rec, .. } = self.read_existing(id).await?;
            if seq < rec.chunk_count {
                return Ok(None);
            }
            self.read_chunk(id, seq).await?.map(|v| decode(&v)).transpose()
        })
    }

    fn discard_upload(&self, id: u64, first_seq: u64, chunks: u64) -> StoreFuture<'_, ()> {
        Box::pin(self.discard(id, first_seq, chunks))
    }

    fn mark_inflight(&self, id: u64, seq: u64) -> StoreFuture<'_, ()> {
        Box::pin(async move { self.inflight.put(seq_key(id, seq), Bytes::new()).await.map_err(nats_err).map(drop) })
    }

    fn chunk_inflight(&self, id: u64, seq: u64) -> StoreFuture<'_, bool> {
        Box::pin(async move { Ok(self.inflight.get(seq_key(id, seq)).await.map_err(nats_err)?.is_some()) })
    }

    fn lease_chunk(&self, id: u64, seq: u64, holder: &str, ttl_ms: u64) -> StoreFuture<'_, LeaseOutcome> {
        let holder = holder.to_owned();
        Box::pin(async move {
            let outcome = leases::take(&self.leases, id, seq, &holder, now_ms(), ttl_ms).await?;
            if outcome == LeaseOutcome::Held || !self.acknowledged(id, seq).await? {
                return Ok(outcome);
            }
            remove(&self.leases, &seq_key(id, seq)).await?;
            Ok(LeaseOutcome::Done)
        })
    }

    fn release_chunk(&self, id: u64, seq: u64, holder: &str) -> StoreFuture<'_, ()> {
        let holder = holder.to_owned();
        Box::pin(async move { leases::release(&self.leases, id, seq, &holder).await })
    }

    fn ack(&self, ack: Ack) -> StoreFuture<'_, ()> {
        Box::pin(self.acknowledge(ack))
    }

    fn flush(&self) -> StoreFuture<'_, ()> {
        // Every write above returned after JetStream's acknowledgement; only the connection's
        // own buffer may hold something (nothing unacknowledged is ever left there).
        Box::pin(async move { self.client.flush().await.map_err(nats_err) })
    }

    fn get(&self, id: u64) -> StoreFuture<'_, Option<CampaignRecord>> {
        Box::pin(async move { Ok(self.read(id).await?.map(|v| v.rec)) })
    }

    fn list(&self) -> StoreFuture<'_, Vec<CampaignRecord>> {
        Box::pin(self.all_records())
    }

    fn active_campaigns(&self) -> StoreFuture<'_, Vec<CampaignRecord>> {
        Box::pin(async move {
            let mut ids: Vec<u64> =
                self.index_keys().await?.into_iter().filter(|(_, s, _)| !s.is_final()).map(|(_, _, id)| id).collect();
            ids.sort_unstable();
            ids.dedup();
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                // A record removed between the two reads is simply skipped.
                if let Some(v) = self.read(id).await? {
                    out.push(v.rec);
                }
            }
            Ok(out)
        })
    }

    fn campaigns_page(&self, query: PageQuery) -> StoreFuture<'_, CampaignPage> {
        Box::pin(self.page(query))
    }

    fn census(&self) -> StoreFuture<'_, Vec<(CampaignState, u64)>> {
        Box::pin(async move {
            let mut counts = [0u64; 7];
            for (_, state, _) in self.index_keys().await? {
                if let Some(slot) = CampaignState::ALL.iter().position(|s| *s == state) {
                    counts[slot] += 1;
                }
            }
            Ok(CampaignState::ALL.into_iter().zip(counts).collect())
        })
    }

    fn expire_finished(&self, before_ms: i64, max: usize) -> StoreFuture<'_, usize> {
        Box::pin(self.expire(before_ms, max))
    }

    fn pending_chunks(&self, id: u64, from_seq: u64, max: usize) -> StoreFuture<'_, Vec<(u64, Chunk)>> {
        Box::pin(async move {
            let Versioned { rec, .. } = self.read_existing(id).await?;
            let mut out = Vec::with_capacity(max.min(1024));
            if max == 0 {
                return Ok(out);
            }
            self.committed_chunks(&rec, from_seq.max(rec.folded), |seq, value| {
                out.push((seq, decode(&value)?));
                Ok(out.len() < max)
            })
            .await?;
            if out.is_empty() && rec.folded < rec.chunk_count {
                // Nothing left to send, not all folded: an acknowledgement cut short after its
                // tombstone (NATS lost) may have left tombstones no later ack would fold.
                self.fold(id).await?;
            }
            Ok(out)
        })
    }

    fn committed_cids(&self, id: u64, from_seq: u64, max_bytes: usize) -> StoreFuture<'_, CidPage> {
        Box::pin(async move {
            let Versioned { rec, .. } = self.read_existing(id).await?;
            let mut page = CidPage::default();
            let mut read = 0usize;
            self.committed_chunks(&rec, from_seq, |seq, value| {
                if read >= max_bytes {
                    page.next = Some(seq);
                    return Ok(false);
                }
                read += value.len();
                page.cids.extend_from_slice(&decode::<StoredCids>(&value)?.cids);
                Ok(true)
            })
            .await?;
            Ok(page)
        })
    }

    fn inflight_chunks(&self, id: u64) -> StoreFuture<'_, Vec<u64>> {
        Box::pin(async move {
            let keys = keys(&self.inflight, &format!("{id}.*"), SCAN_MAX).await?;
            let mut seqs: Vec<u64> = keys.iter().filter_map(|k| parse_seq_key(k)).collect();
            seqs.sort_unstable();
            Ok(seqs)
        })
    }

    fn progress(&self, id: u64) -> StoreFuture<'_, Progress> {
        Box::pin(self.live_progress(id))
    }

    fn size_on_disk(&self) -> StoreFuture<'_, u64> {
        Box::pin(self.bytes_stored())
    }

    fn queued_chunk_messages(&self) -> StoreFuture<'_, Option<u64>> {
        Box::pin(async move {
            let name = self.names.chunk_stream();
            let info = self.js.get_stream(&name).await.map_err(nats_err)?.get_info().await.map_err(nats_err)?;
            Ok(Some(info.state.messages))
        })
    }

    fn set_suppression(&self, app: &str, user: &str, entry: Option<Suppression>) -> StoreFuture<'_, bool> {
        let key = suppression_key(app, user);
        Box::pin(async move {
            match entry {
                Some(e) => {
                    let value: Bytes = encode_named(&e)?.into();
                    match self.suppressed.create(&key, value.clone()).await {
                        Ok(_) => Ok(true),
                        Err(err) if err.kind() == kv::CreateErrorKind::AlreadyExists => {
                            self.suppressed.put(&key, value).await.map_err(nats_err)?;
                            Ok(false)
                        }
                        Err(err) => Err(nats_err(err)),
                    }
                }
                None => {
                    let present = self.suppressed.get(&key).await.map_err(nats_err)?.is_some();
                    if present {
                        remove(&self.suppressed, &key).await?;
                    }
                    Ok(present)
                }
            }
        })
    }

    fn suppression(&self, app: &str, user: &str) -> StoreFuture<'_, Option<Suppression>> {
        let key = suppression_key(app, user);
        Box::pin(async move { self.suppressed.get(&key).await.map_err(nats_err)?.map(|v| decode(&v)).transpose() })
    }

    fn suppressed_among(&self, app: &str, users: Vec<String>) -> StoreFuture<'_, Vec<bool>> {
        let keys: Vec<String> = users.iter().map(|u| suppression_key(app, u)).collect();
        Box::pin(async move {
            // A WeCom chunk asks about up to 1000 members: a bounded number of lookups in
            // flight on the one connection, answers kept in order.
            let lookups = futures_util::stream::iter(keys)
                .map(|key| async move { self.suppressed.get(&key).await.map(|v| v.is_some()).map_err(nats_err) });
            lookups.buffered(SUPPRESSION_LOOKUPS).collect::<Vec<_>>().await.into_iter().collect()
        })
    }

    fn suppressions(&self, app: &str, after: &str, limit: usize) -> StoreFuture<'_, Vec<(String, Suppression)>> {
        let (pattern, after) = (format!("{}.*", hex::encode(app)), after.to_lowercase());
        Box::pin(async move {
            let mut found = Vec::new();
            for (key, value) in values(&self.suppressed, &pattern, SCAN_MAX).await? {
                if let Some(user) = suppression_user(&key).filter(|u| *u > after) {
                    found.push((user, value));
                }
            }
            found.sort_by(|a, b| a.0.cmp(&b.0));
            found.truncate(limit);
            found.into_iter().map(|(user, v)| Ok((user, decode(&v)?))).collect()
        })
    }

    fn first_delivery(&self, key: &str, now_ms: i64, window: DeliveryWindow) -> StoreFuture<'_, bool> {
        let key = key.to_owned();
        Box::pin(async move { self.note_delivery(&key, now_ms, window).await })
    }

    fn delivery_noted(&self, key: &str) -> StoreFuture<'_, bool> {
        let key = delivery_key(key);
        Box::pin(async move { Ok(self.deliveries.get(&key).await.map_err(nats_err)?.is_some()) })
    }

    fn bind_phones(&self, app: &str, pairs: Vec<PhoneBinding>) -> StoreFuture<'_, Vec<BindOutcome>> {
        let app = app.to_owned();
        Box::pin(async move {
            let mut out = Vec::with_capacity(pairs.len());
            for pair in pairs {
                out.push(self.bind_one(&app, pair).await?);
            }
            Ok(out)
        })
    }

    fn unbind_phones(&self, app: &str, cids: Vec<CompactCid>) -> StoreFuture<'_, Vec<bool>> {
        let app = app.to_owned();
        Box::pin(async move {
            let mut out = Vec::with_capacity(cids.len());
            for cid in cids {
                let bound = self.bound_record(&app, cid).await?;
                if let Some((md5, _)) = &bound {
                    remove(&self.bindings, &layout::binding_key(&app, &BindKey::Cid(cid))).await?;
                    remove(&self.bindings, &layout::binding_key(&app, &BindKey::Pn(md5.clone()))).await?;
                }
                out.push(bound.is_some());
            }
            Ok(out)
        })
    }

    fn bindings_of(&self, app: &str, cids: Vec<CompactCid>) -> StoreFuture<'_, Vec<Option<StoredBinding>>> {
        let app = app.to_owned();
        Box::pin(async move {
            let mut out = Vec::with_capacity(cids.len());
            for cid in cids {
                out.push(self.bound_record(&app, cid).await?);
            }
            Ok(out)
        })
    }

    fn binding_of_pn(&self, app: &str, pn_md5: &str) -> StoreFuture<'_, Option<(CompactCid, Vec<u8>)>> {
        let (app, key) = (app.to_owned(), BindKey::Pn(pn_md5.to_owned()));
        Box::pin(async move {
            let Some(owner) = self.binding(&app, &key).await? else { return Ok(None) };
            let owner = parse_cid_bytes(&owner)?;
            Ok(self.bound_record(&app, owner).await?.map(|(_, sealed)| (owner, sealed)))
        })
    }

    fn claim(&self, key: &str, id: u64) -> StoreFuture<'_, u64> {
        let key = layout::claim_key(key);
        Box::pin(async move {
            match self.meta.create(&key, Bytes::copy_from_slice(&id.to_be_bytes())).await {
                Ok(_) => Ok(id),
                // Taken already (or just now by another daemon): the winner's campaign.
                Err(e) => self.claimed_at(&key).await?.ok_or_else(|| nats_err(e)),
            }
        })
    }

    fn claimed(&self, key: &str) -> StoreFuture<'_, Option<u64>> {
        let key = layout::claim_key(key);
        Box::pin(async move { self.claimed_at(&key).await })
    }

    fn texting_stage(&self, entry: TextingEntry) -> StoreFuture<'_, bool> {
        Box::pin(self.stage_texting(entry))
    }

    fn texting_due(&self, now_ms: i64, max: usize) -> StoreFuture<'_, Vec<TextingEntry>> {
        Box::pin(self.due_texting(now_ms, max))
    }

    fn texting_save(&self, entry: TextingEntry) -> StoreFuture<'_, u64> {
        Box::pin(self.save_texting(entry))
    }

    fn texting_finish(&self, entry: TextingEntry, tally: SmsTally) -> StoreFuture<'_, ()> {
        Box::pin(self.finish_texting(entry, tally))
    }

    fn note_sms_serials(&self, app: &str, campaign: u64, sids: Vec<String>) -> StoreFuture<'_, ()> {
        let app = app.to_owned();
        Box::pin(async move { self.note_serials(&app, campaign, sids).await })
    }

    fn take_sms_serial(&self, app: &str, sid: &str) -> StoreFuture<'_, Option<u64>> {
        let (app, sid) = (app.to_owned(), sid.to_owned());
        Box::pin(async move { self.take_serial(&app, &sid).await })
    }

    fn note_receipts(&self, app: &str, marks: Vec<(ReceiptKey, u8)>) -> StoreFuture<'_, Vec<u8>> {
        let app = app.to_owned();
        Box::pin(async move { self.add_receipts(&app, marks).await })
    }

    fn receipt_marks(&self, app: &str, keys: Vec<ReceiptKey>) -> StoreFuture<'_, Vec<u8>> {
        let app = app.to_owned();
        Box::pin(async move { self.read_receipts(&app, keys).await })
    }

    fn heartbeat(&self, member: &str, now_ms: i64) -> StoreFuture<'_, usize> {
        let key = hex::encode(member);
        Box::pin(async move {
            self.members.put(&key, Bytes::copy_from_slice(&now_ms.to_be_bytes())).await.map_err(nats_err)?;
            Ok(keys(&self.members, ">", SCAN_MAX).await?.len().max(1))
        })
    }

    fn health(&self) -> StoreFuture<'_, ()> {
        Box::pin(self.check_health())
    }
}
