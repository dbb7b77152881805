//! SMS fallback rules with no I/O (issue 13): the campaign setting `sms_fallback` and its
//! validation, the text's length rule, and the cid↔phone binding rules with their per-cid
//! codes (reference `getui-legacy-and-sms.md` §1.6–1.7 and §4.1 points 1 and 3).
//!
//! Validation takes the facts it needs (templates, sign name, the campaign's mode and offline
//! time) as arguments, so config and store stay out of it. [`BindingTable`] is the in-memory
//! model of the one-to-one binding rule that the store follows.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::message::substitute;
use super::phone::PhoneNumber;
use super::{CompactCid, FieldError, Mode};

/// Latest `after_ms`: 3 days, Getui's limit for `offlineSendtime` (§1.6).
pub const MAX_AFTER_MS: u64 = 259_200_000;
/// Most characters of a whole text, signature included: one SMS segment (§1.6, §3.1).
pub const MAX_SMS_CHARS: usize = 70;
/// Offline time assumed when a campaign leaves `ttl_ms` unset. Getui's docs give 2 h or, in
/// older copies, 1 h; the shorter one keeps `after_ms` inside either.
pub const ASSUMED_DEFAULT_TTL_MS: i64 = 3_600_000;
/// Most pairs of one bind call and most cids of one unbind or query call (§1.7).
pub const MAX_CIDS_PER_CALL: usize = 50;

const FIELD: &str = "settings.sms_fallback";

/// `settings.sms_fallback` of a cid-addressed campaign: text the recipients the push did not
/// reach, `after_ms` after the push, with a configured template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsFallback {
    /// Id of a template configured for the app (`[[apps.NAME.sms.templates]]`).
    pub template_id: String,
    /// The template's parameters in order (`{1}`, `{2}`, …); batch_single campaigns may use the
    /// recipients' `${vars}` in them.
    #[serde(default)]
    pub params: Vec<String>,
    /// Delay after the push, in ms, before unreached recipients are texted.
    pub after_ms: u64,
}

/// What validation needs to know about one configured template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsTemplateFacts {
    /// The approved text with numbered placeholders `{1}`, `{2}`, …
    pub text: String,
    /// How many parameters it takes.
    pub placeholders: usize,
}

impl SmsTemplateFacts {
    /// Facts of a template text, counting its placeholders with [`count_placeholders`].
    pub fn from_text(text: impl Into<String>) -> Self {
        let text = text.into();
        let placeholders = count_placeholders(&text);
        SmsTemplateFacts { text, placeholders }
    }
}

/// An app's configured SMS gateway as campaign validation sees it: its templates by id and
/// its sign name (built from `[apps.NAME.sms]`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AppSmsFacts {
    /// Templates by id.
    pub templates: BTreeMap<String, SmsTemplateFacts>,
    /// The approved signature's content.
    pub sign_name: String,
}

impl AppSmsFacts {
    /// Facts of a sign name and `(id, text)` templates.
    pub fn new<'t>(sign_name: &str, templates: impl IntoIterator<Item = (&'t str, &'t str)>) -> Self {
        AppSmsFacts {
            templates: templates
                .into_iter()
                .map(|(id, text)| (id.to_owned(), SmsTemplateFacts::from_text(text)))
                .collect(),
            sign_name: sign_name.to_owned(),
        }
    }
}

/// The facts [`SmsFallback::validate`] judges against.
#[derive(Debug, Clone, Copy)]
pub struct SmsFacts<'a> {
    /// The app's configured templates by id; empty when the app has no SMS configured.
    pub templates: &'a BTreeMap<String, SmsTemplateFacts>,
    /// The app's approved signature content, shown as `【sign】` before the text.
    pub sign_name: &'a str,
    /// The campaign's mode after `auto` is resolved; an unresolved `auto` is judged as `list`,
    /// the stricter of the two.
    pub mode: Mode,
    /// The campaign's `settings.ttl_ms` (−1: no offline storage; unset: Getui's default).
    pub ttl_ms: Option<i64>,
    /// The campaign's `settings.offline` (unset: on).
    pub offline: Option<bool>,
}

