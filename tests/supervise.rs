//! supervise as a real process: every control letter, `./down`, pacing, exec failures, the
//! lock, `x`, SIGTERM, and what the child inherits.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::fs;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use vigil_tests::*;

/// A run script that records every signal it gets into `../sigs` and keeps running.
const RECORDER: &str = r#"
for s in HUP ALRM INT TERM QUIT USR1 USR2 WINCH CONT; do trap "echo $s >> ../sigs" $s; done
echo $$ >> ../pids
while :; do sleep 1000 & wait $!; kill $! 2>/dev/null; done"#;

struct Sup {
    child: Child,
}

impl Sup {
    fn start(sb: &Sandbox, dir: &Path) -> Sup {
        let child = sb
            .command(bin("supervise"))
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_supervised(dir);
        Sup { child }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits (bounded) for supervise to exit; returns its exit code.
    fn wait_exit(&mut self) -> i32 {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "supervise did not exit");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Everything supervise wrote to stderr. Kills the whole sandbox first: the service shares
    /// the pipe and would keep it open.
    fn stderr_text(mut self, sb: &Sandbox) -> String {
        use std::io::Read;
        sb.kill_all();
        let _ = self.child.wait();
        let mut s = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        s
    }
}

impl Drop for Sup {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sigs(sb: &Sandbox) -> Vec<String> {
    lines(&sb.path("sigs"))
}

fn svc(sb: &Sandbox, args: &[&str], dir: &Path) {
    let (code, _, err) = run_output(sb.command(bin("svc")).args(args).arg(dir));
    assert_eq!(code, 0, "svc {args:?}: {err}");
    assert!(err.is_empty(), "svc {args:?}: {err}");
}

#[test]
fn creates_supervise_dir_like_daemontools() {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let sb = Sandbox::new("layout");
    let dir = sb.service("s", "exec sleep 1000");
    let _s = Sup::start(&sb, &dir);
    wait_up(&dir);
    let mode = |p: &str| fs::metadata(dir.join(p)).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode("supervise"), 0o700);
    assert_eq!(mode(vigil_core::layout::LOCK), 0o600);
    assert_eq!(mode(vigil_core::layout::CONTROL), 0o600);
    assert_eq!(mode(vigil_core::layout::OK), 0o600);
    assert_eq!(mode(vigil_core::layout::STATUS), 0o644);
    assert!(
        fs::metadata(dir.join(vigil_core::layout::CONTROL))
            .unwrap()
            .file_type()
            .is_fifo()
    );
    assert!(
        fs::metadata(dir.join(vigil_core::layout::OK))
            .unwrap()
            .file_type()
            .is_fifo()
    );
    let bytes = fs::read(dir.join(vigil_core::layout::STATUS)).unwrap();
    assert_eq!(bytes.len(), 20);
    assert_eq!(bytes[17], b'u');
    assert_eq!(bytes[19], 1, "runit state byte: running");
    assert!(!dir.join(vigil_core::layout::STATUS_NEW).exists());
}

#[test]
fn every_signal_letter_reaches_the_service() {
    let sb = Sandbox::new("letters");
    let dir = sb.service("s", RECORDER);
    let _s = Sup::start(&sb, &dir);
    let pid = wait_up(&dir);
    wait_until(Duration::from_secs(5), "run recorded its pid", || {
        !lines(&sb.path("pids")).is_empty()
    });
    let expect = [
        ("-h", "HUP"),
        ("-a", "ALRM"),
        ("-i", "INT"),
        ("-q", "QUIT"),
        ("-1", "USR1"),
        ("-2", "USR2"),
        ("-w", "WINCH"),
        ("-t", "TERM"),
    ];
    for (i, (flag, name)) in expect.iter().enumerate() {
        svc(&sb, &[flag], &dir);
        wait_until(Duration::from_secs(5), &format!("{name} recorded"), || {
            sigs(&sb).len() > i
        });
        assert_eq!(sigs(&sb)[i], *name);
    }
    // TERM with want up: the service handled it and still runs with the same pid.
    assert_eq!(read_status(&dir).unwrap().pid, pid);
    // k: killed, and restarted because want is up.
    svc(&sb, &["-k"], &dir);
    let new = wait_status(&dir, "restart after kill", |s| s.pid != 0 && s.pid != pid).pid;
    assert!(!alive(pid));
    wait_until(
        Duration::from_secs(5),
        "second run recorded its pid",
        || lines(&sb.path("pids")).len() == 2,
    );
    assert_eq!(
        lines(&sb.path("pids")),
        vec![pid.to_string(), new.to_string()]
    );
}

#[test]
fn pause_continue_down_up_once() {
    let sb = Sandbox::new("pcduo");
    let dir = sb.service("s", "exec sleep 1000");
    let _s = Sup::start(&sb, &dir);
    let pid = wait_up(&dir);

    svc(&sb, &["-p"], &dir);
    wait_status(&dir, "paused", |s| s.paused);
    wait_until(Duration::from_secs(5), "stopped", || {
        fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") T "))
    });
    svc(&sb, &["-c"], &dir);
    wait_status(&dir, "continued", |s| !s.paused);

    svc(&sb, &["-d"], &dir);
    wait_down(&dir);
    assert!(!alive(pid));
    let st = read_status(&dir).unwrap();
    assert_eq!(st.want, Want::Down);
    assert_eq!(
        fs::read(dir.join(vigil_core::layout::STATUS)).unwrap()[17],
        b'd'
    );

    svc(&sb, &["-o"], &dir);
    let once = wait_up(&dir);
    assert_eq!(
        fs::read(dir.join(vigil_core::layout::STATUS)).unwrap()[17],
        0,
        "once: want byte 0"
    );
    send_signal(once, 9);
    wait_down(&dir);
    // Not restarted after a once run.
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(read_status(&dir).unwrap().pid, 0);

    svc(&sb, &["-u"], &dir);
    wait_up(&dir);
    assert_eq!(read_status(&dir).unwrap().want, Want::Up);
}

