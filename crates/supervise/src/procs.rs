//! The service's processes: starting `./run` and `./finish`, telling the machine whether any
//! process of the service is left, signalling all of them, and the service's cgroup.

use super::*;

impl Supervisor {
    /// Tells the machine whether any process of the service is left: the cgroup's `populated`,
    /// or, without one, whether we (a subreaper) still have a child.
    pub(crate) fn tell_population(&mut self, now: Now) {
        let populated = match &self.cgroup {
            Some(c) => c
                .events
                .populated()
                .unwrap_or_else(|_| children::any_left()),
            None => children::any_left(),
        };
        self.handle(Input::Population(populated), now);
    }

    /// Sends `sig` to every process of the service: through its cgroup (KILL with
    /// `cgroup.kill`), or without one to the main process's group and every descendant.
    pub(crate) fn signal_service(&mut self, sig: i32) {
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

    pub(crate) fn spawn_run(&mut self, now: Now) {
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
                diag::unable(PROG, "create pipe for", &self.name, &e);
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
        opts.cgroup_dir = self.cgroup.as_ref().map(|c| c.cg.dir_fd());
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

    /// Starts `./finish` (it was there a moment ago).
    pub(crate) fn spawn_finish(&mut self, code: i32, signal: i32, now: Now) {
        let (code, signal) = (code.to_string(), signal.to_string());
        let opts = spawn::Spawn {
            setsid: self.machine.config().own_group,
            cgroup_procs: self.cgroup.as_ref().map(|c| c.procs.as_fd()),
            cgroup_dir: self.cgroup.as_ref().map(|c| c.cg.dir_fd()),
            ..spawn::Spawn::default()
        };
        match spawn::spawn(
            OsStr::new("./finish"),
            &[OsStr::new(&code), OsStr::new(&signal)],
            opts,
        ) {
            Ok(pid) => self.machine.handle(Input::FinishSpawned(pid), now),
            Err(e) => {
                diag::unable(
                    PROG,
                    "start",
                    &format_args!("{}/{}", self.name, layout::FINISH),
                    &e,
                );
                self.machine.handle(Input::FinishSpawnFailed, now);
            }
        }
    }
}

/// The service's cgroup, with `cgroup.events` watched and `cgroup.procs` open for each spawn.
pub(crate) struct Cgroup {
    pub(crate) cg: ServiceCgroup,
    pub(crate) events: Events,
    pub(crate) procs: OwnedFd,
}

impl Cgroup {
    /// The service's cgroup under vigil's sub-tree, or `None` (said once) when there is no
    /// writable cgroup2 hierarchy or it cannot be set up: processes are then tracked as
    /// supervise's descendants (it is a subreaper).
    /// `root` is the value `VIGIL_CGROUP_ROOT` had (taken out of the environment: the service
    /// does not see it).
    pub(crate) fn set_up(name: &str, root: Option<&std::ffi::OsStr>) -> Option<Cgroup> {
        let fail = |what: &str| {
            diag::warn(
                PROG,
                &format!("{name}: {what}: tracking its processes as descendants of supervise"),
            );
        };
        let Some(h) = Hierarchy::choose(root) else {
            if root.is_none_or(|v| v != vigil_core::cgroup::ROOT_OFF) {
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

/// The child of supervise that started first: the daemon a `./run` that exited 0 left behind
/// (re-parented to us, a subreaper).
pub(crate) fn oldest_child() -> Option<u32> {
    process::children_of(process::own_pid())
        .into_iter()
        .filter_map(|pid| process::start_ticks(pid).map(|t| (t, pid)))
        .min()
        .map(|(_, pid)| pid)
}
