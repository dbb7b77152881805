//! The dispatcher: a scheduler that starts due campaigns, one runner per running campaign that
//! feeds its pending chunks, and N shard tasks that send them under the campaign's speed bucket
//! and the app's call bucket, then acknowledge the results to the store.
//!
//! Ownership and shutdown: [`Dispatcher::run`] owns the scheduler, the runners and the shards.
//! Cancelling its token stops leasing; a shard finishes the call it is in (or abandons a retry
//! wait), acknowledges what it got, and exits; unsent chunks simply stay pending in the store.

mod app_tasks;
mod apps;
mod retry;
mod send;
mod wecom;

use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::{mpsc, Mutex, Notify};
use tokio_util::sync::CancellationToken;

pub use apps::{AppSender, Upstream};
pub use retry::RetryPolicy;

use crate::clock::now_ms;
use crate::domain::{
    CampaignSpec, CampaignState, Counts, Mode, Replay, RequestId, RequestKey, ResultName, StoreIdentity,
};
use crate::metrics::Metrics;
use crate::render::getui::{AppPush, GetuiRenderer};
use crate::store::{Ack, CampaignRecord, Change, Chunk, PageQuery, Store};
use crate::upstream::getui::GetuiClient;
use crate::wire::getui::{MAX_BATCH_MESSAGES, MAX_LIST_CIDS};
use send::Outcome;

/// Dispatcher knobs (from `[dispatch]` in the configuration).
#[derive(Debug, Clone)]
pub struct DispatchSettings {
    /// Shard tasks sending concurrently.
    pub shards: usize,
    /// How often the scheduler looks for due and changed campaigns.
    pub poll_interval: Duration,
    /// Retry limits and backoff.
    pub retry: RetryPolicy,
}

impl Default for DispatchSettings {
    fn default() -> Self {
        DispatchSettings { shards: 8, poll_interval: Duration::from_millis(200), retry: RetryPolicy::default() }
    }
}

/// What every task of the dispatcher shares.
pub(crate) struct Context {
    store: Arc<dyn Store>,
    apps: HashMap<String, Arc<AppSender>>,
    metrics: Arc<Metrics>,
    policy: RetryPolicy,
    shutdown: CancellationToken,
}

/// A running campaign as the shards see it.
pub(crate) struct CampaignRun {
    id: u64,
    /// What the campaign's request ids are made from.
    request_key: RequestKey,
    spec: CampaignSpec,
    app: Arc<AppSender>,
    /// The campaign's `speed` bucket; `None` when unlimited.
    speed: Option<DefaultDirectRateLimiter>,
    /// Most recipients per upstream call: the endpoint's limit, or the speed burst if smaller.
    part_size: usize,
    list_taskid: OnceLock<String>,
    /// The app task of an app campaign already pushed (a schedule Getui held).
    app_taskid: Option<String>,
    /// The campaign's Getui bodies, prepared once for the run.
    getui: GetuiRenderer,
    /// Cancelled when the campaign leaves `running` (pause, cancel) or the daemon stops.
    stop: CancellationToken,
    outstanding: AtomicUsize,
    drained: Notify,
}

impl CampaignRun {
    fn new(rec: &CampaignRecord, store: StoreIdentity, app: Arc<AppSender>, parent: &CancellationToken) -> CampaignRun {
        let spec = rec.spec.clone();
        let per_call = if spec.mode == Mode::BatchSingle { MAX_BATCH_MESSAGES } else { MAX_LIST_CIDS };
        let (speed, part_size) = match spec.settings.speed.and_then(NonZeroU32::new) {
            Some(s) => {
                let burst = NonZeroU32::new(s.get().min(per_call as u32)).unwrap_or(s);
                (Some(RateLimiter::direct(Quota::per_second(s).allow_burst(burst))), burst.get() as usize)
            }
            None => (None, per_call),
        };
        let list_taskid = OnceLock::new();
        if let Some(t) = &rec.list_taskid {
            let _ = list_taskid.set(t.clone());
        }
        let getui = GetuiRenderer::new(&spec);
        CampaignRun {
            id: rec.id,
            request_key: rec.request_key(store),
            spec,
            app,
            speed,
            part_size,
            list_taskid,
            app_taskid: rec.app_taskid.clone(),
            getui,
            stop: parent.child_token(),
            outstanding: AtomicUsize::new(0),
            drained: Notify::new(),
        }
    }

