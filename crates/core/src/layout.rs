//! Every on-disk name of a service directory, and how its knob files are read.
//!
//! A service directory holds `run` (required), optionally `finish`, `down`, `log/` and the
//! knob files below; supervise keeps its state in `supervise/`. Knobs are re-read before every
//! start of `./run`, so editing one takes effect at the next start without restarting supervise.

use std::time::Duration;

use crate::control::sig;
use crate::machine::{Backoff, Config, MaxRestarts, StopSequence};

pub const SUPERVISE_DIR: &str = "supervise";
pub const LOCK: &str = "supervise/lock";
pub const CONTROL: &str = "supervise/control";
pub const OK: &str = "supervise/ok";
pub const STATUS: &str = "supervise/status";
pub const STATUS_NEW: &str = "supervise/status.new";
/// Rich status, see [`crate::info`].
pub const INFO: &str = "supervise/info";
pub const INFO_NEW: &str = "supervise/info.new";
/// Start and exit records, see [`crate::history`].
pub const HISTORY: &str = "supervise/history";
pub const HISTORY_NEW: &str = "supervise/history.new";
/// Readiness: a file holding the fd number on which `./run` writes a newline when ready (s6).
pub const KNOB_NOTIFICATION_FD: &str = "notification-fd";
/// Readiness: if present, `./run` gets `NOTIFY_SOCKET` (systemd's sd_notify protocol).
pub const KNOB_NOTIFY_SOCKET: &str = "notify-socket";

/// The names inside `supervise/`, for supervise, which reaches them through a descriptor on that
/// directory (never through a path: see `vigil_sys::statedir`).
pub mod state {
    pub const LOCK: &str = "lock";
    pub const CONTROL: &str = "control";
    pub const OK: &str = "ok";
    pub const STATUS: &str = "status";
    pub const STATUS_NEW: &str = "status.new";
    pub const INFO: &str = "info";
    pub const INFO_NEW: &str = "info.new";
    pub const HISTORY: &str = "history";
    pub const HISTORY_NEW: &str = "history.new";
}

pub const RUN: &str = "run";
pub const FINISH: &str = "finish";
/// runit's readiness probe, run by `sv` while it waits for a service to be up.
pub const CHECK: &str = "check";
pub const DOWN: &str = "down";
pub const LOG: &str = "log";

/// Signal name or number sent by `svc -d` (default TERM).
pub const KNOB_DOWN_SIGNAL: &str = "down-signal";
/// Milliseconds after `svc -d` before SIGKILL to the process group (default: never).
pub const KNOB_TIMEOUT_KILL: &str = "timeout-kill";
/// Milliseconds `./finish` may run (default 5000, 0 = unlimited).
pub const KNOB_TIMEOUT_FINISH: &str = "timeout-finish";
/// If present, `./run` stays in supervise's process group (daemontools' behaviour).
pub const KNOB_NO_SETSID: &str = "no-setsid";
/// Milliseconds: the longest restart delay; its presence switches on the growing delay.
pub const KNOB_BACKOFF_MAX: &str = "backoff-max";
/// Milliseconds a run must last to reset the growing delay (default 10000).
pub const KNOB_BACKOFF_RESET: &str = "backoff-reset";
/// `COUNT [WINDOW_MS]`: give up after COUNT automatic restarts within the window (default 60000).
pub const KNOB_MAX_RESTARTS: &str = "max-restarts";

/// `SIG MS SIG MS … SIG`: how a run is stopped (replaces `down-signal` and `timeout-kill`).
pub const KNOB_STOP_SEQUENCE: &str = "stop-sequence";
/// Milliseconds within which a run must ping (sd_notify `WATCHDOG=1`, or a byte on its
/// notification-fd) or be stopped and restarted.
pub const KNOB_TIMEOUT_WATCHDOG: &str = "timeout-watchdog";
/// Two lines, `PATH` and `SECONDS`: the service is kept down while PATH is older than that.
pub const KNOB_DEADMAN: &str = "deadman";
/// cgroup2 `memory.max` for the service's cgroup (bytes, with K/M/G, or `max`).
pub const KNOB_MEMORY_MAX: &str = "memory-max";
/// cgroup2 `pids.max` for the service's cgroup (a number, or `max`).
pub const KNOB_PIDS_MAX: &str = "pids-max";
/// A group name or number: its members may control the service (`svc`, `svok`, `svwait`) and
/// read its state (`svstat`); without it only root may (daemontools' permissions).
pub const KNOB_CONTROL_GROUP: &str = "control-group";

