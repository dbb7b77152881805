//! Getui-side follow-up of app campaigns, which Getui fans out itself: the task's counts are
//! fetched after the push and refreshed every minute for a day, and a cancelled schedule that
//! Getui holds is deleted there too.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{Context, Upstream};
use crate::domain::{CampaignState, Mode};
use crate::store::{CampaignRecord, Change, UpstreamReport};
use crate::upstream::getui::GetuiClient;

/// How often an app task's counts are fetched again.
const REFRESH: Duration = Duration::from_secs(60);
/// How long after the push they keep changing enough to fetch.
const FOLLOW_FOR_MS: i64 = 86_400_000;

/// Which campaigns have a follow-up call in flight or done recently.
#[derive(Default)]
pub(super) struct FollowUps {
    /// Campaign → when its last follow-up started, ms since the epoch.
    last: Arc<Mutex<HashMap<u64, i64>>>,
}

impl FollowUps {
    /// Starts the follow-ups that are due among `records`; each runs on its own short task.
    pub(super) fn visit(&self, ctx: &Arc<Context>, records: &[CampaignRecord], now: i64) {
        for rec in records {
            let Some(taskid) = rec.app_taskid.clone() else { continue };
            let Some(Upstream::Getui(client)) = ctx.apps.get(&rec.spec.app).map(|a| &a.upstream) else { continue };
            let job = match rec.state {
                CampaignState::Cancelled if rec.spec.settings.upstream_schedule && rec.withdrawal.is_none() => {
                    Job::Withdraw
                }
                CampaignState::Completed | CampaignState::Scheduled
                    if rec.spec.mode == Mode::App
                        && rec.finished_ms.is_none_or(|f| now - f < FOLLOW_FOR_MS)
                        && self.due(rec.id, now) =>
                {
                    Job::Refresh
                }
                _ => continue,
            };
            self.mark(rec.id, now);
            let (ctx, client, id) = (ctx.clone(), client.clone(), rec.id);
            tokio::spawn(async move {
                tokio::select! {
                    _ = ctx.shutdown.cancelled() => {}
                    _ = job.run(&ctx, &client, id, &taskid) => {}
                }
            });
        }
    }

    fn due(&self, id: u64, now: i64) -> bool {
        let last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        last.get(&id).is_none_or(|t| now - t >= REFRESH.as_millis() as i64)
    }

    fn mark(&self, id: u64, now: i64) {
        self.last.lock().unwrap_or_else(|p| p.into_inner()).insert(id, now);
    }
}

/// Whether a campaign still wants a follow-up at `now`: an app task whose counts are still
/// changing, or a cancelled schedule Getui holds that was not yet withdrawn.
pub(super) fn wanted(rec: &CampaignRecord, now: i64) -> bool {
    if rec.app_taskid.is_none() {
        return false;
    }
    match rec.state {
        CampaignState::Cancelled => rec.spec.settings.upstream_schedule && rec.withdrawal.is_none(),
        CampaignState::Completed | CampaignState::Scheduled => {
            rec.spec.mode == Mode::App && rec.finished_ms.is_none_or(|f| now - f < FOLLOW_FOR_MS)
        }
        _ => false,
    }
}

enum Job {
    Refresh,
    Withdraw,
}

impl Job {
    async fn run(&self, ctx: &Context, client: &GetuiClient, id: u64, taskid: &str) {
        let change = match self {
            Job::Refresh => match client.report_task(taskid).await {
                Ok(data) => {
                    let Some(total) = data.get(taskid).and_then(|sections| sections.get("total")) else { return };
                    Change::SetUpstreamReport(UpstreamReport {
                        target: total.target_num,
                        received: total.receive_num,
                        displayed: total.display_num,
                        clicked: total.click_num,
                        fetched_ms: super::now_ms(),
                    })
                }
                Err(e) => {
                    tracing::debug!(campaign = id, error = %e, "cannot fetch the app task's report; trying later");
                    return;
                }
            },
            Job::Withdraw => match client.delete_schedule(taskid).await {
                Ok(()) => Change::SetWithdrawal("deleted: Getui will not send it".into()),
                Err(e) => {
                    tracing::warn!(campaign = id, error = %e, "cannot delete the scheduled task at Getui");
                    Change::SetWithdrawal(format!("not deleted at Getui: {e}"))
                }
            },
        };
        if let Err(e) = ctx.store.change(id, change).await {
            tracing::error!(campaign = id, error = %e, "cannot record an app task follow-up");
        }
    }
}
