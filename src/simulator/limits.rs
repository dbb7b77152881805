//! Fixed-window counters for the upstream's per-minute and per-day limits.
//!
//! Getui counts calls in calendar windows (a minute, a day), not with a smooth bucket, so the
//! simulator does the same: a window holds `limit` hits and opens again when the next one begins.

use std::sync::Mutex;
use std::time::Duration;

use super::ledger::lock;

/// The documented limits, each `None` when unlimited.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// `/auth` calls per minute (10003 beyond). Documented: 100.
    pub auth_per_minute: Option<u64>,
    /// `/auth` calls per day (10003 beyond). Documented: 100 000.
    pub auth_per_day: Option<u64>,
    /// `/push/all` + `/push/tag` calls per minute (30014 beyond). Documented: 5.
    pub app_push_per_minute: Option<u64>,
    /// `/push/all` + `/push/tag` calls per day (30007 / 30010 beyond). Documented: 100.
    pub app_push_per_day: Option<u64>,
    /// Cids pushed through list pushes per day (30008 beyond). Documented: 2 000 000.
    pub list_cids_per_day: Option<u64>,
    /// List push calls per minute (30015 beyond). The value is not documented: unlimited unless set.
    pub list_calls_per_minute: Option<u64>,
    /// Business calls per minute (10005 beyond). Not documented: unlimited unless set.
    pub calls_per_minute: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            auth_per_minute: Some(100),
            auth_per_day: Some(100_000),
            app_push_per_minute: Some(5),
            app_push_per_day: Some(100),
            list_cids_per_day: Some(2_000_000),
            list_calls_per_minute: None,
            calls_per_minute: None,
        }
    }
}

impl Limits {
    /// No limit at all (load tests of the daemon itself).
    pub fn unlimited() -> Self {
        Limits {
            auth_per_minute: None,
            auth_per_day: None,
            app_push_per_minute: None,
            app_push_per_day: None,
            list_cids_per_day: None,
            list_calls_per_minute: None,
            calls_per_minute: None,
        }
    }
}

/// One limit counted in fixed windows of `window` length.
pub struct FixedWindow {
    limit: Option<u64>,
    window_ms: u64,
    state: Mutex<(u64, u64)>, // (window index, hits in it)
}

impl FixedWindow {
    /// A counter allowing `limit` hits per `window` (`None`: unlimited).
    pub fn new(limit: Option<u64>, window: Duration) -> Self {
        let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX).max(1);
        FixedWindow { limit, window_ms, state: Mutex::new((0, 0)) }
    }

    /// Takes `n` hits at wall-clock `now_ms` if they fit in the current window.
    pub fn try_take(&self, now_ms: u64, n: u64) -> bool {
        let Some(limit) = self.limit else { return true };
        let index = now_ms / self.window_ms;
        let mut st = lock(&self.state);
        if st.0 != index {
            *st = (index, 0);
        }
        if st.1 + n > limit {
            return false;
        }
        st.1 += n;
        true
    }

    /// Gives back hits taken by a request that failed a later check.
    pub fn give_back(&self, now_ms: u64, n: u64) {
        let index = now_ms / self.window_ms;
        let mut st = lock(&self.state);
        if st.0 == index {
            st.1 = st.1.saturating_sub(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_fills_and_reopens() {
        let w = FixedWindow::new(Some(5), Duration::from_secs(60));
        let t0 = 60_000 * 10;
        assert!((0..5).all(|_| w.try_take(t0, 1)));
        assert!(!w.try_take(t0 + 59_999, 1));
        assert!(w.try_take(t0 + 60_000, 1));
    }

    #[test]
    fn multi_hit_takes_are_all_or_nothing() {
        let w = FixedWindow::new(Some(1500), Duration::from_secs(86_400));
        assert!(w.try_take(0, 1000));
        assert!(!w.try_take(0, 1000));
        assert!(w.try_take(0, 500));
        w.give_back(0, 500);
        assert!(w.try_take(0, 500));
    }

    #[test]
    fn unlimited_never_refuses() {
        let w = FixedWindow::new(None, Duration::from_secs(1));
        assert!((0..10_000).all(|_| w.try_take(0, 1000)));
    }
}
