//! Test harness for vigil's black-box suite: finds the built binaries, gives each test its own
//! temp directory, waits on observable state with deadlines, and kills everything a test
//! started.
//!
//! Every process a test starts gets `VIGIL_TEST_TAG=<its temp dir>` in its environment;
//! supervisors pass their environment on, so the whole tree carries the tag. Dropping the
//! [`Sandbox`] kills every process carrying it, by pid (found through `/proc/PID/environ`), and
//! removes the directory. Nothing is ever killed by name.
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
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let events = fs::read_to_string(dir.join("cgroup.events")).unwrap_or_default();
        if !events.contains("populated 1") {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
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
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s
            .rsplit_once(") ")
            .is_none_or(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X')),
        Err(_) => true,
    }
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

/// Waits until `supervise/ok` of `dir` has a reader (supervise is running).
pub fn wait_supervised(dir: &Path) {
    wait_until(
        Duration::from_secs(10),
        &format!("supervise on {}", dir.display()),
        || {
            fs::OpenOptions::new()
                .write(true)
                .custom_flags_nonblock()
                .open(dir.join(vigil_core::layout::OK))
                .is_ok()
        },
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
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.split(' ').nth(1)?.parse().ok()
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
