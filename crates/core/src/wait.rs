//! When a wait for a service state is over: the decisions behind `svwait` and `svc -W`.
//!
//! The waiting program reads `supervise/status` (and `supervise/info` when the supervisor
//! writes one) each time inotify says something under `supervise/` changed, and asks
//! [`reached`] whether this directory is where it should be, then [`decided`] whether the
//! set of directories is. Nothing here reads a file or a clock.
//!
//! Goals (the letters of s6-svwait):
//! - `u` up: `./run` is running (state run, pid not 0).
//! - `U` up and ready: up, and the supervisor recorded readiness for *this* run (`info` has a
//!   `ready` time and the same pid). When the service directory configures no readiness
//!   (no `notification-fd`, no `notify-socket`), or the supervisor writes no `info` (daemontools,
//!   runit), ready means up: nothing would ever announce more.
//! - `d` down: `./run` is not running (state down or finish).
//! - `D` down and finished: pid 0 and state down (no `./finish` running either).
//!
//! After a command (`svc -W`), the status read before the command was written is the
//! [`Baseline`], and it is stale the instant the command lands. Rule:
//! - if the commands include a letter that ends the current run (`d t k K`), an up goal needs
//!   a run started after the baseline (its status stamp differs: the stamp changes at every
//!   start and exit), and a down goal is also met once the baseline's run has ended, even if a
//!   new run already replaced it (so `svc -t -W d` cannot miss a short down);
//! - if the commands include a letter that starts a run (`u o`) and the service was down at
//!   the baseline, a down goal needs the status to have changed since (a run started and ended:
//!   `svc -o -W D` waits for the one run to finish);
//! - otherwise a goal already met at the baseline is met (`svc -u -W u` on a running service
//!   returns at once).

use crate::info::Info;
use crate::status::{RunState, Status};

/// The state waited for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Goal {
    /// `u`
    Up,
    /// `U`
    Ready,
    /// `d`
    Down,
    /// `D`
    Finished,
}

impl Goal {
    pub fn from_letter(c: u8) -> Option<Goal> {
        match c {
            b'u' => Some(Goal::Up),
            b'U' => Some(Goal::Ready),
            b'd' => Some(Goal::Down),
            b'D' => Some(Goal::Finished),
            _ => None,
        }
    }

    fn is_up(self) -> bool {
        matches!(self, Goal::Up | Goal::Ready)
    }
}

/// Whether every directory must reach the goal (`-a`) or one is enough (`-o`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Quorum {
    #[default]
    All,
    One,
}

/// What one directory showed at one reading.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    pub status: Status,
    /// `supervise/info`, when the supervisor writes one and it parsed.
    pub info: Option<Info>,
    /// The service directory configures readiness (`notification-fd` or `notify-socket`).
    pub readiness: bool,
}

/// The status before a command was written, and what the command may do to the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Baseline {
    pub status: Status,
    /// The commands may end the current run.
    pub ends: bool,
    /// The commands may start a run.
    pub starts: bool,
}

impl Baseline {
    /// The baseline for `status` read before writing `commands` (svc's bytes).
    pub fn new(status: Status, commands: &[u8]) -> Baseline {
        Baseline {
            status,
            ends: commands.iter().any(|c| ends_run(*c)),
            starts: commands.iter().any(|c| starts_run(*c)),
        }
    }
}

/// Control letters after which the current run is expected to end.
pub fn ends_run(letter: u8) -> bool {
    matches!(letter, b'd' | b't' | b'k' | b'K')
}

/// Control letters after which a run is expected to start.
pub fn starts_run(letter: u8) -> bool {
    matches!(letter, b'u' | b'o')
}

/// True when `obs` is up: `./run` runs.
fn up(st: &Status) -> bool {
    st.pid != 0 && st.state == RunState::Run
}

/// True when the run in `obs` has announced readiness (or nothing can announce it).
fn ready(obs: &Observed) -> bool {
    if !up(&obs.status) {
        return false;
    }
    let Some(info) = obs.info.as_ref().filter(|_| obs.readiness) else {
        return true;
    };
    match info.ready {
        // info is written before status: a newer info than this status names another pid,
        // and the status rename that goes with it is still to come.
        Some(at) => info.pid == obs.status.pid && info.started.is_none_or(|s| at >= s),
        None => false,
    }
}

