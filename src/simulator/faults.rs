//! Fault profiles: the misbehaviour the simulated upstream injects, chosen by name.
//!
//! Each request draws from a seeded generator, so a run with the same seed and the same request
//! order misbehaves the same way.

use std::time::Duration;

/// Which faults to inject and how often.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultProfile {
    /// The profile's name, as given to `--profile`.
    pub name: &'static str,
    /// Fixed part of every answer's delay.
    pub latency_base: Duration,
    /// Mean of the exponentially distributed extra delay (a long tail, like a real network).
    pub latency_tail_mean: Duration,
    /// Share of requests answered with HTTP 5xx before doing anything.
    pub server_error_share: f64,
    /// Share of connections closed before the request is processed (nothing delivered).
    pub drop_before_share: f64,
    /// Share of connections closed after the request was processed (delivered, answer lost).
    pub drop_after_share: f64,
    /// Recurring windows in which every push is refused as rate-limited.
    pub rate_limit_burst: Option<RateLimitBurst>,
    /// Token lifetime override (short lifetimes exercise renewal).
    pub token_ttl: Option<Duration>,
}

/// Every `every`, the first `lasts` of the period refuses pushes with 10005 (30015 for lists).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimitBurst {
    /// Period of the bursts.
    pub every: Duration,
    /// How long each burst lasts.
    pub lasts: Duration,
}

impl FaultProfile {
    /// Names accepted by `--profile`, for help texts and errors.
    pub const NAMES: [&'static str; 5] = ["clean", "realistic", "flaky", "ratelimited", "chaos"];

    /// No faults, no delay: the default, and what benchmarks use.
    pub fn clean() -> Self {
        FaultProfile {
            name: "clean",
            latency_base: Duration::ZERO,
            latency_tail_mean: Duration::ZERO,
            server_error_share: 0.0,
            drop_before_share: 0.0,
            drop_after_share: 0.0,
            rate_limit_burst: None,
            token_ttl: None,
        }
    }

    /// Looks a profile up by name.
    pub fn by_name(name: &str) -> Option<Self> {
        let clean = Self::clean();
        let realistic = FaultProfile {
            name: "realistic",
            latency_base: Duration::from_millis(3),
            latency_tail_mean: Duration::from_millis(12),
            ..clean.clone()
        };
        let flaky = FaultProfile {
            name: "flaky",
            server_error_share: 0.03,
            drop_before_share: 0.01,
            drop_after_share: 0.01,
            ..realistic.clone()
        };
        let burst = RateLimitBurst { every: Duration::from_secs(4), lasts: Duration::from_millis(700) };
        Some(match name {
            "clean" => clean,
            "realistic" => realistic,
            "flaky" => flaky,
            "ratelimited" => FaultProfile { name: "ratelimited", rate_limit_burst: Some(burst), ..realistic },
            "chaos" => FaultProfile {
                name: "chaos",
                rate_limit_burst: Some(burst),
                token_ttl: Some(Duration::from_secs(3)),
                ..flaky
            },
            _ => return None,
        })
    }

    /// A delay drawn for one request.
    pub fn draw_latency(&self, rng: &mut fastrand::Rng) -> Duration {
        let mean = self.latency_tail_mean.as_secs_f64();
        if mean == 0.0 {
            return self.latency_base;
        }
        // Exponential tail by inversion; cap it so one request never waits absurdly long.
        let tail = (-mean * (1.0 - rng.f64()).ln()).min(mean * 20.0);
        self.latency_base + Duration::from_secs_f64(tail)
    }

    /// True while a rate-limit burst is on, `since_start` after the simulator started.
    pub fn in_rate_limit_burst(&self, since_start: Duration) -> bool {
        match self.rate_limit_burst {
            Some(b) if !b.every.is_zero() => {
                let phase = since_start.as_nanos() % b.every.as_nanos();
                phase < b.lasts.as_nanos()
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_profile_exists() {
        for name in FaultProfile::NAMES {
            assert_eq!(FaultProfile::by_name(name).map(|p| p.name), Some(name));
        }
        assert!(FaultProfile::by_name("nope").is_none());
    }

    #[test]
    fn bursts_recur() {
        let p = FaultProfile::by_name("ratelimited").unwrap();
        assert!(p.in_rate_limit_burst(Duration::from_millis(100)));
        assert!(!p.in_rate_limit_burst(Duration::from_millis(1000)));
        assert!(p.in_rate_limit_burst(Duration::from_millis(4100)));
        assert!(!FaultProfile::clean().in_rate_limit_burst(Duration::from_millis(100)));
    }

    #[test]
    fn latency_has_a_floor_and_a_tail() {
        let p = FaultProfile::by_name("realistic").unwrap();
        let mut rng = fastrand::Rng::with_seed(1);
        let draws: Vec<Duration> = (0..2000).map(|_| p.draw_latency(&mut rng)).collect();
        assert!(draws.iter().all(|d| *d >= p.latency_base));
        let mean = draws.iter().map(Duration::as_secs_f64).sum::<f64>() / 2000.0;
        assert!((0.010..0.020).contains(&mean), "mean {mean}");
    }
}
