//! The supervise state machine: events in, actions out, no I/O and no clock.
//!
//! The driver (the `supervise` program) pushes every event through one door,
//! [`Machine::handle`]`(`[`Input`]`, now)`, and pulls complete [`Action`]s. A spawn action must be
//! answered at once (`RunSpawned`/`RunSpawnFailed`, or the finish equivalents), and so must
//! [`Action::FindDaemon`] (with [`Input::Daemon`]), before any other input. After every batch
//! of reaped children the driver says whether any process of the service is left
//! ([`Input::Population`]: the cgroup's `populated`, or whether supervise, a subreaper, still has
//! a child). The driver asks [`Machine::next_deadline`] how long it may sleep and hands in
//! [`Input::Timer`] when that time has come; with nothing pending there is no deadline, so an
//! idle supervise never wakes up.
//!
//! Invariants (tested below by table tests and random sequences):
//! - at most one child (`./run` or `./finish`) exists at a time, and never two `./run`;
//! - the status pid is non-zero exactly while `./run` runs;
//! - want is honoured: with want up the service comes back, with want down it is stopped and
//!   stays stopped;
//! - every change to what the status shows marks the status dirty;
//! - the service is shown down only once no process of it is left (its main process and every
//!   process it left behind).

use std::collections::VecDeque;
use std::time::Duration;

use crate::control::{Command, sig};
use crate::history::{Event, StopWhy};
use crate::status::{RunState, Status, Want};
use crate::tai::Tai64n;

/// The current time: monotonic (for deadlines) and wall clock (for status stamps).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    pub mono: Duration,
    pub wall: Tai64n,
}

/// Growing restart delay for a service that keeps dying soon after it starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The longest delay.
    pub cap: Duration,
    /// A run that lasted at least this long resets the delay.
    pub reset_after: Duration,
}

/// Give up after `count` automatic restarts within `window`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxRestarts {
    pub count: u32,
    pub window: Duration,
}

/// Per-service settings, read by the driver from files in the service directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Sent by `d` (then CONT). Default TERM.
    pub down_signal: i32,
    /// After `d`, SIGKILL if the service is still running this long after. Default off.
    pub timeout_kill: Option<Duration>,
    /// `./finish` is killed after this long. Default 5 s; `None` = unlimited.
    pub timeout_finish: Option<Duration>,
    /// Least time between two starts of `./run` (daemontools: 1 s).
    pub min_interval: Duration,
    pub backoff: Option<Backoff>,
    pub max_restarts: Option<MaxRestarts>,
    /// `./run` leads its own process group (started with setsid), so group signals are safe.
    pub own_group: bool,
    /// `stop-sequence`: replaces `down-signal` + `timeout-kill` when set.
    pub stop_sequence: Option<StopSequence>,
    /// `timeout-watchdog`: the run must ping within this period, or it is stopped and restarted.
    pub watchdog: Option<Duration>,
    /// `deadman`: the service is kept down while its file is older than this.
    pub deadman: Option<Duration>,
    /// `notification-fd`: the descriptor (3 to 1024) on which `./run` says it is ready.
    pub notification_fd: Option<i32>,
}

/// How long after a failed status write it is tried again.
pub const WRITE_RETRY: Duration = Duration::from_secs(1);

/// The most steps a `stop-sequence` may have.
pub const STOP_STEPS: usize = 8;

/// How long processes a stopped `./run` left behind get after the last signal of the stop
/// sequence before they are killed, when the sequence itself gives no time.
pub const LEFTOVER_GRACE: Duration = Duration::from_secs(5);

/// Signals to send to stop a service, each followed by how long to wait for it to end before the
/// next one (`None`: wait for ever).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StopSequence {
    steps: [(i32, Option<u32>); STOP_STEPS],
    len: usize,
}

impl StopSequence {
    /// `down-signal` then, after `timeout-kill`, KILL: what daemontools-style knobs say.
    pub fn classic(down: i32, kill_after: Option<Duration>) -> StopSequence {
        let mut seq = StopSequence {
            steps: [(0, None); STOP_STEPS],
            len: 0,
        };
        match kill_after {
            Some(t) => {
                let ms = u32::try_from(t.as_millis()).unwrap_or(u32::MAX);
                seq.push(down, Some(ms));
                seq.push(sig::KILL, None);
            }
            None => {
                seq.push(down, None);
            }
        }
        seq
    }

    fn push(&mut self, signal: i32, wait_ms: Option<u32>) -> bool {
        match self.steps.get_mut(self.len) {
            Some(slot) => {
                *slot = (signal, wait_ms);
                self.len += 1;
                true
            }
            None => false,
        }
    }

