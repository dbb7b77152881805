//! Encoding and decoding the two bulk Getui bodies (a 1000-cid list push and a 200-message
//! batch), reading the answer of a 1000-cid list push (as a map of strings, into raw cids, and
//! as the dispatcher reads a whole answer body: through serde_json or through the answer
//! scanner) and of a 200-message batch, rendering a batch's 200 personal copies from a
//! campaign (built as values, and written straight into the body as the dispatcher does), and one WeCom callback delivery: verify, decrypt, parse, seal the passive reply.
//!
//! Run: `cargo bench --bench wire`.

use campaignd::domain::CampaignSpec;
use campaignd::render::getui::{batch, GetuiRenderer};
use campaignd::store::ChunkVars;
use campaignd::wire::getui::answer_scan::read_success_statuses;
use campaignd::wire::getui::compact::{parse_cid_hex, BatchBody, CidStatuses, CompactListCidPush};
use campaignd::wire::getui::{
    BatchPush, CidAudience, DataEnvelope, ListCidPush, Notification, Push, PushMessage, Settings, TaskCidStatus,
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
    let raw: Vec<[u8; 16]> = ids.iter().filter_map(|s| parse_cid_hex(s.as_bytes())).collect();
    g.bench_function("encode_from_raw_cids_through_strings", |b| {
        let mut buf = Vec::with_capacity(encoded.len());
        b.iter(|| {
            buf.clear();
            let mut hex = [0u8; 32];
            let strings: Vec<String> =
                raw.iter().map(|c| campaignd::wire::getui::compact::encode_cid_hex(c, &mut hex).to_owned()).collect();
            let push = ListCidPush {
                audience: CidAudience { cid: strings.iter().map(|s| s.as_str().into()).collect() },
                taskid: "RASL-0000000001".into(),
                is_async: false,
            };
            serde_json::to_writer(&mut buf, &push).unwrap();
            buf.len()
        })
    });
    g.bench_function("encode_from_raw_cids", |b| {
        b.iter(|| {
            let push = CompactListCidPush { cids: &raw, taskid: "RASL-0000000001", is_async: false };
            push.to_json().unwrap().len()
        })
    });
    g.finish();
}

/// The `data` of a synchronous 1000-cid list answer, read and looked up cid by cid.
fn list_answer(c: &mut Criterion) {
    let ids = cids(1000);
    let words = ["successed_online", "successed_offline", "successed_ignore"];
    let statuses: serde_json::Map<String, serde_json::Value> =
        ids.iter().enumerate().map(|(i, id)| (id.clone(), words[i % 3].into())).collect();
    let data = serde_json::to_vec(&serde_json::json!({"RASL-0000000001": statuses})).unwrap();
    let raw: Vec<[u8; 16]> = ids.iter().filter_map(|s| parse_cid_hex(s.as_bytes())).collect();
    let mut g = c.benchmark_group("list_answer_1000_cids");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("read_as_string_map_and_look_up", |b| {
        b.iter(|| {
            let map: TaskCidStatus = serde_json::from_slice(&data).unwrap();
            ids.iter().filter(|id| map.values().find_map(|m| m.get(id.as_str())).is_some()).count()
        })
    });
    g.bench_function("read_as_raw_cids_and_look_up", |b| {
        b.iter(|| {
            let answer: CidStatuses = serde_json::from_slice(&data).unwrap();
            raw.iter().filter(|cid| answer.get(cid).is_some()).count()
        })
    });
    let body = envelope(&data);
    g.bench_function("whole_body_through_serde_json_and_look_up", |b| {
        b.iter(|| {
            let answer: DataEnvelope<Option<CidStatuses>> = serde_json::from_slice(&body).unwrap();
            let answer = answer.data.flatten().unwrap();
            raw.iter().filter(|cid| answer.get(cid).is_some()).count()
        })
    });
    g.bench_function("whole_body_scanned_and_look_up", |b| {
        b.iter(|| {
            let answer = read_success_statuses(&body).unwrap();
            raw.iter().filter(|cid| answer.get(cid).is_some()).count()
        })
    });
    g.finish();
}

