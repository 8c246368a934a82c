//! svscan's decisions: when to take the scan directory's lock, how long to let a predecessor's
//! orphans settle, which supervise processes to start, which to tell to stop, when a dead one
//! may be restarted, when a log pipe is made or taken over, and the order of a shutdown. No
//! syscalls and no clock: the driver pushes in what it saw through [`Scan::handle`] (and a
//! directory listing through [`Scan::begin_scan`], [`Scan::seen`], [`Scan::end_scan`]) with the
//! time, and pulls out [`Action`]s, each a complete instruction: a question the driver cannot
//! answer without a syscall is an action of its own whose answer is an [`Input`] (`Probe` →
//! `Probed`, `OpenPipe` → `PipeOpened`, `Start` → `Started`). [`Scan::next_deadline`] says when
//! to wake, `None` when nothing is pending, so an idle svscan never wakes up.
//!
//! A service is keyed by the (device, inode) of its directory, as daemontools keys it, so a
//! rename keeps its supervise and its log pipe. Each service has a main side (`supervise NAME`)
//! and, once `NAME/log` exists, a log side (`supervise log` in `NAME`), joined by a pipe the
//! driver owns for the service's whole life: asked for once ([`Action::OpenPipe`]) before the
//! first start that needs it, released only by [`Action::CloseWrite`] or [`Action::Forget`].
//!
//! One side's life: idle → (pipe) → probe its lock → start → running (or foreign: a supervise
//! an earlier svscan left, watched by the driver) → gone → idle again, paced.
//!
//! Stopping order, for a removed service and at shutdown alike: the main supervise is told
//! `dx`; only once it has exited is the driver told to close its own write end of the pipe and
//! the log supervise told `x`, so the logger reads the pipe to end-of-file and exits by itself.
//!
//! Cost at scale: an input about one service (a probe, a start, a reap, a foreign supervise
//! gone) reconciles that service alone; only a scan, a shutdown and a timer walk them all.
//! Records are compact (one sorted vector, names in one shared buffer, the driver's own
//! per-service data inside the record: [`Scan::extra_mut`]), so thousands of services cost
//! tens of bytes each.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
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
/// How long the lock on the scan directory is tried again while only a dead predecessor's
/// forked children (between their fork and exec) hold it.
pub const DIR_LOCK_WAIT: Duration = Duration::from_secs(1);
/// How long the first scan waits for a predecessor's supervise processes, forked a moment
/// before its death, to take their locks (then the probes find them instead of competing).
pub const ORPHAN_WAIT: Duration = Duration::from_millis(500);
/// How often the two waits above look again: neither has an event to wait for (a lock taken
/// or dropped at an exec wakes nobody), only an orphan's exit (its pidfd) ends one early.
pub const SETTLE_RECHECK: Duration = Duration::from_millis(5);
/// Set (to `1`) in the environment of a supervise that svscan starts in place of an earlier
/// one: it keeps the want its predecessor recorded in `supervise/status` instead of applying
/// `./down`. supervise removes it from its own environment, so no child sees it.
pub const HANDOVER_ENV: &str = "VIGIL_HANDOVER";

/// Set by svscan in its own environment to its pid, so every supervise it starts knows it: a
/// supervise whose parent is still that svscan when it exits leaves its (empty) cgroup for
/// svscan to remove once it has reaped it, before it tells the machine (which may forget the
/// service, and the directory svscan holds for it, at once). One process removing them one
/// after the other is quick; a thousand supervise removing theirs at once at a shutdown queue
/// on the kernel's cgroup lock. supervise removes the variable from its environment.
pub const SCANNER_ENV: &str = "VIGIL_SVSCAN";

/// The most services new to a listing that [`Scan::listed_some`] lets gather before starting
/// them (it starts the first at once, then batches doubling up to this).
pub const LISTING_BATCH: usize = 64;

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

impl Seen {
    /// A directory of the scan directory, with what its `log` looks like: `log_dir` (there is a
    /// `log`) and `log_run` (an executable `log/run`).
    ///
    /// daemontools compat: daemontools starts the logger as soon as `log` exists, and its
    /// supervise then fails once a second until `log/run` appears; we wait for an executable
    /// `log/run` (the driver watches `log` for it), so `mkdir log`, then writing `log/run`, then
    /// `chmod +x` is quiet.
    pub fn new(name: OsString, key: Key, log_dir: bool, log_run: bool) -> Seen {
        Seen {
            name,
            key,
            has_log: log_dir && log_run,
            log_pending: log_dir && !log_run,
        }
    }
}

/// Whether an entry of the scan directory named `name` may be a service (if it is, or links to,
/// a directory): every name but those starting with `.`, which svscan skips as daemontools' does.
pub fn may_be_service(name: &[u8]) -> bool {
    name.first() != Some(&b'.')
}

/// Which of a service's two supervise processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Side {
    Main,
    Log,
}

/// The answer to [`Action::LockDir`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirLock {
    Taken,
    /// Another process holds it; `owner_gone`: every holder `/proc/locks` names is dead (the
    /// lock lives on in children it forked a moment before, until their exec).
    Busy {
        owner_gone: bool,
    },
    /// Any other failure.
    Failed,
}

/// The answer to [`Action::Probe`]: who holds that side's `supervise/lock`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// Nobody: start one.
    Free,
    /// A supervise we did not start, which the driver now watches (a pidfd, or a writer on its
    /// `ok` FIFO) and reports gone with [`Input::ForeignGone`].
    Held,
    /// Held by a process that cannot be found or watched yet (a supervise still setting up).
    Unknown,
}

/// Why a start (or the pipe it needed) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Out of descriptors: retried as soon as some are freed, else at the pace.
    Starved,
    /// Anything else (fork, exec): retried at the pace.
    Other,
}

