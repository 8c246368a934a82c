//! svstat — print the status of services.
//!
//! Usage: `svstat [-l | --json] dir ...`
//!
//! One line per directory on stdout, in daemontools' words:
//! `dir: up (pid N) S seconds[, normally down][, paused][, want down]` or
//! `dir: down S seconds[, normally up][, want up]`, or what went wrong
//! (`dir: supervise not running`, `dir: unable to open supervise/ok: file does not exist`, ...).
//! Works against vigil's, daemontools' and runit's supervisors (it reads the first 18 bytes of a
//! status of 18 or more) and refuses a status whose bytes no supervisor writes
//! (`unable to read supervise/status: bad format`).
//!
//! Options (vigil; recognised only before the first directory, since daemontools' svstat takes
//! every argument as a directory):
//! - `-l`: after each line whose supervisor writes `supervise/info`, a second line of two
//!   spaces and the rich status: `ready S seconds` or `not ready`, `started S seconds ago`,
//!   `last exit code N` / `last exit signal NAME` / `last start failed`, `starts N`,
//!   `quick deaths N`, `restart delay N ms`, `finish running (pid N)`, `failed`,
//!   `status TEXT`, then `knob NAME=VALUE` for each knob file present (`knob NAME` for
//!   `no-setsid` and `notify-socket`, `knob NAME unreadable`) — each only when it applies,
//!   comma separated.
//! - `--json`: one JSON object per directory per line instead; fields in [`report`].
//! - `-H N`: the last N records of `supervise/history` (starts and exits of `./run`), each on a
//!   line of its own after the directory's line, indented by two spaces, with its TAI64N label
//!   first (pipe through `tai64nlocal` for local time); with `--json`, as a `history` array of
//!   those strings.
//!
//! Exit code: 0.
#![forbid(unsafe_code)]

mod look;

use look::{gather, gather_quick, last_history};

mod report;

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;

use report::Report;
use vigil_core::layout;
use vigil_sys::service::{self, Liveness};
use vigil_sys::{clock, diag, fifo, files};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Daemontools,
    Long,
    Json,
}

/// The program, called with its arguments after argv[0].
pub fn main(args: Vec<OsString>) -> ExitCode {
    let mut format = Format::Daemontools;
    let mut history: Option<usize> = None;
    let mut first = 0;
    while let Some(a) = args.get(first) {
        match a.as_bytes() {
            b"-l" if format != Format::Json => format = Format::Long,
            b"-l" => {}
            b"--json" => format = Format::Json,
            b"-H" => {
                let n = args
                    .get(first + 1)
                    .and_then(|v| v.to_str())
                    .and_then(|v| v.parse().ok());
                let Some(n) = n else {
                    return diag::usage("svstat", "svstat [-l | --json] [-H n] dir ...");
                };
                history = Some(n);
                first += 1;
            }
            _ => break,
        }
        first += 1;
    }
    let dirs = args.get(first..).unwrap_or_default();
    let mut out = Vec::with_capacity(dirs.len() * 48);
    // The paths of one directory's files, built in one buffer reused for all.
    let mut path = String::new();
    for dir in dirs {
        let name = String::from_utf8_lossy(dir.as_bytes()).into_owned();
        let r = match format {
            Format::Daemontools => gather_quick(dir, name, &mut path),
            _ => gather(dir, name, true),
        };
        let now = clock::tai_now();
        let text = match format {
            Format::Daemontools => r.line(now),
            Format::Long => match r.details(now) {
                Some(more) => format!("{}\n{more}", r.line(now)),
                None => r.line(now),
            },
            Format::Json => r.json(now),
        };
        let text = match history.map(|n| last_history(dir, n)) {
            None => text,
            Some(entries) if format == Format::Json => {
                let mut items = String::new();
                for (i, e) in entries.iter().enumerate() {
                    if i > 0 {
                        items.push(',');
                    }
                    report::escape_into(&mut items, e);
                }
                match text.strip_suffix('}') {
                    Some(obj) => format!("{obj},\"history\":[{items}]}}"),
                    None => text,
                }
            }
            Some(entries) => entries.iter().fold(text, |acc, e| format!("{acc}\n  {e}")),
        };
        out.extend_from_slice(text.as_bytes());
        out.push(b'\n');
    }
    let _ = std::io::stdout().lock().write_all(&out);
    ExitCode::SUCCESS
}
