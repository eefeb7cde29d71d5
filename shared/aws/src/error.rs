//! One error type for the adapters.
//!
//! SDK errors are flattened into [`Error::Aws`] with the service's error code and the HTTP status
//! kept apart, because callers branch on them (`NoSuchKey`, 412) and the logs want the whole
//! chain as text (the SDK's own `Display` says little more than "service error").

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// Errors from the AWS adapters.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An AWS API call failed.
    #[error("{context}: {message}")]
    Aws {
        /// What was being done, e.g. `GetObject s3://bucket/key`.
        context: String,
        /// The service's error code (`NoSuchKey`, `PreconditionFailed`, ...), when it sent one.
        code: Option<String>,
        /// The HTTP status, when a response arrived at all.
        status: Option<u16>,
        /// The whole error chain, as text.
        message: String,
    },
    /// Reading or writing a stream failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The Lambda event is not an S3 event notification (directly, or through SQS/SNS).
    #[error("malformed S3 event: {0}")]
    Event(String),
    /// An environment variable is missing, malformed or ambiguous.
    #[error("settings: {0}")]
    Settings(String),
    /// An argument the adapters cannot send (e.g. an SNS attribute type SNS does not know).
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// A `_PARAM` secret could not be resolved; the message names the variable and the
    /// parameter, never the value.
    #[error("resolving {var}: {message}")]
    Secret {
        /// The `..._PARAM` variable being resolved.
        var: String,
        /// What went wrong.
        message: String,
    },
}

impl Error {
    /// The service's error code, for [`Error::Aws`].
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Aws { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// The HTTP status, for [`Error::Aws`] that got a response.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Aws { status, .. } => *status,
            _ => None,
        }
    }

    /// Whether the object (or parameter, or secret) does not exist: a 404 or a `NoSuchKey`,
    /// `NotFound`, `ParameterNotFound` or `ResourceNotFoundException` code.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self.code(),
            Some("NoSuchKey" | "NotFound" | "ParameterNotFound" | "ResourceNotFoundException")
        ) || self.status() == Some(404)
    }

    pub(crate) fn aws<E>(context: impl Into<String>, err: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let code = err.code().map(str::to_owned);
        let status = err.raw_response().map(|r| r.status().as_u16());
        let message = DisplayErrorContext(&err).to_string();
        Error::Aws {
            context: context.into(),
            code,
            status,
            message,
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
