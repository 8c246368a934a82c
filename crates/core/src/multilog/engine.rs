//! multilog's line and rotation engine: input bytes, signals and times in, complete effects
//! out, no I/O and no clock.
//!
//! The driver (the `multilog` program) feeds what it reads with the current time
//! ([`Engine::feed`]), tells it about SIGALRM/SIGTERM ([`Engine::alarm`], [`Engine::terminate`])
//! and about deadlines ([`Engine::timer`]), and performs the [`Effect`]s it pulls with
//! [`Engine::next_effect`] in order, deciding nothing. An effect that fails is handed back with
//! [`Engine::failed`]: the engine pauses ([`RETRY`]) and hands it out again. While paused it
//! takes no input, so the service blocks on its pipe instead of losing output. The driver sleeps
//! in poll until [`Engine::next_deadline`], watching the input only when
//! [`Engine::wants_input`].
//!
//! Pipe mode (no loss): input is a copy of the pipe's head and leaves the pipe only through
//! [`Effect::Consume`], after its output is written to every log directory, between journal
//! records that let a restarted logger undo a half-written batch ([`recover`]).
//!
//! Invariants (tested by table tests and random sequences with a simulated clock): every
//! selected line reaches each of its log directories exactly once and in order, across
//! rotations, failures and restarts; no `current` grows past its size; at most `nNUM - 1`
//! archives stay after a rotation; nothing is written while paused.

use std::collections::VecDeque;
use std::time::Duration;

use super::{
    ALERT_LIMIT, Action, DirSpec, Journal, MATCH_LIMIT, Phase, ROTATE_SLACK, STATUS_LEN, Script,
    Stamp, TimeZone, fnv1a, format_iso, status_record,
};
use crate::machine::Now;

/// How long a failing effect waits before the next try.
pub const RETRY: Duration = Duration::from_secs(1);
/// Longest wait for the rest of a line that arrived in part (the wait doubles from 1 ms).
pub const PARTIAL_WAIT_MAX: Duration = Duration::from_millis(100);
const PARTIAL_WAIT_MIN: Duration = Duration::from_millis(1);

/// What the driver must do, in the order handed out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// `e`: write this line (newline included) to stderr; a failure is ignored.
    Alert(Vec<u8>),
    /// `=file`: write this record at offset 0 of status file `file`; a failure is ignored.
    Status { file: usize, record: Vec<u8> },
    /// Write this record in the journal (the `lock` file) of log directory `dir`.
    Journal { dir: usize, record: Journal },
    /// Append these bytes to `current` of log directory `dir`. After a failure, hand back only
    /// the bytes not written.
    Append { dir: usize, bytes: Vec<u8> },
    /// `1`: write these bytes to stdout; a failure is warned about, not retried.
    Stdout(Vec<u8>),
    /// Pipe mode: take this many bytes out of the input (they are written everywhere).
    Consume(usize),
    /// End `current` of log directory `dir` (to disk, archived through its processor, a fresh
    /// `current`, oldest archives beyond `nNUM` removed).
    Rotate { dir: usize },
    /// Look at the input now, without waiting, and [`Engine::feed`] what is new (maybe nothing).
    Look,
    /// `current` of log directory `dir` to disk and marked safely closed; journal cleared.
    Close { dir: usize },
    /// Exit 0.
    Exit,
}

/// What the engine is built from.
#[derive(Clone, Debug)]
pub struct Config {
    pub script: Script,
    /// For the `T` stamp.
    pub zone: TimeZone,
    /// The input is a pipe: journal each batch and consume it only once written.
    pub pipe: bool,
    /// First batch number (a different one per start, so journals of two runs differ).
    pub batch_seed: u64,
}

/// One log directory as the engine sees it.
#[derive(Clone, Debug)]
struct Dir {
    size: u64,
    max_age: Option<Duration>,
    /// Bytes in `current`, counting every append handed out.
    bytes: u64,
    /// When the first line of this `current` came (for `aSECONDS`).
    first_line_at: Option<Duration>,
    /// Output of the batch being built.
    out: Vec<u8>,
}

impl Dir {
    fn used(&self) -> u64 {
        self.bytes.saturating_add(self.out.len() as u64)
    }

    fn room(&self) -> u64 {
        self.size.saturating_sub(self.used())
    }

    /// No byte more fits.
    fn is_full(&self) -> bool {
        self.used() >= self.size
    }

