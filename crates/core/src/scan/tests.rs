//! `Scan` with a simulated clock: a table of inputs and the actions each gives, and a random
//! sequence test that drives the machine against a model of the scan directory and its
//! processes, checking the invariants after every step.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::collections::BTreeMap;

use super::*;

const S: Duration = Duration::from_secs(1);
const Z: Duration = Duration::ZERO;

fn key(n: u64) -> Key {
    Key { dev: 1, ino: n }
}

fn seen(n: u64, log: bool) -> Seen {
    Seen {
        name: OsString::from(format!("svc{n}")),
        key: key(n),
        has_log: log,
        log_pending: false,
    }
}

fn start(n: u64, side: Side, handover: bool) -> Action {
    Action::Start {
        key: key(n),
        side,
        handover,
    }
}

fn control(n: u64, side: Side, bytes: &'static [u8]) -> Action {
    Action::Control {
        key: key(n),
        side,
        bytes,
    }
}

/// Every action queued, unanswered, `Ready` included.
fn drain_all(s: &mut Scan) -> Vec<Action> {
    std::iter::from_fn(|| s.next_action()).collect()
}

/// Every action queued, unanswered (`Ready` left out: tested on its own).
fn drain(s: &mut Scan) -> Vec<Action> {
    let mut v = drain_all(s);
    v.retain(|a| *a != Action::Ready);
    v
}

/// A scan past its lock and orphan wait, its first `Rescan` taken.
fn running(timeout: Duration) -> Scan {
    let mut s = Scan::new(timeout);
    assert_eq!(drain(&mut s), vec![Action::LockDir]);
    s.handle(Input::DirLock(DirLock::Taken), Z);
    assert_eq!(drain(&mut s), vec![Action::CheckOrphans]);
    s.handle(Input::Orphans { left: 0 }, Z);
    assert_eq!(drain(&mut s), vec![Action::Settled, Action::Rescan]);
    s
}

/// Pulls every action, answering each probe with `probe(key, side)` and each pipe request as
/// held; returns the others (`Ready` left out).
fn answer(s: &mut Scan, now: Duration, mut probe: impl FnMut(Key, Side) -> Probe) -> Vec<Action> {
    let mut out = Vec::new();
    while let Some(a) = s.next_action() {
        match a {
            Action::Probe { key, side } => s.handle(
                Input::Probed {
                    key,
                    side,
                    probe: probe(key, side),
                },
                now,
            ),
            Action::OpenPipe { key, .. } => s.handle(Input::PipeOpened { key }, now),
            Action::Ready => {}
            other => out.push(other),
        }
    }
    out
}

/// [`answer`] with every lock free.
fn settle(s: &mut Scan, now: Duration) -> Vec<Action> {
    answer(s, now, |_, _| Probe::Free)
}

fn started(s: &mut Scan, k: Key, side: Side, pid: u32, now: Duration) {
    s.handle(Input::Started { key: k, side, pid }, now);
}

fn reap(s: &mut Scan, pid: u32, now: Duration) -> Reaped {
    let r = s.identify(pid);
    s.handle(Input::Reaped { pid }, now);
    r
}

/// Starts everything asked for, giving pids from `next_pid`.
fn start_all(s: &mut Scan, acts: &[Action], next_pid: &mut u32, now: Duration) {
    for a in acts {
        if let Action::Start { key, side, .. } = *a {
            *next_pid += 1;
            started(s, key, side, *next_pid, now);
        }
    }
}

// ---- the start-up phases ----

/// The services of a long listing start while it is read: the first at once, then in batches
/// doubling up to `LISTING_BATCH`; a second name for a started directory starts nothing; a
/// rescan asked for meanwhile waits for the end; what was not listed stops only at the end.
#[test]
fn a_long_listing_starts_its_first_services_before_it_ends() {
    let mut s = running(DEFAULT_KILL_TIMEOUT);
    s.scanned(vec![seen(1000, false)], Z);
    let mut pid = 0;
    let acts = settle(&mut s, Z);
    start_all(&mut s, &acts, &mut pid, Z);
    assert!(drain(&mut s).is_empty());

    let t = Duration::from_millis(10);
    s.begin_scan(300, t);
    let mut flushed_at = Vec::new();
    let mut probed = Vec::new();
    for n in 1..=200 {
        s.seen(&seen(n, false), t);
        if n == 2 {
            // A second name for service 1, started already: nothing new.
            let mut again = seen(1, false);
            again.name = OsString::from("other-name");
            s.seen(&again, t);
        }
        if n == 5 {
            s.handle(Input::Changed, t);
        }
        if s.listed_some(t) {
            flushed_at.push(n);
            for a in drain(&mut s) {
                match a {
                    Action::Probe { key, side } => probed.push((key.ino, side)),
                    other => panic!("during a listing: {other:?}"),
                }
            }
        }
    }
    assert_eq!(flushed_at, [1, 3, 7, 15, 31, 63, 127, 191]);
    let want: Vec<(u64, Side)> = (1..=191).map(|n| (n, Side::Main)).collect();
    assert_eq!(probed, want);
    // Service 1000, not listed, is told to stop only now; then the rescan asked for meanwhile.
    s.end_scan(t);
    let acts = drain(&mut s);
    assert!(acts.contains(&control(1000, Side::Main, b"dx")), "{acts:?}");
    assert!(acts.contains(&Action::Probe {
        key: key(200),
        side: Side::Main
    }));
    assert_eq!(acts.iter().filter(|a| **a == Action::Rescan).count(), 1);
}

#[test]
fn lock_then_orphans_then_first_scan_then_ready_once() {
    let mut s = Scan::new(DEFAULT_KILL_TIMEOUT);
    assert_eq!(s.next_deadline(), None);
    assert_eq!(drain_all(&mut s), vec![Action::LockDir]);
    s.handle(Input::DirLock(DirLock::Taken), Z);
    assert_eq!(drain_all(&mut s), vec![Action::CheckOrphans]);
    s.handle(Input::Orphans { left: 0 }, Z);
    assert_eq!(drain_all(&mut s), vec![Action::Settled, Action::Rescan]);
    s.scanned(vec![seen(1, false)], Z);
    let acts = drain_all(&mut s);
    assert_eq!(
        acts,
        vec![Action::Probe {
            key: key(1),
            side: Side::Main
        }]
    );
    s.handle(
        Input::Probed {
            key: key(1),
            side: Side::Main,
            probe: Probe::Free,
        },
        Z,
    );
    assert_eq!(drain_all(&mut s), vec![start(1, Side::Main, false)]);
    // Once every answer is in.
    started(&mut s, key(1), Side::Main, 10, Z);
    assert_eq!(drain_all(&mut s), vec![Action::Ready]);
    s.scanned(vec![seen(1, false), seen(2, false)], S);
    let acts = answer(&mut s, S, |_, _| Probe::Free);
    assert_eq!(acts, vec![start(2, Side::Main, false)]);
    started(&mut s, key(2), Side::Main, 11, S);
    assert!(drain_all(&mut s).is_empty(), "Ready is sent once");
}

