//! daemontools' own wording for errno values, so our messages read like djb's tools'.
//!
//! daemontools prints `file does not exist`, not `No such file or directory`; scripts and
//! people match on these strings. The numbers are the C library's, never literals here.

/// The daemontools text for an errno, `unknown error` for numbers it has no word for.
pub fn describe(errno: i32) -> &'static str {
    match errno {
        0 => "no error",
        libc::EINTR => "interrupted system call",
        libc::ENOMEM => "out of memory",
        libc::ENOENT => "file does not exist",
        libc::ETXTBSY => "text busy",
        libc::EIO => "input/output error",
        libc::EEXIST => "file already exists",
        libc::ETIMEDOUT => "timed out",
        libc::EINPROGRESS => "operation in progress",
        libc::EAGAIN => "temporary failure",
        libc::EPIPE => "broken pipe",
        libc::EPERM => "permission denied",
        libc::EACCES => "access denied",
        libc::ENXIO => "device not configured",
        libc::EPROTO => "protocol error",
        libc::EISDIR => "is a directory",
        libc::ECONNREFUSED => "connection refused",
        libc::ENOTDIR => "not a directory",
        libc::ESRCH => "no such process",
        libc::E2BIG => "argument list too long",
        libc::ENOEXEC => "exec format error",
        libc::EBADF => "file descriptor not open",
        libc::ECHILD => "no child processes",
        libc::EFAULT => "bad address",
        libc::ENOTBLK => "not a block device",
        libc::EBUSY => "device busy",
        libc::EXDEV => "cross-device link",
        libc::ENODEV => "device does not support operation",
        libc::EINVAL => "invalid argument",
        libc::ENFILE => "system cannot open more files",
        libc::EMFILE => "process cannot open more files",
        libc::ENOTTY => "not a tty",
        libc::EFBIG => "file too big",
        libc::ENOSPC => "out of disk space",
        libc::ESPIPE => "unseekable descriptor",
        libc::EROFS => "read-only file system",
        libc::EMLINK => "too many links",
        libc::EDOM => "input out of range",
        libc::ERANGE => "output out of range",
        libc::EDEADLK => "operation would cause deadlock",
        libc::ENAMETOOLONG => "file name too long",
        libc::ENOLCK => "no locks available",
        libc::ENOSYS => "system call not available",
        libc::ENOTEMPTY => "directory not empty",
        libc::ELOOP => "symbolic link loop",
        libc::ENOMSG => "no message of desired type",
        libc::EIDRM => "identifier removed",
        libc::ENOSTR => "not a stream device",
        libc::ETIME => "timer expired",
        libc::ENOSR => "out of stream resources",
        libc::ENONET => "machine not on network",
        libc::EREMOTE => "too many levels of remote in path",
        libc::ENOLINK => "link severed",
        libc::EADV => "advertise error",
        libc::ESRMNT => "srmount error",
        libc::ECOMM => "communication error",
        libc::EMULTIHOP => "multihop attempted",
        libc::EBADMSG => "bad message type",
        libc::EREMCHG => "remote address changed",
        libc::EUSERS => "too many users",
        libc::ENOTSOCK => "not a socket",
        libc::EDESTADDRREQ => "destination address required",
        libc::EMSGSIZE => "message too long",
        libc::EPROTOTYPE => "incorrect protocol type",
        libc::ENOPROTOOPT => "protocol not available",
        libc::EPROTONOSUPPORT => "protocol not supported",
        libc::ESOCKTNOSUPPORT => "socket type not supported",
        libc::EOPNOTSUPP => "operation not supported",
        libc::EPFNOSUPPORT => "protocol family not supported",
        libc::EAFNOSUPPORT => "address family not supported",
        libc::EADDRINUSE => "address already used",
        libc::EADDRNOTAVAIL => "address not available",
        libc::ENETDOWN => "network down",
        libc::ENETUNREACH => "network unreachable",
        libc::ENETRESET => "network reset",
        libc::ECONNABORTED => "connection aborted",
        libc::ECONNRESET => "connection reset",
        libc::ENOBUFS => "out of buffer space",
        libc::EISCONN => "already connected",
        libc::ENOTCONN => "not connected",
        libc::ESHUTDOWN => "socket shut down",
        libc::ETOOMANYREFS => "too many references",
        libc::EHOSTDOWN => "host down",
        libc::EHOSTUNREACH => "host unreachable",
        libc::EALREADY => "operation already in progress",
        libc::ESTALE => "stale NFS file handle",
        libc::EDQUOT => "disk quota exceeded",
        _ => "unknown error",
    }
}

#[cfg(test)]
mod tests {
    use super::describe;

    #[test]
    fn the_ones_users_see() {
        assert_eq!(describe(libc::ENOENT), "file does not exist");
        assert_eq!(describe(libc::ENXIO), "device not configured");
        assert_eq!(describe(libc::EAGAIN), "temporary failure");
        assert_eq!(describe(libc::EACCES), "access denied");
        assert_eq!(describe(9999), "unknown error");
    }
}
