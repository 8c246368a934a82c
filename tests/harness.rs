//! Test harness for vigil's black-box suite: finds the built binaries, gives each test its own
//! temp directory, waits on observable state with deadlines, and kills everything a test
//! started.
//!
//! Every process a test starts gets `VIGIL_TEST_TAG=<its temp dir>` in its environment;
//! supervisors pass their environment on, so the whole tree carries the tag. Dropping the
//! [`Sandbox`] kills every process carrying it, by pid (found through `/proc/PID/environ`), and
//! removes the directory. Nothing is ever killed by name.
//!
//! The programs most tests run have builders: [`Svc`] (`Svc::new(&sb).args(["-d"]).dir(&d)
//! .expect_ok()`, or `.run()` for the exit code and output; `.program(p)` for Debian's),
//! [`Supervise`] (`Supervise::new(&sb, &d).stderr_to(p).start()` returns a [`Proc`] once
//! `supervise/ok` has a reader; `.spawn()` does not wait; `.no_cgroup()`, `.program(p)`) and
//! [`Svscan`] (`Svscan::new(&sb, &scan).args([..]).start()`). Each has `.command()` for what
//! they do not cover. `/proc` is read here only ([`stat_fields`], [`parent_of`],
//! [`session_of`], [`pgrp_of`], [`descendants`], ...). A test that cannot run here says so
//! with [`skip`] and returns.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub use vigil_core::status::{RunState, Status, Want};

/// Where vigil's binaries are: `$VIGIL_BIN_DIR`, else the `target/<profile>` dir holding this
/// test executable.
pub fn bin_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("VIGIL_BIN_DIR") {
        return PathBuf::from(d);
    }
    let exe = std::env::current_exe().unwrap();
    // target/debug/deps/test-xxxx -> target/debug
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

/// Absolute path of one of vigil's programs; panics with a hint when it was not built.
pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.exists(),
        "{} not built: run `cargo build --workspace` first (scripts/test does)",
        p.display()
    );
    p
}

/// Debian's daemontools/runit/s6 program, if installed (`/usr/bin/NAME`).
pub fn peer(name: &str) -> Option<PathBuf> {
    let p = Path::new("/usr/bin").join(name);
    p.exists().then_some(p)
}

