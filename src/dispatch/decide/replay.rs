//! Crash replay: what becomes of list chunks that were in flight (maybe sent, never
//! acknowledged) when the daemon last stopped, by the campaign's `replay` setting.

use crate::domain::{Counts, Replay, ResultName};

/// A chunk marked in flight at the last stop and still pending: its seq and recipients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InflightChunk {
    /// The chunk.
    pub seq: u64,
    /// Its recipients.
    pub recipients: u64,
}

/// What to do about the chunks in flight at the last stop.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayPlan {
    /// Recipients of the chunks that stay pending and are sent again (at-least-once): added to
    /// the campaign's `replayed` before they go.
    pub replayed: u64,
    /// Chunks acknowledged without sending (at-most-once), with their counts, in seq order.
    pub skipped: Vec<(u64, Counts)>,
}

/// The plan for `inflight` under `replay`.
pub fn settle(inflight: &[InflightChunk], replay: Replay) -> ReplayPlan {
    let mut plan = ReplayPlan::default();
    for chunk in inflight {
        match replay {
            Replay::AtLeastOnce => plan.replayed += chunk.recipients,
            Replay::AtMostOnce => {
                let mut counts = Counts::default();
                counts.add(ResultName::SkippedAfterCrash, chunk.recipients);
                plan.skipped.push((chunk.seq, counts));
            }
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFLIGHT: [InflightChunk; 2] =
        [InflightChunk { seq: 3, recipients: 1000 }, InflightChunk { seq: 4, recipients: 250 }];

    #[test]
    fn at_least_once_resends_the_chunks_in_flight_and_counts_their_recipients_replayed() {
        let plan = settle(&INFLIGHT, Replay::AtLeastOnce);
        assert_eq!(plan, ReplayPlan { replayed: 1250, skipped: vec![] });
    }

    #[test]
    fn at_most_once_acknowledges_the_chunks_in_flight_as_skipped_after_crash() {
        let plan = settle(&INFLIGHT, Replay::AtMostOnce);
        assert_eq!(plan.replayed, 0, "nothing is sent twice");
        let skipped: Vec<(u64, u64)> =
            plan.skipped.iter().map(|(seq, c)| (*seq, c.get(ResultName::SkippedAfterCrash))).collect();
        assert_eq!(skipped, [(3, 1000), (4, 250)]);
        assert!(plan.skipped.iter().all(|(_, c)| c.0.len() == 1), "counted under that one result only");
    }

    #[test]
    fn nothing_in_flight_means_nothing_to_replay_or_skip() {
        assert_eq!(settle(&[], Replay::AtLeastOnce), ReplayPlan::default());
        assert_eq!(settle(&[], Replay::AtMostOnce), ReplayPlan::default());
    }
}
