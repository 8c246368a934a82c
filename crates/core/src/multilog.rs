//! multilog's decisions, with no I/O: the script language, `*` patterns, which actions a line
//! reaches, the logger's journal record, human dates (UTC arithmetic and TZif zones) for the
//! `T` stamp and `tai64nlocal`, and the line/rotation [`Engine`] that puts them together.
//!
//! The program feeds bytes, signals and times in and performs the effects that come back;
//! every rule about what gets logged where, and when a file rotates, is tested here and in
//! `multilog/engine/tests.rs`.

mod engine;

pub use engine::{Config, Effect, Engine, PARTIAL_WAIT_MAX, RETRY, archives_to_remove, recover};

/// Smallest, largest and default `sSIZE` (daemontools' limits).
pub const MIN_SIZE: u32 = 4096;
pub const MAX_SIZE: u32 = 16_777_215;
pub const DEFAULT_SIZE: u32 = 99_999;
/// Smallest and default `nNUM`.
pub const MIN_NUM: u32 = 2;
pub const DEFAULT_NUM: u32 = 10;
/// Patterns see at most this many bytes of a line (stamp included).
pub const MATCH_LIMIT: usize = 1000;
/// `e` copies at most this many bytes of a line to stderr.
pub const ALERT_LIMIT: usize = 200;
/// `=file` holds the first 1000 bytes of the line, padded with newlines to this length.
pub const STATUS_LEN: usize = 1001;
/// A newline this close to the size limit ends the file (daemontools' rule).
pub const ROTATE_SLACK: u32 = 2000;

/// Names inside a log directory.
pub const CURRENT: &str = "current";
pub const LOCK: &str = "lock";
pub const STATE: &str = "state";
pub const NEWSTATE: &str = "newstate";
pub const PREVIOUS: &str = "previous";
pub const PROCESSED: &str = "processed";

/// A stamp put in front of each line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stamp {
    /// `t`: `@` + 24 hex digits of TAI64N + space (daemontools).
    Tai64n,
    /// `T`: ISO 8601 local time with numeric offset + space (vigil).
    Iso,
}

/// One log directory action with the settings in force where it appears.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirSpec {
    pub path: Vec<u8>,
    pub size: u32,
    pub num: u32,
    pub processor: Option<Vec<u8>>,
    /// `aSECONDS`: rotate a nonempty `current` this long after its first line (vigil).
    pub max_age: Option<u64>,
}

/// A per-line action, in script order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Select(Vec<u8>),
    Deselect(Vec<u8>),
    /// `e`: first 200 bytes of the line to stderr.
    Alert,
    /// `1`: the whole line to stdout (vigil, as s6-log's `1`).
    Stdout,
    /// `=file`: index into [`Script::status_files`].
    Status(usize),
    /// `./dir` or `/dir`: index into [`Script::dirs`].
    Dir(usize),
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Script {
    pub stamps: Vec<Stamp>,
    pub actions: Vec<Action>,
    pub dirs: Vec<DirSpec>,
    pub status_files: Vec<Vec<u8>>,
    /// Values read differently from how they are written (`s100` taken as `s4096`), as
    /// `action ARG taken as VALUE: WHY`, for the program to print once at start.
    pub warnings: Vec<String>,
}

/// Why a script argument was refused; the program prints `multilog: fatal: ARG: REASON`
/// and exits 100.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptError {
    pub arg: String,
    pub reason: &'static str,
}

fn err(arg: &[u8], reason: &'static str) -> ScriptError {
    ScriptError {
        arg: String::from_utf8_lossy(arg).into_owned(),
        reason,
    }
}

fn parse_number(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    let mut n: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u64::from(d - b'0');
    }
    Some(n)
}

/// daemontools' reading of an `s` or `n` value: the leading decimal digits (none reads as 0),
/// anything after them ignored. Returns the value, saturated at `u64::MAX`, and whether
/// anything followed the digits.
///
/// daemontools compat: daemontools' number wraps around past 2^64 - 1 (`s18446744073709551616`
/// is 0, so 4096); here it saturates, so a huge value means the largest one.
fn scan_number(arg: &[u8]) -> (u64, bool) {
    let mut n: u64 = 0;
    let mut used = 0;
    for &d in arg.iter().take_while(|d| d.is_ascii_digit()) {
        n = n.saturating_mul(10).saturating_add(u64::from(d - b'0'));
        used += 1;
    }
    (n, used < arg.len())
}

