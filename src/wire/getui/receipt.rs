//! Getui's receipt callback (消息回执): one JSON object per line, each signed with
//! md5(appid + cid + taskid + msgid + masterSecret), telling that a message arrived, was shown
//! or was clicked on one device (reference `getui-legacy-and-sms.md` §2.3, §2.5, §4.1 point 4).
//!
//! The daemon's receiver and the simulator's sender both use these types. A body is parsed line
//! by line: a bad line is reported with its line number and never stops the others.

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// One receipt line as Getui posts it. Unknown fields are ignored (the third-party sources of §2.3
/// list a few more than the doc excerpt, and Getui may add others).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptLine {
    /// The app's AppId.
    pub appid: String,
    /// The recipient's cid.
    pub cid: String,
    /// The task id (the push's taskid / contentId).
    pub taskid: String,
    /// The message id.
    pub msgid: String,
    /// `200` ok, `400` APNs push failed, `401` user missing, `402` inactive user, `500`
    /// internal error. A string on the wire; a number is tolerated.
    #[serde(deserialize_with = "super::string_or_number")]
    pub code: String,
    /// Result text, e.g. `ok`. Missing is read as empty: nothing depends on it.
    #[serde(default)]
    pub desc: String,
    /// Lowercase hex md5 of appid + cid + taskid + msgid + masterSecret (see [`expected_sign`]).
    pub sign: String,
    /// What happened; see [`ActionKind::of`]. A string on the wire; a number is tolerated.
    #[serde(rename = "actionId", deserialize_with = "super::string_or_number")]
    pub action_id: String,
    /// When Getui received the event, ms since the epoch (a number; digits in a string are
    /// tolerated).
    #[serde(deserialize_with = "number_or_digits")]
    pub recvtime: u64,
    /// The cid's alias, sent only when Getui is configured to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
}

/// A `u64` written as a JSON number or as a string of digits.
fn number_or_digits<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Num(u64),
        Str(String),
    }
    match Either::deserialize(d)? {
        Either::Num(n) => Ok(n),
        Either::Str(s) => s.trim().parse().map_err(|_| serde::de::Error::custom("expected milliseconds as a number")),
    }
}

/// Fields a line must have; `desc` and `alias` may be missing.
const REQUIRED_FIELDS: [&str; 8] = ["appid", "cid", "taskid", "msgid", "code", "sign", "actionId", "recvtime"];

/// The `code` of a line that reports an event, as opposed to a failure.
pub const CODE_OK: &str = "200";

