//! The control protocol: the bytes `svc` writes into `supervise/control` and what each means.
//!
//! daemontools' letters keep their meaning; the extra signal letters are daemontools-encore's
//! and runit's (`q 1 2 w`); the process-group forms are encore's `+` prefix and s6's `P C K`.

/// Linux signal numbers, so the pure crate can name the signals it decides to send. The pure
/// crate cannot ask libc; `vigil_sys::signals`' tests check every entry of [`sig::NAMES`]
/// against it, so this is the one table and it cannot drift.
pub mod sig {
    pub const HUP: i32 = 1;
    pub const INT: i32 = 2;
    pub const QUIT: i32 = 3;
    pub const KILL: i32 = 9;
    pub const USR1: i32 = 10;
    pub const USR2: i32 = 12;
    pub const ALRM: i32 = 14;
    pub const TERM: i32 = 15;
    pub const CONT: i32 = 18;
    pub const STOP: i32 = 19;
    pub const WINCH: i32 = 28;

    /// Every signal core names, with its name as `down-signal` and `stop-sequence` spell it.
    pub const NAMES: [(&str, i32); 11] = [
        ("HUP", HUP),
        ("INT", INT),
        ("QUIT", QUIT),
        ("KILL", KILL),
        ("USR1", USR1),
        ("USR2", USR2),
        ("ALRM", ALRM),
        ("TERM", TERM),
        ("CONT", CONT),
        ("STOP", STOP),
        ("WINCH", WINCH),
    ];

    /// Parses `TERM`, `SIGTERM` or `15` (any case for names), as `down-signal` holds it.
    pub fn parse(text: &str) -> Option<i32> {
        let t = text.trim();
        if let Ok(n) = t.parse::<i32>() {
            return (1..=64).contains(&n).then_some(n);
        }
        let upper = t.to_ascii_uppercase();
        let name = upper.strip_prefix("SIG").unwrap_or(&upper);
        NAMES.iter().find(|(n, _)| *n == name).map(|&(_, v)| v)
    }

    /// `TERM` for 15, the number as text for signals without a name here.
    pub fn name(n: i32) -> String {
        NAMES
            .iter()
            .find(|&&(_, v)| v == n)
            .map_or_else(|| n.to_string(), |(name, _)| (*name).to_string())
    }
}

/// One command understood by supervise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    Up,
    Down,
    Once,
    /// `x`: exit once the service is down.
    Exit,
    Pause,
    Continue,
    /// Send a signal to the service (to its process group when `group`).
    Signal {
        sig: i32,
        group: bool,
    },
    /// `+`: the signal letters that follow in this write go to the process group.
    GroupMode,
    /// `=`: back to signalling the pid only.
    PidMode,
    /// `L`: what follows is for the log service (encore); supervise of the main service skips it.
    LogTarget,
    /// `l`: what follows is for the main service again.
    MainTarget,
}

impl Command {
    /// Decodes one control byte; `None` for bytes supervise ignores.
    pub fn from_byte(b: u8) -> Option<Command> {
        use Command::*;
        let signal = |sig| Some(Signal { sig, group: false });
        match b {
            b'u' => Some(Up),
            b'd' => Some(Down),
            b'o' => Some(Once),
            b'x' => Some(Exit),
            b'p' => Some(Pause),
            b'c' => Some(Continue),
            b'h' => signal(sig::HUP),
            b'a' => signal(sig::ALRM),
            b'i' => signal(sig::INT),
            b't' => signal(sig::TERM),
            b'k' => signal(sig::KILL),
            b'q' => signal(sig::QUIT),
            b'1' => signal(sig::USR1),
            b'2' => signal(sig::USR2),
            b'w' => signal(sig::WINCH),
            b'P' => Some(Signal {
                sig: sig::STOP,
                group: true,
            }),
            b'C' => Some(Signal {
                sig: sig::CONT,
                group: true,
            }),
            b'K' => Some(Signal {
                sig: sig::KILL,
                group: true,
            }),
            b'+' => Some(GroupMode),
            b'=' => Some(PidMode),
            b'L' => Some(LogTarget),
            b'l' => Some(MainTarget),
            _ => None,
        }
    }
}

