//! multilog, tai64n, tai64nlocal as black boxes: the script language, the log directory
//! layout, signals, processors, Debian's multilog as the reference, and the no-loss guarantee
//! under SIGKILL and a full disk.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vigil_tests::{
    Sandbox, alive, bin, require_peer, run_output, send_signal, skip, wait_exit, wait_until,
};

const LIMIT: Duration = Duration::from_secs(20);

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

/// Runs `prog script…` in the sandbox with `input` on stdin; returns (code, stderr).
fn run_with_input(sb: &Sandbox, prog: &Path, script: &[&str], input: &[u8]) -> (i32, String) {
    let feed = sb.path("input.txt");
    fs::write(&feed, input).unwrap();
    // A pipe, as under svscan: `sh` holds its write end until `cat` is done.
    let mut cmd = sb.command("/bin/sh");
    cmd.current_dir(&sb.root)
        .arg("-c")
        .arg("cat input.txt | \"$0\" \"$@\"")
        .arg(prog)
        .args(script);
    let (code, _out, err) = run_output(&mut cmd);
    (code, err)
}

/// The archives (name order) then `current` of a log directory.
fn log_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = fs::read_dir(dir) else {
        return vec![];
    };
    let mut names: Vec<String> = rd
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('@'))
        .collect();
    names.sort();
    let mut out: Vec<PathBuf> = names.iter().map(|n| dir.join(n)).collect();
    if dir.join("current").exists() {
        out.push(dir.join("current"));
    }
    out
}

fn log_bytes(dir: &Path) -> Vec<u8> {
    let mut all = vec![];
    for f in log_files(dir) {
        all.extend(fs::read(f).unwrap());
    }
    all
}

/// File kinds of a log directory: names with archive stamps replaced by `@…`, with modes.
fn layout(dir: &Path) -> BTreeMap<String, Vec<u32>> {
    let mut out: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for e in fs::read_dir(dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let kind = if name.starts_with('@') {
            format!("@….{}", &name[name.len() - 1..])
        } else {
            name
        };
        out.entry(kind).or_default().push(mode(&e.path()));
    }
    for v in out.values_mut() {
        v.sort();
        v.dedup();
    }
    out
}

fn pipe() -> (File, File) {
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
    (File::from(r), File::from(w))
}