    async fn wait_drained(&self) {
        loop {
            let notified = self.drained.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.outstanding.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// A chunk handed to a shard. Dropping it, sent or not, releases the campaign's count of
/// outstanding chunks, so a runner can tell when everything it handed out is settled.
struct Work {
    run: Arc<CampaignRun>,
    seq: u64,
    chunk: Chunk,
}

impl Drop for Work {
    fn drop(&mut self) {
        self.run.outstanding.fetch_sub(1, Ordering::AcqRel);
        self.run.drained.notify_waiters();
    }
}

/// Sends running campaigns until shut down.
pub struct Dispatcher {
    ctx: Arc<Context>,
    settings: DispatchSettings,
    wake: Arc<Notify>,
}

impl Dispatcher {
    /// A dispatcher over `store` sending through `apps`.
    pub fn new(
        store: Arc<dyn Store>,
        apps: Vec<Arc<AppSender>>,
        metrics: Arc<Metrics>,
        settings: DispatchSettings,
        shutdown: CancellationToken,
    ) -> Dispatcher {
        let apps = apps.into_iter().map(|a| (a.name.clone(), a)).collect();
        let ctx = Context { store, apps, metrics, policy: settings.retry.clone(), shutdown };
        Dispatcher { ctx: Arc::new(ctx), settings, wake: Arc::new(Notify::new()) }
    }

    /// A handle that makes the scheduler look at the campaigns now (after a start or resume).
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Times `n` scheduler passes after one warm-up pass, sending nothing (no shard runs):
    /// what an idle daemon spends every `poll_interval`. For benches.
    pub async fn time_idle_passes(&self, n: u64) -> Duration {
        let (tx, _rx) = mpsc::channel::<Work>(1);
        let mut scheduler = Scheduler::new(self.ctx.clone(), tx);
        scheduler.tick().await;
        let started = std::time::Instant::now();
        for _ in 0..n {
            scheduler.tick().await;
        }
        started.elapsed()
    }

    /// Runs the scheduler and the shards until the shutdown token is cancelled and every
    /// in-flight chunk is settled.
    pub async fn run(self) {
        let (tx, rx) = mpsc::channel::<Work>(self.settings.shards * 2);
        let rx = Arc::new(Mutex::new(rx));
        let shards: Vec<_> =
            (0..self.settings.shards.max(1)).map(|_| tokio::spawn(shard_loop(self.ctx.clone(), rx.clone()))).collect();
        let mut scheduler = Scheduler::new(self.ctx.clone(), tx);
        loop {
            scheduler.tick().await;
            tokio::select! {
                _ = self.ctx.shutdown.cancelled() => break,
                _ = tokio::time::sleep(self.settings.poll_interval) => {}
                _ = self.wake.notified() => {}
            }
        }
        // Shards return at once (or after the call they are in); dropping the last receiver
        // then drops the chunks still queued, which releases them, so runners can finish.
        for s in shards {
            let _ = s.await;
        }
        drop(rx);
        scheduler.stop_all().await;
    }
}

/// Starts, stops and watches campaign runners.
struct Scheduler {
    ctx: Arc<Context>,
    runs: HashMap<u64, (Arc<CampaignRun>, tokio::task::JoinHandle<()>)>,
    replay_checked: HashSet<u64>,
    tx: mpsc::Sender<Work>,
    follow_ups: app_tasks::FollowUps,
    gauges: Gauges,
    /// Finished app campaigns still followed up; `None` until the first pass.
    followed: Option<HashSet<u64>>,
}

/// The campaign gauges, and which campaigns have a progress series (so that the series of
/// a campaign that finished or was deleted is removed even though it is no longer read).
#[derive(Default)]
struct Gauges {
    progress_series: HashMap<u64, String>,
}

impl Gauges {
    async fn update(&mut self, ctx: &Context, active: &[CampaignRecord]) {
        let m = &ctx.metrics;
        match ctx.store.census().await {
            Ok(census) => {
                for (state, n) in census {
                    m.campaigns.with_label_values(&[state.as_str()]).set(n as i64);
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot count campaigns"),
        }
        // Only running campaigns are due to send now: the stall alert watches them. Those
        // waiting for a start, a schedule or a resume are counted apart.
        let mut pending: HashMap<&str, i64> = ctx.apps.keys().map(|a| (a.as_str(), 0)).collect();
        let mut waiting: HashMap<(&str, CampaignState), i64> = HashMap::new();
        for app in ctx.apps.keys() {
            for state in WAITING_STATES {
                waiting.insert((app.as_str(), state), 0);
            }
        }
        let mut seen = HashSet::new();
        for r in active {
            let done = ctx.store.progress(r.id).await.map(|p| p.counts.total()).unwrap_or(0);
            let left = r.recipients.saturating_sub(done) as i64;
            match r.state {
                CampaignState::Running => *pending.entry(r.spec.app.as_str()).or_insert(0) += left,
                state => *waiting.entry((r.spec.app.as_str(), state)).or_insert(0) += left,
            }
            let ratio = if r.recipients == 0 { 0.0 } else { done as f64 / r.recipients as f64 };
            let id = r.id.to_string();
            m.campaign_progress_ratio.with_label_values(&[id.as_str(), r.spec.app.as_str()]).set(ratio);
            self.progress_series.insert(r.id, r.spec.app.clone());
            seen.insert(r.id);
        }
        // Finished or deleted since the last pass: drop their series, keeping the set bounded
        // by the active campaigns.
        self.progress_series.retain(|id, app| {
            let keep = seen.contains(id);
            if !keep {
                let _ = m.campaign_progress_ratio.remove_label_values(&[id.to_string().as_str(), app.as_str()]);
            }
            keep
        });
        for (app, n) in pending {
            m.pending_recipients.with_label_values(&[app]).set(n);
        }
        for ((app, state), n) in waiting {
            m.waiting_recipients.with_label_values(&[app, state.as_str()]).set(n);
        }
        if let Ok(bytes) = ctx.store.size_on_disk().await {
            m.store_size_bytes.set(bytes as i64);
        }
    }
}

/// States in which a campaign's recipients wait for something other than the dispatcher.
const WAITING_STATES: [CampaignState; 3] = [CampaignState::Draft, CampaignState::Scheduled, CampaignState::Paused];

impl Scheduler {
    fn new(ctx: Arc<Context>, tx: mpsc::Sender<Work>) -> Scheduler {
        Scheduler {
            ctx,
            runs: HashMap::new(),
            replay_checked: HashSet::new(),
            tx,
            follow_ups: Default::default(),
            gauges: Gauges::default(),
            followed: None,
        }
    }

    /// One pass: reads only the campaigns that are not finished (an index), so its cost
    /// follows the active campaigns however long the history.
    async fn tick(&mut self) {
        let active = match self.ctx.store.active_campaigns().await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "cannot list the active campaigns");
                return;
            }
        };
        self.runs.retain(|_, (_, h)| !h.is_finished());
        self.gauges.update(&self.ctx, &active).await;
        let now = now_ms();
        let watched = self.followed_records(&active, now).await;
        self.follow_ups.visit(&self.ctx, &watched, now);
        for rec in &active {
            match rec.state {
                CampaignState::Scheduled if rec.spec.settings.schedule_at_ms.is_some_and(|t| t <= now) => {
                    if let Err(e) = self.ctx.store.change(rec.id, Change::Begin(now)).await {
                        tracing::warn!(campaign = rec.id, error = %e, "cannot begin a scheduled campaign");
                    }
                }
                CampaignState::Running if !self.runs.contains_key(&rec.id) => self.start(rec),
                _ => {}
            }
        }
        // Runners whose campaign is no longer running (paused, cancelled, failed, gone) stop.
        let running: HashSet<u64> = active.iter().filter(|r| r.state == CampaignState::Running).map(|r| r.id).collect();
        for (id, (run, _)) in &self.runs {
            if !running.contains(id) {
                run.stop.cancel();
            }
        }
    }

    /// The records the app-task follow-ups look at: active ones, plus finished app campaigns
    /// still in their follow-up window. Those are remembered by id when they leave the active
    /// set (and found once, at the first pass, among the campaigns already finished).
    async fn followed_records(&mut self, active: &[CampaignRecord], now: i64) -> Vec<CampaignRecord> {
        let followed = match self.followed.take() {
            Some(f) => f,
            None => self.finished_follow_ups(now).await,
        };
        let mut watched: Vec<CampaignRecord> = active.iter().filter(|r| r.app_taskid.is_some()).cloned().collect();
        let active_ids: HashSet<u64> = active.iter().map(|r| r.id).collect();
        let mut keep: HashSet<u64> = active.iter().filter(|r| r.spec.mode == Mode::App).map(|r| r.id).collect();
        for id in followed.into_iter().filter(|id| !active_ids.contains(id)) {
            match self.ctx.store.get(id).await {
                Ok(Some(rec)) if app_tasks::wanted(&rec, now) => {
                    keep.insert(id);
                    watched.push(rec);
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(campaign = id, error = %e, "cannot read a campaign to follow up");
                    keep.insert(id);
                }
            }
        }
        self.followed = Some(keep);
        watched
    }

    /// Finished app campaigns that still want a follow-up, found by paging through the store
    /// once per process.
    async fn finished_follow_ups(&self, now: i64) -> HashSet<u64> {
        let mut found = HashSet::new();
        let mut after = 0;
        loop {
            let query = PageQuery { state: None, after, limit: 1000 };
            let page = match self.ctx.store.campaigns_page(query).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot look for app campaigns to follow up");
                    return found;
                }
            };
            found.extend(page.campaigns.iter().filter(|r| app_tasks::wanted(r, now)).map(|r| r.id));
            match page.next_after {
                Some(next) if next > after => after = next,
                _ => return found,
            }
        }
    }