#[test]
fn busy_dir_lock_of_a_dead_owner_is_retried_for_a_second() {
    let mut s = Scan::new(DEFAULT_KILL_TIMEOUT);
    drain(&mut s);
    let t0 = Duration::from_secs(7);
    s.handle(Input::DirLock(DirLock::Busy { owner_gone: true }), t0);
    assert!(drain(&mut s).is_empty());
    assert_eq!(s.next_deadline(), Some(t0 + SETTLE_RECHECK));
    s.handle(Input::Timer, t0 + SETTLE_RECHECK);
    assert_eq!(drain(&mut s), vec![Action::LockDir]);
    s.handle(Input::Timer, t0 + 2 * SETTLE_RECHECK);
    assert!(drain(&mut s).is_empty(), "one attempt out at a time");
    let mut t = t0 + SETTLE_RECHECK;
    while t < t0 + DIR_LOCK_WAIT {
        s.handle(Input::DirLock(DirLock::Busy { owner_gone: true }), t);
        t = s.next_deadline().unwrap();
        assert!(t <= t0 + DIR_LOCK_WAIT);
        s.handle(Input::Timer, t);
        assert_eq!(drain(&mut s), vec![Action::LockDir]);
    }
    s.handle(Input::DirLock(DirLock::Busy { owner_gone: true }), t);
    assert_eq!(drain(&mut s), vec![Action::GiveUp]);
    assert_eq!(s.next_deadline(), None);
}

#[test]
fn busy_dir_lock_of_a_live_owner_or_a_failure_gives_up_at_once() {
    for answer in [DirLock::Busy { owner_gone: false }, DirLock::Failed] {
        let mut s = Scan::new(DEFAULT_KILL_TIMEOUT);
        drain(&mut s);
        s.handle(Input::DirLock(answer), Z);
        assert_eq!(drain(&mut s), vec![Action::GiveUp], "{answer:?}");
        s.handle(Input::Changed, Z);
        assert!(drain(&mut s).is_empty(), "no scan without the lock");
    }
}

#[test]
fn orphans_are_waited_for_until_gone_or_the_deadline() {
    let mut s = Scan::new(DEFAULT_KILL_TIMEOUT);
    drain(&mut s);
    s.handle(Input::DirLock(DirLock::Taken), Z);
    drain(&mut s);
    s.handle(Input::Orphans { left: 2 }, Z);
    assert!(drain(&mut s).is_empty());
    // Nothing is scanned meanwhile, even when asked.
    s.handle(Input::Changed, Z);
    assert!(drain(&mut s).is_empty());
    assert_eq!(s.next_deadline(), Some(SETTLE_RECHECK));
    // An orphan's exit (its pidfd) looks again at once.
    let t = Duration::from_millis(2);
    s.handle(Input::OrphanExited, t);
    assert_eq!(drain(&mut s), vec![Action::CheckOrphans]);
    s.handle(Input::OrphanExited, t);
    assert!(drain(&mut s).is_empty(), "one look out at a time");
    s.handle(Input::Orphans { left: 1 }, t);
    let mut now;
    loop {
        now = s.next_deadline().unwrap();
        assert!(now <= ORPHAN_WAIT);
        s.handle(Input::Timer, now);
        if now >= ORPHAN_WAIT {
            break;
        }
        assert_eq!(drain(&mut s), vec![Action::CheckOrphans]);
        s.handle(Input::Orphans { left: 1 }, now);
    }
    assert_eq!(
        drain(&mut s),
        vec![Action::Settled, Action::Rescan],
        "given up on at {now:?}"
    );
    s.handle(Input::Orphans { left: 1 }, now);
    assert!(drain(&mut s).is_empty(), "a late answer changes nothing");
}

#[test]
fn shutdown_before_the_first_scan_exits() {
    let mut s = Scan::new(DEFAULT_KILL_TIMEOUT);
    drain(&mut s);
    s.handle(Input::Shutdown, Z);
    assert_eq!(drain(&mut s), vec![Action::Exit]);
}

// ---- probes, pipes, starts ----

#[test]
fn held_lock_is_watched_unknown_is_probed_again_at_the_pace() {
    let mut s = running(DEFAULT_KILL_TIMEOUT);
    s.scanned(vec![seen(1, false), seen(2, false)], Z);
    let acts = answer(&mut s, Z, |k, _| {
        if k == key(1) {
            Probe::Held
        } else {
            Probe::Unknown
        }
    });
    assert!(acts.is_empty(), "{acts:?}");
    assert_eq!(s.pid(key(1), Side::Main), None);
    assert_eq!(s.next_deadline(), Some(RESTART_PACE));
    s.handle(Input::Timer, RESTART_PACE);
    assert_eq!(
        drain(&mut s),
        vec![Action::Probe {
            key: key(2),
            side: Side::Main
        }]
    );
}

#[test]
fn a_logged_service_gets_its_pipe_before_any_probe() {
    let mut s = running(DEFAULT_KILL_TIMEOUT);
    s.scanned(vec![seen(1, true)], Z);
    assert_eq!(
        drain(&mut s),
        vec![Action::OpenPipe {
            key: key(1),
            recover: true
        }]
    );
    s.handle(Input::PipeOpened { key: key(1) }, Z);
    assert_eq!(
        drain(&mut s),
        vec![
            Action::Probe {
                key: key(1),
                side: Side::Main
            },
            Action::Probe {
                key: key(1),
                side: Side::Log
            },
        ]
    );
}

#[test]
fn failed_pipe_is_asked_again_at_the_pace_without_recovery() {
    let mut s = running(DEFAULT_KILL_TIMEOUT);
    s.scanned(vec![seen(1, true)], Z);
    drain(&mut s);
    s.handle(
        Input::PipeFailed {
            key: key(1),
            failure: Failure::Other,
        },
        Z,
    );
    assert!(drain(&mut s).is_empty());
    assert_eq!(s.next_deadline(), Some(RESTART_PACE));
    s.handle(Input::Timer, RESTART_PACE);
    assert_eq!(
        drain(&mut s),
        vec![Action::OpenPipe {
            key: key(1),
            recover: false
        }]
    );
}

