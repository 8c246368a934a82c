// The names the multi-call executable answers to, shared by the dispatcher (src/main.rs), the
// build script (links beside the built executable) and scripts/install (which reads this list).
pub const PROGRAMS: &[&str] = &[
    "chpst",
    "envdir",
    "envuidgid",
    "fghack",
    "multilog",
    "pgrphack",
    "readproctitle",
    "setlock",
    "setuidgid",
    "softlimit",
    "supervise",
    "sv",
    "svc",
    "svok",
    "svscan",
    "svstat",
    "svwait",
    "tai64n",
    "tai64nlocal",
];
