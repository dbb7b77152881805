//! A chunk's per-recipient variables, held in one buffer and stored with each name once.
//!
//! A batch_single chunk of a thousand recipients with two variables each used to be five
//! thousand small strings, built when the chunk was read and freed when it was sent. Here the
//! values are one string, each distinct name is held once, and each pair is a name index and
//! the end of its value.
//!
//! Stored form: a chunk without variables is an empty list, as it always was. A chunk with
//! variables is a map of `names` (each distinct name once), `values` (every value back to
//! back), `pairs` (a name index and a value length in bytes, per pair) and `recipients` (the
//! pairs of each recipient). Chunks written before stop 33 hold a list of `(name, value)`
//! lists, one per recipient, which is read too; the map repeats no name, a quarter fewer bytes
//! for the load test's two-variable lines, and this is what sled writes several times over.

use std::collections::HashMap;
use std::fmt;

use serde::de::{DeserializeSeed, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Each recipient's `(name, value)` pairs, in recipient order. Empty when the message uses no
/// variables.
#[derive(Debug, Clone, Default)]
pub struct ChunkVars {
    /// Each distinct name once, in the order first seen.
    names: Vec<Box<str>>,
    /// Every value, back to back.
    values: String,
    /// Per pair: its name's index in `names` and where its value ends in `values`.
    pairs: Vec<(usize, usize)>,
    /// Where each recipient's pairs end, counted in pairs.
    recipients: Vec<usize>,
    /// Bytes of names and values the recipients carry, a name counted at each use.
    carried: usize,
    /// `names` by name, for [`ChunkVars::push`]; filled as names are added.
    index: HashMap<Box<str>, usize, foldhash::fast::RandomState>,
}

/// One recipient's variables, borrowed from its chunk.
#[derive(Debug, Clone, Copy)]
pub struct RecipientVars<'a> {
    names: &'a [Box<str>],
    values: &'a str,
    /// This recipient's pairs.
    pairs: &'a [(usize, usize)],
    /// Where its first value starts.
    start: usize,
}

impl PartialEq for ChunkVars {
    /// Equal when every recipient holds the same pairs; names are held in the order first seen,
    /// so equal contents are equal fields.
    fn eq(&self, other: &Self) -> bool {
        (&self.names, &self.values, &self.pairs, &self.recipients)
            == (&other.names, &other.values, &other.pairs, &other.recipients)
    }
}

impl Eq for ChunkVars {}

impl ChunkVars {
    /// Recipients held (0 when the message uses no variables).
    pub fn len(&self) -> usize {
        self.recipients.len()
    }

    /// True when no recipient's variables are held.
    pub fn is_empty(&self) -> bool {
        self.recipients.is_empty()
    }

