//! What svstat learned about one directory, and its three renderings: daemontools' line (the
//! default, byte for byte), the same line plus a second one for people (`-l`), and one JSON
//! object (`--json`).
//!
//! `--json` prints one object per directory, one per line, in argument order. Field names are
//! stable; a value is `null` when it does not apply or the supervisor does not record it
//! (daemontools' and runit's supervisors write no `supervise/info`: every field from `info`
//! is then `null`). Fields:
//!
//! | field | value |
//! |---|---|
//! | `dir` | the argument as given (invalid UTF-8 replaced by U+FFFD) |
//! | `supervised` | `true`: a supervise holds `supervise/ok` open; `false`: none does (or the directory or `supervise/ok` does not exist); `null`: svstat could not tell (`error` says why, e.g. access denied) |
//! | `error` | what stopped svstat reading the status, in daemontools' words (`unable to chdir: file does not exist`), else `null`; "supervise not running" is not an error: `supervised` says it |
//! | `up` | `./run` is running (status pid not 0) |
//! | `pid` | its pid, `null` when down |
//! | `seconds` | seconds since the last start or exit (status stamp) |
//! | `normally_up` | no `down` file |
//! | `want` | `"up"`, `"down"` or `"once"` |
//! | `paused` | stopped by `svc -p` |
//! | `got_term` | sent its down signal, not exited yet (status byte 18) |
//! | `state` | `"down"`, `"run"` or `"finish"` (status byte 19; derived from pid for daemontools) |
//! | `ready` | up and ready: readiness recorded for this run, or up when the directory configures no readiness; `null` without `info` |
//! | `ready_seconds` | seconds since it became ready, `null` when not ready |
//! | `started_seconds` | seconds since the last start of `./run` (`info`) |
//! | `exited_seconds` | seconds since the last exit of `./run` (`info`) |
//! | `exit_code` | exit code of the last run, `null` if it was killed or none ended yet |
//! | `exit_signal` | signal number that killed the last run, else `null` |
//! | `starts` | starts of `./run` since supervise began |
//! | `quick_deaths` | consecutive runs that died soon after starting |
//! | `delay_ms` | wait before the next automatic start, `null` when none is pending |
//! | `stopping` | why supervise is stopping the run: `"down"`, `"watchdog"`, `"deadman"`, `"leftovers"`; `null` when no stop is under way |
//! | `tracked` | the main process is a daemon `./run` left behind when it exited 0 |
//! | `deadman` | `"fresh"` or `"stale"` with a `deadman` knob, else `null` |
//! | `processes` | processes in the service's cgroup, `null` without one |
//! | `memory_bytes` | memory the service's cgroup uses (`memory.current`), `null` without the memory controller |
//! | `failed` | supervise gave up restarting (max-restarts, finish exit 125) |
//! | `finish_pid` | pid of `./finish` while it runs, else `null` |
//! | `notify_status` | last sd_notify `STATUS=` text, `null` when none |
//! | `knobs` | the knob files present in the directory (supervise(8), vigil-servicedir(5)) as an object, name to trimmed first line (`""` for the presence-only `no-setsid` and `notify-socket`, `null` when unreadable); `{}` when there are none; `null` when the status could not be read |

use vigil_core::control::sig;
use vigil_core::info::{ExitKindText, Info};
use vigil_core::machine::ExitKind;
use vigil_core::status::{RunState, Status, Want};
use vigil_core::tai::Tai64n;

