//! The scheduler: one pass every poll interval (or on a wake-up) reads the active campaigns,
//! sets the campaign gauges, starts app-task follow-ups, and carries out what
//! [`schedule::pass`] decides: begin due schedules, start and stop campaign runners.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tokio::sync::mpsc;

use super::decide::gauges::{self, CampaignProgress};
use super::decide::schedule::{self, CampaignView, SchedulerAction};
use super::{app_tasks, runner, CampaignRun, Context, Work};
use crate::clock::now_ms;
use crate::domain::Mode;
use crate::store::{CampaignRecord, Change, PageQuery};

/// Starts, stops and watches campaign runners.
pub(super) struct Scheduler {
    ctx: Arc<Context>,
    runs: HashMap<u64, (Arc<CampaignRun>, tokio::task::JoinHandle<()>)>,
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
        let mut progress = Vec::with_capacity(active.len());
        let mut unacked_chunks = 0;
        for r in active {
            let (done, acked) =
                ctx.store.progress(r.id).await.map(|p| (p.counts.total(), p.acked_chunks)).unwrap_or((0, 0));
            unacked_chunks += r.chunk_count.saturating_sub(acked);
            let (id, app, state, recipients) = (r.id, r.spec.app.as_str(), r.state, r.recipients);
            progress.push(CampaignProgress { id, app, state, recipients, done });
        }
        for p in &progress {
            let id = p.id.to_string();
            m.campaign_progress_ratio.with_label_values(&[id.as_str(), p.app]).set(p.ratio());
            self.progress_series.insert(p.id, p.app.to_owned());
        }
        // Finished or deleted since the last pass: drop their series, keeping the set bounded
        // by the active campaigns.
        let seen: HashSet<u64> = progress.iter().map(|p| p.id).collect();
        self.progress_series.retain(|id, app| {
            let keep = seen.contains(id);
            if !keep {
                let _ = m.campaign_progress_ratio.remove_label_values(&[id.to_string().as_str(), app.as_str()]);
            }
            keep
        });
        let values = gauges::recipients(ctx.apps.keys().map(String::as_str), &progress);
        for (app, n) in values.pending {
            m.pending_recipients.with_label_values(&[app]).set(n);
        }
        for ((app, state), n) in values.waiting {
            m.waiting_recipients.with_label_values(&[app, state.as_str()]).set(n);
        }
        if let Ok(bytes) = ctx.store.size_on_disk().await {
            m.store_size_bytes.set(bytes as i64);
        }
        match ctx.store.queued_chunk_messages().await {
            Ok(Some(n)) => m.queued_chunks.set(n as i64),
            Ok(None) => m.queued_chunks.set(unacked_chunks as i64),
            Err(e) => tracing::debug!(error = %e, "cannot count the queued chunks"),
        }
    }
}

impl Scheduler {
    pub(super) fn new(ctx: Arc<Context>, tx: mpsc::Sender<Work>) -> Scheduler {
        Scheduler {
            ctx,
            runs: HashMap::new(),
            tx,
            follow_ups: Default::default(),
            gauges: Gauges::default(),
            followed: None,
        }
    }

    /// One pass: reads only the campaigns that are not finished (an index), so its cost
    /// follows the active campaigns however long the history.
    pub(super) async fn tick(&mut self) {
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
        let views: Vec<CampaignView> = active
            .iter()
            .map(|r| CampaignView { id: r.id, state: r.state, schedule_at_ms: r.spec.settings.schedule_at_ms })
            .collect();
        let runners: HashSet<u64> = self.runs.keys().copied().collect();
        for action in schedule::pass(&views, &runners, now) {
            match action {
                SchedulerAction::Begin(id) => {
                    if let Err(e) = self.ctx.store.change(id, Change::Begin(now)).await {
                        tracing::warn!(campaign = id, error = %e, "cannot begin a scheduled campaign");
                    }
                }
                SchedulerAction::Start(id) => {
                    if let Some(rec) = active.iter().find(|r| r.id == id) {
                        self.start(rec);
                    }
                }
                SchedulerAction::Stop(id) => {
                    if let Some((run, _)) = self.runs.get(&id) {
                        run.stop.cancel();
                    }
                }
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
        let task = tokio::spawn(runner::run_campaign(self.ctx.clone(), run.clone(), self.tx.clone()));
        tracing::info!(campaign = rec.id, mode = ?rec.spec.mode, "campaign running");
        self.runs.insert(rec.id, (run, task));
    }

    pub(super) async fn stop_all(&mut self) {
        for (run, _) in self.runs.values() {
            run.stop.cancel();
        }
        for (_, (_, task)) in self.runs.drain() {
            let _ = task.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::RetryPolicy;
    use crate::domain::Action;
    use crate::metrics::Metrics;
    use crate::store::{SledStore, Store, StoreSettings};
    use tokio_util::sync::CancellationToken;

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
            members: Arc::new(super::super::membership::Members::new("test-member".into())),
            member: "test-member".into(),
            lease: std::time::Duration::from_secs(30),
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