#[test]
fn down_file_means_normally_down() {
    let sb = Sandbox::new("downfile");
    let dir = sb.service("s", "echo ran >> ../ran; exec sleep 1000");
    fs::write(dir.join("down"), "").unwrap();
    let _s = Sup::start(&sb, &dir);
    let st = wait_status(&dir, "status", |_| true);
    assert_eq!(st.pid, 0);
    assert_eq!(st.want, Want::Down);
    std::thread::sleep(Duration::from_millis(300));
    assert!(!sb.path("ran").exists(), "run must not start with ./down");
    svc(&sb, &["-u"], &dir);
    wait_up(&dir);
}

#[test]
fn restarts_are_paced_but_never_blocking() {
    let sb = Sandbox::new("pace");
    let dir = sb.service("s", "date +%s%N >> ../starts; exit 1");
    let _s = Sup::start(&sb, &dir);
    wait_until(Duration::from_secs(10), "three starts", || {
        count_lines(&sb.path("starts")) >= 3
    });
    let t: Vec<u128> = lines(&sb.path("starts"))
        .iter()
        .map(|l| l.parse().unwrap())
        .collect();
    for w in t.windows(2) {
        let gap_ms = (w[1] - w[0]) / 1_000_000;
        assert!(gap_ms >= 950, "starts only {gap_ms} ms apart");
        assert!(gap_ms < 1500, "starts {gap_ms} ms apart: pacing too slow");
    }
    // During the pause a command acts at once: down cancels the pending restart.
    svc(&sb, &["-d"], &dir);
    let n = count_lines(&sb.path("starts"));
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        count_lines(&sb.path("starts")) <= n + 1,
        "restarted after svc -d"
    );
    wait_down(&dir);
    assert_eq!(read_status(&dir).unwrap().want, Want::Down);
}

#[test]
fn down_right_after_up_takes_effect_at_once() {
    let sb = Sandbox::new("updown");
    let dir = sb.service("s", "exec sleep 1000");
    fs::write(dir.join("down"), "").unwrap();
    let _s = Sup::start(&sb, &dir);
    svc(&sb, &["-u"], &dir);
    let pid = wait_up(&dir);
    std::thread::sleep(Duration::from_millis(100));
    let t0 = Instant::now();
    svc(&sb, &["-d"], &dir);
    wait_status(&dir, "down after svc -d", |s| s.pid == 0);
    let took = t0.elapsed();
    assert!(!alive(pid));
    // daemontools needs up to a second here (its post-start sleep); we act at once.
    assert!(took < Duration::from_millis(50), "svc -d took {took:?}");
    eprintln!("svc -d 100 ms after svc -u: down after {took:?}");
}

