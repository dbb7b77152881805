//! Every Prometheus metric campaignd exports, registered once in one registry.
//!
//! Label values come only from closed vocabularies (configured app names, fixed endpoint and
//! result names, known upstream codes), so series stay bounded: a cid is never a label, and a
//! campaign id labels only `campaign_progress_ratio`, whose series exist for unfinished
//! campaigns only (the scheduler removes them when a campaign finishes or is deleted).

use std::time::Duration;

use prometheus::{
    CounterVec, Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Upstream latency buckets, 1 ms … 30 s.
const LATENCY_BUCKETS: [f64; 14] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Getui codes that get their own label value; any other is counted as `other`.
const KNOWN_CODES: [i64; 52] = [
    0, 1, 2, 301, 400, 401, 403, 404, 405, 408, 429, 500, 502, 503, 504, 5000, 10001, 10002, 10003, 10004, 10005,
    20001, 22001, 22002, 23001, 30001, 30002, 30003, 30004, 30007, 30008, 30009, 30010, 30014, 30015, 30019,
    // WeCom errcodes a sender meets (reference/wecom.md §4.4).
    -1, 40001, 40008, 40014, 40056, 40058, 41001, 42001, 44004, 45002, 45008, 45009, 45033, 60011, 81013, 82001,
];

/// The daemon's metrics.
pub struct Metrics {
    registry: Registry,
    /// Recipients that reached a result.
    pub recipients_total: IntCounterVec,
    /// Upstream HTTP exchanges by endpoint and answer code.
    pub upstream_requests_total: IntCounterVec,
    /// Upstream exchange latency.
    pub upstream_request_duration_seconds: HistogramVec,
    /// Recipients of running campaigns not yet sent (what the stall alert watches).
    pub pending_recipients: IntGaugeVec,
    /// Recipients of campaigns waiting in draft, scheduled or paused, by app and state.
    pub waiting_recipients: IntGaugeVec,
    /// Campaigns per state.
    pub campaigns: IntGaugeVec,
    /// Retried upstream calls by reason.
    pub retries_total: IntCounterVec,
    /// Time spent waiting on a limiter.
    pub rate_limited_seconds_total: CounterVec,
    /// Chunks being sent right now.
    pub chunks_inflight: IntGauge,
    /// Time from a shard taking a chunk to its acknowledgement being durable.
    pub chunk_duration_seconds: prometheus::Histogram,
    /// Progress (0..1) of each unfinished campaign; its series is removed when the campaign
    /// finishes or is deleted, so the campaign label stays bounded by the active campaigns.
    pub campaign_progress_ratio: prometheus::GaugeVec,
    /// WeCom callbacks by agent and result.
    pub wecom_callbacks_total: IntCounterVec,
    /// Bytes the store takes on disk.
    pub store_size_bytes: IntGauge,
    /// The group's backlog in chunks, as the store counts it (`Store::queued_chunk_messages`).
    pub queued_chunks: IntGauge,
    /// Draft campaigns whose upload duplicate index is held (in use, or kept on disk).
    pub upload_filters: IntGauge,
    /// SMS fallback: recipients per second-channel outcome, by app and result (`sent`,
    /// `delivered`, `failed`, `maybe_sent`, `replayed`, `skipped_<reason>`).
    pub sms_total: IntCounterVec,
    /// Getui receipt lines, by app and kind (`arrival`, `shown`, `clicked`, `custom`, `other`,
    /// or `refused_<why>` for a line refused).
    pub receipts_total: IntCounterVec,
    /// Calls of the legacy Getui SDK ingress (`/apiex.htm`), by action (the protocol's action
    /// names, `other` for the rest) and the legacy result string answered.
    pub legacy_requests_total: IntCounterVec,
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Metrics {
        let registry = Registry::new_custom(Some("campaignd".into()), None).unwrap_or_default();
        let m = Metrics {
            recipients_total: IntCounterVec::new(
                Opts::new("recipients_total", "Recipients that reached a result, by app, channel and result."),
                &["app", "channel", "result"],
            )
            .expect("valid metric"),
            upstream_requests_total: IntCounterVec::new(
                Opts::new("upstream_requests_total", "Upstream HTTP exchanges, by app, endpoint and answer code (5000: no answer)."),
                &["app", "endpoint", "code"],
            )
            .expect("valid metric"),
            upstream_request_duration_seconds: HistogramVec::new(
                HistogramOpts::new("upstream_request_duration_seconds", "Latency of upstream exchanges, answer body included.")
                    .buckets(LATENCY_BUCKETS.to_vec()),
                &["app", "endpoint"],
            )
            .expect("valid metric"),
            pending_recipients: IntGaugeVec::new(
                Opts::new("pending_recipients", "Recipients of running campaigns that have no result yet."),
                &["app"],
            )
            .expect("valid metric"),
            waiting_recipients: IntGaugeVec::new(
                Opts::new(
                    "waiting_recipients",
                    "Recipients without a result of campaigns that wait (draft, scheduled, paused), by app and state.",
                ),
                &["app", "state"],
            )
            .expect("valid metric"),
            campaigns: IntGaugeVec::new(Opts::new("campaigns", "Campaigns by state."), &["state"]).expect("valid metric"),
            retries_total: IntCounterVec::new(
                Opts::new("retries_total", "Upstream calls retried, by app and reason (retryable, rate_limited, reauth, maybe_delivered)."),
                &["app", "reason"],
            )
            .expect("valid metric"),
            rate_limited_seconds_total: CounterVec::new(
                Opts::new(
                    "rate_limited_seconds_total",
                    "Seconds spent waiting on a limiter: campaign_speed, app_calls, or upstream (after a rate-limit answer).",
                ),
                &["app", "limiter"],
            )
            .expect("valid metric"),
            chunks_inflight: IntGauge::new("chunks_inflight", "Chunks being sent right now.").expect("valid metric"),
            chunk_duration_seconds: prometheus::Histogram::with_opts(
                HistogramOpts::new(
                    "chunk_duration_seconds",
                    "Time from a shard taking a chunk to its results being durable, pacing waits included.",
                )
                .buckets(LATENCY_BUCKETS.to_vec()),
            )
            .expect("valid metric"),
            campaign_progress_ratio: prometheus::GaugeVec::new(
                Opts::new(
                    "campaign_progress_ratio",
                    "Share of an unfinished campaign's recipients that have a result; removed when the campaign ends.",
                ),
                &["campaign", "app"],
            )
            .expect("valid metric"),
            wecom_callbacks_total: IntCounterVec::new(
                Opts::new("wecom_callbacks_total", "WeCom callbacks by agent and result (accepted or why refused)."),
                &["agent", "result"],
            )
            .expect("valid metric"),
            store_size_bytes: IntGauge::new("store_size_bytes", "Bytes the on-disk store takes.").expect("valid metric"),
            queued_chunks: IntGauge::new(
                "queued_chunks",
                "Chunks committed and not yet acknowledged: on NATS the messages in the JetStream chunk stream \
                 (the group's backlog, the same on every daemon); on sled those of the campaigns not finished.",
            )
            .expect("valid metric"),
            upload_filters: IntGauge::new(
                "upload_filters",
                "Draft campaigns whose upload duplicate index (on disk, 16 bytes a recipient) is held: in use by \
                 an upload, or kept a few minutes for the next one.",
            )
            .expect("valid metric"),
            sms_total: IntCounterVec::new(
                Opts::new(
                    "sms_total",
                    "SMS fallback: recipients per second-channel outcome (sent, delivered, failed, maybe_sent, \
                     replayed, skipped_<reason>), by app.",
                ),
                &["app", "result"],
            )
            .expect("valid metric"),
            receipts_total: IntCounterVec::new(
                Opts::new("receipts_total", "Getui receipt lines received, by app and kind (refused_<why>: refused)."),
                &["app", "kind"],
            )
            .expect("valid metric"),
            legacy_requests_total: IntCounterVec::new(
                Opts::new(
                    "legacy_requests_total",
                    "Calls of the legacy Getui SDK ingress (/apiex.htm), by action and the legacy result answered.",
                ),
                &["action", "result"],
            )
            .expect("valid metric"),
            registry,
        };
        m.register_all();
        let _ = m.registry.register(Box::new(m.upload_filters.clone()));
        m
    }

    fn register_all(&self) {
        let collectors: [Box<dyn prometheus::core::Collector>; 17] = [
            Box::new(self.legacy_requests_total.clone()),
            Box::new(self.sms_total.clone()),
            Box::new(self.receipts_total.clone()),
            Box::new(self.recipients_total.clone()),
            Box::new(self.upstream_requests_total.clone()),
            Box::new(self.upstream_request_duration_seconds.clone()),
            Box::new(self.pending_recipients.clone()),
            Box::new(self.campaigns.clone()),
            Box::new(self.retries_total.clone()),
            Box::new(self.rate_limited_seconds_total.clone()),
            Box::new(self.chunks_inflight.clone()),
            Box::new(self.store_size_bytes.clone()),
            Box::new(self.queued_chunks.clone()),
            Box::new(self.chunk_duration_seconds.clone()),
            Box::new(self.campaign_progress_ratio.clone()),
            Box::new(self.wecom_callbacks_total.clone()),
            Box::new(self.waiting_recipients.clone()),
        ];
        for c in collectors {
            // Names are fixed and distinct, so registration cannot clash.
            let _ = self.registry.register(c);
        }
        #[cfg(target_os = "linux")]
        let _ = self.registry.register(Box::new(prometheus::process_collector::ProcessCollector::for_self()));
    }

    /// The text exposition format for `GET /metrics`.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 * 1024);
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        out
    }

    /// Adds waiting time to `rate_limited_seconds_total{app, limiter}`.
    pub fn waited(&self, app: &str, limiter: &str, d: Duration) {
        if !d.is_zero() {
            self.rate_limited_seconds_total.with_label_values(&[app, limiter]).inc_by(d.as_secs_f64());
        }
    }
}

