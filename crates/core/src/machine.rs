//! The supervise state machine: events in, actions out, no I/O and no clock.
//!
//! The driver (the `supervise` program) pushes events with the current time ([`Now`]) and pulls
//! [`Action`]s. A spawn action must be answered at once with `run_spawned`/`run_spawn_failed`
//! (or the finish equivalents) before any other event. The driver asks [`Machine::next_deadline`]
//! how long it may sleep and calls [`Machine::timer`] when that time has come; with nothing
//! pending there is no deadline, so an idle supervise never wakes up.
//!
//! Invariants (tested below by table tests and random sequences):
//! - at most one child (`./run` or `./finish`) exists at a time, and never two `./run`;
//! - the status pid is non-zero exactly while `./run` runs;
//! - want is honoured: with want up the service comes back, with want down it is stopped and
//!   stays stopped;
//! - every change to what the status shows marks the status dirty.

use std::collections::VecDeque;
use std::time::Duration;

use crate::control::{Command, sig};
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
        }
    }
}

/// What the driver must do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Start `./run`; answer with `run_spawned` or `run_spawn_failed`.
    SpawnRun,
    /// Start `./finish CODE SIGNAL`; answer with `finish_spawned` or `finish_spawn_failed`
    /// (also when there is no `./finish`).
    SpawnFinish { code: i32, signal: i32 },
    /// Send `sig` to `pid`, or to its process group when `group`.
    Signal { pid: u32, sig: i32, group: bool },
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
    kill_at: Option<Duration>,
    finish_kill_at: Option<Duration>,
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
            kill_at: None,
            finish_kill_at: None,
            recent_starts: VecDeque::new(),
            record: Record::default(),
            actions: VecDeque::new(),
            dirty: true,
            done: false,
        }
    }

    /// Takes over a `./run` an earlier supervise started and that still runs. Call before
    /// [`Machine::start`], which then starts nothing; a service that was being stopped (want
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
        self.dirty = true;
    }

    /// The first step: starts `./run` unless the service is normally down.
    pub fn start(&mut self, now: Now) {
        match self.phase {
            Phase::Run { pid } if self.want == Want::Down => {
                // The earlier supervise died while stopping it: finish the job.
                self.signal(pid, self.cfg.down_signal, false);
                self.signal(pid, sig::CONT, false);
                self.got_term = true;
                if let Some(t) = self.cfg.timeout_kill {
                    self.kill_at = Some(now.mono + t);
                }
            }
            Phase::Down if self.want == Want::Up => self.spawn_run(now),
            _ => {}
        }
        self.dirty = true;
    }

    /// An adopted `./run` ended (its pidfd said so); how, only its parent knows.
    pub fn adopted_exited(&mut self, pid: u32, now: Now) {
        self.exited(pid, ExitKind::Unknown, now);
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

    /// True once supervise has been told to exit.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// True once after any change of what the status files show.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    /// The earliest pending deadline, `None` when idle.
    pub fn next_deadline(&self) -> Option<Duration> {
        [self.restart_at, self.kill_at, self.finish_kill_at]
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

    /// Pid of `./finish` while it runs.
    pub fn finish_pid(&self) -> Option<u32> {
        match self.phase {
            Phase::Finish { pid } => Some(pid),
            _ => None,
        }
    }

    /// Whether supervise has been asked to exit once the service is down.
    pub fn exit_requested(&self) -> bool {
        self.exit_requested
    }

    /// Marks the end of one write on the control FIFO: `+` and `L` apply within a write only.
    pub fn end_of_commands(&mut self) {
        self.group_mode = false;
        self.log_target = false;
    }

    /// One control byte. Unknown bytes are ignored.
    pub fn command(&mut self, byte: u8, now: Now) {
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
                self.start_when_done = false;
                if let Phase::Run { pid } = self.phase {
                    self.signal(pid, self.cfg.down_signal, false);
                    self.signal(pid, sig::CONT, false);
                    self.paused = false;
                    self.got_term = true;
                    if let Some(t) = self.cfg.timeout_kill {
                        self.kill_at = Some(now.mono + t);
                    }
                }
            }
            Command::Exit => {
                self.exit_requested = true;
                self.exit_if_down();
            }
            Command::Pause => {
                if let Phase::Run { pid } = self.phase {
                    self.paused = true;
                    self.signal(pid, sig::STOP, self.group_mode);
                }
            }
            Command::Continue => {
                if let Phase::Run { pid } = self.phase {
                    self.paused = false;
                    self.signal(pid, sig::CONT, self.group_mode);
                }
            }
            Command::Signal { sig: s, group } => {
                if let Phase::Run { pid } = self.phase {
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

    /// The service said it is ready (notification-fd or sd_notify).
    pub fn ready(&mut self, now: Now) {
        if matches!(self.phase, Phase::Run { .. }) && self.record.ready.is_none() {
            self.record.ready = Some(now.wall);
            self.dirty = true;
        }
    }

    pub fn run_spawned(&mut self, pid: u32, now: Now) {
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
        self.paused = false;
        self.got_term = false;
        self.dirty = true;
    }

    pub fn run_spawn_failed(&mut self, now: Now) {
        if self.phase != Phase::Spawning {
            return;
        }
        self.phase = Phase::Down;
        self.record.last_exit_kind = Some(ExitKind::SpawnFailed);
        self.record.last_exit = Some(now.wall);
        self.dirty = true;
        // daemontools compat: a run that cannot be started is retried about once a second while
        // want is up; `svc -o` tries once.
        if self.want == Want::Once {
            self.want = Want::Down;
        }
        self.after_down(now);
    }

    pub fn finish_spawned(&mut self, pid: u32, now: Now) {
        if self.phase != Phase::SpawningFinish {
            return;
        }
        self.phase = Phase::Finish { pid };
        self.finish_kill_at = self.cfg.timeout_finish.map(|t| now.mono + t);
        self.dirty = true;
    }

    /// `./finish` is absent or could not be started: carry on as if it had exited 0.
    pub fn finish_spawn_failed(&mut self, now: Now) {
        if self.phase != Phase::SpawningFinish {
            return;
        }
        self.phase = Phase::Down;
        self.dirty = true;
        self.after_down(now);
    }

    /// A child was reaped, with its raw wait status. Pids that are not ours are ignored.
    pub fn child_exited(&mut self, pid: u32, wait_status: i32, now: Now) {
        self.exited(pid, ExitKind::from_wait_status(wait_status), now);
    }

    fn exited(&mut self, pid: u32, kind: ExitKind, now: Now) {
        match self.phase {
            Phase::Run { pid: p } if p == pid => {
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
                self.changed = now.wall;
                self.paused = false;
                self.got_term = false;
                self.kill_at = None;
                if self.want == Want::Once {
                    // daemontools compat: want stays 0 after a once run; it just is not restarted.
                    self.start_when_done = false;
                }
                let (code, signal) = kind.finish_args();
                self.phase = Phase::SpawningFinish;
                self.actions.push_back(Action::SpawnFinish { code, signal });
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

    /// Handles every deadline that has come.
    pub fn timer(&mut self, now: Now) {
        if self.kill_at.is_some_and(|t| t <= now.mono) {
            self.kill_at = None;
            if let Phase::Run { pid } = self.phase {
                self.signal(pid, sig::KILL, self.cfg.own_group);
            }
        }
        if self.finish_kill_at.is_some_and(|t| t <= now.mono) {
            self.finish_kill_at = None;
            if let Phase::Finish { pid } = self.phase {
                self.signal(pid, sig::KILL, self.cfg.own_group);
            }
        }
        if self.restart_at.is_some_and(|t| t <= now.mono) {
            self.restart_at = None;
            if self.phase == Phase::Down && self.want == Want::Up {
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
        if !wanted {
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

#[cfg(test)]
mod tests;
