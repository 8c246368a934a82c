//! `supervise/status`: the 20-byte record every client reads.
//!
//! Bytes 0-17 are daemontools' layout exactly, bytes 18-19 are runit's, so djb's `svstat`,
//! runit's `sv` and our own clients all read the same file. Readers accept 18 bytes or more
//! (daemontools writes 18) and reject records whose bytes no supervisor could have written,
//! rather than print a plausible lie.

use crate::tai::Tai64n;

/// Size of the record vigil's supervise writes (daemontools' 18 + runit's 2).
pub const STATUS_LEN: usize = 20;
/// Size of the record daemontools' supervise writes; the least a reader accepts.
pub const DAEMONTOOLS_STATUS_LEN: usize = 18;

/// What the supervisor is asked to keep the service doing (byte 17).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    /// `u`: keep it running.
    Up,
    /// `d`: keep it stopped.
    Down,
    /// 0: run it once (`svc -o`) and leave it stopped afterwards.
    Once,
}

impl Want {
    pub fn byte(self) -> u8 {
        match self {
            Want::Up => b'u',
            Want::Down => b'd',
            Want::Once => 0,
        }
    }

    pub fn from_byte(b: u8) -> Option<Want> {
        match b {
            b'u' => Some(Want::Up),
            b'd' => Some(Want::Down),
            0 => Some(Want::Once),
            _ => None,
        }
    }
}

/// runit's state byte (byte 19).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunState {
    Down = 0,
    Run = 1,
    Finish = 2,
}

/// One decoded `status` record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status {
    /// When the pid last changed (start or exit of `./run`).
    pub stamp: Tai64n,
    /// Pid of `./run`, 0 when it is not running.
    pub pid: u32,
    pub paused: bool,
    pub want: Want,
    /// The service was sent its down signal and has not exited yet.
    pub got_term: bool,
    pub state: RunState,
}

/// Why a status file could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusError {
    /// Shorter than 18 bytes, or bytes no supervisor writes.
    BadFormat,
}

impl Status {
    pub fn pack(&self) -> [u8; STATUS_LEN] {
        let mut out = [0u8; STATUS_LEN];
        let (stamp, rest) = out.split_at_mut(12);
        stamp.copy_from_slice(&self.stamp.pack());
        let (pid, rest) = rest.split_at_mut(4);
        pid.copy_from_slice(&self.pid.to_le_bytes());
        if let [paused, want, got_term, state] = rest {
            *paused = u8::from(self.paused && self.pid != 0);
            *want = self.want.byte();
            *got_term = u8::from(self.got_term);
            *state = self.state as u8;
        }
        out
    }

    /// Decodes a record of at least 18 bytes. Bytes 18-19 are read only when present and
    /// sensible (daemontools-encore keeps a different state enum there).
    pub fn unpack(bytes: &[u8]) -> Result<Status, StatusError> {
        let Some(head) = bytes.first_chunk::<DAEMONTOOLS_STATUS_LEN>() else {
            return Err(StatusError::BadFormat);
        };
        let (stamp, pid, paused, want) = split_head(*head);
        // Every supervisor writes a label after 2^62 (1970) and below 2^63, with nanoseconds
        // under a second; anything else is garbage, not a time.
        if stamp.secs >> 62 != 1 || stamp.nanos >= 1_000_000_000 || paused > 1 {
            return Err(StatusError::BadFormat);
        }
        let want = Want::from_byte(want).ok_or(StatusError::BadFormat)?;
        if pid > 0x3fff_ffff {
            return Err(StatusError::BadFormat);
        }
        let got_term = bytes.get(18) == Some(&1);
        let state = match bytes.get(19) {
            Some(2) => RunState::Finish,
            Some(1) => RunState::Run,
            _ if pid != 0 => RunState::Run,
            _ => RunState::Down,
        };
        Ok(Status {
            stamp,
            pid,
            paused: paused == 1,
            want,
            got_term,
            state,
        })
    }
}

