//! The IAM actions behind each adapter in this crate: the one table the deployment's role
//! policies are checked against.
//!
//! The functions make no AWS call of their own: every call goes through an adapter here
//! ([`crate::s3io`] behind the object store, [`crate::sns`], [`crate::settings`]). So a
//! function's permissions follow from what it does: its rows of
//! `tripline_core::layout::ACCESS` (an object-store [`Op`] on an area of the bucket, made
//! through the adapters [`store_adapters`] names) and its [`FUNCTION_ADAPTERS`]. [`ADAPTERS`]
//! says, for each adapter, which actions it needs and on what. The infra check (`tests/infra`,
//! package `tripline-infra-check`) takes the union of those actions per function and compares
//! it with the actions and resources of that function's role policy in
//! `infra/modules/tripline`, both ways.
//!
//! When an adapter starts making another API call, add the operation to [`OPERATIONS`] and to
//! the adapter's [`Adapter::operations`]; the infra check fails until the table and the
//! Terraform agree again.

/// IAM action names, one constant each.
pub mod action {
    /// GetObject and HeadObject.
    pub const S3_GET_OBJECT: &str = "s3:GetObject";
    /// PutObject, and CreateMultipartUpload / UploadPart / CompleteMultipartUpload, which IAM
    /// authorizes as `s3:PutObject` too. A conditional put (`If-None-Match: *`) needs nothing
    /// more.
    pub const S3_PUT_OBJECT: &str = "s3:PutObject";
    /// AbortMultipartUpload: its own action, not covered by `s3:PutObject`.
    pub const S3_ABORT_MULTIPART_UPLOAD: &str = "s3:AbortMultipartUpload";
    /// ListBucket on the bucket: without it S3 answers a GetObject/HeadObject of a missing key
    /// with 403 AccessDenied instead of 404 NoSuchKey.
    pub const S3_LIST_BUCKET: &str = "s3:ListBucket";
    /// SNS Publish.
    pub const SNS_PUBLISH: &str = "sns:Publish";
    /// SSM GetParameter (with decryption; the key's `kms:Decrypt` comes on top).
    pub const SSM_GET_PARAMETER: &str = "ssm:GetParameter";
    /// Secrets Manager GetSecretValue.
    pub const SECRETSMANAGER_GET_SECRET_VALUE: &str = "secretsmanager:GetSecretValue";
}

use action::*;
use tripline_core::layout::Op;

/// What an action is granted on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum On {
    /// The object key the adapter is called with (`arn:…:s3:::<bucket>/<key>`).
    Object,
    /// The bucket itself (`arn:…:s3:::<bucket>`).
    Bucket,
    /// The SNS topic published to.
    Topic,
    /// The SSM parameter a `_PARAM` variable names.
    SsmParameter,
    /// The Secrets Manager secret a `_PARAM` variable names.
    Secret,
}

/// When an adapter needs an action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum When {
    /// Whenever the adapter is called.
    Always,
    /// Only when some `_PARAM` variable names an SSM parameter (a name, or an `arn:…:ssm:` ARN).
    SsmReference,
    /// Only when some `_PARAM` variable names a Secrets Manager secret (an
    /// `arn:…:secretsmanager:` ARN or `secretsmanager:<id>`).
    SecretsManagerReference,
}

/// One permission an adapter needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Need {
    /// The IAM action.
    pub action: &'static str,
    /// What it is granted on.
    pub on: On,
    /// When it is needed.
    pub when: When,
}

const fn need(action: &'static str, on: On) -> Need {
    Need {
        action,
        on,
        when: When::Always,
    }
}

/// An adapter and the permissions it needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Adapter {
    /// Its path in this crate, for messages and docs.
    pub path: &'static str,
    /// How a call looks in source (`get_object_reader(`, `S3Writer::new(`), to find the
    /// callers by search. No check reads the functions' source: what they call follows from
    /// `tripline_core::layout::ACCESS` and [`FUNCTION_ADAPTERS`].
    pub call: &'static str,
    /// The API operations it makes (service prefix and operation, as in [`OPERATIONS`]).
    pub operations: &'static [&'static str],
    /// The permissions those operations need, plus [`action::S3_LIST_BUCKET`] where a missing
    /// key must read as "not there".
    pub needs: &'static [Need],
}

