//! daemontools' own wording for errno values, so our messages read like djb's tools'.
//!
//! daemontools prints `file does not exist`, not `No such file or directory`; scripts and
//! people match on these strings. Numbers are Linux's.

/// The daemontools text for an errno, `unknown error` for numbers it has no word for.
pub fn describe(errno: i32) -> &'static str {
    match errno {
        0 => "no error",
        4 => "interrupted system call",
        12 => "out of memory",
        2 => "file does not exist",
        26 => "text busy",
        5 => "input/output error",
        17 => "file already exists",
        110 => "timed out",
        115 => "operation in progress",
        11 => "temporary failure",
        32 => "broken pipe",
        1 => "permission denied",
        13 => "access denied",
        6 => "device not configured",
        71 => "protocol error",
        21 => "is a directory",
        111 => "connection refused",
        20 => "not a directory",
        3 => "no such process",
        7 => "argument list too long",
        8 => "exec format error",
        9 => "file descriptor not open",
        10 => "no child processes",
        14 => "bad address",
        15 => "not a block device",
        16 => "device busy",
        18 => "cross-device link",
        19 => "device does not support operation",
        22 => "invalid argument",
        23 => "system cannot open more files",
        24 => "process cannot open more files",
        25 => "not a tty",
        27 => "file too big",
        28 => "out of disk space",
        29 => "unseekable descriptor",
        30 => "read-only file system",
        31 => "too many links",
        33 => "input out of range",
        34 => "output out of range",
        35 => "operation would cause deadlock",
        36 => "file name too long",
        37 => "no locks available",
        38 => "system call not available",
        39 => "directory not empty",
        40 => "symbolic link loop",
        42 => "no message of desired type",
        43 => "identifier removed",
        60 => "not a stream device",
        62 => "timer expired",
        63 => "out of stream resources",
        64 => "machine not on network",
        66 => "too many levels of remote in path",
        67 => "link severed",
        68 => "advertise error",
        69 => "srmount error",
        70 => "communication error",
        72 => "multihop attempted",
        74 => "bad message type",
        78 => "remote address changed",
        87 => "too many users",
        88 => "not a socket",
        89 => "destination address required",
        90 => "message too long",
        91 => "incorrect protocol type",
        92 => "protocol not available",
        93 => "protocol not supported",
        94 => "socket type not supported",
        95 => "operation not supported",
        96 => "protocol family not supported",
        97 => "address family not supported",
        98 => "address already used",
        99 => "address not available",
        100 => "network down",
        101 => "network unreachable",
        102 => "network reset",
        103 => "connection aborted",
        104 => "connection reset",
        105 => "out of buffer space",
        106 => "already connected",
        107 => "not connected",
        108 => "socket shut down",
        109 => "too many references",
        112 => "host down",
        113 => "host unreachable",
        114 => "operation already in progress",
        116 => "stale NFS file handle",
        122 => "disk quota exceeded",
        _ => "unknown error",
    }
}

#[cfg(test)]
mod tests {
    use super::describe;

    #[test]
    fn the_ones_users_see() {
        assert_eq!(describe(2), "file does not exist");
        assert_eq!(describe(6), "device not configured");
        assert_eq!(describe(11), "temporary failure");
        assert_eq!(describe(13), "access denied");
        assert_eq!(describe(9999), "unknown error");
    }
}
