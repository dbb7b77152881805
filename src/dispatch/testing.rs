//! What the shell's tests share: a dispatcher context over a fresh store, and a campaign run.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{AppSender, CampaignRun, Context, RetryPolicy, Upstream};
use crate::domain::campaign::sample_spec;
use crate::metrics::Metrics;
use crate::secret::Secret;
use crate::store::{SledStore, Store, StoreSettings};
use crate::upstream::getui::{GetuiClient, GetuiSettings};
use crate::upstream::http::PoolSettings;

/// A context over a fresh store and a campaign of an app whose client is never called
/// (the tests' attempts stand in for it).
pub(super) async fn fixture(policy: RetryPolicy) -> (tempfile::TempDir, Context, CampaignRun) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let settings = StoreSettings { path: dir.path().to_path_buf(), cache_bytes: 8 << 20 };
    let store: Arc<dyn Store> = SledStore::open(&settings).expect("a store");
    let rec = store.create(sample_spec(), 1).await.expect("a campaign");
    let client = GetuiClient::new(GetuiSettings {
        base_url: "http://127.0.0.1:9/v2".into(),
        app_id: "app".into(),
        app_key: "key".into(),
        master_secret: Secret::new("secret"),
        request_timeout: Duration::from_secs(1),
        token_refresh_margin: Duration::from_secs(60),
        pool: PoolSettings::default(),
    })
    .expect("a client");
    let metrics = Arc::new(Metrics::new());
    let app = Arc::new(AppSender::new("main", Upstream::Getui(client), None, metrics.clone()));
    let shutdown = CancellationToken::new();
    let run = CampaignRun::new(&rec, store.identity(), app.clone(), &shutdown);
    let apps = HashMap::from([("main".to_owned(), app)]);
    let (member, lease) = ("test-member".to_owned(), Duration::from_secs(30));
    let members = Arc::new(super::membership::Members::new(member.clone()));
    (dir, Context { store, apps, metrics, policy, shutdown, member, lease, members }, run)
}
