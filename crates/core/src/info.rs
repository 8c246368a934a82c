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
//!
//! `pid`, `run_start` and `boot_id` together name one process for good: a supervise that starts
//! after its predecessor was killed adopts the `./run` they describe only if all three still
//! match (a bare pid may have been reused).

use crate::machine::{ExitKind, Record};
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
}

/// How `./run` last ended, as `info` records it (adoption can leave it unknown).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitKindText {
    Known(ExitKind),
    Unknown,
}

impl Info {
    /// The info for a machine's current status and record.
    pub fn from_parts(
        st: &Status,
        rec: &Record,
        finish_pid: Option<u32>,
        notify_status: &str,
    ) -> Info {
        Info {
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
            notify_status: notify_status.to_owned(),
            adopted: rec.adopted,
            run_start: None,
            boot_id: String::new(),
        }
    }

    pub fn render(&self) -> String {
        let t = |v: Option<Tai64n>| v.map(|t| format!("@{}", t.to_hex())).unwrap_or_default();
        let state = match self.state {
            Some(RunState::Run) => "run",
            Some(RunState::Finish) => "finish",
            Some(RunState::Down) | None => "down",
        };
        let want = match self.want {
            Some(Want::Up) | None => "up",
            Some(Want::Down) => "down",
            Some(Want::Once) => "once",
        };
        let exit = match self.exit {
            Some(ExitKindText::Known(ExitKind::Code(c))) => format!("code {c}"),
            Some(ExitKindText::Known(ExitKind::Signal(s))) => format!("signal {s}"),
            Some(ExitKindText::Known(ExitKind::SpawnFailed)) => "spawn-failed".to_owned(),
            Some(ExitKindText::Unknown | ExitKindText::Known(ExitKind::Unknown)) => {
                "unknown".to_owned()
            }
            None => String::new(),
        };
        // One line per key; a STATUS= text never spans lines.
        let notify: String = self
            .notify_status
            .chars()
            .map(|c| if c == '\n' { ' ' } else { c })
            .collect();
        format!(
            "version=1\nstate={state}\npid={}\nwant={want}\npaused={}\nready={}\nstarted={}\nexited={}\nexit={exit}\nstarts={}\nquick_deaths={}\ndelay_ms={}\nfailed={}\nfinish_pid={}\nnotify_status={notify}\nadopted={}\nrun_start={}\nboot_id={}\n",
            self.pid,
            u8::from(self.paused),
            t(self.ready),
            t(self.started),
            t(self.exited),
            self.starts,
            self.quick_deaths,
            self.delay_ms.map(|d| d.to_string()).unwrap_or_default(),
            u8::from(self.failed),
            self.finish_pid,
            u8::from(self.adopted),
            self.run_start.map(|t| t.to_string()).unwrap_or_default(),
            self.boot_id,
        )
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
                _ => {}
            }
        }
        Some(info)
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
        };
        let text = info.render();
        assert!(text.starts_with("version=1\nstate=run\npid=77\nwant=once\n"));
        assert!(text.contains("\nexit=signal 9\n"));
        assert!(text.contains("\nexited=\n"));
        assert_eq!(Info::parse(&text), Some(info));
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