fn start_piped(sb: &Sandbox, prog: &Path, script: &[&str], reader: &File, stderr: &Path) -> Child {
    let err = File::create(stderr).unwrap();
    sb.command(prog)
        .current_dir(&sb.root)
        .args(script)
        .stdin(Stdio::from(OwnedFd::from(reader.try_clone().unwrap())))
        .stderr(err)
        .spawn()
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Script parsing

#[test]
fn bad_scripts_exit_100_with_a_fatal_message() {
    let sb = Sandbox::new("ml-bad");
    let ml = bin("multilog");
    for bad in [
        &["x"][..],
        &["="],
        &["./d", "t"],
        &["t", "t"],
        &["e1"],
        &["aX"],
    ] {
        let (code, err) = run_with_input(&sb, &ml, bad, b"line\n");
        assert_eq!(code, 100, "{bad:?}: {err}");
        assert!(err.starts_with("multilog: fatal: "), "{bad:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    assert!(
        !sb.path("d").exists(),
        "a refused script must not create its log directories"
    );
    // Every directive at once is accepted.
    let script = [
        "t",
        "T",
        "-*",
        "+*a*",
        "e",
        "1",
        "=st",
        "s4096",
        "n3",
        "a3600",
        "!cat",
        "./all",
        "/dev/null/x",
    ];
    let (code, err) = run_with_input(&sb, &ml, &script[..script.len() - 1], b"a line\nother\n");
    assert_eq!(code, 0, "{err}");
    assert_eq!(fs::read(sb.path("st")).unwrap().len(), 1001);
    // A directory that cannot be created: 111.
    let (code, err) = run_with_input(&sb, &ml, &["/dev/null/x"], b"");
    assert_eq!(code, 111, "{err}");
    assert!(
        err.starts_with("multilog: fatal: unable to create /dev/null/x: "),
        "{err}"
    );
}

#[test]
fn a_locked_directory_is_refused_with_111() {
    let sb = Sandbox::new("ml-lock");
    let (reader, writer) = pipe();
    let mut first = start_piped(&sb, &bin("multilog"), &["./log"], &reader, &sb.path("err1"));
    wait_until(LIMIT, "first logger holds the lock", || {
        sb.path("log/current").exists()
    });
    let (code, err) = run_with_input(&sb, &bin("multilog"), &["./log"], b"x\n");
    assert_eq!(code, 111);
    assert_eq!(
        err,
        "multilog: fatal: unable to lock directory ./log: temporary failure\n"
    );
    drop(writer);
    drop(reader);
    assert_eq!(wait_exit(&mut first, LIMIT), 0);
}

// ---------------------------------------------------------------------------------------------
// Layout, rotation, signals, processors

#[test]
fn rotation_by_size_keeps_lines_whole_and_n_limits_archives() {
    let sb = Sandbox::new("ml-rotate");
    let input: String = (1..=20000).map(|i| format!("line {i}\n")).collect();
    let (code, err) = run_with_input(
        &sb,
        &bin("multilog"),
        &["s4096", "n100", "./big", "n3", "./few"],
        input.as_bytes(),
    );
    assert_eq!(code, 0, "{err}");
    let dir = sb.path("big");
    assert_eq!(
        String::from_utf8(log_bytes(&dir)).unwrap(),
        input,
        "all lines, in order, once"
    );
    for f in log_files(&dir) {
        let data = fs::read(&f).unwrap();
        assert!(
            data.len() <= 4096,
            "{} is {} bytes",
            f.display(),
            data.len()
        );
        assert!(
            data.is_empty() || data.ends_with(b"\n"),
            "{} ends mid-line",
            f.display()
        );
        assert_eq!(mode(&f), 0o744, "{}", f.display());
    }
    assert!(log_files(&dir).len() > 10);
    let few = log_files(&sb.path("few"));
    assert_eq!(few.len(), 3, "n3 keeps 2 archives and current: {few:?}");
    assert!(
        String::from_utf8(log_bytes(&sb.path("few")))
            .unwrap()
            .ends_with("line 20000\n")
    );
    let l = layout(&dir);
    assert_eq!(
        l.keys().cloned().collect::<Vec<_>>(),
        ["@….s", "current", "lock", "state"]
    );
    assert_eq!(l["lock"], [0o600]);
    assert_eq!(l["state"], [0o644]);
    assert_eq!(mode(&dir), 0o700);
}

#[test]
fn current_is_644_while_written_744_when_closed_and_alarm_rotates() {
    let sb = Sandbox::new("ml-alarm");
    let (reader, mut writer) = pipe();
    let mut child = start_piped(
        &sb,
        &bin("multilog"),
        &["t", "./log"],
        &reader,
        &sb.path("err"),
    );
    let cur = sb.path("log/current");
    writer.write_all(b"first\n").unwrap();
    wait_until(LIMIT, "first line in current", || {
        fs::read_to_string(&cur).is_ok_and(|s| s.contains("first"))
    });
    assert_eq!(mode(&cur), 0o644);
    send_signal(child.id(), 14);
    wait_until(LIMIT, "an archive after SIGALRM", || {
        log_files(&sb.path("log")).len() == 2
    });
    let files = log_files(&sb.path("log"));
    let archive = fs::read_to_string(&files[0]).unwrap();
    assert!(
        archive.starts_with('@') && archive.ends_with(" first\n"),
        "{archive:?}"
    );
    assert_eq!(&archive[25..26], " ");
    assert!(files[0].to_string_lossy().ends_with(".s"));
    assert_eq!(mode(&files[0]), 0o744);
    writer.write_all(b"second\n").unwrap();
    wait_until(LIMIT, "second line", || {
        fs::read_to_string(&cur).is_ok_and(|s| s.contains("second"))
    });
    send_signal(child.id(), 14);
    wait_until(LIMIT, "second archive", || {
        log_files(&sb.path("log")).len() == 3
    });
    // An empty current is not rotated by SIGALRM (ALRM is handled before the TERM after it).
    send_signal(child.id(), 14);
    send_signal(child.id(), 15);
    assert_eq!(wait_exit(&mut child, LIMIT), 0);
    assert_eq!(log_files(&sb.path("log")).len(), 3);
    drop(writer);
    drop(reader);
    assert_eq!(mode(&cur), 0o744);
}

#[test]
fn term_finishes_the_line_and_leaves_the_rest_in_the_pipe() {
    let sb = Sandbox::new("ml-term");
    let (mut reader, mut writer) = pipe();
    let mut child = start_piped(&sb, &bin("multilog"), &["./log"], &reader, &sb.path("err"));
    let cur = sb.path("log/current");
    writer.write_all(b"one\ntw").unwrap();
    wait_until(LIMIT, "first line", || {
        fs::read(&cur).is_ok_and(|s| s == b"one\n")
    });
    send_signal(child.id(), 15);
    assert_eq!(wait_exit(&mut child, LIMIT), 0);
    assert_eq!(fs::read(&cur).unwrap(), b"one\n");
    assert_eq!(mode(&cur), 0o744);
    drop(writer);
    let mut rest = vec![];
    reader.read_to_end(&mut rest).unwrap();
    assert_eq!(
        rest, b"tw",
        "the unfinished line stays in the pipe for the next logger"
    );
    // The next logger continues the safely closed current (0744 -> 0644, appended).
    let (code, err) = run_with_input(&sb, &bin("multilog"), &["./log"], b"two\n");
    assert_eq!(code, 0, "{err}");
    assert_eq!(fs::read(&cur).unwrap(), b"one\ntwo\n");
    assert_eq!(log_files(&sb.path("log")).len(), 1);
}

#[test]
fn processor_output_and_state_passing() {
    let sb = Sandbox::new("ml-proc");
    let (reader, mut writer) = pipe();
    // Upper-cases the log; counts its runs through fd 4 (old state) and fd 5 (new state).
    let proc = "!tr a-z A-Z; n=$(cat <&4); echo $((${n:-0}+1)) >&5";
    let mut child = start_piped(
        &sb,
        &bin("multilog"),
        &[proc, "./log"],
        &reader,
        &sb.path("err"),
    );
    let dir = sb.path("log");
    for (i, word) in ["alpha", "beta"].iter().enumerate() {
        writer.write_all(format!("{word}\n").as_bytes()).unwrap();
        wait_until(LIMIT, "line in current", || {
            fs::read_to_string(dir.join("current")).is_ok_and(|s| s.contains(word))
        });
        send_signal(child.id(), 14);
        wait_until(LIMIT, "processed archive", || {
            log_files(&dir).len() == i + 2 && !dir.join("previous").exists()
        });
        assert_eq!(
            fs::read_to_string(dir.join("state")).unwrap(),
            format!("{}\n", i + 1)
        );
    }
    let files = log_files(&dir);
    assert_eq!(fs::read_to_string(&files[0]).unwrap(), "ALPHA\n");
    assert_eq!(fs::read_to_string(&files[1]).unwrap(), "BETA\n");
    assert_eq!(mode(&files[1]), 0o744);
    assert!(files[1].to_string_lossy().ends_with(".s"));
    // A failing processor is run again until it succeeds; nothing is lost meanwhile.
    drop(writer);
    drop(reader);
    assert_eq!(wait_exit(&mut child, LIMIT), 0);
    let l = layout(&dir);
    assert_eq!(
        l.keys().cloned().collect::<Vec<_>>(),
        ["@….s", "current", "lock", "state"]
    );
}

#[test]
fn selection_alerts_status_stdout_and_iso_stamps() {
    let sb = Sandbox::new("ml-select");
    let input = b"hello\nSTAT 1\nnamed[12]: Cleaned cache of 3 RRs.\nSTAT 2\nbye\n";
    let mut cmd = sb.command("/bin/sh");
    fs::write(sb.path("in"), input).unwrap();
    cmd.current_dir(&sb.root)
        .arg("-c")
        .arg("cat in | \"$0\" \"$@\"")
        .arg(bin("multilog"))
        .args([
            "-named[*]: Cleaned cache *",
            "./all",
            "-*",
            "+STAT*",
            "=status",
            "e",
            "1",
            "./stat",
        ]);
    let (code, out, err) = run_output(&mut cmd);
    assert_eq!(code, 0);
    assert_eq!(
        fs::read_to_string(sb.path("all/current")).unwrap(),
        "hello\nSTAT 1\nSTAT 2\nbye\n"
    );
    assert_eq!(
        fs::read_to_string(sb.path("stat/current")).unwrap(),
        "STAT 1\nSTAT 2\n"
    );
    assert_eq!(out, "STAT 1\nSTAT 2\n");
    assert_eq!(err, "STAT 1\nSTAT 2\n");
    let status = fs::read(sb.path("status")).unwrap();
    assert_eq!(status.len(), 1001);
    assert!(status.starts_with(b"STAT 2\n\n\n"));
    // T: ISO 8601 local time with offset, here UTC.
    let mut cmd = sb.command("/bin/sh");
    cmd.env("TZ", "UTC")
        .current_dir(&sb.root)
        .arg("-c")
        .arg("echo hi | \"$0\" T 1")
        .arg(bin("multilog"));
    let (code, out, _) = run_output(&mut cmd);
    assert_eq!(code, 0);
    let (stamp, rest) = out.split_once(' ').unwrap();
    assert_eq!(rest, "hi\n");
    assert_eq!(
        stamp.len(),
        "2026-11-23T08:47:41.628468139Z".len(),
        "{stamp}"
    );
    assert!(stamp.ends_with('Z') && &stamp[10..11] == "T", "{stamp}");
}

#[test]
fn max_age_rotates_a_quiet_current() {
    let sb = Sandbox::new("ml-age");
    let (reader, mut writer) = pipe();
    let mut child = start_piped(
        &sb,
        &bin("multilog"),
        &["a1", "./log"],
        &reader,
        &sb.path("err"),
    );
    writer.write_all(b"quiet\n").unwrap();
    let t0 = Instant::now();
    wait_until(Duration::from_secs(5), "rotation by age", || {
        log_files(&sb.path("log")).len() == 2
    });
    assert!(t0.elapsed() >= Duration::from_millis(900));
    drop(writer);
    drop(reader);
    assert_eq!(wait_exit(&mut child, LIMIT), 0);
}

#[test]
fn tai64n_and_tai64nlocal_agree_with_daemontools() {
    let sb = Sandbox::new("ml-tai");
    let mut cmd = sb.command("/bin/sh");
    cmd.arg("-c")
        .arg("printf 'a\\nb' | \"$0\"")
        .arg(bin("tai64n"));
    let (code, stamped, _) = run_output(&mut cmd);
    assert_eq!(code, 0);
    let lines: Vec<&str> = stamped.split('\n').collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[0].starts_with("@4000") && lines[0].ends_with(" a") && lines[0].len() == 27);
    assert!(
        lines[1].ends_with(" b"),
        "partial last line kept: {stamped:?}"
    );
    fs::write(sb.path("stamped"), format!("{stamped}\nno stamp\n")).unwrap();
    // Without tzdata every zone reads as UTC and both sides would agree on nothing tested.
    let mut zones = vec!["UTC"];
    for tz in ["Europe/Paris", "America/New_York"] {
        if Path::new("/usr/share/zoneinfo").join(tz).exists() {
            zones.push(tz);
        } else {
            skip(
                "tai64n_and_tai64nlocal_agree_with_daemontools",
                &format!("no tzdata for {tz} (apt-get install tzdata); only UTC compared"),
            );
        }
    }
    for tz in zones {
        let run = |prog: PathBuf| {
            let mut c = sb.command(prog);
            c.env("TZ", tz)
                .stdin(File::open(sb.path("stamped")).unwrap());
            run_output(&mut c)
        };
        let ours = run(bin("tai64nlocal"));
        let theirs = run(require_peer("tai64nlocal"));
        assert_eq!(ours, theirs, "TZ={tz}");
    }
}

// ---------------------------------------------------------------------------------------------
// Compatibility with Debian's multilog

#[test]
fn same_lines_and_layout_as_debian_multilog() {
    let sb = Sandbox::new("ml-compat");
    let djb = require_peer("multilog");
    let input: String = (1..=30000)
        .map(|i| format!("{i} {}\n", if i % 7 == 0 { "keep" } else { "drop" }))
        .collect();
    let script = |dir: &str| -> Vec<String> {
        [
            "s4096",
            "n1000",
            "-*drop",
            &format!("./{dir}-sel"),
            "+*",
            "n2",
            &format!("./{dir}-two"),
            "=",
            "e",
        ]
        .iter()
        .take(7)
        .map(|s| s.to_string())
        .collect()
    };
    for (who, prog) in [("ours", bin("multilog")), ("djb", djb)] {
        let s = script(who);
        let s: Vec<&str> = s.iter().map(String::as_str).collect();
        let (code, err) = run_with_input(&sb, &prog, &s, input.as_bytes());
        assert_eq!(code, 0, "{who}: {err}");
    }
    for kind in ["sel", "two"] {
        let ours = sb.path(&format!("ours-{kind}"));
        let djb = sb.path(&format!("djb-{kind}"));
        assert_eq!(layout(&ours), layout(&djb), "{kind}");
        assert_eq!(mode(&ours), mode(&djb));
    }
    assert_eq!(
        log_bytes(&sb.path("ours-sel")),
        log_bytes(&sb.path("djb-sel"))
    );
    // n2: one archive and current each; the last lines agree.
    assert_eq!(
        log_files(&sb.path("ours-two")).len(),
        log_files(&sb.path("djb-two")).len()
    );
    let tail = |d: &str| String::from_utf8(fs::read(sb.path(d).join("current")).unwrap()).unwrap();
    assert!(
        tail("ours-two").ends_with("30000 drop\n") && tail("djb-two").ends_with("30000 drop\n")
    );
    // A current left by a killed logger (mode 0644) becomes an .u archive in both.
    for (who, prog) in [("ours", bin("multilog")), ("djb", require_peer("multilog"))] {
        let d = sb.path(&format!("{who}-crash"));
        fs::create_dir(&d).unwrap();
        fs::write(d.join("current"), "old\n").unwrap();
        fs::set_permissions(d.join("current"), fs::Permissions::from_mode(0o644)).unwrap();
        let (code, _) = run_with_input(&sb, &prog, &[&format!("./{who}-crash")], b"new\n");
        assert_eq!(code, 0);
    }
    let (ours, djb) = (sb.path("ours-crash"), sb.path("djb-crash"));
    assert_eq!(layout(&ours), layout(&djb));
    assert_eq!(log_bytes(&ours), log_bytes(&djb));
    assert_eq!(log_bytes(&ours), b"old\nnew\n");
}

/// Archives in a log directory.
fn archives(dir: &Path) -> usize {
    log_files(dir).len().saturating_sub(1)
}

#[test]
fn s_and_n_out_of_range_are_clamped_as_debian_multilog_does() {
    let sb = Sandbox::new("ml-clamp");
    let djb = require_peer("multilog");
    // 300 lines of 100 bytes: several files at the smallest size. 17000 lines of 1000 bytes:
    // more than the largest size.
    let small: String = (0..300).map(|i| format!("{i:099}\n")).collect();
    let big: String = (0..17_000).map(|i| format!("{i:0999}\n")).collect();
    // (as written, as daemontools takes it, input)
    let cases: [(&[&str], &[&str], &str); 13] = [
        (&["s100", "n1000"], &["s4096", "n1000"], &small),
        (&["s0", "n1000"], &["s4096", "n1000"], &small),
        (&["s", "n1000"], &["s4096", "n1000"], &small),
        (&["sabc", "n1000"], &["s4096", "n1000"], &small),
        (&["s4095", "n1000"], &["s4096", "n1000"], &small),
        (&["s5000x", "n1000"], &["s5000", "n1000"], &small),
        (&["s4096", "n1"], &["s4096", "n2"], &small),
        (&["s4096", "n0"], &["s4096", "n2"], &small),
        (&["s4096", "n"], &["s4096", "n2"], &small),
        (&["s4096", "nabc"], &["s4096", "n2"], &small),
        (&["s4096", "n3x"], &["s4096", "n3"], &small),
        (&["s100000000"], &["s16777215"], &big),
        (&["s16777216"], &["s16777215"], &big),
    ];
    for (i, (given, taken, input)) in cases.iter().enumerate() {
        for (who, prog) in [("ours", bin("multilog")), ("djb", djb.clone())] {
            let mut seen = vec![];
            for (j, actions) in [given, taken].iter().enumerate() {
                let dir = format!("./{who}-{i}-{j}");
                let mut script = actions.to_vec();
                script.push(&dir);
                let (code, err) = run_with_input(&sb, &prog, &script, input.as_bytes());
                assert_eq!(code, 0, "{who} {actions:?}: {err}");
                let d = sb.path(&dir);
                let bytes = log_bytes(&d);
                assert!(input.as_bytes().ends_with(&bytes), "{who} {actions:?}");
                seen.push((archives(&d), bytes.len(), err));
                fs::remove_dir_all(&d).unwrap();
            }
            assert_eq!(
                (seen[0].0, seen[0].1),
                (seen[1].0, seen[1].1),
                "{who}: {given:?} must log as {taken:?}"
            );
            if who == "ours" {
                let arg = given.iter().zip(*taken).find(|(g, t)| g != t).unwrap();
                let warning = &seen[0].2;
                assert!(
                    warning.starts_with(&format!(
                        "multilog: warning: action {} taken as {}: ",
                        arg.0, arg.1
                    )) && warning.lines().count() == 1,
                    "{given:?}: {warning}"
                );
                assert_eq!(seen[1].2, "", "{taken:?} is taken as written");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// No loss

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Checks numbered lines `0..n`: returns (lost, duplicated, out of order).
fn audit(data: &[u8], n: usize) -> (usize, usize, usize) {
    let mut seen = vec![0u32; n];
    let mut disorder = 0;
    let mut high: Option<usize> = None;
    for line in data.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let Some(i) = std::str::from_utf8(line)
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
            .filter(|&i| i < n)
        else {
            panic!("garbled line {:?}", String::from_utf8_lossy(line));
        };
        if seen[i] == 0 && high.is_some_and(|h| i < h) {
            disorder += 1;
        }
        seen[i] += 1;
        high = Some(high.map_or(i, |h| h.max(i)));
    }
    let lost = seen.iter().filter(|&&c| c == 0).count();
    let dup = seen.iter().map(|&c| c.saturating_sub(1) as usize).sum();
    (lost, dup, disorder)
}

fn spawn_writer(mut w: File, n: usize) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = Vec::with_capacity(1 << 16);
        for i in 0..n {
            buf.extend_from_slice(format!("{i:07}\n").as_bytes());
            if buf.len() >= 60_000 {
                w.write_all(&buf).unwrap();
                buf.clear();
            }
        }
        w.write_all(&buf).unwrap();
    })
}

/// Writes lines `0..n` in `CHUNKS` chunks; chunk `c` waits until `kills` reaches
/// `c - AHEAD`, so the input cannot end before `CHUNKS - 1 - AHEAD` kills, and every kill
/// lets more input in (the next logger always has lines to make progress on).
fn spawn_paced_writer(
    mut w: File,
    n: usize,
    kills: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let per = n.div_ceil(KILL_CHUNKS);
        for c in 0..KILL_CHUNKS {
            let need = c.saturating_sub(KILL_AHEAD);
            // The main thread panics (and the test fails) if kills stop; the writer then
            // gets EPIPE once the pipe's read ends are closed.
            // A poll on the test's own counter (no process state involved).
            while kills.load(std::sync::atomic::Ordering::SeqCst) < need {
                std::thread::sleep(Duration::from_millis(1));
            }
            let mut buf = Vec::with_capacity(per * 8);
            for i in (c * per)..((c + 1) * per).min(n) {
                buf.extend_from_slice(format!("{i:07}\n").as_bytes());
            }
            if w.write_all(&buf).is_err() {
                return;
            }
        }
    })
}