/// The fields of daemontools' 18 bytes, as written, unchecked: stamp (bytes 0-11), pid
/// (12-15, little-endian), paused (16), want (17). [`Status::unpack`] validates them; runit's
/// `sv` ([`crate::sv::Record`]) takes them as they are.
pub fn split_head(head: [u8; DAEMONTOOLS_STATUS_LEN]) -> (Tai64n, u32, u8, u8) {
    let [
        s0,
        s1,
        s2,
        s3,
        s4,
        s5,
        s6,
        s7,
        n0,
        n1,
        n2,
        n3,
        p0,
        p1,
        p2,
        p3,
        paused,
        want,
    ] = head;
    (
        Tai64n::unpack([s0, s1, s2, s3, s4, s5, s6, s7, n0, n1, n2, n3]),
        u32::from_le_bytes([p0, p1, p2, p3]),
        paused,
        want,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    // Dumped from Debian's daemontools supervise (peers.md §1.2): up, pid 6656, want up.
    const DAEMONTOOLS_UP: [u8; 18] = [
        0x40, 0, 0, 0, 0x6b, 0x03, 0xe1, 0x6a, 0x1d, 0xcd, 0x65, 0x00, 0x00, 0x1a, 0, 0, 0, 0x75,
    ];
    // Dumped from runit's runsv (peers.md §3.1): pid 0x4407, want up, running.
    const RUNSV_UP: [u8; 20] = [
        0x40, 0, 0, 0, 0x6b, 0x03, 0xe1, 0xff, 0x0b, 0xeb, 0xc2, 0x00, 0x07, 0x44, 0, 0, 0, 0x75,
        0, 1,
    ];

    #[test]
    fn reads_daemontools_bytes() {
        let s = Status::unpack(&DAEMONTOOLS_UP).unwrap();
        assert_eq!(s.pid, 6656);
        assert_eq!(s.want, Want::Up);
        assert!(!s.paused);
        assert_eq!(s.state, RunState::Run);
        assert_eq!(s.stamp.secs, 0x4000_0000_6b03_e16a);
    }

    #[test]
    fn reads_runsv_bytes() {
        let s = Status::unpack(&RUNSV_UP).unwrap();
        assert_eq!(s.pid, 0x4407);
        assert_eq!(s.state, RunState::Run);
        assert!(!s.got_term);
    }

    #[test]
    fn round_trip_and_first_18_bytes_are_daemontools() {
        let s = Status::unpack(&DAEMONTOOLS_UP).unwrap();
        let packed = s.pack();
        assert_eq!(packed[..18], DAEMONTOOLS_UP);
        assert_eq!(packed[18..], [0, 1]);
        assert_eq!(Status::unpack(&packed).unwrap(), s);
    }

    #[test]
    fn paused_is_zero_when_down() {
        let s = Status {
            stamp: Tai64n::from_unix(1, 0),
            pid: 0,
            paused: true,
            want: Want::Down,
            got_term: false,
            state: RunState::Down,
        };
        assert_eq!(s.pack()[16], 0);
        assert_eq!(s.pack()[17], b'd');
    }

    #[test]
    fn rejects_short_and_garbage() {
        assert_eq!(
            Status::unpack(&DAEMONTOOLS_UP[..17]),
            Err(StatusError::BadFormat)
        );
        let mut bad = DAEMONTOOLS_UP;
        bad[17] = b'x';
        assert_eq!(Status::unpack(&bad), Err(StatusError::BadFormat));
        let mut bad = DAEMONTOOLS_UP;
        bad[0] = 0xff;
        assert_eq!(Status::unpack(&bad), Err(StatusError::BadFormat));
        let mut bad = DAEMONTOOLS_UP;
        bad[16] = 7;
        assert_eq!(Status::unpack(&bad), Err(StatusError::BadFormat));
        assert_eq!(Status::unpack(&[0u8; 20]), Err(StatusError::BadFormat));
    }
}
