//! A push answer's per-cid statuses read straight from the body's bytes, for the one narrow
//! shape a successful list or batch answer has: `{"code":0,"msg":"…","data":{"<taskid>":
//! {"<cid>":"<status>",…},…}}`, its keys in any order, with any JSON whitespace.
//!
//! Reading a 1000-cid list answer through serde_json took about a quarter of the daemon's
//! CPU per list recipient (a string scan, a visitor call and a hex parse per key and value).
//! Here each entry is a fixed-size cid, a colon and a known word compared in place. The reader
//! takes no chances: any byte outside that shape (an escape, a non-ASCII or control byte in a
//! string, a key that is not a cid, a number other than `0`, an unknown or repeated envelope
//! key, a `null`) makes it give up, and serde_json reads the body as before. Whatever it
//! accepts is valid JSON that serde_json reads to the same statuses (checked by the tests here
//! and by the `upstream_answers` fuzz target).

use super::compact::{
    index_answer, parse_cid_hex, word_index, AnswerEntry, CidBits, CidStatuses, StatusWord, KNOWN_WORDS,
};
use crate::wire::json_object::Text;

/// The statuses of a success answer `body`, or `None` when the body is not in the narrow shape
/// this reads (then serde_json must read it).
pub fn read_success_statuses(body: &[u8]) -> Option<CidStatuses> {
    let mut scan = Scan { bytes: body, at: 0 };
    let (mut code, mut msg, mut data) = (false, false, None);
    scan.expect(b'{')?;
    loop {
        match scan.plain_string()? {
            b"code" if !code => {
                scan.expect(b':')?;
                scan.zero()?;
                code = true;
            }
            b"msg" if !msg => {
                scan.expect(b':')?;
                scan.plain_string()?;
                msg = true;
            }
            b"data" if data.is_none() => {
                scan.expect(b':')?;
                data = Some(scan.tasks()?);
            }
            _ => return None,
        }
        if !scan.more(b'}')? {
            break;
        }
    }
    scan.skip_whitespace();
    (code && scan.at == body.len()).then_some(())?;
    data
}

/// A cursor over the body.
struct Scan<'b> {
    bytes: &'b [u8],
    at: usize,
}

impl<'b> Scan<'b> {
    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    /// Skips whitespace, then takes `byte`.
    fn expect(&mut self, byte: u8) -> Option<()> {
        self.skip_whitespace();
        (self.bytes.get(self.at) == Some(&byte)).then(|| self.at += 1)
    }

    /// After a member: `true` at a comma (another member follows), `false` at `close`.
    fn more(&mut self, close: u8) -> Option<bool> {
        self.skip_whitespace();
        let next = *self.bytes.get(self.at)?;
        self.at += 1;
        match next {
            b',' => Some(true),
            b if b == close => Some(false),
            _ => None,
        }
    }

    /// The number `0`, nothing longer.
    fn zero(&mut self) -> Option<()> {
        self.expect(b'0')?;
        match self.bytes.get(self.at) {
            Some(b'0'..=b'9' | b'.' | b'e' | b'E') => None,
            _ => Some(()),
        }
    }

