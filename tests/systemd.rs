//! The systemd unit passes `systemd-analyze verify` and is hardened; the daemon tells a
//! NOTIFY_SOCKET it is ready only once it serves, feeds the watchdog, and announces stopping.

mod common;

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const UNIT: &str = include_str!("../systemd/campaignd.service");
const NATS_DROP_IN: &str = include_str!("../systemd/campaignd.service.d/nats.conf");

/// Kills the daemon if the test fails before it exits.
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn unit_verifies_and_is_hardened() {
    if Command::new("systemd-analyze").arg("--version").output().is_err() {
        assert!(std::env::var("CI").is_err(), "CI must have systemd-analyze");
        eprintln!("SKIPPED: systemd-analyze not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let unit = dir.path().join("campaignd.service");
    std::fs::write(&unit, UNIT.replace("/usr/local/bin/campaignd", env!("CARGO_BIN_EXE_campaignd"))).unwrap();
    let out = Command::new("systemd-analyze").arg("verify").arg(&unit).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "systemd-analyze verify: {stderr}");
    for line in [
        "Type=notify",
        "StateDirectory=campaignd",
        "Restart=on-failure",
        "TimeoutStopSec=",
        "WatchdogSec=",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "SystemCallFilter=@system-service",
        "CapabilityBoundingSet=\n",
    ] {
        assert!(UNIT.contains(line), "unit lacks {line:?}");
    }
}

/// The unit with its NATS drop-in, in a unit path of their own, verified together.
fn verify_with_drop_in(drop_in: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_campaignd");
    std::fs::write(dir.path().join("campaignd.service"), UNIT.replace("/usr/local/bin/campaignd", bin)).unwrap();
    std::fs::create_dir(dir.path().join("campaignd.service.d")).unwrap();
    let conf = dir.path().join("campaignd.service.d/nats.conf");
    std::fs::write(conf, drop_in.replace("/usr/local/bin/campaignd", bin)).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(dir.path().join("campaignd.service"))
        .env("SYSTEMD_UNIT_PATH", format!("{}:", dir.path().display()))
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn the_nats_drop_in_verifies_with_the_unit_and_replaces_its_command() {
    if Command::new("systemd-analyze").arg("--version").output().is_err() {
        assert!(std::env::var("CI").is_err(), "CI must have systemd-analyze");
        eprintln!("SKIPPED: systemd-analyze not installed");
        return;
    }
    let (ok, stderr) = verify_with_drop_in(NATS_DROP_IN);
    assert!(ok && stderr.trim().is_empty(), "systemd-analyze verify: {stderr}");
    assert!(NATS_DROP_IN
        .contains("ExecStart=\nExecStart=/usr/local/bin/campaignd serve --config /etc/campaignd/campaignd-nats.toml"));
    assert!(NATS_DROP_IN.contains("StartLimitIntervalSec=0"), "keeps retrying while NATS is down");
    // The drop-in is read: one that adds a second command without resetting the first fails.
    let (ok, stderr) = verify_with_drop_in(&NATS_DROP_IN.replace("ExecStart=\n", ""));
    assert!(!ok && stderr.contains("more than one ExecStart"), "{stderr}");
}

#[test]
fn daemon_notifies_ready_watchdog_and_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = dir.path().join("campaignd.toml");
    let text = common::config_text("http://127.0.0.1:9/v2", &dir.path().join("store"), &[])
        .replace("listen = \"127.0.0.1:0\"", &format!("listen = \"127.0.0.1:{port}\""));
    std::fs::write(&config, text).unwrap();
    let mut child = Reaped(
        Command::new(env!("CARGO_BIN_EXE_campaignd"))
            .args(["serve", "--config", config.to_str().unwrap()])
            .env("NOTIFY_SOCKET", &socket_path)
            .env("WATCHDOG_USEC", "200000")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut buf = [0u8; 256];
    let mut next = || {
        let n = socket.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    assert_eq!(next(), "READY=1\n");
    // Ready means serving: the API answers right away.
    let healthy = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
    assert!(healthy, "READY=1 came before the listener was bound");
    let started = Instant::now();
    assert_eq!(next(), "WATCHDOG=1\n");
    assert_eq!(next(), "WATCHDOG=1\n");
    assert!(started.elapsed() < Duration::from_secs(2), "watchdog pings come every WATCHDOG_USEC/2");
    assert!(Command::new("kill").args(["-TERM", &child.0.id().to_string()]).status().unwrap().success());
    let mut seen_stopping = false;
    for _ in 0..10 {
        if next() == "STOPPING=1\n" {
            seen_stopping = true;
            break;
        }
    }
    assert!(seen_stopping, "STOPPING=1 after SIGTERM");
    let status = child.0.wait().unwrap();
    assert!(status.success(), "{status:?}");
}
