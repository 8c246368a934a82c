//! Starting children: `./run`, `./finish`, supervise processes.
//!
//! Each child starts with an empty signal mask (std no longer clears it, and a child that
//! inherits our blocked SIGTERM cannot be stopped), default dispositions (reset at our start),
//! only fds 0-2 (everything of ours is close-on-exec) plus any fds asked for, and optionally
//! its own session. Between fork and exec only async-signal-safe calls are made.
//!
//! The exec is ours, not std's: std's `Command` ends in glibc's `execvp`, which runs a file
//! the kernel refuses with ENOEXEC (an empty file, a script without `#!`) through `/bin/sh`.
//! daemontools' pathexec does not, and neither does this: the program is looked up in PATH
//! before the fork, and the child `execve`s each candidate itself, so ENOEXEC comes back to
//! the caller as the spawn's error.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::mem::ManuallyDrop;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::sync::atomic::{AtomicI32, Ordering};

/// PATH when the environment has none (as glibc's and daemontools' default).
const DEFAULT_PATH: &[u8] = b"/bin:/usr/bin";

/// Everything `execve` needs, built before the fork: the files to try in order, argv and
/// envp as C strings with their NULL-terminated pointer arrays.
struct Exec {
    candidates: Vec<CString>,
    _argv: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    _envp: Vec<CString>,
    /// Empty when the child gets our own environment as it is (`environ`, nothing copied).
    envp_ptrs: Vec<*const libc::c_char>,
}

unsafe extern "C" {
    /// The C library's environment of this process.
    static environ: *const *const libc::c_char;
}

// SAFETY: the pointers point into the CStrings owned by the same struct (their heap buffers do
// not move with them); they are only read, in the child, while the struct is alive.
unsafe impl Send for Exec {}
// SAFETY: as above; nothing is ever written through the pointers.
unsafe impl Sync for Exec {}

fn c_string(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

fn pointers(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|c| c.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

impl Exec {
    /// `program` as execvp looks it up: as is when it holds a `/`, else in each PATH entry.
    fn new(
        program: &OsStr,
        arg0: &OsStr,
        args: &[&OsStr],
        env: &[(&OsStr, &OsStr)],
    ) -> io::Result<Exec> {
        // With nothing to add, the child execs with `environ` itself: no copy of it.
        let mut vars: Vec<(OsString, OsString)> = Vec::new();
        if !env.is_empty() {
            vars = std::env::vars_os()
                .filter(|(k, _)| !env.iter().any(|(n, _)| n == k))
                .collect();
            vars.extend(
                env.iter()
                    .map(|(k, v)| (k.to_os_string(), v.to_os_string())),
            );
        }
        let name = program.as_bytes();
        let candidates = if name.contains(&b'/') {
            vec![c_string(name)?]
        } else {
            let own_path;
            let path = if env.is_empty() {
                own_path = std::env::var_os("PATH");
                own_path.as_deref().map_or(DEFAULT_PATH, OsStrExt::as_bytes)
            } else {
                vars.iter()
                    .find(|(k, _)| k == "PATH")
                    .map_or(DEFAULT_PATH, |(_, v)| v.as_bytes())
            };
            let mut out = Vec::new();
            for dir in path.split(|&b| b == b':') {
                let dir: &[u8] = if dir.is_empty() { b"." } else { dir };
                let mut file = dir.to_vec();
                file.push(b'/');
                file.extend_from_slice(name);
                out.push(c_string(&file)?);
            }
            out
        };
        let argv = std::iter::once(arg0)
            .chain(args.iter().copied())
            .map(|a| c_string(a.as_bytes()))
            .collect::<io::Result<Vec<_>>>()?;
        let envp = vars
            .into_iter()
            .map(|(k, v)| {
                let mut kv = k.into_vec();
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                c_string(&kv)
            })
            .collect::<io::Result<Vec<_>>>()?;
        let envp_ptrs = if env.is_empty() {
            Vec::new()
        } else {
            pointers(&envp)
        };
        Ok(Exec {
            candidates,
            argv_ptrs: pointers(&argv),
            _argv: argv,
            envp_ptrs,
            _envp: envp,
        })
    }

    /// In the child: execs the first candidate that exists. Returns only on failure, with
    /// EACCES if a candidate was found but not executable, else the first other error
    /// (ENOEXEC among them), else ENOENT. Async-signal-safe: no allocation.
    fn exec(&self) -> io::Error {
        let mut denied = false;
        let envp = if self.envp_ptrs.is_empty() {
            // SAFETY: reads the pointer libc keeps; nothing changes it while we run (the
            // parent is suspended and single-threaded code of ours never sets variables).
            unsafe { environ }
        } else {
            self.envp_ptrs.as_ptr()
        };
        for file in &self.candidates {
            // SAFETY: every pointer is a NUL-terminated string or the final NULL, built
            // before the fork and alive with `self`.
            unsafe { libc::execve(file.as_ptr(), self.argv_ptrs.as_ptr(), envp) };
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::ENOENT | libc::ENOTDIR) => {}
                Some(libc::EACCES) => denied = true,
                _ => return e,
            }
        }
        io::Error::from_raw_os_error(if denied { libc::EACCES } else { libc::ENOENT })
    }
}