/// What the driver tells the machine: an answer to an action, or something it saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    DirLock(DirLock),
    /// The answer to [`Action::CheckOrphans`]: how many unlocked supervise processes of a
    /// predecessor are left (the driver watches their pidfds).
    Orphans {
        left: usize,
    },
    /// One of those orphans exited.
    OrphanExited,
    Probed {
        key: Key,
        side: Side,
        probe: Probe,
    },
    /// The service's log pipe is held (made, or taken over from supervise processes left
    /// running).
    PipeOpened {
        key: Key,
    },
    PipeFailed {
        key: Key,
        failure: Failure,
    },
    Started {
        key: Key,
        side: Side,
        pid: u32,
    },
    StartFailed {
        key: Key,
        side: Side,
        failure: Failure,
    },
    /// A child (or an orphan reparented to us) was reaped.
    Reaped {
        pid: u32,
    },
    /// The foreign supervise of `side` has gone.
    ForeignGone {
        key: Key,
        side: Side,
    },
    /// SIGTERM, SIGINT: bring everything down, then exit.
    Shutdown,
    /// SIGHUP, SIGALRM, or inotify saw the directory change: scan it again.
    Changed,
    /// inotify cannot be used (now or any more): rescan periodically from now on.
    Unwatched,
    /// The listing begun by [`Scan::begin_scan`] could not be finished: nothing of it counts,
    /// and it is tried again shortly.
    ScanFailed,
    /// The deadline given by [`Scan::next_deadline`] has come.
    Timer,
}

/// What the driver must do: each a complete instruction, performed without deciding anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Take the lock on the scan directory; answer [`Input::DirLock`].
    LockDir,
    /// The lock on the scan directory cannot be had: report why and exit 111.
    GiveUp,
    /// Look for supervise processes of a predecessor that hold no lock yet, and watch their
    /// pidfds; answer [`Input::Orphans`].
    CheckOrphans,
    /// The wait for orphans is over: stop watching their pidfds.
    Settled,
    /// List the scan directory: [`Scan::begin_scan`], [`Scan::seen`], [`Scan::end_scan`] (or
    /// [`Input::ScanFailed`]).
    Rescan,
    /// Hold a log pipe for the service; answer [`Input::PipeOpened`] or [`Input::PipeFailed`].
    /// `recover`: first take over the pipe of the supervise processes an earlier svscan left
    /// running ([`crate::logpipe::plan`]), and make a new one only if none can be.
    OpenPipe { key: Key, recover: bool },
    /// Find out whether a supervise already holds that side's lock; answer [`Input::Probed`].
    Probe { key: Key, side: Side },
    /// Start the supervise of `side` (its lock was seen free); with the service's pipe as the
    /// main side's stdout or the log side's stdin when it has a log. Answer [`Input::Started`]
    /// or [`Input::StartFailed`]. `handover`: a supervise ran there before (ours or a foreign
    /// one) and this one replaces it, so it must keep the want its predecessor recorded
    /// ([`HANDOVER_ENV`]).
    Start {
        key: Key,
        side: Side,
        handover: bool,
    },
    /// Write `bytes` to that side's `supervise/control`; if that fails, send the signal
    /// [`crate::control::command_signal`] gives to the supervise ([`Scan::pid`], or the
    /// foreign one the driver watches).
    Control {
        key: Key,
        side: Side,
        bytes: &'static [u8],
    },
    /// The service side is gone: close our write end of the pipe so the logger sees EOF.
    CloseWrite { key: Key },
    /// Forget the service and release its pipe and watches (its extra data is dropped already).
    Forget { key: Key },
    /// The first scan has started (or asked about) every service: tell systemd `READY=1`.
    Ready,
    /// Every service is stopped after a shutdown request: exit 0.
    Exit,
}

/// A time as nanoseconds since the driver's origin; `NEVER` for no deadline.
type Tick = u64;
const NEVER: Tick = u64::MAX;

fn tick(d: Duration) -> Tick {
    u64::try_from(d.as_nanos()).unwrap_or(NEVER - 1)
}

/// svscan's own phase, before and after its first scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Taking the lock on the scan directory: tried again at `retry` until `until`.
    Locking { until: Tick, retry: Tick },
    /// Letting a predecessor's orphans take their locks: looked at again at `retry`, given up
    /// on at `until`.
    Settling { until: Tick, retry: Tick },
    /// Scanning and supervising.
    Running,
    /// The lock could not be had.
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No supervise; may start at `at`.
    Idle,
    /// Its lock is to be probed (`ASKED`: not yet handed out), or the answer is awaited.
    Probing,
    /// Its lock was seen free: a start is to be handed out (`ASKED`) or its answer awaited.
    Starting,
    /// Our child, `pid`.
    Running,
    /// A supervise we did not start holds the directory (an earlier svscan's); the driver
    /// reports when it is gone.
    Foreign,
}

/// One side of a service: 16 bytes.
#[derive(Debug, Clone)]
struct Slot {
    /// While `Idle`: when it may start. While stopping (`TOLD`): when to escalate with `+k`
    /// (group kill), `NEVER` for not at all. Otherwise: when a successor may start, should
    /// this one die (the restart pace). A supervise told to stop did not crash: once it is
    /// gone, a successor (its service wanted again) may start at once.
    at: Tick,
    /// Pid of our supervise while `Running`, else 0.
    pid: u32,
    state: State,
    flags: u8,
}

/// Stop already requested (`dx` or `x`) since it last started.
const TOLD: u8 = 1;
/// A supervise ran here before (ours or foreign): the next one is a handover.
const RAN: u8 = 2;
/// The stop was escalated to a kill.
const KILLED: u8 = 4;
/// The last start failed for want of descriptors (retried at once when some are freed).
const STARVED: u8 = 8;
/// A probe or start is asked for and not yet handed to the driver.
const ASKED: u8 = 16;

impl Slot {
    /// A probe or start marked but not handed out yet is taken back (the slot rests), and
    /// `asked` counts one mark fewer. Nothing when none is marked.
    fn withdraw(&mut self, asked: &mut usize) {
        if self.has(ASKED) {
            self.set(ASKED, false);
            *asked = asked.saturating_sub(1);
            self.state = State::Idle;
        }
    }

    fn new(now: Tick) -> Slot {
        Slot {
            at: now,
            pid: 0,
            state: State::Idle,
            flags: 0,
        }
    }

