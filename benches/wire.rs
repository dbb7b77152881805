//! Encoding and decoding the two bulk Getui bodies: a 1000-cid list push and a 200-message batch.
//!
//! Run: `cargo bench --bench wire`.

use campaignd::upstream::getui::wire::{
    BatchPush, CidAudience, ListCidPush, Notification, Push, PushMessage, Settings,
};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

fn cids(n: u64) -> Vec<String> {
    (0..n).map(|i| format!("{:016x}{:016x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15), i)).collect()
}

fn message(i: u64) -> PushMessage {
    PushMessage {
        notification: Some(Notification {
            title: "Spring sale".into(),
            body: format!("Hi user {i}, 20% off today"),
            click_type: "url".into(),
            url: Some("https://example.com/sale".into()),
            ..Notification::default()
        }),
        ..PushMessage::default()
    }
}

fn list_push(c: &mut Criterion) {
    let ids = cids(1000);
    let push = ListCidPush {
        audience: CidAudience { cid: ids.iter().map(|s| s.as_str().into()).collect() },
        taskid: "RASL-0000000001".into(),
        is_async: false,
    };
    let encoded = serde_json::to_vec(&push).unwrap();
    let mut g = c.benchmark_group("list_push_1000_cids");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("encode", |b| {
        let mut buf = Vec::with_capacity(encoded.len());
        b.iter(|| {
            buf.clear();
            serde_json::to_writer(&mut buf, &push).unwrap();
            buf.len()
        })
    });
    g.bench_function("decode", |b| {
        b.iter(|| serde_json::from_slice::<ListCidPush>(&encoded).unwrap().audience.cid.len())
    });
    g.bench_function("build_and_encode_from_ids", |b| {
        b.iter_batched(
            || Vec::with_capacity(encoded.len()),
            |mut buf| {
                let push = ListCidPush {
                    audience: CidAudience { cid: ids.iter().map(|s| s.as_str().into()).collect() },
                    taskid: "RASL-0000000001".into(),
                    is_async: false,
                };
                serde_json::to_writer(&mut buf, &push).unwrap();
                buf
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn batch_push(c: &mut Criterion) {
    let ids = cids(200);
    let batch = BatchPush {
        is_async: false,
        msg_list: ids
            .iter()
            .enumerate()
            .map(|(i, cid)| Push {
                request_id: format!("000000000001-0000000001-{i:02x}").into(),
                group_name: None,
                audience: CidAudience { cid: vec![cid.as_str().into()] },
                settings: Some(Settings { ttl: Some(7_200_000), ..Settings::default() }),
                push_message: message(i as u64),
                push_channel: None,
            })
            .collect(),
    };
    let encoded = serde_json::to_vec(&batch).unwrap();
    let mut g = c.benchmark_group("batch_push_200_messages");
    g.throughput(Throughput::Elements(200));
    g.bench_function("encode", |b| {
        let mut buf = Vec::with_capacity(encoded.len());
        b.iter(|| {
            buf.clear();
            serde_json::to_writer(&mut buf, &batch).unwrap();
            buf.len()
        })
    });
    g.bench_function("decode", |b| b.iter(|| serde_json::from_slice::<BatchPush>(&encoded).unwrap().msg_list.len()));
    g.finish();
}

criterion_group!(benches, list_push, batch_push);
criterion_main!(benches);
