//! Names in NATS: the chunk stream and its subjects, the KV buckets and their keys. Every name
//! starts with `store.nats.stream_prefix`, so several deployments can share one account.

use crate::domain::CampaignState;

/// The KV buckets, by what they hold (the bucket is `{prefix}_{name}`).
pub(super) const BUCKETS: [&str; 13] = [
    META, CAMPAIGNS, INDEX, DONE, INFLIGHT, SUPPRESSED, DELIVERIES, BINDINGS, TEXTING, SERIALS, RECEIPTS, MEMBERS,
    LEASES,
];
/// `identity` (created once: the first daemon wins), `next_id` (the id counter, CAS'd) and
/// `claim.{hex key}` → campaign id (8 bytes, big-endian), the idempotency keys of
/// `Store::claim`, created once.
pub(super) const META: &str = "meta";
/// `rec.{id}` → the campaign record (`codec::encode_named`), revision-checked on every change.
pub(super) const CAMPAIGNS: &str = "campaigns";
/// `{state}.{id}` → empty: which state each campaign is in, so the active campaigns and the
/// census are read from keys, not from every record.
pub(super) const INDEX: &str = "index";
/// `{id}.{seq}` → `Counts` (`codec::encode_compact`): acknowledged chunks not yet folded into
/// the record (tombstones).
pub(super) const DONE: &str = "done";
/// `{id}.{seq}` → empty: list chunks about to be sent.
pub(super) const INFLIGHT: &str = "inflight";
/// `{hex app}.{hex lowercased user}` → `Suppression` (`codec::encode_named`).
pub(super) const SUPPRESSED: &str = "suppressed";
/// `{hex delivery key}` → when it was noted (8 bytes, big-endian ms).
pub(super) const DELIVERIES: &str = "deliveries";
/// cid↔phone bindings: `c.{hex app}.{cid}` → `pn_md5 ‖ sealed number`, and
/// `p.{hex app}.{pn_md5}` → the cid's 16 bytes (the reverse index of the one-to-one rule).
pub(super) const BINDINGS: &str = "bindings";
/// SMS fallback: `{id}.{seq}` → `due ‖ texting state` (see `store::texting`).
pub(super) const TEXTING: &str = "texting";
/// SMS fallback: `{hex app}.{hex sid}` → the campaign of a gateway serial number.
pub(super) const SERIALS: &str = "serials";
/// SMS fallback: `{hex app}.{hex taskid}.{hex cid}` → receipt bits.
pub(super) const RECEIPTS: &str = "receipts";
/// `{member id}` → its last heartbeat (8 bytes, big-endian ms); entries age out after
/// `MEMBER_TTL`, so the keys are the live daemons.
pub(super) const MEMBERS: &str = "members";

/// `{id}.{seq}` → `expiry ms ‖ member id`: which daemon sends the chunk, until when (see
/// `leases`).
pub(super) const LEASES: &str = "leases";

/// The prefix and the names made from it.
#[derive(Debug, Clone)]
pub(super) struct Names {
    prefix: String,
}

impl Names {
    pub(super) fn new(prefix: &str) -> Names {
        Names { prefix: prefix.to_owned() }
    }

    /// The KV bucket holding `what` (one of [`BUCKETS`]).
    pub(super) fn bucket(&self, what: &str) -> String {
        format!("{}_{what}", self.prefix)
    }

    /// The stream of recipient chunks.
    pub(super) fn chunk_stream(&self) -> String {
        format!("{}_chunks", self.prefix)
    }

    /// Every subject of the chunk stream.
    pub(super) fn chunk_subjects(&self) -> String {
        format!("{}.chunk.>", self.prefix)
    }

    /// Part `part` of chunk `seq` of campaign `id`: one message each, the stream keeping the
    /// last per subject.
    pub(super) fn chunk_part(&self, id: u64, seq: u64, part: u32) -> String {
        format!("{}.chunk.{id}.{seq}.{part}", self.prefix)
    }

    /// Every part of one chunk (for purging it).
    pub(super) fn chunk_parts(&self, id: u64, seq: u64) -> String {
        format!("{}.chunk.{id}.{seq}.*", self.prefix)
    }

    /// Every chunk of one campaign.
    pub(super) fn campaign_chunks(&self, id: u64) -> String {
        format!("{}.chunk.{id}.>", self.prefix)
    }
}

/// A campaign record's key.
pub(super) fn record_key(id: u64) -> String {
    format!("rec.{id}")
}

/// A campaign's index key in `state`.
pub(super) fn index_key(state: CampaignState, id: u64) -> String {
    format!("{}.{id}", state.as_str())
}

/// Splits an index key back into state and id.
pub(super) fn parse_index_key(key: &str) -> Option<(CampaignState, u64)> {
    let (state, id) = key.split_once('.')?;
    let state = CampaignState::ALL.into_iter().find(|s| s.as_str() == state)?;
    Some((state, id.parse().ok()?))
}

/// `{id}.{seq}`: a chunk's key in the `done`, `inflight` and `leases` buckets.
pub(super) fn seq_key(id: u64, seq: u64) -> String {
    format!("{id}.{seq}")
}

/// The seq of a [`seq_key`].
pub(super) fn parse_seq_key(key: &str) -> Option<u64> {
    key.split_once('.')?.1.parse().ok()
}

/// A suppression's key: KV keys allow only `[-/_=.A-Za-z0-9]`, so both parts are hex (which
/// also keeps byte order, so keys sort as the user ids do).
pub(super) fn suppression_key(app: &str, user: &str) -> String {
    format!("{}.{}", hex::encode(app), hex::encode(user.to_lowercase()))
}

/// The user id of a [`suppression_key`].
pub(super) fn suppression_user(key: &str) -> Option<String> {
    String::from_utf8(hex::decode(key.split_once('.')?.1).ok()?).ok()
}

/// A binding record's key (see [`BINDINGS`]).
pub(super) fn binding_key(app: &str, key: &crate::store::bindings::BindKey) -> String {
    use crate::store::bindings::BindKey;
    match key {
        BindKey::Cid(cid) => format!("c.{}.{}", hex::encode(app), hex::encode(cid.0)),
        BindKey::Pn(md5) => format!("p.{}.{}", hex::encode(app), hex::encode(md5)),
    }
}

/// A callback delivery's key (hex, for the same reason).
pub(super) fn delivery_key(key: &str) -> String {
    let hexed = hex::encode(key);
    if hexed.is_empty() {
        "-".to_owned()
    } else {
        hexed
    }
}

/// The `META` key of an idempotency claim (hex keeps any key within NATS's key alphabet).
pub(super) fn claim_key(key: &str) -> String {
    format!("claim.{}", hex::encode(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        assert_eq!(parse_index_key(&index_key(CampaignState::Paused, 42)), Some((CampaignState::Paused, 42)));
        assert_eq!(parse_index_key("nonsense.1"), None);
        assert_eq!(parse_seq_key(&seq_key(3, 7)), Some(7));
        assert_eq!(suppression_user(&suppression_key("staff", "LiLei")).as_deref(), Some("lilei"));
        assert_eq!(Names::new("cd").chunk_part(1, 2, 0), "cd.chunk.1.2.0");
    }
}
