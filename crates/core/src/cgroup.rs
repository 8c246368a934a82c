//! cgroup2: the names vigil gives its cgroups and what it reads from the kernel's files.
//!
//! supervise puts each `./run` in a cgroup of its own, `<root>/vigil/<name>`, so "down" can
//! mean "every process of the service has gone" (issue 13). The name must be the same for a
//! successor supervise adopting a leftover run, so it is computed from the service directory's
//! device and inode numbers (stable while the directory exists, unique on the machine) plus its
//! basename for people reading `/sys/fs/cgroup`. Every file name under the hierarchy is a
//! constant here; `vigil_sys::cgroup` does the reading and writing.

/// The environment variable that overrides where the cgroup2 hierarchy is: a directory to use
/// as its root, or [`ROOT_OFF`] to run without cgroups.
pub const ROOT_ENV: &str = "VIGIL_CGROUP_ROOT";
/// The value of [`ROOT_ENV`] that turns cgroups off.
pub const ROOT_OFF: &str = "off";
/// Where a pure cgroup2 system mounts the hierarchy.
pub const ROOT_PURE: &str = "/sys/fs/cgroup";
/// Where a hybrid system (cgroup1 controllers beside a cgroup2 tree) mounts it.
pub const ROOT_HYBRID: &str = "/sys/fs/cgroup/unified";
/// vigil's sub-tree under the root: the only directory vigil creates there.
pub const SUBTREE: &str = "vigil";

/// Pids of the processes in a cgroup, one a line.
pub const PROCS: &str = "cgroup.procs";
/// `populated 0|1` and `frozen 0|1`.
pub const EVENTS: &str = "cgroup.events";
/// Writing `1` kills every process in the cgroup (Linux >= 5.14).
pub const KILL: &str = "cgroup.kill";
/// The controllers a cgroup may enable for its children.
pub const CONTROLLERS: &str = "cgroup.controllers";
/// The controllers enabled for a cgroup's children (`+memory +pids` to enable).
pub const SUBTREE_CONTROL: &str = "cgroup.subtree_control";
/// Bytes of memory in use (memory controller).
pub const MEMORY_CURRENT: &str = "memory.current";

/// Controllers vigil enables in its sub-tree when the kernel offers them there.
pub const WANTED_CONTROLLERS: [&str; 2] = ["memory", "pids"];

/// Longest basename part of a cgroup name, in bytes.
pub const NAME_BASE_MAX: usize = 32;

/// A limit vigil sets on a service's cgroup from a knob file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// `memory.max`: bytes (the kernel takes K, M, G suffixes) or `max`.
    MemoryMax,
    /// `pids.max`: a number of processes or `max`.
    PidsMax,
}

impl Limit {
    /// The file in the service's cgroup.
    pub fn file(self) -> &'static str {
        match self {
            Limit::MemoryMax => "memory.max",
            Limit::PidsMax => "pids.max",
        }
    }

    /// The controller that provides the file.
    pub fn controller(self) -> &'static str {
        match self {
            Limit::MemoryMax => "memory",
            Limit::PidsMax => "pids",
        }
    }
}

/// Where to look for the hierarchy, as [`ROOT_ENV`] says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RootChoice<'a> {
    /// Unset or empty: look at [`ROOT_PURE`], then [`ROOT_HYBRID`].
    Probe,
    /// `off`: no cgroups.
    Off,
    /// Anything else: this directory is the root.
    At(&'a [u8]),
}

/// Reads the value of [`ROOT_ENV`] (`None` when unset).
pub fn choose_root(value: Option<&[u8]>) -> RootChoice<'_> {
    match value {
        None | Some(b"") => RootChoice::Probe,
        Some(v) if v == ROOT_OFF.as_bytes() => RootChoice::Off,
        Some(v) => RootChoice::At(v),
    }
}