impl SmsFallback {
    /// Checks the setting as Getui's legacy rules say (§1.6), in this order: a cid-addressed
    /// campaign, a configured template, one parameter per placeholder, `${vars}` only where
    /// recipients have them, offline storage on, `after_ms` within the offline time and 3 days,
    /// and, when no parameter uses a variable, the whole text ≤ 70 characters.
    pub fn validate(&self, facts: &SmsFacts<'_>) -> Result<(), FieldError> {
        if facts.mode == Mode::App {
            return Err(FieldError::new(
                FIELD,
                "app campaigns address no cids, so no push answer or binding tells who was not reached: \
                 use sms_fallback with batch_single or list",
            ));
        }
        let template = self.template(facts)?;
        if facts.sign_name.trim().is_empty() {
            return Err(FieldError::new(FIELD, "the app's SMS sign name is empty: set it in [apps.NAME.sms]"));
        }
        if self.params.len() != template.placeholders {
            return Err(FieldError::new(
                format!("{FIELD}.params"),
                format!(
                    "template {} has {} placeholders ({{1}}..{{{}}}); give exactly that many params, not {}",
                    self.template_id,
                    template.placeholders,
                    template.placeholders,
                    self.params.len()
                ),
            ));
        }
        for (i, p) in self.params.iter().enumerate() {
            check_param(p, facts.mode).map_err(|m| FieldError::new(format!("{FIELD}.params[{i}]"), m))?;
        }
        self.check_timing(facts)?;
        if !self.has_variables() {
            let text = render_text(facts.sign_name, &template.text, &self.params);
            check_length(&text).map_err(|e| FieldError::new(format!("{FIELD}.params"), e.to_string()))?;
        }
        Ok(())
    }

    fn template<'f>(&self, facts: &SmsFacts<'f>) -> Result<&'f SmsTemplateFacts, FieldError> {
        let field = || format!("{FIELD}.template_id");
        if self.template_id.trim().is_empty() {
            return Err(FieldError::new(field(), "is empty: give the id of a template configured for the app"));
        }
        if facts.templates.is_empty() {
            return Err(FieldError::new(
                field(),
                "this app has no SMS configured: add [apps.NAME.sms] and its [[apps.NAME.sms.templates]]",
            ));
        }
        facts.templates.get(&self.template_id).ok_or_else(|| {
            let known: Vec<&str> = facts.templates.keys().take(10).map(String::as_str).collect();
            FieldError::new(
                field(),
                format!(
                    "template {:?} is not configured for this app (configured: {})",
                    self.template_id,
                    known.join(", ")
                ),
            )
        })
    }

    fn check_timing(&self, facts: &SmsFacts<'_>) -> Result<(), FieldError> {
        if facts.offline == Some(false) || facts.ttl_ms == Some(-1) {
            return Err(FieldError::new(
                "settings.offline",
                "sms_fallback texts those the push has not reached within the offline time, so offline storage \
                 must be on: set offline to true",
            ));
        }
        let field = format!("{FIELD}.after_ms");
        if self.after_ms > MAX_AFTER_MS {
            return Err(FieldError::new(field, format!("must be at most {MAX_AFTER_MS} (3 days), Getui's limit")));
        }
        let (ttl, which) = match facts.ttl_ms {
            Some(t) => (t, "settings.ttl_ms"),
            None => (ASSUMED_DEFAULT_TTL_MS, "the default offline time (1 h; set settings.ttl_ms for longer)"),
        };
        if i64::try_from(self.after_ms).map_or(true, |a| a > ttl) {
            return Err(FieldError::new(
                field,
                format!("{} ms is past the offline time: at most {ttl} ms, {which}", self.after_ms),
            ));
        }
        Ok(())
    }

    /// True when a parameter uses a recipient's `${var}`: the text's length is then known only
    /// per recipient, at send time.
    pub fn has_variables(&self) -> bool {
        self.params.iter().any(|p| p.contains("${"))
    }

    /// The parameters for one recipient, `${var}`s replaced by `vars` (unknown ones by nothing,
    /// as in push messages).
    pub fn params_for<'v>(&self, vars: &dyn Fn(&str) -> Option<&'v str>) -> Vec<String> {
        self.params.iter().map(|p| substitute(p, vars)).collect()
    }
}

/// A parameter's `${...}` syntax, and variables only in batch_single campaigns.
fn check_param(p: &str, mode: Mode) -> Result<(), String> {
    let mut rest = p;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err("has a ${ without its closing }".into());
        };
        if after[..end].trim().is_empty() {
            return Err("has an empty ${} variable".into());
        }
        if mode != Mode::BatchSingle {
            return Err(format!(
                "uses ${{{}}}, but only batch_single campaigns carry per-recipient variables",
                &after[..end]
            ));
        }
        rest = &after[end + 1..];
    }
    Ok(())
}

/// How many parameters a template text takes: its highest numbered placeholder `{n}` (Tencent
/// numbers them from 1, in order). A text with no placeholder takes none.
pub fn count_placeholders(text: &str) -> usize {
    placeholders(text).map(|(_, _, n)| n).max().unwrap_or(0)
}