    /// After a newline: within [`ROTATE_SLACK`] bytes of the size (daemontools' rule).
    fn near_full(&self) -> bool {
        let used = self.used();
        used > 0 && used >= self.size.saturating_sub(u64::from(ROTATE_SLACK))
    }

    fn age_deadline(&self) -> Option<Duration> {
        Some(self.first_line_at? + self.max_age?)
    }
}

/// Why processing the buffered input stopped.
enum Stop {
    /// Everything usable was processed; the rest (if any) is the start of a line not yet
    /// complete enough to decide on.
    NeedMore,
    /// These log directories must rotate before anything more is written.
    Rotate(Vec<usize>),
    /// SIGTERM and the line is finished: exit.
    Term,
}

#[derive(Debug)]
pub struct Engine {
    script: Script,
    zone: TimeZone,
    pipe: bool,
    batch: u64,
    dirs: Vec<Dir>,
    /// Input not yet processed (pipe mode: not yet consumed, the pipe's head).
    buf: Vec<u8>,
    sel: Vec<bool>,
    /// Selection of the line being streamed (its start already handed out).
    line_sel: Vec<bool>,
    in_line: bool,
    term: bool,
    stdout_out: Vec<u8>,
    effects: VecDeque<Effect>,
    /// A failed effect waits until then; no input is taken meanwhile.
    paused_until: Option<Duration>,
    /// Part of a line waits: look again after this long instead of watching the input (a pipe
    /// with bytes in it stays readable).
    partial_wait: Option<Duration>,
    look_at: Option<Duration>,
    last_len: usize,
    /// `Close`/`Exit` handed out: nothing more happens.
    closing: bool,
    /// Buffers of performed appends, to build the next batches in (no allocation per batch).
    spare: Vec<Vec<u8>>,
}

impl Engine {
    /// `sizes[i]`: bytes already in `current` of log directory `i`. A `current` restarted near
    /// its size is rotated before any new line goes in.
    pub fn new(cfg: Config, sizes: &[u64], now: Now) -> Engine {
        let dirs = cfg
            .script
            .dirs
            .iter()
            .enumerate()
            .map(|(i, spec): (usize, &DirSpec)| {
                let bytes = sizes.get(i).copied().unwrap_or(0);
                Dir {
                    size: u64::from(spec.size),
                    max_age: spec.max_age.map(Duration::from_secs),
                    bytes,
                    first_line_at: (bytes > 0).then_some(now.mono),
                    out: Vec::new(),
                }
            })
            .collect();
        let mut e = Engine {
            script: cfg.script,
            zone: cfg.zone,
            pipe: cfg.pipe,
            batch: cfg.batch_seed,
            dirs,
            buf: Vec::new(),
            sel: Vec::new(),
            line_sel: Vec::new(),
            in_line: false,
            term: false,
            stdout_out: Vec::new(),
            effects: VecDeque::new(),
            paused_until: None,
            partial_wait: None,
            look_at: None,
            last_len: 0,
            closing: false,
            spare: Vec::new(),
        };
        let due: Vec<usize> = (0..e.dirs.len())
            .filter(|&i| e.dirs.get(i).is_some_and(Dir::near_full))
            .collect();
        e.rotate(&due);
        e
    }

    /// The next effect to perform, `None` when there is none or while paused after a failure.
    pub fn next_effect(&mut self, now: Now) -> Option<Effect> {
        if let Some(t) = self.paused_until {
            if now.mono < t {
                return None;
            }
            self.paused_until = None;
        }
        self.effects.pop_front()
    }

    /// The bytes of a performed `Append` or `Stdout`, given back for reuse (optional).
    pub fn recycle(&mut self, mut bytes: Vec<u8>) {
        if self.spare.len() <= self.dirs.len() {
            bytes.clear();
            self.spare.push(bytes);
        }
    }

    /// `effect` failed (an `Append` with only its unwritten bytes): it is handed out again
    /// [`RETRY`] from now, before anything else.
    pub fn failed(&mut self, effect: Effect, now: Now) {
        self.effects.push_front(effect);
        self.pause(now);
    }

    /// Reading (or polling) the input failed: take no input for [`RETRY`].
    pub fn input_failed(&mut self, now: Now) {
        self.pause(now);
        if self.partial_wait.is_some() {
            self.look_at = Some(now.mono + RETRY);
        }
    }

    fn pause(&mut self, now: Now) {
        self.paused_until = Some(now.mono + RETRY);
    }

