//! `tripline-notify` on AWS Lambda (S3 ObjectCreated on the alerts prefix).

use std::time::Instant;

use lambda_runtime::{service_fn, Diagnostic, Error, LambdaEvent};
use serde_json::Value;
use tripline_aws::{clients, logging, S3Store, Settings};
use tripline_notify::{destinations, metrics, Invocation, Notify};

// mimalloc instead of glibc malloc: decoding and detection allocate many small, short-lived
// values, which it serves faster (BENCHMARKS.md). `no_thp`: no transparent huge pages, which
// would otherwise inflate resident memory.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The time budget's base when the runtime sends no usable deadline (an emulator): the
/// function's default timeout (`notify_timeout_seconds` in Terraform, the crate's
/// `package.metadata.lambda.deploy`).
const EMULATOR_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

#[tokio::main]
async fn main() -> Result<(), Error> {
    logging::init_json_logs();
    let config = clients::load_config().await;
    let settings = Settings::from_env()?;
    // Secrets are resolved once per container, never logged.
    let resolved = settings
        .destinations
        .clone()
        .resolve(&clients::ssm(&config), &clients::secrets_manager(&config))
        .await?;
    let destinations = destinations(resolved, || clients::sns(&config))?;
    tracing::info!(destinations = ?destinations.iter().map(|d| d.name()).collect::<Vec<_>>(), "notify ready");
    let notify = Notify::new(S3Store::new(clients::s3(&config)), settings, destinations)?;
    let notify = &notify;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let started = Instant::now();
        // Claims carry the request id, which Lambda keeps across an async event's retries;
        // every send ends within the deadline.
        let invocation = Invocation::with_deadline_ms(
            &event.context.request_id,
            event.context.deadline,
            EMULATOR_TIMEOUT,
        );
        tracing::info!(request_id = %invocation.id, budget_ms = invocation.budget().as_millis() as u64, "invoked");
        let report = notify
            .handle(&event.payload, &invocation)
            .await
            .map_err(|e| {
                // Lambda retries either way; `errorType` and the log say whether it can help.
                let kind = tripline_aws::kind_of(&*e).unwrap_or("Failed");
                let retryable = tripline_aws::retry_of(&*e) == tripline_aws::Retry::Transient;
                tracing::error!(error = format!("{e:#}"), kind, retryable, "notify failed");
                Diagnostic {
                    error_type: kind.into(),
                    error_message: format!("{e:#}"),
                }
            })?;
        println!(
            "{}",
            metrics(&report, started.elapsed().as_secs_f64() * 1e3)
        );
        let report = report.into_result().map_err(|e| Diagnostic {
            error_type: "DestinationFailed".into(),
            error_message: format!("{e:#}"),
        })?;
        serde_json::to_value(&report).map_err(|e| Diagnostic {
            error_type: "Failed".into(),
            error_message: e.to_string(),
        })
    }))
    .await
}