/// Every `{n}` of `text` with n ≥ 1: (byte start, byte end, n).
fn placeholders(text: &str) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
    text.match_indices('{').filter_map(move |(start, _)| {
        let after = &text[start + 1..];
        let end = after.find('}')?;
        let digits = &after[..end];
        let n: usize = if !digits.is_empty() && digits.len() <= 3 && digits.bytes().all(|b| b.is_ascii_digit()) {
            digits.parse().ok()?
        } else {
            return None;
        };
        (n >= 1).then_some((start, start + 1 + end + 1, n))
    })
}

/// The whole text as the phone shows it: `【sign】` then the template with `{n}` replaced by
/// `params[n-1]`. A placeholder without a parameter is left as written, so a mismatch shows.
pub fn render_text(sign_name: &str, template_text: &str, params: &[String]) -> String {
    let mut out = format!("【{sign_name}】");
    let mut copied = 0;
    for (start, end, n) in placeholders(template_text) {
        if let Some(value) = params.get(n - 1) {
            out.push_str(&template_text[copied..start]);
            out.push_str(value);
            copied = end;
        }
    }
    out.push_str(&template_text[copied..]);
    out
}

/// A text over one SMS segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the text would be {chars} characters with its signature; at most {MAX_SMS_CHARS} (one SMS)")]
pub struct TextTooLong {
    /// Characters of the whole text.
    pub chars: usize,
}

/// Checks a whole rendered text (signature included) against the 70-character rule. Every
/// character counts one, Chinese or not (§3.1), so this counts chars, not bytes.
pub fn check_length(text: &str) -> Result<(), TextTooLong> {
    let chars = text.chars().count();
    if chars > MAX_SMS_CHARS {
        Err(TextTooLong { chars })
    } else {
        Ok(())
    }
}

/// The per-cid codes of bind, unbind and query (§1.7, 0–8 as Getui defined them).
///
/// campaignd answers 0, 1 (only for a cid that is not 32 hex digits and so cannot exist), 5, 6,
/// 7 and 8 (a failure of its own, e.g. the store). It never answers 2, 3 or 4: it does not ask
/// Getui which app a cid belongs to, and it has no notion of binding level or cid activity, so
/// the latest bind of a phone wins (§4.1 point 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "u8", try_from = "u8")]
#[repr(u8)]
pub enum BindCode {
    /// 0: done.
    Ok = 0,
    /// 1: the cid does not exist (campaignd: it is not a well-formed cid).
    CidUnknown = 1,
    /// 2: the cid belongs to another app (never produced by campaignd).
    CidOfAnotherApp = 2,
    /// 3: a lower-level binding cannot be overwritten (meaning unconfirmed; never produced).
    LowerLevelBinding = 3,
    /// 4: the phone is bound to a more active cid of the app (never produced: latest bind wins).
    PhoneOnMoreActiveCid = 4,
    /// 5: the cid is empty.
    CidEmpty = 5,
    /// 6: the phone number is empty or not a number campaignd can text.
    PhoneEmpty = 6,
    /// 7: the cid has no phone bound (unbind, query).
    NotBound = 7,
    /// 8: any other failure.
    Other = 8,
}

impl BindCode {
    /// The number on the wire.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// True for the codes campaignd can answer (see the type's doc).
    pub fn produced_by_campaignd(self) -> bool {
        !matches!(self, BindCode::CidOfAnotherApp | BindCode::LowerLevelBinding | BindCode::PhoneOnMoreActiveCid)
    }
}

impl From<BindCode> for u8 {
    fn from(c: BindCode) -> u8 {
        c.code()
    }
}

impl TryFrom<u8> for BindCode {
    type Error = String;

    fn try_from(n: u8) -> Result<Self, String> {
        Ok(match n {
            0 => BindCode::Ok,
            1 => BindCode::CidUnknown,
            2 => BindCode::CidOfAnotherApp,
            3 => BindCode::LowerLevelBinding,
            4 => BindCode::PhoneOnMoreActiveCid,
            5 => BindCode::CidEmpty,
            6 => BindCode::PhoneEmpty,
            7 => BindCode::NotBound,
            8 => BindCode::Other,
            n => return Err(format!("{n} is not a binding code (0-8)")),
        })
    }
}

/// A refused cid or pair: its code and, for people, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindRefusal {
    /// The code.
    pub code: BindCode,
    /// Why, never quoting a phone number.
    pub reason: String,
}

/// The cid of a bind, unbind or query entry: empty → 5; not 32 hex digits → 1 (such a cid
/// cannot exist). Spaces around it are ignored and upper-case hex folded, as in uploads.
pub fn check_cid(cid: &str) -> Result<CompactCid, BindRefusal> {
    let cid = cid.trim();
    if cid.is_empty() {
        return Err(BindRefusal { code: BindCode::CidEmpty, reason: "cid is empty".into() });
    }
    CompactCid::parse(&cid.to_ascii_lowercase()).ok_or_else(|| BindRefusal {
        code: BindCode::CidUnknown,
        reason: "not a Getui cid (32 hex digits), so it cannot exist".into(),
    })
}

