//! The Getui client against the simulator over real loopback HTTP: every endpoint, every
//! answer class, token expiry and renewal, the 301 host switch, size limits and request_id dedup.

mod common;

use std::time::Duration;

use campaignd::simulator::{FaultProfile, Limits, RateLimitBurst, SimConfig};
use campaignd::upstream::getui::client::CidStatus;
use campaignd::upstream::getui::{AnswerClass, GetuiError};
use campaignd::upstream::ProviderError;
use campaignd::wire::getui::{
    AliasAudience, AllAudience, BatchPush, CidAudience, Condition, ListCidPush, ListMessage, Notification, OptType,
    Push, PushMessage, Settings, SingleCidPush, TagAudience, TagPush,
};
use common::{cid, client_for, client_with, now_ms, raw, raw_token, settings_for, start_sim};
use serde_json::json;

fn note() -> PushMessage {
    PushMessage {
        notification: Some(Notification {
            title: "Spring sale".into(),
            body: "20% off today".into(),
            click_type: "url".into(),
            url: Some("https://example.com/sale".into()),
            ..Notification::default()
        }),
        ..PushMessage::default()
    }
}

fn single(request_id: &str, to: &str) -> SingleCidPush<'static> {
    Push {
        request_id: request_id.to_owned().into(),
        group_name: None,
        audience: CidAudience { cid: vec![to.to_owned().into()] },
        settings: None,
        push_message: note(),
        push_channel: None,
    }
}

fn batch(prefix: &str, n: u64) -> BatchPush<'static> {
    BatchPush { is_async: false, msg_list: (0..n).map(|i| single(&format!("{prefix}-{i:08}"), &cid(i))).collect() }
}

fn list_of(taskid: &str, range: std::ops::Range<u64>) -> ListCidPush<'static> {
    ListCidPush {
        audience: CidAudience { cid: range.map(|i| cid(i).into()).collect() },
        taskid: taskid.to_owned().into(),
        is_async: false,
    }
}

fn list_message(group: Option<&str>) -> ListMessage<'static> {
    ListMessage {
        request_id: None,
        group_name: group.map(str::to_owned),
        settings: Some(Settings { ttl: Some(3_600_000), ..Settings::default() }),
        push_message: note(),
        push_channel: None,
    }
}

fn tag_push(request_id: &str, schedule_time: Option<i64>) -> TagPush<'static> {
    Push {
        request_id: request_id.to_owned().into(),
        group_name: Some("spring-ab".into()),
        audience: TagAudience {
            tag: vec![Condition { key: "phone_type".into(), values: vec!["android".into()], opt_type: OptType::Or }],
        },
        settings: Some(Settings { schedule_time, speed: Some(100), ..Settings::default() }),
        push_message: PushMessage { transmission: Some("hello".into()), ..PushMessage::default() },
        push_channel: None,
    }
}

fn api_code(e: &GetuiError) -> i64 {
    match e.code_label() {
        campaignd::metrics::CodeLabel::Vendor(code) => code,
        other => panic!("expected a Getui code, got {other}: {e}"),
    }
}

#[tokio::test]
async fn auth_signs_and_a_wrong_sign_is_20001() {
    let sim = start_sim(SimConfig::default()).await;
    let token = raw_token(&sim.getui_base_url()).await;
    assert_eq!(token.len(), 48);
    let (status, body) = raw(
        "POST",
        &format!("{}/{}/auth", sim.getui_base_url(), campaignd::simulator::DEV_APP_ID),
        None,
        json!({"sign": "0".repeat(64), "timestamp": now_ms().to_string(), "appkey": campaignd::simulator::DEV_APP_KEY}),
    )
    .await;
    assert_eq!((status, body["code"].as_i64(), body["msg"].as_str()), (400, Some(20001), Some("sign is invalid")));

    let (client, calls) = client_for(&sim);
    let expires = client.authenticate().await.unwrap();
    assert!(expires > now_ms() + 86_000_000);
    assert_eq!(calls.list(), vec![("POST /auth", 0)]);
}