    fn start(&mut self, rec: &CampaignRecord) {
        let Some(app) = self.ctx.apps.get(&rec.spec.app).cloned() else {
            tracing::error!(
                campaign = rec.id,
                app = rec.spec.app,
                "campaign names an app that is no longer configured"
            );
            return;
        };
        let run = Arc::new(CampaignRun::new(rec, self.ctx.store.identity(), app, &self.ctx.shutdown));
        let first_in_process = self.replay_checked.insert(rec.id);
        let task = tokio::spawn(run_campaign(self.ctx.clone(), run.clone(), self.tx.clone(), first_in_process));
        tracing::info!(campaign = rec.id, mode = ?rec.spec.mode, "campaign running");
        self.runs.insert(rec.id, (run, task));
    }

    async fn stop_all(&mut self) {
        for (run, _) in self.runs.values() {
            run.stop.cancel();
        }
        for (_, (_, task)) in self.runs.drain() {
            let _ = task.await;
        }
    }
}

/// Drives one campaign: prepares it by mode, then feeds its chunks to the shards.
async fn run_campaign(ctx: Arc<Context>, run: Arc<CampaignRun>, tx: mpsc::Sender<Work>, first_in_process: bool) {
    match run.spec.mode {
        Mode::App => return run_app_push(&ctx, &run).await,
        Mode::List => {
            if let Upstream::Getui(client) = &run.app.upstream {
                if !ensure_list_task(&ctx, &run, client).await {
                    return;
                }
            }
            if first_in_process {
                settle_inflight(&ctx, &run).await;
            }
        }
        Mode::BatchSingle | Mode::Auto => {}
    }
    feed(&ctx, &run, &tx).await;
    run.wait_drained().await;
}

