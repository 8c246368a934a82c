//! Accounts from the text of `/etc/passwd` and `/etc/group`, and runit's `user:group` specs.
//!
//! daemontools compat: daemontools and runit ask the C library (`getpwnam`, `getgrnam`),
//! which goes through NSS and so also sees LDAP, NIS or systemd-homed accounts. vigil is built
//! as a static executable, where NSS does not work reliably, so it reads the two files itself:
//! only accounts listed in them exist for vigil. NIS compat lines (`+name`, `-name`) are
//! skipped. The caller reads the files; everything here works on the bytes.

/// What a passwd line says about a user: enough to run as them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
}

/// The identity chpst `-u`/`-U` asks for: a uid, the primary gid, and every gid to keep as a
/// supplementary group (the primary one first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ids {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
}

/// Why a chpst `-u`/`-U` spec gave no identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdsError {
    /// A user or group name that neither file lists (`unknown user/group: SPEC`).
    Unknown,
    /// A numeric spec (`:uid:gid…`) without a group, or with a number that is not one
    /// (`invalid uid/gids: SPEC-WITHOUT-COLON`).
    Invalid,
}

/// The lines of a colon-separated account file, as field lists, comments and NIS lines left out.
fn records(text: &[u8]) -> impl Iterator<Item = Vec<&[u8]>> {
    text.split(|&b| b == b'\n')
        .filter(|line| !matches!(line.first(), None | Some(b'#' | b'+' | b'-')))
        .map(|line| line.split(|&b| b == b':').collect())
}

/// A uid or gid as the files write it: decimal digits only, within u32.
pub fn parse_id(text: &[u8]) -> Option<u32> {
    if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// The first passwd entry named `name`.
pub fn find_user(passwd: &[u8], name: &[u8]) -> Option<User> {
    records(passwd)
        .filter(|f| f.first() == Some(&name))
        .find_map(|f| {
            Some(User {
                uid: parse_id(f.get(2)?)?,
                gid: parse_id(f.get(3)?)?,
            })
        })
}

/// The gid of the first group entry named `name`.
pub fn find_group(group: &[u8], name: &[u8]) -> Option<u32> {
    records(group)
        .filter(|f| f.first() == Some(&name))
        .find_map(|f| parse_id(f.get(2)?))
}

/// runit's reading of a number in a numeric spec: the leading digits, 0 when there are none.
fn leading_number(text: &[u8]) -> Option<u32> {
    let digits = text.iter().take_while(|b| b.is_ascii_digit()).count();
    match text.get(..digits) {
        Some([]) => Some(0),
        Some(d) => std::str::from_utf8(d).ok()?.parse().ok(),
        None => None,
    }
}

/// Resolves a chpst `-u`/`-U` spec: `user[:group[:group…]]` looked up in the files, or
/// `:uid:gid[:gid…]` taken as numbers. With no group the user's own gid is the only group.
pub fn resolve_ids(spec: &[u8], passwd: &[u8], group: &[u8]) -> Result<Ids, IdsError> {
    if let Some(numeric) = spec.strip_prefix(b":") {
        let mut parts = numeric.split(|&b| b == b':');
        let uid = parts
            .next()
            .and_then(leading_number)
            .ok_or(IdsError::Invalid)?;
        let groups = parts
            .map(leading_number)
            .collect::<Option<Vec<u32>>>()
            .ok_or(IdsError::Invalid)?;
        let gid = *groups.first().ok_or(IdsError::Invalid)?;
        return Ok(Ids { uid, gid, groups });
    }
    let mut parts = spec.split(|&b| b == b':');
    let name = parts.next().unwrap_or_default();
    let user = find_user(passwd, name).ok_or(IdsError::Unknown)?;
    let groups = parts
        .map(|g| find_group(group, g))
        .collect::<Option<Vec<u32>>>()
        .ok_or(IdsError::Unknown)?;
    match groups.first() {
        Some(&gid) => Ok(Ids {
            uid: user.uid,
            gid,
            groups,
        }),
        None => Ok(Ids {
            uid: user.uid,
            gid: user.gid,
            groups: vec![user.gid],
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    const PASSWD: &[u8] = b"root:x:0:0:root:/root:/bin/bash\n\
        # a comment\n\
        +nis::::::\n\
        app:x:1001:1002::/home/app:/bin/sh\n\
        broken:x:notanumber:5::/:/bin/sh\n\
        nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin";
    const GROUP: &[u8] = b"root:x:0:\nadm:x:4:app\napp:x:1002:\nnogroup:x:65534:\n";

    #[test]
    fn users_by_name() {
        assert_eq!(find_user(PASSWD, b"root"), Some(User { uid: 0, gid: 0 }));
        assert_eq!(
            find_user(PASSWD, b"nobody"),
            Some(User {
                uid: 65534,
                gid: 65534
            })
        );
        assert_eq!(find_user(PASSWD, b"app").unwrap().uid, 1001);
        assert_eq!(find_user(PASSWD, b"ap"), None);
        assert_eq!(find_user(PASSWD, b"broken"), None);
        assert_eq!(find_user(PASSWD, b"+nis"), None);
        assert_eq!(find_user(PASSWD, b""), None);
        assert_eq!(find_user(b"", b"root"), None);
    }

    #[test]
    fn groups_by_name() {
        assert_eq!(find_group(GROUP, b"adm"), Some(4));
        assert_eq!(find_group(GROUP, b"nogroup"), Some(65534));
        assert_eq!(find_group(GROUP, b"wheel"), None);
    }

    #[test]
    fn ids() {
        assert_eq!(parse_id(b"4294967295"), Some(u32::MAX));
        assert_eq!(parse_id(b"4294967296"), None);
        assert_eq!(parse_id(b"+1"), None);
        assert_eq!(parse_id(b""), None);
    }

    #[test]
    fn specs_by_name() {
        let r = |s: &[u8]| resolve_ids(s, PASSWD, GROUP);
        assert_eq!(
            r(b"app"),
            Ok(Ids {
                uid: 1001,
                gid: 1002,
                groups: vec![1002]
            })
        );
        assert_eq!(
            r(b"app:adm:root"),
            Ok(Ids {
                uid: 1001,
                gid: 4,
                groups: vec![4, 0]
            })
        );
        assert_eq!(r(b"nosuch"), Err(IdsError::Unknown));
        assert_eq!(r(b"app:nosuch"), Err(IdsError::Unknown));
    }

    #[test]
    fn numeric_specs_as_runit_reads_them() {
        let r = |s: &[u8]| resolve_ids(s, b"", b"");
        assert_eq!(
            r(b":1234:5:6"),
            Ok(Ids {
                uid: 1234,
                gid: 5,
                groups: vec![5, 6]
            })
        );
        // `:1234:` names one empty group: gid 0, as runit's chpst does.
        assert_eq!(
            r(b":1234:"),
            Ok(Ids {
                uid: 1234,
                gid: 0,
                groups: vec![0]
            })
        );
        assert_eq!(r(b":1234"), Err(IdsError::Invalid));
        assert_eq!(r(b":99999999999:1"), Err(IdsError::Invalid));
    }
}
