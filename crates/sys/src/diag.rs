//! Diagnostics in daemontools' grammar, one `write(2)` per line.
//!
//! `prog: fatal: unable to <verb> <object>: <reason>` or `prog: warning: ...`. Each line is
//! formatted whole and written with a single call, so lines from hundreds of supervisors
//! sharing one pipe never interleave.

use std::io::{self, Write};
use std::process::ExitCode;

/// Exit code for usage errors and permanent failures.
pub const EXIT_USAGE: u8 = 100;
/// Exit code for temporary or system failures.
pub const EXIT_TEMP: u8 = 111;

/// A refusal that is not a system error: a file vigil will not use as it is, for a reason
/// given in words (`not a FIFO`, `owned by another user`). [`reason`] prints the words.
#[derive(Debug)]
pub struct Refused(pub &'static str);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Refused {}

/// An [`io::Error`] carrying a [`Refused`].
pub fn refused(why: &'static str) -> io::Error {
    io::Error::other(Refused(why))
}

/// daemontools' words for an I/O error, without Rust's ` (os error N)`.
pub fn reason(e: &io::Error) -> &'static str {
    if let Some(Refused(why)) = e.get_ref().and_then(|i| i.downcast_ref::<Refused>()) {
        return why;
    }
    match e.raw_os_error() {
        Some(n) => crate::errstr::describe(n),
        None => match e.kind() {
            io::ErrorKind::UnexpectedEof => "unexpected end of file",
            io::ErrorKind::OutOfMemory => "out of memory",
            _ => "unknown error",
        },
    }
}

/// Writes one whole line to stderr in a single write.
pub fn line(text: &str) {
    let mut buf = String::with_capacity(text.len() + 1);
    buf.push_str(text);
    buf.push('\n');
    let _ = io::stderr().write_all(buf.as_bytes());
}

/// `prog: warning: text`
pub fn warn(prog: &str, text: &str) {
    line(&format!("{prog}: warning: {text}"));
}

/// `prog: fatal: text`, then the exit code to return from `main`.
pub fn fatal(prog: &str, text: &str, code: u8) -> ExitCode {
    line(&format!("{prog}: fatal: {text}"));
    ExitCode::from(code)
}

/// `prog: usage: text`, exit 100.
pub fn usage(prog: &str, text: &str) -> ExitCode {
    line(&format!("{prog}: usage: {text}"));
    ExitCode::from(EXIT_USAGE)
}
