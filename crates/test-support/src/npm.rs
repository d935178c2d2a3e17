//! The npm projects of the chain tests (`tests/chains/*`): installed with `npm ci` from their
//! committed lock files, once per lock file, one install at a time across test threads and
//! test binaries.

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};

/// Whether the tests run under CI (`CI=true`), where a missing runtime fails instead of
/// skipping.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Runs `npm ci` in `dir` unless `node_modules` already holds the install of its committed
/// `package-lock.json` (a marker file records which). Callers take turns on an exclusive lock
/// of `dir/.npm-install.lock`. `Err` says why (Node.js or npm missing, the install failed).
pub fn npm_ci(dir: &Path) -> Result<(), String> {
    for tool in ["node", "npm"] {
        let ok = Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return Err(format!(
                "{tool} not found: install Node.js and npm (Debian: apt-get install nodejs npm)"
            ));
        }
    }
    let lock_path = dir.join(".npm-install.lock");
    let lock = File::create(&lock_path)
        .map_err(|e| format!("cannot create {}: {e}", lock_path.display()))?;
    lock.lock()
        .map_err(|e| format!("cannot lock {}: {e}", lock_path.display()))?;
    let wanted = std::fs::read_to_string(dir.join("package-lock.json"))
        .map_err(|e| format!("cannot read {}/package-lock.json: {e}", dir.display()))?;
    let marker = dir.join("node_modules/.tessera-installed");
    if std::fs::read_to_string(&marker).is_ok_and(|have| have == wanted) {
        return Ok(());
    }
    eprintln!("npm ci in {}", dir.display());
    let out = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run npm: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "npm ci in {} failed ({}): {}",
            dir.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    std::fs::write(&marker, wanted).map_err(|e| format!("cannot write {}: {e}", marker.display()))
}
