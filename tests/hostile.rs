//! supervise and svc against hostile input: a service that drops privileges and still must
//! reach its readiness channel, other users who must not reach it, service directories whose
//! owner plants symlinks for a root supervise to follow, and non-FIFOs where the FIFOs go.
//!
//! Permissions are exercised with real users: `nobody` and, where two unprivileged users are
//! needed, a temporary user created and deleted by the test. Tests that need root (or setpriv,
//! systemd-notify) print a SKIP line and return when they cannot run.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{PermissionsExt, lchown, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use vigil_tests::*;

const NOBODY: &str = "nobody";

/// uid and gid of a user from /etc/passwd.
fn ids_of(user: &str) -> Option<(u32, u32)> {
    let text = fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.first() == Some(&user)).then(|| (f[2].parse().unwrap(), f[3].parse().unwrap()))
    })
}

/// Skips (with a visible line) unless we are root and every program in `needs` exists.
fn can_run(test: &str, needs: &[&str]) -> bool {
    if !root_or_skip(test, "it runs services as other users") {
        return false;
    }
    if ids_of(NOBODY).is_none() {
        skip(test, &format!("no user {NOBODY}"));
        return false;
    }
    for p in needs {
        if !Path::new("/usr/bin").join(p).exists() {
            skip(test, &format!("/usr/bin/{p} missing"));
            return false;
        }
    }
    true
}

/// `setpriv` arguments that become `user` (uid, gid, no supplementary groups).
fn as_user(user: &str) -> String {
    let (uid, gid) = ids_of(user).unwrap();
    format!("/usr/bin/setpriv --reuid {uid} --regid {gid} --clear-groups")
}

/// Hands `path` (not following a symlink at the end) and everything below it to `user`.
fn give_to(path: &Path, user: &str) {
    let (uid, gid) = ids_of(user).unwrap();
    lchown(path, Some(uid), Some(gid)).unwrap();
    if path.is_dir() && !path.is_symlink() {
        for e in fs::read_dir(path).unwrap() {
            give_to(&e.unwrap().path(), user);
        }
    }
}

fn wait_text(path: &Path, needle: &str) -> String {
    wait_for(
        Duration::from_secs(10),
        &format!("{needle:?} in {path:?}"),
        || fs::read_to_string(path).ok().filter(|t| t.contains(needle)),
    )
}

/// The value of NOTIFY_SOCKET in the environment of `pid` (read again while the process is in
/// the middle of an exec and shows an empty environment).
fn notify_socket_of(pid: u32) -> String {
    wait_for(Duration::from_secs(10), "NOTIFY_SOCKET of the run", || {
        let env = fs::read(format!("/proc/{pid}/environ")).ok()?;
        env.split(|b| *b == 0)
            .find_map(|kv| kv.strip_prefix(b"NOTIFY_SOCKET="))
            .map(|v| String::from_utf8_lossy(v).into_owned())
    })
}

/// A temporary user, deleted (with its processes' files left to the test's cleanup) on drop.
struct TempUser {
    name: String,
}

impl TempUser {
    fn new() -> Option<TempUser> {
        let name = format!("vgl{}", std::process::id() % 100_000);
        let ok = Command::new("/usr/sbin/useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/bin/false",
                &name,
            ])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(TempUser { name })
    }
}

impl Drop for TempUser {
    fn drop(&mut self) {
        let _ = Command::new("/usr/sbin/userdel").arg(&self.name).status();
    }
}

// Item 3: sd_notify from a service that dropped privileges.