/// The code of one (cid, phone) pair of a bind call before any table is looked at: the cid
/// first (5, 1), then the phone.
///
/// An unparseable phone answers 6, like an empty one: for campaignd a pn is usable only as a
/// number it can text, so "no usable pn" is what 6 means; 8 stays for campaignd's own
/// failures, which the caller may retry, while a 6 needs new input. The reason says what is
/// wrong with the number.
pub fn check_bind_pair(cid: &str, phone: &str) -> Result<(CompactCid, PhoneNumber), BindRefusal> {
    let cid = check_cid(cid)?;
    let phone = PhoneNumber::parse(phone)
        .map_err(|e| BindRefusal { code: BindCode::PhoneEmpty, reason: format!("phone number {e}") })?;
    Ok((cid, phone))
}

/// A call with more than [`MAX_CIDS_PER_CALL`] entries: refused as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{given} entries in one call; at most {MAX_CIDS_PER_CALL}")]
pub struct TooManyCids {
    /// Entries given.
    pub given: usize,
}

/// Refuses a call of more than [`MAX_CIDS_PER_CALL`] entries.
pub fn check_call_size(given: usize) -> Result<(), TooManyCids> {
    if given > MAX_CIDS_PER_CALL {
        Err(TooManyCids { given })
    } else {
        Ok(())
    }
}

/// The answer for one entry of a bind or unbind call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindAnswer {
    /// The cid as given.
    pub cid: String,
    /// Its code.
    pub code: BindCode,
    /// Why, when the code is not 0.
    pub reason: Option<String>,
    /// On a bind: the cid the phone was bound to until now, which this bind unbound.
    pub displaced: Option<CompactCid>,
}

/// The answer for one cid of a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryAnswer {
    /// The cid as given.
    pub cid: String,
    /// 0, or why there is no number.
    pub code: BindCode,
    /// The bound number, masked (`138****5678`), when the code is 0.
    pub masked: Option<String>,
}

/// The one-to-one binding rule of one app in memory: each cid has at most one phone and each
/// phone at most one cid. It specifies what the store does:
///
/// - bind (cid, phone): 0; a phone bound to another cid moves to this one (the other cid is
///   unbound and named in [`BindAnswer::displaced`]); a cid bound to another phone gets the new
///   one; binding a pair again changes nothing and answers 0;
/// - unbind cid: 0 when it was bound, else 7;
/// - query cid: 0 with the masked number, else 7;
/// - every call: entries in order, each answered on its own; more than 50 refused whole.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BindingTable {
    by_cid: BTreeMap<CompactCid, PhoneNumber>,
    by_phone: BTreeMap<PhoneNumber, CompactCid>,
}