#[tokio::test]
async fn wrong_master_secret_is_a_permanent_20001() {
    let sim = start_sim(SimConfig::default()).await;
    let mut settings = settings_for(&sim.getui_base_url());
    settings.master_secret = campaignd::secret::Secret::new("not-the-secret");
    let (client, _) = client_with(settings);
    let err = client.authenticate().await.unwrap_err();
    assert_eq!((api_code(&err), err.class()), (20001, AnswerClass::Permanent));
    assert!(err.to_string().contains("sign is invalid"), "{err}");
}

#[tokio::test]
async fn single_pushes_report_a_deterministic_status_per_cid() {
    let sim = start_sim(SimConfig::default()).await;
    let (client, _) = client_for(&sim);
    let to = cid(7);
    let a = client.push_single_cid(&single("single-req-0001", &to)).await.unwrap();
    let b = client.push_single_cid(&single("single-req-0002", &to)).await.unwrap();
    assert_eq!(a.status_of(&to), b.status_of(&to));
    assert!(matches!(
        a.status_of(&to),
        Some(CidStatus::SuccessedOnline | CidStatus::SuccessedOffline | CidStatus::SuccessedIgnore)
    ));
    assert_eq!(sim.ledger().count(&campaignd::domain::CompactCid::parse(&to).unwrap()), 2);

    let alias = Push {
        request_id: "alias-req-0001".into(),
        group_name: None,
        audience: AliasAudience { alias: vec!["user-42".into()], alias_type: None },
        settings: None,
        push_message: note(),
        push_channel: None,
    };
    let out = client.push_single_alias(&alias).await.unwrap();
    assert_eq!(out.statuses().count(), 1);
    assert_eq!(sim.ledger().summary().by_endpoint["push_single_alias"], 1);
}

#[tokio::test]
async fn batch_of_200_is_delivered_once_even_when_resent() {
    let sim = start_sim(SimConfig::default()).await;
    let (client, _) = client_for(&sim);
    let first = client.push_single_batch_cid(&batch("batch", 200)).await.unwrap();
    assert_eq!(first.statuses().count(), 200);
    let again = client.push_single_batch_cid(&batch("batch", 200)).await.unwrap();
    assert_eq!(first, again, "a repeated request_id gets the same answer");
    let s = sim.ledger().summary();
    assert_eq!((s.deliveries, s.unique_cids, s.duplicates, s.dropped_repeats), (200, 200, 0, 200));
}

#[tokio::test]
async fn batch_results_keep_the_order_messages_were_added_and_retries_deliver_once() {
    let sim = start_sim(SimConfig::default()).await;
    let (client, _) = client_for(&sim);
    // Cids in an order unlike the answer's map order, plus one malformed cid.
    let order = [7u64, 2, 9, 0, 5];
    let mut b = BatchPush {
        is_async: false,
        msg_list: order.iter().map(|&i| single(&format!("ordered-{i:08}"), &cid(i))).collect(),
    };
    b.msg_list.push(single("ordered-bad-0001", "not-a-cid"));
    let outcome = client.push_single_batch_cid(&b).await.unwrap();
    let results = outcome.in_order(&b);
    let ids: Vec<&str> = results.iter().map(|r| r.request_id).collect();
    let expected: Vec<String> = order.iter().map(|i| format!("ordered-{i:08}")).collect();
    assert_eq!(&ids[..5], expected.iter().map(String::as_str).collect::<Vec<_>>().as_slice());
    assert!(results[..5].iter().all(|r| r.status.is_some()), "{results:?}");
    assert_eq!((results[5].request_id, results[5].status.clone()), ("ordered-bad-0001", None));
    // The seed's requestId retry: the same ids again deliver nothing new.
    let again = client.push_single_batch_cid(&b).await.unwrap();
    assert_eq!(again.in_order(&b), results);
    let s = sim.ledger().summary();
    assert_eq!((s.deliveries, s.duplicates, s.dropped_repeats), (5, 0, 5));
}