    /// Parses `TERM 5000 QUIT 2000 KILL`: signal names, each but the last followed by the
    /// milliseconds to wait before the next (the last may have one too). `None` when malformed.
    pub fn parse(text: &str) -> Option<StopSequence> {
        let mut seq = StopSequence {
            steps: [(0, None); STOP_STEPS],
            len: 0,
        };
        let mut waiting_for_time = false;
        for word in text.split_whitespace() {
            if word.bytes().all(|b| b.is_ascii_digit()) {
                let last = seq.len.checked_sub(1).and_then(|i| seq.steps.get_mut(i))?;
                if !waiting_for_time {
                    return None;
                }
                last.1 = Some(word.parse().ok()?);
                waiting_for_time = false;
            } else {
                if seq.len > 0 && waiting_for_time {
                    // A signal after one with no time: it could never be reached.
                    return None;
                }
                if !seq.push(sig::parse(word)?, None) {
                    return None;
                }
                waiting_for_time = true;
            }
        }
        (seq.len > 0).then_some(seq)
    }

    /// Step `i`: its signal and wait.
    pub fn step(&self, i: usize) -> Option<(i32, Option<u32>)> {
        self.steps.get(..self.len)?.get(i).copied()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            down_signal: sig::TERM,
            timeout_kill: None,
            timeout_finish: Some(Duration::from_secs(5)),
            min_interval: Duration::from_secs(1),
            backoff: None,
            max_restarts: None,
            own_group: true,
            stop_sequence: None,
            watchdog: None,
            deadman: None,
            notification_fd: None,
        }
    }
}

impl Config {
    /// The stop sequence in force: `stop-sequence`, else `down-signal` and `timeout-kill`.
    pub fn stop_steps(&self) -> StopSequence {
        self.stop_sequence
            .unwrap_or_else(|| StopSequence::classic(self.down_signal, self.timeout_kill))
    }
}

/// Everything the driver hands the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    /// The first step, after any `Adopt` and `Deadman`: starts `./run` unless the service is
    /// down.
    Start,
    /// One byte written to `supervise/control`.
    Control(u8),
    /// The end of one write on `supervise/control` (`+` and `L` hold within a write only).
    EndOfWrite,
    /// A signal supervise itself received (TERM, INT, HUP); others are ignored.
    Signal(i32),
    /// Answers to [`Action::SpawnRun`].
    RunSpawned(u32),
    RunSpawnFailed,
    /// Answer to [`Action::ProbeFinish`]: whether `./finish` exists.
    FinishExists(bool),
    /// Answers to [`Action::SpawnFinish`].
    FinishSpawned(u32),
    FinishSpawnFailed,
    /// Answer to [`Action::WriteStatus`]: whether both files were written.
    Written(bool),
    /// A child of supervise was reaped, with its raw wait status.
    Reaped {
        pid: u32,
        status: i32,
    },
    /// An adopted `./run` (not our child) ended; how, only its parent knows.
    AdoptedEnded(u32),
    /// After each batch of reaped children, or when the cgroup says so: whether any process of
    /// the service is left.
    Population(bool),
    /// Answer to [`Action::FindDaemon`]: the process `./run` left behind, if exactly one
    /// candidate was found.
    Daemon(Option<u32>),
    /// The service said it is ready (notification-fd, sd_notify `READY=1`).
    Ready,
    /// The service said it is alive (notification-fd written again, sd_notify `WATCHDOG=1`).
    Ping,
    /// The dead-man file's modification time, `None` when it does not exist.
    Deadman(Option<Tai64n>),
    /// A deadline has come.
    Timer,
}

/// What the driver must do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Start `./run`; answer with `run_spawned` or `run_spawn_failed`.
    SpawnRun,
    /// Does `./finish` exist? Answer with [`Input::FinishExists`].
    ProbeFinish,
    /// Start `./finish CODE SIGNAL`; answer with [`Input::FinishSpawned`] or
    /// [`Input::FinishSpawnFailed`].
    SpawnFinish { code: i32, signal: i32 },
    /// Write `supervise/info` then `supervise/status` as [`Machine::status`] and
    /// [`Machine::record`] show them now, unless they are what was last written (`force`:
    /// write anyway); answer with [`Input::Written`].
    WriteStatus { force: bool },
    /// Send `sig` to `pid`, or to its process group when `group`.
    Signal { pid: u32, sig: i32, group: bool },
    /// Send `sig` to every process of the service: its cgroup (KILL through `cgroup.kill`), or
    /// without one the main process's group and every descendant of supervise.
    SignalService { sig: i32 },
    /// `./run` exited 0 and left processes behind: name the one to track as the service's main
    /// process (a child of supervise, which is a subreaper); answer with [`Input::Daemon`].
    FindDaemon,
    /// Append this record to `supervise/history`.
    History(Event),
    /// supervise is done: exit 0.
    Exit,
}

/// How `./run` last ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitKind {
    Code(i32),
    Signal(i32),
    /// `./run` could not be started.
    SpawnFailed,
    /// An adopted process ended; only its real parent saw how.
    Unknown,
}

