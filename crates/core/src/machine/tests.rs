//! Table tests and random command/exit sequences for the supervise state machine, driven by a
//! simulated clock and a simulated process table.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use super::*;

/// A fake driver: hands out pids, remembers which children live, records signals.
struct Sim {
    m: Machine,
    now: Now,
    next_pid: u32,
    run: Option<u32>,
    finish: Option<u32>,
    has_finish: bool,
    spawn_fails: bool,
    signals: Vec<(u32, i32, bool)>,
    starts: Vec<Duration>,
    finish_args: Vec<(i32, i32)>,
    exited: bool,
    written: Status,
}

fn at(ms: u64) -> Now {
    Now {
        mono: Duration::from_millis(ms),
        wall: Tai64n::from_unix(1_000_000 + ms / 1000, ((ms % 1000) * 1_000_000) as u32),
    }
}

const EXIT0: i32 = 0;
const KILLED_BY_TERM: i32 = 15;

impl Sim {
    fn new(cfg: Config, start_down: bool) -> Sim {
        let now = at(0);
        let mut m = Machine::new(cfg, start_down, now);
        let written = m.status();
        m.start(now);
        let mut s = Sim {
            m,
            now,
            next_pid: 100,
            run: None,
            finish: None,
            has_finish: false,
            spawn_fails: false,
            signals: vec![],
            starts: vec![],
            finish_args: vec![],
            exited: false,
            written,
        };
        s.drive();
        s
    }

    fn drive(&mut self) {
        while let Some(a) = self.m.next_action() {
            match a {
                Action::SpawnRun => {
                    assert!(self.run.is_none() && self.finish.is_none(), "second child");
                    assert!(!self.exited);
                    if self.spawn_fails {
                        self.m.run_spawn_failed(self.now);
                    } else {
                        self.next_pid += 1;
                        self.run = Some(self.next_pid);
                        self.starts.push(self.now.mono);
                        self.m.run_spawned(self.next_pid, self.now);
                    }
                }
                Action::SpawnFinish { code, signal } => {
                    assert!(
                        self.run.is_none() && self.finish.is_none(),
                        "finish beside a child"
                    );
                    self.finish_args.push((code, signal));
                    if self.has_finish {
                        self.next_pid += 1;
                        self.finish = Some(self.next_pid);
                        self.m.finish_spawned(self.next_pid, self.now);
                    } else {
                        self.m.finish_spawn_failed(self.now);
                    }
                }
                Action::Signal { pid, sig, group } => {
                    assert!(
                        Some(pid) == self.run || Some(pid) == self.finish,
                        "signal to a stranger"
                    );
                    self.signals.push((pid, sig, group));
                }
                Action::Exit => {
                    assert!(
                        self.run.is_none() && self.finish.is_none(),
                        "exit with a child alive"
                    );
                    self.exited = true;
                }
            }
        }
        let st = self.m.status();
        if self.m.take_dirty() {
            self.written = st;
        }
        assert_eq!(
            self.written, st,
            "status changed without being marked dirty"
        );
        assert_eq!(st.pid != 0, self.run.is_some(), "pid shown iff run lives");
        if let Some(pid) = self.run {
            assert_eq!(st.pid, pid);
        }
        if self.finish.is_some() {
            assert_eq!(st.state, RunState::Finish);
        }
    }

    fn cmd(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.m.command(b, self.now);
            self.drive();
        }
        self.m.end_of_commands();
    }

    fn advance(&mut self, ms: u64) {
        self.now = at(self.now.mono.as_millis() as u64 + ms);
        if self.m.next_deadline().is_some_and(|d| d <= self.now.mono) {
            self.m.timer(self.now);
        }
        self.drive();
    }

    /// Jumps to the next deadline, if any.
    fn jump_to_deadline(&mut self) -> bool {
        let Some(d) = self.m.next_deadline() else {
            return false;
        };
        if d > self.now.mono {
            self.now = at(d.as_millis() as u64);
        }
        self.m.timer(self.now);
        self.drive();
        true
    }

    fn run_exits(&mut self, ws: i32) {
        let pid = self.run.take().unwrap();
        self.m.child_exited(pid, ws, self.now);
        self.drive();
    }

    fn finish_exits(&mut self, ws: i32) {
        let pid = self.finish.take().unwrap();
        self.m.child_exited(pid, ws, self.now);
        self.drive();
    }
}