/// `sign` of a receipt line: lowercase hex md5 of appid + cid + taskid + msgid + masterSecret,
/// concatenated with no separator.
pub fn expected_sign(appid: &str, cid: &str, taskid: &str, msgid: &str, master_secret: &str) -> String {
    let mut h = Md5::new();
    for part in [appid, cid, taskid, msgid, master_secret] {
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

impl ReceiptLine {
    /// A line as Getui would post it, signed with `master_secret` (`code` 200, `desc` ok): what
    /// the simulator sends.
    pub fn signed(
        appid: &str,
        cid: &str,
        taskid: &str,
        msgid: &str,
        action_id: &str,
        recvtime: u64,
        master_secret: &str,
    ) -> ReceiptLine {
        ReceiptLine {
            appid: appid.to_owned(),
            cid: cid.to_owned(),
            taskid: taskid.to_owned(),
            msgid: msgid.to_owned(),
            code: CODE_OK.to_owned(),
            desc: "ok".to_owned(),
            sign: expected_sign(appid, cid, taskid, msgid, master_secret),
            action_id: action_id.to_owned(),
            recvtime,
            alias: None,
        }
    }

    /// True when `sign` matches, compared in constant time. Upper-case hex is accepted too:
    /// whether Getui writes lowercase is unconfirmed (§2.3) and case carries no secret.
    pub fn verify(&self, master_secret: &str) -> bool {
        let expected = expected_sign(&self.appid, &self.cid, &self.taskid, &self.msgid, master_secret);
        let given = self.sign.to_ascii_lowercase();
        bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
    }

    /// What the line reports.
    pub fn kind(&self) -> ActionKind {
        ActionKind::of(&self.action_id)
    }

    /// True when the line proves the message reached the device (§4.1 point 4): an arrival,
    /// shown or clicked `actionId` with `code` 200. A failure code (e.g. 400, APNs push failed)
    /// proves the opposite, whatever its `actionId`.
    pub fn is_arrival_evidence(&self) -> bool {
        self.code.trim() == CODE_OK && self.kind().is_arrival_evidence()
    }
}

/// What an `actionId` reports, per the §2.3 table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ActionKind {
    /// Delivered to the device: `0` Getui arrival, `10030` Getui transmission arrived,
    /// `110000` Huawei, `120000` Xiaomi, `130000` Meizu, `140000` OPPO, `150000` vivo.
    Arrival,
    /// Notification shown: `10000` Getui, `10009` iOS.
    Shown,
    /// Notification clicked: `10010` Getui, `10019` iOS, `120010` Xiaomi, `130010` Meizu.
    Clicked,
    /// `90000`–`90999`: the app's own events, whose meaning campaignd cannot know.
    Custom,
    /// Any other value, numeric or not.
    Other,
}

impl ActionKind {
    /// The kind of an `actionId` value (surrounding spaces ignored).
    pub fn of(action_id: &str) -> ActionKind {
        let Ok(id) = action_id.trim().parse::<u32>() else {
            return ActionKind::Other;
        };
        match id {
            0 | 10030 | 110000 | 120000 | 130000 | 140000 | 150000 => ActionKind::Arrival,
            10000 | 10009 => ActionKind::Shown,
            10010 | 10019 | 120010 | 130010 => ActionKind::Clicked,
            90000..=90999 => ActionKind::Custom,
            _ => ActionKind::Other,
        }
    }

    /// The label for metrics (`campaignd_receipts_total{kind}`) and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Arrival => "arrival",
            ActionKind::Shown => "shown",
            ActionKind::Clicked => "clicked",
            ActionKind::Custom => "custom",
            ActionKind::Other => "other",
        }
    }

    /// True for kinds that prove arrival: a shown or clicked notification arrived first.
    /// Custom events do not count: their meaning is the app's.
    pub fn is_arrival_evidence(self) -> bool {
        matches!(self, ActionKind::Arrival | ActionKind::Shown | ActionKind::Clicked)
    }
}

/// Why one line was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// The line is not UTF-8.
    #[error("not UTF-8")]
    NotUtf8,
    /// The line is not JSON.
    #[error("not JSON: {0}")]
    BadJson(String),
    /// The line is JSON but not an object.
    #[error("not a JSON object")]
    NotAnObject,
    /// A required field is absent.
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    /// A field has the wrong type.
    #[error("field `{field}`: {message}")]
    BadField {
        /// The field's name.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The line's `appid` is not the app the body was posted for.
    #[error("appid is not this app's")]
    OtherApp,
    /// `sign` does not match the app's master secret.
    #[error("bad sign")]
    BadSign,
}

impl LineError {
    /// A short label for metrics and counts.
    pub fn label(&self) -> &'static str {
        match self {
            LineError::NotUtf8 | LineError::BadJson(_) | LineError::NotAnObject => "bad_json",
            LineError::MissingField(_) => "missing_field",
            LineError::BadField { .. } => "bad_field",
            LineError::OtherApp => "other_app",
            LineError::BadSign => "bad_sign",
        }
    }
}

/// Bounds the caller sets on one body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiptLimits {
    /// Most bytes of a body.
    pub max_body_bytes: usize,
    /// Most non-blank lines of a body.
    pub max_lines: usize,
}

/// Why a whole body was refused before any line was taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// More bytes than allowed.
    #[error("receipt body of {bytes} bytes is over the limit of {max}")]
    TooLarge {
        /// Bytes of the body.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// More lines than allowed.
    #[error("receipt body has more than {max} lines")]
    TooManyLines {
        /// The limit.
        max: usize,
    },
}

/// One non-blank line of a body and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedLine {
    /// 1-based line number in the body (blank lines counted, so it matches an editor's).
    pub line_no: usize,
    /// The verified line, or why it was refused.
    pub result: Result<ReceiptLine, LineError>,
}

/// Every non-blank line of a body, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParsedBody {
    /// The lines.
    pub lines: Vec<ParsedLine>,
}