/// Like [`peer`], but fails the test when missing: scripts/test installs the peers, so a missing
/// one is a broken setup, not a reason to skip.
pub fn require_peer(name: &str) -> PathBuf {
    peer(name).unwrap_or_else(|| {
        panic!("/usr/bin/{name} missing: scripts/test installs daemontools, runit and s6")
    })
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A temp directory owning every process started through it.
pub struct Sandbox {
    pub root: PathBuf,
    tag: String,
    /// A cgroup2 directory of this sandbox's own, given to supervise as its hierarchy
    /// (`VIGIL_CGROUP_ROOT`): every cgroup it makes is below it, and dropping the sandbox kills
    /// and removes them all.
    pub cgroup: Option<PathBuf>,
}

impl Sandbox {
    pub fn new(name: &str) -> Sandbox {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let base =
            std::env::var_os("VIGIL_TEST_TMP").map_or_else(std::env::temp_dir, PathBuf::from);
        let root = base.join(format!("vigil-{name}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&root).unwrap();
        let tag = root.display().to_string();
        let cgroup = cgroup2_mount().and_then(|m| {
            let dir = m.join(format!("vigil-test-{}-{n}", std::process::id()));
            fs::create_dir(&dir).ok().map(|()| dir)
        });
        Sandbox { root, tag, cgroup }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// A command carrying this sandbox's tag, with stdin from /dev/null.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut c = Command::new(program);
        c.env("VIGIL_TEST_TAG", &self.tag).stdin(Stdio::null());
        match &self.cgroup {
            Some(dir) => c.env("VIGIL_CGROUP_ROOT", dir),
            None => c.env("VIGIL_CGROUP_ROOT", "off"),
        };
        c
    }

    /// Creates a service directory `rel` with the given `run` script body (sh).
    pub fn service(&self, rel: &str, run: &str) -> PathBuf {
        let dir = self.path(rel);
        fs::create_dir_all(&dir).unwrap();
        write_script(&dir.join("run"), run);
        dir
    }

    /// Pids of every live process carrying this sandbox's tag.
    pub fn tagged_pids(&self) -> Vec<u32> {
        tagged_pids(&self.tag)
    }

    /// Tagged live processes whose command line contains `needle`.
    pub fn procs(&self, needle: &str) -> Vec<u32> {
        self.tagged_pids()
            .into_iter()
            .filter(|&p| cmdline(p).contains(needle))
            .collect()
    }

    /// Kills every process carrying the tag; returns how many there were.
    pub fn kill_all(&self) -> usize {
        let mut total = 0;
        for _ in 0..50 {
            let pids = self.tagged_pids();
            if pids.is_empty() {
                break;
            }
            total += pids.len();
            for p in pids {
                send_signal(p, 9);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        total
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.kill_all();
        if let Some(dir) = &self.cgroup {
            remove_cgroup_tree(dir);
        }
        if std::env::var_os("VIGIL_KEEP_TMP").is_none() {
            let _ = fs::remove_dir_all(&self.root);
        }
    }
}

/// The writable cgroup2 mount: `/sys/fs/cgroup` (pure v2) or `/sys/fs/cgroup/unified` (hybrid).
pub fn cgroup2_mount() -> Option<PathBuf> {
    ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.join("cgroup.kill").exists() || p.join("cgroup.subtree_control").exists())
}

/// Kills every process in the cgroup tree at `dir` and removes it, deepest first.
pub fn remove_cgroup_tree(dir: &Path) {
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup_tree(&e.path());
            }
        }
    }
    let _ = fs::write(dir.join("cgroup.kill"), "1");
    poll_until(Duration::from_secs(5), || {
        !fs::read_to_string(dir.join("cgroup.events"))
            .unwrap_or_default()
            .contains("populated 1")
    });
    let _ = fs::remove_dir(dir);
}

/// Writes an executable `#!/bin/sh` script.
pub fn write_script(path: &Path, body: &str) {
    let tmp = path.with_extension("tmp-script");
    fs::write(&tmp, format!("#!/bin/sh\n{body}\n")).unwrap();
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755)).unwrap();
    fs::rename(&tmp, path).unwrap();
}

fn tagged_pids(tag: &str) -> Vec<u32> {
    let needle = format!("VIGIL_TEST_TAG={tag}");
    let me = std::process::id();
    let mut out = vec![];
    let Ok(rd) = fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(env) = fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        if env.split(|&b| b == 0).any(|v| v == needle.as_bytes()) && !is_zombie(pid) {
            out.push(pid);
        }
    }
    out
}

/// `kill(pid, sig)`, by pid.
pub fn send_signal(pid: u32, sig: i32) {
    let (Some(pid), Some(sig)) = (
        rustix::process::Pid::from_raw(pid as i32),
        rustix::process::Signal::from_named_raw(sig),
    ) else {
        return;
    };
    let _ = rustix::process::kill_process(pid, sig);
}

/// The command line of a process, arguments joined by spaces (empty when it is gone).
pub fn cmdline(pid: u32) -> String {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

/// True when `/proc/PID/stat` says the process is a zombie (or it is gone).
pub fn is_zombie(pid: u32) -> bool {
    proc_state(pid).is_none_or(|s| s == 'Z' || s == 'X')
}

/// True while the process exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    !is_zombie(pid)
}

