//! `supervise/info`, `status` and `history`, and adopting the run a killed predecessor left.

use super::*;

impl Supervisor {
    /// Takes over a `./run` that a killed predecessor left running, if `supervise/info` names a
    /// process that still exists with the same start time in this boot. Never trusts a bare pid.
    pub(crate) fn adopt_leftover(&mut self, now: Now) {
        let old = vigil_sys::service::read_info_in(&self.state, state::INFO).unwrap_or_default();
        let recorded = old
            .leftover_run(&self.boot_id)
            .filter(|&(pid, ticks)| process::start_ticks(pid) == Some(ticks));
        // A predecessor killed between starting ./run and recording it left a run nothing
        // names; with a cgroup it is still there, the oldest process in it.
        let Some((pid, ticks)) = recorded.or_else(|| self.unrecorded_run()) else {
            return;
        };
        let fd = match vigil_sys::pidfd::open(pid) {
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
        let old_status = vigil_sys::service::read_status_in(&self.state, state::STATUS).ok();
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

    /// The oldest live process of the service's cgroup, with its start time, if there is one.
    fn unrecorded_run(&self) -> Option<(u32, u64)> {
        let c = self.cgroup.as_ref()?;
        c.cg.pids()
            .ok()?
            .into_iter()
            .filter_map(|pid| process::start_ticks(pid).map(|t| (t, pid)))
            .min()
            .map(|(t, pid)| (pid, t))
    }

    /// Appends one record to `supervise/history` (one write, O_APPEND), cutting the file to its
    /// newest half when it has grown past its bound.
    pub(crate) fn append_history(&mut self, event: Event, now: Now) {
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
            diag::unable(
                PROG,
                "write",
                &format_args!("{}/{}", self.name, layout::HISTORY),
                &e,
            );
        }
    }

    /// Writes `info`, then `status`, as the machine shows them (each only when it changed,
    /// unless `force`); false when a write failed (said once until one succeeds again).
    pub(crate) fn write_status(&mut self, force: bool) -> bool {
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
    pub(crate) fn write_failed(&mut self, file: &str, e: &std::io::Error) -> bool {
        if !self.write_failing {
            self.write_failing = true;
            diag::warn(
                PROG,
                &format!(
                    "unable to write {}/{}/{file}: {}, retrying",
                    self.name,
                    layout::SUPERVISE_DIR,
                    diag::reason(e)
                ),
            );
        }
        false
    }
}