#[test]
fn sd_notify_reaches_supervise_from_a_service_running_as_nobody() {
    if !can_run(
        "sd_notify_reaches_supervise_from_a_service_running_as_nobody",
        &["setpriv", "systemd-notify"],
    ) {
        return;
    }
    let sb = Sandbox::new("hostile-notify-nobody");
    fs::set_permissions(&sb.root, fs::Permissions::from_mode(0o755)).unwrap();
    let dir = sb.service(
        "s",
        &format!(
            "exec {} sh -c 'systemd-notify --ready --status=\"serving as $(id -un)\"; exec sleep 1000'",
            as_user(NOBODY)
        ),
    );
    fs::write(dir.join("notify-socket"), "").unwrap();
    let err = sb.path("err");
    let _p = Supervise::new(&sb, &dir).stderr_to(&err).spawn();
    wait_up(&dir);
    let (code, _, out) = run_output(
        sb.command(bin("svwait"))
            .args(["-U", "-t", "10000"])
            .arg(&dir),
    );
    assert_eq!(
        (code, out.as_str()),
        (0, ""),
        "svwait -U; supervise said: {}",
        fs::read_to_string(&err).unwrap_or_default()
    );
    let i = read_info(&dir).unwrap();
    assert_eq!(i.notify_status, "serving as nobody");
}

#[test]
fn sd_notify_from_a_child_of_a_root_run_that_became_nobody_is_heard() {
    let test = "sd_notify_from_a_child_of_a_root_run_that_became_nobody_is_heard";
    if !can_run(test, &["setpriv", "systemd-notify"]) {
        return;
    }
    let sb = Sandbox::new("hostile-notify-child");
    fs::set_permissions(&sb.root, fs::Permissions::from_mode(0o755)).unwrap();
    // ./run stays root; only the notifier is nobody: it is believed as a child of ./run.
    // (systemd-notify follows READY=1 with a BARRIER=1 carrying a pipe end and waits until
    // supervise closes it, so it is still there to be looked up.)
    let dir = sb.service(
        "s",
        &format!(
            "{} systemd-notify --ready --status=child\nexec sleep 1000",
            as_user(NOBODY)
        ),
    );
    fs::write(dir.join("notify-socket"), "").unwrap();
    let err = sb.path("err");
    let _p = Supervise::new(&sb, &dir).stderr_to(&err).spawn();
    wait_up(&dir);
    wait_until(Duration::from_secs(10), "ready from the child", || {
        read_info(&dir).is_some_and(|i| i.ready.is_some() && i.notify_status == "child")
    });
    // Its BARRIER=1 was judged too, before its descriptor was closed: nothing refused.
    wait_until(Duration::from_secs(10), "run exec'd sleep", || {
        read_status(&dir).is_some_and(|s| cmdline(s.pid).starts_with("sleep"))
    });
    let text = fs::read_to_string(&err).unwrap();
    assert!(!text.contains("ignoring"), "{text}");
}

#[test]
fn sd_notify_from_another_user_is_refused() {
    if !can_run(
        "sd_notify_from_another_user_is_refused",
        &["setpriv", "systemd-notify"],
    ) {
        return;
    }
    let sb = Sandbox::new("hostile-notify-forge");
    fs::set_permissions(&sb.root, fs::Permissions::from_mode(0o755)).unwrap();
    // The service runs as root and never says it is ready.
    let dir = sb.service("s", "exec sleep 1000");
    fs::write(dir.join("notify-socket"), "").unwrap();
    let err = sb.path("err");
    let _p = Supervise::new(&sb, &dir).stderr_to(&err).spawn();
    let pid = wait_up(&dir);
    let address = notify_socket_of(pid);
    assert!(address.starts_with('@'), "abstract address: {address}");
    // nobody, outside the service's process tree, claims readiness.
    let forge = format!(
        "{} /usr/bin/systemd-notify --ready --status=forged",
        as_user(NOBODY)
    );
    let (_, _, _) = run_output(
        sb.command("/bin/sh")
            .args(["-c", &forge])
            .env("NOTIFY_SOCKET", &address),
    );
    wait_text(&err, "ignoring sd_notify message for");
    let i = read_info(&dir).unwrap();
    assert_eq!(i.ready, None, "a forged READY=1 was believed");
    assert_eq!(i.notify_status, "");
    // The channel itself works: root (supervise's own user) is believed.
    let (code, _, out) = run_output(
        sb.command("/usr/bin/systemd-notify")
            .args(["--ready", "--status=by root"])
            .env("NOTIFY_SOCKET", &address),
    );
    assert_eq!(code, 0, "{out}");
    wait_until(Duration::from_secs(10), "ready from root", || {
        read_info(&dir).is_some_and(|i| i.ready.is_some() && i.notify_status == "by root")
    });
}