/// Hands every pending chunk to the shards, in order, until none is left or the run stops.
async fn feed(ctx: &Context, run: &Arc<CampaignRun>, tx: &mpsc::Sender<Work>) {
    let mut cursor = 0;
    loop {
        if run.stop.is_cancelled() {
            return;
        }
        let batch = match ctx.store.pending_chunks(run.id, cursor, 16).await {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(campaign = run.id, error = %e, "cannot read chunks");
                return;
            }
        };
        if batch.is_empty() {
            return;
        }
        for (seq, chunk) in batch {
            cursor = seq + 1;
            run.outstanding.fetch_add(1, Ordering::AcqRel);
            let work = Work { run: run.clone(), seq, chunk };
            tokio::select! {
                _ = run.stop.cancelled() => return, // `work` is dropped: released
                sent = tx.send(work) => if sent.is_err() { return },
            }
        }
    }
}

async fn shard_loop(ctx: Arc<Context>, rx: Arc<Mutex<mpsc::Receiver<Work>>>) {
    loop {
        let work = {
            let mut rx = rx.lock().await;
            tokio::select! {
                _ = ctx.shutdown.cancelled() => None,
                w = rx.recv() => w,
            }
        };
        let Some(work) = work else { return };
        if work.run.stop.is_cancelled() {
            continue; // paused or cancelled before it was sent: released
        }
        ctx.metrics.chunks_inflight.inc();
        let started = std::time::Instant::now();
        if let Some(counts) = send_chunk(&ctx, &work.run, work.seq, &work.chunk).await {
            acknowledge(&ctx, &work.run, work.seq, counts).await;
            ctx.metrics.chunk_duration_seconds.observe(started.elapsed().as_secs_f64());
        }
        ctx.metrics.chunks_inflight.dec();
    }
}

