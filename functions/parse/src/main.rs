//! `tripline-parse` on AWS Lambda (S3 ObjectCreated on the raw prefix).

use std::time::Instant;

use lambda_runtime::{service_fn, Diagnostic, Error, LambdaEvent};
use serde_json::Value;
use tripline_aws::{clients, lambda, logging, S3Store, Settings};
use tripline_parse::{metrics, stage_options, Parse};

// mimalloc instead of glibc malloc: decoding and detection allocate many small, short-lived
// values, which it serves faster (BENCHMARKS.md). `no_thp`: no transparent huge pages, which
// would otherwise inflate resident memory.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    logging::init_json_logs();
    let config = clients::load_config().await;
    let parse = Parse {
        store: S3Store::new(clients::s3(&config)),
        settings: Settings::from_env()?,
        // Inflate and deflate on threads of their own only with more than one vCPU.
        options: stage_options(lambda::parallelism_here())?,
    };
    let parse = &parse;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let started = Instant::now();
        let report = parse.handle(&event.payload).await.map_err(|e| {
            // Lambda retries either way; `errorType` and the log say whether it can help.
            let kind = tripline_aws::kind_of(&*e).unwrap_or("Failed");
            let retryable = tripline_aws::retry_of(&*e) == tripline_aws::Retry::Transient;
            tracing::error!(error = format!("{e:#}"), kind, retryable, "parse failed");
            Diagnostic {
                error_type: kind.into(),
                error_message: format!("{e:#}"),
            }
        })?;
        println!(
            "{}",
            metrics(&report, started.elapsed().as_secs_f64() * 1e3)
        );
        serde_json::to_value(&report).map_err(|e| Diagnostic {
            error_type: "Failed".into(),
            error_message: e.to_string(),
        })
    }))
    .await
}
