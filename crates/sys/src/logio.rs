//! Input/output for the logger (multilog): looking at the input pipe without emptying it,
//! taking out exactly what was written, the processor's fds 4 and 5, one-write diagnostics.
//!
//! The point of [`PipePeek`] is the no-loss guarantee: data leaves the input pipe only after
//! the logger has written it, so a logger killed at any moment leaves everything it had not
//! written in the pipe for the next one.

use std::fs::File;
use std::io;
use std::mem::ManuallyDrop;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::fs::FileType;
use rustix::pipe::{
    PipeFlags, SpliceFlags, fcntl_getpipe_size, fcntl_setpipe_size, pipe_with, splice, tee,
};

/// The errno inside an I/O error, 0 when there is none.
pub fn errno_of(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}

/// Writes one diagnostic line to stderr with a single `write(2)` (lines from many loggers
/// sharing a pipe never interleave). Errors are ignored: there is nowhere else to report them.
pub fn say(line: &str) {
    let mut buf = String::with_capacity(line.len() + 1);
    buf.push_str(line);
    buf.push('\n');
    let _ = rustix::io::write(rustix::stdio::stderr(), buf.as_bytes());
}

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
pub fn is_pipe(fd: BorrowedFd<'_>) -> bool {
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
    pub fn consume(&mut self, input: BorrowedFd<'_>, mut n: usize) -> io::Result<()> {
        while n > 0 {
            let spliced = match &self.devnull {
                Some(null) => splice(input, None, null, None, n, SpliceFlags::empty()),
                None => Err(rustix::io::Errno::INVAL),
            };
            match spliced {
                Ok(0) => return Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
                Ok(k) => n = n.saturating_sub(k),
                Err(rustix::io::Errno::INTR) => {}
                Err(_) => {
                    // No splice to /dev/null here: read into a scratch buffer instead.
                    self.devnull = None;
                    self.scratch.resize(n.min(65536), 0);
                    match rustix::io::read(input, &mut self.scratch[..]) {
                        Ok(0) => return Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
                        Ok(k) => n = n.saturating_sub(k),
                        Err(rustix::io::Errno::INTR) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        Ok(())
    }
}

/// Plain `read(2)`, retrying EINTR: the fallback when the input is not a pipe.
pub fn read_fd(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match rustix::io::read(fd, &mut *buf) {
            Ok(n) => return Ok(n),
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
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
    let ts = timeout.map(|d| Timespec {
        tv_sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: i64::from(d.subsec_nanos()),
    });
    let mut fds = vec![PollFd::new(&signals.fd, PollFlags::IN)];
    if let Some(fd) = input.as_ref() {
        fds.push(PollFd::new(fd, PollFlags::IN));
    }
    match poll(&mut fds, ts.as_ref()) {
        Ok(_) | Err(rustix::io::Errno::INTR) => {}
        Err(e) => return Err(e.into()),
    }
    let mut r = Ready::default();
    let mut it = fds.iter();
    if let Some(s) = it.next() {
        r.signal = !s.revents().is_empty();
    }
    if let Some(i) = it.next() {
        let ev = i.revents();
        r.hangup = ev.intersects(PollFlags::HUP | PollFlags::ERR);
        r.input = ev.intersects(PollFlags::IN | PollFlags::HUP | PollFlags::ERR);
    }
    Ok(r)
}

/// SIGTERM and SIGALRM, blocked and read through a signalfd.
pub struct LogSignals {
    fd: SignalFd,
}

/// Signals the logger acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogSignal {
    Term,
    Alarm,
}

impl LogSignals {
    pub fn install() -> io::Result<LogSignals> {
        let mut set = SigSet::empty();
        set.add(Signal::SIGTERM);
        set.add(Signal::SIGALRM);
        sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None).map_err(io::Error::from)?;
        let fd = SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(io::Error::from)?;
        Ok(LogSignals { fd })
    }

    /// Every pending signal, in arrival order.
    pub fn drain(&mut self) -> Vec<LogSignal> {
        let mut out = vec![];
        while let Ok(Some(info)) = self.fd.read_signal() {
            match i32::try_from(info.ssi_signo)
                .ok()
                .and_then(|s| Signal::try_from(s).ok())
            {
                Some(Signal::SIGTERM) => out.push(LogSignal::Term),
                Some(Signal::SIGALRM) => out.push(LogSignal::Alarm),
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
    let (s_raw, n_raw) = (state_hi.as_raw_fd(), newstate_hi.as_raw_fd());
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(processor)
        .current_dir(dir)
        .stdin(Stdio::from(input))
        .stdout(Stdio::from(output));
    // SAFETY: the closure runs between fork and exec and only makes single syscalls
    // (sigprocmask, dup2) on fds that stay open in the parent until the child has exec'd;
    // it allocates nothing and cannot panic.
    unsafe {
        cmd.pre_exec(move || {
            sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
                .map_err(io::Error::from)?;
            for (src, dst) in [(s_raw, 4), (n_raw, 5)] {
                // SAFETY: fds 4 and 5 are only borrowed as dup2 targets; ManuallyDrop keeps
                // them from being closed here.
                let mut target = ManuallyDrop::new(OwnedFd::from_raw_fd(dst));
                let source = BorrowedFd::borrow_raw(src);
                rustix::io::dup2(source, &mut target)?;
            }
            Ok(())
        });
    }
    let status = cmd.status();
    drop(state_hi);
    drop(newstate_hi);
    status
}

/// A processor's exit in words, for the warning when it fails.
pub fn describe_status(st: ExitStatus) -> String {
    match (st.code(), st.signal()) {
        (Some(c), _) => format!("exit code {c}"),
        (None, Some(s)) => format!("signal {s}"),
        _ => "unknown status".to_owned(),
    }
}

/// `fsync` of a directory, so a rename in it is on disk.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
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
