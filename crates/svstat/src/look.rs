//! Looking at one directory: the status, `info`, the knob files and the history, as `svstat` reports them.

use super::*;

/// The report when `supervise/ok` cannot be opened. No `ok` at all: no supervise ever ran
/// here. Access denied and the like: unknown.
fn no_ok(mut r: Report, e: &std::io::Error) -> Report {
    if service::is_missing(e) {
        r.supervised = Some(false);
    }
    r.error = Some(diag::unable_text("open", &layout::OK, e));
    r
}

/// The newest `n` intact records of `DIR/supervise/history`, oldest first.
pub(crate) fn last_history(dir: &OsString, n: usize) -> Vec<String> {
    let path = std::path::Path::new(dir).join(layout::HISTORY);
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all = vigil_core::history::parse_all(&text);
    let skip = all.len().saturating_sub(n);
    all.iter().skip(skip).map(|e| e.describe()).collect()
}

/// [`gather`] for daemontools' one line, in six calls a directory rather than eight: the files
/// are named by paths under `dir` instead of through a descriptor of it (daemontools: `chdir`
/// and back), which holds as long as every answer is unambiguous. What is not (no `down` and no
/// `supervise/ok`: is `dir` itself missing?), and any unusual failure, is looked at again by
/// [`gather`], so every message stays exactly what daemontools says.
pub(crate) fn gather_quick(dir: &OsString, name: String, path: &mut String) -> Report {
    let Some(d) = dir.to_str() else {
        return gather(dir, name, false);
    };
    let here = files::cwd();
    fn at<'a>(path: &'a mut String, d: &str, rel: &str) -> &'a str {
        path.clear();
        path.push_str(d);
        path.push('/');
        path.push_str(rel);
        path
    }
    let Ok(down_file) = fifo::exists_at(here, at(path, d, layout::DOWN)) else {
        return gather(dir, name, false);
    };
    let mut r = Report {
        name,
        down_file,
        ..Report::default()
    };
    match service::liveness_at(here, at(path, d, layout::OK)) {
        Ok(Liveness::Running(_)) => r.supervised = Some(true),
        Ok(Liveness::NotRunning) => {
            r.supervised = Some(false);
            return r;
        }
        // `dir` itself may be what is missing.
        Err(e) if service::is_missing(&e) && !down_file => return gather(dir, r.name, false),
        Err(e) => return no_ok(r, &e),
    }
    match service::read_status_in(here, at(path, d, layout::STATUS)) {
        Ok(st) => r.status = Some(st),
        Err(e) => r.error = Some(e.text(&layout::STATUS)),
    }
    r
}

/// Reads what there is to know about one directory; `rich` also reads `info` and the
/// readiness knobs.
pub(crate) fn gather(dir: &OsString, name: String, rich: bool) -> Report {
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
        Err(e) => return no_ok(r, &e),
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
pub(crate) fn read_knobs(
    dir: &OsString,
    base: &std::os::fd::OwnedFd,
) -> Vec<(&'static str, Option<String>)> {
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
