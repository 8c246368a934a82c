//! multilog SCRIPT… — read lines on stdin, select them, stamp them, append them to
//! automatically rotated log directories, and never lose one.
//!
//! Script (one action per argument, see multilog(8)): `t` / `T` stamps (first), `+pat`,
//! `-pat`, `e`, `1` (stdout), `=file`, `sSIZE`, `nNUM`, `aSECONDS` (max age of `current`),
//! `!processor`, `./dir` or `/dir`.
//!
//! No loss: when stdin is a pipe, input is looked at with `tee(2)` and taken out of the pipe
//! only once its output is written to every `current`; a journal record in each log
//! directory's `lock` file lets a restarted logger undo a half-written batch instead of
//! writing it twice. Write errors pause and retry; nothing is dropped.
//!
//! Signals: SIGALRM rotates every nonempty `current` now; SIGTERM finishes the line being
//! written and exits 0, leaving the rest in the pipe.
//!
//! Exit codes: 0 at end of input or after SIGTERM; 100 for a bad script; 111 when a log
//! directory cannot be set up (another logger holds its lock, no permission, …).
#![forbid(unsafe_code)]

mod logdir;

use std::ffi::OsString;
use std::os::fd::BorrowedFd;
use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use logdir::{Logdir, pause};
use vigil_core::multilog::{
    ALERT_LIMIT, Action, MATCH_LIMIT, Phase, ROTATE_SLACK, Script, Stamp, TimeZone, fnv1a,
    status_record,
};
use vigil_core::tai::Tai64n;
use vigil_sys::logio::{self, LogSignal, LogSignals, PipePeek};

const EXIT_USAGE: u8 = 100;
const EXIT_TEMP: u8 = 111;

/// Longest wait for the rest of a line that arrived in part (the wait doubles from 1 ms).
const PARTIAL_WAIT_MAX: Duration = Duration::from_millis(100);
/// Bytes read per `read(2)` when stdin is not a pipe.
const PLAIN_READ: usize = 65536;

fn fatal(code: u8, text: &str) -> ExitCode {
    logio::say(&format!("multilog: fatal: {text}"));
    ExitCode::from(code)
}

/// The program, called with its arguments after argv[0].
pub fn main(args: Vec<OsString>) -> ExitCode {
    let args: Vec<Vec<u8>> = args.into_iter().map(|a| a.as_bytes().to_vec()).collect();
    let script = match Script::parse(&args) {
        Ok(s) => s,
        Err(e) => return fatal(EXIT_USAGE, &format!("bad action {}: {}", e.arg, e.reason)),
    };
    for w in &script.warnings {
        logio::say(&format!("multilog: warning: {w}"));
    }
    let mut signals = match LogSignals::install() {
        Ok(s) => s,
        Err(e) => {
            return fatal(
                EXIT_TEMP,
                &format!("unable to set up signals: {}", words(&e)),
            );
        }
    };
    let input = logio::stdin_fd();
    let peek = if logio::is_pipe(input) {
        PipePeek::new(input).ok()
    } else {
        None
    };
    let mut dirs = Vec::with_capacity(script.dirs.len());
    for spec in &script.dirs {
        match Logdir::open(spec) {
            Ok(d) => dirs.push(d),
            Err(text) => return fatal(EXIT_TEMP, &text),
        }
    }
    let mut status_files = Vec::with_capacity(script.status_files.len());
    for name in &script.status_files {
        let path = std::path::Path::new(std::ffi::OsStr::from_bytes(name));
        match std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
        {
            Ok(f) => status_files.push(f),
            Err(e) => {
                return fatal(
                    EXIT_TEMP,
                    &format!("unable to create {}: {}", path.display(), words(&e)),
                );
            }
        }
    }
    let zone = if script.stamps.contains(&Stamp::Iso) {
        logio::load_local_zone()
    } else {
        TimeZone::utc()
    };
    let mut log = Logger {
        script,
        dirs,
        status_files,
        zone,
        peek,
        buf: Vec::new(),
        sel: Vec::new(),
        line_sel: Vec::new(),
        in_line: false,
        term: false,
        alarm: false,
        stdout_out: Vec::new(),
        batch: batch_seed(),
    };
    log.recover(input, &mut signals);
    for d in &mut log.dirs {
        if let Err(text) = d.start_current() {
            return fatal(EXIT_TEMP, &text);
        }
    }
    log.run(input, &mut signals)
}

