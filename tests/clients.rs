//! svc, svstat and svok on their own: options, messages and exit codes in daemontools' words.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::fs;
use std::time::Duration;

use vigil_tests::*;

#[test]
fn svstat_errors_and_exit_code() {
    let sb = Sandbox::new("svstat-err");
    let never = sb.path("never");
    fs::create_dir_all(&never).unwrap();
    let missing = sb.path("missing");
    let (code, out, err) = run_output(sb.command(bin("svstat")).arg(&missing).arg(&never));
    assert_eq!(code, 0);
    assert!(err.is_empty());
    assert_eq!(
        out,
        format!(
            "{}: unable to chdir: file does not exist\n{}: unable to open supervise/ok: file does not exist\n",
            missing.display(),
            never.display()
        )
    );
    let (code, out, _) = run_output(&mut sb.command(bin("svstat")));
    assert_eq!((code, out.as_str()), (0, ""));
}

#[test]
fn svstat_says_not_running_and_rejects_garbage() {
    let sb = Sandbox::new("svstat-garbage");
    let dir = sb.service("s", "exec sleep 1000");
    let sup = Supervise::new(&sb, &dir).stderr_inherit().start();
    wait_up(&dir);
    // Status bytes no supervisor writes are refused, not printed as a plausible lie.
    // (supervise only rewrites status on a change, so the garbage stays while we look.)
    fs::write(dir.join(vigil_core::layout::STATUS), [0xffu8; 20]).unwrap();
    let (_, out, _) = run_output(sb.command(bin("svstat")).arg(&dir));
    assert_eq!(
        out,
        format!(
            "{}: unable to read supervise/status: bad format\n",
            dir.display()
        )
    );
    fs::write(dir.join(vigil_core::layout::STATUS), [0x40u8, 0, 0]).unwrap();
    let (_, out, _) = run_output(sb.command(bin("svstat")).arg(&dir));
    assert_eq!(
        out,
        format!(
            "{}: unable to read supervise/status: bad format\n",
            dir.display()
        )
    );
    drop(sup);
    let (_, out, _) = run_output(sb.command(bin("svstat")).arg(&dir));
    assert_eq!(out, format!("{}: supervise not running\n", dir.display()));
}

#[test]
fn svc_warnings_usage_and_exit_codes() {
    let sb = Sandbox::new("svc-err");
    let never = sb.path("never");
    fs::create_dir_all(never.join("supervise")).unwrap();
    // A control FIFO with no reader: supervise not running.
    let dir = sb.service("s", "exec sleep 1000");
    let sup = Supervise::new(&sb, &dir).stderr_inherit().start();
    wait_up(&dir);
    drop(sup);
    let missing = sb.path("missing");
    let (code, out, err) = Svc::new(&sb)
        .arg("-u")
        .dir(&missing)
        .dir(&dir)
        .dir(&never)
        .run();
    assert_eq!(code, 0, "svc exits 0 after per-directory warnings");
    assert_eq!(out, "");
    assert_eq!(
        err,
        format!(
            "svc: warning: unable to chdir to {m}: file does not exist\n\
             svc: warning: unable to control {d}: supervise not running\n\
             svc: warning: unable to control {n}: file does not exist\n",
            m = missing.display(),
            d = dir.display(),
            n = never.display()
        )
    );
    let (code, _, err) = Svc::new(&sb).arg("-uz").dir(&dir).run();
    assert_eq!(code, 100);
    assert!(
        err.starts_with("svc: illegal option -- z\nsvc options: u up, d down, o once, x exit,"),
        "{err}"
    );
}

#[test]
fn svc_writes_distinct_letters_in_order_in_one_write() {
    let sb = Sandbox::new("svc-bytes");
    let dir = sb.service("s", "exec sleep 1000");
    let _sup = Supervise::new(&sb, &dir).stderr_inherit().start();
    let pid = wait_up(&dir);
    let trace = sb.path("trace");
    let (code, _, err) = run_output(
        sb.command("strace")
            .args(["-e", "trace=write", "-o"])
            .arg(&trace)
            .arg(bin("svc"))
            .args(["-pu", "-c", "-u", "-p", "-h"])
            .arg(&dir),
    );
    assert_eq!((code, err.as_str()), (0, ""));
    let writes: Vec<String> = lines(&trace)
        .into_iter()
        .filter(|l| l.starts_with("write("))
        .collect();
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert!(writes[0].contains(", \"puch\", 4)"), "{writes:?}");
    // p, u, c, then h: the HUP kills sleep and want up brings it back.
    wait_status(&dir, "restart after h", |s| {
        s.pid != 0 && s.pid != pid && !s.paused
    });
}

#[test]
fn svok_exit_codes() {
    let sb = Sandbox::new("svok");
    let (code, _, err) = run_output(&mut sb.command(bin("svok")));
    assert_eq!((code, err.as_str()), (100, "svok: usage: svok dir\n"));
    let missing = sb.path("missing");
    let (code, _, err) = run_output(sb.command(bin("svok")).arg(&missing));
    assert_eq!(code, 111);
    assert_eq!(
        err,
        format!(
            "svok: fatal: unable to chdir to {}: file does not exist\n",
            missing.display()
        )
    );
    let never = sb.path("never");
    fs::create_dir_all(&never).unwrap();
    assert_eq!(run_output(sb.command(bin("svok")).arg(&never)).0, 100);
    let dir = sb.service("s", "exec sleep 1000");
    let sup = Supervise::new(&sb, &dir).stderr_inherit().start();
    wait_up(&dir);
    assert_eq!(run_output(sb.command(bin("svok")).arg(&dir)).0, 0);
    drop(sup);
    assert_eq!(run_output(sb.command(bin("svok")).arg(&dir)).0, 100);
}