#[test]
fn sd_notify_from_another_unprivileged_user_is_refused_while_the_service_runs_as_nobody() {
    let test =
        "sd_notify_from_another_unprivileged_user_is_refused_while_the_service_runs_as_nobody";
    if !can_run(test, &["setpriv", "systemd-notify"]) {
        return;
    }
    let Some(user) = TempUser::new() else {
        skip(test, "useradd failed");
        return;
    };
    let sb = Sandbox::new("hostile-notify-user");
    fs::set_permissions(&sb.root, fs::Permissions::from_mode(0o755)).unwrap();
    let dir = sb.service("s", &format!("exec {} sleep 1000", as_user(NOBODY)));
    fs::write(dir.join("notify-socket"), "").unwrap();
    let err = sb.path("err");
    let _p = Supervise::new(&sb, &dir).stderr_to(&err).spawn();
    let pid = wait_up(&dir);
    wait_until(Duration::from_secs(10), "run as nobody", || {
        fs::read_to_string(format!("/proc/{pid}/status"))
            .is_ok_and(|s| s.contains(&format!("Uid:\t{}\t", ids_of(NOBODY).unwrap().0)))
    });
    let address = notify_socket_of(pid);
    let forge = format!("{} /usr/bin/systemd-notify --ready", as_user(&user.name));
    run_output(
        sb.command("/bin/sh")
            .args(["-c", &forge])
            .env("NOTIFY_SOCKET", &address),
    );
    wait_text(&err, "ignoring sd_notify message for");
    assert_eq!(
        read_info(&dir).unwrap().ready,
        None,
        "forged readiness believed"
    );
    // The service's own user is believed.
    let own = format!("{} /usr/bin/systemd-notify --ready", as_user(NOBODY));
    run_output(
        sb.command("/bin/sh")
            .args(["-c", &own])
            .env("NOTIFY_SOCKET", &address),
    );
    wait_until(Duration::from_secs(10), "ready from nobody", || {
        read_info(&dir).is_some_and(|i| i.ready.is_some())
    });
}

#[test]
fn notification_fd_works_after_run_changes_user() {
    if !can_run("notification_fd_works_after_run_changes_user", &["setpriv"]) {
        return;
    }
    let sb = Sandbox::new("hostile-notifyfd-nobody");
    fs::set_permissions(&sb.root, fs::Permissions::from_mode(0o755)).unwrap();
    let dir = sb.service(
        "s",
        &format!("exec {} sh -c 'echo >&3; exec sleep 1000'", as_user(NOBODY)),
    );
    fs::write(dir.join("notification-fd"), "3\n").unwrap();
    let err = sb.path("err");
    let _p = Supervise::new(&sb, &dir).stderr_to(&err).spawn();
    wait_up(&dir);
    let (code, _, out) = run_output(
        sb.command(bin("svwait"))
            .args(["-U", "-t", "10000"])
            .arg(&dir),
    );
    assert_eq!((code, out.as_str()), (0, ""), "svwait -U");
}

// Item 10 (part): an unusable notification-fd.

#[test]
fn invalid_notification_fd_warns_and_counts_as_ready_when_up() {
    let sb = Sandbox::new("hostile-notifyfd-bad");
    let dir = sb.service("s", "exec sleep 1000");
    fs::write(dir.join("notification-fd"), "stdout\n").unwrap();
    let err = sb.path("err");
    let _p = Supervise::new(&sb, &dir).stderr_to(&err).spawn();
    wait_up(&dir);
    let (code, _, out) = run_output(
        sb.command(bin("svwait"))
            .args(["-U", "-t", "10000"])
            .arg(&dir),
    );
    assert_eq!((code, out.as_str()), (0, ""), "svwait -U");
    let text = fs::read_to_string(&err).unwrap();
    assert!(
        text.contains(&format!(
            "supervise: warning: unable to parse {}/notification-fd: want a number from 3 to 1024",
            dir.display()
        )),
        "{text}"
    );
}

// Item 4a: knobs as symlinks to files the directory's owner cannot read.

