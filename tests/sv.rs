//! `sv`: differential against Debian's runit `/usr/bin/sv`, on vigil's supervise and on runit's
//! runsv.
//!
//! Each test builds two identical service trees, `r/` driven by runit's sv and `v/` by ours,
//! each under its own supervisors, and runs the same command lines on both (same names through
//! `$SVDIR`, or the same relative paths from the tree's root). Outputs are compared after pids
//! and seconds are normalised; exit codes must be equal.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::fs;
use std::os::unix::fs::symlink;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use vigil_tests::*;

const SLEEPER: &str = "exec sleep 1000";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Vigil,
    Runsv,
}

/// One service of a scenario.
struct Spec {
    name: &'static str,
    run: &'static str,
    down: bool,
    check: Option<&'static str>,
    log: bool,
    supervised: bool,
}

const fn spec(name: &'static str) -> Spec {
    Spec {
        name,
        run: SLEEPER,
        down: false,
        check: None,
        log: false,
        supervised: true,
    }
}

struct Pair {
    sb: Sandbox,
    kind: Kind,
    _sups: Vec<Proc>,
}

impl Pair {
    fn new(kind: Kind, name: &str, svcs: &[Spec]) -> Pair {
        let sb = Sandbox::new(name);
        let mut sups = Vec::new();
        for side in ["r", "v"] {
            fs::create_dir_all(sb.path(&format!("{side}/lsb"))).unwrap();
            // The init-script links: runit's sv on the r side, ours on the v side.
            let target = if side == "r" {
                PathBuf::from("/usr/bin/sv")
            } else {
                bin("sv")
            };
            symlink(&target, sb.path(&format!("{side}/lsb/nope"))).unwrap();
            for s in svcs {
                let dir = sb.service(&format!("{side}/{}", s.name), s.run);
                if s.down {
                    fs::write(dir.join("down"), "").unwrap();
                }
                if let Some(body) = s.check {
                    write_script(&dir.join("check"), body);
                }
                if s.log {
                    sb.service(&format!("{side}/{}/log", s.name), SLEEPER);
                }
                symlink(&target, sb.path(&format!("{side}/lsb/{}", s.name))).unwrap();
                if !s.supervised {
                    continue;
                }
                match kind {
                    Kind::Runsv => {
                        sups.push(spawn(sb.command(require_peer("runsv")).arg(&dir)));
                    }
                    Kind::Vigil => {
                        sups.push(Supervise::new(&sb, &dir).stderr_inherit().spawn());
                        if s.log {
                            sups.push(
                                Supervise::new(&sb, dir.join("log"))
                                    .stderr_inherit()
                                    .spawn(),
                            );
                        }
                    }
                }
            }
        }
        for side in ["r", "v"] {
            for s in svcs.iter().filter(|s| s.supervised) {
                let dir = sb.path(&format!("{side}/{}", s.name));
                wait_supervised(&dir);
                if s.log {
                    wait_supervised(&dir.join("log"));
                    wait_up(&dir.join("log"));
                }
                if s.down {
                    wait_status(&dir, "status written", |_| true);
                } else {
                    wait_up(&dir);
                }
            }
        }
        Pair {
            sb,
            kind,
            _sups: sups,
        }
    }

    fn run(&self, side: &str, lsb: Option<&str>, args: &[&str], env: &[(&str, &str)]) -> Out {
        let root = self.sb.path(side);
        let prog = match lsb {
            Some(name) => root.join("lsb").join(name),
            None if side == "r" => PathBuf::from("/usr/bin/sv"),
            None => bin("sv"),
        };
        let mut cmd: Command = self.sb.command(&prog);
        cmd.args(args).current_dir(&root).env("SVDIR", &root);
        cmd.env_remove("SVWAIT");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let (code, out, err) = run_output(&mut cmd);
        Out {
            code,
            out: normalise(&out),
            err: normalise(&err),
        }
    }

    /// Runs runit's sv on `r/` and ours on `v/`; asserts equal results; returns ours.
    fn same(&self, args: &[&str]) -> Out {
        self.same_env(None, args, &[])
    }

