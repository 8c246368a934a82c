//! supervise DIR — run DIR/run and keep it running as told through DIR/supervise/control.
//!
//! Usage: `supervise dir` (exactly one argument), or `supervise -d dir`: make sure a supervise
//! runs on dir, starting one detached from the caller when none does (see [`detach`]).
//!
//! Files: creates `DIR/supervise/` (0700) with `lock`, `control` and `ok` FIFOs and the 20-byte
//! `status` (daemontools' 18 bytes + runit's 2). Reads the knob files described in
//! supervise(8) before every start of `./run`.
//!
//! Signals: SIGTERM and SIGINT mean `dx` (bring the service down, then exit); SIGHUP means `x`.
//!
//! Exit codes: 0 after `x` once the service is down; 100 usage; 111 when it cannot set up
//! (another supervise holds the lock, no directory, no FIFO). With `-d`: 0 once a supervise
//! runs on dir (holding its lock), 111 with the reason otherwise.
#![forbid(unsafe_code)]

mod access;
mod detach;

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::process::ExitCode;

use vigil_core::control::sig;
use vigil_core::history::{self, Event};
use vigil_core::info::{Info, InfoView};
use vigil_core::layout::{self, KnobListing, KnobSet, state};
use vigil_core::machine::{Action, Input, Machine, Now};
use vigil_core::readiness::{self, Main};
use vigil_core::tai::Tai64n;
use vigil_sys::cgroup::{self, Events, Hierarchy, ServiceCgroup};
use vigil_sys::clock::Clock;
use vigil_sys::diag::{self, EXIT_TEMP};
use vigil_sys::filewatch::{self, FileWatch};
use vigil_sys::notify::{self, NotifySocket};
use vigil_sys::signals::{self, Signals};
use vigil_sys::statedir::{FifoFound, StateDir};
use vigil_sys::{children, fifo, files, poll, process, spawn};

pub(crate) const PROG: &str = "supervise";
/// Bytes reserved for the info text (about 240 with every field set, more only with a long
/// sd_notify STATUS=).
const INFO_CAPACITY: usize = 512;
/// The most sd_notify datagrams read at one wakeup.
const NOTIFY_BATCH: usize = 64;

/// The program, called with its arguments after argv[0].
pub fn main(args: Vec<OsString>) -> ExitCode {
    let dir = match args.as_slice() {
        [dir] => dir,
        [opt, dir] if opt == "-d" => return detach::start(dir),
        _ => return diag::usage(PROG, "supervise dir"),
    };
    match Supervisor::setup(dir) {
        Ok(mut s) => s.run(),
        Err(code) => code,
    }
}

struct Supervisor {
    /// DIR as given, for messages.
    name: String,
    machine: Machine,
    clock: Clock,
    /// `supervise/`, held open: every state file is reached through it.
    state: StateDir,
    signals: Signals,
    control: OwnedFd,
    /// Our own writer on `control`: keeps the read end from seeing EOF (and poll quiet).
    _control_writer: OwnedFd,
    /// `supervise/ok`, opened once the first status is written.
    _ok: Option<OwnedFd>,
    _lock: std::fs::File,
    last_written: Option<[u8; vigil_core::status::STATUS_LEN]>,
    last_info: String,
    /// The knob names of the last listing of the service directory, while it has not changed.
    listing: KnobListing,
    /// `supervise/history`, held open between records.
    history: Option<std::fs::File>,
    /// Reused for rendering info and history lines (no allocation once grown).
    text_buf: String,
    /// The machine said exit; the loop returns at its next turn.
    exiting: bool,
    /// Read end of the current run's notification-fd pipe (s6 readiness).
    ready_pipe: Option<OwnedFd>,
    /// The sd_notify socket, when `notify-socket` exists; its address goes to `./run` as
    /// NOTIFY_SOCKET.
    notify: Option<NotifySocket>,
    /// A datagram from a sender not trusted to speak for this run was dropped and said so.
    notify_refusal_told: bool,
    /// The last `STATUS=` text received through sd_notify.
    notify_status: String,
    /// This boot's id, recorded with each run so a successor can recognise it.
    boot_id: String,
    /// The running `./run`: pid and start time in ticks (with `boot_id`, its identity).
    run_identity: Option<(u32, u64)>,
    /// The service's own cgroup, where cgroup2 can be written.
    cgroup: Option<Cgroup>,
    /// The `deadman` knob's file and the watch on it.
    deadman: Option<Deadman>,
    /// `memory-max` / `pids-max` could not be applied and that was said (once each).
    limit_told: [bool; 2],
    /// pidfd of an adopted `./run` (not our child: its end shows as the pidfd turning readable).
    adopted: Option<(u32, OwnedFd)>,
    /// The last status or info write failed (and that was said).
    write_failing: bool,
}