impl Metrics {
    #[cfg(test)]
    fn collect_series(&self) -> usize {
        use prometheus::core::Collector;
        self.upstream_requests_total.collect().iter().map(|f| f.get_metric().len()).sum()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// The `code` label of one upstream exchange, in one vocabulary for every provider: each
/// provider's error type says which of these it is, and only this type turns it into a label.
///
/// Label values are the vendor's code as a number (0 is success), the HTTP status of an answer
/// without the vendor's body, 5000 when no readable answer came back (the Getui Java SDK's
/// convention), `not_sent` for a request refused before it left, and `other` for any number
/// outside the known list, so the series stay bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeLabel {
    /// A code from the vendor's answer body; 0 is success.
    Vendor(i64),
    /// An HTTP status that came without the vendor's body.
    HttpStatus(u16),
    /// No answer: the connection failed, reset or timed out.
    NoAnswer,
    /// An answer that could not be read.
    Unreadable,
    /// The request broke a documented limit and was never sent.
    NotSent,
    /// A vendor whose codes are names, not numbers (Tencent Cloud's `LimitExceeded.…`): the
    /// name, taken only from that vendor's closed list of known codes, or `other`.
    Named(&'static str),
}

impl CodeLabel {
    /// A successful exchange.
    pub const SUCCESS: CodeLabel = CodeLabel::Vendor(0);

    /// The value of the metric's `code` label.
    pub fn metric_value(self) -> std::borrow::Cow<'static, str> {
        let code = match self {
            CodeLabel::Vendor(code) => code,
            CodeLabel::HttpStatus(status) => i64::from(status),
            CodeLabel::NoAnswer | CodeLabel::Unreadable => NO_ANSWER_CODE,
            CodeLabel::NotSent => return "not_sent".into(),
            CodeLabel::Named(name) => return name.into(),
        };
        if KNOWN_CODES.contains(&code) {
            code.to_string().into()
        } else {
            "other".into()
        }
    }
}

/// For logs: the exact code (or name), `http_<status>`, `transport`, `decode` or `invalid`.
impl std::fmt::Display for CodeLabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CodeLabel::Vendor(code) => write!(f, "{code}"),
            CodeLabel::HttpStatus(status) => write!(f, "http_{status}"),
            CodeLabel::NoAnswer => f.write_str("transport"),
            CodeLabel::Unreadable => f.write_str("decode"),
            CodeLabel::NotSent => f.write_str("invalid"),
            CodeLabel::Named(name) => f.write_str(name),
        }
    }
}

