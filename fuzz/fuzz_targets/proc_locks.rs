//! `/proc/locks` text is parsed without panicking, whatever the bytes, and every lock it
//! yields is found again by the lookups svscan and supervise make.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_core::procfs;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let locks: Vec<procfs::LockLine> = procfs::parse_locks(&text).collect();
    let holders = procfs::lock_holders(&text);
    assert_eq!(holders.len(), locks.len());
    for l in &locks {
        assert!(l.pid > 0);
        assert!(procfs::lock_pids(&text, l.major, l.minor, l.ino).contains(&l.pid));
        assert!(procfs::lock_pids_any_dev(&text, l.ino).contains(&l.pid));
        assert!(holders.binary_search(&l.pid).is_ok());
    }
    let _ = procfs::stat_alive(data);
    let _ = procfs::live_stat_field(data, 22);
    let _ = procfs::status_real_uid(&text);
    let _ = procfs::children_pids(&text).count();
    let _ = procfs::argv0_is(data, b"supervise");
});