/// How to start one child.
#[derive(Default)]
pub struct Spawn<'a> {
    /// Start in a new session (`setsid`): the child leads its own process group.
    pub setsid: bool,
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    /// Extra descriptors to hand over as (source, number in the child).
    pub fds: Vec<(&'a OwnedFd, RawFd)>,
    /// Working directory of the child.
    pub cwd: Option<&'a std::path::Path>,
    /// argv[0] as the child sees it, when it differs from the program path.
    pub arg0: Option<&'a OsStr>,
    /// Variables to add to (or replace in) the inherited environment.
    pub env: Vec<(&'a OsStr, &'a OsStr)>,
    /// A cgroup's `cgroup.procs` open for writing (`cgroup::ServiceCgroup::open_procs`): the
    /// child writes `0` to it first thing, so it and everything it starts belong to that
    /// cgroup. A failure comes back as the spawn's error, like an exec error.
    pub cgroup_procs: Option<std::os::fd::BorrowedFd<'a>>,
    /// The same cgroup's directory: where the kernel can do it (`clone3` with
    /// `CLONE_INTO_CGROUP`, Linux 5.7, x86_64 here), the child is born in the cgroup instead of
    /// moving itself there. A move (a write to `cgroup.procs`) takes the cgroup threadgroup lock
    /// for writing, which waits for an RCU grace period: milliseconds on an idle machine, and
    /// the spawn waits with it. `cgroup_procs` remains the fallback.
    pub cgroup_dir: Option<std::os::fd::BorrowedFd<'a>>,
}

/// Bytes of stack for the child between clone and exec (mapped per spawn, touched sparsely).
const CHILD_STACK: usize = 64 * 1024;

/// What the child needs, built before the clone; `err` is where it leaves the exec errno.
struct ChildPlan<'a> {
    exec: &'a Exec,
    setsid: bool,
    stdin: Option<RawFd>,
    stdout: Option<RawFd>,
    moves: &'a [(RawFd, RawFd)],
    cwd: Option<&'a CString>,
    cgroup_procs: Option<RawFd>,
    err: AtomicI32,
}