#[test]
fn starts_up_unless_down_file() {
    let s = Sim::new(Config::default(), false);
    assert_eq!(s.run, Some(101));
    assert_eq!(s.m.status().want, Want::Up);
    let s = Sim::new(Config::default(), true);
    assert_eq!(s.run, None);
    assert_eq!(s.m.status().want, Want::Down);
    assert_eq!(s.m.next_deadline(), None, "idle machine has no deadline");
}

#[test]
fn down_sends_term_then_cont_and_stays_down() {
    let mut s = Sim::new(Config::default(), false);
    s.cmd(b"d");
    assert_eq!(s.signals, vec![(101, 15, false), (101, 18, false)]);
    assert!(s.m.status().got_term);
    s.run_exits(KILLED_BY_TERM);
    assert_eq!(s.m.status().pid, 0);
    assert_eq!(s.m.status().want, Want::Down);
    assert_eq!(s.m.next_deadline(), None);
    s.advance(10_000);
    assert_eq!(s.starts.len(), 1);
}

#[test]
fn crash_restart_is_paced_one_second_after_the_start() {
    let mut s = Sim::new(Config::default(), false);
    s.advance(300);
    s.run_exits(EXIT0);
    assert_eq!(s.run, None);
    assert_eq!(s.m.next_deadline(), Some(Duration::from_millis(1000)));
    s.advance(600);
    assert_eq!(s.run, None);
    s.advance(100);
    assert_eq!(s.run, Some(102));
    assert_eq!(s.starts, vec![Duration::ZERO, Duration::from_millis(1000)]);
    // A run that lived longer than a second comes back at once.
    s.advance(5000);
    s.run_exits(EXIT0);
    assert_eq!(s.run, Some(103));
}

#[test]
fn commands_act_during_the_pause() {
    let mut s = Sim::new(Config::default(), false);
    s.advance(100);
    s.run_exits(EXIT0);
    // Down during the restart pause: the pending restart is dropped at once.
    s.cmd(b"d");
    assert_eq!(s.m.next_deadline(), None);
    s.advance(5000);
    assert_eq!(s.run, None);
    // Up is obeyed at once, even 0.1 s after the previous start.
    let mut s = Sim::new(Config::default(), false);
    s.cmd(b"d");
    s.run_exits(KILLED_BY_TERM);
    s.advance(100);
    s.cmd(b"u");
    assert_eq!(s.run, Some(102));
    assert_eq!(s.starts[1], Duration::from_millis(100));
}

#[test]
fn down_right_after_up_acts_at_once() {
    let mut s = Sim::new(Config::default(), true);
    s.cmd(b"u");
    s.advance(100);
    s.cmd(b"d");
    assert_eq!(s.signals.first(), Some(&(101, 15, false)));
}

#[test]
fn once_runs_once() {
    let mut s = Sim::new(Config::default(), true);
    s.cmd(b"o");
    assert_eq!(s.m.status().want, Want::Once);
    assert_eq!(s.m.status().pack()[17], 0);
    s.advance(2000);
    s.run_exits(EXIT0);
    s.advance(5000);
    assert_eq!(s.starts.len(), 1);
    assert_eq!(s.m.status().want, Want::Once);
}

#[test]
fn exit_waits_for_down() {
    let mut s = Sim::new(Config::default(), false);
    s.cmd(b"x");
    assert!(!s.exited);
    s.run_exits(EXIT0);
    assert!(s.exited, "x: exit when the service dies, no restart");
    assert_eq!(s.starts.len(), 1);

    let mut s = Sim::new(Config::default(), false);
    s.cmd(b"dx");
    assert!(!s.exited);
    s.run_exits(KILLED_BY_TERM);
    assert!(s.exited);
}

#[test]
fn pause_and_continue() {
    let mut s = Sim::new(Config::default(), false);
    s.cmd(b"p");
    assert!(s.m.status().paused);
    assert_eq!(s.m.status().pack()[16], 1);
    s.cmd(b"c");
    assert!(!s.m.status().paused);
    assert_eq!(s.signals, vec![(101, 19, false), (101, 18, false)]);
}