/// The signals supervise takes as commands, and the commands they stand for: svscan signals a
/// supervise whose control FIFO is gone (its directory removed) with the signal of the command
/// it means, and supervise obeys the signal as those bytes. One table, so the two agree.
pub const SIGNAL_COMMANDS: [(i32, &[u8]); 3] =
    [(sig::TERM, b"dx"), (sig::INT, b"dx"), (sig::HUP, b"x")];

/// The command bytes supervise obeys on signal `signal`, if it is one of [`SIGNAL_COMMANDS`].
pub fn signal_command(signal: i32) -> Option<&'static [u8]> {
    SIGNAL_COMMANDS
        .iter()
        .find(|&&(s, _)| s == signal)
        .map(|&(_, c)| c)
}

/// The signal that asks a supervise for `bytes` ([`SIGNAL_COMMANDS`], first match), if any.
pub fn command_signal(bytes: &[u8]) -> Option<i32> {
    SIGNAL_COMMANDS
        .iter()
        .find(|&&(_, c)| c == bytes)
        .map(|&(s, _)| s)
}

/// The letters `svc` accepts as options; each is also the byte it writes.
pub const SVC_LETTERS: &[u8] = b"udopchaitkxq12w+=";

/// Collects svc's option letters into the bytes to write: each distinct letter once, in order of
/// first appearance (daemontools' svc does the same), so `svc -dx` writes `dx`.
#[derive(Debug, Default)]
pub struct CommandBytes {
    bytes: Vec<u8>,
}

impl CommandBytes {
    /// Adds a letter; returns false if it is not an svc letter.
    pub fn push(&mut self, letter: u8) -> bool {
        if !SVC_LETTERS.contains(&letter) {
            return false;
        }
        if !self.bytes.contains(&letter) {
            self.bytes.push(letter);
        }
        true
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daemontools_letters() {
        assert_eq!(Command::from_byte(b'u'), Some(Command::Up));
        assert_eq!(Command::from_byte(b'd'), Some(Command::Down));
        assert_eq!(Command::from_byte(b'o'), Some(Command::Once));
        assert_eq!(Command::from_byte(b'x'), Some(Command::Exit));
        assert_eq!(
            Command::from_byte(b't'),
            Some(Command::Signal {
                sig: 15,
                group: false
            })
        );
        assert_eq!(
            Command::from_byte(b'k'),
            Some(Command::Signal {
                sig: 9,
                group: false
            })
        );
        assert_eq!(
            Command::from_byte(b'K'),
            Some(Command::Signal {
                sig: 9,
                group: true
            })
        );
        assert_eq!(Command::from_byte(b'z'), None);
        assert_eq!(Command::from_byte(0), None);
    }

    #[test]
    fn svc_dedups_in_order() {
        let mut c = CommandBytes::default();
        for l in b"duxud" {
            assert!(c.push(*l));
        }
        assert_eq!(c.as_bytes(), b"dux");
        assert!(!c.push(b'z'));
    }

    #[test]
    fn signals_and_commands_agree() {
        assert_eq!(signal_command(sig::TERM), Some(&b"dx"[..]));
        assert_eq!(signal_command(sig::INT), Some(&b"dx"[..]));
        assert_eq!(signal_command(sig::HUP), Some(&b"x"[..]));
        assert_eq!(signal_command(sig::KILL), None);
        assert_eq!(command_signal(b"dx"), Some(sig::TERM));
        assert_eq!(command_signal(b"x"), Some(sig::HUP));
        assert_eq!(command_signal(b"+k"), None);
        for (s, c) in SIGNAL_COMMANDS {
            assert_eq!(command_signal(c).and_then(signal_command), Some(c), "{s}");
        }
    }

    #[test]
    fn signal_names() {
        assert_eq!(sig::parse("TERM"), Some(15));
        assert_eq!(sig::parse("sigkill\n"), Some(9));
        assert_eq!(sig::parse("10"), Some(10));
        assert_eq!(sig::parse("0"), None);
        assert_eq!(sig::parse("BOGUS"), None);
        assert_eq!(sig::name(15), "TERM");
        assert_eq!(sig::name(40), "40");
    }
}
