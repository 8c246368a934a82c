//! The fault suite: what users' machines do to a supervision tree, done to ours. SIGKILL of
//! supervise and of svscan at random moments, garbage on the control FIFO, corrupt status and
//! info files, a full filesystem under `supervise/`, a low descriptor limit for svscan, fork
//! failures, hostile service directories, zombies during a crash loop.
//!
//! For each: no crash, no second copy of a service (by pid and by counting live processes that
//! mark themselves as that service's run), a message naming the service, recovery once the
//! fault is gone, and a status that tells the truth. Every test prints its figures as
//! `fault-figure: NAME = VALUE` lines; `scripts/faults` collects them.
//!
//! Knobs (environment): `VIGIL_FAULT_KILLS` (default 20) kills per kill test,
//! `VIGIL_FAULT_CRASH_SECS` (default 5; the figure is 30) for the crash loop,
//! `VIGIL_FAULT_SEED` to replay the random moments of a run.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::fs;
use std::io::Write;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vigil_tests::*;

// ---------------------------------------------------------------------------------------------
// Helpers

/// A small xorshift generator: the moments of each run are random, and replayable by seed.
struct Rng(u64);

impl Rng {
    fn new(test: &str) -> Rng {
        let seed = std::env::var("VIGIL_FAULT_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        eprintln!("{test}: VIGIL_FAULT_SEED={seed}");
        Rng(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn millis(&mut self, max: u64) -> Duration {
        Duration::from_millis(self.below(max + 1))
    }
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn figure(name: &str, value: impl std::fmt::Display) {
    eprintln!("fault-figure: {name} = {value}");
}

/// A run script that marks itself as service `n`'s run twice over: its pid appended to `runs`
/// in the service directory, and `sleep 20n` as its command line.
fn marked_run(n: u32) -> String {
    format!("echo $$ >> runs\nexec sleep {}", marker(n))
}

fn marker(n: u32) -> u32 {
    20_000 + n
}

/// Live copies of service `n`'s run: pids from its `runs` file that are alive and still carry
/// the marker, and every tagged process with the marker (the larger of the two counts).
fn copies(sb: &Sandbox, dir: &Path, n: u32) -> usize {
    let needle = format!("sleep {}", marker(n));
    let by_file = lines(&dir.join("runs"))
        .iter()
        .filter_map(|l| l.trim().parse::<u32>().ok())
        .filter(|&p| alive(p) && cmdline(p).contains(&needle))
        .count();
    by_file.max(sb.procs(&needle).len())
}

/// Waits (a run may be between its start and its exec) until exactly one copy of service `n`
/// runs, failing at once if two ever do.
fn one_copy(sb: &Sandbox, dir: &Path, n: u32) {
    wait_until(Duration::from_secs(5), "one copy of the run", || {
        let c = copies(sb, dir, n);
        assert!(c <= 1, "{c} copies of {}", dir.display());
        c == 1
    });
}

fn svstat(sb: &Sandbox, dir: &Path) -> String {
    let (code, out, err) = run_output(sb.command(bin("svstat")).arg(dir));
    assert_eq!(code, 0, "svstat crashed or failed: {err}");
    out
}

/// Zombies whose parent is one of `parents`.
fn zombies_of(parents: &[u32]) -> Vec<u32> {
    all_pids()
        .into_iter()
        .filter(|&p| {
            proc_state(p) == Some('Z') && parent_of(p).is_some_and(|pp| parents.contains(&pp))
        })
        .collect()
}

fn count_in(path: &Path, needle: &str) -> usize {
    fs::read_to_string(path)
        .unwrap_or_default()
        .matches(needle)
        .count()
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// A scan directory with `n` marked services `s0…`, every `log_every`-th with a logger.
fn scan_dir(sb: &Sandbox, n: u32, log_every: u32) -> (PathBuf, Vec<PathBuf>) {
    let stage = sb.path("stage");
    let mut dirs = Vec::new();
    for i in 0..n {
        let d = stage.join(format!("s{i}"));
        fs::create_dir_all(&d).unwrap();
        write_script(&d.join("run"), &marked_run(i));
        if log_every > 0 && i % log_every == 0 {
            fs::create_dir_all(d.join("log")).unwrap();
            write_script(&d.join("log/run"), "exec cat > /dev/null");
        }
    }
    let scan = sb.path("scan");
    fs::rename(&stage, &scan).unwrap();
    for i in 0..n {
        dirs.push(scan.join(format!("s{i}")));
    }
    (scan, dirs)
}

// ---------------------------------------------------------------------------------------------
// SIGKILL of supervise

#[test]
fn supervise_sigkill_at_random_moments() {
    let kills = env_num("VIGIL_FAULT_KILLS", 20);
    let mut rng = Rng::new("supervise_sigkill_at_random_moments");
    let sb = Sandbox::new("faults-supkill");
    let (scan, dirs) = scan_dir(&sb, 1, 1);
    let dir = &dirs[0];
    let err = sb.path("svscan.err");
    let svscan = Svscan::new(&sb, &scan).stderr_to(&err).start();
    let first = wait_up(dir);
    let mut duplicates = 0;
    let mut samples = 0;
    let mut times = Vec::new();
    let sample = |samples: &mut u32, duplicates: &mut u32| {
        *samples += 1;
        if copies(&sb, dir, 0) > 1 {
            *duplicates += 1;
        }
    };
    for i in 0..kills {
        let sup = wait_for(Duration::from_secs(10), "one supervise s0", || {
            let s = sb.procs("supervise s0");
            (s.len() == 1 && is_supervised(dir)).then(|| s[0])
        });
        // The kill lands at a random moment, sampled for duplicates meanwhile.
        watch_for(rng.millis(300), Duration::from_millis(3), || {
            sample(&mut samples, &mut duplicates)
        });
        // Every third kill lands just after a restart of the run: mid-fork, before the new
        // run's pid is recorded, or while it execs.
        if i % 3 == 2 {
            control(dir, b"t");
            // The random moment is the point: no state marks "mid-fork".
            std::thread::sleep(rng.millis(15));
        }
        let t0 = Instant::now();
        send_signal(sup, 9);
        wait_until(
            Duration::from_secs(10),
            "status up from a new supervise",
            || {
                sample(&mut samples, &mut duplicates);
                let s = sb.procs("supervise s0");
                s.len() == 1
                    && s[0] != sup
                    && is_supervised(dir)
                    && read_status(dir).is_some_and(|st| st.pid != 0 && alive(st.pid))
            },
        );
        times.push(t0.elapsed());
    }
    // Half a second of watching for a second copy after the last recovery.
    watch_for(
        Duration::from_millis(500),
        Duration::from_millis(10),
        || sample(&mut samples, &mut duplicates),
    );
    let runs = lines(&dir.join("runs"));
    let kept = read_status(dir).unwrap().pid;
    let max = times.iter().max().copied().unwrap_or_default();
    let med = median(&mut times);
    figure("supervise kills", kills);
    figure(
        "duplicate runs seen after supervise kills (samples)",
        format!("{duplicates} of {samples}"),
    );
    figure(
        "time from supervise kill to status up again (median, max)",
        format!("{:.2} s, {:.2} s", med.as_secs_f64(), max.as_secs_f64()),
    );
    figure(
        "runs started (restarts asked with svc -t included)",
        runs.len(),
    );
    assert_eq!(duplicates, 0, "a second copy of the service ran");
    one_copy(&sb, dir, 0);
    // Only the restarts asked for start a run; the kills are all survived by adoption.
    assert!(
        runs.len() as u64 <= 1 + kills / 3,
        "runs started: {runs:?} (first {first}, now {kept})"
    );
    assert_eq!(count_in(&err, "unable to acquire"), 0);
    drop(svscan);
}

// ---------------------------------------------------------------------------------------------
// SIGKILL of svscan

#[test]
fn svscan_sigkill_at_random_moments() {
    let kills = env_num("VIGIL_FAULT_KILLS", 20);
    let mut rng = Rng::new("svscan_sigkill_at_random_moments");
    let sb = Sandbox::new("faults-scankill");
    let (scan, dirs) = scan_dir(&sb, 5, 2);
    let mut errs = Vec::new();
    let mut duplicates = 0;
    let check = |duplicates: &mut u32| {
        for (i, d) in dirs.iter().enumerate() {
            if copies(&sb, d, i as u32) > 1 {
                *duplicates += 1;
            }
            let name = format!("supervise s{i}");
            let found: Vec<u32> = sb
                .procs(&name)
                .into_iter()
                .filter(|&p| cmdline(p).trim_end() == name)
                .collect();
            // A supervise's own child between its clone and the exec of ./run still shows the
            // supervise's command line: it is not a second supervisor.
            let mains = found
                .iter()
                .filter(|&&p| parent_of(p).is_none_or(|pp| !found.contains(&pp)))
                .count();
            if mains > 1 {
                *duplicates += 1;
            }
        }
    };
    let mut lived = Duration::ZERO;
    for k in 0..kills {
        let err = sb.path(&format!("svscan-{k}.err"));
        let t0 = Instant::now();
        let child = Svscan::new(&sb, &scan).stderr_to(&err).start();
        errs.push(err);
        // Random moments: from svscan's first instant to well after everything is up.
        let span = rng.millis(if k % 2 == 0 { 60 } else { 1500 });
        watch_for(span, Duration::from_millis(5), || check(&mut duplicates));
        drop(child);
        lived += t0.elapsed();
    }
    let err = sb.path("svscan-last.err");
    let t0 = Instant::now();
    let last = Svscan::new(&sb, &scan).stderr_to(&err).start();
    errs.push(err.clone());
    for d in &dirs {
        wait_until(Duration::from_secs(10), "all up after the restarts", || {
            is_supervised(d) && read_status(d).is_some_and(|s| s.pid != 0)
        });
    }
    let up_after = t0.elapsed();
    // Three seconds of watching for a second copy once all is up again.
    watch_for(Duration::from_secs(3), Duration::from_millis(20), || {
        check(&mut duplicates)
    });
    lived += t0.elapsed();
    let failed: usize = errs.iter().map(|e| count_in(e, "unable to acquire")).sum();
    let found = sb.procs("supervise log");
    // Not counting a supervise's own child between its clone and the exec of ./run.
    let log_sups = found
        .iter()
        .filter(|&&p| parent_of(p).is_none_or(|pp| !found.contains(&pp)))
        .count();
    figure("svscan kills", kills);
    figure(
        "failed supervise starts after svscan restarts",
        format!(
            "{failed} in {:.1} s of svscan life ({:.2}/s)",
            lived.as_secs_f64(),
            failed as f64 / lived.as_secs_f64()
        ),
    );
    figure(
        "duplicate supervise/run seen after svscan kills",
        duplicates,
    );
    figure(
        "all up after the last svscan start",
        format!("{:.2} s", up_after.as_secs_f64()),
    );
    assert_eq!(failed, 0, "supervise processes started to die on the lock");
    assert_eq!(duplicates, 0);
    assert_eq!(log_sups, 3, "one log supervise per logged service");
    for (i, d) in dirs.iter().enumerate() {
        one_copy(&sb, d, i as u32);
    }
    // The survivor still runs the tree: a supervise killed now is replaced.
    let sup = sb.procs("supervise s1");
    send_signal(sup[0], 9);
    wait_until(Duration::from_secs(10), "s1's supervise replaced", || {
        let s = sb.procs("supervise s1");
        s.len() == 1 && s[0] != sup[0] && is_supervised(&dirs[1])
    });
    drop(last);
}

// ---------------------------------------------------------------------------------------------
// Garbage on the control FIFO

#[test]
fn garbage_on_control_fifo() {
    let mut rng = Rng::new("garbage_on_control_fifo");
    let sb = Sandbox::new("faults-garbage");
    let dir = sb.service("svc", &marked_run(0));
    let mut sup = Supervise::new(&sb, &dir)
        .stderr_to(sb.path("supervise.err"))
        .spawn();
    let pid = wait_up(&dir);
    // Bytes that are no command at all: garbage, not a flood of valid letters.
    let mut garbage = Vec::with_capacity(100_000);
    while garbage.len() < 100_000 {
        let b = rng.next() as u8;
        if vigil_core::control::Command::from_byte(b).is_none() {
            garbage.push(b);
        }
    }
    let mut fifo = fs::OpenOptions::new()
        .write(true)
        .open(dir.join(vigil_core::layout::CONTROL))
        .unwrap();
    let t0 = Instant::now();
    fifo.write_all(&garbage).unwrap();
    wait_until(Duration::from_secs(10), "control FIFO drained", || {
        rustix::io::ioctl_fionread(&fifo).unwrap() == 0
    });
    let drained = t0.elapsed();
    figure(
        "10^5 garbage bytes drained in",
        format!("{:.3} s", drained.as_secs_f64()),
    );
    assert!(sup.child.try_wait().unwrap().is_none(), "supervise died");
    let st = read_status(&dir).unwrap();
    assert_eq!(st.pid, pid, "service restarted by garbage");
    assert!(alive(pid));
    assert!(svstat(&sb, &dir).contains(&format!("up (pid {pid})")));
    Svc::new(&sb).arg("-d").dir(&dir).expect_ok();
    wait_down(&dir);
    assert!(!alive(pid) || is_zombie(pid));
    assert_eq!(copies(&sb, &dir, 0), 0);
    Svc::new(&sb).arg("-u").dir(&dir).expect_ok();
    wait_up(&dir);
    one_copy(&sb, &dir, 0);
}

// ---------------------------------------------------------------------------------------------
// Corrupt status and info

/// Waits until supervise has stopped rewriting `status` (a change can take more than one write:
/// down, then the pace's end), so a corruption is not overwritten before it is looked at.
fn settle(dir: &Path) {
    let status = dir.join(vigil_core::layout::STATUS);
    let mut last = fs::read(&status).ok();
    wait_until(Duration::from_secs(10), "status settled", || {
        // Settled = unchanged over 300 ms: there is no "done writing" to wait for.
        std::thread::sleep(Duration::from_millis(300));
        let now = fs::read(&status).ok();
        let same = now == last;
        last = now;
        same && read_status(dir).is_some_and(|s| s.want != Want::Up || s.pid != 0)
    });
}

#[test]
fn corrupt_status_and_info_are_refused_then_rewritten() {
    let mut rng = Rng::new("corrupt_status_and_info");
    let sb = Sandbox::new("faults-corrupt");
    let dir = sb.service("svc", &marked_run(0));
    let _sup = Supervise::new(&sb, &dir)
        .stderr_to(sb.path("supervise.err"))
        .spawn();
    wait_up(&dir);
    settle(&dir);
    let status = dir.join(vigil_core::layout::STATUS);
    let info = dir.join(vigil_core::layout::INFO);
    let random_invalid = |rng: &mut Rng, len: usize| loop {
        let b: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if Status::unpack(&b).is_err() {
            return b;
        }
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        (
            "truncated to 10 bytes",
            fs::read(&status).unwrap()[..10].to_vec(),
        ),
        (
            "truncated to 17 bytes",
            fs::read(&status).unwrap()[..17].to_vec(),
        ),
        ("20 random bytes", random_invalid(&mut rng, 20)),
        ("4096 random bytes", random_invalid(&mut rng, 4096)),
    ];
    let mut up = true;
    for (what, bytes) in cases {
        fs::write(&status, &bytes).unwrap();
        let out = svstat(&sb, &dir);
        assert!(
            out.contains("unable to read supervise/status: bad format"),
            "{what}: svstat printed {out:?}"
        );
        // The next change rewrites it, truthfully.
        Svc::new(&sb)
            .arg(if up { "-d" } else { "-u" })
            .dir(&dir)
            .expect_ok();
        up = !up;
        let out = wait_for(Duration::from_secs(10), "status rewritten", || {
            let o = svstat(&sb, &dir);
            let want = if up { ": up (pid " } else { ": down " };
            o.contains(want).then_some(o)
        });
        if up {
            let pid = read_status(&dir).unwrap().pid;
            assert!(out.contains(&format!("up (pid {pid})")) && alive(pid));
        }
        assert!(copies(&sb, &dir, 0) <= 1);
        settle(&dir);
    }
    for (what, bytes) in [
        ("truncated", b"version=1\nsta".to_vec()),
        ("random", random_invalid(&mut rng, 300)),
    ] {
        fs::write(&info, &bytes).unwrap();
        let (code, out, err) = run_output(sb.command(bin("svstat")).arg("-l").arg(&dir));
        assert_eq!(code, 0, "svstat -l on {what} info: {err}");
        let st = read_status(&dir).unwrap();
        assert!(
            out.lines().next().unwrap_or("").contains(if st.pid != 0 {
                ": up "
            } else {
                ": down "
            }),
            "{what}: {out}"
        );
        Svc::new(&sb)
            .arg(if up { "-d" } else { "-u" })
            .dir(&dir)
            .expect_ok();
        up = !up;
        wait_until(Duration::from_secs(10), "info rewritten", || {
            fs::read_to_string(&info).is_ok_and(|t| {
                t.starts_with("version=1\n")
                    && t.contains(if up { "state=run" } else { "state=down" })
            })
        });
        settle(&dir);
    }
    figure(
        "corrupt status and info: refused then rewritten",
        "5 status, 2 info cases",
    );
}

// ---------------------------------------------------------------------------------------------
// Hostile service directories

/// Runs `cmd` as an unprivileged throwaway uid (root ignores permissions), keeping the tag.
fn as_user(sb: &Sandbox, uid: u32, program: &Path) -> Command {
    let mut c = sb.command("setpriv");
    c.arg(format!("--reuid={uid}"))
        .arg(format!("--regid={uid}"))
        .arg("--clear-groups")
        .arg(program);
    c
}

fn chown_tree(path: &Path, uid: u32) {
    let st = Command::new("chown")
        .arg("-R")
        .arg(format!("{uid}:{uid}"))
        .arg(path)
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn hostile_service_dirs() {
    let sb = Sandbox::new("faults-hostile");
    let stage = sb.path("stage");
    fs::create_dir_all(&stage).unwrap();
    let mk = |name: &str, n: u32| {
        let d = stage.join(name);
        fs::create_dir_all(&d).unwrap();
        write_script(&d.join("run"), &marked_run(n));
        d
    };
    mk("good", 0);
    mk("sp ace", 1);
    mk("new\nline", 2);
    fs::create_dir_all(stage.join("runisdir/run")).unwrap();
    symlink("loop", stage.join("loop")).unwrap();
    mk("noperm", 3);
    fs::write(stage.join("plainfile"), "").unwrap();
    symlink("nowhere", stage.join("dangling")).unwrap();
    let scan = sb.path("scan");
    fs::rename(&stage, &scan).unwrap();
    let runisdir = scan.join("runisdir");
    let uid = if is_root() { Some(61_000) } else { None };
    if let Some(uid) = uid {
        chown_tree(&scan, uid);
        // Owned by root, mode 0700: the unprivileged svscan and supervise cannot enter.
        Command::new("chown")
            .arg("0:0")
            .arg(scan.join("noperm"))
            .status()
            .unwrap();
    }
    fs::set_permissions(scan.join("noperm"), fs::Permissions::from_mode(0o700)).unwrap();
    let err = sb.path("svscan.err");
    let mut cmd = match uid {
        Some(uid) => as_user(&sb, uid, &bin("svscan")),
        None => sb.command(bin("svscan")),
    };
    let mut svscan = cmd
        .arg(&scan)
        .stderr(fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let good = scan.join("good");
    let good_pid = wait_up(&good);
    wait_up(&scan.join("sp ace"));
    wait_up(&scan.join("new\nline"));
    // Every bad entry named, and retried at least once (a second message for each retried
    // one): the retries are what might kill svscan, so they must have happened.
    let mut named = vec![("runisdir/run", 2), ("loop", 1)];
    if uid.is_some() {
        named.push(("noperm", 2));
    }
    wait_until(
        Duration::from_secs(10),
        "bad entries named and retried",
        || named.iter().all(|&(n, times)| count_in(&err, n) >= times),
    );
    assert!(svscan.try_wait().unwrap().is_none(), "svscan died");
    let text = fs::read_to_string(&err).unwrap();
    assert!(
        !text.contains("rescanning every"),
        "inotify given up: {text}"
    );
    for name in ["runisdir/run", "loop"] {
        assert!(text.contains(name), "no message naming {name}: {text}");
    }
    if uid.is_some() {
        assert!(text.contains("noperm"), "no message naming noperm: {text}");
    }
    assert_eq!(
        read_status(&good).unwrap().pid,
        good_pid,
        "good service disturbed"
    );
    // Each supervise keeps its service; nothing runs twice.
    for (i, name) in ["good", "sp ace", "new\nline"].iter().enumerate() {
        one_copy(&sb, &scan.join(name), i as u32);
    }
    // Faults removed: everything comes up, the good service untouched.
    fs::remove_dir(runisdir.join("run")).unwrap();
    write_script(&runisdir.join("run"), &marked_run(4));
    fs::remove_file(scan.join("loop")).unwrap();
    if let Some(uid) = uid {
        chown_tree(&scan.join("noperm"), uid);
        chown_tree(&runisdir, uid);
    }
    fs::set_permissions(scan.join("noperm"), fs::Permissions::from_mode(0o755)).unwrap();
    let t0 = Instant::now();
    wait_up(&runisdir);
    wait_up(&scan.join("noperm"));
    figure(
        "hostile dirs: all up after the faults were removed",
        format!("{:.2} s", t0.elapsed().as_secs_f64()),
    );
    assert_eq!(read_status(&good).unwrap().pid, good_pid);
    one_copy(&sb, &runisdir, 4);
    one_copy(&sb, &scan.join("noperm"), 3);
    assert!(svscan.try_wait().unwrap().is_none(), "svscan died");
    send_signal(svscan.id(), 9);
    let _ = svscan.wait();
}

// ---------------------------------------------------------------------------------------------
// Zombies during a crash loop

#[test]
fn no_zombies_during_a_crash_loop() {
    let secs = env_num("VIGIL_FAULT_CRASH_SECS", 5);
    let sb = Sandbox::new("faults-zombies");
    let stage = sb.path("stage");
    let mk = |name: &str, run: &str| {
        let d = stage.join(name);
        fs::create_dir_all(&d).unwrap();
        write_script(&d.join("run"), run);
        d
    };
    mk("crash", "exit 3");
    let f = mk("crashfinish", "sleep 0.1; exit 1");
    write_script(&f.join("finish"), "exit 0");
    // Leaves orphans behind (reparented to svscan, a subreaper) on every run.
    mk("orphans", "sleep 0.2 & sleep 0.3 &\nsleep 0.1\nexit 1");
    let l = mk("crashlog", "echo hi; exit 2");
    fs::create_dir_all(l.join("log")).unwrap();
    write_script(&l.join("log/run"), "head -c 10 > /dev/null; exit 1");
    let scan = sb.path("scan");
    fs::rename(&stage, &scan).unwrap();
    let err = sb.path("svscan.err");
    let svscan = Svscan::new(&sb, &scan).stderr_to(&err).start();
    let me = svscan.id();
    wait_until(Duration::from_secs(10), "supervise processes up", || {
        sb.procs("supervise").len() >= 5
    });
    let end = Instant::now() + Duration::from_secs(secs);
    let (mut samples, mut seen, mut lasting) = (0, 0, 0);
    let mut previous: Vec<u32> = Vec::new();
    while Instant::now() < end {
        let mut parents = sb.procs("supervise");
        parents.push(me);
        let z = zombies_of(&parents);
        samples += 1;
        seen += z.len();
        // A zombie caught in the microseconds between an exit and its reaping is not a leak;
        // one still there 100 ms later is.
        lasting += z.iter().filter(|p| previous.contains(p)).count();
        previous = z;
        // The sampling interval is part of the measure (a zombie lasting 100 ms).
        std::thread::sleep(Duration::from_millis(100));
    }
    figure(
        &format!("zombies during a {secs} s crash loop (lasting ≥100 ms; caught at all)"),
        format!("{lasting}; {seen} in {samples} samples"),
    );
    assert_eq!(lasting, 0, "zombies left unreaped");
    drop(svscan);
}

// ---------------------------------------------------------------------------------------------
// Full filesystem under supervise/

/// A tmpfs mounted on a path; unmounted when dropped, whatever happened.
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(path: &Path, size: &str) -> Option<Mount> {
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(path)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Mount(path.to_owned()))
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.0)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

/// Fills the filesystem holding `dir` with `dir/fill`; returns its size.
fn fill(dir: &Path) -> u64 {
    let mut f = fs::File::create(dir.join("fill")).unwrap();
    let block = vec![0u8; 4096];
    let mut n = 0;
    while f.write_all(&block).is_ok() {
        n += 4096;
    }
    n
}

#[test]
fn full_filesystem_under_supervise() {
    if !root_or_skip("full_filesystem_under_supervise", "mounting a tmpfs") {
        return;
    }
    let sb = Sandbox::new("faults-diskfull");
    let dir = sb.service("svc", &marked_run(0));
    let sdir = dir.join("supervise");
    fs::create_dir_all(&sdir).unwrap();
    let mount = Mount::tmpfs(&sdir, "64k").expect("mount tmpfs");
    let err = sb.path("supervise.err");
    let mut sup = Supervise::new(&sb, &dir).stderr_to(&err).spawn();
    let pid = wait_up(&dir);
    let filled = fill(&sdir);
    // Changes while the disk is full: supervise keeps supervising and says why status is old.
    Svc::new(&sb).arg("-d").dir(&dir).expect_ok();
    wait_until(Duration::from_secs(10), "service down", || !alive(pid));
    Svc::new(&sb).arg("-u").dir(&dir).expect_ok();
    let pid2 = wait_for(Duration::from_secs(10), "service up again", || {
        sb.procs(&format!("sleep {}", marker(0))).first().copied()
    });
    wait_until(Duration::from_secs(5), "warning", || {
        count_in(&err, "unable to write") > 0
    });
    let text = fs::read_to_string(&err).unwrap();
    assert!(
        text.contains(&format!("unable to write {}/supervise/", dir.display())),
        "{text}"
    );
    assert!(sup.child.try_wait().unwrap().is_none(), "supervise died");
    one_copy(&sb, &dir, 0);
    // Space returns: status tells the truth again within its retry (about a second), without
    // waiting for another change.
    fs::remove_file(sdir.join("fill")).unwrap();
    let st = wait_status(&dir, "status rewritten once space returned", |s| {
        s.pid == pid2
    });
    assert!(alive(st.pid));
    // And later changes are written as usual.
    Svc::new(&sb).arg("-t").dir(&dir).expect_ok();
    let st = wait_status(&dir, "status after a restart", |s| {
        s.pid != 0 && s.pid != pid && s.pid != pid2
    });
    assert!(alive(st.pid));
    one_copy(&sb, &dir, 0);
    figure(
        "full filesystem under supervise/",
        format!("filled {filled} bytes; supervise kept the service, warned, rewrote status"),
    );
    drop(sup);
    drop(mount);
}

// ---------------------------------------------------------------------------------------------
// Low RLIMIT_NOFILE for svscan

fn prlimit_pid(pid: u32, what: &str) -> bool {
    Command::new("prlimit")
        .arg("--pid")
        .arg(pid.to_string())
        .arg(what)
        .status()
        .is_ok_and(|s| s.success())
}

/// The soft limit `name` (as `/proc/PID/limits` words it) of a process.
fn soft_limit(pid: u32, name: &str) -> String {
    fs::read_to_string(format!("/proc/{pid}/limits"))
        .unwrap()
        .lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l[name.len()..].split_whitespace().next().map(str::to_owned))
        .unwrap()
}

/// The hard limit `name` of a process.
fn hard_limit(pid: u32, name: &str) -> String {
    fs::read_to_string(format!("/proc/{pid}/limits"))
        .unwrap()
        .lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l[name.len()..].split_whitespace().nth(1).map(str::to_owned))
        .unwrap()
}

/// svscan raises its soft descriptor limit to the hard one at start, and raising a hard limit
/// needs CAP_SYS_RESOURCE (absent in containers): so the soft limit is lowered to 30 once svscan
/// runs, 40 services arrive, and the limit is then given back.
#[test]
fn low_nofile_limit_for_svscan() {
    let sb = Sandbox::new("faults-nofile");
    let stage = sb.path("stage");
    let scan = sb.path("scan");
    fs::create_dir_all(&scan).unwrap();
    let mut dirs = Vec::new();
    for i in 0..40 {
        let d = stage.join(format!("s{i}"));
        fs::create_dir_all(&d).unwrap();
        write_script(&d.join("run"), &marked_run(i));
        if i % 2 == 0 {
            fs::create_dir_all(d.join("log")).unwrap();
            write_script(&d.join("log/run"), "exec cat > /dev/null");
        }
        dirs.push(scan.join(format!("s{i}")));
    }
    let first = sb.service("scan/first", "exec sleep 1000");
    let err = sb.path("svscan.err");
    let svscan = Svscan::new(&sb, &scan).stderr_to(&err).start();
    let me = svscan.id();
    wait_up(&first);
    let normal = soft_limit(me, "Max open files");
    // Low enough to be hit: svscan holds one descriptor per logged service (20 here) beside
    // its own few, and a start takes two more for a moment.
    assert!(prlimit_pid(me, "--nofile=20:"), "prlimit");
    for (i, d) in dirs.iter().enumerate() {
        fs::rename(stage.join(format!("s{i}")), d).unwrap();
    }
    wait_until(Duration::from_secs(10), "svscan hits the limit", || {
        count_in(&err, "cannot open more files") > 0
    });
    // A bounded window under the fault: svscan keeps trying for 2 s and must not die of it
    // (its retries leave no state to wait on beyond the first warning).
    std::thread::sleep(Duration::from_millis(2000));
    assert!(alive(me), "svscan died");
    let up_limited = dirs
        .iter()
        .filter(|d| read_status(d).is_some_and(|s| s.pid != 0))
        .count();
    let text = fs::read_to_string(&err).unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with("svscan: warning: ") && l.contains(" s")),
        "no warning naming a service: {text}"
    );
    assert!(prlimit_pid(me, &format!("--nofile={normal}:")), "prlimit");
    let t0 = Instant::now();
    for d in &dirs {
        wait_until(
            Duration::from_secs(15),
            "all up after the limit was lifted",
            || read_status(d).is_some_and(|s| s.pid != 0),
        );
    }
    for d in dirs.iter().step_by(2) {
        wait_until(Duration::from_secs(15), "loggers up", || {
            read_status(&d.join("log")).is_some_and(|s| s.pid != 0)
        });
    }
    figure(
        "RLIMIT_NOFILE 20 for svscan, 40 services (20 logged)",
        format!(
            "{up_limited} up under the limit, all up {:.2} s after it was lifted, {} warnings",
            t0.elapsed().as_secs_f64(),
            count_in(&err, "svscan: warning")
        ),
    );
    for (i, d) in dirs.iter().enumerate() {
        one_copy(&sb, d, i as u32);
    }
    assert!(alive(me));
    drop(svscan);
}

// ---------------------------------------------------------------------------------------------
// Fork failures (RLIMIT_NPROC)

#[test]
fn fork_failures_under_rlimit_nproc() {
    if !root_or_skip(
        "fork_failures_under_rlimit_nproc",
        "RLIMIT_NPROC is tested as a throwaway uid",
    ) {
        return;
    }
    // RLIMIT_NPROC does not bind root: svscan runs as a uid nobody else uses, limited to 8
    // processes, for 6 services that need 13.
    let uid = 61_001;
    let sb = Sandbox::new("faults-nproc");
    let (scan, dirs) = scan_dir(&sb, 6, 0);
    chown_tree(&scan, uid);
    let err = sb.path("svscan.err");
    let mut cmd = sb.command("prlimit");
    cmd.arg("--nproc=8:")
        .arg("setpriv")
        .arg(format!("--reuid={uid}"))
        .arg(format!("--regid={uid}"))
        .arg("--clear-groups")
        .arg(bin("svscan"))
        .arg(&scan)
        .stderr(fs::File::create(&err).unwrap());
    let svscan = cmd.spawn().unwrap();
    let me = svscan.id();
    wait_until(Duration::from_secs(10), "a fork failure reported", || {
        count_in(&err, "temporary failure") + count_in(&err, "resource") > 0
    });
    // A bounded window under the fault: svscan keeps trying for 1.5 s and must not die of it.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(alive(me), "svscan died");
    let text = fs::read_to_string(&err).unwrap();
    assert!(
        text.lines().any(
            |l| (l.contains("temporary failure") || l.contains("resource"))
                && (l.contains("/s") || l.contains(" s"))
        ),
        "no message naming a service: {text}"
    );
    let up_limited = dirs
        .iter()
        .filter(|d| read_status(d).is_some_and(|s| s.pid != 0))
        .count();
    for (i, d) in dirs.iter().enumerate() {
        assert!(copies(&sb, d, i as u32) <= 1, "s{i}");
    }
    let hard = hard_limit(std::process::id(), "Max processes");
    // Lift the (soft) limit everywhere it was inherited, as that uid: another uid's limits
    // need CAP_SYS_RESOURCE.
    for p in sb.tagged_pids() {
        let _ = Command::new("setpriv")
            .arg(format!("--reuid={uid}"))
            .arg(format!("--regid={uid}"))
            .arg("--clear-groups")
            .args([
                "prlimit",
                "--pid",
                &p.to_string(),
                &format!("--nproc={hard}:"),
            ])
            .stderr(Stdio::null())
            .status();
    }
    let t0 = Instant::now();
    for d in &dirs {
        wait_until(
            Duration::from_secs(15),
            "all up after the limit was lifted",
            || read_status(d).is_some_and(|s| s.pid != 0),
        );
    }
    figure(
        "RLIMIT_NPROC 8, 6 services needing 13 processes",
        format!(
            "{up_limited} up under the limit, all up {:.2} s after it was lifted",
            t0.elapsed().as_secs_f64()
        ),
    );
    for (i, d) in dirs.iter().enumerate() {
        one_copy(&sb, d, i as u32);
    }
    drop(svscan);
}
