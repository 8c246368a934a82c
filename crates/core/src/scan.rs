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
//!
//! Cost at scale: an input about one service (a start, a reap, a foreign supervise found or
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
    /// Forget the service and release its pipe and watches (its extra data is dropped already).
    Forget { key: Key },
    /// Scan the directory again.
    Rescan,
    /// Every service is stopped after a shutdown request: exit 0.
    Exit,
}

/// A time as nanoseconds since the driver's origin; `NEVER` for no deadline.
type Tick = u64;
const NEVER: Tick = u64::MAX;

fn tick(d: Duration) -> Tick {
    u64::try_from(d.as_nanos()).unwrap_or(NEVER - 1)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No supervise; may start at `start_at`.
    Idle,
    /// Our child; pid 0 while the start is asked for and not yet answered.
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
    /// Pid of our supervise while `Running` (0: start asked, not answered).
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
/// The last start failed (it is retried at the pace, or at once on [`Scan::retry_failed`]).
const FAILED: u8 = 8;
/// A start is asked for and not yet handed to the driver ([`Action::Start`]).
const ASKED: u8 = 16;

impl Slot {
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
        (self.state == State::Running && self.pid != 0) || self.state == State::Foreign
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
    /// `PRESENT`, `LISTED`, `WRITE_CLOSED`.
    marks: u8,
    extra: X,
}

/// In the last complete listing.
const PRESENT: u8 = 1;
/// Seen by the listing in progress.
const LISTED: u8 = 2;
/// Our end of the log pipe is closed (asked of the driver).
const WRITE_CLOSED: u8 = 4;

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
    shutdown: bool,
    kill_timeout: Tick,
    /// Rescan every [`FALLBACK_RESCAN`] (no inotify).
    fallback: bool,
    rescan_at: Option<Duration>,
    exited: bool,
    /// Services visited by reconciliation so far (a measure of work, for tests).
    visits: u64,
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

impl Scan<()> {
    pub fn new(kill_timeout: Duration) -> Scan<()> {
        Scan::with_extra(kill_timeout)
    }
}

impl<X: Default> Scan<X> {
    /// A scan whose services each carry an `X` for the driver ([`Scan::extra_mut`]), created
    /// with the service and dropped when it is forgotten.
    pub fn with_extra(kill_timeout: Duration) -> Scan<X> {
        Scan {
            services: Vec::new(),
            sorted_len: 0,
            devs: Vec::new(),
            names: Vec::new(),
            garbage: 0,
            actions: VecDeque::new(),
            asked: 0,
            cursor: 0,
            shutdown: false,
            kill_timeout: tick(kill_timeout),
            fallback: false,
            rescan_at: None,
            exited: false,
            visits: 0,
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

    /// A complete listing of the scan directory (only qualifying entries): [`Scan::begin_scan`],
    /// [`Scan::seen`] for each, [`Scan::end_scan`].
    pub fn scanned(&mut self, seen: Vec<Seen>, now: Duration) {
        self.begin_scan(seen.len(), now);
        for s in &seen {
            self.seen(s, now);
        }
        self.end_scan(now);
    }

    /// A listing of the scan directory starts: entries follow through [`Scan::seen`], so no
    /// listing of thousands of entries need be held at once. `expected`: about how many
    /// entries it will have (the driver's guess), so that room for them is made once, to size,
    /// rather than by doubling, each larger copy leaving the last behind.
    pub fn begin_scan(&mut self, expected: usize, now: Duration) {
        if !self.shutdown {
            self.services
                .reserve_exact(expected.saturating_sub(self.services.len()));
        }
        self.rescan_at = self.fallback.then_some(now + FALLBACK_RESCAN);
        self.sorted_len = self.services.len();
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
            // The running supervise's stdout is not the new pipe: it exits (`x`) at the
            // service's next stop, or at once if the service is down, and its replacement (a
            // handover: the want is kept) runs the service with the pipe as stdout. A start
            // still queued gets the pipe anyway.
            if svc.main.live() {
                self.actions.push_back(Action::Control {
                    key: s.key,
                    side: Side::Main,
                    bytes: b"x",
                });
            }
        }
        Some(&mut svc.extra)
    }

    /// The listing begun by [`Scan::begin_scan`] could not be finished: nothing of it counts
    /// (a log seen added stays added).
    pub fn abort_scan(&mut self) {
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
        if !self.shutdown && self.sorted_len < self.services.len() {
            // Stable: of one directory listed under two names, the later name wins, as a
            // rename seen at the next scan would.
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
        if !self.shutdown {
            for svc in &mut self.services {
                let present = if svc.marks & LISTED != 0 { PRESENT } else { 0 };
                svc.marks = (svc.marks & !(LISTED | PRESENT)) | present;
            }
        }
        self.compact();
        self.reconcile(tick(now));
    }

    /// SIGTERM/SIGINT: bring everything down, then exit.
    pub fn shut_down(&mut self, now: Duration) {
        if !self.shutdown {
            self.shutdown = true;
            self.rescan_at = None;
        }
        self.reconcile(tick(now));
    }

    pub fn shutting_down(&self) -> bool {
        self.shutdown
    }

    /// The supervise of `side` was started as `pid`.
    pub fn started(&mut self, key: Key, side: Side, pid: u32, now: Duration) {
        let now = tick(now);
        if let Some(slot) = self.slot_mut(key, side) {
            slot.state = State::Running;
            slot.pid = pid;
            slot.at = now.saturating_add(tick(RESTART_PACE));
            slot.flags = RAN;
        }
        self.reconcile_key(key, now);
    }

    /// Starting failed (fork, pipe, out of descriptors): retry after the pace.
    pub fn start_failed(&mut self, key: Key, side: Side, now: Duration) {
        let now = tick(now);
        if let Some(slot) = self.slot_mut(key, side) {
            slot.state = State::Idle;
            slot.pid = 0;
            slot.at = now.saturating_add(tick(RESTART_PACE));
            slot.flags = (slot.flags & RAN) | FAILED;
        }
        self.reconcile_key(key, now);
    }

    /// Descriptors were freed after starts failed for want of them: every failed start is
    /// tried again now rather than at its pace.
    pub fn retry_failed(&mut self, now: Duration) {
        let now = tick(now);
        for svc in &mut self.services {
            for slot in std::iter::once(&mut svc.main).chain(svc.log.as_mut()) {
                if slot.state == State::Idle && slot.has(FAILED) {
                    slot.at = slot.at.min(now);
                }
            }
        }
        self.reconcile(now);
    }

    /// A supervise we did not start already runs there (left by an earlier svscan); the driver
    /// watches it. Should it die, its replacement is paced as if we had started it now.
    pub fn found_foreign(&mut self, key: Key, side: Side, now: Duration) {
        let now = tick(now);
        if let Some(slot) = self.slot_mut(key, side) {
            slot.state = State::Foreign;
            slot.pid = 0;
            slot.flags = RAN;
            slot.at = now.saturating_add(tick(RESTART_PACE));
        }
        self.reconcile_key(key, now);
    }

    /// The foreign supervise of `side` has gone.
    pub fn foreign_gone(&mut self, key: Key, side: Side, now: Duration) {
        let now = tick(now);
        if let Some(slot) = self.slot_mut(key, side)
            && slot.state == State::Foreign
        {
            let told = slot.has(TOLD);
            slot.stopped(now);
            if !told {
                slot.at = slot.at.max(now);
            }
        }
        self.reconcile_key(key, now);
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

    /// A process was reaped. A supervise that died unexpectedly is restarted at the pace, even
    /// if its `./run` still runs: the new supervise adopts that run (never starts a second
    /// one), so svscan neither stops it nor waits for it.
    pub fn reaped(&mut self, pid: u32, now: Duration) -> Reaped {
        let result = self.identify(pid);
        if let Reaped::Supervise { key, side, .. } = result {
            if let Some(slot) = self.slot_mut(key, side) {
                slot.stopped(tick(now));
            }
            self.reconcile_key(key, tick(now));
        }
        result
    }

    /// Deadlines that have come.
    pub fn timer(&mut self, now: Duration) {
        if self.rescan_at.is_some_and(|t| t <= now) {
            self.rescan_at = None;
            self.actions.push_back(Action::Rescan);
        }
        self.reconcile(tick(now));
    }

    /// When the driver must call [`Scan::timer`]; `None` when nothing is pending.
    pub fn next_deadline(&self) -> Option<Duration> {
        let mut next = NEVER;
        for svc in &self.services {
            let main_wanted = svc.present() && !self.shutdown;
            next = next.min(svc.main.deadline(main_wanted));
            if let Some(log) = &svc.log {
                next = next.min(log.deadline(main_wanted || !svc.main.gone()));
            }
        }
        let slots = (next != NEVER).then(|| Duration::from_nanos(next));
        match (self.rescan_at, slots) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Next action for the driver: the queued ones, then the starts asked for, in key order.
    pub fn next_action(&mut self) -> Option<Action> {
        if let Some(a) = self.actions.pop_front() {
            return Some(a);
        }
        if self.actions.capacity() > 64 {
            // A shutdown's thousand stops are not kept as a thousand slots for ever.
            self.actions = VecDeque::new();
        }
        self.next_start()
    }

    /// The next slot marked `ASKED`, from the cursor on, round to it again.
    fn next_start(&mut self) -> Option<Action> {
        let n = self.services.len();
        if self.asked == 0 || n == 0 {
            self.asked = 0;
            return None;
        }
        for step in 0..n {
            let i = (self.cursor + step) % n;
            let Some(svc) = self.services.get_mut(i) else {
                break;
            };
            for (side, slot) in [
                (Side::Main, Some(&mut svc.main)),
                (Side::Log, svc.log.as_mut()),
            ] {
                let Some(slot) = slot.filter(|s| s.has(ASKED)) else {
                    continue;
                };
                slot.set(ASKED, false);
                let handover = slot.has(RAN);
                let key = Key {
                    dev: self.devs.get(svc.dev as usize).copied().unwrap_or(0),
                    ino: svc.ino,
                };
                self.asked -= 1;
                // The next batch starts from the first service again.
                self.cursor = if self.asked == 0 { 0 } else { i };
                return Some(Action::Start {
                    key,
                    side,
                    handover,
                });
            }
        }
        self.asked = 0;
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
        (slot.state == State::Running && slot.pid != 0).then_some(slot.pid)
    }

    /// The driver's data for a service.
    pub fn extra(&self, key: Key) -> Option<&X> {
        self.service(key).map(|s| &s.extra)
    }

    /// The driver's data for a service, to change.
    pub fn extra_mut(&mut self, key: Key) -> Option<&mut X> {
        let i = self.index(key)?;
        self.services.get_mut(i).map(|s| &mut s.extra)
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
        let i = self.index(key)?;
        let svc = self.services.get_mut(i)?;
        match side {
            Side::Main => Some(&mut svc.main),
            Side::Log => svc.log.as_mut(),
        }
    }

    /// Compares what is wanted with what runs, for every service, and queues the difference.
    fn reconcile(&mut self, now: Tick) {
        let mut i = 0;
        while i < self.services.len() {
            if !self.reconcile_at(i, now) {
                i += 1;
            }
        }
        self.check_exit();
    }

    /// Reconciles one service: the one an input was about.
    fn reconcile_key(&mut self, key: Key, now: Tick) {
        if let Some(i) = self.index(key) {
            self.reconcile_at(i, now);
        }
        self.check_exit();
    }

    fn check_exit(&mut self) {
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
        step(
            &mut self.actions,
            &mut self.asked,
            key,
            Side::Main,
            &mut svc.main,
            main_wanted,
            b"dx",
            shutdown.then_some(timeout),
            now,
        );
        let main_gone = !main_wanted && svc.main.gone();
        if main_gone && svc.log.is_some() && svc.marks & WRITE_CLOSED == 0 {
            svc.marks |= WRITE_CLOSED;
            self.actions.push_back(Action::CloseWrite { key });
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
                !main_gone,
                b"x",
                Some(timeout),
                now,
            );
        }
        if main_gone && svc.log.as_ref().is_none_or(Slot::gone) {
            self.garbage += usize::from(svc.name_len);
            self.services.remove(i);
            if i < self.sorted_len {
                self.sorted_len -= 1;
            }
            self.actions.push_back(Action::Forget { key });
            return true;
        }
        false
    }
}

/// One side's reconciliation. `stop` is what to write when it must go; after `escalate` the
/// stop is forced (`dx` then `+k`, a group kill of the service).
#[allow(clippy::too_many_arguments)]
fn step(
    actions: &mut VecDeque<Action>,
    asked: &mut usize,
    key: Key,
    side: Side,
    slot: &mut Slot,
    wanted: bool,
    stop: &'static [u8],
    escalate: Option<Tick>,
    now: Tick,
) {
    if wanted {
        if slot.state == State::Idle && slot.at <= now {
            // Marked running-to-be by the driver's answer; until then do not ask twice. The
            // start is handed out by [`Scan::next_action`] from the mark: a thousand starts
            // are not a thousand queued actions.
            slot.state = State::Running;
            slot.pid = 0;
            slot.set(ASKED, true);
            *asked += 1;
        }
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
    // Told already without a deadline (a removed service still stopping) and now a shutdown:
    // the deadline starts now, or svscan would wait for it for ever.
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

    /// issue 12: a start-up of N services costs O(N) reconciliation, not O(N²): each answer
    /// (started, failed, foreign found) reconciles its own service only.
    #[test]
    fn start_up_work_is_linear() {
        let n = 2000u64;
        let mut s = Scan::new(DEFAULT_KILL_TIMEOUT);
        s.scanned(
            (1..=n).map(|i| seen(i, i % 2 == 0)).collect(),
            Duration::ZERO,
        );
        let acts = drain(&mut s);
        assert_eq!(acts.len() as u64, n + n / 2);
        let mut pid = 0;
        for a in &acts {
            if let Action::Start { key, side, .. } = *a {
                pid += 1;
                match pid % 3 {
                    0 => s.start_failed(key, side, Duration::ZERO),
                    1 => s.found_foreign(key, side, Duration::ZERO),
                    _ => s.started(key, side, pid, Duration::ZERO),
                }
            }
        }
        assert!(drain(&mut s).is_empty());
        for p in 1..=pid {
            s.reaped(p, Duration::ZERO);
        }
        let visits = s.visits();
        assert!(
            visits <= 4 * n,
            "{visits} services visited for {n} services: quadratic"
        );
    }

    #[test]
    fn failed_starts_retried_at_once_when_descriptors_are_freed() {
        let mut s = Scan::new(DEFAULT_KILL_TIMEOUT);
        s.scanned(vec![seen(1, true), seen(2, false)], Duration::ZERO);
        drain(&mut s);
        s.started(key(1), Side::Main, 10, Duration::ZERO);
        s.start_failed(key(1), Side::Log, Duration::ZERO);
        s.start_failed(key(2), Side::Main, Duration::ZERO);
        assert!(drain(&mut s).is_empty());
        s.retry_failed(S / 10);
        assert_eq!(
            drain(&mut s),
            vec![start(1, Side::Log, false), start(2, Side::Main, false)]
        );
        // A success clears the mark: nothing is started twice.
        s.started(key(1), Side::Log, 11, S / 10);
        s.started(key(2), Side::Main, 12, S / 10);
        s.retry_failed(S / 5);
        assert!(drain(&mut s).is_empty());
    }

    #[test]
    fn one_directory_under_two_names_is_one_service() {
        let mut s = Scan::new(DEFAULT_KILL_TIMEOUT);
        let mut other = seen(1, false);
        other.name = OsString::from("alias");
        s.scanned(vec![seen(1, false), seen(2, false), other], Duration::ZERO);
        assert_eq!(
            drain(&mut s),
            vec![start(1, Side::Main, false), start(2, Side::Main, false)]
        );
        assert_eq!(s.len(), 2);
        assert_eq!(s.name(key(1)).unwrap(), "alias");
        assert_eq!(s.name(key(2)).unwrap(), "svc2");
        // Renames over many scans do not grow the name buffer for ever.
        for round in 0..200 {
            let mut r = seen(1, false);
            r.name = OsString::from(format!("name-{round}"));
            s.scanned(vec![r, seen(2, false)], S);
        }
        assert!(s.names.len() < 400, "{} bytes of names", s.names.len());
        assert_eq!(s.name(key(1)).unwrap(), "name-199");
        assert_eq!(s.name(key(2)).unwrap(), "svc2");
    }

    /// issue 12: the per-service record stays small (it is most of svscan's memory at scale).
    #[test]
    fn records_are_compact() {
        assert_eq!(std::mem::size_of::<Slot>(), 16);
        assert_eq!(std::mem::size_of::<Option<Slot>>(), 16);
        assert!(std::mem::size_of::<Service<()>>() <= 56);
        // svscan's: two descriptors and a byte of marks.
        assert!(std::mem::size_of::<Service<[u32; 3]>>() <= 64);
    }

    #[test]
    fn services_on_several_devices() {
        let mut s = Scan::new(DEFAULT_KILL_TIMEOUT);
        let on = |dev: u64, ino: u64, name: &str| Seen {
            name: OsString::from(name),
            key: Key { dev, ino },
            has_log: false,
            log_pending: false,
        };
        s.scanned(
            vec![on(7, 1, "a"), on(3, 1, "b"), on(7, 2, "c")],
            Duration::ZERO,
        );
        let mut keys: Vec<Key> = drain(&mut s)
            .into_iter()
            .map(|a| match a {
                Action::Start { key, .. } => key,
                other => panic!("{other:?}"),
            })
            .collect();
        keys.sort();
        assert_eq!(
            keys,
            vec![
                Key { dev: 3, ino: 1 },
                Key { dev: 7, ino: 1 },
                Key { dev: 7, ino: 2 }
            ]
        );
        assert_eq!(s.name(Key { dev: 3, ino: 1 }).unwrap(), "b");
        assert_eq!(s.name(Key { dev: 7, ino: 2 }).unwrap(), "c");
        assert!(s.name(Key { dev: 5, ino: 1 }).is_none());
        s.started(Key { dev: 7, ino: 2 }, Side::Main, 40, S);
        assert_eq!(
            s.identify(40),
            Reaped::Supervise {
                key: Key { dev: 7, ino: 2 },
                side: Side::Main,
                unexpected: true
            }
        );
    }
}
