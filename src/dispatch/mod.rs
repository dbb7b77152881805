//! The dispatcher: a scheduler that starts due campaigns, one runner per running campaign that
//! feeds its pending chunks, and N shard tasks that send them under the campaign's speed bucket
//! and the app's call bucket, then acknowledge the results to the store.
//!
//! The decisions live in [`decide`], free of I/O; the files here are the async shell that
//! moves bytes and time around them: `scheduler` (passes over the campaigns), `runner` (one
//! campaign: crash replay, then the feed), `getui_tasks` (the list task, the app push),
//! `shard` (lease, send, acknowledge), `send` and `wecom` (one chunk through each channel),
//! `failure` (upstream errors as the core reads them), `apps` and `app_tasks`.
//!
//! Several daemons on one shared store (NATS) share a running campaign's chunks through chunk
//! leases: every daemon's runner feeds every pending chunk, and a shard sends a chunk only
//! once it holds its lease (see `shard`); a lease that expired because its holder died is
//! taken over, and the campaign's replay policy decides about a chunk it left in flight.
//!
//! Ownership and shutdown: [`Dispatcher::run`] owns the scheduler, the runners and the shards.
//! Cancelling its token stops leasing; a shard finishes the call it is in (or abandons a retry
//! wait), acknowledges what it got, and exits; unsent chunks simply stay pending in the store.

mod app_tasks;
mod apps;
pub mod decide;
mod failure;
mod getui_tasks;
mod membership;
mod runner;
mod scheduler;
mod send;
mod shard;
#[cfg(test)]
mod testing;
mod texting;
mod wecom;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::{mpsc, Mutex, Notify};
use tokio_util::sync::CancellationToken;

pub use apps::{AppSender, SmsGateway, Upstream};
pub use decide::retry::RetryPolicy;

use crate::clock::now_ms;
use crate::domain::{CampaignSpec, RequestKey, StoreIdentity};
use crate::metrics::Metrics;
use crate::render::getui::GetuiRenderer;
use crate::store::{CampaignRecord, Chunk, Store};
use decide::parts::PartPlan;
use scheduler::Scheduler;

/// Dispatcher knobs (from `[dispatch]` in the configuration).
#[derive(Debug, Clone)]
pub struct DispatchSettings {
    /// Shard tasks sending concurrently.
    pub shards: usize,
    /// How often the scheduler looks for due and changed campaigns.
    pub poll_interval: Duration,
    /// Retry limits and backoff.
    pub retry: RetryPolicy,
    /// This daemon's name among the daemons sharing a store: the holder of its chunk leases.
    pub member: String,
    /// How long a chunk lease lasts unless renewed (the ack wait, `store.nats.lease_ms`).
    pub lease: Duration,
}

/// A fresh random member id: 6 bytes in hex, made at each start, so a restarted daemon never
/// mistakes a lease of its previous life for its own.
pub fn new_member_id() -> String {
    let mut b = [0u8; 6];
    if getrandom::fill(&mut b).is_err() {
        // No random source: the process id and the time still differ between daemons.
        let t = now_ms().to_be_bytes();
        let pid = std::process::id().to_be_bytes();
        b = [pid[2], pid[3], t[4], t[5], t[6], t[7]];
    }
    hex::encode(b)
}

impl Default for DispatchSettings {
    fn default() -> Self {
        DispatchSettings {
            shards: 16,
            poll_interval: Duration::from_millis(200),
            retry: RetryPolicy::default(),
            member: new_member_id(),
            lease: Duration::from_millis(crate::config::DEFAULT_LEASE_MS),
        }
    }
}

/// What every task of the dispatcher shares.
pub(crate) struct Context {
    store: Arc<dyn Store>,
    apps: HashMap<String, Arc<AppSender>>,
    metrics: Arc<Metrics>,
    policy: RetryPolicy,
    shutdown: CancellationToken,
    /// Daemons sending from this store now (1 on sled), kept by the membership loop.
    members: Arc<membership::Members>,
    /// The holder name of this daemon's chunk leases.
    member: String,
    /// How long a chunk lease lasts unless renewed.
    lease: Duration,
}