/// daemontools' word for an I/O error, without Rust's ` (os error N)`.
pub fn words(e: &std::io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(n) => vigil_core::errstr::describe(n),
        None => match e.kind() {
            std::io::ErrorKind::UnexpectedEof => "unexpected end of file",
            std::io::ErrorKind::WriteZero => "write returned zero",
            _ => "unknown error",
        },
    }
}

fn batch_seed() -> u64 {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    fnv1a(
        format!(
            "{}.{}.{}",
            t.as_secs(),
            t.subsec_nanos(),
            std::process::id()
        )
        .as_bytes(),
    )
}

/// What processing a look at the input ended with.
enum Stop {
    /// Everything usable was processed; the rest (if any) is the start of a line not yet
    /// complete enough to decide on.
    NeedMore,
    /// These log directories must rotate before anything more is written.
    Rotate(Vec<usize>),
    /// SIGTERM and the line is finished: exit.
    Term,
}

struct Logger {
    script: Script,
    dirs: Vec<Logdir>,
    status_files: Vec<std::fs::File>,
    zone: TimeZone,
    /// `Some` when stdin is a pipe: the no-loss path.
    peek: Option<PipePeek>,
    /// Pipe mode: a copy of the pipe's head. Plain mode: bytes read and not yet processed.
    buf: Vec<u8>,
    sel: Vec<bool>,
    /// Selection of the line being streamed (its start already written).
    line_sel: Vec<bool>,
    in_line: bool,
    term: bool,
    alarm: bool,
    stdout_out: Vec<u8>,
    batch: u64,
}

impl Logger {
    fn take_signals(&mut self, signals: &mut LogSignals) {
        for s in signals.drain() {
            match s {
                LogSignal::Term => self.term = true,
                LogSignal::Alarm => self.alarm = true,
            }
        }
    }

    /// Before anything is written: a batch a killed logger journalled as being written but
    /// never took out of the pipe is still there; cut its partial output off `current`, so it
    /// is written exactly once, now.
    fn recover(&mut self, input: BorrowedFd<'_>, signals: &mut LogSignals) {
        let Some(peek) = self.peek.as_mut() else {
            return;
        };
        let journals: Vec<_> = self.dirs.iter().map(Logdir::read_journal).collect();
        let mut unconsumed = None;
        if journals.iter().flatten().any(|j| j.phase == Phase::Writing) {
            // The pipe may still be filling after a restart: what matters is its head. It
            // differs from the batch unless the logger died between taking the batch out and
            // recording that (`Written`) and the next batch is the same bytes.
            let _ = peek.look(input, &mut self.buf);
            for j in journals
                .iter()
                .flatten()
                .filter(|j| j.phase == Phase::Writing)
            {
                let head = usize::try_from(j.len).ok().and_then(|n| self.buf.get(..n));
                if head.is_some_and(|h| fnv1a(h) == j.hash) {
                    unconsumed = Some(j.batch);
                }
            }
        }
        for (d, j) in self.dirs.iter_mut().zip(&journals) {
            if let (Some(batch), Some(j)) = (unconsumed, j)
                && j.batch == batch
            {
                d.truncate_to(j.offset, signals);
            }
            d.clear_journal();
        }
        self.buf.clear();
    }

