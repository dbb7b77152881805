//! Getui's receipt callback (消息回执) as the simulator plays it: when the simulated Getui
//! delivers a message to a cid, it queues an arrival line (`actionId` 0) and maybe a click line
//! (10010) for that cid and task, and one task posts them, signed, as text lines to the
//! configured URL, as Getui does (`shared/reference/getui-legacy-and-sms.md` §2.3).
//!
//! Whether an offline device ever comes back, when, and whether its user clicks follow from the
//! cid alone ([`returns_after`], [`clicks`], [`arrives_after`]), so a test can compute the exact
//! set of lines it should receive. Only synchronous cid-addressed pushes (single, batch, list)
//! produce receipts; `is_async` pushes and app/tag pushes produce none (a simplification: they
//! answer no per-cid status to match the lines against).

use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::clock::now_ms_u64;
use crate::domain::ids::mix64;
use crate::domain::CompactCid;
use crate::simulator::ledger::lock;
use crate::upstream::http::{build_client, exchange, HttpClient, PoolSettings};
use crate::wire::getui::receipt::ReceiptLine;

/// `actionId` of a Getui-channel arrival.
pub const ACTION_ARRIVAL: &str = "0";
/// `actionId` of a clicked Getui notification.
pub const ACTION_CLICKED: &str = "10010";

/// Most lines in one POST.
const MAX_LINES_PER_POST: usize = 500;
/// Tries of one POST before its lines are dropped (Getui: 3, then drops).
const TRIES: u32 = 3;
/// Wait before the second try; doubled before the third.
const BACKOFF: Duration = Duration::from_millis(100);
/// How long one POST may take.
const POST_TIMEOUT: Duration = Duration::from_secs(10);

// Distinct constants mixed into the cid's hash, so that each fact is independent of the
// others and of the status bucket (`cid.spread() % 10_000`).
const RETURN_SALT: u64 = 0x7265_7475_726e_2121;
const DELAY_SALT: u64 = 0x6465_6c61_7921_2121;
const CLICK_SALT: u64 = 0x636c_6963_6b21_2121;

/// Where and how the simulated Getui posts receipts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptSimConfig {
    /// The receiver, e.g. `http://127.0.0.1:8780/getui/main/receipts`; `None` sends none.
    pub url: Option<String>,
    /// Share of `successed_offline` devices that ever come back online, in basis points.
    pub return_bp: u16,
    /// A returning offline device comes back after a delay in `[0, return_spread)`.
    pub return_spread: Duration,
    /// Share of delivered messages that get a click line, in basis points.
    pub click_bp: u16,
    /// Lines waiting at most (queued and not yet due included); beyond it new lines are
    /// dropped and counted.
    pub queue: usize,
}

impl Default for ReceiptSimConfig {
    fn default() -> Self {
        ReceiptSimConfig {
            url: None,
            return_bp: 6_000,
            return_spread: Duration::from_secs(1),
            click_bp: 2_000,
            queue: 200_000,
        }
    }
}

/// A well-spread number from the cid and a salt.
fn draw(cid: &CompactCid, salt: u64) -> u64 {
    mix64(cid.spread() ^ salt)
}

/// When the offline device `cid` comes back online after a message was stored for it, or
/// `None` when it never does. The same answer for the same cid every time.
pub fn returns_after(cid: &CompactCid, cfg: &ReceiptSimConfig) -> Option<Duration> {
    if draw(cid, RETURN_SALT) % 10_000 >= u64::from(cfg.return_bp) {
        return None;
    }
    let spread_us = u64::try_from(cfg.return_spread.as_micros()).unwrap_or(u64::MAX);
    if spread_us == 0 {
        return Some(Duration::ZERO);
    }
    Some(Duration::from_micros(draw(cid, DELAY_SALT) % spread_us))
}

