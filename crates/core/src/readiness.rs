//! Who may announce readiness for a service through its sd_notify socket.
//!
//! The socket has an abstract address, which every process on the machine can send to, so each
//! datagram carries its sender's pid and uid (from the kernel) and is believed only when:
//! - the sender is root or supervise's own user (they can do anything to the service anyway);
//! - or the sender is the service's main process (`./run`, whatever user it became);
//! - or the sender runs as the same (real) user as the main process: such a process can already
//!   signal or trace the service, so it gains nothing by speaking for it;
//! - or the sender descends from the main process, or is in the session the main process leads
//!   (supervise gives `./run` its own session unless `no-setsid`), as far as `/proc` still shows
//!   it: `systemd-notify --ready` run as another user by a root `./run`, for example.
//!
//! Anyone else (another user's process outside the service) is refused: they cannot forge
//! readiness. The last rule can miss a sender that exited and was reaped before supervise looked
//! (systemd has the same race); the others do not depend on timing. `systemd-notify` (246 and
//! later) follows `READY=1` with `BARRIER=1` and a pipe end and waits until the manager closes
//! it; supervise closes it only after judging the datagram, so that sender is still there.

/// The sender of one datagram, as the kernel reported it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sender {
    pub pid: u32,
    pub uid: u32,
}

/// The service's main process: its pid and its real uid when still known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Main {
    pub pid: u32,
    pub uid: Option<u32>,
}

/// How far up the parent chain a sender is followed.
const MAX_DEPTH: usize = 64;

/// True when `sender` may speak for the service whose main process is `main` (`None`: not
/// running). `own_uid` is supervise's effective uid; `lineage(pid)` gives a process's parent pid
/// and session id, `None` when it is gone.
pub fn trusted(
    sender: Sender,
    own_uid: u32,
    main: Option<Main>,
    lineage: impl Fn(u32) -> Option<(u32, u32)>,
) -> bool {
    if sender.uid == 0 || sender.uid == own_uid {
        return true;
    }
    let Some(main) = main.filter(|m| m.pid > 1) else {
        return false;
    };
    if sender.pid == main.pid || main.uid == Some(sender.uid) {
        return true;
    }
    let mut pid = sender.pid;
    for _ in 0..MAX_DEPTH {
        let Some((parent, session)) = lineage(pid) else {
            return false;
        };
        if session == main.pid || parent == main.pid {
            return true;
        }
        if parent <= 1 {
            return false;
        }
        pid = parent;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAIN: Main = Main {
        pid: 100,
        uid: Some(0),
    };

    fn tree(pid: u32) -> Option<(u32, u32)> {
        match pid {
            // 200 -> 150 -> 100 (main, no setsid: session 50)
            200 => Some((150, 50)),
            150 => Some((100, 50)),
            // 300: its own session led by main
            300 => Some((40, 100)),
            // 400: an outsider
            400 => Some((1, 1)),
            _ => None,
        }
    }

    fn ok(pid: u32, uid: u32, main: Option<Main>) -> bool {
        trusted(Sender { pid, uid }, 0, main, tree)
    }

    #[test]
    fn root_and_main_are_believed() {
        assert!(ok(400, 0, Some(MAIN)));
        assert!(ok(100, 65534, Some(MAIN)));
    }

    #[test]
    fn descendants_and_session_members_are_believed() {
        assert!(ok(200, 65534, Some(MAIN)));
        assert!(ok(300, 65534, Some(MAIN)));
    }

    #[test]
    fn the_main_process_user_is_believed() {
        let main = Main {
            pid: 100,
            uid: Some(65534),
        };
        assert!(ok(400, 65534, Some(main)));
    }

    #[test]
    fn other_users_are_refused() {
        assert!(!ok(400, 65534, Some(MAIN)));
        assert!(!ok(999, 65534, Some(MAIN)), "gone sender");
        assert!(!ok(100, 65534, None), "no service running");
        let loops = |p: u32| Some((p, 7));
        assert!(!trusted(Sender { pid: 5, uid: 9 }, 0, Some(MAIN), loops));
    }
}

/// What one sd_notify datagram says (`KEY=VALUE` lines; unknown keys are ignored).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Notice<'a> {
    /// `READY=1`.
    pub ready: bool,
    /// `WATCHDOG=1`: the service is alive.
    pub alive: bool,
    /// The last `STATUS=` text.
    pub status: Option<&'a str>,
}

impl<'a> Notice<'a> {
    pub fn parse(text: &'a str) -> Notice<'a> {
        let mut n = Notice::default();
        for line in text.lines() {
            match line.split_once('=') {
                Some(("READY", "1")) => n.ready = true,
                Some(("WATCHDOG", "1")) => n.alive = true,
                Some(("STATUS", s)) => n.status = Some(s),
                _ => {}
            }
        }
        n
    }
}

#[cfg(test)]
mod notice_tests {
    use super::Notice;

    #[test]
    fn notices() {
        let n = Notice::parse("READY=1\nSTATUS=serving 3 clients\nMAINPID=7\nWATCHDOG=1");
        assert_eq!(
            n,
            Notice {
                ready: true,
                alive: true,
                status: Some("serving 3 clients")
            }
        );
        assert_eq!(
            Notice::parse("READY=0\nWATCHDOG=trigger"),
            Notice::default()
        );
        assert_eq!(Notice::parse("STATUS=a\nSTATUS=b").status, Some("b"));
    }
}