/// A root-only file holding a secret line, like /etc/shadow.
fn secret(sb: &Sandbox) -> PathBuf {
    let p = sb.path("shadow");
    fs::write(&p, "root:$6$SECRETHASH:19000:0:99999:7:::\n").unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
    p
}

#[test]
fn knob_symlink_to_another_users_file_is_not_read_and_never_echoed() {
    if !can_run(
        "knob_symlink_to_another_users_file_is_not_read_and_never_echoed",
        &[],
    ) {
        return;
    }
    let sb = Sandbox::new("hostile-knob");
    fs::set_permissions(&sb.root, fs::Permissions::from_mode(0o755)).unwrap();
    let shadow = secret(&sb);
    let dir = sb.service("s", "exec sleep 1000");
    symlink(&shadow, dir.join("down-signal")).unwrap();
    // A plain file with garbage: its content is not echoed either.
    fs::write(dir.join("timeout-kill"), "SECRETGARBAGE\n").unwrap();
    give_to(&dir, NOBODY);
    let err = sb.path("err");
    let _p = Supervise::new(&sb, &dir).stderr_to(&err).spawn();
    wait_up(&dir);
    let text = wait_text(&err, "timeout-kill");
    let d = dir.display();
    assert!(
        text.contains(&format!(
            "supervise: warning: unable to read {d}/down-signal: symbolic link to a file of another user"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "supervise: warning: unable to parse {d}/timeout-kill: not a number"
        )),
        "{text}"
    );
    assert!(!text.contains("SECRET"), "file content echoed: {text}");
    assert_eq!(
        text.matches("down-signal").count(),
        1,
        "one warning per start: {text}"
    );
    // The refused knob is not used: svc -d sends TERM (the default), and sleep dies of it.
    let (code, _, e) = Svc::new(&sb).arg("-d").dir(&dir).run();
    assert_eq!((code, e.as_str()), (0, ""));
    wait_down(&dir);
}

#[test]
fn knob_symlink_to_the_owners_own_file_is_followed() {
    if !can_run("knob_symlink_to_the_owners_own_file_is_followed", &[]) {
        return;
    }
    let sb = Sandbox::new("hostile-knob-own");
    fs::set_permissions(&sb.root, fs::Permissions::from_mode(0o755)).unwrap();
    // The service ignores TERM; down-signal (a link to the owner's file) says KILL.
    let dir = sb.service("s", "trap '' TERM; exec sleep 1000");
    fs::write(sb.path("sig"), "KILL\n").unwrap();
    symlink(sb.path("sig"), dir.join("down-signal")).unwrap();
    give_to(&dir, NOBODY);
    give_to(&sb.path("sig"), NOBODY);
    let err = sb.path("err");
    let _p = Supervise::new(&sb, &dir).stderr_to(&err).spawn();
    wait_up(&dir);
    let (code, _, e) = Svc::new(&sb).arg("-d").dir(&dir).run();
    assert_eq!((code, e.as_str()), (0, ""));
    wait_down(&dir);
    let text = fs::read_to_string(&err).unwrap();
    assert!(!text.contains("down-signal"), "{text}");
}

#[test]
fn knob_that_is_a_fifo_never_blocks_supervise() {
    let sb = Sandbox::new("hostile-knob-fifo");
    let dir = sb.service("s", "exec sleep 1000");
    let made = Command::new("mkfifo")
        .arg(dir.join("down-signal"))
        .status()
        .unwrap();
    assert!(made.success());
    let err = sb.path("err");
    let _p = Supervise::new(&sb, &dir).stderr_to(&err).spawn();
    let pid = wait_up(&dir);
    wait_text(
        &err,
        &format!(
            "supervise: warning: unable to read {}/down-signal: not a regular file",
            dir.display()
        ),
    );
    // supervise still obeys: a restart reads the knobs again and goes on.
    let (code, _, e) = Svc::new(&sb).arg("-k").dir(&dir).run();
    assert_eq!((code, e.as_str()), (0, ""));
    wait_status(&dir, "restarted", |s| s.pid != 0 && s.pid != pid);
}

