//! The upload's duplicate filter: a set of cids in about 8 bytes each, sized for ten million
//! recipients in well under 100 MB.
//!
//! A cid is kept as two independent keyed hashes of all its 128 bits: 16 bits of one choose one
//! of 65 536 small sorted vectors and the 64-bit other is stored there as the fingerprint. Two
//! distinct cids are confused only if both hashes agree (about 2⁻⁸⁰ a pair: for ten million
//! cids, ~4·10⁻¹¹). The hashes are SipHash with keys drawn at random for each set, so no shape
//! of input (consecutive ids, ids sharing a prefix, ids chosen by someone who read this code)
//! can pile into one bucket and turn insertion quadratic. A hash set of 16-byte cids would spend
//! ~17 bytes a slot at a load of one half to seven eighths and double (briefly holding both
//! tables) as it grows: about 400 MB at ten million. Here a lookup is one index and a binary
//! search over ~150 values, and growth is always small.

use std::hash::{BuildHasher, RandomState};

use super::ids::CompactCid;

const BUCKET_BITS: u32 = 16;

/// A set of cids, held as fingerprints.
pub struct FingerprintSet {
    buckets: Vec<Vec<u64>>,
    len: usize,
    /// Keys the bucket choice.
    bucket_key: RandomState,
    /// Keys the fingerprint, independently of the bucket.
    fingerprint_key: RandomState,
}

impl Default for FingerprintSet {
    fn default() -> Self {
        FingerprintSet {
            buckets: vec![Vec::new(); 1 << BUCKET_BITS],
            len: 0,
            bucket_key: RandomState::new(),
            fingerprint_key: RandomState::new(),
        }
    }
}

impl FingerprintSet {
    /// The bucket and the fingerprint, each a keyed hash of every byte of the cid.
    fn place(&self, cid: &CompactCid) -> (usize, u64) {
        let bucket = (self.bucket_key.hash_one(cid.0) >> (64 - BUCKET_BITS)) as usize;
        (bucket, self.fingerprint_key.hash_one(cid.0))
    }

    /// True if `cid` is in the set.
    pub fn contains(&self, cid: &CompactCid) -> bool {
        let (b, fp) = self.place(cid);
        locate(&self.buckets[b], fp).is_ok()
    }

    /// Adds `cid`; false if it was already there.
    pub fn insert(&mut self, cid: &CompactCid) -> bool {
        let (b, fp) = self.place(cid);
        let b = &mut self.buckets[b];
        match locate(b, fp) {
            Ok(_) => false,
            Err(at) => {
                b.insert(at, fp);
                self.len += 1;
                true
            }
        }
    }

    /// Fingerprints held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes held on the heap (bucket headers and fingerprints), for accounting.
    pub fn heap_bytes(&self) -> usize {
        let headers = self.buckets.capacity() * std::mem::size_of::<Vec<u64>>();
        headers + self.buckets.iter().map(|b| b.capacity() * 8).sum::<usize>()
    }

    #[cfg(test)]
    fn largest_bucket(&self) -> usize {
        self.buckets.iter().map(Vec::len).max().unwrap_or(0)
    }
}

/// Finds `fp` in a sorted bucket like `binary_search`. Fingerprints are uniform over `u64`, so
/// the position is guessed from the value and the search walks a few neighbours: one or two
/// cache lines instead of the eight a binary search touches.
fn locate(sorted: &[u64], fp: u64) -> Result<usize, usize> {
    if sorted.is_empty() {
        return Err(0);
    }
    let mut i = ((u128::from(fp) * sorted.len() as u128) >> 64) as usize;
    if sorted[i] < fp {
        while i < sorted.len() && sorted[i] < fp {
            i += 1;
        }
    } else {
        while i > 0 && sorted[i - 1] >= fp {
            i -= 1;
        }
    }
    if sorted.get(i) == Some(&fp) {
        Ok(i)
    } else {
        Err(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cid(n: u64) -> CompactCid {
        let mut b = [0u8; 16];
        b[8..].copy_from_slice(&n.to_be_bytes()); // sequential ids: the worst case for bucketing
        CompactCid(b)
    }

    #[test]
    fn locate_agrees_with_binary_search() {
        let mut rng = fastrand::Rng::with_seed(7);
        for len in [0usize, 1, 2, 3, 10, 150, 1000] {
            let mut v: Vec<u64> = (0..len).map(|_| rng.u64(..)).collect();
            v.sort_unstable();
            v.dedup();
            let probes = v.iter().copied().chain((0..200).map(|_| rng.u64(..))).chain([0, u64::MAX]);
            for p in probes {
                assert_eq!(locate(&v, p), v.binary_search(&p), "len {len} probe {p}");
            }
        }
    }

    /// `%032x` of 1..=n, the way test lists are made.
    fn sequential(n: u64) -> CompactCid {
        CompactCid::parse(&format!("{n:032x}")).unwrap()
    }

    #[test]
    fn sequential_cids_spread_over_all_buckets() {
        let mut s = FingerprintSet::default();
        for n in 1..=200_000 {
            assert!(s.insert(&sequential(n)));
        }
        // About 3 a bucket on average; a random spread puts at most ~20 in the fullest one.
        assert!(s.largest_bucket() <= 40, "fullest bucket holds {}", s.largest_bucket());
        assert!((1..=200_000).all(|n| s.contains(&sequential(n))));
    }

    #[test]
    fn ids_that_differ_only_in_their_first_bytes_spread_too() {
        let mut s = FingerprintSet::default();
        for n in 0..100_000u64 {
            let mut b = [0u8; 16];
            b[..8].copy_from_slice(&n.to_le_bytes());
            s.insert(&CompactCid(b));
        }
        assert!(s.largest_bucket() <= 40, "fullest bucket holds {}", s.largest_bucket());
    }

    #[test]
    fn about_eight_bytes_a_cid() {
        let mut s = FingerprintSet::default();
        for n in 1..=1_000_000 {
            s.insert(&sequential(n));
        }
        let per_cid = s.heap_bytes() as f64 / 1e6;
        assert!(per_cid < 16.0, "{per_cid:.1} bytes a cid");
    }

    #[test]
    fn behaves_like_a_set() {
        let mut s = FingerprintSet::default();
        for n in 0..50_000 {
            assert!(s.insert(&cid(n)));
        }
        assert!((0..50_000).all(|n| s.contains(&cid(n))));
        assert!(!s.insert(&cid(123)));
        assert!(!s.contains(&cid(1_000_000)));
        assert_eq!(s.len(), 50_000);
    }
}
