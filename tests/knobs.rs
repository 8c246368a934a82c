//! The service-directory knobs beyond daemontools, with real processes: finish, readiness
//! (notification-fd and sd_notify), down-signal, timeout-kill, process-group signals, backoff,
//! max-restarts, and `supervise/info`.

use std::fs;
use std::time::{Duration, Instant};

use vigil_tests::*;

#[test]
fn finish_gets_exit_code_or_signal() {
    let sb = Sandbox::new("finish-args");
    let dir = sb.service(
        "s",
        "test -e ../second && exec sleep 1000; touch ../second; exit 3",
    );
    write_script(&dir.join("finish"), "echo \"$1 $2\" >> ../finished");
    let _p = Supervise::new(&sb, &dir).start();
    wait_until(Duration::from_secs(5), "finish after exit 3", || {
        count_lines(&sb.path("finished")) >= 1
    });
    assert_eq!(lines(&sb.path("finished"))[0], "3 0");
    let pid = wait_up(&dir);
    Svc::new(&sb).args(["-k"]).dir(&dir).expect_ok();
    wait_until(Duration::from_secs(5), "finish after kill", || {
        count_lines(&sb.path("finished")) >= 2
    });
    assert_eq!(lines(&sb.path("finished"))[1], "-1 9");
    assert!(!alive(pid));
}

#[test]
fn finish_runs_with_state_2_and_is_killed_after_its_timeout() {
    let sb = Sandbox::new("finish-timeout");
    let dir = sb.service("s", "exec sleep 1000");
    write_script(
        &dir.join("finish"),
        "echo $$ > ../finish.pid; exec sleep 1000",
    );
    fs::write(dir.join("timeout-finish"), "400\n").unwrap();
    let _p = Supervise::new(&sb, &dir).start();
    wait_up(&dir);
    let t0 = Instant::now();
    Svc::new(&sb).args(["-d"]).dir(&dir).expect_ok();
    let st = wait_status(&dir, "finish running", |s| s.state == RunState::Finish);
    assert_eq!(st.pid, 0, "pid is 0 while finish runs");
    assert_eq!(
        fs::read(dir.join(vigil_core::layout::STATUS)).unwrap()[19],
        2
    );
    let i = wait_info(&dir, "finish pid in info", |i| i.finish_pid != 0);
    wait_down(&dir);
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(350),
        "finish killed too early: {took:?}"
    );
    assert!(took < Duration::from_secs(3), "finish not killed: {took:?}");
    assert!(!alive(i.finish_pid));
}

#[test]
fn finish_exit_125_means_do_not_restart() {
    let sb = Sandbox::new("finish-125");
    let dir = sb.service("s", "echo x >> ../starts; exit 1");
    write_script(&dir.join("finish"), "exit 125");
    let _p = Supervise::new(&sb, &dir).start();
    let i = wait_info(&dir, "failed after finish 125", |i| i.failed);
    assert_eq!(i.want, Some(Want::Down));
    // No restart pending (the machine's simulated-clock tests prove a pending one fires).
    assert_eq!((i.starts, i.delay_ms), (1, None), "{i:?}");
    assert_eq!(
        count_lines(&sb.path("starts")),
        1,
        "restarted after finish said 125"
    );
}

#[test]
fn notification_fd_marks_ready_after_the_service_says_so() {
    let sb = Sandbox::new("notify-fd");
    let dir = sb.service(
        "s",
        "sleep 0.3; date +%s%N > ../mark; echo >&3; exec sleep 1000",
    );
    fs::write(dir.join("notification-fd"), "3\n").unwrap();
    let _p = Supervise::new(&sb, &dir).start();
    let pid = wait_up(&dir);
    let early = read_info(&dir).unwrap();
    assert_eq!(early.ready, None, "ready before the service said so");
    let i = wait_info(&dir, "ready", |i| i.ready.is_some());
    assert!(
        sb.path("mark").exists(),
        "ready recorded before the mark was written"
    );
    let mark: u128 = lines(&sb.path("mark"))[0].parse().unwrap();
    let ready = i
        .ready
        .unwrap()
        .to_system_time()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    assert!(
        ready + 1_000_000 >= mark,
        "ready time precedes the service's mark"
    );
    // The fd reached the run as fd 3 and nothing else leaked. sleep opens locale files for a
    // moment while it starts, so wait for its descriptors to settle: a leak would stay.
    let fds = settled_fds(pid, &["0", "1", "2", "3"]);
    let links: Vec<String> = fds
        .iter()
        .map(|f| format!("{f}->{:?}", fs::read_link(format!("/proc/{pid}/fd/{f}"))))
        .collect();
    assert_eq!(fds, vec!["0", "1", "2", "3"], "{links:?}");
    // Readiness belongs to one run: a restart clears it.
    Svc::new(&sb).args(["-k"]).dir(&dir).expect_ok();
    wait_status(&dir, "restarted", |s| s.pid != 0 && s.pid != pid);
    let i = read_info(&dir).unwrap();
    assert!(i.ready.is_none() || i.pid != pid);
}

