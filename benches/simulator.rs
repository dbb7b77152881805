//! The simulator's request handling over real loopback HTTP, driven by the real client:
//! list pushes of 1000 cids and batches of 200 messages, one at a time and 8 in flight.
//!
//! Run: `cargo bench --bench simulator`.

use std::sync::atomic::{AtomicU64, Ordering};

use campaignd::secret::Secret;
use campaignd::simulator::{self, Limits, SimConfig, Simulator};
use campaignd::upstream::getui::{GetuiClient, GetuiSettings};
use campaignd::upstream::http::PoolSettings;
use campaignd::wire::getui::{BatchPush, CidAudience, ListCidPush, ListMessage, Notification, Push, PushMessage};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn cids(n: u64) -> Vec<String> {
    (0..n).map(|i| format!("{:016x}{:016x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15), i)).collect()
}

fn note() -> PushMessage {
    PushMessage {
        notification: Some(Notification {
            title: "t".into(),
            body: "b".into(),
            click_type: "startapp".into(),
            ..Notification::default()
        }),
        ..PushMessage::default()
    }
}

fn setup(rt: &tokio::runtime::Runtime) -> GetuiClient {
    rt.block_on(async {
        let config = SimConfig { limits: Limits::unlimited(), ..SimConfig::default() };
        let sim = Simulator::bind("127.0.0.1:0".parse().unwrap(), config).await.unwrap();
        let base_url = sim.getui_base_url();
        // The simulator lives as long as the benchmark process.
        std::mem::forget(sim.spawn());
        GetuiClient::new(GetuiSettings {
            base_url,
            app_id: simulator::DEV_APP_ID.into(),
            app_key: simulator::DEV_APP_KEY.into(),
            master_secret: Secret::new(simulator::DEV_MASTER_SECRET),
            request_timeout: std::time::Duration::from_secs(10),
            token_refresh_margin: std::time::Duration::from_secs(3600),
            pool: PoolSettings::default(),
        })
        .unwrap()
    })
}

fn simulator_handling(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let client = setup(&rt);
    let msg =
        ListMessage { request_id: None, group_name: None, settings: None, push_message: note(), push_channel: None };
    let taskid = rt.block_on(client.create_list_message(&msg)).unwrap();
    let ids = cids(1000);
    let seq = AtomicU64::new(0);

    let mut g = c.benchmark_group("simulator_over_loopback");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("list_push_1000_cids", |b| {
        b.to_async(&rt).iter(|| async {
            let push = ListCidPush {
                audience: CidAudience { cid: ids.iter().map(|s| s.as_str().into()).collect() },
                taskid: taskid.as_str().into(),
                is_async: false,
            };
            client.push_list_cid(&push).await.unwrap()
        })
    });
    g.throughput(Throughput::Elements(8000));
    let shared_ids = std::sync::Arc::new(ids.clone());
    g.bench_function("list_push_1000_cids_x8_concurrent", |b| {
        b.to_async(&rt).iter(|| async {
            let tasks: Vec<_> = (0..8)
                .map(|_| {
                    let (client, taskid, ids) = (client.clone(), taskid.clone(), shared_ids.clone());
                    tokio::spawn(async move {
                        let push = ListCidPush {
                            audience: CidAudience { cid: ids.iter().map(|s| s.as_str().into()).collect() },
                            taskid: taskid.as_str().into(),
                            is_async: false,
                        };
                        client.push_list_cid(&push).await.unwrap().tasks.len()
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
        })
    });
    g.throughput(Throughput::Elements(200));
    g.bench_function("batch_push_200_messages", |b| {
        b.to_async(&rt).iter(|| async {
            let n = seq.fetch_add(1, Ordering::Relaxed);
            let batch = BatchPush {
                is_async: false,
                msg_list: ids[..200]
                    .iter()
                    .enumerate()
                    .map(|(i, cid)| Push {
                        request_id: format!("{n:012x}-0000000000-{i:02x}").into(),
                        group_name: None,
                        audience: CidAudience { cid: vec![cid.as_str().into()] },
                        settings: None,
                        push_message: note(),
                        push_channel: None,
                    })
                    .collect(),
            };
            client.push_single_batch_cid(&batch).await.unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, simulator_handling);
criterion_main!(benches);