    fn run(&mut self, input: BorrowedFd<'_>, signals: &mut LogSignals) -> ExitCode {
        let mut partial_wait: Option<Duration> = None;
        let mut last_len = 0usize;
        // A `current` restarted already near its size ends before new lines go in.
        let due = self.rotation_due();
        self.rotate(&due, signals);
        loop {
            self.take_signals(signals);
            if self.alarm {
                self.alarm = false;
                let nonempty: Vec<usize> = (0..self.dirs.len())
                    .filter(|&i| self.dirs.get(i).is_some_and(|d| d.bytes > 0))
                    .collect();
                self.rotate(&nonempty, signals);
            }
            self.rotate_old(signals);
            if self.term && !self.in_line {
                return self.finish(signals);
            }
            let timeout = [partial_wait, self.age_timeout()]
                .into_iter()
                .flatten()
                .min();
            // While only part of a line is in the pipe, the pipe stays readable: wait on the
            // clock (and signals) alone until more comes.
            let watch_input = if partial_wait.is_some() {
                None
            } else {
                Some(input)
            };
            let ready = match logio::wait(watch_input, signals, timeout) {
                Ok(r) => r,
                Err(e) => {
                    logio::say(&format!(
                        "multilog: warning: unable to poll, pausing: {}",
                        words(&e)
                    ));
                    pause(signals);
                    continue;
                }
            };
            if ready.signal {
                self.take_signals(signals);
            }
            if !(ready.input || partial_wait.is_some()) {
                continue;
            }
            let hangup = ready.hangup;
            let eof = match self.fill(input) {
                Ok(eof) => eof,
                Err(e) => {
                    logio::say(&format!(
                        "multilog: warning: unable to read input, pausing: {}",
                        words(&e)
                    ));
                    pause(signals);
                    continue;
                }
            };
            if eof && self.buf.is_empty() {
                return self.finish(signals);
            }
            // Input that ends (EOF, or every writer gone) with part of a line: that is all of it.
            let last = eof || (hangup && self.peek.is_some());
            let stop = self.process_all(last, signals);
            if matches!(stop, Stop::Term) {
                return self.finish(signals);
            }
            if eof && self.peek.is_none() && self.buf.is_empty() {
                return self.finish(signals);
            }
            if self.buf.is_empty() || self.in_line {
                partial_wait = None;
            } else if self.buf.len() != last_len || partial_wait.is_none() {
                // Part of a line is waiting and input is flowing: look again at once.
                partial_wait = Some(Duration::ZERO);
            } else {
                // Nothing new since the last look: back off, 1 ms doubling to the maximum.
                partial_wait =
                    partial_wait.map(|w| (w * 2).clamp(Duration::from_millis(1), PARTIAL_WAIT_MAX));
            }
            last_len = self.buf.len();
        }
    }

    /// Pipe: a fresh copy of the pipe's head into `buf`. Plain: appends a read. True at end
    /// of input.
    fn fill(&mut self, input: BorrowedFd<'_>) -> std::io::Result<bool> {
        match self.peek.as_mut() {
            Some(peek) => match peek.look(input, &mut self.buf) {
                Ok(n) => Ok(n == 0),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(false),
                Err(e) => Err(e),
            },
            None => {
                let old = self.buf.len();
                self.buf.resize(old + PLAIN_READ, 0);
                let r = logio::read_fd(input, self.buf.get_mut(old..).unwrap_or_default());
                let n = *r.as_ref().unwrap_or(&0);
                self.buf.truncate(old + n);
                r.map(|n| n == 0)
            }
        }
    }

    /// Processes `buf` batch by batch, committing (write, then consume) after each, rotating
    /// where needed. Leaves in `buf` only what was not processed.
    fn process_all(&mut self, last: bool, signals: &mut LogSignals) -> Stop {
        loop {
            let (used, stop) = self.process(last);
            if used > 0
                || !self.stdout_out.is_empty()
                || self.dirs.iter().any(|d| !d.out.is_empty())
            {
                self.commit(used, signals);
            }
            match stop {
                Stop::Rotate(which) => {
                    self.rotate(&which, signals);
                    if self.buf.is_empty() {
                        return Stop::NeedMore;
                    }
                }
                other => return other,
            }
        }
    }

    fn stamp(&self, out: &mut Vec<u8>) {
        if self.script.stamps.is_empty() {
            return;
        }
        let now = SystemTime::now();
        for s in &self.script.stamps {
            match s {
                Stamp::Tai64n => {
                    out.push(b'@');
                    out.extend_from_slice(Tai64n::from_system_time(now).to_hex().as_bytes());
                }
                Stamp::Iso => {
                    let d = now.duration_since(UNIX_EPOCH).unwrap_or_default();
                    let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
                    let off = self.zone.offset_at(secs);
                    out.extend_from_slice(
                        vigil_core::multilog::format_iso(secs, d.subsec_nanos(), off).as_bytes(),
                    );
                }
            }
            out.push(b' ');
        }
    }