/// Knobs whose presence is all that counts: their content is never read (a link to
/// `/dev/null` is as good as an empty file).
pub const PRESENCE_KNOBS: [&str; 2] = [KNOB_NO_SETSID, KNOB_NOTIFY_SOCKET];

/// Every knob file supervise reads before a start of `./run`.
pub const KNOBS: [&str; 15] = [
    KNOB_DOWN_SIGNAL,
    KNOB_TIMEOUT_KILL,
    KNOB_TIMEOUT_FINISH,
    KNOB_NO_SETSID,
    KNOB_BACKOFF_MAX,
    KNOB_BACKOFF_RESET,
    KNOB_MAX_RESTARTS,
    KNOB_NOTIFICATION_FD,
    KNOB_NOTIFY_SOCKET,
    KNOB_STOP_SEQUENCE,
    KNOB_TIMEOUT_WATCHDOG,
    KNOB_DEADMAN,
    KNOB_MEMORY_MAX,
    KNOB_PIDS_MAX,
    KNOB_CONTROL_GROUP,
];

/// Which knob names one listing of the service directory showed. A service usually has none,
/// so supervise lists the directory once per start and opens only the knobs that are there,
/// instead of probing every absent one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KnobSet(u16);

impl KnobSet {
    /// All knobs present (for when the directory cannot be listed: each is then tried).
    pub const ALL: KnobSet = KnobSet((1 << KNOBS.len()) - 1);

    /// Notes one directory entry's name; names that are no knob are ignored.
    pub fn add_name(&mut self, name: &[u8]) {
        if let Some(i) = KNOBS.iter().position(|k| k.as_bytes() == name) {
            self.0 |= 1 << i;
        }
    }

    /// Whether `knob` was listed (any other name: false).
    pub fn has(self, knob: &str) -> bool {
        KNOBS
            .iter()
            .position(|k| *k == knob)
            .is_some_and(|i| self.0 & (1 << i) != 0)
    }
}

/// A listing of the service directory kept for the next start, with the directory's change
/// time (seconds, nanoseconds) when it was listed. Adding, removing or renaming a knob changes
/// that time, so an unchanged time means the same names; the knobs' contents are read anew at
/// every start regardless.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KnobListing {
    key: Option<(i64, i64)>,
    knobs: KnobSet,
    /// A listing taken while supervise sets up, for the first start that follows at once
    /// ([`KnobListing::take_fresh`]); dropped after that start ([`KnobListing::forget_fresh`]).
    fresh: Option<KnobSet>,
}

impl KnobListing {
    /// Keeps `knobs`, listed a moment ago while setting up, for the start that follows in the
    /// same batch: the change time of a directory just given its `supervise/` is too recent
    /// to be trusted ([`KnobListing::keep`]), but nothing could have changed in between that a
    /// listing a moment later would have seen for sure.
    pub fn keep_fresh(&mut self, knobs: KnobSet) {
        self.fresh = Some(knobs);
    }

    /// The listing kept by [`KnobListing::keep_fresh`], once.
    pub fn take_fresh(&mut self) -> Option<KnobSet> {
        self.fresh.take()
    }

    /// The first batch is over: a start later lists anew.
    pub fn forget_fresh(&mut self) {
        self.fresh = None;
    }

    /// The kept listing, when the directory's change time is still `ctime`.
    pub fn reuse(&self, ctime: (i64, i64)) -> Option<KnobSet> {
        (self.key == Some(ctime)).then_some(self.knobs)
    }

