//! Setting up: the service directory, `supervise/` with its lock and FIFOs, the first status,
//! the cgroup, the dead-man watch, and adopting a run a killed predecessor left.

use super::*;

impl Supervisor {
    // Not inlined into main: its locals would stay in the frame under the whole loop.
    #[inline(never)]
    pub(crate) fn setup(dir: &OsStr) -> Result<Supervisor, ExitCode> {
        let name = dir.to_string_lossy().into_owned();
        let fatal = |what: String, e: std::io::Error| {
            diag::fatal(PROG, &diag::bare_text(&what, &e), EXIT_TEMP)
        };

        // Taken out of the environment at once: no child of ours sees it.
        let scanner = process::take_env(vigil_core::scan::SCANNER_ENV)
            .and_then(|v| v.to_str()?.parse::<u32>().ok())
            .filter(|&pid| pid == process::parent_pid());
        // Our svscan reset every disposition itself before it started us (64 calls saved
        // for each of a thousand services); anyone else may have left one ignored.
        if scanner.is_none() {
            signals::reset_dispositions();
        }
        process::cloexec_inherited();
        let handover = process::take_env(vigil_core::scan::HANDOVER_ENV).is_some();
        let cgroup_root = process::take_env(vigil_core::cgroup::ROOT_ENV);
        // `supervise -d`: the caller's pipe, told once the lock is ours and supervise/ is set up.
        let caller_pipe = process::take_env(detach::READY_FD_ENV)
            .and_then(|v| vigil_sys::detach::take_ready_pipe(&v));
        let signals = Signals::block(&[signals::CHLD, sig::TERM, sig::INT, sig::HUP])
            .map_err(|e| fatal(format!("create pipe for {name}"), e))?;
        std::env::set_current_dir(dir).map_err(|e| fatal(format!("chdir to {name}"), e))?;
        let start_down = files::exists(Path::new(layout::DOWN))
            .map_err(|e| fatal(format!("stat {name}/down"), e))?;
        let state = StateDir::open(layout::SUPERVISE_DIR)
            .map_err(|e| fatal(format!("open {name}/supervise"), e))?;
        let lock = state
            .lock(state::LOCK)
            .map_err(|e| fatal(format!("acquire {name}/{}", layout::LOCK), e))?;
        let open_control = || -> std::io::Result<(OwnedFd, OwnedFd)> {
            make_fifo(&state, &name, state::CONTROL)?;
            let r = state.open_fifo(state::CONTROL, false)?;
            let w = state.open_fifo(state::CONTROL, true)?;
            Ok((r, w))
        };
        let (control, control_writer) =
            open_control().map_err(|e| fatal(format!("read {name}/{}", layout::CONTROL), e))?;
        // What the service leaves behind when a process of it exits is re-parented to us, so it
        // stays visible, is reaped, and is brought down with the service.
        if let Err(e) = process::become_subreaper() {
            diag::unable(PROG, "become a subreaper for", &name, &e);
        }

        let clock = Clock::new();
        let now = clock.now();
        // Quietly: every start reads the knobs again and reports what is wrong then.
        // One listing for all of setting up and the first start (`KnobListing::keep_fresh`).
        let present = listed_knobs();
        let (cfg, _) = layout::read_config(present, |k| knob_value(k).ok().flatten());
        // A supervise svscan starts in place of an earlier one keeps the want that one recorded
        // (`svc -d` or `-o` survives the handover); only a fresh start applies `./down`.
        let kept = handover
            .then(|| vigil_sys::service::read_status_in(&state, state::STATUS).ok())
            .flatten()
            .map(|st| st.want);
        let machine = match kept {
            Some(want) => Machine::with_want(cfg, want, now),
            None => Machine::new(cfg, start_down, now),
        };
        let mut s = Supervisor {
            name,
            machine,
            clock,
            state,
            signals,
            control,
            _control_writer: control_writer,
            _ok: None,
            _lock: lock,
            last_written: None,
            // Room for any usual info text from the start: no growth in steps through the
            // allocator's size classes (each would leave a page of the heap dirty).
            last_info: String::with_capacity(INFO_CAPACITY),
            text_buf: String::with_capacity(INFO_CAPACITY),
            history: None,
            listing: {
                let mut l = KnobListing::default();
                l.keep_fresh(present);
                l
            },
            exiting: false,
            ready_pipe: None,
            notify: None,
            notify_refusal_told: false,
            notify_status: String::new(),
            boot_id: process::boot_id().unwrap_or_default(),
            run_identity: None,
            cgroup: None,
            deadman: None,
            limit_told: [false; 2],
            adopted: None,
            write_failing: false,
            scanner,
        };
        s.cgroup = Cgroup::set_up(&s.name, cgroup_root.as_deref());
        s.watch_deadman(&knob_value(layout::KNOB_DEADMAN).ok().flatten());
        s.adopt_leftover(now);
        s.tell_deadman(now);
        let written = s.write_status(false);
        s.machine.handle(Input::Written(written), now);
        let ok = make_fifo(&s.state, &s.name, state::OK)
            .and_then(|()| s.state.open_fifo(state::OK, false))
            .map_err(|e| fatal(format!("read {}/{}", s.name, layout::OK), e))?;
        access::apply(&s.state, &s.name, present, &[s.control.as_fd(), ok.as_fd()]);
        s._ok = Some(ok);
        if let Some(pipe) = caller_pipe
            && let Err(e) = vigil_sys::detach::report_ready(pipe)
        {
            diag::unable(PROG, "report ready for", &s.name, &e);
        }
        Ok(s)
    }
}

/// Makes sure `supervise/NAME` is a FIFO of ours, replacing whatever else is there (a regular
/// file as `control` would make every poll return at once and swallow commands).
pub(crate) fn make_fifo(state: &StateDir, dir: &str, name: &str) -> std::io::Result<()> {
    if let FifoFound::Replaced(what) = state.fifo(name, 0o600)? {
        diag::warn(
            PROG,
            &format!(
                "replaced {dir}/{}/{name}: it was {what}, not a FIFO of supervise",
                layout::SUPERVISE_DIR
            ),
        );
    }
    Ok(())
}