/// Every adapter that calls AWS, with what it needs.
///
/// | adapter | operations | IAM |
/// | --- | --- | --- |
/// | `s3io::get_object_reader` | GetObject | `s3:GetObject` on the key, `s3:ListBucket` on the bucket (a missing object is `NotFound`, not `AccessDenied`) |
/// | `s3io::get_object_reader_at` | GetObject with `Range` and `If-Match` | `s3:GetObject` on the key, `s3:ListBucket` on the bucket |
/// | `s3io::get_object_bytes` | GetObject | `s3:GetObject` on the key, `s3:ListBucket` on the bucket |
/// | `s3io::object_exists` | HeadObject | `s3:GetObject` on the key, `s3:ListBucket` on the bucket (404 for a missing key, not 403) |
/// | `s3io::S3Writer` | PutObject or Create/UploadPart/Complete/AbortMultipartUpload | `s3:PutObject`, `s3:AbortMultipartUpload` on the key |
/// | `s3io::put_object` | PutObject | `s3:PutObject` on the key |
/// | `s3io::put_if_absent` | PutObject `If-None-Match: *` | `s3:PutObject` on the key |
/// | `s3io::list_keys` | ListObjectsV2 (as many pages as asked for) | `s3:ListBucket` on the bucket |
/// | `sns::publish` | Publish | `sns:Publish` on the topic |
/// | `settings::Destinations::resolve` | GetParameter / GetSecretValue | `ssm:GetParameter` on each parameter a `_PARAM` names, `secretsmanager:GetSecretValue` on each secret one names |
///
/// Every permission also needs `kms:Decrypt` / `kms:GenerateDataKey` when the data is encrypted
/// with a customer-managed key; that is infrastructure, granted per key, not per call.
pub const ADAPTERS: &[Adapter] = &[
    Adapter {
        path: "s3io::get_object_reader",
        call: "get_object_reader(",
        operations: &["s3:GetObject"],
        needs: &[
            need(S3_GET_OBJECT, On::Object),
            need(S3_LIST_BUCKET, On::Bucket),
        ],
    },
    Adapter {
        path: "s3io::get_object_reader_at",
        call: "get_object_reader_at(",
        operations: &["s3:GetObject"],
        needs: &[
            need(S3_GET_OBJECT, On::Object),
            need(S3_LIST_BUCKET, On::Bucket),
        ],
    },
    Adapter {
        path: "s3io::get_object_bytes",
        call: "get_object_bytes(",
        operations: &["s3:GetObject"],
        needs: &[
            need(S3_GET_OBJECT, On::Object),
            need(S3_LIST_BUCKET, On::Bucket),
        ],
    },
    Adapter {
        path: "s3io::object_exists",
        call: "object_exists(",
        operations: &["s3:HeadObject"],
        needs: &[
            need(S3_GET_OBJECT, On::Object),
            need(S3_LIST_BUCKET, On::Bucket),
        ],
    },
    Adapter {
        path: "s3io::S3Writer",
        call: "S3Writer::new(",
        operations: &[
            "s3:PutObject",
            "s3:CreateMultipartUpload",
            "s3:UploadPart",
            "s3:CompleteMultipartUpload",
            "s3:AbortMultipartUpload",
        ],
        needs: &[
            need(S3_PUT_OBJECT, On::Object),
            need(S3_ABORT_MULTIPART_UPLOAD, On::Object),
        ],
    },
    Adapter {
        path: "s3io::put_object",
        call: "put_object(",
        operations: &["s3:PutObject"],
        needs: &[need(S3_PUT_OBJECT, On::Object)],
    },
    Adapter {
        path: "s3io::put_if_absent",
        call: "put_if_absent(",
        operations: &["s3:PutObject"],
        needs: &[need(S3_PUT_OBJECT, On::Object)],
    },
    Adapter {
        path: "s3io::list_keys",
        call: "list_keys(",
        operations: &["s3:ListObjectsV2"],
        needs: &[need(S3_LIST_BUCKET, On::Bucket)],
    },
    Adapter {
        path: "sns::publish",
        call: "publish(",
        operations: &["sns:Publish"],
        needs: &[need(SNS_PUBLISH, On::Topic)],
    },
    Adapter {
        path: "settings::Destinations::resolve",
        call: "resolve(",
        operations: &["ssm:GetParameter", "secretsmanager:GetSecretValue"],
        needs: &[
            Need {
                action: SSM_GET_PARAMETER,
                on: On::SsmParameter,
                when: When::SsmReference,
            },
            Need {
                action: SECRETSMANAGER_GET_SECRET_VALUE,
                on: On::Secret,
                when: When::SecretsManagerReference,
            },
        ],
    },
];

