//! svscan's decisions: which supervise processes to start, which to tell to stop, when a dead
//! one may be restarted, and the order of a shutdown. No syscalls and no clock: the driver
//! pushes in what it saw (a directory listing, a reaped pid, the result of a start) with the
//! time, and pulls out [`Action`]s; [`Scan::next_deadline`] says when to wake, `None` when
//! nothing is pending, so an idle svscan never wakes up.
//!
//! A service is keyed by the (device, inode) of its directory, as daemontools keys it, so a
//! rename keeps its supervise and its log pipe. Each service has a main side (`supervise NAME`)
//! and, once `NAME/log` exists, a log side (`supervise log` in `NAME`), joined by a pipe the
//! driver owns for the service's whole life.
//!
//! Stopping order, for a removed service and at shutdown alike: the main supervise is told
//! `dx`; only once it has exited is the driver told to close its own write end of the pipe and
//! the log supervise told `x`, so the logger reads the pipe to end-of-file and exits by itself.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::time::Duration;

/// Least time between two starts of the supervise of one side of a service.
pub const RESTART_PACE: Duration = Duration::from_secs(1);
/// Default time a service (or a logger draining its pipe) gets to stop before it is killed at
/// shutdown.
pub const DEFAULT_KILL_TIMEOUT: Duration = Duration::from_secs(10);
/// Rescan interval when inotify cannot be used (daemontools' fixed interval).
pub const FALLBACK_RESCAN: Duration = Duration::from_secs(5);
/// Retry delay after a failed scan (e.g. out of descriptors).
pub const RETRY: Duration = Duration::from_secs(1);
/// Set (to `1`) in the environment of a supervise that svscan starts in place of an earlier
/// one: it keeps the want its predecessor recorded in `supervise/status` instead of applying
/// `./down`. supervise removes it from its own environment, so no child sees it.
pub const HANDOVER_ENV: &str = "VIGIL_HANDOVER";

/// Identity of a service directory: device and inode of what the entry names (links followed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub dev: u64,
    pub ino: u64,
}

/// One entry of the scan directory that qualifies as a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub name: OsString,
    pub key: Key,
    /// `log/run` exists: the logger can start.
    pub has_log: bool,
    /// `log` exists but `log/run` does not (yet): the driver watches `log` for `run`.
    pub log_pending: bool,
}

/// Which of a service's two supervise processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Side {
    Main,
    Log,
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Start the supervise of `side`, unless one already runs there (then report
    /// [`Scan::found_foreign`]). The driver creates the service's pipe first if it has a log.
    /// `handover`: a supervise ran there before (ours or a foreign one) and this one replaces
    /// it, so it must keep the want its predecessor recorded ([`HANDOVER_ENV`]).
    Start {
        key: Key,
        side: Side,
        handover: bool,
    },
    /// Write `bytes` to that side's `supervise/control`.
    Control {
        key: Key,
        side: Side,
        bytes: &'static [u8],
    },
    /// The service side is gone: close our write end of the pipe so the logger sees EOF.
    CloseWrite { key: Key },
    /// Forget the service and release its pipe and watches.
    Forget { key: Key },
    /// Scan the directory again.
    Rescan,
    /// Every service is stopped after a shutdown request: exit 0.
    Exit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No supervise; may start at `start_at`.
    Idle,
    /// Our child.
    Running { pid: u32 },
    /// A supervise we did not start holds the directory (an earlier svscan's); the driver
    /// reports when it is gone.
    Foreign,
}

#[derive(Debug, Clone)]
struct Slot {
    state: State,
    start_at: Duration,
    /// Stop already requested (`dx` or `x`) since it last started.
    told: bool,
    /// When to escalate with `+k` (group kill).
    kill_at: Option<Duration>,
    /// A supervise ran here before (ours or foreign): the next one is a handover.
    ran: bool,
    /// The stop was escalated to a kill.
    killed: bool,
}

impl Slot {
    fn new(now: Duration) -> Slot {
        Slot {
            state: State::Idle,
            start_at: now,
            told: false,
            kill_at: None,
            ran: false,
            killed: false,
        }
    }

    fn gone(&self) -> bool {
        self.state == State::Idle
    }
}

