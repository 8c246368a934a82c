//! Readiness channels between supervise and `./run`: the s6 notification pipe and systemd's
//! sd_notify datagram socket.
//!
//! The sd_notify socket has an abstract address the kernel picks (autobind), handed to `./run`
//! as `NOTIFY_SOCKET=@xxxxx`. A socket file inside the 0700 `supervise/` could not be reached by
//! a service that drops privileges; an abstract address can be reached by anyone, so the socket
//! asks the kernel for each sender's credentials (`SO_PASSCRED`) and supervise decides who may
//! speak for the service (`vigil_core::readiness`). Autobind means no one can take the name
//! first.

use std::ffi::OsString;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStringExt;

use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SocketAddrUnix,
    SocketFlags, SocketType,
};
use rustix::pipe::PipeFlags;

/// A close-on-exec pipe whose read end does not block: (read, write).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let (r, w) = rustix::pipe::pipe_with(PipeFlags::CLOEXEC)?;
    let flags = rustix::fs::fcntl_getfl(&r)?;
    rustix::fs::fcntl_setfl(&r, flags | rustix::fs::OFlags::NONBLOCK)?;
    Ok((r, w))
}

pub use vigil_core::readiness::Sender;

/// The sd_notify socket: non-blocking, close-on-exec, bound to a kernel-chosen abstract name.
pub struct NotifySocket {
    fd: OwnedFd,
    address: OsString,
}

impl NotifySocket {
    /// Creates the socket; [`NotifySocket::address`] is the value for `NOTIFY_SOCKET`.
    pub fn bind() -> io::Result<NotifySocket> {
        let fd = rustix::net::socket_with(
            AddressFamily::UNIX,
            SocketType::DGRAM,
            SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
            None,
        )?;
        rustix::net::sockopt::set_socket_passcred(&fd, true)?;
        rustix::net::bind(&fd, &SocketAddrUnix::new_unnamed())?;
        let any = rustix::net::getsockname(&fd)?;
        let unix = SocketAddrUnix::try_from(any)?;
        let name = unix
            .abstract_name()
            .ok_or_else(|| io::Error::from(rustix::io::Errno::ADDRNOTAVAIL))?;
        let mut address = vec![b'@'];
        address.extend_from_slice(name);
        Ok(NotifySocket {
            fd,
            address: OsString::from_vec(address),
        })
    }

    /// `@` and the abstract name (sd_notify(3)'s spelling of an abstract address).
    pub fn address(&self) -> &std::ffi::OsStr {
        &self.address
    }

    /// The next waiting datagram; `None` when there is none.
    pub fn receive(&self, buf: &mut [u8]) -> Option<Datagram> {
        let mut space =
            [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmCredentials(1), ScmRights(8))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let mut iov = [io::IoSliceMut::new(buf)];
        let msg = rustix::net::recvmsg(
            &self.fd,
            &mut iov,
            &mut control,
            RecvFlags::CMSG_CLOEXEC | RecvFlags::DONTWAIT,
        )
        .ok()?;
        let mut sender = None;
        let mut fds = Vec::new();
        for m in control.drain() {
            match m {
                RecvAncillaryMessage::ScmCredentials(c) => {
                    sender = Some(Sender {
                        pid: u32::try_from(c.pid.as_raw_nonzero().get()).unwrap_or(0),
                        uid: c.uid.as_raw(),
                    });
                }
                RecvAncillaryMessage::ScmRights(received) => fds.extend(received),
                _ => {}
            }
        }
        let n = msg.bytes.min(buf.len());
        let text = String::from_utf8_lossy(buf.get(..n).unwrap_or_default()).into_owned();
        Some(Datagram {
            text,
            sender,
            _fds: fds,
        })
    }
}

/// One sd_notify datagram.
pub struct Datagram {
    pub text: String,
    /// The sender as the kernel saw it (`None` only without `SO_PASSCRED`).
    pub sender: Option<Sender>,
    /// Descriptors that came with it, closed when the datagram is dropped. `systemd-notify`
    /// follows `READY=1` with `BARRIER=1` and a pipe end, and waits until the manager closes
    /// it: holding it until the datagram has been judged keeps the sender alive (and its
    /// `/proc` entry readable) for that long.
    _fds: Vec<OwnedFd>,
}

impl std::os::fd::AsFd for NotifySocket {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The service manager's readiness socket (systemd `Type=notify`): `$NOTIFY_SOCKET`, removed
/// from the environment so nothing started later inherits it and speaks for us. Call it before
/// starting anything; `None` when the variable is not set.
pub fn take_notify_socket() -> Option<std::ffi::OsString> {
    crate::process::take_env("NOTIFY_SOCKET")
}

/// Tells the service manager that we are ready: one `READY=1` datagram to `target` (a path, or
/// `@name` in the abstract namespace), as taken by [`take_notify_socket`].
pub fn notify_ready(target: &std::ffi::OsStr) -> io::Result<()> {
    let sock = std::os::unix::net::UnixDatagram::unbound()?;
    let bytes = target.as_encoded_bytes();
    if let Some(name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
        sock.send_to_addr(b"READY=1", &addr)?;
    } else {
        sock.send_to(b"READY=1", std::path::Path::new(target))?;
    }
    Ok(())
}
