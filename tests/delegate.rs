//! `supervise -d DIR` (a detached supervise, started once however many callers ask at the same
//! moment) and the `control-group` knob (members of a group control a service, others do not),
//! with real processes and real unprivileged users.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use vigil_tests::*;

const LIMIT: Duration = Duration::from_secs(10);

/// Pids of supervise processes whose working directory is `dir` (a supervise chdirs into its
/// service directory; its `./run` is there too, so argv[0] tells them apart).
fn supervisors_in(dir: &Path) -> Vec<u32> {
    let want = fs::canonicalize(dir).unwrap();
    let mut out = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(cwd) = fs::read_link(format!("/proc/{pid}/cwd")) else {
            continue;
        };
        let line = cmdline(pid);
        let argv0 = line.split(' ').next().unwrap_or_default();
        if cwd == want && Path::new(argv0).ends_with("supervise") && alive(pid) {
            out.push(pid);
        }
    }
    // A supervise's own child between clone and exec of ./run shows the same command line
    // for a moment: it is not a second supervise.
    let all = out.clone();
    out.retain(|&p| parent_of(p).is_none_or(|pp| !all.contains(&pp)));
    out
}

fn detach(sb: &Sandbox, dir: &Path) -> (i32, String, String) {
    run_output_within(
        sb.command(bin("supervise")).arg("-d").arg(dir),
        Duration::from_secs(20),
    )
}

#[test]
fn twenty_concurrent_detached_starts_make_one_supervise() {
    let sb = Sandbox::new("detach20");
    let dir = sb.service("s", "echo started >> ../starts; exec sleep 1000");
    let gate = sb.path("gate");
    fs::write(&gate, "").unwrap();
    // The test holds the gate; the 20 callers each wait for a shared lock on it, so they are
    // let go together.
    let held = fs::File::open(&gate).unwrap();
    rustix::fs::flock(&held, rustix::fs::FlockOperation::LockExclusive).unwrap();
    let script = format!(
        "for i in $(seq 20); do (touch ready.$i; flock -s gate true; '{}' -d s; echo $? > rc.$i) & done; wait",
        bin("supervise").display()
    );
    let mut callers = sb
        .command("sh")
        .arg("-c")
        .arg(&script)
        .current_dir(&sb.root)
        .stdout(Stdio::null())
        .stderr(fs::File::create(sb.path("callers.err")).unwrap())
        .process_group(0)
        .spawn()
        .unwrap();
    let group = callers.id();
    wait_until(LIMIT, "20 callers at the gate", || {
        (1..=20).all(|i| sb.path(&format!("ready.{i}")).exists())
    });
    drop(held);
    assert_eq!(wait_exit(&mut callers, Duration::from_secs(30)), 0);
    for i in 1..=20 {
        let rc = fs::read_to_string(sb.path(&format!("rc.{i}"))).unwrap();
        assert_eq!(rc.trim(), "0", "caller {i}");
    }
    assert_eq!(fs::read_to_string(sb.path("callers.err")).unwrap(), "");
    let found = supervisors_in(&dir);
    assert_eq!(found.len(), 1, "supervise processes in the dir: {found:?}");
    let pid = found[0];
    // The callers' process group is killed: the detached supervise is in a session of its own.
    assert_ne!(session_of(pid), session_of(group));
    assert_eq!(session_of(pid), Some(pid));
    let _ = rustix::process::kill_process_group(
        rustix::process::Pid::from_raw(group as i32).unwrap(),
        rustix::process::Signal::KILL,
    );
    let run = wait_up(&dir);
    assert!(alive(pid), "the supervise died with its callers' group");
    assert_eq!(supervisors_in(&dir), vec![pid]);
    assert_eq!(lines(&sb.path("starts")), vec!["started"]);
    // The variable naming the caller's pipe never reaches the service.
    let env = fs::read(format!("/proc/{run}/environ")).unwrap();
    assert!(
        env.split(|&b| b == 0)
            .any(|v| v.starts_with(b"VIGIL_TEST_TAG="))
    );
    assert!(
        !env.split(|&b| b == 0)
            .any(|v| v.starts_with(b"VIGIL_READY_FD="))
    );
    // Its descriptors are its own: nothing of the callers (their stdio was a file and a pipe).
    for fd in 0..=2 {
        let target = fs::read_link(format!("/proc/{pid}/fd/{fd}")).unwrap();
        assert_eq!(target, Path::new("/dev/null"), "fd {fd}");
    }
    // Once more, with a supervise running: exit 0 at once, nothing new.
    assert_eq!(detach(&sb, &dir), (0, String::new(), String::new()));
    assert_eq!(supervisors_in(&dir), vec![pid]);
    Svc::new(&sb).arg("-dx").dir(&dir).expect_ok();
    wait_until(LIMIT, "the detached supervise to exit", || {
        !alive(pid) && !alive(run)
    });
    assert!(supervisors_in(&dir).is_empty());
}

