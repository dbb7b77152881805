//! cid↔phone bindings through a real daemon over loopback (issue 13 point 1): bind, query and
//! unbind with masked answers, the one-to-one rule, per-cid codes, the 50-entry limit, a
//! 100,000-line import, and no plain number in the store's files.

mod common;

use bytes::Bytes;
use campaignd::client::{channel_body, ClientError};
use campaignd::protocol::BindAnswerView;
use common::{all_bytes, cid, spawn_app, TestApp};

const APP: &str = "main";

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(c, p)| (c.to_string(), p.to_string())).collect()
}

fn codes(a: &BindAnswerView) -> Vec<u8> {
    a.batch_ret.iter().map(|r| r.code).collect()
}

fn api_err(e: ClientError) -> (u16, Option<String>, String) {
    match e {
        ClientError::Api { status, field, message, .. } => (status, field, message),
        other => panic!("expected an API error, got {other}"),
    }
}

/// The `n`-th test phone: 139 then 8 digits.
fn phone(n: u64) -> String {
    format!("139{n:08}")
}

async fn query(app: &TestApp, cids: &[String]) -> BindAnswerView {
    app.api.query_phones(APP, cids).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bind_query_unbind_round_trip_with_masked_answers() {
    let app = spawn_app().await;
    let (a, b) = (cid(1), cid(2));
    let bound = app.api.bind_phones(APP, &pairs(&[(&a, "13812345678"), (&b, "+86 139-8765-4321")])).await.unwrap();
    assert_eq!(bound.result, "0");
    assert_eq!(codes(&bound), [0, 0]);
    assert_eq!(bound.batch_ret.iter().map(|r| r.cid.as_str()).collect::<Vec<_>>(), [a.as_str(), b.as_str()]);

    let q = query(&app, &[a.clone(), b.clone(), cid(3)]).await;
    assert_eq!(codes(&q), [0, 0, 7]);
    assert_eq!(q.batch_ret[0].pn.as_deref(), Some("138****5678"));
    assert_eq!(q.batch_ret[1].pn.as_deref(), Some("139****4321"));
    assert_eq!(q.batch_ret[2].pn, None);

    let u = app.api.unbind_phones(APP, &[a.clone(), a.clone(), String::new(), "nope".into()]).await.unwrap();
    assert_eq!(codes(&u), [0, 7, 5, 1]);
    assert_eq!(codes(&query(&app, &[a.clone(), b.clone()]).await), [7, 0]);

    // The raw answer has the seed's shape and never the whole number.
    let raw = serde_json::to_string(&query(&app, std::slice::from_ref(&b)).await).unwrap();
    assert!(raw.contains("\"result\":\"0\"") && raw.contains("\"batchRet\""), "{raw}");
    assert!(!raw.contains("13987654321"), "{raw}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_bound_to_a_second_cid_leaves_the_first() {
    let app = spawn_app().await;
    let (first, second) = (cid(10), cid(11));
    app.api.bind_phones(APP, &pairs(&[(&first, "13800001111")])).await.unwrap();
    let moved = app.api.bind_phones(APP, &pairs(&[(&second, "+8613800001111")])).await.unwrap();
    assert_eq!(codes(&moved), [0]);
    let q = query(&app, &[first.clone(), second.clone()]).await;
    assert_eq!(codes(&q), [7, 0], "the latest bind of a phone wins; the first cid answers 7");
    assert_eq!(q.batch_ret[1].pn.as_deref(), Some("138****1111"));
    // The binding outlives a restart.
    let mut app = app;
    app.restart().await;
    assert_eq!(codes(&query(&app, &[first, second]).await), [7, 0]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_over_50_are_refused_naming_the_field_and_bad_entries_get_their_codes() {
    let app = spawn_app().await;
    let many: Vec<(String, String)> = (0..51).map(|i| (cid(100 + i), phone(i))).collect();
    let (status, field, message) = api_err(app.api.bind_phones(APP, &many).await.unwrap_err());
    assert_eq!((status, field.as_deref()), (400, Some("cidpnlist")), "{message}");
    assert!(message.contains("51") && message.contains("50"), "{message}");
    let cids: Vec<String> = (0..51).map(|i| cid(100 + i)).collect();
    let (status, field, _) = api_err(app.api.unbind_phones(APP, &cids).await.unwrap_err());
    assert_eq!((status, field.as_deref()), (400, Some("cids")));
    let (status, field, _) = api_err(app.api.query_phones(APP, &cids).await.unwrap_err());
    assert_eq!((status, field.as_deref()), (400, Some("cids")));
    // 50 is fine.
    assert_eq!(codes(&app.api.bind_phones(APP, &many[..50]).await.unwrap()).len(), 50);

    let a = app
        .api
        .bind_phones(
            APP,
            &pairs(&[("", "13800000000"), (&cid(200), ""), (&cid(201), "1380000abcd"), (&cid(202), "12345")]),
        )
        .await
        .unwrap();
    assert_eq!(codes(&a), [5, 6, 6, 6]);
    let text = serde_json::to_string(&a).unwrap();
    assert!(!text.contains("0abcd") && !text.contains("12345"), "no given number in the reasons: {text}");

    // Unknown app → 404 JSON; a WeCom app has no cids.
    let (status, _, _) = api_err(app.api.query_phones("nosuch", &[cid(1)]).await.unwrap_err());
    assert_eq!(status, 404);
    let (status, _, _) = api_err(app.api.bind_phones("staff", &pairs(&[(&cid(1), "13800000000")])).await.unwrap_err());
    assert_eq!(status, 404);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_of_100000_lines_binds_the_good_ones_and_names_the_bad() {
    let app = spawn_app().await;
    const LINES: u64 = 100_000;
    let bad_at = [7u64, 50_001, 99_999];
    let (tx, body) = channel_body(16);
    let writer = tokio::spawn(async move {
        let mut buf = String::with_capacity(70_000);
        for n in 1..=LINES {
            match n {
                7 => buf.push_str("{\"cid\": \"not json\"\n"),
                50_001 => buf.push_str(&format!("{{\"cid\":\"{}\",\"phone\":\"\"}}\n", cid(n))),
                99_999 => buf.push_str(&format!("{{\"cid\":\"\",\"phone\":\"{}\"}}\n", phone(n))),
                _ => buf.push_str(&format!("{{\"cid\":\"{}\",\"phone\":\"{}\"}}\n", cid(n), phone(n))),
            }
            if buf.len() > 64 * 1024 {
                tx.send(Bytes::from(std::mem::take(&mut buf))).await.unwrap();
            }
        }
        tx.send(Bytes::from(buf)).await.unwrap();
    });
    let v = app.api.import_phones(APP, "application/x-ndjson", body).await.unwrap();
    writer.await.unwrap();
    assert_eq!(v.lines, LINES);
    assert_eq!(v.bound, LINES - 3);
    assert_eq!(v.replaced, 0);
    assert_eq!(v.bad_lines, 3);
    assert_eq!(v.first_bad.iter().map(|b| b.line).collect::<Vec<_>>(), bad_at);
    assert!(v.first_bad[1].reason.contains("code 6"), "{:?}", v.first_bad);
    assert!(v.first_bad[2].reason.contains("code 5"), "{:?}", v.first_bad);
    let q = query(&app, &[cid(1), cid(7), cid(50_001), cid(LINES)]).await;
    assert_eq!(codes(&q), [0, 7, 7, 0]);
    assert_eq!(q.batch_ret[3].pn.as_deref(), Some("139****0000"));

    // CSV with a header; a phone imported again for another cid moves.
    let csv = format!("cid,phone\n{},{}\nbad line\n", cid(500_000), phone(1));
    let v = app.api.import_phones(APP, "text/csv", chunked(csv)).await.unwrap();
    assert_eq!((v.lines, v.bound, v.replaced, v.bad_lines), (3, 1, 1, 1));
    assert_eq!(v.first_bad[0].line, 3);
    assert_eq!(codes(&query(&app, &[cid(1), cid(500_000)]).await), [7, 0]);
    app.stop().await;
}

fn chunked(text: String) -> campaignd::client::ChannelBody {
    let (tx, body) = channel_body(1);
    tokio::spawn(async move {
        let _ = tx.send(Bytes::from(text)).await;
    });
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_holds_no_bound_number_in_plain_text() {
    let mut app = spawn_app().await;
    let numbers = ["13811112222", "13933334444", "13755556666"];
    let list: Vec<(String, String)> =
        numbers.iter().enumerate().map(|(i, p)| (cid(900 + i as u64), p.to_string())).collect();
    assert_eq!(codes(&app.api.bind_phones(APP, &list).await.unwrap()), [0, 0, 0]);
    // Keep the store's directory past the daemon's stop (the test app drops its own).
    let dir = std::mem::replace(&mut app.store_dir, tempfile::tempdir().unwrap());
    app.stop().await;
    let bytes = all_bytes(dir.path());
    assert!(bytes.len() > 1000, "the store wrote its files");
    for n in numbers {
        assert!(!bytes.windows(n.len()).any(|w| w == n.as_bytes()), "{n} is in the store in plain text");
        let e164 = format!("+86{n}");
        assert!(!bytes.windows(e164.len()).any(|w| w == e164.as_bytes()));
    }
}

/// Runs the CLI binary off the async workers (it starts its own runtime).
async fn cli(args: Vec<String>) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_campaignd"))
            .args(&args)
            .env_remove("CAMPAIGND_TOKEN")
            .output()
            .expect("run campaignd")
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_binds_queries_imports_and_unbinds() {
    let app = spawn_app().await;
    let server = format!("http://{}", app.addr);
    let run = |verb: &[&str]| {
        let mut args: Vec<String> = vec!["campaign".into(), "--server".into(), server.clone()];
        args.extend(verb.iter().map(|s| s.to_string()));
        cli(args)
    };
    let (a, b) = (cid(31), cid(32));
    let out = run(&["bind", "--app", APP, "--cid", &a, "--phone", "13812345678"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains(" 0 ok"), "{}", String::from_utf8_lossy(&out.stdout));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pairs.csv");
    std::fs::write(&file, format!("cid,phone\n{b},13900001234\nnot-a-cid\n")).unwrap();
    let out = run(&["import", "--app", APP, file.to_str().unwrap()]).await;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success() && text.contains("bound 1") && text.contains("line 3"), "{text}");
    let out = run(&["query", "--app", APP, &a, &b, &cid(33)]).await;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("138****5678") && text.contains("139****1234") && text.contains(" 7 not bound"), "{text}");
    assert!(!text.contains("13812345678"), "{text}");
    let out = run(&["unbind", "--app", APP, &a]).await;
    assert!(String::from_utf8_lossy(&out.stdout).contains(" 0 ok"));
    let out = run(&["query", "--app", APP, &a]).await;
    assert!(String::from_utf8_lossy(&out.stdout).contains(" 7 not bound"));
    app.stop().await;
}
