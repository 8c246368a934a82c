//! What `chpst`'s options ask for, checked before anything is changed.

use super::*;

/// Everything the options ask for; the last of a repeated option wins (but one lock only).
#[derive(Default)]
pub(crate) struct Plan {
    pub(crate) session: bool,
    pub(crate) env_dir: Option<OsString>,
    pub(crate) root: Option<PathBuf>,
    pub(crate) nice: Option<i32>,
    pub(crate) env_user: Option<OsString>,
    pub(crate) user: Option<OsString>,
    pub(crate) lock: Option<(OsString, bool)>,
    pub(crate) limits: Vec<(Resource, Soft)>,
    pub(crate) close: Vec<i32>,
    pub(crate) argv0: Option<OsString>,
}

pub(crate) fn plan_from(opts: Vec<Opt>) -> Option<Plan> {
    let mut plan = Plan::default();
    for opt in opts {
        match opt {
            Opt::Flag(b'P') => plan.session = true,
            // daemontools compat: runit prints its `$Id: … $` string; we print our version.
            Opt::Flag(b'V') => {
                diag::line(concat!("vigil chpst ", env!("CARGO_PKG_VERSION")));
                return None;
            }
            Opt::Flag(fd @ b'0'..=b'2') => plan.close.push(i32::from(fd - b'0')),
            Opt::Flag(_) => {}
            Opt::Arg(b'u', v) => plan.user = Some(v),
            Opt::Arg(b'U', v) => plan.env_user = Some(v),
            Opt::Arg(b'b', v) => plan.argv0 = Some(v),
            Opt::Arg(b'e', v) => plan.env_dir = Some(v),
            Opt::Arg(b'/', v) => plan.root = Some(v.into()),
            Opt::Arg(b'n', v) => plan.nice = Some(parse_nice(v.as_bytes())?),
            // As runit's: one lock only, a second -l or -L is a usage error.
            Opt::Arg(b'l' | b'L', _) if plan.lock.is_some() => return None,
            Opt::Arg(b'l', v) => plan.lock = Some((v, true)),
            Opt::Arg(b'L', v) => plan.lock = Some((v, false)),
            Opt::Arg(letter, v) => {
                let n = parse_number(v.as_bytes())?;
                let set = chpst_resources(letter).iter().map(|&r| (r, Soft::Value(n)));
                plan.limits.extend(set);
            }
        }
    }
    Some(plan)
}

/// A `-u`/`-U` spec resolved against the account files of the current root.
pub(crate) fn ids_of(spec: &OsString) -> Result<Ids, ExitCode> {
    let (passwd, group) = match (account::read_passwd(), account::read_group()) {
        (Ok(p), Ok(g)) => (p, g),
        (Err(e), _) => {
            return Err(unable("read", &account::PASSWD, &e));
        }
        (_, Err(e)) => {
            return Err(unable("read", &account::GROUP, &e));
        }
    };
    let bytes = spec.as_bytes();
    resolve_ids(bytes, &passwd, &group).map_err(|e| {
        let shown = String::from_utf8_lossy(bytes);
        match e {
            IdsError::Unknown => fatal(&format!("unknown user/group: {shown}")),
            IdsError::Invalid => fatal(&format!(
                "invalid uid/gids: {}",
                shown.strip_prefix(':').unwrap_or(&shown)
            )),
        }
    })
}
