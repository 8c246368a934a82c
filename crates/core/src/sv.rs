//! runit's `sv`: what a command word means, how a status line reads, and when a wait is over.
//!
//! Facts from `man 8 sv` and from running Debian's `/usr/bin/sv` against `runsv`; nothing here
//! reads a file or a clock. The program (`crates/sv`) reads `supervise/status` raw and asks:
//! [`parse_action`] (which bytes to write, whether to wait, whether to kill on timeout),
//! [`format_status`] (the `run: DIR: (pid N) Ns, …` text) and [`judge`] (is the wait over for
//! this directory, and does it depend on `./check`).
//!
//! The record is read raw, as runit's `sv` does: any 20 bytes print, so a status no supervisor
//! could write still shows what it says rather than an error.

use crate::tai::Tai64n;

/// What one command word asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Action {
    /// Print the status instead of writing to `supervise/control`.
    pub status: bool,
    /// Bytes for `supervise/control`; also the letters [`judge`] checks, in order. `C` is
    /// `check`'s letter: never written, only checked.
    pub acts: Vec<u8>,
    /// Wait for the command to take effect (start, stop, restart, check, …).
    pub wait: bool,
    /// On timeout, say `kill:` and send `k` (the force- commands).
    pub kill: bool,
}

impl Action {
    fn control(acts: &[u8], wait: bool, kill: bool) -> Option<Action> {
        Some(Action {
            status: false,
            acts: acts.to_vec(),
            wait,
            kill,
        })
    }
}

/// The meaning of `word`; `None` is a usage error. In LSB mode (called as an init script)
/// `status` must be spelled out; otherwise its first letter is enough.
pub fn parse_action(word: &[u8], lsb: bool) -> Option<Action> {
    let first = *word.first()?;
    match word {
        b"check" => return Action::control(b"C", true, false),
        b"shutdown" => return Action::control(b"x", true, false),
        b"start" => return Action::control(b"u", true, false),
        b"stop" => return Action::control(b"d", true, false),
        b"reload" => return Action::control(b"h", true, false),
        b"restart" => return Action::control(b"tcu", true, false),
        b"try-restart" => return Action::control(b"tc", true, false),
        b"force-stop" => return Action::control(b"d", true, true),
        b"force-reload" => return Action::control(b"tc", true, true),
        b"force-restart" => return Action::control(b"tcu", true, true),
        b"force-shutdown" => return Action::control(b"x", true, true),
        _ => {}
    }
    match first {
        b's' if lsb && word != b"status" => None,
        b's' => Some(Action {
            status: true,
            acts: Vec::new(),
            wait: false,
            kill: false,
        }),
        b'e' | b'x' => Action::control(b"x", false, false),
        b'u' | b'd' | b'o' | b't' | b'p' | b'c' | b'h' | b'a' | b'i' | b'k' | b'q' | b'1'
        | b'2' => Action::control(&[first], false, false),
        _ => None,
    }
}

/// Which supervisor state byte (19) means what.
pub const STATE_DOWN: u8 = 0;
pub const STATE_RUN: u8 = 1;
pub const STATE_FINISH: u8 = 2;

/// `supervise/status` as runit's `sv` reads it: exactly 20 bytes, no validation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    pub stamp: Tai64n,
    pub pid: u32,
    pub paused: bool,
    pub want: u8,
    pub got_term: bool,
    pub state: u8,
}

impl Record {
    /// `None` unless exactly 20 bytes (`unable to read supervise/status: bad format`).
    pub fn parse(bytes: &[u8]) -> Option<Record> {
        let b: &[u8; 20] = bytes.try_into().ok()?;
        let (head, [term, state]) = (b.first_chunk()?, [*b.get(18)?, *b.get(19)?]);
        let (stamp, pid, paused, want) = crate::status::split_head(*head);
        Some(Record {
            stamp,
            pid,
            paused: paused != 0,
            want,
            got_term: term != 0,
            state,
        })
    }
}