/// `CLONE_INTO_CGROUP` (linux/sched.h): `clone3` places the child in `clone_args.cgroup`.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `struct clone_args` of linux/sched.h (version 2, with `cgroup`).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// `clone3(CLONE_VM|CLONE_VFORK|CLONE_INTO_CGROUP)` running `child_main(plan)` on `stack` in
/// the child; returns what the syscall returned in the parent (pid or -errno). Needs assembly:
/// the child starts on the new stack at the instruction after `syscall`, so it must not return
/// into any Rust frame.
#[cfg(target_arch = "x86_64")]
fn clone3_into(cgroup: RawFd, stack: *mut libc::c_void, plan: *mut libc::c_void) -> i64 {
    let args = CloneArgs {
        flags: (libc::CLONE_VM | libc::CLONE_VFORK) as u64 | CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        stack: stack as u64,
        stack_size: CHILD_STACK as u64,
        cgroup: u64::try_from(cgroup).unwrap_or(u64::MAX),
        ..CloneArgs::default()
    };
    let entry: extern "C" fn(*mut libc::c_void) -> libc::c_int = child_main;
    let ret: i64;
    // SAFETY: the raw clone3 syscall. In the parent it returns like any syscall (rcx and r11
    // clobbered; the child may have written our memory, which the asm block is allowed to do
    // as it is not `nomem`). In the child (rax 0) the kernel has set the stack pointer to the
    // top of `stack` (page aligned, so 16-byte aligned at the call), and r12/r13, preserved
    // across syscall, hold the plan and the entry point; `child_main` execs or ends the child
    // with SYS_exit, and should it return, the child exits here: it never returns into a Rust
    // frame. CLONE_VFORK keeps us suspended, so `args`, `plan` and `stack` outlive its use.
    unsafe {
        std::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "xor ebp, ebp",
            "mov rdi, r12",
            "call r13",
            "mov edi, eax",
            "mov eax, {exit}",
            "syscall",
            "ud2",
            "2:",
            exit = const libc::SYS_exit,
            inlateout("rax") libc::SYS_clone3 => ret,
            in("rdi") &raw const args,
            in("rsi") std::mem::size_of::<CloneArgs>(),
            in("r12") plan,
            in("r13") entry,
            lateout("rcx") _,
            lateout("r11") _,
        );
    }
    ret
}

/// Makes `src` the child's descriptor `dst` (without close-on-exec).
fn place_fd(src: RawFd, dst: RawFd) -> io::Result<()> {
    // SAFETY: both numbers are open descriptors of the (child) process; `target` is never
    // closed by a destructor (ManuallyDrop), the borrow ends with this call.
    unsafe {
        if src == dst {
            let fd = std::os::fd::BorrowedFd::borrow_raw(src);
            rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty())?;
        } else {
            let mut target = ManuallyDrop::new(OwnedFd::from_raw_fd(dst));
            let src_fd = std::os::fd::BorrowedFd::borrow_raw(src);
            rustix::io::dup2(src_fd, &mut target)?;
        }
    }
    Ok(())
}

impl ChildPlan<'_> {
    /// In the child (sharing our memory, we suspended): returns only on failure.
    fn run(&self) -> io::Error {
        crate::signals::reset_handlers_for_exec();
        let steps = || -> io::Result<()> {
            if let Some(fd) = self.cgroup_procs {
                join_cgroup(fd)?;
            }
            crate::signals::unblock_all()?;
            if self.setsid {
                rustix::process::setsid()?;
            }
            if let Some(fd) = self.stdin {
                place_fd(fd, 0)?;
            }
            if let Some(fd) = self.stdout {
                place_fd(fd, 1)?;
            }
            for &(src, dst) in self.moves {
                place_fd(src, dst)?;
            }
            if let Some(d) = self.cwd {
                rustix::process::chdir(d.as_c_str())?;
            }
            Ok(())
        };
        match steps() {
            Ok(()) => self.exec.exec(),
            Err(e) => e,
        }
    }
}