    /// Keeps `knobs`, listed after the directory's change time was seen to be `ctime`, at
    /// wall-clock second `now_secs`. A change time within the last two seconds is not trusted
    /// to tell later changes apart (file systems stamp with a coarse clock): such a listing is
    /// used once, and the next start lists again.
    pub fn keep(&mut self, ctime: (i64, i64), now_secs: i64, knobs: KnobSet) {
        self.knobs = knobs;
        self.key = (ctime.0 < now_secs.saturating_sub(1)).then_some(ctime);
    }
}

const DEFAULT_TIMEOUT_FINISH_MS: u64 = 5000;
const DEFAULT_BACKOFF_RESET_MS: u64 = 10_000;
const DEFAULT_RESTART_WINDOW_MS: u64 = 60_000;

/// A knob file whose value could not be used. The value itself is never part of it: a knob
/// may be a link to a file its reader must not show (`down-signal -> /etc/shadow`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KnobWarning {
    /// The knob's file name.
    pub knob: &'static str,
    /// What was wrong, in words.
    pub reason: &'static str,
}

/// Builds the per-service [`Config`] from the knob files. `read(name)` returns the trimmed
/// content of `name`, or `None` when the file does not exist; it is called only for knobs in
/// `present` (a knob not listed counts as missing). Unreadable values are reported in the
/// returned warnings and the default is used.
pub fn read_config(
    present: KnobSet,
    read: impl Fn(&'static str) -> Option<String>,
) -> (Config, Vec<KnobWarning>) {
    let read = |knob: &'static str| if present.has(knob) { read(knob) } else { None };
    let mut cfg = Config::default();
    let mut warnings = Vec::new();
    let mut number = |knob: &'static str| -> Option<u64> {
        let text = read(knob)?;
        match text.split_whitespace().next().map(str::parse::<u64>) {
            Some(Ok(n)) => Some(n),
            _ => {
                warnings.push(KnobWarning {
                    knob,
                    reason: "not a number",
                });
                None
            }
        }
    };
    if let Some(ms) = number(KNOB_TIMEOUT_KILL) {
        cfg.timeout_kill = (ms > 0).then(|| Duration::from_millis(ms));
    }
    let finish_ms = number(KNOB_TIMEOUT_FINISH).unwrap_or(DEFAULT_TIMEOUT_FINISH_MS);
    cfg.timeout_finish = (finish_ms > 0).then(|| Duration::from_millis(finish_ms));
    if let Some(ms) = number(KNOB_TIMEOUT_WATCHDOG) {
        cfg.watchdog = (ms > 0).then(|| Duration::from_millis(ms));
    }
    if let Some(cap) = number(KNOB_BACKOFF_MAX) {
        let reset = number(KNOB_BACKOFF_RESET).unwrap_or(DEFAULT_BACKOFF_RESET_MS);
        cfg.backoff = Some(Backoff {
            cap: Duration::from_millis(cap),
            reset_after: Duration::from_millis(reset),
        });
    }
    if let Some(text) = read(KNOB_MAX_RESTARTS) {
        let mut words = text.split_whitespace().map(str::parse::<u64>);
        match (words.next(), words.next()) {
            (Some(Ok(count)), None) => {
                cfg.max_restarts = Some(restarts(count, DEFAULT_RESTART_WINDOW_MS))
            }
            (Some(Ok(count)), Some(Ok(window))) => cfg.max_restarts = Some(restarts(count, window)),
            _ => warnings.push(KnobWarning {
                knob: KNOB_MAX_RESTARTS,
                reason: "want COUNT [WINDOW_MS]",
            }),
        }
    }
    if let Some(text) = read(KNOB_DOWN_SIGNAL) {
        match sig::parse(&text) {
            Some(s) => cfg.down_signal = s,
            None => warnings.push(KnobWarning {
                knob: KNOB_DOWN_SIGNAL,
                reason: "unknown signal",
            }),
        }
    }
    cfg.own_group = read(KNOB_NO_SETSID).is_none();
    if let Some(text) = read(KNOB_STOP_SEQUENCE) {
        match StopSequence::parse(&text) {
            Some(seq) => cfg.stop_sequence = Some(seq),
            None => warnings.push(KnobWarning {
                knob: KNOB_STOP_SEQUENCE,
                reason: "want SIGNAL MS SIGNAL MS ... SIGNAL, at most 8 signals",
            }),
        }
    }
    if let Some(text) = read(KNOB_NOTIFICATION_FD) {
        match text.parse::<i32>() {
            Ok(n) if (3..=1024).contains(&n) => cfg.notification_fd = Some(n),
            _ => warnings.push(KnobWarning {
                knob: KNOB_NOTIFICATION_FD,
                reason: "want a number from 3 to 1024",
            }),
        }
    }
    if let Some(text) = read(KNOB_DEADMAN) {
        match parse_deadman(&text) {
            Some((_, secs)) => cfg.deadman = Some(Duration::from_secs(secs)),
            None => warnings.push(KnobWarning {
                knob: KNOB_DEADMAN,
                reason: "want a line with an absolute path and a line with seconds",
            }),
        }
    }
    (cfg, warnings)
}

