//! Clients of the push vendors. Each vendor gets a folder with its wire types, its error
//! classification and its client; all of them share the pooled HTTP client of [`http`] and
//! the one classification of failed answers, [`AnswerClass`], that the dispatcher acts on.

pub mod getui;
pub mod http;
pub mod wecom;

/// What the caller should do with a failed answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AnswerClass {
    /// Transient: transport error, 5xx, "service starting" (2), "system busy" (30019, WeCom −1).
    /// Retry later with backoff; a request_id makes the retry safe.
    Retryable,
    /// The upstream's frequency or quota window is full (Getui 10003, 10005, 30012–30015,
    /// 30018; WeCom 45009, 45033). Slow the app's bucket and retry later.
    RateLimited,
    /// The token is wrong or expired (Getui 10001, WeCom 42001/40014) even after one fresh token:
    /// authenticate again.
    ReAuth,
    /// Will fail again however often it is sent (bad parameters, quotas, permissions).
    /// Record it per recipient; never retry.
    Permanent,
}

impl AnswerClass {
    /// A short stable name for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            AnswerClass::Retryable => "retryable",
            AnswerClass::RateLimited => "rate_limited",
            AnswerClass::ReAuth => "reauth",
            AnswerClass::Permanent => "permanent",
        }
    }
}
