//! Cids as 16 raw bytes on the wire: a list push body written straight from them, and the
//! per-cid statuses of a push answer read straight into them. A 1000-cid list call then costs
//! no `String` per cid in either direction, and looking a cid up is one probe of a small
//! open-addressed table over the answer's cids.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;

use crate::wire::json_object::Text;

/// Reads 32 lowercase hex digits as 16 bytes; `None` for anything else.
pub fn parse_cid_hex(s: &[u8]) -> Option<[u8; 16]> {
    let digits: &[u8; 32] = s.try_into().ok()?;
    // Arithmetic without branches or table lookups, so the compiler reads all 32 digits at once
    // in vector registers: a table lookup per digit was a sixth of reading a list answer.
    let mut values = [0u8; 32];
    let mut bad = 0u8;
    for (value, &b) in values.iter_mut().zip(digits) {
        let (digit, letter) = (b.wrapping_sub(b'0'), b.wrapping_sub(b'a'));
        let (is_digit, is_letter) = (u8::from(digit < 10), u8::from(letter < 6));
        bad |= 1 ^ (is_digit | is_letter);
        *value = digit * is_digit + letter.wrapping_add(10) * is_letter;
    }
    let mut out = [0u8; 16];
    for (byte, pair) in out.iter_mut().zip(values.chunks_exact(2)) {
        *byte = (pair[0] << 4) | pair[1];
    }
    (bad == 0).then_some(out)
}

/// The two lowercase hex digits of each of the 256 byte values.
const DIGIT_PAIRS: [[u8; 2]; 256] = {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut t = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = [DIGITS[i >> 4], DIGITS[i & 0x0f]];
        i += 1;
    }
    t
};

/// Writes the 32 lowercase hex digits of `cid` into `buf` and returns them.
pub fn encode_cid_hex<'b>(cid: &[u8; 16], buf: &'b mut [u8; 32]) -> &'b str {
    // Every byte written is an ASCII hex digit.
    std::str::from_utf8(cid_hex_digits(cid, buf)).unwrap_or_default()
}

/// Writes the 32 lowercase hex digits of `cid` into `buf` as bytes: what a JSON body needs,
/// without the UTF-8 check of a `str` (2% of the daemon's list-dispatch profile).
fn cid_hex_digits<'b>(cid: &[u8; 16], buf: &'b mut [u8; 32]) -> &'b [u8; 32] {
    for (pair, byte) in buf.chunks_exact_mut(2).zip(cid) {
        pair.copy_from_slice(&DIGIT_PAIRS[usize::from(*byte)]);
    }
    buf
}

/// The body of `/push/list/cid` (the fields of [`super::ListCidPush`], in its order), with
/// the cids given as raw bytes.
#[derive(Debug, Clone, Copy)]
pub struct CompactListCidPush<'a> {
    /// Recipients, 1 to [`super::MAX_LIST_CIDS`].
    pub cids: &'a [[u8; 16]],
    /// The task created by `/push/list/message`.
    pub taskid: &'a str,
    /// Answer at once without per-cid details.
    pub is_async: bool,
}