/// The `deadman` knob: an absolute path on the first line, whole seconds (more than 0) on the
/// second.
pub fn parse_deadman(text: &str) -> Option<(&str, u64)> {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let path = lines.next()?;
    let secs = lines.next()?.parse::<u64>().ok()?;
    (path.starts_with('/') && secs > 0 && lines.next().is_none()).then_some((path, secs))
}

/// A `memory-max` or `pids-max` value as the kernel takes it: `max`, or digits with an optional
/// K, M, G or T suffix (only for memory). `None` when it is neither.
pub fn parse_cgroup_limit(text: &str, suffixes: bool) -> Option<&str> {
    let t = text.trim();
    if t == "max" {
        return Some(t);
    }
    let digits = if suffixes {
        t.strip_suffix(['K', 'M', 'G', 'T', 'k', 'm', 'g', 't'])
            .unwrap_or(t)
    } else {
        t
    };
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then_some(t)
}

/// The gid named by the content of `control-group`: a number as it is, a name through `lookup`
/// (the group file's entry). The value itself is never part of the error.
pub fn parse_control_group(
    text: &str,
    lookup: impl FnOnce(&[u8]) -> Option<u32>,
) -> Result<u32, &'static str> {
    let word = text.lines().next().unwrap_or_default().trim();
    if word.is_empty() {
        return Err("empty, want a group name or number");
    }
    if word.bytes().all(|b| b.is_ascii_digit()) {
        return crate::account::parse_id(word.as_bytes()).ok_or("group number out of range");
    }
    lookup(word.as_bytes()).ok_or("unknown group")
}

