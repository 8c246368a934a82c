//! Readiness and liveness from the service: the notification-fd pipe and the sd_notify socket.

use super::*;

impl Supervisor {
    /// Opens the sd_notify socket the first time a run needs it (`notify-socket` exists), and
    /// closes it when the file is gone. False when it is wanted and could not be opened.
    pub(crate) fn prepare_notify_socket(&mut self, present: KnobSet) -> bool {
        if !present.has(layout::KNOB_NOTIFY_SOCKET)
            || !files::exists(Path::new(layout::KNOB_NOTIFY_SOCKET)).unwrap_or(false)
        {
            self.notify = None;
            return true;
        }
        if self.notify.is_some() {
            return true;
        }
        match NotifySocket::bind() {
            Ok(sock) => {
                self.notify = Some(sock);
                true
            }
            Err(e) => {
                diag::unable(PROG, "create sd_notify socket for", &self.name, &e);
                false
            }
        }
    }

    /// s6 readiness: a newline on the notification pipe. End of file closes it.
    // Rare: out of line, so its buffers are not in the loop's frame for good (supervise's stack
    // pages, once touched, are part of its memory).
    #[inline(never)]
    pub(crate) fn handle_ready_pipe(&mut self, buf: &mut [u8], now: Now) {
        let Some(pipe) = &self.ready_pipe else { return };
        match read_ready(pipe, buf) {
            // End of file: the run closed its end without saying it is ready.
            None => self.ready_pipe = None,
            Some(0) => {}
            Some(n) => {
                // Readiness is the first newline; with a watchdog, every write after it (any
                // byte) is a ping, so the pipe stays open.
                let watchdog = self.machine.config().watchdog.is_some();
                if self.machine.record().ready.is_some() {
                    self.machine.handle(Input::Ping, now);
                } else if buf.get(..n).is_some_and(|b| b.contains(&b'\n')) {
                    self.machine.handle(Input::Ready, now);
                    self.machine.handle(Input::Ping, now);
                    if !watchdog {
                        self.ready_pipe = None;
                    }
                }
            }
        }
        self.perform();
    }

    /// systemd's sd_notify: `READY=1` marks readiness, `STATUS=…` is kept for svstat; other
    /// assignments (`STOPPING=1`, `MAINPID=…`) are accepted and ignored (supervise tracks its own
    /// child only).
    // Rare: out of line, so its buffers are not in the loop's frame for good (supervise's stack
    // pages, once touched, are part of its memory).
    #[inline(never)]
    pub(crate) fn handle_notify(&mut self, buf: &mut [u8], now: Now) {
        let Some(sock) = &self.notify else { return };
        let mut ready = false;
        let mut ping = false;
        let mut status = None;
        let main_pid = self.machine.status().pid;
        let main = (main_pid != 0).then(|| Main {
            pid: main_pid,
            uid: process::real_uid(main_pid),
        });
        let own_uid = process::own_uid();
        // A bounded batch: a flood from outside cannot keep the loop from its other fds.
        for _ in 0..NOTIFY_BATCH {
            let Some(datagram) = sock.receive(buf) else {
                break;
            };
            let (msg, sender) = (&datagram.text, datagram.sender);
            let believed = sender
                .is_some_and(|s| readiness::trusted(s, own_uid, main, process::parent_and_session));
            if !believed {
                if !self.notify_refusal_told {
                    self.notify_refusal_told = true;
                    let (pid, uid) = sender.map_or((0, 0), |s| (s.pid, s.uid));
                    diag::warn(
                        PROG,
                        &format!(
                            "ignoring sd_notify message for {} from pid {pid} uid {uid}: not the service",
                            self.name
                        ),
                    );
                }
                continue;
            }
            let notice = readiness::Notice::parse(msg);
            ready |= notice.ready;
            ping |= notice.alive;
            if let Some(text) = notice.status {
                status = Some(text.to_owned());
            }
        }
        if let Some(text) = status {
            self.notify_status = text;
            let written = self.write_status(false);
            self.machine.handle(Input::Written(written), now);
        }
        if ready {
            self.machine.handle(Input::Ready, now);
        }
        if ping || ready {
            self.machine.handle(Input::Ping, now);
        }
        self.perform();
    }
}

/// A non-blocking read: `None` at end of file or on error, `Some(0)` when nothing is there yet.
pub(crate) fn read_ready(fd: &OwnedFd, buf: &mut [u8]) -> Option<usize> {
    match fifo::read_some_or_eof(fd, buf) {
        Ok(Some(n)) => Some(n),
        Ok(None) | Err(_) => None,
    }
}
