//! fghack: holds a daemon that double-forks and closes every fd; svc -d stops it, svc -h reaches
//! it; usage and exec errors in daemontools' words; the child's exit status, as daemontools'.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::fs;
use std::path::Path;
use std::time::Duration;

use vigil_tests::*;

/// A daemon in the classic style: fork, setsid, fork, close every descriptor, then log its pid
/// and any SIGHUP to `LOG`, and exit 4 after `SECS`.
const DAEMON: &str = r#"#!/usr/bin/python3
import os, signal, sys, time
log, secs = sys.argv[1], float(sys.argv[2])
if os.fork(): sys.exit(0)
os.setsid()
if os.fork(): os._exit(0)
os.closerange(0, 65536)
def note(text):
    with open(log, "a") as f: f.write(text + "\n")
signal.signal(signal.SIGHUP, lambda *_: note("hup"))
note("pid %d" % os.getpid())
end = time.monotonic() + secs
while time.monotonic() < end:
    time.sleep(min(0.05, max(0.0, end - time.monotonic())))
os._exit(4)
"#;

fn daemon(sb: &Sandbox) -> std::path::PathBuf {
    let p = sb.path("daemon.py");
    fs::write(&p, DAEMON).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn daemon_pid(log: &Path) -> Option<u32> {
    lines(log)
        .iter()
        .find_map(|l| l.strip_prefix("pid ").and_then(|p| p.parse().ok()))
}

#[test]
fn holds_double_forking_daemon_and_forwards_signals() {
    let sb = Sandbox::new("fghack-hold");
    let d = daemon(&sb);
    let log = sb.path("daemon.log");
    let dir = sb.service(
        "svc",
        &format!(
            "exec {} {} {} 1000",
            bin("fghack").display(),
            d.display(),
            log.display()
        ),
    );
    let _sup = Supervise::new(&sb, &dir).stderr_inherit().spawn();
    let fg = wait_up(&dir);
    let pid = wait_for(Duration::from_secs(10), "daemon pid", || daemon_pid(&log));
    // The daemon closed every descriptor, yet fghack stays up while it runs.
    wait_until(Duration::from_secs(5), "daemon runs, fghack holds", || {
        alive(pid) && alive(fg) && read_status(&dir).is_some_and(|s| s.pid == fg)
    });
    // A bounded "nothing happens" window: fghack's pipe has reached end of file (the daemon
    // logged its pid after closing everything), and nothing outside fghack shows whether it
    // has acted on that yet; 300 ms is ample for a process that would exit on it.
    std::thread::sleep(Duration::from_millis(300));
    assert!(alive(fg), "fghack let go of a running daemon");
    assert_eq!(read_status(&dir).unwrap().pid, fg);

    // svc -h reaches the daemon.
    Svc::new(&sb).arg("-h").dir(&dir).expect_ok();
    wait_until(Duration::from_secs(5), "daemon got HUP", || {
        lines(&log).iter().any(|l| l == "hup")
    });
    assert!(alive(pid));

    // svc -d really stops it.
    Svc::new(&sb).arg("-d").dir(&dir).expect_ok();
    wait_down(&dir);
    wait_until(Duration::from_secs(5), "daemon gone", || !alive(pid));
}

#[test]
fn holds_the_daemon_but_reports_the_childs_status_as_daemontools() {
    let sb = Sandbox::new("fghack-status");
    let d = daemon(&sb);
    let log = sb.path("daemon.log");
    // Held until the daemon (exit 4) is gone; the status is its parent's 0, as in daemontools.
    let (code, _, err) = run_output(sb.command(bin("fghack")).arg(&d).arg(&log).arg("0.3"));
    assert_eq!((code, err.as_str()), (0, ""));
    let pid = daemon_pid(&log).unwrap();
    assert!(!alive(pid), "fghack returned before the daemon exited");
    let djb = require_peer("fghack");
    for script in [
        "(sleep 0.2 &); exit 3",
        "(sleep 0.2; exit 5) & exit 0",
        "exit 7",
        "kill -9 $$",
        "kill -TERM $$",
        "(sleep 0.3; kill -9 $$) & sleep 1; exit 4",
    ] {
        let ours = run_output(sb.command(bin("fghack")).args(["sh", "-c", script]));
        let theirs = run_output(sb.command(&djb).args(["sh", "-c", script]));
        assert_eq!(ours, theirs, "sh -c {script:?}: (code, stdout, stderr)");
    }
    let (code, _, err) = run_output(sb.command(bin("fghack")).args(["sh", "-c", "kill -9 $$"]));
    assert_eq!(
        (code, err.as_str()),
        (111, "fghack: fatal: child crashed\n")
    );
}

#[test]
fn usage_and_exec_errors_as_daemontools() {
    let sb = Sandbox::new("fghack-usage");
    let (code, _, err) = run_output(&mut sb.command(bin("fghack")));
    assert_eq!((code, err.as_str()), (100, "fghack: usage: fghack child\n"));
    let (code, _, err) = run_output(sb.command(bin("fghack")).arg("/nonexistent/prog"));
    assert_eq!(code, 111);
    assert_eq!(
        err,
        "fghack: fatal: unable to run /nonexistent/prog: file does not exist\n"
    );
    // No shell for a file the kernel cannot run: an empty one, a script without #!.
    use std::os::unix::fs::PermissionsExt;
    let djb = require_peer("fghack");
    for (name, text) in [("empty", ""), ("nohashbang", "echo ran > ran\n")] {
        let p = sb.path(name);
        fs::write(&p, text).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        let ours = run_output(
            sb.command(bin("fghack"))
                .current_dir(&sb.root)
                .arg(format!("./{name}")),
        );
        assert_eq!(
            ours,
            (
                111,
                String::new(),
                format!("fghack: fatal: unable to run ./{name}: exec format error\n")
            )
        );
        let theirs = run_output(
            sb.command(&djb)
                .current_dir(&sb.root)
                .arg(format!("./{name}")),
        );
        assert_eq!(ours, theirs);
        // Found through PATH too.
        let ours = run_output(
            sb.command(bin("fghack"))
                .env("PATH", format!("{}:/usr/bin:/bin", sb.root.display()))
                .arg(name),
        );
        assert_eq!(ours.0, 111, "{ours:?}");
        assert!(ours.2.ends_with("exec format error\n"), "{ours:?}");
    }
    assert!(
        !sb.path("ran").exists(),
        "a script without #! was run by a shell"
    );
}

#[test]
fn children_get_31_copies_of_the_pipe() {
    let sb = Sandbox::new("fghack-fds");
    let (code, out, _) =
        run_output(
            sb.command(bin("fghack"))
                .args(["sh", "-c", "ls /proc/$$/fd | wc -l"]),
        );
    assert_eq!(code, 0);
    // 0, 1, 2, the 31 copies (ls's own directory fd is in ls, not in sh).
    assert_eq!(out.trim(), "34");
}