/// The cgroup name of the service directory whose basename is `base` and whose `stat` gave
/// `dev` and `ino`: `BASE.DEV.INO`, BASE with every byte outside `[A-Za-z0-9_.-]` made `_`,
/// cut to [`NAME_BASE_MAX`] bytes, and `_` when empty. The numbers make it unique and
/// stable; the base is only for people.
pub fn service_name(base: &[u8], dev: u64, ino: u64) -> String {
    let mut name: String = base
        .iter()
        .take(NAME_BASE_MAX)
        .map(|&b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-') {
                char::from(b)
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() {
        name.push('_');
    }
    format!("{name}.{dev}.{ino}")
}

/// Whether `name` is a cgroup name [`service_name`] gives for a directory with those `dev` and
/// `ino`, whatever its basename: what svscan checks before removing a cgroup a supervise
/// recorded, so that a planted record names no other service's cgroup.
pub fn names_directory(name: &[u8], dev: u64, ino: u64) -> bool {
    let suffix = format!(".{dev}.{ino}");
    name.strip_suffix(suffix.as_bytes()).is_some_and(|base| {
        !base.is_empty()
            && base.len() <= NAME_BASE_MAX
            && base
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    })
}

/// `populated` from the text of `cgroup.events`; `None` when the line is missing or garbled.
pub fn parse_populated(text: &[u8]) -> Option<bool> {
    text.split(|&b| b == b'\n').find_map(|line| {
        let value = line.strip_prefix(b"populated ")?;
        match value {
            b"0" => Some(false),
            b"1" => Some(true),
            _ => None,
        }
    })
}

/// The pids listed in the text of `cgroup.procs` (garbled lines skipped).
pub fn parse_procs(text: &[u8]) -> Vec<u32> {
    text.split(|&b| b == b'\n')
        .filter_map(|l| std::str::from_utf8(l).ok()?.trim().parse().ok())
        .collect()
}

/// A single number such as `memory.current` holds; `None` for `max` or garbage.
pub fn parse_number(text: &[u8]) -> Option<u64> {
    std::str::from_utf8(text).ok()?.trim().parse().ok()
}

/// What to write to `vigil/cgroup.subtree_control` given the text of `vigil/cgroup.controllers`:
/// `+memory +pids` for those of [`WANTED_CONTROLLERS`] offered; `None` when none is.
pub fn subtree_request(controllers: &[u8]) -> Option<String> {
    let offered: Vec<&[u8]> = controllers
        .split(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty())
        .collect();
    let wanted: Vec<String> = WANTED_CONTROLLERS
        .iter()
        .filter(|c| offered.contains(&c.as_bytes()))
        .map(|c| format!("+{c}"))
        .collect();
    (!wanted.is_empty()).then(|| wanted.join(" "))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names_are_stable_safe_and_bounded() {
        assert_eq!(service_name(b"web", 803, 123456), "web.803.123456");
        for (base, dev, ino) in [(&b"web"[..], 803, 123456), (b"a b/c", 1, 2), (b"", 1, 2)] {
            assert!(names_directory(
                service_name(base, dev, ino).as_bytes(),
                dev,
                ino
            ));
        }
        assert!(!names_directory(b"web.803.123457", 803, 123456));
        assert!(!names_directory(b"web.1803.123456", 803, 123456));
        assert!(!names_directory(b".803.123456", 803, 123456));
        assert!(!names_directory(b"../x.803.123456", 803, 123456));
        assert!(!names_directory(b"web.803.123456/..", 803, 123456));
        assert_eq!(
            service_name(b"web", 803, 123456),
            service_name(b"web", 803, 123456)
        );
        assert_ne!(service_name(b"web", 803, 1), service_name(b"web", 803, 2));
        assert_eq!(service_name(b"a b/c\n\xff", 1, 2), "a_b_c__.1.2");
        assert_eq!(service_name(b"", 1, 2), "_.1.2");
        assert_eq!(service_name(b"..", 1, 2), "...1.2");
        let long = service_name(&[b'x'; 300], 1, 2);
        assert_eq!(long.len(), NAME_BASE_MAX + 4);
        // Never a name the kernel treats specially, never a path.
        for base in [&b"."[..], b"..", b"cgroup.procs", b"/", b"memory.max"] {
            let n = service_name(base, 7, 8);
            assert!(!n.contains('/') && n != "." && n != "..", "{n}");
            assert!(n.ends_with(".7.8"), "{n}");
        }
    }

    #[test]
    fn events_text() {
        assert_eq!(parse_populated(b"populated 1\nfrozen 0\n"), Some(true));
        assert_eq!(parse_populated(b"populated 0\nfrozen 0\n"), Some(false));
        assert_eq!(parse_populated(b"frozen 0\npopulated 0"), Some(false));
        assert_eq!(parse_populated(b"frozen 0\n"), None);
        assert_eq!(parse_populated(b"populated x\n"), None);
        assert_eq!(parse_populated(b""), None);
    }

    #[test]
    fn procs_and_numbers() {
        assert_eq!(parse_procs(b"12\n345\n"), vec![12, 345]);
        assert_eq!(parse_procs(b""), Vec::<u32>::new());
        assert_eq!(parse_procs(b"1\nx\n2"), vec![1, 2]);
        assert_eq!(parse_number(b"4096\n"), Some(4096));
        assert_eq!(parse_number(b"max\n"), None);
    }

    #[test]
    fn only_offered_controllers_are_asked_for() {
        assert_eq!(
            subtree_request(b"cpuset cpu io memory hugetlb pids rdma\n").as_deref(),
            Some("+memory +pids")
        );
        assert_eq!(subtree_request(b"pids\n").as_deref(), Some("+pids"));
        assert_eq!(subtree_request(b"hugetlb\n"), None);
        assert_eq!(subtree_request(b""), None);
        assert_eq!(subtree_request(b"memoryx pidsy"), None);
    }

    #[test]
    fn root_choice() {
        assert_eq!(choose_root(None), RootChoice::Probe);
        assert_eq!(choose_root(Some(b"")), RootChoice::Probe);
        assert_eq!(choose_root(Some(b"off")), RootChoice::Off);
        assert_eq!(choose_root(Some(b"/tmp/x")), RootChoice::At(b"/tmp/x"));
    }

    #[test]
    fn limits_name_their_files() {
        assert_eq!(Limit::MemoryMax.file(), "memory.max");
        assert_eq!(Limit::PidsMax.file(), "pids.max");
        assert_eq!(Limit::PidsMax.controller(), "pids");
    }
}