#[tokio::test]
async fn batch_and_list_size_limits() {
    let sim = start_sim(SimConfig::default()).await;
    let (client, calls) = client_for(&sim);
    // The client refuses oversize requests without sending them.
    let err = client.push_single_batch_cid(&batch("big", 201)).await.unwrap_err();
    assert!(matches!(err, GetuiError::Invalid { .. }));
    assert_eq!(err.class(), AnswerClass::Permanent);
    let taskid = client.create_list_message(&list_message(None)).await.unwrap();
    let err = client.push_list_cid(&list_of(&taskid, 0..1001)).await.unwrap_err();
    assert!(matches!(err, GetuiError::Invalid { .. }));
    assert_eq!(calls.count("POST /push/list/cid"), 0);

    // The simulator refuses them too, as Getui does.
    let token = raw_token(&sim.getui_base_url()).await;
    let base = format!("{}/{}", sim.getui_base_url(), campaignd::simulator::DEV_APP_ID);
    let cids: Vec<String> = (0..1001).map(cid).collect();
    let (status, body) = raw(
        "POST",
        &format!("{base}/push/list/cid"),
        Some(&token),
        json!({"audience": {"cid": cids}, "taskid": taskid}),
    )
    .await;
    assert_eq!((status, body["code"].as_i64()), (400, Some(20001)), "{body}");
    let msgs = serde_json::to_value(batch("raw", 201)).unwrap();
    let (status, body) = raw("POST", &format!("{base}/push/single/batch/cid"), Some(&token), msgs).await;
    assert_eq!((status, body["code"].as_i64()), (400, Some(20001)), "{body}");
    assert_eq!(sim.ledger().summary().deliveries, 0);

    // Exactly at the limits, both go through.
    let out = client.push_list_cid(&list_of(&taskid, 0..1000)).await.unwrap();
    assert_eq!(out.statuses().count(), 1000);
    client.push_single_batch_cid(&batch("max", 200)).await.unwrap();
}

#[tokio::test]
async fn request_id_rules_are_enforced_upstream() {
    let sim = start_sim(SimConfig::default()).await;
    let (client, _) = client_for(&sim);
    for bad in ["short", &"x".repeat(33)] {
        let err = client.push_single_cid(&single(bad, &cid(1))).await.unwrap_err();
        assert_eq!((api_code(&err), err.class()), (20001, AnswerClass::Permanent), "{bad}");
    }
    let mut dup = batch("dup", 2);
    dup.msg_list[1].request_id = dup.msg_list[0].request_id.clone();
    let err = client.push_single_batch_cid(&dup).await.unwrap_err();
    assert!(err.to_string().contains("duplicate request_id"), "{err}");
    assert_eq!(sim.ledger().summary().deliveries, 0);
}

#[tokio::test]
async fn list_task_lifecycle_and_reports() {
    let sim = start_sim(SimConfig::default()).await;
    let (client, _) = client_for(&sim);
    let taskid = client.create_list_message(&list_message(Some("spring-ab"))).await.unwrap();
    assert!(taskid.starts_with("RASL-"), "{taskid}");
    let out = client.push_list_cid(&list_of(&taskid, 0..1000)).await.unwrap();
    let mut kinds = std::collections::BTreeMap::new();
    for (t, _, st) in out.statuses() {
        assert_eq!(t, taskid);
        *kinds.entry(format!("{st:?}")).or_insert(0) += 1;
    }
    assert_eq!(kinds.len(), 3, "online, offline and ignore all occur: {kinds:?}");
    assert!(kinds["SuccessedOnline"] > kinds["SuccessedOffline"]);
    client.push_list_cid(&list_of(&taskid, 1000..1500)).await.unwrap();

    let report = client.report_task(&taskid).await.unwrap();
    let total = &report[&taskid]["total"];
    assert_eq!(total.target_num, 1500);
    assert!(total.receive_num < 1500 && total.receive_num > 1200, "{total:?}");
    let group = client.report_group("spring-ab").await.unwrap();
    assert_eq!(group["spring-ab"]["total"].target_num, 1500);

    client.stop_task(&taskid).await.unwrap();
    let err = client.push_list_cid(&list_of(&taskid, 0..1)).await.unwrap_err();
    assert_eq!(api_code(&err), 20001);
    let err = client.push_list_cid(&list_of("RASL-unknown", 0..1)).await.unwrap_err();
    assert!(err.to_string().contains("taskid is invalid"), "{err}");
    assert_eq!(sim.ledger().summary().by_endpoint["push_list_cid"], 1500);
}

