//! svstat — print the status of services.
//!
//! Usage: `svstat dir ...`
//!
//! One line per directory on stdout, in daemontools' words:
//! `dir: up (pid N) S seconds[, normally down][, paused][, want down]` or
//! `dir: down S seconds[, normally up][, want up]`, or what went wrong
//! (`dir: supervise not running`, `dir: unable to open supervise/ok: file does not exist`, ...).
//! Works against vigil's, daemontools' and runit's supervisors (it reads the first 18 bytes of a
//! status of 18 or more) and refuses a status whose bytes no supervisor writes
//! (`unable to read supervise/status: bad format`).
//!
//! Exit code: 0.
#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;

use vigil_core::status::Status;
use vigil_sys::{clock, diag, fifo};

const ENXIO: i32 = 6;

fn main() -> ExitCode {
    let dirs: Vec<OsString> = std::env::args_os().skip(1).collect();
    let mut out = Vec::with_capacity(dirs.len() * 48);
    for dir in &dirs {
        let name = String::from_utf8_lossy(dir.as_bytes());
        out.extend_from_slice(line(dir, &name).as_bytes());
        out.push(b'\n');
    }
    let _ = std::io::stdout().lock().write_all(&out);
    ExitCode::SUCCESS
}

/// The line for one directory, without the newline.
fn line(dir: &OsString, name: &str) -> String {
    let fail = |what: &str, e: &std::io::Error| format!("{name}: {what}: {}", diag::reason(e));
    let base = match fifo::open_dir(dir.as_ref()) {
        Ok(fd) => fd,
        Err(e) => return fail("unable to chdir", &e),
    };
    let down = match fifo::exists_at(&base, "down") {
        Ok(d) => d,
        Err(e) => return fail("unable to stat down", &e),
    };
    match fifo::open_write_at(&base, "supervise/ok") {
        Ok(_) => {}
        Err(e) if e.raw_os_error() == Some(ENXIO) => {
            return format!("{name}: supervise not running");
        }
        Err(e) => return fail("unable to open supervise/ok", &e),
    }
    let mut buf = [0u8; 64];
    let fd = match fifo::open_file_at(&base, "supervise/status") {
        Ok(fd) => fd,
        Err(e) => return fail("unable to open supervise/status", &e),
    };
    let n = match fifo::read_full(&fd, &mut buf) {
        Ok(n) => n,
        Err(e) => return fail("unable to read supervise/status", &e),
    };
    match Status::unpack(buf.get(..n).unwrap_or_default()) {
        Ok(st) => vigil_core::svstat::render(name, &st, clock::tai_now(), down),
        Err(_) => format!("{name}: unable to read supervise/status: bad format"),
    }
}
