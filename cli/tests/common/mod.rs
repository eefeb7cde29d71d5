//! What the CLI's integration tests share: the repository, fresh temporary folders and the
//! binary run from the repository root. Each test binary uses some of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root (the binary runs there, so sample paths are relative to it).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A new empty folder of its own, named for `tag`, the process and the time.
pub fn tempdir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "tripline-{tag}-test-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `tripline args` in the repository and requires it to succeed.
pub fn tripline_ok(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_tripline"))
        .args(args)
        .current_dir(repo())
        .output()
        .expect("run tripline");
    assert!(
        out.status.success(),
        "tripline {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
