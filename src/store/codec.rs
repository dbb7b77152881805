//! Keys and values as stored: big-endian keys that sort by campaign then chunk, msgpack values
//! with a leading version byte.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::StoreError;

/// Version of every stored value's layout.
const VERSION: u8 = 1;

/// `campaign ‖ seq`, both big-endian, so a campaign's chunks are one ordered range.
pub fn chunk_key(campaign: u64, seq: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&campaign.to_be_bytes());
    k[8..].copy_from_slice(&seq.to_be_bytes());
    k
}

/// Splits a chunk key.
pub fn parse_chunk_key(k: &[u8]) -> Option<(u64, u64)> {
    let c = u64::from_be_bytes(k.get(..8)?.try_into().ok()?);
    let s = u64::from_be_bytes(k.get(8..16)?.try_into().ok()?);
    Some((c, s))
}

/// Largest piece of a chunk's encoded value stored under one key; a longer value is stored as
/// consecutive parts under [`part_key`]s (a value that fits stays whole under its
/// [`chunk_key`], as every value was before parts existed).
///
/// Why it matters: sled 0.34 keeps a leaf node (up to 16 values) in memory as one page and
/// accounts for it by its size in the log. A leaf of larger values is written to the log as a
/// blob and then counted by the blob pointer's few bytes, and its LRU (256 shards, each
/// acting only after 64 accesses and always keeping the page it last saw) holds several pages
/// per shard whatever `cache_capacity` says. Leaves of 16 × 50 KB chunks thus kept ~250 MB
/// after heavy-vars uploads; 4 KiB pieces keep every leaf near 70 KB, under the blob size,
/// so the cache's accounting is true and what it holds is small.
pub const PART_BYTES: usize = 4096;

/// `campaign ‖ seq ‖ part`, big-endian: the parts of one chunk sort right after its
/// [`chunk_key`] and before the next chunk's.
pub fn part_key(campaign: u64, seq: u64, part: u32) -> [u8; 20] {
    let mut k = [0u8; 20];
    k[..16].copy_from_slice(&chunk_key(campaign, seq));
    k[16..].copy_from_slice(&part.to_be_bytes());
    k
}

/// The keys and values that store `value` as chunk `seq` of `campaign`: whole under its chunk
/// key when it fits in [`PART_BYTES`], otherwise in parts.
pub fn chunk_entries(campaign: u64, seq: u64, value: &[u8]) -> Vec<(Vec<u8>, &[u8])> {
    if value.len() <= PART_BYTES {
        return vec![(chunk_key(campaign, seq).to_vec(), value)];
    }
    value.chunks(PART_BYTES).zip(0u32..).map(|(part, i)| (part_key(campaign, seq, i).to_vec(), part)).collect()
}

/// A stored chunk's value: whole, or its parts put back together.
pub enum ChunkValue {
    Whole(sled::IVec),
    Joined(Vec<u8>),
}

impl std::ops::Deref for ChunkValue {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            ChunkValue::Whole(v) => v,
            ChunkValue::Joined(v) => v,
        }
    }
}

/// Chunks, in order, from a scan of the chunks tree: each `(seq, value)` is either one whole
/// value or its parts joined. Parts that do not start at 0 or skip one are a codec error.
pub struct Chunks<I> {
    entries: I,
    ahead: Option<(sled::IVec, sled::IVec)>,
}

impl<I: Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>> Chunks<I> {
    pub fn new(entries: I) -> Self {
        Chunks { entries, ahead: None }
    }

    fn next_entry(&mut self) -> Option<Result<(sled::IVec, sled::IVec), StoreError>> {
        match self.ahead.take() {
            Some(e) => Some(Ok(e)),
            None => self.entries.next().map(|r| r.map_err(|e| StoreError::Db(e.to_string()))),
        }
    }

    fn join(&mut self, first_key: &[u8], first: sled::IVec) -> Result<Vec<u8>, StoreError> {
        if first_key[16..] != 0u32.to_be_bytes() {
            return Err(StoreError::Codec("a stored chunk lacks its first part".into()));
        }
        let mut joined = first.to_vec();
        let mut next_part = 1u32;
        while let Some(entry) = self.next_entry() {
            let (k, v) = entry?;
            if k.len() != 20 || k[..16] != first_key[..16] {
                self.ahead = Some((k, v));
                break;
            }
            if k[16..] != next_part.to_be_bytes() {
                return Err(StoreError::Codec("a stored chunk misses a part".into()));
            }
            joined.extend_from_slice(&v);
            next_part += 1;
        }
        Ok(joined)
    }
}