#[test]
fn missing_or_broken_run_is_reported_and_retried() {
    let sb = Sandbox::new("execfail");
    let dir = sb.path("s");
    fs::create_dir_all(&dir).unwrap();
    let s = Sup::start(&sb, &dir);
    // Supervise stays up, retries about once a second, and starts run once it appears.
    std::thread::sleep(Duration::from_millis(1300));
    assert!(alive(s.pid()));
    write_script(&dir.join("run"), "exec sleep 1000");
    let pid = wait_up(&dir);
    assert!(pid != 0);
    let err = s.stderr_text(&sb);
    let dir_s = dir.display();
    assert!(
        err.lines()
            .any(|l| l
                == format!("supervise: fatal: unable to start {dir_s}/run: file does not exist")),
        "stderr: {err}"
    );
    assert!(err.lines().count() >= 2, "retried: {err}");

    let sb = Sandbox::new("noexec");
    let dir = sb.path("s");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("run"), "#!/bin/sh\nexec sleep 1000\n").unwrap();
    let s = Sup::start(&sb, &dir);
    std::thread::sleep(Duration::from_millis(300));
    let err = s.stderr_text(&sb);
    assert!(
        err.contains(&format!(
            "unable to start {}/run: access denied",
            dir.display()
        )),
        "{err}"
    );
}

#[test]
fn second_supervise_fails_on_the_lock() {
    let sb = Sandbox::new("lock");
    let dir = sb.service("s", "exec sleep 1000");
    let _s = Sup::start(&sb, &dir);
    wait_up(&dir);
    let (code, _, err) = run_output(sb.command(bin("supervise")).arg(&dir));
    assert_eq!(code, 111);
    assert_eq!(
        err,
        format!(
            "supervise: fatal: unable to acquire {}/supervise/lock: temporary failure\n",
            dir.display()
        )
    );
}

#[test]
fn usage() {
    let sb = Sandbox::new("usage");
    let (code, _, err) = run_output(&mut sb.command(bin("supervise")));
    assert_eq!(
        (code, err.as_str()),
        (100, "supervise: usage: supervise dir\n")
    );
    let (code, _, err) = run_output(sb.command(bin("supervise")).arg(sb.path("nope")));
    assert_eq!(code, 111);
    assert!(
        err.starts_with("supervise: fatal: unable to chdir to "),
        "{err}"
    );
}

#[test]
fn x_exits_once_down() {
    let sb = Sandbox::new("x");
    let dir = sb.service("s", "exec sleep 1000");
    let mut s = Sup::start(&sb, &dir);
    let pid = wait_up(&dir);
    svc(&sb, &["-x"], &dir);
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        s.child.try_wait().unwrap().is_none(),
        "x alone must not stop the service"
    );
    assert!(alive(pid));
    svc(&sb, &["-dx"], &dir);
    assert_eq!(s.wait_exit(), 0);
    assert!(!alive(pid));
    let (code, _, _) = run_output(sb.command(bin("svok")).arg(&dir));
    assert_eq!(code, 100);
}

#[test]
fn sigterm_brings_the_service_down_first() {
    let sb = Sandbox::new("sigterm");
    let dir = sb.service("s", "exec sleep 1000");
    let mut s = Sup::start(&sb, &dir);
    let pid = wait_up(&dir);
    send_signal(s.pid(), 15);
    assert_eq!(s.wait_exit(), 0);
    assert!(!alive(pid), "service orphaned by SIGTERM to supervise");
    assert_eq!(read_status(&dir).unwrap().pid, 0);
}

