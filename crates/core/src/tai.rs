//! TAI64 and TAI64N labels as daemontools writes them.
//!
//! daemontools counts `2^62 + 10 + unix seconds` (it treats UTC as TAI minus 10 s and ignores
//! leap seconds). Real TAI would be 27 s further on; djb's `svstat` and `tai64nlocal` expect the
//! +10 convention, so that is the only one used here.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `2^62 + 10`: the TAI64 label of the Unix epoch in daemontools' convention.
pub const UNIX_EPOCH_LABEL: u64 = (1 << 62) + 10;

/// A TAI64N instant: an external TAI64 label (seconds) and nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tai64n {
    pub secs: u64,
    pub nanos: u32,
}

impl Tai64n {
    pub fn from_unix(secs: u64, nanos: u32) -> Self {
        Tai64n {
            secs: UNIX_EPOCH_LABEL.saturating_add(secs),
            nanos,
        }
    }

    pub fn from_system_time(t: SystemTime) -> Self {
        let since = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        Self::from_unix(since.as_secs(), since.subsec_nanos())
    }

    /// Unix seconds, 0 for labels before the epoch.
    pub fn unix_secs(self) -> u64 {
        self.secs.saturating_sub(UNIX_EPOCH_LABEL)
    }

    pub fn to_system_time(self) -> SystemTime {
        UNIX_EPOCH + Duration::new(self.unix_secs(), self.nanos.min(999_999_999))
    }

    pub fn pack(self) -> [u8; 12] {
        let mut out = [0u8; 12];
        let (s, n) = out.split_at_mut(8);
        s.copy_from_slice(&self.secs.to_be_bytes());
        n.copy_from_slice(&self.nanos.to_be_bytes());
        out
    }

    pub fn unpack(bytes: [u8; 12]) -> Self {
        let [s0, s1, s2, s3, s4, s5, s6, s7, n0, n1, n2, n3] = bytes;
        Tai64n {
            secs: u64::from_be_bytes([s0, s1, s2, s3, s4, s5, s6, s7]),
            nanos: u32::from_be_bytes([n0, n1, n2, n3]),
        }
    }

    /// The 24 lowercase hex digits of the packed label, as `tai64n` prints after its `@`.
    pub fn to_hex(self) -> String {
        let mut s = String::with_capacity(24);
        self.push_hex_to(&mut s);
        s
    }

    /// Appends the 24 hex digits of [`Tai64n::to_hex`] to `out`.
    pub fn push_hex_to(self, out: &mut String) {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut hex = [b'0'; 24];
        for (pair, b) in hex.chunks_exact_mut(2).zip(self.pack()) {
            for (slot, nibble) in pair.iter_mut().zip([b >> 4, b & 15]) {
                *slot = DIGITS.get(usize::from(nibble)).copied().unwrap_or(b'0');
            }
        }
        out.push_str(std::str::from_utf8(&hex).unwrap_or_default());
    }

    /// Parses 24 hex digits (no `@`), the inverse of [`Tai64n::to_hex`].
    pub fn parse_hex(hex: &[u8]) -> Option<Self> {
        if hex.len() != 24 {
            return None;
        }
        let mut out = [0u8; 12];
        for (slot, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
            let [hi, lo] = pair else { return None };
            *slot = (hex_value(*hi)? << 4) | hex_value(*lo)?;
        }
        Some(Self::unpack(out))
    }
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_label_is_plus_ten() {
        assert_eq!(
            Tai64n::from_unix(0, 0).pack()[..8],
            [0x40, 0, 0, 0, 0, 0, 0, 0x0a]
        );
    }

    #[test]
    fn matches_daemontools_dump() {
        // Bytes 0-7 of a status file written by Debian's supervise (peers.md §1.2): 0x6b03e16a.
        let t = Tai64n::unpack([0x40, 0, 0, 0, 0x6b, 0x03, 0xe1, 0x6a, 0, 0, 0, 0]);
        assert_eq!(t.unix_secs(), 0x6b03_e16a - 10);
    }

    #[test]
    fn hex_round_trip() {
        let t = Tai64n::from_unix(1_700_000_000, 123_456_789);
        let hex = t.to_hex();
        assert_eq!(hex.len(), 24);
        assert!(hex.starts_with("4000000065"));
        assert_eq!(Tai64n::parse_hex(hex.as_bytes()), Some(t));
        assert_eq!(Tai64n::parse_hex(b"40000000"), None);
        assert_eq!(Tai64n::parse_hex(b"4000000065xx000000000000"), None);
    }

    #[test]
    fn system_time_round_trip() {
        let t = UNIX_EPOCH + Duration::new(1_234_567_890, 42);
        assert_eq!(Tai64n::from_system_time(t).to_system_time(), t);
    }
}
