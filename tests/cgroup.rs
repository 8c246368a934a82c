//! Issue 13's building blocks in vigil-sys, against the real kernel: a service cgroup under
//! `vigil/` that holds every process of a run (double forks and setsid included), is watched
//! empty after `cgroup.kill` and removed; limits refused without their controller; descendants
//! found through `/proc`; a subreaper keeping a double-forked daemon.
//!
//! The cgroup tests need a writable cgroup2 hierarchy (root, usually) and print SKIP without
//! one. Each makes a cgroup with a name unique to the test and process, and a guard kills and
//! removes it however the test ends.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::os::fd::AsFd;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use vigil_core::cgroup::Limit;
use vigil_sys::cgroup::{self, Hierarchy, ServiceCgroup};
use vigil_sys::{process, spawn};
use vigil_tests::*;

const LIMIT: Duration = Duration::from_secs(5);

/// The hierarchy, or `None` after a visible SKIP line.
fn hierarchy(test: &str) -> Option<Hierarchy> {
    let h = Hierarchy::find();
    if h.is_none() {
        skip(
            test,
            "no writable cgroup2 hierarchy (needs root and cgroup2)",
        );
    }
    h
}

/// A cgroup name no other test or run uses.
fn unique_name(test: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    format!("test-{test}.{}.{n}", std::process::id())
}

/// A service cgroup that is killed, waited empty and removed when dropped, with the children
/// of ours started into it (reaped on drop).
struct Guard {
    cg: ServiceCgroup,
    children: Vec<u32>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.cg.kill();
        poll_until(LIMIT, || !self.cg.populated().unwrap_or(false));
        for &pid in &self.children {
            // Ours and not yet reaped, so the pid is still that process: safe to kill by pid
            // (needed when it never joined the cgroup).
            let _ = process::signal(pid, 9, false);
            let _ = process::wait_for(pid);
        }
        let _ = self.cg.remove();
    }
}

impl Guard {
    /// Starts `sh -c script` in the cgroup (moving itself there through `cgroup.procs`), tagged
    /// for the sandbox's clean-up; reaped on drop.
    fn start_sh(&mut self, sb: &Sandbox, script: &str) -> u32 {
        let procs = self.cg.open_procs().unwrap();
        let tag = sb.root.display().to_string();
        let opts = spawn::Spawn {
            cgroup_procs: Some(procs.as_fd()),
            env: vec![(OsStr::new("VIGIL_TEST_TAG"), OsStr::new(&tag))],
            ..spawn::Spawn::default()
        };
        let pid = spawn::spawn(
            OsStr::new("sh"),
            &[OsStr::new("-c"), OsStr::new(script)],
            opts,
        )
        .unwrap();
        self.children.push(pid);
        pid
    }
}

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

fn sorted(v: impl IntoIterator<Item = u32>) -> BTreeSet<u32> {
    v.into_iter().collect()
}

