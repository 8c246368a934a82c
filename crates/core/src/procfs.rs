//! What Linux's `/proc` text says, parsed here without reading it: the lines of `/proc/locks`,
//! a process's state in `/proc/PID/stat`, the program name in `/proc/PID/cmdline`.
//!
//! `vigil_sys::procfs` reads the files and asks these functions. The text comes from the
//! kernel, yet is treated as untrusted: anything unexpected is skipped, nothing panics (a fuzz
//! target, `fuzz/fuzz_targets/proc_locks.rs`, and a random-input test check it).

/// One granted lock of `/proc/locks`: who holds it, on which device and inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockLine {
    pub pid: u32,
    pub major: u32,
    pub minor: u32,
    pub ino: u64,
}

/// The granted locks in `/proc/locks` text. A line reads
/// `1: FLOCK  ADVISORY  WRITE 2004 fe:00:5333127 0 EOF` (device numbers in hex); waiters
/// (`1: -> FLOCK …`) are skipped, and so are pids ≤ 0 (OFD locks, other namespaces) and lines
/// that do not read so.
pub fn parse_locks(text: &str) -> impl Iterator<Item = LockLine> + '_ {
    text.lines().filter_map(parse_lock_line)
}

fn parse_lock_line(line: &str) -> Option<LockLine> {
    let mut f = line.split_whitespace();
    f.next()?; // "N:"
    if f.next()? == "->" {
        return None;
    }
    f.next()?; // ADVISORY or MANDATORY
    f.next()?; // READ or WRITE
    let pid: i64 = f.next()?.parse().ok()?;
    let mut dev = f.next()?.split(':');
    let major = u32::from_str_radix(dev.next()?, 16).ok()?;
    let minor = u32::from_str_radix(dev.next()?, 16).ok()?;
    let ino: u64 = dev.next()?.parse().ok()?;
    let pid = u32::try_from(pid).ok().filter(|&p| p > 0)?;
    Some(LockLine {
        pid,
        major,
        minor,
        ino,
    })
}

/// Pids holding a lock on `major:minor:ino`.
pub fn lock_pids(text: &str, major: u32, minor: u32, ino: u64) -> Vec<u32> {
    parse_locks(text)
        .filter(|l| (l.major, l.minor, l.ino) == (major, minor, ino))
        .map(|l| l.pid)
        .collect()
}

/// Pids holding a lock on inode `ino` of any device (device numbers in `/proc/locks` can
/// differ from `stat`'s on overlay file systems).
pub fn lock_pids_any_dev(text: &str, ino: u64) -> Vec<u32> {
    parse_locks(text)
        .filter(|l| l.ino == ino)
        .map(|l| l.pid)
        .collect()
}

/// Every pid holding some lock, sorted (for `binary_search`), duplicates kept.
pub fn lock_holders(text: &str) -> Vec<u32> {
    let mut pids: Vec<u32> = parse_locks(text).map(|l| l.pid).collect();
    pids.sort_unstable();
    pids
}

/// The fields of `/proc/PID/stat` from field 3 (the state) on, `None` for text that is not a
/// stat line. The command name (field 2) is in parentheses and may hold anything, spaces and
/// parentheses included: the fields start after the last `)`.
pub fn stat_fields(stat: &[u8]) -> Option<impl Iterator<Item = &[u8]>> {
    let close = stat.iter().rposition(|&b| b == b')')?;
    let rest = stat.get(close + 1..)?;
    Some(
        rest.split(|b| b.is_ascii_whitespace())
            .filter(|f| !f.is_empty()),
    )
}

/// Field `n` of a stat line (1-based, as proc(5) numbers them; `n` >= 3) as a number.
pub fn stat_field(stat: &[u8], n: usize) -> Option<u64> {
    let field = stat_fields(stat)?.nth(n.checked_sub(3)?)?;
    std::str::from_utf8(field).ok()?.parse().ok()
}

/// Whether a stat line shows a live process: its state (field 3) is not zombie or dead (`Z`,
/// `X`, or `x` of kernels 2.6.33 to 3.13). Text without a state counts as alive.
pub fn stat_alive(stat: &[u8]) -> bool {
    let state = stat_fields(stat).and_then(|mut f| f.next());
    !matches!(state, Some(b"Z" | b"X" | b"x"))
}

/// [`stat_field`] of a live process; `None` for a zombie.
pub fn live_stat_field(stat: &[u8], n: usize) -> Option<u64> {
    stat_alive(stat).then(|| stat_field(stat, n)).flatten()
}

/// The real uid in `/proc/PID/status` text (the first number of its `Uid:` line).
pub fn status_real_uid(status: &str) -> Option<u32> {
    let line = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    line.split_whitespace().next()?.parse().ok()
}

/// The pids in a `/proc/PID/task/TID/children` file (space-separated).
pub fn children_pids(text: &str) -> impl Iterator<Item = u32> + '_ {
    text.split_whitespace().filter_map(|w| w.parse().ok())
}

