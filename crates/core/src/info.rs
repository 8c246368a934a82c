//! `supervise/info`: everything `status` has no room for, as `key=value` lines.
//!
//! Written by vigil's supervise (as `info.new`, renamed over `info`) whenever `status` is
//! written, and before it, so a reader woken by the rename of `status` finds an `info` at least
//! as new. Text, one `key=value` per line, in this order; readers ignore keys they do not know
//! and take a missing key as absent. Times are TAI64N labels in `tai64n`'s hex form
//! (`@4000…`, 25 characters), empty when there is no such time.
//!
//! | key | value |
//! |---|---|
//! | `version` | `1` |
//! | `state` | `down`, `run` or `finish` |
//! | `pid` | pid of `./run`, 0 when down |
//! | `want` | `up`, `down` or `once` |
//! | `paused` | 0 or 1 |
//! | `ready` | when the service said it was ready (notification-fd, sd_notify), empty otherwise |
//! | `started` | last start of `./run` |
//! | `exited` | last exit of `./run` |
//! | `exit` | how it last ended: `code N`, `signal N`, `spawn-failed`, `unknown` (adopted), empty |
//! | `starts` | starts of `./run` since this supervise began |
//! | `quick_deaths` | consecutive runs that died before `backoff-reset` |
//! | `delay_ms` | wait before the next automatic start, empty when none is pending |
//! | `failed` | 1 when supervise gave up (max-restarts, finish exit 125) |
//! | `finish_pid` | pid of `./finish` while it runs, else 0 |
//! | `notify_status` | the last `STATUS=` text from sd_notify, empty otherwise |
//! | `adopted` | 1 when the running `./run` was started by an earlier supervise and adopted |
//! | `run_start` | start time of `./run` in clock ticks since boot (`/proc/PID/stat` field 22) |
//! | `boot_id` | `/proc/sys/kernel/random/boot_id` when `run_start` was taken |
//! | `stopping` | why a stop is under way: `down`, `watchdog`, `deadman`, `leftovers`; empty |
//! | `tracked` | 1 when the main process is a daemon `./run` left behind when it exited 0 |
//! | `deadman` | `fresh` or `stale` with a `deadman` knob, empty without |
//! | `cgroup` | the service's cgroup directory, empty without one |
//!
//! `pid`, `run_start` and `boot_id` together name one process for good: a supervise that starts
//! after its predecessor was killed adopts the `./run` they describe only if all three still
//! match (a bare pid may have been reused).

use crate::machine::{Adopted, ExitKind, Record, StopReason};
use crate::status::{RunState, Status, Want};
use crate::tai::Tai64n;

/// Everything in one `info` file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Info {
    pub state: Option<RunState>,
    pub pid: u32,
    pub want: Option<Want>,
    pub paused: bool,
    pub ready: Option<Tai64n>,
    pub started: Option<Tai64n>,
    pub exited: Option<Tai64n>,
    pub exit: Option<ExitKindText>,
    pub starts: u64,
    pub quick_deaths: u32,
    pub delay_ms: Option<u64>,
    pub failed: bool,
    pub finish_pid: u32,
    pub notify_status: String,
    pub adopted: bool,
    pub run_start: Option<u64>,
    pub boot_id: String,
    pub stopping: Option<StopReason>,
    pub tracked: bool,
    pub deadman: Option<String>,
    pub cgroup: String,
}

/// How `./run` last ended, as `info` records it (adoption can leave it unknown).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitKindText {
    Known(ExitKind),
    Unknown,
}