/// The API operations the adapters make, as `service:Operation`, with the SDK method that makes
/// each (for a source check) and the IAM action that authorizes it.
pub const OPERATIONS: &[(&str, &str, &str)] = &[
    ("s3:GetObject", "get_object", S3_GET_OBJECT),
    ("s3:HeadObject", "head_object", S3_GET_OBJECT),
    ("s3:ListObjectsV2", "list_objects_v2", S3_LIST_BUCKET),
    ("s3:PutObject", "put_object", S3_PUT_OBJECT),
    (
        "s3:CreateMultipartUpload",
        "create_multipart_upload",
        S3_PUT_OBJECT,
    ),
    ("s3:UploadPart", "upload_part", S3_PUT_OBJECT),
    (
        "s3:CompleteMultipartUpload",
        "complete_multipart_upload",
        S3_PUT_OBJECT,
    ),
    (
        "s3:AbortMultipartUpload",
        "abort_multipart_upload",
        S3_ABORT_MULTIPART_UPLOAD,
    ),
    ("sns:Publish", "publish", SNS_PUBLISH),
    ("ssm:GetParameter", "get_parameter", SSM_GET_PARAMETER),
    (
        "secretsmanager:GetSecretValue",
        "get_secret_value",
        SECRETSMANAGER_GET_SECRET_VALUE,
    ),
];

/// The adapters behind each object-store operation: [`crate::store::S3Store`] makes each
/// [`Op`] through exactly these, so a function's S3 permissions follow from the rows of
/// `tripline_core::layout::ACCESS` that name it.
pub fn store_adapters(op: Op) -> &'static [&'static str] {
    match op {
        Op::Read => &[
            "s3io::get_object_reader",
            "s3io::get_object_reader_at",
            "s3io::get_object_bytes",
        ],
        Op::Exists => &["s3io::object_exists"],
        Op::Put => &["s3io::put_object"],
        Op::PutIfAbsent => &["s3io::put_if_absent"],
        Op::Write => &["s3io::S3Writer"],
        Op::List => &["s3io::list_keys"],
    }
}

/// The adapters each function calls besides its object store: notify publishes to SNS and
/// resolves its `_PARAM` secrets at cold start.
pub const FUNCTION_ADAPTERS: &[(&str, &[&str])] = &[
    ("parse", &[]),
    ("detect", &[]),
    (
        "notify",
        &["sns::publish", "settings::Destinations::resolve"],
    ),
];

/// The adapter whose [`Adapter::path`] is `path`.
pub fn adapter(path: &str) -> Option<&'static Adapter> {
    ADAPTERS.iter().find(|a| a.path == path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// Each adapter's actions are exactly those of its operations (plus ListBucket where a
    /// missing key must answer 404).
    #[test]
    fn needs_follow_from_operations() {
        for a in ADAPTERS {
            let from_ops: BTreeSet<&str> = a
                .operations
                .iter()
                .map(|op| {
                    OPERATIONS
                        .iter()
                        .find(|(o, _, _)| o == op)
                        .unwrap_or_else(|| panic!("{}: operation {op} not in OPERATIONS", a.path))
                        .2
                })
                .collect();
            let needs: BTreeSet<&str> = a.needs.iter().map(|n| n.action).collect();
            // ListBucket may come on top of a read: it turns a missing key's 403 into 404.
            let extra: Vec<&&str> = needs.difference(&from_ops).collect();
            assert!(
                from_ops.is_subset(&needs) && extra.iter().all(|x| **x == S3_LIST_BUCKET),
                "{}: operations need {from_ops:?}, the adapter says {needs:?}",
                a.path
            );
        }
    }

    #[test]
    fn store_and_function_adapters_exist() {
        let ops = [Op::Read, Op::Exists, Op::Put, Op::PutIfAbsent, Op::Write];
        for path in ops.into_iter().flat_map(store_adapters) {
            assert!(adapter(path).is_some(), "{path}");
        }
        for (_, paths) in FUNCTION_ADAPTERS {
            for path in *paths {
                assert!(adapter(path).is_some(), "{path}");
            }
        }
    }

    #[test]
    fn paths_and_calls_are_unique() {
        let paths: BTreeSet<_> = ADAPTERS.iter().map(|a| a.path).collect();
        let calls: BTreeSet<_> = ADAPTERS.iter().map(|a| a.call).collect();
        assert_eq!(paths.len(), ADAPTERS.len());
        assert_eq!(calls.len(), ADAPTERS.len());
        assert!(adapter("s3io::S3Writer").is_some());
    }
}