#[test]
fn child_gets_clean_signals_and_only_fds_0_to_2() {
    let sb = Sandbox::new("hygiene");
    let dir = sb.service("s", "exec sleep 1000");
    // Start supervise from a shell that ignores signals and leaks an fd, as a careless parent
    // would.
    let mut child = sb
        .command("sh")
        .arg("-c")
        .arg(format!(
            "trap '' HUP USR1; exec 7</dev/null; exec {} {}",
            bin("supervise").display(),
            dir.display()
        ))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = wait_up(&dir);
    // Look once sh has exec'd sleep (sh itself keeps its script open).
    wait_until(Duration::from_secs(5), "run execs sleep", || {
        fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.starts_with(b"sleep"))
    });
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |k: &str| {
        status
            .lines()
            .find(|l| l.starts_with(k))
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_owned()
    };
    assert_eq!(field("SigBlk:"), "0000000000000000");
    assert_eq!(field("SigIgn:"), "0000000000000000");
    assert_eq!(settled_fds(pid, &["0", "1", "2"]), vec!["0", "1", "2"]);
    // run leads its own session (setsid by default).
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest: Vec<&str> = stat.rsplit_once(") ").unwrap().1.split(' ').collect();
    assert_eq!(rest[3], pid.to_string(), "session id");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn no_setsid_keeps_the_process_group() {
    let sb = Sandbox::new("nosetsid");
    let dir = sb.service("s", "exec sleep 1000");
    fs::write(dir.join("no-setsid"), "").unwrap();
    let s = Sup::start(&sb, &dir);
    let pid = wait_up(&dir);
    let pgrp = |p: u32| {
        let stat = fs::read_to_string(format!("/proc/{p}/stat")).unwrap();
        stat.rsplit_once(") ")
            .unwrap()
            .1
            .split(' ')
            .nth(2)
            .unwrap()
            .to_owned()
    };
    assert_eq!(pgrp(pid), pgrp(s.pid()));
}

#[test]
fn idle_supervise_never_wakes_up() {
    let sb = Sandbox::new("idle");
    let dir = sb.service("s", "exec sleep 1000");
    let s = Sup::start(&sb, &dir);
    wait_up(&dir);
    std::thread::sleep(Duration::from_millis(200));
    let switches = || {
        let st = fs::read_to_string(format!("/proc/{}/status", s.pid())).unwrap();
        st.lines()
            .filter(|l| l.contains("ctxt_switches"))
            .map(|l| l.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap())
            .sum::<u64>()
    };
    let before = switches();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(switches() - before, 0, "idle supervise woke up");
}

#[test]
fn garbage_on_control_is_ignored() {
    let sb = Sandbox::new("garbage");
    let dir = sb.service("s", "exec sleep 1000");
    let _s = Sup::start(&sb, &dir);
    let pid = wait_up(&dir);
    let junk: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .filter(|b| !b"udopcxhaitkq12wPCK+=Ll".contains(b))
        .collect();
    control(&dir, &junk);
    control(&dir, b"p");
    wait_status(&dir, "paused after garbage", |s| s.paused);
    assert_eq!(read_status(&dir).unwrap().pid, pid);
}

#[test]
fn a_new_supervise_adopts_the_run_a_killed_one_left() {
    let sb = Sandbox::new("adopt");
    let dir = sb.service("s", "echo $$ >> ../pids; exec sleep 1000");
    let mut first = Sup::start(&sb, &dir);
    let pid = wait_up(&dir);
    wait_until(Duration::from_secs(5), "run wrote its pid", || {
        count_lines(&sb.path("pids")) == 1
    });
    send_signal(first.pid(), 9);
    first.wait_exit();
    assert!(alive(pid), "the service outlives its supervise");

    let _second = Sup::start(&sb, &dir);
    let info = vigil_core::info::Info::parse(
        &fs::read_to_string(dir.join(vigil_core::layout::INFO)).unwrap(),
    )
    .unwrap();
    assert!(info.adopted, "{info:?}");
    assert_eq!(info.pid, pid);
    assert_eq!(read_status(&dir).unwrap().pid, pid);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        lines(&sb.path("pids")),
        vec![pid.to_string()],
        "a second copy was started"
    );

    // Control works on the adopted process, and its end is noticed.
    svc(&sb, &["-d"], &dir);
    wait_down(&dir);
    assert!(!alive(pid));
    let text = fs::read_to_string(dir.join(vigil_core::layout::HISTORY)).unwrap();
    let h = vigil_core::history::parse_all(&text);
    use vigil_core::history::Event;
    assert!(
        matches!(h.last().unwrap().event, Event::Exit { pid: p, how: None, .. } if p == pid),
        "{h:?}"
    );
    assert!(
        h.iter()
            .any(|e| e.event == Event::Start { pid, adopted: true })
    );
    svc(&sb, &["-u"], &dir);
    let new = wait_up(&dir);
    assert_ne!(new, pid);
}