impl ExitKind {
    /// Decodes a raw wait status as `waitpid` returns it.
    pub fn from_wait_status(ws: i32) -> ExitKind {
        let low = ws & 0x7f;
        if low == 0 {
            ExitKind::Code((ws >> 8) & 0xff)
        } else {
            ExitKind::Signal(low)
        }
    }

    /// runit/s6 finish arguments: (exit code or -1, signal number or 0).
    pub fn finish_args(self) -> (i32, i32) {
        match self {
            ExitKind::Code(c) => (c, 0),
            ExitKind::Signal(s) => (-1, s),
            ExitKind::SpawnFailed => (111, 0),
            ExitKind::Unknown => (-1, 0),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Nothing runs.
    Down,
    /// A spawn action was handed out; its answer is pending.
    Spawning,
    Run {
        pid: u32,
    },
    /// The spawn of `./finish` was handed out.
    SpawningFinish,
    Finish {
        pid: u32,
    },
}

/// Facts for the rich status file and `svstat -l`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Record {
    /// Starts of `./run` since supervise started.
    pub starts: u64,
    pub last_start: Option<Tai64n>,
    pub last_exit: Option<Tai64n>,
    pub last_exit_kind: Option<ExitKind>,
    pub ready: Option<Tai64n>,
    /// Consecutive runs that died before `reset_after` (backoff only).
    pub quick_deaths: u32,
    /// The delay before the next automatic start, when one is waiting.
    pub delay: Option<Duration>,
    /// Given up: too many restarts, or finish said 125.
    pub failed: bool,
    /// The running `./run` was started by an earlier supervise and adopted.
    pub adopted: bool,
    /// Why a stop is under way, while one is.
    pub stopping: Option<StopReason>,
    /// The main process is a daemon `./run` left behind when it exited 0.
    pub tracked: bool,
    /// The dead-man file is stale: the service is kept down.
    pub deadman_stale: bool,
}

/// Why supervise is bringing the run down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// `svc -d`, `-x` with down, a signal to supervise.
    Down,
    Watchdog,
    Deadman,
    /// `./run` ended and left processes behind that are not kept.
    Leftovers,
}

impl StopReason {
    pub fn name(self) -> &'static str {
        match self {
            StopReason::Down => "down",
            StopReason::Watchdog => "watchdog",
            StopReason::Deadman => "deadman",
            StopReason::Leftovers => "leftovers",
        }
    }

    pub fn from_name(name: &str) -> Option<StopReason> {
        [
            StopReason::Down,
            StopReason::Watchdog,
            StopReason::Deadman,
            StopReason::Leftovers,
        ]
        .into_iter()
        .find(|r| r.name() == name)
    }
}

/// A stop in progress: which step of the stop sequence was sent, and when the next one is due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stop {
    step: usize,
    next_at: Option<Duration>,
    /// The last signal sent went to every process of the service (not only the main one).
    to_all: bool,
}

/// What an earlier supervise left about a `./run` that is still running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Adopted {
    pub pid: u32,
    /// Status stamp of the earlier supervise (when the run started).
    pub stamp: Tai64n,
    pub want: Want,
    pub paused: bool,
    pub ready: Option<Tai64n>,
    pub started: Option<Tai64n>,
    pub starts: u64,
}

#[derive(Debug)]
pub struct Machine {
    cfg: Config,
    phase: Phase,
    want: Want,
    paused: bool,
    got_term: bool,
    exit_requested: bool,
    /// `u`/`o` arrived while finish ran: start as soon as it is done, whatever the pace.
    start_when_done: bool,
    /// Signal letters go to the process group (`+` until `=` or the end of the write).
    group_mode: bool,
    /// Skipping commands meant for the log service (`L` until `l`).
    log_target: bool,
    /// Wall time of the last pid change: status bytes 0-11.
    changed: Tai64n,
    last_start_mono: Option<Duration>,
    run_started_mono: Duration,
    restart_at: Option<Duration>,
    stop: Option<Stop>,
    /// The main process was reaped (how it ended) while processes it left are still there.
    main_exit: Option<ExitKind>,
    watchdog_at: Option<Duration>,
    /// When the dead-man file becomes stale, while it is fresh.
    deadman_at: Option<Duration>,
    finish_kill_at: Option<Duration>,
    /// A status write failed: when to try again.
    write_retry_at: Option<Duration>,
    /// How `./run` ended, for `./finish`, while its existence is probed.
    finish_args: (i32, i32),
    /// Recent automatic starts, for `max-restarts`.
    recent_starts: VecDeque<Duration>,
    record: Record,
    actions: VecDeque<Action>,
    dirty: bool,
    /// `Exit` was handed out: nothing more happens.
    done: bool,
}