impl Context {
    /// The chunk lease's time, ms (`store.nats.lease_ms`).
    fn lease_ms(&self) -> u64 {
        u64::try_from(self.lease.as_millis()).unwrap_or(u64::MAX)
    }
}

/// A running campaign as the shards see it.
pub(crate) struct CampaignRun {
    id: u64,
    /// What the campaign's request ids are made from.
    request_key: RequestKey,
    spec: CampaignSpec,
    app: Arc<AppSender>,
    /// The campaign's whole pacing plan (speed, burst, part size).
    plan: PartPlan,
    /// This daemon's share of it, for the number of daemons it was made for.
    pacing: std::sync::RwLock<Arc<Pacing>>,
    /// A paced campaign's chunks this daemon holds handed out at once (`None`: unpaced, no
    /// bound). More would only wait for the bucket, in shards other campaigns need and with
    /// chunks other daemons could send.
    lease_slots: Option<Arc<tokio::sync::Semaphore>>,
    list_taskid: OnceLock<String>,
    /// The app task of an app campaign already pushed (a schedule Getui held).
    app_taskid: Option<String>,
    /// The campaign's Getui bodies, prepared once for the run.
    getui: GetuiRenderer,
    /// Cancelled when the campaign leaves `running` (pause, cancel) or the daemon stops.
    stop: CancellationToken,
    outstanding: AtomicUsize,
    drained: Notify,
    /// The chunks handed to this process's shards and not yet settled. A pass of the feed
    /// starts only once the previous one drained, so no chunk is handed out twice today; this
    /// keeps it so, because on sled (every lease `Taken`) a chunk handed to two shards would
    /// be sent twice.
    handed: std::sync::Mutex<HashSet<u64>>,
    /// The campaign has `sms_fallback` and its app an SMS gateway: the shards keep each
    /// recipient's push answer for the texting.
    texting: bool,
}

impl CampaignRun {
    fn new(rec: &CampaignRecord, store: StoreIdentity, app: Arc<AppSender>, parent: &CancellationToken) -> CampaignRun {
        let spec = rec.spec.clone();
        let plan = PartPlan::new(spec.mode, spec.settings.speed);
        let list_taskid = OnceLock::new();
        if let Some(t) = &rec.list_taskid {
            let _ = list_taskid.set(t.clone());
        }
        let getui = GetuiRenderer::new(&spec);
        let texting = spec.settings.sms_fallback.is_some() && app.sms.is_some();
        if spec.settings.sms_fallback.is_some() && !texting {
            tracing::warn!(campaign = rec.id, app = %app.name, "sms_fallback set but the app has no [apps.NAME.sms]: nobody will be texted");
        }
        CampaignRun {
            texting,
            id: rec.id,
            request_key: rec.request_key(store),
            spec,
            app,
            plan,
            pacing: std::sync::RwLock::new(Arc::new(Pacing::new(plan, 1))),
            lease_slots: plan.speed.is_some().then(|| Arc::new(tokio::sync::Semaphore::new(PACED_CHUNKS_LEASED))),
            list_taskid,
            app_taskid: rec.app_taskid.clone(),
            getui,
            stop: parent.child_token(),
            outstanding: AtomicUsize::new(0),
            drained: Notify::new(),
            handed: std::sync::Mutex::new(HashSet::new()),
        }
    }

    /// This daemon's pacing for `members` daemons sending together: made again when the
    /// number changed (the new bucket starts full, which the divided burst keeps small).
    fn pacing(&self, members: usize) -> Arc<Pacing> {
        let current = self.pacing.read().unwrap_or_else(|p| p.into_inner()).clone();
        if current.members == members {
            return current;
        }
        let fresh = Arc::new(Pacing::new(self.plan, members));
        *self.pacing.write().unwrap_or_else(|p| p.into_inner()) = fresh.clone();
        fresh
    }