#[test]
fn detached_starts_racing_a_plain_supervise_all_succeed() {
    let sb = Sandbox::new("detach-race");
    let dir = sb.service("s", "exec sleep 1000");
    let gate = sb.path("gate");
    fs::write(&gate, "").unwrap();
    let held = fs::File::open(&gate).unwrap();
    rustix::fs::flock(&held, rustix::fs::FlockOperation::LockExclusive).unwrap();
    // A plain supervise (svscan's kind) and five detached starts, let go together: whoever
    // takes the lock, every -d caller ends with 0 and one supervise runs.
    let sup = bin("supervise");
    let script = format!(
        "(touch ready.0; flock -s gate true; exec '{sup}' s) & \
         for i in 1 2 3 4 5; do (touch ready.$i; flock -s gate true; '{sup}' -d s; echo $? > rc.$i) & done; wait",
        sup = sup.display()
    );
    let mut callers = spawn(
        sb.command("sh")
            .arg("-c")
            .arg(&script)
            .current_dir(&sb.root)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    wait_until(LIMIT, "6 starters at the gate", || {
        (0..=5).all(|i| sb.path(&format!("ready.{i}")).exists())
    });
    drop(held);
    wait_until(LIMIT, "5 detached callers done", || {
        (1..=5).all(|i| {
            fs::read_to_string(sb.path(&format!("rc.{i}"))).is_ok_and(|t| t.ends_with('\n'))
        })
    });
    for i in 1..=5 {
        let rc = fs::read_to_string(sb.path(&format!("rc.{i}"))).unwrap();
        assert_eq!(rc.trim(), "0", "caller {i}");
    }
    wait_up(&dir);
    assert_eq!(supervisors_in(&dir).len(), 1, "{:?}", supervisors_in(&dir));
    let _ = callers.child.kill();
}

#[test]
fn detached_start_leaves_a_running_supervise_alone() {
    let sb = Sandbox::new("detach-there");
    let dir = sb.service("s", "exec sleep 1000");
    let p = Supervise::new(&sb, &dir).start();
    assert_eq!(detach(&sb, &dir), (0, String::new(), String::new()));
    assert_eq!(supervisors_in(&dir), vec![p.id()]);
}

#[test]
fn detached_start_with_a_logger_pipes_the_output() {
    let sb = Sandbox::new("detach-log");
    let dir = sb.service("s", "echo line from run; exec sleep 1000");
    sb.service("s/log", "exec cat >> out");
    let (code, out, err) = detach(&sb, &dir);
    assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""));
    let log = dir.join("log");
    wait_until(LIMIT, "the line in the log", || {
        lines(&log.join("out")) == ["line from run"]
    });
    assert_eq!(supervisors_in(&dir).len(), 1);
    assert_eq!(supervisors_in(&log).len(), 1);
    // The service's supervise goes and comes back: the new one writes into the same logger.
    Svc::new(&sb).arg("-dx").dir(&dir).expect_ok();
    wait_until(LIMIT, "the service's supervise to exit", || {
        supervisors_in(&dir).is_empty()
    });
    let logger = supervisors_in(&log);
    assert_eq!(detach(&sb, &dir), (0, String::new(), String::new()));
    wait_until(LIMIT, "the second line in the log", || {
        lines(&log.join("out")) == ["line from run", "line from run"]
    });
    assert_eq!(supervisors_in(&log), logger);
    Svc::new(&sb).arg("-dx").dir(&dir).dir(&log).expect_ok();
    wait_until(LIMIT, "both supervise processes to exit", || {
        supervisors_in(&dir).is_empty() && supervisors_in(&log).is_empty()
    });
}