impl Machine {
    /// A machine for a service that starts down (`./down` exists) or up.
    pub fn new(cfg: Config, start_down: bool, now: Now) -> Machine {
        Machine::with_want(cfg, if start_down { Want::Down } else { Want::Up }, now)
    }

    /// A machine that takes over a service with the want its predecessor recorded (a handover):
    /// up starts the service, down and once (already run) start nothing.
    pub fn with_want(cfg: Config, want: Want, now: Now) -> Machine {
        Machine {
            cfg,
            phase: Phase::Down,
            want,
            paused: false,
            got_term: false,
            exit_requested: false,
            start_when_done: false,
            group_mode: false,
            log_target: false,
            changed: now.wall,
            last_start_mono: None,
            run_started_mono: Duration::ZERO,
            restart_at: None,
            stop: None,
            main_exit: None,
            watchdog_at: None,
            deadman_at: None,
            finish_kill_at: None,
            write_retry_at: None,
            finish_args: (0, 0),
            recent_starts: VecDeque::new(),
            record: Record::default(),
            actions: VecDeque::new(),
            dirty: true,
            done: false,
        }
    }

    /// The one door for events. Pull the resulting actions with [`Machine::next_action`].
    pub fn handle(&mut self, input: Input, now: Now) {
        match input {
            Input::Start => self.start(now),
            Input::Control(byte) => self.command(byte, now),
            Input::EndOfWrite => self.end_of_commands(),
            Input::Signal(s) => {
                for &byte in crate::control::signal_command(s).unwrap_or_default() {
                    self.command(byte, now);
                }
                self.end_of_commands();
            }
            Input::RunSpawned(pid) => self.run_spawned(pid, now),
            Input::RunSpawnFailed => self.run_spawn_failed(now),
            Input::FinishExists(true) if self.phase == Phase::SpawningFinish => {
                // Show the exit before ./finish can act on it: a finish script (or a client it
                // wakes) must find the service already down in the status.
                self.write_status(false);
                let (code, signal) = self.finish_args;
                self.actions.push_back(Action::SpawnFinish { code, signal });
            }
            Input::FinishExists(_) => self.finish_spawn_failed(now),
            Input::FinishSpawned(pid) => self.finish_spawned(pid, now),
            Input::FinishSpawnFailed => self.finish_spawn_failed(now),
            Input::Written(true) => self.write_retry_at = None,
            Input::Written(false) => {
                // A status that lies is worse than a late one: try again every second.
                self.write_retry_at = Some(now.mono + WRITE_RETRY);
            }
            Input::Reaped { pid, status } => {
                self.exited(pid, ExitKind::from_wait_status(status), now)
            }
            Input::AdoptedEnded(pid) => self.exited(pid, ExitKind::Unknown, now),
            Input::Population(populated) => self.population(populated, now),
            Input::Daemon(pid) => self.daemon_found(pid, now),
            Input::Ready => self.ready(now),
            Input::Ping => self.ping(now),
            Input::Deadman(mtime) => self.deadman(mtime, now),
            Input::Timer => self.timer(now),
        }
        if self.dirty && !self.done {
            self.write_status(false);
        }
    }

    /// Asks for the status files to be written (what changed is then shown).
    fn write_status(&mut self, force: bool) {
        self.dirty = false;
        self.actions.push_back(Action::WriteStatus { force });
    }

    /// Takes over a `./run` an earlier supervise started and that still runs. Call before
    /// [`Input::Start`], which then starts nothing; a service that was being stopped (want
    /// down) is sent its down signal again.
    pub fn adopt(&mut self, a: Adopted, now: Now) {
        self.phase = Phase::Run { pid: a.pid };
        self.want = a.want;
        self.paused = a.paused;
        self.changed = a.stamp;
        self.run_started_mono = now.mono;
        self.last_start_mono = Some(now.mono);
        self.record.starts = a.starts;
        self.record.last_start = a.started;
        self.record.ready = a.ready;
        self.record.adopted = true;
        self.watchdog_at = self.cfg.watchdog.map(|t| now.mono + t);
        self.dirty = true;
        self.actions.push_back(Action::History(Event::Start {
            pid: a.pid,
            adopted: true,
        }));
    }

    fn start(&mut self, now: Now) {
        match self.phase {
            Phase::Run { .. } if self.want == Want::Down => {
                // The earlier supervise died while stopping it: finish the job.
                self.begin_stop(StopReason::Down, now);
            }
            Phase::Run { .. } if self.record.deadman_stale => {
                self.begin_stop(StopReason::Deadman, now);
            }
            Phase::Down if self.want == Want::Up => self.spawn_run(now),
            _ => {}
        }
        self.dirty = true;
    }