/// The label number of an exchange with no readable answer.
const NO_ANSWER_CODE: i64 = 5000;

/// Told about every upstream HTTP exchange, for metrics: the vendor clients call it, the
/// metrics implement it. `endpoint` is a fixed label such as `POST /auth`; `code` is the
/// answer's [`CodeLabel`].
pub trait CallObserver: Send + Sync {
    /// One exchange with `endpoint` finished with `code` after `elapsed`.
    fn observe(&self, endpoint: &'static str, code: CodeLabel, elapsed: Duration);
}

/// Feeds one app's upstream exchanges into the metrics.
pub struct UpstreamObserver {
    app: String,
    metrics: std::sync::Arc<Metrics>,
}

impl UpstreamObserver {
    /// An observer labelling everything with `app`.
    pub fn new(app: &str, metrics: std::sync::Arc<Metrics>) -> Self {
        UpstreamObserver { app: app.to_owned(), metrics }
    }
}

impl CallObserver for UpstreamObserver {
    fn observe(&self, endpoint: &'static str, code: CodeLabel, elapsed: Duration) {
        self.metrics.observe_upstream(&self.app, endpoint, code, elapsed);
    }
}

impl Metrics {
    /// Counts one upstream exchange of `app` and its duration.
    pub fn observe_upstream(&self, app: &str, endpoint: &str, code: CodeLabel, elapsed: Duration) {
        let code = code.metric_value();
        self.upstream_requests_total.with_label_values(&[app, endpoint, &code]).inc();
        self.upstream_request_duration_seconds.with_label_values(&[app, endpoint]).observe(elapsed.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prefixed_names_and_bounded_codes() {
        let m = std::sync::Arc::new(Metrics::new());
        let obs = UpstreamObserver::new("main", m.clone());
        obs.observe("POST /push/list/cid", CodeLabel::SUCCESS, Duration::from_millis(3));
        obs.observe("POST /push/list/cid", CodeLabel::Vendor(123_456), Duration::from_millis(3));
        m.recipients_total.with_label_values(&["main", "getui", "successed_online"]).inc_by(5);
        let text = String::from_utf8(m.render()).unwrap();
        assert!(
            text.contains(r#"campaignd_upstream_requests_total{app="main",code="0",endpoint="POST /push/list/cid"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"code="other""#));
        assert!(text.contains(r#"campaignd_recipients_total{app="main",channel="getui",result="successed_online"} 5"#));
        assert!(text.contains("campaignd_upstream_request_duration_seconds_bucket"));
    }

    #[test]
    fn every_provider_failure_has_one_bounded_label() {
        let values: Vec<_> = [
            CodeLabel::SUCCESS,
            CodeLabel::Vendor(45009),
            CodeLabel::Vendor(-1),
            CodeLabel::Vendor(77_777),
            CodeLabel::HttpStatus(502),
            CodeLabel::HttpStatus(418),
            CodeLabel::NoAnswer,
            CodeLabel::Unreadable,
            CodeLabel::NotSent,
            CodeLabel::Named("LimitExceeded.PhoneNumberDailyLimit"),
        ]
        .into_iter()
        .map(CodeLabel::metric_value)
        .collect();
        assert_eq!(
            values,
            [
                "0",
                "45009",
                "-1",
                "other",
                "502",
                "other",
                "5000",
                "5000",
                "not_sent",
                "LimitExceeded.PhoneNumberDailyLimit"
            ]
        );
        assert_eq!(CodeLabel::HttpStatus(502).to_string(), "http_502");
        assert_eq!(CodeLabel::NoAnswer.to_string(), "transport");
    }

    #[test]
    fn apps_whose_names_could_collide_stay_apart() {
        // prometheus 0.14 hashes label values without a separator, so {app="ab",endpoint="c"}
        // and {app="a",endpoint="bc"} would be one series. App names are lower case and
        // endpoint labels start with an upper-case HTTP method, so the boundary is unambiguous.
        let m = std::sync::Arc::new(Metrics::new());
        let apps = ["p", "po", "post", "postpost", "get"];
        let endpoints = ["POST /auth", "POST /push/list/cid", "GET /report/push/task", "DELETE /task"];
        for app in apps {
            for ep in endpoints {
                UpstreamObserver::new(app, m.clone()).observe(ep, CodeLabel::SUCCESS, Duration::ZERO);
            }
        }
        let series = m.collect_series();
        assert_eq!(series, apps.len() * endpoints.len());
    }
}