#[test]
fn presence_knob_linked_to_dev_null_still_counts() {
    let sb = Sandbox::new("hostile-knob-devnull");
    let dir = sb.service("s", "exec sleep 1000");
    symlink("/dev/null", dir.join("no-setsid")).unwrap();
    let err = sb.path("err");
    let p = Supervise::new(&sb, &dir).stderr_to(&err).spawn();
    let pid = wait_up(&dir);
    assert!(pgrp_of(pid).is_some());
    assert_eq!(pgrp_of(pid), pgrp_of(p.id()), "no-setsid ignored");
    assert_eq!(fs::read_to_string(&err).unwrap(), "");
}

// Item 4b: supervise/ and the files in it.

#[test]
fn supervise_dir_of_another_user_is_refused_and_planted_links_not_followed() {
    if !can_run(
        "supervise_dir_of_another_user_is_refused_and_planted_links_not_followed",
        &[],
    ) {
        return;
    }
    let sb = Sandbox::new("hostile-plant");
    let victim = sb.path("victim");
    fs::write(&victim, "precious\n").unwrap();
    let dir = sb.service("s", "exec sleep 1000");
    fs::create_dir(dir.join("supervise")).unwrap();
    for name in ["status.new", "info.new", "lock", "history"] {
        symlink(&victim, dir.join("supervise").join(name)).unwrap();
    }
    give_to(&dir, NOBODY);
    let (code, _, err) = run_output(&mut Supervise::new(&sb, &dir).command());
    assert_eq!(
        (code, err.as_str()),
        (
            111,
            format!(
                "supervise: fatal: unable to open {}/supervise: owned by another user\n",
                dir.display()
            )
            .as_str()
        )
    );
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
    // A `supervise` symlink a user made is not followed either.
    fs::remove_dir_all(dir.join("supervise")).unwrap();
    let elsewhere = sb.path("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    fs::set_permissions(&elsewhere, fs::Permissions::from_mode(0o700)).unwrap();
    symlink(&elsewhere, dir.join("supervise")).unwrap();
    give_to(&dir.join("supervise"), NOBODY);
    let (code, _, err) = run_output(&mut Supervise::new(&sb, &dir).command());
    assert_eq!(code, 111, "{err}");
    assert!(err.contains("symbolic link owned by another user"), "{err}");
    assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);
}

#[test]
fn supervise_dir_swapped_while_running_gets_no_writes() {
    if !can_run(
        "supervise_dir_swapped_while_running_gets_no_writes",
        &["setpriv"],
    ) {
        return;
    }
    let sb = Sandbox::new("hostile-swap");
    fs::set_permissions(&sb.root, fs::Permissions::from_mode(0o755)).unwrap();
    let victim = sb.path("victim");
    fs::write(&victim, "precious\n").unwrap();
    let dir = sb.service("s", "exec sleep 1000");
    give_to(&dir, NOBODY);
    let err = sb.path("err");
    let _p = Supervise::new(&sb, &dir).stderr_to(&err).spawn();
    let pid = wait_up(&dir);
    // The directory's owner moves supervise's directory away and plants its own.
    let d = dir.display();
    let plant = format!(
        "{} sh -c 'mv {d}/supervise {d}/old && mkdir {d}/supervise && ln -s {v} {d}/supervise/status.new && ln -s {v} {d}/supervise/info.new && ln -s {v} {d}/supervise/history'",
        as_user(NOBODY),
        v = victim.display()
    );
    let (code, _, e) = run_output(sb.command("/bin/sh").args(["-c", &plant]));
    assert_eq!(code, 0, "{e}");
    // A state change: the run is killed and restarted; supervise writes where it always did
    // (its directory, now called `old`).
    let old = dir.join("old");
    fs::OpenOptions::new()
        .write(true)
        .open(old.join("control"))
        .unwrap()
        .write_all(b"k")
        .unwrap();
    wait_until(
        Duration::from_secs(10),
        "restart recorded in old/status",
        || {
            fs::read(old.join("status"))
                .ok()
                .and_then(|b| Status::unpack(&b).ok())
                .is_some_and(|s| s.pid != 0 && s.pid != pid)
        },
    );
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
    assert!(
        fs::symlink_metadata(dir.join(vigil_core::layout::STATUS_NEW))
            .is_ok_and(|m| m.is_symlink())
    );
}

