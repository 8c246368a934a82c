//! supervise DIR — run DIR/run and keep it running as told through DIR/supervise/control.
//!
//! Usage: `supervise dir` (exactly one argument).
//!
//! Files: creates `DIR/supervise/` (0700) with `lock`, `control` and `ok` FIFOs and the 20-byte
//! `status` (daemontools' 18 bytes + runit's 2). Reads the knob files described in
//! supervise(8) before every start of `./run`.
//!
//! Signals: SIGTERM and SIGINT mean `dx` (bring the service down, then exit); SIGHUP means `x`.
//!
//! Exit codes: 0 after `x` once the service is down; 100 usage; 111 when it cannot set up
//! (another supervise holds the lock, no directory, no FIFO).
#![forbid(unsafe_code)]

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::process::ExitCode;

use vigil_core::control::sig;
use vigil_core::history::{self, Event};
use vigil_core::info::{Info, InfoView};
use vigil_core::layout::{self, KnobListing, KnobSet, state};
use vigil_core::machine::{Action, Machine, Now};
use vigil_core::machine::{Adopted, ExitKind};
use vigil_core::readiness::{self, Main};
use vigil_sys::clock::Clock;
use vigil_sys::diag::{self, EXIT_TEMP};
use vigil_sys::notify::{self, NotifySocket};
use vigil_sys::signals::{self, Signals};
use vigil_sys::statedir::{FifoFound, StateDir};
use vigil_sys::{fifo, files, poll, process, spawn};

const PROG: &str = "supervise";
const SIGCHLD: i32 = 17;
/// Bytes reserved for the info text (about 240 with every field set, more only with a long
/// sd_notify STATUS=).
const INFO_CAPACITY: usize = 384;
/// The most sd_notify datagrams read at one wakeup.
const NOTIFY_BATCH: usize = 64;