    fn gone(&self) -> bool {
        self.state == State::Idle
    }

    fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }

    fn set(&mut self, flag: u8, on: bool) {
        if on {
            self.flags |= flag;
        } else {
            self.flags &= !flag;
        }
    }

    /// Its supervise is gone: restartable, at its pace unless it was told to stop.
    fn stopped(&mut self, now: Tick) {
        if self.has(TOLD) {
            self.at = now;
        }
        self.state = State::Idle;
        self.pid = 0;
        self.flags &= !(TOLD | KILLED);
    }

    /// Back to idle after a failed or refused start, to try again at the pace.
    fn retry_later(&mut self, now: Tick, starved: bool) {
        self.state = State::Idle;
        self.pid = 0;
        self.at = now.saturating_add(tick(RESTART_PACE));
        self.flags = (self.flags & RAN) | if starved { STARVED } else { 0 };
    }

    /// Idle, wanted, and its time has come.
    fn due(&self, now: Tick) -> bool {
        self.state == State::Idle && self.at <= now
    }

    /// The deadline this slot waits for, if any.
    fn deadline(&self, wanted: bool) -> Tick {
        if self.state == State::Idle {
            if wanted { self.at } else { NEVER }
        } else if self.has(TOLD) && self.live() {
            self.at
        } else {
            NEVER
        }
    }

    /// Our supervise (started and answered) or a foreign one runs there.
    fn live(&self) -> bool {
        matches!(self.state, State::Running | State::Foreign)
    }

    /// A supervise of ours runs there or is being started.
    fn ours(&self) -> bool {
        matches!(self.state, State::Running | State::Starting)
    }
}

/// One service: 52 bytes and the driver's `X`.
#[derive(Debug, Clone)]
struct Service<X> {
    /// The key, with the device as an index into [`Scan`]'s few devices.
    ino: u64,
    dev: u32,
    main: Slot,
    log: Option<Slot>,
    /// The name: `names[name_at..name_at + name_len]`.
    name_at: u32,
    name_len: u16,
    /// `PRESENT`, `LISTED`, `PIPE`, `PIPE_ASKED`, `PIPE_CHECKED`.
    marks: u8,
    extra: X,
}

/// In the last complete listing.
const PRESENT: u8 = 1;
/// Seen by the listing in progress.
const LISTED: u8 = 2;
/// The driver holds the service's log pipe.
const PIPE: u8 = 4;
/// [`Action::OpenPipe`] is out, its answer awaited.
const PIPE_ASKED: u8 = 8;
/// The pipe was looked for in surviving supervise processes (once, before any start).
const PIPE_CHECKED: u8 = 16;

impl<X> Service<X> {
    fn ikey(&self) -> (u32, u64) {
        (self.dev, self.ino)
    }

    fn present(&self) -> bool {
        self.marks & PRESENT != 0
    }

    fn name_range(&self) -> std::ops::Range<usize> {
        let at = self.name_at as usize;
        at..at + usize::from(self.name_len)
    }
}

/// svscan's whole state; `X` is what the driver keeps per service (descriptors, flags).
#[derive(Debug)]
pub struct Scan<X = ()> {
    /// Sorted by key, except during a scan, when new services are appended after
    /// `sorted_len` and sorted in at its end.
    services: Vec<Service<X>>,
    sorted_len: usize,
    /// The devices of the services' keys (rarely more than one).
    devs: Vec<u64>,
    /// Every service's name, back to back; `garbage` bytes of it belong to nobody.
    names: Vec<u8>,
    garbage: usize,
    actions: VecDeque<Action>,
    /// Slots marked `ASKED`, and where to look for the next.
    asked: usize,
    cursor: usize,
    phase: Phase,
    /// An [`Action::CheckOrphans`] or [`Action::LockDir`] is out.
    settle_asked: bool,
    /// An [`Action::Rescan`] is queued.
    rescan_queued: bool,
    /// A listing is under way ([`Scan::begin_scan`] to its end): a rescan asked for meanwhile
    /// is queued once it is over (`rescan_deferred`).
    listing: bool,
    rescan_deferred: bool,
    /// How many services new to the listing make [`Scan::listed_some`] start them.
    flush_at: usize,
    shutdown: bool,
    kill_timeout: Tick,
    /// Rescan every [`FALLBACK_RESCAN`] (no inotify).
    fallback: bool,
    rescan_at: Option<Duration>,
    /// A start failed for want of descriptors: failed starts are retried when some are freed.
    starved: bool,
    /// Descriptors were freed by the actions just queued (a pipe closed, a service forgotten,
    /// a foreign supervise's watch dropped).
    freed: bool,
    /// [`Action::Ready`]: 0 not yet due, 1 due after the first scan's starts, 2 sent.
    ready: u8,
    exited: bool,
    /// Services visited by reconciliation so far (a measure of work, for tests).
    visits: u64,
}

impl Scan<()> {
    pub fn new(kill_timeout: Duration) -> Scan<()> {
        Scan::with_extra(kill_timeout)
    }
}

impl<X: Default> Scan<X> {
    /// A scan whose services each carry an `X` for the driver ([`Scan::extra_mut`]), created
    /// with the service and dropped when it is forgotten. Its first action is
    /// [`Action::LockDir`].
    pub fn with_extra(kill_timeout: Duration) -> Scan<X> {
        Scan {
            services: Vec::new(),
            sorted_len: 0,
            devs: Vec::new(),
            names: Vec::new(),
            garbage: 0,
            actions: VecDeque::from([Action::LockDir]),
            asked: 0,
            cursor: 0,
            listing: false,
            rescan_deferred: false,
            flush_at: 1,
            phase: Phase::Locking {
                until: NEVER,
                retry: NEVER,
            },
            settle_asked: true,
            rescan_queued: false,
            shutdown: false,
            kill_timeout: tick(kill_timeout),
            fallback: false,
            rescan_at: None,
            starved: false,
            freed: false,
            ready: 0,
            exited: false,
            visits: 0,
        }
    }

