//! tai64n — put a TAI64N stamp (`@` + 24 hex digits + space) in front of every line.
//!
//! Usage: `tai64n` (no arguments; filter from stdin to stdout). A line's stamp is the time
//! its first byte was read. A partial last line is passed on without a newline added.
//!
//! Exit codes: 0 at end of input; 111 on a read or write error.
#![forbid(unsafe_code)]

use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::time::SystemTime;

use vigil_core::tai::Tai64n;

/// tai64n, called with its arguments after argv[0] (it takes none and ignores them).
pub fn main(_args: Vec<std::ffi::OsString>) -> ExitCode {
    let mut input = std::io::BufReader::with_capacity(65536, std::io::stdin().lock());
    let mut out = std::io::BufWriter::with_capacity(65536, std::io::stdout().lock());
    let mut at_start = true;
    loop {
        let chunk = match input.fill_buf() {
            Ok([]) => break,
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return fail("read input", &e),
        };
        let (len, ends) = match chunk.iter().position(|&b| b == b'\n') {
            Some(k) => (k + 1, true),
            None => (chunk.len(), false),
        };
        let mut piece = Vec::with_capacity(len + 26);
        if at_start {
            piece.push(b'@');
            piece.extend_from_slice(
                Tai64n::from_system_time(SystemTime::now())
                    .to_hex()
                    .as_bytes(),
            );
            piece.push(b' ');
        }
        piece.extend_from_slice(chunk.get(..len).unwrap_or_default());
        input.consume(len);
        at_start = ends;
        if let Err(e) = out.write_all(&piece) {
            return fail("write output", &e);
        }
        // Stamps are about when lines arrive: pass them on as soon as nothing more is waiting.
        if input.buffer().is_empty()
            && let Err(e) = out.flush()
        {
            return fail("write output", &e);
        }
    }
    match out.flush() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail("write output", &e),
    }
}

fn fail(what: &str, e: &std::io::Error) -> ExitCode {
    let word = vigil_sys::errstr::describe(e.raw_os_error().unwrap_or(0));
    vigil_sys::diag::line(&format!("tai64n: fatal: unable to {what}: {word}"));
    ExitCode::from(111)
}