    /// As [`Pair::same`], for waits on several directories: each line is printed when its
    /// directory is done, so the order follows timing (runit's too).
    fn same_any_order(&self, args: &[&str]) {
        let sorted = |side| {
            let mut o = self.run(side, None, args, &[]);
            let mut lines: Vec<&str> = o.out.lines().collect();
            lines.sort_unstable();
            o.out = lines.join("\n");
            o
        };
        let (r, v) = std::thread::scope(|s| {
            let r = s.spawn(|| sorted("r"));
            let v = sorted("v");
            (r.join().unwrap(), v)
        });
        assert_eq!(
            r, v,
            "{:?} {args:?}: runit's sv (left) and ours (right)",
            self.kind
        );
    }

    fn same_env(&self, lsb: Option<&str>, args: &[&str], env: &[(&str, &str)]) -> Out {
        // Both at once: the trees are independent, and the timeouts add up otherwise.
        let (r, v) = std::thread::scope(|s| {
            let r = s.spawn(|| self.run("r", lsb, args, env));
            let v = self.run("v", lsb, args, env);
            (r.join().unwrap(), v)
        });
        assert_eq!(
            r, v,
            "{:?} lsb={lsb:?} {args:?}: runit's sv (left) and ours (right) differ",
            self.kind
        );
        v
    }
}

#[derive(Debug, PartialEq, Eq)]
struct Out {
    code: i32,
    out: String,
    err: String,
}

/// `(pid 123)` -> `(pid N)`, ` 12s` -> ` Ns`.
fn normalise(text: &str) -> String {
    let mut out = String::new();
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if text[i..].starts_with("(pid ") {
            let mut j = i + 5;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            out.push_str("(pid N");
            i = j;
            continue;
        }
        if b[i].is_ascii_digit() && i > 0 && b[i - 1] == b' ' {
            let mut j = i;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            if j < b.len() && b[j] == b's' && (j + 1 == b.len() || !b[j + 1].is_ascii_alphabetic())
            {
                out.push('N');
                i = j;
                continue;
            }
        }
        out.push(b[i] as char);
        i += 1;
    }
    out
}

fn skip_without_runit(test: &str) -> bool {
    if peer("sv").is_none() || peer("runsv").is_none() {
        skip(
            test,
            "runit's sv/runsv not installed (apt-get install runit)",
        );
        return true;
    }
    false
}

fn scenario_services() -> Vec<Spec> {
    vec![
        Spec {
            log: true,
            ..spec("a")
        },
        Spec {
            down: true,
            ..spec("b")
        },
        Spec {
            check: Some("exit 1"),
            ..spec("c")
        },
        Spec {
            check: Some("exit 0"),
            ..spec("d")
        },
        Spec {
            supervised: false,
            ..spec("unsup")
        },
    ]
}

