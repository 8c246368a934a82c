//! The memory of our own argument strings, which `ps` shows (readproctitle writes the end of
//! its input there).
//!
//! The kernel reports where the strings lie (`arg_start`, `arg_end`, fields 48 and 49 of
//! `/proc/self/stat`). Before writing, the area is checked against `/proc/self/cmdline`, which
//! the kernel reads from those same addresses: a mismatch refuses instead of writing blind.

use std::io;

/// The bytes of the last argument string, in place (its terminating NUL excluded).
#[derive(Debug)]
pub struct LastArg {
    start: *mut u8,
    len: usize,
}

fn invalid() -> io::Error {
    io::Error::from_raw_os_error(rustix::io::Errno::INVAL.raw_os_error())
}

/// `arg_start` and `arg_end` of this process.
fn arg_bounds() -> io::Result<(usize, usize)> {
    let stat = std::fs::read("/proc/self/stat")?;
    // Field 2 (comm) may contain spaces and parentheses: count fields after its last `)`.
    let close = stat.iter().rposition(|&b| b == b')').ok_or_else(invalid)?;
    let rest = stat.get(close + 2..).ok_or_else(invalid)?;
    // `rest` starts at field 3; arg_start is field 48.
    let mut fields = rest.split(|&b| b == b' ').skip(45);
    let mut number = || -> io::Result<usize> {
        let f = fields.next().ok_or_else(invalid)?;
        std::str::from_utf8(f)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(invalid)
    };
    let start = number()?;
    let end = number()?;
    Ok((start, end))
}

/// Finds the last argument, which must be `expected` (as the program received it).
pub fn last_arg(expected: &[u8]) -> io::Result<LastArg> {
    let (start, end) = arg_bounds()?;
    let cmdline = std::fs::read("/proc/self/cmdline")?;
    if end.checked_sub(start) != Some(cmdline.len()) {
        return Err(invalid());
    }
    let mut tail = expected.to_vec();
    tail.push(0);
    if !cmdline.ends_with(&tail) {
        return Err(invalid());
    }
    let at = end - tail.len();
    Ok(LastArg {
        start: at as *mut u8,
        len: expected.len(),
    })
}

impl LastArg {
    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Overwrites it with `text`, which must be exactly as long.
    pub fn write(&mut self, text: &[u8]) -> io::Result<()> {
        if text.len() != self.len {
            return Err(invalid());
        }
        // SAFETY: `start..start+len` is the last argument string in the process's initial
        // stack, which the kernel set up and keeps mapped read-write for the process's
        // lifetime; `last_arg` checked that /proc/self/cmdline (read by the kernel from these
        // very addresses) ends with the expected argument there. No Rust reference points into
        // it: std copied the arguments into owned strings when `main` collected them, and this
        // program is single-threaded, so nothing reads these bytes while they change.
        unsafe { std::ptr::copy_nonoverlapping(text.as_ptr(), self.start, self.len) };
        Ok(())
    }
}
