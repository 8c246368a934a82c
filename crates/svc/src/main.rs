//! svc — send commands to the supervise of each service directory.
//!
//! Usage: `svc -udopchaitkxq12w+= dir ...`
//!
//! Each distinct letter is written once, in order of first appearance, in one write per
//! directory: `svc -dx d` writes `dx`. Letters: u up, d down, o once, x exit, p pause,
//! c continue, h hup, a alarm, i interrupt, t term, k kill (daemontools); q quit, 1 usr1,
//! 2 usr2, w winch (daemontools-encore and runit); `+` makes the signal letters after it go to
//! the service's process group, `=` back to the pid (daemontools-encore).
//!
//! Exit codes: 0 (also when a directory could not be controlled: a warning names it);
//! 100 for an unknown option.
#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;

use vigil_core::control::{CommandBytes, SVC_LETTERS};
use vigil_core::getopt::{self, Opt, OptError};
use vigil_sys::diag;
use vigil_sys::fifo;

const PROG: &str = "svc";
const USAGE: &str = "svc options: u up, d down, o once, x exit, p pause, c continue, h hup, a alarm, i interrupt, t term, k kill, q quit, 1 usr1, 2 usr2, w winch, + group, = pid";
const ENXIO: i32 = 6;

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let spec = String::from_utf8_lossy(SVC_LETTERS).into_owned();
    let (opts, dirs) = match getopt::parse(&args, &spec) {
        Ok(v) => v,
        Err(OptError::Illegal(c) | OptError::MissingArg(c)) => {
            diag::line(&format!("{PROG}: illegal option -- {}", char::from(c)));
            diag::line(USAGE);
            return ExitCode::from(diag::EXIT_USAGE);
        }
    };
    let mut bytes = CommandBytes::default();
    for o in &opts {
        if let Opt::Flag(c) = o {
            bytes.push(*c);
        }
    }
    for dir in dirs {
        control(dir, bytes.as_bytes());
    }
    ExitCode::SUCCESS
}

/// Writes the command bytes to one directory's supervise; warns on failure.
fn control(dir: &OsString, bytes: &[u8]) {
    let name = String::from_utf8_lossy(dir.as_bytes());
    let base = match fifo::open_dir(dir.as_ref()) {
        Ok(fd) => fd,
        Err(e) => {
            return diag::warn(
                PROG,
                &format!("unable to chdir to {name}: {}", diag::reason(&e)),
            );
        }
    };
    let fd = match fifo::open_write_at(&base, "supervise/control") {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(ENXIO) => {
            return diag::warn(
                PROG,
                &format!("unable to control {name}: supervise not running"),
            );
        }
        Err(e) => {
            return diag::warn(
                PROG,
                &format!("unable to control {name}: {}", diag::reason(&e)),
            );
        }
    };
    if bytes.is_empty() {
        return;
    }
    if let Err(e) = fifo::set_blocking(&fd).and_then(|()| fifo::write_all(&fd, bytes)) {
        diag::warn(
            PROG,
            &format!("error writing commands to {name}: {}", diag::reason(&e)),
        );
    }
}