    /// Adds the next recipient's pairs.
    pub fn push<'p>(&mut self, pairs: impl IntoIterator<Item = (&'p str, &'p str)>) {
        for (name, value) in pairs {
            self.push_pair(name, value);
        }
        self.end_recipient();
    }

    fn push_pair(&mut self, name: &str, value: &str) {
        let name_index = self.name_index(name);
        self.values.push_str(value);
        self.pairs.push((name_index, self.values.len()));
        self.carried += name.len() + value.len();
    }

    fn end_recipient(&mut self) {
        self.recipients.push(self.pairs.len());
    }

    fn name_index(&mut self, name: &str) -> usize {
        // Recipients of one list nearly always carry the same names in the same order,
        // so the k-th pair of a recipient names the k-th name first seen: one comparison
        // instead of hashing the name (the index was 2% of an NDJSON upload's samples).
        let k = self.pairs.len() - self.recipients.last().copied().unwrap_or(0);
        if self.names.get(k).is_some_and(|n| **n == *name) {
            return k;
        }
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        // Names read from a stored map are not in the index yet; it is built once (a stored
        // table that repeats a name must not make every later miss rebuild it).
        if self.index.is_empty() && !self.names.is_empty() {
            self.index = self.names.iter().cloned().zip(0..).collect();
            if let Some(&i) = self.index.get(name) {
                return i;
            }
        }
        self.names.push(name.into());
        self.index.insert(name.into(), self.names.len() - 1);
        self.names.len() - 1
    }

    /// An empty table with room for as many recipients, pairs and value bytes as `self` holds:
    /// the next chunk of an upload is nearly always shaped like the last.
    pub fn empty_like(&self) -> ChunkVars {
        ChunkVars {
            values: String::with_capacity(self.values.len()),
            pairs: Vec::with_capacity(self.pairs.len()),
            recipients: Vec::with_capacity(self.recipients.len()),
            ..ChunkVars::default()
        }
    }

    /// The `i`-th recipient's variables; none past the end.
    pub fn of(&self, i: usize) -> RecipientVars<'_> {
        let Some(&last) = self.recipients.get(i) else {
            return RecipientVars { names: &[], values: "", pairs: &[], start: 0 };
        };
        let first = if i == 0 { 0 } else { self.recipients[i - 1] };
        let start = if first == 0 { 0 } else { self.pairs[first - 1].1 };
        RecipientVars { names: &self.names, values: &self.values, pairs: &self.pairs[first..last], start }
    }

    /// Bytes of names and values the recipients carry, a name counted each time it is used
    /// (what bounds a chunk's size, whatever its stored form).
    pub fn text_bytes(&self) -> usize {
        self.carried
    }
}

impl<'a> RecipientVars<'a> {
    /// Pairs held.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// True when the recipient has no variables.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The pairs, in the order they were added.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        let (names, values, pairs, start) = (self.names, self.values, self.pairs, self.start);
        (0..pairs.len()).map(move |k| {
            let (name, end) = pairs[k];
            let value_start = if k == 0 { start } else { pairs[k - 1].1 };
            (&*names[name], &values[value_start..end])
        })
    }

    /// The value of the first pair named `name`.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// The pairs as owned strings.
    pub fn to_vec(&self) -> Vec<(String, String)> {
        self.iter().map(|(n, v)| (n.to_owned(), v.to_owned())).collect()
    }
}

impl FromIterator<Vec<(String, String)>> for ChunkVars {
    fn from_iter<I: IntoIterator<Item = Vec<(String, String)>>>(iter: I) -> Self {
        let mut vars = ChunkVars::default();
        for pairs in iter {
            vars.push(pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        }
        vars
    }
}

impl Serialize for ChunkVars {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.is_empty() {
            return s.serialize_seq(Some(0))?.end();
        }
        let mut map = s.serialize_map(Some(4))?;
        map.serialize_entry("names", &self.names)?;
        map.serialize_entry("values", &self.values)?;
        map.serialize_entry("pairs", &PairCodes(self))?;
        map.serialize_entry("recipients", &RecipientCounts(self))?;
        map.end()
    }
}

/// `pairs` as stored: name index, value length, for each pair (small numbers, a byte each in
/// msgpack).
struct PairCodes<'a>(&'a ChunkVars);

impl Serialize for PairCodes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let pairs = &self.0.pairs;
        let mut seq = s.serialize_seq(Some(2 * pairs.len()))?;
        let mut start = 0;
        for &(name, end) in pairs {
            seq.serialize_element(&name)?;
            seq.serialize_element(&(end - start))?;
            start = end;
        }
        seq.end()
    }
}

/// `recipients` as stored: each recipient's number of pairs.
struct RecipientCounts<'a>(&'a ChunkVars);

impl Serialize for RecipientCounts<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let ends = &self.0.recipients;
        let mut seq = s.serialize_seq(Some(ends.len()))?;
        let mut start = 0;
        for &end in ends {
            seq.serialize_element(&(end - start))?;
            start = end;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for ChunkVars {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Stored)
    }
}

/// Reads either stored form: the map, or the list of each recipient's pairs.
struct Stored;