/// One directory as svstat saw it.
#[derive(Debug, Default)]
pub struct Report {
    pub name: String,
    /// `None` when svstat could not find out (access denied, …).
    pub supervised: Option<bool>,
    /// Text after `DIR: ` when the status could not be read.
    pub error: Option<String>,
    pub status: Option<Status>,
    pub down_file: bool,
    pub info: Option<Info>,
    /// `notification-fd` or `notify-socket` exists.
    pub readiness: bool,
    /// The knob files present, with their values (`None`: unreadable); `None` when not looked at.
    pub knobs: Option<Vec<(&'static str, Option<String>)>>,
    /// Processes in the service's cgroup and the memory it uses, when it has one.
    pub processes: Option<usize>,
    pub memory_bytes: Option<u64>,
}

impl Report {
    /// daemontools' line, without the newline.
    pub fn line(&self, now: Tai64n) -> String {
        match (&self.error, &self.status) {
            (None, Some(st)) => vigil_core::svstat::render(&self.name, st, now, self.down_file),
            (Some(e), _) => format!("{}: {e}", self.name),
            (None, None) => format!("{}: supervise not running", self.name),
        }
    }

    /// The second line of `-l`: two spaces, then the facts from `info`, comma separated.
    /// `None` when there is no `info`.
    pub fn details(&self, now: Tai64n) -> Option<String> {
        let info = self.info.as_ref()?;
        let st = self.status.as_ref()?;
        let ago = |t: Tai64n| now.secs.saturating_sub(t.secs);
        let mut parts = Vec::new();
        if st.pid != 0 {
            match self.ready_since() {
                Some(Some(t)) => parts.push(format!("ready {} seconds", ago(t))),
                Some(None) if self.readiness => parts.push("not ready".to_owned()),
                _ => {}
            }
        }
        if let Some(t) = info.started {
            parts.push(format!("started {} seconds ago", ago(t)));
        }
        match info.exit {
            Some(ExitKindText::Known(ExitKind::Code(c))) => {
                parts.push(format!("last exit code {c}"));
            }
            Some(ExitKindText::Known(ExitKind::Signal(s))) => {
                parts.push(format!("last exit signal {}", sig::name(s)));
            }
            Some(ExitKindText::Known(ExitKind::SpawnFailed)) => {
                parts.push("last start failed".to_owned());
            }
            _ => {}
        }
        parts.push(format!("starts {}", info.starts));
        if info.quick_deaths > 0 {
            parts.push(format!("quick deaths {}", info.quick_deaths));
        }
        if let Some(ms) = info.delay_ms {
            parts.push(format!("restart delay {ms} ms"));
        }
        if info.finish_pid != 0 {
            parts.push(format!("finish running (pid {})", info.finish_pid));
        }
        if let Some(why) = info.stopping {
            parts.push(format!("stopping ({})", why.name()));
        }
        if info.tracked {
            parts.push("tracking the daemon run left".to_owned());
        }
        if let Some(d) = &info.deadman {
            parts.push(format!("deadman {d}"));
        }
        if let Some(n) = self.processes {
            parts.push(format!("processes {n}"));
        }
        if let Some(b) = self.memory_bytes {
            parts.push(format!("memory {b} bytes"));
        }
        if info.failed {
            parts.push("failed".to_owned());
        }
        if !info.notify_status.is_empty() {
            parts.push(format!("status {}", info.notify_status));
        }
        let knobs = vigil_core::svstat::render_knobs(self.knobs.as_deref().unwrap_or_default());
        if !knobs.is_empty() {
            parts.push(knobs);
        }
        Some(format!("  {}", parts.join(", ")))
    }

    /// `None`: unknown (no info). `Some(None)`: not ready. `Some(Some(t))`: ready since t
    /// (for a directory without readiness, since the run started).
    fn ready_since(&self) -> Option<Option<Tai64n>> {
        let info = self.info.as_ref()?;
        let st = self.status.as_ref()?;
        if st.pid == 0 || st.state != RunState::Run {
            return Some(None);
        }
        if !self.readiness {
            return Some(Some(info.started.unwrap_or(st.stamp)));
        }
        Some(info.ready.filter(|_| info.pid == st.pid))
    }

