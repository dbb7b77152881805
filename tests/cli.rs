//! The real `campaignd` binary: config validation, unbuilt verbs, and `simulate` + `probe`
//! talking to each other over loopback.

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
fn verbs_of_later_releases_say_so_and_fail() {
    for args in [&["serve"][..], &["demo"], &["campaign", "list"]] {
        let out = campaignd(args);
        assert_eq!(out.status.code(), Some(69), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("not built yet"), "{args:?}");
    }
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