    /// A string of printable ASCII without escapes, as its bytes.
    fn plain_string(&mut self) -> Option<&'b [u8]> {
        self.expect(b'"')?;
        let rest = self.bytes.get(self.at..)?;
        let len = memchr::memchr(b'"', rest)?;
        let text = &rest[..len];
        if !text.iter().all(|&b| (0x20..0x7f).contains(&b) && b != b'\\') {
            return None;
        }
        self.at += len + 1;
        Some(text)
    }

    /// `data`: an object of taskid → statuses, each task's entries added in the answer's order.
    fn tasks(&mut self) -> Option<CidStatuses> {
        let mut names: Vec<Text<'b>> = Vec::new();
        let mut entries = Vec::with_capacity(super::MAX_LIST_CIDS);
        let mut words = KNOWN_WORDS.to_vec();
        self.expect(b'{')?;
        self.skip_whitespace();
        if self.bytes.get(self.at) == Some(&b'}') {
            self.at += 1;
            return Some(index_answer(&names, entries, words));
        }
        loop {
            let name = std::str::from_utf8(self.plain_string()?).ok()?;
            let task = u32::try_from(names.len()).ok()?;
            self.expect(b':')?;
            self.statuses(task, &mut entries, &mut words)?;
            names.push(Text(name.into()));
            if !self.more(b'}')? {
                return Some(index_answer(&names, entries, words));
            }
        }
    }

    /// One task's object of cid → status word.
    fn statuses(&mut self, task: u32, entries: &mut Vec<AnswerEntry>, words: &mut Vec<StatusWord>) -> Option<()> {
        self.expect(b'{')?;
        self.skip_whitespace();
        if self.bytes.get(self.at) == Some(&b'}') {
            self.at += 1;
            return Some(());
        }
        loop {
            let cid = self.cid()?;
            self.expect(b':')?;
            let word = self.word(words)?;
            entries.push((task, cid, word));
            if !self.more(b'}')? {
                return Some(());
            }
        }
    }

    /// A key of exactly 32 lowercase hex digits.
    fn cid(&mut self) -> Option<CidBits> {
        self.expect(b'"')?;
        let digits = self.bytes.get(self.at..self.at + 33)?;
        if digits[32] != b'"' {
            return None;
        }
        let cid = parse_cid_hex(&digits[..32])?;
        self.at += 33;
        Some(CidBits::of(&cid))
    }

    /// A status word, as its index in `words`: one of the known words compared in place,
    /// any other plain string added.
    fn word(&mut self, words: &mut Vec<StatusWord>) -> Option<u32> {
        self.skip_whitespace();
        let rest = self.bytes.get(self.at..)?;
        for (index, quoted) in QUOTED_WORDS.iter().enumerate() {
            if rest.starts_with(quoted) {
                self.at += quoted.len();
                return u32::try_from(index).ok();
            }
        }
        Some(word_index(words, self.plain_string()?))
    }
}

