//! readproctitle — show the end of its input in its own command line, for `ps`
//! (daemontools' readproctitle).
//!
//! Usage: `readproctitle L… D`, where `D` is at least five characters (by convention dots).
//!
//! At start `D` becomes all dots. Then each read from standard input is appended to the right
//! of `D`, shifting older bytes out on the left, but the first three bytes stay `...`; NUL
//! bytes are dropped. Nothing is printed, ever.
//!
//! Exit codes: 0 at end of input; 100 (silently) without `D` or with `D` shorter than five
//! bytes, or when the argument area cannot be found; 111 (silently) on a read error.
#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;

use vigil_sys::diag::{EXIT_TEMP, EXIT_USAGE};
use vigil_sys::proctitle;

/// The bytes at the left of `D` that always stay dots.
const KEEP: usize = 3;
const MIN_LEN: usize = 5;

/// The program, called with its arguments after argv[0].
pub fn main(args: Vec<OsString>) -> ExitCode {
    let Some(last) = args.last().filter(|d| d.len() >= MIN_LEN) else {
        return ExitCode::from(EXIT_USAGE);
    };
    let Ok(mut area) = proctitle::last_arg(last.as_bytes()) else {
        return ExitCode::from(EXIT_USAGE);
    };
    let mut title = vec![b'.'; area.len()];
    if area.write(&title).is_err() {
        return ExitCode::from(EXIT_USAGE);
    }
    let mut stdin = std::io::stdin().lock();
    let mut buf = [0u8; 1024];
    loop {
        let n = match stdin.read(&mut buf) {
            Ok(0) => return ExitCode::SUCCESS,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return ExitCode::from(EXIT_TEMP),
        };
        push_tail(&mut title, buf.get(..n).unwrap_or_default());
        let _ = area.write(&title);
    }
}

/// Appends `input` (NULs dropped) at the right of `title`, shifting left, keeping the first
/// [`KEEP`] bytes.
fn push_tail(title: &mut [u8], input: &[u8]) {
    let Some(room) = title.get_mut(KEEP..) else {
        return;
    };
    let fresh: Vec<u8> = input.iter().copied().filter(|&b| b != 0).collect();
    let tail = fresh
        .get(fresh.len().saturating_sub(room.len())..)
        .unwrap_or_default();
    room.rotate_left(tail.len());
    let start = room.len() - tail.len();
    if let Some(end) = room.get_mut(start..) {
        end.copy_from_slice(tail);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_three_dots_and_the_tail() {
        let mut t = vec![b'.'; 20];
        push_tail(&mut t, b"fatal error xyz\nwarn\0ing abc\n");
        assert_eq!(&t, b"... xyz\nwarning abc\n");
        let mut t = vec![b'.'; 7];
        push_tail(&mut t, b"ab");
        assert_eq!(&t, b".....ab");
    }
}