impl Supervisor {
    fn setup(dir: &OsStr) -> Result<Supervisor, ExitCode> {
        let name = dir.to_string_lossy().into_owned();
        let fatal = |what: String, e: std::io::Error| {
            diag::fatal(PROG, &format!("{what}: {}", diag::reason(&e)), EXIT_TEMP)
        };

        signals::reset_dispositions();
        process::cloexec_inherited();
        // Taken out of the environment at once: no child of ours sees it.
        let handover = process::take_env(vigil_core::scan::HANDOVER_ENV).is_some();
        // `supervise -d`: the caller's pipe, told once the lock is ours and supervise/ is set up.
        let caller_pipe = process::take_env(detach::READY_FD_ENV)
            .and_then(|v| vigil_sys::detach::take_ready_pipe(&v));
        let signals = Signals::block(&[signals::CHLD, sig::TERM, sig::INT, sig::HUP])
            .map_err(|e| fatal(format!("unable to create pipe for {name}"), e))?;
        std::env::set_current_dir(dir)
            .map_err(|e| fatal(format!("unable to chdir to {name}"), e))?;
        let start_down = files::exists(Path::new(layout::DOWN))
            .map_err(|e| fatal(format!("unable to stat {name}/down"), e))?;
        let state = StateDir::open(layout::SUPERVISE_DIR)
            .map_err(|e| fatal(format!("unable to open {name}/supervise"), e))?;
        let lock = state
            .lock(state::LOCK)
            .map_err(|e| fatal(format!("unable to acquire {name}/supervise/lock"), e))?;
        let open_control = || -> std::io::Result<(OwnedFd, OwnedFd)> {
            make_fifo(&state, &name, state::CONTROL)?;
            let r = state.open_fifo(state::CONTROL, false)?;
            let w = state.open_fifo(state::CONTROL, true)?;
            Ok((r, w))
        };
        let (control, control_writer) = open_control()
            .map_err(|e| fatal(format!("unable to read {name}/supervise/control"), e))?;
        // What the service leaves behind when a process of it exits is re-parented to us, so it
        // stays visible, is reaped, and is brought down with the service.
        if let Err(e) = process::become_subreaper() {
            diag::warn(
                PROG,
                &format!(
                    "unable to become a subreaper for {name}: {}",
                    diag::reason(&e)
                ),
            );
        }

        let clock = Clock::new();
        let now = clock.now();
        // Quietly: every start reads the knobs again and reports what is wrong then.
        let (cfg, _) = layout::read_config(listed_knobs(), |k| knob_value(k).ok().flatten());
        // A supervise svscan starts in place of an earlier one keeps the want that one recorded
        // (`svc -d` or `-o` survives the handover); only a fresh start applies `./down`.
        let kept = handover
            .then(|| state.read(state::STATUS))
            .flatten()
            .and_then(|b| vigil_core::status::Status::unpack(&b).ok())
            .map(|st| st.want);
        let machine = match kept {
            Some(want) => Machine::with_want(cfg, want, now),
            None => Machine::new(cfg, start_down, now),
        };
        let mut s = Supervisor {
            name,
            machine,
            clock,
            state,
            signals,
            control,
            _control_writer: control_writer,
            _ok: None,
            _lock: lock,
            last_written: None,
            // Room for any usual info text from the start: no growth in steps through the
            // allocator's size classes (each would leave a page of the heap dirty).
            last_info: String::with_capacity(INFO_CAPACITY),
            text_buf: String::with_capacity(INFO_CAPACITY),
            history: None,
            listing: KnobListing::default(),
            exiting: false,
            ready_pipe: None,
            notify: None,
            notify_refusal_told: false,
            notify_status: String::new(),
            boot_id: process::boot_id().unwrap_or_default(),
            run_identity: None,
            cgroup: None,
            deadman: None,
            limit_told: [false; 2],
            adopted: None,
            write_failing: false,
        };
        s.cgroup = Cgroup::set_up(&s.name);
        s.watch_deadman(&knob_value(layout::KNOB_DEADMAN).ok().flatten());
        s.adopt_leftover(now);
        s.tell_deadman(now);
        let written = s.write_status(false);
        s.machine.handle(Input::Written(written), now);
        let ok = make_fifo(&s.state, &s.name, state::OK)
            .and_then(|()| s.state.open_fifo(state::OK, false))
            .map_err(|e| fatal(format!("unable to read {}/supervise/ok", s.name), e))?;
        access::apply(
            &s.state,
            &s.name,
            listed_knobs(),
            &[s.control.as_fd(), ok.as_fd()],
        );
        s._ok = Some(ok);
        if let Some(pipe) = caller_pipe
            && let Err(e) = vigil_sys::detach::report_ready(pipe)
        {
            diag::warn(
                PROG,
                &format!(
                    "unable to report ready for {}: {}",
                    s.name,
                    diag::reason(&e)
                ),
            );
        }
        Ok(s)
    }

