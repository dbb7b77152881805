//! A scheduler pass's decisions: which scheduled campaigns begin, which running campaigns get
//! a runner, and which runners stop because their campaign no longer runs.

use std::collections::HashSet;

use crate::domain::CampaignState;

/// What a pass needs to know of an active (unfinished) campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CampaignView {
    /// The campaign.
    pub id: u64,
    /// Its state now.
    pub state: CampaignState,
    /// When a scheduled campaign is due, ms since the epoch.
    pub schedule_at_ms: Option<i64>,
}

/// One thing the pass does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchedulerAction {
    /// The campaign's schedule is due: move it to running (its runner starts next pass).
    Begin(u64),
    /// The campaign runs but has no runner: start one.
    Start(u64),
    /// The runner's campaign is no longer running (paused, cancelled, failed, gone): stop it.
    Stop(u64),
}

/// The actions of a pass at `now` over the active campaigns (in the order given) and the
/// campaigns that have a live runner: begins and starts in campaign order, then stops.
pub fn pass(active: &[CampaignView], runners: &HashSet<u64>, now: i64) -> Vec<SchedulerAction> {
    let mut actions = Vec::new();
    for c in active {
        match c.state {
            CampaignState::Scheduled if c.schedule_at_ms.is_some_and(|t| t <= now) => {
                actions.push(SchedulerAction::Begin(c.id))
            }
            CampaignState::Running if !runners.contains(&c.id) => actions.push(SchedulerAction::Start(c.id)),
            _ => {}
        }
    }
    let running: HashSet<u64> = active.iter().filter(|c| c.state == CampaignState::Running).map(|c| c.id).collect();
    let mut stopping: Vec<u64> = runners.iter().copied().filter(|id| !running.contains(id)).collect();
    stopping.sort_unstable();
    actions.extend(stopping.into_iter().map(SchedulerAction::Stop));
    actions
}

#[cfg(test)]
mod tests {
    use super::*;
    use SchedulerAction::*;

    fn view(id: u64, state: CampaignState, schedule_at_ms: Option<i64>) -> CampaignView {
        CampaignView { id, state, schedule_at_ms }
    }

    #[test]
    fn a_scheduled_campaign_begins_once_its_time_has_come_and_not_before() {
        let active = [
            view(1, CampaignState::Scheduled, Some(1_000)),
            view(2, CampaignState::Scheduled, Some(1_001)),
            view(3, CampaignState::Scheduled, None),
        ];
        assert_eq!(pass(&active, &HashSet::new(), 1_000), [Begin(1)]);
        assert_eq!(pass(&active, &HashSet::new(), 999), []);
    }

    #[test]
    fn a_running_campaign_without_a_runner_gets_one_and_one_with_a_runner_is_left_alone() {
        let active = [view(4, CampaignState::Running, None), view(5, CampaignState::Running, None)];
        assert_eq!(pass(&active, &HashSet::from([5]), 0), [Start(4)]);
        assert_eq!(pass(&active, &HashSet::from([4, 5]), 0), []);
    }

    #[test]
    fn runners_stop_when_their_campaign_is_paused_cancelled_or_gone() {
        let active = [
            view(1, CampaignState::Paused, None),
            view(2, CampaignState::Cancelled, None),
            view(3, CampaignState::Running, None),
        ];
        let runners = HashSet::from([1, 2, 3, 9]);
        assert_eq!(pass(&active, &runners, 0), [Stop(1), Stop(2), Stop(9)]);
    }

    #[test]
    fn drafts_and_paused_campaigns_without_runners_are_left_waiting() {
        let active = [view(1, CampaignState::Draft, None), view(2, CampaignState::Paused, Some(0))];
        assert_eq!(pass(&active, &HashSet::new(), i64::MAX), []);
    }

    #[test]
    fn begins_and_starts_follow_the_campaign_order_before_any_stop() {
        let active = [
            view(7, CampaignState::Running, None),
            view(3, CampaignState::Scheduled, Some(0)),
            view(5, CampaignState::Running, None),
        ];
        assert_eq!(pass(&active, &HashSet::from([8]), 10), [Start(7), Begin(3), Start(5), Stop(8)]);
    }
}