#[tokio::test]
async fn app_pushes_and_scheduled_tasks() {
    let sim = start_sim(SimConfig::default()).await;
    let (client, _) = client_for(&sim);
    let all = Push {
        request_id: "app-all-00001".into(),
        group_name: None,
        audience: AllAudience,
        settings: None,
        push_message: note(),
        push_channel: None,
    };
    let t1 = client.push_all(&all).await.unwrap();
    assert_eq!(client.push_all(&all).await.unwrap(), t1, "a repeated request_id returns the same task");

    let later = i64::try_from(now_ms()).unwrap() + 10 * 60_000;
    let scheduled = client.push_tag(&tag_push("app-tag-00001", Some(later))).await.unwrap();
    let info = client.query_schedule(&scheduled).await.unwrap();
    assert_eq!(info.send_result, "do_not_send");
    assert_eq!(info.push_time, later.to_string());
    assert_eq!(info.transmission_content, "hello");
    client.delete_schedule(&scheduled).await.unwrap();
    assert_eq!(client.query_schedule(&scheduled).await.unwrap().send_result, "has_delete");

    // Within one minute of firing, deletion is refused.
    let soon = i64::try_from(now_ms()).unwrap() + 30_000;
    let imminent = client.push_tag(&tag_push("app-tag-00002", Some(soon))).await.unwrap();
    let err = client.delete_schedule(&imminent).await.unwrap_err();
    assert_eq!((api_code(&err), err.class()), (22001, AnswerClass::Permanent));

    // In the past or beyond seven days: refused at submission.
    for bad in [i64::try_from(now_ms()).unwrap() - 1000, i64::try_from(now_ms()).unwrap() + 8 * 86_400_000] {
        let err = client.push_tag(&tag_push("app-tag-00003", Some(bad))).await.unwrap_err();
        assert_eq!(api_code(&err), 22002);
    }
}

#[tokio::test]
async fn app_push_limits_are_rate_limited_then_permanent() {
    let limits = Limits { app_push_per_minute: Some(2), app_push_per_day: Some(3), ..Limits::default() };
    let sim = start_sim(SimConfig { limits, ..SimConfig::default() }).await;
    let (client, _) = client_for(&sim);
    client.push_tag(&tag_push("limit-req-01", None)).await.unwrap();
    client.push_tag(&tag_push("limit-req-02", None)).await.unwrap();
    let err = client.push_tag(&tag_push("limit-req-03", None)).await.unwrap_err();
    assert_eq!((api_code(&err), err.class()), (30014, AnswerClass::RateLimited));
}

#[tokio::test]
async fn daily_quota_is_permanent() {
    let limits = Limits { app_push_per_day: Some(1), ..Limits::default() };
    let sim = start_sim(SimConfig { limits, ..SimConfig::default() }).await;
    let (client, _) = client_for(&sim);
    client.push_tag(&tag_push("quota-req-01", None)).await.unwrap();
    let err = client.push_tag(&tag_push("quota-req-02", None)).await.unwrap_err();
    assert_eq!((api_code(&err), err.class()), (30010, AnswerClass::Permanent));
}

