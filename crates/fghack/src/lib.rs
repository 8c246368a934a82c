//! fghack — keep a daemon that puts itself in the background attached to its supervise.
//!
//! Usage: `fghack child [ arg ... ]`
//!
//! As daemontools' fghack: the child runs (found through PATH) with 31 copies of the write end
//! of a pipe; fghack waits until every process holding one has closed it or died.
//! Beyond that: fghack is a child subreaper, so a daemon that double-forks and closes every
//! descriptor stays its descendant; fghack waits until its last descendant has exited. It
//! forwards TERM, INT, HUP, QUIT, USR1, USR2, ALRM, CONT and WINCH to all of its descendants, so
//! `svc -d`, `svc -h` and the like reach the daemon.
//!
//! Exit, once every descendant is gone, as daemontools' fghack: the child's exit code (the
//! process fghack started, not the daemon it left behind), or 111 with `fghack: fatal: child
//! crashed` when a signal killed the child; 100 usage (`fghack: usage: fghack child`); 111 when
//! the child cannot be run (`fghack: fatal: unable to run PROG: ERR`, ENOEXEC included: no
//! shell is tried) or signals cannot be set up.
#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::io::{PipeReader, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;

use vigil_core::control::sig;
use vigil_sys::diag::{self, EXIT_TEMP};
use vigil_sys::signals::{self, Signals};
use vigil_sys::{poll, process, spawn};

const PROG: &str = "fghack";
/// Signals passed on to the daemon.
const FORWARDED: [i32; 9] = [
    sig::TERM,
    sig::INT,
    sig::HUP,
    sig::QUIT,
    sig::USR1,
    sig::USR2,
    sig::ALRM,
    sig::CONT,
    sig::WINCH,
];
/// daemontools' fghack hands the child the pipe plus 30 duplicates.
const COPIES: RawFd = 31;

/// The program, called with its arguments after argv[0].
pub fn main(args: Vec<OsString>) -> ExitCode {
    let Some((prog, rest)) = args.split_first() else {
        return diag::usage(PROG, "fghack child");
    };
    let prog_name = String::from_utf8_lossy(prog.as_bytes()).into_owned();
    let fatal = |verb: &str, object: &dyn std::fmt::Display, e: &std::io::Error| {
        diag::unable_fatal(PROG, verb, object, e, EXIT_TEMP)
    };

    signals::reset_dispositions();
    process::cloexec_inherited();
    let mut blocked = vec![signals::CHLD];
    blocked.extend(FORWARDED);
    let mut signals = match Signals::block(&blocked) {
        Ok(s) => s,
        Err(e) => return fatal("block", &"signals", &e),
    };
    if let Err(e) = process::become_subreaper() {
        return fatal("become", &"a subreaper", &e);
    }
    let (read_end, write_end): (PipeReader, OwnedFd) = match std::io::pipe() {
        Ok((r, w)) => (r, w.into()),
        Err(e) => return fatal("create", &"pipe", &e),
    };
    // The copies are made here (close-on-exec) and keep their numbers in the child, where
    // only their close-on-exec flag is cleared: dup2 onto chosen numbers could land on
    // descriptors std uses between fork and exec.
    let mut copies = Vec::new();
    for _ in 0..COPIES {
        match write_end.try_clone() {
            Ok(c) => copies.push(c),
            Err(e) => return fatal("duplicate", &"pipe", &e),
        }
    }
    let fds: Vec<(&OwnedFd, RawFd)> = copies.iter().map(|c| (c, c.as_raw_fd())).collect();
    let args: Vec<&std::ffi::OsStr> = rest.iter().map(OsString::as_os_str).collect();
    let opts = spawn::Spawn {
        fds,
        ..spawn::Spawn::default()
    };
    let child = match spawn::spawn(prog, &args, opts) {
        Ok(pid) => pid,
        Err(e) => return fatal("run", &prog_name, &e),
    };
    drop(copies);
    drop(write_end);
    watch(&mut signals, read_end, child)
}

/// Waits for the pipe to close and every descendant to exit, forwarding signals meanwhile.
fn watch(signals: &mut Signals, read_end: PipeReader, child: u32) -> ExitCode {
    let me = process::own_pid();
    let mut pipe = Some(read_end);
    // The wait status of the child fghack started.
    let mut status: Option<i32> = None;
    let mut buf = [0u8; 512];
    let mut ready = [false; 2];
    loop {
        if pipe.is_none() && process::children_of(me).is_empty() {
            return finish(status);
        }
        let fds: Vec<BorrowedFd<'_>> = std::iter::once(signals.as_fd())
            .chain(pipe.as_ref().map(AsFd::as_fd))
            .collect();
        if let Err(e) = poll::wait(&fds, &mut ready, None) {
            diag::warn(PROG, &diag::bare_text("poll", &e));
        }
        if ready.get(1).copied().unwrap_or(false)
            && let Some(p) = &pipe
        {
            // Blocking read, but poll said readable: data (nobody should write) or EOF.
            match (&*p).read(&mut buf) {
                Ok(0) | Err(_) => pipe = None,
                Ok(_) => {}
            }
        }
        if ready.first().copied().unwrap_or(false) {
            while let Some(s) = signals.pending() {
                if s == signals::CHLD {
                    while let Some((pid, st)) = process::reap() {
                        if pid == child {
                            status = Some(st);
                        }
                    }
                } else {
                    forward(me, s);
                }
            }
        }
    }
}

/// Sends `s` to every descendant, parents before children.
fn forward(me: u32, s: i32) {
    let mut todo = process::children_of(me);
    let mut seen = Vec::new();
    while let Some(pid) = todo.pop() {
        if seen.contains(&pid) {
            continue;
        }
        seen.push(pid);
        let _ = process::signal(pid, s, false);
        todo.extend(process::children_of(pid));
    }
}

/// Leaves with the child's status, as daemontools' fghack reports it: the child's, even when
/// fghack held on to a daemon the child left behind (scripts written for daemontools test it).
fn finish(status: Option<i32>) -> ExitCode {
    let Some(status) = status else {
        return ExitCode::SUCCESS;
    };
    if status & 0x7f != 0 {
        return diag::fatal(PROG, "child crashed", EXIT_TEMP);
    }
    ExitCode::from(u8::try_from((status >> 8) & 0xff).unwrap_or(EXIT_TEMP))
}