impl BindingTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies a bind call of (cid, phone) pairs.
    pub fn bind(&mut self, pairs: &[(&str, &str)]) -> Result<Vec<BindAnswer>, TooManyCids> {
        check_call_size(pairs.len())?;
        Ok(pairs
            .iter()
            .map(|&(cid_text, phone_text)| match check_bind_pair(cid_text, phone_text) {
                Err(r) => answer(cid_text, r.code, Some(r.reason)),
                Ok((cid, phone)) => {
                    let displaced = self.bind_one(cid, phone);
                    BindAnswer { displaced, ..answer(cid_text, BindCode::Ok, None) }
                }
            })
            .collect())
    }

    /// Binds one pair; returns the cid the phone leaves, if another.
    fn bind_one(&mut self, cid: CompactCid, phone: PhoneNumber) -> Option<CompactCid> {
        if self.by_cid.get(&cid) == Some(&phone) {
            return None;
        }
        let displaced = self.by_phone.remove(&phone).inspect(|old_cid| {
            self.by_cid.remove(old_cid);
        });
        if let Some(old_phone) = self.by_cid.insert(cid, phone.clone()) {
            self.by_phone.remove(&old_phone);
        }
        self.by_phone.insert(phone, cid);
        displaced
    }

    /// Applies an unbind call.
    pub fn unbind(&mut self, cids: &[&str]) -> Result<Vec<BindAnswer>, TooManyCids> {
        check_call_size(cids.len())?;
        Ok(cids
            .iter()
            .map(|&cid_text| match check_cid(cid_text) {
                Err(r) => answer(cid_text, r.code, Some(r.reason)),
                Ok(cid) => match self.by_cid.remove(&cid) {
                    Some(phone) => {
                        self.by_phone.remove(&phone);
                        answer(cid_text, BindCode::Ok, None)
                    }
                    None => answer(cid_text, BindCode::NotBound, Some("no phone is bound to this cid".into())),
                },
            })
            .collect())
    }

    /// Answers a query call.
    pub fn query(&self, cids: &[&str]) -> Result<Vec<QueryAnswer>, TooManyCids> {
        check_call_size(cids.len())?;
        Ok(cids
            .iter()
            .map(|&cid_text| {
                let (code, masked) = match check_cid(cid_text) {
                    Err(r) => (r.code, None),
                    Ok(cid) => match self.by_cid.get(&cid) {
                        Some(phone) => (BindCode::Ok, Some(phone.masked())),
                        None => (BindCode::NotBound, None),
                    },
                };
                QueryAnswer { cid: cid_text.to_owned(), code, masked }
            })
            .collect())
    }

    /// The phone bound to `cid`.
    pub fn phone_of(&self, cid: &CompactCid) -> Option<&PhoneNumber> {
        self.by_cid.get(cid)
    }

    /// The cid `phone` is bound to.
    pub fn cid_of(&self, phone: &PhoneNumber) -> Option<&CompactCid> {
        self.by_phone.get(phone)
    }

    /// Number of bindings.
    pub fn len(&self) -> usize {
        self.by_cid.len()
    }

    /// True when nothing is bound.
    pub fn is_empty(&self) -> bool {
        self.by_cid.is_empty()
    }

    /// True when the two maps mirror each other (the one-to-one invariant).
    pub fn is_consistent(&self) -> bool {
        self.by_cid.len() == self.by_phone.len() && self.by_cid.iter().all(|(c, p)| self.by_phone.get(p) == Some(c))
    }
}