/// A success answer's whole body around `data`, as Getui writes it.
fn envelope(data: &[u8]) -> Vec<u8> {
    [&br#"{"code":0,"msg":"success","data":"#[..], data, b"}"].concat()
}

fn batch_answer(c: &mut Criterion) {
    let ids = cids(200);
    let tasks: serde_json::Map<String, serde_json::Value> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (format!("RASS_1202_{i:04}_a3f0c9e1b2d4"), serde_json::json!({id: "successed_offline"})))
        .collect();
    let data = serde_json::to_vec(&tasks).unwrap();
    let raw: Vec<[u8; 16]> = ids.iter().filter_map(|s| parse_cid_hex(s.as_bytes())).collect();
    let mut g = c.benchmark_group("batch_answer_200_tasks");
    g.throughput(Throughput::Elements(200));
    g.bench_function("read_as_raw_cids_and_look_up", |b| {
        b.iter(|| {
            let answer: CidStatuses = serde_json::from_slice(&data).unwrap();
            raw.iter().filter(|cid| answer.get(cid).is_some()).count()
        })
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

/// The callback's work per delivery, without HTTP: what bounds how many a daemon can answer.
/// What a batch_single shard does per recipient before encoding: fill in the variables, check
/// the copy's limits, wrap it in its single push.
fn render_batch(c: &mut Criterion) {
    let spec: CampaignSpec = serde_json::from_value(serde_json::json!({
        "name": "bench", "app": "main", "channel": "getui", "mode": "batch_single",
        "message": {
            "notification": {"title": "Spring sale", "body": "Hi ${name}, ${pct}% off today", "click_type": "url",
                             "url": "https://example.com/sale?u=${name}"},
            "ios": {"title": "Spring sale", "body": "Hi ${name}", "badge": "+1"}
        },
        "settings": {"speed": null, "ttl_ms": 3600000, "network_type": "wifi", "group": "spring", "schedule_at_ms": null,
                     "replay": "at_least_once", "display_ms": [1767225600000i64, 4070908800000i64],
                     "upstream_schedule": false},
        "audience": null
    }))
    .unwrap();
    let renderer = GetuiRenderer::new(&spec);
    let ids = cids(200);
    let vars: Vec<Vec<(String, String)>> =
        (0..200).map(|i| vec![("name".into(), format!("user{i}")), ("pct".into(), "20".into())]).collect();
    let mut g = c.benchmark_group("render_batch_200_copies");
    g.throughput(Throughput::Elements(200));
    g.bench_function("render_check_wrap", |b| {
        b.iter(|| {
            let pushes: Vec<_> = ids
                .iter()
                .zip(&vars)
                .enumerate()
                .filter_map(|(i, (cid, v))| {
                    let lookup = |k: &str| v.iter().find(|(n, _)| n == k).map(|(_, x)| x.as_str());
                    let msg = renderer.message(&lookup);
                    msg.fits().then(|| renderer.single(format!("req-{i:010}").into(), cid.as_str().into(), msg))
                })
                .collect();
            batch(pushes).msg_list.len()
        })
    });
    // What the dispatcher does since stop 24: each copy is written into the call's body as it is
    // made, from borrowed variables, with no SingleCidPush built in between.
    let raw: Vec<[u8; 16]> = ids.iter().filter_map(|s| parse_cid_hex(s.as_bytes())).collect();
    let chunk_vars: ChunkVars = vars.iter().cloned().collect();
    let write_body = |renderer: &GetuiRenderer| {
        let mut body = BatchBody::default();
        for (i, cid) in raw.iter().enumerate() {
            let v = chunk_vars.of(i);
            let lookup = |k: &str| v.get(k);
            let msg = renderer.message(&lookup);
            if msg.fits() {
                renderer.write_single(&mut body, &format!("req-{i:010}"), cid, &msg, &lookup).unwrap();
            }
        }
        body.into_json().len()
    };
    g.bench_function("render_check_write_body", |b| b.iter(|| write_body(&renderer)));
    // A notification-only copy (the load test's batch_single message), written from the
    // template's pieces since stop 32.
    let note: CampaignSpec = serde_json::from_value(serde_json::json!({
        "name": "bench", "app": "main", "channel": "getui", "mode": "batch_single",
        "message": {"notification": {"title": "Hi ${name}", "body": "Your code ${pct}"}},
        "settings": {"speed": null, "ttl_ms": null, "network_type": "any", "group": null, "schedule_at_ms": null,
                     "replay": "at_least_once", "display_ms": null, "upstream_schedule": false},
        "audience": null
    }))
    .unwrap();
    let note = GetuiRenderer::new(&note);
    g.bench_function("notification_check_write_body", |b| b.iter(|| write_body(&note)));
    g.finish();
}

fn wecom_callback(c: &mut Criterion) {
    use campaignd::simulator::{DEV_WECOM_AES_KEY, DEV_WECOM_CALLBACK_TOKEN, DEV_WECOM_CORP_ID};
    use campaignd::wecom::callback::{CallbackAgent, CallbackQuery, ReplyRule};
    use campaignd::wecom::{MsgCrypt, ReplyMessage};
    let crypt = MsgCrypt::new(DEV_WECOM_CALLBACK_TOKEN, DEV_WECOM_AES_KEY, DEV_WECOM_CORP_ID).unwrap();
    let agent = CallbackAgent {
        app: "staff".into(),
        corp_id: DEV_WECOM_CORP_ID.into(),
        crypt: crypt.clone(),
        timestamp_window: std::time::Duration::from_secs(300),
        opt_out_keywords: vec!["TD".into()],
        opt_in_keywords: vec![],
        replies: vec![ReplyRule {
            keyword: Some("帮助".into()),
            click: None,
            reply: ReplyMessage::Text { content: "回复 TD 退订".into() },
        }],
    };
    let xml = format!(
        "<xml><ToUserName><![CDATA[{DEV_WECOM_CORP_ID}]]></ToUserName><FromUserName><![CDATA[zhangsan]]></FromUserName>\
         <CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[需要帮助]]></Content>\
         <MsgId>1234567890123456</MsgId><AgentID>1000002</AgentID></xml>"
    );
    let sealed = crypt.encrypt_random(xml.as_bytes(), "1700000000", "5555").unwrap();
    let body = format!(
        "<xml><ToUserName>{DEV_WECOM_CORP_ID}</ToUserName><Encrypt><![CDATA[{}]]></Encrypt></xml>",
        sealed.encrypt
    );
    let query = CallbackQuery {
        msg_signature: sealed.msg_signature,
        timestamp: "1700000000".into(),
        nonce: "5555".into(),
        echostr: None,
    };
    let mut g = c.benchmark_group("wecom_callback");
    g.throughput(Throughput::Elements(1));
    g.bench_function("receive", |b| b.iter(|| agent.receive(&query, &body, 1_700_000_000).unwrap()));
    let reply = ReplyMessage::Text { content: "回复 TD 退订".into() };
    g.bench_function("seal_reply", |b| b.iter(|| agent.seal_reply(&reply, "zhangsan", 1_700_000_000, "5555").unwrap()));
    g.finish();
}

criterion_group!(benches, list_push, list_answer, batch_answer, batch_push, render_batch, wecom_callback);
criterion_main!(benches);