    pub fn set_config(&mut self, cfg: Config) {
        self.cfg = cfg;
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The next action to perform, in order.
    pub fn next_action(&mut self) -> Option<Action> {
        let a = self.actions.pop_front();
        if a == Some(Action::Exit) {
            self.done = true;
            self.actions.clear();
        }
        a
    }

    /// The earliest pending deadline, `None` when idle.
    pub fn next_deadline(&self) -> Option<Duration> {
        [
            self.restart_at,
            self.stop.and_then(|s| s.next_at),
            self.finish_kill_at,
            self.write_retry_at,
            self.watchdog_at,
            self.deadman_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub fn status(&self) -> Status {
        let (pid, state) = match self.phase {
            Phase::Run { pid } => (pid, RunState::Run),
            Phase::Finish { .. } | Phase::SpawningFinish => (0, RunState::Finish),
            Phase::Down | Phase::Spawning => (0, RunState::Down),
        };
        Status {
            stamp: self.changed,
            pid,
            paused: self.paused && pid != 0,
            want: self.want,
            got_term: self.got_term && pid != 0,
            state,
        }
    }

    pub fn record(&self) -> &Record {
        &self.record
    }

    /// Whether the machine waits to hear that no process of the service is left (its main
    /// process ended, what it left is being brought down): only then is the cgroup's
    /// `cgroup.events` worth a wakeup.
    pub fn awaiting_population(&self) -> bool {
        self.main_exit.is_some()
    }

    /// Pid of `./finish` while it runs.
    pub fn finish_pid(&self) -> Option<u32> {
        match self.phase {
            Phase::Finish { pid } => Some(pid),
            _ => None,
        }
    }

    /// Marks the end of one write on the control FIFO: `+` and `L` apply within a write only.
    fn end_of_commands(&mut self) {
        self.group_mode = false;
        self.log_target = false;
    }

    /// One control byte. Unknown bytes are ignored.
    fn command(&mut self, byte: u8, now: Now) {
        let Some(cmd) = Command::from_byte(byte) else {
            return;
        };
        if self.done {
            return;
        }
        if self.log_target && cmd != Command::MainTarget {
            return;
        }
        match cmd {
            Command::Up => {
                self.want = Want::Up;
                self.clear_failure();
                self.start_now(now);
            }
            Command::Once => {
                self.want = Want::Once;
                self.clear_failure();
                self.start_now(now);
            }
            Command::Down => {
                self.want = Want::Down;
                self.restart_at = None;
                self.record.delay = None;
                self.start_when_done = false;
                if let Phase::Run { .. } = self.phase {
                    self.paused = false;
                    self.begin_stop(StopReason::Down, now);
                }
            }
            Command::Exit => {
                self.exit_requested = true;
                self.exit_if_down();
            }
            Command::Pause => {
                if let Some(pid) = self.live_main() {
                    self.paused = true;
                    self.signal(pid, sig::STOP, self.group_mode);
                }
            }
            Command::Continue => {
                if let Some(pid) = self.live_main() {
                    self.paused = false;
                    self.signal(pid, sig::CONT, self.group_mode);
                }
            }
            Command::Signal { sig: s, group } => {
                if let Some(pid) = self.live_main() {
                    self.signal(pid, s, group || self.group_mode);
                    if s == sig::TERM {
                        self.got_term = true;
                    }
                }
            }
            Command::GroupMode => self.group_mode = true,
            Command::PidMode => self.group_mode = false,
            Command::LogTarget => self.log_target = true,
            Command::MainTarget => self.log_target = false,
        }
        self.dirty = true;
    }

    /// The main process, while it runs (not once it was reaped and what it left is draining).
    fn live_main(&self) -> Option<u32> {
        match self.phase {
            Phase::Run { pid } if self.main_exit.is_none() => Some(pid),
            _ => None,
        }
    }

    /// The service said it is ready (notification-fd or sd_notify).
    fn ready(&mut self, now: Now) {
        if self.live_main().is_some() && self.record.ready.is_none() {
            self.record.ready = Some(now.wall);
            self.dirty = true;
        }
    }

    /// The service proved it is alive: its watchdog deadline moves on.
    fn ping(&mut self, now: Now) {
        if self.live_main().is_some() && self.stop.is_none() {
            self.watchdog_at = self.cfg.watchdog.map(|t| now.mono + t);
        }
    }

    /// The dead-man file was seen with modification time `mtime` (`None`: missing).
    fn deadman(&mut self, mtime: Option<Tai64n>, now: Now) {
        let Some(limit) = self.cfg.deadman else {
            self.deadman_at = None;
            if self.record.deadman_stale {
                self.record.deadman_stale = false;
                self.deadman_fresh(now);
            }
            return;
        };
        let stale_at = mtime.map(|t| wall_offset(t) + limit);
        match stale_at {
            Some(at) if at > wall_offset(now.wall) => {
                self.deadman_at = Some(now.mono + (at - wall_offset(now.wall)));
                if self.record.deadman_stale {
                    self.record.deadman_stale = false;
                    self.dirty = true;
                    self.deadman_fresh(now);
                }
            }
            _ => {
                self.deadman_at = None;
                self.deadman_stale(now);
            }
        }
    }

    fn deadman_stale(&mut self, now: Now) {
        if self.record.deadman_stale {
            return;
        }
        self.record.deadman_stale = true;
        self.restart_at = None;
        self.record.delay = None;
        self.start_when_done = false;
        self.dirty = true;
        if let Some(pid) = self.live_main()
            && self.stop.is_none()
        {
            self.actions.push_back(Action::History(Event::Stop {
                pid,
                why: StopWhy::Deadman,
            }));
            self.begin_stop(StopReason::Deadman, now);
        }
    }

    /// The dead-man file is fresh again: up again, unless someone said down meanwhile.
    fn deadman_fresh(&mut self, now: Now) {
        self.dirty = true;
        if self.want == Want::Up && self.phase == Phase::Down && !self.exit_requested {
            self.spawn_run(now);
        }
    }

    fn run_spawned(&mut self, pid: u32, now: Now) {
        if self.phase != Phase::Spawning {
            return;
        }
        self.phase = Phase::Run { pid };
        self.changed = now.wall;
        self.run_started_mono = now.mono;
        self.record.starts += 1;
        self.record.last_start = Some(now.wall);
        self.record.ready = None;
        self.record.delay = None;
        self.record.adopted = false;
        self.record.tracked = false;
        self.paused = false;
        self.got_term = false;
        self.watchdog_at = self.cfg.watchdog.map(|t| now.mono + t);
        self.dirty = true;
        self.actions.push_back(Action::History(Event::Start {
            pid,
            adopted: false,
        }));
    }

    fn run_spawn_failed(&mut self, now: Now) {
        if self.phase != Phase::Spawning {
            return;
        }
        self.phase = Phase::Down;
        self.record.last_exit_kind = Some(ExitKind::SpawnFailed);
        self.record.last_exit = Some(now.wall);
        self.dirty = true;
        self.actions.push_back(Action::History(Event::Exit {
            pid: 0,
            how: Some(ExitKind::SpawnFailed),
            ran_ms: 0,
        }));
        // daemontools compat: a run that cannot be started is retried about once a second while
        // want is up; `svc -o` tries once.
        if self.want == Want::Once {
            self.want = Want::Down;
        }
        self.after_down(now);
    }

    fn finish_spawned(&mut self, pid: u32, now: Now) {
        if self.phase != Phase::SpawningFinish {
            return;
        }
        self.phase = Phase::Finish { pid };
        self.finish_kill_at = self.cfg.timeout_finish.map(|t| now.mono + t);
        self.dirty = true;
    }

    /// `./finish` is absent or could not be started: carry on as if it had exited 0.
    fn finish_spawn_failed(&mut self, now: Now) {
        if self.phase != Phase::SpawningFinish {
            return;
        }
        self.phase = Phase::Down;
        self.dirty = true;
        self.after_down(now);
    }

    fn exited(&mut self, pid: u32, kind: ExitKind, now: Now) {
        match self.phase {
            Phase::Run { pid: p } if p == pid && self.main_exit.is_none() => {
                self.record.adopted = false;
                let quick = self.cfg.backoff.is_some_and(|b| {
                    now.mono.saturating_sub(self.run_started_mono) < b.reset_after
                });
                self.record.quick_deaths = if quick {
                    self.record.quick_deaths + 1
                } else {
                    0
                };
                self.record.last_exit = Some(now.wall);
                self.record.last_exit_kind = Some(kind);
                self.record.ready = None;
                self.watchdog_at = None;
                let ran_ms =
                    u64::try_from(now.mono.saturating_sub(self.run_started_mono).as_millis())
                        .unwrap_or(u64::MAX);
                self.actions.push_back(Action::History(Event::Exit {
                    pid,
                    how: Some(kind).filter(|k| *k != ExitKind::Unknown),
                    ran_ms,
                }));
                // Down, restart or track a daemon once the population is known.
                self.main_exit = Some(kind);
                self.dirty = true;
            }
            Phase::Finish { pid: p } if p == pid => {
                self.finish_kill_at = None;
                self.phase = Phase::Down;
                if kind == ExitKind::Code(125) {
                    self.want = Want::Down;
                    self.record.failed = true;
                    self.start_when_done = false;
                }
                self.dirty = true;
                self.after_down(now);
            }
            _ => {}
        }
    }

    /// Whether any process of the service is left, after the main one was reaped (or at any
    /// time: ignored unless the main process has ended).
    fn population(&mut self, populated: bool, now: Now) {
        let Some(kind) = self.main_exit else {
            return;
        };
        if !populated {
            self.run_ended(kind, now);
            return;
        }
        match self.stop {
            Some(stop) if stop.to_all => {}
            Some(stop) => {
                // The main process is gone; what it left gets the signal too.
                let signal = self
                    .cfg
                    .stop_steps()
                    .step(stop.step)
                    .map_or(sig::TERM, |s| s.0);
                self.actions
                    .push_back(Action::SignalService { sig: signal });
                self.stop = Some(Stop {
                    to_all: true,
                    next_at: stop.next_at.or(Some(now.mono + LEFTOVER_GRACE)),
                    ..stop
                });
            }
            None if self.want == Want::Up
                && kind == ExitKind::Code(0)
                && !self.record.deadman_stale
                && !self.exit_requested =>
            {
                self.actions.push_back(Action::FindDaemon);
            }
            None => self.begin_stop(StopReason::Leftovers, now),
        }
    }

    /// The answer to `FindDaemon`.
    fn daemon_found(&mut self, pid: Option<u32>, now: Now) {
        if self.main_exit.is_none() || self.stop.is_some() {
            return;
        }
        match pid {
            Some(pid) => {
                self.main_exit = None;
                self.phase = Phase::Run { pid };
                self.changed = now.wall;
                self.record.tracked = true;
                self.record.last_start = Some(now.wall);
                self.run_started_mono = now.mono;
                self.watchdog_at = self.cfg.watchdog.map(|t| now.mono + t);
                self.actions
                    .push_back(Action::History(Event::Track { pid }));
                self.dirty = true;
            }
            None => self.begin_stop(StopReason::Leftovers, now),
        }
    }

    /// The main process and everything it left are gone: `./finish`, then restart or rest.
    fn run_ended(&mut self, kind: ExitKind, now: Now) {
        self.main_exit = None;
        self.stop = None;
        self.record.stopping = None;
        self.record.tracked = false;
        self.changed = now.wall;
        self.paused = false;
        self.got_term = false;
        if self.want == Want::Once {
            // daemontools compat: want stays 0 after a once run; it just is not restarted.
            self.start_when_done = false;
        }
        self.finish_args = kind.finish_args();
        self.phase = Phase::SpawningFinish;
        self.actions.push_back(Action::ProbeFinish);
        self.dirty = true;
    }

    /// Starts the stop sequence (or sends its first signal again on a repeated `svc -d`, as
    /// daemontools does, keeping the deadline already set).
    fn begin_stop(&mut self, reason: StopReason, now: Now) {
        let Phase::Run { pid } = self.phase else {
            return;
        };
        let steps = self.cfg.stop_steps();
        let (signal, wait) = steps.step(0).unwrap_or((sig::TERM, None));
        let to_all = self.main_exit.is_some();
        if to_all {
            self.actions
                .push_back(Action::SignalService { sig: signal });
        } else {
            self.signal(pid, signal, false);
            self.signal(pid, sig::CONT, false);
        }
        self.got_term = true;
        self.watchdog_at = None;
        if self.record.stopping.is_none() || reason == StopReason::Down {
            self.record.stopping = Some(reason);
        }
        let next_at = wait
            .map(|ms| now.mono + Duration::from_millis(ms.into()))
            .or(to_all.then_some(now.mono + LEFTOVER_GRACE));
        self.stop = Some(match self.stop {
            Some(s) => Stop { to_all, ..s },
            None => Stop {
                step: 0,
                next_at,
                to_all,
            },
        });
        self.dirty = true;
    }

    /// The stop's deadline came: the next step, or, once the sequence is spent, KILL for
    /// whatever the main process left.
    fn next_stop_step(&mut self, now: Now) {
        let Some(stop) = self.stop else { return };
        let steps = self.cfg.stop_steps();
        let step = stop.step + 1;
        match steps.step(step) {
            Some((signal, wait)) => {
                self.actions
                    .push_back(Action::SignalService { sig: signal });
                let next_at = wait
                    .map(|ms| now.mono + Duration::from_millis(ms.into()))
                    .or((self.main_exit.is_some() && signal != sig::KILL)
                        .then_some(now.mono + LEFTOVER_GRACE));
                self.stop = Some(Stop {
                    step,
                    next_at,
                    to_all: true,
                });
            }
            None if self.main_exit.is_some() => {
                self.actions
                    .push_back(Action::SignalService { sig: sig::KILL });
                self.stop = Some(Stop {
                    step,
                    next_at: None,
                    to_all: true,
                });
            }
            None => {
                self.stop = Some(Stop {
                    next_at: None,
                    ..stop
                })
            }
        }
    }

    /// Handles every deadline that has come.
    fn timer(&mut self, now: Now) {
        if self.write_retry_at.is_some_and(|t| t <= now.mono) {
            self.write_retry_at = None;
            self.write_status(true);
        }
        if self
            .stop
            .and_then(|s| s.next_at)
            .is_some_and(|t| t <= now.mono)
        {
            self.next_stop_step(now);
        }
        if self.finish_kill_at.is_some_and(|t| t <= now.mono) {
            self.finish_kill_at = None;
            if let Phase::Finish { pid } = self.phase {
                self.signal(pid, sig::KILL, self.cfg.own_group);
            }
        }
        if self.watchdog_at.is_some_and(|t| t <= now.mono) {
            self.watchdog_at = None;
            if let Some(pid) = self.live_main()
                && self.stop.is_none()
            {
                self.actions.push_back(Action::History(Event::Stop {
                    pid,
                    why: StopWhy::Watchdog,
                }));
                self.begin_stop(StopReason::Watchdog, now);
            }
        }
        if self.deadman_at.is_some_and(|t| t <= now.mono) {
            self.deadman_at = None;
            self.deadman_stale(now);
        }
        if self.restart_at.is_some_and(|t| t <= now.mono) {
            self.restart_at = None;
            if self.phase == Phase::Down && self.want == Want::Up && !self.record.deadman_stale {
                self.note_automatic_start(now);
                if !self.record.failed {
                    self.spawn_run(now);
                }
            }
            self.dirty = true;
        }
    }

    fn signal(&mut self, pid: u32, s: i32, group: bool) {
        self.actions.push_back(Action::Signal {
            pid,
            sig: s,
            group: group && self.cfg.own_group,
        });
    }

    fn spawn_run(&mut self, now: Now) {
        if self.record.deadman_stale {
            return;
        }
        self.phase = Phase::Spawning;
        self.last_start_mono = Some(now.mono);
        self.restart_at = None;
        self.start_when_done = false;
        self.actions.push_back(Action::SpawnRun);
    }

    /// `u` or `o`: start at once if nothing runs (a command is never paced), or right after
    /// `./finish` if it is running.
    fn start_now(&mut self, now: Now) {
        match self.phase {
            Phase::Down => self.spawn_run(now),
            Phase::Finish { .. } | Phase::SpawningFinish => self.start_when_done = true,
            Phase::Run { .. } | Phase::Spawning => {}
        }
    }

    fn clear_failure(&mut self) {
        self.record.failed = false;
        self.record.quick_deaths = 0;
        self.recent_starts.clear();
    }

    fn exit_if_down(&mut self) {
        if self.exit_requested && self.phase == Phase::Down && !self.done {
            self.restart_at = None;
            self.write_retry_at = None;
            // daemontools compat: the last status is written again on exit, so a deleted
            // `supervise/status` comes back.
            self.write_status(true);
            self.actions.push_back(Action::Exit);
        }
    }

    /// The service and its finish are both gone: exit, restart or rest.
    fn after_down(&mut self, now: Now) {
        if self.exit_requested {
            self.exit_if_down();
            return;
        }
        let wanted = self.want == Want::Up || (self.want == Want::Once && self.start_when_done);
        if !wanted || self.record.deadman_stale {
            return;
        }
        if self.start_when_done {
            self.spawn_run(now);
            return;
        }
        let at = self.restart_deadline(now);
        if at <= now.mono {
            self.note_automatic_start(now);
            if !self.record.failed {
                self.spawn_run(now);
            }
        } else {
            self.restart_at = Some(at);
            self.record.delay = Some(at - now.mono);
        }
    }

    fn restart_deadline(&self, now: Now) -> Duration {
        let paced = self
            .last_start_mono
            .map_or(now.mono, |t| t + self.cfg.min_interval);
        match self.cfg.backoff {
            Some(b) if self.record.quick_deaths > 0 => {
                let doublings = (self.record.quick_deaths - 1).min(30);
                let delay = self
                    .cfg
                    .min_interval
                    .saturating_mul(1u32 << doublings)
                    .min(b.cap);
                paced.max(now.mono + delay)
            }
            _ => paced,
        }
    }

    /// Counts an automatic restart against `max-restarts`; marks the service failed (want down)
    /// when the limit is reached.
    fn note_automatic_start(&mut self, now: Now) {
        let Some(m) = self.cfg.max_restarts else {
            return;
        };
        while self
            .recent_starts
            .front()
            .is_some_and(|&t| now.mono.saturating_sub(t) > m.window)
        {
            self.recent_starts.pop_front();
        }
        if self.recent_starts.len() >= m.count as usize {
            self.record.failed = true;
            self.want = Want::Down;
            self.record.delay = None;
            self.dirty = true;
            return;
        }
        self.recent_starts.push_back(now.mono);
    }
}

/// A wall-clock time as the span since the TAI64 origin, for differences.
fn wall_offset(t: Tai64n) -> Duration {
    Duration::new(t.secs, t.nanos.min(999_999_999))
}

#[cfg(test)]
mod tests;
