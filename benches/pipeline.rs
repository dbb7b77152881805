//! The daemon's own hot paths: chunk encoding, the sled store, the upload's duplicate check and
//! line parsing, governor pacing, a whole campaign through the in-process simulator, and what
//! waking a blocked thread costs.
//!
//! Run: `cargo bench --bench pipeline`.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use campaignd::domain::campaign::CreateCampaign;
use campaignd::domain::{Action, Counts, ResultName};
use campaignd::store::{Ack, Change, Chunk, ChunkVars, SledStore, Store, StoreSettings, UploadCommit};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use governor::{Quota, RateLimiter};

fn chunk(n: usize, vars: bool) -> Chunk {
    Chunk {
        cids: (0..n as u64)
            .flat_map(|i| [(i as u128).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835).to_be_bytes()].concat())
            .collect(),
        vars: if vars {
            (0..n)
                .map(|i| vec![("name".to_owned(), format!("user{i}")), ("code".to_owned(), format!("C{i:08}"))])
                .collect()
        } else {
            Default::default()
        },
        users: Vec::new(),
    }
}

fn codec(c: &mut Criterion) {
    let mut g = c.benchmark_group("chunk_codec");
    for (name, ch) in [("1000_cids", chunk(1000, false)), ("200_with_vars", chunk(200, true))] {
        let bytes = rmp_serde::to_vec(&ch).unwrap();
        g.throughput(Throughput::Elements(ch.len() as u64));
        g.bench_function(format!("encode_{name}"), |b| b.iter(|| rmp_serde::to_vec(&ch).unwrap().len()));
        g.bench_function(format!("decode_{name}"), |b| {
            b.iter(|| rmp_serde::from_slice::<Chunk>(&bytes).unwrap().len())
        });
    }
    // What an upload does per recipient with variables: push its pairs into the chunk's table.
    let pairs: Vec<[(String, String); 2]> =
        (0..1000).map(|i| [("name".into(), format!("user{i}")), ("code".into(), format!("C{i:08}"))]).collect();
    g.throughput(Throughput::Elements(1000));
    g.bench_function("fill_vars_1000_two_vars", |b| {
        b.iter(|| {
            let mut vars = ChunkVars::default();
            for p in &pairs {
                vars.push(p.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            }
            vars.len()
        })
    });
    g.finish();
}

fn spec() -> campaignd::domain::CampaignSpec {
    let req: CreateCampaign = serde_json::from_value(serde_json::json!({
        "name": "bench", "app": "main", "message": {"notification": {"title": "t", "body": "b"}}
    }))
    .unwrap();
    req.validate(&campaignd::domain::campaign::Validation {
        app_channel: &|_| Some(campaignd::domain::Channel::Getui),
        now_ms: 0,
        horizon_ms: campaignd::domain::campaign::SCHEDULE_HORIZON_MS,
        app_sms: &|_| None,
    })
    .unwrap()
}

/// A new store holding one draft campaign with `chunks` committed chunks of 1000 cids.
async fn filled_store(dir: &std::path::Path, chunks: u64) -> (Arc<SledStore>, campaignd::store::CampaignRecord) {
    let s = SledStore::open(&StoreSettings { path: dir.into(), cache_bytes: 64 << 20 }).unwrap();
    let rec = s.create(spec(), 0).await.unwrap();
    let ch = chunk(1000, false);
    for seq in 0..chunks {
        s.stage_chunk(rec.id, seq, ch.clone()).await.unwrap();
    }
    let commit = UploadCommit { first_seq: 0, chunks, recipients: chunks * 1000, duplicates: 0, rejected: 0 };
    let rec = s.commit_upload(rec.id, commit).await.unwrap();
    (s, rec)
}

fn store(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut g = c.benchmark_group("sled_store");
    g.sample_size(10);
    const CHUNKS: u64 = 200;
    g.throughput(Throughput::Elements(CHUNKS * 1000));
    // Enqueue: open a store, stage 200 chunks of 1000 cids and commit them (one flush).
    g.bench_function("enqueue_200k_recipients", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let dir = tempfile::tempdir().unwrap();
                    let t = Instant::now();
                    let (s, _) = filled_store(dir.path(), CHUNKS).await;
                    total += t.elapsed();
                    s.close().await.unwrap();
                }
                total
            })
        })
    });
    // Lease + ack: read every pending chunk in order and acknowledge it (grouped flushes).
    g.bench_function("lease_and_ack_200k_recipients", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let dir = tempfile::tempdir().unwrap();
                    let (s, rec) = filled_store(dir.path(), CHUNKS).await;
                    s.change(rec.id, Change::Act(Action::Start, 1)).await.unwrap();
                    let t = Instant::now();
                    let mut acks = Vec::new();
                    let mut from = 0;
                    loop {
                        let batch = s.pending_chunks(rec.id, from, 16).await.unwrap();
                        if batch.is_empty() {
                            break;
                        }
                        for (seq, ch) in batch {
                            from = seq + 1;
                            let mut counts = Counts::default();
                            counts.add(ResultName::SuccessedOnline, ch.len() as u64);
                            let s = s.clone();
                            acks.push(tokio::spawn(async move { s.ack(Ack { campaign: rec.id, seq, counts }).await }));
                        }
                    }
                    for a in acks {
                        a.await.unwrap().unwrap();
                    }
                    total += t.elapsed();
                    assert_eq!(s.get(rec.id).await.unwrap().unwrap().folded, CHUNKS);
                    s.close().await.unwrap();
                }
                total
            })
        })
    });
    g.finish();
}

