//! Readiness channels between supervise and `./run`: the s6 notification pipe and systemd's
//! sd_notify datagram socket.

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixDatagram;
use std::path::Path;

use rustix::pipe::PipeFlags;

/// A close-on-exec pipe whose read end does not block: (read, write).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let (r, w) = rustix::pipe::pipe_with(PipeFlags::CLOEXEC)?;
    let flags = rustix::fs::fcntl_getfl(&r)?;
    rustix::fs::fcntl_setfl(&r, flags | rustix::fs::OFlags::NONBLOCK)?;
    Ok((r, w))
}

/// The sd_notify socket: a non-blocking, close-on-exec Unix datagram socket bound at a path.
pub struct NotifySocket {
    sock: UnixDatagram,
}

impl NotifySocket {
    /// Binds at `path`, replacing a stale socket file a previous supervise left behind.
    pub fn bind(path: &Path) -> io::Result<NotifySocket> {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let sock = UnixDatagram::bind(path)?;
        sock.set_nonblocking(true)?;
        Ok(NotifySocket { sock })
    }

    /// The next waiting datagram as text, `None` when there is none.
    pub fn receive(&self, buf: &mut [u8]) -> Option<String> {
        match self.sock.recv(buf) {
            Ok(n) => Some(String::from_utf8_lossy(buf.get(..n).unwrap_or_default()).into_owned()),
            Err(_) => None,
        }
    }
}

impl std::os::fd::AsFd for NotifySocket {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

/// The service manager's readiness socket (systemd `Type=notify`): `$NOTIFY_SOCKET`, removed
/// from the environment so nothing started later inherits it and speaks for us. Call it before
/// starting anything; `None` when the variable is not set.
pub fn take_notify_socket() -> Option<std::ffi::OsString> {
    let target = std::env::var_os("NOTIFY_SOCKET")?;
    // SAFETY: called from single-threaded programs (svscan) at setup, before any thread could
    // read the environment concurrently.
    unsafe { std::env::remove_var("NOTIFY_SOCKET") };
    Some(target)
}

/// Tells the service manager that we are ready: one `READY=1` datagram to `target` (a path, or
/// `@name` in the abstract namespace), as taken by [`take_notify_socket`].
pub fn notify_ready(target: &std::ffi::OsStr) -> io::Result<()> {
    let sock = UnixDatagram::unbound()?;
    let bytes = target.as_encoded_bytes();
    if let Some(name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
        sock.send_to_addr(b"READY=1", &addr)?;
    } else {
        sock.send_to(b"READY=1", Path::new(target))?;
    }
    Ok(())
}