#[tokio::test]
async fn auth_frequency_limit_is_rate_limited() {
    let limits = Limits { auth_per_minute: Some(2), ..Limits::default() };
    let sim = start_sim(SimConfig { limits, ..SimConfig::default() }).await;
    let (client, _) = client_for(&sim);
    client.authenticate().await.unwrap();
    client.authenticate().await.unwrap();
    let err = client.authenticate().await.unwrap_err();
    assert_eq!((api_code(&err), err.class()), (10003, AnswerClass::RateLimited));
}

#[tokio::test]
async fn refused_token_is_renewed_once_and_the_call_replayed() {
    let sim = start_sim(SimConfig::default()).await;
    let (client, calls) = client_for(&sim);
    client.push_single_cid(&single("expiry-req-01", &cid(1))).await.unwrap();
    // The upstream forgets the token while the client still thinks it is good.
    let (status, _) = raw("POST", &format!("http://{}/_sim/expire-tokens", sim.local_addr()), None, json!(null)).await;
    assert_eq!(status, 200);
    client.push_single_cid(&single("expiry-req-02", &cid(2))).await.unwrap();
    assert_eq!(
        calls.list(),
        vec![
            ("POST /auth", 0),
            ("POST /push/single/cid", 0),
            ("POST /push/single/cid", 10001),
            ("POST /auth", 0),
            ("POST /push/single/cid", 0)
        ]
    );
    assert_eq!(sim.ledger().summary().deliveries, 2);
}

#[tokio::test]
async fn token_is_renewed_before_it_expires() {
    let sim = start_sim(SimConfig { token_ttl: Duration::from_millis(600), ..SimConfig::default() }).await;
    let (client, calls) = client_for(&sim); // margin 1 h, capped at half the 600 ms lifetime
    client.push_single_cid(&single("renew-req-01", &cid(1))).await.unwrap();
    tokio::time::sleep(Duration::from_millis(350)).await;
    client.push_single_cid(&single("renew-req-02", &cid(2))).await.unwrap();
    assert_eq!(
        calls.list(),
        vec![("POST /auth", 0), ("POST /push/single/cid", 0), ("POST /auth", 0), ("POST /push/single/cid", 0)]
    );
}

#[tokio::test]
async fn a_token_refused_twice_is_reauth_class() {
    // Tokens that are expired the moment they are issued.
    let sim = start_sim(SimConfig { token_ttl: Duration::ZERO, ..SimConfig::default() }).await;
    let (client, calls) = client_for(&sim);
    let err = client.push_single_cid(&single("reauth-req-1", &cid(1))).await.unwrap_err();
    assert_eq!((api_code(&err), err.class()), (10001, AnswerClass::ReAuth));
    assert_eq!(calls.count("POST /push/single/cid"), 2, "one replay, then give up: {:?}", calls.list());
    assert_eq!(sim.ledger().summary().deliveries, 0);
}

#[tokio::test]
async fn redirect_301_switches_host_and_stays_switched() {
    let real = start_sim(SimConfig::default()).await;
    let wrong =
        start_sim(SimConfig { redirect_to: Some(format!("{}/", real.getui_base_url())), ..SimConfig::default() }).await;
    let (client, calls) = client_for(&wrong);
    client.push_single_cid(&single("moved-req-01", &cid(1))).await.unwrap();
    client.push_single_cid(&single("moved-req-02", &cid(2))).await.unwrap();
    assert!(client.current_base().starts_with(&real.getui_base_url()), "{}", client.current_base());
    assert_eq!(
        calls.list(),
        vec![("POST /auth", 301), ("POST /auth", 0), ("POST /push/single/cid", 0), ("POST /push/single/cid", 0)]
    );
    assert_eq!(real.ledger().summary().deliveries, 2);
    assert_eq!(wrong.ledger().summary().deliveries, 0);
}

