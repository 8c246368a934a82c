// The names the multi-call executable answers to, shared by the dispatcher (src/main.rs), the
// build script (links beside the built executable) and scripts/install (which reads this list).
pub const PROGRAMS: &[&str] = &[
    "fghack",
    "multilog",
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