    /// The one entry for everything the driver saw or was answered (the listing aside).
    pub fn handle(&mut self, input: Input, now: Duration) {
        let t = tick(now);
        match input {
            Input::DirLock(lock) => self.dir_locked(lock, t),
            Input::Orphans { left } => self.orphans(left, t),
            Input::OrphanExited => {
                if matches!(self.phase, Phase::Settling { .. }) && !self.settle_asked {
                    self.settle_asked = true;
                    self.actions.push_back(Action::CheckOrphans);
                }
            }
            Input::Probed { key, side, probe } => self.probed(key, side, probe, t),
            Input::PipeOpened { key } => {
                if let Some(svc) = self.service_mut(key) {
                    svc.marks = (svc.marks & !PIPE_ASKED) | PIPE;
                }
                self.reconcile_key(key, t);
            }
            Input::PipeFailed { key, failure } => {
                let starved = failure == Failure::Starved;
                self.starved |= starved;
                if let Some(svc) = self.service_mut(key) {
                    svc.marks &= !PIPE_ASKED;
                    for slot in std::iter::once(&mut svc.main).chain(svc.log.as_mut()) {
                        if slot.due(t) {
                            slot.retry_later(t, starved);
                        }
                    }
                }
                self.reconcile_key(key, t);
            }
            Input::Started { key, side, pid } => self.update(key, side, t, |slot| {
                if slot.state == State::Starting {
                    slot.state = State::Running;
                    slot.pid = pid;
                    slot.at = t.saturating_add(tick(RESTART_PACE));
                    slot.flags = RAN | (slot.flags & REATTACH);
                }
                0
            }),
            Input::StartFailed { key, side, failure } => {
                let starved = failure == Failure::Starved;
                self.starved |= starved;
                self.update(key, side, t, |slot| {
                    slot.retry_later(t, starved);
                    0
                });
            }
            Input::Reaped { pid } => {
                if let Reaped::Supervise { key, side, .. } = self.identify(pid) {
                    self.update(key, side, t, |slot| {
                        slot.stopped(t);
                        0
                    });
                }
            }
            Input::ForeignGone { key, side } => {
                if let Some(slot) = self.slot_mut(key, side)
                    && slot.state == State::Foreign
                {
                    let told = slot.has(TOLD);
                    slot.stopped(t);
                    if !told {
                        slot.at = slot.at.max(t);
                    }
                }
                // Its watch descriptor is closed.
                self.freed = true;
                self.reconcile_key(key, t);
            }
            Input::Shutdown => {
                if !self.shutdown {
                    self.shutdown = true;
                    self.rescan_at = None;
                }
                self.reconcile(t);
            }
            Input::Changed => self.ask_rescan(),
            Input::Unwatched => {
                self.fallback = true;
                self.rescan_at = Some(now + FALLBACK_RESCAN);
            }
            Input::ScanFailed => {
                self.abort_scan();
                self.rescan_at = Some(now + RETRY);
            }
            Input::Timer => self.timer(now),
        }
    }

    fn dir_locked(&mut self, lock: DirLock, now: Tick) {
        let Phase::Locking { until, .. } = self.phase else {
            return;
        };
        self.settle_asked = false;
        let until = if until == NEVER {
            now.saturating_add(tick(DIR_LOCK_WAIT))
        } else {
            until
        };
        match lock {
            DirLock::Taken => {
                self.phase = Phase::Settling {
                    until: now.saturating_add(tick(ORPHAN_WAIT)),
                    retry: NEVER,
                };
                self.settle_asked = true;
                self.actions.push_back(Action::CheckOrphans);
            }
            DirLock::Busy { owner_gone: true } if now < until => {
                self.phase = Phase::Locking {
                    until,
                    retry: now.saturating_add(tick(SETTLE_RECHECK)).min(until),
                };
            }
            DirLock::Busy { .. } | DirLock::Failed => {
                self.phase = Phase::Failed;
                self.actions.push_back(Action::GiveUp);
            }
        }
    }

    fn orphans(&mut self, left: usize, now: Tick) {
        let Phase::Settling { until, .. } = self.phase else {
            return;
        };
        self.settle_asked = false;
        if left == 0 || now >= until {
            self.begin_running();
        } else {
            self.phase = Phase::Settling {
                until,
                retry: now.saturating_add(tick(SETTLE_RECHECK)).min(until),
            };
        }
    }

    fn begin_running(&mut self) {
        self.phase = Phase::Running;
        self.actions.push_back(Action::Settled);
        self.ask_rescan();
    }

    fn ask_rescan(&mut self) {
        if self.listing {
            self.rescan_deferred = true;
            return;
        }
        if self.phase == Phase::Running && !self.shutdown && !self.rescan_queued {
            self.rescan_queued = true;
            self.actions.push_back(Action::Rescan);
        }
    }

    fn probed(&mut self, key: Key, side: Side, probe: Probe, now: Tick) {
        self.update(key, side, now, |slot| {
            if slot.state != State::Probing || slot.has(ASKED) {
                return 0;
            }
            match probe {
                Probe::Free => {
                    slot.state = State::Starting;
                    slot.set(ASKED, true);
                    return 1;
                }
                // Should it die, its replacement is paced as if we had started it now.
                Probe::Held => {
                    slot.state = State::Foreign;
                    slot.flags = RAN;
                    slot.at = now.saturating_add(tick(RESTART_PACE));
                }
                Probe::Unknown => slot.retry_later(now, false),
            }
            0
        });
    }

    /// Changes one side of a service (`f` says how many slots it marked `ASKED`) and
    /// reconciles that service: one lookup for both.
    fn update(&mut self, key: Key, side: Side, now: Tick, f: impl FnOnce(&mut Slot) -> usize) {
        if let Some(i) = self.index(key) {
            let slot = self.services.get_mut(i).and_then(|svc| match side {
                Side::Main => Some(&mut svc.main),
                Side::Log => svc.log.as_mut(),
            });
            if let Some(slot) = slot {
                self.asked += f(slot);
            }
            self.reconcile_at(i, now);
        }
        self.check_exit(now);
    }