/// `run: NAME: (pid N) Ss, normally down, …` for `rec` seen at `now` (TAI seconds). `down` says
/// whether the directory holds a `down` file.
pub fn format_status(name: &str, rec: &Record, down: bool, now: Tai64n) -> String {
    let state = match rec.state {
        STATE_DOWN => "down: ",
        STATE_RUN => "run: ",
        STATE_FINISH => "finish: ",
        _ => "",
    };
    let mut out = format!("{state}{name}: ");
    if rec.pid != 0 {
        out.push_str(&format!("(pid {}) ", rec.pid));
    }
    let secs = now.secs.saturating_sub(rec.stamp.secs);
    out.push_str(&format!("{secs}s"));
    if rec.pid != 0 && down {
        out.push_str(", normally down");
    }
    if rec.pid == 0 && !down {
        out.push_str(", normally up");
    }
    if rec.pid != 0 && rec.want == b'd' {
        out.push_str(", want down");
    }
    if rec.pid == 0 && rec.want == b'u' {
        out.push_str(", want up");
    }
    if rec.paused {
        out.push_str(", paused");
    }
    if rec.got_term {
        out.push_str(", got TERM");
    }
    out
}

/// Whether a wait is over for one directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not yet.
    Pending,
    /// Yes.
    Done,
    /// Yes if `./check` (when there is one) exits 0.
    DoneIfChecked,
}

/// Whether the letters `acts` have taken effect on `rec`, for a command sent at `start`.
///
/// runit compat: runit compares `start` and the status stamp in whole seconds, so a restart
/// within the second the old run started is taken as done before it happened; here the stamp
/// must not be older than `start` to the nanosecond.
pub fn judge(acts: &[u8], rec: &Record, start: Tai64n) -> Verdict {
    let mut script = false;
    let newer = rec.stamp >= start;
    for a in acts {
        let pending = match a {
            b'x' => true,
            b'u' => {
                script = true;
                rec.pid == 0 || rec.state != STATE_RUN
            }
            b'd' => rec.pid != 0 || rec.state != STATE_DOWN,
            b'C' => {
                script |= rec.pid != 0;
                false
            }
            b't' | b'k' => {
                if rec.pid == 0 && rec.want == b'd' {
                    false
                } else {
                    script = true;
                    !newer || rec.pid == 0 || rec.got_term
                }
            }
            // runit compat: runit waits for want `d` with a pid; vigil's supervise (as
            // daemontools') records a once run as want 0, which is as good.
            b'o' => (rec.pid == 0 && !newer) || (rec.pid != 0 && rec.want == b'u'),
            b'p' => rec.pid != 0 && !rec.paused,
            b'c' => rec.pid != 0 && rec.paused,
            _ => false,
        };
        if pending {
            return Verdict::Pending;
        }
    }
    if script {
        Verdict::DoneIfChecked
    } else {
        Verdict::Done
    }
}

/// Leading decimal digits of `text` as seconds (`-w` and `$SVWAIT`): `1.5` is 1, `abc` is 0.
pub fn parse_seconds(text: &[u8]) -> u64 {
    let mut n: u64 = 0;
    for c in text.iter().take_while(|c| c.is_ascii_digit()) {
        n = n.saturating_mul(10).saturating_add(u64::from(c - b'0'));
    }
    n
}

/// Whether `name` is a path (taken as given) rather than a name under `$SVDIR`: it starts with
/// `/` or `.`, or ends with `/`.
pub fn is_path(name: &[u8]) -> bool {
    matches!(name.first(), Some(b'/' | b'.')) || name.last() == Some(&b'/')
}