/// Chunks of input in the kill test, and how many of them the writer may be ahead of the
/// kills: the input ends only after `KILL_CHUNKS - 1 - KILL_AHEAD` (> 50) kills, or when the
/// test lets the rest in.
const KILL_CHUNKS: usize = 60;
const KILL_AHEAD: usize = 8;
const _: () = assert!(KILL_CHUNKS - 1 - KILL_AHEAD > 50);

#[test]
fn no_line_lost_when_killed_50_times() {
    let sb = Sandbox::new("ml-kill");
    const N: usize = 1_000_000;
    let (reader, writer) = pipe();
    let kill_count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let writer_thread = spawn_paced_writer(writer, N, kill_count.clone());
    let script = ["s1000000", "n10000", "./log"];
    let dir = sb.path("log");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ u64::from(std::process::id()));
    let size = || {
        log_files(&dir)
            .iter()
            .map(|f| fs::metadata(f).map(|m| m.len()).unwrap_or(0))
            .sum::<u64>()
    };
    let mut kills = 0;
    while kills < 50 {
        let before = size();
        let mut child = start_piped(&sb, &bin("multilog"), &script, &reader, &sb.path("err"));
        assert!(
            !writer_thread.is_finished(),
            "the input ended after only {kills} kills"
        );
        // Kill at a random moment once the logger has started making progress.
        wait_until(LIMIT, "logger makes progress", || {
            size() > before || !alive(child.id())
        });
        // The random moment of the kill is the point of the test.
        std::thread::sleep(Duration::from_micros(rng.next() % 20_000));
        send_signal(child.id(), 9);
        child.wait().unwrap();
        kills += 1;
        kill_count.store(kills, std::sync::atomic::Ordering::SeqCst);
    }
    // The last logger reads to the end of input, all of it let in now.
    kill_count.store(usize::MAX, std::sync::atomic::Ordering::SeqCst);
    let mut last = start_piped(&sb, &bin("multilog"), &script, &reader, &sb.path("err"));
    drop(reader);
    writer_thread.join().unwrap();
    assert_eq!(wait_exit(&mut last, Duration::from_secs(30)), 0);
    let (lost, dup, disorder) = audit(&log_bytes(&dir), N);
    eprintln!(
        "no-loss under SIGKILL: {N} lines, {kills} kills: lost {lost}, duplicated {dup}, out of order {disorder}"
    );
    assert!(
        kills >= 50,
        "only {kills} kills happened before the input ended"
    );
    assert_eq!(lost, 0, "lines lost");
    assert_eq!(disorder, 0, "lines out of order");
    assert_eq!(dup, 0, "lines duplicated");
}