    /// Descriptors were freed after starts failed for want of them: every such start is tried
    /// again now rather than at its pace.
    fn fds_freed(&mut self, now: Tick) {
        if !std::mem::take(&mut self.freed) || !std::mem::take(&mut self.starved) {
            return;
        }
        for svc in &mut self.services {
            for slot in std::iter::once(&mut svc.main).chain(svc.log.as_mut()) {
                if slot.state == State::Idle && slot.has(STARVED) {
                    slot.set(STARVED, false);
                    slot.at = slot.at.min(now);
                }
            }
        }
        self.reconcile(now);
    }

    /// A listing of the scan directory starts: entries follow through [`Scan::seen`], so no
    /// listing of thousands of entries need be held at once. `expected`: about how many
    /// entries it will have (the driver's guess), so that room for them is made once, to size,
    /// rather than by doubling, each larger copy leaving the last behind.
    pub fn begin_scan(&mut self, expected: usize, now: Duration) {
        self.rescan_queued = false;
        self.listing = true;
        self.flush_at = 1;
        if !self.shutdown {
            self.services
                .reserve_exact(expected.saturating_sub(self.services.len()));
        }
        self.rescan_at = self.fallback.then_some(now + FALLBACK_RESCAN);
        self.sorted_len = self.services.len();
    }

    /// A complete listing of the scan directory (only qualifying entries): [`Scan::begin_scan`],
    /// [`Scan::seen`] for each, [`Scan::end_scan`].
    pub fn scanned(&mut self, seen: Vec<Seen>, now: Duration) {
        self.begin_scan(seen.len(), now);
        for s in &seen {
            self.seen(s, now);
        }
        self.end_scan(now);
    }

    /// One qualifying entry of the listing begun by [`Scan::begin_scan`]; the driver's data for
    /// the service (`None` during a shutdown, when listings change nothing).
    pub fn seen(&mut self, s: &Seen, now: Duration) -> Option<&mut X> {
        if self.shutdown {
            return None;
        }
        let now = tick(now);
        let dev = self.dev_index_or_add(s.key.dev);
        let ikey = (dev, s.key.ino);
        let sorted = self.services.get(..self.sorted_len).unwrap_or_default();
        let Ok(i) = sorted.binary_search_by_key(&ikey, Service::ikey) else {
            let (name_at, name_len) = self.store_name(s.name.as_bytes());
            self.services.push(Service {
                ino: s.key.ino,
                dev,
                main: Slot::new(now),
                log: s.has_log.then(|| Slot::new(now)),
                name_at,
                name_len,
                marks: PRESENT | LISTED,
                extra: X::default(),
            });
            return self.services.last_mut().map(|svc| &mut svc.extra);
        };
        if self.name_of(i).is_none_or(|n| n != s.name.as_bytes()) {
            let (at, len) = self.store_name(s.name.as_bytes());
            if let Some(svc) = self.services.get_mut(i) {
                self.garbage += usize::from(svc.name_len);
                svc.name_at = at;
                svc.name_len = len;
            }
        }
        let svc = self.services.get_mut(i)?;
        svc.marks |= LISTED;
        if s.has_log && svc.log.is_none() {
            svc.log = Some(Slot::new(now));
            // A probe or start not handed out yet waits for the pipe, as a reconciliation
            // would decide; until the listing ends, starts of listed services are handed out.
            svc.main.withdraw(&mut self.asked);
            // The running supervise's stdout is not the new pipe: it exits (`x`) at the
            // service's next stop, or at once if the service is down, and its replacement (a
            // handover: the want is kept) runs the service with the pipe as stdout. A start
            // not yet handed out waits for the pipe; one handed out is answered running, and
            // is told then.
            if svc.main.live() {
                self.actions.push_back(Action::Control {
                    key: s.key,
                    side: Side::Main,
                    bytes: b"x",
                });
            } else if svc.main.state == State::Starting && !svc.main.has(ASKED) {
                svc.main.set(REATTACH, true);
            }
        }
        Some(&mut svc.extra)
    }

    /// Call after each [`Scan::seen`]: once enough services new to this listing are in (the
    /// first at once, then batches doubling up to [`LISTING_BATCH`]), they are sorted in and
    /// their probes and starts handed out, so the first services of a long listing start while
    /// the rest is read. What was not listed is still judged only at [`Scan::end_scan`]. True
    /// when actions wait: the driver performs them, answering as usual, before it lists on (a
    /// rescan asked for meanwhile waits for the end of this one).
    pub fn listed_some(&mut self, now: Duration) -> bool {
        let new = self.services.len().saturating_sub(self.sorted_len);
        if !self.listing || self.shutdown || self.phase != Phase::Running || new < self.flush_at {
            return false;
        }
        self.flush_at = (self.flush_at * 2).min(LISTING_BATCH);
        let before = (self.asked, self.actions.len());
        let keys: Vec<Key> = self
            .services
            .get(self.sorted_len..)
            .unwrap_or_default()
            .iter()
            .map(|svc| self.key_of(svc))
            .collect();
        self.sort_in();
        let t = tick(now);
        for key in keys {
            if let Some(i) = self.index(key) {
                self.reconcile_at(i, t);
            }
        }
        // Probes and starts wait as marks on their slots (`asked`), the rest in the queue.
        (self.asked, self.actions.len()) != before
    }

    /// The listing begun by [`Scan::begin_scan`] could not be finished: nothing of it counts
    /// (a log seen added stays added, and services [`Scan::listed_some`] started stay).
    fn abort_scan(&mut self) {
        self.rescan_queued = false;
        self.listing = false;
        // The retry after a failed listing stands for it.
        self.rescan_deferred = false;
        let tail: usize = self
            .services
            .iter()
            .skip(self.sorted_len)
            .map(|svc| usize::from(svc.name_len))
            .sum();
        self.garbage += tail;
        self.services.truncate(self.sorted_len);
        for svc in &mut self.services {
            svc.marks &= !LISTED;
        }
        self.compact();
    }