/// [`KNOWN_WORDS`] as they travel, quotes and all, in the same order.
const QUOTED_WORDS: [&[u8]; 3] = [b"\"successed_online\"", b"\"successed_offline\"", b"\"successed_ignore\""];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::getui::DataEnvelope;

    /// What serde_json makes of `body`: the statuses of a success answer, or `None`.
    fn through_serde(body: &[u8]) -> Option<CidStatuses> {
        match serde_json::from_slice::<DataEnvelope<Option<CidStatuses>>>(body) {
            Ok(DataEnvelope { code: 0, data: Some(data) }) => Some(data.unwrap_or_default()),
            _ => None,
        }
    }

    const A: &str = "0123456789abcdef0123456789abcdef";
    const B: &str = "fedcba9876543210fedcba9876543210";

    fn accepted() -> Vec<String> {
        vec![
            format!(
                r#"{{"code":0,"msg":"success","data":{{"RASL_1":{{"{A}":"successed_online","{B}":"successed_offline"}}}}}}"#
            ),
            format!("{{ \"data\" :\n {{ \"t\" : {{ \"{A}\" : \"successed_ignore\" }} }} ,\r\n\t\"code\" : 0 }} \n"),
            format!(
                r#"{{"code":0,"data":{{"t2":{{"{A}":"successed_online"}},"t1":{{"{A}":"successed_offline","{B}":"queued"}}}}}}"#
            ),
            format!(r#"{{"code":0,"data":{{"t":{{"{A}":"successed_online"}},"t":{{"{B}":"successed_online"}}}}}}"#),
            format!(r#"{{"code":0,"data":{{"t":{{"{A}":"successed_online","{A}":"successed_ignore"}}}}}}"#),
            r#"{"msg":"","code":0,"data":{"t":{}}}"#.to_string(),
            r#"{"code":0,"data":{}}"#.to_string(),
            format!(r#"{{"code":0,"data":{{"t":{{"{A}":""}}}}}}"#),
        ]
    }

    #[test]
    fn the_shapes_getui_writes_read_as_serde_json_reads_them() {
        for body in accepted() {
            let fast = read_success_statuses(body.as_bytes());
            assert!(fast.is_some(), "refused {body}");
            assert_eq!(fast, through_serde(body.as_bytes()), "{body}");
        }
        let first = read_success_statuses(accepted()[0].as_bytes()).unwrap();
        let a = parse_cid_hex(A.as_bytes()).unwrap();
        assert_eq!(first.get(&a).map(|(task, word)| (task, word.as_str())), Some(("RASL_1", "successed_online")));
        assert_eq!(first.len(), 2);
    }

    #[test]
    fn the_quoted_words_are_the_known_words() {
        for (quoted, known) in QUOTED_WORDS.iter().zip(KNOWN_WORDS.iter()) {
            assert_eq!(*quoted, format!("\"{}\"", known.as_str()).as_bytes());
        }
        assert_eq!(QUOTED_WORDS.len(), KNOWN_WORDS.len());
    }

    /// The answers the simulator writes (through the same envelope type and a map of maps)
    /// take the scanner's path, so the load test measures it.
    #[test]
    fn the_simulators_answers_are_scanned() {
        let mut tasks = crate::wire::getui::TaskCidStatus::new();
        let statuses = tasks.entry("RASL_0001".to_string()).or_default();
        statuses.insert(A.to_string(), "successed_online".to_string());
        statuses.insert(B.to_string(), "successed_offline".to_string());
        let body = serde_json::to_vec(&crate::wire::getui::Envelope { code: 0, msg: "", data: Some(tasks) }).unwrap();
        let fast = read_success_statuses(&body);
        assert!(fast.as_ref().is_some_and(|s| s.len() == 2), "{}", String::from_utf8_lossy(&body));
        assert_eq!(fast, through_serde(&body));
    }

    /// Anything off the narrow shape is left to serde_json, valid JSON or not.
    #[test]
    fn other_bodies_are_left_to_serde_json() {
        let refused = [
            r#"{"code":0,"data":{"t":{"0123456789ABCDEF0123456789abcdef":"successed_online"}}}"#.to_string(),
            r#"{"code":0,"data":{"t":{"\u0030123456789abcdef0123456789abcdef":"successed_online"}}}"#.to_string(),
            format!(r#"{{"code":0,"data":{{"t":{{"{A}x":"successed_online"}}}}}}"#),
            format!(r#"{{"code":0,"data":{{"t":{{"{A}":"successed\u005fonline"}}}}}}"#),
            format!(r#"{{"code":0,"data":{{"t":{{"{A}":1}}}}}}"#),
            format!(r#"{{"code":0,"data":{{"t\u00e9":{{"{A}":"successed_online"}}}}}}"#),
            format!(r#"{{"code":0,"msg":"成功","data":{{"t":{{"{A}":"successed_online"}}}}}}"#),
            format!(r#"{{"code":1,"data":{{"t":{{"{A}":"successed_online"}}}}}}"#),
            format!(r#"{{"code":0.0,"data":{{"t":{{"{A}":"successed_online"}}}}}}"#),
            r#"{"code":00,"data":{}}"#.to_string(),
            r#"{"code":0,"code":0,"data":{}}"#.to_string(),
            r#"{"code":0,"data":{},"data":{}}"#.to_string(),
            r#"{"code":0,"extra":1,"data":{}}"#.to_string(),
            r#"{"code":0,"data":null}"#.to_string(),
            r#"{"code":0}"#.to_string(),
            r#"{"data":{}}"#.to_string(),
            r#"{"code":0,"data":{}} x"#.to_string(),
            r#"{"code":0,"data":{}"#.to_string(),
            format!(r#"{{"code":0,"data":{{"t":{{"{A}":"successed_online",}}}}}}"#),
            String::new(),
        ];
        for body in refused {
            assert_eq!(read_success_statuses(body.as_bytes()), None, "{body}");
        }
    }

    /// Every body one byte away from an accepted one (each byte replaced by each of a few
    /// bytes that matter to JSON, or removed): whatever the reader accepts, serde_json reads
    /// to the same statuses.
    #[test]
    fn no_body_near_the_shape_is_read_differently() {
        let swaps = b" \t\n\",:{}[]\\0a9Fx-.\x01\xc3";
        for body in accepted() {
            let body = body.into_bytes();
            for at in 0..body.len() {
                let mut removed = body.clone();
                removed.remove(at);
                let variants = swaps.iter().map(|&b| {
                    let mut v = body.clone();
                    v[at] = b;
                    v
                });
                for variant in variants.chain(std::iter::once(removed)) {
                    if let Some(fast) = read_success_statuses(&variant) {
                        assert_eq!(Some(fast), through_serde(&variant), "{}", String::from_utf8_lossy(&variant));
                    }
                }
            }
        }
    }
}