// Item 5: not a FIFO at control or ok.

#[test]
fn regular_files_as_control_and_ok_are_replaced() {
    let sb = Sandbox::new("hostile-control-file");
    let dir = sb.service("s", "exec sleep 1000");
    let sup = dir.join("supervise");
    fs::create_dir(&sup).unwrap();
    fs::set_permissions(&sup, fs::Permissions::from_mode(0o700)).unwrap();
    fs::write(sup.join("control"), "").unwrap();
    fs::write(sup.join("ok"), "").unwrap();
    let err = sb.path("err");
    let p = Supervise::new(&sb, &dir).stderr_to(&err).spawn();
    wait_supervised(&dir);
    let pid = wait_up(&dir);
    let text = fs::read_to_string(&err).unwrap();
    let d = dir.display();
    for name in ["control", "ok"] {
        assert!(
            text.contains(&format!(
                "supervise: warning: replaced {d}/supervise/{name}: it was a regular file, not a FIFO of supervise"
            )),
            "{text}"
        );
        let m = fs::symlink_metadata(sup.join(name)).unwrap();
        assert!(std::os::unix::fs::FileTypeExt::is_fifo(&m.file_type()));
    }
    let (code, _, e) = Svc::new(&sb).arg("-d").dir(&dir).run();
    assert_eq!((code, e.as_str()), (0, ""));
    wait_down(&dir);
    assert!(!alive(pid) || is_zombie(pid));
    // supervise sleeps: a second's worth of CPU would mean a spin.
    // utime and stime: fields 14 and 15 of /proc/PID/stat.
    let f = stat_fields(p.id()).unwrap();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    assert!(ticks < 50, "supervise used {ticks} ticks of CPU");
}

#[test]
fn svc_fails_on_a_control_that_is_not_a_fifo() {
    let sb = Sandbox::new("hostile-svc-file");
    let dir = sb.service("s", "exec sleep 1000");
    let sup = dir.join("supervise");
    fs::create_dir(&sup).unwrap();
    fs::write(sup.join("control"), "").unwrap();
    let (code, out, e) = Svc::new(&sb).arg("-u").dir(&dir).run();
    assert_eq!(
        (code, out.as_str(), e.as_str()),
        (
            0,
            "",
            format!(
                "svc: warning: unable to control {}: supervise/control is not a FIFO\n",
                dir.display()
            )
            .as_str()
        )
    );
    assert_eq!(
        fs::read(sup.join("control")).unwrap(),
        b"",
        "svc wrote into it"
    );
    let (code, _, e) = Svc::new(&sb)
        .args(["-u", "-W", "u", "-T", "1000"])
        .dir(&dir)
        .run();
    assert_ne!(code, 0, "svc -W on a non-FIFO: {e}");
    let _ = std::io::stderr().flush();
}

#[test]
fn clients_never_follow_a_link_or_block_on_a_fifo_planted_as_status() {
    let sb = Sandbox::new("hostile-status");
    let dir = sb.service("s", "exec sleep 1000");
    let _s = Supervise::new(&sb, &dir).start();
    wait_up(&dir);
    let status = dir.join(vigil_core::layout::STATUS);
    let svstat = || run_output_within(sb.command(bin("svstat")).arg(&dir), Duration::from_secs(5));
    // A link to a file the reader should not show.
    let planted = sb.path("planted");
    fs::write(&planted, b"not a status file at all, and secret").unwrap();
    let tmp = dir
        .join(vigil_core::layout::SUPERVISE_DIR)
        .join("status.lnk");
    std::os::unix::fs::symlink(&planted, &tmp).unwrap();
    fs::rename(&tmp, &status).unwrap();
    let (code, out, _) = svstat();
    assert_eq!(code, 0);
    assert!(
        out.contains("unable to open supervise/status: symbolic link loop"),
        "{out}"
    );
    // A FIFO: refused at once, not a reader blocked for ever.
    fs::remove_file(&status).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(&status)
        .status()
        .unwrap();
    assert!(made.success());
    let (code, out, _) = svstat();
    assert_eq!(code, 0);
    assert!(
        out.contains("unable to open supervise/status: not a regular file"),
        "{out}"
    );
}
