//! Input/output for the logger (multilog): its [`Input`] (looking at the input pipe without
//! emptying it, taking out exactly what was written), its signals and what it polls, the
//! processor's fds 4 and 5. The log directories are [`crate::logdir`]'s.
//!
//! The point of [`PipePeek`] is the no-loss guarantee: data leaves the input pipe only after
//! the logger has written it, so a logger killed at any moment leaves everything it had not
//! written in the pipe for the next one.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::ExitStatus;
use std::time::Duration;

use rustix::fs::FileType;

use crate::poll;
use rustix::pipe::{
    PipeFlags, SpliceFlags, fcntl_getpipe_size, fcntl_setpipe_size, pipe_with, splice, tee,
};

/// Writes all of `buf` to a borrowed fd (stdout/stderr copies of log lines), retrying short
/// writes and EINTR.
pub fn write_fd(fd: BorrowedFd<'_>, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match rustix::io::write(fd, buf) {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
            Ok(n) => buf = buf.get(n..).unwrap_or_default(),
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// True when the fd is a pipe (or FIFO).
fn is_pipe(fd: BorrowedFd<'_>) -> bool {
    rustix::fs::fstat(fd).is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Fifo)
}

/// Looks at the contents of an input pipe with `tee(2)` into a private pipe, and removes bytes
/// from the input only when asked ([`PipePeek::consume`]).
pub struct PipePeek {
    private_r: OwnedFd,
    private_w: OwnedFd,
    devnull: Option<File>,
    capacity: usize,
    scratch: Vec<u8>,
}