    /// One JSON object, without the newline.
    pub fn json(&self, now: Tai64n) -> String {
        let mut o = Obj::default();
        o.str("dir", Some(&self.name));
        o.raw("supervised", self.supervised.map(|b| b.to_string()));
        o.str("error", self.error.as_deref());
        let st = self.status.as_ref();
        let info = self.info.as_ref();
        let secs = |t: Tai64n| Some(now.secs.saturating_sub(t.secs).to_string());
        let flag = |b: bool| Some(b.to_string());
        o.raw("up", st.and_then(|s| flag(s.pid != 0)));
        o.raw("pid", st.filter(|s| s.pid != 0).map(|s| s.pid.to_string()));
        o.raw("seconds", st.and_then(|s| secs(s.stamp)));
        o.raw("normally_up", st.and_then(|_| flag(!self.down_file)));
        let want = st.map(|s| match s.want {
            Want::Up => "up",
            Want::Down => "down",
            Want::Once => "once",
        });
        o.str("want", want);
        o.raw("paused", st.and_then(|s| flag(s.paused)));
        o.raw("got_term", st.and_then(|s| flag(s.got_term)));
        let state = st.map(|s| match s.state {
            RunState::Down => "down",
            RunState::Run => "run",
            RunState::Finish => "finish",
        });
        o.str("state", state);
        let ready = self.ready_since();
        o.raw("ready", ready.and_then(|r| flag(r.is_some())));
        o.raw("ready_seconds", ready.flatten().and_then(secs));
        o.raw(
            "started_seconds",
            info.and_then(|i| i.started).and_then(secs),
        );
        o.raw("exited_seconds", info.and_then(|i| i.exited).and_then(secs));
        let (code, signal) = match info.and_then(|i| i.exit) {
            Some(ExitKindText::Known(ExitKind::Code(c))) => (Some(c.to_string()), None),
            Some(ExitKindText::Known(ExitKind::Signal(s))) => (None, Some(s.to_string())),
            _ => (None, None),
        };
        o.raw("exit_code", code);
        o.raw("exit_signal", signal);
        o.raw("starts", info.map(|i| i.starts.to_string()));
        o.raw("quick_deaths", info.map(|i| i.quick_deaths.to_string()));
        o.raw(
            "delay_ms",
            info.and_then(|i| i.delay_ms).map(|d| d.to_string()),
        );
        o.str("stopping", info.and_then(|i| i.stopping).map(|r| r.name()));
        o.raw("tracked", info.and_then(|i| flag(i.tracked)));
        o.str("deadman", info.and_then(|i| i.deadman.as_deref()));
        o.raw("processes", self.processes.map(|n| n.to_string()));
        o.raw("memory_bytes", self.memory_bytes.map(|n| n.to_string()));
        o.raw("failed", info.and_then(|i| flag(i.failed)));
        o.raw(
            "finish_pid",
            info.filter(|i| i.finish_pid != 0)
                .map(|i| i.finish_pid.to_string()),
        );
        o.str(
            "notify_status",
            info.map(|i| i.notify_status.as_str())
                .filter(|s| !s.is_empty()),
        );
        o.key("knobs");
        match &self.knobs {
            None => o.text.push_str("null"),
            Some(knobs) => {
                let mut inner = Obj::default();
                for (name, value) in knobs {
                    inner.str(name, value.as_deref());
                }
                o.text.push_str(&if knobs.is_empty() {
                    "{}".to_owned()
                } else {
                    inner.finish()
                });
            }
        }
        o.finish()
    }
}

/// A JSON object written by hand, field by field.
#[derive(Default)]
struct Obj {
    text: String,
}

impl Obj {
    fn key(&mut self, k: &str) {
        self.text.push(if self.text.is_empty() { '{' } else { ',' });
        self.text.push('"');
        self.text.push_str(k);
        self.text.push_str("\":");
    }

    /// A number or boolean already in JSON form, or `null`.
    fn raw(&mut self, k: &str, v: Option<String>) {
        self.key(k);
        self.text.push_str(v.as_deref().unwrap_or("null"));
    }

    fn str(&mut self, k: &str, v: Option<&str>) {
        self.key(k);
        match v {
            Some(s) => escape_into(&mut self.text, s),
            None => self.text.push_str("null"),
        }
    }

