//! The Tencent Cloud SMS client against the simulator over real loopback HTTP: a send in the
//! ledger, a bad SecretKey, the 200-number limit on both sides, per-number limits, the
//! marketing window under a shifted clock, a stale timestamp, and a status report reaching a
//! small receiver. Facts: `shared/reference/getui-legacy-and-sms.md` §3.1.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use campaignd::config::PoolSettings;
use campaignd::domain::ResultName;
use campaignd::secret::Secret;
use campaignd::serve::{json_response, serve, HandlerResult};
use campaignd::simulator::{
    FaultProfile, ReportSettings, RunningSimulator, SimConfig, Simulator, SmsLedgerSummary, SmsSimConfig,
    DEV_SMS_SDK_APP_ID, DEV_SMS_SECRET_ID, DEV_SMS_SECRET_KEY, DEV_SMS_SIGN_NAME,
};
use campaignd::upstream::http::{build_client, read_body};
use campaignd::upstream::sms::{
    number_outcome, NumberOutcome, SmsError, TencentSmsClient, TencentSmsSettings, SEND_SMS,
};
use campaignd::upstream::{AnswerClass, FailedAt, ProviderError};
use campaignd::wire::tencent_sms::codes::{self, CodeClass};
use campaignd::wire::tencent_sms::sign::{authorization, sign, SigningInput};
use campaignd::wire::tencent_sms::{SendSms, SendSmsAnswer, StatusReport, StatusReportAnswer, BEIJING_OFFSET_SECS};
use common::eventually;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request};
use tokio_util::sync::CancellationToken;

/// A clock offset that puts the simulator's Beijing clock at `hour`:30 today.
fn offset_to_beijing(hour: i64) -> i64 {
    let now = campaignd::clock::now_s();
    let day_start = (now + BEIJING_OFFSET_SECS).div_euclid(86_400) * 86_400 - BEIJING_OFFSET_SECS;
    day_start + hour * 3600 + 1800 - now
}

/// A simulator whose Beijing clock reads 12:30, inside the marketing window.
fn midday(sms: SmsSimConfig) -> SmsSimConfig {
    SmsSimConfig { clock_offset_secs: offset_to_beijing(12), ..sms }
}

async fn start(sms: SmsSimConfig) -> RunningSimulator {
    let config = SimConfig { sms, ..SimConfig::default() };
    Simulator::bind("127.0.0.1:0".parse().unwrap(), config).await.unwrap().spawn()
}

fn settings(sim: &RunningSimulator, secret_key: &str) -> TencentSmsSettings {
    TencentSmsSettings {
        base_url: sim.sms_base_url(),
        secret_id: DEV_SMS_SECRET_ID.into(),
        secret_key: Secret::new(secret_key),
        sdk_app_id: DEV_SMS_SDK_APP_ID.into(),
        region: "ap-guangzhou".into(),
        request_timeout: Duration::from_secs(5),
        pool: PoolSettings::default(),
    }
}

fn client(sim: &RunningSimulator) -> TencentSmsClient {
    TencentSmsClient::new(settings(sim, DEV_SMS_SECRET_KEY)).unwrap()
}

fn phone(i: usize) -> String {
    format!("+86138{i:08}")
}

/// A request for the simulator's template 1234567 ("尊敬的{1}，你的余额还剩{2}元，请尽快充值。").
fn request(phones: impl IntoIterator<Item = String>, name: &str) -> SendSms {
    SendSms {
        phone_number_set: phones.into_iter().collect(),
        sms_sdk_app_id: DEV_SMS_SDK_APP_ID.into(),
        sign_name: DEV_SMS_SIGN_NAME.into(),
        template_id: "1234567".into(),
        template_param_set: vec![name.into(), "12".into()],
        session_context: Some("campaign-1".into()),
    }
}

async fn get(sim: &RunningSimulator, method: Method, path: &str, body: &str) -> serde_json::Value {
    let http = build_client(&PoolSettings::default()).unwrap();
    let req = Request::builder()
        .method(method)
        .uri(format!("http://{}{path}", sim.local_addr()))
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    let resp = http.request(req).await.unwrap();
    assert_eq!(resp.status().as_u16(), 200, "{path}");
    serde_json::from_slice(&read_body(resp.into_body()).await.unwrap()).unwrap()
}