impl<'de> Visitor<'de> for Stored {
    type Value = ChunkVars;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a chunk's variables: a map of names, values, pairs and recipients, or a list of pair lists")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ChunkVars, A::Error> {
        let mut vars = ChunkVars::default();
        vars.recipients.reserve(seq.size_hint().unwrap_or(0).min(4096));
        while seq.next_element_seed(PairsInto(&mut vars))?.is_some() {
            vars.end_recipient();
        }
        Ok(vars)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ChunkVars, A::Error> {
        let (mut names, mut values, mut codes, mut counts) = (None, None, None, None);
        while let Some(key) = map.next_key::<StoredField>()? {
            match key {
                StoredField::Names => names = Some(map.next_value::<Vec<String>>()?),
                StoredField::Values => values = Some(map.next_value::<String>()?),
                StoredField::Pairs => codes = Some(map.next_value::<Vec<usize>>()?),
                StoredField::Recipients => counts = Some(map.next_value::<Vec<usize>>()?),
                StoredField::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let missing = |field| A::Error::custom(format_args!("stored variables lack `{field}`"));
        ChunkVars::from_stored(
            names.ok_or_else(|| missing("names"))?,
            values.ok_or_else(|| missing("values"))?,
            &codes.ok_or_else(|| missing("pairs"))?,
            &counts.ok_or_else(|| missing("recipients"))?,
        )
        .map_err(A::Error::custom)
    }
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "lowercase")]
enum StoredField {
    Names,
    Values,
    Pairs,
    Recipients,
    #[serde(other)]
    Other,
}

impl ChunkVars {
    /// Puts the stored map's fields together, checking that each pair names a stored name,
    /// that the values are cut on character boundaries and used up, and that the recipients
    /// hold every pair.
    fn from_stored(names: Vec<String>, values: String, codes: &[usize], counts: &[usize]) -> Result<ChunkVars, String> {
        if !codes.len().is_multiple_of(2) {
            return Err("stored variable pairs hold an odd number of codes".into());
        }
        let names: Vec<Box<str>> = names.into_iter().map(Into::into).collect();
        let mut vars = ChunkVars { values, ..ChunkVars::default() };
        let mut end = 0usize;
        vars.pairs.reserve(codes.len() / 2);
        for code in codes.chunks_exact(2) {
            let (name, len) = (code[0], code[1]);
            let name_len = names.get(name).ok_or("a stored variable pair names no stored name")?.len();
            end = end
                .checked_add(len)
                .filter(|&e| vars.values.is_char_boundary(e))
                .ok_or("a stored variable value runs past the values or splits a character")?;
            vars.pairs.push((name, end));
            vars.carried += name_len + len;
        }
        if end != vars.values.len() {
            return Err("stored variable values hold bytes no pair uses".into());
        }
        let mut pairs_end = 0usize;
        vars.recipients.reserve(counts.len());
        for &count in counts {
            pairs_end = pairs_end
                .checked_add(count)
                .filter(|&e| e <= vars.pairs.len())
                .ok_or("stored recipients hold more variable pairs than are stored")?;
            vars.recipients.push(pairs_end);
        }
        if pairs_end != vars.pairs.len() {
            return Err("stored variable pairs belong to no recipient".into());
        }
        vars.names = names;
        Ok(vars)
    }
}

/// Reads one recipient's pairs (a list of 2-tuples, the form stored before stop 33) into the
/// chunk's buffers, without building them on their own.
struct PairsInto<'v>(&'v mut ChunkVars);

impl<'de> DeserializeSeed<'de> for PairsInto<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for PairsInto<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of (name, value) pairs")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(PairInto(self.0))?.is_some() {}
        Ok(())
    }
}

/// One `(name, value)` pair into the chunk's buffers.
struct PairInto<'v>(&'v mut ChunkVars);

impl<'de> DeserializeSeed<'de> for PairInto<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_tuple(2, self)
    }
}