#[test]
fn detached_start_of_a_missing_dir_fails_naming_it() {
    let sb = Sandbox::new("detach-missing");
    let missing = sb.path("nonexistent");
    let (code, out, err) = detach(&sb, &missing);
    assert_eq!(code, 111);
    assert_eq!(out, "");
    assert_eq!(
        err,
        format!(
            "supervise: fatal: unable to chdir to {}: file does not exist\n",
            missing.display()
        )
    );
    // daemontools compat: without -d nothing changed (one argument, or a usage error).
    let (code, _, err) = run_output(sb.command(bin("supervise")).arg("-d"));
    assert_eq!(code, 111, "{err}");
    assert!(err.contains("unable to chdir to -d"), "{err}");
    let (code, _, err) = run_output(sb.command(bin("supervise")).args(["-x", "a"]));
    assert_eq!(
        (code, err.as_str()),
        (100, "supervise: usage: supervise dir\n")
    );
}

/// A group and two users made for one test, removed again however the test ends.
struct Accounts {
    group: String,
    member: String,
    other: String,
}

impl Accounts {
    /// `None` (after a SKIP line) when they cannot be made: not root, or no useradd.
    fn make(test: &str) -> Option<Accounts> {
        if !root_or_skip(test, "it adds users") {
            return None;
        }
        let id = std::process::id();
        let a = Accounts {
            group: format!("vtg{id}"),
            member: format!("vtm{id}"),
            other: format!("vtn{id}"),
        };
        let ok = |cmd: &mut Command| cmd.status().is_ok_and(|s| s.success());
        if !ok(Command::new("groupadd").arg(&a.group)) {
            skip(test, "groupadd failed");
            return None;
        }
        let useradd = |name: &str, groups: Option<&str>| {
            let mut c = Command::new("useradd");
            c.args(["-M", "-N", "-s", "/usr/sbin/nologin"]);
            if let Some(g) = groups {
                c.args(["-G", g]);
            }
            ok(c.arg(name))
        };
        // From here on Drop removes whatever was made.
        assert!(useradd(&a.member, Some(&a.group)), "useradd {}", a.member);
        assert!(useradd(&a.other, None), "useradd {}", a.other);
        Some(a)
    }

    /// `cmd args` run as `user` with their own groups.
    fn run_as(&self, sb: &Sandbox, user: &str, cmd: &Path, args: &[&str]) -> (i32, String, String) {
        let gid = Command::new("id").args(["-g", user]).output().unwrap();
        let gid = String::from_utf8_lossy(&gid.stdout).trim().to_owned();
        run_output(
            sb.command("setpriv")
                .args(["--reuid", user, "--regid", &gid, "--init-groups"])
                .arg(cmd)
                .args(args),
        )
    }
}

impl Drop for Accounts {
    fn drop(&mut self) {
        for u in [&self.member, &self.other] {
            let _ = Command::new("userdel")
                .arg(u)
                .stderr(Stdio::null())
                .status();
        }
        let _ = Command::new("groupdel")
            .arg(&self.group)
            .stderr(Stdio::null())
            .status();
    }
}

/// Whether every directory from `/` down to `dir` lets others through (the test users must
/// reach the service directory and our binaries).
fn traversable(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .find(|d| fs::metadata(d).is_ok_and(|m| m.mode() & 0o001 == 0))
        .map(Path::to_path_buf)
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().mode() & 0o7777
}

