//! The recipient gauges of a scheduler pass: per app, how many recipients the running
//! campaigns still have to send (`pending`), and how many wait in other active states.

use std::collections::HashMap;

use crate::domain::CampaignState;

/// States in which a campaign's recipients wait for something other than the dispatcher.
pub const WAITING_STATES: [CampaignState; 3] = [CampaignState::Draft, CampaignState::Scheduled, CampaignState::Paused];

/// What the gauges need of an active campaign.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CampaignProgress<'a> {
    /// The campaign.
    pub id: u64,
    /// Its app.
    pub app: &'a str,
    /// Its state.
    pub state: CampaignState,
    /// Recipients uploaded.
    pub recipients: u64,
    /// Recipients with a result so far.
    pub done: u64,
}

impl CampaignProgress<'_> {
    /// Recipients without a result yet.
    pub fn left(&self) -> i64 {
        self.recipients.saturating_sub(self.done) as i64
    }

    /// The share done, 0 for a campaign without recipients.
    pub fn ratio(&self) -> f64 {
        if self.recipients == 0 {
            0.0
        } else {
            self.done as f64 / self.recipients as f64
        }
    }
}

/// The recipient gauge values of a pass. Every configured app has a value in each series, 0
/// when nothing is left, so a finished app's gauge falls to 0 rather than freezing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecipientGauges<'a> {
    /// App → recipients of running campaigns not yet sent (the stall alert watches these).
    pub pending: HashMap<&'a str, i64>,
    /// (app, waiting state) → recipients of campaigns waiting for a start, schedule or resume.
    pub waiting: HashMap<(&'a str, CampaignState), i64>,
}

/// The values for the configured `apps` over the `active` campaigns.
pub fn recipients<'a>(apps: impl Iterator<Item = &'a str>, active: &[CampaignProgress<'a>]) -> RecipientGauges<'a> {
    let mut g = RecipientGauges::default();
    for app in apps {
        g.pending.insert(app, 0);
        for state in WAITING_STATES {
            g.waiting.insert((app, state), 0);
        }
    }
    for c in active {
        match c.state {
            CampaignState::Running => *g.pending.entry(c.app).or_insert(0) += c.left(),
            state => *g.waiting.entry((c.app, state)).or_insert(0) += c.left(),
        }
    }
    g
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(id: u64, app: &str, state: CampaignState, recipients: u64, done: u64) -> CampaignProgress<'_> {
        CampaignProgress { id, app, state, recipients, done }
    }

    #[test]
    fn pending_sums_what_running_campaigns_have_left_per_app() {
        let active = [
            progress(1, "a", CampaignState::Running, 100, 40),
            progress(2, "a", CampaignState::Running, 10, 0),
            progress(3, "b", CampaignState::Running, 5, 9),
        ];
        let g = recipients(["a", "b", "idle"].into_iter(), &active);
        assert_eq!(g.pending, HashMap::from([("a", 70), ("b", 0), ("idle", 0)]), "over-counted done is 0 left");
    }

    #[test]
    fn waiting_campaigns_are_counted_by_state_and_every_app_state_pair_is_reset() {
        let active =
            [progress(1, "a", CampaignState::Paused, 100, 30), progress(2, "a", CampaignState::Scheduled, 20, 0)];
        let g = recipients(["a", "b"].into_iter(), &active);
        assert_eq!(g.waiting.len(), 6, "two apps × three waiting states");
        assert_eq!(g.waiting[&("a", CampaignState::Paused)], 70);
        assert_eq!(g.waiting[&("a", CampaignState::Scheduled)], 20);
        assert_eq!(g.waiting[&("a", CampaignState::Draft)], 0);
        assert_eq!(g.waiting[&("b", CampaignState::Paused)], 0);
        assert_eq!(g.pending, HashMap::from([("a", 0), ("b", 0)]));
    }

    #[test]
    fn progress_is_the_share_done_and_zero_without_recipients() {
        assert_eq!(progress(1, "a", CampaignState::Running, 4, 1).ratio(), 0.25);
        assert_eq!(progress(1, "a", CampaignState::Running, 0, 0).ratio(), 0.0);
    }
}