    /// When the driver must call [`Engine::timer`] at the latest.
    pub fn next_deadline(&self) -> Option<Duration> {
        if self.closing {
            return self.paused_until;
        }
        let look = self.look_at.filter(|_| self.paused_until.is_none());
        let ages = self.dirs.iter().filter_map(Dir::age_deadline);
        [self.paused_until, look]
            .into_iter()
            .flatten()
            .chain(ages)
            .min()
    }

    /// The driver may watch the input for more: not while paused, while a partial line is
    /// looked at on a timer, or once closing.
    pub fn wants_input(&self) -> bool {
        !self.closing
            && self.effects.is_empty()
            && self.paused_until.is_none()
            && self.partial_wait.is_none()
    }

    /// `Exit` has been or is about to be handed out.
    pub fn is_closing(&self) -> bool {
        self.closing
    }

    /// A deadline came: rotate `current`s that reached their age, look at a partial line.
    pub fn timer(&mut self, now: Now) {
        if self.closing {
            return;
        }
        self.rotate_old(now);
        if self.paused_until.is_none() && self.look_at.is_some_and(|t| t <= now.mono) {
            self.look_at = None;
            self.effects.push_back(Effect::Look);
        }
    }

    /// SIGALRM: every nonempty `current` rotates now.
    pub fn alarm(&mut self, now: Now) {
        if self.closing {
            return;
        }
        let nonempty: Vec<usize> = (0..self.dirs.len())
            .filter(|&i| self.dirs.get(i).is_some_and(|d| d.bytes > 0))
            .collect();
        self.rotate(&nonempty);
        self.rotate_old(now);
    }

    /// SIGTERM: finish the line being written, then close and exit; the rest stays in the pipe.
    pub fn terminate(&mut self, now: Now) {
        if self.closing {
            return;
        }
        self.rotate_old(now);
        self.term = true;
        if !self.in_line {
            self.finish();
        }
    }

    /// New input bytes (maybe none: a look that found nothing new). `end`: nothing will come
    /// after them (end of file, or every writer of the pipe gone).
    pub fn feed(&mut self, bytes: &[u8], end: bool, now: Now) {
        if self.closing {
            return;
        }
        self.rotate_old(now);
        self.buf.extend_from_slice(bytes);
        let stop = self.process_all(end, now);
        if end && self.buf.is_empty() && self.in_line {
            // The input ended in a line already streamed (past MATCH_LIMIT, or cut by a
            // rotation): it gets its newline too, as multilog(8) says.
            self.emit(b"\n", now);
            self.in_line = false;
            self.commit(0);
        }
        if matches!(stop, Stop::Term) || (end && self.buf.is_empty()) {
            self.finish();
            return;
        }
        if self.buf.is_empty() || self.in_line {
            self.partial_wait = None;
        } else if self.buf.len() != self.last_len || self.partial_wait.is_none() {
            // Part of a line is waiting and input is flowing: look again at once.
            self.partial_wait = Some(Duration::ZERO);
        } else {
            // Nothing new since the last look: back off, 1 ms doubling to the maximum.
            self.partial_wait = self
                .partial_wait
                .map(|w| (w * 2).clamp(PARTIAL_WAIT_MIN, PARTIAL_WAIT_MAX));
        }
        self.look_at = self.partial_wait.map(|w| now.mono + w);
        self.last_len = self.buf.len();
    }

    /// End of input or SIGTERM at a line boundary: every `current` closed, then exit.
    fn finish(&mut self) {
        self.closing = true;
        self.partial_wait = None;
        self.look_at = None;
        for dir in 0..self.dirs.len() {
            self.effects.push_back(Effect::Close { dir });
        }
        self.effects.push_back(Effect::Exit);
    }

    fn rotate(&mut self, which: &[usize]) {
        for &dir in which {
            if let Some(d) = self.dirs.get_mut(dir) {
                d.bytes = 0;
                d.first_line_at = None;
                self.effects.push_back(Effect::Rotate { dir });
            }
        }
    }

    /// `aSECONDS`: a nonempty `current` older than its maximum age rotates.
    fn rotate_old(&mut self, now: Now) {
        let old: Vec<usize> = (0..self.dirs.len())
            .filter(|&i| {
                self.dirs
                    .get(i)
                    .is_some_and(|d| d.bytes > 0 && d.age_deadline().is_some_and(|t| now.mono >= t))
            })
            .collect();
        self.rotate(&old);
    }

