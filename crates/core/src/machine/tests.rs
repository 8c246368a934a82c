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

/// The next action that is not a history record or a status write; a probe for `./finish` is
/// answered "it exists".
fn deed(m: &mut Machine) -> Option<Action> {
    loop {
        match m.next_action() {
            Some(Action::History(_) | Action::WriteStatus { .. }) => {}
            Some(Action::ProbeFinish) => m.handle(Input::FinishExists(true), at(0)),
            other => return other,
        }
    }
}

const EXIT0: i32 = 0;
const KILLED_BY_TERM: i32 = 15;

impl Sim {
    fn new(cfg: Config, start_down: bool) -> Sim {
        let now = at(0);
        let mut m = Machine::new(cfg, start_down, now);
        let written = m.status();
        m.handle(Input::Start, now);
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
                        self.m.handle(Input::RunSpawnFailed, self.now);
                    } else {
                        self.next_pid += 1;
                        self.run = Some(self.next_pid);
                        self.starts.push(self.now.mono);
                        self.m.handle(Input::RunSpawned(self.next_pid), self.now);
                    }
                }
                Action::ProbeFinish => {
                    assert!(
                        self.run.is_none() && self.finish.is_none(),
                        "finish beside a child"
                    );
                    self.m
                        .handle(Input::FinishExists(self.has_finish), self.now);
                }
                Action::SpawnFinish { code, signal } => {
                    assert!(self.has_finish, "finish spawned where there is none");
                    assert_eq!(
                        self.written,
                        self.m.status(),
                        "the exit is shown before finish starts"
                    );
                    self.finish_args.push((code, signal));
                    self.next_pid += 1;
                    self.finish = Some(self.next_pid);
                    self.m.handle(Input::FinishSpawned(self.next_pid), self.now);
                }
                Action::WriteStatus { .. } => {
                    self.written = self.m.status();
                    self.m.handle(Input::Written(true), self.now);
                }
                Action::Signal { pid, sig, group } => {
                    assert!(
                        Some(pid) == self.run || Some(pid) == self.finish,
                        "signal to a stranger"
                    );
                    self.signals.push((pid, sig, group));
                }
                Action::SignalService { sig } => {
                    // The whole service: here, the run's process group.
                    let pid = self.run.expect("service signal with no run");
                    self.signals.push((pid, sig, true));
                }
                Action::FindDaemon => panic!("no leftovers in this simulation"),
                Action::History(_) => {}
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
            self.m.handle(Input::Control(b), self.now);
            self.drive();
        }
        self.m.handle(Input::EndOfWrite, self.now);
    }

    fn advance(&mut self, ms: u64) {
        self.now = at(self.now.mono.as_millis() as u64 + ms);
        if self.m.next_deadline().is_some_and(|d| d <= self.now.mono) {
            self.m.handle(Input::Timer, self.now);
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
        self.m.handle(Input::Timer, self.now);
        self.drive();
        true
    }

    fn run_exits(&mut self, ws: i32) {
        let pid = self.run.take().unwrap();
        self.m.handle(Input::Reaped { pid, status: ws }, self.now);
        self.m.handle(Input::Population(false), self.now);
        self.drive();
    }

    fn finish_exits(&mut self, ws: i32) {
        let pid = self.finish.take().unwrap();
        self.m.handle(Input::Reaped { pid, status: ws }, self.now);
        self.m.handle(Input::Population(false), self.now);
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
    assert!(s.m.record().delay.is_some(), "a restart is pending");
    s.cmd(b"d");
    assert_eq!(s.m.next_deadline(), None);
    assert_eq!(s.m.record().delay, None, "info shows no pending restart");
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
    s.m.handle(Input::Ready, s.now);
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
    m.handle(Input::Start, now);
    assert_eq!(deed(&mut m), None, "nothing started beside the adopted run");
    assert_eq!(m.status().pid, 4242);
    assert_eq!(m.status().stamp, Tai64n::from_unix(999_000, 0));
    assert!(m.record().adopted);
    assert!(m.record().ready.is_some(), "readiness carries on");
    let later = at(5000);
    m.handle(Input::AdoptedEnded(4242), later);
    m.handle(Input::Population(false), later);
    assert_eq!(
        deed(&mut m),
        Some(Action::SpawnFinish {
            code: -1,
            signal: 0
        })
    );
    m.handle(Input::FinishSpawnFailed, later);
    assert_eq!(deed(&mut m), Some(Action::SpawnRun));
    m.handle(Input::RunSpawned(5000), later);
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
    m.handle(Input::Start, now);
    assert_eq!(
        deed(&mut m),
        Some(Action::Signal {
            pid: 4242,
            sig: 15,
            group: false
        })
    );
    assert_eq!(
        deed(&mut m),
        Some(Action::Signal {
            pid: 4242,
            sig: 18,
            group: false
        })
    );
    m.handle(Input::AdoptedEnded(4242), at(10));
    m.handle(Input::Population(false), at(10));
    assert_eq!(
        deed(&mut m),
        Some(Action::SpawnFinish {
            code: -1,
            signal: 0
        })
    );
    m.handle(Input::FinishSpawnFailed, at(10));
    assert_eq!(deed(&mut m), None, "want down: not restarted");
}

#[test]
fn handed_over_machine_keeps_the_want_it_is_given() {
    let now = at(0);
    for (want, starts) in [(Want::Up, true), (Want::Down, false), (Want::Once, false)] {
        let mut m = Machine::with_want(Config::default(), want, now);
        m.handle(Input::Start, now);
        assert_eq!(
            deed(&mut m) == Some(Action::SpawnRun),
            starts,
            "want {want:?}"
        );
        assert_eq!(m.status().want, want);
    }
}

/// All actions pending, in order.
fn drain(m: &mut Machine) -> Vec<Action> {
    std::iter::from_fn(|| m.next_action())
        .filter(|a| !matches!(a, Action::WriteStatus { .. }))
        .collect()
}

/// A machine with `cfg` whose run (pid 101) is up at time 0.
fn running(cfg: Config) -> Machine {
    let mut m = Machine::new(cfg, false, at(0));
    m.handle(Input::Start, at(0));
    assert_eq!(deed(&mut m), Some(Action::SpawnRun));
    m.handle(Input::RunSpawned(101), at(0));
    drain(&mut m);
    m
}

/// The main process `pid` was reaped with wait status `status`, and nothing of the service is
/// left.
fn ends(m: &mut Machine, pid: u32, status: i32, now: Now) {
    m.handle(Input::Reaped { pid, status }, now);
    m.handle(Input::Population(false), now);
}

/// What stopping run 101 on its own for `why` looks like: the record, then TERM and CONT.
fn stopped_by(why: StopWhy) -> Vec<Action> {
    vec![
        Action::History(Event::Stop { pid: 101, why }),
        to_main(sig::TERM),
        to_main(sig::CONT),
    ]
}

fn service(sig: i32) -> Action {
    Action::SignalService { sig }
}

fn to_main(sig: i32) -> Action {
    Action::Signal {
        pid: 101,
        sig,
        group: false,
    }
}

#[test]
fn stop_sequence_parses_signals_and_waits() {
    let seq = StopSequence::parse("TERM 5000 QUIT 2000 KILL").unwrap();
    assert_eq!(seq.len(), 3);
    assert_eq!(seq.step(0), Some((sig::TERM, Some(5000))));
    assert_eq!(seq.step(1), Some((sig::QUIT, Some(2000))));
    assert_eq!(seq.step(2), Some((sig::KILL, None)));
    assert_eq!(
        StopSequence::parse("SIGINT 100").unwrap().step(0),
        Some((sig::INT, Some(100)))
    );
    for bad in [
        "",
        "5000",
        "TERM KILL",
        "TERM 10 20",
        "NOPE 10 KILL",
        "A 1 B 1 C 1 D 1 E 1 F 1 G 1 H 1 I",
    ] {
        assert_eq!(StopSequence::parse(bad), None, "{bad:?}");
    }
}

#[test]
fn stop_sequence_steps_in_order_with_their_waits() {
    let cfg = Config {
        stop_sequence: StopSequence::parse("TERM 5000 QUIT 2000 KILL"),
        ..Config::default()
    };
    let mut m = running(cfg);
    m.handle(Input::Control(b'd'), at(1000));
    assert_eq!(drain(&mut m), vec![to_main(sig::TERM), to_main(sig::CONT)]);
    assert_eq!(m.next_deadline(), Some(Duration::from_millis(6000)));
    assert_eq!(m.record().stopping, Some(StopReason::Down));
    m.handle(Input::Timer, at(6000));
    assert_eq!(drain(&mut m), vec![service(sig::QUIT)]);
    assert_eq!(m.next_deadline(), Some(Duration::from_millis(8000)));
    m.handle(Input::Timer, at(8000));
    assert_eq!(drain(&mut m), vec![service(sig::KILL)]);
    assert_eq!(m.next_deadline(), None);
    ends(&mut m, 101, 9, at(8001));
    assert!(matches!(deed(&mut m), Some(Action::SpawnFinish { .. })));
    m.handle(Input::FinishSpawnFailed, at(8001));
    assert_eq!(m.status().pid, 0);
    assert_eq!(m.record().stopping, None);
    assert_eq!(drain(&mut m), vec![], "down: not restarted");
}

#[test]
fn classic_knobs_are_a_two_step_sequence() {
    let cfg = Config {
        down_signal: sig::HUP,
        timeout_kill: Some(Duration::from_millis(300)),
        ..Config::default()
    };
    let seq = cfg.stop_steps();
    assert_eq!(seq.step(0), Some((sig::HUP, Some(300))));
    assert_eq!(seq.step(1), Some((sig::KILL, None)));
    assert_eq!(Config::default().stop_steps().len(), 1);
}

#[test]
fn watchdog_restarts_a_run_that_stops_pinging() {
    let cfg = Config {
        watchdog: Some(Duration::from_millis(300)),
        ..Config::default()
    };
    let mut m = running(cfg);
    assert_eq!(m.next_deadline(), Some(Duration::from_millis(300)));
    for t in [200, 400, 600] {
        m.handle(Input::Ping, at(t));
        assert_eq!(m.next_deadline(), Some(Duration::from_millis(t + 300)));
        assert_eq!(drain(&mut m), vec![]);
    }
    m.handle(Input::Timer, at(900));
    assert_eq!(drain(&mut m), stopped_by(StopWhy::Watchdog));
    assert_eq!(m.record().stopping, Some(StopReason::Watchdog));
    assert_eq!(m.status().want, Want::Up, "a hang is not a down");
    m.handle(Input::Ping, at(950));
    assert_eq!(m.next_deadline(), None, "no watchdog while stopping");
    ends(&mut m, 101, 15, at(1000));
    assert!(matches!(deed(&mut m), Some(Action::SpawnFinish { .. })));
    m.handle(Input::FinishSpawnFailed, at(1000));
    assert_eq!(deed(&mut m), Some(Action::SpawnRun), "restarted");
    m.handle(Input::RunSpawned(102), at(1000));
    assert_eq!(m.next_deadline(), Some(Duration::from_millis(1300)));
}

#[test]
fn deadman_keeps_the_service_down_while_stale_and_up_when_touched() {
    let cfg = Config {
        deadman: Some(Duration::from_secs(10)),
        ..Config::default()
    };
    // Touched 4 s before supervise starts: fresh for 6 s more.
    let mut m = Machine::new(cfg, false, at(0));
    m.handle(Input::Deadman(Some(at(0).wall)), at(4000));
    m.handle(Input::Start, at(4000));
    assert_eq!(deed(&mut m), Some(Action::SpawnRun));
    m.handle(Input::RunSpawned(101), at(4000));
    drain(&mut m);
    assert_eq!(m.next_deadline(), Some(Duration::from_millis(10_000)));
    m.handle(Input::Timer, at(10_000));
    assert_eq!(drain(&mut m), stopped_by(StopWhy::Deadman));
    assert!(m.record().deadman_stale);
    ends(&mut m, 101, 15, at(10_010));
    assert!(matches!(deed(&mut m), Some(Action::SpawnFinish { .. })));
    m.handle(Input::FinishSpawnFailed, at(10_010));
    assert_eq!(drain(&mut m), vec![], "kept down while stale");
    m.handle(Input::Control(b'u'), at(11_000));
    assert_eq!(
        drain(&mut m),
        vec![],
        "svc -u does not override a stale dead-man"
    );
    assert_eq!(m.next_deadline(), None, "nothing to wait for but the file");
    // Touched again.
    m.handle(Input::Deadman(Some(at(12_000).wall)), at(12_000));
    assert_eq!(deed(&mut m), Some(Action::SpawnRun));
    m.handle(Input::RunSpawned(102), at(12_000));
    assert!(!m.record().deadman_stale);
    assert_eq!(m.next_deadline(), Some(Duration::from_millis(22_000)));
    // Gone stale, then an admin says down: touching it again starts nothing.
    m.handle(Input::Deadman(None), at(13_000));
    drain(&mut m);
    ends(&mut m, 102, 15, at(13_010));
    m.handle(Input::FinishSpawnFailed, at(13_010));
    m.handle(Input::Control(b'd'), at(13_020));
    drain(&mut m);
    m.handle(Input::Deadman(Some(at(14_000).wall)), at(14_000));
    assert_eq!(deed(&mut m), None, "admin's down wins");
}

#[test]
fn leftovers_of_a_crashed_run_are_stopped_before_the_restart() {
    let mut m = running(Config::default());
    m.handle(
        Input::Reaped {
            pid: 101,
            status: 1 << 8,
        },
        at(2000),
    );
    m.handle(Input::Population(true), at(2000));
    let acts = drain(&mut m);
    assert!(acts.contains(&service(sig::TERM)), "{acts:?}");
    assert!(
        !acts
            .iter()
            .any(|a| matches!(a, Action::SpawnRun | Action::SpawnFinish { .. }))
    );
    assert_eq!(m.status().pid, 101, "not down while its processes live");
    assert_eq!(m.record().stopping, Some(StopReason::Leftovers));
    assert_eq!(m.next_deadline(), Some(Duration::from_millis(7000)));
    m.handle(Input::Timer, at(7000));
    assert_eq!(drain(&mut m), vec![service(sig::KILL)]);
    ends(&mut m, 300, 9, at(7001));
    assert_eq!(
        deed(&mut m),
        Some(Action::SpawnFinish { code: 1, signal: 0 }),
        "finish sees how the main process ended"
    );
    m.handle(Input::FinishSpawnFailed, at(7001));
    assert_eq!(deed(&mut m), Some(Action::SpawnRun));
}

#[test]
fn a_daemon_left_by_a_clean_exit_is_tracked_as_the_main_process() {
    let mut m = running(Config::default());
    m.handle(
        Input::Reaped {
            pid: 101,
            status: 0,
        },
        at(50),
    );
    m.handle(Input::Population(true), at(50));
    assert_eq!(deed(&mut m), Some(Action::FindDaemon));
    m.handle(Input::Daemon(Some(555)), at(50));
    assert_eq!(
        drain(&mut m),
        vec![Action::History(Event::Track { pid: 555 })]
    );
    assert_eq!(m.status().pid, 555);
    assert!(m.record().tracked);
    // svc -d stops the daemon, and what it left.
    m.handle(Input::Control(b'd'), at(100));
    assert_eq!(
        drain(&mut m),
        vec![
            Action::Signal {
                pid: 555,
                sig: sig::TERM,
                group: false
            },
            Action::Signal {
                pid: 555,
                sig: sig::CONT,
                group: false
            }
        ]
    );
    m.handle(
        Input::Reaped {
            pid: 555,
            status: 15,
        },
        at(120),
    );
    m.handle(Input::Population(true), at(120));
    assert_eq!(deed(&mut m), Some(service(sig::TERM)));
    assert_eq!(m.status().pid, 555, "down only once empty");
    m.handle(Input::Population(false), at(130));
    assert!(matches!(deed(&mut m), Some(Action::SpawnFinish { .. })));
    m.handle(Input::FinishSpawnFailed, at(130));
    assert_eq!(m.status().pid, 0);
    // No daemon found: the leftovers are stopped instead.
    let mut m = running(Config::default());
    m.handle(
        Input::Reaped {
            pid: 101,
            status: 0,
        },
        at(50),
    );
    m.handle(Input::Population(true), at(50));
    assert_eq!(deed(&mut m), Some(Action::FindDaemon));
    m.handle(Input::Daemon(None), at(50));
    assert!(drain(&mut m).contains(&service(sig::TERM)));
}

#[test]
fn signal_to_supervise_means_its_control_bytes() {
    let mut m = running(Config::default());
    m.handle(Input::Signal(sig::TERM), at(10));
    assert_eq!(drain(&mut m), vec![to_main(sig::TERM), to_main(sig::CONT)]);
    assert_eq!(m.status().want, Want::Down);
    ends(&mut m, 101, 15, at(20));
    m.handle(Input::FinishSpawnFailed, at(20));
    assert_eq!(
        drain(&mut m).last(),
        Some(&Action::Exit),
        "TERM means dx: exit once down"
    );
}

/// The simulated processes of the random test.
#[derive(Default)]
struct World {
    main: Option<u32>,
    leftovers: u32,
    finish: Option<u32>,
    pid: u32,
}

impl World {
    fn perform(&mut self, m: &mut Machine, now: Now, seed: u64) {
        while let Some(a) = m.next_action() {
            match a {
                Action::SpawnRun => {
                    assert!(
                        self.main.is_none() && self.leftovers == 0 && self.finish.is_none(),
                        "seed {seed}: spawn beside a process of the service"
                    );
                    assert!(!m.record().deadman_stale, "seed {seed}: spawn while stale");
                    self.pid += 1;
                    self.main = Some(self.pid);
                    m.handle(Input::RunSpawned(self.pid), now);
                }
                Action::ProbeFinish => m.handle(Input::FinishExists(true), now),
                Action::SpawnFinish { .. } => {
                    assert!(self.main.is_none() && self.leftovers == 0, "seed {seed}");
                    self.pid += 1;
                    self.finish = Some(self.pid);
                    m.handle(Input::FinishSpawned(self.pid), now);
                }
                Action::FindDaemon => {
                    // One leftover becomes the main process.
                    self.leftovers -= 1;
                    self.pid += 1;
                    self.main = Some(self.pid);
                    m.handle(Input::Daemon(Some(self.pid)), now);
                }
                Action::SignalService { sig } if sig == sig::KILL => {
                    if let Some(p) = self.main.take() {
                        m.handle(Input::Reaped { pid: p, status: 9 }, now);
                    }
                    self.leftovers = 0;
                    m.handle(Input::Population(false), now);
                }
                _ => {}
            }
        }
    }
}

/// Random inputs, including population, pings and the dead-man file, against the invariants:
/// one main process at most, down shown only with nothing left, no spawn while stale or while
/// anything of the service lives, and every deadline in the future of the time it was set.
#[test]
fn random_sequences_with_leftovers_watchdog_and_deadman() {
    for seed in 1..=300u64 {
        let mut rng = seed;
        let mut next = move |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let cfg = Config {
            watchdog: Some(Duration::from_millis(200)),
            deadman: Some(Duration::from_secs(2)),
            stop_sequence: StopSequence::parse("TERM 300 QUIT 300 KILL"),
            ..Config::default()
        };
        let mut now_ms = 0u64;
        let mut m = Machine::new(cfg, false, at(0));
        let mut w = World {
            pid: 100,
            ..World::default()
        };
        m.handle(Input::Deadman(Some(at(0).wall)), at(0));
        m.handle(Input::Start, at(0));
        w.perform(&mut m, at(0), seed);
        for _ in 0..200 {
            let step = next(400);
            // Deadlines on the way come first, each at its own time, as in the real loop.
            while let Some(d) = m
                .next_deadline()
                .filter(|d| d.as_millis() as u64 <= now_ms + step)
            {
                let t = at((d.as_millis() as u64).max(now_ms));
                m.handle(Input::Timer, t);
                w.perform(&mut m, t, seed);
                if let Some(d2) = m.next_deadline() {
                    assert!(d2 > d, "seed {seed}: a deadline that does not move on");
                }
            }
            now_ms += step;
            let now = at(now_ms);
            match next(7) {
                0 => m.handle(Input::Control(b"udoxk"[next(5) as usize]), now),
                1 => m.handle(Input::Ping, now),
                2 => m.handle(
                    Input::Deadman(Some(at(now_ms.saturating_sub(next(3000))).wall)),
                    now,
                ),
                3 if w.main.is_some() => {
                    let p = w.main.take().unwrap();
                    w.leftovers = next(3) as u32;
                    m.handle(Input::Reaped { pid: p, status: 0 }, now);
                    m.handle(Input::Population(w.leftovers > 0), now);
                }
                4 if w.leftovers > 0 => {
                    w.leftovers -= 1;
                    m.handle(Input::Population(w.leftovers > 0 || w.main.is_some()), now);
                }
                5 if w.finish.is_some() => m.handle(
                    Input::Reaped {
                        pid: w.finish.take().unwrap(),
                        status: 0,
                    },
                    now,
                ),
                _ => {}
            }
            w.perform(&mut m, now, seed);
            let st = m.status();
            if st.pid == 0 {
                assert!(
                    w.main.is_none() && w.leftovers == 0,
                    "seed {seed}: down shown while processes live"
                );
            } else {
                assert!(w.finish.is_none(), "seed {seed}");
            }
            if m.record().deadman_stale {
                assert!(
                    st.pid == 0 || m.record().stopping.is_some(),
                    "seed {seed}: stale and running without being stopped"
                );
            }
        }
    }
}