/// An unprivileged svstat or svc before a root-owned 0700 `supervise/` (root ignores
/// permissions, so the test needs root to drop them): svstat cannot tell whether a supervise
/// runs (`"supervised": null`), and `svc -W` exits 102 as svc(8) says.
#[test]
fn unreadable_supervise_dir_is_unknown_to_svstat_and_102_to_svc_wait() {
    use std::os::unix::fs::PermissionsExt;
    if !root_or_skip(
        "unreadable_supervise_dir_is_unknown_to_svstat_and_102_to_svc_wait",
        "it drops root's permission override",
    ) {
        return;
    }
    let sb = Sandbox::new("svstat-denied");
    let dir = sb.service("s", "exec sleep 1000");
    let sup = Supervise::new(&sb, &dir).stderr_inherit().start();
    wait_up(&dir);
    fs::set_permissions(dir.join("supervise"), fs::Permissions::from_mode(0o700)).unwrap();
    for p in [&sb.root, &dir] {
        fs::set_permissions(p, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let as_nobody = |program: &str| {
        let mut c = sb.command("setpriv");
        c.args(["--reuid=61001", "--regid=61001", "--clear-groups"])
            .arg(bin(program));
        c
    };
    let (code, out, err) = run_output(as_nobody("svstat").arg("--json").arg(&dir));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(r#""supervised":null,"error":"unable to open supervise/ok: access denied""#),
        "{out}"
    );
    let (code, _, err) = run_output(
        as_nobody("svc")
            .args(["-u", "-W", "U", "-T", "1000"])
            .arg(&dir),
    );
    assert_eq!(code, 102, "{err}");
    // As root the same directory is supervised.
    let (_, out, _) = run_output(sb.command(bin("svstat")).arg("--json").arg(&dir));
    assert!(out.contains(r#""supervised":true,"#), "{out}");
    // A directory with no supervise: false, not unknown.
    let none = sb.path("none");
    fs::create_dir_all(&none).unwrap();
    let (_, out, _) = run_output(sb.command(bin("svstat")).arg("--json").arg(&none));
    assert!(out.contains(r#""supervised":false,"#), "{out}");
    drop(sup);
    sb.kill_all();
}

/// issue 15.8: svok ignores arguments after the first, as daemontools' does.
#[test]
fn svok_ignores_extra_arguments() {
    let sb = Sandbox::new("svok-extra");
    let dir = sb.service("s", "exec sleep 1000");
    let _sup = Supervise::new(&sb, &dir).stderr_inherit().start();
    wait_up(&dir);
    for svok in [bin("svok"), require_peer("svok")] {
        let (code, out, err) = run_output(sb.command(&svok).arg(&dir).args(["extra", "-x"]));
        assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""), "{svok:?}");
        let never = sb.path("never");
        fs::create_dir_all(&never).unwrap();
        let (code, _, err) = run_output(sb.command(&svok).arg(&never).arg("extra"));
        assert_eq!((code, err.as_str()), (100, ""), "{svok:?}");
    }
}

/// issue 15.8: supervise writes its status again when it exits on `svc -x`, so a deleted
/// `supervise/status` comes back (daemontools' supervise does the same).
#[test]
fn supervise_rewrites_deleted_status_on_exit() {
    let sb = Sandbox::new("supervise-status-exit");
    for (name, supervise) in [
        ("ours", bin("supervise")),
        ("theirs", require_peer("supervise")),
    ] {
        let dir = sb.service(name, "exec sleep 1000");
        fs::write(dir.join("down"), "").unwrap();
        let mut sup = Supervise::new(&sb, &dir)
            .program(&supervise)
            .stderr_inherit()
            .start();
        wait_until(Duration::from_secs(5), "first status", || {
            dir.join(vigil_core::layout::STATUS).exists()
        });
        fs::remove_file(dir.join(vigil_core::layout::STATUS)).unwrap();
        control(&dir, b"x");
        sup.wait_exit(Duration::from_secs(10));
        let st = read_status(&dir);
        assert!(
            st.is_some_and(|s| s.pid == 0),
            "{name}: status not rewritten"
        );
    }
}

/// issue 15.8: an unknown option or a missing argument gives daemontools' usage text as the
/// first line(s), word for word; our extensions only add lines after it.
#[test]
fn usage_starts_with_daemontools_lines() {
    let sb = Sandbox::new("usage-lines");
    let cases: [(&str, &[&str]); 5] = [
        ("svc", &["-Z", "x"]),
        ("svok", &[]),
        ("supervise", &[]),
        ("svstat", &["-Z", "x"]),
        ("svok", &["-Z", "x"]),
    ];
    for (prog, args) in cases {
        let (code_d, _, err_d) = run_output(sb.command(require_peer(prog)).args(args));
        let (code, _, err) = run_output(sb.command(bin(prog)).args(args));
        assert_eq!(code, code_d, "{prog} {args:?}: {err}");
        assert!(
            err.starts_with(&err_d),
            "{prog} {args:?}: ours\n{err}\ndaemontools\n{err_d}"
        );
    }
}