#[derive(Debug, Clone)]
struct Service {
    name: OsString,
    present: bool,
    main: Slot,
    log: Option<Slot>,
    write_closed: bool,
}

/// svscan's whole state.
#[derive(Debug)]
pub struct Scan {
    services: BTreeMap<Key, Service>,
    actions: Vec<Action>,
    shutdown: bool,
    kill_timeout: Duration,
    /// Rescan every [`FALLBACK_RESCAN`] (no inotify).
    fallback: bool,
    rescan_at: Option<Duration>,
    exited: bool,
}

/// What a reaped pid was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reaped {
    /// One of our supervise processes; `unexpected` when nobody told it to stop.
    Supervise {
        key: Key,
        side: Side,
        unexpected: bool,
    },
    /// Anything else: a `./run` left behind by a killed supervise (adopted by its successor,
    /// but our child once reparented), or any other orphan of the tree (an orphan of the tree reparented to us).
    Stranger,
}

impl Scan {
    pub fn new(kill_timeout: Duration) -> Scan {
        Scan {
            services: BTreeMap::new(),
            actions: Vec::new(),
            shutdown: false,
            kill_timeout,
            fallback: false,
            rescan_at: None,
            exited: false,
        }
    }

    /// inotify is not available: rescan periodically from now on.
    pub fn use_fallback(&mut self, now: Duration) {
        self.fallback = true;
        self.rescan_at = Some(now + FALLBACK_RESCAN);
    }

    /// The directory could not be read: try again shortly.
    pub fn scan_failed(&mut self, now: Duration) {
        self.rescan_at = Some(now + RETRY);
    }

    /// A complete listing of the scan directory (only qualifying entries).
    pub fn scanned(&mut self, seen: Vec<Seen>, now: Duration) {
        self.rescan_at = self.fallback.then_some(now + FALLBACK_RESCAN);
        if self.shutdown {
            return;
        }
        for svc in self.services.values_mut() {
            svc.present = false;
        }
        for s in seen {
            match self.services.get_mut(&s.key) {
                Some(svc) => {
                    svc.present = true;
                    svc.name = s.name;
                    if s.has_log && svc.log.is_none() {
                        svc.log = Some(Slot::new(now));
                        // The running supervise's stdout is not the new pipe: it exits (`x`)
                        // at the service's next stop, or at once if the service is down, and
                        // its replacement (a handover: the want is kept) runs the service
                        // with the pipe as stdout. A start still queued gets the pipe anyway.
                        let live = matches!(svc.main.state, State::Running { pid } if pid != 0)
                            || svc.main.state == State::Foreign;
                        if live && svc.present && !self.shutdown {
                            self.actions.push(Action::Control {
                                key: s.key,
                                side: Side::Main,
                                bytes: b"x",
                            });
                        }
                    }
                }
                None => {
                    self.services.insert(
                        s.key,
                        Service {
                            name: s.name,
                            present: true,
                            main: Slot::new(now),
                            log: s.has_log.then(|| Slot::new(now)),
                            write_closed: false,
                        },
                    );
                }
            }
        }
        self.reconcile(now);
    }

    /// SIGTERM/SIGINT: bring everything down, then exit.
    pub fn shut_down(&mut self, now: Duration) {
        if !self.shutdown {
            self.shutdown = true;
            self.rescan_at = None;
        }
        self.reconcile(now);
    }

    pub fn shutting_down(&self) -> bool {
        self.shutdown
    }

    /// The supervise of `side` was started as `pid`.
    pub fn started(&mut self, key: Key, side: Side, pid: u32, now: Duration) {
        if let Some(slot) = self.slot_mut(key, side) {
            slot.state = State::Running { pid };
            slot.start_at = now + RESTART_PACE;
            slot.told = false;
            slot.kill_at = None;
            slot.killed = false;
            slot.ran = true;
        }
        self.reconcile(now);
    }

    /// Starting failed (fork, pipe, out of descriptors): retry after the pace.
    pub fn start_failed(&mut self, key: Key, side: Side, now: Duration) {
        if let Some(slot) = self.slot_mut(key, side) {
            slot.state = State::Idle;
            slot.start_at = now + RESTART_PACE;
        }
        self.reconcile(now);
    }