/// Reads the value of an `s` or `n` action the way daemontools does and clamps it into
/// `min..=max`; a warning naming the action is pushed when it is not taken as written.
fn clamp_value(
    arg: &[u8],
    rest: &[u8],
    min: u32,
    max: u32,
    range: &str,
    warnings: &mut Vec<String>,
) -> u32 {
    let (n, junk) = scan_number(rest);
    let value = u32::try_from(n.clamp(u64::from(min), u64::from(max))).unwrap_or(max);
    let taken = arg
        .get(..1)
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    let arg = String::from_utf8_lossy(arg);
    if u64::from(value) != n {
        warnings.push(format!("action {arg} taken as {taken}{value}: {range}"));
    } else if junk {
        warnings.push(format!(
            "action {arg} taken as {taken}{value}: only the leading digits count"
        ));
    }
    value
}

impl Script {
    /// Parses multilog's arguments.
    ///
    /// `s` and `n` are read as daemontools reads them (leading digits, none is 0, the rest
    /// ignored) and clamped into range as it does; each value not taken as written leaves a
    /// warning in [`Script::warnings`].
    ///
    /// daemontools compat: daemontools' multilog silently ignores an action it does not know
    /// (a misplaced `t`, a typo); vigil refuses the script so the mistake shows at the first
    /// start instead of as missing logs.
    pub fn parse<A: AsRef<[u8]>>(args: &[A]) -> Result<Script, ScriptError> {
        let mut script = Script::default();
        let mut size = DEFAULT_SIZE;
        let mut num = DEFAULT_NUM;
        let mut processor: Option<Vec<u8>> = None;
        let mut max_age: Option<u64> = None;
        let mut stamps_open = true;
        for arg in args {
            let arg = arg.as_ref();
            let Some((&first, rest)) = arg.split_first() else {
                return Err(err(arg, "empty action"));
            };
            if first != b't' && first != b'T' {
                stamps_open = false;
            }
            match first {
                b't' | b'T' => {
                    if !rest.is_empty() {
                        return Err(err(arg, "unknown action"));
                    }
                    let stamp = if first == b't' {
                        Stamp::Tai64n
                    } else {
                        Stamp::Iso
                    };
                    if !stamps_open {
                        return Err(err(arg, "timestamp actions must come first"));
                    }
                    if script.stamps.contains(&stamp) {
                        return Err(err(arg, "timestamp action given twice"));
                    }
                    script.stamps.push(stamp);
                }
                b'+' => script.actions.push(Action::Select(rest.to_vec())),
                b'-' => script.actions.push(Action::Deselect(rest.to_vec())),
                b'e' if rest.is_empty() => script.actions.push(Action::Alert),
                b'1' if rest.is_empty() => script.actions.push(Action::Stdout),
                b'=' => {
                    if rest.is_empty() {
                        return Err(err(arg, "status file name is empty"));
                    }
                    script
                        .actions
                        .push(Action::Status(script.status_files.len()));
                    script.status_files.push(rest.to_vec());
                }
                b's' => {
                    size = clamp_value(
                        arg,
                        rest,
                        MIN_SIZE,
                        MAX_SIZE,
                        "size is 4096 to 16777215",
                        &mut script.warnings,
                    );
                }
                b'n' => {
                    num = clamp_value(
                        arg,
                        rest,
                        MIN_NUM,
                        u32::MAX,
                        "number of files is at least 2",
                        &mut script.warnings,
                    );
                }
                b'a' => {
                    max_age = match parse_number(rest) {
                        Some(0) => None,
                        Some(n) => Some(n),
                        None => return Err(err(arg, "age must be a number of seconds")),
                    };
                }
                b'!' => {
                    processor = if rest.is_empty() {
                        None
                    } else {
                        Some(rest.to_vec())
                    };
                }
                b'.' | b'/' => {
                    script.actions.push(Action::Dir(script.dirs.len()));
                    script.dirs.push(DirSpec {
                        path: arg.to_vec(),
                        size,
                        num,
                        processor: processor.clone(),
                        max_age,
                    });
                }
                _ => return Err(err(arg, "unknown action")),
            }
        }
        Ok(script)
    }

