//! Records the git revision the binary was built from, for `vigil version` and
//! `/api/v1/version`. Builds outside a git checkout report `unknown`.

use std::path::Path;
use std::process::Command;

fn main() {
    let sha = std::env::var("VIGIL_GIT_SHA").ok().filter(|s| !s.is_empty()).or_else(|| {
        let out = Command::new("git").args(["rev-parse", "--short=12", "HEAD"]).output().ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    });
    println!("cargo:rustc-env=VIGIL_GIT_SHA={}", sha.unwrap_or_else(|| "unknown".to_owned()));
    println!("cargo:rerun-if-env-changed=VIGIL_GIT_SHA");
    for path in ["../../.git/HEAD", "../../.git/refs/heads"] {
        if Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}