    /// Processes `buf` batch by batch, committing after each and rotating where needed.
    fn process_all(&mut self, last: bool, now: Now) -> Stop {
        loop {
            let (used, stop) = self.process(last, now);
            if used > 0
                || !self.stdout_out.is_empty()
                || self.dirs.iter().any(|d| !d.out.is_empty())
            {
                self.commit(used);
            }
            match stop {
                Stop::Rotate(which) => {
                    self.rotate(&which);
                    if self.buf.is_empty() {
                        return Stop::NeedMore;
                    }
                }
                other => return other,
            }
        }
    }

    fn push_stamps(&self, now: Now, out: &mut Vec<u8>) {
        for s in &self.script.stamps {
            match s {
                Stamp::Tai64n => {
                    out.push(b'@');
                    out.extend_from_slice(now.wall.to_hex().as_bytes());
                }
                Stamp::Iso => {
                    let secs = i64::try_from(now.wall.unix_secs()).unwrap_or(i64::MAX);
                    let off = self.zone.offset_at(secs);
                    out.extend_from_slice(format_iso(secs, now.wall.nanos, off).as_bytes());
                }
            }
            out.push(b' ');
        }
    }

    /// Turns a prefix of `buf` into output, up to the first rotation that is due. Returns how
    /// many input bytes it used.
    fn process(&mut self, last: bool, now: Now) -> (usize, Stop) {
        let buf = std::mem::take(&mut self.buf);
        let mut pos = 0usize;
        let mut stop = Stop::NeedMore;
        let mut head: Vec<u8> = Vec::new();
        while pos < buf.len() {
            let rest = buf.get(pos..).unwrap_or_default();
            if !self.in_line {
                // Decide on a line: its stamps and up to MATCH_LIMIT bytes, or all of it.
                head.clear();
                self.push_stamps(now, &mut head);
                let stamp_len = head.len();
                let need = MATCH_LIMIT.saturating_sub(stamp_len).max(1);
                let window = rest.get(..need.min(rest.len())).unwrap_or_default();
                let take = match window.iter().position(|&b| b == b'\n') {
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
                self.emit(head.get(..stamp_len).unwrap_or_default(), now);
                self.in_line = true;
            }
            // Stream the line's data up to its newline, within every sink's room.
            let (chunk_len, ends) = match rest.iter().position(|&b| b == b'\n') {
                Some(k) => (k + 1, true),
                None => (rest.len(), false),
            };
            let room = self.room();
            let n = chunk_len.min(room);
            self.emit(rest.get(..n).unwrap_or_default(), now);
            pos += n;
            let line_done = ends && n == chunk_len;
            if line_done {
                self.in_line = false;
            }
            if n < chunk_len || room == n && !line_done && n > 0 && self.any_full() {
                // A log directory is full in the middle of a line.
                stop = Stop::Rotate(self.dirs_where(Dir::is_full));
                break;
            }
            if line_done {
                let due = self.dirs_where(Dir::near_full);
                if !due.is_empty() {
                    stop = Stop::Rotate(due);
                    break;
                }
                if self.term {
                    stop = Stop::Term;
                    break;
                }
            } else if last && pos == buf.len() {
                // The input ends without a newline: multilog adds one.
                self.emit(b"\n", now);
                self.in_line = false;
            }
        }
        self.buf = buf;
        (pos, stop)
    }

    /// `e`, `=file`: they see the decided start of the line.
    fn side_outputs(&mut self, head: &[u8], sel: &[bool]) {
        for (action, &on) in self.script.actions.iter().zip(sel) {
            match (action, on) {
                (Action::Alert, true) => {
                    let mut line = head.get(..ALERT_LIMIT).unwrap_or(head).to_vec();
                    line.push(b'\n');
                    self.effects.push_back(Effect::Alert(line));
                }
                (Action::Status(file), true) => {
                    let record: [u8; STATUS_LEN] = status_record(head);
                    self.effects.push_back(Effect::Status {
                        file: *file,
                        record: record.to_vec(),
                    });
                }
                _ => {}
            }
        }
    }

    /// Appends bytes of the current line to every sink that selected it.
    fn emit(&mut self, bytes: &[u8], now: Now) {
        if bytes.is_empty() {
            return;
        }
        for (action, &on) in self.script.actions.iter().zip(&self.line_sel) {
            match (action, on) {
                (Action::Dir(i), true) => {
                    if let Some(d) = self.dirs.get_mut(*i) {
                        if d.used() == 0 {
                            d.first_line_at = Some(now.mono);
                        }
                        d.out.extend_from_slice(bytes);
                    }
                }
                (Action::Stdout, true) => self.stdout_out.extend_from_slice(bytes),
                _ => {}
            }
        }
    }

    /// Bytes every log directory the line goes to can still take.
    fn room(&self) -> usize {
        let mut room = u64::MAX;
        for (action, &on) in self.script.actions.iter().zip(&self.line_sel) {
            if let (Action::Dir(i), true) = (action, on)
                && let Some(d) = self.dirs.get(*i)
            {
                room = room.min(d.room());
            }
        }
        usize::try_from(room).unwrap_or(usize::MAX)
    }

    fn any_full(&self) -> bool {
        self.dirs.iter().any(Dir::is_full)
    }

    fn dirs_where(&self, pred: fn(&Dir) -> bool) -> Vec<usize> {
        (0..self.dirs.len())
            .filter(|&i| self.dirs.get(i).is_some_and(pred))
            .collect()
    }

    /// Hands out the batch's output everywhere, then (pipe mode) the consumption of its `used`
    /// input bytes between journal records.
    fn commit(&mut self, used: usize) {
        self.batch = self.batch.wrapping_add(1);
        let hash = fnv1a(self.buf.get(..used).unwrap_or_default());
        let record = |phase, offset| Journal {
            phase,
            batch: self.batch,
            len: used as u64,
            hash,
            offset,
        };
        // Where each directory's output of this batch starts: the offset a restarted logger
        // cuts `current` back to while the batch is still in the pipe.
        let mut written = Vec::new();
        for (dir, d) in self.dirs.iter_mut().enumerate() {
            if d.out.is_empty() {
                continue;
            }
            let start = d.bytes;
            if self.pipe {
                let record = record(Phase::Writing, start);
                self.effects.push_back(Effect::Journal { dir, record });
            }
            let bytes = std::mem::replace(&mut d.out, self.spare.pop().unwrap_or_default());
            d.bytes = d.bytes.saturating_add(bytes.len() as u64);
            self.effects.push_back(Effect::Append { dir, bytes });
            written.push((dir, start));
        }
        if !self.stdout_out.is_empty() {
            let spare = self.spare.pop().unwrap_or_default();
            let bytes = std::mem::replace(&mut self.stdout_out, spare);
            self.effects.push_back(Effect::Stdout(bytes));
        }
        self.buf.drain(..used.min(self.buf.len()));
        if self.pipe {
            if used > 0 {
                self.effects.push_back(Effect::Consume(used));
            }
            // Only now is the batch out of the pipe: a logger killed before this finds
            // `Writing` and the batch at the pipe's head, and cuts its output off again.
            for (dir, start) in written {
                let record = record(Phase::Written, start);
                self.effects.push_back(Effect::Journal { dir, record });
            }
        }
    }
}

/// Start-up in pipe mode: which `current` to cut back to what length, from the journals a dead
/// logger left (`journals[i]` of log directory `i`). `head` gives the pipe's head; it is asked
/// for only when a batch was being written.
///
/// The batch a journal says was `Writing` is still in the pipe when the pipe's head is the same
/// bytes (same length and hash); its partial output is then cut off, so it is written exactly
/// once, now. Every journal is cleared after.
pub fn recover(journals: &[Option<Journal>], head: impl FnOnce() -> Vec<u8>) -> Vec<Option<u64>> {
    let writing = || {
        journals
            .iter()
            .flatten()
            .filter(|j| j.phase == Phase::Writing)
    };
    let mut unconsumed = None;
    if writing().next().is_some() {
        let head = head();
        for j in writing() {
            let bytes = usize::try_from(j.len).ok().and_then(|n| head.get(..n));
            if bytes.is_some_and(|h| fnv1a(h) == j.hash) {
                unconsumed = Some(j.batch);
            }
        }
    }
    journals
        .iter()
        .map(|j| match (j, unconsumed) {
            (Some(j), Some(batch)) if j.batch == batch => Some(j.offset),
            _ => None,
        })
        .collect()
}

/// Which archives to remove (oldest first) so that fewer than `num` stay: names as listed,
/// in any order; archive names sort by age.
pub fn archives_to_remove<N: AsRef<[u8]> + Ord + Clone>(names: &[N], num: u32) -> Vec<N> {
    let mut sorted: Vec<N> = names
        .iter()
        .filter(|n| super::is_archive(n.as_ref()))
        .cloned()
        .collect();
    sorted.sort();
    let keep = usize::try_from(num).unwrap_or(usize::MAX).saturating_sub(1);
    let excess = sorted.len().saturating_sub(keep);
    sorted.truncate(excess);
    sorted
}

#[cfg(test)]
mod tests;