/// True when a message delivered to `cid` gets a click line (after its arrival line).
pub fn clicks(cid: &CompactCid, cfg: &ReceiptSimConfig) -> bool {
    draw(cid, CLICK_SALT) % 10_000 < u64::from(cfg.click_bp)
}

/// When a message answered with `status` for `cid` arrives on the device: at once when
/// online, when the device comes back when offline (perhaps never), never when ignored.
pub fn arrives_after(cid: &CompactCid, status: &str, cfg: &ReceiptSimConfig) -> Option<Duration> {
    match status {
        "successed_online" => Some(Duration::ZERO),
        "successed_offline" => returns_after(cid, cfg),
        _ => None,
    }
}

/// `GET /_sim/receipts`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptStats {
    /// Lines waiting (not yet due, or due and not yet posted).
    pub queued: u64,
    /// Lines the receiver accepted (2xx).
    pub posted_lines: u64,
    /// POSTs the receiver accepted.
    pub posts: u64,
    /// POSTs given up after three tries (their lines are dropped, as Getui drops them).
    pub failed_posts: u64,
    /// Lines dropped because the queue was full.
    pub dropped: u64,
    /// Accepted lines by kind.
    pub by_kind: ByKind,
}

/// Accepted lines by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ByKind {
    /// `actionId` 0.
    pub arrival: u64,
    /// `actionId` 10010.
    pub clicked: u64,
}

#[derive(Default)]
struct Counters {
    queued: AtomicU64,
    posted_lines: AtomicU64,
    posts: AtomicU64,
    failed_posts: AtomicU64,
    dropped: AtomicU64,
    arrival: AtomicU64,
    clicked: AtomicU64,
}

/// One line to post, and when.
struct Pending {
    due: Instant,
    /// Order of scheduling: a click line follows its arrival line though both are due at once.
    seq: u64,
    cid: CompactCid,
    taskid: Arc<str>,
    action: &'static str,
}

impl Pending {
    fn key(&self) -> (Instant, u64) {
        (self.due, self.seq)
    }
}

// Reversed, so that the max-heap `BinaryHeap` pops the earliest line first.
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        other.key().cmp(&self.key())
    }
}

impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Pending {}

/// The receipts of one simulated app: the queue's sending end, its counters, and the
/// receiving end until the posting task takes it.
pub(crate) struct Receipts {
    cfg: ReceiptSimConfig,
    app_id: String,
    master_secret: String,
    tx: Option<mpsc::Sender<Pending>>,
    rx: Mutex<Option<mpsc::Receiver<Pending>>>,
    seq: AtomicU64,
    counters: Counters,
}

impl Receipts {
    /// Receipts signed for `app_id` with `master_secret`; inert when no URL is configured.
    pub(crate) fn new(cfg: ReceiptSimConfig, app_id: &str, master_secret: &str) -> Receipts {
        let (tx, rx) = match cfg.url {
            Some(_) => {
                let (tx, rx) = mpsc::channel(cfg.queue.max(1));
                (Some(tx), Some(rx))
            }
            None => (None, None),
        };
        Receipts {
            cfg,
            app_id: app_id.to_owned(),
            master_secret: master_secret.to_owned(),
            tx,
            rx: Mutex::new(rx),
            seq: AtomicU64::new(0),
            counters: Counters::default(),
        }
    }

