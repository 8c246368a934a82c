//! Waiting clients: svwait, `svc -W`, and svstat's `-l` and `--json`, against real supervisors.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vigil_tests::*;

const SLEEPER: &str = "exec sleep 1000";

fn svwait(sb: &Sandbox, args: &[&str], dirs: &[&Path]) -> Command {
    let mut c = sb.command(bin("svwait"));
    c.args(args).args(dirs).stdout(Stdio::null());
    c
}

#[test]
fn svwait_blocks_until_up_then_down_then_finished() {
    let sb = Sandbox::new("wait-udD");
    let dir = sb.service("s", SLEEPER);
    fs::write(dir.join("down"), "").unwrap();
    write_script(&dir.join("finish"), "sleep 0.4; echo done > ../finished");
    let _sup = Supervise::new(&sb, &dir)
        .stderr_inherit()
        .wait_first_status()
        .start();
    wait_down(&dir);

    // Already down: -d and -D are met at once.
    assert_eq!(run_output(&mut svwait(&sb, &["-d"], &[&dir])).0, 0);
    assert_eq!(
        run_output(&mut svwait(&sb, &["-D", "-t", "2000"], &[&dir])).0,
        0
    );

    let mut w = spawn(&mut svwait(&sb, &["-u"], &[&dir]));
    assert_eq!(
        w.exit_within(Duration::from_millis(300)),
        None,
        "returned while down"
    );
    Svc::new(&sb).args(["-u"]).dir(&dir).expect_ok();
    assert_eq!(w.exit_within(Duration::from_secs(5)), Some(0));
    let pid = read_status(&dir).unwrap().pid;
    assert_ne!(pid, 0, "svwait -u returned before the status said up");

    let mut d = spawn(&mut svwait(&sb, &["-d"], &[&dir]));
    let mut big_d = spawn(&mut svwait(&sb, &["-D"], &[&dir]));
    assert_eq!(
        d.exit_within(Duration::from_millis(300)),
        None,
        "returned while up"
    );
    Svc::new(&sb).args(["-d"]).dir(&dir).expect_ok();
    assert_eq!(d.exit_within(Duration::from_secs(5)), Some(0));
    assert_eq!(read_status(&dir).unwrap().pid, 0);
    assert_eq!(big_d.exit_within(Duration::from_secs(5)), Some(0));
    // -D returns only once ./finish has run to its end.
    assert!(
        sb.path("finished").exists(),
        "svwait -D returned while finish ran"
    );
    let st = read_status(&dir).unwrap();
    assert_eq!((st.pid, st.state), (0, RunState::Down));
}

#[test]
fn svwait_timeout_exits_99_in_time() {
    let sb = Sandbox::new("wait-timeout");
    let dir = sb.service("s", SLEEPER);
    fs::write(dir.join("down"), "").unwrap();
    let _sup = Supervise::new(&sb, &dir)
        .stderr_inherit()
        .wait_first_status()
        .start();
    let t = Instant::now();
    let (code, _, err) = run_output(&mut svwait(&sb, &["-u", "-t", "300"], &[&dir]));
    let took = t.elapsed();
    assert_eq!(code, 99, "{err}");
    assert_eq!(
        err,
        format!("svwait: fatal: timed out waiting for {}\n", dir.display())
    );
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    // -t 0 looks once.
    let (code, _, _) = run_output(&mut svwait(&sb, &["-U", "-t", "0"], &[&dir]));
    assert_eq!(code, 99);
    let (code, _, _) = run_output(&mut svwait(&sb, &["-D", "-t", "0"], &[&dir]));
    assert_eq!(code, 0);
}

