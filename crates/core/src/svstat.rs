//! The line `svstat` prints for one directory, in daemontools' exact words.

use crate::status::{Status, Want};
use crate::tai::Tai64n;

/// `DIR: up (pid N) S seconds[, normally down][, paused][, want down]` or
/// `DIR: down S seconds[, normally up][, want up]`, without the newline.
///
/// `now` is the current time; `down_file` says whether `DIR/down` exists.
pub fn render(dir: &str, st: &Status, now: Tai64n, down_file: bool) -> String {
    let secs = now.secs.saturating_sub(st.stamp.secs);
    let mut line = String::with_capacity(dir.len() + 64);
    line.push_str(dir);
    line.push_str(": ");
    if st.pid != 0 {
        line.push_str(&format!("up (pid {}) {secs} seconds", st.pid));
        if down_file {
            line.push_str(", normally down");
        }
        if st.paused {
            line.push_str(", paused");
        }
        if st.want == Want::Down {
            line.push_str(", want down");
        }
    } else {
        line.push_str(&format!("down {secs} seconds"));
        if !down_file {
            line.push_str(", normally up");
        }
        if st.want == Want::Up {
            line.push_str(", want up");
        }
    }
    line
}

/// The knob files of a service directory as `svstat -l` shows them: one `knob NAME=VALUE`
/// part per file (just `knob NAME` for a knob whose presence is all that counts, `knob NAME
/// unreadable` when its content could not be read), comma separated; empty without knobs.
/// `knobs` holds each present knob with its value, `None` when unreadable, in the order of
/// [`crate::layout::KNOBS`].
pub fn render_knobs(knobs: &[(&str, Option<String>)]) -> String {
    let mut out = String::new();
    for (name, value) in knobs {
        if !out.is_empty() {
            out.push_str(", ");
        }
        out.push_str("knob ");
        out.push_str(name);
        match value {
            None => out.push_str(" unreadable"),
            Some(v) if v.is_empty() => {}
            Some(v) => {
                out.push('=');
                out.push_str(v);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::RunState;

    fn st(pid: u32, paused: bool, want: Want) -> Status {
        Status {
            stamp: Tai64n::from_unix(1000, 5),
            pid,
            paused,
            want,
            got_term: false,
            state: if pid == 0 {
                RunState::Down
            } else {
                RunState::Run
            },
        }
    }

    #[test]
    fn daemontools_lines() {
        let now = Tai64n::from_unix(1012, 0);
        assert_eq!(
            render("/s/a", &st(42, false, Want::Up), now, false),
            "/s/a: up (pid 42) 12 seconds"
        );
        assert_eq!(
            render("a", &st(42, true, Want::Down), now, true),
            "a: up (pid 42) 12 seconds, normally down, paused, want down"
        );
        assert_eq!(
            render("a", &st(0, false, Want::Down), now, false),
            "a: down 12 seconds, normally up"
        );
        assert_eq!(
            render("a", &st(0, false, Want::Up), now, true),
            "a: down 12 seconds, want up"
        );
        assert_eq!(
            render("a", &st(7, false, Want::Once), now, false),
            "a: up (pid 7) 12 seconds"
        );
    }

    #[test]
    fn knob_parts() {
        assert_eq!(render_knobs(&[]), "");
        assert_eq!(
            render_knobs(&[
                ("down-signal", Some("QUIT".into())),
                ("no-setsid", Some(String::new())),
                ("control-group", None),
            ]),
            "knob down-signal=QUIT, knob no-setsid, knob control-group unreadable"
        );
    }

    #[test]
    fn future_stamp_is_zero_seconds() {
        let now = Tai64n::from_unix(10, 0);
        assert_eq!(
            render("a", &st(0, false, Want::Down), now, true),
            "a: down 0 seconds"
        );
    }
}
