//! Recipient ids and idempotency keys.

use std::fmt;

/// A well-formed Getui cid (32 lowercase hex digits) held in 16 bytes.
///
/// Millions of these sit in the store and in the simulator's ledger, so they are kept as raw
/// bytes rather than strings (see DESIGN.md: 16-byte values halve disk and memory).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CompactCid(pub [u8; 16]);

impl CompactCid {
    /// Parses a cid; `None` when it is not exactly 32 lowercase hex digits.
    pub fn parse(s: &str) -> Option<Self> {
        crate::wire::getui::compact::parse_cid_hex(s.as_bytes()).map(CompactCid)
    }

    /// Reads exactly 32 lowercase hex digits given as bytes; `None` for anything else.
    pub fn from_hex_bytes(digits: &[u8]) -> Option<Self> {
        crate::wire::getui::compact::parse_cid_hex(digits).map(CompactCid)
    }

    /// Writes the 32-digit form into `buf` and returns it as a string slice.
    pub fn encode<'b>(&self, buf: &'b mut [u8; 32]) -> &'b str {
        crate::wire::getui::compact::encode_cid_hex(&self.0, buf)
    }

    /// A cheap, well-spread 64-bit number derived from the cid, for deterministic choices.
    pub fn spread(&self) -> u64 {
        let lo = u64::from_le_bytes(self.0[..8].try_into().unwrap_or_default());
        let hi = u64::from_le_bytes(self.0[8..].try_into().unwrap_or_default());
        mix64(lo ^ hi.rotate_left(29))
    }
}

impl fmt::Display for CompactCid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.encode(&mut [0u8; 32]))
    }
}

impl fmt::Debug for CompactCid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CompactCid({self})")
    }
}

/// SplitMix64's finalizer: turns nearby inputs into unrelated outputs.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// An upstream idempotency key: 10–32 characters, the same on every retry of the same send.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RequestId(String);

/// Why a string or a triple cannot be a request id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestIdError {
    /// Getui accepts 10 to 32 characters.
    #[error("request_id must be 10 to 32 characters, got {0}")]
    Length(usize),
    /// Printable ASCII keeps ids safe in logs, headers and URLs.
    #[error("request_id must be printable ASCII")]
    Charset,
    /// The parts do not fit the fixed-width derived form.
    #[error("campaign {campaign} / chunk {chunk} is too large for a derived request_id")]
    TooLarge {
        /// Campaign number.
        campaign: u64,
        /// Chunk number.
        chunk: u64,
    },
}

impl RequestId {
    /// Largest campaign number a derived id can hold (48 bits).
    pub const MAX_CAMPAIGN: u64 = (1 << 48) - 1;
    /// Largest chunk number a derived id can hold (40 bits).
    pub const MAX_CHUNK: u64 = (1 << 40) - 1;

    /// Accepts an id chosen elsewhere if it obeys the upstream's rules.
    pub fn parse(s: &str) -> Result<Self, RequestIdError> {
        let len = s.chars().count();
        if !(10..=32).contains(&len) {
            return Err(RequestIdError::Length(len));
        }
        if !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(RequestIdError::Charset);
        }
        Ok(RequestId(s.to_owned()))
    }

    /// The id of message `index` of chunk `chunk` of the campaign that `key` names. The same
    /// inputs always give the same id, so a retry or a replay after a crash sends exactly the
    /// same id and the upstream drops the repeat.
    pub fn derive(key: &RequestKey, chunk: u64, index: u8) -> Result<Self, RequestIdError> {
        Ok(key.chunk_ids(chunk)?.id(index))
    }

    /// The id as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as sent, owned (a body that outlives the id takes it without a copy).
    pub fn into_string(self) -> String {
        self.0
    }
}

/// A store's random identity, made once when the store is created and kept with it.
///
/// Every request id carries it, so two stores (a fresh one after a reset, a staging daemon on
/// the production app, a second daemon) never send the same id to one Getui app: Getui drops a
/// repeated request id silently, and the second campaign would vanish.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct StoreIdentity([u8; 6]);

