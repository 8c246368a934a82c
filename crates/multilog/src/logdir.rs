//! One automatically rotated log directory: `lock` (and the journal inside it), `current`,
//! `state`, archives `@<tai64n>.s`/`.u`, and the processor's `previous`/`processed`/`newstate`.
//!
//! Every failure after start-up pauses and retries: the logger stops reading, so the service
//! blocks on its pipe instead of losing output.

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use vigil_core::multilog::{
    CURRENT, DirSpec, JOURNAL_LEN, Journal, LOCK, NEWSTATE, PREVIOUS, PROCESSED, Phase, STATE,
    archive_name, is_archive,
};
use vigil_core::tai::Tai64n;
use vigil_sys::logio::{self, LogSignals};

use crate::words;

/// How long a failing write waits before the next try.
pub const RETRY: Duration = Duration::from_secs(1);

/// Waits [`RETRY`] without reading input; signals stay pending for the main loop.
pub fn pause(_signals: &mut LogSignals) {
    std::thread::sleep(RETRY);
}

pub struct Logdir {
    pub spec: DirSpec,
    path: PathBuf,
    /// The directory as given, for messages.
    name: String,
    lock: File,
    current: Option<File>,
    /// Size of `current` on disk.
    pub bytes: u64,
    /// When the first line of this `current` came (for `aSECONDS`).
    pub first_line_at: Option<Instant>,
    /// Output of the batch being built.
    pub out: Vec<u8>,
    /// How much of `out` is written (a write can fail half-way).
    written: usize,
    /// `out` was written during this batch: its journal must say so.
    pub wrote_batch: bool,
}

fn mode(path: &Path) -> Option<u32> {
    fs::symlink_metadata(path)
        .ok()
        .map(|m| m.permissions().mode())
}