    /// Which actions the line reaches: `out[i]` is true when action `i` is an output action
    /// (`e`, `1`, `=`, dir) and the line is selected at that point. `head` is the line with its
    /// stamps, without the newline; only its first [`MATCH_LIMIT`] bytes are looked at.
    pub fn select(&self, head: &[u8], out: &mut Vec<bool>) {
        let head = head.get(..MATCH_LIMIT).unwrap_or(head);
        out.clear();
        let mut selected = true;
        for action in &self.actions {
            match action {
                Action::Select(p) => {
                    if !selected && pattern_matches(p, head) {
                        selected = true;
                    }
                    out.push(false);
                }
                Action::Deselect(p) => {
                    if selected && pattern_matches(p, head) {
                        selected = false;
                    }
                    out.push(false);
                }
                Action::Alert | Action::Stdout | Action::Status(_) | Action::Dir(_) => {
                    out.push(selected)
                }
            }
        }
    }
}

/// multilog's patterns: a non-star matches itself; a star before the end matches any run of
/// bytes not containing the byte after it; a star at the end matches anything.
pub fn pattern_matches(pattern: &[u8], line: &[u8]) -> bool {
    let mut p = pattern;
    let mut s = line;
    loop {
        match p.split_first() {
            None => return s.is_empty(),
            Some((b'*', rest)) => {
                let Some(&next) = rest.first() else {
                    return true;
                };
                let Some(k) = s.iter().position(|&b| b == next) else {
                    return false;
                };
                s = s.get(k..).unwrap_or_default();
                p = rest;
            }
            Some((&c, rest)) => match s.split_first() {
                Some((&b, srest)) if b == c => {
                    s = srest;
                    p = rest;
                }
                _ => return false,
            },
        }
    }
}

/// The 1001 bytes `=file` receives for a line: its first 1000 bytes, padded with newlines.
pub fn status_record(line: &[u8]) -> [u8; STATUS_LEN] {
    let mut out = [b'\n'; STATUS_LEN];
    let n = line.len().min(STATUS_LEN - 1);
    if let (Some(dst), Some(src)) = (out.get_mut(..n), line.get(..n)) {
        dst.copy_from_slice(src);
    }
    out
}

/// Archive name for a label: `@` + 24 hex digits + `.s` or `.u`.
pub fn archive_name(hex: &str, processed: bool) -> String {
    format!("@{hex}.{}", if processed { 's' } else { 'u' })
}

/// True for names multilog counts as old log files.
pub fn is_archive(name: &[u8]) -> bool {
    name.first() == Some(&b'@')
}

// ---------------------------------------------------------------------------------------------
// The journal: how a restarted logger tells "written but still in the pipe" from "consumed".

/// Where the logger is with one batch of input (a prefix of the pipe's contents).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Appending the batch's output to `current`, starting at `offset`; the batch is still in
    /// the pipe unless it was taken out just before a kill (its hash then tells).
    Writing,
    /// Output written and the batch taken out of the pipe.
    Written,
}

/// One record, rewritten in place at offset 0 of the log directory's `lock` file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Journal {
    pub phase: Phase,
    pub batch: u64,
    /// Input bytes in the batch and their [`fnv1a`] hash.
    pub len: u64,
    pub hash: u64,
    /// Size of `current` before the batch's output.
    pub offset: u64,
}

/// Length of an encoded journal record (well under one page, so one `pwrite`).
pub const JOURNAL_LEN: usize = 128;
const JOURNAL_MAGIC: &str = "vigil-multilog-journal-1";

/// FNV-1a, 64 bits: a cheap fingerprint of a batch.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

impl Journal {
    pub fn encode(&self) -> [u8; JOURNAL_LEN] {
        let phase = match self.phase {
            Phase::Writing => 'W',
            Phase::Written => 'D',
        };
        let body = format!(
            "{JOURNAL_MAGIC} {phase} {:016x} {:016x} {:016x} {:016x}",
            self.batch, self.len, self.hash, self.offset
        );
        let text = format!("{body} {:016x}\n", fnv1a(body.as_bytes()));
        let mut out = [b'\n'; JOURNAL_LEN];
        let n = text.len().min(JOURNAL_LEN);
        if let (Some(dst), Some(src)) = (out.get_mut(..n), text.as_bytes().get(..n)) {
            dst.copy_from_slice(src);
        }
        out
    }

