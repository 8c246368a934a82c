//! The rules of an environment directory (daemontools' envdir, runit's `chpst -e`): one file
//! per variable, the file's name is the variable's name.
//!
//! The value is the file's first line with spaces and tabs at its end removed and every NUL
//! turned into a newline; a file of 0 bytes removes the variable instead. The caller reads the
//! directory; this module decides what each file means.

/// What one file of the directory does to the environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Replace (or add) the variable with this value.
    Set(Vec<u8>),
    /// Remove the variable: the file is empty.
    Unset,
}

/// Reads the first bytes of a file (at most a line is needed): what the variable becomes.
pub fn change_of(contents: &[u8]) -> Change {
    if contents.is_empty() {
        return Change::Unset;
    }
    let line = contents.split(|&b| b == b'\n').next().unwrap_or_default();
    let kept = line
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(0, |i| i + 1);
    let value = line
        .iter()
        .take(kept)
        .map(|&b| if b == 0 { b'\n' } else { b })
        .collect();
    Change::Set(value)
}

/// Whether a directory entry names a variable: dot files (`.`, `..`, `.hidden`) do not.
///
/// daemontools compat: a name containing `=` is taken as is, as daemontools' and runit's do
/// (a file `A=B` holding `x` exports `A=B=x`).
pub fn is_variable(name: &[u8]) -> bool {
    !name.is_empty() && name.first() != Some(&b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_line_trimmed() {
        assert_eq!(change_of(b"v1  \t\nline2"), Change::Set(b"v1".to_vec()));
        assert_eq!(change_of(b"  a b \n"), Change::Set(b"  a b".to_vec()));
        assert_eq!(
            change_of(b"no newline"),
            Change::Set(b"no newline".to_vec())
        );
    }

    #[test]
    fn nul_is_newline() {
        assert_eq!(change_of(b"a\0b\n"), Change::Set(b"a\nb".to_vec()));
        // A trailing NUL becomes a newline, which is not trimmed.
        assert_eq!(change_of(b"a\0 "), Change::Set(b"a\n".to_vec()));
    }

    #[test]
    fn empty_file_unsets_empty_line_sets_empty() {
        assert_eq!(change_of(b""), Change::Unset);
        assert_eq!(change_of(b"\n"), Change::Set(Vec::new()));
        assert_eq!(change_of(b" \t\nx"), Change::Set(Vec::new()));
    }

    #[test]
    fn dot_files_are_not_variables() {
        assert!(is_variable(b"PATH"));
        assert!(is_variable(b"A=B"));
        assert!(!is_variable(b".hidden"));
        assert!(!is_variable(b""));
    }
}