impl Logdir {
    /// Creates the directory if needed, takes its lock, and finishes what a dead logger left
    /// half-done. `Err` is the text of a fatal message.
    pub fn open(spec: &DirSpec) -> Result<Logdir, String> {
        let path = PathBuf::from(OsStr::from_bytes(&spec.path));
        let name = path.display().to_string();
        if let Err(e) = fs::DirBuilder::new().mode(0o700).create(&path)
            && e.kind() != std::io::ErrorKind::AlreadyExists
        {
            return Err(format!("unable to create {name}: {}", words(&e)));
        }
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path.join(LOCK))
            .map_err(|e| format!("unable to open {name}/{LOCK}: {}", words(&e)))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(format!(
                    "unable to lock directory {name}: temporary failure"
                ));
            }
            Err(fs::TryLockError::Error(e)) => {
                return Err(format!("unable to lock directory {name}: {}", words(&e)));
            }
        }
        let mut d = Logdir {
            spec: spec.clone(),
            path,
            name,
            lock,
            current: None,
            bytes: 0,
            first_line_at: None,
            out: Vec::new(),
            written: 0,
            wrote_batch: false,
        };
        d.recover_processor()?;
        let state = d.path.join(STATE);
        if mode(&state).is_none() {
            OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o644)
                .open(&state)
                .map_err(|e| format!("unable to create {}/{STATE}: {}", d.name, words(&e)))?;
        }
        Ok(d)
    }

    /// A processor run that a dead logger left: a committed `processed` (mode 0744, see
    /// [`Logdir::rotate`]) is finished; an uncommitted one is removed and `previous` kept as an
    /// unprocessed `.u` archive, as daemontools does.
    fn recover_processor(&mut self) -> Result<(), String> {
        let processed = self.path.join(PROCESSED);
        let previous = self.path.join(PREVIOUS);
        let fail = |what: &str, e: std::io::Error| format!("unable to {what}: {}", words(&e));
        match mode(&processed) {
            Some(m) if m & 0o100 != 0 => {
                let newstate = self.path.join(NEWSTATE);
                if mode(&newstate).is_some() {
                    fs::rename(&newstate, self.path.join(STATE)).map_err(|e| {
                        fail(&format!("rename newstate to state in {}", self.name), e)
                    })?;
                }
                let archive = self.archive_path(true);
                fs::rename(&processed, &archive)
                    .map_err(|e| fail(&format!("rename processed in {}", self.name), e))?;
                let _ = fs::remove_file(&previous);
            }
            Some(_) => {
                fs::remove_file(&processed)
                    .map_err(|e| fail(&format!("remove {}/processed", self.name), e))?;
                let _ = fs::remove_file(self.path.join(NEWSTATE));
            }
            None => {}
        }
        if mode(&previous).is_some() {
            let archive = self.archive_path(false);
            fs::rename(&previous, &archive)
                .map_err(|e| fail(&format!("rename previous in {}", self.name), e))?;
        }
        Ok(())
    }

    /// The journal record left in `lock`, if any.
    pub fn read_journal(&self) -> Option<Journal> {
        let mut buf = [0u8; JOURNAL_LEN];
        let n = self.lock.read_at(&mut buf, 0).ok()?;
        Journal::decode(buf.get(..n)?)
    }

    pub fn clear_journal(&mut self) {
        let _ = self.lock.set_len(0);
    }

    /// Cuts `current` back to `len` bytes: the output of a batch that is still in the pipe.
    pub fn truncate_to(&mut self, len: u64, signals: &mut LogSignals) {
        let cur = self.path.join(CURRENT);
        let Ok(meta) = fs::metadata(&cur) else { return };
        if meta.len() <= len {
            return;
        }
        loop {
            match OpenOptions::new()
                .write(true)
                .open(&cur)
                .and_then(|f| f.set_len(len))
            {
                Ok(()) => return,
                Err(e) => {
                    logio::say(&format!(
                        "multilog: warning: unable to truncate {}/{CURRENT}, pausing: {}",
                        self.name,
                        words(&e)
                    ));
                    pause(signals);
                }
            }
        }
    }

    /// Opens `current` for appending: a safely closed one (0744) is continued, one left by a
    /// logger that died becomes an `.u` archive, as daemontools does.
    pub fn start_current(&mut self) -> Result<(), String> {
        let cur = self.path.join(CURRENT);
        if let Some(m) = mode(&cur)
            && m & 0o100 == 0
        {
            let archive = self.archive_path(false);
            fs::rename(&cur, &archive)
                .map_err(|e| format!("unable to rename {}/{CURRENT}: {}", self.name, words(&e)))?;
        }
        let f = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o644)
            .open(&cur)
            .map_err(|e| format!("unable to append to {}/{CURRENT}: {}", self.name, words(&e)))?;
        f.set_permissions(fs::Permissions::from_mode(0o644))
            .map_err(|e| {
                format!(
                    "unable to set mode of {}/{CURRENT}: {}",
                    self.name,
                    words(&e)
                )
            })?;
        self.bytes = f
            .metadata()
            .map_err(|e| format!("unable to stat {}/{CURRENT}: {}", self.name, words(&e)))?
            .len();
        self.first_line_at = (self.bytes > 0).then(Instant::now);
        self.current = Some(f);
        Ok(())
    }

    /// Records where this directory is with a batch whose output starts at `offset` in
    /// `current`; retried until it succeeds.
    pub fn journal(
        &mut self,
        phase: Phase,
        batch: u64,
        (len, hash): (u64, u64),
        offset: u64,
        signals: &mut LogSignals,
    ) {
        let rec = Journal {
            phase,
            batch,
            len,
            hash,
            offset,
        }
        .encode();
        while let Err(e) = self.lock.write_all_at(&rec, 0) {
            logio::say(&format!(
                "multilog: warning: unable to write to {}/{LOCK}, pausing: {}",
                self.name,
                words(&e)
            ));
            pause(signals);
        }
    }

    /// Appends `out` to `current`, pausing and retrying on any error until all of it is there.
    pub fn write_out(&mut self, signals: &mut LogSignals) {
        while self.written < self.out.len() {
            let Some(f) = self.current.as_mut() else {
                if let Err(text) = self.reopen_current() {
                    logio::say(&format!("multilog: warning: {text}, pausing"));
                    pause(signals);
                }
                continue;
            };
            let rest = self.out.get(self.written..).unwrap_or_default();
            match f.write(rest) {
                Ok(0) => pause(signals),
                Ok(n) => self.written += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    logio::say(&format!(
                        "multilog: warning: unable to write to {}/{CURRENT}, pausing: {}",
                        self.name,
                        words(&e)
                    ));
                    pause(signals);
                }
            }
        }
        self.bytes += self.out.len() as u64;
        self.out.clear();
        self.written = 0;
        self.wrote_batch = true;
    }

    fn reopen_current(&mut self) -> Result<(), String> {
        let cur = self.path.join(CURRENT);
        let f = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o644)
            .open(&cur)
            .map_err(|e| format!("unable to append to {}/{CURRENT}: {}", self.name, words(&e)))?;
        let _ = f.set_permissions(fs::Permissions::from_mode(0o644));
        self.current = Some(f);
        Ok(())
    }

    /// `current` to disk and marked safely closed (0744).
    fn seal(&mut self, signals: &mut LogSignals) {
        loop {
            let Some(f) = self.current.as_ref() else {
                return;
            };
            let r = f
                .sync_all()
                .and_then(|()| f.set_permissions(fs::Permissions::from_mode(0o744)));
            match r {
                Ok(()) => return,
                Err(e) => {
                    logio::say(&format!(
                        "multilog: warning: unable to write {}/{CURRENT} to disk, pausing: {}",
                        self.name,
                        words(&e)
                    ));
                    pause(signals);
                }
            }
        }
    }

    /// A name for a new archive: `@` + now's TAI64N + `.s`/`.u`, never an existing one.
    fn archive_path(&self, processed: bool) -> PathBuf {
        let mut t = Tai64n::from_system_time(SystemTime::now());
        loop {
            let p = self.path.join(archive_name(&t.to_hex(), processed));
            if mode(&p).is_none() {
                return p;
            }
            t.nanos = (t.nanos + 1) % 1_000_000_000;
        }
    }

    /// Retries `f` until it succeeds, with a warning naming `what` on each failure.
    fn retry(
        &self,
        signals: &mut LogSignals,
        what: &str,
        mut f: impl FnMut() -> std::io::Result<()>,
    ) {
        while let Err(e) = f() {
            logio::say(&format!(
                "multilog: warning: unable to {what}, pausing: {}",
                words(&e)
            ));
            pause(signals);
        }
    }

    /// Ends `current`: to disk, 0744, renamed to an archive (through the processor if there
    /// is one), a fresh `current`, then the oldest archives beyond `nNUM` removed.
    ///
    /// With a processor the commit point is `processed` reaching mode 0744 after both it and
    /// `newstate` are on disk; a logger restarted before that point removes `processed` and
    /// keeps `previous` as `.u`, after it finishes the renames (see `recover_processor`).
    pub fn rotate(&mut self, signals: &mut LogSignals) {
        self.seal(signals);
        let cur = self.path.join(CURRENT);
        match self.spec.processor.clone() {
            None => {
                let archive = self.archive_path(true);
                let name = self.name.clone();
                self.retry(signals, &format!("rename {name}/{CURRENT}"), || {
                    fs::rename(&cur, &archive)
                });
            }
            Some(proc) => {
                let previous = self.path.join(PREVIOUS);
                let name = self.name.clone();
                self.retry(
                    signals,
                    &format!("rename {name}/{CURRENT} to {PREVIOUS}"),
                    || fs::rename(&cur, &previous),
                );
                self.current = None;
                self.open_fresh_current(signals);
                self.run_processor(&proc, signals);
            }
        }
        let dir = self.path.clone();
        let _ = logio::sync_dir(&dir);
        if self.spec.processor.is_none() {
            self.current = None;
            self.open_fresh_current(signals);
        }
        self.prune();
    }

    fn open_fresh_current(&mut self, signals: &mut LogSignals) {
        while let Err(text) = self.reopen_current() {
            logio::say(&format!("multilog: warning: {text}, pausing"));
            pause(signals);
        }
        self.bytes = 0;
        self.first_line_at = None;
    }

    fn run_processor(&mut self, proc: &[u8], signals: &mut LogSignals) {
        let p = |n: &str| self.path.join(n);
        let (previous, processed, state, newstate) =
            (p(PREVIOUS), p(PROCESSED), p(STATE), p(NEWSTATE));
        loop {
            let files = (|| -> std::io::Result<(File, File, File, File)> {
                let input = File::open(&previous)?;
                let output = OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o644)
                    .open(&processed)?;
                output.set_permissions(fs::Permissions::from_mode(0o644))?;
                let st = match File::open(&state) {
                    Ok(f) => f,
                    Err(_) => File::open("/dev/null")?,
                };
                let ns = OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o644)
                    .open(&newstate)?;
                Ok((input, output, st, ns))
            })();
            let (input, output, st, ns) = match files {
                Ok(f) => f,
                Err(e) => {
                    logio::say(&format!(
                        "multilog: warning: unable to set up processor in {}, pausing: {}",
                        self.name,
                        words(&e)
                    ));
                    pause(signals);
                    continue;
                }
            };
            match logio::run_processor(&self.path, OsStr::from_bytes(proc), input, output, st, ns) {
                Ok(status) if status.success() => {}
                Ok(status) => {
                    logio::say(&format!(
                        "multilog: warning: processor failed in {} ({}), pausing",
                        self.name,
                        logio::describe_status(status)
                    ));
                    pause(signals);
                    continue;
                }
                Err(e) => {
                    logio::say(&format!(
                        "multilog: warning: unable to run processor in {}, pausing: {}",
                        self.name,
                        words(&e)
                    ));
                    pause(signals);
                    continue;
                }
            }
            // Both outputs on disk, then the commit point: processed becomes 0744.
            let synced = (|| -> std::io::Result<()> {
                File::open(&newstate)?.sync_all()?;
                let f = OpenOptions::new().write(true).open(&processed)?;
                f.sync_all()?;
                f.set_permissions(fs::Permissions::from_mode(0o744))?;
                f.sync_all()
            })();
            if let Err(e) = synced {
                logio::say(&format!(
                    "multilog: warning: unable to write {}/{PROCESSED} to disk, pausing: {}",
                    self.name,
                    words(&e)
                ));
                pause(signals);
                continue;
            }
            break;
        }
        let archive = self.archive_path(true);
        let name = self.name.clone();
        self.retry(signals, &format!("rename {name}/{PROCESSED}"), || {
            fs::rename(&processed, &archive)
        });
        self.retry(
            signals,
            &format!("rename {name}/{NEWSTATE} to {STATE}"),
            || fs::rename(&newstate, &state),
        );
        let _ = fs::remove_file(&previous);
    }

    /// Removes the oldest archives while there are `nNUM` or more.
    fn prune(&mut self) {
        let Ok(rd) = fs::read_dir(&self.path) else {
            return;
        };
        let mut names: Vec<_> = rd
            .flatten()
            .map(|e| e.file_name())
            .filter(|n| is_archive(n.as_bytes()))
            .collect();
        names.sort();
        let num = usize::try_from(self.spec.num).unwrap_or(usize::MAX);
        while names.len() >= num {
            let oldest = names.remove(0);
            if let Err(e) = fs::remove_file(self.path.join(&oldest)) {
                logio::say(&format!(
                    "multilog: warning: unable to remove {}/{}: {}",
                    self.name,
                    oldest.to_string_lossy(),
                    words(&e)
                ));
                break;
            }
        }
    }

    /// End of input or SIGTERM: `current` to disk and marked safely closed; journal cleared.
    pub fn close(&mut self, signals: &mut LogSignals) {
        self.seal(signals);
        self.clear_journal();
    }
}