#[test]
fn signal_letters_and_group_forms() {
    let mut s = Sim::new(Config::default(), false);
    s.cmd(b"haikq12w");
    let sigs: Vec<i32> = s.signals.iter().map(|x| x.1).collect();
    assert_eq!(sigs, vec![1, 14, 2, 9, 3, 10, 12, 28]);
    assert!(s.signals.iter().all(|x| !x.2));
    s.signals.clear();
    s.cmd(b"+h=h");
    assert_eq!(s.signals, vec![(101, 1, true), (101, 1, false)]);
    s.signals.clear();
    s.cmd(b"+");
    s.cmd(b"h");
    assert_eq!(
        s.signals,
        vec![(101, 1, false)],
        "group mode ends with the write"
    );
    s.signals.clear();
    s.cmd(b"K");
    assert_eq!(s.signals, vec![(101, 9, true)]);
}

#[test]
fn group_signals_need_an_own_group() {
    let cfg = Config {
        own_group: false,
        ..Config::default()
    };
    let mut s = Sim::new(cfg, false);
    s.cmd(b"K");
    assert_eq!(s.signals, vec![(101, 9, false)]);
}

#[test]
fn log_target_commands_are_skipped() {
    let mut s = Sim::new(Config::default(), false);
    s.cmd(b"Ldl");
    assert!(s.signals.is_empty());
    assert_eq!(s.m.status().want, Want::Up);
    s.cmd(b"lLd");
    assert!(s.signals.is_empty());
}

#[test]
fn unknown_bytes_are_ignored() {
    let mut s = Sim::new(Config::default(), false);
    let before = s.m.status();
    s.cmd(b"zZ\0\xff\n");
    assert_eq!(s.m.status(), before);
    assert!(s.signals.is_empty());
}

#[test]
fn spawn_failure_is_retried_paced() {
    let mut s = Sim::new(Config::default(), true);
    s.spawn_fails = true;
    s.cmd(b"u");
    assert_eq!(s.run, None);
    assert_eq!(s.m.record().last_exit_kind, Some(ExitKind::SpawnFailed));
    assert_eq!(s.m.next_deadline(), Some(Duration::from_millis(1000)));
    s.spawn_fails = false;
    s.jump_to_deadline();
    assert_eq!(s.run, Some(101));
}

#[test]
fn finish_gets_code_and_signal() {
    let mut s = Sim::new(Config::default(), false);
    s.has_finish = true;
    s.run_exits(3 << 8);
    assert_eq!(s.finish_args, vec![(3, 0)]);
    assert_eq!(s.m.status().state, RunState::Finish);
    assert_eq!(s.m.status().pid, 0);
    s.finish_exits(EXIT0);
    s.jump_to_deadline();
    s.run_exits(9);
    assert_eq!(s.finish_args, vec![(3, 0), (-1, 9)]);
}

#[test]
fn finish_is_killed_after_its_timeout() {
    let mut s = Sim::new(Config::default(), false);
    s.has_finish = true;
    s.cmd(b"d");
    s.run_exits(KILLED_BY_TERM);
    let fpid = s.finish.unwrap();
    s.signals.clear();
    s.advance(4999);
    assert!(s.signals.is_empty());
    s.advance(1);
    assert_eq!(s.signals, vec![(fpid, 9, true)]);
}

#[test]
fn finish_125_means_stay_down() {
    let mut s = Sim::new(Config::default(), false);
    s.has_finish = true;
    s.run_exits(1 << 8);
    s.finish_exits(125 << 8);
    assert_eq!(s.m.status().want, Want::Down);
    assert!(s.m.record().failed);
    assert_eq!(s.m.next_deadline(), None);
}

#[test]
fn up_during_finish_starts_right_after_it() {
    let mut s = Sim::new(Config::default(), false);
    s.has_finish = true;
    s.cmd(b"d");
    s.run_exits(KILLED_BY_TERM);
    s.cmd(b"u");
    assert_eq!(s.run, None, "never beside finish");
    s.finish_exits(EXIT0);
    assert_eq!(s.run, Some(103));
}