#[test]
fn a_service_cgroup_holds_every_process_and_is_watched_empty_after_kill() {
    let test = "a_service_cgroup_holds_every_process_and_is_watched_empty_after_kill";
    let Some(h) = hierarchy(test) else { return };
    let sb = Sandbox::new("cgroup-all");
    let name = unique_name("all");
    let mut g = Guard {
        cg: ServiceCgroup::open_or_create(&h, &name).unwrap(),
        children: Vec::new(),
    };
    let dir = h.subtree().join(&name);
    assert!(dir.join("cgroup.procs").exists(), "{}", dir.display());
    assert_eq!(g.cg.path(), dir);
    // A successor finds the same cgroup: open_or_create reuses, open does not create.
    let again = ServiceCgroup::open_or_create(&h, &name).unwrap();
    assert_eq!(again.path(), g.cg.path());
    drop(again);
    assert_eq!(g.cg.count().unwrap(), 0);
    assert!(!g.cg.populated().unwrap());

    // Watched, not polled: the events fd wakes when the first process joins and when the
    // last has gone.
    let events = g.cg.watch_events().unwrap();
    assert!(
        !events.wait_change(Some(Duration::ZERO)).unwrap(),
        "events fd ready with no change"
    );
    assert!(!events.populated().unwrap());

    let main = g.start_sh(&sb, "sleep 100 & setsid sleep 100 & exec sleep 100");
    assert!(
        events.wait_change(Some(LIMIT)).unwrap(),
        "no wakeup on join"
    );
    assert!(events.populated().unwrap());

    // Settled: sh has exec'd sleep and both background sleeps run (whatever setsid(1) does).
    let kids = wait_for(LIMIT, "the run to settle", || {
        let kids = process::descendants(main);
        (comm(main) == "sleep" && kids.len() >= 2 && kids.iter().all(|&k| comm(k) == "sleep"))
            .then_some(kids)
    });
    // Exactly the run and everything below it, computed from /proc.
    let expected = sorted(std::iter::once(main).chain(kids.iter().copied()));
    assert_eq!(sorted(g.cg.pids().unwrap()), expected);
    assert_eq!(g.cg.count().unwrap(), expected.len());
    eprintln!("cgroup {name}: {} processes {expected:?}", expected.len());
    // One of them left the session: the cgroup holds it all the same, and so does descendants().
    let setsid = kids
        .iter()
        .copied()
        .find(|&k| process::parent_and_session(k).map(|(_, s)| s) == Some(k))
        .expect("a process that leads its own session");
    assert!(process::descendants(process::own_pid()).contains(&setsid));
    assert!(g.cg.populated().unwrap());
    // Not removable while populated.
    let busy = g.cg.remove().unwrap_err();
    assert_eq!(busy.raw_os_error(), Some(16), "{busy}"); // EBUSY
    assert!(dir.exists());

    assert!(
        !events.wait_change(Some(Duration::ZERO)).unwrap(),
        "events fd ready with no change"
    );
    let start = Instant::now();
    g.cg.kill().unwrap();
    let deadline = start + LIMIT;
    let mut wakeups = 0;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "populated still 1 after {LIMIT:?}");
        if events.wait_change(Some(left)).unwrap() {
            wakeups += 1;
            if !events.populated().unwrap() {
                break;
            }
        }
    }
    eprintln!(
        "populated 0 seen {:?} after cgroup.kill ({wakeups} wakeup(s))",
        start.elapsed()
    );
    assert_eq!(g.cg.count().unwrap(), 0);
    // Zombies do not hold the cgroup: removable before the run is reaped.
    assert!(is_zombie(main));
    g.cg.remove().unwrap();
    assert!(!dir.exists(), "{} left behind", dir.display());
    assert!(
        !h.subtree()
            .read_dir()
            .map(|d| d.flatten().any(|e| e.file_name() == name.as_str()))
            .unwrap_or(false)
    );
    let status = process::wait_for(main).unwrap();
    assert_eq!(status & 0x7f, 9, "run not killed by SIGKILL: {status:#x}");
    g.children.clear();
    for k in kids {
        assert!(!alive(k), "pid {k} survived cgroup.kill");
    }
    // ServiceCgroup::open finds nothing now (and creates nothing).
    assert!(ServiceCgroup::open(&h, &name).is_err());
    assert!(!dir.exists());
}

#[test]
fn signal_all_reaches_every_process_of_the_cgroup() {
    let Some(h) = hierarchy("signal_all_reaches_every_process_of_the_cgroup") else {
        return;
    };
    let sb = Sandbox::new("cgroup-signal");
    let mut g = Guard {
        cg: ServiceCgroup::open_or_create(&h, &unique_name("signal")).unwrap(),
        children: Vec::new(),
    };
    let main = g.start_sh(&sb, "setsid sleep 100 & exec sleep 100");
    wait_until(LIMIT, "two sleeps in the cgroup", || {
        let pids = g.cg.pids().unwrap_or_default();
        pids.len() == 2 && pids.iter().all(|&p| comm(p) == "sleep")
    });
    let events = g.cg.watch_events().unwrap();
    g.cg.signal_all(15).unwrap();
    let deadline = Instant::now() + LIMIT;
    while events.populated().unwrap() {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "TERM to each did not empty the cgroup");
        events.wait_change(Some(left)).unwrap();
    }
    assert_eq!(process::wait_for(main).unwrap() & 0x7f, 15);
    g.children.clear();
}