#[test]
fn pipe_is_kept_across_restarts_of_either_side() {
    let mut s = running(DEFAULT_KILL_TIMEOUT);
    s.scanned(vec![seen(1, true)], Z);
    let acts = settle(&mut s, Z);
    let mut pid = 0;
    start_all(&mut s, &acts, &mut pid, Z);
    for (p, side) in [(1, Side::Main), (2, Side::Log)] {
        reap(&mut s, p, 5 * S);
        let acts = drain(&mut s);
        assert_eq!(acts, vec![Action::Probe { key: key(1), side }]);
        let probe = Probe::Free;
        s.handle(
            Input::Probed {
                key: key(1),
                side,
                probe,
            },
            5 * S,
        );
        let acts = settle(&mut s, 5 * S);
        assert_eq!(acts, vec![start(1, side, true)], "no second pipe");
        start_all(&mut s, &acts, &mut pid, 5 * S);
    }
}

#[test]
fn a_start_answered_after_a_log_appeared_is_handed_over() {
    let mut s = running(DEFAULT_KILL_TIMEOUT);
    s.scanned(vec![seen(1, false)], Z);
    assert_eq!(settle(&mut s, Z), vec![start(1, Side::Main, false)]);
    // The driver lists again before it answers the start (it never does, but the machine
    // does not rely on it).
    s.scanned(vec![seen(1, true)], Z);
    assert_eq!(
        drain(&mut s),
        vec![Action::OpenPipe {
            key: key(1),
            recover: false
        }]
    );
    s.handle(Input::PipeOpened { key: key(1) }, Z);
    started(&mut s, key(1), Side::Main, 5, Z);
    let acts = settle(&mut s, Z);
    assert_eq!(
        acts,
        vec![control(1, Side::Main, b"x"), start(1, Side::Log, false)]
    );
}

#[test]
fn starved_starts_are_retried_when_descriptors_are_freed() {
    let mut s = running(DEFAULT_KILL_TIMEOUT);
    s.scanned(vec![seen(1, true), seen(2, false), seen(3, false)], Z);
    let acts = settle(&mut s, Z);
    assert_eq!(acts.len(), 4);
    started(&mut s, key(1), Side::Main, 10, Z);
    started(&mut s, key(1), Side::Log, 11, Z);
    s.handle(
        Input::StartFailed {
            key: key(2),
            side: Side::Main,
            failure: Failure::Starved,
        },
        Z,
    );
    s.handle(
        Input::StartFailed {
            key: key(3),
            side: Side::Main,
            failure: Failure::Other,
        },
        Z,
    );
    assert!(drain(&mut s).is_empty());
    // Service 1 removed: its pipe closed frees descriptors.
    s.scanned(vec![seen(2, false), seen(3, false)], S / 10);
    assert_eq!(settle(&mut s, S / 10), vec![control(1, Side::Main, b"dx")]);
    reap(&mut s, 10, S / 5);
    assert_eq!(
        settle(&mut s, S / 5),
        vec![
            Action::CloseWrite { key: key(1) },
            control(1, Side::Log, b"x"),
            start(2, Side::Main, false)
        ],
        "the starved start only, not the one that failed otherwise"
    );
    started(&mut s, key(2), Side::Main, 12, S / 5);
    reap(&mut s, 11, S / 4);
    assert_eq!(settle(&mut s, S / 4), vec![Action::Forget { key: key(1) }]);
}

#[test]
fn foreign_gone_frees_a_descriptor_for_a_starved_start() {
    let mut s = running(DEFAULT_KILL_TIMEOUT);
    s.scanned(vec![seen(1, false), seen(2, false)], Z);
    answer(&mut s, Z, |k, _| {
        if k == key(1) {
            Probe::Held
        } else {
            Probe::Free
        }
    });
    s.handle(
        Input::StartFailed {
            key: key(2),
            side: Side::Main,
            failure: Failure::Starved,
        },
        Z,
    );
    s.handle(
        Input::ForeignGone {
            key: key(1),
            side: Side::Main,
        },
        S / 10,
    );
    let acts = drain(&mut s);
    assert_eq!(
        acts,
        vec![Action::Probe {
            key: key(2),
            side: Side::Main
        }]
    );
}

#[test]
fn changed_asks_one_rescan_and_none_during_shutdown() {
    let mut s = running(DEFAULT_KILL_TIMEOUT);
    s.scanned(vec![], Z);
    drain(&mut s);
    s.handle(Input::Changed, Z);
    s.handle(Input::Changed, Z);
    assert_eq!(drain(&mut s), vec![Action::Rescan]);
    s.handle(Input::Changed, Z);
    s.handle(Input::Shutdown, Z);
    assert_eq!(drain(&mut s), vec![Action::Rescan, Action::Exit]);
    s.handle(Input::Changed, Z);
    assert!(drain(&mut s).is_empty());
}

#[test]
fn a_probe_not_yet_handed_out_is_withdrawn_when_its_service_goes() {
    let mut s = running(DEFAULT_KILL_TIMEOUT);
    s.scanned(vec![seen(1, false)], Z);
    s.scanned(vec![], Z);
    assert_eq!(drain(&mut s), vec![Action::Forget { key: key(1) }]);
    assert_eq!(s.next_deadline(), None);
}

// ---- running, stopping, restarting (issue 12's tests, through the one input) ----

#[test]
fn starts_each_side_once_and_stays_idle() {
    let mut s = running(DEFAULT_KILL_TIMEOUT);
    s.scanned(vec![seen(1, true), seen(2, false)], Z);
    let acts = settle(&mut s, Z);
    assert_eq!(
        acts,
        vec![
            start(1, Side::Main, false),
            start(1, Side::Log, false),
            start(2, Side::Main, false),
        ]
    );
    let mut pid = 100;
    start_all(&mut s, &acts, &mut pid, Z);
    assert!(drain(&mut s).is_empty());
    assert_eq!(s.next_deadline(), None, "idle means no wakeup");
    s.scanned(vec![seen(1, true), seen(2, false)], S);
    assert!(
        drain(&mut s).is_empty(),
        "a rescan of the same listing changes nothing"
    );
}

