//! Tells systemd (when it started us with `Type=notify`) that the daemon is ready, keeps its
//! watchdog fed, and says when we are stopping. Without `$NOTIFY_SOCKET` all of this is a no-op.

use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;

/// READY=1: the store is open and the listener bound.
pub fn ready() {
    if let Err(e) = sd_notify::notify(&[NotifyState::Ready]) {
        tracing::warn!(error = %e, "cannot notify systemd of readiness");
    }
}

/// STOPPING=1: graceful shutdown has begun.
pub fn stopping() {
    let _ = sd_notify::notify(&[NotifyState::Stopping]);
}

/// With `WatchdogSec=` set, sends WATCHDOG=1 at half the interval until `shutdown`. The pings
/// come from the async runtime, so a wedged runtime stops them and systemd restarts us.
pub fn spawn_watchdog(shutdown: CancellationToken) {
    let Some(interval) = sd_notify::watchdog_enabled() else { return };
    let period = interval / 2;
    tokio::spawn(async move {
        loop {
            let _ = sd_notify::notify(&[NotifyState::Watchdog]);
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(period) => {}
            }
        }
    });
}
