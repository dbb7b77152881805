//! The published contract of `/v1` (`src/api/openapi.json`, served at `GET /v1/openapi.json`)
//! against a live daemon: the served document is the committed one and needs no token, every
//! documented operation reaches a handler and every other method on a documented path is a 405,
//! every answer of a whole campaign's life matches its schema, and Schemathesis, a tester no one
//! here wrote, finds no server error, undocumented status, wrong content type, response off its
//! schema or 405 without `Allow`. The daemon is still healthy afterwards.
//!
//! Schemathesis runs when `CAMPAIGND_SCHEMATHESIS` names its `st` executable (`bash .ci/run`
//! installs it into `target/schemathesis-venv`); without it the test says so and passes, except
//! under `CI=true`, where it fails.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use campaignd::api::openapi::{documented_operations, DOCUMENT};
use common::{spawn_app, DEV_TOKEN};
use http_body_util::Full;

/// The pinned Schemathesis release `.ci/run` installs; its CLI flags are those of 4.x.
const SCHEMATHESIS_VERSION: &str = "4.32.5";
/// Examples per operation and phase: enough to find the bugs it found, small enough for CI.
const MAX_EXAMPLES: &str = "25";
/// Longest the whole Schemathesis run may take before it is killed and the test fails.
const RUN_LIMIT: Duration = Duration::from_secs(300);