impl StoreIdentity {
    /// A new identity from the operating system's random source.
    pub fn random() -> Result<Self, getrandom::Error> {
        let mut b = [0u8; 6];
        getrandom::fill(&mut b)?;
        Ok(StoreIdentity(b))
    }

    /// The identity from its stored bytes; `None` unless exactly six.
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        Some(StoreIdentity(b.try_into().ok()?))
    }

    /// The stored bytes.
    pub fn as_bytes(&self) -> &[u8; 6] {
        &self.0
    }

    /// Parses the 12-hex-digit form.
    pub fn parse(s: &str) -> Option<Self> {
        let mut b = [0u8; 6];
        hex::decode_to_slice(s.trim(), &mut b).ok()?;
        Some(StoreIdentity(b))
    }
}

impl fmt::Display for StoreIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for StoreIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreIdentity({self})")
    }
}

/// What a campaign's request ids are made from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestKey {
    /// Campaigns created since stores have an identity: the store, the campaign's number in
    /// it, and a salt drawn when the campaign was created. The salt keeps two campaigns apart
    /// that a store restored from a backup numbers alike (both incarnations count on from the
    /// backup), short of a 1 in 16.7 million draw.
    Keyed {
        /// The store's identity.
        store: StoreIdentity,
        /// The campaign's number.
        campaign: u64,
        /// 24 random bits.
        salt: u32,
    },
    /// Campaigns created before stores had an identity keep the ids they were sent with, so a
    /// chunk sent before an upgrade and retried after it is still recognised as a repeat.
    Legacy {
        /// The campaign's number.
        campaign: u64,
    },
}

/// Base 32 with the "extended hex" alphabet, lower-cased: 20 bytes become exactly 32
/// characters, Getui's longest request id, and ids of one campaign share a prefix.
fn base32_lower(bytes: &[u8; 20]) -> String {
    let mut s = data_encoding::BASE32HEX_NOPAD.encode(bytes);
    s.make_ascii_lowercase();
    s
}

/// The request ids of one chunk's messages. They differ only in their last two characters
/// (the message's index), so the rest is encoded once per chunk rather than once per message.
#[derive(Clone, Debug)]
pub struct ChunkRequestIds {
    /// The id of message 0.
    first: String,
    /// How the index is written into the last two characters.
    tail: IndexTail,
}

#[derive(Clone, Copy, Debug)]
enum IndexTail {
    /// Two hex digits.
    Hex,
    /// The last 10 bits of base 32: the two low bits of the chunk's last byte, then the index.
    Base32 { chunk_low_bits: u8 },
}

impl ChunkRequestIds {
    /// The id of message `index`: the same as [`RequestId::derive`] gives.
    pub fn id(&self, index: u8) -> RequestId {
        let mut id = String::with_capacity(self.first.len());
        self.write_id(index, &mut id);
        RequestId(id)
    }

    /// Writes the id of message `index` into `out` in place of what it held, so one buffer
    /// serves a whole chunk (a batch_single chunk asks for a thousand of them).
    pub fn write_id(&self, index: u8, out: &mut String) {
        const BASE32: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let i = usize::from(index);
        let tail = match self.tail {
            IndexTail::Hex => [HEX[i >> 4], HEX[i & 0x0f]],
            IndexTail::Base32 { chunk_low_bits } => {
                [BASE32[usize::from(chunk_low_bits) << 3 | i >> 5], BASE32[i & 0x1f]]
            }
        };
        out.clear();
        let kept = self.first.len().saturating_sub(2);
        out.push_str(self.first.get(..kept).unwrap_or_default());
        // The tail is ASCII: each byte is a whole character.
        out.extend(tail.iter().map(|&b| char::from(b)));
    }
}

impl RequestKey {
    /// Largest campaign number a keyed id holds (40 bits).
    pub const MAX_CAMPAIGN: u64 = (1 << 40) - 1;
    /// Largest salt (24 bits).
    pub const MAX_SALT: u32 = (1 << 24) - 1;