    /// `None` for anything but a complete, intact record (an empty lock file, a torn write).
    pub fn decode(bytes: &[u8]) -> Option<Journal> {
        let text = std::str::from_utf8(bytes.get(..JOURNAL_LEN)?).ok()?;
        let line = text.split('\n').next()?;
        let (body, sum) = line.rsplit_once(' ')?;
        if u64::from_str_radix(sum, 16).ok()? != fnv1a(body.as_bytes()) {
            return None;
        }
        let mut f = body.split(' ');
        if f.next()? != JOURNAL_MAGIC {
            return None;
        }
        let phase = match f.next()? {
            "W" => Phase::Writing,
            "D" => Phase::Written,
            _ => return None,
        };
        let mut num = || u64::from_str_radix(f.next()?, 16).ok();
        Some(Journal {
            phase,
            batch: num()?,
            len: num()?,
            hash: num()?,
            offset: num()?,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Human dates.

/// (year, month 1-12, day 1-31) of a day count since 1970-01-01 (proleptic Gregorian).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Howard Hinnant's days-to-civil arithmetic, eras of 400 years.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
    )
}

/// Broken-down time of `secs` seconds since the epoch, already shifted to local time.
fn broken_down(secs: i64) -> (i64, u32, u32, i64, i64, i64) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    (y, m, d, rem / 3600, rem / 60 % 60, rem % 60)
}

/// `YYYY-MM-DD HH:MM:SS.NNNNNNNNN`, as daemontools' tai64nlocal prints (local seconds given).
pub fn format_local(local_secs: i64, nanos: u32) -> String {
    let (y, mo, d, h, mi, s) = broken_down(local_secs);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{nanos:09}")
}

/// ISO 8601 with offset: `YYYY-MM-DDTHH:MM:SS.NNNNNNNNN+HH:MM` (`Z` for UTC).
pub fn format_iso(unix_secs: i64, nanos: u32, offset: i64) -> String {
    let (y, mo, d, h, mi, s) = broken_down(unix_secs + offset);
    let zone = if offset == 0 {
        "Z".to_owned()
    } else {
        let sign = if offset < 0 { '-' } else { '+' };
        let a = offset.abs();
        format!("{sign}{:02}:{:02}", a / 3600, a / 60 % 60)
    };
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{nanos:09}{zone}")
}

/// A time zone read from a TZif file (`/etc/localtime`, `/usr/share/zoneinfo/…`): the UTC
/// offset in force at any instant.
///
/// Instants after the last transition keep the last offset; the POSIX rule in the file's
/// footer (future DST changes past the table's end, decades away for current tzdata) is not
/// interpreted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TimeZone {
    /// (transition instant, offset from then on), sorted.
    transitions: Vec<(i64, i64)>,
    /// Offset before the first transition (or always, with no transitions).
    initial: i64,
}

fn be_i64(b: &[u8], at: usize, width: usize) -> Option<i64> {
    let s = b.get(at..at + width)?;
    Some(match width {
        4 => i64::from(i32::from_be_bytes(s.try_into().ok()?)),
        _ => i64::from_be_bytes(s.try_into().ok()?),
    })
}

impl TimeZone {
    pub fn utc() -> TimeZone {
        TimeZone::default()
    }

    /// Parses a TZif file (versions 1 to 4); `None` if it is not one.
    pub fn parse(data: &[u8]) -> Option<TimeZone> {
        let header = |b: &[u8]| -> Option<[usize; 6]> {
            if b.get(..4)? != b"TZif" {
                return None;
            }
            let mut c = [0usize; 6];
            for (i, slot) in c.iter_mut().enumerate() {
                *slot = usize::try_from(be_i64(b, 20 + 4 * i, 4)?).ok()?;
            }
            Some(c) // isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt
        };
        let v1 = header(data)?;
        let version = *data.get(4)?;
        let v1_len = |c: [usize; 6], tw: usize| {
            let [isut, isstd, leap, time, typ, chars] = c;
            time * tw + time + typ * 6 + chars + leap * (tw + 4) + isstd + isut
        };
        let (body, counts, tw) = if version >= b'2' {
            let second = data.get(44 + v1_len(v1, 4)..)?;
            (second, header(second)?, 8)
        } else {
            (data, v1, 4)
        };
        let [_, _, _, timecnt, typecnt, _] = counts;
        let times_at = 44;
        let idx_at = times_at + timecnt * tw;
        let types_at = idx_at + timecnt;
        let offset_of = |t: usize| be_i64(body, types_at + 6 * t, 4);
        if typecnt == 0 {
            return None;
        }
        // The first non-DST type stands for times before the first transition.
        let mut initial = offset_of(0)?;
        for t in 0..typecnt {
            if body.get(types_at + 6 * t + 4) == Some(&0) {
                initial = offset_of(t)?;
                break;
            }
        }
        let mut transitions = Vec::with_capacity(timecnt);
        for i in 0..timecnt {
            let at = be_i64(body, times_at + i * tw, tw)?;
            let t = usize::from(*body.get(idx_at + i)?);
            if t >= typecnt {
                return None;
            }
            transitions.push((at, offset_of(t)?));
        }
        Some(TimeZone {
            transitions,
            initial,
        })
    }