    fn run(&mut self) -> ExitCode {
        let now = self.clock.now();
        self.handle(Input::Start, now);
        let mut buf = [0u8; 512];
        let mut ready = [false; 7];
        loop {
            if self.exiting {
                return ExitCode::SUCCESS;
            }
            let now = self.clock.now();
            let timeout = self
                .machine
                .next_deadline()
                .map(|d| d.saturating_sub(now.mono));
            // At most seven descriptors, on the stack: the idle loop allocates nothing.
            let sig_fd = self.signals.as_fd();
            let mut fds = [sig_fd; 7];
            let mut len = 2;
            if let Some(slot) = fds.get_mut(1) {
                *slot = self.control.as_fd();
            }
            let mut add = |fd: Option<_>| {
                let fd = fd?;
                let at = len;
                *fds.get_mut(at)? = fd;
                len += 1;
                Some(at)
            };
            let pipe_at = add(self.ready_pipe.as_ref().map(AsFd::as_fd));
            let sock_at = add(self.notify.as_ref().map(AsFd::as_fd));
            let adopted_at = add(self.adopted.as_ref().map(|(_, fd)| fd.as_fd()));
            let deadman_at = add(self.deadman.as_ref().map(|d| d.watch.as_fd()));
            let events_at = add(self.cgroup.as_ref().map(|c| c.events.as_fd()));
            let priority = events_at.map_or(0, |i| 1u32 << i);
            let fds = fds.get(..len).unwrap_or_default();
            if let Err(e) = poll::wait_marked(fds, priority, &mut ready, timeout) {
                diag::warn(
                    PROG,
                    &format!("unable to poll for {}: {}", self.name, diag::reason(&e)),
                );
            }
            let now = self.clock.now();
            let [sig_ready, control_ready, ..] = ready;
            let is_ready =
                |at: Option<usize>| at.and_then(|i| ready.get(i)).copied().unwrap_or(false);
            if is_ready(pipe_at) {
                self.handle_ready_pipe(&mut buf, now);
            }
            if is_ready(sock_at) {
                self.handle_notify(&mut buf, now);
            }
            if is_ready(adopted_at)
                && let Some((pid, _)) = self.adopted.take()
            {
                self.handle(Input::AdoptedEnded(pid), now);
                self.tell_population(now);
            }
            if is_ready(deadman_at) {
                let touched = self
                    .deadman
                    .as_ref()
                    .is_some_and(|d| d.watch.drain(d.file_name()));
                if touched {
                    self.tell_deadman(now);
                }
            }
            if is_ready(events_at) {
                self.tell_population(now);
            }
            if sig_ready {
                self.handle_signals(now);
            }
            if control_ready {
                self.handle_control(&mut buf, now);
            }
            if self.machine.next_deadline().is_some_and(|d| d <= now.mono) {
                self.handle(Input::Timer, now);
            }
        }
    }

    /// Hands one input to the machine and carries out what it says.
    fn handle(&mut self, input: Input, now: Now) {
        self.machine.handle(input, now);
        self.perform();
    }

    fn handle_signals(&mut self, now: Now) {
        while let Some(s) = self.signals.pending() {
            if s == signals::CHLD {
                let mut reaped = false;
                while let Some((pid, status)) = process::reap() {
                    reaped = true;
                    self.handle(Input::Reaped { pid, status }, now);
                }
                if reaped {
                    self.tell_population(now);
                }
            } else {
                self.handle(Input::Signal(s), now);
            }
        }
    }

    /// Tells the machine whether any process of the service is left: the cgroup's `populated`,
    /// or, without one, whether we (a subreaper) still have a child.
    fn tell_population(&mut self, now: Now) {
        let populated = match &self.cgroup {
            Some(c) => c
                .events
                .populated()
                .unwrap_or_else(|_| children::any_left()),
            None => children::any_left(),
        };
        self.handle(Input::Population(populated), now);
    }