/// An answer: status, content type and body.
struct Answer {
    status: u16,
    content_type: String,
    /// The `Allow` header, on 405s.
    allow: String,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

async fn send(method: &str, url: &str, token: Option<&str>, content_type: Option<&str>, body: Vec<u8>) -> Answer {
    let client = campaignd::upstream::http::build_client(&Default::default()).unwrap();
    let mut req = hyper::Request::builder().method(method).uri(url);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let resp = client.request(req.body(Full::new(Bytes::from(body))).unwrap()).await.expect("the daemon answers");
    let status = resp.status().as_u16();
    let content_type = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let allow = resp.headers().get("allow").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let body = campaignd::upstream::http::read_body(resp.into_body()).await.unwrap().to_vec();
    Answer { status, content_type, allow, body }
}

/// `path` with each `{param}` replaced by the example the document gives for it.
fn filled(doc: &serde_json::Value, method: &str, path: &str) -> String {
    let op = &doc["paths"][path][method.to_ascii_lowercase()];
    let mut out = path.to_owned();
    for p in op["parameters"].as_array().into_iter().flatten().filter(|p| p["in"] == "path") {
        let name = p["name"].as_str().unwrap();
        let example =
            p["example"].as_str().unwrap_or_else(|| panic!("{method} {path}: parameter {name} has no example"));
        out = out.replace(&format!("{{{name}}}"), example);
    }
    out
}

/// The first documented request body of an operation, as its content type and bytes.
fn example_body(doc: &serde_json::Value, method: &str, path: &str) -> (Option<String>, Vec<u8>) {
    let op = &doc["paths"][path][method.to_ascii_lowercase()];
    let Some((ct, media)) = op["requestBody"]["content"].as_object().and_then(|c| c.iter().next()) else {
        return (None, Vec::new());
    };
    let example = media
        .get("example")
        .cloned()
        .or_else(|| media["examples"].as_object().and_then(|e| e.values().next()).map(|e| e["value"].clone()));
    let bytes = match example {
        Some(serde_json::Value::String(s)) if !ct.contains("json") || ct.contains("ndjson") => s.into_bytes(),
        Some(v) => v.to_string().into_bytes(),
        None => Vec::new(),
    };
    (Some(ct.clone()), bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_is_served_without_a_token_and_the_router_answers_exactly_its_operations() {
    let app = spawn_app().await;
    let base = format!("http://{}", app.addr);
    let served = send("GET", &format!("{base}/v1/openapi.json"), None, None, Vec::new()).await;
    assert_eq!(served.status, 200);
    assert!(served.content_type.starts_with("application/json"), "{}", served.content_type);
    let doc: serde_json::Value = serde_json::from_str(DOCUMENT).unwrap();
    assert_eq!(served.json(), doc, "the served document is the committed file");

    let operations = documented_operations(&doc);
    for (method, path) in &operations {
        let url = format!("{base}{}", filled(&doc, method, path));
        let (ct, body) = example_body(&doc, method, path);
        let a = send(method, &url, Some(DEV_TOKEN), ct.as_deref(), body).await;
        let message = a.json()["error"]["message"].as_str().unwrap_or_default().to_owned();
        assert!(
            a.status != 405 && !(a.status == 404 && message.starts_with("no such path")),
            "{method} {path} is documented but not routed: {} {message}",
            a.status
        );
        assert!(a.status < 500, "{method} {path}: {} {}", a.status, String::from_utf8_lossy(&a.body));
        assert!(
            a.status == 204 || a.content_type.starts_with("application/json"),
            "{method} {path}: {}",
            a.content_type
        );
    }
    // Every other method on a documented path is refused as a method, not as a path.
    let paths: std::collections::BTreeSet<&String> = operations.iter().map(|(_, p)| p).collect();
    for path in paths {
        for method in ["GET", "PUT", "POST", "DELETE", "PATCH"] {
            if operations.contains(&(method.to_owned(), path.clone())) {
                continue;
            }
            let some_method = &operations.iter().find(|(_, p)| p == path).unwrap().0;
            let url = format!("{base}{}", filled(&doc, some_method, path));
            let a = send(method, &url, Some(DEV_TOKEN), None, Vec::new()).await;
            assert_eq!(a.status, 405, "{method} {path}: {}", String::from_utf8_lossy(&a.body));
            assert_eq!(a.json()["error"]["code"], "method_not_allowed");
            // RFC 9110: a 405 lists the methods the path takes (Schemathesis' ST204 found it missing).
            let mut documented: Vec<&str> =
                operations.iter().filter(|(_, p)| p == path).map(|(m, _)| m.as_str()).collect();
            documented.sort_unstable();
            assert_eq!(a.allow, documented.join(", "), "{method} {path}");
        }
    }
    // A path under a known prefix that no operation has is a 404, not a 405 without methods.
    let a = send("GET", &format!("{base}/v1/campaigns/1/nope"), Some(DEV_TOKEN), None, Vec::new()).await;
    assert_eq!((a.status, a.json()["error"]["code"].as_str()), (404, Some("not_found")));
    // Everything else under /v1 still needs the token.
    let a = send("GET", &format!("{base}/v1/campaigns"), None, None, Vec::new()).await;
    assert_eq!((a.status, a.json()["error"]["code"].as_str()), (401, Some("unauthorized")));
    app.stop().await;
}

/// Runs `program args` in `dir` for at most `limit`; its exit status (`None`: killed at the
/// limit) and what it printed.
fn run_bounded(
    program: &Path,
    args: &[String],
    envs: &[(&str, &str)],
    dir: &Path,
    limit: Duration,
) -> (Option<i32>, String) {
    let log_path = dir.join("schemathesis.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = std::process::Command::new(program)
        .args(args)
        .envs(envs.iter().copied())
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    (status, std::fs::read_to_string(&log_path).unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_failure_and_the_daemon_stays_healthy() {
    let Some(st) = std::env::var_os("CAMPAIGND_SCHEMATHESIS").filter(|s| !s.is_empty()).map(PathBuf::from) else {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI=true but CAMPAIGND_SCHEMATHESIS is unset: .ci/run installs Schemathesis {SCHEMATHESIS_VERSION} and sets it"
        );
        eprintln!(
            "skipped: set CAMPAIGND_SCHEMATHESIS to Schemathesis {SCHEMATHESIS_VERSION}'s `st` (bash .ci/run installs \
             it into target/schemathesis-venv) to run the contract test"
        );
        return;
    };
    // The flags below are those of the pinned release.
    let version = std::process::Command::new(&st).arg("--version").output().expect("CAMPAIGND_SCHEMATHESIS runs");
    let version = String::from_utf8_lossy(&version.stdout).into_owned();
    assert!(version.contains(SCHEMATHESIS_VERSION), "want Schemathesis {SCHEMATHESIS_VERSION}, have {version}");
    let app = spawn_app().await;
    let base = format!("http://{}", app.addr);
    let work = tempfile::tempdir().unwrap();
    let hooks = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/schemathesis_hooks.py");
    let args: Vec<String> = [
        "run",
        &format!("{base}/v1/openapi.json"),
        "--url",
        &base,
        "--header",
        &format!("Authorization: Bearer {DEV_TOKEN}"),
        "--checks",
        // The four the contract promises, and the 405-with-Allow answer to undocumented methods.
        "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,\
         unsupported_method",
        "--max-examples",
        MAX_EXAMPLES,
        "--seed",
        "20261201",
        "--request-timeout",
        "20",
        "--max-response-time",
        "10",
        "--generation-with-security-parameters",
        "false",
        // Hypothesis' timing health check would make a loaded CI machine fail the run.
        "--suppress-health-check",
        "too_slow",
        "--generation-database",
        "none",
        "--no-color",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let started = Instant::now();
    let dir = work.path().to_path_buf();
    let (status, output) =
        tokio::task::spawn_blocking(move || run_bounded(&st, &args, &[("SCHEMATHESIS_HOOKS", hooks)], &dir, RUN_LIMIT))
            .await
            .unwrap();
    let summary =
        output.find("SUMMARY").map_or(output.as_str(), |at| &output[output[..at].rfind('\n').map_or(0, |nl| nl + 1)..]);
    eprintln!("Schemathesis ran {:.0} s:\n{summary}", started.elapsed().as_secs_f64());
    assert_eq!(status, Some(0), "Schemathesis found failures (or ran over {RUN_LIMIT:?}):\n{output}");

    // The daemon took all of that and is still serving.
    let health = send("GET", &format!("{base}/healthz"), None, None, Vec::new()).await;
    assert_eq!(health.status, 200, "{}", String::from_utf8_lossy(&health.body));
    let list = send("GET", &format!("{base}/v1/campaigns"), Some(DEV_TOKEN), None, Vec::new()).await;
    assert_eq!(list.status, 200);
    app.stop().await;
}

/// Where `value` breaks `schema` (a part of `doc`), as `at: problem` lines. Covers what the
/// document uses: `$ref`, `type` (one or a list), `enum`, `const`, `properties`, `required`,
/// `additionalProperties`, `items`, `minItems`/`maxItems`, `minimum`/`maximum`, `minLength`,
/// `allOf`/`anyOf`/`oneOf`. (`pattern` and `format` are left to Schemathesis.)
fn violations(doc: &serde_json::Value, schema: &serde_json::Value, value: &serde_json::Value, at: &str) -> Vec<String> {
    use serde_json::Value;
    let mut out = Vec::new();
    if let Some(r) = schema["$ref"].as_str() {
        let target = doc.pointer(r.trim_start_matches('#')).unwrap_or_else(|| panic!("dangling {r}"));
        return violations(doc, target, value, at);
    }
    let type_name = |v: &Value| match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(|t| t.as_str()).collect(),
        _ => Vec::new(),
    };
    let actual = type_name(value);
    if !types.is_empty() && !types.iter().any(|t| *t == actual || (*t == "number" && actual == "integer")) {
        return vec![format!("{at}: {actual} where {types:?} is documented")];
    }
    if let Some(options) = schema["enum"].as_array() {
        if !options.contains(value) {
            out.push(format!("{at}: {value} is not one of {options:?}"));
        }
    }
    if let Some(c) = schema.get("const") {
        if c != value {
            out.push(format!("{at}: {value} is not {c}"));
        }
    }
    if let (Some(min), Some(n)) = (schema["minimum"].as_f64(), value.as_f64()) {
        if n < min {
            out.push(format!("{at}: {n} < {min}"));
        }
    }
    if let (Some(max), Some(n)) = (schema["maximum"].as_f64(), value.as_f64()) {
        if n > max {
            out.push(format!("{at}: {n} > {max}"));
        }
    }
    if let (Some(min), Some(s)) = (schema["minLength"].as_u64(), value.as_str()) {
        if (s.chars().count() as u64) < min {
            out.push(format!("{at}: shorter than {min}"));
        }
    }
    if let Value::Object(map) = value {
        let props = schema["properties"].as_object();
        for name in schema["required"].as_array().into_iter().flatten().filter_map(|n| n.as_str()) {
            if !map.contains_key(name) {
                out.push(format!("{at}: required {name} is missing"));
            }
        }
        for (k, v) in map {
            match props.and_then(|p| p.get(k)) {
                Some(s) => out.extend(violations(doc, s, v, &format!("{at}.{k}"))),
                None => match &schema["additionalProperties"] {
                    Value::Bool(false) => out.push(format!("{at}: {k} is not documented")),
                    s @ Value::Object(_) => out.extend(violations(doc, s, v, &format!("{at}.{k}"))),
                    _ => {}
                },
            }
        }
    }
    if let Value::Array(items) = value {
        if let Some(min) = schema["minItems"].as_u64() {
            if (items.len() as u64) < min {
                out.push(format!("{at}: fewer than {min} items"));
            }
        }
        if let Some(max) = schema["maxItems"].as_u64() {
            if items.len() as u64 > max {
                out.push(format!("{at}: more than {max} items"));
            }
        }
        if schema["items"].is_object() {
            for (i, item) in items.iter().enumerate() {
                out.extend(violations(doc, &schema["items"], item, &format!("{at}[{i}]")));
            }
        }
    }
    for s in schema["allOf"].as_array().into_iter().flatten() {
        out.extend(violations(doc, s, value, at));
    }
    if let Some(any) = schema["anyOf"].as_array() {
        if !any.iter().any(|s| violations(doc, s, value, at).is_empty()) {
            out.push(format!("{at}: matches none of anyOf"));
        }
    }
    if let Some(one) = schema["oneOf"].as_array() {
        let matching = one.iter().filter(|s| violations(doc, s, value, at).is_empty()).count();
        if matching != 1 {
            out.push(format!("{at}: matches {matching} of oneOf"));
        }
    }
    out
}

/// Sends a request and checks its answer against what the document says `method path`
/// answers with that status; returns the answer's JSON.
async fn documented(
    doc: &serde_json::Value,
    base: &str,
    method: &str,
    template: &str,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (u16, serde_json::Value) {
    let a = send(method, &format!("{base}{path}"), Some(DEV_TOKEN), content_type, body).await;
    let op = &doc["paths"][template][method.to_ascii_lowercase()];
    assert!(op.is_object(), "{method} {template} is not documented");
    let mut response = &op["responses"][a.status.to_string()];
    if let Some(r) = response["$ref"].as_str() {
        response = doc.pointer(r.trim_start_matches('#')).unwrap();
    }
    assert!(
        response.is_object(),
        "{method} {path} answered {}, which is not documented: {}",
        a.status,
        String::from_utf8_lossy(&a.body)
    );
    let value = a.json();
    match response["content"]["application/json"].get("schema") {
        Some(schema) => {
            assert!(a.content_type.starts_with("application/json"), "{method} {path}: {}", a.content_type);
            let problems = violations(doc, schema, &value, "$");
            assert!(problems.is_empty(), "{method} {path} ({}) is off its schema: {problems:#?}\n{value:#}", a.status);
        }
        None => assert!(a.body.is_empty(), "{method} {path}: {} has a body", a.status),
    }
    (a.status, value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_campaign_with_bindings_and_suppressions_answers_as_documented() {
    let app = spawn_app().await;
    let base = format!("http://{}", app.addr);
    let doc: serde_json::Value = serde_json::from_str(DOCUMENT).unwrap();
    let d = |method: &'static str, template: &'static str, path: String, ct: Option<&'static str>, body: Vec<u8>| {
        let (doc, base) = (&doc, &base);
        async move { documented(doc, base, method, template, &path, ct, body).await }
    };
    // Every documented example creates a campaign.
    let mut ids = std::collections::BTreeMap::new();
    let examples = doc["paths"]["/v1/campaigns"]["post"]["requestBody"]["content"]["application/json"]["examples"]
        .as_object()
        .unwrap()
        .clone();
    for (name, example) in &examples {
        let (status, v) = d(
            "POST",
            "/v1/campaigns",
            "/v1/campaigns".into(),
            Some("application/json"),
            example["value"].to_string().into_bytes(),
        )
        .await;
        assert_eq!(status, 201, "example {name}: {v}");
        ids.insert(name.clone(), v["id"].as_str().unwrap().to_owned());
    }
    // `null` reads as left out, as the document says (Schemathesis' ST201 found it saying otherwise).
    let nulls = serde_json::json!({"name": "nulls", "app": "main", "channel": null, "audience": null,
        "message": {"transmission": "t", "link": null}, "settings": {"speed": null, "group": null}});
    let (status, v) =
        d("POST", "/v1/campaigns", "/v1/campaigns".into(), Some("application/json"), nulls.to_string().into_bytes())
            .await;
    assert_eq!((status, v["speed"].is_null()), (201, true), "{v}");
    // Recipients: NDJSON with variables (one line bad) to the batch_single one, text to the list one.
    let mut ndjson = String::new();
    for n in 1..=5 {
        ndjson.push_str(&format!(
            "{{\"cid\":\"{}\",\"vars\":{{\"name\":\"n{n}\",\"money\":\"{n}\"}}}}\n",
            common::cid(n)
        ));
    }
    ndjson.push_str("{\"cid\":\"nope\"}\n");
    let batch = &ids["batch_single"];
    let (_, up) = d(
        "POST",
        "/v1/campaigns/{id}/recipients",
        format!("/v1/campaigns/{batch}/recipients"),
        Some("application/x-ndjson"),
        ndjson.into_bytes(),
    )
    .await;
    assert_eq!((up["accepted"].as_u64(), up["rejected"].as_u64()), (Some(5), Some(1)), "{up}");
    let list = &ids["list"];
    let text: String = (10..20).map(|n| format!("{}\n", common::cid(n))).collect();
    d(
        "POST",
        "/v1/campaigns/{id}/recipients",
        format!("/v1/campaigns/{list}/recipients"),
        Some("text/plain"),
        text.into_bytes(),
    )
    .await;
    let wecom = &ids["wecom"];
    d(
        "POST",
        "/v1/campaigns/{id}/recipients",
        format!("/v1/campaigns/{wecom}/recipients"),
        Some("text/plain"),
        b"lilei\nhanmeimei\n".to_vec(),
    )
    .await;
    // Refusals answer as documented too.
    let (status, _) = d(
        "POST",
        "/v1/campaigns/{id}/recipients",
        format!("/v1/campaigns/{list}/recipients"),
        Some("application/xml"),
        b"<a/>".to_vec(),
    )
    .await;
    assert_eq!(status, 415);
    let (status, _) = d(
        "POST",
        "/v1/campaigns/{id}/recipients",
        format!("/v1/campaigns/{list}/recipients"),
        Some("text/plain"),
        b"no line end".to_vec(),
    )
    .await;
    assert_eq!(status, 400);
    let long_line = format!("{}\n", "f".repeat(9000)).into_bytes();
    let (status, _) = d(
        "POST",
        "/v1/campaigns/{id}/recipients",
        format!("/v1/campaigns/{list}/recipients"),
        Some("text/plain"),
        long_line,
    )
    .await;
    assert_eq!(status, 413);
    let huge = serde_json::json!({"name": "x".repeat(300_000)}).to_string().into_bytes();
    let (status, _) = d("POST", "/v1/campaigns", "/v1/campaigns".into(), Some("application/json"), huge).await;
    assert_eq!(status, 413);
    let (status, _) = d("GET", "/v1/campaigns/{id}", "/v1/campaigns/999999".into(), None, Vec::new()).await;
    assert_eq!(status, 404);
    let (status, _) =
        d("POST", "/v1/campaigns/{id}/sms/stop", format!("/v1/campaigns/{list}/sms/stop"), None, Vec::new()).await;
    assert_eq!(status, 409);
    // Bindings of the batch_single campaign's recipients.
    let pairs: serde_json::Map<String, serde_json::Value> =
        (1..=3).map(|n| (common::cid(n), format!("1381234567{n}").into())).collect();
    d(
        "PUT",
        "/v1/apps/{app}/cid-pn",
        "/v1/apps/main/cid-pn".into(),
        Some("application/json"),
        serde_json::to_vec(&pairs).unwrap(),
    )
    .await;
    let csv = format!("cid,phone\n{},13812345674\nbad,line\n", common::cid(4));
    d("POST", "/v1/apps/{app}/cid-pn/import", "/v1/apps/main/cid-pn/import".into(), Some("text/csv"), csv.into_bytes())
        .await;
    let query = format!("/v1/apps/main/cid-pn?cids={},{},{}", common::cid(1), common::cid(4), common::cid(5));
    let (_, q) = d("GET", "/v1/apps/{app}/cid-pn", query, None, Vec::new()).await;
    assert_eq!(q["batchRet"][2]["code"], 7, "{q}");
    // As the legacy calls do, an empty cid or a phone that is no string is refused per cid, not
    // per call (Schemathesis' ST201 found the document saying otherwise).
    let (_, q) = d("GET", "/v1/apps/{app}/cid-pn", "/v1/apps/main/cid-pn?cids=".into(), None, Vec::new()).await;
    assert_eq!(q["batchRet"][0]["code"], 5, "{q}");
    let null_phone = serde_json::json!({common::cid(9): null}).to_string().into_bytes();
    let (_, b) =
        d("PUT", "/v1/apps/{app}/cid-pn", "/v1/apps/main/cid-pn".into(), Some("application/json"), null_phone).await;
    assert_eq!(b["batchRet"][0]["code"], 6, "{b}");
    let unbind = serde_json::json!({"cids": [common::cid(3), ""]}).to_string().into_bytes();
    d("DELETE", "/v1/apps/{app}/cid-pn", "/v1/apps/main/cid-pn".into(), Some("application/json"), unbind).await;
    // A suppressed member, listed, shown, lifted.
    let (status, _) =
        d("PUT", "/v1/apps/{app}/suppressions/{user}", "/v1/apps/staff/suppressions/LiLei".into(), None, Vec::new())
            .await;
    assert_eq!(status, 201);
    d("GET", "/v1/apps/{app}/suppressions", "/v1/apps/staff/suppressions?limit=10".into(), None, Vec::new()).await;
    d("GET", "/v1/apps/{app}/suppressions/{user}", "/v1/apps/staff/suppressions/lilei".into(), None, Vec::new()).await;
    // Start them all and read every view once they are done.
    for id in ids.values() {
        d("POST", "/v1/campaigns/{id}/start", format!("/v1/campaigns/{id}/start"), None, Vec::new()).await;
    }
    for id in ids.values() {
        app.wait_final(id, 60).await;
        d("GET", "/v1/campaigns/{id}", format!("/v1/campaigns/{id}"), None, Vec::new()).await;
        d("GET", "/v1/campaigns/{id}/report", format!("/v1/campaigns/{id}/report"), None, Vec::new()).await;
    }
    d("POST", "/v1/campaigns/{id}/sms/stop", format!("/v1/campaigns/{batch}/sms/stop"), None, Vec::new()).await;
    let (_, report) =
        d("GET", "/v1/campaigns/{id}/report", format!("/v1/campaigns/{batch}/report"), None, Vec::new()).await;
    assert_eq!(report["campaign"]["recipients"]["total"], 5, "{report}");
    assert!(report["sms"].is_object(), "{report}");
    d("GET", "/v1/groups/{group}/report", "/v1/groups/spring/report".into(), None, Vec::new()).await;
    let (_, page) = d("GET", "/v1/campaigns", "/v1/campaigns?limit=2".into(), None, Vec::new()).await;
    assert!(page["next_after"].is_string(), "{page}");
    d("DELETE", "/v1/apps/{app}/suppressions/{user}", "/v1/apps/staff/suppressions/lilei".into(), None, Vec::new())
        .await;
    // Only drafts (and scheduled campaigns) can be deleted.
    let (status, _) = d("DELETE", "/v1/campaigns/{id}", format!("/v1/campaigns/{list}"), None, Vec::new()).await;
    assert_eq!(status, 409);
    let draft = app.create(common::list_campaign("draft", None)).await;
    let (status, _) = d("DELETE", "/v1/campaigns/{id}", format!("/v1/campaigns/{draft}"), None, Vec::new()).await;
    assert_eq!(status, 204);
    app.stop().await;
}

#[test]
fn the_response_checker_catches_missing_extra_and_mistyped_fields() {
    let doc: serde_json::Value = serde_json::from_str(DOCUMENT).unwrap();
    let schema = serde_json::json!({"$ref": "#/components/schemas/UploadView"});
    let good = serde_json::json!({"accepted": 1, "duplicates": 0, "rejected": 1, "campaign_total": 1,
        "first_rejected": [{"line": 2, "reason": "not a cid"}]});
    assert_eq!(violations(&doc, &schema, &good, "$"), Vec::<String>::new());
    let mut bad = good.clone();
    bad.as_object_mut().unwrap().remove("accepted");
    bad["extra"] = 1.into();
    bad["rejected"] = "1".into();
    bad["first_rejected"][0]["line"] = 0.into();
    let found = violations(&doc, &schema, &bad, "$");
    assert_eq!(found.len(), 4, "{found:#?}");
    let error = serde_json::json!({"$ref": "#/components/responses/Conflict/content/application~1json/schema"});
    let no_state = serde_json::json!({"error": {"code": "conflict", "message": "m"}});
    assert_eq!(violations(&doc, &error, &no_state, "$").len(), 1);
}
