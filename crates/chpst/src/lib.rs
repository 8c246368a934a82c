//! chpst — run a program with a changed process state (runit's chpst).
//!
//! Usage: `chpst [-vVP012] [-u user[:group…]] [-U user[:group]] [-b argv0] [-e dir] [-/ root]
//! [-n inc] [-l|-L lock] [-m n] [-d n] [-o n] [-p n] [-f n] [-c n] [-r n] [-t n] prog…`
//!
//! The changes are made in runit's order, whatever the order of the options: `-P` new session
//! and process group; `-e` environment directory (read before the chroot); `-/` chroot;
//! `-n` nice increment; `-U` `$UID`/`$GID`; `-u` groups, gid, uid (accounts are looked up
//! after the chroot, in the new root's files); `-l`/`-L` lock, taken as the new user;
//! resource limits `-m` (data, stack, locked memory, address space) `-d -o -p -f -c -r -t`,
//! each capped at the hard limit; `-0 -1 -2` close standard descriptors; exec, with `-b`'s
//! argv0. `-v` is accepted and prints nothing (no limit is unsupported on Linux).
//!
//! When called as envdir, envuidgid, pgrphack, setlock, setuidgid or softlimit, the vigil
//! executable runs the daemontools-compatible programs of those names, not a chpst emulation.
//!
//! Exit codes: 100 usage (also after `-V`); 111 a change failed or `prog` cannot be run;
//! otherwise `prog`'s own.
//!
//! daemontools compat: accounts come from `/etc/passwd` and `/etc/group` only, not NSS.
#![forbid(unsafe_code)]

mod plan;

use plan::{Plan, ids_of, plan_from};

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::process::ExitCode;

use vigil_core::account::{Ids, IdsError, resolve_ids};
use vigil_core::getopt::{self, Opt, OptError};
use vigil_core::limit::{Resource, Soft, chpst_resources, parse_nice, parse_number};
use vigil_sys::account::{self, IdStep};
use vigil_sys::diag::{self, EXIT_TEMP, EXIT_USAGE};
use vigil_sys::envdir::{EnvDirError, Strictness, env_changes, read_changes};
use vigil_sys::exec::{self, EnvChanges, RootStep};
use vigil_sys::limits;
use vigil_sys::lock::{self, LockStep};

const PROG: &str = "chpst";
const SPEC: &str = "u:U:b:e:/:n:l:L:m:d:o:p:f:c:r:t:vVP012";
const USAGE: &str = "usage: chpst [-vVP012] [-u user[:group]] [-U user[:group]] [-b argv0] \
[-e dir] [-/ root] [-n nice] [-l|-L lock] [-m n] [-d n] [-o n] [-p n] [-f n] [-c n] [-t n] prog";

/// runit's usage text: no program prefix, a blank line after it.
fn usage() -> ExitCode {
    diag::line(&format!("{USAGE}\n"));
    ExitCode::from(EXIT_USAGE)
}

fn fatal(text: &str) -> ExitCode {
    diag::fatal(PROG, text, EXIT_TEMP)
}

/// `chpst: fatal: unable to VERB OBJECT: REASON`, exit 111.
fn unable(verb: &str, object: &dyn std::fmt::Display, e: &std::io::Error) -> ExitCode {
    diag::unable_fatal(PROG, verb, object, e, EXIT_TEMP)
}

/// The program, called with its arguments after argv[0].
pub fn main(args: Vec<OsString>) -> ExitCode {
    let (opts, prog) = match getopt::parse(&args, SPEC) {
        Ok(parsed) => parsed,
        Err(OptError::Illegal(c)) => {
            diag::line(&format!("{PROG}: illegal option -- {}", char::from(c)));
            return usage();
        }
        Err(OptError::MissingArg(c)) => {
            diag::line(&format!(
                "{PROG}: option requires an argument -- {}",
                char::from(c)
            ));
            return usage();
        }
    };
    let Some(plan) = plan_from(opts) else {
        return usage();
    };
    if prog.is_empty() {
        return usage();
    }
    match run(plan, prog) {
        Ok(never) => match never {},
        Err(code) => code,
    }
}

/// Makes every change in order, then execs; returns only the failure's exit status.
fn run(plan: Plan, prog: &[OsString]) -> Result<std::convert::Infallible, ExitCode> {
    if plan.session {
        let _ = exec::new_session();
    }
    let mut env: EnvChanges = Vec::new();
    if let Some(dir) = &plan.env_dir {
        let shown = String::from_utf8_lossy(dir.as_bytes());
        let changes =
            read_changes(dir.as_ref(), Strictness::SkipDirectories).map_err(|e| match e {
                EnvDirError::Open(e) => fatal(&format!(
                    "unable to switch to directory: {shown}: {}",
                    diag::reason(&e)
                )),
                EnvDirError::OpenList(e) => fatal(&format!(
                    "unable to open directory: {shown}: {}",
                    diag::reason(&e)
                )),
                EnvDirError::List(e) => fatal(&format!(
                    "unable to read directory: {shown}: {}",
                    diag::reason(&e)
                )),
                EnvDirError::Read(name, e) => {
                    let name = String::from_utf8_lossy(name.as_bytes());
                    unable("read", &format_args!("{shown}/{name}"), &e)
                }
            })?;
        env.extend(env_changes(changes));
    }
    if let Some(root) = &plan.root {
        exec::change_root(root).map_err(|(step, e)| match step {
            RootStep::Chdir => fatal(&format!(
                "unable to change directory: {}: {}",
                root.to_string_lossy(),
                diag::reason(&e)
            )),
            RootStep::Chroot => unable("change", &"root directory", &e),
        })?;
    }
    if let Some(inc) = plan.nice {
        limits::add_nice(inc).map_err(|e| unable("set", &"nice level", &e))?;
    }
    if let Some(spec) = &plan.env_user {
        let ids = ids_of(spec)?;
        env.push(("UID".into(), Some(ids.uid.to_string().into())));
        env.push(("GID".into(), Some(ids.gid.to_string().into())));
    }
    if let Some(spec) = &plan.user {
        let ids = ids_of(spec)?;
        account::become_ids(ids.uid, ids.gid, &ids.groups).map_err(|(step, e)| {
            let what = match step {
                IdStep::Groups => "setgroups",
                IdStep::Gid => "setgid",
                IdStep::Uid => "setuid",
            };
            fatal(&diag::bare_text(what, &e))
        })?;
    }
    let _held = match &plan.lock {
        Some((file, wait)) => Some(lock::hold(file.as_ref(), *wait).map_err(|(step, e)| {
            let shown = String::from_utf8_lossy(file.as_bytes());
            let what = if step == LockStep::Open {
                "open lock"
            } else {
                "lock"
            };
            fatal(&format!("unable to {what}: {shown}: {}", diag::reason(&e)))
        })?),
        None => None,
    };
    for &(resource, soft) in &plan.limits {
        limits::set_soft(resource, soft).map_err(|e| fatal(&diag::bare_text("setrlimit()", &e)))?;
    }
    for &fd in &plan.close {
        exec::close_standard(fd);
    }
    let e = exec::exec(prog, &env, plan.argv0.as_deref());
    let shown = prog
        .first()
        .map(|p| p.to_string_lossy())
        .unwrap_or_default();
    Err(fatal(&format!(
        "unable to run: {shown}: {}",
        diag::reason(&e)
    )))
}
