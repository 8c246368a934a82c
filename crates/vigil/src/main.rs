//! vigil — every program of the suite in one executable (busybox / uutils' coreutils shape).
//!
//! Usage: `NAME ARGS…` through a link named NAME (what `scripts/install` and the build make),
//! or `vigil NAME ARGS…`; `vigil --list` prints the names, one a line.
//!
//! One executable means one copy of the text in memory for svscan and every supervise (svscan
//! runs supervise from this same executable), and one file to install. Each program lives in
//! its own crate as `main(args) -> ExitCode`; this file only chooses which one runs.
//!
//! Exit codes: the program's own; 100 for a name that is not one of ours.
#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;
use std::process::ExitCode;

use vigil_sys::diag;

include!("programs.rs");
include!(concat!(env!("OUT_DIR"), "/help.rs"));

type Entry = fn(Vec<OsString>) -> ExitCode;

/// The entry point of program `name`.
fn entry(name: &[u8]) -> Option<Entry> {
    Some(match name {
        b"chpst" => chpst::main,
        b"envdir" => envdir::main,
        b"envuidgid" => envuidgid::main,
        b"fghack" => fghack::main,
        b"multilog" => multilog::main,
        b"pgrphack" => pgrphack::main,
        b"readproctitle" => readproctitle::main,
        b"setlock" => setlock::main,
        b"setuidgid" => setuidgid::main,
        b"softlimit" => softlimit::main,
        b"supervise" => supervise::main,
        b"sv" => sv::main,
        b"svc" => svc::main,
        b"svok" => svok::main,
        b"svscan" => svscan::main,
        b"svstat" => svstat::main,
        b"svwait" => svwait::main,
        b"tai64n" => tai64n::stamp::main,
        b"tai64nlocal" => tai64n::local::main,
        _ => return None,
    })
}

fn main() -> ExitCode {
    let mut args = std::env::args_os();
    let argv0 = args.next().unwrap_or_default();
    let mut rest: Vec<OsString> = args.collect();
    let called = Path::new(&argv0)
        .file_name()
        .map_or(&b""[..], |n| n.as_bytes())
        .to_vec();
    let name = match entry(&called) {
        Some(_) => called,
        // runit's sv linked as an init script (`/etc/init.d/NAME -> vigil`): any name that is
        // neither a program nor the executable's own (vigil, vigil-*) is a service name.
        None if is_init_script(&called) => {
            return sv::main_lsb(std::ffi::OsStr::from_bytes(&called), rest);
        }
        None if rest.is_empty() => return list_usage(),
        None => rest.remove(0).into_vec(),
    };
    if name == b"--list" {
        let mut out = String::new();
        for p in PROGRAMS {
            out.push_str(p);
            out.push('\n');
        }
        let _ = std::io::stdout().write_all(out.as_bytes());
        return ExitCode::SUCCESS;
    }
    let Some(run) = entry(&name) else {
        return list_usage();
    };
    // daemontools compat: daemontools' programs know neither option (`supervise --help` would
    // supervise a directory of that name). Only as the first argument, so `envdir ./env prog
    // --help` still hands `--help` to prog.
    match rest.first().map(|a| a.as_bytes()) {
        Some(b"--help") => {
            let _ = std::io::stdout().write_all(help(&name).unwrap_or_default().as_bytes());
            return ExitCode::SUCCESS;
        }
        Some(b"--version") => {
            let text = format!(
                "{} (vigil) {}\n",
                String::from_utf8_lossy(&name),
                env!("CARGO_PKG_VERSION")
            );
            let _ = std::io::stdout().write_all(text.as_bytes());
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    // svscan execs this file as argv[0] `supervise`, and `vigil svc …` runs svc: the kernel
    // named the process after the file, so let ps, top and pgrep see the program instead.
    vigil_sys::process::set_comm(&String::from_utf8_lossy(&name));
    run(rest)
}

/// Called by a name that only an init-script link gives: not ours, not `vigil…`.
fn is_init_script(called: &[u8]) -> bool {
    !called.is_empty() && !called.starts_with(b"vigil")
}

fn list_usage() -> ExitCode {
    diag::usage(
        "vigil",
        &format!("vigil {{{}}} [args...]", PROGRAMS.join("|")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_program_has_an_entry() {
        for p in PROGRAMS {
            assert!(entry(p.as_bytes()).is_some(), "{p} has no entry point");
        }
    }

    #[test]
    fn every_program_has_help_from_its_man_page() {
        for p in PROGRAMS {
            let h = help(p.as_bytes()).unwrap_or_default();
            assert!(h.starts_with(&format!("usage: {p}")), "{p}: {h}");
            assert!(
                !h.contains(&format!("{p}: \n")),
                "{p} has no NAME line: {h}"
            );
        }
    }

    #[test]
    fn unknown_names_have_none() {
        assert!(entry(b"vigil").is_none());
        assert!(entry(b"").is_none());
    }

    #[test]
    fn init_script_names() {
        assert!(is_init_script(b"ssh"));
        assert!(!is_init_script(b"vigil"));
        assert!(!is_init_script(b"vigil-0.1"));
        assert!(!is_init_script(b""));
    }
}