    /// The listing is complete: services not seen in it are stopped, new ones started.
    pub fn end_scan(&mut self, now: Duration) {
        self.listing = false;
        if !self.shutdown {
            self.sort_in();
        }
        self.sorted_len = self.services.len();
        if !self.shutdown {
            for svc in &mut self.services {
                let present = if svc.marks & LISTED != 0 { PRESENT } else { 0 };
                svc.marks = (svc.marks & !(LISTED | PRESENT)) | present;
            }
        }
        self.compact();
        if self.ready == 0 && self.phase == Phase::Running {
            self.ready = 1;
        }
        self.reconcile(tick(now));
        if std::mem::take(&mut self.rescan_deferred) {
            self.ask_rescan();
        }
    }

    /// Sorts the services added by the listing under way in with the others. Stable: of one
    /// directory listed under two names, the later name wins, as a rename seen at the next
    /// scan would.
    fn sort_in(&mut self) {
        if self.sorted_len < self.services.len() {
            self.services.sort_by_key(Service::ikey);
            let mut garbage = 0;
            self.services.dedup_by(|later, kept| {
                if later.ikey() != kept.ikey() {
                    return false;
                }
                garbage += usize::from(kept.name_len);
                kept.name_at = later.name_at;
                kept.name_len = later.name_len;
                if kept.log.is_none() {
                    kept.log = later.log.take();
                }
                true
            });
            self.garbage += garbage;
        }
        self.sorted_len = self.services.len();
    }

    pub fn shutting_down(&self) -> bool {
        self.shutdown
    }

    /// What `pid` is, without changing anything.
    pub fn identify(&self, pid: u32) -> Reaped {
        for svc in &self.services {
            for (side, slot) in [(Side::Main, Some(&svc.main)), (Side::Log, svc.log.as_ref())] {
                let Some(slot) = slot else { continue };
                if slot.state == State::Running && slot.pid == pid && pid != 0 {
                    return Reaped::Supervise {
                        key: self.key_of(svc),
                        side,
                        unexpected: !slot.has(TOLD),
                    };
                }
            }
        }
        Reaped::Stranger
    }

    /// Deadlines that have come. A supervise that died unexpectedly is restarted at the pace,
    /// even if its `./run` still runs: the new supervise adopts that run (never starts a
    /// second one), so svscan neither stops it nor waits for it.
    fn timer(&mut self, now: Duration) {
        let t = tick(now);
        match self.phase {
            Phase::Locking { until, retry } if retry <= t && !self.settle_asked => {
                self.phase = Phase::Locking {
                    until,
                    retry: NEVER,
                };
                self.settle_asked = true;
                self.actions.push_back(Action::LockDir);
            }
            Phase::Settling { until, .. } if until <= t => self.begin_running(),
            Phase::Settling { until, retry } if retry <= t && !self.settle_asked => {
                self.phase = Phase::Settling {
                    until,
                    retry: NEVER,
                };
                self.settle_asked = true;
                self.actions.push_back(Action::CheckOrphans);
            }
            _ => {}
        }
        if self.rescan_at.is_some_and(|r| r <= now) {
            self.rescan_at = None;
            self.ask_rescan();
        }
        self.reconcile(t);
    }

    /// When the driver must send [`Input::Timer`]; `None` when nothing is pending.
    pub fn next_deadline(&self) -> Option<Duration> {
        let mut next = match self.phase {
            Phase::Locking { retry, .. } => retry,
            Phase::Settling { until, retry } => until.min(retry),
            Phase::Running | Phase::Failed => NEVER,
        };
        for svc in &self.services {
            // A start waiting for the pipe's answer waits for no time.
            let startable = svc.marks & PIPE_ASKED == 0;
            let main_wanted = svc.present() && !self.shutdown;
            next = next.min(svc.main.deadline(main_wanted && startable));
            if let Some(log) = &svc.log {
                let log_wanted = main_wanted || !svc.main.gone();
                next = next.min(log.deadline(log_wanted && startable));
            }
        }
        let slots = (next != NEVER).then(|| Duration::from_nanos(next));
        match (self.rescan_at, slots) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Next action for the driver: the queued ones, then the probes and starts asked for, in
    /// key order, then [`Action::Ready`] once after the first scan.
    pub fn next_action(&mut self) -> Option<Action> {
        if let Some(a) = self.actions.pop_front() {
            if a == Action::Rescan {
                self.rescan_queued = false;
            }
            return Some(a);
        }
        if self.actions.capacity() > 64 {
            // A shutdown's thousand stops are not kept as a thousand slots for ever.
            self.actions = VecDeque::new();
        }
        let next = self.next_asked();
        if next.is_none() && self.ready == 1 && self.answered() {
            self.ready = 2;
            return Some(Action::Ready);
        }
        next
    }

    /// No probe, pipe or start is waiting for its answer.
    fn answered(&self) -> bool {
        self.services.iter().all(|svc| {
            svc.marks & PIPE_ASKED == 0
                && std::iter::once(&svc.main)
                    .chain(svc.log.as_ref())
                    .all(|slot| !matches!(slot.state, State::Probing | State::Starting))
        })
    }

    /// The next slot marked `ASKED`, from the cursor on, round to it again.
    fn next_asked(&mut self) -> Option<Action> {
        let n = self.services.len();
        if self.asked == 0 || n == 0 {
            self.asked = 0;
            return None;
        }
        // During a listing only services listed so far are handed out ([`Scan::listed_some`]):
        // what the listing has not reached yet may be gone, or have a log now, which only its
        // end can tell.
        let mut held_back = false;
        for step in 0..n {
            let i = (self.cursor + step) % n;
            let Some(svc) = self.services.get_mut(i) else {
                break;
            };
            if self.listing && svc.marks & LISTED == 0 {
                held_back |= svc.main.has(ASKED) || svc.log.as_ref().is_some_and(|l| l.has(ASKED));
                continue;
            }
            for (side, slot) in [
                (Side::Main, Some(&mut svc.main)),
                (Side::Log, svc.log.as_mut()),
            ] {
                let Some(slot) = slot.filter(|s| s.has(ASKED)) else {
                    continue;
                };
                slot.set(ASKED, false);
                let key = Key {
                    dev: self.devs.get(svc.dev as usize).copied().unwrap_or(0),
                    ino: svc.ino,
                };
                self.asked -= 1;
                // The next batch starts from the first service again.
                self.cursor = if self.asked == 0 { 0 } else { i };
                return Some(if slot.state == State::Probing {
                    Action::Probe { key, side }
                } else {
                    Action::Start {
                        key,
                        side,
                        handover: slot.has(RAN),
                    }
                });
            }
        }
        if !held_back {
            self.asked = 0;
        }
        self.cursor = 0;
        None
    }

    /// The service's current entry name in the scan directory.
    pub fn name(&self, key: Key) -> Option<&OsStr> {
        let i = self.index(key)?;
        self.name_of(i).map(OsStr::from_bytes)
    }

    /// Whether the service has a log side (and so a pipe).
    pub fn has_log(&self, key: Key) -> bool {
        self.service(key).is_some_and(|s| s.log.is_some())
    }

    /// Pid of the supervise we started for `side`, if it runs.
    pub fn pid(&self, key: Key, side: Side) -> Option<u32> {
        let svc = self.service(key)?;
        let slot = match side {
            Side::Main => Some(&svc.main),
            Side::Log => svc.log.as_ref(),
        }?;
        (slot.state == State::Running).then_some(slot.pid)
    }

    /// The driver's data for a service.
    pub fn extra(&self, key: Key) -> Option<&X> {
        self.service(key).map(|s| &s.extra)
    }

    /// The driver's data for a service, to change.
    pub fn extra_mut(&mut self, key: Key) -> Option<&mut X> {
        self.service_mut(key).map(|s| &mut s.extra)
    }

    /// Every service's key and driver data, in key order.
    pub fn extras(&self) -> impl Iterator<Item = (Key, &X)> {
        self.services.iter().map(|s| (self.key_of(s), &s.extra))
    }

    /// Every service present in the last listing: key, name and driver data, in key order.
    pub fn each_present_mut(&mut self, mut f: impl FnMut(Key, &OsStr, &mut X)) {
        for svc in self.services.iter_mut().filter(|s| s.present()) {
            let name = self.names.get(svc.name_range()).unwrap_or_default();
            let key = Key {
                dev: self.devs.get(svc.dev as usize).copied().unwrap_or(0),
                ino: svc.ino,
            };
            f(key, OsStr::from_bytes(name), &mut svc.extra);
        }
    }

    /// Number of services known (present or still stopping).
    pub fn len(&self) -> usize {
        self.services.len()
    }

    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }

    /// Services visited by reconciliation so far: grows with the inputs about single services
    /// by one each, so a start-up of N services costs O(N), not O(N²).
    pub fn visits(&self) -> u64 {
        self.visits
    }

    fn key_of(&self, svc: &Service<X>) -> Key {
        Key {
            dev: self.devs.get(svc.dev as usize).copied().unwrap_or(0),
            ino: svc.ino,
        }
    }

    fn dev_index_or_add(&mut self, dev: u64) -> u32 {
        let i = self.devs.iter().position(|&d| d == dev).unwrap_or_else(|| {
            self.devs.push(dev);
            self.devs.len() - 1
        });
        u32::try_from(i).unwrap_or(u32::MAX)
    }

    fn index(&self, key: Key) -> Option<usize> {
        let dev = self.devs.iter().position(|&d| d == key.dev)?;
        let ikey = (u32::try_from(dev).ok()?, key.ino);
        let sorted = self.services.get(..self.sorted_len)?;
        match sorted.binary_search_by_key(&ikey, Service::ikey) {
            Ok(i) => Some(i),
            // Added during a scan not yet ended.
            Err(_) => self
                .services
                .iter()
                .skip(self.sorted_len)
                .position(|s| s.ikey() == ikey)
                .map(|p| p + self.sorted_len),
        }
    }

    fn service(&self, key: Key) -> Option<&Service<X>> {
        self.services.get(self.index(key)?)
    }

    fn service_mut(&mut self, key: Key) -> Option<&mut Service<X>> {
        let i = self.index(key)?;
        self.services.get_mut(i)
    }

    fn name_of(&self, i: usize) -> Option<&[u8]> {
        let svc = self.services.get(i)?;
        self.names.get(svc.name_range())
    }

    fn store_name(&mut self, name: &[u8]) -> (u32, u16) {
        // Entry names are at most NAME_MAX (255) bytes.
        let name = name.get(..usize::from(u16::MAX)).unwrap_or(name);
        let at = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        self.names.extend_from_slice(name);
        (at, u16::try_from(name.len()).unwrap_or(0))
    }

    /// Rewrites the name buffer once most of it is garbage, and returns spare capacity.
    fn compact(&mut self) {
        if self.garbage > 64 && self.garbage * 2 > self.names.len() {
            let mut names = Vec::with_capacity(self.names.len() - self.garbage);
            for svc in &mut self.services {
                let name = self.names.get(svc.name_range()).unwrap_or_default();
                svc.name_at = u32::try_from(names.len()).unwrap_or(u32::MAX);
                names.extend_from_slice(name);
            }
            self.names = names;
            self.garbage = 0;
        }
        if self.names.capacity() > self.names.len() + self.names.len() / 4 + 64 {
            self.names.shrink_to_fit();
        }
        if self.services.capacity() > self.services.len() + self.services.len() / 4 + 8 {
            self.services.shrink_to_fit();
        }
    }

    fn slot_mut(&mut self, key: Key, side: Side) -> Option<&mut Slot> {
        let svc = self.service_mut(key)?;
        match side {
            Side::Main => Some(&mut svc.main),
            Side::Log => svc.log.as_mut(),
        }
    }

    /// Compares what is wanted with what runs, for every service, and queues the difference.
    fn reconcile(&mut self, now: Tick) {
        if self.phase != Phase::Running {
            self.check_exit(now);
            return;
        }
        let mut i = 0;
        while i < self.services.len() {
            if !self.reconcile_at(i, now) {
                i += 1;
            }
        }
        self.check_exit(now);
    }