impl<I: Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>> Iterator for Chunks<I> {
    type Item = Result<(u64, ChunkValue), StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        let (k, v) = match self.next_entry()? {
            Ok(e) => e,
            Err(e) => return Some(Err(e)),
        };
        let Some((_, seq)) = parse_chunk_key(&k) else {
            return Some(Err(StoreError::Codec("bad chunk key".into())));
        };
        Some(match k.len() {
            16 => Ok((seq, ChunkValue::Whole(v))),
            20 => self.join(&k, v).map(|joined| (seq, ChunkValue::Joined(joined))),
            n => Err(StoreError::Codec(format!("a chunk key of {n} bytes"))),
        })
    }
}

/// A stored chunk read for its cids alone: the variables and member ids are skipped without
/// being built. Both backends store chunks in the same bytes, so both read them with this.
#[derive(serde::Deserialize)]
pub struct StoredCids {
    /// The chunk's packed cids.
    #[serde(with = "serde_bytes")]
    pub cids: Vec<u8>,
    #[serde(default, rename = "vars")]
    _vars: serde::de::IgnoredAny,
    #[serde(default, rename = "users")]
    _users: serde::de::IgnoredAny,
}

/// Compact msgpack (structs as arrays) for bulky values such as chunks.
pub fn encode_compact<T: Serialize>(v: &T) -> Result<Vec<u8>, StoreError> {
    let mut out = vec![VERSION];
    rmp_serde::encode::write(&mut out, v).map_err(|e| StoreError::Codec(e.to_string()))?;
    Ok(out)
}

/// Self-describing msgpack (structs as maps) for records whose fields grow over time.
pub fn encode_named<T: Serialize>(v: &T) -> Result<Vec<u8>, StoreError> {
    let mut out = vec![VERSION];
    rmp_serde::encode::write_named(&mut out, v).map_err(|e| StoreError::Codec(e.to_string()))?;
    Ok(out)
}

/// Reads a value written by either encoder.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    match bytes.split_first() {
        Some((&VERSION, rest)) => rmp_serde::from_slice(rest).map_err(|e| StoreError::Codec(e.to_string())),
        Some((v, _)) => Err(StoreError::Codec(format!("unknown value version {v}"))),
        None => Err(StoreError::Codec("empty value".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Chunk;

    #[test]
    fn keys_sort_by_campaign_then_sequence() {
        let mut keys = vec![chunk_key(2, 0), chunk_key(1, 300), chunk_key(1, 2), chunk_key(1, 256)];
        keys.sort();
        assert_eq!(keys, vec![chunk_key(1, 2), chunk_key(1, 256), chunk_key(1, 300), chunk_key(2, 0)]);
        assert_eq!(parse_chunk_key(&chunk_key(7, 9)), Some((7, 9)));
    }

    /// Chunks stored whole (as before parts) and in parts read back alike, in order, and the
    /// parts of one chunk sort between it and the next.
    #[test]
    fn chunks_come_back_whole_or_joined_from_their_parts() {
        let small = vec![1u8; 100];
        let large: Vec<u8> = (0..3 * PART_BYTES + 7).map(|i| i as u8).collect();
        let mut entries: Vec<(Vec<u8>, Vec<u8>)> = [(1u64, &small), (2, &large), (3, &small)]
            .into_iter()
            .flat_map(|(seq, v)| chunk_entries(9, seq, v).into_iter().map(|(k, v)| (k, v.to_vec())).collect::<Vec<_>>())
            .collect();
        assert_eq!(entries.len(), 1 + 4 + 1);
        assert!(entries.iter().all(|(_, v)| v.len() <= PART_BYTES));
        let sorted = entries.clone();
        entries.sort();
        assert_eq!(entries, sorted, "parts sort between their chunk and the next");
        let scan = |entries: &[(Vec<u8>, Vec<u8>)]| {
            let items = entries.iter().map(|(k, v)| Ok((sled::IVec::from(&k[..]), sled::IVec::from(&v[..]))));
            Chunks::new(items.collect::<Vec<_>>().into_iter())
                .map(|r| r.map(|(seq, v)| (seq, v.to_vec())))
                .collect::<Result<Vec<_>, _>>()
        };
        assert_eq!(scan(&entries).unwrap(), vec![(1, small.clone()), (2, large), (3, small)]);
        let mut missing = entries.clone();
        missing.remove(3);
        assert!(scan(&missing).is_err(), "a missing part is an error, not a shorter chunk");
    }

    #[test]
    fn a_thousand_cids_take_about_sixteen_kilobytes() {
        let chunk = Chunk { cids: vec![0xab; 16_000], ..Chunk::default() };
        let bytes = encode_compact(&chunk).unwrap();
        assert!(bytes.len() < 16_010, "{}", bytes.len());
        assert_eq!(decode::<Chunk>(&bytes).unwrap(), chunk);
        assert!(decode::<Chunk>(&[9, 1, 2]).is_err());
    }
}