#[test]
fn dead_supervise_restarts_paced() {
    let mut s = running(DEFAULT_KILL_TIMEOUT);
    s.scanned(vec![seen(1, false)], Z);
    assert_eq!(settle(&mut s, Z).len(), 1);
    started(&mut s, key(1), Side::Main, 10, Z);
    // Dies 100 ms after its start: not restarted before 1 s after that start.
    let t = Duration::from_millis(100);
    assert_eq!(
        reap(&mut s, 10, t),
        Reaped::Supervise {
            key: key(1),
            side: Side::Main,
            unexpected: true
        }
    );
    assert!(drain(&mut s).is_empty());
    assert_eq!(s.next_deadline(), Some(S));
    s.handle(Input::Timer, Duration::from_millis(999));
    assert!(drain(&mut s).is_empty());
    s.handle(Input::Timer, S);
    assert_eq!(settle(&mut s, S), vec![start(1, Side::Main, true)]);
    // A failed start is retried after the pace too.
    s.handle(
        Input::StartFailed {
            key: key(1),
            side: Side::Main,
            failure: Failure::Other,
        },
        S,
    );
    assert_eq!(s.next_deadline(), Some(2 * S));
    s.handle(Input::Timer, 2 * S);
    assert_eq!(settle(&mut s, 2 * S).len(), 1);
    // Long-lived supervise dying restarts at once.
    started(&mut s, key(1), Side::Main, 11, 2 * S);
    reap(&mut s, 11, 100 * S);
    assert_eq!(settle(&mut s, 100 * S).len(), 1);
}

#[test]
fn removal_stops_service_then_drains_logger() {
    let mut s = running(DEFAULT_KILL_TIMEOUT);
    s.scanned(vec![seen(1, true)], Z);
    let acts = settle(&mut s, Z);
    let mut pid = 0;
    start_all(&mut s, &acts, &mut pid, Z); // main 1, log 2
    s.scanned(vec![], S);
    assert_eq!(drain(&mut s), vec![control(1, Side::Main, b"dx")]);
    // No kill escalation on removal: svc -dx semantics.
    assert_eq!(s.next_deadline(), None);
    // The logger is left alone until the main supervise is gone.
    assert_eq!(
        reap(&mut s, 1, 2 * S),
        Reaped::Supervise {
            key: key(1),
            side: Side::Main,
            unexpected: false
        }
    );
    assert_eq!(
        drain(&mut s),
        vec![
            Action::CloseWrite { key: key(1) },
            control(1, Side::Log, b"x")
        ]
    );
    // Logger that never sees EOF is forced after the timeout.
    assert_eq!(s.next_deadline(), Some(2 * S + DEFAULT_KILL_TIMEOUT));
    reap(&mut s, 2, 3 * S);
    assert_eq!(drain(&mut s), vec![Action::Forget { key: key(1) }]);
    assert!(s.is_empty());
}

#[test]
fn renamed_service_keeps_identity() {
    let mut s = running(DEFAULT_KILL_TIMEOUT);
    s.scanned(vec![seen(1, false)], Z);
    let acts = settle(&mut s, Z);
    start_all(&mut s, &acts, &mut 0, Z);
    let mut renamed = seen(1, false);
    renamed.name = OsString::from("other");
    s.scanned(vec![renamed], S);
    assert!(drain(&mut s).is_empty());
    assert_eq!(s.name(key(1)).unwrap(), "other");
}

#[test]
fn log_added_later_starts_logger_and_reattaches() {
    let mut s = running(DEFAULT_KILL_TIMEOUT);
    s.scanned(vec![seen(1, false)], Z);
    let acts = settle(&mut s, Z);
    start_all(&mut s, &acts, &mut 0, Z);
    s.scanned(vec![seen(1, true)], S);
    // Whatever the service's state: its supervise is handed over, not asked about it; the
    // pipe is new (ours runs there: nothing to take over).
    assert_eq!(
        drain(&mut s),
        vec![
            control(1, Side::Main, b"x"),
            Action::OpenPipe {
                key: key(1),
                recover: false
            }
        ]
    );
    s.handle(Input::PipeOpened { key: key(1) }, S);
    assert_eq!(settle(&mut s, S), vec![start(1, Side::Log, false)]);
    assert!(s.has_log(key(1)));
    // It exits (not told: the scan did not ask it to stop for good); its replacement is a
    // handover and keeps the want its predecessor recorded.
    started(&mut s, key(1), Side::Log, 2, S);
    reap(&mut s, 1, 2 * S);
    assert_eq!(settle(&mut s, 2 * S), vec![start(1, Side::Main, true)]);
    // A removed service's supervise after that is still told to go down for good.
    started(&mut s, key(1), Side::Main, 3, 2 * S);
    s.scanned(vec![], 3 * S);
    assert_eq!(drain(&mut s), vec![control(1, Side::Main, b"dx")]);
}

#[test]
fn log_added_before_the_start_is_handed_out_needs_no_handover() {
    let mut s = running(DEFAULT_KILL_TIMEOUT);
    s.scanned(vec![seen(1, false)], Z);
    s.scanned(vec![seen(1, true)], Z);
    assert_eq!(
        settle(&mut s, Z),
        vec![start(1, Side::Main, false), start(1, Side::Log, false)]
    );
}

#[test]
fn shutdown_sequence() {
    let t = Duration::from_secs(3);
    let mut s = running(t);
    s.scanned(vec![seen(1, true), seen(2, false)], Z);
    let acts = settle(&mut s, Z);
    let mut pid = 0;
    start_all(&mut s, &acts, &mut pid, Z); // 1 main1, 2 log1, 3 main2
    s.handle(Input::Shutdown, S);
    assert_eq!(
        drain(&mut s),
        vec![control(1, Side::Main, b"dx"), control(2, Side::Main, b"dx")]
    );
    // Rescans during shutdown start nothing.
    s.scanned(vec![seen(1, true), seen(2, false), seen(3, false)], S);
    assert!(drain(&mut s).is_empty());
    reap(&mut s, 3, 2 * S);
    assert_eq!(drain(&mut s), vec![Action::Forget { key: key(2) }]);
    // Service 1 ignores its down signal: killed after the timeout.
    assert_eq!(s.next_deadline(), Some(S + t));
    s.handle(Input::Timer, S + t);
    assert_eq!(drain(&mut s), vec![control(1, Side::Main, b"+k")]);
    reap(&mut s, 1, S + t);
    assert_eq!(
        drain(&mut s),
        vec![
            Action::CloseWrite { key: key(1) },
            control(1, Side::Log, b"x")
        ]
    );
    reap(&mut s, 2, S + t);
    assert_eq!(
        drain(&mut s),
        vec![Action::Forget { key: key(1) }, Action::Exit]
    );
}