#[test]
fn limits_without_their_controller_are_refused_as_not_available() {
    let Some(h) = hierarchy("limits_without_their_controller_are_refused_as_not_available") else {
        return;
    };
    let g = Guard {
        cg: ServiceCgroup::open_or_create(&h, &unique_name("limits")).unwrap(),
        children: Vec::new(),
    };
    let offered = std::fs::read_to_string(h.subtree().join("cgroup.controllers")).unwrap();
    let offered: Vec<&str> = offered.split_whitespace().collect();
    for (limit, value, readback) in [
        (Limit::MemoryMax, &b"100M"[..], "104857600"),
        (Limit::PidsMax, b"42", "42"),
    ] {
        let r = g.cg.set_limit(limit, value);
        if offered.contains(&limit.controller()) {
            r.unwrap();
            let file = g.cg.path().join(limit.file());
            assert_eq!(std::fs::read_to_string(file).unwrap().trim(), readback);
            let bad = g.cg.set_limit(limit, b"lots").unwrap_err();
            assert!(!cgroup::is_not_available(&bad), "{bad}");
        } else {
            let e = r.unwrap_err();
            assert!(cgroup::is_not_available(&e), "{limit:?}: {e}");
            assert_eq!(vigil_sys::diag::reason(&e), "controller not available");
            eprintln!(
                "{limit:?}: controller {} not offered here",
                limit.controller()
            );
        }
    }
    assert_eq!(
        g.cg.memory_current().is_some(),
        offered.contains(&"memory"),
        "memory.current present iff memory is enabled"
    );
}

#[test]
fn a_failed_join_comes_back_as_the_spawn_error_and_nothing_runs() {
    let sb = Sandbox::new("cgroup-join");
    let marker = sb.path("ran");
    let script = format!("touch {}", marker.display());
    let try_spawn = |fd: std::os::fd::BorrowedFd<'_>| {
        let opts = spawn::Spawn {
            cgroup_procs: Some(fd),
            ..spawn::Spawn::default()
        };
        spawn::spawn(
            OsStr::new("sh"),
            &[OsStr::new("-c"), OsStr::new(&script)],
            opts,
        )
    };
    // Not writable: EBADF from the child's write.
    let ro = std::fs::File::open("/dev/null").unwrap();
    let e = try_spawn(ro.as_fd()).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(9), "{e}"); // EBADF
    // A cgroup removed after its procs file was opened: the kernel refuses the join.
    if let Some(h) = hierarchy("a_failed_join_comes_back_as_the_spawn_error (removed cgroup)") {
        let cg = ServiceCgroup::open_or_create(&h, &unique_name("join")).unwrap();
        let procs = cg.open_procs().unwrap();
        cg.remove().unwrap();
        let e = try_spawn(procs.as_fd()).unwrap_err();
        eprintln!("join of a removed cgroup: {e}");
        assert!(e.raw_os_error().is_some(), "{e}");
    }
    assert!(!marker.exists(), "the child ran after a failed join");
}

#[test]
fn hierarchy_choice_and_service_names() {
    assert!(Hierarchy::choose(Some(OsStr::new("off"))).is_none());
    // Not a cgroup2 directory: refused, nothing written there.
    let sb = Sandbox::new("cgroup-names");
    assert!(Hierarchy::choose(Some(sb.root.as_os_str())).is_none());
    assert!(!sb.root.join("vigil").exists());
    if let Some(h) = Hierarchy::find() {
        let again = Hierarchy::choose(Some(h.root().as_os_str())).unwrap();
        assert_eq!(again.root(), h.root());
    } else {
        skip(
            "hierarchy_choice_and_service_names",
            "no cgroup2: the override part did not run",
        );
    }
    let a = sb.path("web server");
    let b = sb.path("db");
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let na = cgroup::service_name(&a).unwrap();
    assert_eq!(na, cgroup::service_name(&a).unwrap());
    assert_eq!(na, cgroup::service_name(&a.join(".")).unwrap());
    assert!(na.starts_with("web_server."), "{na}");
    assert!(cgroup::service_name(&b).unwrap().starts_with("db."));
    assert_ne!(na, cgroup::service_name(&b).unwrap());
    assert!(cgroup::service_name(Path::new("/nonexistent/vigil")).is_err());
}

#[test]
fn descendants_include_a_setsid_grandchild() {
    let sb = Sandbox::new("descendants");
    let pidfile = sb.path("grandchild");
    let script = format!(
        "setsid sleep 100 & echo $! > {}.new && mv {0}.new {0}; wait",
        pidfile.display()
    );
    let sh = spawn(sb.command("sh").args(["-c", &script]));
    let grandchild: u32 = wait_for(LIMIT, "the grandchild's pid", || {
        std::fs::read_to_string(&pidfile).ok()?.trim().parse().ok()
    });
    wait_until(LIMIT, "the grandchild to be sleep", || {
        comm(grandchild) == "sleep"
    });
    // Once sh has reaped its mv, the grandchild is its only child.
    wait_until(LIMIT, "sh's only child to be the grandchild", || {
        process::children_of(sh.id()) == vec![grandchild]
    });
    assert_eq!(process::descendants(sh.id()), vec![grandchild]);
    let mine = process::descendants(process::own_pid());
    assert!(
        mine.contains(&sh.id()) && mine.contains(&grandchild),
        "{mine:?}"
    );
    assert!(process::children_of(process::own_pid()).contains(&sh.id()));
    assert!(!process::children_of(process::own_pid()).contains(&grandchild));
    assert!(process::descendants(grandchild).is_empty());
    send_signal(grandchild, 9);
    wait_until(LIMIT, "the grandchild gone", || {
        !process::descendants(sh.id()).contains(&grandchild)
    });
}

