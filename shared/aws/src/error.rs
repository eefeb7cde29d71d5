//! One error type for the adapters.
//!
//! SDK errors are flattened into [`Error::Aws`] with the service's error code and the HTTP status
//! kept apart, because callers branch on them (`NoSuchKey`, 412), and a one-line message: the
//! code and the service's own message, or the kind of transport failure. The SDK's whole error
//! chain (a kilobyte or more, with the raw response) goes to the debug log only, so an error
//! line and a Lambda `errorMessage` stay short and say what happened.

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
        /// One line: the service's code and message, or the transport failure.
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
        let context = context.into();
        let code = err.code().map(str::to_owned);
        let status = err.raw_response().map(|r| r.status().as_u16());
        tracing::debug!(%context, error = %DisplayErrorContext(&err), "AWS call failed");
        let message = match (&err, err.message()) {
            (SdkError::TimeoutError(_), _) => "timed out".to_owned(),
            (SdkError::ServiceError(_), Some(m)) if !m.is_empty() => match &code {
                Some(code) => one_line(&format!("{code}: {m}")),
                None => one_line(m),
            },
            (SdkError::ServiceError(_), _) => match &code {
                Some(code) => format!("{code} (HTTP {})", status.unwrap_or(0)),
                None => format!("HTTP {}", status.unwrap_or(0)),
            },
            // Dispatch, response and construction failures: the chain's innermost cause (a
            // refused connection, a DNS failure) is the useful part.
            _ => one_line(&innermost(&err)),
        };
        Error::Aws {
            context,
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

/// At most 200 characters of `text`, on one line.
fn one_line(text: &str) -> String {
    let mut line: String = text.chars().take(200).collect();
    if text.chars().nth(200).is_some() {
        line.push('…');
    }
    line.replace(['\n', '\r'], " ")
}

/// The innermost source of an error's chain, as text (the error itself if it has none).
fn innermost(err: &(dyn std::error::Error + 'static)) -> String {
    let mut e = err;
    while let Some(source) = e.source() {
        e = source;
    }
    e.to_string()
}

/// Whether Lambda should retry after an error: a throttle, a 5xx, a timeout or a dropped
/// connection may pass; a missing object, a missing bucket, a denied access or a malformed
/// event will fail the same way every time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// Retrying may succeed.
    Transient,
    /// Retrying will fail the same way.
    Permanent,
}

/// Service error codes that say "slow down or try again", whatever the status.
const TRANSIENT_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "SlowDown",
    "RequestTimeout",
    "RequestTimeoutException",
    "InternalError",
    "ServiceUnavailable",
    "ConditionalRequestConflict",
];

impl Error {
    /// Whether retrying the operation may succeed (see [`Retry`]). An AWS error without a
    /// response (dispatch failure, timeout) and every stream error is transient; a 4xx other
    /// than 408 and 429 is permanent; so are malformed events, bad settings, invalid arguments
    /// and unresolvable secrets.
    pub fn retry(&self) -> Retry {
        match self {
            Error::Aws { code, status, .. } => {
                let transient = code
                    .as_deref()
                    .is_some_and(|c| TRANSIENT_CODES.contains(&c))
                    || match status {
                        None => true,
                        Some(s) => *s == 408 || *s == 429 || *s >= 500,
                    };
                if transient {
                    Retry::Transient
                } else {
                    Retry::Permanent
                }
            }
            Error::Io { .. } => Retry::Transient,
            Error::Event(_) | Error::Settings(_) | Error::Invalid(_) | Error::Secret { .. } => {
                Retry::Permanent
            }
        }
    }

    /// `self.retry() == Retry::Transient`.
    pub fn retryable(&self) -> bool {
        self.retry() == Retry::Transient
    }
}

impl Error {
    /// A short name for the kind of failure, for Lambda's `errorType` (and so for the
    /// on-failure destination and its metrics): `NotFound` (a missing object or bucket),
    /// `AccessDenied`, `Throttled`, `AwsUnavailable` (5xx or no response), `AwsRejected`
    /// (another 4xx), `StreamFailed`, `Malformed` (an event that is not an S3 event),
    /// `Misconfigured` (settings), `Invalid`, `SecretUnavailable`.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Aws { code, status, .. } => {
                let code = code.as_deref().unwrap_or("");
                if matches!(code, "NoSuchKey" | "NoSuchBucket" | "NotFound") || *status == Some(404)
                {
                    "NotFound"
                } else if code == "AccessDenied" || *status == Some(403) {
                    "AccessDenied"
                } else if TRANSIENT_CODES.contains(&code) || matches!(status, Some(408 | 429)) {
                    "Throttled"
                } else if status.is_none_or(|s| s >= 500) {
                    "AwsUnavailable"
                } else {
                    "AwsRejected"
                }
            }
            Error::Io { .. } => "StreamFailed",
            Error::Event(_) => "Malformed",
            Error::Settings(_) => "Misconfigured",
            Error::Invalid(_) => "Invalid",
            Error::Secret { .. } => "SecretUnavailable",
        }
    }
}