    /// Reads the dead-man file's modification time and tells the machine.
    fn tell_deadman(&mut self, now: Now) {
        let Some(d) = &self.deadman else { return };
        let mtime = filewatch::modified(&d.path).map(|(s, n)| Tai64n::from_unix(s, n));
        self.handle(Input::Deadman(mtime), now);
    }

    /// Watches the file the `deadman` knob names (`text`: the knob's content, if any).
    fn watch_deadman(&mut self, text: &Option<String>) {
        let Some((path, _)) = text.as_deref().and_then(layout::parse_deadman) else {
            self.deadman = None;
            return;
        };
        if self
            .deadman
            .as_ref()
            .is_some_and(|d| d.path == Path::new(path))
        {
            return;
        }
        match FileWatch::new(Path::new(path)) {
            Ok(watch) => {
                self.deadman = Some(Deadman {
                    path: path.into(),
                    watch,
                })
            }
            Err(e) => {
                diag::warn(
                    PROG,
                    &format!(
                        "unable to watch {path} for {}/{}: {}",
                        self.name,
                        layout::KNOB_DEADMAN,
                        diag::reason(&e)
                    ),
                );
                self.deadman = None;
            }
        }
    }

    fn handle_control(&mut self, buf: &mut [u8], now: Now) {
        match fifo::read_some(&self.control, buf) {
            Ok(n) => {
                for &b in buf.get(..n).unwrap_or_default() {
                    self.handle(Input::Control(b), now);
                }
                self.handle(Input::EndOfWrite, now);
            }
            Err(e) => diag::warn(
                PROG,
                &format!(
                    "unable to read {}/supervise/control: {}",
                    self.name,
                    diag::reason(&e)
                ),
            ),
        }
    }

    /// Carries out every pending action and writes the status if it changed.
    fn perform(&mut self) {
        while let Some(action) = self.machine.next_action() {
            let now = self.clock.now();
            match action {
                Action::SpawnRun => self.spawn_run(now),
                Action::ProbeFinish => {
                    let exists = Path::new(layout::FINISH).exists();
                    self.machine.handle(Input::FinishExists(exists), now);
                }
                Action::SpawnFinish { code, signal } => self.spawn_finish(code, signal, now),
                Action::WriteStatus { force } => {
                    let written = self.write_status(force);
                    self.machine.handle(Input::Written(written), now);
                }
                Action::Signal { pid, sig, group } => {
                    // ESRCH: it died a moment ago; its SIGCHLD is on the way. An adopted run is
                    // signalled through its pidfd: its pid is not ours to keep from reuse.
                    let _ = match &self.adopted {
                        Some((p, fd)) if *p == pid && !group => process::pidfd_signal(fd, sig),
                        _ => process::signal(pid, sig, group),
                    };
                }
                Action::SignalService { sig } => self.signal_service(sig),
                Action::FindDaemon => {
                    let daemon = oldest_child();
                    self.machine.handle(Input::Daemon(daemon), now);
                }
                Action::History(event) => self.append_history(event, now),
                Action::Exit => {
                    self.exiting = true;
                    if let Some(c) = &self.cgroup {
                        // Down means empty: the cgroup can go (EBUSY if not, then it stays).
                        let _ = c.cg.remove();
                    }
                }
            }
        }
    }

    /// Sends `sig` to every process of the service: through its cgroup (KILL with
    /// `cgroup.kill`), or without one to the main process's group and every descendant.
    fn signal_service(&mut self, sig: i32) {
        let main = self.machine.status().pid;
        if let Some(c) = &self.cgroup {
            let done = if sig == sig::KILL {
                c.cg.kill()
            } else {
                c.cg.signal_all(sig)
            };
            if done.is_ok() {
                return;
            }
        }
        if main != 0 && self.machine.config().own_group && self.adopted.is_none() {
            let _ = process::signal(main, sig, true);
        }
        for pid in process::descendants(process::own_pid()) {
            let _ = process::signal(pid, sig, false);
        }
    }

