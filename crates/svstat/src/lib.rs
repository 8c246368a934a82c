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
    for dir in dirs {
        let name = String::from_utf8_lossy(dir.as_bytes()).into_owned();
        let r = gather(dir, name, format != Format::Daemontools);
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

/// The newest `n` intact records of `DIR/supervise/history`, oldest first.
fn last_history(dir: &OsString, n: usize) -> Vec<String> {
    let path = std::path::Path::new(dir).join(layout::HISTORY);
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all = vigil_core::history::parse_all(&text);
    let skip = all.len().saturating_sub(n);
    all.iter().skip(skip).map(|e| e.describe()).collect()
}

/// Reads what there is to know about one directory; `rich` also reads `info` and the
/// readiness knobs.
fn gather(dir: &OsString, name: String, rich: bool) -> Report {
    let mut r = Report {
        name,
        ..Report::default()
    };
    let base = match fifo::open_dir(dir.as_ref()) {
        Ok(fd) => fd,
        Err(e) => {
            // A directory that does not exist has no supervise; any other failure leaves
            // it unknown.
            if service::is_missing(&e) {
                r.supervised = Some(false);
            }
            r.error = Some(diag::bare_text("chdir", &e));
            return r;
        }
    };
    r.down_file = match fifo::exists_at(&base, layout::DOWN) {
        Ok(d) => d,
        Err(e) => {
            r.error = Some(diag::unable_text("stat", &layout::DOWN, &e));
            return r;
        }
    };
    match service::liveness(&base) {
        Ok(Liveness::Running(_)) => r.supervised = Some(true),
        Ok(Liveness::NotRunning) => {
            r.supervised = Some(false);
            return r;
        }
        Err(e) => {
            // No `ok` at all: no supervise ever ran here. Access denied and the like: unknown.
            if service::is_missing(&e) {
                r.supervised = Some(false);
            }
            r.error = Some(diag::unable_text("open", &layout::OK, &e));
            return r;
        }
    }
    match service::read_status(&base) {
        Ok(st) => r.status = Some(st),
        Err(e) => {
            r.error = Some(e.text(&layout::STATUS));
            return r;
        }
    }
    if rich {
        let knob = |k| fifo::exists_at(&base, k).unwrap_or(false);
        r.readiness = knob(layout::KNOB_NOTIFICATION_FD) || knob(layout::KNOB_NOTIFY_SOCKET);
        r.info = service::read_info(&base);
        r.knobs = Some(read_knobs(dir, &base));
        if let Some(path) = r
            .info
            .as_ref()
            .map(|i| i.cgroup.as_str())
            .filter(|p| !p.is_empty())
        {
            let (processes, memory) = vigil_sys::cgroup::usage(std::path::Path::new(path));
            r.processes = processes;
            r.memory_bytes = memory;
        }
    }
    r
}

/// The knob files present in `dir`, each with its value: the trimmed first line, read as
/// supervise reads it (never another user's file through a link), `None` when unreadable;
/// presence-only knobs are not read.
fn read_knobs(dir: &OsString, base: &std::os::fd::OwnedFd) -> Vec<(&'static str, Option<String>)> {
    layout::KNOBS
        .iter()
        .filter(|k| fifo::exists_at(base, k).unwrap_or(false))
        .map(|&k| {
            if layout::PRESENCE_KNOBS.contains(&k) {
                return (k, Some(String::new()));
            }
            let path = std::path::Path::new(dir).join(k);
            let value = path
                .to_str()
                .and_then(|p| files::read_knob(p).ok().flatten());
            (k, value)
        })
        .collect()
}
