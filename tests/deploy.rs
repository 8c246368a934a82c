//! Deployment: scripts/install and uninstall, the .deb (built offline, lintian, installed with
//! dpkg -i in a throwaway Debian root), OpenRC (the vigil service, vigil's backend, OpenRC's
//! runit backend) in that root, runit-style stage 2 as PID 1, svscan as a container's PID 1,
//! svscan's READY=1 to systemd and the systemd unit.
//!
//! The binary installed is `${VIGIL_BIN:-target/bin/vigil}` (built by scripts/install when
//! missing). The tests that need root (namespaces, chroot) print SKIP when not root. The Debian
//! root comes from scripts/debroot (cached under /var/tmp).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::fs;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vigil_tests::*;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The executable the deploy scripts install.
fn vigil_bin() -> PathBuf {
    std::env::var_os("VIGIL_BIN").map_or_else(|| repo().join("target/bin/vigil"), PathBuf::from)
}

/// `run_output_within` with stdin from /dev/null (the scripts and tools here never read it).
fn run_long(cmd: &mut Command, limit: Duration) -> (i32, String, String) {
    run_output_within(cmd.stdin(Stdio::null()), limit)
}

fn script(name: &str) -> Command {
    let mut c = Command::new(repo().join("scripts").join(name));
    c.current_dir(repo()).env("VIGIL_BIN", vigil_bin());
    c
}

/// Installs into `dest` (as DESTDIR) with the given prefix; returns the script's stderr.
fn install(destdir: Option<&Path>, args: &[&str]) -> String {
    let mut c = script("install");
    c.args(args);
    if let Some(d) = destdir {
        c.env("DESTDIR", d);
    }
    let (code, _, err) = run_long(&mut c, Duration::from_secs(600));
    assert_eq!(code, 0, "scripts/install {args:?}: {err}");
    err
}

fn program_names() -> Vec<String> {
    let out = Command::new(vigil_bin()).arg("--list").output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn man_pages() -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(repo().join("man"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".8") || n.ends_with(".5"))
        .collect();
    v.sort();
    v
}