impl Info {
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.view().render_into(&mut out);
        out
    }

    /// The same content, borrowed.
    pub fn view(&self) -> InfoView<'_> {
        InfoView {
            state: self.state,
            pid: self.pid,
            want: self.want,
            paused: self.paused,
            ready: self.ready,
            started: self.started,
            exited: self.exited,
            exit: self.exit,
            starts: self.starts,
            quick_deaths: self.quick_deaths,
            delay_ms: self.delay_ms,
            failed: self.failed,
            finish_pid: self.finish_pid,
            notify_status: &self.notify_status,
            adopted: self.adopted,
            run_start: self.run_start,
            boot_id: &self.boot_id,
            stopping: self.stopping,
            tracked: self.tracked,
            deadman: self.deadman.as_deref(),
            cgroup: &self.cgroup,
        }
    }

    /// The `./run` this info names, as (pid, start ticks), when a successor may adopt it: it
    /// was recorded in this boot (`boot_id`) with its start time. The caller still checks that
    /// the process with that pid has that start time now.
    pub fn leftover_run(&self, boot_id: &str) -> Option<(u32, u64)> {
        let ticks = self.run_start?;
        (self.pid != 0 && !self.boot_id.is_empty() && self.boot_id == boot_id)
            .then_some((self.pid, ticks))
    }

    /// What the machine takes over from this info and the predecessor's `status` (its stamp),
    /// for the run `pid`.
    pub fn adopted(&self, pid: u32, old_status: Option<&Status>, now: Tai64n) -> Adopted {
        Adopted {
            pid,
            stamp: old_status.map_or(now, |s| s.stamp),
            want: self.want.unwrap_or(Want::Up),
            paused: self.paused,
            ready: self.ready,
            started: self.started,
            starts: self.starts,
        }
    }

    /// Parses an `info` file; `None` if it is not one (no `version=1` line first).
    pub fn parse(text: &str) -> Option<Info> {
        let mut lines = text.lines();
        if lines.next()? != "version=1" {
            return None;
        }
        let mut info = Info::default();
        let time = |v: &str| {
            v.strip_prefix('@')
                .and_then(|h| Tai64n::parse_hex(h.as_bytes()))
        };
        for line in lines {
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            match k {
                "state" => {
                    info.state = match v {
                        "run" => Some(RunState::Run),
                        "finish" => Some(RunState::Finish),
                        "down" => Some(RunState::Down),
                        _ => None,
                    }
                }
                "pid" => info.pid = v.parse().ok()?,
                "want" => {
                    info.want = match v {
                        "up" => Some(Want::Up),
                        "down" => Some(Want::Down),
                        "once" => Some(Want::Once),
                        _ => None,
                    }
                }
                "paused" => info.paused = v == "1",
                "ready" => info.ready = time(v),
                "started" => info.started = time(v),
                "exited" => info.exited = time(v),
                "exit" => info.exit = parse_exit(v),
                "starts" => info.starts = v.parse().unwrap_or(0),
                "quick_deaths" => info.quick_deaths = v.parse().unwrap_or(0),
                "delay_ms" => info.delay_ms = v.parse().ok(),
                "failed" => info.failed = v == "1",
                "finish_pid" => info.finish_pid = v.parse().unwrap_or(0),
                "notify_status" => info.notify_status = v.to_owned(),
                "adopted" => info.adopted = v == "1",
                "run_start" => info.run_start = v.parse().ok(),
                "boot_id" => info.boot_id = v.to_owned(),
                "stopping" => info.stopping = StopReason::from_name(v),
                "tracked" => info.tracked = v == "1",
                "deadman" => info.deadman = (!v.is_empty()).then(|| v.to_owned()),
                "cgroup" => info.cgroup = v.to_owned(),
                _ => {}
            }
        }
        Some(info)
    }
}

/// [`Info`] with its texts borrowed: what supervise renders at every change, into a buffer it
/// keeps, without allocating.
#[derive(Clone, Copy, Debug)]
pub struct InfoView<'a> {
    pub state: Option<RunState>,
    pub pid: u32,
    pub want: Option<Want>,
    pub paused: bool,
    pub ready: Option<Tai64n>,
    pub started: Option<Tai64n>,
    pub exited: Option<Tai64n>,
    pub exit: Option<ExitKindText>,
    pub starts: u64,
    pub quick_deaths: u32,
    pub delay_ms: Option<u64>,
    pub failed: bool,
    pub finish_pid: u32,
    pub notify_status: &'a str,
    pub adopted: bool,
    pub run_start: Option<u64>,
    pub boot_id: &'a str,
    pub stopping: Option<StopReason>,
    pub tracked: bool,
    pub deadman: Option<&'a str>,
    pub cgroup: &'a str,
}