/// A tmpfs mounted for one test, unmounted on drop (lazily, should a process still use it).
struct Tmpfs(PathBuf);
impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

#[test]
fn disk_full_pauses_and_resumes_without_loss() {
    let sb = Sandbox::new("ml-full");
    let mnt = sb.path("fs");
    fs::create_dir(&mnt).unwrap();
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&mnt)
        .status()
        .unwrap();
    assert!(st.success(), "mount tmpfs (needs root)");
    let _fs = Tmpfs(mnt.clone());
    // Ballast leaves ~100 KiB free; the input is ~320 KiB.
    let ballast = mnt.join("ballast");
    fs::write(&ballast, vec![0u8; 900 * 1024]).unwrap();
    const N: usize = 40_000;
    let (reader, writer) = pipe();
    let writer_thread = spawn_writer(writer, N);
    let err = sb.path("err");
    let mut child = start_piped(
        &sb,
        &bin("multilog"),
        &["s16777215", "./fs/log"],
        &reader,
        &err,
    );
    wait_until(LIMIT, "the out-of-space warning", || {
        fs::read_to_string(&err).is_ok_and(|s| s.contains("pausing: out of disk space"))
    });
    let warning = fs::read_to_string(&err).unwrap();
    assert!(
        warning.lines().next().unwrap().starts_with(
            "multilog: warning: unable to write to ./fs/log/current, pausing: out of disk space"
        ),
        "{warning}"
    );
    assert!(
        !writer_thread.is_finished(),
        "the writer must be blocked by the paused logger"
    );
    fs::remove_file(&ballast).unwrap();
    writer_thread.join().unwrap();
    drop(reader);
    assert_eq!(wait_exit(&mut child, LIMIT), 0);
    let (lost, dup, disorder) = audit(&log_bytes(&mnt.join("log")), N);
    eprintln!("disk full: {N} lines: lost {lost}, duplicated {dup}, out of order {disorder}");
    assert_eq!((lost, dup, disorder), (0, 0, 0));
}
