//! svc — send commands to the supervise of each service directory, and optionally wait.
//!
//! Usage: `svc -udopchaitkxq12w+= [-W u|U|d|D [-T ms]] dir ...`
//!
//! Each distinct letter is written once, in order of first appearance, in one write per
//! directory: `svc -dx d` writes `dx`. Letters: u up, d down, o once, x exit, p pause,
//! c continue, h hup, a alarm, i interrupt, t term, k kill (daemontools); q quit, 1 usr1,
//! 2 usr2, w winch (daemontools-encore and runit); `+` makes the signal letters after it go to
//! the service's process group, `=` back to the pid (daemontools-encore).
//!
//! `-W g` (vigil): after writing, wait until every directory is up (`u`), up and ready (`U`),
//! down (`d`) or down with `./finish` done (`D`), as `svwait` does; `-T ms` bounds the wait
//! (default: no bound). The watch on `supervise/` and the status read that the wait starts from
//! come before the write, so nothing in between is missed; after a letter that ends the run
//! (`d t k K`) an up goal needs a run started after the command (`svc -t -W U` waits for the
//! restarted run to be ready). The rule is in `vigil_core::wait`. `-W` is uppercase because
//! `-w` already sends WINCH (encore).
//!
//! Exit codes without `-W`: 0 (also when a directory could not be controlled: a warning names
//! it); 100 for an unknown option. With `-W`: 0 all reached; 99 timed out; 102 a supervise is
//! not running or went away; 111 system error (the highest that applies).
#![forbid(unsafe_code)]

mod control;

use control::{open_control, write_commands};

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use vigil_core::control::{CommandBytes, SVC_LETTERS};
use vigil_core::getopt::{self, Opt, OptError};
use vigil_core::layout;
use vigil_core::wait::{Goal, Quorum};
use vigil_sys::service::{self, Liveness};
use vigil_sys::wait::{EXIT_GONE, Waiter};
use vigil_sys::{diag, fifo};

const PROG: &str = "svc";
/// daemontools' line, word for word, so scripts matching it keep working.
const USAGE: &str = "svc options: u up, d down, o once, x exit, p pause, c continue, h hup, a alarm, i interrupt, t term, k kill";
/// daemontools compat: our extensions get a line of their own after daemontools' line.
const USAGE_MORE: &str = "svc more options: q quit, 1 usr1, 2 usr2, w winch, + group, = pid, W wait (u U d D), T wait timeout ms";

fn usage(text: &str) -> ExitCode {
    diag::line(text);
    diag::line(USAGE);
    diag::line(USAGE_MORE);
    ExitCode::from(diag::EXIT_USAGE)
}

/// The program, called with its arguments after argv[0].
pub fn main(args: Vec<OsString>) -> ExitCode {
    let spec = format!("{}W:T:", String::from_utf8_lossy(SVC_LETTERS));
    let (opts, dirs) = match getopt::parse(&args, &spec) {
        Ok(v) => v,
        Err(OptError::Illegal(c)) => {
            return usage(&format!("{PROG}: illegal option -- {}", char::from(c)));
        }
        Err(OptError::MissingArg(c)) => {
            return usage(&format!(
                "{PROG}: option requires an argument -- {}",
                char::from(c)
            ));
        }
    };
    let mut bytes = CommandBytes::default();
    let mut goal = None;
    let mut limit = None;
    for o in &opts {
        match o {
            Opt::Flag(c) => {
                bytes.push(*c);
            }
            Opt::Arg(b'W', v) => match v.as_bytes() {
                [c] if Goal::from_letter(*c).is_some() => goal = Goal::from_letter(*c),
                _ => return usage(&format!("{PROG}: -W wants u, U, d or D")),
            },
            Opt::Arg(_, v) => match v.to_str().and_then(|s| s.parse::<u64>().ok()) {
                Some(ms) => limit = Some(Duration::from_millis(ms)),
                None => return usage(&format!("{PROG}: -T wants milliseconds")),
            },
        }
    }
    let Some(goal) = goal else {
        if limit.is_some() {
            return usage(&format!("{PROG}: -T needs -W"));
        }
        for dir in dirs {
            if let Some(fd) = open_control(dir) {
                write_commands(dir, &fd, bytes.as_bytes());
            }
        }
        return ExitCode::SUCCESS;
    };
    let deadline = limit.map(|l| Instant::now() + l);
    let mut waiter = match Waiter::new() {
        Ok(w) => w,
        Err(f) => return diag::fatal(PROG, &f.message(), f.code()),
    };
    let mut worst = 0u8;
    for dir in dirs {
        let Some(fd) = open_control(dir) else {
            worst = worst.max(EXIT_GONE);
            continue;
        };
        // The watch and the baseline come before the write: see vigil_core::wait.
        let added = waiter
            .add(Path::new(dir))
            .and_then(|i| waiter.set_baseline(i, bytes.as_bytes()));
        if let Err(f) = added {
            diag::warn(PROG, &f.message());
            worst = worst.max(f.code());
            continue;
        }
        if !write_commands(dir, &fd, bytes.as_bytes()) {
            waiter.forget_last();
            worst = worst.max(diag::EXIT_TEMP);
        }
    }
    if !waiter.is_empty()
        && let Err(f) = waiter.wait(goal, Quorum::All, deadline)
    {
        diag::warn(PROG, &f.message());
        worst = worst.max(f.code());
    }
    ExitCode::from(worst)
}
