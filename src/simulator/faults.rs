//! Fault profiles: the misbehaviour the simulated upstream injects, chosen by name.
//!
//! Each request draws from a seeded generator, so a run with the same seed and the same request
//! order misbehaves the same way.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;

use crate::serve::text_response;

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
    /// Share of requests processed and then answered with HTTP 504, as a gateway that gave up
    /// waiting would (delivered, answer lost).
    pub server_error_after_share: f64,
    /// Recurring windows in which every push is refused as rate-limited.
    pub rate_limit_burst: Option<RateLimitBurst>,
    /// Token lifetime override (short lifetimes exercise renewal).
    pub token_ttl: Option<Duration>,
}

/// Where one request fails, if it does: before it is processed (nothing delivered) or after
/// (delivered, but the answer is lost, the shape that makes duplicates).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Processed and answered normally.
    None,
    /// The connection is closed before the request is processed.
    DropBefore,
    /// HTTP 503 before the request is processed.
    ErrorBefore,
    /// Processed, then the connection is closed without an answer.
    DropAfter,
    /// Processed, then answered HTTP 504.
    ErrorAfter,
}

impl Fault {
    /// True for the faults that strike after the request took effect.
    pub fn after_processing(self) -> bool {
        matches!(self, Fault::DropAfter | Fault::ErrorAfter)
    }
}

/// The answer of [`Fault::ErrorBefore`]: a front end's 503, no vendor body.
pub(crate) fn service_unavailable() -> Response<Full<Bytes>> {
    text_response(503, "<html><body>503 Service Temporarily Unavailable</body></html>")
}

/// The answer of [`Fault::ErrorAfter`]: a gateway's 504, no vendor body.
pub(crate) fn gateway_timeout() -> Response<Full<Bytes>> {
    text_response(504, "<html><body>504 Gateway Time-out</body></html>")
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
            server_error_after_share: 0.0,
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
            server_error_after_share: 0.01,
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

    /// The fault of one request, drawn in a fixed order so a seed replays the same faults.
    pub fn draw_fault(&self, rng: &mut fastrand::Rng) -> Fault {
        let shares = [
            (self.drop_before_share, Fault::DropBefore),
            (self.server_error_share, Fault::ErrorBefore),
            (self.drop_after_share, Fault::DropAfter),
            (self.server_error_after_share, Fault::ErrorAfter),
        ];
        // One draw per kind, even after a hit, so later kinds do not shift the sequence.
        let hits: Vec<Fault> = shares.iter().filter(|(share, _)| rng.f64() < *share).map(|(_, f)| *f).collect();
        hits.first().copied().unwrap_or(Fault::None)
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
    fn flaky_loses_answers_after_processing_both_ways() {
        let p = FaultProfile::by_name("flaky").unwrap();
        assert!(p.drop_after_share > 0.0 && p.server_error_after_share > 0.0);
        let mut rng = fastrand::Rng::with_seed(7);
        let draws: Vec<Fault> = (0..20_000).map(|_| p.draw_fault(&mut rng)).collect();
        let share = |f: Fault| draws.iter().filter(|d| **d == f).count() as f64 / draws.len() as f64;
        for f in [Fault::DropBefore, Fault::DropAfter, Fault::ErrorAfter] {
            assert!((0.005..0.015).contains(&share(f)), "{f:?}: {}", share(f));
        }
        assert!((0.02..0.04).contains(&share(Fault::ErrorBefore)));
        assert!(Fault::ErrorAfter.after_processing() && !Fault::ErrorBefore.after_processing());
        let mut rng = fastrand::Rng::with_seed(7);
        assert!((0..1000).all(|_| FaultProfile::clean().draw_fault(&mut rng) == Fault::None));
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

/// A profile with its seeded sequence of draws: each request takes the next one, waits the
/// drawn latency and gets the drawn fault. Shared by the simulators that inject faults per
/// request, so a seed replays the same misbehaviour in each.
#[derive(Debug)]
pub struct FaultDraws {
    profile: FaultProfile,
    seed: u64,
    draws: AtomicU64,
}

impl FaultDraws {
    /// Draws from `profile`, seeded with `seed`.
    pub fn new(profile: FaultProfile, seed: u64) -> FaultDraws {
        FaultDraws { profile, seed, draws: AtomicU64::new(0) }
    }

    /// Waits the next draw's latency and returns its fault.
    pub async fn next(&self) -> Fault {
        let n = self.draws.fetch_add(1, Ordering::Relaxed);
        let seed = crate::domain::ids::mix64(self.seed ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut rng = fastrand::Rng::with_seed(seed);
        let delay = self.profile.draw_latency(&mut rng);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        self.profile.draw_fault(&mut rng)
    }
}