#[tokio::test]
async fn server_errors_and_dropped_connections_are_retryable() {
    let profile = FaultProfile { server_error_share: 1.0, ..FaultProfile::clean() };
    let sim = start_sim(SimConfig { profile, ..SimConfig::default() }).await;
    let (client, _) = client_for(&sim);
    let err = client.authenticate().await.unwrap_err();
    assert!(matches!(err, GetuiError::Http { status: 503, .. }), "{err}");
    assert_eq!(err.class(), AnswerClass::Retryable);

    let profile = FaultProfile { drop_before_share: 1.0, ..FaultProfile::clean() };
    let sim = start_sim(SimConfig { profile, ..SimConfig::default() }).await;
    let (client, _) = client_for(&sim);
    let err = client.authenticate().await.unwrap_err();
    assert!(matches!(err, GetuiError::Transport { .. }), "{err}");
    assert_eq!(err.class(), AnswerClass::Retryable);
    assert!(!err.maybe_delivered(), "a lost /auth answer delivers nothing");
}

#[tokio::test]
async fn lost_answers_retried_with_the_same_request_id_deliver_once() {
    // Half of all answers are lost after the simulator has acted on the request.
    let profile = FaultProfile { drop_after_share: 0.5, ..FaultProfile::clean() };
    let sim = start_sim(SimConfig { profile, ..SimConfig::default() }).await;
    let (client, _) = client_for(&sim);
    let mut lost = 0;
    for i in 0..20 {
        let push = single(&format!("lossy-req-{i:04}"), &cid(i));
        let mut attempts = 0;
        while let Err(e) = client.push_single_cid(&push).await {
            assert_eq!(e.class(), AnswerClass::Retryable, "{e}");
            assert!(e.maybe_delivered() || e.endpoint() == "POST /auth", "{e}");
            lost += 1;
            attempts += 1;
            assert!(attempts < 40, "never got an answer");
        }
    }
    let s = sim.ledger().summary();
    assert!(lost > 0);
    assert_eq!((s.deliveries, s.unique_cids, s.duplicates), (20, 20, 0));
    assert!(s.dropped_repeats > 0, "some retries repeated a delivered request_id: {s:?}");
}

#[tokio::test]
async fn nothing_listening_is_a_retryable_transport_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let (client, calls) = client_with(settings_for(&format!("http://{addr}/v2")));
    let err = client.authenticate().await.unwrap_err();
    assert!(matches!(err, GetuiError::Transport { .. }), "{err}");
    assert_eq!(err.class(), AnswerClass::Retryable);
    assert_eq!(calls.list(), vec![("POST /auth", 5000)]);
}

#[tokio::test]
async fn rate_limit_bursts_are_rate_limited_class() {
    let always = RateLimitBurst { every: Duration::from_secs(3600), lasts: Duration::from_secs(3600) };
    let profile = FaultProfile { rate_limit_burst: Some(always), ..FaultProfile::clean() };
    let sim = start_sim(SimConfig { profile, ..SimConfig::default() }).await;
    let (client, _) = client_for(&sim);
    let err = client.push_single_cid(&single("burst-req-01", &cid(1))).await.unwrap_err();
    assert_eq!((api_code(&err), err.class()), (10005, AnswerClass::RateLimited));
    let err = client.push_list_cid(&list_of("RASL-0000000001", 0..10)).await.unwrap_err();
    assert_eq!((api_code(&err), err.class()), (30015, AnswerClass::RateLimited));
}

#[tokio::test]
async fn malformed_cids_are_target_user_invalid() {
    let sim = start_sim(SimConfig::default()).await;
    let (client, _) = client_for(&sim);
    let err = client.push_single_cid(&single("badcid-req-01", "not-a-cid")).await.unwrap_err();
    assert_eq!((api_code(&err), err.class()), (20001, AnswerClass::Permanent));
    assert!(err.to_string().contains("target user is invalid"), "{err}");
    // In a list, malformed ids are left out and the others delivered.
    let taskid = client.create_list_message(&list_message(None)).await.unwrap();
    let mut push = list_of(&taskid, 0..3);
    push.audience.cid.push("NOT-A-CID".into());
    let out = client.push_list_cid(&push).await.unwrap();
    assert_eq!(out.statuses().count(), 3);
    assert!(out.status_of("NOT-A-CID").is_none());
}