    /// A supervise we did not start already runs there (left by an earlier svscan); the driver
    /// watches it. Should it die, its replacement is paced as if we had started it now.
    pub fn found_foreign(&mut self, key: Key, side: Side, now: Duration) {
        if let Some(slot) = self.slot_mut(key, side) {
            slot.state = State::Foreign;
            slot.told = false;
            slot.killed = false;
            slot.start_at = now + RESTART_PACE;
            slot.ran = true;
        }
        self.reconcile(now);
    }

    /// The foreign supervise of `side` has gone.
    pub fn foreign_gone(&mut self, key: Key, side: Side, now: Duration) {
        if let Some(slot) = self.slot_mut(key, side)
            && slot.state == State::Foreign
        {
            slot.state = State::Idle;
            slot.start_at = slot.start_at.max(now);
        }
        self.reconcile(now);
    }

    /// What `pid` is, without changing anything.
    pub fn identify(&self, pid: u32) -> Reaped {
        for (key, svc) in &self.services {
            for (side, slot) in [(Side::Main, Some(&svc.main)), (Side::Log, svc.log.as_ref())] {
                let Some(slot) = slot else { continue };
                match slot.state {
                    State::Running { pid: p } if p == pid => {
                        return Reaped::Supervise {
                            key: *key,
                            side,
                            unexpected: !slot.told,
                        };
                    }
                    _ => {}
                }
            }
        }
        Reaped::Stranger
    }

    /// A process was reaped. A supervise that died unexpectedly is restarted at the pace, even
    /// if its `./run` still runs: the new supervise adopts that run (never starts a second
    /// one), so svscan neither stops it nor waits for it.
    pub fn reaped(&mut self, pid: u32, now: Duration) -> Reaped {
        let result = self.identify(pid);
        if let Reaped::Supervise { key, side, .. } = result
            && let Some(slot) = self.slot_mut(key, side)
        {
            slot.state = State::Idle;
            slot.kill_at = None;
        }
        self.reconcile(now);
        result
    }

    /// Deadlines that have come.
    pub fn timer(&mut self, now: Duration) {
        if self.rescan_at.is_some_and(|t| t <= now) {
            self.rescan_at = None;
            self.actions.push(Action::Rescan);
        }
        self.reconcile(now);
    }

    /// When the driver must call [`Scan::timer`]; `None` when nothing is pending.
    pub fn next_deadline(&self) -> Option<Duration> {
        let mut next = self.rescan_at;
        let mut consider = |t: Duration| next = Some(next.map_or(t, |n: Duration| n.min(t)));
        for svc in self.services.values() {
            let main_wanted = svc.present && !self.shutdown;
            for (slot, wanted) in [
                (Some(&svc.main), main_wanted),
                (svc.log.as_ref(), main_wanted || !svc.main.gone()),
            ] {
                let Some(slot) = slot else { continue };
                if wanted && slot.state == State::Idle {
                    consider(slot.start_at);
                }
                if let Some(t) = slot.kill_at {
                    consider(t);
                }
            }
        }
        next
    }

    /// Next action for the driver.
    pub fn next_action(&mut self) -> Option<Action> {
        if self.actions.is_empty() {
            None
        } else {
            Some(self.actions.remove(0))
        }
    }

    /// The service's current entry name in the scan directory.
    pub fn name(&self, key: Key) -> Option<&OsString> {
        self.services.get(&key).map(|s| &s.name)
    }

    /// Whether the service has a log side (and so a pipe).
    pub fn has_log(&self, key: Key) -> bool {
        self.services.get(&key).is_some_and(|s| s.log.is_some())
    }

    /// Pid of the supervise we started for `side`, if it runs.
    pub fn pid(&self, key: Key, side: Side) -> Option<u32> {
        let svc = self.services.get(&key)?;
        let slot = match side {
            Side::Main => Some(&svc.main),
            Side::Log => svc.log.as_ref(),
        }?;
        match slot.state {
            State::Running { pid } if pid != 0 => Some(pid),
            _ => None,
        }
    }