    fn finish(mut self) -> String {
        self.text.push('}');
        self.text
    }
}

/// Appends `s` as a JSON string literal.
pub fn escape_into(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn esc(s: &str) -> String {
        let mut o = String::new();
        escape_into(&mut o, s);
        o
    }

    #[test]
    fn escapes() {
        assert_eq!(esc("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(esc("x\ny\u{1}\u{7f}é"), "\"x\\ny\\u0001\\u007fé\"");
    }

    fn running() -> Report {
        Report {
            name: "/s/a".into(),
            supervised: Some(true),
            error: None,
            status: Some(Status {
                stamp: Tai64n::from_unix(1000, 0),
                pid: 42,
                paused: false,
                want: Want::Up,
                got_term: false,
                state: RunState::Run,
            }),
            down_file: false,
            info: Some(Info {
                state: Some(RunState::Run),
                pid: 42,
                ready: Some(Tai64n::from_unix(1002, 0)),
                started: Some(Tai64n::from_unix(1000, 0)),
                exit: Some(ExitKindText::Known(ExitKind::Code(1))),
                starts: 4,
                delay_ms: Some(2000),
                failed: true,
                ..Info::default()
            }),
            readiness: true,
            knobs: None,
            processes: None,
            memory_bytes: None,
        }
    }

    #[test]
    fn knobs_shown() {
        let now = Tai64n::from_unix(1005, 0);
        let mut r = running();
        r.knobs = Some(vec![]);
        assert!(r.json(now).ends_with(r#""knobs":{}}"#));
        r.knobs = Some(vec![
            ("down-signal", Some("QUIT".into())),
            ("no-setsid", Some(String::new())),
            ("control-group", None),
        ]);
        assert!(
            r.json(now).ends_with(
                r#""knobs":{"down-signal":"QUIT","no-setsid":"","control-group":null}}"#
            ),
            "{}",
            r.json(now)
        );
        assert!(r.details(now).unwrap().ends_with(
            ", failed, knob down-signal=QUIT, knob no-setsid, knob control-group unreadable"
        ));
    }

    #[test]
    fn long_line() {
        let now = Tai64n::from_unix(1005, 0);
        let r = running();
        assert_eq!(r.line(now), "/s/a: up (pid 42) 5 seconds");
        assert_eq!(
            r.details(now).unwrap(),
            "  ready 3 seconds, started 5 seconds ago, last exit code 1, starts 4, restart delay 2000 ms, failed"
        );
        let mut r = running();
        r.info.as_mut().unwrap().ready = None;
        assert!(r.details(now).unwrap().starts_with("  not ready, started"));
        r.info = None;
        assert_eq!(r.details(now), None);
    }

    #[test]
    fn json_object() {
        let now = Tai64n::from_unix(1005, 0);
        let j = running().json(now);
        assert!(j.starts_with(r#"{"dir":"/s/a","supervised":true,"error":null,"up":true,"pid":42,"seconds":5,"normally_up":true,"want":"up","paused":false,"got_term":false,"state":"run","ready":true,"ready_seconds":3,"#), "{j}");
        assert!(
            j.contains(r#""exit_code":1,"exit_signal":null,"starts":4,"#),
            "{j}"
        );
        assert!(
            j.ends_with(r#""failed":true,"finish_pid":null,"notify_status":null,"knobs":null}"#),
            "{j}"
        );
        let none = Report {
            name: "x".into(),
            supervised: Some(false),
            error: Some("unable to chdir: file does not exist".into()),
            ..Report::default()
        };
        let j = none.json(now);
        assert!(j.starts_with(r#"{"dir":"x","supervised":false,"error":"unable to chdir: file does not exist","up":null,"pid":null,"#), "{j}");
        let unknown = Report {
            name: "x".into(),
            error: Some("unable to open supervise/ok: access denied".into()),
            ..Report::default()
        };
        let j = unknown.json(now);
        assert!(j.starts_with(r#"{"dir":"x","supervised":null,"error":"unable to open supervise/ok: access denied","#), "{j}");
    }
}
