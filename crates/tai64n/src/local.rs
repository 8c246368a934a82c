//! tai64nlocal — turn the TAI64N stamp at the start of each line into local time.
//!
//! Usage: `tai64nlocal` (filter). A line starting with `@` and 24 hex digits has them replaced
//! by `YYYY-MM-DD HH:MM:SS.NNNNNNNNN` in the local zone (`$TZ`, else `/etc/localtime`, read
//! as a TZif file); every other byte passes through unchanged.
//!
//! Exit codes: 0 at end of input; 111 on a read or write error.
#![forbid(unsafe_code)]

use std::io::{BufRead, Write};
use std::process::ExitCode;

use vigil_core::multilog::{TimeZone, format_local};
use vigil_core::tai::Tai64n;
use vigil_sys::logio;

/// `@` and 24 hex digits.
const LABEL_LEN: usize = 25;

/// tai64nlocal, called with its arguments after argv[0] (it takes none and ignores them).
pub fn main(_args: Vec<std::ffi::OsString>) -> ExitCode {
    let zone = logio::load_local_zone();
    let mut input = std::io::BufReader::with_capacity(65536, std::io::stdin().lock());
    let mut out = std::io::BufWriter::with_capacity(65536, std::io::stdout().lock());
    let mut line = Vec::with_capacity(256);
    loop {
        line.clear();
        match input.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return fail("read input", &e),
        }
        let r = out.write_all(&convert(&line, &zone));
        if let Err(e) = r.and_then(|()| {
            if input.buffer().is_empty() {
                out.flush()
            } else {
                Ok(())
            }
        }) {
            return fail("write output", &e);
        }
    }
    match out.flush() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail("write output", &e),
    }
}

fn convert(line: &[u8], zone: &TimeZone) -> Vec<u8> {
    let label = line
        .get(..LABEL_LEN)
        .filter(|l| l.first() == Some(&b'@'))
        .and_then(|l| Tai64n::parse_hex(l.get(1..)?));
    let Some(t) = label else { return line.to_vec() };
    let secs = i64::try_from(t.unix_secs()).unwrap_or(i64::MAX);
    let local = secs.saturating_add(zone.offset_at(secs));
    let mut out = format_local(local, t.nanos).into_bytes();
    out.extend_from_slice(line.get(LABEL_LEN..).unwrap_or_default());
    out
}

fn fail(what: &str, e: &std::io::Error) -> ExitCode {
    let word = vigil_sys::errstr::describe(e.raw_os_error().unwrap_or(0));
    vigil_sys::diag::line(&format!("tai64nlocal: fatal: unable to {what}: {word}"));
    ExitCode::from(111)
}
