//! Is NATS usable right now? `/readyz` and the dispatcher's patience (`store::PatientStore`)
//! ask this, and need the answer in a couple of seconds: a JetStream call made while the
//! connection is down only fails after the context's request timeout.
//!
//! Two checks, cheapest first: the client's connection state (async-nats sees a closed socket
//! at once and reconnects by itself, forever, to any seed or server it learned of), then one
//! KV read of the store identity under a short timeout. The read is what notices a connected
//! server whose JetStream cannot answer, e.g. a cluster electing new stream leaders after
//! losing a node.

use std::time::Duration;

use async_nats::connection::State;

use super::NatsStore;
use crate::store::StoreError;

/// Longest a health check waits for JetStream's answer.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

impl NatsStore {
    /// `Ok` when connected and JetStream answered a read within [`HEALTH_TIMEOUT`].
    pub(super) async fn check_health(&self) -> Result<(), StoreError> {
        let state = self.client.connection_state();
        if state != State::Connected {
            return Err(self.unavailable(format!("connection {state}, reconnecting")));
        }
        match tokio::time::timeout(HEALTH_TIMEOUT, self.meta.entry("identity")).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(self.unavailable(format!("JetStream read failed: {e}"))),
            Err(_) => Err(self.unavailable(format!("JetStream did not answer within {HEALTH_TIMEOUT:?}"))),
        }
    }

    fn unavailable(&self, message: String) -> StoreError {
        StoreError::Unavailable { url: self.url.clone(), message }
    }
}
