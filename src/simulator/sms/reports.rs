//! Status reports (短信下发状态通知) of the simulated gateway: a bounded queue of reports due
//! after a delay, posted as JSON arrays to the configured callback URL, as Tencent does
//! (`shared/reference/getui-legacy-and-sms.md` §3.1). Whether a text "arrives" is decided
//! from its number alone, so a test can compute the outcome it expects.

use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::upstream::http::{build_client, exchange, PoolSettings};
use crate::wire::tencent_sms::{StatusReport, REPORT_FAIL, REPORT_SUCCESS};

/// Most reports posted in one callback.
const MAX_BATCH: usize = 100;

/// Where and how reports are posted.
#[derive(Debug, Clone)]
pub struct ReportSettings {
    /// The callback URL; `None` sends no reports.
    pub url: Option<String>,
    /// Time from the accepted send to its report.
    pub delay: Duration,
    /// Share of texts reported `FAIL`, in basis points (out of 10 000), chosen by number.
    pub fail_bp: u16,
    /// `errmsg` of a failed report.
    pub fail_errmsg: String,
    /// Reports waiting at most; beyond it new ones are dropped and counted.
    pub queue: usize,
}

impl Default for ReportSettings {
    fn default() -> Self {
        ReportSettings {
            url: None,
            delay: Duration::from_millis(500),
            fail_bp: 0,
            fail_errmsg: "UNDELIV".into(),
            queue: 100_000,
        }
    }
}

/// True when the text to `phone` is reported `FAIL` under `fail_bp`: the same answer for
/// the same number every time.
pub fn fails(phone: &str, fail_bp: u16) -> bool {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    0x736d_735f_6661_696cu64.hash(&mut h);
    phone.hash(&mut h);
    crate::domain::ids::mix64(h.finish()) % 10_000 < u64::from(fail_bp)
}

/// The report of a text to `phone` (E.164) with serial `sid`, received at `received` (Beijing
/// local time text).
pub fn report_for(phone: &str, sid: &str, received: &str, settings: &ReportSettings) -> StatusReport {
    let (nationcode, mobile) = match phone.strip_prefix("+86") {
        Some(m) => ("86".to_owned(), m.to_owned()),
        // International numbers: the country code is not split off (the simulator has no table).
        None => (String::new(), phone.trim_start_matches('+').to_owned()),
    };
    let failed = fails(phone, settings.fail_bp);
    StatusReport {
        user_receive_time: received.to_owned(),
        nationcode,
        mobile,
        report_status: if failed { REPORT_FAIL } else { REPORT_SUCCESS }.into(),
        errmsg: if failed { settings.fail_errmsg.clone() } else { "DELIVRD".into() },
        description: if failed { "用户短信未送达" } else { "用户短信送达成功" }.into(),
        sid: sid.to_owned(),
    }
}

/// A report and when it is due.
pub type Queued = (Instant, StatusReport);

/// The sending side of the queue, and a counter of reports refused because it was full.
pub struct ReportQueue {
    tx: Option<mpsc::Sender<Queued>>,
}

impl ReportQueue {
    /// A queue and its receiving end (`None` when no URL is configured).
    pub fn new(settings: &ReportSettings) -> (ReportQueue, Option<mpsc::Receiver<Queued>>) {
        if settings.url.is_none() {
            return (ReportQueue { tx: None }, None);
        }
        let (tx, rx) = mpsc::channel(settings.queue.max(1));
        (ReportQueue { tx: Some(tx) }, Some(rx))
    }

    /// Queues `report`; false when it had to be dropped (queue full or no receiver).
    pub fn push(&self, due: Instant, report: StatusReport) -> bool {
        self.tx.as_ref().is_none_or(|tx| tx.try_send((due, report)).is_ok())
    }
}

/// Posts queued reports until `shutdown`; `counted(delivered, dropped)` is told of each batch.
pub async fn post_reports(
    url: String,
    mut rx: mpsc::Receiver<Queued>,
    shutdown: CancellationToken,
    counted: impl Fn(u64, u64) + Send + 'static,
) {
    let Ok(http) = build_client(&PoolSettings::default()) else {
        tracing::warn!("SMS simulator: cannot build the HTTP client; status reports are off");
        return;
    };
    loop {
        let first = tokio::select! {
            () = shutdown.cancelled() => return,
            item = rx.recv() => match item { Some(item) => item, None => return },
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep_until(first.0.into()) => {}
        }
        let mut batch = vec![first.1];
        // Everything else already due goes into the same array.
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok((due, report)) if due <= Instant::now() => batch.push(report),
                Ok((due, report)) => {
                    // Not due yet: post what is due, then wait for this one.
                    let n = batch.len() as u64;
                    post(&http, &url, &batch, n, &counted).await;
                    batch = vec![report];
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep_until(due.into()) => {}
                    }
                }
                Err(_) => break,
            }
        }
        let n = batch.len() as u64;
        post(&http, &url, &batch, n, &counted).await;
    }
}

async fn post(
    http: &crate::upstream::http::HttpClient,
    url: &str,
    batch: &[StatusReport],
    n: u64,
    counted: &impl Fn(u64, u64),
) {
    let Ok(body) = serde_json::to_vec(batch) else { return counted(0, n) };
    let Ok(req) =
        hyper::Request::post(url).header("content-type", "application/json").body(Full::new(Bytes::from(body)))
    else {
        return counted(0, n);
    };
    match exchange(http, req, Duration::from_secs(10)).await {
        Ok((200, _)) => counted(n, 0),
        Ok((status, _)) => {
            tracing::warn!(status, "SMS simulator: the status-report callback refused {n} reports");
            counted(0, n);
        }
        Err(e) => {
            tracing::warn!(reason = %e.reason, "SMS simulator: the status-report callback did not answer");
            counted(0, n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_decided_by_number_and_share() {
        let phones: Vec<String> = (0..1000).map(|i| format!("+86138{i:08}")).collect();
        let failed = phones.iter().filter(|p| fails(p, 2_000)).count();
        assert!((150..250).contains(&failed), "{failed} of 1000 at 20 %");
        assert!(phones.iter().all(|p| !fails(p, 0)) && phones.iter().all(|p| fails(p, 10_000)));
        let s = ReportSettings { fail_bp: 10_000, ..ReportSettings::default() };
        let r = report_for("+8613800000000", "sid-1", "2025-12-01 08:00:00", &s);
        assert_eq!((r.nationcode.as_str(), r.mobile.as_str(), r.report_status.as_str()), ("86", "13800000000", "FAIL"));
        assert_eq!(report_for("+8613800000000", "s", "t", &ReportSettings::default()).errmsg, "DELIVRD");
    }
}