impl ParsedBody {
    /// The lines that parsed and verified.
    pub fn accepted(&self) -> impl Iterator<Item = &ReceiptLine> {
        self.lines.iter().filter_map(|l| l.result.as_ref().ok())
    }

    /// The refused lines with their numbers.
    pub fn refused(&self) -> impl Iterator<Item = (usize, &LineError)> {
        self.lines.iter().filter_map(|l| l.result.as_ref().err().map(|e| (l.line_no, e)))
    }

    /// How many lines were refused.
    pub fn refused_count(&self) -> usize {
        self.refused().count()
    }
}

/// Parses and verifies a whole body posted for the app `app_id`. Blank lines (and a trailing
/// newline, `\r\n` line ends, a leading byte-order mark) are skipped. Each other line is
/// checked on its own: JSON object, required fields, `appid` equal to `app_id`, then `sign`.
pub fn parse_body(
    body: &[u8],
    app_id: &str,
    master_secret: &str,
    limits: ReceiptLimits,
) -> Result<ParsedBody, BodyError> {
    if body.len() > limits.max_body_bytes {
        return Err(BodyError::TooLarge { bytes: body.len(), max: limits.max_body_bytes });
    }
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let mut out = ParsedBody::default();
    for (i, raw) in body.split(|&b| b == b'\n').enumerate() {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if out.lines.len() == limits.max_lines {
            return Err(BodyError::TooManyLines { max: limits.max_lines });
        }
        out.lines.push(ParsedLine { line_no: i + 1, result: parse_line(raw, app_id, master_secret) });
    }
    Ok(out)
}