    /// Schedules the lines of messages of `taskid` delivered (for the first time) to each cid
    /// with the status the push answered for it.
    pub(crate) fn schedule<'a>(&self, taskid: &str, delivered: impl IntoIterator<Item = (&'a CompactCid, &'a str)>) {
        let Some(tx) = &self.tx else { return };
        let now = Instant::now();
        // One shared copy of the taskid for every line of the call (a list push has 1000).
        let mut shared: Option<Arc<str>> = None;
        for (cid, status) in delivered {
            let Some(after) = arrives_after(cid, status, &self.cfg) else { continue };
            let taskid = shared.get_or_insert_with(|| Arc::from(taskid)).clone();
            let click = clicks(cid, &self.cfg);
            self.enqueue(
                tx,
                Pending { due: now + after, seq: 0, cid: *cid, taskid: taskid.clone(), action: ACTION_ARRIVAL },
            );
            if click {
                self.enqueue(tx, Pending { due: now + after, seq: 0, cid: *cid, taskid, action: ACTION_CLICKED });
            }
        }
    }

    /// Queues one line unless the queue is full. The bound covers the channel and the posting
    /// task's heap together, so it is counted here rather than left to the channel.
    fn enqueue(&self, tx: &mpsc::Sender<Pending>, mut line: Pending) {
        let c = &self.counters;
        if c.queued.fetch_add(1, Ordering::Relaxed) >= self.cfg.queue as u64 {
            c.queued.fetch_sub(1, Ordering::Relaxed);
            c.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        line.seq = self.seq.fetch_add(1, Ordering::Relaxed);
        if tx.try_send(line).is_err() {
            c.queued.fetch_sub(1, Ordering::Relaxed);
            c.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The counters, for `GET /_sim/receipts`.
    pub(crate) fn stats(&self) -> ReceiptStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ReceiptStats {
            queued: get(&c.queued),
            posted_lines: get(&c.posted_lines),
            posts: get(&c.posts),
            failed_posts: get(&c.failed_posts),
            dropped: get(&c.dropped),
            by_kind: ByKind { arrival: get(&c.arrival), clicked: get(&c.clicked) },
        }
    }

    /// Starts the posting task (when a URL is configured), once, until `shutdown`.
    pub(crate) fn start(self: &Arc<Self>, shutdown: CancellationToken) {
        let (Some(url), Some(rx)) = (self.cfg.url.clone(), lock(&self.rx).take()) else { return };
        tokio::spawn(self.clone().post_due(url, rx, shutdown));
    }

    /// Posts lines as they fall due, up to [`MAX_LINES_PER_POST`] per POST, until `shutdown`.
    async fn post_due(self: Arc<Self>, url: String, mut rx: mpsc::Receiver<Pending>, shutdown: CancellationToken) {
        let Ok(http) = build_client(&PoolSettings::default()) else {
            tracing::warn!("Getui simulator: cannot build the HTTP client; receipts are off");
            return;
        };
        // Lines leave the channel in scheduling order but fall due in another (a returning
        // device's delay), so they wait in a heap ordered by due time.
        let mut heap = BinaryHeap::new();
        let mut open = true;
        loop {
            while let Ok(line) = rx.try_recv() {
                heap.push(line);
            }
            let batch = take_due(&mut heap, Instant::now());
            if !batch.is_empty() {
                if !self.post(&http, &url, &batch, &shutdown).await {
                    return;
                }
                continue;
            }
            let next = heap.peek().map(|p| p.due);
            tokio::select! {
                () = shutdown.cancelled() => return,
                line = rx.recv(), if open => match line {
                    Some(line) => heap.push(line),
                    None => open = false,
                },
                () = sleep_until(next) => {}
            }
            if !open && heap.is_empty() {
                return;
            }
        }
    }

    /// Posts one body, [`TRIES`] tries in all; false when `shutdown` interrupted it.
    async fn post(&self, http: &HttpClient, url: &str, batch: &[Pending], shutdown: &CancellationToken) -> bool {
        let recvtime = now_ms_u64();
        let lines: Vec<String> =
            batch.iter().filter_map(|p| serde_json::to_string(&self.line(p, recvtime)).ok()).collect();
        let body = Bytes::from(lines.join("\n"));
        for attempt in 1..=TRIES {
            let req = hyper::Request::post(url).header("content-type", "text/plain").body(Full::new(body.clone()));
            let Ok(req) = req else { break };
            match exchange(http, req, POST_TIMEOUT).await {
                Ok((status, _)) if (200..300).contains(&status) => {
                    self.count_posted(batch);
                    return true;
                }
                Ok((status, _)) => tracing::debug!(status, attempt, "Getui simulator: the receipt receiver refused"),
                Err(e) => {
                    tracing::debug!(reason = %e.reason, attempt, "Getui simulator: the receipt receiver did not answer")
                }
            }
            if attempt < TRIES {
                tokio::select! {
                    () = shutdown.cancelled() => return false,
                    () = tokio::time::sleep(BACKOFF * 2u32.pow(attempt - 1)) => {}
                }
            }
        }
        tracing::warn!("Getui simulator: dropped {} receipt lines after {TRIES} tries", batch.len());
        let c = &self.counters;
        c.failed_posts.fetch_add(1, Ordering::Relaxed);
        c.queued.fetch_sub(batch.len() as u64, Ordering::Relaxed);
        true
    }

    fn count_posted(&self, batch: &[Pending]) {
        let c = &self.counters;
        let n = batch.len() as u64;
        let clicked = batch.iter().filter(|p| p.action == ACTION_CLICKED).count() as u64;
        c.queued.fetch_sub(n, Ordering::Relaxed);
        c.posts.fetch_add(1, Ordering::Relaxed);
        c.posted_lines.fetch_add(n, Ordering::Relaxed);
        c.clicked.fetch_add(clicked, Ordering::Relaxed);
        c.arrival.fetch_add(n - clicked, Ordering::Relaxed);
    }

    /// The signed line of `p`; its msgid (digits, like Getui's) is unique within the run.
    fn line(&self, p: &Pending, recvtime: u64) -> ReceiptLine {
        let msgid = format!("{recvtime}{:08}", p.seq);
        let cid = p.cid.to_string();
        ReceiptLine::signed(&self.app_id, &cid, &p.taskid, &msgid, p.action, recvtime, &self.master_secret)
    }
}

/// The lines due by `now`, earliest first, at most [`MAX_LINES_PER_POST`].
fn take_due(heap: &mut BinaryHeap<Pending>, now: Instant) -> Vec<Pending> {
    let mut due = Vec::new();
    while due.len() < MAX_LINES_PER_POST && heap.peek().is_some_and(|p| p.due <= now) {
        due.extend(heap.pop());
    }
    due
}

/// Sleeps until `due`, or forever when there is nothing to wait for.
async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due.into()).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cids(n: u64) -> Vec<CompactCid> {
        (0..n)
            .map(|i| {
                let mut b = [0u8; 16];
                b[..8].copy_from_slice(&mix64(i).to_be_bytes());
                b[8..].copy_from_slice(&i.to_be_bytes());
                CompactCid(b)
            })
            .collect()
    }

    #[test]
    fn facts_follow_from_the_cid_alone() {
        let cfg = ReceiptSimConfig::default();
        for cid in cids(500) {
            assert_eq!(returns_after(&cid, &cfg), returns_after(&cid, &cfg));
            assert_eq!(clicks(&cid, &cfg), clicks(&cid, &cfg));
            assert!(returns_after(&cid, &cfg).is_none_or(|d| d < cfg.return_spread));
            assert_eq!(arrives_after(&cid, "successed_online", &cfg), Some(Duration::ZERO));
            assert_eq!(arrives_after(&cid, "successed_offline", &cfg), returns_after(&cid, &cfg));
            assert_eq!(arrives_after(&cid, "successed_ignore", &cfg), None);
        }
        let none = ReceiptSimConfig { return_bp: 0, click_bp: 0, ..cfg.clone() };
        let all = ReceiptSimConfig { return_bp: 10_000, click_bp: 10_000, return_spread: Duration::ZERO, ..cfg };
        for cid in cids(500) {
            assert!(returns_after(&cid, &none).is_none() && !clicks(&cid, &none));
            assert_eq!(returns_after(&cid, &all), Some(Duration::ZERO));
            assert!(clicks(&cid, &all));
        }
    }

    #[test]
    fn shares_are_roughly_right_and_independent_of_the_status_bucket() {
        let cfg = ReceiptSimConfig::default();
        let all = cids(20_000);
        let returning = all.iter().filter(|c| returns_after(c, &cfg).is_some()).count();
        assert!((11_400..12_600).contains(&returning), "{returning} of 20000 at 60 %");
        let clicking = all.iter().filter(|c| clicks(c, &cfg)).count();
        assert!((3_600..4_400).contains(&clicking), "{clicking} of 20000 at 20 %");
        // Among the cids the default shares answer successed_offline (bucket 7000..9500).
        let offline: Vec<&CompactCid> =
            all.iter().filter(|c| (7_000..9_500).contains(&(c.spread() % 10_000))).collect();
        let back = offline.iter().filter(|c| returns_after(c, &cfg).is_some()).count();
        let share = back as f64 / offline.len() as f64;
        assert!((0.55..0.65).contains(&share), "{back} of {} offline come back", offline.len());
        // Delays cover the spread rather than bunching up.
        let late =
            all.iter().filter_map(|c| returns_after(c, &cfg)).filter(|d| *d >= Duration::from_millis(500)).count();
        let late_share = late as f64 / returning as f64;
        assert!((0.45..0.55).contains(&late_share), "{late} of {returning} in the second half");
    }

    #[test]
    fn lines_are_signed_and_verify() {
        let cfg = ReceiptSimConfig { url: Some("http://127.0.0.1:9/r".into()), ..ReceiptSimConfig::default() };
        let r = Receipts::new(cfg, "app-1", "secret-1");
        let cid = cids(1)[0];
        let p =
            Pending { due: Instant::now(), seq: 7, cid, taskid: Arc::from("RASL-0000000001"), action: ACTION_CLICKED };
        let line = r.line(&p, 1_764_000_000_000);
        assert!(line.verify("secret-1"));
        assert!(!line.verify("secret-2"));
        assert_eq!((line.cid.as_str(), line.taskid.as_str()), (cid.to_string().as_str(), "RASL-0000000001"));
        assert_eq!(line.kind(), crate::wire::getui::receipt::ActionKind::Clicked);
        let text = serde_json::to_string(&line).unwrap();
        let parsed = crate::wire::getui::receipt::parse_line(text.as_bytes(), "app-1", "secret-1").unwrap();
        assert_eq!(parsed, line);
    }

    #[test]
    fn the_queue_is_bounded_and_ordered_by_due_time() {
        let cfg = ReceiptSimConfig {
            url: Some("http://127.0.0.1:9/r".into()),
            queue: 10,
            return_bp: 10_000,
            click_bp: 0,
            ..ReceiptSimConfig::default()
        };
        let r = Receipts::new(cfg, "app", "secret");
        let all = cids(15);
        r.schedule("RASS_x", all.iter().map(|c| (c, "successed_offline")));
        r.schedule("RASS_y", all.iter().map(|c| (c, "successed_ignore")));
        let s = r.stats();
        assert_eq!((s.queued, s.dropped), (10, 5));
        let mut rx = lock(&r.rx).take().unwrap();
        let mut heap = BinaryHeap::new();
        while let Ok(p) = rx.try_recv() {
            heap.push(p);
        }
        let due = take_due(&mut heap, Instant::now() + Duration::from_secs(2));
        assert_eq!(due.len(), 10);
        assert!(due.windows(2).all(|w| w[0].due <= w[1].due));
    }

    #[test]
    fn no_url_schedules_nothing() {
        let r = Receipts::new(ReceiptSimConfig::default(), "app", "secret");
        r.schedule("RASS_x", cids(10).iter().map(|c| (c, "successed_online")));
        assert_eq!(r.stats(), ReceiptStats::default());
    }
}