#[test]
fn removed_service_still_stopping_is_killed_at_shutdown() {
    let t = Duration::from_secs(3);
    let mut s = running(t);
    s.scanned(vec![seen(1, false)], Z);
    let acts = settle(&mut s, Z);
    start_all(&mut s, &acts, &mut 0, Z);
    s.scanned(vec![], S);
    assert_eq!(drain(&mut s).len(), 1, "dx once");
    assert_eq!(s.next_deadline(), None, "removal alone never kills");
    s.handle(Input::Shutdown, 2 * S);
    assert!(
        drain(&mut s).is_empty(),
        "no second dx: one down signal only"
    );
    assert_eq!(s.next_deadline(), Some(2 * S + t));
    s.handle(Input::Timer, 2 * S + t);
    assert_eq!(drain(&mut s), vec![control(1, Side::Main, b"+k")]);
    assert_eq!(s.next_deadline(), None, "killed once");
    reap(&mut s, 1, 3 * S + t);
    assert_eq!(
        drain(&mut s),
        vec![Action::Forget { key: key(1) }, Action::Exit]
    );
}

#[test]
fn shutdown_with_nothing_exits_at_once() {
    let mut s = running(DEFAULT_KILL_TIMEOUT);
    s.scanned(vec![], Z);
    drain(&mut s);
    s.handle(Input::Shutdown, S);
    assert_eq!(drain(&mut s), vec![Action::Exit]);
}

#[test]
fn foreign_supervise_is_watched_not_duplicated() {
    let mut s = running(DEFAULT_KILL_TIMEOUT);
    s.scanned(vec![seen(1, false)], Z);
    assert!(answer(&mut s, Z, |_, _| Probe::Held).is_empty());
    assert_eq!(s.next_deadline(), None);
    s.handle(
        Input::ForeignGone {
            key: key(1),
            side: Side::Main,
        },
        5 * S,
    );
    assert_eq!(settle(&mut s, 5 * S), vec![start(1, Side::Main, true)]);
    // A foreign supervise of a removed service is told to stop too.
    s.handle(
        Input::StartFailed {
            key: key(1),
            side: Side::Main,
            failure: Failure::Other,
        },
        5 * S,
    );
    s.handle(Input::Timer, 6 * S);
    assert!(answer(&mut s, 6 * S, |_, _| Probe::Held).is_empty());
    s.scanned(vec![], 7 * S);
    assert_eq!(drain(&mut s), vec![control(1, Side::Main, b"dx")]);
}

#[test]
fn foreign_supervise_dying_at_once_is_restarted_paced() {
    let mut s = running(DEFAULT_KILL_TIMEOUT);
    s.scanned(vec![seen(1, true)], Z);
    assert!(answer(&mut s, Z, |_, _| Probe::Held).is_empty());
    s.handle(
        Input::ForeignGone {
            key: key(1),
            side: Side::Main,
        },
        S / 10,
    );
    assert!(drain(&mut s).is_empty(), "not before the pace");
    assert_eq!(s.next_deadline(), Some(S));
    s.handle(Input::Timer, S);
    assert_eq!(settle(&mut s, S), vec![start(1, Side::Main, true)]);
}

#[test]
fn killed_supervise_is_replaced_at_the_pace_its_run_left_alone() {
    let mut s = running(Duration::from_secs(2));
    s.scanned(vec![seen(1, false)], Z);
    settle(&mut s, Z);
    started(&mut s, key(1), Side::Main, 10, Z);
    reap(&mut s, 10, 5 * S);
    assert_eq!(
        settle(&mut s, 5 * S),
        vec![start(1, Side::Main, true)],
        "restarted at once, nothing killed: the new supervise adopts the run"
    );
    started(&mut s, key(1), Side::Main, 11, 5 * S);
    // The old run, reparented to svscan, exits later: just reaped.
    assert_eq!(reap(&mut s, 42, 9 * S), Reaped::Stranger);
    assert!(drain(&mut s).is_empty());
}

#[test]
fn fallback_rescans_periodically() {
    let mut s = running(DEFAULT_KILL_TIMEOUT);
    s.scanned(vec![], Z);
    drain(&mut s);
    s.handle(Input::Unwatched, Z);
    assert_eq!(s.next_deadline(), Some(FALLBACK_RESCAN));
    s.handle(Input::Timer, FALLBACK_RESCAN);
    assert_eq!(drain(&mut s), vec![Action::Rescan]);
    s.scanned(vec![], FALLBACK_RESCAN);
    assert_eq!(s.next_deadline(), Some(2 * FALLBACK_RESCAN));
    s.begin_scan(0, FALLBACK_RESCAN);
    s.handle(Input::ScanFailed, FALLBACK_RESCAN);
    assert_eq!(s.next_deadline(), Some(FALLBACK_RESCAN + RETRY));
}

#[test]
fn a_failed_listing_counts_for_nothing() {
    let mut s = running(DEFAULT_KILL_TIMEOUT);
    s.scanned(vec![seen(1, false)], Z);
    let acts = settle(&mut s, Z);
    start_all(&mut s, &acts, &mut 0, Z);
    s.begin_scan(2, S);
    s.seen(&seen(2, false), S);
    s.handle(Input::ScanFailed, S);
    assert!(drain(&mut s).is_empty(), "nothing stopped, nothing started");
    assert_eq!(s.len(), 1);
}

#[test]
fn stranger_pids_change_nothing() {
    let mut s = running(DEFAULT_KILL_TIMEOUT);
    s.scanned(vec![seen(1, false)], Z);
    settle(&mut s, Z);
    started(&mut s, key(1), Side::Main, 10, Z);
    assert_eq!(reap(&mut s, 999, S), Reaped::Stranger);
    assert!(drain(&mut s).is_empty());
}