impl<'de> Visitor<'de> for PairInto<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a (name, value) pair")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some(name) = seq.next_element_seed(NameInto(self.0))? else {
            return Err(A::Error::custom("a variable pair lacks a name"));
        };
        let Some(value_len) = seq.next_element_seed(ValueInto(self.0))? else {
            return Err(A::Error::custom("a variable pair lacks a value"));
        };
        if seq.next_element::<IgnoredAny>()?.is_some() {
            return Err(A::Error::custom("a variable pair holds more than a name and a value"));
        }
        let vars = &mut *self.0;
        vars.pairs.push((name, vars.values.len()));
        vars.carried += vars.names[name].len() + value_len;
        Ok(())
    }
}

/// A pair's name: its index among the chunk's names, added if new.
struct NameInto<'v>(&'v mut ChunkVars);

impl<'de> DeserializeSeed<'de> for NameInto<'_> {
    type Value = usize;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for NameInto<'_> {
    type Value = usize;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a variable name")
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<usize, E> {
        Ok(self.0.name_index(v))
    }
}

/// A pair's value, appended to the chunk's values; its length in bytes.
struct ValueInto<'v>(&'v mut ChunkVars);

impl<'de> DeserializeSeed<'de> for ValueInto<'_> {
    type Value = usize;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for ValueInto<'_> {
    type Value = usize;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a variable value")
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<usize, E> {
        self.0.values.push_str(v);
        Ok(v.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Vec<(String, String)>> {
        let pair = |n: &str, v: &str| (n.to_owned(), v.to_owned());
        vec![
            vec![pair("name", "Li"), pair("code", "C1")],
            vec![],
            vec![pair("name", "张三"), pair("", "")],
            vec![pair("name", "Wang")],
            // The names of the first recipient, in the other order.
            vec![pair("code", "C5"), pair("name", "Zhao")],
        ]
    }

    #[test]
    fn each_recipient_reads_back_its_own_pairs() {
        let vars: ChunkVars = sample().into_iter().collect();
        assert_eq!(vars.len(), 5);
        for (i, pairs) in sample().iter().enumerate() {
            assert_eq!(&vars.of(i).to_vec(), pairs, "recipient {i}");
        }
        assert_eq!(vars.of(2).get("name"), Some("张三"));
        assert_eq!(vars.of(2).get(""), Some(""));
        assert_eq!(vars.of(1).get("name"), None);
        assert!(vars.of(9).is_empty(), "past the end: no variables");
        assert_eq!(vars.names.len(), 3, "each distinct name is held once");
        assert_eq!(vars.text_bytes(), "nameLicodeC1name张三nameWangcodeC5nameZhao".len(), "a name counts at each use");
        assert_eq!((vars.of(4).get("code"), vars.of(4).get("name")), (Some("C5"), Some("Zhao")));
    }

    #[test]
    fn chunks_stored_as_lists_of_pair_lists_read_back_the_same_pairs() {
        for lists in [sample(), vec![], vec![vec![]]] {
            let vars: ChunkVars = lists.clone().into_iter().collect();
            let old = rmp_serde::to_vec(&lists).expect("encodes");
            assert_eq!(rmp_serde::from_slice::<ChunkVars>(&old).expect("decodes"), vars);
            let old_json = serde_json::to_string(&lists).expect("encodes");
            assert_eq!(serde_json::from_str::<ChunkVars>(&old_json).expect("decodes"), vars);
        }
    }

    #[test]
    fn the_stored_map_reads_back_equal_and_repeats_no_name() {
        let many: Vec<Vec<(String, String)>> =
            (0..1000).map(|i| vec![("code".to_owned(), i.to_string()), ("name".to_owned(), format!("u{i}"))]).collect();
        for lists in [sample(), many, vec![vec![]]] {
            let vars: ChunkVars = lists.clone().into_iter().collect();
            let bytes = rmp_serde::to_vec(&vars).expect("encodes");
            let back = rmp_serde::from_slice::<ChunkVars>(&bytes).expect("decodes");
            assert_eq!(back, vars);
            assert_eq!(back.text_bytes(), vars.text_bytes());
            let json = serde_json::to_string(&vars).expect("encodes");
            assert_eq!(serde_json::from_str::<ChunkVars>(&json).expect("decodes"), vars);
        }
        let vars: ChunkVars = (0..1000).map(|i| vec![("name".to_owned(), format!("u{i}"))]).collect();
        let stored = rmp_serde::to_vec(&vars).expect("encodes");
        let as_lists = rmp_serde::to_vec(&(0..1000).map(|i| vars.of(i).to_vec()).collect::<Vec<_>>()).expect("encodes");
        assert!(stored.len() * 10 < as_lists.len() * 7, "{} against {} bytes", stored.len(), as_lists.len());
        let none = ChunkVars::default();
        assert_eq!(rmp_serde::to_vec(&none).expect("encodes"), [0x90], "no variables: an empty list, as before");
    }

    #[test]
    fn a_read_chunk_takes_more_recipients_without_repeating_a_name() {
        let stored = rmp_serde::to_vec(&sample().into_iter().collect::<ChunkVars>()).expect("encodes");
        let mut vars: ChunkVars = rmp_serde::from_slice(&stored).expect("decodes");
        vars.push([("code", "C9"), ("city", "Xi'an")]);
        assert_eq!(vars.names.len(), 4);
        let repeated = r#"{"names":["a","a"],"values":"xy","pairs":[0,1,1,1],"recipients":[2]}"#;
        let mut twice: ChunkVars = serde_json::from_str(repeated).expect("decodes");
        twice.push([("b", "z")]);
        assert_eq!(twice.of(0).to_vec(), [("a".to_owned(), "x".to_owned()), ("a".to_owned(), "y".to_owned())]);
        assert_eq!(twice.of(1).to_vec(), [("b".to_owned(), "z".to_owned())]);
        assert_eq!(
            vars.of(sample().len()).to_vec(),
            [("code".to_owned(), "C9".to_owned()), ("city".to_owned(), "Xi'an".to_owned())]
        );
    }

    #[test]
    fn a_malformed_stored_form_is_an_error_not_a_shifted_list() {
        let map = |names: &str, values: &str, pairs: &str, recipients: &str| {
            format!(r#"{{"names":{names},"values":{values},"pairs":{pairs},"recipients":{recipients}}}"#)
        };
        let bad = [
            r#"[[["name"]]]"#.to_owned(),
            r#"[[["a","b","c"]]]"#.to_owned(),
            r#"[[[1,"b"]]]"#.to_owned(),
            r#"[["name"]]"#.to_owned(),
            map(r#"["a"]"#, r#""xy""#, "[0,1,0]", "[1]"),
            map(r#"["a"]"#, r#""xy""#, "[1,2]", "[1]"),
            map(r#"["a"]"#, r#""xy""#, "[0,3]", "[1]"),
            map(r#"["a"]"#, r#""张""#, "[0,1,0,2]", "[2]"),
            map(r#"["a"]"#, r#""xyz""#, "[0,2]", "[1]"),
            map(r#"["a"]"#, r#""xy""#, "[0,2]", "[2]"),
            map(r#"["a"]"#, r#""xy""#, "[0,1,0,1]", "[1]"),
            r#"{"names":["a"],"values":"x","pairs":[0,1]}"#.to_owned(),
        ];
        for bad in bad {
            assert!(serde_json::from_str::<ChunkVars>(&bad).is_err(), "{bad}");
        }
        let good = map(r#"["a","b"]"#, r#""xy张""#, "[1,1,0,1,1,3]", "[1,0,2]");
        let vars: ChunkVars = serde_json::from_str(&good).expect("decodes");
        assert_eq!(vars.of(2).to_vec(), [("a".to_owned(), "y".to_owned()), ("b".to_owned(), "张".to_owned())]);
    }
}