/// Whether argv[0] in `/proc/PID/cmdline` bytes is `name`, as a path or the bare name.
pub fn argv0_is(cmdline: &[u8], name: &[u8]) -> bool {
    let argv0 = cmdline.split(|&b| b == 0).next().unwrap_or_default();
    argv0.rsplit(|&b| b == b'/').next() == Some(name)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn parses_proc_locks() {
        let text = "1: FLOCK  ADVISORY  WRITE 2004 fe:00:5333127 0 EOF\n\
                    1: -> FLOCK  ADVISORY  WRITE 3000 fe:00:5333127 0 EOF\n\
                    2: OFDLCK ADVISORY  READ  -1 fe:00:5333127 0 EOF\n\
                    3: POSIX  ADVISORY  WRITE 77 103:0a:12 0 EOF\n";
        assert_eq!(lock_pids(text, 0xfe, 0, 5_333_127), vec![2004]);
        assert_eq!(lock_pids(text, 0x103, 0x0a, 12), vec![77]);
        assert!(lock_pids(text, 0xfe, 1, 5_333_127).is_empty());
        assert_eq!(lock_pids_any_dev(text, 12), vec![77]);
        assert_eq!(lock_holders(text), vec![77, 2004]);
    }

    #[test]
    fn process_state_and_name() {
        assert!(stat_alive(b"42 (sleep) S 1 42 42 0"));
        assert!(!stat_alive(b"42 (sleep) Z 1 42"));
        assert!(!stat_alive(b"42 (we) ird) Z 1 42"));
        assert!(stat_alive(b""));
        let line = b"42 (a b) c) S 7 42 9 0 -1 4194560 1 2 3 4 5 6 7 8 20 0 1 0 12345 0\n";
        assert_eq!(stat_field(line, 4), Some(7));
        assert_eq!(stat_field(line, 6), Some(9));
        assert_eq!(live_stat_field(line, 22), Some(12345));
        assert_eq!(stat_field(line, 2), None);
        assert_eq!(stat_field(line, 99), None);
        assert_eq!(live_stat_field(b"42 (z) Z 7 42 9", 4), None);
        assert_eq!(stat_field(b"42 (z) Z 7 42 9", 4), Some(7));
        assert_eq!(stat_field(b"no parenthesis", 4), None);
        assert_eq!(
            status_real_uid("Name:\tx\nUid:\t1000\t0\t0\t0\n"),
            Some(1000)
        );
        assert_eq!(status_real_uid("Name:\tx\n"), None);
        assert_eq!(
            children_pids("12 13 x 14 ").collect::<Vec<_>>(),
            vec![12, 13, 14]
        );
        assert!(argv0_is(b"/usr/bin/supervise\0svc\0", b"supervise"));
        assert!(argv0_is(b"supervise\0", b"supervise"));
        assert!(!argv0_is(b"svscan\0supervise\0", b"supervise"));
        assert!(!argv0_is(b"", b"supervise"));
    }

    /// xorshift64*: deterministic randomness without a dependency.
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

    /// A granted lock as the kernel prints it (`fs/locks.c`: `%x:%x:%lu`).
    fn format_line(n: u64, l: &LockLine, kind: &str) -> String {
        format!(
            "{n}: {kind} ADVISORY  WRITE {} {:02x}:{:02x}:{} 0 EOF\n",
            l.pid, l.major, l.minor, l.ino
        )
    }

    /// The deterministic stand-in for the fuzz target, run in CI: random lines built from
    /// `/proc/locks` pieces and random bytes never panic, and every well-formed granted lock
    /// line written comes back as it was, in order, waiters and bad lines skipped.
    #[test]
    fn random_proc_locks_never_panic_and_round_trip() {
        const PIECES: [&str; 14] = [
            "1:", "->", "FLOCK", "POSIX", "OFDLCK", "ADVISORY", "WRITE", "READ", "-1", "0",
            "fe:00:12", "zz:1:2", "1:2:", " ",
        ];
        for seed in 1..=300u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
            let mut text = String::new();
            let mut want = Vec::new();
            for n in 0..rng.below(40) {
                match rng.below(4) {
                    0 => {
                        let l = LockLine {
                            pid: 1 + u32::try_from(rng.below(u64::from(u32::MAX))).unwrap(),
                            major: u32::try_from(rng.below(0x1000)).unwrap(),
                            minor: u32::try_from(rng.below(0x100_000)).unwrap(),
                            ino: rng.next(),
                        };
                        text.push_str(&format_line(n, &l, "FLOCK "));
                        want.push(l);
                    }
                    1 => {
                        let l = LockLine {
                            pid: 5,
                            major: 1,
                            minor: 2,
                            ino: 3,
                        };
                        text.push_str(&format_line(n, &l, "-> FLOCK "));
                    }
                    2 => {
                        let words: Vec<&str> = (0..rng.below(9))
                            .map(|_| PIECES[usize::try_from(rng.below(14)).unwrap()])
                            .collect();
                        text.push_str(&words.join(" "));
                        text.push('\n');
                    }
                    _ => {
                        let bytes: Vec<u8> = (0..rng.below(60))
                            .map(|_| u8::try_from(rng.below(256)).unwrap())
                            .collect();
                        // Random junk may read as a lock line by chance; only check no panic.
                        let junk = String::from_utf8_lossy(&bytes).replace('\n', " ");
                        let _ = parse_locks(&junk).count();
                        let _ = (stat_alive(&bytes), live_stat_field(&bytes, 22));
                        let _ = (status_real_uid(&junk), children_pids(&junk).count());
                    }
                }
            }
            let got: Vec<LockLine> = parse_locks(&text).collect();
            assert_eq!(got, want, "seed {seed}:\n{text}");
            let _ = lock_holders(&text);
            for l in &want {
                assert!(lock_pids(&text, l.major, l.minor, l.ino).contains(&l.pid));
                assert!(lock_pids_any_dev(&text, l.ino).contains(&l.pid));
            }
        }
    }
}