#[test]
fn control_group_members_control_the_service_and_others_do_not() {
    let test = "control_group_members_control_the_service_and_others_do_not";
    let Some(acc) = Accounts::make(test) else {
        return;
    };
    let sb = Sandbox::new("delegate");
    fs::set_permissions(&sb.root, fs::Permissions::from_mode(0o755)).unwrap();
    for p in [sb.root.as_path(), &bin_dir()] {
        if let Some(d) = traversable(p) {
            skip(test, &format!("{} is closed to others", d.display()));
            return;
        }
    }
    let dir = sb.service("s", "exec sleep 1000");
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(dir.join("control-group"), format!("{}\n", acc.group)).unwrap();
    let err_path = sb.path("supervise.err");
    let _p = Supervise::new(&sb, &dir).stderr_to(&err_path).start();
    let first = wait_up(&dir);
    let d = dir.to_str().unwrap();
    let sup = dir.join("supervise");
    assert_eq!(mode(&sup), 0o750);
    assert_eq!(mode(&sup.join("control")), 0o620);
    assert_eq!(mode(&sup.join("ok")), 0o620);
    assert_eq!(mode(&sup.join("lock")), 0o600);

    // The member: down, wait for it, look, up, check.
    let member = |cmd: &str, args: &[&str]| acc.run_as(&sb, &acc.member, &bin(cmd), args);
    assert_eq!(member("svc", &["-d", d]), (0, String::new(), String::new()));
    let (code, _, err) = member("svwait", &["-d", "-t", "5000", d]);
    assert_eq!((code, err.as_str()), (0, ""));
    assert!(!alive(first));
    let (code, out, _) = member("svstat", &[d]);
    assert_eq!(code, 0);
    assert!(out.starts_with(&format!("{d}: down ")), "{out}");
    assert_eq!(member("svc", &["-u", d]), (0, String::new(), String::new()));
    let up = wait_up(&dir);
    assert_eq!(member("svok", &[d]).0, 0);
    let (code, out, _) = member("svstat", &[d]);
    assert_eq!(code, 0);
    assert!(out.starts_with(&format!("{d}: up (pid {up}) ")), "{out}");
    // svc -W watches supervise/ with inotify: the group may read the directory.
    let (code, _, err) = member("svc", &["-t", "-W", "u", "-T", "5000", d]);
    assert_eq!((code, err.as_str()), (0, ""));
    let up = wait_status(&dir, "a run after -t", |s| s.pid != 0 && s.pid != up).pid;

    // The other user: refused everywhere, the service untouched.
    let other = |cmd: &str, args: &[&str]| acc.run_as(&sb, &acc.other, &bin(cmd), args);
    let (code, _, err) = other("svc", &["-d", d]);
    assert_eq!(
        (code, err),
        (
            0,
            format!("svc: warning: unable to control {d}: access denied\n")
        )
    );
    let (code, _, err) = other("svok", &[d]);
    assert_eq!(
        (code, err),
        (
            111,
            format!("svok: fatal: unable to open {d}/supervise/ok: access denied\n")
        )
    );
    let (_, out, _) = other("svstat", &[d]);
    assert_eq!(
        out,
        format!("{d}: unable to open supervise/ok: access denied\n")
    );
    assert_ne!(other("svwait", &["-d", "-t", "1000", d]).0, 0);
    assert_eq!(read_status(&dir).unwrap().pid, up);

    // svstat shows the knob.
    let (_, out, _) = run_output(sb.command(bin("svstat")).arg("--json").arg(&dir));
    assert!(
        out.contains(&format!(r#""knobs":{{"control-group":"{}"}}"#, acc.group)),
        "{out}"
    );
    let (_, out, _) = run_output(sb.command(bin("svstat")).arg("-l").arg(&dir));
    assert!(
        out.contains(&format!("knob control-group={}", acc.group)),
        "{out}"
    );

    // Knob removed: root only again from the next start of ./run.
    fs::remove_file(dir.join("control-group")).unwrap();
    let (code, _, _) = Svc::new(&sb).arg("-k").dir(&dir).run();
    assert_eq!(code, 0);
    wait_status(&dir, "a new run", |s| s.pid != 0 && s.pid != up);
    assert_eq!(mode(&sup), 0o700);
    assert_eq!(mode(&sup.join("control")), 0o600);
    assert_eq!(mode(&sup.join("ok")), 0o600);
    let (_, _, err) = member("svc", &["-d", d]);
    assert_eq!(
        err,
        format!("svc: warning: unable to control {d}: access denied\n")
    );

    // A group nobody knows: a warning naming the service and the file, and root only.
    fs::write(dir.join("control-group"), "no-such-group-here\n").unwrap();
    let before = read_status(&dir).unwrap().pid;
    let (code, _, _) = Svc::new(&sb).arg("-k").dir(&dir).run();
    assert_eq!(code, 0);
    wait_status(&dir, "a new run", |s| s.pid != 0 && s.pid != before);
    let want = format!("supervise: warning: unable to parse {d}/control-group: unknown group");
    wait_until(LIMIT, "the warning", || {
        fs::read_to_string(&err_path).is_ok_and(|t| t.contains(&want))
    });
    assert_eq!(mode(&sup), 0o700);
    let (_, _, err) = member("svc", &["-d", d]);
    assert_eq!(
        err,
        format!("svc: warning: unable to control {d}: access denied\n")
    );
}