/// In the child: moves itself into the cgroup whose `cgroup.procs` is `fd` (one write(2)).
fn join_cgroup(fd: RawFd) -> io::Result<()> {
    // SAFETY: `fd` is borrowed from the `Spawn` options, open for the whole spawn; the borrow
    // ends with this call.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    loop {
        match rustix::io::write(fd, b"0") {
            Ok(1) => return Ok(()),
            Ok(_) => return Err(io::Error::from_raw_os_error(libc::EIO)),
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

extern "C" fn child_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `ChildPlan` the parent passed to clone; the parent is suspended
    // (CLONE_VFORK) until we exec or exit, so it stays alive and unmoved.
    let plan = unsafe { &*(arg as *const ChildPlan<'_>) };
    let e = plan.run();
    plan.err
        .store(e.raw_os_error().unwrap_or(libc::EINVAL), Ordering::SeqCst);
    // SAFETY: ends this child at once (exit, not exit_group: no atexit handlers, no flush of
    // the buffers it shares with the parent).
    unsafe { libc::syscall(libc::SYS_exit, 127) };
    127
}

/// Starts `program` (looked up in PATH unless it holds a `/`) with `args`; returns the child's
/// pid. Exec failures come back as `Err` with the exec errno, ENOEXEC included.
///
/// The child is made with `clone(CLONE_VM|CLONE_VFORK)` (posix_spawn's way): it runs on a
/// stack of its own in our memory while we wait, so nothing is copied, and its exec errno is
/// simply left in that memory (no pipe or socket to learn it). It first puts every signal that
/// has a handler back to its default (and SIGPIPE, which the Rust runtime ignores), so no
/// handler of ours can run in it, then empties its signal mask.
pub fn spawn(program: &OsStr, args: &[&OsStr], opts: Spawn<'_>) -> io::Result<u32> {
    let exec = Exec::new(program, opts.arg0.unwrap_or(program), args, &opts.env)?;
    let cwd = opts
        .cwd
        .map(|d| c_string(d.as_os_str().as_bytes()))
        .transpose()?;
    let moves: Vec<(RawFd, RawFd)> = opts
        .fds
        .iter()
        .map(|(src, dst)| (src.as_raw_fd(), *dst))
        .collect();
    let mut plan = ChildPlan {
        exec: &exec,
        setsid: opts.setsid,
        stdin: opts.stdin.as_ref().map(AsRawFd::as_raw_fd),
        stdout: opts.stdout.as_ref().map(AsRawFd::as_raw_fd),
        moves: &moves,
        cwd: cwd.as_ref(),
        // Set only when the child has to move itself (see below).
        cgroup_procs: None,
        err: AtomicI32::new(0),
    };
    // SAFETY: a fresh private anonymous mapping, unmapped below once the child has left it.
    let stack = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            CHILD_STACK,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
            -1,
            0,
        )
    };
    if stack == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    let plan_ptr = (&raw const plan).cast_mut().cast::<libc::c_void>();
    // Born in the cgroup where the kernel can; else (no clone3, an old kernel, another
    // architecture) the child moves itself there through `cgroup.procs`.
    #[cfg(target_arch = "x86_64")]
    let born = opts
        .cgroup_dir
        .map(|dir| clone3_into(dir.as_raw_fd(), stack, plan_ptr));
    #[cfg(not(target_arch = "x86_64"))]
    let born: Option<i64> = None;
    let (raw, clone_err) = match born {
        Some(r) if r > 0 => (
            i32::try_from(r).unwrap_or(-1),
            io::Error::from_raw_os_error(0),
        ),
        Some(r)
            if !matches!(
                i32::try_from(-r),
                Ok(libc::ENOSYS | libc::E2BIG | libc::EINVAL)
            ) =>
        {
            (
                -1,
                io::Error::from_raw_os_error(i32::try_from(-r).unwrap_or(libc::EINVAL)),
            )
        }
        _ => {
            plan.cgroup_procs = opts.cgroup_procs.as_ref().map(AsRawFd::as_raw_fd);
            let plan_ptr = (&raw const plan).cast_mut().cast::<libc::c_void>();
            // SAFETY: the child runs `child_main` on the top of `stack`, sharing our memory;
            // CLONE_VFORK suspends us until it has exec'ed or exited, so `plan` and everything it
            // points to outlive its use. It only makes syscalls and reads what was built before
            // (no allocation, no locks).
            let r = unsafe {
                let top = stack.cast::<u8>().add(CHILD_STACK).cast::<libc::c_void>();
                libc::clone(
                    child_main,
                    top,
                    libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
                    plan_ptr,
                )
            };
            (r, io::Error::last_os_error())
        }
    };
    // SAFETY: the mapping made above; the child has left it (exec'ed or exited).
    unsafe { libc::munmap(stack, CHILD_STACK) };
    let pid = u32::try_from(raw).map_err(|_| clone_err)?;
    match plan.err.load(Ordering::SeqCst) {
        0 => Ok(pid),
        errno => {
            // It has exited (or is about to): reap it here, it was never started.
            let mut status = 0;
            loop {
                // SAFETY: waits for our own child by pid; `status` is a valid int.
                let r = unsafe { libc::waitpid(raw, &mut status, 0) };
                if r >= 0 || io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                    break;
                }
            }
            Err(io::Error::from_raw_os_error(errno))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn errno(r: io::Result<u32>) -> Option<i32> {
        match r {
            Ok(pid) => {
                let _ = crate::process::wait_for(pid);
                None
            }
            Err(e) => e.raw_os_error(),
        }
    }

    #[test]
    fn exec_errors_come_back_and_no_shell_is_tried() {
        let dir = std::env::temp_dir().join(format!("vigil-spawn-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = |name: &str, text: &str, mode: u32| {
            let p = dir.join(name);
            std::fs::write(&p, text).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            p
        };
        let empty = file("empty", "", 0o755);
        let script = file("script", "touch ran\n", 0o755);
        file("plain", "", 0o644);
        let path = OsString::from(format!("{}:/usr/bin:/bin", dir.display()));
        let spawn_in = |prog: &OsStr| {
            let opts = Spawn {
                cwd: Some(&dir),
                env: vec![(OsStr::new("PATH"), path.as_os_str())],
                ..Spawn::default()
            };
            spawn(prog, &[], opts)
        };
        assert_eq!(errno(spawn_in(empty.as_os_str())), Some(libc::ENOEXEC));
        assert_eq!(errno(spawn_in(script.as_os_str())), Some(libc::ENOEXEC));
        assert_eq!(errno(spawn_in(OsStr::new("script"))), Some(libc::ENOEXEC));
        assert_eq!(errno(spawn_in(OsStr::new("./empty"))), Some(libc::ENOEXEC));
        assert_eq!(errno(spawn_in(OsStr::new("plain"))), Some(libc::EACCES));
        assert_eq!(
            errno(spawn_in(OsStr::new("vigil-no-such-program"))),
            Some(libc::ENOENT)
        );
        assert_eq!(errno(spawn_in(OsStr::new("true"))), None);
        assert!(
            !dir.join("ran").exists(),
            "a file without #! was run by a shell"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_environment_is_passed_on_as_it_is_or_with_additions() {
        let dir = std::env::temp_dir().join(format!("vigil-spawn-env-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let run = |env: Vec<(&OsStr, &OsStr)>, out: &str| {
            let file = std::fs::File::create(dir.join(out)).unwrap();
            let opts = Spawn {
                stdout: Some(OwnedFd::from(file)),
                env,
                ..Spawn::default()
            };
            let pid = spawn(OsStr::new("env"), &[], opts).unwrap();
            assert_eq!(crate::process::wait_for(pid).ok(), Some(0));
            std::fs::read_to_string(dir.join(out)).unwrap()
        };
        let own = run(vec![], "own");
        let path = std::env::var("PATH").unwrap();
        assert!(own.lines().any(|l| l == format!("PATH={path}")), "{own}");
        let added = run(
            vec![(OsStr::new("VIGIL_SPAWN_TEST"), OsStr::new("1"))],
            "added",
        );
        assert!(added.lines().any(|l| l == "VIGIL_SPAWN_TEST=1"), "{added}");
        assert!(
            added.lines().any(|l| l == format!("PATH={path}")),
            "{added}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
