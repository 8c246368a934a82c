//! Compatibility in both directions with Debian's daemontools (svc, svstat, svok, supervise)
//! and runit's sv: the same commands do the same things and print the same lines, whoever
//! supervises and whoever asks.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use vigil_core::status::Status;
use vigil_core::tai::Tai64n;
use vigil_tests::*;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Side {
    Vigil,
    Daemontools,
}

fn program(side: Side, name: &str) -> PathBuf {
    match side {
        Side::Vigil => bin(name),
        Side::Daemontools => require_peer(name),
    }
}

/// Replaces the directory and every number (pids, seconds) so lines compare across runs.
fn normalize(text: &str, dir: &Path) -> String {
    let t = text.replace(&dir.display().to_string(), "DIR");
    let mut out = String::with_capacity(t.len());
    let mut in_num = false;
    for c in t.chars() {
        if c.is_ascii_digit() {
            if !in_num {
                out.push('N');
            }
            in_num = true;
        } else {
            in_num = false;
            out.push(c);
        }
    }
    out
}

fn svstat(sb: &Sandbox, client: Side, dir: &Path) -> String {
    let (code, out, err) = run_output(sb.command(program(client, "svstat")).arg(dir));
    assert_eq!((code, err.as_str()), (0, ""), "{client:?} svstat");
    normalize(&out, dir)
}

fn svok(sb: &Sandbox, client: Side, dir: &Path) -> i32 {
    run_output(sb.command(program(client, "svok")).arg(dir)).0
}

/// Runs one scenario with `supervisor` supervising and `client` commanding; returns what svstat
/// printed at each step.
fn scenario(supervisor: Side, client: Side) -> Vec<String> {
    let sb = Sandbox::new(&format!("compat-{supervisor:?}-{client:?}"));
    let dir = sb.service("s", "exec sleep 1000");
    let mut sup = Supervise::new(&sb, &dir)
        .program(program(supervisor, "supervise"))
        .spawn();
    let mut seen = vec![];
    let pid = wait_up(&dir);
    wait_supervised(&dir);
    assert_eq!(svok(&sb, client, &dir), 0);
    seen.push(svstat(&sb, client, &dir));

    Svc::new(&sb)
        .program(program(client, "svc"))
        .arg("-p")
        .dir(&dir)
        .expect_ok();
    wait_status(&dir, "paused", |s| s.paused);
    seen.push(svstat(&sb, client, &dir));
    Svc::new(&sb)
        .program(program(client, "svc"))
        .arg("-c")
        .dir(&dir)
        .expect_ok();
    wait_status(&dir, "continued", |s| !s.paused);

    Svc::new(&sb)
        .program(program(client, "svc"))
        .arg("-d")
        .dir(&dir)
        .expect_ok();
    wait_status(&dir, "down", |s| s.pid == 0);
    assert!(!alive(pid));
    seen.push(svstat(&sb, client, &dir));

    Svc::new(&sb)
        .program(program(client, "svc"))
        .arg("-o")
        .dir(&dir)
        .expect_ok();
    wait_status(&dir, "up once", |s| s.pid != 0 && s.want == Want::Once);
    seen.push(svstat(&sb, client, &dir));

    fs::write(dir.join("down"), "").unwrap();
    seen.push(svstat(&sb, client, &dir));
    Svc::new(&sb)
        .program(program(client, "svc"))
        .arg("-d")
        .dir(&dir)
        .expect_ok();
    wait_status(&dir, "down again", |s| s.pid == 0);
    seen.push(svstat(&sb, client, &dir));
    Svc::new(&sb)
        .program(program(client, "svc"))
        .arg("-u")
        .dir(&dir)
        .expect_ok();
    wait_status(&dir, "up, normally down", |s| {
        s.pid != 0 && s.want == Want::Up
    });
    seen.push(svstat(&sb, client, &dir));

    Svc::new(&sb)
        .program(program(client, "svc"))
        .arg("-dx")
        .dir(&dir)
        .expect_ok();
    // Fails the test if it has not exited within the limit.
    sup.wait_exit(Duration::from_secs(10));
    assert_eq!(svok(&sb, client, &dir), 100);
    seen.push(svstat(&sb, client, &dir));
    seen
}