/// Whether one directory has reached `goal`.
pub fn reached(goal: Goal, obs: &Observed, base: Option<&Baseline>) -> bool {
    let st = &obs.status;
    let changed = base.is_none_or(|b| b.status.stamp != st.stamp || b.status.pid != st.pid);
    let met = match goal {
        Goal::Up => up(st),
        Goal::Ready => ready(obs),
        Goal::Down => st.state != RunState::Run,
        Goal::Finished => st.pid == 0 && st.state == RunState::Down,
    };
    let Some(b) = base else {
        return met;
    };
    let was_up = up(&b.status);
    if goal.is_up() {
        return met && (!b.ends || !was_up || changed);
    }
    if goal == Goal::Down && b.ends && was_up && changed {
        // The baseline's run is over, whatever replaced it since.
        return true;
    }
    met && (!b.starts || was_up || changed)
}

/// Whether the wait is over, given which directories have reached the goal.
pub fn decided(quorum: Quorum, reached: &[bool]) -> bool {
    match quorum {
        Quorum::All => reached.iter().all(|r| *r),
        Quorum::One => reached.iter().any(|r| *r),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::Want;
    use crate::tai::Tai64n;

    fn st(pid: u32, state: RunState, t: u64) -> Status {
        Status {
            stamp: Tai64n::from_unix(t, 0),
            pid,
            paused: false,
            want: Want::Up,
            got_term: false,
            state,
        }
    }

    fn obs(status: Status) -> Observed {
        Observed {
            status,
            info: None,
            readiness: false,
        }
    }

    fn with_info(status: Status, ready: Option<u64>, info_pid: u32) -> Observed {
        Observed {
            status,
            info: Some(Info {
                pid: info_pid,
                ready: ready.map(|t| Tai64n::from_unix(t, 0)),
                started: Some(status.stamp),
                ..Info::default()
            }),
            readiness: true,
        }
    }

    #[test]
    fn plain_goals() {
        let up = obs(st(5, RunState::Run, 10));
        let down = obs(st(0, RunState::Down, 10));
        let finishing = obs(st(0, RunState::Finish, 10));
        assert!(reached(Goal::Up, &up, None));
        assert!(!reached(Goal::Up, &down, None));
        assert!(!reached(Goal::Up, &finishing, None));
        assert!(reached(Goal::Down, &down, None));
        assert!(reached(Goal::Down, &finishing, None));
        assert!(!reached(Goal::Down, &up, None));
        assert!(reached(Goal::Finished, &down, None));
        assert!(!reached(Goal::Finished, &finishing, None));
        // runit shows the finish pid with state finish: down, not finished.
        let runsv_finish = obs(st(77, RunState::Finish, 10));
        assert!(reached(Goal::Down, &runsv_finish, None));
        assert!(!reached(Goal::Finished, &runsv_finish, None));
        assert!(!reached(Goal::Up, &runsv_finish, None));
    }

    #[test]
    fn ready_without_readiness_is_up() {
        // No knob, or no info file (daemontools, runit): ready means up.
        assert!(reached(Goal::Ready, &obs(st(5, RunState::Run, 10)), None));
        let mut o = with_info(st(5, RunState::Run, 10), None, 5);
        o.readiness = false;
        assert!(reached(Goal::Ready, &o, None));
        let mut o = obs(st(5, RunState::Run, 10));
        o.readiness = true;
        assert!(reached(Goal::Ready, &o, None));
        assert!(!reached(Goal::Ready, &obs(st(0, RunState::Down, 10)), None));
    }

    #[test]
    fn ready_needs_this_runs_mark() {
        let s = st(5, RunState::Run, 10);
        assert!(!reached(Goal::Ready, &with_info(s, None, 5), None));
        assert!(reached(Goal::Ready, &with_info(s, Some(11), 5), None));
        // info already describes another run: wait for the matching status.
        assert!(!reached(Goal::Ready, &with_info(s, Some(11), 6), None));
        // a ready time before this run started belongs to an older run.
        assert!(!reached(Goal::Ready, &with_info(s, Some(9), 5), None));
        // status says down while a stale info says ready: not ready.
        let d = st(0, RunState::Down, 10);
        assert!(!reached(Goal::Ready, &with_info(d, Some(11), 0), None));
    }

    #[test]
    fn up_after_up_command_is_already_met() {
        let before = st(5, RunState::Run, 10);
        let b = Baseline::new(before, b"u");
        assert!(reached(Goal::Up, &obs(before), Some(&b)));
        assert!(reached(
            Goal::Ready,
            &with_info(before, Some(11), 5),
            Some(&b)
        ));
    }

    #[test]
    fn restart_needs_a_newer_run() {
        let before = st(5, RunState::Run, 10);
        for cmd in [&b"t"[..], b"du", b"k", b"K"] {
            let b = Baseline::new(before, cmd);
            assert!(!reached(Goal::Up, &obs(before), Some(&b)), "{cmd:?}");
            assert!(!reached(
                Goal::Ready,
                &with_info(before, Some(11), 5),
                Some(&b)
            ));
            let after = st(6, RunState::Run, 12);
            assert!(reached(Goal::Up, &obs(after), Some(&b)));
            assert!(!reached(Goal::Ready, &with_info(after, None, 6), Some(&b)));
            assert!(reached(
                Goal::Ready,
                &with_info(after, Some(13), 6),
                Some(&b)
            ));
            // same pid reused by the new run: the stamp still tells them apart.
            let reused = st(5, RunState::Run, 12);
            assert!(reached(Goal::Up, &obs(reused), Some(&b)));
        }
        // a signal that need not end the run does not ask for a new one.
        let b = Baseline::new(before, b"h");
        assert!(reached(Goal::Up, &obs(before), Some(&b)));
    }

    #[test]
    fn down_after_down_command() {
        let before = st(5, RunState::Run, 10);
        let b = Baseline::new(before, b"d");
        // the stale status still says up: keep waiting.
        assert!(!reached(Goal::Down, &obs(before), Some(&b)));
        let mut term = before;
        term.got_term = true;
        assert!(!reached(Goal::Down, &obs(term), Some(&b)));
        let finishing = st(0, RunState::Finish, 11);
        assert!(reached(Goal::Down, &obs(finishing), Some(&b)));
        assert!(!reached(Goal::Finished, &obs(finishing), Some(&b)));
        assert!(reached(
            Goal::Finished,
            &obs(st(0, RunState::Down, 11)),
            Some(&b)
        ));
        // already down: met at once.
        let down = st(0, RunState::Down, 10);
        let b = Baseline::new(down, b"d");
        assert!(reached(Goal::Down, &obs(down), Some(&b)));
        assert!(reached(Goal::Finished, &obs(down), Some(&b)));
    }

    #[test]
    fn short_down_during_restart_is_not_missed() {
        let before = st(5, RunState::Run, 10);
        let b = Baseline::new(before, b"t");
        assert!(reached(
            Goal::Down,
            &obs(st(6, RunState::Run, 12)),
            Some(&b)
        ));
    }

    #[test]
    fn once_then_finished_waits_for_the_run() {
        let down = st(0, RunState::Down, 10);
        let b = Baseline::new(down, b"o");
        assert!(!reached(Goal::Finished, &obs(down), Some(&b)));
        assert!(!reached(
            Goal::Finished,
            &obs(st(5, RunState::Run, 11)),
            Some(&b)
        ));
        assert!(reached(
            Goal::Finished,
            &obs(st(0, RunState::Down, 12)),
            Some(&b)
        ));
    }

    #[test]
    fn quorum() {
        assert!(decided(Quorum::All, &[true, true]));
        assert!(!decided(Quorum::All, &[true, false]));
        assert!(decided(Quorum::All, &[]));
        assert!(decided(Quorum::One, &[false, true]));
        assert!(!decided(Quorum::One, &[false, false]));
        assert_eq!(Goal::from_letter(b'U'), Some(Goal::Ready));
        assert_eq!(Goal::from_letter(b'x'), None);
    }
}
