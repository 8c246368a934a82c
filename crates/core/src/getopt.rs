//! POSIX-style short options in the order given, as daemontools' tools read them.
//!
//! `-du` is `d` then `u`; options end at the first argument that is not an option or at
//! `--`; `x:` in the spec means `-x` takes an argument (`-xARG` or `-x ARG`).

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Opt {
    Flag(u8),
    Arg(u8, OsString),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptError {
    /// A letter not in the spec (`prog: illegal option -- z`).
    Illegal(u8),
    /// An option that takes an argument came last (`prog: option requires an argument -- T`).
    MissingArg(u8),
}

/// Splits `args` (without argv[0]) into options and the operands after them.
pub fn parse<'a>(args: &'a [OsString], spec: &str) -> Result<(Vec<Opt>, &'a [OsString]), OptError> {
    let spec = spec.as_bytes();
    let takes_arg = |c: u8| -> Option<bool> {
        let i = spec.iter().position(|&s| s == c && c != b':')?;
        Some(spec.get(i + 1) == Some(&b':'))
    };
    let mut opts = Vec::new();
    let mut i = 0;
    while let Some(arg) = args.get(i) {
        let bytes = arg.as_bytes();
        if bytes == b"--" {
            i += 1;
            break;
        }
        if bytes.len() < 2 || bytes.first() != Some(&b'-') {
            break;
        }
        i += 1;
        let mut j = 1;
        while let Some(&c) = bytes.get(j) {
            j += 1;
            match takes_arg(c) {
                None => return Err(OptError::Illegal(c)),
                Some(false) => opts.push(Opt::Flag(c)),
                Some(true) => {
                    let rest = bytes.get(j..).unwrap_or_default();
                    let value = if rest.is_empty() {
                        let v = args.get(i).ok_or(OptError::MissingArg(c))?;
                        i += 1;
                        v.clone()
                    } else {
                        OsStr::from_bytes(rest).to_os_string()
                    };
                    opts.push(Opt::Arg(c, value));
                    break;
                }
            }
        }
    }
    Ok((opts, args.get(i..).unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn args(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn order_and_operands() {
        let a = args(&["-du", "-x", "a", "-u"]);
        let (o, rest) = parse(&a, "udx").unwrap();
        assert_eq!(o, vec![Opt::Flag(b'd'), Opt::Flag(b'u'), Opt::Flag(b'x')]);
        assert_eq!(rest, &a[2..]);
    }

    #[test]
    fn arguments() {
        let a = args(&["-uwU", "-T", "500", "d"]);
        let (o, rest) = parse(&a, "uw:T:").unwrap();
        assert_eq!(
            o,
            vec![
                Opt::Flag(b'u'),
                Opt::Arg(b'w', "U".into()),
                Opt::Arg(b'T', "500".into())
            ]
        );
        assert_eq!(rest.len(), 1);
        assert_eq!(parse(&args(&["-T"]), "T:"), Err(OptError::MissingArg(b'T')));
    }

    #[test]
    fn double_dash_and_lone_dash() {
        let a = args(&["-u", "--", "-d"]);
        let (o, rest) = parse(&a, "ud").unwrap();
        assert_eq!(o.len(), 1);
        assert_eq!(rest, &a[2..]);
        let a = args(&["-", "x"]);
        assert_eq!(parse(&a, "u").unwrap().1.len(), 2);
        assert_eq!(parse(&args(&["-uz"]), "u"), Err(OptError::Illegal(b'z')));
    }
}