    /// The request ids of chunk `chunk`'s messages.
    pub fn chunk_ids(&self, chunk: u64) -> Result<ChunkRequestIds, RequestIdError> {
        match *self {
            RequestKey::Legacy { campaign } => {
                Ok(ChunkRequestIds { first: legacy_id(campaign, chunk, 0)?.0, tail: IndexTail::Hex })
            }
            RequestKey::Keyed { store, campaign, salt } => {
                let bytes = keyed_bytes(store, campaign, salt, chunk, 0)?;
                let chunk_low_bits = bytes[18] & 0x03;
                Ok(ChunkRequestIds { first: base32_lower(&bytes), tail: IndexTail::Base32 { chunk_low_bits } })
            }
        }
    }
}

/// The 20 bytes a keyed id encodes: store 6 ‖ campaign 5 ‖ salt 3 ‖ chunk 5 ‖ index 1, all
/// big-endian.
fn keyed_bytes(
    store: StoreIdentity,
    campaign: u64,
    salt: u32,
    chunk: u64,
    index: u8,
) -> Result<[u8; 20], RequestIdError> {
    if campaign > RequestKey::MAX_CAMPAIGN || chunk > RequestId::MAX_CHUNK {
        return Err(RequestIdError::TooLarge { campaign, chunk });
    }
    let mut b = [0u8; 20];
    b[..6].copy_from_slice(store.as_bytes());
    b[6..11].copy_from_slice(&campaign.to_be_bytes()[3..]);
    b[11..14].copy_from_slice(&(salt & RequestKey::MAX_SALT).to_be_bytes()[1..]);
    b[14..19].copy_from_slice(&chunk.to_be_bytes()[3..]);
    b[19] = index;
    Ok(b)
}