#[test]
fn sd_notify_ready_and_status() {
    let sb = Sandbox::new("sd-notify");
    let dir = sb.service(
        "s",
        "python3 -c \"import os,socket,time; time.sleep(0.2); a=os.environ['NOTIFY_SOCKET']; a=(chr(0)+a[1:]) if a.startswith('@') else a; s=socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.sendto(b'STATUS=serving requests\\nREADY=1', a)\"\nexec sleep 1000",
    );
    fs::write(dir.join("notify-socket"), "").unwrap();
    let _p = Supervise::new(&sb, &dir).start();
    wait_up(&dir);
    let i = wait_info(&dir, "ready via sd_notify", |i| i.ready.is_some());
    assert_eq!(i.notify_status, "serving requests");
}

#[test]
fn down_signal_is_used_by_svc_d() {
    let sb = Sandbox::new("down-signal");
    let dir = sb.service(
        "s",
        "trap 'echo HUP > ../got; exit 0' HUP\ntouch ../trapped\nwhile :; do sleep 1000 & wait $!; done",
    );
    fs::write(dir.join("down-signal"), "HUP\n").unwrap();
    let _p = Supervise::new(&sb, &dir).start();
    wait_up(&dir);
    // The run says when its trap is set (a HUP before would simply end it).
    wait_until(Duration::from_secs(5), "trap set", || {
        sb.path("trapped").exists()
    });
    Svc::new(&sb).args(["-d"]).dir(&dir).expect_ok();
    wait_down(&dir);
    assert_eq!(lines(&sb.path("got")), vec!["HUP"]);
}

#[test]
fn timeout_kill_stops_a_service_that_ignores_term() {
    let sb = Sandbox::new("timeout-kill");
    let dir = sb.service(
        "s",
        "trap '' TERM\ntouch ./trapped\nwhile :; do sleep 1000 & wait $!; done",
    );
    fs::write(dir.join("timeout-kill"), "300\n").unwrap();
    let _p = Supervise::new(&sb, &dir).start();
    let pid = wait_up(&dir);
    // The run says when its trap is set (a TERM before would simply end it).
    let mark = dir.join("trapped");
    wait_until(Duration::from_secs(10), "trap set", || mark.exists());
    let t0 = Instant::now();
    Svc::new(&sb).args(["-d"]).dir(&dir).expect_ok();
    wait_down(&dir);
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(280),
        "killed before the timeout: {took:?}"
    );
    assert!(!alive(pid));
    // The whole group went: no sleep left behind.
    let left: Vec<u32> = sb
        .tagged_pids()
        .into_iter()
        .filter(|p| {
            fs::read_to_string(format!("/proc/{p}/cmdline")).is_ok_and(|c| c.starts_with("sleep"))
        })
        .collect();
    assert!(left.is_empty(), "grandchildren left: {left:?}");
}