    fn spawn_run(&mut self, now: Now) {
        let present = self.knobs_present(now);
        let (cfg, warnings) = layout::read_config(present, |k| read_knob(&self.name, k));
        for w in warnings {
            diag::warn(
                PROG,
                &format!("unable to parse {}/{}: {}", self.name, w.knob, w.reason),
            );
        }
        self.machine.set_config(cfg);
        let deadman = present
            .has(layout::KNOB_DEADMAN)
            .then(|| read_knob(&self.name, layout::KNOB_DEADMAN))
            .flatten();
        self.watch_deadman(&deadman);
        self.apply_limits(present);
        if let Some(ok) = &self._ok {
            access::apply(
                &self.state,
                &self.name,
                present,
                &[self.control.as_fd(), ok.as_fd()],
            );
        }
        self.ready_pipe = None;
        self.notify_status.clear();
        self.notify_refusal_told = false;
        let notify_fd = cfg.notification_fd;
        // A notification-fd that is there but cannot be used (said above) is a channel that
        // failed.
        let mut channel_failed = notify_fd.is_none()
            && present.has(layout::KNOB_NOTIFICATION_FD)
            && files::exists(Path::new(layout::KNOB_NOTIFICATION_FD)).unwrap_or(true);
        let pipe = match notify_fd.map(|_| notify::pipe()).transpose() {
            Ok(p) => p,
            Err(e) => {
                diag::warn(
                    PROG,
                    &format!(
                        "unable to create pipe for {}: {}",
                        self.name,
                        diag::reason(&e)
                    ),
                );
                channel_failed = true;
                None
            }
        };
        channel_failed |= !self.prepare_notify_socket(present);
        // A readiness knob that cannot work must not leave the service "not ready" for ever
        // (svwait -U would hang): with no working channel at all, ready means up.
        let no_channel = channel_failed && pipe.is_none() && self.notify.is_none();
        let mut opts = spawn::Spawn {
            setsid: cfg.own_group,
            ..spawn::Spawn::default()
        };
        if let (Some((_, w)), Some(n)) = (&pipe, notify_fd) {
            opts.fds.push((w, n));
        }
        if let Some(n) = &self.notify {
            opts.env.push((OsStr::new("NOTIFY_SOCKET"), n.address()));
        }
        opts.cgroup_procs = self.cgroup.as_ref().map(|c| c.procs.as_fd());
        match spawn::spawn(OsStr::new("./run"), &[], opts) {
            Ok(pid) => {
                self.ready_pipe = pipe.map(|(r, _)| r);
                self.run_identity = process::start_ticks(pid).map(|t| (pid, t));
                self.machine.handle(Input::RunSpawned(pid), now);
                if no_channel {
                    self.machine.handle(Input::Ready, now);
                }
            }
            Err(e) => {
                // daemontools compat: the same words its child prints when exec fails.
                diag::line(&format!(
                    "{PROG}: fatal: unable to start {}/run: {}",
                    self.name,
                    diag::reason(&e)
                ));
                self.machine.handle(Input::RunSpawnFailed, now);
            }
        }
    }

    /// Takes over a `./run` that a killed predecessor left running, if `supervise/info` names a
    /// process that still exists with the same start time in this boot. Never trusts a bare pid.
    fn adopt_leftover(&mut self, now: Now) {
        let Some(old) = self
            .state
            .read(state::INFO)
            .and_then(|b| Info::parse(&String::from_utf8_lossy(&b)))
        else {
            return;
        };
        let Some((pid, ticks)) = old.leftover_run(&self.boot_id) else {
            return;
        };
        if process::start_ticks(pid) != Some(ticks) {
            return;
        }
        let fd = match process::pidfd_open(pid) {
            Ok(fd) => fd,
            Err(e) => {
                // Cannot watch it safely: stop it (identity checked a moment ago) before a new
                // one may start.
                diag::warn(
                    PROG,
                    &format!(
                        "unable to adopt {}/run (pid {pid}): {}; killing it",
                        self.name,
                        diag::reason(&e)
                    ),
                );
                let _ = process::signal(pid, sig::KILL, false);
                return;
            }
        };
        // The old status has the stamp and flags as the old supervise last wrote them.
        let old_status = self
            .state
            .read(state::STATUS)
            .and_then(|b| vigil_core::status::Status::unpack(&b).ok());
        self.machine
            .adopt(old.adopted(pid, old_status.as_ref(), now.wall), now);
        self.adopted = Some((pid, fd));
        self.run_identity = Some((pid, ticks));
        diag::warn(
            PROG,
            &format!(
                "{}: adopted running ./run (pid {pid}) left by a previous supervise",
                self.name
            ),
        );
    }

    /// Appends one record to `supervise/history` (one write, O_APPEND), cutting the file to its
    /// newest half when it has grown past its bound.
    fn append_history(&mut self, event: Event, now: Now) {
        history::Entry {
            time: now.wall,
            event,
        }
        .render_into(&mut self.text_buf);
        if let Err(e) = self.state.append_bounded(
            &mut self.history,
            state::HISTORY,
            state::HISTORY_NEW,
            self.text_buf.as_bytes(),
            history::MAX_BYTES,
            history::newest_half,
        ) {
            diag::warn(
                PROG,
                &format!(
                    "unable to write {}/supervise/history: {}",
                    self.name,
                    diag::reason(&e)
                ),
            );
        }
    }