async fn ledger(sim: &RunningSimulator) -> SmsLedgerSummary {
    serde_json::from_value(get(sim, Method::GET, "/_sim/sms/ledger", "").await).unwrap()
}

/// Posts `body` signed with the development credentials at `timestamp` and `version`,
/// bypassing the client's own checks.
async fn raw_send(sim: &RunningSimulator, body: &[u8], timestamp: i64, version: &str) -> SendSmsAnswer {
    let host = sim.local_addr().to_string();
    let input = SigningInput { host: &host, content_type: "application/json", timestamp, service: "sms", body };
    let signed = sign(DEV_SMS_SECRET_KEY, &input).unwrap();
    let req = Request::post(format!("http://{host}/"))
        .header("authorization", authorization(DEV_SMS_SECRET_ID, &signed))
        .header("content-type", "application/json")
        .header("host", &host)
        .header("x-tc-action", "SendSms")
        .header("x-tc-version", version)
        .header("x-tc-timestamp", timestamp.to_string())
        .body(Full::new(Bytes::copy_from_slice(body)))
        .unwrap();
    let http = build_client(&PoolSettings::default()).unwrap();
    let resp = http.request(req).await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.headers()["content-type"].to_str().unwrap().split(';').next(), Some("application/json"));
    serde_json::from_slice(&read_body(resp.into_body()).await.unwrap()).unwrap()
}

fn api_code(e: &SmsError) -> &str {
    match e {
        SmsError::Api { code, .. } => code,
        other => panic!("expected a Tencent error code, got {other}"),
    }
}

#[tokio::test]
async fn a_send_of_three_numbers_is_in_the_ledger() {
    let sim = start(midday(SmsSimConfig::default())).await;
    let calls = Arc::new(common::Calls::default());
    let observed = client(&sim).with_observer(calls.clone());
    let statuses = observed.send_sms(&request((1..=3).map(phone), "张三")).await.unwrap();
    assert_eq!(calls.list(), [(SEND_SMS, 0)], "one exchange, counted as a success");
    assert_eq!(statuses.len(), 3);
    for (i, s) in statuses.iter().enumerate() {
        assert_eq!((s.code.as_str(), s.fee, s.phone_number.clone()), ("Ok", 1, phone(i + 1)));
        assert_eq!((s.session_context.as_str(), s.iso_code.as_str()), ("campaign-1", "CN"));
        assert!(matches!(number_outcome(s), NumberOutcome::Sent { fee: 1, .. }));
    }
    let l = ledger(&sim).await;
    assert_eq!((l.messages, l.unique_phones, l.duplicates, l.fee), (3, 3, 0, 3));
    assert_eq!(l.by_template.get("1234567"), Some(&3));
    // The path may spell the number any way it normalises; `+` needs no escaping in a path.
    let texts = get(&sim, Method::GET, "/_sim/sms/ledger/13800000002", "").await;
    assert_eq!(texts["phone"], "+8613800000002");
    assert_eq!(texts["texts"], serde_json::json!(["【campaignd】尊敬的张三，你的余额还剩12元，请尽快充值。"]));
}

#[tokio::test]
async fn a_bad_secret_key_is_a_permanent_signature_failure() {
    let sim = start(midday(SmsSimConfig::default())).await;
    let bad = TencentSmsClient::new(settings(&sim, "not-the-secret-key")).unwrap();
    let err = bad.send_sms(&request([phone(1)], "张三")).await.unwrap_err();
    assert_eq!(api_code(&err), codes::SIGNATURE_FAILURE);
    assert_eq!(
        (err.class(), err.result(), err.failed_at()),
        (AnswerClass::Permanent, ResultName::AuthFailed, FailedAt::VendorCode)
    );
    assert_eq!(err.code_label().metric_value(), codes::SIGNATURE_FAILURE);
    assert!(!err.maybe_delivered());
    assert_eq!(ledger(&sim).await.messages, 0);
}

