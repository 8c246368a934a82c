//! Diagnostics in daemontools' grammar, one `write(2)` per line.
//!
//! `prog: fatal: unable to <verb> <object>: <reason>` or `prog: warning: ...`. Each line is
//! formatted whole and written with a single call, so lines from hundreds of supervisors
//! sharing one pipe never interleave.

use std::fmt::Display;
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

/// `unable to VERB OBJECT: REASON`: the words after `prog: warning: ` or `prog: fatal: `, for
/// callers that hand the line on. The object is printed even when empty (`svok ''` says
/// `unable to chdir to : …`, as daemontools' does).
pub fn unable_text(verb: &str, object: &dyn Display, err: &io::Error) -> String {
    format!("unable to {verb} {object}: {}", reason(err))
}

/// `unable to WHAT: REASON`, for an action without an object (`unable to poll: …`).
pub fn bare_text(what: &str, err: &io::Error) -> String {
    format!("unable to {what}: {}", reason(err))
}

/// `prog: warning: unable to VERB OBJECT: REASON`, e.g.
/// `unable(PROG, "read", &format_args!("{dir}/supervise/control"), &e)`.
pub fn unable(prog: &str, verb: &str, object: &dyn Display, err: &io::Error) {
    warn(prog, &unable_text(verb, object, err));
}

/// `prog: fatal: unable to VERB OBJECT: REASON`, then the exit code to return from `main`.
pub fn unable_fatal(
    prog: &str,
    verb: &str,
    object: &dyn Display,
    err: &io::Error,
    code: u8,
) -> ExitCode {
    fatal(prog, &unable_text(verb, object, err), code)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unable_reads_as_daemontools() {
        let e = io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(
            unable_text("open", &format_args!("{}/supervise/ok", "x"), &e),
            "unable to open x/supervise/ok: file does not exist"
        );
        assert_eq!(bare_text("poll", &e), "unable to poll: file does not exist");
        assert_eq!(
            unable_text("chdir to", &"", &e),
            "unable to chdir to : file does not exist"
        );
        assert_eq!(
            unable_text("write", &"f", &refused("not a FIFO")),
            "unable to write f: not a FIFO"
        );
    }
}
