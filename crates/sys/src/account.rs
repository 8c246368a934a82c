//! Accounts: reading `/etc/passwd` and `/etc/group`, and becoming a uid, gid and group list.
//!
//! daemontools compat: the files are read directly instead of through NSS (see
//! `vigil_core::account`): accounts known only to LDAP, NIS or other NSS modules are unknown.

use std::io;

use rustix::process::{Gid, Uid};
use vigil_core::account::User;

/// The user database, read by setuidgid, envuidgid and chpst `-u`/`-U`.
pub const PASSWD: &str = "/etc/passwd";
/// The group database, read by chpst for `-u user:group`.
pub const GROUP: &str = "/etc/group";

/// The whole text of an account file; a missing file lists no account.
///
/// daemontools compat: a file that exists but cannot be read is an error of its own
/// (`unable to read /etc/passwd: REASON`, exit 111) where the C library would just report the
/// account as unknown.
fn read_accounts(path: &str) -> io::Result<Vec<u8>> {
    match std::fs::read(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        other => other,
    }
}

/// The whole text of `/etc/passwd` (of the new root after a chroot).
pub fn read_passwd() -> io::Result<Vec<u8>> {
    read_accounts(PASSWD)
}

/// The whole text of `/etc/group`.
pub fn read_group() -> io::Result<Vec<u8>> {
    read_accounts(GROUP)
}

/// Looks `name` up in `/etc/passwd`.
pub fn find_user(name: &[u8]) -> io::Result<Option<User>> {
    Ok(vigil_core::account::find_user(&read_passwd()?, name))
}

/// Looks `name` up in `/etc/passwd`; on failure, daemontools' words for it (`unknown account
/// NAME`, `unable to read /etc/passwd: REASON`), for setuidgid and envuidgid to print as fatal.
pub fn user_or_reason(name: &[u8]) -> Result<User, String> {
    match find_user(name) {
        Ok(Some(u)) => Ok(u),
        Ok(None) => Err(format!("unknown account {}", String::from_utf8_lossy(name))),
        Err(e) => Err(crate::diag::unable_text("read", &PASSWD, &e)),
    }
}

/// Which of the three calls of [`become_ids`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdStep {
    Groups,
    Gid,
    Uid,
}

/// Drops to `uid`, with primary group `gid` and exactly `groups` as supplementary groups, in
/// the order that keeps the privilege needed for each step: groups, gid, then uid.
///
/// These are rustix's thread-level calls (the raw syscalls, which act on the calling thread
/// only, not glibc's wrappers that signal every thread). That is enough because every program
/// that calls this is single-threaded: it runs on main's thread and spawns none.
pub fn become_ids(uid: u32, gid: u32, groups: &[u32]) -> Result<(), (IdStep, io::Error)> {
    let list: Vec<Gid> = groups.iter().map(|&g| Gid::from_raw(g)).collect();
    rustix::thread::set_thread_groups(&list).map_err(|e| (IdStep::Groups, e.into()))?;
    rustix::thread::set_thread_gid(Gid::from_raw(gid)).map_err(|e| (IdStep::Gid, e.into()))?;
    rustix::thread::set_thread_uid(Uid::from_raw(uid)).map_err(|e| (IdStep::Uid, e.into()))?;
    Ok(())
}