#[tokio::test]
async fn two_hundred_and_one_numbers_are_refused_on_both_sides() {
    let sim = start(midday(SmsSimConfig::default())).await;
    let many = request((0..201).map(phone), "张三");
    let err = client(&sim).send_sms(&many).await.unwrap_err();
    assert!(matches!(err, SmsError::Invalid { .. }), "{err}");
    assert_eq!((err.failed_at(), err.class()), (FailedAt::NotSent, AnswerClass::Permanent));
    let body = serde_json::to_vec(&many).unwrap();
    let answer = raw_send(&sim, &body, campaignd::clock::now_s(), "2021-01-11").await;
    assert_eq!(answer.response.error.unwrap().code, codes::PHONE_NUMBER_COUNT_LIMIT);
    assert!(answer.response.send_status_set.is_empty());
    // 200 go through.
    let statuses = client(&sim).send_sms(&request((0..200).map(phone), "张三")).await.unwrap();
    assert!(statuses.iter().all(|s| s.code == "Ok"));
    assert_eq!(ledger(&sim).await.messages, 200);
}

#[tokio::test]
async fn a_stale_timestamp_and_a_wrong_version_are_refused() {
    let sim = start(midday(SmsSimConfig::default())).await;
    let body = serde_json::to_vec(&request([phone(1)], "张三")).unwrap();
    let stale = raw_send(&sim, &body, campaignd::clock::now_s() - 301, "2021-01-11").await;
    assert_eq!(stale.response.error.unwrap().code, codes::SIGNATURE_EXPIRE);
    let version = raw_send(&sim, &body, campaignd::clock::now_s(), "2019-07-11").await;
    assert_eq!(version.response.error.unwrap().code, codes::INVALID_ACTION);
    let fine = raw_send(&sim, &body, campaignd::clock::now_s() - 200, "2021-01-11").await;
    assert_eq!(fine.response.send_status_set[0].code, "Ok");
}

#[tokio::test]
async fn per_number_limits_are_final_for_that_number_only() {
    let sim = start(midday(SmsSimConfig { daily_limit_per_number: Some(1), ..SmsSimConfig::default() })).await;
    let c = client(&sim);
    c.send_sms(&request([phone(1)], "张三")).await.unwrap();
    // Same text to the same number at once: the 30-second rule.
    let again = c.send_sms(&request([phone(1)], "张三")).await.unwrap();
    assert_eq!(again[0].code, codes::PHONE_NUMBER_THIRTY_SECOND_LIMIT);
    // Another text: the daily cap of 1; a fresh number in the same call goes through.
    let other = c.send_sms(&request([phone(1), phone(2)], "李四")).await.unwrap();
    assert_eq!(other[0].code, codes::PHONE_NUMBER_DAILY_LIMIT);
    assert_eq!(other[0].fee, 0);
    assert_eq!(
        number_outcome(&other[0]),
        NumberOutcome::Final { code: codes::PHONE_NUMBER_DAILY_LIMIT.into(), result: ResultName::QuotaExceeded }
    );
    assert_eq!(other[1].code, "Ok");
    // A number that is no number.
    let bad = c.send_sms(&request(["12345".to_owned()], "张三")).await.unwrap();
    assert_eq!(bad[0].code, codes::INCORRECT_PHONE_NUMBER);
    let l = ledger(&sim).await;
    assert_eq!((l.messages, l.unique_phones), (2, 2));
    assert_eq!(l.numbers_refused.get(codes::PHONE_NUMBER_DAILY_LIMIT), Some(&1));
}

