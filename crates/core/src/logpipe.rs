//! Which log pipe svscan keeps for a service when it takes over from supervise processes an
//! earlier svscan left running (svscan(8)): the service supervise's fd 1 and the log
//! supervise's fd 0, when both are one pipe, are kept as they are; otherwise the end recovered
//! from the service side is kept, else the one from the log side, and the other end is opened
//! anew on the same pipe, so whatever is buffered in it reaches the logger. A new pipe only
//! when no end can be recovered. Each side still on another pipe joins the kept one at its
//! next start. Pure: the driver finds the ends and performs the plan.

/// The identity (device, inode) of a pipe end found in a supervise left running.
pub type PipeId = (u64, u64);

/// What to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Both sides are on one pipe: keep it.
    Shared,
    /// Keep the service side's pipe, opening its read end anew; `log_differs`: the logger
    /// reads another pipe (it joins the kept one at its next start).
    FromMain { log_differs: bool },
    /// Keep the logger's pipe, opening its write end anew.
    FromLog,
    /// Nothing to recover: make a new pipe.
    New,
}

/// The plan for the service side's recovered fd 1 (`main`) and the log side's fd 0 (`log`),
/// each `None` when there is no such supervise or its descriptor is not a usable log pipe.
pub fn plan(main: Option<PipeId>, log: Option<PipeId>) -> Plan {
    match (main, log) {
        (Some(m), Some(l)) if m == l => Plan::Shared,
        (Some(_), l) => Plan::FromMain {
            log_differs: l.is_some(),
        },
        (None, Some(_)) => Plan::FromLog,
        (None, None) => Plan::New,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_case() {
        let (a, b) = ((1, 10), (1, 11));
        assert_eq!(plan(Some(a), Some(a)), Plan::Shared);
        assert_eq!(plan(Some(a), Some(b)), Plan::FromMain { log_differs: true });
        assert_eq!(plan(Some(a), None), Plan::FromMain { log_differs: false });
        assert_eq!(plan(None, Some(b)), Plan::FromLog);
        assert_eq!(plan(None, None), Plan::New);
    }
}