fn scenario(kind: Kind) {
    let p = Pair::new(kind, &format!("sv-diff-{kind:?}"), &scenario_services());
    // Usage errors.
    for args in [
        &[][..],
        &["-w"],
        &["-x", "status", "a"],
        &["bogus", "a"],
        &["status"],
        &["-v", "status"],
    ] {
        assert_eq!(p.same(args).code, 100, "{args:?}");
    }
    // Status: names, paths, log/, missing and unsupervised directories.
    let o = p.same(&["status", "a"]);
    assert!(
        o.out
            .starts_with("run: a: (pid N) Ns; run: log: (pid N) Ns"),
        "{o:?}"
    );
    p.same(&["s", "./a", "a/", "a/log", "b", "d"]);
    let o = p.same(&["status", "missing", "unsup", ""]);
    assert_eq!(o.code, 3);
    assert!(
        o.out
            .contains("warning: unsup: unable to open supervise/ok")
    );
    p.same(&["status", "-v", "a"]);
    // Control with and without waiting.
    assert_eq!(
        p.same(&["-v", "stop", "a"]).out,
        "ok: down: a: Ns, normally up\n"
    );
    p.same(&["status", "a"]);
    assert_eq!(
        p.same(&["-v", "start", "a"]).out,
        "ok: run: a: (pid N) Ns\n"
    );
    p.same(&["-v", "pause", "a"]);
    p.same(&["-v", "cont", "a"]);
    p.same_any_order(&["-w", "5", "stop", "a", "b"]);
    if kind == Kind::Runsv {
        p.same(&["-w", "5", "once", "b"]);
    } else {
        // vigil's supervise records a once run as want 0, which runit's sv never takes as
        // done: ours does (runit compat), so only ours succeeds here.
        assert_eq!(p.run("v", None, &["-w", "5", "once", "b"], &[]).code, 0);
        p.run("r", None, &["-w", "1", "once", "b"], &[]);
    }
    p.same(&["-w", "5", "up", "a"]);
    p.same_env(None, &["-v", "down", "b"], &[("SVWAIT", "5")]);
    p.same(&["status", "b"]);
    // ./check: d passes, c never does (timeout, then force: kill).
    assert_eq!(p.same(&["-w", "5", "start", "d"]).code, 0);
    assert_eq!(p.same(&["-w", "5", "check", "d"]).code, 0);
    let o = p.same(&["-w", "1", "check", "c"]);
    assert_eq!(
        (o.code, o.out.as_str()),
        (1, "timeout: run: c: (pid N) Ns\n")
    );
    p.same_any_order(&["-w", "1", "start", "c", "d"]);
    let o = p.same(&["-w", "1", "force-restart", "c"]);
    assert_eq!((o.code, o.out.as_str()), (1, "kill: run: c: (pid N) Ns\n"));
    p.same(&["-w", "5", "try-restart", "b"]);
    // Not supervised: ours waits for a supervisor up to the timeout, then says what runit says.
    let o = p.same(&["-w", "1", "start", "unsup"]);
    assert_eq!(o.code, 1);
    p.same(&["-w", "1", "check", "unsup", "missing"]);
    // LSB init-script mode.
    for (lsb, args, code) in [
        ("a", &["status"][..], 0),
        ("a", &[], 2),
        ("a", &["bogus"], 2),
        ("a", &["st"], 2),
        ("a", &["-x", "status"], 2),
        ("b", &["status"], 3),
        ("unsup", &["status"], 4),
        ("nope", &["status"], 1),
        ("unsup", &["-w", "1", "start"], 1),
        ("a", &["-w", "5", "stop"], 0),
        ("a", &["status"], 0), // log still runs: runit reports the last record shown
        ("a", &["start"], 0),
        ("c", &["-w", "1", "restart"], 1),
    ] {
        let o = p.same_env(Some(lsb), args, &[]);
        assert_eq!(o.code, code, "{lsb} {args:?}: {o:?}");
    }
    // Restart, and shutdown of a supervisor whose service is down.
    let o = p.same(&["-w", "5", "restart", "d"]);
    assert_eq!(o.code, 0);
    let o = p.same(&["-w", "5", "shutdown", "b"]);
    assert_eq!(o.out, "ok: b: runsv not running\n");
    let o = p.same(&["status", "b"]);
    assert_eq!(
        (o.code, o.out.as_str()),
        (1, "fail: b: runsv not running\n")
    );
    p.same(&["exit", "b"]);
    p.same(&["-w", "1", "up", "b"]);
    p.same(&["-w", "1", "force-stop", "d"]);
}

#[test]
fn differential_on_vigil_supervise() {
    if skip_without_runit("differential_on_vigil_supervise") {
        return;
    }
    scenario(Kind::Vigil);
}

#[test]
fn differential_on_runsv() {
    if skip_without_runit("differential_on_runsv") {
        return;
    }
    scenario(Kind::Runsv);
}

/// A supervise/status that is not 20 bytes, and an `ok` nobody reads.
#[test]
fn broken_and_orphaned_directories() {
    if skip_without_runit("broken_and_orphaned_directories") {
        return;
    }
    let p = Pair::new(Kind::Vigil, "sv-broken", &[]);
    for side in ["r", "v"] {
        let d = p.sb.path(&format!("{side}/orphan/supervise"));
        fs::create_dir_all(&d).unwrap();
        let made = Command::new("mkfifo").arg(d.join("ok")).status().unwrap();
        assert!(made.success());
        fs::write(d.join("status"), "short").unwrap();
    }
    let o = p.same(&["status", "orphan"]);
    assert_eq!(o.out, "fail: orphan: runsv not running\n");
    // One failure per directory, at most 99.
    let many: Vec<String> = (0..120).map(|i| format!("missing{i}")).collect();
    let mut args = vec!["status"];
    args.extend(many.iter().map(String::as_str));
    assert_eq!(p.same(&args).code, 99);
    assert_eq!(p.same(&args[..4]).code, 3);
    p.same(&["-v", "exit", "orphan"]);
    p.same(&["-w", "1", "force-shutdown", "orphan"]);
    // With a reader on ok, the short status shows.
    let _r: Vec<_> = ["r", "v"]
        .iter()
        .map(|side| {
            fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(p.sb.path(&format!("{side}/orphan/supervise/ok")))
                .unwrap()
        })
        .collect();
    let o = p.same(&["status", "orphan"]);
    assert_eq!(
        o.out,
        "warning: orphan: unable to read supervise/status: bad format\n"
    );
}