    /// Starts `./finish` (it was there a moment ago).
    fn spawn_finish(&mut self, code: i32, signal: i32, now: Now) {
        let (code, signal) = (code.to_string(), signal.to_string());
        let opts = spawn::Spawn {
            setsid: self.machine.config().own_group,
            cgroup_procs: self.cgroup.as_ref().map(|c| c.procs.as_fd()),
            ..spawn::Spawn::default()
        };
        match spawn::spawn(
            OsStr::new("./finish"),
            &[OsStr::new(&code), OsStr::new(&signal)],
            opts,
        ) {
            Ok(pid) => self.machine.handle(Input::FinishSpawned(pid), now),
            Err(e) => {
                diag::warn(
                    PROG,
                    &format!("unable to start {}/finish: {}", self.name, diag::reason(&e)),
                );
                self.machine.handle(Input::FinishSpawnFailed, now);
            }
        }
    }

    /// Applies `memory-max` and `pids-max` to the service's cgroup before a start. A limit that
    /// cannot apply (no cgroup2, controller not enabled) or a bad value is said once, naming the
    /// service and file.
    fn apply_limits(&mut self, present: KnobSet) {
        let knobs = [
            (
                layout::KNOB_MEMORY_MAX,
                vigil_core::cgroup::Limit::MemoryMax,
                true,
            ),
            (
                layout::KNOB_PIDS_MAX,
                vigil_core::cgroup::Limit::PidsMax,
                false,
            ),
        ];
        for (i, (knob, limit, suffixes)) in knobs.into_iter().enumerate() {
            if !present.has(knob) {
                continue;
            }
            let Some(text) = read_knob(&self.name, knob) else {
                continue;
            };
            let why = match (layout::parse_cgroup_limit(&text, suffixes), &self.cgroup) {
                (None, _) => "not a number or max".to_owned(),
                (Some(_), None) => "no cgroup2 hierarchy to apply it in".to_owned(),
                (Some(v), Some(c)) => match c.cg.set_limit(limit, v.as_bytes()) {
                    Ok(()) => continue,
                    Err(e) if cgroup::is_not_available(&e) => {
                        format!("the {} controller is not available", limit.controller())
                    }
                    Err(e) => diag::reason(&e).to_string(),
                },
            };
            if let Some(told) = self.limit_told.get_mut(i)
                && !*told
            {
                *told = true;
                diag::warn(
                    PROG,
                    &format!("unable to apply {}/{knob}: {why}", self.name),
                );
            }
        }
    }

    /// The knobs the service directory holds: the last listing while the directory's change
    /// time says no name was added or removed since, else a new listing.
    fn knobs_present(&mut self, now: Now) -> KnobSet {
        let Ok(ctime) = files::change_time(".") else {
            return listed_knobs();
        };
        if let Some(knobs) = self.listing.reuse(ctime) {
            return knobs;
        }
        let knobs = listed_knobs();
        let now_secs = i64::try_from(now.wall.unix_secs()).unwrap_or(i64::MAX);
        self.listing.keep(ctime, now_secs, knobs);
        knobs
    }

    /// Opens the sd_notify socket the first time a run needs it (`notify-socket` exists), and
    /// closes it when the file is gone. False when it is wanted and could not be opened.
    fn prepare_notify_socket(&mut self, present: KnobSet) -> bool {
        if !present.has(layout::KNOB_NOTIFY_SOCKET)
            || !files::exists(Path::new(layout::KNOB_NOTIFY_SOCKET)).unwrap_or(false)
        {
            self.notify = None;
            return true;
        }
        if self.notify.is_some() {
            return true;
        }
        match NotifySocket::bind() {
            Ok(sock) => {
                self.notify = Some(sock);
                true
            }
            Err(e) => {
                diag::warn(
                    PROG,
                    &format!(
                        "unable to create sd_notify socket for {}: {}",
                        self.name,
                        diag::reason(&e)
                    ),
                );
                false
            }
        }
    }

