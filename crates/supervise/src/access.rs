//! The `control-group` knob: which group, besides root, may control this service.
//!
//! Read at setup and before every start of `./run`, like every knob. With a valid group, its
//! members get what `svc`, `svok`, `svwait` and `svstat` need under `supervise/` (see
//! `StateDir::set_access`); without the knob, or with a value that names no group (warned),
//! the permissions are daemontools' own: root only.
//!
//! daemontools compat: daemontools has no such knob; without the file nothing changes.

use std::os::fd::BorrowedFd;

use vigil_core::layout::{self, KnobSet};
use vigil_sys::account;
use vigil_sys::diag;
use vigil_sys::statedir::StateDir;

use crate::PROG;

/// Applies the knob as it is now to `supervise/` and the FIFOs `fifos` (`control`, `ok`).
pub fn apply(state: &StateDir, name: &str, present: KnobSet, fifos: &[BorrowedFd<'_>]) {
    let group = present
        .has(layout::KNOB_CONTROL_GROUP)
        .then(|| crate::read_knob(name, layout::KNOB_CONTROL_GROUP))
        .flatten()
        .and_then(|text| {
            let lookup = |n: &[u8]| {
                account::read_group()
                    .ok()
                    .and_then(|g| vigil_core::account::find_group(&g, n))
            };
            match layout::parse_control_group(&text, lookup) {
                Ok(gid) => Some(gid),
                Err(why) => {
                    diag::warn(
                        PROG,
                        &format!(
                            "unable to parse {name}/{}: {why}; only root may control it",
                            layout::KNOB_CONTROL_GROUP
                        ),
                    );
                    None
                }
            }
        });
    if let Err(e) = state.set_access(group, fifos) {
        let object = format_args!("the permissions of {name}/{}", layout::SUPERVISE_DIR);
        diag::unable(PROG, "set", &object, &e);
    }
}