    /// One recipient's SMS parameters, when the campaign texts and they use its `${vars}`
    /// (otherwise the campaign's own are used when the texts are due).
    fn sms_params<'v>(&self, vars: &dyn Fn(&str) -> Option<&'v str>) -> Vec<String> {
        match &self.spec.settings.sms_fallback {
            Some(f) if self.texting && f.has_variables() => f.params_for(vars),
            _ => Vec::new(),
        }
    }

    /// Waits until one more of the campaign's chunks may be handed out: at once for an
    /// unpaced campaign; for a paced one, once fewer than [`PACED_CHUNKS_LEASED`] are out. The
    /// slot goes with the chunk and is freed when it settles.
    async fn admit(&self) -> Option<Option<tokio::sync::OwnedSemaphorePermit>> {
        match &self.lease_slots {
            None => Some(None),
            Some(slots) => slots.clone().acquire_owned().await.ok().map(Some),
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

/// Chunks of a paced campaign one daemon holds leased at once: one being sent and one ready.
const PACED_CHUNKS_LEASED: usize = 2;

/// A campaign's bucket and part size on this daemon, for a number of daemons sharing it.
pub(crate) struct Pacing {
    members: usize,
    /// The `speed` bucket; `None` when unlimited.
    limiter: Option<DefaultDirectRateLimiter>,
    /// Most recipients per upstream call: the endpoint's limit, or the burst if smaller.
    part_size: usize,
}

impl Pacing {
    fn new(plan: PartPlan, members: usize) -> Pacing {
        let share = plan.shared(members);
        let limiter = share.speed.map(|(rate, burst)| RateLimiter::direct(Quota::per_second(rate).allow_burst(burst)));
        Pacing { members, limiter, part_size: share.part_size }
    }
}

/// A chunk handed to a shard. Dropping it, sent or not, releases the campaign's count of
/// outstanding chunks, so a runner can tell when everything it handed out is settled, and
/// frees its slot of a paced campaign's ([`CampaignRun::admit`]).
struct Work {
    run: Arc<CampaignRun>,
    seq: u64,
    chunk: Chunk,
    _slot: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl Work {
    /// Hands chunk `seq` out, counting it outstanding; `None` when this process holds it
    /// already (handed out by an earlier pass and not settled).
    fn hand_out(
        run: &Arc<CampaignRun>,
        seq: u64,
        chunk: Chunk,
        slot: Option<tokio::sync::OwnedSemaphorePermit>,
    ) -> Option<Work> {
        if !run.handed.lock().unwrap_or_else(|p| p.into_inner()).insert(seq) {
            return None;
        }
        run.outstanding.fetch_add(1, Ordering::AcqRel);
        Some(Work { run: run.clone(), seq, chunk, _slot: slot })
    }
}

impl Drop for Work {
    fn drop(&mut self) {
        self.run.handed.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.seq);
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
        tracing::info!(member = %settings.member, lease_ms = settings.lease.as_millis() as u64, "dispatcher member id");
        let members = Arc::new(membership::Members::new(settings.member.clone()));
        let ctx = Context {
            store,
            apps,
            metrics,
            policy: settings.retry.clone(),
            shutdown,
            member: settings.member.clone(),
            lease: settings.lease,
            members,
        };
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
        let shards: Vec<_> = (0..self.settings.shards.max(1))
            .map(|_| tokio::spawn(shard::shard_loop(self.ctx.clone(), rx.clone())))
            .collect();
        let texting = tokio::spawn(texting::texting_loop(self.ctx.clone()));
        let membership = tokio::spawn(membership::heartbeat_loop(self.ctx.clone()));
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
        let _ = texting.await;
        let _ = membership.await;
        drop(rx);
        scheduler.stop_all().await;
    }
}