/// The environment variable telling the helper below where to report.
const HELPER_OUT: &str = "VIGIL_TEST_SUBREAPER_OUT";

#[test]
fn a_double_forked_daemon_is_reparented_to_its_subreaper() {
    let sb = Sandbox::new("subreaper");
    let out = sb.path("report");
    let exe = std::env::current_exe().unwrap();
    let mut helper = sb
        .command(&exe)
        .args([
            "--ignored",
            "--exact",
            "subreaper_helper",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HELPER_OUT, &out)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let helper_pid = helper.id();
    let code = wait_exit(&mut helper, Duration::from_secs(10));
    assert_eq!(code, 0, "helper failed");
    let report = std::fs::read_to_string(&out).unwrap();
    let nums: Vec<u32> = report
        .split_whitespace()
        .map(|w| w.parse().unwrap())
        .collect();
    let [subreaper, orphan, parent] = nums[..] else {
        panic!("report: {report:?}")
    };
    assert_eq!(subreaper, helper_pid);
    assert_eq!(
        parent, subreaper,
        "the orphan went to {parent}, not the subreaper"
    );
    assert!(
        !alive(orphan),
        "the helper left its orphan {orphan} running"
    );
}

/// Run by the test above in a process of its own (so the test runner never becomes a
/// subreaper): marks itself a subreaper, lets `sh` double-fork a sleep, and reports
/// `OWN_PID ORPHAN ORPHANS_PARENT` once sh is gone, then kills and reaps the orphan itself.
#[test]
#[ignore = "helper process of a_double_forked_daemon_is_reparented_to_its_subreaper"]
fn subreaper_helper() {
    let out = std::env::var_os(HELPER_OUT).expect("run by the subreaper test");
    let out = Path::new(&out);
    process::become_subreaper().unwrap();
    let pidfile = out.with_extension("orphan");
    let script = format!("sleep 100 & echo $! > {}", pidfile.display());
    let sh = spawn::spawn(
        OsStr::new("sh"),
        &[OsStr::new("-c"), OsStr::new(&script)],
        spawn::Spawn::default(),
    )
    .unwrap();
    assert_eq!(process::wait_for(sh).unwrap(), 0);
    let orphan: u32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // sh has exited and been reaped: the orphan's parent is whoever adopted it.
    let parent = process::parent_of(orphan).unwrap();
    assert!(process::descendants(process::own_pid()).contains(&orphan));
    std::fs::write(out, format!("{} {orphan} {parent}\n", process::own_pid())).unwrap();
    process::signal(orphan, 9, false).unwrap();
    assert_eq!(process::wait_for(orphan).unwrap() & 0x7f, 9);
}

#[test]
fn a_child_given_the_cgroup_directory_is_born_in_it() {
    let test = "a_child_given_the_cgroup_directory_is_born_in_it";
    let Some(h) = hierarchy(test) else { return };
    let name = unique_name("born");
    let mut g = Guard {
        cg: ServiceCgroup::open_or_create(&h, &name).unwrap(),
        children: Vec::new(),
    };
    // No cgroup.procs to write: only clone3's CLONE_INTO_CGROUP can put it there (on a kernel
    // or architecture without it, spawn falls back to the write, which has no fd here).
    let opts = spawn::Spawn {
        cgroup_dir: Some(g.cg.dir_fd()),
        ..spawn::Spawn::default()
    };
    let pid = spawn::spawn(OsStr::new("sleep"), &[OsStr::new("100")], opts).unwrap();
    g.children.push(pid);
    let pids = g.cg.pids().unwrap();
    if cfg!(target_arch = "x86_64") {
        assert_eq!(pids, vec![pid], "born in the cgroup");
    } else {
        skip(test, "clone3 into a cgroup is used on x86_64 only");
    }
    // It exec'd: sleep, not a copy of us.
    wait_until(LIMIT, "sleep running", || comm(pid) == "sleep");
}