    /// Seconds to add to UTC at `unix_secs`.
    pub fn offset_at(&self, unix_secs: i64) -> i64 {
        let k = self.transitions.partition_point(|&(at, _)| at <= unix_secs);
        match k.checked_sub(1).and_then(|i| self.transitions.get(i)) {
            Some(&(_, off)) => off,
            None => self.initial,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )]
    use super::*;

    fn parse(args: &[&str]) -> Result<Script, ScriptError> {
        Script::parse(args)
    }

    #[test]
    fn every_directive() {
        let s = parse(&[
            "t", "T", "-*", "+a*", "e", "1", "=st", "s5000", "n3", "a60", "!gzip", "./main", "/abs",
        ])
        .unwrap();
        assert_eq!(s.stamps, vec![Stamp::Tai64n, Stamp::Iso]);
        assert_eq!(
            s.actions,
            vec![
                Action::Deselect(b"*".to_vec()),
                Action::Select(b"a*".to_vec()),
                Action::Alert,
                Action::Stdout,
                Action::Status(0),
                Action::Dir(0),
                Action::Dir(1),
            ]
        );
        assert_eq!(s.status_files, vec![b"st".to_vec()]);
        let d = &s.dirs[0];
        assert_eq!((d.size, d.num, d.max_age), (5000, 3, Some(60)));
        assert_eq!(d.processor.as_deref(), Some(&b"gzip"[..]));
        assert_eq!(d.path, b"./main");
    }

    #[test]
    fn defaults_and_settings_apply_to_later_dirs_only() {
        let s = parse(&["./a", "s4096", "n2", "!cat", "./b", "!", "./c"]).unwrap();
        assert_eq!((s.dirs[0].size, s.dirs[0].num), (DEFAULT_SIZE, DEFAULT_NUM));
        assert_eq!(s.dirs[0].processor, None);
        assert_eq!((s.dirs[1].size, s.dirs[1].num), (4096, 2));
        assert_eq!(s.dirs[1].processor.as_deref(), Some(&b"cat"[..]));
        assert_eq!(s.dirs[2].processor, None);
        assert!(parse(&[] as &[&str]).unwrap().actions.is_empty());
    }