/// A ./check that starts passing later: both wait for it (runit by polling, ours by retrying).
#[test]
fn check_script_that_passes_later() {
    if skip_without_runit("check_script_that_passes_later") {
        return;
    }
    for kind in [Kind::Vigil, Kind::Runsv] {
        let p = Pair::new(
            kind,
            "sv-check-later",
            &[Spec {
                check: Some("touch checked; test -e ready"),
                ..spec("w")
            }],
        );
        let mut kids = Vec::new();
        for side in ["r", "v"] {
            let root = p.sb.path(side);
            let prog = if side == "r" {
                PathBuf::from("/usr/bin/sv")
            } else {
                bin("sv")
            };
            let mut cmd = p.sb.command(prog);
            cmd.args(["-w", "10", "check", "w"])
                .current_dir(&root)
                .env("SVDIR", &root)
                .stdout(std::process::Stdio::piped());
            kids.push(cmd.spawn().unwrap());
        }
        for side in ["r", "v"] {
            let w = p.sb.path(&format!("{side}/w"));
            wait_until(Duration::from_secs(10), "./check ran", || {
                w.join("checked").exists()
            });
            fs::write(w.join("ready"), "").unwrap();
        }
        for kid in kids {
            let out = kid.wait_with_output().unwrap();
            assert_eq!(out.status.code(), Some(0), "{kind:?}");
            assert_eq!(
                normalise(&String::from_utf8_lossy(&out.stdout)),
                "ok: run: w: (pid N) Ns\n"
            );
        }
    }
}

/// OpenRC's runit backend links a service into the scan directory and runs `sv start` at
/// once. Ours waits for svscan's supervise to appear instead of failing.
#[test]
fn start_right_after_linking_into_scan_dir() {
    let sb = Sandbox::new("sv-scan-link");
    let scan = sb.path("scan");
    fs::create_dir_all(&scan).unwrap();
    let _svscan = Svscan::new(&sb, &scan).start();
    // svscan is up once it has made its own state visible: wait for a first service to run.
    let first = sb.service("defs/first", SLEEPER);
    symlink(&first, scan.join("first")).unwrap();
    wait_up(&scan.join("first"));
    for round in 0..3 {
        let name = format!("late{round}");
        let dir = sb.service(&format!("defs/{name}"), SLEEPER);
        let t0 = Instant::now();
        symlink(&dir, scan.join(&name)).unwrap();
        let (code, out, err) = run_output(
            sb.command(bin("sv"))
                .args(["-w", "7", "start", &name])
                .env("SVDIR", &scan),
        );
        assert_eq!((code, err.as_str()), (0, ""), "{out}");
        assert_eq!(normalise(&out), format!("ok: run: {name}: (pid N) Ns\n"));
        assert!(t0.elapsed() < Duration::from_secs(7));
    }
}

/// `-w` waits end when the state changes, not at the next look: a stop on vigil's supervise
/// returns well before runit's 0.42 s polling interval would let it (runit's sv reads the
/// stale status right after writing, then sleeps 0.42 s).
#[test]
fn stop_wait_is_event_driven() {
    let sb = Sandbox::new("sv-fast");
    let dir = sb.service("s", SLEEPER);
    let _sup = Supervise::new(&sb, &dir).stderr_inherit().start();
    wait_up(&dir);
    let mut best = Duration::MAX;
    for _ in 0..5 {
        let (code, out, _) = run_output(sb.command(bin("sv")).args(["-w", "7", "start"]).arg(&dir));
        assert_eq!(code, 0, "{out}");
        let t0 = Instant::now();
        let (code, out, _) = run_output(sb.command(bin("sv")).args(["-w", "7", "stop"]).arg(&dir));
        assert_eq!(code, 0, "{out}");
        best = best.min(t0.elapsed());
    }
    assert!(best < Duration::from_millis(400), "best stop took {best:?}");
}