/// [`Error::kind`] of the first [`Error`] in `err`'s source chain (also one carried inside an
/// `std::io::Error`), else `None`.
pub fn kind_of(err: &(dyn std::error::Error + 'static)) -> Option<&'static str> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(ours) = e.downcast_ref::<Error>() {
            return Some(ours.kind());
        }
        if let Some(ours) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<Error>())
        {
            return Some(ours.kind());
        }
        next = e.source();
    }
    None
}

/// The [`Retry`] of any error: that of the first [`Error`] in its source chain (also one
/// carried inside an `std::io::Error`, as [`crate::S3Writer`]'s writes carry it), else
/// [`Retry::Transient`], so an error nobody classified keeps Lambda's retries as they are.
/// For a function's `main.rs`: `retry_of(&*anyhow_error)`.
pub fn retry_of(err: &(dyn std::error::Error + 'static)) -> Retry {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(ours) = e.downcast_ref::<Error>() {
            return ours.retry();
        }
        if let Some(ours) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<Error>())
        {
            return ours.retry();
        }
        next = e.source();
    }
    Retry::Transient
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_name_the_failure_for_lambda() {
        let aws = |code: Option<&str>, status: Option<u16>| Error::Aws {
            context: "GetObject s3://b/k".into(),
            code: code.map(str::to_owned),
            status,
            message: "m".into(),
        };
        assert_eq!(aws(Some("NoSuchKey"), Some(404)).kind(), "NotFound");
        assert_eq!(aws(Some("NoSuchBucket"), Some(404)).kind(), "NotFound");
        assert_eq!(aws(None, Some(404)).kind(), "NotFound");
        assert_eq!(aws(Some("AccessDenied"), Some(403)).kind(), "AccessDenied");
        assert_eq!(aws(Some("SlowDown"), Some(503)).kind(), "Throttled");
        assert_eq!(aws(None, Some(429)).kind(), "Throttled");
        assert_eq!(aws(None, Some(500)).kind(), "AwsUnavailable");
        assert_eq!(aws(None, None).kind(), "AwsUnavailable");
        assert_eq!(
            aws(Some("InvalidArgument"), Some(400)).kind(),
            "AwsRejected"
        );
        assert_eq!(Error::Event("x".into()).kind(), "Malformed");
        assert_eq!(Error::Settings("x".into()).kind(), "Misconfigured");
        // Found through an io::Error and through a chain; nothing of ours: None.
        let io = std::io::Error::other(aws(Some("NoSuchKey"), Some(404)));
        assert_eq!(kind_of(&io), Some("NotFound"));
        let plain = std::io::Error::other("disk");
        assert_eq!(kind_of(&plain), None);
    }

    fn aws(code: Option<&str>, status: Option<u16>) -> Error {
        Error::Aws {
            context: "GetObject s3://b/k".into(),
            code: code.map(str::to_owned),
            status,
            message: "m".into(),
        }
    }

    #[test]
    fn missing_and_denied_are_permanent_throttles_and_outages_transient() {
        for (code, status) in [
            (Some("NoSuchKey"), Some(404)),
            (Some("NoSuchBucket"), Some(404)),
            (Some("AccessDenied"), Some(403)),
            (Some("InvalidArgument"), Some(400)),
            (None, Some(400)),
        ] {
            assert_eq!(aws(code, status).retry(), Retry::Permanent, "{code:?}");
        }
        for (code, status) in [
            (Some("SlowDown"), Some(503)),
            (Some("Throttling"), Some(400)),
            (Some("InternalError"), Some(500)),
            (None, Some(502)),
            (None, Some(429)),
            (Some("RequestTimeout"), Some(400)),
            (None, None),
        ] {
            assert_eq!(aws(code, status).retry(), Retry::Transient, "{code:?}");
        }
        let timeout = Error::io(
            "upload",
            std::io::Error::new(std::io::ErrorKind::TimedOut, "t"),
        );
        assert!(timeout.retryable());
        assert!(!Error::Event("e".into()).retryable());
        assert!(!Error::Settings("s".into()).retryable());
    }

    #[test]
    fn retry_of_finds_our_error_in_a_chain_and_inside_io_errors() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] Error);
        let denied = Outer(aws(Some("AccessDenied"), Some(403)));
        assert_eq!(retry_of(&denied), Retry::Permanent);
        let io = std::io::Error::other(aws(Some("NoSuchBucket"), Some(404)));
        assert_eq!(retry_of(&io), Retry::Permanent);
        let plain = std::io::Error::other("connection reset");
        assert_eq!(retry_of(&plain), Retry::Transient);
    }

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
