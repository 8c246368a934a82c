//! The run-script helpers against Debian's: setuidgid, envuidgid, envdir, softlimit, setlock,
//! pgrphack, readproctitle (daemontools) and chpst (runit). Each case runs the same command
//! line through `/usr/bin/NAME` and through ours, in the same directory with the same
//! environment, and compares exit code, stdout and stderr; the programs they exec print the
//! observable state (`id`, /proc/self/status, `env`, /proc/self/limits, /proc/self/stat,
//! /proc/self/fd). Then two run scripts use them under our svscan.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use vigil_tests::*;

const PATH: &str = "/usr/bin:/bin:/usr/sbin:/sbin";
/// Prints uid, gid and groups as the kernel has them.
const SHOW_IDS: &str = "grep -E '^(Uid|Gid|Groups)' /proc/self/status; id";
/// Prints 1 1 when this shell leads its own process group and session.
const SHOW_PGRP: &str = "read pid comm state ppid pgrp sid rest < /proc/self/stat; \
     echo $((pid == pgrp)) $((pid == sid))";

/// SKIPs (visibly) unless root: uid changes and locks as another user need it.
fn need_root(test: &str) -> bool {
    root_or_skip(test, "uid changes and locks as another user")
}

/// One command line through `prog` in `dir`, with a small fixed environment.
fn run(dir: &Path, prog: &Path, args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(prog);
    cmd.args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", PATH)
        .env("KEEP", "kept")
        .env("EMPTY", "was set")
        .env("A", "old")
        .stdin(Stdio::null());
    run_output(&mut cmd)
}

/// Lines sorted, so `env` output compares whatever order each program builds the environment.
fn sorted(text: &str) -> String {
    let mut v: Vec<&str> = text.lines().collect();
    v.sort_unstable();
    v.join("\n")
}