/// The form used before stores had an identity: `cccccccccccc-kkkkkkkkkk-ii`, 26 hex characters.
fn legacy_id(campaign: u64, chunk: u64, index: u8) -> Result<RequestId, RequestIdError> {
    if campaign > RequestId::MAX_CAMPAIGN || chunk > RequestId::MAX_CHUNK {
        return Err(RequestIdError::TooLarge { campaign, chunk });
    }
    Ok(RequestId(format!("{campaign:012x}-{chunk:010x}-{index:02x}")))
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RequestId({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cid_round_trips_through_sixteen_bytes() {
        let s = "0123456789abcdef0123456789abcdef";
        let cid = CompactCid::parse(s).unwrap();
        assert_eq!(cid.0[0], 0x01);
        assert_eq!(cid.0[15], 0xef);
        assert_eq!(cid.to_string(), s);
        assert_eq!(CompactCid::from_hex_bytes(s.as_bytes()), Some(cid));
        let upper = s.to_uppercase();
        for bad in [&upper, &s[1..], &format!("{s}0"), &format!(" {}", &s[1..]), &s.replace('f', "g")] {
            assert_eq!(CompactCid::from_hex_bytes(bad.as_bytes()), None, "{bad:?}");
        }
    }

    #[test]
    fn malformed_cids_are_refused() {
        for bad in [
            "",
            "0123456789abcdef0123456789abcde",   // 31 digits
            "0123456789abcdef0123456789abcdef0", // 33 digits
            "0123456789ABCDEF0123456789abcdef",  // upper case
            "0123456789abcdeg0123456789abcdef",  // not hex
            "0123456789abcdef0123456789abcdé",   // multi-byte
        ] {
            assert!(CompactCid::parse(bad).is_none(), "{bad:?}");
        }
    }

    fn keyed(store: u8, campaign: u64, salt: u32) -> RequestKey {
        RequestKey::Keyed { store: StoreIdentity([store, 2, 3, 4, 5, 6]), campaign, salt }
    }

    #[test]
    fn derived_request_ids_are_stable_and_in_range() {
        let k = keyed(1, 7, 0xabcdef);
        let a = RequestId::derive(&k, 42, 199).unwrap();
        assert_eq!(a, RequestId::derive(&k, 42, 199).unwrap());
        assert_ne!(a, RequestId::derive(&k, 42, 198).unwrap());
        assert_eq!(a.as_str().len(), 32);
        assert!(RequestId::parse(a.as_str()).is_ok());
        let max = keyed(0xff, RequestKey::MAX_CAMPAIGN, RequestKey::MAX_SALT);
        let max = RequestId::derive(&max, RequestId::MAX_CHUNK, 255).unwrap();
        assert!(RequestId::parse(max.as_str()).is_ok());
        let too_big = keyed(1, RequestKey::MAX_CAMPAIGN + 1, 0);
        assert!(matches!(RequestId::derive(&too_big, 0, 0), Err(RequestIdError::TooLarge { .. })));
        assert!(matches!(RequestId::derive(&k, RequestId::MAX_CHUNK + 1, 0), Err(RequestIdError::TooLarge { .. })));
    }

    #[test]
    fn a_chunks_ids_are_the_whole_encoding_of_each_messages_bytes() {
        let key = StoreIdentity([9, 2, 3, 4, 5, 6]);
        for chunk in [0, 1, 2, 3, 0x1234_5677, RequestId::MAX_CHUNK] {
            let ids = keyed(9, 77, 0x00ab_cdef).chunk_ids(chunk).unwrap();
            let legacy = RequestKey::Legacy { campaign: 77 }.chunk_ids(chunk).unwrap();
            for index in 0..=255u8 {
                let whole = keyed_bytes(key, 77, 0x00ab_cdef, chunk, index).unwrap();
                assert_eq!(ids.id(index).as_str(), base32_lower(&whole), "chunk {chunk} index {index}");
                assert_eq!(legacy.id(index), legacy_id(77, chunk, index).unwrap(), "chunk {chunk} index {index}");
            }
            let mut reused = String::from("whatever the buffer held before, longer than an id");
            for index in [255, 0, 17] {
                ids.write_id(index, &mut reused);
                assert_eq!(reused, ids.id(index).as_str(), "one buffer for the chunk's ids");
            }
        }
    }

    #[test]
    fn every_part_of_the_key_changes_the_id() {
        let id = |k: RequestKey, chunk: u64, index: u8| RequestId::derive(&k, chunk, index).unwrap();
        let base = id(keyed(1, 7, 5), 3, 9);
        assert_ne!(base, id(keyed(2, 7, 5), 3, 9), "another store");
        assert_ne!(base, id(keyed(1, 8, 5), 3, 9), "another campaign");
        assert_ne!(base, id(keyed(1, 7, 6), 3, 9), "another incarnation of a restored store");
        assert_ne!(base, id(keyed(1, 7, 5), 4, 9), "another chunk");
        assert_ne!(base, id(keyed(1, 7, 5), 3, 8), "another message");
        assert_ne!(base, id(RequestKey::Legacy { campaign: 7 }, 3, 9));
    }

    #[test]
    fn legacy_campaigns_keep_the_ids_they_were_sent_with() {
        let a = RequestId::derive(&RequestKey::Legacy { campaign: 7 }, 42, 199).unwrap();
        assert_eq!(a.as_str(), "000000000007-000000002a-c7");
    }

    #[test]
    fn store_identities_print_and_parse_as_twelve_hex_digits() {
        let id = StoreIdentity::random().unwrap();
        let shown = id.to_string();
        assert_eq!(shown.len(), 12);
        assert_eq!(StoreIdentity::parse(&shown), Some(id));
        assert_ne!(StoreIdentity::random().unwrap(), id);
        assert_eq!(StoreIdentity::parse("xyz"), None);
    }

    #[test]
    fn request_id_length_rules() {
        assert_eq!(RequestId::parse("123456789"), Err(RequestIdError::Length(9)));
        assert!(RequestId::parse("1234567890").is_ok());
        assert!(RequestId::parse(&"x".repeat(32)).is_ok());
        assert_eq!(RequestId::parse(&"x".repeat(33)), Err(RequestIdError::Length(33)));
        assert_eq!(RequestId::parse("has space 123"), Err(RequestIdError::Charset));
    }

    #[test]
    fn spread_differs_for_neighbouring_cids() {
        let a = CompactCid::parse("00000000000000000000000000000001").unwrap();
        let b = CompactCid::parse("00000000000000000000000000000002").unwrap();
        assert_ne!(a.spread() % 1000, b.spread() % 1000);
    }
}