    /// Number of services known (present or still stopping).
    pub fn len(&self) -> usize {
        self.services.len()
    }

    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }

    fn slot_mut(&mut self, key: Key, side: Side) -> Option<&mut Slot> {
        let svc = self.services.get_mut(&key)?;
        match side {
            Side::Main => Some(&mut svc.main),
            Side::Log => svc.log.as_mut(),
        }
    }

    /// Compares what is wanted with what runs and queues the difference.
    fn reconcile(&mut self, now: Duration) {
        let shutdown = self.shutdown;
        let timeout = self.kill_timeout;
        let mut forget = Vec::new();
        for (&key, svc) in &mut self.services {
            let main_wanted = svc.present && !shutdown;
            step(
                &mut self.actions,
                key,
                Side::Main,
                &mut svc.main,
                main_wanted,
                b"dx",
                shutdown.then_some(timeout),
                now,
            );
            let main_gone = !main_wanted && svc.main.gone();
            if main_gone && svc.log.is_some() && !svc.write_closed {
                svc.write_closed = true;
                self.actions.push(Action::CloseWrite { key });
            }
            if let Some(log) = svc.log.as_mut() {
                // The logger exits by itself at end-of-file; `x` makes its supervise follow.
                // If it does not, it is stopped after the timeout.
                step(
                    &mut self.actions,
                    key,
                    Side::Log,
                    log,
                    !main_gone,
                    b"x",
                    Some(timeout),
                    now,
                );
            }
            if main_gone && svc.log.as_ref().is_none_or(Slot::gone) {
                forget.push(key);
            }
        }
        for key in forget {
            self.services.remove(&key);
            self.actions.push(Action::Forget { key });
        }
        if shutdown && self.services.is_empty() && !self.exited {
            self.exited = true;
            self.actions.push(Action::Exit);
        }
    }
}