#[test]
fn timeout_kill_escalates() {
    let cfg = Config {
        timeout_kill: Some(Duration::from_millis(2000)),
        ..Config::default()
    };
    let mut s = Sim::new(cfg, false);
    s.cmd(b"d");
    s.advance(1999);
    assert_eq!(s.signals.len(), 2);
    s.advance(1);
    assert_eq!(s.signals[2], (101, 9, true));
    s.run_exits(9);
    assert_eq!(s.m.next_deadline(), None);
}

#[test]
fn down_signal_is_configurable() {
    let cfg = Config {
        down_signal: sig::QUIT,
        ..Config::default()
    };
    let mut s = Sim::new(cfg, false);
    s.cmd(b"d");
    assert_eq!(s.signals[0], (101, 3, false));
}

#[test]
fn backoff_doubles_to_cap_and_resets() {
    let cfg = Config {
        backoff: Some(Backoff {
            cap: Duration::from_secs(8),
            reset_after: Duration::from_secs(10),
        }),
        ..Config::default()
    };
    let mut s = Sim::new(cfg, false);
    let mut gaps = vec![];
    for _ in 0..6 {
        let t = s.now.mono;
        s.run_exits(1 << 8);
        assert!(s.jump_to_deadline());
        gaps.push((s.now.mono - t).as_millis());
    }
    assert_eq!(gaps, vec![1000, 2000, 4000, 8000, 8000, 8000]);
    // Up is obeyed at once whatever the delay.
    s.run_exits(1 << 8);
    s.cmd(b"u");
    assert!(s.run.is_some());
    // A long run resets the delay: it comes back at once, and the next quick death waits 1 s.
    s.advance(20_000);
    s.run_exits(1 << 8);
    assert!(s.run.is_some());
    assert_eq!(s.m.record().quick_deaths, 0);
    s.advance(10);
    s.run_exits(1 << 8);
    let t = s.now.mono;
    s.jump_to_deadline();
    assert_eq!(
        (s.now.mono - t).as_millis(),
        1000,
        "backoff counts from the exit"
    );
}

#[test]
fn max_restarts_gives_up() {
    let cfg = Config {
        max_restarts: Some(MaxRestarts {
            count: 3,
            window: Duration::from_secs(60),
        }),
        ..Config::default()
    };
    let mut s = Sim::new(cfg, false);
    for _ in 0..10 {
        if s.run.is_none() {
            break;
        }
        s.advance(1500);
        s.run_exits(1 << 8);
    }
    assert_eq!(s.starts.len(), 4, "first start plus 3 restarts");
    assert!(s.m.record().failed);
    assert_eq!(s.m.status().want, Want::Down);
    assert_eq!(s.m.next_deadline(), None);
    s.cmd(b"u");
    assert!(s.run.is_some(), "svc -u clears the failure");
    assert!(!s.m.record().failed);
}

#[test]
fn readiness_is_recorded_and_cleared() {
    let mut s = Sim::new(Config::default(), false);
    s.advance(250);
    s.m.ready(s.now);
    s.drive();
    assert_eq!(s.m.record().ready, Some(at(250).wall));
    s.run_exits(EXIT0);
    assert_eq!(s.m.record().ready, None);
}

