//! A chunk's per-recipient variables, held in one buffer.
//!
//! A batch_single chunk of a thousand recipients with two variables each used to be five
//! thousand small strings, built when the chunk was read and freed when it was sent. Here they
//! are one string and two lists of offsets, encoded exactly as the `Vec<Vec<(String, String)>>`
//! that stored chunks have always held, so stored bytes do not change.

use std::fmt;

use serde::de::{DeserializeSeed, SeqAccess, Visitor};
use serde::ser::{SerializeSeq, SerializeTuple};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Each recipient's `(name, value)` pairs, in recipient order. Empty when the message uses no
/// variables.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChunkVars {
    /// Every name and value, back to back.
    text: String,
    /// Where each name and value ends in `text`; a pair is two ends.
    ends: Vec<usize>,
    /// Where each recipient's pairs end, counted in pairs.
    recipients: Vec<usize>,
}

/// One recipient's variables, borrowed from its chunk.
#[derive(Debug, Clone, Copy)]
pub struct RecipientVars<'a> {
    text: &'a str,
    /// The ends of this recipient's names and values.
    ends: &'a [usize],
    /// Where its first name starts.
    start: usize,
}

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
            self.push_text(name);
            self.push_text(value);
        }
        self.recipients.push(self.ends.len() / 2);
    }

    fn push_text(&mut self, s: &str) {
        self.text.push_str(s);
        self.ends.push(self.text.len());
    }

    /// The `i`-th recipient's variables; none past the end.
    pub fn of(&self, i: usize) -> RecipientVars<'_> {
        let Some(&last) = self.recipients.get(i) else {
            return RecipientVars { text: "", ends: &[], start: 0 };
        };
        let first = if i == 0 { 0 } else { self.recipients[i - 1] };
        let ends = &self.ends[2 * first..2 * last];
        let start = if first == 0 { 0 } else { self.ends[2 * first - 1] };
        RecipientVars { text: &self.text, ends, start }
    }

    /// Bytes of names and values held.
    pub fn text_bytes(&self) -> usize {
        self.text.len()
    }
}

impl<'a> RecipientVars<'a> {
    /// Pairs held.
    pub fn len(&self) -> usize {
        self.ends.len() / 2
    }

    /// True when the recipient has no variables.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The pairs, in the order they were added.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        let (text, ends, start) = (self.text, self.ends, self.start);
        (0..ends.len() / 2).map(move |k| {
            let name_start = if k == 0 { start } else { ends[2 * k - 1] };
            (&text[name_start..ends[2 * k]], &text[ends[2 * k]..ends[2 * k + 1]])
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
        let mut seq = s.serialize_seq(Some(self.len()))?;
        for i in 0..self.len() {
            seq.serialize_element(&Pairs(self.of(i)))?;
        }
        seq.end()
    }
}

/// One recipient's pairs as a sequence of 2-tuples, as a `Vec<(String, String)>` is written.
struct Pairs<'a>(RecipientVars<'a>);

impl Serialize for Pairs<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for pair in self.0.iter() {
            seq.serialize_element(&Pair(pair))?;
        }
        seq.end()
    }
}

struct Pair<'a>((&'a str, &'a str));

impl Serialize for Pair<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut t = s.serialize_tuple(2)?;
        t.serialize_element(self.0 .0)?;
        t.serialize_element(self.0 .1)?;
        t.end()
    }
}

impl<'de> Deserialize<'de> for ChunkVars {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Recipients;
        impl<'de> Visitor<'de> for Recipients {
            type Value = ChunkVars;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of each recipient's (name, value) pairs")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ChunkVars, A::Error> {
                let mut vars = ChunkVars::default();
                vars.recipients.reserve(seq.size_hint().unwrap_or(0).min(4096));
                while seq.next_element_seed(PairsInto(&mut vars))?.is_some() {
                    vars.recipients.push(vars.ends.len() / 2);
                }
                Ok(vars)
            }
        }
        d.deserialize_seq(Recipients)
    }
}

/// Reads one recipient's pairs (a sequence) or one pair (a 2-tuple) or one string into the
/// chunk's buffer, without building it on its own.
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

/// One `(name, value)` pair into the chunk's buffer.
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
        for what in ["a name", "a value"] {
            if seq.next_element_seed(TextInto(self.0))?.is_none() {
                return Err(serde::de::Error::custom(format_args!("a variable pair lacks {what}")));
            }
        }
        if seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
            return Err(serde::de::Error::custom("a variable pair holds more than a name and a value"));
        }
        Ok(())
    }
}

/// One string appended to the chunk's buffer.
struct TextInto<'v>(&'v mut ChunkVars);

impl<'de> DeserializeSeed<'de> for TextInto<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for TextInto<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<(), E> {
        self.0.push_text(v);
        Ok(())
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
        ]
    }

    #[test]
    fn each_recipient_reads_back_its_own_pairs() {
        let vars: ChunkVars = sample().into_iter().collect();
        assert_eq!(vars.len(), 4);
        for (i, pairs) in sample().iter().enumerate() {
            assert_eq!(&vars.of(i).to_vec(), pairs, "recipient {i}");
        }
        assert_eq!(vars.of(2).get("name"), Some("张三"));
        assert_eq!(vars.of(2).get(""), Some(""));
        assert_eq!(vars.of(1).get("name"), None);
        assert!(vars.of(9).is_empty(), "past the end: no variables");
    }

    #[test]
    fn the_stored_bytes_are_those_of_a_list_of_pair_lists() {
        for lists in [sample(), vec![], vec![vec![]]] {
            let vars: ChunkVars = lists.clone().into_iter().collect();
            let bytes = rmp_serde::to_vec(&vars).expect("encodes");
            assert_eq!(bytes, rmp_serde::to_vec(&lists).expect("encodes"));
            assert_eq!(rmp_serde::from_slice::<ChunkVars>(&bytes).expect("decodes"), vars);
            let json = serde_json::to_string(&vars).expect("encodes");
            assert_eq!(json, serde_json::to_string(&lists).expect("encodes"));
            assert_eq!(serde_json::from_str::<ChunkVars>(&json).expect("decodes"), vars);
        }
    }

    #[test]
    fn a_malformed_pair_is_an_error_not_a_shifted_list() {
        for bad in [r#"[[["name"]]]"#, r#"[[["a","b","c"]]]"#, r#"[[[1,"b"]]]"#, r#"[["name"]]"#] {
            assert!(serde_json::from_str::<ChunkVars>(bad).is_err(), "{bad}");
        }
    }
}