    /// s6 readiness: a newline on the notification pipe. End of file closes it.
    fn handle_ready_pipe(&mut self, buf: &mut [u8], now: Now) {
        let Some(pipe) = &self.ready_pipe else { return };
        match read_ready(pipe, buf) {
            // End of file: the run closed its end without saying it is ready.
            None => self.ready_pipe = None,
            Some(0) => {}
            Some(n) => {
                // Readiness is the first newline; with a watchdog, every write after it (any
                // byte) is a ping, so the pipe stays open.
                let watchdog = self.machine.config().watchdog.is_some();
                if self.machine.record().ready.is_some() {
                    self.machine.handle(Input::Ping, now);
                } else if buf.get(..n).is_some_and(|b| b.contains(&b'\n')) {
                    self.machine.handle(Input::Ready, now);
                    self.machine.handle(Input::Ping, now);
                    if !watchdog {
                        self.ready_pipe = None;
                    }
                }
            }
        }
        self.perform();
    }

    /// systemd's sd_notify: `READY=1` marks readiness, `STATUS=…` is kept for svstat; other
    /// assignments (`STOPPING=1`, `MAINPID=…`) are accepted and ignored (supervise tracks its own
    /// child only).
    fn handle_notify(&mut self, buf: &mut [u8], now: Now) {
        let Some(sock) = &self.notify else { return };
        let mut ready = false;
        let mut ping = false;
        let mut status = None;
        let main_pid = self.machine.status().pid;
        let main = (main_pid != 0).then(|| Main {
            pid: main_pid,
            uid: process::real_uid(main_pid),
        });
        let own_uid = process::own_uid();
        // A bounded batch: a flood from outside cannot keep the loop from its other fds.
        for _ in 0..NOTIFY_BATCH {
            let Some(datagram) = sock.receive(buf) else {
                break;
            };
            let (msg, sender) = (&datagram.text, datagram.sender);
            let believed = sender
                .is_some_and(|s| readiness::trusted(s, own_uid, main, process::parent_and_session));
            if !believed {
                if !self.notify_refusal_told {
                    self.notify_refusal_told = true;
                    let (pid, uid) = sender.map_or((0, 0), |s| (s.pid, s.uid));
                    diag::warn(
                        PROG,
                        &format!(
                            "ignoring sd_notify message for {} from pid {pid} uid {uid}: not the service",
                            self.name
                        ),
                    );
                }
                continue;
            }
            let notice = readiness::Notice::parse(msg);
            ready |= notice.ready;
            ping |= notice.alive;
            if let Some(text) = notice.status {
                status = Some(text.to_owned());
            }
        }
        if let Some(text) = status {
            self.notify_status = text;
            let written = self.write_status(false);
            self.machine.handle(Input::Written(written), now);
        }
        if ready {
            self.machine.handle(Input::Ready, now);
        }
        if ping || ready {
            self.machine.handle(Input::Ping, now);
        }
        self.perform();
    }

    /// Writes `info`, then `status`, as the machine shows them (each only when it changed,
    /// unless `force`); false when a write failed (said once until one succeeds again).
    fn write_status(&mut self, force: bool) -> bool {
        if force {
            self.last_written = None;
            self.last_info.clear();
        }
        let status = self.machine.status();
        let mut info = InfoView::from_parts(
            &status,
            self.machine.record(),
            self.machine.finish_pid(),
            &self.notify_status,
        );
        info.deadman = self.machine.config().deadman.map(|_| {
            if self.machine.record().deadman_stale {
                "stale"
            } else {
                "fresh"
            }
        });
        if let Some(c) = &self.cgroup {
            info.cgroup = c.cg.path().to_str().unwrap_or_default();
        }
        if let Some((pid, ticks)) = self.run_identity.filter(|(p, _)| *p == info.pid) {
            debug_assert_eq!(pid, info.pid);
            info.run_start = Some(ticks);
            info.boot_id = &self.boot_id;
        }
        info.render_into(&mut self.text_buf);
        // info first: a reader woken by the rename of status finds an info at least as new.
        if self.text_buf != self.last_info {
            match self.state.replace(
                state::INFO_NEW,
                state::INFO,
                self.text_buf.as_bytes(),
                false,
            ) {
                Ok(()) => std::mem::swap(&mut self.last_info, &mut self.text_buf),
                Err(e) => return self.write_failed("info", &e),
            }
        }
        let bytes = self.machine.status().pack();
        if self.last_written != Some(bytes) {
            match self
                .state
                .replace(state::STATUS_NEW, state::STATUS, &bytes, false)
            {
                Ok(()) => self.last_written = Some(bytes),
                Err(e) => return self.write_failed("status", &e),
            }
        }
        self.write_failing = false;
        true
    }