    #[test]
    fn bad_scripts() {
        for bad in ["x", "=", "", "tt", "e2", "a-1", "foo", "10"] {
            assert!(parse(&[bad]).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            parse(&["./d", "t"]).unwrap_err().reason,
            "timestamp actions must come first"
        );
        assert!(parse(&["t", "t"]).is_err());
        let s = parse(&["s4096", "s16777215", "n2", "a0"]).unwrap();
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    }

    #[test]
    fn sizes_and_counts_clamp_as_daemontools_with_a_warning() {
        let dir = |args: &[&str]| {
            let mut all = args.to_vec();
            all.push("./d");
            let s = parse(&all).unwrap();
            (s.dirs[0].size, s.dirs[0].num, s.warnings)
        };
        for (arg, size) in [
            ("s", MIN_SIZE),
            ("s0", MIN_SIZE),
            ("s100", MIN_SIZE),
            ("s4095", MIN_SIZE),
            ("sabc", MIN_SIZE),
            ("s-5", MIN_SIZE),
            ("s16777216", MAX_SIZE),
            ("s100000000", MAX_SIZE),
            ("s18446744073709551616", MAX_SIZE),
            ("s5000x", 5000),
        ] {
            let (got, _, warnings) = dir(&[arg]);
            assert_eq!(got, size, "{arg}");
            assert_eq!(warnings.len(), 1, "{arg}: {warnings:?}");
            assert!(warnings[0].starts_with(&format!("action {arg} taken as s{size}: ")));
        }
        for (arg, num) in [
            ("n", MIN_NUM),
            ("n0", MIN_NUM),
            ("n1", MIN_NUM),
            ("nx", MIN_NUM),
            ("n3x", 3),
            ("n99999999999", u32::MAX),
        ] {
            let (_, got, warnings) = dir(&[arg]);
            assert_eq!(got, num, "{arg}");
            assert_eq!(warnings.len(), 1, "{arg}: {warnings:?}");
        }
        assert_eq!(
            dir(&["s100"]).2,
            vec!["action s100 taken as s4096: size is 4096 to 16777215".to_string()]
        );
        assert_eq!(
            dir(&["n1"]).2,
            vec!["action n1 taken as n2: number of files is at least 2".to_string()]
        );
        assert_eq!(
            dir(&["s5000x"]).2,
            vec!["action s5000x taken as s5000: only the leading digits count".to_string()]
        );
        assert_eq!(dir(&["s4096", "n2"]), (4096, 2, vec![]));
    }

    #[test]
    fn patterns_as_multilog_defines_them() {
        assert!(pattern_matches(b"hello", b"hello"));
        assert!(!pattern_matches(b"hello", b"hello world"));
        assert!(pattern_matches(
            b"named[*]: Cleaned cache *",
            b"named[135]: Cleaned cache of 3121 RRs."
        ));
        assert!(!pattern_matches(b"named[*]: x", b"named[1]2]: x"));
        assert!(pattern_matches(b"*", b""));
        assert!(pattern_matches(b"*", b"anything"));
        assert!(pattern_matches(b"", b""));
        assert!(!pattern_matches(b"", b"a"));
        assert!(pattern_matches(b"* fatal: *", b"@4000 fatal: oom"));
        // A star stops at the first occurrence of the next byte.
        assert!(!pattern_matches(b"*b", b"abab"));
        assert!(pattern_matches(b"*ba*", b"abab"));
        assert!(!pattern_matches(b"a*", b"b"));
    }

    #[test]
    fn selection() {
        let s = parse(&["-*", "+STAT*", "=st", "./all"]).unwrap();
        let mut out = vec![];
        s.select(b"STAT ok", &mut out);
        assert_eq!(out, vec![false, false, true, true]);
        s.select(b"other", &mut out);
        assert_eq!(out, vec![false, false, false, false]);
        let s = parse(&["./a", "-x*", "./b", "e"]).unwrap();
        s.select(b"xyz", &mut out);
        assert_eq!(out, vec![true, false, false, false]);
        // Only the first 1000 bytes are matched.
        let mut long = vec![b'a'; 1500];
        long.push(b'!');
        let s = parse(&["-*!", "./d"]).unwrap();
        s.select(&long, &mut out);
        assert_eq!(out, vec![false, true]);
    }

    #[test]
    fn status_record_pads() {
        let r = status_record(b"abc");
        assert_eq!(&r[..4], b"abc\n");
        assert!(r[3..].iter().all(|&b| b == b'\n'));
        let r = status_record(&[b'x'; 2000]);
        assert_eq!(r[999], b'x');
        assert_eq!(r[1000], b'\n');
    }

    #[test]
    fn journal_round_trip_and_damage() {
        let j = Journal {
            phase: Phase::Writing,
            batch: 7,
            len: 65536,
            hash: fnv1a(b"abc"),
            offset: 12345,
        };
        let e = j.encode();
        assert_eq!(Journal::decode(&e), Some(j));
        let mut torn = e;
        torn[40] ^= 1;
        assert_eq!(Journal::decode(&torn), None);
        assert_eq!(Journal::decode(b""), None);
        assert_eq!(Journal::decode(&[0u8; JOURNAL_LEN]), None);
        let d = Journal {
            phase: Phase::Written,
            ..j
        };
        assert_eq!(Journal::decode(&d.encode()), Some(d));
    }

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(
            format_local(1_700_000_000, 5),
            "2023-11-14 22:13:20.000000005"
        );
        assert_eq!(
            format_iso(1_700_000_000, 0, 0),
            "2023-11-14T22:13:20.000000000Z"
        );
        assert_eq!(
            format_iso(1_700_000_000, 0, 3600),
            "2023-11-14T23:13:20.000000000+01:00"
        );
        assert_eq!(
            format_iso(0, 0, -5 * 3600 - 1800),
            "1969-12-31T18:30:00.000000000-05:30"
        );
    }

    #[test]
    fn tzif_from_the_system() {
        // Debian ships tzdata; skip quietly where it does not exist.
        let Ok(data) = std::fs::read("/usr/share/zoneinfo/Europe/Paris") else {
            return;
        };
        let tz = TimeZone::parse(&data).unwrap();
        assert_eq!(tz.offset_at(1_700_000_000), 3600); // November: CET
        assert_eq!(tz.offset_at(1_690_000_000), 7200); // July: CEST
        assert_eq!(TimeZone::parse(b"nope"), None);
        if let Ok(utc) = std::fs::read("/usr/share/zoneinfo/UTC") {
            assert_eq!(TimeZone::parse(&utc).unwrap().offset_at(1_700_000_000), 0);
        }
    }
}