impl CompactListCidPush<'_> {
    /// The body as compact JSON. The cids are written as they are: hex digits need no
    /// escaping, so passing them through serde_json's escaper (a table lookup per byte) would
    /// only spend time; the taskid, which could hold anything, goes through it.
    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        let mut out = Vec::with_capacity(64 + self.taskid.len() + self.cids.len() * 35);
        out.extend_from_slice(br#"{"audience":{"cid":["#);
        let mut buf = [0u8; 32];
        for (i, cid) in self.cids.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.push(b'"');
            out.extend_from_slice(cid_hex_digits(cid, &mut buf));
            out.push(b'"');
        }
        out.extend_from_slice(br#"]},"taskid":"#);
        serde_json::to_writer(&mut out, self.taskid)?;
        out.extend_from_slice(if self.is_async { br#","is_async":true}"# } else { br#","is_async":false}"# });
        Ok(out)
    }
}

/// The body of `/push/single/batch/cid` written one message at a time, so that no message is
/// kept as a value between being made and being sent (what the dispatcher's batch path uses).
/// The bytes are those serde_json writes for the same [`super::BatchPush`] with `is_async`
/// false: the fields of each [`super::SingleCidPush`] in its order, the cid as 32 hex digits.
#[derive(Debug, Clone)]
pub struct BatchBody {
    out: Vec<u8>,
    messages: usize,
}

/// One message of a [`BatchBody`], borrowed from its maker.
#[derive(Debug, Clone, Copy)]
pub struct BatchMessage<'a> {
    /// Idempotency key.
    pub request_id: &'a str,
    /// The recipient.
    pub cid: &'a [u8; 16],
    /// Task group.
    pub group_name: Option<&'a str>,
    /// Delivery settings.
    pub settings: Option<&'a super::Settings>,
    /// The Getui-channel message.
    pub push_message: PushMessageJson<'a>,
    /// Vendor-channel messages.
    pub push_channel: Option<&'a serde_json::Value>,
}

/// A [`BatchMessage`]'s `push_message`: a value to serialize, or its JSON, already written or
/// written by its maker straight into the body.
#[derive(Clone, Copy)]
pub enum PushMessageJson<'a> {
    /// Serialized as the message is written.
    Value(&'a super::PushMessage),
    /// The JSON serde_json writes for the message, written by its maker.
    Written(&'a [u8]),
    /// Appends that JSON to the body it is given (no copy made in between); an error leaves
    /// the body as it was before the message.
    WrittenBy(&'a dyn Fn(&mut Vec<u8>) -> Result<(), serde_json::Error>),
}

impl std::fmt::Debug for PushMessageJson<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PushMessageJson::Value(m) => f.debug_tuple("Value").field(m).finish(),
            PushMessageJson::Written(json) => f.debug_tuple("Written").field(&String::from_utf8_lossy(json)).finish(),
            PushMessageJson::WrittenBy(_) => f.write_str("WrittenBy(..)"),
        }
    }
}

impl Default for BatchBody {
    fn default() -> Self {
        BatchBody::with_capacity(0)
    }
}

impl BatchBody {
    /// An empty body with room for `bytes` (it grows past them as needed).
    pub fn with_capacity(bytes: usize) -> BatchBody {
        const OPEN: &[u8] = br#"{"is_async":false,"msg_list":["#;
        let mut out = Vec::with_capacity(bytes.max(OPEN.len()));
        out.extend_from_slice(OPEN);
        BatchBody { out, messages: 0 }
    }

    /// Appends `m`. On an error nothing of it is kept.
    pub fn push(&mut self, m: &BatchMessage<'_>) -> Result<(), serde_json::Error> {
        let before = self.out.len();
        let written = self.write(m);
        match written {
            Ok(()) => self.messages += 1,
            Err(_) => self.out.truncate(before),
        }
        written
    }

