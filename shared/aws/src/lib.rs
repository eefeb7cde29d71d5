//! `tripline-aws`: the thin AWS layer under the tripline Lambda functions.
//!
//! Everything that talks to AWS lives here so the functions stay small and `tripline-core` stays
//! pure. Each module does one job:
//!
//! - [`settings`]: the functions' environment variables (pure parsing) and `_PARAM` secrets
//!   (SSM / Secrets Manager, resolved once at cold start).
//! - [`lambda`]: what the Lambda runtime sets (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`) and whether
//!   extra threads pay at that size ([`lambda::parallelism`]).
//! - [`clients`]: SDK clients from the default configuration chain; `AWS_ENDPOINT_URL` works
//!   (moto, LocalStack), with path-style S3 then.
//! - [`s3event`]: S3 event notifications (direct, via SQS or SNS, real AWS or moto shape) into
//!   `(bucket, key, size)`.
//! - [`s3io`]: streaming reads for the sync decoder, a multipart-capable `Write` sink,
//!   `If-None-Match` conditional puts, small gets and puts.
//! - [`store`]: the [`ObjectStore`] trait the handlers are generic over, on S3 ([`S3Store`],
//!   through [`s3io`]) and in memory for tests ([`MemStore`]: records accesses, injects faults).
//! - [`resume`]: a blocking reader over a listed object that resumes a cut read with a
//!   `Range` request on the same ETag (the CLI's `s3://` inputs).
//! - [`sns`]: Publish with sanitized subjects and message attributes.
//! - [`metrics`]: CloudWatch Embedded Metric Format lines.
//! - [`logging`]: JSON log lines through `tracing`.
//! - [`iam`]: the IAM actions each adapter needs, for checking the deployment's role policies.
//! - [`http`]: POSTs to alert destinations with jittered retries that honour `Retry-After`.
//! - `testing` (feature `testing`): a moto server per test, and real S3 events through SQS.
//!
//! The SDK is built with `default-features = false` and only the default HTTPS client and the
//! tokio runtime, so one TLS stack (rustls) is compiled in.

pub mod clients;
pub mod error;
pub mod http;
pub mod iam;
pub mod lambda;
pub mod logging;
pub mod metrics;
pub mod resume;
pub mod s3event;
pub mod s3io;
pub mod settings;
pub mod site;
pub mod sns;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;

pub use error::{kind_of, retry_of, Error, Result, Retry};
pub use resume::ResumingReader;
pub use s3event::ObjectRef;
pub use s3io::{get_object_reader, put_if_absent, ObjectReader, PutOutcome, S3Writer};
pub use settings::{Secret, Settings, ENV_VARS};
pub use store::{
    open, Listed, MemReader, MemStore, ObjectStore, ObjectWriter, S3Store, Unreadable,
};