fn answer(cid: &str, code: BindCode, reason: Option<String>) -> BindAnswer {
    BindAnswer { cid: cid.to_owned(), code, reason, displaced: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn templates() -> BTreeMap<String, SmsTemplateFacts> {
        [
            ("1000".to_owned(), SmsTemplateFacts::from_text("您的订单{1}已发货,请留意查收。")),
            ("2000".to_owned(), SmsTemplateFacts::from_text("尊敬的{1},你的余额还剩{2}元,请尽快充值。")),
            ("3000".to_owned(), SmsTemplateFacts::from_text("Fixed text, no placeholder.")),
        ]
        .into_iter()
        .collect()
    }

    fn facts(templates: &BTreeMap<String, SmsTemplateFacts>, mode: Mode) -> SmsFacts<'_> {
        SmsFacts { templates, sign_name: "腾讯云", mode, ttl_ms: Some(86_400_000), offline: None }
    }

    fn fallback(template_id: &str, params: &[&str], after_ms: u64) -> SmsFallback {
        SmsFallback {
            template_id: template_id.into(),
            params: params.iter().map(|p| p.to_string()).collect(),
            after_ms,
        }
    }

    fn field_of(r: Result<(), FieldError>) -> String {
        r.unwrap_err().field
    }

    #[test]
    fn serde_uses_the_documented_names_and_refuses_unknown_ones() {
        let s: SmsFallback =
            serde_json::from_str(r#"{"template_id":"2000","params":["${name}","12"],"after_ms":60000}"#).unwrap();
        assert_eq!(s, fallback("2000", &["${name}", "12"], 60_000));
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            serde_json::json!({"template_id": "2000", "params": ["${name}", "12"], "after_ms": 60000})
        );
        let no_params: SmsFallback = serde_json::from_str(r#"{"template_id":"3000","after_ms":0}"#).unwrap();
        assert!(no_params.params.is_empty());
        assert!(serde_json::from_str::<SmsFallback>(r#"{"template_id":"1","after_ms":1,"delay_ms":2}"#).is_err());
        assert!(serde_json::from_str::<SmsFallback>(r#"{"template_id":"1","after_ms":-1}"#).is_err());
    }

    #[test]
    fn a_good_setting_passes_in_both_cid_modes() {
        let t = templates();
        assert_eq!(fallback("2000", &["张三", "12"], 60_000).validate(&facts(&t, Mode::List)), Ok(()));
        assert_eq!(fallback("2000", &["${name}", "12"], 60_000).validate(&facts(&t, Mode::BatchSingle)), Ok(()));
        assert_eq!(fallback("3000", &[], 0).validate(&facts(&t, Mode::Auto)), Ok(()));
    }

    #[test]
    fn app_campaigns_are_refused_with_a_reason() {
        let t = templates();
        let e = fallback("2000", &["a", "b"], 1).validate(&facts(&t, Mode::App)).unwrap_err();
        assert_eq!(e.field, "settings.sms_fallback");
        assert!(e.message.contains("batch_single or list"), "{e}");
    }

    #[test]
    fn the_template_must_be_configured() {
        let t = templates();
        let e = fallback("9999", &[], 1).validate(&facts(&t, Mode::List)).unwrap_err();
        assert_eq!(e.field, "settings.sms_fallback.template_id");
        assert!(e.message.contains("not configured") && e.message.contains("1000, 2000, 3000"), "{e}");
        assert_eq!(
            field_of(fallback(" ", &[], 1).validate(&facts(&t, Mode::List))),
            "settings.sms_fallback.template_id"
        );
        let none = BTreeMap::new();
        let e = fallback("1000", &["x"], 1).validate(&facts(&none, Mode::List)).unwrap_err();
        assert!(e.message.contains("no SMS configured"), "{e}");
        let mut f = facts(&t, Mode::List);
        f.sign_name = "";
        assert_eq!(field_of(fallback("3000", &[], 1).validate(&f)), "settings.sms_fallback");
    }

    #[test]
    fn params_must_match_the_placeholders() {
        let t = templates();
        let e = fallback("2000", &["only one"], 1).validate(&facts(&t, Mode::List)).unwrap_err();
        assert_eq!(e.field, "settings.sms_fallback.params");
        assert!(e.message.contains("2 placeholders") && e.message.contains("not 1"), "{e}");
        assert!(fallback("3000", &["extra"], 1).validate(&facts(&t, Mode::List)).is_err());
    }

    #[test]
    fn variables_need_batch_single_and_well_formed_syntax() {
        let t = templates();
        for mode in [Mode::List, Mode::Auto] {
            let e = fallback("2000", &["${name}", "12"], 1).validate(&facts(&t, mode)).unwrap_err();
            assert_eq!(e.field, "settings.sms_fallback.params[0]");
            assert!(e.message.contains("batch_single"), "{e}");
        }
        let bs = facts(&t, Mode::BatchSingle);
        assert_eq!(field_of(fallback("2000", &["x", "${money"], 1).validate(&bs)), "settings.sms_fallback.params[1]");
        assert_eq!(field_of(fallback("2000", &["${ }", "1"], 1).validate(&bs)), "settings.sms_fallback.params[0]");
    }

    #[test]
    fn after_ms_stays_within_the_offline_time_and_three_days() {
        let t = templates();
        let ok = |after_ms, ttl_ms| {
            let f = SmsFacts { ttl_ms, ..facts(&t, Mode::List) };
            fallback("3000", &[], after_ms).validate(&f)
        };
        assert_eq!(ok(86_400_000, Some(86_400_000)), Ok(()));
        assert_eq!(field_of(ok(86_400_001, Some(86_400_000))), "settings.sms_fallback.after_ms");
        assert_eq!(ok(MAX_AFTER_MS, Some(259_200_000)), Ok(()));
        let e = ok(MAX_AFTER_MS + 1, Some(259_200_000)).unwrap_err();
        assert!(e.field.ends_with("after_ms") && e.message.contains("3 days"), "{e}");
        assert_eq!(field_of(ok(u64::MAX, Some(259_200_000))), "settings.sms_fallback.after_ms");
        // Unset ttl: Getui's shorter documented default, 1 h.
        assert_eq!(ok(3_600_000, None), Ok(()));
        assert!(ok(3_600_001, None).unwrap_err().message.contains("default offline time"));
        // Offline storage off, either way it is written.
        assert_eq!(field_of(ok(1, Some(-1))), "settings.offline");
        let f = SmsFacts { offline: Some(false), ttl_ms: None, ..facts(&t, Mode::List) };
        assert_eq!(field_of(fallback("3000", &[], 1).validate(&f)), "settings.offline");
    }

    #[test]
    fn static_texts_over_70_characters_are_refused_counting_chars() {
        let t = templates();
        // 【腾讯云】 (5) + template 2000 without its placeholders (18) = 23 chars before params.
        let base = render_text("腾讯云", &t["2000"].text, &["".into(), "".into()]).chars().count();
        assert_eq!(base, 23);
        let name_fits = "张".repeat(MAX_SMS_CHARS - base - 2);
        assert_eq!(fallback("2000", &[&name_fits, "12"], 1).validate(&facts(&t, Mode::List)), Ok(()));
        let name_over = "张".repeat(MAX_SMS_CHARS - base - 1);
        let e = fallback("2000", &[&name_over, "12"], 1).validate(&facts(&t, Mode::List)).unwrap_err();
        assert_eq!(e.field, "settings.sms_fallback.params");
        assert!(e.message.contains("71 characters"), "{e}");
        // 70 chars of Chinese are 210 bytes: bytes are not what counts.
        assert!(name_fits.len() > MAX_SMS_CHARS);
        // With variables the length is a send-time matter.
        let long_var = format!("${{name}}{}", "x".repeat(60));
        assert_eq!(fallback("2000", &[&long_var, "1"], 1).validate(&facts(&t, Mode::BatchSingle)), Ok(()));
    }

    #[test]
    fn rendering_replaces_numbered_placeholders_only() {
        let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(render_text("S", "Hi {1}, {2} left", &p(&["Li", "12"])), "【S】Hi Li, 12 left");
        assert_eq!(render_text("S", "{2}{1}{2}", &p(&["a", "b"])), "【S】bab");
        assert_eq!(render_text("S", "{0} {x} {} {1", &p(&["a"])), "【S】{0} {x} {} {1");
        assert_eq!(render_text("S", "{1} {3}", &p(&["a"])), "【S】a {3}");
        assert_eq!(count_placeholders("尊敬的{1},余额{2}"), 2);
        assert_eq!(count_placeholders("{3} only"), 3);
        assert_eq!(count_placeholders("none {} {a} {0}"), 0);
        assert_eq!(check_length(&"字".repeat(70)), Ok(()));
        assert_eq!(check_length(&"字".repeat(71)), Err(TextTooLong { chars: 71 }));
    }

    #[test]
    fn params_for_a_recipient_fill_its_variables() {
        let s = fallback("2000", &["${name}", "${money}元"], 1);
        assert!(s.has_variables());
        let vars = |k: &str| (k == "name").then_some("王五");
        assert_eq!(s.params_for(&vars), ["王五", "元"]);
        assert!(!fallback("3000", &[], 1).has_variables());
    }

    const CID_A: &str = "0123456789abcdef0123456789abcdef";
    const CID_B: &str = "fedcba9876543210fedcba9876543210";
    const CID_C: &str = "00000000000000000000000000000001";

    fn cid(s: &str) -> CompactCid {
        CompactCid::parse(s).unwrap()
    }

    fn codes(answers: &[BindAnswer]) -> Vec<u8> {
        answers.iter().map(|a| a.code.code()).collect()
    }

    #[test]
    fn bind_codes_number_0_to_8_and_serialize_as_numbers() {
        for n in 0..=8u8 {
            let c = BindCode::try_from(n).unwrap();
            assert_eq!(c.code(), n);
            assert_eq!(serde_json::to_string(&c).unwrap(), n.to_string());
        }
        assert!(BindCode::try_from(9).is_err());
        let produced: Vec<u8> = (0..=8).filter(|&n| BindCode::try_from(n).unwrap().produced_by_campaignd()).collect();
        assert_eq!(produced, [0, 1, 5, 6, 7, 8]);
    }

    #[test]
    fn a_pair_is_judged_cid_first_then_phone() {
        let code = |c: &str, p: &str| check_bind_pair(c, p).map(|_| 0).unwrap_or_else(|r| r.code.code());
        assert_eq!(code(CID_A, "13800000000"), 0);
        assert_eq!(code(&CID_A.to_uppercase(), " +86 138 0000 0000 "), 0);
        assert_eq!(code("", "13800000000"), 5);
        assert_eq!(code("  ", ""), 5);
        assert_eq!(code("not-a-cid", "13800000000"), 1);
        assert_eq!(code(CID_A, ""), 6);
        assert_eq!(code(CID_A, "1380000abcd"), 6);
        assert_eq!(code(CID_A, "12800000000"), 6);
        let r = check_bind_pair(CID_A, "1380000567").unwrap_err();
        assert!(r.reason.starts_with("phone number has 10 digits"), "{}", r.reason);
        assert!(!r.reason.contains("567"));
    }

    #[test]
    fn binding_is_one_to_one_and_the_latest_bind_of_a_phone_wins() {
        let mut t = BindingTable::new();
        let a = t.bind(&[(CID_A, "13800000001"), (CID_B, "13800000002")]).unwrap();
        assert_eq!(codes(&a), [0, 0]);
        assert_eq!(t.len(), 2);
        // Binding A's phone to C moves it: A is unbound and named as displaced.
        let moved = t.bind(&[(CID_C, "+86 138 0000 0001")]).unwrap();
        assert_eq!(codes(&moved), [0]);
        assert_eq!(moved[0].displaced, Some(cid(CID_A)));
        assert_eq!(t.phone_of(&cid(CID_A)), None);
        assert_eq!(t.cid_of(&PhoneNumber::parse("13800000001").unwrap()), Some(&cid(CID_C)));
        let q = t.query(&[CID_A, CID_C]).unwrap();
        assert_eq!((q[0].code, q[0].masked.as_deref()), (BindCode::NotBound, None));
        assert_eq!((q[1].code, q[1].masked.as_deref()), (BindCode::Ok, Some("138****0001")));
        // A cid bound anew drops its old phone, which becomes free.
        t.bind(&[(CID_B, "13900000009")]).unwrap();
        assert_eq!(t.cid_of(&PhoneNumber::parse("13800000002").unwrap()), None);
        assert_eq!(t.len(), 2);
        // The same pair again: 0, nothing displaced, nothing changed.
        let before = t.clone();
        let again = t.bind(&[(CID_B, "13900000009")]).unwrap();
        assert_eq!((again[0].code, again[0].displaced), (BindCode::Ok, None));
        assert_eq!(t, before);
        assert!(t.is_consistent());
    }

    #[test]
    fn a_call_answers_each_entry_in_order_and_refuses_bad_ones_alone() {
        let mut t = BindingTable::new();
        let a = t.bind(&[(CID_A, "13800000001"), ("", "13800000002"), (CID_B, ""), (CID_C, "x"), ("zz", "1")]).unwrap();
        assert_eq!(codes(&a), [0, 5, 6, 6, 1]);
        assert_eq!(a.iter().map(|x| x.cid.as_str()).collect::<Vec<_>>(), [CID_A, "", CID_B, CID_C, "zz"]);
        assert!(a[0].reason.is_none() && a[2].reason.is_some());
        assert_eq!(t.len(), 1);
        // Within one call later entries see earlier ones: the phone moves A → B → C.
        let chain = t.bind(&[(CID_B, "13800000001"), (CID_C, "13800000001")]).unwrap();
        assert_eq!(chain[0].displaced, Some(cid(CID_A)));
        assert_eq!(chain[1].displaced, Some(cid(CID_B)));
        assert_eq!(t.len(), 1);
        assert!(t.is_consistent());
    }

    #[test]
    fn unbind_and_query_answer_7_for_unbound_cids() {
        let mut t = BindingTable::new();
        t.bind(&[(CID_A, "13800000001")]).unwrap();
        let u = t.unbind(&[CID_A, CID_A, CID_B, "", "bad"]).unwrap();
        assert_eq!(codes(&u), [0, 7, 7, 5, 1]);
        assert!(t.is_empty());
        // The phone is free again.
        t.bind(&[(CID_B, "13800000001")]).unwrap();
        assert_eq!(t.bind(&[(CID_B, "13800000001")]).unwrap()[0].displaced, None);
        let q = t.query(&["", CID_A, CID_B]).unwrap();
        assert_eq!(q.iter().map(|x| x.code.code()).collect::<Vec<_>>(), [5, 7, 0]);
        assert!(t.is_consistent());
    }

    #[test]
    fn calls_over_50_entries_are_refused_whole() {
        let mut t = BindingTable::new();
        let cids: Vec<String> = (0..51).map(|i| format!("{i:032x}")).collect();
        let pairs: Vec<(&str, &str)> = cids.iter().map(|c| (c.as_str(), "13800000001")).collect();
        assert_eq!(t.bind(&pairs), Err(TooManyCids { given: 51 }));
        assert!(t.is_empty());
        assert_eq!(codes(&t.bind(&pairs[..50]).unwrap()).len(), 50);
        // 50 binds of one phone leave it on the last cid.
        assert_eq!(t.len(), 1);
        assert_eq!(t.phone_of(&cid(&cids[49])).map(|p| p.masked()), Some("138****0001".into()));
        let refs: Vec<&str> = cids.iter().map(String::as_str).collect();
        assert_eq!(t.unbind(&refs).unwrap_err().to_string(), "51 entries in one call; at most 50");
        assert!(t.query(&refs[..50]).is_ok());
    }

    #[test]
    fn random_calls_keep_the_table_one_to_one() {
        // A model check: many random binds and unbinds over few cids and phones.
        let mut rng = fastrand::Rng::with_seed(13);
        let cids: Vec<String> = (0..6).map(|i| format!("{i:032x}")).collect();
        let phones: Vec<String> = (0..4).map(|i| format!("1380000000{i}")).collect();
        let mut t = BindingTable::new();
        for _ in 0..2000 {
            let c = &cids[rng.usize(..cids.len())];
            if rng.bool() {
                t.bind(&[(c, &phones[rng.usize(..phones.len())])]).unwrap();
            } else {
                t.unbind(&[c]).unwrap();
            }
            assert!(t.is_consistent());
            assert!(t.len() <= phones.len());
        }
    }
}
