//! The web console (issue 17): `/console/` serves only its bundled files, each with the strict
//! Content-Security-Policy, and a real browser (Debian's headless Chromium, driven by Selenium
//! from `tests/console/console_e2e.py`) signs in, creates, uploads, starts, watches, pauses,
//! resumes and compares campaigns against a daemon and simulator on loopback.
//!
//! The browser side needs a Python with selenium (`CAMPAIGND_CONSOLE_PYTHON`, else
//! `target/console-venv/bin/python`), `/usr/bin/chromium` and `/usr/bin/chromedriver`; `.ci/run`
//! installs them. Without them the browser test says it was skipped; under `CI` it fails.
//! By hand: the "web console" block of `.ci/run` once, then
//! `cargo test --test console -- --nocapture` prints what each browser step saw. Screenshots of
//! every page go to `target/console-screenshots/`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use campaignd::simulator::{Limits, SimConfig};
use common::{cid, list_campaign, spawn_app, spawn_app_with, DEV_TOKEN};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One raw HTTP/1.1 exchange (no client normalises the path on the way): the status, the
/// headers (names lower-cased) and the body.
async fn raw_get(addr: std::net::SocketAddr, target: &str, extra: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect to the daemon");
    let request = format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{extra}\r\n");
    conn.write_all(request.as_bytes()).await.expect("send the request");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut answer))
        .await
        .expect("the daemon answers within 10 s")
        .expect("read the answer");
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n").expect("a header block");
    let head = String::from_utf8_lossy(&answer[..split]).into_owned();
    let body = answer[split + 4..].to_vec();
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, body)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// The bundled files as the repository has them: (URL under `/console/`, bytes).
fn bundled_files() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api/console/assets");
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .expect("the console's assets folder")
        .map(|e| e.expect("a directory entry").path())
        .map(|p| {
            let name = p.file_name().expect("a file name").to_string_lossy().into_owned();
            let url = if name == "index.html" { String::new() } else { name };
            (url, std::fs::read(&p).expect("a readable asset"))
        })
        .collect();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_serves_only_its_bundled_files_under_a_strict_policy() {
    let app = spawn_app().await;
    let files = bundled_files();
    assert!(files.len() >= 10, "the console has its files: {:?}", files.iter().map(|f| &f.0).collect::<Vec<_>>());
    for (name, bytes) in &files {
        let (status, headers, body) = raw_get(app.addr, &format!("/console/{name}"), "").await;
        assert_eq!(status, 200, "/console/{name}");
        assert_eq!(&body, bytes, "/console/{name} is the file in the repository");
        let csp = header(&headers, "content-security-policy").expect("a CSP header");
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "connect-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(directive), "/console/{name}: CSP {csp:?} lacks {directive:?}");
        }
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval") && !csp.contains('*'), "{csp}");
        assert_eq!(header(&headers, "x-content-type-options"), Some("nosniff"), "/console/{name}");
        assert_eq!(header(&headers, "cache-control"), Some("no-cache"), "/console/{name}");
        let expected_type = match name.rsplit_once('.').map(|(_, ext)| ext) {
            None => "text/html; charset=utf-8",
            Some("js") => "text/javascript; charset=utf-8",
            Some("css") => "text/css; charset=utf-8",
            Some("svg") => "image/svg+xml",
            Some(other) => panic!("an asset of an unexpected kind: {name} ({other})"),
        };
        assert_eq!(header(&headers, "content-type"), Some(expected_type), "/console/{name}");
        let etag = header(&headers, "etag").expect("an ETag").to_owned();
        let (status, _, body) =
            raw_get(app.addr, &format!("/console/{name}"), &format!("If-None-Match: {etag}\r\n")).await;
        assert_eq!((status, body.len()), (304, 0), "/console/{name} revalidates");
        println!("[http] /console/{name}: 200, {} bytes, {expected_type}", bytes.len());
    }

    let (status, headers, _) = raw_get(app.addr, "/console", "").await;
    assert_eq!((status, header(&headers, "location")), (308, Some("/console/")));

    // Nothing but the table: no traversal (raw or encoded), no folders, no listing, no sources.
    for path in [
        "/console/../Cargo.toml",
        "/console/%2e%2e/",
        "/console/%2e%2e/Cargo.toml",
        "/console/..%2fCargo.toml",
        "/console/x/",
        "/console//",
        "/console/assets/",
        "/console/assets/app.js",
        "/console/index.html",
        "/console/mod.rs",
        "/console/app.js/",
        "/console/.git/config",
        "/console/%61pp.js",
        "/consolex",
    ] {
        let (status, headers, body) = raw_get(app.addr, path, "").await;
        assert_eq!(status, 404, "{path}: {}", String::from_utf8_lossy(&body));
        let body = String::from_utf8_lossy(&body);
        assert!(!body.contains("[package]") && !body.contains("<a href"), "{path} leaked something: {body}");
        if path.starts_with("/console/") {
            assert!(header(&headers, "content-security-policy").is_some(), "{path}: the policy on errors too");
        }
        println!("[http] {path}: {status}");
    }

    // The files are public; `/v1` still is not.
    let (status, _, _) = raw_get(app.addr, "/v1/campaigns", "").await;
    assert_eq!(status, 401);
    let (status, _, _) = raw_get(app.addr, "/v1/campaigns", &format!("Authorization: Bearer {DEV_TOKEN}\r\n")).await;
    assert_eq!(status, 200);
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// The browser.