/// Appends `n` in decimal.
pub fn push_decimal(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    while at > 0 {
        at -= 1;
        if let Some(d) = digits.get_mut(at) {
            // n % 10 < 10: the cast cannot truncate.
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let digits = digits.get(at..).unwrap_or_default();
    out.push_str(std::str::from_utf8(digits).unwrap_or_default());
}

/// Appends `n` in decimal, with a minus sign when negative.
pub fn push_signed(out: &mut String, n: i64) {
    if n < 0 {
        out.push('-');
    }
    push_decimal(out, n.unsigned_abs());
}

fn flag(b: bool) -> &'static str {
    if b { "1" } else { "0" }
}

impl<'a> InfoView<'a> {
    /// The info for a machine's current status and record (no `run_start`, no `boot_id`).
    pub fn from_parts(
        st: &Status,
        rec: &Record,
        finish_pid: Option<u32>,
        notify_status: &'a str,
    ) -> InfoView<'a> {
        InfoView {
            state: Some(st.state),
            pid: st.pid,
            want: Some(st.want),
            paused: st.paused,
            ready: rec.ready,
            started: rec.last_start,
            exited: rec.last_exit,
            exit: rec.last_exit_kind.map(|k| match k {
                ExitKind::Unknown => ExitKindText::Unknown,
                known => ExitKindText::Known(known),
            }),
            starts: rec.starts,
            quick_deaths: rec.quick_deaths,
            delay_ms: rec
                .delay
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            failed: rec.failed,
            finish_pid: finish_pid.unwrap_or(0),
            notify_status,
            adopted: rec.adopted,
            run_start: None,
            boot_id: "",
            stopping: rec.stopping,
            tracked: rec.tracked,
            deadman: None,
            cgroup: "",
        }
    }

    /// Writes the file's text into `out` (cleared first; its capacity is reused).
    pub fn render_into(&self, out: &mut String) {
        out.clear();
        let time = |out: &mut String, key: &str, v: Option<Tai64n>| {
            out.push_str(key);
            if let Some(t) = v {
                out.push('@');
                t.push_hex_to(out);
            }
            out.push('\n');
        };
        out.push_str("version=1\nstate=");
        out.push_str(match self.state {
            Some(RunState::Run) => "run",
            Some(RunState::Finish) => "finish",
            Some(RunState::Down) | None => "down",
        });
        out.push_str("\npid=");
        push_decimal(out, self.pid.into());
        out.push_str("\nwant=");
        out.push_str(match self.want {
            Some(Want::Up) | None => "up",
            Some(Want::Down) => "down",
            Some(Want::Once) => "once",
        });
        out.push_str("\npaused=");
        out.push_str(flag(self.paused));
        out.push('\n');
        time(out, "ready=", self.ready);
        time(out, "started=", self.started);
        time(out, "exited=", self.exited);
        out.push_str("exit=");
        match self.exit {
            Some(ExitKindText::Known(ExitKind::Code(c))) => {
                out.push_str("code ");
                push_signed(out, c.into());
            }
            Some(ExitKindText::Known(ExitKind::Signal(s))) => {
                out.push_str("signal ");
                push_signed(out, s.into());
            }
            Some(ExitKindText::Known(ExitKind::SpawnFailed)) => out.push_str("spawn-failed"),
            Some(ExitKindText::Unknown | ExitKindText::Known(ExitKind::Unknown)) => {
                out.push_str("unknown");
            }
            None => {}
        }
        out.push_str("\nstarts=");
        push_decimal(out, self.starts);
        out.push_str("\nquick_deaths=");
        push_decimal(out, self.quick_deaths.into());
        out.push_str("\ndelay_ms=");
        if let Some(d) = self.delay_ms {
            push_decimal(out, d);
        }
        out.push_str("\nfailed=");
        out.push_str(flag(self.failed));
        out.push_str("\nfinish_pid=");
        push_decimal(out, self.finish_pid.into());
        out.push_str("\nnotify_status=");
        // One line per key; a STATUS= text never spans lines.
        for c in self.notify_status.chars() {
            out.push(if c == '\n' { ' ' } else { c });
        }
        out.push_str("\nadopted=");
        out.push_str(flag(self.adopted));
        out.push_str("\nrun_start=");
        if let Some(t) = self.run_start {
            push_decimal(out, t);
        }
        out.push_str("\nboot_id=");
        out.push_str(self.boot_id);
        out.push_str("\nstopping=");
        out.push_str(self.stopping.map_or("", StopReason::name));
        out.push_str("\ntracked=");
        out.push_str(flag(self.tracked));
        out.push_str("\ndeadman=");
        out.push_str(self.deadman.unwrap_or(""));
        out.push_str("\ncgroup=");
        out.push_str(self.cgroup);
        out.push('\n');
    }
}

