//! The multi-call executable: every name it answers to, `--help` and `--version` on each, and
//! `vigil NAME` running the program NAME.

use std::fs;

use vigil_tests::*;

fn programs() -> Vec<String> {
    let (code, out, err) = run_output(std::process::Command::new(bin("vigil")).arg("--list"));
    assert_eq!(code, 0, "vigil --list: {err}");
    let names: Vec<String> = out.lines().map(str::to_owned).collect();
    assert!(names.len() >= 10, "too few programs: {names:?}");
    names
}

#[test]
fn every_program_answers_help_and_version_without_touching_anything() {
    let sb = Sandbox::new("cli-help");
    for name in programs() {
        // Each name is a link to the one executable, as the build and the install make them.
        let link = bin(&name);
        assert_eq!(
            fs::canonicalize(&link).unwrap(),
            fs::canonicalize(bin("vigil")).unwrap(),
            "{name} is not the multi-call executable"
        );
        let (code, out, err) = run_output(sb.command(&link).arg("--help").current_dir(&sb.root));
        assert_eq!((code, err.as_str()), (0, ""), "{name} --help");
        assert!(
            out.starts_with(&format!("usage: {name}")),
            "{name} --help: {out}"
        );
        let (code, out, err) = run_output(sb.command(&link).arg("--version").current_dir(&sb.root));
        assert_eq!((code, err.as_str()), (0, ""), "{name} --version");
        assert!(
            out.starts_with(&format!("{name} (vigil) ")),
            "{name} --version: {out}"
        );
    }
    // Nothing was taken for a directory or a file name (supervise --help used to supervise
    // a directory called --help).
    let left: Vec<_> = fs::read_dir(&sb.root)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "created: {left:?}");
}

#[test]
fn vigil_runs_the_program_named_by_its_first_argument() {
    let sb = Sandbox::new("cli-name");
    let (code, out, _) = run_output(sb.command(bin("vigil")).args(["svok", "--version"]));
    assert_eq!(code, 0);
    assert!(out.starts_with("svok (vigil) "), "{out}");
    // svok on a directory that never had a supervise: 100, as svok itself says.
    let (code, _, _) = run_output(sb.command(bin("vigil")).args(["svok"]).arg(&sb.root));
    assert_eq!(code, 100);
    let (code, _, err) = run_output(sb.command(bin("vigil")).arg("no-such-program"));
    assert_eq!(code, 100);
    assert!(err.starts_with("vigil: usage: vigil {"), "{err}");
}

#[test]
fn help_after_the_first_argument_belongs_to_the_program() {
    // envdir hands everything after its directory to the child: --help there is the child's.
    let sb = Sandbox::new("cli-child");
    fs::create_dir(sb.path("env")).unwrap();
    let (code, out, err) = run_output(sb.command(bin("envdir")).arg(sb.path("env")).args([
        "/usr/bin/printf",
        "%s\\n",
        "--help",
    ]));
    assert_eq!((code, out.as_str(), err.as_str()), (0, "--help\n", ""));
}