#[tokio::test]
async fn message_rules_are_checked_upstream() {
    let sim = start_sim(SimConfig::default()).await;
    let (client, _) = client_for(&sim);
    let mut p = single("rules-req-001", &cid(1));
    if let Some(n) = p.push_message.notification.as_mut() {
        n.title = "x".repeat(51);
    }
    let err = client.push_single_cid(&p).await.unwrap_err();
    assert!(err.to_string().contains("title size over limit"), "{err}");
    let mut p = single("rules-req-002", &cid(1));
    p.push_message.transmission = Some("both".into());
    let err = client.push_single_cid(&p).await.unwrap_err();
    assert!(err.to_string().contains("choose one of"), "{err}");
    assert_eq!(sim.ledger().summary().deliveries, 0);
}

#[tokio::test]
async fn revoked_token_is_refused_then_renewed() {
    let sim = start_sim(SimConfig::default()).await;
    let (client, calls) = client_for(&sim);
    client.authenticate().await.unwrap();
    client.revoke_token().await.unwrap();
    client.push_single_cid(&single("revoke-req-01", &cid(1))).await.unwrap();
    assert_eq!(
        calls.list(),
        vec![("POST /auth", 0), ("DELETE /auth", 0), ("POST /auth", 0), ("POST /push/single/cid", 0)]
    );
}

#[tokio::test]
async fn non_json_and_wrong_types_get_code_1_and_20001() {
    let sim = start_sim(SimConfig::default()).await;
    let token = raw_token(&sim.getui_base_url()).await;
    let base = format!("{}/{}", sim.getui_base_url(), campaignd::simulator::DEV_APP_ID);
    let (status, body) = raw("POST", &format!("{base}/push/single/cid"), Some(&token), json!("just a string")).await;
    assert_eq!((status, body["code"].as_i64()), (400, Some(20001)));
    let (status, body) = raw("GET", &format!("{base}/push/single/cid"), Some(&token), json!({})).await;
    assert_eq!((status, body["code"].as_i64()), (405, Some(405)));
    let (status, body) = raw("POST", &format!("{base}/push/nope"), Some(&token), json!({})).await;
    assert_eq!((status, body["code"].as_i64()), (404, Some(404)));
    let (status, body) = raw("POST", &format!("{base}/push/single/cid"), None, json!({})).await;
    assert_eq!((status, body["code"].as_i64()), (401, Some(10001)));
}

#[tokio::test]
async fn ledger_is_served_over_http() {
    let sim = start_sim(SimConfig::default()).await;
    let (client, _) = client_for(&sim);
    client.push_single_batch_cid(&batch("ledger", 3)).await.unwrap();
    let url = format!("http://{}/_sim/ledger", sim.local_addr());
    let (status, body) = raw("GET", &url, None, json!(null)).await;
    assert_eq!(status, 200);
    assert_eq!(body["deliveries"], 3);
    assert_eq!(body["unique_cids"], 3);
    assert_eq!(body["duplicates"], 0);
    assert_eq!(body["by_endpoint"]["push_single_batch_cid"], 3);
    let (_, one) = raw("GET", &format!("{url}/{}", cid(1)), None, json!(null)).await;
    assert_eq!(one["deliveries"], 1);
    let (_, none) = raw("GET", &format!("{url}/{}", cid(99)), None, json!(null)).await;
    assert_eq!(none["deliveries"], 0);
    let (status, _) = raw("GET", &format!("{url}/nonsense"), None, json!(null)).await;
    assert_eq!(status, 400);
}