/// Runs every case through Debian's `name` and ours; panics listing every difference. Returns
/// how many cases ran.
fn compare(dir: &Path, name: &str, cases: &[&[&str]]) -> usize {
    let theirs = require_peer(name);
    let ours = bin(name);
    let mut diffs = Vec::new();
    for args in cases {
        let mut a = run(dir, &theirs, args);
        let mut b = run(dir, &ours, args);
        a.1 = sorted(&a.1);
        b.1 = sorted(&b.1);
        if a != b {
            diffs.push(format!("{name} {args:?}\n  debian: {a:?}\n  vigil:  {b:?}"));
        }
    }
    assert!(
        diffs.is_empty(),
        "{} differences:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
    eprintln!("{name}: {} cases identical to Debian's", cases.len());
    cases.len()
}

fn env_dir(sb: &Sandbox, name: &str, files: &[(&str, &[u8])]) -> PathBuf {
    let d = sb.path(name);
    fs::create_dir_all(&d).unwrap();
    for (k, v) in files {
        fs::write(d.join(k), v).unwrap();
    }
    d
}

#[test]
fn setuidgid_matches_daemontools() {
    if !need_root("setuidgid_matches_daemontools") {
        return;
    }
    let sb = Sandbox::new("h-setuidgid");
    let parent = format!("test $PPID = {} && echo exec-in-place", std::process::id());
    compare(
        &sb.root,
        "setuidgid",
        &[
            &[],
            &["nobody"],
            &["nosuchaccount", "true"],
            &["nobody", "/nonexistent/prog"],
            &["nobody", "id"],
            &["nobody", "sh", "-c", SHOW_IDS],
            &["root", "sh", "-c", SHOW_IDS],
            &["daemon", "sh", "-c", SHOW_IDS],
            &["nobody", "sh", "-c", &parent],
            &["nobody", "sh", "-c", "exit 7"],
            &["nobody", "setuidgid", "root", "true"],
            &["nobody", "sh", "-c", "ls /proc/self/fd"],
        ],
    );
}

#[test]
fn envuidgid_matches_daemontools() {
    let sb = Sandbox::new("h-envuidgid");
    compare(
        &sb.root,
        "envuidgid",
        &[
            &[],
            &["nobody"],
            &["nosuchaccount", "env"],
            &["nobody", "env"],
            &["daemon", "env"],
            &["nobody", "/nonexistent/prog"],
            &["nobody", "sh", "-c", "id -u; exit 3"],
        ],
    );
}

#[test]
fn envdir_matches_daemontools() {
    let sb = Sandbox::new("h-envdir");
    env_dir(
        &sb,
        "e",
        &[
            ("NEW", b"value  \t\nsecond line"),
            ("A", b"new"),
            ("EMPTY", b""),
            ("BLANK", b"\n"),
            ("NUL", b"a\0b\0 \t"),
            ("K=V", b"x"),
            (".hidden", b"no"),
            ("SPACES", b"  lead"),
        ],
    );
    env_dir(&sb, "withsub/sub", &[]);
    fs::write(sb.path("withsub/X"), "1").unwrap();
    let locked = env_dir(&sb, "locked", &[("X", b"1")]);
    fs::set_permissions(locked.join("X"), fs::Permissions::from_mode(0o000)).unwrap();
    let closed = env_dir(&sb, "closed", &[("X", b"1")]);
    fs::set_permissions(&closed, fs::Permissions::from_mode(0o700)).unwrap();
    let search_only = env_dir(&sb, "searchonly", &[("X", b"1")]);
    fs::set_permissions(&search_only, fs::Permissions::from_mode(0o711)).unwrap();
    env_dir(&sb, "path", &[("PATH", b"/nonexistent")]);
    let mut cases: Vec<&[&str]> = vec![
        &[],
        &["e"],
        &["e", "env"],
        &["/nonexistent", "env"],
        &["e/NEW", "env"],
        &["withsub", "env"],
        &["e", "/nonexistent/prog"],
        &["path", "env"],
        &["path", "sh", "-c", "echo $PATH"],
        &["e", "sh", "-c", "exit 9"],
    ];
    if is_root() {
        // Read as nobody, the file (mode 000) and the directory (0700, root's) are refused.
        cases.push(&["-c", "exec /usr/bin/setuidgid nobody \"$0\" locked env"]);
        cases.push(&["-c", "exec /usr/bin/setuidgid nobody \"$0\" closed env"]);
        cases.push(&["-c", "exec /usr/bin/setuidgid nobody \"$0\" searchonly env"]);
    } else {
        skip(
            "envdir_matches_daemontools",
            "its permission cases need root (the rest ran)",
        );
    }
    // The permission cases run the program through sh -c, as $0: rewrite them per side.
    let theirs = require_peer("envdir");
    let ours = bin("envdir");
    let (plain, through_sh): (Vec<&[&str]>, Vec<&[&str]>) =
        cases.into_iter().partition(|c| c.first() != Some(&"-c"));
    let mut n = compare(&sb.root, "envdir", &plain);
    for c in through_sh {
        let side = |p: &Path| {
            let mut args = c.to_vec();
            let prog = p.to_str().unwrap();
            args.insert(2, prog);
            run(&sb.root, Path::new("/bin/sh"), &args)
        };
        assert_eq!(side(&theirs), side(&ours), "envdir {c:?}");
        n += 1;
    }
    eprintln!("envdir: {n} cases in all");
}

#[test]
fn softlimit_matches_daemontools() {
    let sb = Sandbox::new("h-softlimit");
    let limits = ["cat", "/proc/self/limits"];
    let with = |opts: &[&'static str]| -> Vec<&'static str> {
        let mut v = opts.to_vec();
        v.extend(limits);
        v
    };
    let every = with(&[
        "-a",
        "1000000000",
        "-c",
        "0",
        "-d",
        "900000000",
        "-f",
        "1000000",
        "-l",
        "65536",
        "-o",
        "50",
        "-p",
        "=",
        "-r",
        "123456789",
        "-s",
        "1000000",
        "-t",
        "5",
    ]);
    let m = with(&["-m", "200000000"]);
    let hard = with(&["-m", "=", "-o", "=", "-c", "="]);
    // Beyond 2^64 daemontools wraps and vigil saturates (see vigil_core::limit); under a finite
    // hard limit both end at the hard limit.
    let above = with(&["-o", "99999999999", "-p", "99999999999999999999999"]);
    let order = with(&["-m", "300000000", "-d", "100000000"]);
    compare(
        &sb.root,
        "softlimit",
        &[
            &[],
            &["-m", "100"],
            &["-m"],
            &["-z", "true"],
            &["-m", "x", "true"],
            &["-m", "12x", "true"],
            &["-o", "-5", "true"],
            &["-o", "+5", "true"],
            &["-o", " 5", "true"],
            &["-o", "5", "/nonexistent/prog"],
            &["-o", "5", "--", "sh", "-c", "ulimit -n"],
            &every,
            &m,
            &hard,
            &above,
            &order,
            &["-t", "1", "sh", "-c", "exit 4"],
        ],
    );
}

/// Waits until `pid` is queued behind a held flock (its `->` line in /proc/locks).
fn wait_blocked_on_lock(pid: u32) {
    wait_until(
        Duration::from_secs(10),
        "a process waiting on the lock",
        || {
            fs::read_to_string("/proc/locks")
                .unwrap()
                .lines()
                .any(|l| l.contains("->") && l.split_whitespace().nth(5) == Some(&pid.to_string()))
        },
    );
}

#[test]
fn setlock_matches_daemontools() {
    let sb = Sandbox::new("h-setlock");
    let lk = sb.path("lk");
    let mut n = compare(
        &sb.root,
        "setlock",
        &[
            &[],
            &["lk"],
            &["-n"],
            &["-z", "lk", "true"],
            &["/nonexistent/dir/lk", "true"],
            &["-x", "/nonexistent/dir/lk", "true"],
            &["-xX", "/nonexistent/dir/lk", "true"],
            &["-Xx", "/nonexistent/dir/lk", "true"],
            &["lk", "/nonexistent/prog"],
            &["-x", "lk", "/nonexistent/prog"],
            &["lk", "sh", "-c", "ls /proc/self/fd; exit 5"],
            &["lk", "sh", "-c", "stat -c '%a %s' lk"],
        ],
    );
    // The lock is held here (std's File::lock is flock): -n gives up, -nx quietly.
    let holder = fs::OpenOptions::new().append(true).open(&lk).unwrap();
    holder.try_lock().unwrap();
    n += compare(
        &sb.root,
        "setlock",
        &[
            &["-n", "lk", "true"],
            &["-nx", "lk", "true"],
            &["-Nn", "lk", "true"],
            &["-n", "lk", "/nonexistent/prog"],
        ],
    );
    // Without -n both wait for the holder, then run.
    for (side, prog) in [
        ("debian", require_peer("setlock")),
        ("vigil", bin("setlock")),
    ] {
        let mark = sb.path(&format!("ran-{side}"));
        let mut child = spawn(
            sb.command(&prog)
                .current_dir(&sb.root)
                .args(["lk", "touch"])
                .arg(&mark),
        );
        wait_blocked_on_lock(child.id());
        assert!(!mark.exists(), "{side} setlock ran while the lock was held");
        holder.unlock().unwrap();
        wait_until(Duration::from_secs(10), "the waiter to run", || {
            mark.exists()
        });
        assert!(child.child.wait().unwrap().success());
        holder.lock().unwrap();
        n += 1;
    }
    eprintln!("setlock: {n} cases in all");
}

#[test]
fn pgrphack_matches_daemontools() {
    let sb = Sandbox::new("h-pgrphack");
    let parent = format!("test $PPID = {} && echo exec-in-place", std::process::id());
    compare(
        &sb.root,
        "pgrphack",
        &[
            &[],
            &["/nonexistent/prog"],
            &["sh", "-c", SHOW_PGRP],
            &["sh", "-c", &parent],
            &["pgrphack", "sh", "-c", SHOW_PGRP],
            &["sh", "-c", "exit 6"],
        ],
    );
    // Control: without pgrphack the shell leads nothing, so the probe can tell.
    let (_, out, _) = run(&sb.root, Path::new("/bin/sh"), &["-c", SHOW_PGRP]);
    assert_eq!(out.trim(), "0 0");
}

/// The arguments of `pid` after argv[0], NULs shown as `|`.
fn args_of(pid: u32) -> String {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let text: String = raw
        .iter()
        .map(|&b| if b == 0 { '|' } else { char::from(b) })
        .collect();
    text.split_once('|')
        .map(|(_, rest)| rest.to_string())
        .unwrap_or_default()
}

#[test]
fn readproctitle_matches_daemontools() {
    let sb = Sandbox::new("h-readproctitle");
    let mut n = compare(
        &sb.root,
        "readproctitle",
        &[
            &[],
            &["...."],
            &["....."],
            &["a", "b", "....."],
            &["x", "...x."],
        ],
    );
    let feeds: [&[u8]; 3] = [
        b"ab",
        b"fatal error xyz\nwarn\0ing abc\n",
        b"0123456789012345678901234",
    ];
    for args in [
        &["io", "errors:", "...................."][..],
        &["..x.x.x"][..],
    ] {
        let mut seen = Vec::new();
        for prog in [require_peer("readproctitle"), bin("readproctitle")] {
            let mut p = spawn(sb.command(&prog).args(args).stdin(Stdio::piped()));
            let pid = p.id();
            let mut titles = vec![];
            let dots = ".".repeat(args.last().unwrap().len());
            let mut first: Vec<&str> = args.to_vec();
            *first.last_mut().unwrap() = &dots;
            let first = format!("{}|", first.join("|"));
            wait_until(
                Duration::from_secs(10),
                "the title filled with dots",
                || args_of(pid) == first,
            );
            titles.push(args_of(pid));
            let mut stdin = p.child.stdin.take().unwrap();
            let mut sent: Vec<u8> = Vec::new();
            for feed in feeds {
                stdin.write_all(feed).unwrap();
                sent.extend(feed.iter().filter(|&&b| b != 0));
                let d = args.last().unwrap().len();
                let keep = d - 3;
                let tail = &sent[sent.len().saturating_sub(keep)..];
                let tail: String = tail.iter().map(|&b| char::from(b)).collect();
                wait_until(
                    Duration::from_secs(10),
                    "the title to show the input",
                    || args_of(pid).ends_with(&format!("{tail}|")),
                );
                titles.push(args_of(pid));
            }
            drop(stdin);
            let code = p.child.wait().unwrap().code();
            titles.push(format!("exit {code:?}"));
            seen.push(titles);
        }
        assert_eq!(seen[0], seen[1], "readproctitle {args:?}");
        n += 1;
    }
    eprintln!("readproctitle: {n} cases in all");
}

#[test]
fn chpst_matches_runit() {
    if !need_root("chpst_matches_runit") {
        return;
    }
    let sb = Sandbox::new("h-chpst");
    env_dir(
        &sb,
        "e",
        &[
            ("NEW", b"v  \t\nx"),
            ("A", b"new"),
            ("EMPTY", b""),
            ("NUL", b"a\0b"),
        ],
    );
    env_dir(&sb, "withsub/sub", &[]);
    fs::write(sb.path("withsub/X"), "1").unwrap();
    fs::create_dir_all(sb.path("open")).unwrap();
    fs::set_permissions(sb.path("open"), fs::Permissions::from_mode(0o777)).unwrap();
    let parent = format!("test $PPID = {} && echo exec-in-place", std::process::id());
    let limits = "cat /proc/self/limits";
    let mut n = compare(
        &sb.root,
        "chpst",
        &[
            &[],
            &["-z", "true"],
            &["-e"],
            &["-m", "x", "true"],
            &["-m", "12x", "true"],
            &["-m", "-5", "true"],
            &["-d", "=", "true"],
            &["-n", "x", "true"],
            &["/nonexistent/prog"],
            &["-u", "nosuchuser", "true"],
            &["-u", "nobody:nosuchgroup", "true"],
            &["-u", ":1234", "true"],
            &["-U", ":7", "true"],
            &["-u", "nobody", "sh", "-c", SHOW_IDS],
            &["-u", "nobody:daemon:adm", "sh", "-c", SHOW_IDS],
            &["-u", ":1234:5:6", "sh", "-c", SHOW_IDS],
            &["-u", ":1234:", "sh", "-c", SHOW_IDS],
            &["-U", "nobody", "env"],
            &["-U", "nobody:adm", "env"],
            &["-U", ":7:8", "env"],
            &["-U", "daemon", "-u", "nobody", "env"],
            &["-e", "e", "env"],
            &["-e", "withsub", "env"],
            &["-e", "/nonexistent", "true"],
            &["-e", "e/NEW", "true"],
            &["-n", "+3", "nice"],
            &["-n", "-3", "nice"],
            &["-/", "/nonexistent", "true"],
            &["-/", "/", "-u", "nobody", "id"],
            &["-v", "true"],
            &["-b", "renamed", "sh", "-c", "echo $0"],
            &["-P", "sh", "-c", SHOW_PGRP],
            &["-0", "sh", "-c", "ls /proc/self/fd"],
            &["-1", "sh", "-c", "ls /proc/self/fd >&2"],
            &["-2", "sh", "-c", "ls /proc/self/fd"],
            &["-m", "100000000", "sh", "-c", limits],
            &[
                "-o", "50", "-p", "100", "-f", "100000", "-c", "0", "-t", "10", "sh", "-c", limits,
            ],
            &[
                "-d",
                "100000000",
                "-r",
                "10000000",
                "-o",
                "99999999",
                "sh",
                "-c",
                limits,
            ],
            &["-l", "lk", "sh", "-c", "ls /proc/self/fd"],
            &["-l", "/nonexistent/dir/lk", "true"],
            &[
                "-u",
                "nobody",
                "-l",
                "open/lk-a",
                "sh",
                "-c",
                "stat -c %U open/lk-a",
            ],
            &["-u", "nobody", "-l", "lk-root", "true"],
            &["-u", "nobody", "sh", "-c", &parent],
            &["sh", "-c", "exit 8"],
        ],
    );
    // Run as nobody (through Debian's setuidgid): what an unprivileged caller may not do.
    for args in [
        &["nobody", "-u", "root", "true"][..],
        &["nobody", "-/", "/", "true"],
        &["nobody", "-n", "-5", "true"],
    ] {
        let side = |chpst: &Path| {
            let mut a = vec![args[0], chpst.to_str().unwrap()];
            a.extend(&args[1..]);
            run(&sb.root, &require_peer("setuidgid"), &a)
        };
        assert_eq!(
            side(&require_peer("chpst")),
            side(&bin("chpst")),
            "chpst as {args:?}"
        );
        n += 1;
    }
    let lk = sb.path("lk");
    let holder = fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&lk)
        .unwrap();
    holder.try_lock().unwrap();
    n += compare(
        &sb.root,
        "chpst",
        &[
            &["-L", "lk", "true"],
            &["-l", "lk", "-L", "lk", "true"],
            &["-L", "a", "-L", "b", "true"],
        ],
    );
    for (side, prog) in [("runit", require_peer("chpst")), ("vigil", bin("chpst"))] {
        let mark = sb.path(&format!("ran-{side}"));
        let mut child = spawn(
            sb.command(&prog)
                .current_dir(&sb.root)
                .args(["-l", "lk", "touch"])
                .arg(&mark),
        );
        wait_blocked_on_lock(child.id());
        assert!(
            !mark.exists(),
            "{side} chpst -l ran while the lock was held"
        );
        holder.unlock().unwrap();
        wait_until(Duration::from_secs(10), "the waiter to run", || {
            mark.exists()
        });
        assert!(child.child.wait().unwrap().success());
        holder.lock().unwrap();
        n += 1;
    }
    eprintln!("chpst: {n} cases in all");
}

/// One line of /proc/PID/status, e.g. `Uid:` -> "65534\t65534\t65534\t65534".
fn status_field(pid: u32, key: &str) -> String {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()))
        .unwrap_or_default()
}