    fn write(&mut self, m: &BatchMessage<'_>) -> Result<(), serde_json::Error> {
        let out = &mut self.out;
        out.extend_from_slice(if self.messages == 0 { br#"{"request_id":"# } else { br#",{"request_id":"# });
        serde_json::to_writer(&mut *out, m.request_id)?;
        if let Some(group) = m.group_name {
            out.extend_from_slice(br#","group_name":"#);
            serde_json::to_writer(&mut *out, group)?;
        }
        out.extend_from_slice(br#","audience":{"cid":[""#);
        out.extend_from_slice(cid_hex_digits(m.cid, &mut [0u8; 32]));
        out.extend_from_slice(br#""]}"#);
        if let Some(settings) = m.settings {
            out.extend_from_slice(br#","settings":"#);
            serde_json::to_writer(&mut *out, settings)?;
        }
        out.extend_from_slice(br#","push_message":"#);
        match m.push_message {
            PushMessageJson::Value(message) => serde_json::to_writer(&mut *out, message)?,
            PushMessageJson::Written(json) => out.extend_from_slice(json),
            PushMessageJson::WrittenBy(write) => write(out)?,
        }
        if let Some(channel) = m.push_channel {
            out.extend_from_slice(br#","push_channel":"#);
            serde_json::to_writer(&mut *out, channel)?;
        }
        out.push(b'}');
        Ok(())
    }

    /// Messages written.
    pub fn len(&self) -> usize {
        self.messages
    }

    /// True when no message was written.
    pub fn is_empty(&self) -> bool {
        self.messages == 0
    }

    /// The finished body.
    pub fn into_json(mut self) -> Vec<u8> {
        self.out.extend_from_slice(b"]}");
        self.out
    }
}

/// A per-cid status word of a push answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusWord {
    /// `successed_online`.
    SuccessedOnline,
    /// `successed_offline`.
    SuccessedOffline,
    /// `successed_ignore`.
    SuccessedIgnore,
    /// A word this daemon does not know.
    Other(Box<str>),
}

impl StatusWord {
    fn read(s: &[u8]) -> StatusWord {
        match s {
            b"successed_online" => StatusWord::SuccessedOnline,
            b"successed_offline" => StatusWord::SuccessedOffline,
            b"successed_ignore" => StatusWord::SuccessedIgnore,
            other => StatusWord::Other(String::from_utf8_lossy(other).into()),
        }
    }

    /// The word as it travels.
    pub fn as_str(&self) -> &str {
        match self {
            StatusWord::SuccessedOnline => "successed_online",
            StatusWord::SuccessedOffline => "successed_offline",
            StatusWord::SuccessedIgnore => "successed_ignore",
            StatusWord::Other(s) => s,
        }
    }
}

/// `data` of a push answer (taskid → cid → status) with its cids as raw bytes. Keys that are
/// not 32 lowercase hex digits are left out: no cid this daemon sends could match them. As in
/// a map, a repeated key keeps its last value (a repeated taskid, its last task).
///
/// One table serves both answer shapes: a list answer (one task, 1000 cids) and a batch
/// answer (200 tasks of one cid each) are each one probe per cid. The answer is read into one
/// list of (task, cid, status) and one string of taskids, so a batch answer costs no
/// allocation per task. The cids are kept once each in one list (24 bytes an entry: the cid
/// and two indexes) and found through 4-byte slots, so a list answer's index is 8 KB where a
/// hash map of whole entries took 50 KB.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CidStatuses {
    /// The answer's taskids in taskid order, one after another.
    task_names: String,
    /// Where each taskid of `task_names` ends.
    task_ends: Vec<usize>,
    /// The status words the table points at: the three known ones, then any other.
    words: Vec<StatusWord>,
    /// Each cid named, once: the rank in taskid order of the first task that names it, the
    /// cid, and the index in `words` of that task's word for it.
    found: Vec<AnswerEntry>,
    /// An open-addressed index of `found` (linear probing): a power of two of slots, at least
    /// twice as many as cids, each 0 (free) or one more than an index in `found`.
    slots: Vec<u32>,
}

/// A cid's 16 bytes as two big-endian halves: as a key it is 8-byte aligned, where a `u128`
/// would pad every table entry to 32 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct CidBits([u64; 2]);

impl CidBits {
    pub(super) fn of(cid: &[u8; 16]) -> CidBits {
        let n = u128::from_be_bytes(*cid);
        CidBits([(n >> 64) as u64, n as u64])
    }

    /// Both halves mixed, the first before the second joins it, so that cids whose halves
    /// repeat each other do not all collide. The keys come from the answers to our own
    /// requests, so no seed guards against chosen collisions.
    fn hash(self) -> u64 {
        mix(mix(self.0[0]) ^ self.0[1])
    }
}

impl CidStatuses {
    /// The status of `cid` and the task that gave it: the first task, in taskid order,
    /// that names it.
    pub fn get(&self, cid: &[u8; 16]) -> Option<(&str, &StatusWord)> {
        let &(rank, _, word) = self.found.get(self.slot_of(CidBits::of(cid))?)?;
        let rank = rank as usize;
        let start = rank.checked_sub(1).and_then(|r| self.task_ends.get(r)).copied().unwrap_or(0);
        let end = self.task_ends.get(rank).copied().unwrap_or(start);
        Some((self.task_names.get(start..end).unwrap_or(""), self.words.get(word as usize)?))
    }

    /// The index in `found` of `cid`, if the answer named it.
    fn slot_of(&self, cid: CidBits) -> Option<usize> {
        self.probe(cid)?.ok()
    }

    /// Where `cid` is: `Ok` with its index in `found`, or `Err` with the free slot it would
    /// take; `None` for a table without slots. The probe ends because the slots always
    /// outnumber the cids, so a free one is met.
    fn probe(&self, cid: CidBits) -> Option<Result<usize, usize>> {
        let mask = self.slots.len().checked_sub(1)?;
        let mut at = cid.hash() as usize & mask;
        loop {
            match (*self.slots.get(at)? as usize).checked_sub(1) {
                None => return Some(Err(at)),
                Some(index) if self.found.get(index)?.1 == cid => return Some(Ok(index)),
                Some(_) => at = (at + 1) & mask,
            }
        }
    }

    /// Cids with a status, over every task.
    pub fn len(&self) -> usize {
        self.found.len()
    }

    /// True when the answer named no cid.
    pub fn is_empty(&self) -> bool {
        self.found.is_empty()
    }
}

impl<'de> Deserialize<'de> for CidStatuses {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Tasks;
        impl<'de> Visitor<'de> for Tasks {
            type Value = CidStatuses;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of taskid to a map of cid to status")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<CidStatuses, A::Error> {
                let mut names: Vec<Text<'de>> = Vec::new();
                // Room for a full list answer up front, where growing from empty took eight copies.
                let mut entries = Vec::with_capacity(super::MAX_LIST_CIDS);
                let mut words = KNOWN_WORDS.to_vec();
                while let Some(task) = map.next_key::<Text<'de>>()? {
                    let task_index = u32::try_from(names.len()).unwrap_or(u32::MAX);
                    map.next_value_seed(TaskEntries { task_index, entries: &mut entries, words: &mut words })?;
                    names.push(task);
                }
                Ok(index_answer(&names, entries, words))
            }
        }
        d.deserialize_map(Tasks)
    }
}

/// The words every answer's table starts with, so that reading one costs no allocation.
pub(super) const KNOWN_WORDS: [StatusWord; 3] =
    [StatusWord::SuccessedOnline, StatusWord::SuccessedOffline, StatusWord::SuccessedIgnore];

/// The index in `words` (which starts with [`KNOWN_WORDS`]) of the status word `s`, added if
/// it is none of them.
pub(super) fn word_index(words: &mut Vec<StatusWord>, s: &[u8]) -> u32 {
    let known = match s {
        b"successed_online" => 0,
        b"successed_offline" => 1,
        b"successed_ignore" => 2,
        _ => {
            words.push(StatusWord::read(s));
            words.len() - 1
        }
    };
    u32::try_from(known).unwrap_or(u32::MAX)
}

/// One (task, cid, status) of an answer: the status as its index in the answer's words, the
/// task as its index in the answer's order while the answer is read, and as its rank in
/// taskid order once indexed ([`index_answer`]).
pub(super) type AnswerEntry = (u32, CidBits, u32);

/// The table of an answer's tasks (in the answer's order) and their entries.
pub(super) fn index_answer(names: &[Text<'_>], entries: Vec<AnswerEntry>, words: Vec<StatusWord>) -> CidStatuses {
    // Rank the tasks in taskid order; of a repeated taskid only the last task counts, as in a
    // map.
    let mut order: Vec<usize> = (0..names.len()).collect();
    order.sort_by(|a, b| names[*a].0.cmp(&names[*b].0)); // stable: a repeat stays after
    let mut rank: Vec<Option<u32>> = vec![None; names.len()];
    let (mut task_names, mut task_ends) = (String::new(), Vec::with_capacity(names.len()));
    for (at, &task) in order.iter().enumerate() {
        if order.get(at + 1).is_some_and(|&next| names[next].0 == names[task].0) {
            continue; // a later task of the same taskid replaces this one
        }
        rank[task] = u32::try_from(task_ends.len()).ok();
        task_names.push_str(&names[task].0);
        task_ends.push(task_names.len());
    }
    // The entries are indexed in place: the first `kept` of them are the table's, each cid
    // once, with its task's rank where its task's index was.
    let slots = vec![0u32; (entries.len() * 2).next_power_of_two().max(2)];
    let mut table = CidStatuses { task_names, task_ends, words, found: entries, slots };
    let mut kept = 0;
    for read in 0..table.found.len() {
        let (task, cid, word) = table.found[read];
        let Some(Some(rank)) = rank.get(task as usize).copied() else { continue };
        match table.probe(cid) {
            Some(Err(free)) => {
                table.found[kept] = (rank, cid, word);
                kept += 1;
                table.slots[free] = u32::try_from(kept).unwrap_or(u32::MAX);
            }
            // Within a task the last value wins (entries are in the answer's order), and an
            // earlier task in taskid order takes the cid from a later one.
            Some(Ok(index)) if rank <= table.found[index].0 => table.found[index] = (rank, cid, word),
            _ => {}
        }
    }
    table.found.truncate(kept);
    table
}

/// SplitMix64's finalizer: every input bit moves about half the output bits. Cids are random,
/// or sequential in hand-made lists, and either spreads over the table through it.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One task's cid → status map, read into the answer's list of entries and words.
struct TaskEntries<'e> {
    task_index: u32,
    entries: &'e mut Vec<AnswerEntry>,
    words: &'e mut Vec<StatusWord>,
}

impl<'de> DeserializeSeed<'de> for TaskEntries<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TaskEntries<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of cid to status")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(CidKey(cid)) = map.next_key()? {
            match cid {
                Some(cid) => {
                    let word = map.next_value_seed(WordIndex(self.words))?;
                    self.entries.push((self.task_index, cid, word));
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// A status map's key: the cid, or `None` for a key that is not 32 lowercase hex digits.
struct CidKey(Option<CidBits>);

impl<'de> Deserialize<'de> for CidKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_bytes(StringBytes("a cid", |b: &[u8]| CidKey(parse_cid_hex(b).as_ref().map(CidBits::of))))
    }
}

/// A status map's value, read as its index in the answer's words.
struct WordIndex<'w>(&'w mut Vec<StatusWord>);

impl<'de> DeserializeSeed<'de> for WordIndex<'_> {
    type Value = u32;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<u32, D::Error> {
        let words = self.0;
        d.deserialize_bytes(StringBytes("a status word", |b: &[u8]| word_index(words, b)))
    }
}

/// Visits a JSON string as its bytes. Asked for bytes, serde_json hands a string's bytes
/// (unescaped) without checking them as UTF-8, a check neither a hex cid nor a known status
/// word needs; its other deserializers hand a `str`, read the same way.
struct StringBytes<F>(&'static str, F);

impl<'de, T, F: FnOnce(&[u8]) -> T> Visitor<'de> for StringBytes<F> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<T, E> {
        Ok((self.1)(v))
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<T, E> {
        Ok((self.1)(v.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cid(n: u8) -> [u8; 16] {
        let mut c = [0u8; 16];
        c[0] = n.wrapping_mul(37);
        c[15] = n;
        c
    }

    fn hex(c: &[u8; 16]) -> String {
        encode_cid_hex(c, &mut [0u8; 32]).to_owned()
    }

    #[test]
    fn hex_round_trips_and_only_lowercase_digits_parse() {
        for n in [0u8, 1, 0x7f, 0xff] {
            let c = cid(n);
            assert_eq!(parse_cid_hex(hex(&c).as_bytes()), Some(c));
        }
        let good = "0123456789abcdef0123456789abcdef";
        assert!(parse_cid_hex(good.as_bytes()).is_some());
        for bad in [&good.to_uppercase()[..], &good[1..], "0123456789abcdef0123456789abcdeg", "", "g"] {
            assert_eq!(parse_cid_hex(bad.as_bytes()), None, "{bad:?}");
        }
        let mut with_space = good.as_bytes().to_vec();
        with_space[7] = b' ';
        assert_eq!(parse_cid_hex(&with_space), None);
    }

    /// Every byte value in every position: only a lowercase hex digit is read, as its value.
    #[test]
    fn each_position_takes_exactly_the_lowercase_hex_digits() {
        let zeros = [b'0'; 32];
        for at in 0..32 {
            for b in 0..=255u8 {
                let mut digits = zeros;
                digits[at] = b;
                let want = (b as char).to_digit(16).filter(|_| !b.is_ascii_uppercase());
                let got = parse_cid_hex(&digits);
                let nibble = got.map(|c| if at % 2 == 0 { c[at / 2] >> 4 } else { c[at / 2] & 0x0f });
                assert_eq!(nibble.map(u32::from), want, "byte {b:#04x} at {at}");
                if let Some(c) = got {
                    assert_eq!(
                        c.iter().filter(|&&x| x != 0).count(),
                        usize::from(want != Some(0)),
                        "only byte {}",
                        at / 2
                    );
                }
            }
        }
    }

    #[test]
    fn the_compact_list_push_is_the_list_push_byte_for_byte() {
        let cids = [cid(1), cid(2), cid(3)];
        let strings: Vec<String> = cids.iter().map(hex).collect();
        for (n, taskid, is_async) in [(3, "RASL_1", false), (1, "RASL_1", true), (2, "odd \"task\"\n\u{1}", false)] {
            let compact = CompactListCidPush { cids: &cids[..n], taskid, is_async };
            let plain = crate::wire::getui::ListCidPush {
                audience: crate::wire::getui::CidAudience {
                    cid: strings[..n].iter().map(|s| s.as_str().into()).collect(),
                },
                taskid: taskid.into(),
                is_async,
            };
            assert_eq!(compact.to_json().unwrap(), serde_json::to_vec(&plain).unwrap(), "{taskid:?} {is_async}");
        }
    }

    #[test]
    fn a_batch_body_written_message_by_message_is_what_serde_writes_for_the_batch() {
        use crate::wire::getui::{BatchPush, CidAudience, Notification, Push, PushMessage, Settings};
        let cids: Vec<[u8; 16]> = (1..=3).map(cid).collect();
        let message = |title: &str| PushMessage {
            notification: Some(Notification {
                title: title.into(),
                body: "b \"q\" \u{1}".into(),
                click_type: "startapp".into(),
                ..Notification::default()
            }),
            ..PushMessage::default()
        };
        let settings = Settings { ttl: Some(7_200_000), ..Settings::default() };
        let channel = json!({"ios": {"type": "notify", "aps": {"alert": {"title": "t"}}}});
        // Every optional field present in one message and absent in another.
        let shapes = [
            (Some("spring_2026"), Some(&settings), Some(&channel)),
            (None, None, None),
            (Some("g\"x"), None, Some(&channel)),
        ];
        let messages: Vec<PushMessage> = ["Hi 李", "t\n2", ""].iter().map(|t| message(t)).collect();
        let mut body = BatchBody::default();
        let mut plain = BatchPush { is_async: false, msg_list: Vec::new() };
        for (i, ((group, settings, channel), msg)) in shapes.iter().zip(&messages).enumerate() {
            let rid = format!("req-\"{i:010}");
            // One message arrives already written, as a renderer with a template's pieces writes it.
            let written = serde_json::to_vec(msg).unwrap();
            body.push(&BatchMessage {
                request_id: &rid,
                cid: &cids[i],
                group_name: *group,
                settings: *settings,
                push_message: if i == 1 { PushMessageJson::Written(&written) } else { PushMessageJson::Value(msg) },
                push_channel: *channel,
            })
            .unwrap();
            plain.msg_list.push(Push {
                request_id: rid.clone().into(),
                group_name: group.map(str::to_owned),
                audience: CidAudience { cid: vec![hex(&cids[i]).into()] },
                settings: settings.cloned(),
                push_message: msg.clone(),
                push_channel: channel.cloned(),
            });
        }
        assert_eq!(body.len(), 3);
        assert_eq!(String::from_utf8(body.into_json()).unwrap(), serde_json::to_string(&plain).unwrap());
    }

    #[test]
    fn statuses_read_into_raw_cids_and_the_first_task_in_taskid_order_wins() {
        let (a, b, c) = (cid(1), cid(2), cid(3));
        let data = json!({
            "t2": {hex(&a): "successed_online", hex(&b): "successed_online"},
            "t1": {hex(&a): "successed_offline", "not-a-cid": "successed_online", hex(&c): "something_new"},
        });
        let s: CidStatuses = serde_json::from_value(data).unwrap();
        assert_eq!(s.get(&a), Some(("t1", &StatusWord::SuccessedOffline)));
        assert_eq!(s.get(&b), Some(("t2", &StatusWord::SuccessedOnline)));
        assert_eq!(s.get(&c), Some(("t1", &StatusWord::Other("something_new".into()))));
        assert_eq!(s.get(&cid(4)), None);
        assert_eq!(s.len(), 3, "cids with a status: a once, and the key that is no cid left out");
    }

    #[test]
    fn a_batch_answer_of_one_task_per_cid_finds_each_cid_with_its_task() {
        let data: serde_json::Map<String, serde_json::Value> =
            (0..200u8).map(|n| (format!("RASS_{n:03}"), json!({hex(&cid(n)): "successed_offline"}))).collect();
        let s: CidStatuses = serde_json::from_value(serde_json::Value::Object(data)).unwrap();
        assert_eq!(s.len(), 200);
        for n in (0..200u8).rev() {
            assert_eq!(s.get(&cid(n)), Some((format!("RASS_{n:03}").as_str(), &StatusWord::SuccessedOffline)));
        }
    }

    #[test]
    fn a_repeated_key_keeps_its_last_value_as_a_map_would() {
        let k = hex(&cid(9));
        let text = format!(r#"{{"t":{{"{k}":"successed_offline","{k}":"successed_ignore"}}}}"#);
        let s: CidStatuses = serde_json::from_str(&text).unwrap();
        let map: crate::wire::getui::TaskCidStatus = serde_json::from_str(&text).unwrap();
        assert_eq!(map["t"][&k], "successed_ignore");
        assert_eq!(s.get(&cid(9)).map(|(_, w)| w.as_str()), Some("successed_ignore"));
    }

    #[test]
    fn a_repeated_taskid_keeps_its_last_task_as_a_map_would() {
        let (a, b) = (hex(&cid(1)), hex(&cid(2)));
        let text = format!(
            r#"{{"t2":{{"{a}":"successed_online","{b}":"successed_online"}},"t3":{{"{b}":"successed_ignore"}},"t2":{{"{a}":"successed_offline"}}}}"#
        );
        let s: CidStatuses = serde_json::from_str(&text).unwrap();
        assert_eq!(s.get(&cid(1)), Some(("t2", &StatusWord::SuccessedOffline)));
        assert_eq!(s.get(&cid(2)), Some(("t3", &StatusWord::SuccessedIgnore)), "the first t2 is gone");
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn escaped_keys_and_words_are_read_too() {
        let k = hex(&cid(5));
        let escaped: String = k.chars().map(|ch| format!("\\u{:04x}", ch as u32)).collect();
        let text = format!(r#"{{"t\u0031":{{"{escaped}":"successed_\u006fnline"}}}}"#);
        let s: CidStatuses = serde_json::from_str(&text).unwrap();
        assert_eq!(s.get(&cid(5)), Some(("t1", &StatusWord::SuccessedOnline)));
    }

    #[test]
    fn shapes_that_are_not_maps_are_errors_not_panics() {
        for bad in ["[]", "1", r#"{"t": []}"#, r#"{"t": {"0123456789abcdef0123456789abcdef": 1}}"#, r#"{"t": null}"#] {
            assert!(serde_json::from_str::<CidStatuses>(bad).is_err(), "{bad}");
        }
        assert!(serde_json::from_str::<CidStatuses>("{}").unwrap().is_empty());
    }
}
