//! multilog SCRIPT… — read lines on stdin, select them, stamp them, append them to
//! automatically rotated log directories, and never lose one.
//!
//! Script (one action per argument, see multilog(8)): `t` / `T` stamps (first), `+pat`,
//! `-pat`, `e`, `1` (stdout), `=file`, `sSIZE`, `nNUM`, `aSECONDS` (max age of `current`),
//! `!processor`, `./dir` or `/dir`.
//!
//! No loss: when stdin is a pipe, input is looked at with `tee(2)` and taken out of the pipe
//! only once its output is written to every `current`; a journal record in each log
//! directory's `lock` file lets a restarted logger undo a half-written batch instead of
//! writing it twice. Write errors pause and retry; nothing is dropped.
//!
//! Signals: SIGALRM rotates every nonempty `current` now; SIGTERM finishes the line being
//! written and exits 0, leaving the rest in the pipe.
//!
//! Exit codes: 0 at end of input or after SIGTERM; 100 for a bad script; 111 when a log
//! directory cannot be set up (another logger holds its lock, no permission, …).
//!
//! This file is wiring: every decision is `vigil_core::multilog::Engine`'s, every disk
//! operation `vigil_sys::logdir`'s; the loop performs effects and sleeps in poll until the
//! engine's next deadline.
#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;

use vigil_core::multilog::{Config, Effect, Engine, Script, Stamp, TimeZone, fnv1a, recover};
use vigil_sys::clock::Clock;
use vigil_sys::diag::{self, EXIT_TEMP, EXIT_USAGE};
use vigil_sys::logdir::{Failure, Logdir, StatusFile};
use vigil_sys::logio::{self, Input, LogSignal, LogSignals};

const PROG: &str = "multilog";

/// The program, called with its arguments after argv[0].
pub fn main(args: Vec<OsString>) -> ExitCode {
    let args: Vec<Vec<u8>> = args.into_iter().map(|a| a.as_bytes().to_vec()).collect();
    let script = match Script::parse(&args) {
        Ok(s) => s,
        Err(e) => {
            let text = format!("bad action {}: {}", e.arg, e.reason);
            return diag::fatal(PROG, &text, EXIT_USAGE);
        }
    };
    for w in &script.warnings {
        diag::warn(PROG, w);
    }
    let signals = match LogSignals::install() {
        Ok(s) => s,
        Err(e) => {
            return diag::unable_fatal(PROG, "set up", &"signals", &e, EXIT_TEMP);
        }
    };
    let mut input = Input::stdin();
    let mut dirs = Vec::with_capacity(script.dirs.len());
    for spec in &script.dirs {
        match Logdir::open(&spec.path, spec.processor.clone(), spec.num) {
            Ok(d) => dirs.push(d),
            Err(f) => return diag::fatal(PROG, &f.to_string(), EXIT_TEMP),
        }
    }
    let mut status_files = Vec::with_capacity(script.status_files.len());
    for name in &script.status_files {
        match StatusFile::open(name) {
            Ok(f) => status_files.push(f),
            Err(e) => {
                let name = String::from_utf8_lossy(name);
                return diag::unable_fatal(PROG, "create", &name, &e, EXIT_TEMP);
            }
        }
    }
    if input.is_pipe()
        && let Err(f) = undo_half_written(&mut dirs, &mut input)
    {
        return diag::fatal(PROG, &f.to_string(), EXIT_TEMP);
    }
    let mut sizes = Vec::with_capacity(dirs.len());
    for d in &mut dirs {
        match d.start_current() {
            Ok(n) => sizes.push(n),
            Err(f) => return diag::fatal(PROG, &f.to_string(), EXIT_TEMP),
        }
    }
    let zone = if script.stamps.contains(&Stamp::Iso) {
        logio::load_local_zone()
    } else {
        TimeZone::utc()
    };
    let clock = Clock::new();
    let now = clock.now();
    let seed = format!(
        "{}.{}.{}",
        now.wall.secs,
        now.wall.nanos,
        std::process::id()
    );
    let cfg = Config {
        script,
        zone,
        pipe: input.is_pipe(),
        batch_seed: fnv1a(seed.as_bytes()),
    };
    let mut log = Logger {
        engine: Engine::new(cfg, &sizes, now),
        dirs,
        status_files,
        input,
        signals,
        clock,
    };
    log.run()
}

/// Before anything is written: a batch a killed logger journalled as being written but never
/// took out of the pipe is still there; cut its partial output off `current`, so it is written
/// exactly once, now.
///
/// daemontools compat: none (daemontools has no journal). A `current` that cannot be cut back
/// is fatal (111): the supervisor starts the logger again.
fn undo_half_written(dirs: &mut [Logdir], input: &mut Input) -> Result<(), Failure> {
    let journals: Vec<_> = dirs.iter().map(Logdir::read_journal).collect();
    let cuts = recover(&journals, || input.head());
    for (d, cut) in dirs.iter_mut().zip(cuts) {
        if let Some(len) = cut {
            d.truncate_current(len)?;
        }
        d.clear_journal();
    }
    Ok(())
}

/// `multilog: warning: unable to WHAT, pausing: REASON`
fn warn_pausing(f: &Failure) {
    diag::warn(
        PROG,
        &format!("unable to {}, pausing: {}", f.what, f.reason),
    );
}