const EXPECTED: [&str; 8] = [
    "DIR: up (pid N) N seconds\n",
    "DIR: up (pid N) N seconds, paused\n",
    "DIR: down N seconds, normally up\n",
    "DIR: up (pid N) N seconds\n",
    "DIR: up (pid N) N seconds, normally down\n",
    "DIR: down N seconds\n",
    "DIR: up (pid N) N seconds, normally down\n",
    "DIR: supervise not running\n",
];

#[test]
fn daemontools_clients_on_daemontools_supervise_reference() {
    assert_eq!(scenario(Side::Daemontools, Side::Daemontools), EXPECTED);
}

#[test]
fn daemontools_clients_on_vigil_supervise() {
    assert_eq!(scenario(Side::Vigil, Side::Daemontools), EXPECTED);
}

#[test]
fn vigil_clients_on_daemontools_supervise() {
    assert_eq!(scenario(Side::Daemontools, Side::Vigil), EXPECTED);
}

#[test]
fn vigil_clients_on_vigil_supervise() {
    assert_eq!(scenario(Side::Vigil, Side::Vigil), EXPECTED);
}

/// Holds `supervise/ok` open for reading, as a supervisor does, and writes `status` by hand.
struct FakeSupervisor {
    _reader: fs::File,
}

fn fake(dir: &Path, status: &[u8]) -> FakeSupervisor {
    use std::os::unix::fs::OpenOptionsExt;
    fs::create_dir_all(dir.join("supervise")).unwrap();
    let ok = dir.join(vigil_core::layout::OK);
    if !ok.exists() {
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&ok)
                .status()
                .unwrap()
                .success()
        );
    }
    let reader = fs::OpenOptions::new()
        .read(true)
        .custom_flags(0o4000)
        .open(&ok)
        .unwrap();
    fs::write(dir.join(vigil_core::layout::STATUS), status).unwrap();
    FakeSupervisor { _reader: reader }
}

#[test]
fn svstat_prints_what_daemontools_prints_for_every_state() {
    let sb = Sandbox::new("states");
    let stamp = Tai64n::from_unix(1_700_000_000, 500);
    let rec = |pid: u32, paused: bool, want: Want| {
        Status {
            stamp,
            pid,
            paused,
            want,
            got_term: false,
            state: if pid == 0 {
                RunState::Down
            } else {
                RunState::Run
            },
        }
        .pack()
    };
    let cases: [(&str, [u8; 20], bool); 9] = [
        ("up", rec(4242, false, Want::Up), false),
        ("down", rec(0, false, Want::Down), false),
        ("paused", rec(4242, true, Want::Up), false),
        ("once", rec(4242, false, Want::Once), false),
        ("normally-down", rec(4242, false, Want::Up), true),
        ("want-up", rec(0, false, Want::Up), false),
        ("want-up-normally-down", rec(0, false, Want::Up), true),
        ("want-down", rec(4242, false, Want::Down), false),
        ("all", rec(4242, true, Want::Down), true),
    ];
    for (name, bytes, down) in cases {
        let dir = sb.path(name);
        let _f = fake(&dir, &bytes);
        if down {
            fs::write(dir.join("down"), "").unwrap();
        }
        // Both at the same second, 18- and 20-byte records alike.
        for len in [18, 20] {
            fs::write(dir.join(vigil_core::layout::STATUS), &bytes[..len]).unwrap();
            let theirs = run_output(sb.command(require_peer("svstat")).arg(&dir)).1;
            let ours = run_output(sb.command(bin("svstat")).arg(&dir)).1;
            assert_eq!(
                normalize(&ours, &dir),
                normalize(&theirs, &dir),
                "{name} ({len} bytes)"
            );
            assert!(ours.contains("4242") == theirs.contains("4242"));
        }
        assert_eq!(
            svok(&sb, Side::Vigil, &dir),
            svok(&sb, Side::Daemontools, &dir)
        );
    }
}