impl PipePeek {
    /// Sets up the private pipe, as large as the input pipe so one look sees all of it.
    pub fn new(input: BorrowedFd<'_>) -> io::Result<PipePeek> {
        let (private_r, private_w) = pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)?;
        let want = fcntl_getpipe_size(input).unwrap_or(65536).max(65536);
        let capacity = fcntl_setpipe_size(&private_w, want)
            .or_else(|_| fcntl_getpipe_size(&private_w))
            .unwrap_or(65536);
        let devnull = File::options().write(true).open("/dev/null").ok();
        Ok(PipePeek {
            private_r,
            private_w,
            devnull,
            capacity,
            scratch: Vec::new(),
        })
    }

    /// Replaces `buf` with a copy of what the input pipe holds now (up to the private pipe's
    /// capacity), without consuming any of it. `Ok(0)` means end of input (no data and no
    /// writer); `Err(WouldBlock)` means empty for now.
    pub fn look(&mut self, input: BorrowedFd<'_>, buf: &mut Vec<u8>) -> io::Result<usize> {
        buf.clear();
        let n = loop {
            match tee(input, &self.private_w, self.capacity, SpliceFlags::NONBLOCK) {
                Ok(n) => break n,
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        };
        buf.resize(n, 0);
        let mut got = 0;
        while got < n {
            let Some(dst) = buf.get_mut(got..) else { break };
            match rustix::io::read(&self.private_r, dst) {
                Ok(0) => break,
                Ok(k) => got += k,
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        buf.truncate(got);
        Ok(got)
    }

    /// Takes exactly `n` bytes out of the input pipe (they were looked at and are written).
    /// `Err` says how many were taken before the failure.
    pub fn consume(&mut self, input: BorrowedFd<'_>, n: usize) -> Result<(), (usize, io::Error)> {
        let mut left = n;
        let taken = |left: usize| n.saturating_sub(left);
        while left > 0 {
            let spliced = match &self.devnull {
                Some(null) => splice(input, None, null, None, left, SpliceFlags::empty()),
                None => Err(rustix::io::Errno::INVAL),
            };
            let eof = || (taken(left), io::Error::from(io::ErrorKind::UnexpectedEof));
            match spliced {
                Ok(0) => return Err(eof()),
                Ok(k) => left = left.saturating_sub(k),
                Err(rustix::io::Errno::INTR) => {}
                Err(_) => {
                    // No splice to /dev/null here: read into a scratch buffer instead.
                    self.devnull = None;
                    self.scratch.resize(left.min(65536), 0);
                    match rustix::io::read(input, &mut self.scratch[..]) {
                        Ok(0) => return Err(eof()),
                        Ok(k) => left = left.saturating_sub(k),
                        Err(rustix::io::Errno::INTR) => {}
                        Err(e) => return Err((taken(left), e.into())),
                    }
                }
            }
        }
        Ok(())
    }
}

/// Plain `read(2)`, retrying EINTR: the fallback when the input is not a pipe.
fn read_fd(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match rustix::io::read(fd, &mut *buf) {
            Ok(n) => return Ok(n),
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// Bytes per `read(2)` when the input is not a pipe.
const PLAIN_READ: usize = 65536;

/// The logger's input (stdin): a pipe looked at with [`PipePeek`] and emptied only by
/// [`Input::consume`], or anything else read plainly.
pub struct Input {
    fd: BorrowedFd<'static>,
    peek: Option<PipePeek>,
    /// Pipe: a copy of the pipe's head. Plain: the last read.
    buf: Vec<u8>,
    /// Pipe: bytes at the pipe's head already handed out by [`Input::read`].
    seen: usize,
}

/// What one [`Input::read`] got.
pub struct Got<'a> {
    /// Bytes not handed out before (maybe none).
    pub bytes: &'a [u8],
    /// Nothing will come after them: end of file, or (pipe) every writer gone.
    pub end: bool,
}

impl Input {
    /// Standard input; a pipe is read without loss when `tee(2)` works on it.
    pub fn stdin() -> Input {
        let fd = stdin_fd();
        let peek = if is_pipe(fd) {
            PipePeek::new(fd).ok()
        } else {
            None
        };
        Input {
            fd,
            peek,
            buf: Vec::new(),
            seen: 0,
        }
    }

    /// Input leaves the pipe only through [`Input::consume`].
    pub fn is_pipe(&self) -> bool {
        self.peek.is_some()
    }

    pub fn fd(&self) -> BorrowedFd<'static> {
        self.fd
    }

    /// The pipe's head as it is now (empty when it cannot be seen), handing nothing out.
    pub fn head(&mut self) -> Vec<u8> {
        let mut head = Vec::new();
        if let Some(peek) = self.peek.as_mut() {
            let _ = peek.look(self.fd, &mut head);
        }
        head
    }

    /// Reads what is new. `hangup`: poll saw every writer gone, so a pipe's head is all there
    /// is.
    pub fn read(&mut self, hangup: bool) -> io::Result<Got<'_>> {
        match self.peek.as_mut() {
            Some(peek) => {
                let n = match peek.look(self.fd, &mut self.buf) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        return Ok(Got {
                            bytes: &[],
                            end: false,
                        });
                    }
                    Err(e) => return Err(e),
                };
                let old = std::mem::replace(&mut self.seen, n);
                Ok(Got {
                    bytes: self.buf.get(old..).unwrap_or_default(),
                    end: n == 0 || hangup,
                })
            }
            None => {
                self.buf.resize(PLAIN_READ, 0);
                let n = read_fd(self.fd, &mut self.buf[..])?;
                Ok(Got {
                    bytes: self.buf.get(..n).unwrap_or_default(),
                    end: n == 0,
                })
            }
        }
    }

    /// Takes `n` bytes handed out by [`Input::read`] out of a pipe (nothing to do for plain
    /// input). `Err` says how many were taken before the failure.
    pub fn consume(&mut self, n: usize) -> Result<(), (usize, io::Error)> {
        let Some(peek) = self.peek.as_mut() else {
            return Ok(());
        };
        let r = peek.consume(self.fd, n);
        let taken = match &r {
            Ok(()) => n,
            Err((k, _)) => *k,
        };
        self.seen = self.seen.saturating_sub(taken);
        r
    }
}

/// Readiness of the input and the signal fd after one `poll`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Ready {
    pub input: bool,
    /// The input's writers are all gone (POLLHUP): what is left is all there will be.
    pub hangup: bool,
    pub signal: bool,
}

/// Waits for input or a signal, at most `timeout` (`None`: no limit).
pub fn wait(
    input: Option<BorrowedFd<'_>>,
    signals: &LogSignals,
    timeout: Option<Duration>,
) -> io::Result<Ready> {
    let mut fds = vec![signals.signals.as_fd()];
    fds.extend(input);
    let mut seen = [poll::Seen::default(); 2];
    poll::wait_each(&fds, &mut seen, timeout)?;
    let [signal, input] = seen;
    let mut r = Ready {
        signal: signal.readable,
        ..Ready::default()
    };
    if fds.len() > 1 {
        r.hangup = input.hangup;
        r.input = input.readable;
    }
    Ok(r)
}

