//! One automatically rotated log directory on disk (multilog's): `lock` (and the journal
//! inside it), `current`, `state`, archives `@<tai64n>.s`/`.u`, and the processor's
//! `previous`/`processed`/`newstate`.
//!
//! Each operation does its I/O once and reports a [`Failure`]; when to retry is decided by
//! `vigil_core::multilog::Engine`. A rotation that fails part-way resumes at the step that
//! failed.

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use vigil_core::multilog::{
    CURRENT, JOURNAL_LEN, Journal, LOCK, NEWSTATE, PREVIOUS, PROCESSED, STATE, archive_name,
    archives_to_remove,
};
use vigil_core::tai::Tai64n;

use crate::diag;

/// An operation that did not happen: `unable to WHAT: REASON`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub what: String,
    pub reason: String,
}

impl Failure {
    fn io(what: String, e: &io::Error) -> Failure {
        Failure {
            what,
            reason: diag::reason(e).to_owned(),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unable to {}: {}", self.what, self.reason)
    }
}

/// Where an interrupted rotation resumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// `current` to disk and 0744.
    Seal,
    /// No processor: `current` renamed to an `.s` archive.
    Archive,
    /// Processor: `current` renamed to `previous`.
    ToPrevious,
    /// A fresh, empty `current` (after `Archive`, or before the processor runs).
    Fresh,
    /// The processor reads `previous`, writes `processed` and `newstate`, both synced, then
    /// `processed` becomes 0744: the commit point.
    Process,
    /// `processed` renamed to an `.s` archive.
    ArchiveProcessed,
    /// `newstate` renamed over `state`; `previous` removed.
    NewState,
    /// The directory synced and the oldest archives beyond `nNUM` removed.
    Prune,
}

pub struct Logdir {
    path: PathBuf,
    /// The directory as given, for messages.
    name: String,
    processor: Option<Vec<u8>>,
    num: u32,
    lock: File,
    current: Option<File>,
    /// An interrupted rotation.
    rotation: Option<Step>,
}

fn mode(path: &Path) -> Option<u32> {
    fs::symlink_metadata(path)
        .ok()
        .map(|m| m.permissions().mode())
}

/// Opens `path` for appending (created 0644) and makes it 0644 (a continued one was 0744).
fn open_append(path: &Path) -> io::Result<File> {
    let f = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o644)
        .open(path)?;
    f.set_permissions(fs::Permissions::from_mode(0o644))?;
    Ok(f)
}

fn create_truncated(path: &Path) -> io::Result<File> {
    let f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(path)?;
    f.set_permissions(fs::Permissions::from_mode(0o644))?;
    Ok(f)
}

