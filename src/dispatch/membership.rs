//! How many daemons send from this store now, so that a campaign's `speed` and an app's
//! `calls_per_second` are totals for the group: each daemon takes an equal share (issue 12).
//!
//! Every daemon notes itself alive in the store once a second (`Store::heartbeat`) and reads how
//! many were heard from recently; on sled that is always 1. When a daemon dies its note ages out
//! of the store (NATS: within `store::nats::MEMBER_TTL`), the others count one fewer at their
//! next heartbeat and take the larger share.
//!
//! Ownership: one loop task, spawned and awaited by [`super::Dispatcher::run`], stopping with the
//! daemon's token.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::Context;
use crate::clock::now_ms;

/// How often this daemon notes itself alive.
const HEARTBEAT: Duration = Duration::from_secs(1);

/// This daemon's member id and the group's size as last read.
pub(crate) struct Members {
    /// This daemon's member id: tells its heartbeat from the others'.
    id: String,
    live: AtomicUsize,
}

impl Members {
    /// The group as this daemon, named `id` (its member id, also its leases' holder), first sees
    /// it: alone.
    pub(super) fn new(id: String) -> Members {
        Members { id, live: AtomicUsize::new(1) }
    }

    /// Daemons sending from this store now (at least 1: this one).
    pub(super) fn live(&self) -> usize {
        self.live.load(Ordering::Relaxed).max(1)
    }
}

/// Notes this daemon alive every second and keeps the group's size (and the apps' shares of
/// their call budgets) up to date, until the daemon stops.
pub(super) async fn heartbeat_loop(ctx: Arc<Context>) {
    loop {
        match ctx.store.heartbeat(&ctx.members.id, now_ms()).await {
            Ok(n) => {
                let before = ctx.members.live.swap(n.max(1), Ordering::Relaxed);
                if before != n.max(1) {
                    tracing::info!(daemons = n, "daemons sharing the campaigns' speed and the apps' call budgets");
                    for app in ctx.apps.values() {
                        app.share_calls(n);
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot note this daemon alive; keeping the last group size"),
        }
        tokio::select! {
            _ = ctx.shutdown.cancelled() => return,
            _ = tokio::time::sleep(HEARTBEAT) => {}
        }
    }
}
