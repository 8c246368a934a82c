//! The work of one `sv` run: look at each directory, send the command, wait, report in
//! runit's words. Decisions (what a command means, when a wait is over, the status line) are
//! in [`vigil_core::sv`].

use super::*;

/// One directory on the command line.
pub(crate) struct Service {
    name: String,
    path: PathBuf,
    base: OwnedFd,
    /// The record seen when `./check` last failed, and when to run it again.
    checked: Option<(Record, Instant, Duration)>,
}

/// What reading `supervise/status` gave.
pub(crate) enum Got {
    Record(Record),
    /// No supervisor (ENXIO on `supervise/ok`): runit's `runsv not running` line, and whether
    /// it counts as a failure.
    Absent(String, bool),
    /// A warning line (counts as a failure).
    Broken(String),
}

pub(crate) struct Sv {
    pub(crate) action: Action,
    pub(crate) verbose: bool,
    pub(crate) start: Tai64n,
    pub(crate) deadline: Instant,
    pub(crate) failures: u32,
    pub(crate) lsb: bool,
    /// LSB `status` exit code, once known.
    pub(crate) lsb_status: Option<u8>,
}

impl Sv {
    pub(crate) fn exit_code(&self) -> u8 {
        if !self.lsb {
            return sv::exit_code(self.failures);
        }
        match self.lsb_status {
            Some(code) => code,
            None if self.failures > 0 => LSB_FAILED,
            None => 0,
        }
    }

    pub(crate) fn first_act(&self) -> u8 {
        self.action.acts.first().copied().unwrap_or(0)
    }

    pub(crate) fn run_all(&mut self, svdir: &Path, names: &[&[u8]]) -> Result<(), String> {
        let mut pending = Vec::new();
        for raw in names {
            let name = String::from_utf8_lossy(raw).into_owned();
            let path = if sv::is_path(raw) {
                PathBuf::from(OsStr::from_bytes(raw))
            } else {
                svdir.join(OsStr::from_bytes(raw))
            };
            let opened = if raw.is_empty() {
                Err(service::missing())
            } else {
                fifo::open_dir(&path)
            };
            let base = match opened {
                Ok(fd) => fd,
                Err(e) => {
                    self.fail_chdir(&name, &e);
                    continue;
                }
            };
            let svc = Service {
                name,
                path,
                base,
                checked: None,
            };
            if self.action.status {
                self.print_status(&svc);
            } else if self.control(&svc) {
                pending.push(svc);
            }
        }
        if self.action.wait || (self.verbose && !self.action.status) {
            self.wait_all(pending)?;
        }
        Ok(())
    }

    pub(crate) fn fail_chdir(&mut self, name: &str, e: &io::Error) {
        self.failures += 1;
        say(&format!(
            "fail: {name}: unable to change to service directory: {}",
            diag::reason(e)
        ));
    }

    /// runit's reading of the status: `supervise/ok` first (is a supervisor there?), then 20
    /// bytes of `supervise/status`.
    pub(crate) fn get(&self, base: impl AsFd, name: &str) -> Got {
        match service::liveness(&base) {
            Ok(Liveness::Running(_)) => {}
            Ok(Liveness::NotRunning) => return self.absent(name),
            Err(e) => {
                return Got::Broken(format!(
                    "warning: {name}: unable to open {}: {}",
                    layout::OK,
                    diag::reason(&e)
                ));
            }
        }
        // As runit: the first 20 bytes; a shorter file is bad format.
        match service::read_status_record(&base) {
            Ok(r) => Got::Record(r),
            Err(e) => Got::Broken(format!("warning: {name}: {}", e.text(&layout::STATUS))),
        }
    }

    pub(crate) fn absent(&self, name: &str) -> Got {
        let exit = self.first_act() == b'x';
        let word = if exit { "ok" } else { "fail" };
        Got::Absent(format!("{word}: {name}: runsv not running"), !exit)
    }