#[test]
fn a_reused_pid_is_not_adopted() {
    let sb = Sandbox::new("noadopt");
    let dir = sb.service("s", "echo $$ >> ../pids; exec sleep 1000");
    let mut first = Sup::start(&sb, &dir);
    let pid = wait_up(&dir);
    send_signal(first.pid(), 9);
    first.wait_exit();
    // Forge the record: same pid, another start time (as if the pid had been reused).
    let info = fs::read_to_string(dir.join(vigil_core::layout::INFO)).unwrap();
    let forged: String = info
        .lines()
        .map(|l| {
            if l.starts_with("run_start=") {
                "run_start=1".to_owned()
            } else {
                l.to_owned()
            }
        })
        .map(|l| l + "\n")
        .collect();
    fs::write(dir.join(vigil_core::layout::INFO), forged).unwrap();
    let _second = Sup::start(&sb, &dir);
    let new = wait_status(&dir, "a fresh run", |s| s.pid != 0 && s.pid != pid).pid;
    assert!(
        alive(pid),
        "a process that is not provably ours is left alone"
    );
    assert_ne!(new, pid);
    send_signal(pid, 9);
}

#[test]
fn history_records_starts_and_exits() {
    let sb = Sandbox::new("history");
    let dir = sb.service(
        "s",
        "test -e ../once && exec sleep 1000; touch ../once; exit 4",
    );
    let _s = Sup::start(&sb, &dir);
    wait_until(Duration::from_secs(5), "two starts", || {
        let t = fs::read_to_string(dir.join(vigil_core::layout::HISTORY)).unwrap_or_default();
        vigil_core::history::parse_all(&t).len() >= 3
    });
    use vigil_core::history::Event;
    let h = vigil_core::history::parse_all(
        &fs::read_to_string(dir.join(vigil_core::layout::HISTORY)).unwrap(),
    );
    assert!(matches!(h[0].event, Event::Start { adopted: false, .. }));
    assert!(
        matches!(
            h[1].event,
            Event::Exit {
                how: Some(vigil_core::machine::ExitKind::Code(4)),
                ..
            }
        ),
        "{h:?}"
    );
    assert!(matches!(h[2].event, Event::Start { .. }));
    // svstat -H N shows the newest N records after the usual line (history is appended just
    // before status is written: wait for the status too).
    wait_up(&dir);
    let (code, out, _) = run_output(sb.command(bin("svstat")).args(["-H", "2"]).arg(&dir));
    assert_eq!(code, 0);
    let shown: Vec<&str> = out.lines().collect();
    assert_eq!(shown.len(), 3, "{out}");
    assert!(shown[0].starts_with(&format!("{}: up (pid ", dir.display())));
    assert_eq!(shown[1], format!("  {}", h[h.len() - 2].describe()));
    assert_eq!(shown[2], format!("  {}", h[h.len() - 1].describe()));
    assert!(
        shown[1].contains(" exit ") && shown[1].contains("how=code:4"),
        "{out}"
    );
}

#[test]
fn run_without_hashbang_is_an_exec_format_error_not_a_shell_script() {
    use std::os::unix::fs::PermissionsExt;
    for (name, text) in [
        ("empty", ""),
        ("nohashbang", "echo ran > ran\nexec sleep 1000\n"),
    ] {
        let sb = Sandbox::new(&format!("enoexec-{name}"));
        let dir = sb.path("s");
        fs::create_dir_all(&dir).unwrap();
        let run = dir.join("run");
        fs::write(&run, text).unwrap();
        fs::set_permissions(&run, fs::Permissions::from_mode(0o755)).unwrap();
        let err = sb.path("stderr");
        let mut sup = sb
            .command(bin("supervise"))
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(fs::File::create(&err).unwrap())
            .spawn()
            .unwrap();
        let want = format!(
            "supervise: fatal: unable to start {}/run: exec format error",
            dir.display()
        );
        // As daemontools' pathexec: reported and retried, never handed to /bin/sh.
        wait_until(Duration::from_secs(5), "two exec format errors", || {
            fs::read_to_string(&err)
                .unwrap_or_default()
                .lines()
                .filter(|l| *l == want)
                .count()
                >= 2
        });
        assert!(alive(sup.id()));
        assert!(!dir.join("ran").exists(), "{name}: run was run by a shell");
        assert_eq!(read_status(&dir).map(|st| st.pid), Some(0), "{name}");
        let text = fs::read_to_string(&err).unwrap();
        assert!(text.lines().all(|l| l == want), "{name}: {text}");
        send_signal(sup.id(), 9);
        let _ = sup.wait();
        sb.kill_all();
    }
}