async fn acknowledge(ctx: &Context, run: &CampaignRun, seq: u64, counts: Counts) {
    for (result, n) in &counts.0 {
        ctx.metrics
            .recipients_total
            .with_label_values(&[run.app.name.as_str(), run.spec.channel.as_str(), result.as_str()])
            .inc_by(*n);
    }
    if let Err(e) = ctx.store.ack(Ack { campaign: run.id, seq, counts }).await {
        tracing::error!(campaign = run.id, seq, error = %e, "cannot record a sent chunk; it will be sent again");
    }
}

/// Creates the campaign's list task once (a fixed request_id makes a repeat harmless).
async fn ensure_list_task(ctx: &Context, run: &CampaignRun, client: &GetuiClient) -> bool {
    if run.list_taskid.get().is_some() {
        return true;
    }
    let Ok(rid) = RequestId::derive(&run.request_key, RequestId::MAX_CHUNK, 0) else {
        return false;
    };
    let msg = run.getui.list_message(rid.as_str());
    match send::call(ctx, run, || client.create_list_message(&msg)).await {
        Outcome::Done(taskid) => match ctx.store.change(run.id, Change::SetListTask(taskid.clone())).await {
            Ok(_) => run.list_taskid.set(taskid).is_ok() || run.list_taskid.get().is_some(),
            Err(e) => {
                tracing::error!(campaign = run.id, error = %e, "cannot store the list task");
                false
            }
        },
        Outcome::GaveUp(r) => {
            fail(ctx, run, format!("the upstream refused to create the list task ({})", r.as_str())).await;
            false
        }
        Outcome::Abandoned => false,
    }
}

/// Sends a chunk by the campaign's channel and mode; `None` when abandoned at shutdown. The
/// channel's module sends, and `send` holds what the channels share, so neither imports the
/// other.
async fn send_chunk(ctx: &Context, run: &CampaignRun, seq: u64, chunk: &Chunk) -> Option<Counts> {
    match (&run.app.upstream, run.spec.mode) {
        (Upstream::Wecom(client), _) => wecom::send_users(ctx, run, client, seq, chunk).await,
        (Upstream::Getui(client), Mode::BatchSingle) => send::send_batch(ctx, run, client, seq, chunk).await,
        (Upstream::Getui(client), _) => send::send_list(ctx, run, client, seq, chunk).await,
    }
}