    /// Turns a prefix of `buf` into output, up to the first rotation that is due. Returns how
    /// many input bytes it used.
    fn process(&mut self, last: bool) -> (usize, Stop) {
        let buf = std::mem::take(&mut self.buf);
        let mut pos = 0usize;
        let mut stop = Stop::NeedMore;
        let mut head: Vec<u8> = Vec::new();
        while pos < buf.len() {
            let rest = buf.get(pos..).unwrap_or_default();
            if !self.in_line {
                // Decide on a line: its stamps and up to MATCH_LIMIT bytes, or all of it.
                head.clear();
                self.stamp(&mut head);
                let stamp_len = head.len();
                let need = MATCH_LIMIT.saturating_sub(stamp_len).max(1);
                let window = rest.get(..need.min(rest.len())).unwrap_or_default();
                let nl = window.iter().position(|&b| b == b'\n');
                let take = match nl {
                    Some(k) => k,
                    None if rest.len() >= need || last => window.len(),
                    None => break, // not enough of the line yet
                };
                head.extend_from_slice(rest.get(..take).unwrap_or_default());
                let mut sel = std::mem::take(&mut self.sel);
                self.script.select(&head, &mut sel);
                self.side_outputs(&head, &sel);
                self.line_sel.clone_from(&sel);
                self.sel = sel;
                // Stamps go to every selected sink before the data.
                let stamp = head.get(..stamp_len).unwrap_or_default().to_vec();
                self.emit(&stamp);
                self.in_line = true;
            }
            // Stream the line's data up to its newline, within every sink's room.
            let rest = buf.get(pos..).unwrap_or_default();
            let (chunk_len, ends) = match rest.iter().position(|&b| b == b'\n') {
                Some(k) => (k + 1, true),
                None => (rest.len(), false),
            };
            let room = self.room();
            let n = chunk_len.min(room);
            let chunk = rest.get(..n).unwrap_or_default();
            self.emit(chunk);
            pos += n;
            let line_done = ends && n == chunk_len;
            if line_done {
                self.in_line = false;
            }
            if n < chunk_len || room == n && !line_done && n > 0 && self.full().is_some() {
                // A log directory is full in the middle of a line.
                stop = Stop::Rotate(self.full_dirs());
                break;
            }
            if line_done {
                if self.any_rotation_due() {
                    stop = Stop::Rotate(self.rotation_due());
                    break;
                }
                if self.term {
                    stop = Stop::Term;
                    break;
                }
            } else if last && pos == buf.len() {
                // The input ends without a newline: multilog adds one.
                self.emit(b"\n");
                self.in_line = false;
            }
        }
        self.buf = buf;
        if self.peek.is_none() {
            // Plain input: what was processed is gone from the fd already; drop it here.
            self.buf.drain(..pos);
        }
        (pos, stop)
    }

    /// `e`, `=file`: they see the decided start of the line.
    fn side_outputs(&mut self, head: &[u8], sel: &[bool]) {
        for (action, &on) in self.script.actions.iter().zip(sel) {
            if !on {
                continue;
            }
            match action {
                Action::Alert => {
                    let mut line = head
                        .get(..ALERT_LIMIT.min(head.len()))
                        .unwrap_or_default()
                        .to_vec();
                    line.push(b'\n');
                    let _ = logio::write_fd(logio::stderr_fd(), &line);
                }
                Action::Status(i) => {
                    if let Some(f) = self.status_files.get(*i) {
                        use std::os::unix::fs::FileExt;
                        let _ = f.write_all_at(&status_record(head), 0);
                    }
                }
                _ => {}
            }
        }
    }

    /// Appends bytes of the current line to every sink that selected it.
    fn emit(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        for (action, &on) in self.script.actions.iter().zip(&self.line_sel) {
            if !on {
                continue;
            }
            match action {
                Action::Dir(i) => {
                    if let Some(d) = self.dirs.get_mut(*i) {
                        if d.bytes == 0 && d.out.is_empty() {
                            d.first_line_at = Some(Instant::now());
                        }
                        d.out.extend_from_slice(bytes);
                    }
                }
                Action::Stdout => self.stdout_out.extend_from_slice(bytes),
                _ => {}
            }
        }
    }

    /// Bytes every selected log directory can still take before reaching its size.
    fn room(&self) -> usize {
        let mut room = usize::MAX;
        for (action, &on) in self.script.actions.iter().zip(&self.line_sel) {
            if let (Action::Dir(i), true) = (action, on)
                && let Some(d) = self.dirs.get(*i)
            {
                let used = d.bytes.saturating_add(d.out.len() as u64);
                let r = u64::from(d.spec.size).saturating_sub(used);
                room = room.min(usize::try_from(r).unwrap_or(usize::MAX));
            }
        }
        room
    }

