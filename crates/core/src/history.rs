//! `supervise/history`: an append-only record of every start and exit of `./run`.
//!
//! One line per event, appended with a single `write(2)` to a file opened `O_APPEND`:
//!
//! ```text
//! @4000000065a1b2c3d4e5f607 start pid=1234 adopted=0 sum=1a2b3c4d
//! @4000000065a1b2c9d4e5f607 exit pid=1234 how=code:3 ran_ms=6012 sum=5e6f7a8b
//! ```
//!
//! `how` is `code:N`, `signal:N`, `spawn-failed` or `unknown` (an adopted process, whose exit
//! status only its real parent saw). `sum` is the FNV-1a hash of everything before ` sum=`, so a
//! line torn by a crash mid-write (and whatever was appended after it on the same line) is
//! recognised and skipped; earlier lines are never rewritten in place. When the file grows past
//! [`MAX_BYTES`], supervise keeps the newest half, written to `history.new` and renamed over it.

use crate::info::{push_decimal, push_signed};
use crate::machine::ExitKind;
use crate::tai::Tai64n;

/// Size at which the file is cut down to its newest half.
pub const MAX_BYTES: u64 = 64 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    Start {
        pid: u32,
        adopted: bool,
    },
    /// `how` is `None` when the exit status is unknown (adopted process).
    Exit {
        pid: u32,
        how: Option<ExitKind>,
        ran_ms: u64,
    },
    /// supervise itself stopped the run: its watchdog deadline passed, or the dead-man file went
    /// stale.
    Stop {
        pid: u32,
        why: StopWhy,
    },
    /// `./run` exited 0 leaving one process behind (a daemon that forked away): that process is
    /// now the service's main process.
    Track {
        pid: u32,
    },
}

/// Why supervise stopped a run on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopWhy {
    Watchdog,
    Deadman,
}

