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

    /// A copy, for one failure that is reported more than once (by each failing
    /// [`std::io::Write::write`] of an [`crate::S3Writer`] and again by its `finish`). Every
    /// field is kept, except that an [`Error::Io`]'s source, which cannot be cloned, is rebuilt
    /// from its kind and text (all that the upload's own errors carry).
    pub(crate) fn duplicate(&self) -> Self {
        match self {
            Error::Aws {
                context,
                code,
                status,
                message,
            } => Error::Aws {
                context: context.clone(),
                code: code.clone(),
                status: *status,
                message: message.clone(),
            },
            Error::Io { context, source } => Error::Io {
                context: context.clone(),
                source: std::io::Error::new(source.kind(), source.to_string()),
            },
            Error::Event(m) => Error::Event(m.clone()),
            Error::Settings(m) => Error::Settings(m.clone()),
            Error::Invalid(m) => Error::Invalid(m.clone()),
            Error::Secret { var, message } => Error::Secret {
                var: var.clone(),
                message: message.clone(),
            },
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_duplicate_says_the_same_and_travels_inside_an_io_error() {
        let errors = [
            Error::Aws {
                context: "UploadPart 2 s3://b/k".into(),
                code: Some("NoSuchUpload".into()),
                status: Some(404),
                message: "service error".into(),
            },
            Error::io(
                "upload s3://b/k",
                std::io::Error::new(std::io::ErrorKind::TimedOut, "slow"),
            ),
            Error::Event("e".into()),
            Error::Settings("s".into()),
            Error::Invalid("i".into()),
            Error::Secret {
                var: "V_PARAM".into(),
                message: "m".into(),
            },
        ];
        for e in errors {
            let copy = e.duplicate();
            assert_eq!(format!("{copy:?}"), format!("{e:?}"));
            assert_eq!(copy.to_string(), e.to_string());
            let io = std::io::Error::other(copy);
            assert_eq!(io.to_string(), e.to_string());
            let back = io
                .downcast::<Error>()
                .expect("the typed error comes back out");
            assert_eq!((back.code(), back.status()), (e.code(), e.status()));
        }
    }
}