impl Logdir {
    /// Creates the directory (0700) if needed, takes its lock, finishes what a dead logger left
    /// half-done with its processor, and makes sure `state` exists. `Err` is fatal.
    pub fn open(path: &[u8], processor: Option<Vec<u8>>, num: u32) -> Result<Logdir, Failure> {
        let path = PathBuf::from(OsStr::from_bytes(path));
        let name = path.display().to_string();
        if let Err(e) = fs::DirBuilder::new().mode(0o700).create(&path)
            && e.kind() != io::ErrorKind::AlreadyExists
        {
            return Err(Failure::io(format!("create {name}"), &e));
        }
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path.join(LOCK))
            .map_err(|e| Failure::io(format!("open {name}/{LOCK}"), &e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(Failure {
                    what: format!("lock directory {name}"),
                    reason: "temporary failure".to_owned(),
                });
            }
            Err(fs::TryLockError::Error(e)) => {
                return Err(Failure::io(format!("lock directory {name}"), &e));
            }
        }
        let mut d = Logdir {
            path,
            name,
            processor,
            num,
            lock,
            current: None,
            rotation: None,
        };
        d.recover_processor()?;
        let state = d.file(STATE);
        if mode(&state).is_none() {
            OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o644)
                .open(&state)
                .map_err(|e| Failure::io(format!("create {}/{STATE}", d.name), &e))?;
        }
        Ok(d)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    fn fail(&self, what: &str, e: &io::Error) -> Failure {
        Failure::io(format!("{what} {}", self.name), e)
    }

    fn fail_in(&self, verb: &str, file: &str, e: &io::Error) -> Failure {
        Failure::io(format!("{verb} {}/{file}", self.name), e)
    }

    /// A processor run that a dead logger left: a committed `processed` (mode 0744) is
    /// finished; an uncommitted one is removed and `previous` kept as an unprocessed `.u`
    /// archive, as daemontools does.
    fn recover_processor(&mut self) -> Result<(), Failure> {
        let (processed, previous) = (self.file(PROCESSED), self.file(PREVIOUS));
        match mode(&processed) {
            Some(m) if m & 0o100 != 0 => {
                let newstate = self.file(NEWSTATE);
                if mode(&newstate).is_some() {
                    fs::rename(&newstate, self.file(STATE)).map_err(|e| {
                        Failure::io(format!("rename newstate to state in {}", self.name), &e)
                    })?;
                }
                let archive = self.archive_path(true);
                fs::rename(&processed, &archive)
                    .map_err(|e| Failure::io(format!("rename processed in {}", self.name), &e))?;
                let _ = fs::remove_file(&previous);
            }
            Some(_) => {
                fs::remove_file(&processed).map_err(|e| self.fail_in("remove", PROCESSED, &e))?;
                let _ = fs::remove_file(self.file(NEWSTATE));
            }
            None => {}
        }
        if mode(&previous).is_some() {
            let archive = self.archive_path(false);
            fs::rename(&previous, &archive)
                .map_err(|e| Failure::io(format!("rename previous in {}", self.name), &e))?;
        }
        Ok(())
    }

    /// The journal record left in `lock`, if any.
    pub fn read_journal(&self) -> Option<Journal> {
        let mut buf = [0u8; JOURNAL_LEN];
        let n = self.lock.read_at(&mut buf, 0).ok()?;
        Journal::decode(buf.get(..n)?)
    }

    /// Records where this directory is with a batch.
    pub fn write_journal(&mut self, record: &Journal) -> Result<(), Failure> {
        self.lock
            .write_all_at(&record.encode(), 0)
            .map_err(|e| self.fail_in("write to", LOCK, &e))
    }

    pub fn clear_journal(&mut self) {
        let _ = self.lock.set_len(0);
    }

    /// Cuts `current` back to `len` bytes: the output of a batch that is still in the pipe.
    pub fn truncate_current(&mut self, len: u64) -> Result<(), Failure> {
        let cur = self.file(CURRENT);
        let Ok(meta) = fs::metadata(&cur) else {
            return Ok(());
        };
        if meta.len() <= len {
            return Ok(());
        }
        OpenOptions::new()
            .write(true)
            .open(&cur)
            .and_then(|f| f.set_len(len))
            .map_err(|e| self.fail_in("truncate", CURRENT, &e))
    }

    /// Opens `current` for appending and returns its size: a safely closed one (0744) is
    /// continued, one left by a logger that died becomes an `.u` archive, as daemontools does.
    pub fn start_current(&mut self) -> Result<u64, Failure> {
        let cur = self.file(CURRENT);
        if let Some(m) = mode(&cur)
            && m & 0o100 == 0
        {
            let archive = self.archive_path(false);
            fs::rename(&cur, &archive).map_err(|e| self.fail_in("rename", CURRENT, &e))?;
        }
        let f = open_append(&cur).map_err(|e| self.fail_in("append to", CURRENT, &e))?;
        let len = f
            .metadata()
            .map_err(|e| self.fail_in("stat", CURRENT, &e))?
            .len();
        self.current = Some(f);
        Ok(len)
    }

    /// Appends `bytes` to `current`. `Err` says how many were written before the failure.
    pub fn append(&mut self, bytes: &[u8]) -> Result<(), (usize, Failure)> {
        let mut done = 0;
        while done < bytes.len() {
            if self.current.is_none() {
                let f = open_append(&self.file(CURRENT))
                    .map_err(|e| (done, self.fail_in("append to", CURRENT, &e)))?;
                self.current = Some(f);
            }
            let Some(f) = self.current.as_mut() else {
                continue;
            };
            match f.write(bytes.get(done..).unwrap_or_default()) {
                Ok(0) => {
                    let e = io::Error::from(io::ErrorKind::WriteZero);
                    return Err((done, self.fail_in("write to", CURRENT, &e)));
                }
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err((done, self.fail_in("write to", CURRENT, &e))),
            }
        }
        Ok(())
    }

    /// `current` to disk and marked safely closed (0744).
    fn seal(&mut self) -> Result<(), Failure> {
        let Some(f) = self.current.as_ref() else {
            return Ok(());
        };
        f.sync_all()
            .and_then(|()| f.set_permissions(fs::Permissions::from_mode(0o744)))
            .map_err(|e| self.fail_in("write", &format!("{CURRENT} to disk"), &e))
    }

    /// A name for a new archive: `@` + now's TAI64N + `.s`/`.u`, never an existing one.
    fn archive_path(&self, processed: bool) -> PathBuf {
        let mut t = Tai64n::from_system_time(SystemTime::now());
        loop {
            let p = self.file(&archive_name(&t.to_hex(), processed));
            if mode(&p).is_none() {
                return p;
            }
            t.nanos = (t.nanos + 1) % 1_000_000_000;
        }
    }

    /// Ends `current`: to disk, 0744, renamed to an archive (through the processor if there
    /// is one), a fresh `current`, then the oldest archives beyond `nNUM` removed. After a
    /// failure the next call resumes where this one stopped. `Ok(Some(_))`: done, but an old
    /// archive could not be removed.
    ///
    /// With a processor the commit point is `processed` reaching mode 0744 after both it and
    /// `newstate` are on disk; a logger restarted before that point removes `processed` and
    /// keeps `previous` as `.u` (see [`Logdir::open`]).
    pub fn rotate(&mut self) -> Result<Option<Failure>, Failure> {
        let mut step = self.rotation.take().unwrap_or(Step::Seal);
        loop {
            match self.rotate_step(step) {
                Ok(Some(next)) => step = next,
                Ok(None) => return Ok(self.prune()),
                Err(f) => {
                    self.rotation = Some(step);
                    return Err(f);
                }
            }
        }
    }

    fn rotate_step(&mut self, step: Step) -> Result<Option<Step>, Failure> {
        let cur = self.file(CURRENT);
        let rename = |d: &Logdir, from: &Path, to: &Path, what: String| {
            fs::rename(from, to).map_err(|e| Failure::io(format!("rename {}/{what}", d.name), &e))
        };
        Ok(match step {
            Step::Seal => {
                self.seal()?;
                Some(match self.processor {
                    None => Step::Archive,
                    Some(_) => Step::ToPrevious,
                })
            }
            Step::Archive => {
                let archive = self.archive_path(true);
                rename(self, &cur, &archive, CURRENT.to_owned())?;
                let _ = sync_dir(&self.path);
                Some(Step::Fresh)
            }
            Step::ToPrevious => {
                let previous = self.file(PREVIOUS);
                rename(self, &cur, &previous, format!("{CURRENT} to {PREVIOUS}"))?;
                Some(Step::Fresh)
            }
            Step::Fresh => {
                self.current = None;
                let f = open_append(&cur).map_err(|e| self.fail_in("append to", CURRENT, &e))?;
                self.current = Some(f);
                match self.processor {
                    None => Some(Step::Prune),
                    Some(_) => Some(Step::Process),
                }
            }
            Step::Process => {
                self.run_processor()?;
                Some(Step::ArchiveProcessed)
            }
            Step::ArchiveProcessed => {
                let archive = self.archive_path(true);
                rename(self, &self.file(PROCESSED), &archive, PROCESSED.to_owned())?;
                Some(Step::NewState)
            }
            Step::NewState => {
                let (newstate, state) = (self.file(NEWSTATE), self.file(STATE));
                rename(self, &newstate, &state, format!("{NEWSTATE} to {STATE}"))?;
                let _ = fs::remove_file(self.file(PREVIOUS));
                let _ = sync_dir(&self.path);
                Some(Step::Prune)
            }
            Step::Prune => None,
        })
    }

    /// Runs the processor over `previous` into `processed` and `newstate`, then commits.
    fn run_processor(&mut self) -> Result<(), Failure> {
        let Some(proc) = self.processor.clone() else {
            return Ok(());
        };
        let (previous, processed) = (self.file(PREVIOUS), self.file(PROCESSED));
        let (state, newstate) = (self.file(STATE), self.file(NEWSTATE));
        let files = (|| -> io::Result<(File, File, File, File)> {
            let input = File::open(&previous)?;
            let output = create_truncated(&processed)?;
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
        let (input, output, st, ns) = files.map_err(|e| self.fail("set up processor in", &e))?;
        let status = crate::logio::run_processor(
            &self.path,
            OsStr::from_bytes(&proc),
            input,
            output,
            st,
            ns,
        )
        .map_err(|e| self.fail("run processor in", &e))?;
        if !status.success() {
            return Err(Failure {
                what: format!("run processor in {}", self.name),
                reason: crate::logio::describe_status(status),
            });
        }
        // Both outputs on disk, then the commit point: processed becomes 0744.
        (|| -> io::Result<()> {
            File::open(&newstate)?.sync_all()?;
            let f = OpenOptions::new().write(true).open(&processed)?;
            f.sync_all()?;
            f.set_permissions(fs::Permissions::from_mode(0o744))?;
            f.sync_all()
        })()
        .map_err(|e| self.fail_in("write", &format!("{PROCESSED} to disk"), &e))
    }

    /// Removes the oldest archives while there are `nNUM` or more; stops at the first that
    /// cannot be removed.
    fn prune(&mut self) -> Option<Failure> {
        let rd = fs::read_dir(&self.path).ok()?;
        let names: Vec<Vec<u8>> = rd
            .flatten()
            .map(|e| e.file_name().as_bytes().to_vec())
            .collect();
        for old in archives_to_remove(&names, self.num) {
            let name = String::from_utf8_lossy(&old).into_owned();
            if let Err(e) = fs::remove_file(self.path.join(OsStr::from_bytes(&old))) {
                return Some(self.fail_in("remove", &name, &e));
            }
        }
        None
    }

    /// End of input or SIGTERM: `current` to disk and marked safely closed; journal cleared.
    pub fn close(&mut self) -> Result<(), Failure> {
        self.seal()?;
        self.clear_journal();
        Ok(())
    }
}

/// `fsync` of a directory, so a rename in it is on disk.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// A `=file` status file: the first 1000 bytes of the last selected line, rewritten in place.
pub struct StatusFile(File);

impl StatusFile {
    /// Opens (creating, not truncating) the file.
    pub fn open(path: &[u8]) -> io::Result<StatusFile> {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(Path::new(OsStr::from_bytes(path)))
            .map(StatusFile)
    }

    /// Writes a record at offset 0.
    pub fn write(&self, record: &[u8]) -> io::Result<()> {
        self.0.write_all_at(record, 0)
    }
}