    /// A status file could not be written: said once (the machine tries again every second
    /// until it can).
    fn write_failed(&mut self, file: &str, e: &std::io::Error) -> bool {
        if !self.write_failing {
            self.write_failing = true;
            diag::warn(
                PROG,
                &format!(
                    "unable to write {}/supervise/{file}: {}, retrying",
                    self.name,
                    diag::reason(e)
                ),
            );
        }
        false
    }
}

/// A non-blocking read: `None` at end of file or on error, `Some(0)` when nothing is there yet.
fn read_ready(fd: &OwnedFd, buf: &mut [u8]) -> Option<usize> {
    match fifo::read_some_or_eof(fd, buf) {
        Ok(Some(n)) => Some(n),
        Ok(None) | Err(_) => None,
    }
}

/// Reads one knob file of the service directory `dir` (we are chdir'ed into it). A knob that
/// exists but is refused (not a regular file, a link to another user's file) is warned about,
/// naming the service and the file, and counts as missing.
fn read_knob(dir: &str, knob: &str) -> Option<String> {
    match knob_value(knob) {
        Ok(v) => v,
        Err(e) => {
            diag::warn(
                PROG,
                &format!("unable to read {dir}/{knob}: {}", diag::reason(&e)),
            );
            None
        }
    }
}

/// The knobs one listing of the service directory (our working directory) shows; all of them
/// when it cannot be listed (each is then tried, as before).
fn listed_knobs() -> KnobSet {
    let mut present = KnobSet::default();
    match files::list_names(".", |name| present.add_name(name)) {
        Ok(()) => present,
        Err(_) => KnobSet::ALL,
    }
}

/// One knob's value, or why it is refused. Presence-only knobs are never read.
fn knob_value(knob: &str) -> std::io::Result<Option<String>> {
    if layout::PRESENCE_KNOBS.contains(&knob) {
        return Ok(files::exists(Path::new(knob))?.then(String::new));
    }
    if knob == layout::KNOB_DEADMAN {
        return files::read_knob_lines(knob);
    }
    files::read_knob(knob)
}

/// Makes sure `supervise/NAME` is a FIFO of ours, replacing whatever else is there (a regular
/// file as `control` would make every poll return at once and swallow commands).
fn make_fifo(state: &StateDir, dir: &str, name: &str) -> std::io::Result<()> {
    if let FifoFound::Replaced(what) = state.fifo(name, 0o600)? {
        diag::warn(
            PROG,
            &format!("replaced {dir}/supervise/{name}: it was {what}, not a FIFO of supervise"),
        );
    }
    Ok(())
}

/// The service's cgroup, with `cgroup.events` watched and `cgroup.procs` open for each spawn.
struct Cgroup {
    cg: ServiceCgroup,
    events: Events,
    procs: OwnedFd,
}

impl Cgroup {
    /// The service's cgroup under vigil's sub-tree, or `None` (said once) when there is no
    /// writable cgroup2 hierarchy or it cannot be set up: processes are then tracked as
    /// supervise's descendants (it is a subreaper).
    fn set_up(name: &str) -> Option<Cgroup> {
        let fail = |what: &str| {
            diag::warn(
                PROG,
                &format!("{name}: {what}: tracking its processes as descendants of supervise"),
            );
        };
        let Some(h) = Hierarchy::find() else {
            if std::env::var_os(vigil_core::cgroup::ROOT_ENV).is_none_or(|v| v != "off") {
                fail("no writable cgroup2 hierarchy");
            }
            return None;
        };
        let set_up = || -> std::io::Result<Cgroup> {
            let cg = ServiceCgroup::open_or_create(&h, &cgroup::service_name(Path::new("."))?)?;
            let events = cg.watch_events()?;
            let procs = cg.open_procs()?;
            Ok(Cgroup { cg, events, procs })
        };
        match set_up() {
            Ok(c) => Some(c),
            Err(e) => {
                fail(&format!(
                    "unable to create its cgroup: {}",
                    diag::reason(&e)
                ));
                None
            }
        }
    }
}

/// The file the `deadman` knob names, and the watch on its directory.
struct Deadman {
    path: std::path::PathBuf,
    watch: FileWatch,
}

impl Deadman {
    fn file_name(&self) -> &OsStr {
        self.path.file_name().unwrap_or_default()
    }
}

/// The child of supervise that started first: the daemon a `./run` that exited 0 left behind
/// (re-parented to us, a subreaper).
fn oldest_child() -> Option<u32> {
    process::children_of(process::own_pid())
        .into_iter()
        .filter_map(|pid| process::start_ticks(pid).map(|t| (t, pid)))
        .min()
        .map(|(_, pid)| pid)
}