#[tokio::test]
async fn the_marketing_window_refuses_outside_eight_to_ten_beijing() {
    let sim = start(SmsSimConfig { clock_offset_secs: offset_to_beijing(23), ..SmsSimConfig::default() }).await;
    let c = client(&sim);
    let err = c.send_sms(&request([phone(1)], "张三")).await.unwrap_err();
    assert_eq!(api_code(&err), codes::MARKETING_SEND_TIME_CONSTRAINT);
    assert_eq!((err.code_class(), err.class()), (Some(CodeClass::WaitForWindow), AnswerClass::RateLimited));
    let early = offset_to_beijing(7);
    get(&sim, Method::POST, "/_sim/sms/clock", &format!("{{\"offset_secs\":{early}}}")).await;
    assert!(c.send_sms(&request([phone(1)], "张三")).await.is_err(), "07:30 is outside too");
    let noon = offset_to_beijing(12);
    get(&sim, Method::POST, "/_sim/sms/clock", &format!("{{\"offset_secs\":{noon}}}")).await;
    assert_eq!(c.send_sms(&request([phone(1)], "张三")).await.unwrap()[0].code, "Ok");
}

#[tokio::test]
async fn a_lost_answer_may_have_texted_and_says_so() {
    let profile = FaultProfile { drop_after_share: 1.0, ..FaultProfile::clean() };
    let config = SimConfig { sms: midday(SmsSimConfig::default()), profile, ..SimConfig::default() };
    let sim = Simulator::bind("127.0.0.1:0".parse().unwrap(), config).await.unwrap().spawn();
    let err = client(&sim).send_sms(&request([phone(1)], "张三")).await.unwrap_err();
    assert!(matches!(err, SmsError::Transport { request_sent: true, .. }), "{err}");
    assert_eq!((err.class(), err.maybe_delivered()), (AnswerClass::Retryable, true));
    // The text went out although the answer was lost: a blind replay would text twice, were
    // it not for the gateway's own 30-second rule.
    assert_eq!(ledger(&sim).await.messages, 1);
}

#[tokio::test]
async fn a_status_report_reaches_the_callback_receiver() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/sms/main/status", listener.local_addr().unwrap());
    let received: Arc<std::sync::Mutex<Vec<StatusReport>>> = Arc::default();
    let stop = CancellationToken::new();
    let sink = received.clone();
    let handler = move |req: Request<Incoming>, _peer| {
        let sink = sink.clone();
        async move { receive(req, &sink).await }
    };
    tokio::spawn(serve(listener, handler, stop.clone()));
    let reports = ReportSettings { url: Some(url), delay: Duration::from_millis(10), ..ReportSettings::default() };
    let sim = start(midday(SmsSimConfig { reports, ..SmsSimConfig::default() })).await;
    let statuses = client(&sim).send_sms(&request([phone(7), phone(8)], "张三")).await.unwrap();
    let got = eventually("two status reports", Duration::from_secs(10), || {
        let received = received.clone();
        async move {
            let got = received.lock().unwrap().clone();
            if got.len() == 2 {
                Ok(got)
            } else {
                Err(got.len())
            }
        }
    })
    .await;
    for (report, status) in got.iter().zip(&statuses) {
        assert_eq!(report.sid, status.serial_no);
        assert_eq!(
            (report.nationcode.as_str(), report.report_status.as_str(), report.errmsg.as_str()),
            ("86", "SUCCESS", "DELIVRD")
        );
        assert_eq!(format!("+86{}", report.mobile), status.phone_number);
    }
    let delivered = eventually("the ledger counts them", Duration::from_secs(5), || async {
        let l = ledger(&sim).await;
        if l.reports_delivered == 2 {
            Ok(l)
        } else {
            Err(l.reports_delivered)
        }
    })
    .await;
    assert_eq!(delivered.reports_dropped, 0);
    stop.cancel();
}

/// The receiver: a JSON array of reports in, `{"result":0,"errmsg":"OK"}` out.
async fn receive(req: Request<Incoming>, sink: &std::sync::Mutex<Vec<StatusReport>>) -> HandlerResult {
    let body = req.into_body().collect().await.map(|c| c.to_bytes()).unwrap_or_default();
    match serde_json::from_slice::<Vec<StatusReport>>(&body) {
        Ok(reports) => {
            sink.lock().unwrap().extend(reports);
            Ok(json_response(200, serde_json::to_vec(&StatusReportAnswer::ok()).unwrap()))
        }
        Err(_) => Ok(json_response(400, b"{\"result\":1,\"errmsg\":\"bad body\"}".to_vec())),
    }
}