/// issue 12: a start-up of N services costs O(N) reconciliation, not O(N²): each answer
/// (probed, pipe, started, failed) reconciles its own service only.
#[test]
fn start_up_work_is_linear() {
    let n = 2000u64;
    let mut s = running(DEFAULT_KILL_TIMEOUT);
    s.scanned((1..=n).map(|i| seen(i, i % 2 == 0)).collect(), Z);
    let mut i = 0u32;
    let acts = answer(&mut s, Z, |_, _| {
        i += 1;
        if i % 3 == 1 { Probe::Held } else { Probe::Free }
    });
    let mut pid = 0;
    for a in &acts {
        if let Action::Start { key, side, .. } = *a {
            pid += 1;
            if pid % 2 == 0 {
                s.handle(
                    Input::StartFailed {
                        key,
                        side,
                        failure: Failure::Other,
                    },
                    Z,
                );
            } else {
                started(&mut s, key, side, pid, Z);
            }
        }
    }
    assert!(drain(&mut s).is_empty());
    for p in 1..=pid {
        reap(&mut s, p, Z);
    }
    let visits = s.visits();
    // A scan, a pipe, a probe, a start and a reap for each side: a few visits each.
    assert!(
        visits <= 8 * n,
        "{visits} services visited for {n} services: quadratic"
    );
}

#[test]
fn one_directory_under_two_names_is_one_service() {
    let mut s = running(DEFAULT_KILL_TIMEOUT);
    let mut other = seen(1, false);
    other.name = OsString::from("alias");
    s.scanned(vec![seen(1, false), seen(2, false), other], Z);
    assert_eq!(
        settle(&mut s, Z),
        vec![start(1, Side::Main, false), start(2, Side::Main, false)]
    );
    assert_eq!(s.len(), 2);
    assert_eq!(s.name(key(1)).unwrap(), "alias");
    assert_eq!(s.name(key(2)).unwrap(), "svc2");
    // Renames over many scans do not grow the name buffer for ever.
    for round in 0..200 {
        let mut r = seen(1, false);
        r.name = OsString::from(format!("name-{round}"));
        s.scanned(vec![r, seen(2, false)], S);
    }
    assert!(s.names.len() < 400, "{} bytes of names", s.names.len());
    assert_eq!(s.name(key(1)).unwrap(), "name-199");
    assert_eq!(s.name(key(2)).unwrap(), "svc2");
}

/// issue 12: the per-service record stays small (it is most of svscan's memory at scale).
#[test]
fn records_are_compact() {
    assert_eq!(std::mem::size_of::<Slot>(), 16);
    assert_eq!(std::mem::size_of::<Option<Slot>>(), 16);
    assert!(std::mem::size_of::<Service<()>>() <= 56);
    // svscan's: two descriptors and a byte of marks.
    assert!(std::mem::size_of::<Service<[u32; 3]>>() <= 64);
}

#[test]
fn services_on_several_devices() {
    let mut s = running(DEFAULT_KILL_TIMEOUT);
    let on = |dev: u64, ino: u64, name: &str| Seen {
        name: OsString::from(name),
        key: Key { dev, ino },
        has_log: false,
        log_pending: false,
    };
    s.scanned(vec![on(7, 1, "a"), on(3, 1, "b"), on(7, 2, "c")], Z);
    let mut keys: Vec<Key> = settle(&mut s, Z)
        .into_iter()
        .map(|a| match a {
            Action::Start { key, .. } => key,
            other => panic!("{other:?}"),
        })
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        vec![
            Key { dev: 3, ino: 1 },
            Key { dev: 7, ino: 1 },
            Key { dev: 7, ino: 2 }
        ]
    );
    assert_eq!(s.name(Key { dev: 3, ino: 1 }).unwrap(), "b");
    assert_eq!(s.name(Key { dev: 7, ino: 2 }).unwrap(), "c");
    assert!(s.name(Key { dev: 5, ino: 1 }).is_none());
    started(&mut s, Key { dev: 7, ino: 2 }, Side::Main, 40, S);
    assert_eq!(
        s.identify(40),
        Reaped::Supervise {
            key: Key { dev: 7, ino: 2 },
            side: Side::Main,
            unexpected: true
        }
    );
}

// ---- random sequences against a model of the directory and its processes ----

/// xorshift64*, enough randomness for sequence tests without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Holder {
    /// Our supervise, and the pipe it was given (0: none).
    Ours { pid: u32, pipe: u32 },
    /// Left by an earlier svscan; `visible`: its pid can be found (else the probe says
    /// `Unknown` while it sets up).
    Foreign { visible: bool },
}

/// The world the driver sees: the scan directory and the supervise processes holding locks.
struct World {
    rng: Rng,
    now: Duration,
    /// Present service directories: ino → has a log.
    dir: BTreeMap<u64, bool>,
    next_ino: u64,
    holders: BTreeMap<(u64, Side), Holder>,
    /// Supervise processes told to exit (they do, a little later).
    told: Vec<(u64, Side)>,
    /// The pipe the driver holds per service.
    pipes: BTreeMap<u64, u32>,
    next_pipe: u32,
    next_pid: u32,
    pids: BTreeMap<u32, (u64, Side)>,
    ready: u32,
    exited: bool,
    gave_up: bool,
    /// Service keys the machine forgot.
    forgotten: Vec<u64>,
    /// Foreign supervise processes svscan was told of (`Probe::Held`). One still setting up
    /// when its directory is removed (`Probe::Unknown`, then never probed again) is left
    /// running, as by daemontools (which never looks).
    known: Vec<(u64, Side)>,
    /// A listing is under way, performing what `listed_some` hands out between entries.
    in_listing: bool,
}

impl World {
    fn new(seed: u64) -> World {
        let mut w = World {
            rng: Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
            now: Z,
            dir: BTreeMap::new(),
            next_ino: 1,
            holders: BTreeMap::new(),
            told: Vec::new(),
            pipes: BTreeMap::new(),
            next_pipe: 1,
            next_pid: 100,
            pids: BTreeMap::new(),
            ready: 0,
            exited: false,
            gave_up: false,
            in_listing: false,
            forgotten: Vec::new(),
            known: Vec::new(),
        };
        // What an earlier svscan left: some services, some still supervised.
        for _ in 0..w.rng.below(6) {
            let ino = w.add_service();
            for side in [Side::Main, Side::Log] {
                if (side == Side::Main || w.dir[&ino]) && w.rng.chance(40) {
                    let visible = w.rng.chance(80);
                    w.holders.insert((ino, side), Holder::Foreign { visible });
                }
            }
        }
        w
    }

    fn add_service(&mut self) -> u64 {
        let ino = self.next_ino;
        self.next_ino += 1;
        let log = self.rng.chance(50);
        self.dir.insert(ino, log);
        ino
    }

