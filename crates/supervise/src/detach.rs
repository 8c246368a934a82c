//! `supervise -d DIR`: make sure one supervise runs on DIR, started fully detached from us.
//!
//! daemontools compat: daemontools' supervise takes no option; `-d` is ours (a directory named
//! `-d` still works as the only argument).
//!
//! Steps, with callers on the same DIR taking turns (a `flock` on DIR itself, see
//! `vigil_sys::detach`):
//! 1. A supervise already answers on `DIR/supervise/ok`: exit 0 at once.
//! 2. When `DIR/log/run` exists, the logger first: if its supervise runs, its stdin pipe is
//!    reopened for writing (through the `/proc` entry of the process holding
//!    `DIR/log/supervise/lock`); else a pipe is made and a detached `supervise DIR/log` started
//!    with the read end as stdin. The write end becomes DIR's stdout.
//! 3. Our own executable as `supervise DIR`, in a new session, stdin `/dev/null`, stdout the
//!    log pipe or `/dev/null`, stderr a pipe to us until it reports ready (its stderr then
//!    becomes a copy of its stdout). We read that pipe to its end: the ready byte means
//!    running with the lock taken (exit 0). Without it, the child has exited: when another
//!    supervise holds the lock (one started by someone else a moment ago), we wait for that
//!    one to answer and exit 0; otherwise we repeat what the child said and exit 111.

use std::ffi::{OsStr, OsString};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use vigil_core::layout;
pub(crate) use vigil_sys::detach::READY_FD_ENV;
use vigil_sys::detach::{self, READY, READY_FD};
use vigil_sys::diag::{self, EXIT_TEMP};
use vigil_sys::{fifo, files, lock, pidfd, process, spawn, wait};

use crate::PROG;

/// How long a new supervise may take to set up before we give up on it.
const SETUP_LIMIT: Duration = Duration::from_secs(10);

/// `supervise -d DIR`.
// Rare: out of line, so its buffers are not in the loop's frame for good (supervise's stack
// pages, once touched, are part of its memory).
#[inline(never)]
pub fn start(dir: &OsStr) -> ExitCode {
    let path = Path::new(dir);
    let name = dir.to_string_lossy().into_owned();
    // Whatever we inherited stays with us: the detached supervise gets fds 0-2 and its pipe.
    process::cloexec_inherited();
    // Held to the end: the next caller on DIR looks only after we are done.
    // No directory (or none we may read): the supervise started below says why.
    let _turn = detach::lock_dir_waiting(path).ok();
    if is_running(path) {
        return ExitCode::SUCCESS;
    }
    let log = path.join(layout::LOG);
    let stdout = match files::exists(&log.join(layout::RUN)) {
        Ok(true) => match log_pipe(&log, &name) {
            Ok(w) => w,
            Err(code) => return code,
        },
        _ => None,
    };
    let stdout = match stdout.map_or_else(|| detach::open_null(true), Ok) {
        Ok(fd) => fd,
        Err(e) => return fatal_open_null(&e),
    };
    launch(dir, &name, stdout, None)
}

/// Whether a supervise answers on `dir/supervise/ok`.
fn is_running(dir: &Path) -> bool {
    let Ok(base) = fifo::open_dir(dir) else {
        return false;
    };
    fifo::open_write_at(&base, layout::OK).is_ok()
}

/// The write end of the pipe into the logger of `log` (`DIR/log`), starting that logger's
/// supervise when none runs. `None` (with a warning) when a running logger's pipe cannot be
/// reached: the service's output then goes to `/dev/null`.
fn log_pipe(log: &Path, name: &str) -> Result<Option<OwnedFd>, ExitCode> {
    let log_name = format!("{name}/{}", layout::LOG);
    let _turn = detach::lock_dir_waiting(log).ok();
    if is_running(log) {
        return Ok(match running_log_pipe(log) {
            Ok(w) => Some(w),
            Err(e) => {
                diag::warn(
                    PROG,
                    &format!(
                        "unable to reach the log pipe of {log_name}: {}; output of {name} goes to /dev/null",
                        diag::reason(&e)
                    ),
                );
                None
            }
        });
    }
    let (r, w) = detach::pipe().map_err(|e| {
        diag::unable_fatal(
            PROG,
            "create",
            &format_args!("pipe for {name}"),
            &e,
            EXIT_TEMP,
        )
    })?;
    let null = detach::open_null(true).map_err(|e| fatal_open_null(&e))?;
    let code = launch(log.as_os_str(), &log_name, null, Some(r));
    if code != ExitCode::SUCCESS {
        return Err(code);
    }
    Ok(Some(w))
}

