//! The knob files of the service directory: listing, reading (never another user's file
//! through a link), cgroup limits, and the dead-man file's watch.

use super::*;

impl Supervisor {
    /// Reads the dead-man file's modification time and tells the machine.
    pub(crate) fn tell_deadman(&mut self, now: Now) {
        let Some(d) = &self.deadman else { return };
        let mtime = filewatch::modified(&d.path).map(|(s, n)| Tai64n::from_unix(s, n));
        self.handle(Input::Deadman(mtime), now);
    }

    /// Watches the file the `deadman` knob names (`text`: the knob's content, if any).
    pub(crate) fn watch_deadman(&mut self, text: &Option<String>) {
        let Some((path, _)) = text.as_deref().and_then(layout::parse_deadman) else {
            self.deadman = None;
            return;
        };
        if self
            .deadman
            .as_ref()
            .is_some_and(|d| d.path == Path::new(path))
        {
            return;
        }
        match FileWatch::new(Path::new(path)) {
            Ok(watch) => {
                self.deadman = Some(Deadman {
                    path: path.into(),
                    watch,
                })
            }
            Err(e) => {
                diag::warn(
                    PROG,
                    &format!(
                        "unable to watch {path} for {}/{}: {}",
                        self.name,
                        layout::KNOB_DEADMAN,
                        diag::reason(&e)
                    ),
                );
                self.deadman = None;
            }
        }
    }

    /// Applies `memory-max` and `pids-max` to the service's cgroup before a start. A limit that
    /// cannot apply (no cgroup2, controller not enabled) or a bad value is said once, naming the
    /// service and file.
    pub(crate) fn apply_limits(&mut self, present: KnobSet) {
        let knobs = [
            (
                layout::KNOB_MEMORY_MAX,
                vigil_core::cgroup::Limit::MemoryMax,
                true,
            ),
            (
                layout::KNOB_PIDS_MAX,
                vigil_core::cgroup::Limit::PidsMax,
                false,
            ),
        ];
        for (i, (knob, limit, suffixes)) in knobs.into_iter().enumerate() {
            if !present.has(knob) {
                continue;
            }
            let Some(text) = read_knob(&self.name, knob) else {
                continue;
            };
            let why = match (layout::parse_cgroup_limit(&text, suffixes), &self.cgroup) {
                (None, _) => "not a number or max".to_owned(),
                (Some(_), None) => "no cgroup2 hierarchy to apply it in".to_owned(),
                (Some(v), Some(c)) => match c.cg.set_limit(limit, v.as_bytes()) {
                    Ok(()) => continue,
                    Err(e) if cgroup::is_not_available(&e) => {
                        format!("the {} controller is not available", limit.controller())
                    }
                    Err(e) => diag::reason(&e).to_string(),
                },
            };
            if let Some(told) = self.limit_told.get_mut(i)
                && !*told
            {
                *told = true;
                diag::warn(
                    PROG,
                    &format!("unable to apply {}/{knob}: {why}", self.name),
                );
            }
        }
    }

    /// The knobs the service directory holds: the last listing while the directory's change
    /// time says no name was added or removed since, else a new listing.
    pub(crate) fn knobs_present(&mut self, now: Now) -> KnobSet {
        if let Some(knobs) = self.listing.take_fresh() {
            return knobs;
        }
        let Ok(ctime) = files::change_time(".") else {
            return listed_knobs();
        };
        if let Some(knobs) = self.listing.reuse(ctime) {
            return knobs;
        }
        let knobs = listed_knobs();
        let now_secs = i64::try_from(now.wall.unix_secs()).unwrap_or(i64::MAX);
        self.listing.keep(ctime, now_secs, knobs);
        knobs
    }
}

/// Reads one knob file of the service directory `dir` (we are chdir'ed into it). A knob that
/// exists but is refused (not a regular file, a link to another user's file) is warned about,
/// naming the service and the file, and counts as missing.
pub(crate) fn read_knob(dir: &str, knob: &str) -> Option<String> {
    match knob_value(knob) {
        Ok(v) => v,
        Err(e) => {
            diag::unable(PROG, "read", &format_args!("{dir}/{knob}"), &e);
            None
        }
    }
}

/// The knobs one listing of the service directory (our working directory) shows; all of them
/// when it cannot be listed (each is then tried, as before).
pub(crate) fn listed_knobs() -> KnobSet {
    let mut present = KnobSet::default();
    match files::list_names(".", |name| present.add_name(name)) {
        Ok(()) => present,
        Err(_) => KnobSet::ALL,
    }
}

/// One knob's value, or why it is refused. Presence-only knobs are never read.
pub(crate) fn knob_value(knob: &str) -> std::io::Result<Option<String>> {
    if layout::PRESENCE_KNOBS.contains(&knob) {
        return Ok(files::exists(Path::new(knob))?.then(String::new));
    }
    if knob == layout::KNOB_DEADMAN {
        return files::read_knob_lines(knob);
    }
    files::read_knob(knob)
}

/// The file the `deadman` knob names, and the watch on its directory.
pub(crate) struct Deadman {
    pub(crate) path: std::path::PathBuf,
    pub(crate) watch: FileWatch,
}

impl Deadman {
    pub(crate) fn file_name(&self) -> &OsStr {
        self.path.file_name().unwrap_or_default()
    }
}