    /// Reconciles one service: the one an input was about.
    fn reconcile_key(&mut self, key: Key, now: Tick) {
        if let Some(i) = self.index(key) {
            self.reconcile_at(i, now);
        }
        self.check_exit(now);
    }

    /// After a reconciliation: starts that wait for descriptors, if some were freed, and the
    /// end of a shutdown.
    fn check_exit(&mut self, now: Tick) {
        self.fds_freed(now);
        if self.shutdown && self.services.is_empty() && !self.exited {
            self.exited = true;
            self.actions.push_back(Action::Exit);
        }
    }

    /// Reconciles the service at `i`; true when it was forgotten (removed from the vector).
    fn reconcile_at(&mut self, i: usize, now: Tick) -> bool {
        self.visits += 1;
        let shutdown = self.shutdown;
        let timeout = self.kill_timeout;
        let Some(svc) = self.services.get_mut(i) else {
            return false;
        };
        let key = Key {
            dev: self.devs.get(svc.dev as usize).copied().unwrap_or(0),
            ino: svc.ino,
        };
        let main_wanted = svc.present() && !shutdown;
        // A start handed out before the log appeared was answered: that supervise's stdout is
        // not the pipe, so it is handed over at once (see `seen`).
        if svc.main.state == State::Running && svc.main.has(REATTACH) {
            svc.main.set(REATTACH, false);
            if main_wanted && !svc.main.has(TOLD) {
                self.actions.push_back(Action::Control {
                    key,
                    side: Side::Main,
                    bytes: b"x",
                });
            }
        }
        let log_wanted = main_wanted || !svc.main.gone();
        let needs_pipe = svc.log.is_some() && svc.marks & PIPE == 0;
        let main_due = main_wanted && svc.main.due(now);
        let log_due = log_wanted && svc.log.as_ref().is_some_and(|l| l.due(now));
        if needs_pipe && (main_due || log_due) && svc.marks & PIPE_ASKED == 0 {
            // Taken over only before any supervise of ours runs there: ours hold our pipe.
            let recover = svc.marks & PIPE_CHECKED == 0
                && !svc.main.ours()
                && !svc.log.as_ref().is_some_and(Slot::ours);
            svc.marks |= PIPE_ASKED | PIPE_CHECKED;
            self.actions.push_back(Action::OpenPipe { key, recover });
        }
        let pipe_ready = !needs_pipe;
        step(
            &mut self.actions,
            &mut self.asked,
            key,
            Side::Main,
            &mut svc.main,
            main_wanted && pipe_ready,
            main_wanted,
            b"dx",
            shutdown.then_some(timeout),
            now,
        );
        let main_gone = !main_wanted && svc.main.gone();
        if main_gone && svc.log.is_some() && svc.marks & PIPE != 0 {
            svc.marks &= !PIPE;
            self.actions.push_back(Action::CloseWrite { key });
            self.freed = true;
        }
        if let Some(log) = svc.log.as_mut() {
            // The logger exits by itself at end-of-file; `x` makes its supervise follow.
            // If it does not, it is stopped after the timeout.
            step(
                &mut self.actions,
                &mut self.asked,
                key,
                Side::Log,
                log,
                !main_gone && pipe_ready,
                !main_gone,
                b"x",
                Some(timeout),
                now,
            );
        }
        let mut forgotten = false;
        if main_gone && svc.log.as_ref().is_none_or(Slot::gone) && svc.marks & PIPE_ASKED == 0 {
            self.garbage += usize::from(svc.name_len);
            self.services.remove(i);
            if i < self.sorted_len {
                self.sorted_len -= 1;
            }
            self.actions.push_back(Action::Forget { key });
            forgotten = true;
            self.freed = true;
        }
        forgotten
    }
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
    /// but our child once reparented), or any other orphan of the tree.
    Stranger,
}

/// A start handed out before the service's log appeared: once answered, that supervise is
/// told `x` (its stdout is not the pipe).
const REATTACH: u8 = 32;

/// One side's reconciliation. `start`: it may start (wanted, and its pipe is held if it needs
/// one); `wanted`: it should run (a probe or start not yet handed out is withdrawn otherwise).
/// `stop` is what to write when it must go; after `escalate` the stop is forced (`dx` then
/// `+k`, a group kill of the service).
#[allow(clippy::too_many_arguments)]
fn step(
    actions: &mut VecDeque<Action>,
    asked: &mut usize,
    key: Key,
    side: Side,
    slot: &mut Slot,
    start: bool,
    wanted: bool,
    stop: &'static [u8],
    escalate: Option<Tick>,
    now: Tick,
) {
    if wanted && !start && slot.has(ASKED) {
        // Its pipe is not held (a log appeared): withdrawn until it is.
        slot.withdraw(asked);
        return;
    }
    if wanted {
        if start && slot.due(now) {
            // Handed out by [`Scan::next_action`] from the mark: a thousand probes are not a
            // thousand queued actions.
            slot.state = State::Probing;
            slot.set(ASKED, true);
            *asked += 1;
        }
        return;
    }
    if slot.has(ASKED) {
        // Not handed out yet: withdrawn.
        slot.withdraw(asked);
        return;
    }
    if !slot.live() {
        return;
    }
    if !slot.has(TOLD) {
        slot.set(TOLD, true);
        slot.at = escalate.map_or(NEVER, |t| now.saturating_add(t));
        actions.push_back(Action::Control {
            key,
            side,
            bytes: stop,
        });
        return;
    }
    // Told already without a deadline (a removed service still stopping, a supervise handed
    // over to a new log) and now a shutdown or a removal: the deadline starts now, or svscan
    // would wait for it for ever.
    if slot.at == NEVER
        && !slot.has(KILLED)
        && let Some(t) = escalate
    {
        slot.at = now.saturating_add(t);
    }
    if slot.at <= now {
        slot.at = NEVER;
        slot.set(KILLED, true);
        // Only the kill: the down signal was sent with the stop, once is right.
        actions.push_back(Action::Control {
            key,
            side,
            bytes: b"+k",
        });
    }
}

#[cfg(test)]
mod tests;
