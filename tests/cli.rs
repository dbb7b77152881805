//! The real `campaignd` binary: config validation, `simulate` + `probe` talking to each other
//! over loopback, the demo, and the campaign verbs.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_campaignd");
const SHIPPED: &str = include_str!("../config/campaignd.toml");

fn campaignd(args: &[&str]) -> std::process::Output {
    Command::new(BIN).args(args).env_remove("CAMPAIGND_MAIN_MASTER_SECRET").output().expect("run campaignd")
}

/// Kills the child when the test ends, pass or fail.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `campaignd simulate` on a free port and returns it with its base URL.
fn start_simulator() -> (Reaped, String) {
    let mut child = Command::new(BIN)
        .args(["simulate", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn simulator");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.trim().strip_prefix("base_url") {
                let _ = tx.send(url.trim().to_owned());
            }
        }
    });
    let url = rx.recv_timeout(Duration::from_secs(20)).expect("simulator printed its base_url");
    (Reaped(child), url)
}

#[test]
fn shipped_config_checks_out() {
    let out = campaignd(&["check-config", "--config", "config/campaignd.toml"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("app main: getui http://127.0.0.1:8781/v2"), "{stdout}");
    assert!(stdout.contains("sms fallback via http://127.0.0.1:8781 (sign 【campaignd】, templates 1000001, 1234567)"));
    assert!(stdout.contains("callback at http://127.0.0.1:8780/wecom/staff/callback"), "{stdout}");
}

#[tokio::test]
async fn check_config_shows_the_store_identity_once_the_store_exists() {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let path = dir.path().join("campaignd.toml");
    std::fs::write(&path, SHIPPED.replace("path = \"data\"", &format!("path = {:?}", store_dir.to_str().unwrap())))
        .unwrap();
    let out = campaignd(&["check-config", "--config", path.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("identity  none yet"), "{out:?}");

    let settings = campaignd::store::StoreSettings { path: store_dir, cache_bytes: 8 << 20 };
    let store = campaignd::store::SledStore::open(&settings).unwrap();
    let identity = campaignd::store::Store::identity(&*store).to_string();
    let out = campaignd(&["check-config", "--config", path.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&format!("identity  {identity}")), "{stdout}");
    store.close().await.unwrap();
}

#[test]
fn check_config_shows_the_callback_listener_and_the_connection_limits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edge.toml");
    let text = SHIPPED
        .replace("# callback_listen = \"0.0.0.0:8790\"", "callback_listen = \"0.0.0.0:8790\"")
        .replace("# max_connections = 10000", "max_connections = 500");
    std::fs::write(&path, text).unwrap();
    let out = campaignd(&["check-config", "--config", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("callback  0.0.0.0:8790"), "{stdout}");
    assert!(stdout.contains("callback at http://0.0.0.0:8790/wecom/staff/callback"), "{stdout}");
    assert!(stdout.contains("500 connections"), "{stdout}");
    assert!(stdout.contains("async worker thread(s): half of the"), "{stdout}");
}

#[test]
fn check_config_into_a_closed_pipe_ends_without_a_panic() {
    let mut child = Command::new(BIN)
        .args(["check-config", "--config", "config/campaignd.toml"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run campaignd");
    drop(child.stdout.take()); // the reader leaves first, as `| head -0` does
    let out = child.wait_with_output().expect("wait for campaignd");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn invalid_config_names_the_key_and_exits_78() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, SHIPPED.replace("request_timeout_ms = 10000", "request_timeout_ms = 0")).unwrap();
    let out = campaignd(&["check-config", "--config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("apps.main.getui.request_timeout_ms"), "{stderr}");

    std::fs::write(&path, SHIPPED.replace("[log]", "[log]\nverbose = true")).unwrap();
    let out = campaignd(&["check-config", "--config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("verbose"));

    let out = campaignd(&["check-config", "--config", "/nonexistent/campaignd.toml"]);
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read config file"));
}

#[test]
fn demo_runs_both_campaigns_and_checks_the_ledger() {
    let out = campaignd(&["demo", "--recipients", "3000"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("ledger agrees: 4000 deliveries to 4000 distinct devices"), "{stdout}");
    assert!(stdout.contains("successed_online"), "{stdout}");
    assert!(stdout.contains("sent 1998, suppressed 2, invaliduser 1"), "the WeCom act ran: {stdout}");
}

#[test]
fn campaign_verbs_without_a_daemon_say_where_they_looked() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let out = campaignd(&["campaign", "--server", &format!("http://{addr}"), "list"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot reach the daemon at"), "{stderr}");
    let out = campaignd(&["campaign", "upload", "1"]);
    assert_eq!(out.status.code(), Some(2), "clap names the missing --file");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--file"));
}

#[test]
fn help_lists_every_verb() {
    let out = campaignd(&["--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    for verb in ["serve", "demo", "simulate", "probe", "check-config", "campaign"] {
        assert!(help.contains(verb), "{verb} missing from --help:\n{help}");
    }
    let out = campaignd(&["simulate", "--profile", "nonsense"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("chaos"), "names the valid profiles");
}

#[test]
fn probe_signs_in_and_pushes_through_the_simulator() {
    let (_sim, base_url) = start_simulator();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("campaignd.toml");
    std::fs::write(&path, SHIPPED.replace("http://127.0.0.1:8781/v2", &base_url)).unwrap();
    let out = campaignd(&["probe", "--config", path.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("signed in to"), "{stdout}");
    assert!(stdout.contains("test push to 0123456789abcdef0123456789abcdef: Successed"), "{stdout}");

    // A wrong secret from the environment is reported with its class.
    let out = Command::new(BIN)
        .args(["probe", "--config", path.to_str().unwrap()])
        .env("CAMPAIGND_MAIN_MASTER_SECRET", "wrong")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("sign is invalid"), "{stderr}");
}

#[test]
fn probe_without_a_simulator_says_what_to_start() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("campaignd.toml");
    std::fs::write(&path, SHIPPED.replace("127.0.0.1:8781", &addr.to_string())).unwrap();
    let out = campaignd(&["probe", "--config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("campaignd simulate"));
}

#[test]
fn campaign_verbs_drive_a_running_daemon() {
    let (_sim, base_url) = start_simulator();
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = dir.path().join("campaignd.toml");
    let text = SHIPPED
        .replace("http://127.0.0.1:8781/v2", &base_url)
        .replace("127.0.0.1:8780", &format!("127.0.0.1:{port}"))
        .replace("path = \"data\"", &format!("path = {:?}", dir.path().join("store").display().to_string()));
    std::fs::write(&config, text).unwrap();
    let mut daemon = Reaped(
        Command::new(BIN).args(["serve", "--config", config.to_str().unwrap()]).stderr(Stdio::null()).spawn().unwrap(),
    );
    let server = format!("http://127.0.0.1:{port}");
    let verb = |args: &[&str]| {
        let mut all = vec!["campaign", "--server", server.as_str()];
        all.extend_from_slice(args);
        campaignd(&all)
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !verb(&["list"]).status.success() {
        assert!(std::time::Instant::now() < deadline, "daemon did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let def = dir.path().join("campaign.json");
    std::fs::write(&def, r#"{"name":"cli","app":"main","message":{"notification":{"title":"Hi","body":"there"}},"settings":{"group":"cli-ab"}}"#)
        .unwrap();
    let out = verb(&["create", "--file", def.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(stdout.starts_with("created campaign "), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let id = stdout.split_whitespace().nth(2).unwrap().to_owned();
    let ids = dir.path().join("ids.txt");
    let lines: String = (0..500u64).map(|i| format!("{i:032x}\n")).collect::<String>() + "oops\n";
    std::fs::write(&ids, lines).unwrap();
    let out = verb(&["upload", &id, "--file", ids.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("accepted 500, duplicates 0, rejected 1"), "{stdout}");
    assert!(stdout.contains("line 501"), "{stdout}");
    assert!(verb(&["start", &id]).status.success());
    let out = verb(&["status", &id, "--watch"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("completed"));
    let out = verb(&["report", &id, "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["delivered"].as_u64().unwrap() + report["failed"].as_u64().unwrap(), 500);
    let out = verb(&["pause", &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot pause a campaign that is completed"));
    let out = verb(&["group-report", "cli-ab"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&format!("cli #{id}")) && stdout.contains("successed_online"), "{stdout}");
    // The list follows the API's pages and filters by state; a bad state names the field.
    let out = verb(&["list", "--state", "completed"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.lines().any(|l| l.trim_start().starts_with(&format!("{id} "))), "{stdout}");
    let out = verb(&["list", "--state", "draft", "--json"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
    let out = verb(&["list", "--state", "done"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("field state"), "{}", String::from_utf8_lossy(&out.stderr));

    // A member opts out through the callback, played from the command line.
    let url = format!("{server}/wecom/staff/callback");
    let out = campaignd(&["simulate", "callback", "--url", &url, "--from", "lisi", "--text", "TD"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("已退订"), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&verb(&["suppressions", "staff"]).stdout).contains("lisi"));
    let out = campaignd(&["simulate", "callback", "--url", &url, "--token", "wrong", "--text", "hi"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad_signature"));

    // The suppression list of the WeCom app, edited by an operator.
    assert!(verb(&["suppress", "staff", "Bob.Li"]).status.success());
    let out = verb(&["suppressions", "staff"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("bob.li"), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(verb(&["unsuppress", "staff", "bob.li"]).status.success());
    assert!(!String::from_utf8_lossy(&verb(&["suppressions", "staff"]).stdout).contains("bob.li"));
    let out = verb(&["suppress", "main", "bob"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a WeCom app"), "a Getui app has no list");

    // SIGTERM: a graceful stop with exit status 0.
    let pid = daemon.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = daemon.0.try_wait().unwrap() {
            break s;
        }
        assert!(std::time::Instant::now() < deadline, "daemon ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
}