/// The soft limit column of one /proc/PID/limits line.
fn soft_limit(pid: u32, name: &str) -> String {
    fs::read_to_string(format!("/proc/{pid}/limits"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next().map(str::to_string))
        .unwrap_or_default()
}

fn environ(pid: u32) -> Vec<String> {
    fs::read(format!("/proc/{pid}/environ"))
        .unwrap()
        .split(|&b| b == 0)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect()
}

#[test]
fn run_scripts_use_the_helpers_under_svscan() {
    if !need_root("run_scripts_use_the_helpers_under_svscan") {
        return;
    }
    let sb = Sandbox::new("h-svscan");
    let scan = sb.path("service");
    fs::create_dir_all(&scan).unwrap();
    // Complete service dirs are made outside the scan dir, then moved in.
    let make = |name: &str, run: &str| {
        let dir = sb.service(&format!("staging/{name}"), run);
        fs::create_dir_all(dir.join("env")).unwrap();
        fs::write(dir.join("env/GREETING"), "hello from envdir\n").unwrap();
        fs::write(dir.join("env/VIGIL_DROP"), "").unwrap();
        // chpst takes its lock as the new user (as runit's does): the file must be writable.
        fs::write(dir.join("lock"), "").unwrap();
        fs::set_permissions(dir.join("lock"), fs::Permissions::from_mode(0o666)).unwrap();
        fs::rename(&dir, scan.join(name)).unwrap();
        scan.join(name)
    };
    let dt = make(
        "daemontools",
        "exec setlock ./lock setuidgid nobody envdir ./env softlimit -m 200000000 -o 77 \
         pgrphack sleep 1000",
    );
    let rn = make(
        "runit",
        "exec chpst -u nobody:adm:daemon -e ./env -m 200000000 -o 66 -n 3 -P -l ./lock sleep 1000",
    );
    let path = format!("{}:{PATH}", bin_dir().display());
    let err = fs::File::create(sb.path("svscan.err")).unwrap();
    let _svscan = spawn(
        Svscan::new(&sb, &scan)
            .command()
            .env("PATH", &path)
            .env("VIGIL_DROP", "inherited")
            .stderr(err),
    );
    for dir in [&dt, &rn] {
        let pid = wait_up(dir);
        // The whole chain exec'd in place: supervise's child is now sleep itself.
        wait_until(Duration::from_secs(10), "the chain to reach sleep", || {
            cmdline(pid).starts_with("sleep")
        });
        let env = environ(pid);
        assert!(
            env.contains(&"GREETING=hello from envdir".to_string()),
            "{env:?}"
        );
        assert!(!env.iter().any(|v| v.starts_with("VIGIL_DROP=")), "{env:?}");
        assert!(status_field(pid, "Uid:").starts_with("65534\t65534"));
        assert_eq!(soft_limit(pid, "Max data size"), "200000000");
        let stat = stat_fields(pid).unwrap();
        // New process group and session: pgrp (field 5) and session (6) are its own pid.
        assert_eq!(stat[2], pid.to_string(), "pgrp of {}", dir.display());
        assert_eq!(stat[3], pid.to_string(), "session of {}", dir.display());
        // 0-2 from supervise, 3 the lock: nothing else leaked through the chain.
        let fds = settled_fds(pid, &["0", "1", "2", "3"]);
        assert_eq!(fds, ["0", "1", "2", "3"], "{}", dir.display());
        let lock = fs::read_link(format!("/proc/{pid}/fd/3")).unwrap();
        assert_eq!(lock, dir.join("lock"));
    }
    let dt_pid = wait_up(&dt);
    assert_eq!(status_field(dt_pid, "Gid:"), "65534\t65534\t65534\t65534");
    assert_eq!(status_field(dt_pid, "Groups:"), "65534");
    assert_eq!(soft_limit(dt_pid, "Max open files"), "77");
    let rn_pid = wait_up(&rn);
    assert!(status_field(rn_pid, "Gid:").starts_with("4\t4"));
    assert_eq!(status_field(rn_pid, "Groups:"), "1 4");
    assert_eq!(soft_limit(rn_pid, "Max open files"), "66");
    // nice (field 19) 3 above svscan's.
    let base: i32 = stat_fields(std::process::id()).unwrap()[16]
        .parse()
        .unwrap();
    assert_eq!(stat_fields(rn_pid).unwrap()[16], (base + 3).to_string());
    sb.kill_all();
}

/// runit's chpst, called through links named like daemontools' programs, emulates them with
/// its own words; vigil's executable runs its daemontools-compatible programs under those
/// names. Ours must equal daemontools' in every case; where runit's emulation differs is
/// printed (the man page chpst(8) lists it).
#[test]
fn daemontools_names_are_daemontools_not_chpst_emulation() {
    let sb = Sandbox::new("h-names");
    let links = sb.path("runit");
    fs::create_dir_all(&links).unwrap();
    fs::create_dir_all(sb.path("e/sub")).unwrap();
    let cases: &[(&str, &[&str])] = &[
        ("envdir", &[]),
        ("envdir", &["/nonexistent", "true"]),
        ("envdir", &["e", "true"]),
        ("envuidgid", &["nosuchaccount", "true"]),
        ("setuidgid", &["nosuchaccount", "true"]),
        ("setuidgid", &["nobody"]),
        ("pgrphack", &["/nonexistent/prog"]),
        ("setlock", &[]),
        ("setlock", &["/nonexistent/dir/lk", "true"]),
        ("softlimit", &["-m", "x", "true"]),
        ("softlimit", &["-z", "true"]),
    ];
    let mut differ = 0;
    for (name, args) in cases {
        let link = links.join(name);
        if !link.exists() {
            std::os::unix::fs::symlink(require_peer("chpst"), &link).unwrap();
        }
        let daemontools = run(&sb.root, &require_peer(name), args);
        let ours = run(&sb.root, &bin(name), args);
        let runit = run(&sb.root, &link, args);
        assert_eq!(ours, daemontools, "{name} {args:?}");
        if runit != daemontools {
            differ += 1;
            eprintln!("runit's chpst as {name} {args:?} differs: {runit:?}");
        }
    }
    eprintln!(
        "names: {} cases as daemontools', runit's emulation differs in {differ}",
        cases.len()
    );
    assert!(
        differ > 0,
        "runit's emulation was expected to differ somewhere"
    );
}
