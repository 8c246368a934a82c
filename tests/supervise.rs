//! supervise as a real process: every control letter, `./down`, pacing, exec failures, the
//! lock, `x`, SIGTERM, and what the child inherits.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::fs;
use std::process::Stdio;
use std::time::{Duration, Instant};

use vigil_tests::*;

/// A run script that records every signal it gets into `../sigs` and keeps running.
const RECORDER: &str = r#"
for s in HUP ALRM INT TERM QUIT USR1 USR2 WINCH CONT; do trap "echo $s >> ../sigs" $s; done
echo $$ >> ../pids
while :; do sleep 1000 & wait $!; kill $! 2>/dev/null; done"#;

/// What supervise wrote to stderr so far.
fn stderr_text(sb: &Sandbox) -> String {
    fs::read_to_string(sb.path("supervise.err")).unwrap_or_default()
}

fn sigs(sb: &Sandbox) -> Vec<String> {
    lines(&sb.path("sigs"))
}

#[test]
fn creates_supervise_dir_like_daemontools() {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let sb = Sandbox::new("layout");
    let dir = sb.service("s", "exec sleep 1000");
    let _s = Supervise::new(&sb, &dir)
        .stderr_to(sb.path("supervise.err"))
        .start();
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
    let _s = Supervise::new(&sb, &dir)
        .stderr_to(sb.path("supervise.err"))
        .start();
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
        Svc::new(&sb).args([flag]).dir(&dir).expect_ok();
        wait_until(Duration::from_secs(5), &format!("{name} recorded"), || {
            sigs(&sb).len() > i
        });
        assert_eq!(sigs(&sb)[i], *name);
    }
    // TERM with want up: the service handled it and still runs with the same pid.
    assert_eq!(read_status(&dir).unwrap().pid, pid);
    // k: killed, and restarted because want is up.
    Svc::new(&sb).args(["-k"]).dir(&dir).expect_ok();
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
    let _s = Supervise::new(&sb, &dir)
        .stderr_to(sb.path("supervise.err"))
        .start();
    let pid = wait_up(&dir);

    Svc::new(&sb).args(["-p"]).dir(&dir).expect_ok();
    wait_status(&dir, "paused", |s| s.paused);
    wait_until(Duration::from_secs(5), "stopped", || {
        proc_state(pid) == Some('T')
    });
    Svc::new(&sb).args(["-c"]).dir(&dir).expect_ok();
    wait_status(&dir, "continued", |s| !s.paused);

    Svc::new(&sb).args(["-d"]).dir(&dir).expect_ok();
    wait_down(&dir);
    assert!(!alive(pid));
    let st = read_status(&dir).unwrap();
    assert_eq!(st.want, Want::Down);
    assert_eq!(
        fs::read(dir.join(vigil_core::layout::STATUS)).unwrap()[17],
        b'd'
    );

    Svc::new(&sb).args(["-o"]).dir(&dir).expect_ok();
    let once = wait_up(&dir);
    assert_eq!(
        fs::read(dir.join(vigil_core::layout::STATUS)).unwrap()[17],
        0,
        "once: want byte 0"
    );
    send_signal(once, 9);
    wait_down(&dir);
    // Not restarted after a once run: no start is pending (the simulated-clock tests of the
    // machine prove a pending one would fire after its delay).
    let i = wait_info(&dir, "once run's exit in info", |i| i.pid == 0);
    assert_eq!(
        i.delay_ms, None,
        "a restart is pending after a once run: {i:?}"
    );
    assert_ne!(i.want, Some(Want::Up), "{i:?}");
    assert_eq!(read_status(&dir).unwrap().pid, 0);

    Svc::new(&sb).args(["-u"]).dir(&dir).expect_ok();
    wait_up(&dir);
    assert_eq!(read_status(&dir).unwrap().want, Want::Up);
}

#[test]
fn down_file_means_normally_down() {
    let sb = Sandbox::new("downfile");
    let dir = sb.service("s", "echo ran >> ../ran; exec sleep 1000");
    fs::write(dir.join("down"), "").unwrap();
    let _s = Supervise::new(&sb, &dir)
        .stderr_to(sb.path("supervise.err"))
        .start();
    let st = wait_status(&dir, "status", |_| true);
    assert_eq!(st.pid, 0);
    assert_eq!(st.want, Want::Down);
    // No start made and none pending (instead of watching for one for a while).
    let i = wait_info(&dir, "info", |_| true);
    assert_eq!((i.starts, i.delay_ms), (0, None), "{i:?}");
    assert!(!sb.path("ran").exists(), "run must not start with ./down");
    Svc::new(&sb).args(["-u"]).dir(&dir).expect_ok();
    wait_up(&dir);
}