/// xorshift64*, enough randomness for sequence tests without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn random_sequences_keep_the_invariants() {
    let letters = b"udopcxhtkK+=Ll?\0";
    for seed in 1..=400u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let cfg = Config {
            timeout_kill: (rng.below(2) == 0).then(|| Duration::from_millis(rng.below(3000))),
            backoff: (rng.below(2) == 0).then_some(Backoff {
                cap: Duration::from_secs(4),
                reset_after: Duration::from_secs(2),
            }),
            max_restarts: (rng.below(3) == 0).then_some(MaxRestarts {
                count: 5,
                window: Duration::from_secs(30),
            }),
            ..Config::default()
        };
        let mut s = Sim::new(cfg, rng.below(2) == 0);
        s.has_finish = rng.below(2) == 0;
        for _ in 0..300 {
            if s.exited {
                break;
            }
            match rng.below(6) {
                0 | 1 => {
                    let n = 1 + rng.below(3) as usize;
                    let bytes: Vec<u8> = (0..n)
                        .map(|_| letters[rng.below(letters.len() as u64) as usize])
                        .collect();
                    s.cmd(&bytes);
                }
                2 if s.run.is_some() => s.run_exits([0, 1 << 8, 9, 15][rng.below(4) as usize]),
                3 if s.finish.is_some() => s.finish_exits([0, 125 << 8, 9][rng.below(3) as usize]),
                4 => {
                    s.jump_to_deadline();
                }
                _ => s.advance(rng.below(1500)),
            }
            s.spawn_fails = rng.below(10) == 0;
            // want honoured: nothing running and nothing pending means want is not up (or the
            // service gave up).
            let st = s.m.status();
            let idle = s.run.is_none() && s.finish.is_none() && s.m.next_deadline().is_none();
            if idle && !s.exited {
                assert!(
                    st.want != Want::Up || s.m.record().failed,
                    "seed {seed}: want up but nothing runs or waits"
                );
            }
            // Want down: no start is pending.
            if st.want == Want::Down {
                assert!(
                    s.m.restart_at.is_none(),
                    "seed {seed}: restart pending with want down"
                );
            }
        }
        // Pacing: automatic restarts are at least 1 s apart; only commands may start sooner.
        assert!(s.starts.windows(2).all(|w| w[1] >= w[0]));
    }
}

#[test]
fn adopted_run_is_not_started_again_and_restarts_when_it_ends() {
    let now = at(0);
    let mut m = Machine::new(Config::default(), false, now);
    m.adopt(
        Adopted {
            pid: 4242,
            stamp: Tai64n::from_unix(999_000, 0),
            want: Want::Up,
            paused: false,
            ready: Some(Tai64n::from_unix(999_001, 0)),
            started: Some(Tai64n::from_unix(999_000, 0)),
            starts: 7,
        },
        now,
    );
    m.start(now);
    assert_eq!(
        m.next_action(),
        None,
        "nothing started beside the adopted run"
    );
    assert_eq!(m.status().pid, 4242);
    assert_eq!(m.status().stamp, Tai64n::from_unix(999_000, 0));
    assert!(m.record().adopted);
    assert!(m.record().ready.is_some(), "readiness carries on");
    let later = at(5000);
    m.adopted_exited(4242, later);
    assert_eq!(
        m.next_action(),
        Some(Action::SpawnFinish {
            code: -1,
            signal: 0
        })
    );
    m.finish_spawn_failed(later);
    assert_eq!(m.next_action(), Some(Action::SpawnRun));
    m.run_spawned(5000, later);
    assert_eq!(m.record().last_exit_kind, Some(ExitKind::Unknown));
    assert_eq!(m.record().starts, 8);
    assert!(!m.record().adopted);
}

#[test]
fn adopted_run_that_was_being_stopped_is_stopped() {
    let now = at(0);
    let mut m = Machine::new(Config::default(), false, now);
    m.adopt(
        Adopted {
            pid: 4242,
            stamp: Tai64n::from_unix(999_000, 0),
            want: Want::Down,
            paused: false,
            ready: None,
            started: None,
            starts: 1,
        },
        now,
    );
    m.start(now);
    assert_eq!(
        m.next_action(),
        Some(Action::Signal {
            pid: 4242,
            sig: 15,
            group: false
        })
    );
    assert_eq!(
        m.next_action(),
        Some(Action::Signal {
            pid: 4242,
            sig: 18,
            group: false
        })
    );
    m.adopted_exited(4242, at(10));
    assert_eq!(
        m.next_action(),
        Some(Action::SpawnFinish {
            code: -1,
            signal: 0
        })
    );
    m.finish_spawn_failed(at(10));
    assert_eq!(m.next_action(), None, "want down: not restarted");
}

#[test]
fn handed_over_machine_keeps_the_want_it_is_given() {
    let now = at(0);
    for (want, starts) in [(Want::Up, true), (Want::Down, false), (Want::Once, false)] {
        let mut m = Machine::with_want(Config::default(), want, now);
        m.start(now);
        assert_eq!(
            m.next_action() == Some(Action::SpawnRun),
            starts,
            "want {want:?}"
        );
        assert_eq!(m.status().want, want);
    }
}
