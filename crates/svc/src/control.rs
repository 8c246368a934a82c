//! The control FIFO: opened (never blocking, refusing what is not a FIFO) and written in one write.

use super::*;

/// Opens one directory's control FIFO; warns (daemontools' words) and returns `None` on failure.
pub(crate) fn open_control(dir: &OsString) -> Option<std::os::fd::OwnedFd> {
    let name = String::from_utf8_lossy(dir.as_bytes());
    let base = match fifo::open_dir(dir.as_ref()) {
        Ok(fd) => fd,
        Err(e) => {
            diag::unable(PROG, "chdir to", &name, &e);
            return None;
        }
    };
    match service::open_control(&base) {
        // daemontools compat: daemontools writes into whatever opens; a regular file there would
        // swallow the commands while svc said nothing, so it is a failure with its own reason.
        Ok(Liveness::Running(fd)) if !fifo::is_fifo(&fd).unwrap_or(false) => {
            diag::warn(
                PROG,
                &format!(
                    "unable to control {name}: {} is not a FIFO",
                    layout::CONTROL
                ),
            );
            None
        }
        Ok(Liveness::Running(fd)) => Some(fd),
        Ok(Liveness::NotRunning) => {
            diag::unable(
                PROG,
                "control",
                &name,
                &diag::refused("supervise not running"),
            );
            None
        }
        Err(e) => {
            diag::unable(PROG, "control", &name, &e);
            None
        }
    }
}

/// Writes the command bytes in one write; warns and returns false on failure.
pub(crate) fn write_commands(dir: &OsString, fd: &std::os::fd::OwnedFd, bytes: &[u8]) -> bool {
    if bytes.is_empty() {
        return true;
    }
    if let Err(e) = fifo::set_blocking(fd).and_then(|()| fifo::write_all(fd, bytes)) {
        let name = String::from_utf8_lossy(dir.as_bytes());
        diag::warn(
            PROG,
            &format!("error writing commands to {name}: {}", diag::reason(&e)),
        );
        return false;
    }
    true
}