    fn full(&self) -> Option<usize> {
        self.full_dirs().first().copied()
    }

    fn full_dirs(&self) -> Vec<usize> {
        (0..self.dirs.len())
            .filter(|&i| {
                self.dirs.get(i).is_some_and(|d| {
                    d.bytes.saturating_add(d.out.len() as u64) >= u64::from(d.spec.size)
                })
            })
            .collect()
    }

    fn any_rotation_due(&self) -> bool {
        self.dirs.iter().any(|d| {
            let used = d.bytes.saturating_add(d.out.len() as u64);
            used > 0 && used >= u64::from(d.spec.size.saturating_sub(ROTATE_SLACK))
        })
    }

    /// After a newline: directories within 2000 bytes of their size rotate (daemontools' rule).
    fn rotation_due(&self) -> Vec<usize> {
        (0..self.dirs.len())
            .filter(|&i| {
                self.dirs.get(i).is_some_and(|d| {
                    let used = d.bytes.saturating_add(d.out.len() as u64);
                    used > 0 && used >= u64::from(d.spec.size.saturating_sub(ROTATE_SLACK))
                })
            })
            .collect()
    }

    /// Writes the batch everywhere, then takes its `used` input bytes out of the pipe.
    fn commit(&mut self, used: usize, signals: &mut LogSignals) {
        let journal = self.peek.is_some();
        self.batch = self.batch.wrapping_add(1);
        let hash = fnv1a(self.buf.get(..used).unwrap_or_default());
        let (batch, len) = (self.batch, used as u64);
        // Where each directory's output of this batch starts: the offset a restarted logger
        // cuts `current` back to while the batch is still in the pipe.
        let starts: Vec<u64> = self.dirs.iter().map(|d| d.bytes).collect();
        for (d, &start) in self.dirs.iter_mut().zip(&starts) {
            if d.out.is_empty() {
                continue;
            }
            if journal {
                d.journal(Phase::Writing, batch, (len, hash), start, signals);
            }
            d.write_out(signals);
        }
        if !self.stdout_out.is_empty() {
            if let Err(e) = logio::write_fd(logio::stdout_fd(), &self.stdout_out) {
                logio::say(&format!(
                    "multilog: warning: unable to write to stdout: {}",
                    words(&e)
                ));
            }
            self.stdout_out.clear();
        }
        if let Some(peek) = self.peek.as_mut() {
            let input = logio::stdin_fd();
            while let Err(e) = peek.consume(input, used) {
                logio::say(&format!(
                    "multilog: warning: unable to read input, pausing: {}",
                    words(&e)
                ));
                pause(signals);
            }
            self.buf.drain(..used.min(self.buf.len()));
        }
        // Only now is the batch out of the pipe: a logger killed before this line finds
        // `Writing` and the batch at the pipe's head, and cuts its output off again.
        for (d, &start) in self.dirs.iter_mut().zip(&starts) {
            if journal && d.wrote_batch {
                d.journal(Phase::Written, batch, (len, hash), start, signals);
            }
            d.wrote_batch = false;
        }
    }

    fn rotate(&mut self, which: &[usize], signals: &mut LogSignals) {
        for &i in which {
            if let Some(d) = self.dirs.get_mut(i) {
                d.rotate(signals);
            }
        }
    }

    /// `aSECONDS`: a nonempty `current` older than its maximum age rotates.
    fn rotate_old(&mut self, signals: &mut LogSignals) {
        let now = Instant::now();
        for d in &mut self.dirs {
            if let (Some(age), Some(at)) = (d.spec.max_age, d.first_line_at)
                && d.bytes > 0
                && now.duration_since(at) >= Duration::from_secs(age)
            {
                d.rotate(signals);
            }
        }
    }

    fn age_timeout(&self) -> Option<Duration> {
        let now = Instant::now();
        self.dirs
            .iter()
            .filter_map(|d| {
                let at = d.first_line_at?;
                let due = at + Duration::from_secs(d.spec.max_age?);
                Some(due.saturating_duration_since(now))
            })
            .min()
    }

    /// End of input or SIGTERM at a line boundary: everything to disk, `current` marked
    /// safely closed (0744).
    fn finish(&mut self, signals: &mut LogSignals) -> ExitCode {
        for d in &mut self.dirs {
            d.close(signals);
        }
        ExitCode::SUCCESS
    }
}