/// The exit code for `failures` failed directories (runit caps it at 99).
pub fn exit_code(failures: u32) -> u8 {
    u8::try_from(failures.min(99)).unwrap_or(99)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn rec(pid: u32, state: u8, want: u8, t: u64) -> Record {
        Record {
            stamp: Tai64n::from_unix(t, 0),
            pid,
            paused: false,
            want,
            got_term: false,
            state,
        }
    }

    #[test]
    fn words() {
        assert!(parse_action(b"status", false).unwrap().status);
        assert!(parse_action(b"sxyz", false).unwrap().status);
        assert_eq!(parse_action(b"st", true), None);
        assert_eq!(parse_action(b"xyz", false).unwrap().acts, b"x");
        assert_eq!(parse_action(b"e", false).unwrap().acts, b"x");
        let r = parse_action(b"force-restart", false).unwrap();
        assert_eq!(r.acts, b"tcu");
        assert!(r.wait && r.kill);
        assert_eq!(parse_action(b"cont", false).unwrap().acts, b"c");
        assert_eq!(parse_action(b"check", false).unwrap().acts, b"C");
        assert_eq!(parse_action(b"bogus", false), None);
        assert_eq!(parse_action(b"", false), None);
        assert_eq!(parse_action(b"restartx", false), None);
        assert!(!parse_action(b"up", false).unwrap().wait);
    }

    #[test]
    fn lines() {
        let now = Tai64n::from_unix(110, 0);
        let r = rec(42, STATE_RUN, b'u', 100);
        assert_eq!(format_status("a", &r, false, now), "run: a: (pid 42) 10s");
        assert_eq!(
            format_status("a", &r, true, now),
            "run: a: (pid 42) 10s, normally down"
        );
        let d = rec(0, STATE_DOWN, b'u', 109);
        assert_eq!(
            format_status("./b", &d, false, now),
            "down: ./b: 1s, normally up, want up"
        );
        let mut t = rec(42, STATE_RUN, b'd', 100);
        t.paused = true;
        t.got_term = true;
        assert_eq!(
            format_status("a", &t, false, now),
            "run: a: (pid 42) 10s, want down, paused, got TERM"
        );
        assert_eq!(
            format_status("a", &rec(0, STATE_FINISH, b'd', 120), true, now),
            "finish: a: 0s"
        );
    }

    #[test]
    fn verdicts() {
        let start = Tai64n::from_unix(100, 5);
        let up_old = rec(5, STATE_RUN, b'u', 100);
        assert_eq!(judge(b"u", &up_old, start), Verdict::DoneIfChecked);
        assert_eq!(judge(b"tcu", &up_old, start), Verdict::Pending);
        let up_new = rec(6, STATE_RUN, b'u', 101);
        assert_eq!(judge(b"tcu", &up_new, start), Verdict::DoneIfChecked);
        let down = rec(0, STATE_DOWN, b'd', 99);
        assert_eq!(judge(b"d", &down, start), Verdict::Done);
        assert_eq!(judge(b"d", &up_old, start), Verdict::Pending);
        assert_eq!(judge(b"tc", &down, start), Verdict::Done);
        assert_eq!(judge(b"C", &down, start), Verdict::Done);
        assert_eq!(judge(b"C", &up_old, start), Verdict::DoneIfChecked);
        assert_eq!(judge(b"x", &up_old, start), Verdict::Pending);
        assert_eq!(judge(b"h", &up_old, start), Verdict::Done);
        assert_eq!(judge(b"p", &up_old, start), Verdict::Pending);
        assert_eq!(judge(b"c", &up_old, start), Verdict::Done);
        let mut paused = up_old;
        paused.paused = true;
        assert_eq!(judge(b"p", &paused, start), Verdict::Done);
        assert_eq!(judge(b"c", &paused, start), Verdict::Pending);
        assert_eq!(judge(b"c", &down, start), Verdict::Done);
        assert_eq!(judge(b"o", &down, start), Verdict::Pending);
        assert_eq!(
            judge(b"o", &rec(0, STATE_DOWN, b'd', 101), start),
            Verdict::Done
        );
        assert_eq!(
            judge(b"o", &rec(7, STATE_RUN, b'd', 101), start),
            Verdict::Done
        );
    }

    #[test]
    fn small_parsers() {
        assert_eq!(parse_seconds(b"7"), 7);
        assert_eq!(parse_seconds(b"1.5"), 1);
        assert_eq!(parse_seconds(b"abc"), 0);
        assert!(is_path(b"./a") && is_path(b"/a") && is_path(b"a/") && is_path(b".a"));
        assert!(!is_path(b"a/log") && !is_path(b"a") && !is_path(b""));
        assert_eq!(exit_code(150), 99);
        assert_eq!(exit_code(2), 2);
    }
}
