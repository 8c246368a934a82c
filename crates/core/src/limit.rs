//! Resource limits as softlimit and chpst take them: which option sets which limit, how the
//! number is written, and what soft limit that means against the hard one.

/// The limits the two programs can set (each maps to one `RLIMIT_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    AddressSpace,
    Core,
    Cpu,
    Data,
    FileSize,
    Locked,
    OpenFiles,
    Processes,
    Resident,
    Stack,
}

/// A requested soft limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Soft {
    /// softlimit's `=`: as high as the hard limit.
    Hard,
    Value(u64),
}

/// `RLIM_INFINITY` on Linux.
pub const INFINITY: u64 = u64::MAX;

/// The limits a softlimit option letter sets; `-m` is `-a -d -l -s` at once.
pub fn softlimit_resources(letter: u8) -> &'static [Resource] {
    use Resource::*;
    match letter {
        b'a' => &[AddressSpace],
        b'c' => &[Core],
        b'd' => &[Data],
        b'f' => &[FileSize],
        b'l' => &[Locked],
        b'm' => &[Data, Stack, Locked, AddressSpace],
        b'o' => &[OpenFiles],
        b'p' => &[Processes],
        b'r' => &[Resident],
        b's' => &[Stack],
        b't' => &[Cpu],
        _ => &[],
    }
}

/// The limits a chpst option letter sets (no `-a`, `-l` or `-s` of its own; `-m` is data,
/// stack, locked memory and address space).
pub fn chpst_resources(letter: u8) -> &'static [Resource] {
    match letter {
        b'a' | b'l' | b's' => &[],
        other => softlimit_resources(other),
    }
}

/// A decimal number of digits only; a value beyond u64 saturates (to "unlimited", which the
/// hard limit then caps).
///
/// daemontools compat: softlimit 0.76 wraps such a number modulo 2^64 (`-t
/// 99999999999999999999999` sets 200376420520689663 seconds); saturating is what was meant.
///
/// daemontools compat: softlimit 0.76 crashes on an empty number (`softlimit -m ''`); here it
/// is a usage error like any other non-number.
pub fn parse_number(text: &[u8]) -> Option<u64> {
    if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(text.iter().fold(0u64, |n, &d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

/// softlimit's argument: `=` or a number.
pub fn parse_soft(text: &[u8]) -> Option<Soft> {
    if text == b"=" {
        return Some(Soft::Hard);
    }
    parse_number(text).map(Soft::Value)
}

/// The soft limit to set: the request, never above the hard limit (as both peers do, rather
/// than fail with EINVAL).
pub fn soft_value(want: Soft, hard: u64) -> u64 {
    match want {
        Soft::Hard => hard,
        Soft::Value(v) => v.min(hard),
    }
}

/// chpst's `-n`: a decimal integer that may start with `-` or `+`.
pub fn parse_nice(text: &[u8]) -> Option<i32> {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, text),
    };
    let n = i32::try_from(parse_number(digits)?).ok()?;
    Some(if negative { -n } else { n })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(parse_number(b"200000000"), Some(200_000_000));
        assert_eq!(parse_number(b"0"), Some(0));
        assert_eq!(parse_number(b""), None);
        assert_eq!(parse_number(b"12x"), None);
        assert_eq!(parse_number(b"-5"), None);
        assert_eq!(parse_number(b"+5"), None);
        assert_eq!(parse_number(b" 5"), None);
        assert_eq!(parse_number(b"99999999999999999999999"), Some(INFINITY));
    }

    #[test]
    fn soft_limits() {
        assert_eq!(parse_soft(b"="), Some(Soft::Hard));
        assert_eq!(parse_soft(b"=1"), None);
        assert_eq!(soft_value(Soft::Hard, 20000), 20000);
        assert_eq!(soft_value(Soft::Value(50), 20000), 50);
        assert_eq!(soft_value(Soft::Value(99_999), 20000), 20000);
        assert_eq!(soft_value(Soft::Value(5), INFINITY), 5);
    }

    #[test]
    fn letters() {
        assert_eq!(softlimit_resources(b'm').len(), 4);
        assert_eq!(softlimit_resources(b'z'), &[] as &[Resource]);
        assert_eq!(chpst_resources(b'a'), &[] as &[Resource]);
        assert_eq!(chpst_resources(b'r'), &[Resource::Resident]);
        assert_eq!(chpst_resources(b'm'), softlimit_resources(b'm'));
    }

    #[test]
    fn nice() {
        assert_eq!(parse_nice(b"3"), Some(3));
        assert_eq!(parse_nice(b"+3"), Some(3));
        assert_eq!(parse_nice(b"-3"), Some(-3));
        assert_eq!(parse_nice(b"x"), None);
        assert_eq!(parse_nice(b"-"), None);
        assert_eq!(parse_nice(b""), None);
    }
}