/// Polls `f` until it returns `Some`, failing the test after `limit`.
pub fn wait_for<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Polls `f` until it is true or `limit` has passed; whether it became true. For clean-ups,
/// which must not fail the test.
pub fn poll_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A bounded observation window: calls `check` every `every` for `span` (for "nothing bad
/// happens meanwhile" checks with assertions inside `check`, and for sampling at random
/// moments). Not a way to wait for a state: use [`wait_until`] for that.
pub fn watch_for(span: Duration, every: Duration, mut check: impl FnMut()) {
    let end = Instant::now() + span;
    loop {
        check();
        if Instant::now() >= end {
            return;
        }
        std::thread::sleep(every.min(end.saturating_duration_since(Instant::now())));
    }
}

/// Polls `f` until it is true, failing the test after `limit`.
pub fn wait_until(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    wait_for(limit, what, || f().then_some(()))
}

/// Reads and decodes `DIR/supervise/status`, `None` if absent or not decodable.
pub fn read_status(dir: &Path) -> Option<Status> {
    let bytes = fs::read(dir.join(vigil_core::layout::STATUS)).ok()?;
    Status::unpack(&bytes).ok()
}

/// Waits until the status of `dir` satisfies `pred`, returning it.
pub fn wait_status(dir: &Path, what: &str, pred: impl Fn(&Status) -> bool) -> Status {
    wait_for(Duration::from_secs(10), what, || {
        read_status(dir).filter(|s| pred(s))
    })
}

/// Reads and parses `DIR/supervise/info`, `None` if absent or not parsable.
pub fn read_info(dir: &Path) -> Option<vigil_core::info::Info> {
    vigil_core::info::Info::parse(&fs::read_to_string(dir.join(vigil_core::layout::INFO)).ok()?)
}

/// Waits until the `supervise/info` of `dir` satisfies `pred`, returning it.
pub fn wait_info(
    dir: &Path,
    what: &str,
    pred: impl Fn(&vigil_core::info::Info) -> bool,
) -> vigil_core::info::Info {
    wait_for(Duration::from_secs(10), what, || {
        read_info(dir).filter(|i| pred(i))
    })
}

/// Waits until `dir`'s service runs, returning its pid.
pub fn wait_up(dir: &Path) -> u32 {
    wait_status(dir, &format!("{} up", dir.display()), |s| s.pid != 0).pid
}

/// Waits until `dir`'s service is down.
pub fn wait_down(dir: &Path) {
    wait_status(dir, &format!("{} down", dir.display()), |s| {
        s.pid == 0 && s.state == RunState::Down
    });
}

/// True when `supervise/ok` of `dir` has a reader (a supervise is running there).
pub fn is_supervised(dir: &Path) -> bool {
    fs::OpenOptions::new()
        .write(true)
        .custom_flags_nonblock()
        .open(dir.join(vigil_core::layout::OK))
        .is_ok()
}

/// Waits until `supervise/ok` of `dir` has a reader (supervise is running).
pub fn wait_supervised(dir: &Path) {
    wait_until(
        Duration::from_secs(10),
        &format!("supervise on {}", dir.display()),
        || is_supervised(dir),
    );
}

/// Writes control bytes straight into `supervise/control`.
pub fn control(dir: &Path, bytes: &[u8]) {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .custom_flags_nonblock()
        .open(dir.join(vigil_core::layout::CONTROL))
        .unwrap();
    f.write_all(bytes).unwrap();
}

/// Lines of a file, empty when it does not exist.
pub fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .map(|s| s.lines().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// Count of lines of a file.
pub fn count_lines(path: &Path) -> usize {
    lines(path).len()
}

trait NonBlock {
    fn custom_flags_nonblock(&mut self) -> &mut Self;
}

impl NonBlock for fs::OpenOptions {
    fn custom_flags_nonblock(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        const O_NONBLOCK: i32 = 0o4000;
        self.custom_flags(O_NONBLOCK)
    }
}

/// Runs a command to completion with a 30 s limit; returns (exit code, stdout, stderr).
pub fn run_output(cmd: &mut Command) -> (i32, String, String) {
    run_output_within(cmd, Duration::from_secs(30))
}

/// Runs a command to completion within `limit` (killed and failed after it); returns (exit
/// code, stdout, stderr).
pub fn run_output_within(cmd: &mut Command, limit: Duration) -> (i32, String, String) {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(limit) {
        Ok(o) => o.unwrap(),
        Err(_) => {
            send_signal(pid, 9);
            panic!("command {cmd:?} did not finish in {limit:?}");
        }
    };
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Waits for a child's exit within `limit`; returns its exit code. After the limit the child
/// is killed and the test fails.
pub fn wait_exit(child: &mut std::process::Child, limit: Duration) -> i32 {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st.code().unwrap_or(-1);
        }
        if std::time::Instant::now() > deadline {
            send_signal(child.id(), 9);
            panic!("pid {} did not exit within {limit:?}", child.id());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The parent of `pid` (field 4 of /proc/PID/stat), `None` when it is gone.
pub fn parent_of(pid: u32) -> Option<u32> {
    stat_fields(pid)?.get(1)?.parse().ok()
}

/// A child process that is killed and reaped when dropped (tests may fail half-way).
pub struct Proc {
    pub child: std::process::Child,
}

impl Proc {
    pub fn id(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Spawns `cmd` as a [`Proc`].
pub fn spawn(cmd: &mut Command) -> Proc {
    Proc {
        child: cmd.spawn().unwrap(),
    }
}

/// The open descriptors of `pid`, sorted, once they equal `expected` or after 5 s. A program
/// that has just exec'd may hold a file open for a moment while it starts (sleep reads its
/// locale files); a leaked descriptor stays, so the caller's assertion still catches it.
pub fn settled_fds(pid: u32, expected: &[&str]) -> Vec<String> {
    let fds = || -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|d| {
                d.flatten()
                    .filter_map(|e| e.file_name().into_string().ok())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = fds();
        if now == expected || Instant::now() > deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

impl Proc {
    /// `Child::try_wait` of the process.
    pub fn try_wait(&mut self) -> std::io::Result<Option<std::process::ExitStatus>> {
        self.child.try_wait()
    }

    /// `Child::wait` of the process.
    pub fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
        self.child.wait()
    }

    /// Waits up to `limit` for the exit: its exit code, or `None` if it still runs then (for
    /// "still blocked" checks, where running on is the expected outcome).
    pub fn exit_within(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return Some(st.code().unwrap_or(-1));
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Waits for the exit within `limit` (killed and failed after it); returns its exit code.
    pub fn wait_exit(&mut self, limit: Duration) -> i32 {
        wait_exit(&mut self.child, limit)
    }
}

// ---------------------------------------------------------------------------------------------
// Skips and /proc

/// Prints the visible `SKIP: <test>: <reason>` line a test that cannot run here must print
/// before it returns (it is then reported as passed by the runner, so the line is the record).
/// The line also goes to `skipped-tests` beside the binaries (nextest shows a passing test's
/// stderr only on request); `scripts/test` prints that file at the end.
pub fn skip(test: &str, reason: &str) {
    let line = format!("SKIP: {test}: {reason}\n");
    eprint!("{line}");
    if let Ok(mut f) = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(bin_dir().join("skipped-tests"))
    {
        let _ = f.write_all(line.as_bytes());
    }
}

/// True when the tests run as root (effective uid 0).
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// True when the tests run as root; otherwise prints `SKIP: <test>: needs root (<why>)`.
pub fn root_or_skip(test: &str, why: &str) -> bool {
    if !is_root() {
        skip(test, &format!("needs root ({why})"));
    }
    is_root()
}

/// The fields of `/proc/PID/stat` from field 3 (state) on, so `[0]` is the state, `[1]` the
/// parent, `[2]` the process group, `[3]` the session; `None` when the process is gone. The
/// command name (field 2) is skipped: it may hold spaces and parentheses.
pub fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(") ")?;
    Some(rest.split(' ').map(str::to_owned).collect())
}

/// The state letter of `pid` (field 3 of /proc/PID/stat: R, S, T, Z, ...).
pub fn proc_state(pid: u32) -> Option<char> {
    stat_fields(pid)?.first()?.chars().next()
}

/// The command name of `pid` (field 2 of /proc/PID/stat, without its parentheses).
pub fn proc_comm(pid: u32) -> Option<String> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (head, _) = stat.rsplit_once(") ")?;
    Some(head.split_once(" (")?.1.to_owned())
}

/// Voluntary plus involuntary context switches of `pid` (/proc/PID/status); fails the test
/// when the process is gone (a dead process does not wake, which proves nothing).
pub fn ctxt_switches(pid: u32) -> u64 {
    assert!(alive(pid), "pid {pid} is gone");
    fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .filter(|l| l.contains("ctxt_switches:"))
        .map(|l| l.split_whitespace().last().unwrap().parse::<u64>().unwrap())
        .sum()
}

/// The process group of `pid` (field 5 of /proc/PID/stat).
pub fn pgrp_of(pid: u32) -> Option<u32> {
    stat_fields(pid)?.get(2)?.parse().ok()
}

/// The session of `pid` (field 6 of /proc/PID/stat).
pub fn session_of(pid: u32) -> Option<u32> {
    stat_fields(pid)?.get(3)?.parse().ok()
}

/// Pids of every process on the machine (from /proc).
pub fn all_pids() -> Vec<u32> {
    fs::read_dir("/proc")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Every descendant of `pid`, zombies included (through the parent links of /proc/*/stat).
pub fn descendants(pid: u32) -> Vec<u32> {
    let links: Vec<(u32, u32)> = all_pids()
        .into_iter()
        .filter_map(|p| Some((p, parent_of(p)?)))
        .collect();
    let mut out = vec![];
    let mut frontier = vec![pid];
    while let Some(p) = frontier.pop() {
        for &(c, parent) in &links {
            if parent == p && !out.contains(&c) {
                out.push(c);
                frontier.push(c);
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Builders for the programs most tests run (the shape of ripgrep's `TestCommand`)

/// One run of `svc` (or a peer's, with [`Svc::program`]): `Svc::new(&sb).args(["-d"])
/// .dir(&d).expect_ok()`.
pub struct Svc<'a> {
    sb: &'a Sandbox,
    program: PathBuf,
    args: Vec<std::ffi::OsString>,
}

impl<'a> Svc<'a> {
    pub fn new(sb: &'a Sandbox) -> Svc<'a> {
        Svc {
            sb,
            program: bin("svc"),
            args: vec![],
        }
    }

    /// Runs another binary (Debian's `/usr/bin/svc`) instead of ours.
    pub fn program(mut self, path: impl Into<PathBuf>) -> Self {
        self.program = path.into();
        self
    }

    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Self {
        self.args.push(a.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// A service directory (any number, in order, after the options).
    pub fn dir(self, d: impl AsRef<Path>) -> Self {
        self.arg(d.as_ref())
    }

    /// The command, not run.
    pub fn command(&self) -> Command {
        let mut c = self.sb.command(&self.program);
        c.args(&self.args);
        c
    }

    /// Runs it; (exit code, stdout, stderr).
    pub fn run(&self) -> (i32, String, String) {
        run_output(&mut self.command())
    }

    /// Runs it and asserts exit 0 with nothing on stdout or stderr.
    pub fn expect_ok(&self) {
        let (code, out, err) = self.run();
        assert_eq!(
            (code, out.as_str(), err.as_str()),
            (0, "", ""),
            "{} {:?}",
            self.program.display(),
            self.args
        );
    }
}

/// Where a started supervisor's stderr goes.
enum Stderr {
    Null,
    File(PathBuf),
    Inherit,
    Piped,
}

impl Stderr {
    fn stdio(&self) -> Stdio {
        match self {
            Stderr::Null => Stdio::null(),
            Stderr::File(p) => Stdio::from(fs::File::create(p).unwrap()),
            Stderr::Inherit => Stdio::inherit(),
            Stderr::Piped => Stdio::piped(),
        }
    }
}

/// supervise on one directory: `Supervise::new(&sb, &dir).stderr_to(p).start()` returns once
/// `supervise/ok` has a reader.
pub struct Supervise<'a> {
    sb: &'a Sandbox,
    dir: PathBuf,
    program: PathBuf,
    stderr: Stderr,
    cgroup: bool,
    first_status: bool,
}

impl<'a> Supervise<'a> {
    pub fn new(sb: &'a Sandbox, dir: impl AsRef<Path>) -> Supervise<'a> {
        Supervise {
            sb,
            dir: dir.as_ref().to_owned(),
            program: bin("supervise"),
            stderr: Stderr::Null,
            cgroup: true,
            first_status: false,
        }
    }

    /// Runs another binary (Debian's `/usr/bin/supervise`) instead of ours.
    pub fn program(mut self, path: impl Into<PathBuf>) -> Self {
        self.program = path.into();
        self
    }

    /// supervise's stderr into a (new) file; it goes to /dev/null otherwise.
    pub fn stderr_to(mut self, path: impl Into<PathBuf>) -> Self {
        self.stderr = Stderr::File(path.into());
        self
    }

    /// supervise's stderr left to the test's own.
    pub fn stderr_inherit(mut self) -> Self {
        self.stderr = Stderr::Inherit;
        self
    }

    /// supervise's stderr as a pipe (`proc.child.stderr`).
    pub fn stderr_piped(mut self) -> Self {
        self.stderr = Stderr::Piped;
        self
    }

    /// No cgroup2 for it (`VIGIL_CGROUP_ROOT=off`): supervise falls back to its subreaper.
    pub fn no_cgroup(mut self) -> Self {
        self.cgroup = false;
        self
    }

    /// With `on` false, as [`Supervise::no_cgroup`].
    pub fn cgroup(mut self, on: bool) -> Self {
        self.cgroup = on;
        self
    }

    /// [`Supervise::start`] also waits until `supervise/status` is written.
    pub fn wait_first_status(mut self) -> Self {
        self.first_status = true;
        self
    }

    /// The command, not started.
    pub fn command(&self) -> Command {
        let mut c = self.sb.command(&self.program);
        if !self.cgroup {
            c.env("VIGIL_CGROUP_ROOT", "off");
        }
        c.arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(self.stderr.stdio());
        c
    }

    /// Starts it without waiting for anything.
    pub fn spawn(&self) -> Proc {
        spawn(&mut self.command())
    }

    /// Starts it and waits until `supervise/ok` has a reader (and, if asked, until
    /// `supervise/status` is written).
    pub fn start(&self) -> Proc {
        let p = self.spawn();
        wait_supervised(&self.dir);
        if self.first_status {
            wait_status(&self.dir, "first status", |_| true);
        }
        p
    }
}

/// svscan on one scan directory: `Svscan::new(&sb, &scan).args([..]).start()`; its stderr goes
/// to a file of the sandbox (`svscan-N.err`) unless told otherwise.
pub struct Svscan<'a> {
    sb: &'a Sandbox,
    scan: PathBuf,
    args: Vec<std::ffi::OsString>,
    stderr: Stderr,
}

impl<'a> Svscan<'a> {
    pub fn new(sb: &'a Sandbox, scan: impl AsRef<Path>) -> Svscan<'a> {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        Svscan {
            sb,
            scan: scan.as_ref().to_owned(),
            args: vec![],
            stderr: Stderr::File(sb.path(&format!("svscan-{n}.err"))),
        }
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// svscan's stderr into a (new) file.
    pub fn stderr_to(mut self, path: impl Into<PathBuf>) -> Self {
        self.stderr = Stderr::File(path.into());
        self
    }

    /// The command, not started.
    pub fn command(&self) -> Command {
        let mut c = self.sb.command(bin("svscan"));
        c.args(&self.args)
            .arg(&self.scan)
            .stderr(self.stderr.stdio());
        c
    }

    /// Starts it. svscan has no readiness of its own to wait for: the caller waits on the
    /// services it expects (`wait_up`, `wait_supervised`).
    pub fn start(&self) -> Proc {
        spawn(&mut self.command())
    }
}