/// Parses and verifies one line.
pub fn parse_line(raw: &[u8], app_id: &str, master_secret: &str) -> Result<ReceiptLine, LineError> {
    let text = std::str::from_utf8(raw).map_err(|_| LineError::NotUtf8)?;
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| LineError::BadJson(e.to_string()))?;
    let serde_json::Value::Object(map) = &value else {
        return Err(LineError::NotAnObject);
    };
    if let Some(missing) = REQUIRED_FIELDS.iter().find(|f| !map.contains_key(**f)) {
        return Err(LineError::MissingField(missing));
    }
    let line: ReceiptLine = serde_path_to_error::deserialize(value)
        .map_err(|e| LineError::BadField { field: e.path().to_string(), message: e.into_inner().to_string() })?;
    if line.appid != app_id {
        return Err(LineError::OtherApp);
    }
    if !line.verify(master_secret) {
        return Err(LineError::BadSign);
    }
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP: &str = "laaN0B4deu8HMBXm141";
    const SECRET: &str = "campaignd-dev-master-secret";
    const LIMITS: ReceiptLimits = ReceiptLimits { max_body_bytes: 1 << 20, max_lines: 100 };

    /// Shaped like the reference's example line, with a whole cid and a sign computed for
    /// [`SECRET`] by `md5sum` outside this code.
    const EXAMPLE: &str = r#"{"code":"200","recvtime":1559252242250,"appid":"laaN0B4deu8HMBXm141","sign":"5ed653553d54366676e8a68451ca3530","msgid":"1559252299573551004101","actionId":"110000","taskid":"OSS-0531_RZBMR2SwQj66QmqOy86","desc":"ok","cid":"d12403fad5e0c3d1b2a3f4e5d6c7b8a9"}"#;

    fn line(cid: &str, action: &str) -> String {
        serde_json::to_string(&ReceiptLine::signed(APP, cid, "RASS_task1", "msg-1", action, 1_700_000_000_000, SECRET))
            .unwrap()
    }

    #[test]
    fn the_reference_example_parses_and_verifies() {
        let l = parse_line(EXAMPLE.as_bytes(), APP, SECRET).unwrap();
        assert_eq!(l.cid, "d12403fad5e0c3d1b2a3f4e5d6c7b8a9");
        assert_eq!(l.recvtime, 1_559_252_242_250);
        assert_eq!(l.kind(), ActionKind::Arrival); // 110000: Huawei delivered
        assert!(l.is_arrival_evidence());
        assert_eq!(l.alias, None);
        assert_eq!(expected_sign(APP, &l.cid, &l.taskid, &l.msgid, SECRET), "5ed653553d54366676e8a68451ca3530");
    }

    #[test]
    fn sign_is_md5_of_the_five_parts_in_order() {
        // md5("abcde"), computed outside this code with `printf abcde | md5sum`.
        assert_eq!(expected_sign("a", "b", "c", "d", "e"), "ab56b4d92b40713acc5af89985d4b786");
        assert_ne!(expected_sign("a", "b", "c", "d", "e"), expected_sign("b", "a", "c", "d", "e"));
    }

    #[test]
    fn verify_accepts_the_good_sign_only() {
        let good = ReceiptLine::signed(APP, "cid-A", "t", "m", "0", 1, SECRET);
        assert!(good.verify(SECRET));
        assert!(!good.verify("another-secret"));
        let upper = ReceiptLine { sign: good.sign.to_ascii_uppercase(), ..good.clone() };
        assert!(upper.verify(SECRET));
        // Any change of a signed field breaks it.
        assert!(!ReceiptLine { cid: "cid-B".into(), ..good.clone() }.verify(SECRET));
        assert!(!ReceiptLine { taskid: "t2".into(), ..good.clone() }.verify(SECRET));
        assert!(!ReceiptLine { sign: good.sign[..31].to_owned(), ..good.clone() }.verify(SECRET));
        assert!(!ReceiptLine { sign: String::new(), ..good }.verify(SECRET));
    }

    #[test]
    fn action_ids_are_classified_per_the_table() {
        for id in ["0", "10030", "110000", "120000", "130000", "140000", "150000"] {
            assert_eq!(ActionKind::of(id), ActionKind::Arrival, "{id}");
        }
        for id in ["10000", "10009"] {
            assert_eq!(ActionKind::of(id), ActionKind::Shown, "{id}");
        }
        for id in ["10010", "10019", "120010", "130010"] {
            assert_eq!(ActionKind::of(id), ActionKind::Clicked, "{id}");
        }
        for id in ["90000", "90500", "90999"] {
            assert_eq!(ActionKind::of(id), ActionKind::Custom, "{id}");
        }
        for id in ["89999", "91000", "1", "", "abc", "-1", "110000x"] {
            assert_eq!(ActionKind::of(id), ActionKind::Other, "{id:?}");
        }
        assert_eq!(ActionKind::of(" 10010 "), ActionKind::Clicked);
    }

    #[test]
    fn arrival_evidence_is_arrival_shown_or_clicked_with_code_200() {
        // The set of §4.1 point 4, exactly.
        let evidence: Vec<u32> =
            (0..=200_000).filter(|id| ActionKind::of(&id.to_string()).is_arrival_evidence()).collect();
        assert_eq!(
            evidence,
            [0, 10000, 10009, 10010, 10019, 10030, 110000, 120000, 120010, 130000, 130010, 140000, 150000]
        );
        let shown = ReceiptLine::signed(APP, "c", "t", "m", "10000", 1, SECRET);
        assert!(shown.is_arrival_evidence());
        let failed = ReceiptLine { code: "400".into(), ..shown.clone() };
        assert!(!failed.is_arrival_evidence());
        let custom = ReceiptLine::signed(APP, "c", "t", "m", "90001", 1, SECRET);
        assert!(!custom.is_arrival_evidence());
    }

    #[test]
    fn lines_tolerate_unknown_fields_numbers_for_strings_and_an_alias() {
        let sign = expected_sign(APP, "c1", "t", "m", SECRET);
        let text = format!(
            r#"{{"appid":"{APP}","cid":"c1","taskid":"t","msgid":"m","code":200,"sign":"{sign}","actionId":10010,"recvtime":"1700000000000","alias":"user-7","extra":{{"x":1}}}}"#
        );
        let l = parse_line(text.as_bytes(), APP, SECRET).unwrap();
        assert_eq!((l.code.as_str(), l.action_id.as_str(), l.recvtime), ("200", "10010", 1_700_000_000_000));
        assert_eq!(l.alias.as_deref(), Some("user-7"));
        assert_eq!(l.desc, "");
        assert_eq!(l.kind(), ActionKind::Clicked);
    }

    #[test]
    fn a_body_is_judged_line_by_line_with_line_numbers() {
        let good = line("cid-A", "0");
        let mut bad_sign: serde_json::Value = serde_json::from_str(&line("cid-B", "10000")).unwrap();
        bad_sign["sign"] = "00000000000000000000000000000000".into();
        let mut missing: serde_json::Value = serde_json::from_str(&line("cid-C", "0")).unwrap();
        missing.as_object_mut().unwrap().remove("msgid");
        let mut wrong_type: serde_json::Value = serde_json::from_str(&line("cid-D", "0")).unwrap();
        wrong_type["recvtime"] = "soon".into();
        let other_app =
            serde_json::to_string(&ReceiptLine::signed("app-2", "cid-E", "t", "m", "0", 1, SECRET)).unwrap();
        let body = format!(
            "{good}\r\n\n{bad_sign}\n{{not json\n[1,2]\n{missing}\n{wrong_type}\n{other_app}\n{}\n",
            line("cid-F", "10010")
        );
        let parsed = parse_body(body.as_bytes(), APP, SECRET, LIMITS).unwrap();
        let numbers: Vec<usize> = parsed.lines.iter().map(|l| l.line_no).collect();
        assert_eq!(numbers, [1, 3, 4, 5, 6, 7, 8, 9]); // line 2 is blank
        let refused: Vec<(usize, &str)> = parsed.refused().map(|(n, e)| (n, e.label())).collect();
        assert_eq!(
            refused,
            [
                (3, "bad_sign"),
                (4, "bad_json"),
                (5, "bad_json"),
                (6, "missing_field"),
                (7, "bad_field"),
                (8, "other_app")
            ]
        );
        assert_eq!(parsed.lines[3].result, Err(LineError::NotAnObject));
        assert_eq!(parsed.lines[4].result, Err(LineError::MissingField("msgid")));
        assert!(matches!(&parsed.lines[5].result, Err(LineError::BadField { field, .. }) if field == "recvtime"));
        let cids: Vec<&str> = parsed.accepted().map(|l| l.cid.as_str()).collect();
        assert_eq!(cids, ["cid-A", "cid-F"]);
        assert_eq!(parsed.refused_count(), 6);
    }

    #[test]
    fn hostile_bytes_never_panic() {
        let bodies: [&[u8]; 6] =
            [b"", b"\n\n\r\n", b"\xff\xfe\n{", b"\xEF\xBB\xBF", b"null\ntrue\n\"x\"", b"{\"appid\":"];
        for body in bodies {
            let parsed = parse_body(body, APP, SECRET, LIMITS).unwrap();
            assert_eq!(parsed.accepted().count(), 0);
        }
        let parsed = parse_body(b"\xff\n", APP, SECRET, LIMITS).unwrap();
        assert_eq!(parsed.lines[0].result, Err(LineError::NotUtf8));
        // A byte-order mark before the first line is not part of it.
        let with_bom = format!("\u{feff}{}", line("cid-A", "0"));
        assert_eq!(parse_body(with_bom.as_bytes(), APP, SECRET, LIMITS).unwrap().accepted().count(), 1);
    }

    #[test]
    fn limits_refuse_the_whole_body() {
        let body = format!("{}\n{}\n{}\n", line("a", "0"), line("b", "0"), line("c", "0"));
        let tight = ReceiptLimits { max_body_bytes: 1 << 20, max_lines: 2 };
        assert_eq!(parse_body(body.as_bytes(), APP, SECRET, tight), Err(BodyError::TooManyLines { max: 2 }));
        // Blank lines do not count toward the line limit.
        let two = format!("\n\n{}\n\n{}\n\n", line("a", "0"), line("b", "0"));
        assert_eq!(parse_body(two.as_bytes(), APP, SECRET, tight).unwrap().lines.len(), 2);
        let small = ReceiptLimits { max_body_bytes: 10, max_lines: 100 };
        assert_eq!(
            parse_body(body.as_bytes(), APP, SECRET, small),
            Err(BodyError::TooLarge { bytes: body.len(), max: 10 })
        );
    }

    #[test]
    fn a_signed_line_serializes_with_the_wire_names() {
        let v: serde_json::Value = serde_json::from_str(&line("cid-A", "10030")).unwrap();
        assert_eq!(v["actionId"], "10030");
        assert_eq!(v["recvtime"], 1_700_000_000_000u64);
        assert_eq!(v["code"], "200");
        assert!(v.get("alias").is_none());
    }
}