/// Every path under `dir`, relative, sorted (directories end in `/`).
fn tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, d: &Path, out: &mut Vec<String>) {
        for e in fs::read_dir(d).unwrap().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(base).unwrap().display().to_string();
            let ft = fs::symlink_metadata(&p).unwrap().file_type();
            if ft.is_dir() {
                out.push(format!("{rel}/"));
                walk(base, &p, out);
            } else if ft.is_symlink() {
                out.push(format!("{rel} -> {}", fs::read_link(&p).unwrap().display()));
            } else {
                out.push(rel);
            }
        }
    }
    let mut out = vec![];
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn install_destdir_has_every_program_man_page_and_glue_and_uninstall_removes_it_all() {
    let sb = Sandbox::new("deploy-install");
    let dest = sb.path("dest");
    install(Some(&dest), &["--prefix", "/usr"]);
    let listing = tree(&dest);
    eprintln!(
        "DESTDIR install, --prefix /usr:\n  {}",
        listing.join("\n  ")
    );
    for n in program_names() {
        let link = dest.join("usr/bin").join(&n);
        assert_eq!(fs::read_link(&link).unwrap(), Path::new("vigil"), "{n}");
    }
    for m in man_pages() {
        let sec = m.rsplit('.').next().unwrap();
        assert!(
            dest.join(format!("usr/share/man/man{sec}/{m}")).exists(),
            "{m}"
        );
    }
    for f in [
        "usr/bin/vigil",
        "usr/lib/vigil/openrc.sh",
        "usr/lib/vigil/runit/1",
        "usr/lib/vigil/runit/2",
        "usr/lib/vigil/runit/3",
        "usr/lib/systemd/system/vigil.service",
        "usr/share/vigil/container/Dockerfile",
        "usr/share/vigil/MANIFEST",
        "etc/init.d/vigil",
        "etc/conf.d/vigil",
    ] {
        assert!(dest.join(f).exists(), "{f} not installed");
    }
    // Placeholders are filled in.
    for f in [
        "etc/init.d/vigil",
        "usr/lib/vigil/runit/2",
        "usr/lib/vigil/openrc.sh",
    ] {
        let text = fs::read_to_string(dest.join(f)).unwrap();
        assert!(!text.contains('@'), "{f} keeps a placeholder");
        assert!(text.contains("/usr/bin"), "{f}");
    }
    // Reinstalling over it changes nothing, uninstalling leaves nothing.
    install(Some(&dest), &["--prefix", "/usr"]);
    assert_eq!(tree(&dest), listing);
    let (code, _, err) = run_long(
        script("uninstall")
            .args(["--prefix", "/usr"])
            .env("DESTDIR", &dest),
        Duration::from_secs(60),
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(tree(&dest), Vec::<String>::new(), "left after uninstall");

    // Another prefix: nothing under DESTDIR/etc, the /etc glue under PREFIX/share/vigil/etc.
    let dest2 = sb.path("dest2");
    install(Some(&dest2), &["--prefix", "/opt/vigil"]);
    let top: Vec<String> = tree(&dest2)
        .into_iter()
        .filter(|p| !p.starts_with("opt/"))
        .collect();
    assert!(top.is_empty(), "outside the prefix: {top:?}");
    assert!(
        dest2
            .join("opt/vigil/share/vigil/etc/init.d/vigil")
            .exists()
    );
    assert!(dest2.join("opt/vigil/bin/svscan").exists());
    let (code, _, err) = run_long(
        script("uninstall")
            .args(["--prefix", "/opt/vigil"])
            .env("DESTDIR", &dest2),
        Duration::from_secs(60),
    );
    assert_eq!(code, 0, "{err}");
    assert!(tree(&dest2).is_empty(), "left: {:?}", tree(&dest2));
}

/// Builds the .deb into the sandbox; returns its path.
fn build_deb(sb: &Sandbox) -> PathBuf {
    let out = sb.path("deb");
    let (code, stdout, err) = run_long(
        script("deb").env("VIGIL_DEB_OUT", &out),
        Duration::from_secs(600),
    );
    assert_eq!(code, 0, "scripts/deb: {err}");
    let deb = PathBuf::from(stdout.trim());
    let deb = if deb.is_absolute() {
        deb
    } else {
        repo().join(deb)
    };
    assert!(deb.exists(), "{}", deb.display());
    deb
}

fn deb_field(deb: &Path, field: &str) -> String {
    let out = Command::new("dpkg-deb")
        .arg("-f")
        .arg(deb)
        .arg(field)
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn deb_builds_offline_with_relations_and_is_lintian_clean() {
    let sb = Sandbox::new("deploy-deb");
    let deb = build_deb(&sb);
    let name = deb.file_name().unwrap().to_str().unwrap().to_owned();
    assert!(
        name.starts_with("vigil_") && name.ends_with("_amd64.deb"),
        "{name}"
    );
    assert_eq!(deb_field(&deb, "Provides"), "daemontools");
    let conflicts = deb_field(&deb, "Conflicts");
    assert!(conflicts.contains("daemontools-run"), "{conflicts}");
    let names = program_names();
    if names.iter().any(|n| n == "sv" || n == "chpst") {
        assert!(conflicts.contains("runit"), "{conflicts}");
    }
    let out = Command::new("dpkg-deb")
        .arg("-c")
        .arg(&deb)
        .output()
        .unwrap();
    let contents = String::from_utf8(out.stdout).unwrap();
    for n in &names {
        assert!(
            contents.contains(&format!("./usr/bin/{n} -> vigil")),
            "{n} not in the deb"
        );
    }
    for m in man_pages() {
        assert!(contents.contains(&format!("{m}.gz")), "{m} not in the deb");
    }
    // No maintainer scripts: installing starts nothing.
    let out = Command::new("dpkg-deb")
        .arg("-I")
        .arg(&deb)
        .output()
        .unwrap();
    let info = String::from_utf8(out.stdout).unwrap();
    for s in ["postinst", "preinst", "prerm", "postrm"] {
        assert!(!info.contains(s), "{s} in the deb: {info}");
    }
    if Command::new("lintian").arg("--version").output().is_err() {
        skip(
            "deb_builds_offline_with_relations_and_is_lintian_clean",
            "lintian not installed (apt-get install lintian); the lintian part did not run",
        );
        return;
    }
    let (_, stdout, stderr) = run_long(
        Command::new("lintian").arg("--allow-root").arg(&deb),
        Duration::from_secs(240),
    );
    let tags: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("E:") || l.starts_with("W:"))
        .collect();
    eprintln!("lintian: {} errors/warnings {stderr}", tags.len());
    assert!(tags.is_empty(), "lintian: {tags:#?}");
}

/// Runs a scenario in the throwaway Debian root; returns its stdout (stderr is echoed).
fn in_root(sb: &Sandbox, scenario: &str, args: &[&str]) -> String {
    let deb = build_deb(sb);
    let sys = repo().join("tests/system");
    let (code, out, err) = run_long(
        Command::new(sys.join("inroot.sh"))
            .arg(&deb)
            .arg(sys.join(scenario))
            .args(args)
            .env("INROOT_FILES", sys.join("lib.sh"))
            .env("TMPDIR", &sb.root),
        // The first run builds the cached root (debootstrap): minutes; later runs: seconds.
        Duration::from_secs(900),
    );
    eprintln!("{scenario} stderr:\n{err}");
    eprintln!("{scenario} stdout:\n{out}");
    assert_eq!(code, 0, "{scenario} failed");
    out
}

#[test]
fn deb_installs_with_dpkg_in_a_debian_root_and_runs_a_service_from_etc_service() {
    if !root_or_skip(
        "deb_installs_with_dpkg_in_a_debian_root",
        "namespaces, chroot, mounts",
    ) {
        return;
    }
    let sb = Sandbox::new("deploy-debroot");
    let out = in_root(&sb, "deb.sh", &[]);
    assert!(out.contains("deb: ok"));
}

/// The `sv` programs to drive OpenRC's runit backend with: `$VIGIL_TEST_SV` (space-separated
/// `runit`, `vigil`), else runit's, plus ours when `vigil --list` has one.
fn sv_under_test() -> Vec<String> {
    if let Ok(v) = std::env::var("VIGIL_TEST_SV") {
        return v.split_whitespace().map(str::to_owned).collect();
    }
    let mut v = vec!["runit".to_owned()];
    if program_names().iter().any(|n| n == "sv") {
        v.push("vigil".to_owned());
    }
    v
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

#[test]
fn openrc_runs_the_vigil_service_our_backend_and_its_runit_backend() {
    if !root_or_skip(
        "openrc_runs_the_vigil_service_our_backend_and_its_runit_backend",
        "namespaces, chroot, mounts",
    ) {
        return;
    }
    let sb = Sandbox::new("deploy-openrc");
    let svs = sv_under_test();
    let args: Vec<&str> = svs.iter().map(String::as_str).collect();
    let out = in_root(&sb, "openrc.sh", &args);
    assert!(out.contains("openrc: ok"));
    // "TIME kind op ms rc=N"
    let times = |kind: &str, op: &str| -> Vec<u64> {
        out.lines()
            .filter_map(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                (w.len() == 5 && w[0] == "TIME" && w[1] == kind && w[2] == op)
                    .then(|| w[3].parse().unwrap())
            })
            .collect()
    };
    let noop = median(times("noop", "start"));
    let ours_start = times("ours", "start");
    let ours_stop = times("ours", "stop");
    eprintln!(
        "rc-service medians (ms): OpenRC itself (no-op start) {noop}; vigil backend start {} stop {} (all: {ours_start:?} / {ours_stop:?})",
        median(ours_start.clone()),
        median(ours_stop.clone())
    );
    assert_eq!(ours_start.len(), 5);
    for sv in &svs {
        let s = times(&format!("runit-{sv}"), "start");
        let t = times(&format!("runit-{sv}"), "stop");
        eprintln!("OpenRC runit backend with {sv}'s sv: start {s:?} stop {t:?} ms");
        assert_eq!(s.len(), 3);
        if sv == "runit" {
            // runit's sv polls for the state it waits for (and fails at once on a service not
            // supervised yet, which OpenRC retries 1 s later): slower than our backend either
            // way.
            assert!(median(s) > median(ours_start.clone()));
        }
    }
}

/// Receives one datagram within `limit`.
fn receive(sock: &UnixDatagram, limit: Duration) -> Option<String> {
    sock.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 512];
    let n = sock.recv(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

fn svscan_with_notify(sb: &Sandbox, scan: &Path, notify: &str) -> Proc {
    spawn(
        Svscan::new(sb, scan)
            .stderr_to(sb.path("svscan.err"))
            .command()
            .env("NOTIFY_SOCKET", notify),
    )
}

#[test]
fn svscan_sends_ready_to_notify_socket_after_starting_every_service() {
    let sb = Sandbox::new("deploy-notify");
    let scan = sb.path("scan");
    for i in 0..5 {
        // Each run records whether it inherited NOTIFY_SOCKET.
        sb.service(
            &format!("scan/s{i}"),
            "echo \"${NOTIFY_SOCKET-unset}\" > env\nexec sleep 1000",
        );
    }
    let path = sb.path("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    let t0 = Instant::now();
    let svscan = svscan_with_notify(&sb, &scan, path.to_str().unwrap());
    let msg = receive(&sock, Duration::from_secs(10)).expect("no READY=1 from svscan");
    eprintln!("READY=1 {:?} after svscan started", t0.elapsed());
    assert_eq!(msg, "READY=1");
    // Every supervise was started before the message: each is there (soon holds its lock).
    for i in 0..5 {
        wait_supervised(&scan.join(format!("s{i}")));
        wait_up(&scan.join(format!("s{i}")));
    }
    for i in 0..5 {
        let env = scan.join(format!("s{i}/env"));
        wait_until(Duration::from_secs(5), "run wrote env", || {
            fs::read_to_string(&env).is_ok_and(|s| s.ends_with('\n'))
        });
        assert_eq!(
            fs::read_to_string(&env).unwrap().trim(),
            "unset",
            "s{i} inherited NOTIFY_SOCKET"
        );
    }
    // Exactly one message.
    assert_eq!(receive(&sock, Duration::from_millis(300)), None);
    assert!(alive(svscan.id()));
}

#[test]
fn svscan_sends_ready_to_an_abstract_notify_socket() {
    use std::os::linux::net::SocketAddrExt;
    let sb = Sandbox::new("deploy-notify-abstract");
    let scan = sb.path("scan");
    fs::create_dir_all(&scan).unwrap();
    let name = format!("vigil-test-{}", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let sock = UnixDatagram::bind_addr(&addr).unwrap();
    let _svscan = svscan_with_notify(&sb, &scan, &format!("@{name}"));
    assert_eq!(
        receive(&sock, Duration::from_secs(10)).as_deref(),
        Some("READY=1")
    );
}

#[test]
fn systemd_unit_passes_systemd_analyze_verify() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        skip(
            "systemd_unit_passes_systemd_analyze_verify",
            "no systemd-analyze",
        );
        return;
    }
    let sb = Sandbox::new("deploy-systemd");
    let prefix = sb.path("prefix");
    install(None, &["--prefix", prefix.to_str().unwrap()]);
    let unit = prefix.join("lib/systemd/system/vigil.service");
    let text = fs::read_to_string(&unit).unwrap();
    assert!(text.contains("Type=notify"));
    assert!(text.contains(&format!("ExecStart={}/bin/svscan ", prefix.display())));
    let (code, out, err) = run_long(
        Command::new("systemd-analyze").arg("verify").arg(&unit),
        Duration::from_secs(60),
    );
    assert_eq!(code, 0, "systemd-analyze verify: {out}{err}");
    assert!(err.trim().is_empty(), "systemd-analyze verify warns: {err}");
    // The check can fail: a unit whose program does not exist.
    let bad = sb.path("bad.service");
    fs::write(&bad, text.replace("/bin/svscan", "/bin/no-such-svscan")).unwrap();
    let (code, _, _) = run_long(
        Command::new("systemd-analyze").arg("verify").arg(&bad),
        Duration::from_secs(60),
    );
    assert_ne!(code, 0);
}

/// The PID 1 of the namespace `unshare --pid --fork` made: its only child.
fn namespace_init(unshare: &Child, what: &str) -> u32 {
    let pid = wait_for(Duration::from_secs(10), what, || {
        let kids: Vec<u32> = descendants(unshare.id())
            .into_iter()
            .filter(|&c| parent_of(c) == Some(unshare.id()))
            .collect();
        kids.first()
            .copied()
            .filter(|&c| cmdline(c).contains("svscan"))
    });
    let ns_pid = fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find(|l| l.starts_with("NSpid:"))
        .map(|l| l.split_whitespace().last().unwrap().to_owned())
        .unwrap();
    assert_eq!(ns_pid, "1", "{what} is not PID 1");
    pid
}

/// A service that logs numbered lines through multilog until TERM, then says goodbye.
const COUNTER_RUN: &str = "n=0\ntrap 'echo \"bye $n\"; exit 0' TERM\nwhile :; do n=$((n + 1)); echo \"line $n\"; sleep 0.01; done";

/// Checks a multilog `current`: `line 1` .. `line N` with no gap, then `bye N`.
fn assert_log_complete(current: &Path) {
    let text = fs::read_to_string(current).unwrap();
    let lines: Vec<&str> = text
        .lines()
        .map(|l| l.split_once(' ').map_or(l, |(_, rest)| rest))
        .collect();
    let (last, body) = lines.split_last().expect("empty log");
    for (i, l) in body.iter().enumerate() {
        assert_eq!(
            *l,
            format!("line {}", i + 1),
            "{}: gap or garbage",
            current.display()
        );
    }
    assert_eq!(
        *last,
        format!("bye {}", body.len()),
        "{}: last line",
        current.display()
    );
}

#[test]
fn stage2_as_pid1_runs_services_and_stops_on_sigterm_losing_no_log_line() {
    if !root_or_skip(
        "stage2_as_pid1_runs_services_and_stops_on_sigterm_losing_no_log_line",
        "namespaces, chroot, mounts",
    ) {
        return;
    }
    let sb = Sandbox::new("deploy-stage2");
    let prefix = sb.path("prefix");
    install(None, &["--prefix", prefix.to_str().unwrap()]);
    let readproctitle = prefix.join("bin/readproctitle").exists();
    let scan = sb.path("scan");
    for i in 0..3 {
        let dir = sb.service(&format!("stage/c{i}"), COUNTER_RUN);
        fs::create_dir_all(dir.join("log")).unwrap();
        write_script(&dir.join("log/run"), "exec multilog t ./main");
    }
    sb.service("stage/loud", "echo 'to the stage 2 log'\nexec sleep 1000");
    fs::rename(sb.path("stage"), &scan).unwrap();
    let stage2_log = sb.path("stage2.log");
    let mut unshare = sb
        .command("unshare")
        .args(["--pid", "--fork", "--mount-proc"])
        .arg(prefix.join("lib/vigil/runit/2"))
        .env("SCANDIR", &scan)
        .env("SVSCAN_TIMEOUT", "2000")
        .env("STAGE2_LOG", &stage2_log)
        .env("STAGE2_RUN", sb.path("run"))
        .spawn()
        .unwrap();
    let init = namespace_init(&unshare, "stage 2 (svscan) as PID 1");
    for i in 0..3 {
        let current = scan.join(format!("c{i}/log/main/current"));
        wait_until(Duration::from_secs(10), "20 lines logged", || {
            fs::read_to_string(&current).is_ok_and(|t| t.lines().count() >= 20)
        });
    }
    // Stage 2 uses the first readproctitle on PATH (ours, or daemontools'), else a plain file.
    let how = wait_for(
        Duration::from_secs(5),
        "svscan's output in the stage 2 log",
        || {
            if descendants(unshare.id()).into_iter().any(|p| {
                cmdline(p).starts_with("readproctitle") && cmdline(p).contains("to the stage 2 log")
            }) {
                return Some("readproctitle's argv");
            }
            fs::read_to_string(&stage2_log)
                .is_ok_and(|t| t.contains("to the stage 2 log"))
                .then_some("the plain log file")
        },
    );
    eprintln!("stage 2 log: {how} (vigil's readproctitle installed: {readproctitle})");
    let t0 = Instant::now();
    send_signal(init, 15);
    let code = wait_exit(&mut unshare, Duration::from_secs(20));
    eprintln!(
        "stage 2 as PID 1: SIGTERM to exit {code} in {:?}",
        t0.elapsed()
    );
    assert_eq!(code, 0);
    // Every service got TERM and said goodbye, every logger wrote everything before exiting.
    for i in 0..3 {
        assert_log_complete(&scan.join(format!("c{i}/log/main/current")));
    }
    assert!(descendants(unshare.id()).is_empty());
}

#[test]
fn container_pid1_reaps_orphans_obeys_signals_and_stops_within_grace() {
    if !root_or_skip(
        "container_pid1_reaps_orphans_obeys_signals_and_stops_within_grace",
        "namespaces, chroot, mounts",
    ) {
        return;
    }
    let sb = Sandbox::new("deploy-container");
    let prefix = sb.path("prefix");
    install(None, &["--prefix", prefix.to_str().unwrap()]);
    let svscan = prefix.join("bin/svscan");
    let scan = sb.path("scan");
    // Leaves orphans that exit soon: PID 1 must reap them.
    sb.service(
        "stage/orphans",
        "for i in 1 2 3 4 5; do (sleep 0.1 &); done\nexec sleep 1000",
    );
    sb.service(
        "stage/stubborn",
        "trap '' TERM\ntouch ./trapped\nexec sleep 1000",
    );
    let dir = sb.service("stage/logged", COUNTER_RUN);
    fs::create_dir_all(dir.join("log")).unwrap();
    write_script(&dir.join("log/run"), "exec multilog t ./main");
    fs::rename(sb.path("stage"), &scan).unwrap();
    // As the Dockerfile's ENTRYPOINT, with a 1 s kill timeout.
    let mut unshare = sb
        .command("unshare")
        .args(["--pid", "--fork", "--mount-proc"])
        .arg(&svscan)
        .args(["-t", "1000"])
        .arg(&scan)
        .spawn()
        .unwrap();
    let init = namespace_init(&unshare, "svscan as PID 1");
    for s in ["orphans", "stubborn", "logged"] {
        wait_up(&scan.join(s));
    }
    let mark = scan.join("stubborn/trapped");
    wait_until(
        Duration::from_secs(10),
        "the stubborn service's trap set",
        || mark.exists(),
    );
    // The orphans ran and were reaped: no zombie anywhere in the container.
    wait_until(Duration::from_secs(5), "orphans gone and reaped", || {
        let all = descendants(unshare.id());
        !all.iter().any(|&p| is_zombie(p)) && !all.iter().any(|&p| cmdline(p).contains("sleep 0.1"))
    });
    // SIGHUP is a rescan, not a stop.
    send_signal(init, 1);
    // A bounded window: an svscan that took HUP for a stop would be exiting within it.
    watch_for(
        Duration::from_millis(300),
        Duration::from_millis(10),
        || assert!(alive(init), "svscan exited on SIGHUP"),
    );
    assert!(
        unshare.try_wait().unwrap().is_none(),
        "svscan exited on SIGHUP"
    );
    let t0 = Instant::now();
    send_signal(init, 15);
    let code = wait_exit(&mut unshare, Duration::from_secs(10));
    let took = t0.elapsed();
    eprintln!("container PID 1: SIGTERM to exit {code} in {took:?} (stubborn service, -t 1000)");
    assert_eq!(code, 0);
    assert!(
        took >= Duration::from_millis(1000),
        "stubborn killed early: {took:?}"
    );
    assert!(
        took < Duration::from_secs(8),
        "past docker's grace period: {took:?}"
    );
    assert_log_complete(&scan.join("logged/log/main/current"));

    // A scan directory that does not exist: temporary failure, 111.
    let mut bad = sb
        .command("unshare")
        .args(["--pid", "--fork", "--mount-proc"])
        .arg(&svscan)
        .arg(sb.path("no-such-dir"))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert_eq!(wait_exit(&mut bad, Duration::from_secs(10)), 111);
}

#[test]
fn stage3_stops_what_a_killed_stage2_left_and_drains_every_logger() {
    let sb = Sandbox::new("deploy-stage3");
    let prefix = sb.path("prefix");
    install(None, &["--prefix", prefix.to_str().unwrap()]);
    let scan = sb.path("scan");
    for i in 0..3 {
        let dir = sb.service(&format!("stage/c{i}"), COUNTER_RUN);
        fs::create_dir_all(dir.join("log")).unwrap();
        write_script(&dir.join("log/run"), "exec multilog t ./main");
    }
    sb.service("stage/plain", "exec sleep 1000");
    fs::rename(sb.path("stage"), &scan).unwrap();
    let mut svscan = sb
        .command(prefix.join("bin/svscan"))
        .arg(&scan)
        .spawn()
        .unwrap();
    for i in 0..3 {
        let current = scan.join(format!("c{i}/log/main/current"));
        wait_until(Duration::from_secs(10), "20 lines logged", || {
            fs::read_to_string(&current).is_ok_and(|t| t.lines().count() >= 20)
        });
    }
    wait_up(&scan.join("plain"));
    // Stage 2 died without stopping anything (its init's grace period ran out).
    send_signal(svscan.id(), 9);
    svscan.wait().unwrap();
    assert!(!sb.procs("supervise").is_empty());
    let t0 = Instant::now();
    let (code, _, err) = run_long(
        sb.command(prefix.join("lib/vigil/runit/3"))
            .env("SCANDIR", &scan)
            .env("STAGE3_TIMEOUT", "3000"),
        Duration::from_secs(30),
    );
    eprintln!(
        "stage 3 after a killed stage 2: exit {code} in {:?} {err}",
        t0.elapsed()
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        t0.elapsed() < Duration::from_secs(3),
        "waited for a timeout"
    );
    for i in 0..3 {
        assert_log_complete(&scan.join(format!("c{i}/log/main/current")));
    }
    wait_until(Duration::from_secs(5), "nothing left", || {
        sb.tagged_pids().is_empty()
    });
}
