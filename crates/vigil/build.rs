//! Makes each program name a link to the `vigil` executable beside where cargo puts it
//! (`target/<profile>/svscan -> vigil`), so `cargo build` gives runnable `svscan`, `svc`, …
//! exactly as an installed tree has them. Only that directory is touched.
//!
//! Also writes `help.rs` into OUT_DIR: each program's `--help` text, taken from its man page
//! (the NAME line and the SYNOPSIS), so the page stays the one place that says how to call it.

use std::path::Path;

include!("src/programs.rs");

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/programs.rs");
    let Some(out) = std::env::var_os("OUT_DIR") else {
        return;
    };
    write_help(Path::new(&out));
    // OUT_DIR is target[/TRIPLE]/PROFILE/build/vigil-HASH/out.
    let Some(dir) = Path::new(&out).ancestors().nth(3) else {
        return;
    };
    for name in PROGRAMS {
        let link = dir.join(name);
        if std::fs::read_link(&link).is_ok_and(|t| t == Path::new("vigil")) {
            continue;
        }
        // An executable of the same name from before the multi-call build, or a stale link.
        let _ = std::fs::remove_file(&link);
        if let Err(e) = std::os::unix::fs::symlink("vigil", &link) {
            println!("cargo:warning=unable to link {}: {e}", link.display());
        }
    }
}

/// `OUT_DIR/help.rs`: `fn help(name: &[u8]) -> Option<&'static str>`.
fn write_help(out: &Path) {
    let man = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../man");
    let mut code =
        String::from("fn help(name: &[u8]) -> Option<&'static str> {\n    Some(match name {\n");
    for name in PROGRAMS {
        let page = man.join(format!("{name}.8"));
        println!("cargo:rerun-if-changed={}", page.display());
        let text = std::fs::read_to_string(&page).unwrap_or_default();
        let help = render_help(name, &text);
        code.push_str(&format!("        b{name:?} => {help:?},\n"));
    }
    code.push_str("        _ => return None,\n    })\n}\n");
    if let Err(e) = std::fs::write(out.join("help.rs"), code) {
        println!("cargo:warning=unable to write help.rs: {e}");
    }
}

/// "usage: SYNOPSIS\n\nDESCRIPTION-LINE\n\nSee man 8 NAME.\n" from a man page's source.
fn render_help(name: &str, page: &str) -> String {
    let mut section = "";
    let mut what = String::new();
    let mut synopsis = String::new();
    for line in page.lines() {
        if let Some(h) = line.strip_prefix(".SH ") {
            section = if h.starts_with("NAME") {
                "name"
            } else if h.starts_with("SYNOPSIS") {
                "synopsis"
            } else {
                ""
            };
            continue;
        }
        match section {
            "name" => {
                if let Some((_, d)) = line.split_once("\\- ") {
                    what = d.trim().to_owned();
                }
            }
            "synopsis" => {
                let words = line
                    .strip_prefix(".RI ")
                    .map(|r| r.split(' ').collect::<Vec<_>>().concat())
                    .or_else(|| line.strip_prefix(".B ").map(str::to_owned))
                    .or_else(|| line.strip_prefix(".I ").map(str::to_owned))
                    .unwrap_or_else(|| line.to_owned());
                if words.starts_with('.') {
                    if words.starts_with(".br") || words.starts_with(".PP") {
                        synopsis.push_str("\n       ");
                    }
                    continue;
                }
                let words = words.replace("\\-", "-").replace("\\|", "");
                let glue = matches!(synopsis.chars().last(), None | Some('[' | ' ' | '\n'))
                    || words.starts_with(']');
                if !glue {
                    synopsis.push(' ');
                }
                synopsis.push_str(&words);
            }
            _ => {}
        }
    }
    let synopsis = synopsis.replace("[ ", "[").replace(" ]", "]");
    let synopsis = if synopsis.is_empty() {
        name.to_owned()
    } else {
        synopsis
    };
    format!("usage: {synopsis}\n\n{name}: {what}\n\nSee man 8 {name} for options and exit codes.\n")
}