/// A new write end of the pipe that the supervise holding `log/supervise/lock` has as stdin.
fn running_log_pipe(log: &Path) -> std::io::Result<OwnedFd> {
    let base = fifo::open_dir(log)?;
    let holder = match lock::lock_state(&base, layout::LOCK, &mut None)? {
        lock::Lock::Held(Some(h)) => h,
        _ => return Err(diag::refused("no supervise found holding its lock")),
    };
    let stdin = pidfd::take_fd(&holder, 0)?;
    if fifo::pipe_id(&stdin).is_none() {
        return Err(diag::refused("its stdin is not a pipe"));
    }
    fifo::other_end(std::os::fd::AsFd::as_fd(&stdin), false)
}

/// Starts `supervise DIR` detached and waits for its word: exit 0 once it runs (or once another
/// supervise that holds DIR's lock answers), 111 with its message otherwise.
fn launch(dir: &OsStr, name: &str, stdout: OwnedFd, stdin: Option<OwnedFd>) -> ExitCode {
    let stdin = match stdin.map_or_else(|| detach::open_null(false), Ok) {
        Ok(fd) => fd,
        Err(e) => return fatal_open_null(&e),
    };
    let (r, w) = match detach::pipe() {
        Ok(p) => p,
        Err(e) => {
            return diag::unable_fatal(
                PROG,
                "create",
                &format_args!("pipe for {name}"),
                &e,
                EXIT_TEMP,
            );
        }
    };
    let program = own_program();
    let fd_text = READY_FD.to_string();
    let opts = spawn::Spawn {
        setsid: true,
        stdin: Some(stdin),
        stdout: Some(stdout),
        fds: vec![(&w, 2), (&w, READY_FD)],
        arg0: Some(OsStr::new(PROG)),
        env: vec![(OsStr::new(READY_FD_ENV), OsStr::new(&fd_text))],
        ..spawn::Spawn::default()
    };
    let pid = match spawn::spawn(&program, &[dir], opts) {
        Ok(pid) => pid,
        Err(e) => {
            return diag::unable_fatal(
                PROG,
                "start",
                &format_args!("supervise for {name}"),
                &e,
                EXIT_TEMP,
            );
        }
    };
    drop(w);
    let deadline = Instant::now() + SETUP_LIMIT;
    let (said, ended) = match detach::read_until_eof(&r, deadline) {
        Ok(v) => v,
        Err(e) => {
            return diag::unable_fatal(
                PROG,
                "read",
                &format_args!("from supervise {name}"),
                &e,
                EXIT_TEMP,
            );
        }
    };
    let ready = said.contains(&READY);
    let text: Vec<u8> = said.into_iter().filter(|&b| b != READY).collect();
    let text = String::from_utf8_lossy(&text);
    if ready {
        // Setup warnings (an adopted ./run, a replaced FIFO) are still worth reading.
        text.lines().for_each(diag::line);
        return ExitCode::SUCCESS;
    }
    if !ended {
        let why = diag::refused("timed out");
        let object = format_args!("supervise for {name}");
        return diag::unable_fatal(PROG, "start", &object, &why, EXIT_TEMP);
    }
    // Without the ready byte the child has ended (or is ending): collect it.
    let _ = process::wait_for(pid);
    if lock_held(Path::new(dir))
        && wait::wait_supervised(Path::new(dir), Instant::now() + SETUP_LIMIT).unwrap_or(false)
    {
        return ExitCode::SUCCESS;
    }
    if text.trim().is_empty() {
        let why = diag::refused("it exited without a word");
        let object = format_args!("supervise for {name}");
        return diag::unable_fatal(PROG, "start", &object, &why, EXIT_TEMP);
    }
    text.lines().for_each(diag::line);
    ExitCode::from(EXIT_TEMP)
}

/// Whether some process holds `dir/supervise/lock`.
fn lock_held(dir: &Path) -> bool {
    fifo::open_dir(dir)
        .and_then(|base| lock::lock_state(&base, layout::LOCK, &mut None))
        .is_ok_and(|l| matches!(l, lock::Lock::Held(_)))
}

fn fatal_open_null(e: &std::io::Error) -> ExitCode {
    diag::unable_fatal(PROG, "open", &"/dev/null", e, EXIT_TEMP)
}

/// Our own executable (supervise is one of its programs), as svscan finds it.
fn own_program() -> OsString {
    std::fs::read_link("/proc/self/exe").map_or_else(
        |_| OsString::from("/proc/self/exe"),
        PathBuf::into_os_string,
    )
}