/// List chunks that were in flight when the daemon last died: send again (at-least-once,
/// counted as replayed) or record them as skipped (at-most-once).
async fn settle_inflight(ctx: &Context, run: &CampaignRun) {
    let seqs = match ctx.store.inflight_chunks(run.id).await {
        Ok(s) if !s.is_empty() => s,
        _ => return,
    };
    let mut replayed = 0u64;
    for seq in seqs {
        let Ok(found) = ctx.store.pending_chunks(run.id, seq, 1).await else {
            continue;
        };
        let Some((_, chunk)) = found.into_iter().find(|(s, _)| *s == seq) else {
            continue;
        };
        match run.spec.settings.replay {
            Replay::AtLeastOnce => replayed += chunk.len() as u64,
            Replay::AtMostOnce => {
                let mut counts = Counts::default();
                counts.add(ResultName::SkippedAfterCrash, chunk.len() as u64);
                acknowledge(ctx, run, seq, counts).await;
            }
        }
    }
    if replayed > 0 {
        tracing::warn!(campaign = run.id, replayed, "re-sending list chunks that were in flight at the last stop");
        if let Err(e) = ctx.store.change(run.id, Change::AddReplayed(replayed)).await {
            tracing::error!(campaign = run.id, error = %e, "cannot record replayed recipients");
        }
    }
}

/// App campaigns: one `/push/all` or `/push/tag` call; the upstream fans out.
async fn run_app_push(ctx: &Context, run: &CampaignRun) {
    let Ok(rid) = RequestId::derive(&run.request_key, RequestId::MAX_CHUNK, 1) else {
        return;
    };
    let Upstream::Getui(client) = &run.app.upstream else {
        return fail(ctx, run, "app-wide pushes need a Getui app".into()).await;
    };
    if let Some(taskid) = &run.app_taskid {
        // Pushed earlier with schedule_time: Getui fired it; nothing to send again.
        if let Err(e) = ctx.store.change(run.id, Change::SetAppTask(taskid.clone(), now_ms())).await {
            tracing::error!(campaign = run.id, error = %e, "cannot complete an upstream-held schedule");
        }
        return;
    }
    let outcome = match run.getui.app_push(rid.as_str()) {
        AppPush::All(push) => send::call(ctx, run, || client.push_all(&push)).await,
        AppPush::Tag(push) => send::call(ctx, run, || client.push_tag(&push)).await,
    };
    match outcome {
        Outcome::Done(taskid) => {
            if let Err(e) = ctx.store.change(run.id, Change::SetAppTask(taskid, now_ms())).await {
                tracing::error!(campaign = run.id, error = %e, "cannot record the app task");
            }
        }
        Outcome::GaveUp(r) => fail(ctx, run, format!("the upstream refused the app push ({})", r.as_str())).await,
        Outcome::Abandoned => {}
    }
}

async fn fail(ctx: &Context, run: &CampaignRun, why: String) {
    tracing::error!(campaign = run.id, reason = why, "campaign failed");
    let _ = ctx.store.change(run.id, Change::Fail(why, now_ms())).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Action;
    use crate::store::{SledStore, StoreSettings};

    use crate::domain::campaign::sample_spec as spec;

    #[tokio::test]
    async fn a_scheduler_pass_reads_only_the_unfinished_campaigns() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(&StoreSettings { path: dir.path().to_path_buf(), cache_bytes: 8 << 20 }).unwrap();
        for _ in 0..300 {
            let rec = store.create(spec(), 1).await.unwrap();
            store.change(rec.id, Change::Act(Action::Cancel, 2)).await.unwrap();
        }
        for _ in 0..2 {
            store.create(spec(), 3).await.unwrap();
        }
        let metrics = Arc::new(Metrics::new());
        let ctx = Context {
            store: store.clone(),
            apps: HashMap::new(),
            metrics: metrics.clone(),
            policy: RetryPolicy::default(),
            shutdown: CancellationToken::new(),
        };
        let (tx, _rx) = mpsc::channel(4);
        let mut scheduler = Scheduler::new(Arc::new(ctx), tx);
        // The first pass also looks, once, for finished app campaigns to follow up.
        scheduler.tick().await;
        let before = store.campaign_reads();
        for _ in 0..5 {
            scheduler.tick().await;
        }
        assert_eq!(store.campaign_reads() - before, 5 * 2, "two unfinished campaigns, read once a pass");
        assert_eq!(metrics.campaigns.with_label_values(&["cancelled"]).get(), 300, "counted without reading");
        assert_eq!(metrics.campaigns.with_label_values(&["draft"]).get(), 2);
        store.close().await.unwrap();
    }
}
