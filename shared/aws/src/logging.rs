//! Structured logs for the Lambda functions: one JSON object per line, which CloudWatch
//! Logs Insights can query field by field. `RUST_LOG` filters (default `info`).

/// Installs the JSON `tracing` subscriber. Call once, first thing in `main`.
pub fn init_json_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_span_list(false)
        .with_ansi(false)
        .with_target(false)
        .flatten_event(true)
        .try_init();
}