struct Logger {
    engine: Engine,
    dirs: Vec<Logdir>,
    status_files: Vec<StatusFile>,
    input: Input,
    signals: LogSignals,
    clock: Clock,
}

/// What performing one effect came to.
enum Done {
    Next,
    Exit,
}

impl Logger {
    fn run(&mut self) -> ExitCode {
        vigil_sys::event::run(self)
    }

    /// One wait of the loop: the signalfd, and the input while the engine wants some.
    fn wait_once(&mut self, timeout: Option<std::time::Duration>) {
        let watch = self.engine.wants_input().then(|| self.input.fd());
        match logio::wait(watch, &self.signals, timeout) {
            Ok(ready) => {
                if ready.signal {
                    self.take_signals();
                }
                if ready.input && self.engine.wants_input() {
                    self.read(ready.hangup);
                }
            }
            Err(e) => {
                diag::warn(
                    PROG,
                    &format!("unable to poll, pausing: {}", diag::reason(&e)),
                );
                let now = self.clock.now();
                self.engine.input_failed(now);
                // Without a working poll, wait out the pause on no descriptor at all.
                let pause = self
                    .engine
                    .next_deadline()
                    .map(|d| d.saturating_sub(now.mono));
                let _ = vigil_sys::poll::wait(&[], &mut [], pause);
            }
        }
    }

    /// SIGALRM before SIGTERM, whatever their order: a rotation asked for is done before exit.
    fn take_signals(&mut self) {
        let got = self.signals.drain();
        let now = self.clock.now();
        if got.contains(&LogSignal::Alarm) {
            self.engine.alarm(now);
        }
        if got.contains(&LogSignal::Term) {
            self.engine.terminate(now);
        }
    }

    fn read(&mut self, hangup: bool) {
        match self.input.read(hangup) {
            Ok(got) => self.engine.feed(got.bytes, got.end, self.clock.now()),
            Err(e) => {
                let text = format!("unable to read input, pausing: {}", diag::reason(&e));
                diag::warn(PROG, &text);
                self.engine.input_failed(self.clock.now());
            }
        }
    }

    fn perform(&mut self, effect: Effect) -> Done {
        let retry = match &effect {
            Effect::Alert(line) => {
                let _ = logio::write_fd(logio::stderr_fd(), line);
                None
            }
            Effect::Status { file, record } => {
                if let Some(f) = self.status_files.get(*file) {
                    let _ = f.write(record);
                }
                None
            }
            Effect::Journal { dir, record } => self
                .dirs
                .get_mut(*dir)
                .and_then(|d| d.write_journal(record).err())
                .map(|f| (f, effect.clone())),
            Effect::Append { dir, bytes } => match self.dirs.get_mut(*dir).map(|d| d.append(bytes))
            {
                Some(Err((n, f))) => {
                    let rest = bytes.get(n..).unwrap_or_default().to_vec();
                    let dir = *dir;
                    Some((f, Effect::Append { dir, bytes: rest }))
                }
                _ => None,
            },
            Effect::Stdout(bytes) => {
                if let Err(e) = logio::write_fd(logio::stdout_fd(), bytes) {
                    diag::unable(PROG, "write", &"to stdout", &e);
                }
                None
            }
            Effect::Consume(n) => match self.input.consume(*n) {
                Ok(()) => None,
                Err((k, e)) => {
                    let f = Failure {
                        what: "read input".to_owned(),
                        reason: diag::reason(&e).to_owned(),
                    };
                    Some((f, Effect::Consume(n.saturating_sub(k))))
                }
            },
            Effect::Rotate { dir } => match self.dirs.get_mut(*dir).map(Logdir::rotate) {
                Some(Err(f)) => Some((f, effect.clone())),
                Some(Ok(Some(warning))) => {
                    diag::warn(PROG, &warning.to_string());
                    None
                }
                _ => None,
            },
            Effect::Look => {
                self.read(false);
                None
            }
            Effect::Close { dir } => self
                .dirs
                .get_mut(*dir)
                .and_then(|d| d.close().err())
                .map(|f| (f, effect.clone())),
            Effect::Exit => return Done::Exit,
        };
        match (retry, effect) {
            (Some((failure, again)), _) => {
                warn_pausing(&failure);
                self.engine.failed(again, self.clock.now());
            }
            (None, Effect::Append { bytes, .. } | Effect::Stdout(bytes)) => {
                self.engine.recycle(bytes);
            }
            _ => {}
        }
        Done::Next
    }
}

impl vigil_sys::event::Daemon for Logger {
    fn act(&mut self) -> Option<ExitCode> {
        while let Some(effect) = self.engine.next_effect(self.clock.now()) {
            if let Done::Exit = self.perform(effect) {
                return Some(ExitCode::SUCCESS);
            }
        }
        None
    }

    fn deadline(&self) -> Option<std::time::Duration> {
        self.engine.next_deadline()
    }

    fn mono(&self) -> std::time::Duration {
        self.clock.now().mono
    }

    fn wait(&mut self, timeout: Option<std::time::Duration>) {
        self.wait_once(timeout);
    }

    fn timer(&mut self) {
        self.engine.timer(self.clock.now());
    }
}
