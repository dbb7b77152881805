//! Tencent SMS templates as text: numbered placeholders `{1}`, `{2}`…, rendering with the
//! ordered `TemplateParamSet`, the signature `【…】` and the character and segment counts that
//! decide the fee and Getui's one-segment rule.
//!
//! Source: `shared/reference/getui-legacy-and-sms.md` §3.1 ("Limits and content rules": every
//! character counts 1, the signature included; ≤ 70 is one segment, longer texts are billed in
//! 67-character segments) and §1.6 (the whole text ≤ 70 characters for Getui's fallback).

/// Longest text billed as one segment, signature included, in characters.
pub const SINGLE_SEGMENT_CHARS: usize = 70;
/// Characters per billed segment of a long text.
pub const LONG_SEGMENT_CHARS: usize = 67;

/// Why a template text is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// `{0}` or a number too large to be a parameter index.
    #[error("placeholder {{{0}}} is not a parameter number (they start at 1)")]
    BadNumber(String),
    /// Placeholders must be numbered 1..=n with none left out.
    #[error("placeholders are numbered 1..={highest} but {{{missing}}} is missing")]
    Gap {
        /// The highest number used.
        highest: usize,
        /// The first number not used.
        missing: usize,
    },
}

/// Why a template could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// The template itself is bad.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// `TemplateParamSet` must hold exactly one value per placeholder number.
    #[error("the template takes {expected} parameters, {given} given")]
    ParamCount {
        /// Placeholders of the template.
        expected: usize,
        /// Values given.
        given: usize,
    },
}

/// One piece of a template: literal text or the (1-based) parameter number.
enum Piece<'a> {
    Text(&'a str),
    Param(usize),
}

/// Splits `text` into literal pieces and `{digits}` placeholders; other braces are literal.
fn pieces(text: &str) -> Result<Vec<Piece<'_>>, TemplateError> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && after.as_bytes().get(digits) == Some(&b'}') {
            let number = &after[..digits];
            let n = number.parse::<usize>().ok().filter(|n| (1..=99).contains(n));
            let n = n.ok_or_else(|| TemplateError::BadNumber(number.to_owned()))?;
            out.push(Piece::Text(&rest[..open]));
            out.push(Piece::Param(n));
            rest = &after[digits + 1..];
        } else {
            out.push(Piece::Text(&rest[..=open]));
            rest = after;
        }
    }
    out.push(Piece::Text(rest));
    Ok(out)
}

/// The number of parameters `text` takes: its highest placeholder number, after checking that
/// every number from 1 up to it is used (a number may appear more than once).
pub fn param_count(text: &str) -> Result<usize, TemplateError> {
    let used: std::collections::BTreeSet<usize> =
        pieces(text)?.into_iter().filter_map(|p| if let Piece::Param(n) = p { Some(n) } else { None }).collect();
    let highest = used.last().copied().unwrap_or(0);
    match (1..=highest).find(|n| !used.contains(n)) {
        Some(missing) => Err(TemplateError::Gap { highest, missing }),
        None => Ok(highest),
    }
}

/// The template's text with `{i}` replaced by `params[i-1]`; the number of values must equal
/// [`param_count`], as SendSms requires.
pub fn render(text: &str, params: &[String]) -> Result<String, RenderError> {
    let expected = param_count(text)?;
    if params.len() != expected {
        return Err(RenderError::ParamCount { expected, given: params.len() });
    }
    let mut out = String::with_capacity(text.len() + params.iter().map(String::len).sum::<usize>());
    for piece in pieces(text)? {
        match piece {
            Piece::Text(t) => out.push_str(t),
            // 1 ≤ n ≤ expected = params.len(), checked above.
            Piece::Param(n) => out.push_str(params.get(n - 1).map_or("", String::as_str)),
        }
    }
    Ok(out)
}

/// The text as the phone shows it: `【SignName】` before the rendered template.
pub fn with_signature(sign_name: &str, text: &str) -> String {
    format!("【{sign_name}】{text}")
}

/// Characters as Tencent counts them for domestic texts: every character 1, Chinese or not,
/// punctuation and spaces included.
pub fn char_count(text: &str) -> usize {
    text.chars().count()
}

/// Billed segments (the `Fee`) of a text of `chars` characters: one up to 70, else one per 67
/// started (150 → 67 + 67 + 16 = 3). An empty text is 0.
pub fn segments(chars: usize) -> u32 {
    let n = match chars {
        0 => 0,
        1..=SINGLE_SEGMENT_CHARS => 1,
        _ => chars.div_ceil(LONG_SEGMENT_CHARS),
    };
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn placeholders_are_numbered_without_gaps() {
        assert_eq!(param_count("尊敬的{1}，你的余额还剩{2}元"), Ok(2));
        assert_eq!(param_count("no params, {braces} and {} stay"), Ok(0));
        assert_eq!(param_count("{2} then {1} then {1}"), Ok(2), "order and repeats are free");
        assert_eq!(param_count("{1} and {3}"), Err(TemplateError::Gap { highest: 3, missing: 2 }));
        assert_eq!(param_count("{0}"), Err(TemplateError::BadNumber("0".into())));
        assert!(param_count("{100}").is_err());
    }

    #[test]
    fn rendering_fills_numbered_values_and_checks_their_count() {
        let t = "尊敬的{1}，你的余额还剩{2}元，{1}请尽快充值。";
        assert_eq!(render(t, &strings(&["张三", "12"])).unwrap(), "尊敬的张三，你的余额还剩12元，张三请尽快充值。");
        assert_eq!(render(t, &strings(&["张三"])), Err(RenderError::ParamCount { expected: 2, given: 1 }));
        assert_eq!(render("{x}{", &[]).unwrap(), "{x}{");
        // A value that looks like a placeholder is not expanded again.
        assert_eq!(render("a{1}b", &strings(&["{1}"])).unwrap(), "a{1}b");
    }

    #[test]
    fn every_character_counts_one_and_segments_are_70_then_67() {
        let text = with_signature("腾讯云", "您的验证码是 1234, ok!");
        assert_eq!(text, "【腾讯云】您的验证码是 1234, ok!");
        assert_eq!(char_count(&text), 21);
        assert_eq!((segments(0), segments(1), segments(70)), (0, 1, 1));
        assert_eq!((segments(71), segments(134), segments(135), segments(150)), (2, 2, 3, 3));
    }
}