/// One side's reconciliation. `stop` is what to write when it must go; after `escalate` the
/// stop is forced (`dx` then `+k`, a group kill of the service).
#[allow(clippy::too_many_arguments)]
fn step(
    actions: &mut Vec<Action>,
    key: Key,
    side: Side,
    slot: &mut Slot,
    wanted: bool,
    stop: &'static [u8],
    escalate: Option<Duration>,
    now: Duration,
) {
    if wanted {
        if slot.state == State::Idle && slot.start_at <= now {
            // Marked running-to-be by the driver's answer; until then do not ask twice.
            slot.state = State::Running { pid: 0 };
            actions.push(Action::Start {
                key,
                side,
                handover: slot.ran,
            });
        }
        return;
    }
    let live =
        matches!(slot.state, State::Running { pid } if pid != 0) || slot.state == State::Foreign;
    if !live {
        return;
    }
    if !slot.told {
        slot.told = true;
        slot.kill_at = escalate.map(|t| now + t);
        actions.push(Action::Control {
            key,
            side,
            bytes: stop,
        });
        return;
    }
    // Told already without a deadline (a removed service still stopping) and now a shutdown:
    // the deadline starts now, or svscan would wait for it for ever.
    if slot.kill_at.is_none()
        && !slot.killed
        && let Some(t) = escalate
    {
        slot.kill_at = Some(now + t);
    }
    if slot.kill_at.is_some_and(|t| t <= now) {
        slot.kill_at = None;
        slot.killed = true;
        // Only the kill: the down signal was sent with the stop, once is right.
        actions.push(Action::Control {
            key,
            side,
            bytes: b"+k",
        });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn key(n: u64) -> Key {
        Key { dev: 1, ino: n }
    }

    fn seen(n: u64, log: bool) -> Seen {
        Seen {
            name: OsString::from(format!("svc{n}")),
            key: key(n),
            has_log: log,
            log_pending: false,
        }
    }

    fn start(n: u64, side: Side, handover: bool) -> Action {
        Action::Start {
            key: key(n),
            side,
            handover,
        }
    }

    fn drain(s: &mut Scan) -> Vec<Action> {
        std::iter::from_fn(|| s.next_action()).collect()
    }

    /// Starts everything asked for, giving pids from `next_pid`.
    fn start_all(s: &mut Scan, acts: &[Action], next_pid: &mut u32, now: Duration) {
        for a in acts {
            if let Action::Start { key, side, .. } = *a {
                *next_pid += 1;
                s.started(key, side, *next_pid, now);
            }
        }
    }

    #[test]
    fn starts_each_side_once_and_stays_idle() {
        let mut s = Scan::new(DEFAULT_KILL_TIMEOUT);
        s.scanned(vec![seen(1, true), seen(2, false)], Duration::ZERO);
        let acts = drain(&mut s);
        assert_eq!(
            acts,
            vec![
                start(1, Side::Main, false),
                start(1, Side::Log, false),
                start(2, Side::Main, false),
            ]
        );
        let mut pid = 100;
        start_all(&mut s, &acts, &mut pid, Duration::ZERO);
        assert!(drain(&mut s).is_empty());
        assert_eq!(s.next_deadline(), None, "idle means no wakeup");
        // A rescan of the same listing changes nothing.
        s.scanned(vec![seen(1, true), seen(2, false)], S);
        assert!(drain(&mut s).is_empty());
    }

    #[test]
    fn dead_supervise_restarts_paced() {
        let mut s = Scan::new(DEFAULT_KILL_TIMEOUT);
        s.scanned(vec![seen(1, false)], Duration::ZERO);
        let acts = drain(&mut s);
        s.started(key(1), Side::Main, 10, Duration::ZERO);
        assert_eq!(acts.len(), 1);
        // Dies 100 ms after its start: not restarted before 1 s after that start.
        let t = Duration::from_millis(100);
        assert_eq!(
            s.reaped(10, t),
            Reaped::Supervise {
                key: key(1),
                side: Side::Main,
                unexpected: true
            }
        );
        assert!(drain(&mut s).is_empty());
        assert_eq!(s.next_deadline(), Some(S));
        s.timer(Duration::from_millis(999));
        assert!(drain(&mut s).is_empty());
        s.timer(S);
        assert_eq!(drain(&mut s), vec![start(1, Side::Main, true)]);
        // A failed start is retried after the pace too.
        s.start_failed(key(1), Side::Main, S);
        assert_eq!(s.next_deadline(), Some(2 * S));
        s.timer(2 * S);
        assert_eq!(drain(&mut s).len(), 1);
        // Long-lived supervise dying restarts at once.
        s.started(key(1), Side::Main, 11, 2 * S);
        s.reaped(11, 100 * S);
        assert_eq!(drain(&mut s).len(), 1);
    }

    #[test]
    fn removal_stops_service_then_drains_logger() {
        let mut s = Scan::new(DEFAULT_KILL_TIMEOUT);
        s.scanned(vec![seen(1, true)], Duration::ZERO);
        let acts = drain(&mut s);
        let mut pid = 0;
        start_all(&mut s, &acts, &mut pid, Duration::ZERO); // main 1, log 2
        s.scanned(vec![], S);
        assert_eq!(
            drain(&mut s),
            vec![Action::Control {
                key: key(1),
                side: Side::Main,
                bytes: b"dx"
            }]
        );
        // No kill escalation on removal: svc -dx semantics.
        assert_eq!(s.next_deadline(), None);
        // The logger is left alone until the main supervise is gone.
        assert_eq!(
            s.reaped(1, 2 * S),
            Reaped::Supervise {
                key: key(1),
                side: Side::Main,
                unexpected: false
            }
        );
        assert_eq!(
            drain(&mut s),
            vec![
                Action::CloseWrite { key: key(1) },
                Action::Control {
                    key: key(1),
                    side: Side::Log,
                    bytes: b"x"
                }
            ]
        );
        // Logger that never sees EOF is forced after the timeout.
        assert_eq!(s.next_deadline(), Some(2 * S + DEFAULT_KILL_TIMEOUT));
        s.reaped(2, 3 * S);
        assert_eq!(drain(&mut s), vec![Action::Forget { key: key(1) }]);
        assert!(s.is_empty());
    }

    #[test]
    fn renamed_service_keeps_identity() {
        let mut s = Scan::new(DEFAULT_KILL_TIMEOUT);
        s.scanned(vec![seen(1, false)], Duration::ZERO);
        let acts = drain(&mut s);
        start_all(&mut s, &acts, &mut 0, Duration::ZERO);
        let mut renamed = seen(1, false);
        renamed.name = OsString::from("other");
        s.scanned(vec![renamed], S);
        assert!(drain(&mut s).is_empty());
        assert_eq!(s.name(key(1)).unwrap(), "other");
    }

    #[test]
    fn log_added_later_starts_logger_and_reattaches() {
        let mut s = Scan::new(DEFAULT_KILL_TIMEOUT);
        s.scanned(vec![seen(1, false)], Duration::ZERO);
        let acts = drain(&mut s);
        start_all(&mut s, &acts, &mut 0, Duration::ZERO);
        s.scanned(vec![seen(1, true)], S);
        // Whatever the service's state: its supervise is handed over, not asked about it.
        assert_eq!(
            drain(&mut s),
            vec![
                Action::Control {
                    key: key(1),
                    side: Side::Main,
                    bytes: b"x"
                },
                start(1, Side::Log, false)
            ]
        );
        assert!(s.has_log(key(1)));
        // It exits (not told: the scan did not ask it to stop for good); its replacement is a
        // handover and keeps the want its predecessor recorded.
        s.started(key(1), Side::Log, 2, S);
        s.reaped(1, 2 * S);
        assert_eq!(drain(&mut s), vec![start(1, Side::Main, true)]);
        // A removed service's supervise after that is still told to go down for good.
        s.started(key(1), Side::Main, 3, 2 * S);
        s.scanned(vec![], 3 * S);
        assert_eq!(
            drain(&mut s),
            vec![Action::Control {
                key: key(1),
                side: Side::Main,
                bytes: b"dx"
            }]
        );
    }

    #[test]
    fn log_added_while_start_is_queued_needs_no_handover() {
        let mut s = Scan::new(DEFAULT_KILL_TIMEOUT);
        s.scanned(vec![seen(1, false)], Duration::ZERO);
        let first = drain(&mut s);
        assert_eq!(first, vec![start(1, Side::Main, false)]);
        // The driver has not answered the start yet when the log shows up.
        s.scanned(vec![seen(1, true)], Duration::ZERO);
        assert_eq!(drain(&mut s), vec![start(1, Side::Log, false)]);
    }

    #[test]
    fn shutdown_sequence() {
        let t = Duration::from_secs(3);
        let mut s = Scan::new(t);
        s.scanned(vec![seen(1, true), seen(2, false)], Duration::ZERO);
        let acts = drain(&mut s);
        let mut pid = 0;
        start_all(&mut s, &acts, &mut pid, Duration::ZERO); // 1 main1, 2 log1, 3 main2
        s.shut_down(S);
        assert_eq!(
            drain(&mut s),
            vec![
                Action::Control {
                    key: key(1),
                    side: Side::Main,
                    bytes: b"dx"
                },
                Action::Control {
                    key: key(2),
                    side: Side::Main,
                    bytes: b"dx"
                },
            ]
        );
        // Rescans during shutdown start nothing.
        s.scanned(vec![seen(1, true), seen(2, false), seen(3, false)], S);
        assert!(drain(&mut s).is_empty());
        s.reaped(3, 2 * S);
        assert_eq!(drain(&mut s), vec![Action::Forget { key: key(2) }]);
        // Service 1 ignores its down signal: killed after the timeout.
        assert_eq!(s.next_deadline(), Some(S + t));
        s.timer(S + t);
        assert_eq!(
            drain(&mut s),
            vec![Action::Control {
                key: key(1),
                side: Side::Main,
                bytes: b"+k"
            }]
        );
        s.reaped(1, S + t);
        assert_eq!(
            drain(&mut s),
            vec![
                Action::CloseWrite { key: key(1) },
                Action::Control {
                    key: key(1),
                    side: Side::Log,
                    bytes: b"x"
                }
            ]
        );
        s.reaped(2, S + t);
        assert_eq!(
            drain(&mut s),
            vec![Action::Forget { key: key(1) }, Action::Exit]
        );
    }

    #[test]
    fn removed_service_still_stopping_is_killed_at_shutdown() {
        let t = Duration::from_secs(3);
        let mut s = Scan::new(t);
        s.scanned(vec![seen(1, false)], Duration::ZERO);
        let acts = drain(&mut s);
        start_all(&mut s, &acts, &mut 0, Duration::ZERO);
        s.scanned(vec![], S);
        assert_eq!(drain(&mut s).len(), 1, "dx once");
        assert_eq!(s.next_deadline(), None, "removal alone never kills");
        s.shut_down(2 * S);
        assert!(
            drain(&mut s).is_empty(),
            "no second dx: one down signal only"
        );
        assert_eq!(s.next_deadline(), Some(2 * S + t));
        s.timer(2 * S + t);
        assert_eq!(
            drain(&mut s),
            vec![Action::Control {
                key: key(1),
                side: Side::Main,
                bytes: b"+k"
            }]
        );
        assert_eq!(s.next_deadline(), None, "killed once");
        s.reaped(1, 3 * S + t);
        assert_eq!(
            drain(&mut s),
            vec![Action::Forget { key: key(1) }, Action::Exit]
        );
    }

    #[test]
    fn shutdown_with_nothing_exits_at_once() {
        let mut s = Scan::new(DEFAULT_KILL_TIMEOUT);
        s.scanned(vec![], Duration::ZERO);
        s.shut_down(S);
        assert_eq!(drain(&mut s), vec![Action::Exit]);
    }

    #[test]
    fn foreign_supervise_is_watched_not_duplicated() {
        let mut s = Scan::new(DEFAULT_KILL_TIMEOUT);
        s.scanned(vec![seen(1, false)], Duration::ZERO);
        drain(&mut s);
        s.found_foreign(key(1), Side::Main, Duration::ZERO);
        assert!(drain(&mut s).is_empty());
        assert_eq!(s.next_deadline(), None);
        s.foreign_gone(key(1), Side::Main, 5 * S);
        assert_eq!(drain(&mut s), vec![start(1, Side::Main, true)]);
        // A foreign supervise of a removed service is told to stop too.
        s.found_foreign(key(1), Side::Main, 5 * S);
        s.scanned(vec![], 6 * S);
        assert_eq!(
            drain(&mut s),
            vec![Action::Control {
                key: key(1),
                side: Side::Main,
                bytes: b"dx"
            }]
        );
    }

    #[test]
    fn foreign_supervise_dying_at_once_is_restarted_paced() {
        let mut s = Scan::new(DEFAULT_KILL_TIMEOUT);
        s.scanned(vec![seen(1, true)], Duration::ZERO);
        drain(&mut s);
        s.found_foreign(key(1), Side::Main, Duration::ZERO);
        s.found_foreign(key(1), Side::Log, Duration::ZERO);
        s.foreign_gone(key(1), Side::Main, S / 10);
        assert!(drain(&mut s).is_empty(), "not before the pace");
        assert_eq!(s.next_deadline(), Some(S));
        s.timer(S);
        assert_eq!(drain(&mut s), vec![start(1, Side::Main, true)]);
    }

    #[test]
    fn killed_supervise_is_replaced_at_the_pace_its_run_left_alone() {
        let mut s = Scan::new(Duration::from_secs(2));
        s.scanned(vec![seen(1, false)], Duration::ZERO);
        drain(&mut s);
        s.started(key(1), Side::Main, 10, Duration::ZERO);
        s.reaped(10, 5 * S);
        assert_eq!(
            drain(&mut s),
            vec![start(1, Side::Main, true)],
            "restarted at once, nothing killed: the new supervise adopts the run"
        );
        s.started(key(1), Side::Main, 11, 5 * S);
        // The old run, reparented to svscan, exits later: just reaped.
        assert_eq!(s.reaped(42, 9 * S), Reaped::Stranger);
        assert!(drain(&mut s).is_empty());
    }

    #[test]
    fn fallback_rescans_periodically() {
        let mut s = Scan::new(DEFAULT_KILL_TIMEOUT);
        s.use_fallback(Duration::ZERO);
        assert_eq!(s.next_deadline(), Some(FALLBACK_RESCAN));
        s.timer(FALLBACK_RESCAN);
        assert_eq!(drain(&mut s), vec![Action::Rescan]);
        s.scanned(vec![], FALLBACK_RESCAN);
        assert_eq!(s.next_deadline(), Some(2 * FALLBACK_RESCAN));
        s.scan_failed(FALLBACK_RESCAN);
        assert_eq!(s.next_deadline(), Some(FALLBACK_RESCAN + RETRY));
    }

    #[test]
    fn stranger_pids_change_nothing() {
        let mut s = Scan::new(DEFAULT_KILL_TIMEOUT);
        s.scanned(vec![seen(1, false)], Duration::ZERO);
        drain(&mut s);
        s.started(key(1), Side::Main, 10, Duration::ZERO);
        assert_eq!(s.reaped(999, S), Reaped::Stranger);
        assert!(drain(&mut s).is_empty());
    }
}