/// Whole script, every wait inside it included.
const BROWSER_LIMIT: Duration = Duration::from_secs(170);

/// Where the browser pieces are, or `None` after saying why the test is skipped. Under `CI` a
/// missing piece fails the test.
fn browser(test: &str) -> Option<PathBuf> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = std::env::var_os("CAMPAIGND_CONSOLE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("target/console-venv/bin/python"));
    let imports = Command::new(&python)
        .args(["-c", "import selenium"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let missing: Vec<String> = [
        (!imports).then(|| format!("a Python with selenium ({})", python.display())),
        (!Path::new("/usr/bin/chromium").exists()).then(|| "/usr/bin/chromium".to_owned()),
        (!Path::new("/usr/bin/chromedriver").exists()).then(|| "/usr/bin/chromedriver".to_owned()),
    ]
    .into_iter()
    .flatten()
    .collect();
    if missing.is_empty() {
        return Some(python);
    }
    assert!(
        std::env::var("CI").is_err(),
        "CI must have the browser test's tools: .ci/run installs chromium, chromium-driver and selenium \
         (target/console-venv, CAMPAIGND_CONSOLE_PYTHON); missing: {}",
        missing.join(", ")
    );
    eprintln!(
        "SKIPPED {test}: missing {} (run the \"web console\" block of .ci/run, or set CAMPAIGND_CONSOLE_PYTHON)",
        missing.join(", ")
    );
    None
}

/// The folder for screenshots: `$CARGO_TARGET_DIR/console-screenshots`, else the manifest's
/// `target/console-screenshots`.
fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("console-screenshots");
    std::fs::create_dir_all(&dir).expect("create the screenshot folder");
    dir
}

/// A child process killed (by its own id) if the test gives up on it.
struct Script(std::process::Child);

impl Drop for Script {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// Runs the browser script for at most [`BROWSER_LIMIT`]; answers its exit status (`None` when
/// killed at the limit), stdout and stderr.
fn run_script(python: &Path, env: Vec<(&'static str, String)>, work: &Path) -> (Option<i32>, String, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console/console_e2e.py");
    let (out, err) = (work.join("browser.out"), work.join("browser.err"));
    let mut cmd = Command::new(python);
    cmd.arg(&script)
        .current_dir(work)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONIOENCODING", "utf-8")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        // Selenium must use the installed driver, never fetch one.
        .env("SE_OFFLINE", "true")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).expect("stdout file"))
        .stderr(std::fs::File::create(&err).expect("stderr file"));
    for proxy in ["http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"] {
        cmd.env_remove(proxy);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let started = Instant::now();
    let mut child = Script(cmd.spawn().expect("start the browser script"));
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("wait for the browser script") {
            break status.code();
        }
        if started.elapsed() > BROWSER_LIMIT {
            break None; // dropping `child` kills it
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    drop(child);
    (status, std::fs::read_to_string(out).unwrap_or_default(), std::fs::read_to_string(err).unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_signs_in_creates_uploads_starts_watches_pauses_and_compares() {
    let Some(python) = browser("a_browser_signs_in_creates_uploads_starts_watches_pauses_and_compares") else {
        return;
    };
    // Chunks of 100, so the slow campaign below shows progress within seconds.
    let sim = SimConfig { limits: Limits::unlimited(), ..SimConfig::default() };
    let app = spawn_app_with(sim, &[("chunk_size = 1000", "chunk_size = 100")]).await;
    let base = format!("http://{}", app.addr);

    // Drafts enough for a second page of ten.
    for n in 0..10 {
        let mut draft = list_campaign(&format!("草稿 {n}"), None);
        draft["settings"] = serde_json::json!({});
        app.create(draft).await;
    }
    // The other campaign of the group, a slow one made through the API, which the browser
    // starts (after the first one is done), pauses and resumes while it runs.
    let mut slow = list_campaign("春季促销 B（对照组）", Some(50));
    slow["settings"]["group"] = "spring-ab".into();
    let slow_id = app.create(slow).await;
    app.upload_range(&slow_id, 1_000_000, 3000).await;

    // The file the browser uploads: 10,000 lines, one of them a duplicate and one not a cid.
    let work = tempfile::tempdir().expect("a work folder");
    let upload = work.path().join("recipients.txt");
    let mut text: String = (0..9_998).map(|i| format!("{}\n", cid(i))).collect();
    text.push_str(&format!("{}\n", cid(7)));
    text.push_str("这不是一个cid\n");
    std::fs::write(&upload, text).expect("write the upload file");

    let shots = screenshot_dir();
    let env = vec![
        ("CONSOLE_URL", format!("{base}/console/")),
        ("CONSOLE_TOKEN", DEV_TOKEN.to_owned()),
        ("CONSOLE_UPLOAD_FILE", upload.display().to_string()),
        ("CONSOLE_SLOW_ID", slow_id.clone()),
        ("CONSOLE_GROUP", "spring-ab".to_owned()),
        ("CONSOLE_SCREENSHOTS", shots.display().to_string()),
        ("CONSOLE_TIMEOUT", "150".to_owned()),
    ];
    let dir = work.path().to_path_buf();
    let (status, stdout, stderr) =
        tokio::task::spawn_blocking(move || run_script(&python, env, &dir)).await.expect("the script's thread");
    for line in stdout.lines() {
        println!("[browser] {line}");
    }
    if status != Some(0) {
        eprintln!("{stderr}");
    }
    assert_eq!(status, Some(0), "the browser script failed (None: killed after {BROWSER_LIMIT:?}); see above");

    // What the browser did, read back from the daemon.
    let campaigns = app.api.list().await.expect("list");
    let made = campaigns.iter().find(|c| c.name == "春季促销 A").expect("the browser created campaign A");
    assert_eq!(made.state, "completed");
    assert_eq!((made.recipients.total, made.recipients.duplicates, made.recipients.rejected), (9_998, 1, 1));
    assert_eq!(made.progress.sent, 9_998);
    assert_eq!(made.group.as_deref(), Some("spring-ab"));
    let slow = app.api.campaign(&slow_id).await.expect("the slow campaign");
    assert!(matches!(slow.state.as_str(), "running" | "completed"), "resumed: {}", slow.state);
    for step in
        ["signin", "create-error", "upload", "completed", "paused", "list", "group", "suppressions", "phone-list"]
    {
        let png = shots.join(format!("{step}.png"));
        assert!(std::fs::metadata(&png).is_ok_and(|m| m.len() > 1000), "screenshot {}", png.display());
    }
    println!(
        "[daemon] campaign A {} completed: {} sent; screenshots in {}",
        made.id,
        made.progress.sent,
        shots.display()
    );
    app.stop().await;
}