    /// Prints a line from [`Sv::get`] that is not a record and counts the failure.
    pub(crate) fn report(&mut self, got: &Got, prefix: &str) {
        match got {
            Got::Record(_) => {}
            Got::Absent(line, failed) => {
                self.failures += u32::from(*failed);
                say(&format!("{prefix}{line}"));
            }
            Got::Broken(line) => {
                self.failures += 1;
                say(&format!("{prefix}{line}"));
            }
        }
    }

    pub(crate) fn print_status(&mut self, svc: &Service) {
        let now = tai_now();
        let rec = match self.get(&svc.base, &svc.name) {
            Got::Record(r) => r,
            other => {
                self.report(&other, "");
                if self.lsb && matches!(other, Got::Broken(_)) {
                    self.lsb_status = Some(LSB_UNKNOWN);
                }
                return;
            }
        };
        let mut text = sv::format_status(&svc.name, &rec, has_down(&svc.base), now);
        let mut last_pid = rec.pid;
        match fifo::open_dir(&svc.path.join(layout::LOG)) {
            Err(e) if service::is_missing(&e) => {}
            Err(e) => {
                self.failures += 1;
                text.push_str(&format!(
                    "; warning: {}/log: unable to change directory: {}",
                    svc.name,
                    diag::reason(&e)
                ));
            }
            Ok(log) => {
                let log_name = format!("{}/{}", svc.name, layout::LOG);
                match self.get(&log, &log_name) {
                    Got::Record(l) => {
                        text.push_str("; ");
                        text.push_str(&sv::format_status("log", &l, has_down(&log), now));
                        last_pid = l.pid;
                    }
                    Got::Absent(line, failed) => {
                        self.failures += u32::from(failed);
                        text.push_str("; ");
                        text.push_str(&line);
                    }
                    Got::Broken(line) => {
                        // runit compat: runit then prints the service's own record under the
                        // name `log`; kept, as scripts may parse it.
                        self.failures += 1;
                        text.push_str("; ");
                        text.push_str(&line);
                        text.push('\n');
                        text.push_str(&sv::format_status("log", &rec, has_down(&log), now));
                    }
                }
            }
        }
        say(&text);
        if self.lsb {
            self.lsb_status = Some(if last_pid != 0 { 0 } else { LSB_DOWN });
        }
    }

    /// Sends the command; true when the directory is to be waited for.
    pub(crate) fn control(&mut self, svc: &Service) -> bool {
        let first = self.first_act();
        if first == b'C' {
            // Nothing to send: the wait reads (and reports) everything.
            return true;
        }
        if first == b'u' && !supervised(&svc.base) {
            // runit compat: runit fails at once here; a supervisor about to start (svscan
            // has just seen the directory) is waited for, up to the timeout.
            // Whatever the outcome, the reading below reports what is missing in runit's words.
            let _ = wait_supervised(&svc.path, self.deadline);
        }
        let got = self.get(&svc.base, &svc.name);
        if !matches!(got, Got::Record(_)) {
            self.report(&got, "");
            return false;
        }
        let fd = match service::open_control(&svc.base) {
            Ok(Liveness::Running(fd)) => fd,
            Ok(Liveness::NotRunning) => {
                self.report(&self.absent(&svc.name), "");
                return false;
            }
            Err(e) => {
                let got = Got::Broken(format!(
                    "warning: {}: unable to open {}: {}",
                    svc.name,
                    layout::CONTROL,
                    diag::reason(&e)
                ));
                self.report(&got, "");
                return false;
            }
        };
        if let Err(e) = fifo::write_all(&fd, &self.action.acts) {
            self.report(
                &Got::Broken(format!(
                    "warning: {}: unable to write to {}: {}",
                    svc.name,
                    layout::CONTROL,
                    diag::reason(&e)
                )),
                "",
            );
            return false;
        }
        true
    }

