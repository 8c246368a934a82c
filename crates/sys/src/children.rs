//! Whether supervise still has children: for a subreaper, whether anything a service started
//! is still alive (its orphans are re-parented to us, so no child means no descendant).

use rustix::io::Errno;
use rustix::process::{WaitId, WaitIdOptions};

/// True while this process has any child, zombies included (a zombie is reaped at its
/// SIGCHLD). Nothing is reaped here.
pub fn any_left() -> bool {
    let options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
    loop {
        match rustix::process::waitid(WaitId::All, options) {
            Ok(_) => return true,
            Err(Errno::INTR) => {}
            // ECHILD: none at all.
            Err(_) => return false,
        }
    }
}