#[test]
fn group_signals_reach_grandchildren() {
    let sb = Sandbox::new("group-kill");
    let dir = sb.service("s", "sleep 1000 & echo $! > ../grandchild\nwait");
    let _p = Supervise::new(&sb, &dir).start();
    let pid = wait_up(&dir);
    wait_until(Duration::from_secs(5), "grandchild", || {
        sb.path("grandchild").exists() && count_lines(&sb.path("grandchild")) == 1
    });
    let gc: u32 = lines(&sb.path("grandchild"))[0].parse().unwrap();
    // Plain -d signals the pid only (daemontools), but the service is shown down only once
    // nothing of it is left: the grandchild, left behind, gets the signal once the pid is gone
    // (a deliberate difference from daemontools, which leaves it running).
    Svc::new(&sb).args(["-d"]).dir(&dir).expect_ok();
    wait_down(&dir);
    assert!(
        !alive(gc),
        "down is shown only once the grandchild is gone too"
    );
    Svc::new(&sb).args(["-u"]).dir(&dir).expect_ok();
    let pid2 = wait_status(&dir, "up again", |s| s.pid != 0 && s.pid != pid).pid;
    wait_until(Duration::from_secs(5), "second grandchild", || {
        lines(&sb.path("grandchild"))
            .first()
            .is_some_and(|l| l.parse::<u32>().unwrap() != gc)
    });
    let gc2: u32 = lines(&sb.path("grandchild"))[0].parse().unwrap();
    // +k: KILL to the whole process group.
    Svc::new(&sb).args(["-+k"]).dir(&dir).expect_ok();
    wait_until(Duration::from_secs(5), "grandchild and run killed", || {
        !alive(gc2) && !alive(pid2)
    });
}

#[test]
fn backoff_grows_and_svc_u_overrides_it() {
    let sb = Sandbox::new("backoff");
    let dir = sb.service("s", "date +%s%N >> ../starts; exit 1");
    fs::write(dir.join("backoff-max"), "4000\n").unwrap();
    let _p = Supervise::new(&sb, &dir).start();
    wait_until(Duration::from_secs(15), "four starts", || {
        count_lines(&sb.path("starts")) >= 4
    });
    let t: Vec<u128> = lines(&sb.path("starts"))
        .iter()
        .map(|l| l.parse().unwrap())
        .collect();
    let gaps: Vec<u128> = t.windows(2).map(|w| (w[1] - w[0]) / 1_000_000).collect();
    for (gap, want) in gaps.iter().zip([1000u128, 2000, 4000]) {
        assert!(*gap >= want - 50 && *gap < want + 600, "gaps {gaps:?}");
    }
    let i = wait_info(&dir, "delay pending", |i| i.delay_ms.is_some());
    assert!(i.quick_deaths >= 3);
    let n = count_lines(&sb.path("starts"));
    Svc::new(&sb).args(["-u"]).dir(&dir).expect_ok();
    wait_until(Duration::from_millis(500), "svc -u starts at once", || {
        count_lines(&sb.path("starts")) > n
    });
}

#[test]
fn max_restarts_gives_up_and_says_so() {
    let sb = Sandbox::new("max-restarts");
    let dir = sb.service("s", "echo x >> ../starts; exit 1");
    fs::write(dir.join("max-restarts"), "2 60000\n").unwrap();
    let _p = Supervise::new(&sb, &dir).start();
    let i = wait_info(&dir, "failed", |i| i.failed);
    assert_eq!(i.want, Some(Want::Down));
    assert_eq!(
        count_lines(&sb.path("starts")),
        3,
        "first start + 2 restarts"
    );
    // info is written just before status: wait for status to catch up.
    wait_status(&dir, "status says want down", |s| {
        s.want == Want::Down && s.pid == 0
    });
    // Given up: no restart pending (instead of watching 1.2 s for one).
    let i = read_info(&dir).unwrap();
    assert_eq!((i.starts, i.delay_ms), (3, None), "{i:?}");
    assert_eq!(count_lines(&sb.path("starts")), 3);
    Svc::new(&sb).args(["-u"]).dir(&dir).expect_ok();
    wait_info(&dir, "failure cleared by svc -u", |i| {
        !i.failed && i.starts >= 1
    });
}

#[test]
fn info_tells_starts_and_last_exit() {
    let sb = Sandbox::new("info");
    let dir = sb.service(
        "s",
        "test -e ../once && exec sleep 1000; touch ../once; exit 7",
    );
    let _p = Supervise::new(&sb, &dir).start();
    let i = wait_info(&dir, "second start", |i| i.starts == 2 && i.pid != 0);
    assert_eq!(
        i.exit,
        Some(vigil_core::info::ExitKindText::Known(
            vigil_core::machine::ExitKind::Code(7)
        ))
    );
    assert!(i.started.is_some() && i.exited.is_some());
    assert_eq!(i.state, Some(RunState::Run));
    wait_status(&dir, "status shows the same pid", |s| s.pid == i.pid);
}
