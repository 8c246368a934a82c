//! Makes each program name a link to the `vigil` executable beside where cargo puts it
//! (`target/<profile>/svscan -> vigil`), so `cargo build` gives runnable `svscan`, `svc`, …
//! exactly as an installed tree has them. Only that directory is touched.

use std::path::Path;

include!("src/programs.rs");

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/programs.rs");
    let Some(out) = std::env::var_os("OUT_DIR") else {
        return;
    };
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
