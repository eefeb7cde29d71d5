//! The harness of tripline's end-to-end test (`tests/pipeline.rs`): the real Lambda binaries
//! run under `cargo lambda watch` ([`watch`]), talk to a moto server
//! (`tripline_aws::testing::MotoServer`) through `AWS_ENDPOINT_URL`, and deliver to a local
//! HTTP server standing in for Slack, the webhook, PagerDuty, Splunk HEC and an SNS HTTP
//! subscription ([`receiver`]).

pub mod receiver;
pub mod watch;

use std::path::PathBuf;

pub use receiver::{Receiver, Request};
pub use watch::{Invocation, Watch};

/// The repository root (two levels above this crate).
pub fn repo_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.join("../..").canonicalize().unwrap_or(here)
}

/// `${VENV:-<repo>/.venv}`, where `scripts/test` installs the Python test tools
/// (`moto_server`, `cargo-lambda`) from `requirements-test.txt`.
pub fn venv() -> PathBuf {
    std::env::var_os("VENV")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv"))
}

/// `<venv>/bin/cargo-lambda`.
pub fn cargo_lambda_path() -> PathBuf {
    venv().join("bin/cargo-lambda")
}