#[test]
fn restarts_are_paced_but_never_blocking() {
    let sb = Sandbox::new("pace");
    let dir = sb.service("s", "date +%s%N >> ../starts; exit 1");
    let _s = Supervise::new(&sb, &dir)
        .stderr_to(sb.path("supervise.err"))
        .start();
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
    Svc::new(&sb).args(["-d"]).dir(&dir).expect_ok();
    let n = count_lines(&sb.path("starts"));
    // The service is down between its runs anyway: wait for the want to change.
    wait_status(&dir, "want down", |s| s.want == Want::Down && s.pid == 0);
    // The pending restart is cancelled: info shows no delay any more (the simulated-clock test
    // `commands_act_during_the_pause` proves that nothing starts after that).
    let i = wait_info(&dir, "down in info, no restart pending", |i| {
        i.pid == 0 && i.want == Some(Want::Down) && i.delay_ms.is_none()
    });
    let ran = count_lines(&sb.path("starts"));
    assert!(ran <= n + 1, "restarted after svc -d");
    assert_eq!(i.starts, ran as u64, "{i:?}");
}

#[test]
fn down_right_after_up_takes_effect_at_once() {
    let sb = Sandbox::new("updown");
    let dir = sb.service("s", "exec sleep 1000");
    fs::write(dir.join("down"), "").unwrap();
    let _s = Supervise::new(&sb, &dir)
        .stderr_to(sb.path("supervise.err"))
        .start();
    Svc::new(&sb).args(["-u"]).dir(&dir).expect_ok();
    let pid = wait_up(&dir);
    // The measured case: down 100 ms after up (daemontools sleeps a second after a start).
    std::thread::sleep(Duration::from_millis(100));
    let t0 = Instant::now();
    Svc::new(&sb).args(["-d"]).dir(&dir).expect_ok();
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
    let s = Supervise::new(&sb, &dir)
        .stderr_to(sb.path("supervise.err"))
        .start();
    // Supervise stays up, retries about once a second, and starts run once it appears.
    let dir_s = dir.display();
    let missing = format!("supervise: fatal: unable to start {dir_s}/run: file does not exist");
    wait_until(
        Duration::from_secs(5),
        "two reports of the missing run",
        || stderr_text(&sb).lines().filter(|l| *l == missing).count() >= 2,
    );
    assert!(alive(s.id()));
    write_script(&dir.join("run"), "exec sleep 1000");
    let pid = wait_up(&dir);
    assert!(pid != 0);
    let err = stderr_text(&sb);
    assert!(err.lines().all(|l| l == missing), "stderr: {err}");

    let sb = Sandbox::new("noexec");
    let dir = sb.path("s");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("run"), "#!/bin/sh\nexec sleep 1000\n").unwrap();
    let _s = Supervise::new(&sb, &dir)
        .stderr_to(sb.path("supervise.err"))
        .start();
    let denied = format!("unable to start {}/run: access denied", dir.display());
    wait_until(Duration::from_secs(5), "access denied reported", || {
        stderr_text(&sb).contains(&denied)
    });
}

#[test]
fn second_supervise_fails_on_the_lock() {
    let sb = Sandbox::new("lock");
    let dir = sb.service("s", "exec sleep 1000");
    let _s = Supervise::new(&sb, &dir)
        .stderr_to(sb.path("supervise.err"))
        .start();
    wait_up(&dir);
    let (code, _, err) = run_output(&mut Supervise::new(&sb, &dir).command());
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
    let mut s = Supervise::new(&sb, &dir)
        .stderr_to(sb.path("supervise.err"))
        .start();
    let pid = wait_up(&dir);
    // x, then p: once the pause shows, x has been handled too (control is read in order).
    Svc::new(&sb).args(["-x", "-p"]).dir(&dir).expect_ok();
    wait_status(&dir, "paused after x", |s| s.paused);
    Svc::new(&sb).args(["-c"]).dir(&dir).expect_ok();
    wait_status(&dir, "continued", |s| !s.paused);
    assert!(
        s.child.try_wait().unwrap().is_none(),
        "x alone must not stop the service"
    );
    assert!(alive(pid));
    Svc::new(&sb).args(["-dx"]).dir(&dir).expect_ok();
    assert_eq!(s.wait_exit(Duration::from_secs(10)), 0);
    assert!(!alive(pid));
    let (code, _, _) = run_output(sb.command(bin("svok")).arg(&dir));
    assert_eq!(code, 100);
}