impl StopWhy {
    pub fn name(self) -> &'static str {
        match self {
            StopWhy::Watchdog => "watchdog",
            StopWhy::Deadman => "deadman",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub time: Tai64n,
    pub event: Event,
}

fn fnv1a(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

impl Entry {
    /// The line for this entry, newline included.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.render_into(&mut out);
        out
    }

    /// Writes the line for this entry into `out` (cleared first; its capacity is reused).
    pub fn render_into(&self, out: &mut String) {
        out.clear();
        self.describe_into(out);
        let sum = fnv1a(out);
        out.push_str(" sum=");
        for shift in (0..8).rev() {
            let nibble = (sum >> (shift * 4)) & 15;
            out.push(char::from_digit(nibble, 16).unwrap_or('0'));
        }
        out.push('\n');
    }

    /// The entry as text, without its checksum (what `svstat -H` shows).
    pub fn describe(&self) -> String {
        let mut out = String::new();
        self.describe_into(&mut out);
        out
    }

    fn describe_into(&self, out: &mut String) {
        out.push('@');
        self.time.push_hex_to(out);
        match self.event {
            Event::Start { pid, adopted } => {
                out.push_str(" start pid=");
                push_decimal(out, pid.into());
                out.push_str(if adopted { " adopted=1" } else { " adopted=0" });
            }
            Event::Exit { pid, how, ran_ms } => {
                out.push_str(" exit pid=");
                push_decimal(out, pid.into());
                out.push_str(" how=");
                match how {
                    Some(ExitKind::Code(c)) => {
                        out.push_str("code:");
                        push_signed(out, c.into());
                    }
                    Some(ExitKind::Signal(s)) => {
                        out.push_str("signal:");
                        push_signed(out, s.into());
                    }
                    Some(ExitKind::SpawnFailed) => out.push_str("spawn-failed"),
                    Some(ExitKind::Unknown) | None => out.push_str("unknown"),
                }
                out.push_str(" ran_ms=");
                push_decimal(out, ran_ms);
            }
            Event::Stop { pid, why } => {
                out.push_str(" stop pid=");
                push_decimal(out, pid.into());
                out.push_str(" why=");
                out.push_str(why.name());
            }
            Event::Track { pid } => {
                out.push_str(" track pid=");
                push_decimal(out, pid.into());
            }
        }
    }

    /// Parses one line (without its newline); `None` for a torn or foreign line.
    pub fn parse(line: &str) -> Option<Entry> {
        let (body, sum) = line.rsplit_once(" sum=")?;
        if u32::from_str_radix(sum, 16).ok()? != fnv1a(body) || sum.len() != 8 {
            return None;
        }
        let mut words = body.split(' ');
        let time = Tai64n::parse_hex(words.next()?.strip_prefix('@')?.as_bytes())?;
        let kind = words.next()?;
        let mut field = |name: &str| -> Option<String> {
            let w = words.next()?;
            w.strip_prefix(name)?.strip_prefix('=').map(str::to_owned)
        };
        let event = match kind {
            "start" => {
                let pid = field("pid")?.parse().ok()?;
                let adopted = field("adopted")? == "1";
                Event::Start { pid, adopted }
            }
            "exit" => {
                let pid = field("pid")?.parse().ok()?;
                let how_text = field("how")?;
                let how = match how_text.split_once(':') {
                    Some(("code", n)) => Some(ExitKind::Code(n.parse().ok()?)),
                    Some(("signal", n)) => Some(ExitKind::Signal(n.parse().ok()?)),
                    _ if how_text == "spawn-failed" => Some(ExitKind::SpawnFailed),
                    _ if how_text == "unknown" => None,
                    _ => return None,
                };
                let ran_ms = field("ran_ms")?.parse().ok()?;
                Event::Exit { pid, how, ran_ms }
            }
            "stop" => {
                let pid = field("pid")?.parse().ok()?;
                let why = match field("why")?.as_str() {
                    "watchdog" => StopWhy::Watchdog,
                    "deadman" => StopWhy::Deadman,
                    _ => return None,
                };
                Event::Stop { pid, why }
            }
            "track" => Event::Track {
                pid: field("pid")?.parse().ok()?,
            },
            _ => return None,
        };
        Some(Entry { time, event })
    }
}

/// Every intact entry of a history file, oldest first. Only complete lines (ending in a newline)
/// count.
pub fn parse_all(text: &str) -> Vec<Entry> {
    let complete = match text.rfind('\n') {
        Some(i) => text.get(..i).unwrap_or(""),
        None => "",
    };
    complete.lines().filter_map(Entry::parse).collect()
}

/// The newest half of a history file, cut at a line boundary, for the rewrite at [`MAX_BYTES`].
pub fn newest_half(text: &str) -> &str {
    let half = text.len() / 2;
    let from = text
        .get(half..)
        .and_then(|rest| rest.find('\n'))
        .map_or(text.len(), |i| half + i + 1);
    text.get(from..).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries() -> Vec<Entry> {
        let t = Tai64n::from_unix(1_700_000_000, 42);
        vec![
            Entry {
                time: t,
                event: Event::Start {
                    pid: 10,
                    adopted: false,
                },
            },
            Entry {
                time: t,
                event: Event::Exit {
                    pid: 10,
                    how: Some(ExitKind::Code(3)),
                    ran_ms: 1500,
                },
            },
            Entry {
                time: t,
                event: Event::Exit {
                    pid: 11,
                    how: Some(ExitKind::Signal(9)),
                    ran_ms: 0,
                },
            },
            Entry {
                time: t,
                event: Event::Start {
                    pid: 12,
                    adopted: true,
                },
            },
            Entry {
                time: t,
                event: Event::Exit {
                    pid: 12,
                    how: None,
                    ran_ms: 77,
                },
            },
            Entry {
                time: t,
                event: Event::Exit {
                    pid: 0,
                    how: Some(ExitKind::SpawnFailed),
                    ran_ms: 0,
                },
            },
            Entry {
                time: t,
                event: Event::Stop {
                    pid: 13,
                    why: StopWhy::Watchdog,
                },
            },
            Entry {
                time: t,
                event: Event::Stop {
                    pid: 14,
                    why: StopWhy::Deadman,
                },
            },
            Entry {
                time: t,
                event: Event::Track { pid: 15 },
            },
        ]
    }

    #[test]
    fn render_is_the_old_format() {
        for e in entries() {
            let body = e.describe();
            assert_eq!(e.render(), format!("{body} sum={:08x}\n", fnv1a(&body)));
        }
        let e = entries()[1];
        assert!(
            e.describe()
                .ends_with(" exit pid=10 how=code:3 ran_ms=1500")
        );
    }

    #[test]
    fn round_trip() {
        let text: String = entries().iter().map(Entry::render).collect();
        assert_eq!(parse_all(&text), entries());
    }

    #[test]
    fn torn_lines_are_skipped_and_earlier_ones_kept() {
        let e = entries();
        let a = e[0].render();
        let b = e[1].render();
        let c = e[2].render();
        // A crash tore b after 20 bytes; c was appended right after the torn part.
        let text = format!("{a}{}{c}", &b[..20]);
        assert_eq!(parse_all(&text), vec![e[0]]);
        // A torn last line without its newline is not counted.
        let text = format!("{a}{}", &b[..b.len() - 1]);
        assert_eq!(parse_all(&text), vec![e[0]]);
        // A flipped byte fails the sum.
        let text = format!("{a}{}", b.replace("code:3", "code:4"));
        assert_eq!(parse_all(&text), vec![e[0]]);
    }

    #[test]
    fn newest_half_cuts_at_a_line() {
        let text: String = entries().iter().map(Entry::render).collect();
        let half = newest_half(&text);
        assert!(half.len() <= text.len() / 2 + 1);
        assert!(text.ends_with(half));
        assert!(!parse_all(half).is_empty());
        assert_eq!(parse_all(half).last(), entries().last());
    }
}