    fn listing(&self) -> Vec<Seen> {
        self.dir.iter().map(|(&i, &log)| seen(i, log)).collect()
    }

    fn alive(&self, ino: u64, side: Side) -> bool {
        self.holders.contains_key(&(ino, side))
    }

    /// A supervise runs there that svscan started or was told of.
    fn known_alive(&self, ino: u64, side: Side) -> bool {
        match self.holders.get(&(ino, side)) {
            Some(Holder::Ours { .. }) => true,
            Some(Holder::Foreign { .. }) => self.known.contains(&(ino, side)),
            None => false,
        }
    }

    /// A supervise exits (told to, crashed, or foreign and gone): its exit is reported.
    fn exit(&mut self, s: &mut Scan, ino: u64, side: Side) {
        self.told.retain(|&t| t != (ino, side));
        match self.holders.remove(&(ino, side)) {
            Some(Holder::Ours { pid, .. }) => {
                self.pids.remove(&pid);
                s.handle(Input::Reaped { pid }, self.now);
            }
            Some(Holder::Foreign { .. }) => {
                s.handle(
                    Input::ForeignGone {
                        key: key(ino),
                        side,
                    },
                    self.now,
                );
            }
            None => {}
        }
    }

    /// Performs every action, checking each against the model.
    fn perform(&mut self, s: &mut Scan) {
        self.perform_some(s, usize::MAX);
    }

    /// Performs up to `most` actions (the rest wait for a later batch: the machine must not
    /// rely on a batch being finished before the next input).
    fn perform_some(&mut self, s: &mut Scan, most: usize) {
        let mut n = 0;
        while n < most
            && let Some(a) = s.next_action()
        {
            n += 1;
            assert!(n < 100_000, "endless actions");
            let now = self.now;
            match a {
                Action::LockDir => {
                    let lock = if self.rng.chance(20) {
                        DirLock::Busy { owner_gone: true }
                    } else {
                        DirLock::Taken
                    };
                    s.handle(Input::DirLock(lock), now);
                }
                Action::GiveUp => self.gave_up = true,
                Action::Settled => {}
                Action::CheckOrphans => {
                    let left = if self.rng.chance(30) { 1 } else { 0 };
                    s.handle(Input::Orphans { left }, now);
                }
                Action::Rescan => {
                    assert!(!self.in_listing, "a rescan handed out during a listing");
                    if self.rng.chance(5) {
                        s.begin_scan(self.dir.len(), now);
                        s.handle(Input::ScanFailed, now);
                    } else if self.rng.chance(50) {
                        // As svscan lists: what is handed out between entries is performed
                        // before the next entry.
                        let listing = self.listing();
                        self.in_listing = true;
                        s.begin_scan(listing.len(), now);
                        for entry in &listing {
                            s.seen(entry, now);
                            if s.listed_some(now) {
                                self.perform(s);
                            }
                        }
                        self.in_listing = false;
                        s.end_scan(now);
                    } else {
                        s.scanned(self.listing(), now);
                    }
                }
                Action::OpenPipe { key, .. } => {
                    assert!(
                        !self.pipes.contains_key(&key.ino),
                        "a second pipe for {key:?} while one is held"
                    );
                    if self.rng.chance(10) {
                        let failure = if self.rng.chance(50) {
                            Failure::Starved
                        } else {
                            Failure::Other
                        };
                        s.handle(Input::PipeFailed { key, failure }, now);
                    } else {
                        self.pipes.insert(key.ino, self.next_pipe);
                        self.next_pipe += 1;
                        s.handle(Input::PipeOpened { key }, now);
                    }
                }
                Action::Probe { key, side } => {
                    let probe = match self.holders.get(&(key.ino, side)) {
                        None => Probe::Free,
                        Some(Holder::Foreign { visible: true }) => Probe::Held,
                        Some(Holder::Foreign { visible: false }) => Probe::Unknown,
                        Some(Holder::Ours { .. }) => {
                            panic!("probe of {key:?} {side:?} while ours runs there")
                        }
                    };
                    if probe == Probe::Held {
                        self.known.push((key.ino, side));
                    }
                    s.handle(Input::Probed { key, side, probe }, now);
                    // A supervise still setting up is found at a later probe.
                    if let Some(Holder::Foreign { visible }) =
                        self.holders.get_mut(&(key.ino, side))
                    {
                        *visible = true;
                    }
                }
                Action::Start { key, side, .. } => {
                    assert!(
                        !self.alive(key.ino, side),
                        "two supervise for {key:?} {side:?}"
                    );
                    assert!(
                        !self.forgotten.contains(&key.ino),
                        "start of a forgotten service"
                    );
                    let logged = s.has_log(key);
                    let pipe = self.pipes.get(&key.ino).copied().unwrap_or(0);
                    assert!(
                        !logged || pipe != 0,
                        "{key:?} {side:?} started without its pipe"
                    );
                    if self.rng.chance(10) {
                        let failure = if self.rng.chance(50) {
                            Failure::Starved
                        } else {
                            Failure::Other
                        };
                        s.handle(Input::StartFailed { key, side, failure }, now);
                    } else {
                        let pid = self.next_pid;
                        self.next_pid += 1;
                        self.pids.insert(pid, (key.ino, side));
                        self.holders
                            .insert((key.ino, side), Holder::Ours { pid, pipe });
                        s.handle(Input::Started { key, side, pid }, now);
                    }
                }
                Action::Control { key, side, bytes } => {
                    assert!([&b"dx"[..], b"x", b"+k"].contains(&bytes), "{bytes:?}");
                    if self.alive(key.ino, side) && !self.told.contains(&(key.ino, side)) {
                        self.told.push((key.ino, side));
                    }
                }
                Action::CloseWrite { key } => {
                    assert!(
                        !self.known_alive(key.ino, Side::Main),
                        "pipe closed while the service side runs"
                    );
                    assert!(self.pipes.remove(&key.ino).is_some(), "no pipe to close");
                }
                Action::Forget { key } => {
                    assert!(
                        !self.known_alive(key.ino, Side::Main)
                            && !self.known_alive(key.ino, Side::Log),
                        "{key:?} forgotten while a supervise runs there"
                    );
                    assert!(
                        !self.dir.contains_key(&key.ino) || s.shutting_down(),
                        "{key:?} forgotten while present"
                    );
                    self.pipes.remove(&key.ino);
                    self.forgotten.push(key.ino);
                }
                Action::Ready => self.ready += 1,
                Action::Exit => {
                    assert!(!self.exited, "exit twice");
                    self.exited = true;
                }
            }
        }
    }