    pub(crate) fn wait_all(&mut self, mut pending: Vec<Service>) -> Result<(), String> {
        if self.first_act() == b'C' {
            for svc in &pending {
                if !supervised(&svc.base) {
                    // runit compat: as for start, a supervisor about to start is waited for.
                    let _ = wait_supervised(&svc.path, self.deadline);
                }
            }
        }
        let mut waiter = Waiter::new().map_err(|f| f.message())?;
        let mut unwatched = false;
        for svc in &pending {
            unwatched |= waiter.add(&svc.path).is_err();
        }
        loop {
            let mut next: Option<Instant> = None;
            let mut i = 0;
            while let Some(svc) = pending.get_mut(i) {
                let (done, retry) = self.judge_one(svc);
                if done {
                    pending.remove(i);
                } else {
                    next = earliest(next, retry);
                    i += 1;
                }
            }
            if pending.is_empty() {
                return Ok(());
            }
            let now = Instant::now();
            if now >= self.deadline {
                for svc in &pending {
                    self.time_out(svc);
                }
                return Ok(());
            }
            if unwatched {
                next = earliest(next, Some(now + RUNIT_INTERVAL));
            }
            let until = earliest(next, Some(self.deadline));
            waiter.wait_change(until).map_err(|f| f.message())?;
        }
    }

    /// Looks at one directory: whether its wait is over (printed), else when `./check` is due.
    pub(crate) fn judge_one(&mut self, svc: &mut Service) -> (bool, Option<Instant>) {
        let rec = match self.get(&svc.base, &svc.name) {
            Got::Record(r) => r,
            other => {
                self.report(&other, "");
                return (true, None);
            }
        };
        match sv::judge(&self.action.acts, &rec, self.start) {
            Verdict::Pending => return (false, None),
            Verdict::Done => {}
            Verdict::DoneIfChecked => {
                let now = Instant::now();
                let pause = match svc.checked {
                    Some((seen, due, _)) if seen == rec && now < due => return (false, Some(due)),
                    Some((_, _, pause)) => (pause * 2).min(RUNIT_INTERVAL),
                    None => CHECK_RETRY_FIRST,
                };
                if !run_check(&svc.path) {
                    let due = Instant::now() + pause;
                    svc.checked = Some((rec, due, pause));
                    return (false, Some(due));
                }
            }
        }
        let line = sv::format_status(&svc.name, &rec, has_down(&svc.base), tai_now());
        say(&format!("ok: {line}"));
        (true, None)
    }

    pub(crate) fn time_out(&mut self, svc: &Service) {
        let prefix = if self.action.kill {
            "kill: "
        } else {
            "timeout: "
        };
        match self.get(&svc.base, &svc.name) {
            Got::Record(r) => {
                self.failures += 1;
                let line = sv::format_status(&svc.name, &r, has_down(&svc.base), tai_now());
                say(&format!("{prefix}{line}"));
            }
            other => self.report(&other, prefix),
        }
        if self.action.kill
            && let Ok(Liveness::Running(fd)) = service::open_control(&svc.base)
        {
            let _ = fifo::write_all(&fd, b"k");
        }
    }
}

pub(crate) fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

/// One line on stdout, one write.
pub(crate) fn say(text: &str) {
    let mut line = String::with_capacity(text.len() + 1);
    line.push_str(text);
    line.push('\n');
    let _ = io::stdout().lock().write_all(line.as_bytes());
}

pub(crate) fn has_down(base: impl AsFd) -> bool {
    fifo::exists_at(base, layout::DOWN).unwrap_or(false)
}

/// A supervisor reads `supervise/ok`.
pub(crate) fn supervised(base: impl AsFd) -> bool {
    matches!(service::liveness(base), Ok(Liveness::Running(_)))
}

/// Runs `./check` in the service directory when there is one; true when it is absent or
/// exits 0. Its stdout goes to /dev/null so that only sv's own lines reach sv's stdout.
pub(crate) fn run_check(dir: &Path) -> bool {
    let script = dir.join(layout::CHECK);
    if !script.exists() {
        return true;
    }
    let Ok(abs) = std::path::absolute(&script) else {
        return false;
    };
    let null = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .map(OwnedFd::from)
        .ok();
    let opts = Spawn {
        stdout: null,
        cwd: Some(dir),
        arg0: Some(OsStr::new("./check")),
        ..Spawn::default()
    };
    match spawn(abs.as_os_str(), &[], opts) {
        Ok(pid) => process::wait_for(pid).is_ok_and(|status| status == 0),
        Err(_) => false,
    }
}