/// The program, called with its arguments after argv[0].
pub fn main(args: Vec<OsString>) -> ExitCode {
    let [dir] = args.as_slice() else {
        return diag::usage(PROG, "supervise dir");
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
    /// When the running `./run` started (monotonic), for the history's run time.
    run_since: Option<std::time::Duration>,
    /// pidfd of an adopted `./run` (not our child: its end shows as the pidfd turning readable).
    adopted: Option<(u32, OwnedFd)>,
    /// A status or info write failed (disk full, ...): when to try again (monotonic).
    status_retry: Option<std::time::Duration>,
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
        let signals = Signals::block(&[SIGCHLD, sig::TERM, sig::INT, sig::HUP])
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
            run_since: None,
            adopted: None,
            status_retry: None,
        };
        s.adopt_leftover(now);
        s.write_status();
        let ok = make_fifo(&s.state, &s.name, state::OK)
            .and_then(|()| s.state.open_fifo(state::OK, false))
            .map_err(|e| fatal(format!("unable to read {}/supervise/ok", s.name), e))?;
        s._ok = Some(ok);
        Ok(s)
    }

    fn run(&mut self) -> ExitCode {
        let now = self.clock.now();
        self.machine.start(now);
        let mut buf = [0u8; 512];
        let mut ready = [false; 5];
        loop {
            self.perform();
            if self.exiting {
                return ExitCode::SUCCESS;
            }
            let now = self.clock.now();
            let deadline = match (self.machine.next_deadline(), self.status_retry) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let timeout = deadline.map(|d| d.saturating_sub(now.mono));
            // At most five descriptors, on the stack: the idle loop allocates nothing.
            let sig_fd = self.signals.as_fd();
            let mut fds = [sig_fd; 5];
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
            let fds = fds.get(..len).unwrap_or_default();
            if let Err(e) = poll::wait(fds, &mut ready, timeout) {
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
                self.child_ended(pid, None, now);
            }
            if sig_ready {
                self.handle_signals(now);
            }
            if control_ready {
                self.handle_control(&mut buf, now);
            }
            if self.machine.next_deadline().is_some_and(|d| d <= now.mono) {
                self.machine.timer(now);
            }
            if self.status_retry.is_some_and(|d| d <= now.mono) {
                self.write_status();
            }
        }
    }

    fn handle_signals(&mut self, now: Now) {
        while let Some(s) = self.signals.pending() {
            match s {
                SIGCHLD => {
                    while let Some((pid, status)) = process::reap() {
                        self.child_ended(pid, Some(status), now);
                    }
                }
                s if let Some(c) = vigil_core::control::signal_command(s) => self.commands(c, now),
                _ => {}
            }
        }
    }

    fn handle_control(&mut self, buf: &mut [u8], now: Now) {
        match fifo::read_some(&self.control, buf) {
            Ok(n) => self.commands(buf.get(..n).unwrap_or_default(), now),
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

    fn commands(&mut self, bytes: &[u8], now: Now) {
        for &b in bytes {
            self.machine.command(b, now);
            self.perform();
        }
        self.machine.end_of_commands();
    }

    /// Carries out every pending action and writes the status if it changed.
    fn perform(&mut self) {
        while let Some(action) = self.machine.next_action() {
            let now = self.clock.now();
            // Show the exit before ./finish can act on it: a finish script (or a client it
            // wakes) must find the service already down in status. (Before ./run no such
            // write is needed: the status written right after the spawn shows the new pid.)
            // Without a ./finish the machine goes down at once, and one write shows that.
            let finish =
                matches!(action, Action::SpawnFinish { .. }) && Path::new(layout::FINISH).exists();
            if finish && self.machine.take_dirty() {
                self.write_status();
            }
            match action {
                Action::SpawnRun => self.spawn_run(now),
                Action::SpawnFinish { .. } if !finish => self.machine.finish_spawn_failed(now),
                Action::SpawnFinish { code, signal } => self.spawn_finish(code, signal, now),
                Action::Signal { pid, sig, group } => {
                    // ESRCH: it died a moment ago; its SIGCHLD is on the way. An adopted run is
                    // signalled through its pidfd: its pid is not ours to keep from reuse.
                    let _ = match &self.adopted {
                        Some((p, fd)) if *p == pid && !group => process::pidfd_signal(fd, sig),
                        _ => process::signal(pid, sig, group),
                    };
                }
                Action::Exit => {
                    self.exiting = true;
                    // daemontools compat: the last status is written again on exit, so a
                    // deleted `supervise/status` comes back.
                    self.last_written = None;
                }
            }
        }
        if self.machine.take_dirty() || self.exiting {
            self.write_status();
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
        self.ready_pipe = None;
        self.notify_status.clear();
        self.notify_refusal_told = false;
        let (notify_fd, mut channel_failed) = self.notification_fd(present);
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
        match spawn::spawn(OsStr::new("./run"), &[], opts) {
            Ok(pid) => {
                self.ready_pipe = pipe.map(|(r, _)| r);
                self.run_identity = process::start_ticks(pid).map(|t| (pid, t));
                self.run_since = Some(now.mono);
                self.machine.run_spawned(pid, now);
                if no_channel {
                    self.machine.ready(now);
                }
                self.append_history(
                    Event::Start {
                        pid,
                        adopted: false,
                    },
                    now,
                );
            }
            Err(e) => {
                // daemontools compat: the same words its child prints when exec fails.
                diag::line(&format!(
                    "{PROG}: fatal: unable to start {}/run: {}",
                    self.name,
                    diag::reason(&e)
                ));
                self.machine.run_spawn_failed(now);
                let event = Event::Exit {
                    pid: 0,
                    how: Some(ExitKind::SpawnFailed),
                    ran_ms: 0,
                };
                self.append_history(event, now);
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
        let (pid, Some(ticks)) = (old.pid, old.run_start) else {
            return;
        };
        if pid == 0 || old.boot_id.is_empty() || old.boot_id != self.boot_id {
            return;
        }
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
        let adopted = Adopted {
            pid,
            stamp: old_status.map_or(now.wall, |s| s.stamp),
            want: old.want.unwrap_or(vigil_core::status::Want::Up),
            paused: old.paused,
            ready: old.ready,
            started: old.started,
            starts: old.starts,
        };
        self.machine.adopt(adopted, now);
        self.adopted = Some((pid, fd));
        self.run_identity = Some((pid, ticks));
        self.run_since = Some(now.mono);
        diag::warn(
            PROG,
            &format!(
                "{}: adopted running ./run (pid {pid}) left by a previous supervise",
                self.name
            ),
        );
        self.append_history(Event::Start { pid, adopted: true }, now);
    }

    /// A child ended: `status` is its wait status, `None` for an adopted run seen through its
    /// pidfd. Ends of `./run` go into the history.
    fn child_ended(&mut self, pid: u32, status: Option<i32>, now: Now) {
        let was_run = self.machine.status().pid == pid;
        match status {
            Some(ws) => self.machine.child_exited(pid, ws, now),
            None => self.machine.adopted_exited(pid, now),
        }
        if was_run {
            let ran_ms = self.run_since.take().map_or(0, |t| {
                u64::try_from(now.mono.saturating_sub(t).as_millis()).unwrap_or(u64::MAX)
            });
            self.run_identity = None;
            let how = self
                .machine
                .record()
                .last_exit_kind
                .filter(|k| *k != ExitKind::Unknown);
            self.append_history(Event::Exit { pid, how, ran_ms }, now);
        }
        self.perform();
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
            ..spawn::Spawn::default()
        };
        match spawn::spawn(
            OsStr::new("./finish"),
            &[OsStr::new(&code), OsStr::new(&signal)],
            opts,
        ) {
            Ok(pid) => self.machine.finish_spawned(pid, now),
            Err(e) => {
                diag::warn(
                    PROG,
                    &format!("unable to start {}/finish: {}", self.name, diag::reason(&e)),
                );
                self.machine.finish_spawn_failed(now);
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

    /// The fd number named by `notification-fd`, if any and sensible (3 to 1024), and whether
    /// the file exists but cannot be used (warned: the service counts as ready when up).
    fn notification_fd(&self, present: KnobSet) -> (Option<i32>, bool) {
        if !present.has(layout::KNOB_NOTIFICATION_FD) {
            return (None, false);
        }
        let Some(text) = read_knob(&self.name, layout::KNOB_NOTIFICATION_FD) else {
            // Missing, or refused (read_knob said why).
            let exists = files::exists(Path::new(layout::KNOB_NOTIFICATION_FD)).unwrap_or(true);
            return (None, exists);
        };
        match text.parse::<i32>() {
            Ok(n) if (3..=1024).contains(&n) => (Some(n), false),
            _ => {
                diag::warn(
                    PROG,
                    &format!(
                        "unable to parse {}/{}: want a number from 3 to 1024",
                        self.name,
                        layout::KNOB_NOTIFICATION_FD
                    ),
                );
                (None, true)
            }
        }
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
                if buf.get(..n).is_some_and(|b| b.contains(&b'\n')) {
                    self.machine.ready(now);
                    self.ready_pipe = None;
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
            for line in msg.lines() {
                match line.split_once('=') {
                    Some(("READY", "1")) => ready = true,
                    Some(("STATUS", text)) => status = Some(text.to_owned()),
                    _ => {}
                }
            }
        }
        if let Some(text) = status {
            self.notify_status = text;
            self.write_status();
        }
        if ready {
            self.machine.ready(now);
        }
        self.perform();
    }

    fn write_status(&mut self) {
        let status = self.machine.status();
        let mut info = InfoView::from_parts(
            &status,
            self.machine.record(),
            self.machine.finish_pid(),
            &self.notify_status,
        );
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
        if self.last_written == Some(bytes) {
            self.status_retry = None;
            return;
        }
        match self
            .state
            .replace(state::STATUS_NEW, state::STATUS, &bytes, false)
        {
            Ok(()) => {
                self.last_written = Some(bytes);
                self.status_retry = None;
            }
            Err(e) => self.write_failed("status", &e),
        }
    }

    /// A status file could not be written: warn once, and try again every second until it can
    /// (a status that lies is worse than a late one).
    fn write_failed(&mut self, file: &str, e: &std::io::Error) {
        if self.status_retry.is_none() {
            diag::warn(
                PROG,
                &format!(
                    "unable to write {}/supervise/{file}: {}, retrying",
                    self.name,
                    diag::reason(e)
                ),
            );
        }
        self.status_retry = Some(self.clock.now().mono + std::time::Duration::from_secs(1));
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