fn pacing(c: &mut Criterion) {
    let mut g = c.benchmark_group("governor");
    g.throughput(Throughput::Elements(1));
    let quota = Quota::per_second(NonZeroU32::new(u32::MAX).unwrap());
    let limiter = RateLimiter::direct(quota);
    g.bench_function("check_one_message", |b| b.iter(|| limiter.check().is_ok()));
    let chunked = RateLimiter::direct(quota.allow_burst(NonZeroU32::new(1000).unwrap()));
    let n = NonZeroU32::new(1000).unwrap();
    g.throughput(Throughput::Elements(1000));
    g.bench_function("check_n_1000_messages", |b| b.iter(|| chunked.check_n(n).is_ok()));
    g.finish();
}

fn end_to_end(c: &mut Criterion) {
    use campaignd::client::ApiClient;
    use campaignd::config::{Config, DEV_API_TOKEN};
    use campaignd::daemon::Daemon;
    use campaignd::simulator::{Limits, SimConfig, Simulator};

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (api, _keep) = rt.block_on(async {
        let sim = Simulator::bind(
            "127.0.0.1:0".parse().unwrap(),
            SimConfig { limits: Limits::unlimited(), ..SimConfig::default() },
        )
        .await
        .unwrap();
        let base = sim.getui_base_url();
        let sim = sim.spawn();
        let text = include_str!("../config/campaignd.toml")
            .replace("127.0.0.1:8780", "127.0.0.1:0")
            .replace("path = \"data\"", &format!("path = {:?}", dir.path().display().to_string()))
            .replace("http://127.0.0.1:8781/v2", &base)
            .replace("calls_per_second = 1000", "");
        let config = Config::from_toml(&text, "bench.toml".as_ref()).unwrap();
        let daemon = Daemon::build(&config, |_| None).await.unwrap();
        let api =
            ApiClient::new(&format!("http://{}", daemon.local_addr()), campaignd::secret::Secret::new(DEV_API_TOKEN))
                .unwrap();
        let stop = daemon.shutdown_token();
        tokio::spawn(daemon.run());
        (api, (sim, stop))
    });
    const N: u64 = 50_000;
    let mut g = c.benchmark_group("end_to_end");
    g.sample_size(10);
    g.throughput(Throughput::Elements(N));
    let mut round = 0u64;
    g.bench_function("list_campaign_50k_through_the_simulator", |b| {
        b.iter_batched(
            || {
                round += 1;
                let ids: String = (0..N).map(|i| format!("{:016x}{:016x}\n", round, i)).collect();
                ids
            },
            |ids| {
                rt.block_on(async {
                    let body = serde_json::json!({"name": "bench", "app": "main", "mode": "list",
                        "message": {"notification": {"title": "t", "body": "b"}}});
                    let id = api.create(&body).await.unwrap().id;
                    api.upload(&id, "text/plain", ids).await.unwrap();
                    api.act(&id, "start").await.unwrap();
                    while api.campaign(&id).await.unwrap().state != "completed" {
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                })
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

/// The upload's duplicate check: spilling an upload's cids and settling them, into an empty
/// draft and, for a small upload, against a large draft's index (binary search in its runs).
fn duplicate_check(c: &mut Criterion) {
    use campaignd::api::dedup::{settle, DraftIndex, IndexBuilder, Spill, SpillRoot};
    let dir = tempfile::tempdir().unwrap();
    let root = Arc::new(SpillRoot::new(dir.path().join("spill")));
    let cid = |i: u64| (u128::from(i)).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835).to_be_bytes();
    let spill_of = |ids: std::ops::Range<u64>| {
        let mut spill = Spill::new(&root);
        for i in ids {
            spill.push(&cid(i)).unwrap();
        }
        spill
    };
    let mut g = c.benchmark_group("duplicate_check");
    g.throughput(Throughput::Elements(200_000));
    g.bench_function("spill_and_settle_200k_into_an_empty_draft", |b| {
        let empty = DraftIndex::default();
        b.iter(|| settle(spill_of(0..200_000), &empty).unwrap().new)
    });
    let mut builder = IndexBuilder::new(&root);
    let held: Vec<u8> = (0..1_000_000u64).flat_map(cid).collect();
    builder.feed(&held).unwrap();
    let big = builder.finish().unwrap();
    g.throughput(Throughput::Elements(1000));
    g.bench_function("spill_and_settle_1000_against_a_1m_draft", |b| {
        b.iter(|| settle(spill_of(999_500..1_000_500), &big).unwrap().duplicates.count())
    });
    g.finish();
}

/// Upload line parsing: 1000 plain-text lines, and 1000 NDJSON lines with two variables.
fn upload_lines(c: &mut Criterion) {
    use campaignd::domain::recipient::{parse_ndjson_line, parse_text_line};
    use campaignd::domain::CompactCid;
    let hex = |i: u128| format!("{:032x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835));
    let text: Vec<String> = (0..1000u128).map(hex).collect();
    let ndjson: Vec<String> = (0..1000u128)
        .map(|i| format!(r#"{{"cid":"{}","vars":{{"name":"user{i}","code":"C{i:08}"}}}}"#, hex(i)))
        .collect();
    let mut g = c.benchmark_group("upload_lines_1000");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("text", |b| b.iter(|| text.iter().filter(|l| parse_text_line(l).is_ok()).count()));
    // What the upload does with a line's bytes: before, UTF-8 check then the text parser;
    // now a 32-digit lowercase line is read as a cid straight away.
    g.bench_function("text_bytes_through_utf8", |b| {
        b.iter(|| {
            text.iter()
                .filter(|l| std::str::from_utf8(l.as_bytes()).map(parse_text_line).is_ok_and(|r| r.is_ok()))
                .count()
        })
    });
    g.bench_function("text_bytes_as_hex", |b| {
        b.iter(|| text.iter().filter(|l| CompactCid::from_hex_bytes(l.as_bytes()).is_some()).count())
    });
    g.bench_function("ndjson_two_vars", |b| {
        b.iter(|| ndjson.iter().map(|l| parse_ndjson_line(l).map_or(0, |r| r.vars.len())).sum::<usize>())
    });
    g.finish();
}

/// One round trip between two threads that each block until it is their turn (a mutex and a
/// condition variable, so every hand-over wakes a sleeping thread, as when a shard's request
/// reaches the store's idle writer thread and its answer comes back). Run it on one CPU and on
/// two to compare (`taskset -c 1 cargo bench --bench pipeline -- wakeup`): on the 2-vCPU test
/// machine a round trip across vCPUs costs several times one within a vCPU (README,
/// Performance: "Cross-core wakeups").
fn wakeup(c: &mut Criterion) {
    use std::sync::{Condvar, Mutex};
    // 0: nobody's turn yet; 1: the peer's; 2: the bench's; 3: the peer stops.
    let turn = Arc::new((Mutex::new(0u8), Condvar::new()));
    let peer = {
        let turn = Arc::clone(&turn);
        std::thread::spawn(move || {
            let (lock, cv) = &*turn;
            let mut t = lock.lock().expect("an unpoisoned lock");
            loop {
                t = cv.wait_while(t, |t| *t != 1 && *t != 3).expect("an unpoisoned lock");
                if *t == 3 {
                    return;
                }
                *t = 2;
                cv.notify_one();
            }
        })
    };
    let (lock, cv) = &*turn;
    c.bench_function("wakeup/round_trip_to_a_blocked_thread", |b| {
        b.iter(|| {
            let mut t = lock.lock().expect("an unpoisoned lock");
            *t = 1;
            cv.notify_one();
            drop(cv.wait_while(t, |t| *t != 2).expect("an unpoisoned lock"));
        })
    });
    *lock.lock().expect("an unpoisoned lock") = 3;
    cv.notify_one();
    peer.join().expect("the peer thread ends");
}

criterion_group!(benches, codec, store, duplicate_check, upload_lines, pacing, end_to_end, wakeup);
criterion_main!(benches);