fn parse_exit(v: &str) -> Option<ExitKindText> {
    let (kind, n) = v.split_once(' ').unwrap_or((v, ""));
    match kind {
        "code" => n
            .parse()
            .ok()
            .map(|c| ExitKindText::Known(ExitKind::Code(c))),
        "signal" => n
            .parse()
            .ok()
            .map(|s| ExitKindText::Known(ExitKind::Signal(s))),
        "spawn-failed" => Some(ExitKindText::Known(ExitKind::SpawnFailed)),
        "unknown" => Some(ExitKindText::Unknown),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let info = Info {
            state: Some(RunState::Run),
            pid: 77,
            want: Some(Want::Once),
            paused: true,
            ready: Some(Tai64n::from_unix(1_700_000_001, 5)),
            started: Some(Tai64n::from_unix(1_700_000_000, 0)),
            exited: None,
            exit: Some(ExitKindText::Known(ExitKind::Signal(9))),
            starts: 3,
            quick_deaths: 2,
            delay_ms: Some(4000),
            failed: false,
            finish_pid: 0,
            notify_status: "serving".into(),
            adopted: true,
            run_start: Some(123_456),
            boot_id: "2f0c1a8e-0000-4000-8000-000000000000".into(),
            stopping: Some(StopReason::Watchdog),
            tracked: true,
            deadman: Some("stale".into()),
            cgroup: "/sys/fs/cgroup/vigil/web.2051.77".into(),
        };
        let text = info.render();
        assert!(text.starts_with("version=1\nstate=run\npid=77\nwant=once\n"));
        assert!(text.contains("\nexit=signal 9\n"));
        assert!(text.contains("\nexited=\n"));
        assert_eq!(Info::parse(&text), Some(info));
    }

    #[test]
    fn only_a_run_of_this_boot_with_its_start_time_is_adoptable() {
        let info = Info {
            pid: 42,
            run_start: Some(900),
            boot_id: "b1".into(),
            want: Some(Want::Down),
            starts: 3,
            ..Info::default()
        };
        assert_eq!(info.leftover_run("b1"), Some((42, 900)));
        assert_eq!(info.leftover_run("b2"), None, "another boot");
        assert_eq!(
            Info {
                run_start: None,
                ..info.clone()
            }
            .leftover_run("b1"),
            None
        );
        assert_eq!(
            Info {
                pid: 0,
                ..info.clone()
            }
            .leftover_run("b1"),
            None
        );
        assert_eq!(
            Info {
                boot_id: String::new(),
                ..info.clone()
            }
            .leftover_run(""),
            None
        );
        let a = info.adopted(42, None, Tai64n::from_unix(5, 0));
        assert_eq!(
            (a.want, a.starts, a.stamp),
            (Want::Down, 3, Tai64n::from_unix(5, 0))
        );
    }

    #[test]
    fn decimals() {
        for n in [0u64, 7, 10, 99, 1_000_000, u64::MAX] {
            let mut s = String::new();
            push_decimal(&mut s, n);
            assert_eq!(s, n.to_string());
        }
        let mut s = String::new();
        push_signed(&mut s, i64::MIN);
        assert_eq!(s, i64::MIN.to_string());
    }

    #[test]
    fn rejects_other_files_and_tolerates_new_keys() {
        assert_eq!(Info::parse("garbage"), None);
        assert_eq!(Info::parse(""), None);
        let i = Info::parse("version=1\npid=5\nfuture_key=1\nstate=run\n").unwrap();
        assert_eq!(i.pid, 5);
        assert_eq!(i.state, Some(RunState::Run));
    }
}