#[test]
fn sigterm_brings_the_service_down_first() {
    let sb = Sandbox::new("sigterm");
    let dir = sb.service("s", "exec sleep 1000");
    let mut s = Supervise::new(&sb, &dir)
        .stderr_to(sb.path("supervise.err"))
        .start();
    let pid = wait_up(&dir);
    send_signal(s.id(), 15);
    assert_eq!(s.wait_exit(Duration::from_secs(10)), 0);
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
    assert_eq!(session_of(pid), Some(pid), "session id");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn no_setsid_keeps_the_process_group() {
    let sb = Sandbox::new("nosetsid");
    let dir = sb.service("s", "exec sleep 1000");
    fs::write(dir.join("no-setsid"), "").unwrap();
    let s = Supervise::new(&sb, &dir)
        .stderr_to(sb.path("supervise.err"))
        .start();
    let pid = wait_up(&dir);
    assert!(pgrp_of(pid).is_some());
    assert_eq!(pgrp_of(pid), pgrp_of(s.id()));
}

#[test]
fn idle_supervise_never_wakes_up() {
    let sb = Sandbox::new("idle");
    let dir = sb.service("s", "exec sleep 1000");
    let s = Supervise::new(&sb, &dir)
        .stderr_to(sb.path("supervise.err"))
        .start();
    wait_up(&dir);
    let switches = || ctxt_switches(s.id());
    // Settled once the count holds still for 200 ms (start-up writes are done).
    let mut before = switches();
    wait_until(Duration::from_secs(10), "supervise settled", || {
        std::thread::sleep(Duration::from_millis(200));
        let now = switches();
        std::mem::replace(&mut before, now) == now
    });
    // The measured window: a timer or poll would wake it within 3 s.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(switches() - before, 0, "idle supervise woke up");
}

#[test]
fn garbage_on_control_is_ignored() {
    let sb = Sandbox::new("garbage");
    let dir = sb.service("s", "exec sleep 1000");
    let _s = Supervise::new(&sb, &dir)
        .stderr_to(sb.path("supervise.err"))
        .start();
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
    let mut first = Supervise::new(&sb, &dir)
        .stderr_to(sb.path("supervise.err"))
        .start();
    let pid = wait_up(&dir);
    wait_until(Duration::from_secs(5), "run wrote its pid", || {
        count_lines(&sb.path("pids")) == 1
    });
    send_signal(first.id(), 9);
    first.wait_exit(Duration::from_secs(10));
    assert!(alive(pid), "the service outlives its supervise");

    let _second = Supervise::new(&sb, &dir)
        .stderr_to(sb.path("supervise.err"))
        .start();
    let info = read_info(&dir).unwrap();
    assert!(info.adopted, "{info:?}");
    assert_eq!(info.pid, pid);
    assert_eq!(
        info.delay_ms, None,
        "a start is pending beside the adopted run"
    );
    assert_eq!(read_status(&dir).unwrap().pid, pid);

    // Control works on the adopted process, and its end is noticed.
    Svc::new(&sb).args(["-d"]).dir(&dir).expect_ok();
    wait_down(&dir);
    assert!(!alive(pid));
    // Nothing was started between the adoption and the down.
    assert_eq!(
        lines(&sb.path("pids")),
        vec![pid.to_string()],
        "a second copy was started"
    );
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
    Svc::new(&sb).args(["-u"]).dir(&dir).expect_ok();
    let new = wait_up(&dir);
    assert_ne!(new, pid);
}

#[test]
fn a_reused_pid_is_not_adopted() {
    let sb = Sandbox::new("noadopt");
    let dir = sb.service("s", "echo $$ >> ../pids; exec sleep 1000");
    let mut first = Supervise::new(&sb, &dir)
        .stderr_to(sb.path("supervise.err"))
        .start();
    let run = wait_up(&dir);
    send_signal(first.id(), 9);
    first.wait_exit(Duration::from_secs(10));
    // The run ends too, and its pid goes to a process that is not the service's (outside its
    // cgroup): the record names that pid with the old run's start time.
    send_signal(run, 9);
    wait_until(Duration::from_secs(5), "the old run gone", || !alive(run));
    let stranger = spawn(sb.command("sleep").arg("1000"));
    let pid = stranger.id();
    let info = fs::read_to_string(dir.join(vigil_core::layout::INFO)).unwrap();
    let forged: String = info
        .lines()
        .map(|l| {
            if l.starts_with("pid=") {
                format!("pid={pid}")
            } else if l.starts_with("run_start=") {
                "run_start=1".to_owned()
            } else {
                l.to_owned()
            }
        })
        .map(|l| l + "\n")
        .collect();
    fs::write(dir.join(vigil_core::layout::INFO), forged).unwrap();
    let _second = Supervise::new(&sb, &dir)
        .stderr_to(sb.path("supervise.err"))
        .start();
    let new = wait_status(&dir, "a fresh run", |s| s.pid != 0 && s.pid != pid).pid;
    assert!(
        alive(pid),
        "a process that is not provably ours is left alone"
    );
    assert_ne!(new, pid);
    drop(stranger);
}

#[test]
fn history_records_starts_and_exits() {
    let sb = Sandbox::new("history");
    let dir = sb.service(
        "s",
        "test -e ../once && exec sleep 1000; touch ../once; exit 4",
    );
    let _s = Supervise::new(&sb, &dir)
        .stderr_to(sb.path("supervise.err"))
        .start();
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
        let sup = Supervise::new(&sb, &dir).stderr_to(&err).spawn();
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
        drop(sup);
        sb.kill_all();
    }
}