/// SIGTERM and SIGALRM, blocked and read through a signalfd.
pub struct LogSignals {
    signals: crate::signals::Signals,
}

/// Signals the logger acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogSignal {
    Term,
    Alarm,
}

impl LogSignals {
    pub fn install() -> io::Result<LogSignals> {
        Ok(LogSignals {
            signals: crate::signals::Signals::block(&[libc::SIGTERM, libc::SIGALRM])?,
        })
    }

    /// Every pending signal, in arrival order.
    pub fn drain(&mut self) -> Vec<LogSignal> {
        let mut out = vec![];
        while let Some(sig) = self.signals.pending() {
            match sig {
                libc::SIGTERM => out.push(LogSignal::Term),
                libc::SIGALRM => out.push(LogSignal::Alarm),
                _ => {}
            }
        }
        out
    }
}

/// Runs `sh -c PROCESSOR` in `dir` with stdin from `input`, stdout to `output`, fd 4 reading
/// `state` and fd 5 writing `newstate`, as daemontools' multilog does; waits for it.
pub fn run_processor(
    dir: &Path,
    processor: &std::ffi::OsStr,
    input: File,
    output: File,
    state: File,
    newstate: File,
) -> io::Result<ExitStatus> {
    // Out of the way of 0-5 first, so the dup2 calls in the child cannot clobber each other.
    let state_hi = rustix::io::fcntl_dupfd_cloexec(&state, 10)?;
    let newstate_hi = rustix::io::fcntl_dupfd_cloexec(&newstate, 10)?;
    let opts = crate::spawn::Spawn {
        stdin: Some(OwnedFd::from(input)),
        stdout: Some(OwnedFd::from(output)),
        fds: vec![(&state_hi, 4), (&newstate_hi, 5)],
        cwd: Some(dir),
        ..crate::spawn::Spawn::default()
    };
    let pid = crate::spawn::spawn(
        std::ffi::OsStr::new("/bin/sh"),
        &[std::ffi::OsStr::new("-c"), processor],
        opts,
    )?;
    let status = crate::process::wait_for(pid)?;
    Ok(ExitStatus::from_raw(status))
}

/// A processor's exit in words, for the warning when it fails.
pub fn describe_status(st: ExitStatus) -> String {
    match (st.code(), st.signal()) {
        (Some(c), _) => format!("exit code {c}"),
        (None, Some(s)) => format!("signal {s}"),
        _ => "unknown status".to_owned(),
    }
}

/// The process' stdout, for the `1` action.
pub fn stdout_fd() -> BorrowedFd<'static> {
    rustix::stdio::stdout()
}

/// The process' stderr, for the `e` action.
pub fn stderr_fd() -> BorrowedFd<'static> {
    rustix::stdio::stderr()
}

/// The process' stdin, the log input.
pub fn stdin_fd() -> BorrowedFd<'static> {
    rustix::stdio::stdin()
}

/// The local time zone: `$TZ` (`:NAME`, `NAME` under /usr/share/zoneinfo, or an absolute
/// path; empty, `UTC` or `GMT` for UTC), else `/etc/localtime`, else UTC.
pub fn load_local_zone() -> vigil_core::multilog::TimeZone {
    use vigil_core::multilog::TimeZone;
    let path = match std::env::var_os("TZ") {
        Some(tz) => {
            let tz = tz.to_string_lossy().into_owned();
            let tz = tz.strip_prefix(':').unwrap_or(&tz).to_owned();
            if tz.is_empty() || tz == "UTC" || tz == "GMT" || tz == "UTC0" || tz == "GMT0" {
                return TimeZone::utc();
            }
            if tz.starts_with('/') {
                std::path::PathBuf::from(tz)
            } else if tz.split('/').any(|c| c == "..") {
                return TimeZone::utc();
            } else {
                Path::new("/usr/share/zoneinfo").join(tz)
            }
        }
        None => std::path::PathBuf::from("/etc/localtime"),
    };
    std::fs::read(path)
        .ok()
        .and_then(|d| TimeZone::parse(&d))
        .unwrap_or_default()
}