    /// One random event.
    fn event(&mut self, s: &mut Scan) {
        match self.rng.below(10) {
            0 => {
                self.add_service();
                s.handle(Input::Changed, self.now);
            }
            1 => {
                if let Some(ino) = self.pick(self.dir.keys().copied().collect()) {
                    self.dir.remove(&ino);
                    s.handle(Input::Changed, self.now);
                }
            }
            2 => {
                let bare: Vec<u64> = self
                    .dir
                    .iter()
                    .filter(|&(_, &l)| !l)
                    .map(|(&i, _)| i)
                    .collect();
                if let Some(ino) = self.pick(bare) {
                    self.dir.insert(ino, true);
                    s.handle(Input::Changed, self.now);
                }
            }
            3 => {
                // A supervise crashes (or a foreign one is killed).
                let live: Vec<(u64, Side)> = self.holders.keys().copied().collect();
                if let Some((ino, side)) = self.pick(live) {
                    self.exit(s, ino, side);
                }
            }
            4 | 5 => {
                if let Some((ino, side)) = self.pick(self.told.clone()) {
                    self.exit(s, ino, side);
                }
            }
            6 => {
                // A stranger: an orphaned run.
                s.handle(Input::Reaped { pid: 7 }, self.now);
            }
            7 | 8 => {
                if let Some(d) = s.next_deadline() {
                    self.now = self.now.max(d);
                }
                s.handle(Input::Timer, self.now);
            }
            _ => {
                self.now += Duration::from_millis(self.rng.below(1500));
                s.handle(Input::Timer, self.now);
            }
        }
    }

    fn pick<T: Copy>(&mut self, v: Vec<T>) -> Option<T> {
        let i = self.rng.below(v.len() as u64) as usize;
        v.get(i).copied()
    }

    /// No more changes or crashes: every told supervise exits and every deadline within a
    /// minute comes.
    fn quiesce(&mut self, s: &mut Scan) {
        s.handle(Input::Changed, self.now);
        self.perform(s);
        for _ in 0..10_000 {
            if let Some(&(ino, side)) = self.told.first() {
                self.exit(s, ino, side);
            } else if let Some(d) = s.next_deadline() {
                self.now = self.now.max(d);
                s.handle(Input::Timer, self.now);
            } else {
                return;
            }
            self.perform(s);
        }
        panic!("never settles");
    }

    /// The invariants of a settled svscan.
    fn check_settled(&self, s: &Scan) {
        for (&ino, &log) in &self.dir {
            for side in [Side::Main, Side::Log] {
                let want = side == Side::Main || log;
                assert_eq!(
                    self.alive(ino, side),
                    want,
                    "service {ino} {side:?}: every present side runs exactly once"
                );
                if let (true, Some(Holder::Ours { pipe, .. })) =
                    (log, self.holders.get(&(ino, side)))
                {
                    assert_eq!(
                        Some(pipe),
                        self.pipes.get(&ino),
                        "service {ino} {side:?} is on the pipe svscan holds"
                    );
                }
            }
            assert_eq!(s.has_log(key(ino)), log);
        }
        for &(ino, side) in self.holders.keys() {
            assert!(
                self.dir.contains_key(&ino) || !self.known_alive(ino, side),
                "{ino} {side:?} runs for a removed directory"
            );
        }
        assert!(s.len() == self.dir.len(), "removed services forgotten");
    }
}

#[test]
fn random_sequences_keep_the_invariants() {
    let mut totals = (0u64, 0u64);
    // 4464: a start handed out in the middle of a listing for a service whose log that listing
    // had just found, before its pipe was held (fixed; found with 30000 seeds).
    for seed in (1..=400u64).chain([4464]) {
        let mut w = World::new(seed);
        let mut s = Scan::new(Duration::from_secs(1 + seed % 5));
        // Start-up, as svscan after a crash.
        for _ in 0..1000 {
            w.perform(&mut s);
            if w.ready > 0 || w.gave_up {
                break;
            }
            if let Some(d) = s.next_deadline() {
                w.now = w.now.max(d);
            }
            s.handle(Input::Timer, w.now);
        }
        if w.gave_up {
            continue;
        }
        assert_eq!(w.ready, 1, "seed {seed}: ready after the first scan");
        for _ in 0..150 {
            w.event(&mut s);
            if w.rng.chance(30) {
                let most = 1 + w.rng.below(3) as usize;
                w.perform_some(&mut s, most);
            } else {
                w.perform(&mut s);
            }
        }
        w.quiesce(&mut s);
        w.check_settled(&s);
        totals.0 += w.next_pid as u64 - 100;
        // Then a shutdown: everything down, loggers last, exit.
        s.handle(Input::Shutdown, w.now);
        w.perform(&mut s);
        for _ in 0..10_000 {
            if w.exited {
                break;
            }
            if let Some(&(ino, side)) = w.told.first() {
                // A logger exits only once its service side is gone (its pipe at EOF).
                if side == Side::Log {
                    assert!(!w.alive(ino, Side::Main), "logger told before its service");
                }
                w.exit(&mut s, ino, side);
            } else if let Some(d) = s.next_deadline() {
                w.now = w.now.max(d);
                s.handle(Input::Timer, w.now);
            } else {
                panic!("seed {seed}: shutdown stuck");
            }
            w.perform(&mut s);
        }
        assert!(w.exited, "seed {seed}: exit");
        assert!(
            w.holders.keys().all(|&(i, side)| !w.known_alive(i, side)),
            "seed {seed}: everything stopped"
        );
        assert_eq!(w.ready, 1);
        totals.1 += 1;
    }
    assert!(totals.1 >= 300, "{totals:?}: most seeds get past the lock");
}

#[test]
fn which_entries_are_services_and_what_their_log_says() {
    assert!(may_be_service(b"web"));
    assert!(may_be_service(b"a.b"));
    assert!(!may_be_service(b".hidden"));
    assert!(!may_be_service(b"."));
    let key = Key { dev: 1, ino: 2 };
    let seen = |log_dir, log_run| {
        let s = Seen::new("x".into(), key, log_dir, log_run);
        (s.has_log, s.log_pending)
    };
    assert_eq!(seen(false, false), (false, false));
    assert_eq!(seen(true, false), (false, true));
    assert_eq!(seen(true, true), (true, false));
}