#[test]
fn svwait_all_or_one() {
    let sb = Sandbox::new("wait-ao");
    let a = sb.service("a", SLEEPER);
    let b = sb.service("b", SLEEPER);
    fs::write(b.join("down"), "").unwrap();
    let _sa = Supervise::new(&sb, &a)
        .stderr_inherit()
        .wait_first_status()
        .start();
    let _sb = Supervise::new(&sb, &b)
        .stderr_inherit()
        .wait_first_status()
        .start();
    wait_up(&a);
    let (code, _, _) = run_output(&mut svwait(&sb, &["-o", "-u"], &[&a, &b]));
    assert_eq!(code, 0);
    let (code, _, _) = run_output(&mut svwait(&sb, &["-u", "-t", "200"], &[&a, &b]));
    assert_eq!(code, 99);
    let mut w = spawn(&mut svwait(&sb, &["-a", "-u"], &[&a, &b]));
    assert_eq!(w.exit_within(Duration::from_millis(200)), None);
    Svc::new(&sb).args(["-u"]).dir(&b).expect_ok();
    assert_eq!(w.exit_within(Duration::from_secs(5)), Some(0));
}

#[test]
fn svwait_supervise_gone_is_102() {
    let sb = Sandbox::new("wait-gone");
    let dir = sb.service("s", SLEEPER);
    fs::write(dir.join("down"), "").unwrap();
    let mut sup = Supervise::new(&sb, &dir)
        .stderr_inherit()
        .wait_first_status()
        .start();
    let mut w = spawn(
        sb.command(bin("svwait"))
            .args(["-u", "-t", "20000"])
            .arg(&dir)
            .stderr(Stdio::piped()),
    );
    assert_eq!(w.exit_within(Duration::from_millis(200)), None);
    let t = Instant::now();
    sup.child.kill().unwrap();
    let _ = sup.child.wait();
    assert_eq!(w.exit_within(Duration::from_secs(5)), Some(102));
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    let mut err = String::new();
    std::io::Read::read_to_string(w.child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(
        err,
        format!(
            "svwait: fatal: unable to wait for {}: supervise went away\n",
            dir.display()
        )
    );
    // Not running at all, never supervised, missing, usage.
    let (code, _, err) = run_output(&mut svwait(&sb, &["-u"], &[&dir]));
    assert_eq!(code, 102, "{err}");
    let never = sb.path("never");
    fs::create_dir_all(&never).unwrap();
    assert_eq!(run_output(&mut svwait(&sb, &["-d"], &[&never])).0, 102);
    let (code, _, err) = run_output(&mut svwait(&sb, &[], &[&sb.path("missing")]));
    assert_eq!(code, 111);
    assert!(err.ends_with(": file does not exist\n"), "{err}");
    for bad in [&["-u"][..], &["-z", "x"], &["-t", "soon", "x"], &["-t"]] {
        let (code, _, err) = run_output(sb.command(bin("svwait")).args(bad));
        assert_eq!(code, 100, "{bad:?}");
        assert_eq!(
            err,
            "svwait: usage: svwait [-u|-U|-d|-D] [-a|-o] [-t ms] dir...\n"
        );
    }
}

#[test]
fn svc_w_up_and_down_are_true_on_return() {
    let sb = Sandbox::new("wait-svc");
    let dir = sb.service("s", SLEEPER);
    fs::write(dir.join("down"), "").unwrap();
    let _sup = Supervise::new(&sb, &dir)
        .stderr_inherit()
        .wait_first_status()
        .start();
    for _ in 0..20 {
        Svc::new(&sb)
            .args(["-u", "-W", "u", "-T", "5000"])
            .dir(&dir)
            .expect_ok();
        assert_ne!(read_status(&dir).unwrap().pid, 0);
        // Already up: met at once.
        assert_eq!(Svc::new(&sb).args(["-u", "-W", "u"]).dir(&dir).run().0, 0);
        Svc::new(&sb)
            .args(["-d", "-W", "d", "-T", "5000"])
            .dir(&dir)
            .expect_ok();
        assert_eq!(read_status(&dir).unwrap().pid, 0);
    }
    // A restart waits for the new run.
    let old = svc_up(&sb, &dir);
    assert_eq!(
        Svc::new(&sb)
            .args(["-t", "-W", "u", "-T", "5000"])
            .dir(&dir)
            .run()
            .0,
        0
    );
    let new = read_status(&dir).unwrap().pid;
    assert!(new != 0 && new != old, "{old} {new}");
    // Timeout and usage.
    assert_eq!(
        Svc::new(&sb)
            .args(["-d", "-W", "u", "-T", "200"])
            .dir(&dir)
            .run()
            .0,
        99
    );
    assert_eq!(Svc::new(&sb).args(["-W", "x"]).dir(&dir).run().0, 100);
    assert_eq!(Svc::new(&sb).args(["-T", "5"]).dir(&dir).run().0, 100);
    // Without -W, daemontools' exit code after a warning: 0. With -W: 102.
    let never = sb.path("never");
    fs::create_dir_all(never.join("supervise")).unwrap();
    assert_eq!(Svc::new(&sb).args(["-u"]).dir(&never).run().0, 0);
    assert_eq!(
        Svc::new(&sb).args(["-u", "-W", "u"]).dir(&never).run().0,
        102
    );
}

fn svc_up(sb: &Sandbox, dir: &Path) -> u32 {
    assert_eq!(
        Svc::new(sb)
            .args(["-u", "-W", "u", "-T", "5000"])
            .dir(dir)
            .run()
            .0,
        0
    );
    read_status(dir).unwrap().pid
}

/// A service that becomes ready 0-50 ms after it starts, recording its pid first.
fn ready_service(sb: &Sandbox, name: &str) -> PathBuf {
    let dir = sb.service(
        name,
        "ms=$(( $(od -An -N1 -tu1 /dev/urandom) % 51 ))\n\
         sleep $(printf '0.%03d' $ms)\n\
         echo $$ > ../ready-pid.tmp && mv ../ready-pid.tmp ../ready-pid\n\
         echo ready >&3\n\
         exec sleep 1000",
    );
    fs::write(dir.join("notification-fd"), "3\n").unwrap();
    fs::write(dir.join("down"), "").unwrap();
    dir
}

#[test]
fn hundred_rounds_up_ready_then_down() {
    let sb = Sandbox::new("wait-ready100");
    let dir = ready_service(&sb, "s");
    let _sup = Supervise::new(&sb, &dir)
        .stderr_inherit()
        .wait_first_status()
        .start();
    let mark = sb.path("ready-pid");
    for round in 0..100 {
        let _ = fs::remove_file(&mark);
        let (code, _, err) = Svc::new(&sb)
            .args(["-u", "-W", "U", "-T", "10000"])
            .dir(&dir)
            .run();
        assert_eq!((code, err.as_str()), (0, ""), "round {round}");
        let pid = read_status(&dir).unwrap().pid;
        // No false success: the run wrote its mark before it signalled readiness.
        let marked = fs::read_to_string(&mark).unwrap_or_default();
        assert_eq!(
            marked.trim(),
            pid.to_string(),
            "round {round}: ready before the mark"
        );
        let (code, _, err) = Svc::new(&sb)
            .args(["-d", "-W", "D", "-T", "10000"])
            .dir(&dir)
            .run();
        assert_eq!((code, err.as_str()), (0, ""), "round {round}");
        let st = read_status(&dir).unwrap();
        assert_eq!((st.pid, st.state), (0, RunState::Down), "round {round}");
    }
}

#[test]
fn svwait_ready_after_svc_up() {
    // The other way round: svc -u, then a separate svwait -U.
    let sb = Sandbox::new("wait-ready-sep");
    let dir = ready_service(&sb, "s");
    let _sup = Supervise::new(&sb, &dir)
        .stderr_inherit()
        .wait_first_status()
        .start();
    let mark = sb.path("ready-pid");
    for round in 0..30 {
        let _ = fs::remove_file(&mark);
        assert_eq!(Svc::new(&sb).args(["-u"]).dir(&dir).run().0, 0);
        let (code, _, err) = run_output(&mut svwait(&sb, &["-U", "-t", "10000"], &[&dir]));
        assert_eq!(code, 0, "round {round}: {err}");
        let pid = read_status(&dir).unwrap().pid;
        // svwait may have started before supervise saw `u`: then it waited for the next run.
        assert_eq!(
            fs::read_to_string(&mark).unwrap_or_default().trim(),
            pid.to_string()
        );
        assert_eq!(
            Svc::new(&sb)
                .args(["-d", "-W", "D", "-T", "10000"])
                .dir(&dir)
                .run()
                .0,
            0
        );
    }
}

#[test]
fn restart_waits_for_the_new_runs_readiness() {
    let sb = Sandbox::new("wait-restart");
    let dir = ready_service(&sb, "s");
    let _sup = Supervise::new(&sb, &dir)
        .stderr_inherit()
        .wait_first_status()
        .start();
    let mark = sb.path("ready-pid");
    assert_eq!(
        Svc::new(&sb)
            .args(["-u", "-W", "U", "-T", "10000"])
            .dir(&dir)
            .run()
            .0,
        0
    );
    let old = read_status(&dir).unwrap().pid;
    for _ in 0..3 {
        assert_eq!(
            Svc::new(&sb)
                .args(["-t", "-W", "U", "-T", "10000"])
                .dir(&dir)
                .run()
                .0,
            0
        );
        let new = read_status(&dir).unwrap().pid;
        assert_ne!(new, old);
        assert_eq!(fs::read_to_string(&mark).unwrap().trim(), new.to_string());
    }
}

#[test]
fn ready_falls_back_to_up_without_notification() {
    let sb = Sandbox::new("wait-ready-fallback");
    let dir = sb.service("s", SLEEPER);
    fs::write(dir.join("down"), "").unwrap();
    let _sup = Supervise::new(&sb, &dir)
        .stderr_inherit()
        .wait_first_status()
        .start();
    for _ in 0..10 {
        assert_eq!(
            Svc::new(&sb)
                .args(["-u", "-W", "U", "-T", "5000"])
                .dir(&dir)
                .run()
                .0,
            0
        );
        assert_ne!(read_status(&dir).unwrap().pid, 0);
        assert_eq!(
            Svc::new(&sb)
                .args(["-d", "-W", "D", "-T", "5000"])
                .dir(&dir)
                .run()
                .0,
            0
        );
    }
}

#[test]
fn svwait_against_daemontools_supervise() {
    let sb = Sandbox::new("wait-dt");
    let dir = sb.service("s", SLEEPER);
    fs::write(dir.join("down"), "").unwrap();
    let _sup = spawn(sb.command(require_peer("supervise")).arg(&dir));
    wait_supervised(&dir);
    wait_status(&dir, "daemontools status", |_| true);
    let mut w = spawn(&mut svwait(&sb, &["-U"], &[&dir]));
    assert_eq!(w.exit_within(Duration::from_millis(200)), None);
    Svc::new(&sb).args(["-u"]).dir(&dir).expect_ok();
    assert_eq!(w.exit_within(Duration::from_secs(5)), Some(0));
    assert_ne!(read_status(&dir).unwrap().pid, 0);
}

/// Runs `svstat --json` on `dirs`, parses each line with Python's json module, and returns
/// per line the `repr` of the fields named in `keys`, joined by `|`.
fn svstat_json(sb: &Sandbox, dirs: &[&Path], keys: &[&str]) -> Vec<String> {
    let (code, out, err) = run_output(sb.command(bin("svstat")).arg("--json").args(dirs));
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(out.lines().count(), dirs.len(), "{out}");
    let json_path = sb.path("svstat.json");
    fs::write(&json_path, &out).unwrap();
    let script = "import json, sys\n\
        FIELDS = ['dir','supervised','error','up','pid','seconds','normally_up','want','paused',\
        'got_term','state','ready','ready_seconds','started_seconds','exited_seconds','exit_code',\
        'exit_signal','starts','quick_deaths','delay_ms','stopping','tracked','deadman',\
        'processes','memory_bytes','failed','finish_pid','notify_status','knobs']\n\
        sep = sys.argv.index('--')\n\
        keys, dirs = sys.argv[2:sep], sys.argv[sep + 1:]\n\
        for line, d in zip(open(sys.argv[1]), dirs, strict=True):\n\
        \x20   o = json.loads(line)\n\
        \x20   assert list(o) == FIELDS, list(o)\n\
        \x20   assert o['dir'] == d, (o['dir'], d)\n\
        \x20   print('|'.join(repr(o[k]) for k in keys))\n";
    let (code, out, err) = run_output(
        sb.command("python3")
            .arg("-c")
            .arg(script)
            .arg(&json_path)
            .args(keys)
            .arg("--")
            .args(dirs),
    );
    assert_eq!(code, 0, "python3 rejected svstat --json output: {err}");
    out.lines().map(str::to_owned).collect()
}

#[test]
fn svstat_json_parses_for_every_kind_of_directory() {
    let sb = Sandbox::new("svstat-json");
    let dir = ready_service(&sb, "s");
    let sup = Supervise::new(&sb, &dir)
        .stderr_inherit()
        .wait_first_status()
        .start();
    assert_eq!(
        Svc::new(&sb)
            .args(["-u", "-W", "U", "-T", "10000"])
            .dir(&dir)
            .run()
            .0,
        0
    );
    let pid = read_status(&dir).unwrap().pid;
    let keys = [
        "supervised",
        "error",
        "up",
        "pid",
        "normally_up",
        "want",
        "paused",
        "state",
        "ready",
        "starts",
        "exit_code",
        "exit_signal",
        "failed",
        "finish_pid",
    ];
    let rows = svstat_json(&sb, &[&dir], &keys);
    assert_eq!(
        rows,
        [format!(
            "True|None|True|{pid}|False|'up'|False|'run'|True|1|None|None|False|None"
        )]
    );
    let rows = svstat_json(
        &sb,
        &[&dir],
        &["seconds", "ready_seconds", "started_seconds"],
    );
    let secs: Vec<i64> = rows[0].split('|').map(|v| v.parse().unwrap()).collect();
    assert!(secs.iter().all(|s| (0..5).contains(s)), "{secs:?}");

    // Killed and restarted: the exit is recorded as a signal, starts counts 2.
    assert_eq!(
        Svc::new(&sb)
            .args(["-k", "-W", "U", "-T", "10000"])
            .dir(&dir)
            .run()
            .0,
        0
    );
    let rows = svstat_json(
        &sb,
        &[&dir],
        &["exit_code", "exit_signal", "starts", "ready"],
    );
    assert_eq!(rows, ["None|9|2|True"]);

    // Down with want down.
    assert_eq!(
        Svc::new(&sb)
            .args(["-d", "-W", "D", "-T", "10000"])
            .dir(&dir)
            .run()
            .0,
        0
    );
    let rows = svstat_json(
        &sb,
        &[&dir],
        &["up", "pid", "want", "state", "ready", "ready_seconds"],
    );
    assert_eq!(rows, ["False|None|'down'|'down'|False|None"]);

    // No supervise: never ran, missing, not running any more; a name JSON must escape.
    let never = sb.path("never \"quoted\"\\\n\tdir");
    fs::create_dir_all(&never).unwrap();
    let missing = sb.path("missing");
    drop(sup);
    let rows = svstat_json(
        &sb,
        &[&never, &missing, &dir],
        &["supervised", "error", "up", "ready", "starts"],
    );
    assert_eq!(
        rows,
        [
            "False|'unable to open supervise/ok: file does not exist'|None|None|None",
            "False|'unable to chdir: file does not exist'|None|None|None",
            "False|None|None|None|None",
        ]
    );
}

#[test]
fn svstat_json_against_daemontools_supervise() {
    let sb = Sandbox::new("svstat-json-dt");
    let dir = sb.service("s", SLEEPER);
    let _sup = spawn(sb.command(require_peer("supervise")).arg(&dir));
    let pid = wait_up(&dir);
    let rows = svstat_json(
        &sb,
        &[&dir],
        &[
            "supervised",
            "error",
            "up",
            "pid",
            "normally_up",
            "want",
            "state",
            "got_term",
            "ready",
            "starts",
            "exit_code",
            "failed",
        ],
    );
    assert_eq!(
        rows,
        [format!(
            "True|None|True|{pid}|True|'up'|'run'|False|None|None|None|None"
        )]
    );
    // -l adds nothing without supervise/info; the default line is daemontools'.
    let (_, plain, _) = run_output(sb.command(bin("svstat")).arg(&dir));
    let (_, long, _) = run_output(sb.command(bin("svstat")).arg("-l").arg(&dir));
    // The two calls may straddle a second: compare with the seconds figure taken out.
    let seconds = |s: &str| -> String {
        let (head, tail) = s.split_once(" seconds").unwrap_or((s, ""));
        format!(
            "{} N seconds{tail}",
            head.trim_end_matches(|c: char| c.is_ascii_digit())
                .trim_end()
        )
    };
    assert_eq!(seconds(&plain), seconds(&long));
    assert!(
        plain.starts_with(&format!("{}: up (pid {pid}) ", dir.display())),
        "{plain}"
    );
}

#[test]
fn svstat_long_shows_the_rich_status() {
    let sb = Sandbox::new("svstat-long");
    let dir = ready_service(&sb, "s");
    let _sup = Supervise::new(&sb, &dir)
        .stderr_inherit()
        .wait_first_status()
        .start();
    assert_eq!(
        Svc::new(&sb)
            .args(["-u", "-W", "U", "-T", "10000"])
            .dir(&dir)
            .run()
            .0,
        0
    );
    assert_eq!(
        Svc::new(&sb)
            .args(["-k", "-W", "U", "-T", "10000"])
            .dir(&dir)
            .run()
            .0,
        0
    );
    let (code, plain, _) = run_output(sb.command(bin("svstat")).arg(&dir));
    assert_eq!(code, 0);
    let (code, long, _) = run_output(sb.command(bin("svstat")).arg("-l").arg(&dir));
    assert_eq!(code, 0);
    let lines: Vec<&str> = long.lines().collect();
    assert_eq!(lines.len(), 2, "{long}");
    assert_eq!(format!("{}\n", lines[0]), plain);
    let second = lines[1];
    assert!(second.starts_with("  ready "), "{second}");
    for part in [
        " seconds, started ",
        " seconds ago, last exit signal KILL, starts 2",
    ] {
        assert!(second.contains(part), "{second}");
    }
    // Not ready yet: a service that never signals.
    let slow = sb.service("slow", SLEEPER);
    fs::write(slow.join("notification-fd"), "3\n").unwrap();
    let _sup2 = Supervise::new(&sb, &slow)
        .stderr_inherit()
        .wait_first_status()
        .start();
    wait_up(&slow);
    let (_, long, _) = run_output(sb.command(bin("svstat")).arg("-l").arg(&slow));
    assert!(
        long.lines()
            .nth(1)
            .unwrap()
            .starts_with("  not ready, started "),
        "{long}"
    );
    // Options count only first; anything else is a directory, as in daemontools.
    let (_, out, _) = run_output(sb.command(bin("svstat")).arg("-x"));
    assert_eq!(out, "-x: unable to chdir: file does not exist\n");
    let (_, out, _) = run_output(sb.command(bin("svstat")).arg(&dir).arg("-l"));
    assert!(
        out.ends_with("\n-l: unable to chdir: file does not exist\n"),
        "{out}"
    );
}

#[test]
fn svstat_json_and_svwait_against_runsv() {
    let sb = Sandbox::new("svstat-json-runsv");
    let dir = sb.service("s", SLEEPER);
    let _sup = spawn(sb.command(require_peer("runsv")).arg(&dir));
    let pid = wait_up(&dir);
    let rows = svstat_json(
        &sb,
        &[&dir],
        &[
            "supervised",
            "up",
            "pid",
            "want",
            "state",
            "ready",
            "starts",
        ],
    );
    assert_eq!(rows, [format!("True|True|{pid}|'up'|'run'|None|None")]);
    assert_eq!(
        run_output(&mut svwait(&sb, &["-U", "-t", "5000"], &[&dir])).0,
        0
    );
    assert_eq!(
        Svc::new(&sb)
            .args(["-d", "-W", "D", "-T", "5000"])
            .dir(&dir)
            .run()
            .0,
        0
    );
    let rows = svstat_json(&sb, &[&dir], &["up", "want", "state"]);
    assert_eq!(rows, ["False|'down'|'down'"]);
}