#[test]
fn our_decoder_reads_live_daemontools_status() {
    let sb = Sandbox::new("decode-dt");
    let dir = sb.service("s", "exec sleep 1000");
    let _sup = Supervise::new(&sb, &dir)
        .program(require_peer("supervise"))
        .stderr_inherit()
        .spawn();
    let st = wait_status(&dir, "daemontools supervise up", |s| s.pid != 0);
    let bytes = fs::read(dir.join(vigil_core::layout::STATUS)).unwrap();
    assert_eq!(bytes.len(), 18);
    // Between its fork and exec the child still runs supervise's code; then it is sleep.
    wait_until(
        Duration::from_secs(5),
        "decoded pid runs the service",
        || fs::read(format!("/proc/{}/cmdline", st.pid)).is_ok_and(|c| c.starts_with(b"sleep")),
    );
    assert_eq!(st.want, Want::Up);
    let now = Tai64n::from_system_time(std::time::SystemTime::now());
    let age = now.secs.saturating_sub(st.stamp.secs);
    assert!(age < 5, "stamp uses the +10 convention (age {age} s)");
}

#[test]
fn runit_sv_drives_vigil_supervise() {
    let sb = Sandbox::new("runit-sv");
    let sv = require_peer("sv");
    let dir = sb.service("s", "exec sleep 1000");
    let _sup = Supervise::new(&sb, &dir).stderr_inherit().spawn();
    let pid = wait_up(&dir);
    let (code, out, err) = run_output(sb.command(&sv).arg("status").arg(&dir));
    assert_eq!(code, 0, "{err}");
    assert_eq!(normalize(&out, &dir), "run: DIR: (pid N) Ns\n");
    assert!(out.contains(&format!("(pid {pid})")));

    let (code, out, _) = run_output(sb.command(&sv).args(["-v", "-w", "5", "down"]).arg(&dir));
    assert_eq!(code, 0);
    assert_eq!(normalize(&out, &dir), "ok: down: DIR: Ns, normally up\n");
    assert!(!alive(pid));

    let (code, out, _) = run_output(sb.command(&sv).args(["-v", "-w", "5", "up"]).arg(&dir));
    assert_eq!(code, 0);
    assert_eq!(normalize(&out, &dir), "ok: run: DIR: (pid N) Ns\n");
    wait_up(&dir);

    let (code, out, _) = run_output(sb.command(&sv).arg("status").arg(&dir));
    assert_eq!(code, 0);
    assert!(out.starts_with("run: "), "{out}");
}

#[test]
fn runit_sv_status_of_a_stopping_service_shows_got_term() {
    let sb = Sandbox::new("runit-gotterm");
    let sv = require_peer("sv");
    // A service that takes its time to stop after TERM.
    let dir = sb.service(
        "s",
        "trap 'sleep 2; exit 0' TERM\ntouch ../trapped\nwhile :; do sleep 1000 & wait $!; done",
    );
    let _sup = Supervise::new(&sb, &dir).stderr_inherit().start();
    wait_up(&dir);
    // The run says when its trap is set (a TERM before would simply end it).
    wait_until(Duration::from_secs(5), "trap set", || {
        sb.path("trapped").exists()
    });
    Svc::new(&sb)
        .program(program(Side::Vigil, "svc"))
        .arg("-d")
        .dir(&dir)
        .expect_ok();
    wait_status(&dir, "got TERM", |s| s.got_term);
    let (_, out, _) = run_output(sb.command(&sv).arg("status").arg(&dir));
    assert_eq!(
        normalize(&out, &dir),
        "run: DIR: (pid N) Ns, want down, got TERM\n"
    );
}