fn restarts(count: u64, window_ms: u64) -> MaxRestarts {
    MaxRestarts {
        count: u32::try_from(count).unwrap_or(u32::MAX),
        window: Duration::from_millis(window_ms),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::HashMap;

    fn cfg(files: &[(&str, &str)]) -> (Config, Vec<KnobWarning>) {
        let map: HashMap<&str, &str> = files.iter().copied().collect();
        read_config(KnobSet::ALL, |n| map.get(n).map(|s| s.trim().to_owned()))
    }

    #[test]
    fn defaults_are_daemontools() {
        let (c, w) = cfg(&[]);
        assert_eq!(c, Config::default());
        assert!(w.is_empty());
        assert_eq!(c.down_signal, 15);
        assert_eq!(c.timeout_kill, None);
        assert_eq!(c.min_interval, Duration::from_secs(1));
    }

    #[test]
    fn knobs() {
        let (c, w) = cfg(&[
            ("down-signal", "SIGQUIT\n"),
            ("timeout-kill", "2500"),
            ("timeout-finish", "0"),
            ("no-setsid", ""),
            ("backoff-max", "30000"),
            ("max-restarts", "5 10000"),
        ]);
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(c.down_signal, 3);
        assert_eq!(c.timeout_kill, Some(Duration::from_millis(2500)));
        assert_eq!(c.timeout_finish, None);
        assert!(!c.own_group);
        assert_eq!(c.backoff.unwrap().cap, Duration::from_secs(30));
        assert_eq!(c.backoff.unwrap().reset_after, Duration::from_secs(10));
        assert_eq!(c.max_restarts.unwrap().count, 5);
        assert_eq!(c.max_restarts.unwrap().window, Duration::from_secs(10));
    }

    #[test]
    fn knobs_not_listed_are_never_read() {
        let mut present = KnobSet::default();
        present.add_name(b"timeout-kill");
        present.add_name(b"run");
        present.add_name(b"no-setsid-not");
        assert!(present.has(KNOB_TIMEOUT_KILL));
        assert!(!present.has(KNOB_DOWN_SIGNAL));
        assert!(!present.has("run"));
        let asked = std::cell::RefCell::new(Vec::new());
        let (c, _) = read_config(present, |k| {
            asked.borrow_mut().push(k);
            Some("2500".to_owned())
        });
        assert_eq!(asked.into_inner(), vec![KNOB_TIMEOUT_KILL]);
        assert_eq!(c.timeout_kill, Some(Duration::from_millis(2500)));
        assert!(c.own_group);
        for k in KNOBS {
            assert!(KnobSet::ALL.has(k), "{k}");
        }
    }

    #[test]
    fn a_listing_is_reused_only_while_the_change_time_is_old_and_the_same() {
        let mut l = KnobListing::default();
        assert_eq!(l.reuse((100, 5)), None);
        let mut k = KnobSet::default();
        k.add_name(b"down-signal");
        l.keep((100, 5), 1000, k);
        assert_eq!(l.reuse((100, 5)), Some(k));
        assert_eq!(l.reuse((100, 6)), None);
        assert_eq!(l.reuse((1001, 5)), None);
        // Changed a moment ago: not kept.
        l.keep((999, 0), 1000, k);
        assert_eq!(l.reuse((999, 0)), None);
    }

    #[test]
    fn a_fresh_listing_serves_the_first_start_once_and_no_later_one() {
        let mut l = KnobListing::default();
        let mut k = KnobSet::default();
        k.add_name(b"timeout-kill");
        l.keep_fresh(k);
        assert_eq!(l.take_fresh(), Some(k));
        assert_eq!(l.take_fresh(), None);
        // Set up, but the service started down: the listing is gone after the first batch.
        l.keep_fresh(k);
        l.forget_fresh();
        assert_eq!(l.take_fresh(), None);
    }

    #[test]
    fn bad_values_warn_and_keep_defaults() {
        let (c, w) = cfg(&[("down-signal", "NOPE"), ("timeout-kill", "soon")]);
        assert_eq!(c.down_signal, 15);
        assert_eq!(c.timeout_kill, None);
        assert_eq!(w.len(), 2);
    }

    #[test]
    fn control_group_is_a_number_or_a_known_name() {
        let groups = b"root:x:0:\nops:x:1234:alice\n".as_slice();
        let find = |n: &[u8]| crate::account::find_group(groups, n);
        assert_eq!(parse_control_group("ops\n", find), Ok(1234));
        assert_eq!(parse_control_group("  777 ", find), Ok(777));
        assert_eq!(parse_control_group("0", find), Ok(0));
        assert_eq!(
            parse_control_group("nobody-here", find),
            Err("unknown group")
        );
        assert!(parse_control_group("", find).is_err());
        assert!(parse_control_group("\n\n", find).is_err());
        assert!(parse_control_group("99999999999", find).is_err());
        // A number is never looked up.
        assert_eq!(
            parse_control_group("5", |_| -> Option<u32> { panic!() }),
            Ok(5)
        );
    }

    #[test]
    fn warnings_never_carry_the_value() {
        let secret = "root:$6$salt$hash:19000:0:99999:7:::";
        let (_, w) = cfg(&[("down-signal", secret), ("timeout-kill", secret)]);
        assert_eq!(w.len(), 2);
        for x in w {
            assert!(!format!("{x:?}").contains("root"), "{x:?}");
        }
    }
}
