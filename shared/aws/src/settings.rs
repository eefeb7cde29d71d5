//! The functions' settings, from environment variables.
//!
//! Parsing is pure ([`Settings::from_lookup`] takes any lookup function) so it is tested without
//! AWS or process-global state; only the secrets given as `..._PARAM` (an SSM parameter or a
//! Secrets Manager secret) need the network, and they are resolved separately and only by the
//! function that sends notifications ([`Destinations::resolve`]).
//!
//! [`ENV_VARS`] lists, per function, every variable it reads, so the deployment (Terraform) can be
//! checked against the code by a test instead of by eye.

use std::fmt;

use tripline_core::compress::Codec;
use tripline_core::layout::{self, Layout, Prefixes};

use crate::error::{Error, Result};

/// Variable names, one constant each so the code, [`ENV_VARS`] and tests cannot drift apart.
pub mod var {
    /// Output bucket; unset means "the bucket the triggering event came from".
    pub const BUCKET: &str = "TRIPLINE_BUCKET";
    /// Where Firehose writes raw osquery objects (default `raw/`).
    pub const RAW_PREFIX: &str = "TRIPLINE_RAW_PREFIX";
    /// Normalized NDJSON from `parse` (default `normalized/`).
    pub const NORMALIZED_PREFIX: &str = "TRIPLINE_NORMALIZED_PREFIX";
    /// Quarantined records from `parse` (default `quarantine/`).
    pub const QUARANTINE_PREFIX: &str = "TRIPLINE_QUARANTINE_PREFIX";
    /// Parse only: how normalized and quarantined NDJSON is compressed, `zstd` (default, key
    /// suffix `.ndjson.zst`) or `gzip` (`.ndjson.gz`). Detect reads either.
    pub const OUTPUT_COMPRESSION: &str = "TRIPLINE_OUTPUT_COMPRESSION";
    /// Alert JSON from `detect` (default `alerts/`).
    pub const ALERTS_PREFIX: &str = "TRIPLINE_ALERTS_PREFIX";
    /// Notify's claims, storm marks and delivery markers (default `state/`).
    pub const STATE_PREFIX: &str = "TRIPLINE_STATE_PREFIX";
    /// The site directory's files, read by detect and notify (default `config/`).
    pub const SITE_PREFIX: &str = "TRIPLINE_SITE_PREFIX";
    /// SNS topic for alert e-mail (not a secret).
    pub const SNS_TOPIC_ARN: &str = "TRIPLINE_SNS_TOPIC_ARN";
    /// Slack incoming-webhook URL (secret).
    pub const SLACK_WEBHOOK_URL: &str = "TRIPLINE_SLACK_WEBHOOK_URL";
    /// Generic webhook URL (secret).
    pub const WEBHOOK_URL: &str = "TRIPLINE_WEBHOOK_URL";
    /// HMAC key that signs webhook bodies (secret).
    pub const WEBHOOK_SECRET: &str = "TRIPLINE_WEBHOOK_SECRET";
    /// PagerDuty Events v2 routing key (secret).
    pub const PAGERDUTY_ROUTING_KEY: &str = "TRIPLINE_PAGERDUTY_ROUTING_KEY";
    /// PagerDuty Events v2 endpoint (not a secret; default the public one).
    pub const PAGERDUTY_URL: &str = "TRIPLINE_PAGERDUTY_URL";
    /// Splunk HTTP Event Collector URL (secret: it names internal infrastructure).
    pub const SPLUNK_HEC_URL: &str = "TRIPLINE_SPLUNK_HEC_URL";
    /// Splunk HEC token (secret).
    pub const SPLUNK_HEC_TOKEN: &str = "TRIPLINE_SPLUNK_HEC_TOKEN";
    /// Detect only: the rules' settings as inline TOML (the CLI's `tripline.toml`).
    pub const CONFIG: &str = "TRIPLINE_CONFIG";

    /// The `_PARAM` twins of the secret variables: an SSM parameter name/ARN, or a Secrets
    /// Manager ARN or `secretsmanager:<id>`.
    pub const SLACK_WEBHOOK_URL_PARAM: &str = "TRIPLINE_SLACK_WEBHOOK_URL_PARAM";
    /// See [`SLACK_WEBHOOK_URL_PARAM`].
    pub const WEBHOOK_URL_PARAM: &str = "TRIPLINE_WEBHOOK_URL_PARAM";
    /// See [`SLACK_WEBHOOK_URL_PARAM`].
    pub const WEBHOOK_SECRET_PARAM: &str = "TRIPLINE_WEBHOOK_SECRET_PARAM";
    /// See [`SLACK_WEBHOOK_URL_PARAM`].
    pub const PAGERDUTY_ROUTING_KEY_PARAM: &str = "TRIPLINE_PAGERDUTY_ROUTING_KEY_PARAM";
    /// See [`SLACK_WEBHOOK_URL_PARAM`].
    pub const SPLUNK_HEC_URL_PARAM: &str = "TRIPLINE_SPLUNK_HEC_URL_PARAM";
    /// See [`SLACK_WEBHOOK_URL_PARAM`].
    pub const SPLUNK_HEC_TOKEN_PARAM: &str = "TRIPLINE_SPLUNK_HEC_TOKEN_PARAM";
}

/// Default for [`var::RAW_PREFIX`].
pub const DEFAULT_RAW_PREFIX: &str = layout::DEFAULT_RAW_PREFIX;
/// Default for [`var::NORMALIZED_PREFIX`].
pub const DEFAULT_NORMALIZED_PREFIX: &str = layout::DEFAULT_NORMALIZED_PREFIX;
/// Default for [`var::QUARANTINE_PREFIX`].
pub const DEFAULT_QUARANTINE_PREFIX: &str = layout::DEFAULT_QUARANTINE_PREFIX;
/// Default for [`var::ALERTS_PREFIX`].
pub const DEFAULT_ALERTS_PREFIX: &str = layout::DEFAULT_ALERTS_PREFIX;
/// Default for [`var::STATE_PREFIX`].
pub const DEFAULT_STATE_PREFIX: &str = layout::DEFAULT_STATE_PREFIX;
/// Default for [`var::SITE_PREFIX`].
pub const DEFAULT_SITE_PREFIX: &str = layout::DEFAULT_SITE_PREFIX;
/// Default for [`var::PAGERDUTY_URL`].
pub const DEFAULT_PAGERDUTY_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// Variables the `parse` function reads.
pub const PARSE_ENV_VARS: &[&str] = &[
    var::BUCKET,
    var::RAW_PREFIX,
    var::NORMALIZED_PREFIX,
    var::QUARANTINE_PREFIX,
    var::OUTPUT_COMPRESSION,
];

/// Variables the `detect` function reads.
pub const DETECT_ENV_VARS: &[&str] = &[
    var::BUCKET,
    var::NORMALIZED_PREFIX,
    var::ALERTS_PREFIX,
    var::SITE_PREFIX,
    var::CONFIG,
];

/// Variables the `notify` function reads (each secret also as its `_PARAM` twin).
pub const NOTIFY_ENV_VARS: &[&str] = &[
    var::BUCKET,
    var::ALERTS_PREFIX,
    var::STATE_PREFIX,
    var::SITE_PREFIX,
    var::CONFIG,
    var::SNS_TOPIC_ARN,
    var::SLACK_WEBHOOK_URL,
    var::SLACK_WEBHOOK_URL_PARAM,
    var::WEBHOOK_URL,
    var::WEBHOOK_URL_PARAM,
    var::WEBHOOK_SECRET,
    var::WEBHOOK_SECRET_PARAM,
    var::PAGERDUTY_ROUTING_KEY,
    var::PAGERDUTY_ROUTING_KEY_PARAM,
    var::PAGERDUTY_URL,
    var::SPLUNK_HEC_URL,
    var::SPLUNK_HEC_URL_PARAM,
    var::SPLUNK_HEC_TOKEN,
    var::SPLUNK_HEC_TOKEN_PARAM,
];

/// Every variable each function reads, by function name (`parse`, `detect`, `notify`), for the
/// Terraform cross-check. [`Settings::from_lookup`] reads exactly the union of these (tested).
pub const ENV_VARS: &[(&str, &[&str])] = &[
    ("parse", PARSE_ENV_VARS),
    ("detect", DETECT_ENV_VARS),
    ("notify", NOTIFY_ENV_VARS),
];

/// A secret string. `Debug` and `Display` print `***`, so a secret that ends up in a log line or
/// an error message by accident is not leaked; [`Secret::expose`] is the one way to the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Where a secret setting comes from, before resolution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretSource {
    /// Given directly in the variable.
    Value(Secret),
    /// `..._PARAM` naming an SSM parameter (name or ARN), read with decryption.
    Ssm {
        /// The `_PARAM` variable, for error messages.
        var: &'static str,
        /// Parameter name or ARN.
        name: String,
    },
    /// `..._PARAM` naming a Secrets Manager secret (`arn:...:secretsmanager:...` or
    /// `secretsmanager:<name-or-arn>`).
    SecretsManager {
        /// The `_PARAM` variable, for error messages.
        var: &'static str,
        /// Secret id (name or ARN) as GetSecretValue takes it.
        id: String,
    },
}

impl SecretSource {
    /// Reads a secret from `name`, or from `name_PARAM` as a reference; both set is an error
    /// (which one wins would be a guess), empty counts as unset.
    fn from_lookup(
        lookup: &dyn Fn(&str) -> Option<String>,
        name: &'static str,
        param: &'static str,
    ) -> Result<Option<Self>> {
        let value = non_empty(lookup(name));
        let reference = non_empty(lookup(param)).map(|r| r.trim().to_owned());
        match (value, reference) {
            (Some(_), Some(_)) => Err(Error::Settings(format!(
                "set either {name} or {param}, not both"
            ))),
            (Some(v), None) => Ok(Some(SecretSource::Value(Secret(v)))),
            (None, Some(r)) => Ok(Some(Self::reference(param, r))),
            (None, None) => Ok(None),
        }
    }

    fn reference(var: &'static str, reference: String) -> Self {
        if let Some(id) = reference.strip_prefix("secretsmanager:") {
            SecretSource::SecretsManager {
                var,
                id: id.to_owned(),
            }
        } else if is_secretsmanager_arn(&reference) {
            SecretSource::SecretsManager { var, id: reference }
        } else {
            SecretSource::Ssm {
                var,
                name: reference,
            }
        }
    }

    /// Fetches the value (no call when it was given directly).
    pub async fn resolve(
        self,
        ssm: &aws_sdk_ssm::Client,
        secrets: &aws_sdk_secretsmanager::Client,
    ) -> Result<Secret> {
        match self {
            SecretSource::Value(v) => Ok(v),
            SecretSource::Ssm { var, name } => {
                let out = ssm
                    .get_parameter()
                    .name(&name)
                    .with_decryption(true)
                    .send()
                    .await
                    .map_err(|e| Error::Secret {
                        var: var.to_owned(),
                        message: Error::aws(format!("SSM GetParameter {name}"), e).to_string(),
                    })?;
                let value =
                    out.parameter()
                        .and_then(|p| p.value())
                        .ok_or_else(|| Error::Secret {
                            var: var.to_owned(),
                            message: format!("SSM parameter {name} has no value"),
                        })?;
                Ok(Secret(clean(value)))
            }
            SecretSource::SecretsManager { var, id } => {
                let out = secrets
                    .get_secret_value()
                    .secret_id(&id)
                    .send()
                    .await
                    .map_err(|e| Error::Secret {
                        var: var.to_owned(),
                        message: Error::aws(format!("Secrets Manager GetSecretValue {id}"), e)
                            .to_string(),
                    })?;
                if let Some(s) = out.secret_string() {
                    return Ok(Secret(clean(s)));
                }
                let binary = out.secret_binary().ok_or_else(|| Error::Secret {
                    var: var.to_owned(),
                    message: format!("secret {id} has neither SecretString nor SecretBinary"),
                })?;
                let s = std::str::from_utf8(binary.as_ref()).map_err(|_| Error::Secret {
                    var: var.to_owned(),
                    message: format!("secret {id} is binary and not UTF-8"),
                })?;
                Ok(Secret(clean(s)))
            }
        }
    }
}

/// Values pasted into a parameter from a file often carry a trailing newline, which would break
/// a URL or an Authorization header.
fn clean(value: &str) -> String {
    value.trim_end_matches(['\r', '\n']).to_owned()
}

fn is_secretsmanager_arn(s: &str) -> bool {
    // arn:<partition>:secretsmanager:<region>:<account>:secret:<name>
    let mut parts = s.splitn(4, ':');
    parts.next() == Some("arn") && parts.next().is_some() && parts.next() == Some("secretsmanager")
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.trim().is_empty())
}

/// Notification destinations. `S` is [`SecretSource`] as parsed and [`Secret`] once resolved,
/// so code that sends can only ever see resolved values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Destinations<S = Secret> {
    /// SNS topic ARN for e-mail.
    pub sns_topic_arn: Option<String>,
    /// Slack incoming-webhook URL.
    pub slack_webhook_url: Option<S>,
    /// Generic webhook URL.
    pub webhook_url: Option<S>,
    /// HMAC key for signing webhook bodies.
    pub webhook_secret: Option<S>,
    /// PagerDuty Events v2 routing key.
    pub pagerduty_routing_key: Option<S>,
    /// PagerDuty Events v2 endpoint.
    pub pagerduty_url: String,
    /// Splunk HEC URL.
    pub splunk_hec_url: Option<S>,
    /// Splunk HEC token.
    pub splunk_hec_token: Option<S>,
}

impl Destinations<SecretSource> {
    /// Whether any secret is a `_PARAM` reference (so SSM / Secrets Manager clients are needed).
    pub fn needs_resolution(&self) -> bool {
        self.secrets()
            .into_iter()
            .flatten()
            .any(|s| !matches!(s, SecretSource::Value(_)))
    }

    fn secrets(&self) -> [Option<&SecretSource>; 6] {
        [
            self.slack_webhook_url.as_ref(),
            self.webhook_url.as_ref(),
            self.webhook_secret.as_ref(),
            self.pagerduty_routing_key.as_ref(),
            self.splunk_hec_url.as_ref(),
            self.splunk_hec_token.as_ref(),
        ]
    }

    /// Resolves every `_PARAM` reference (SSM GetParameter with decryption, or Secrets Manager
    /// GetSecretValue). Call once at cold start; the values do not change per invocation.
    pub async fn resolve(
        self,
        ssm: &aws_sdk_ssm::Client,
        secrets: &aws_sdk_secretsmanager::Client,
    ) -> Result<Destinations<Secret>> {
        async fn one(
            s: Option<SecretSource>,
            ssm: &aws_sdk_ssm::Client,
            sm: &aws_sdk_secretsmanager::Client,
        ) -> Result<Option<Secret>> {
            match s {
                Some(s) => s.resolve(ssm, sm).await.map(Some),
                None => Ok(None),
            }
        }
        Ok(Destinations {
            sns_topic_arn: self.sns_topic_arn,
            slack_webhook_url: one(self.slack_webhook_url, ssm, secrets).await?,
            webhook_url: one(self.webhook_url, ssm, secrets).await?,
            webhook_secret: one(self.webhook_secret, ssm, secrets).await?,
            pagerduty_routing_key: one(self.pagerduty_routing_key, ssm, secrets).await?,
            pagerduty_url: self.pagerduty_url,
            splunk_hec_url: one(self.splunk_hec_url, ssm, secrets).await?,
            splunk_hec_token: one(self.splunk_hec_token, ssm, secrets).await?,
        })
    }
}

/// Settings shared by the three functions. Each function uses the fields it needs
/// (see [`ENV_VARS`]); parsing all of them everywhere keeps one code path and one set of checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Output bucket; `None` writes next to the input, in the event's bucket.
    pub bucket: Option<String>,
    /// Prefix of raw Firehose objects.
    pub raw_prefix: String,
    /// Prefix of normalized NDJSON objects.
    pub normalized_prefix: String,
    /// Prefix of quarantined records.
    pub quarantine_prefix: String,
    /// How `parse` compresses what it writes ([`var::OUTPUT_COMPRESSION`]).
    pub output_compression: Codec,
    /// Prefix of alert objects.
    pub alerts_prefix: String,
    /// Prefix of claims, storm marks and delivery markers.
    pub state_prefix: String,
    /// Prefix of the site directory's files.
    pub site_prefix: String,
    /// Notification destinations, secrets not yet resolved.
    pub destinations: Destinations<SecretSource>,
    /// `TRIPLINE_CONFIG`: the detection settings as TOML text (parsed by the detect function).
    pub config_toml: Option<String>,
}

impl Settings {
    /// Reads the process environment. Pure apart from reading it: no AWS calls.
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(&|name| std::env::var(name).ok())
    }

    /// Parses settings from any lookup (the environment, a map in tests).
    ///
    /// Unset prefixes take their defaults; a prefix set to the empty string means "no prefix".
    /// The six prefixes must not overlap (none may start with another): with one bucket and
    /// S3 notifications on each prefix, an overlap would feed a function its own output forever.
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self> {
        let prefix = |name: &str, default: &str| lookup(name).unwrap_or_else(|| default.to_owned());
        let settings = Settings {
            bucket: non_empty(lookup(var::BUCKET)).map(|b| b.trim().to_owned()),
            raw_prefix: prefix(var::RAW_PREFIX, DEFAULT_RAW_PREFIX),
            normalized_prefix: prefix(var::NORMALIZED_PREFIX, DEFAULT_NORMALIZED_PREFIX),
            quarantine_prefix: prefix(var::QUARANTINE_PREFIX, DEFAULT_QUARANTINE_PREFIX),
            output_compression: match non_empty(lookup(var::OUTPUT_COMPRESSION)) {
                None => Codec::default(),
                Some(name) => name.parse().map_err(|e: String| {
                    Error::Settings(format!("{}: {e}", var::OUTPUT_COMPRESSION))
                })?,
            },
            alerts_prefix: prefix(var::ALERTS_PREFIX, DEFAULT_ALERTS_PREFIX),
            state_prefix: prefix(var::STATE_PREFIX, DEFAULT_STATE_PREFIX),
            site_prefix: prefix(var::SITE_PREFIX, DEFAULT_SITE_PREFIX),
            destinations: Destinations {
                sns_topic_arn: non_empty(lookup(var::SNS_TOPIC_ARN)).map(|s| s.trim().to_owned()),
                slack_webhook_url: SecretSource::from_lookup(
                    lookup,
                    var::SLACK_WEBHOOK_URL,
                    var::SLACK_WEBHOOK_URL_PARAM,
                )?,
                webhook_url: SecretSource::from_lookup(
                    lookup,
                    var::WEBHOOK_URL,
                    var::WEBHOOK_URL_PARAM,
                )?,
                webhook_secret: SecretSource::from_lookup(
                    lookup,
                    var::WEBHOOK_SECRET,
                    var::WEBHOOK_SECRET_PARAM,
                )?,
                pagerduty_routing_key: SecretSource::from_lookup(
                    lookup,
                    var::PAGERDUTY_ROUTING_KEY,
                    var::PAGERDUTY_ROUTING_KEY_PARAM,
                )?,
                pagerduty_url: non_empty(lookup(var::PAGERDUTY_URL))
                    .map(|s| s.trim().to_owned())
                    .unwrap_or_else(|| DEFAULT_PAGERDUTY_URL.to_owned()),
                splunk_hec_url: SecretSource::from_lookup(
                    lookup,
                    var::SPLUNK_HEC_URL,
                    var::SPLUNK_HEC_URL_PARAM,
                )?,
                splunk_hec_token: SecretSource::from_lookup(
                    lookup,
                    var::SPLUNK_HEC_TOKEN,
                    var::SPLUNK_HEC_TOKEN_PARAM,
                )?,
            },
            config_toml: non_empty(lookup(var::CONFIG)),
        };
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<()> {
        let prefixes = [
            (var::RAW_PREFIX, &self.raw_prefix),
            (var::NORMALIZED_PREFIX, &self.normalized_prefix),
            (var::QUARANTINE_PREFIX, &self.quarantine_prefix),
            (var::ALERTS_PREFIX, &self.alerts_prefix),
            (var::STATE_PREFIX, &self.state_prefix),
            (var::SITE_PREFIX, &self.site_prefix),
        ];
        for (i, (a, pa)) in prefixes.iter().enumerate() {
            for (b, pb) in &prefixes[i + 1..] {
                if pa.starts_with(pb.as_str()) || pb.starts_with(pa.as_str()) {
                    return Err(Error::Settings(format!(
                        "{a}={pa:?} and {b}={pb:?} overlap; every prefix must be distinct and none may start with another"
                    )));
                }
            }
        }
        let pd = &self.destinations.pagerduty_url;
        if !(pd.starts_with("https://") || pd.starts_with("http://")) {
            return Err(Error::Settings(format!(
                "{}={pd:?} is not an http(s) URL",
                var::PAGERDUTY_URL
            )));
        }
        Ok(())
    }

    /// The key layout these settings describe: every key the functions read or write is
    /// spelled by it.
    pub fn layout(&self) -> Layout {
        let prefixes = Prefixes {
            raw: self.raw_prefix.clone(),
            normalized: self.normalized_prefix.clone(),
            quarantine: self.quarantine_prefix.clone(),
            alerts: self.alerts_prefix.clone(),
            state: self.state_prefix.clone(),
            site: self.site_prefix.clone(),
        };
        Layout::new(prefixes, self.output_compression)
    }

    /// The bucket to write to: [`Settings::bucket`] if set, else the event's bucket.
    pub fn output_bucket<'a>(&'a self, event_bucket: &'a str) -> &'a str {
        self.bucket.as_deref().unwrap_or(event_bucket)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::{BTreeMap, BTreeSet};

    fn parse(vars: &[(&str, &str)]) -> Result<Settings> {
        let map: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(&|k| map.get(k).cloned())
    }

    #[test]
    fn defaults() {
        let s = parse(&[]).unwrap();
        assert_eq!(s.bucket, None);
        assert_eq!(s.raw_prefix, "raw/");
        assert_eq!(s.normalized_prefix, "normalized/");
        assert_eq!(s.quarantine_prefix, "quarantine/");
        assert_eq!(s.alerts_prefix, "alerts/");
        assert_eq!(s.state_prefix, "state/");
        assert_eq!(s.output_compression, Codec::Zstd);
        assert_eq!(s.output_bucket("in"), "in");
        assert_eq!(s.layout(), Layout::default());
        let d = &s.destinations;
        assert_eq!(d.sns_topic_arn, None);
        assert_eq!(d.slack_webhook_url, None);
        assert_eq!(d.pagerduty_url, DEFAULT_PAGERDUTY_URL);
        assert!(!d.needs_resolution());
    }

    #[test]
    fn values_and_references() {
        let s = parse(&[
            (var::BUCKET, "out"),
            (var::RAW_PREFIX, "firehose/"),
            (
                var::SNS_TOPIC_ARN,
                "arn:aws:sns:us-east-1:123456789012:alerts",
            ),
            (
                var::SLACK_WEBHOOK_URL,
                "https://hooks.slack.com/services/T/B/X",
            ),
            (var::WEBHOOK_URL_PARAM, "/tripline/webhook-url"),
            (
                var::WEBHOOK_SECRET_PARAM,
                "arn:aws:ssm:us-east-1:123456789012:parameter/tripline/hmac",
            ),
            (
                var::PAGERDUTY_ROUTING_KEY_PARAM,
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:pd-AbCdEf",
            ),
            (var::SPLUNK_HEC_TOKEN_PARAM, "secretsmanager:tripline/hec"),
            (
                var::SPLUNK_HEC_URL_PARAM,
                " arn:aws-us-gov:secretsmanager:us-gov-west-1:1:secret:x ",
            ),
            (var::PAGERDUTY_URL, "http://127.0.0.1:9/enqueue"),
        ])
        .unwrap();
        assert_eq!(s.output_bucket("in"), "out");
        assert_eq!(s.raw_prefix, "firehose/");
        let d = &s.destinations;
        assert_eq!(
            d.sns_topic_arn.as_deref(),
            Some("arn:aws:sns:us-east-1:123456789012:alerts")
        );
        assert_eq!(
            d.slack_webhook_url,
            Some(SecretSource::Value(Secret::new(
                "https://hooks.slack.com/services/T/B/X"
            )))
        );
        assert_eq!(
            d.webhook_url,
            Some(SecretSource::Ssm {
                var: var::WEBHOOK_URL_PARAM,
                name: "/tripline/webhook-url".into()
            })
        );
        assert_eq!(
            d.webhook_secret,
            Some(SecretSource::Ssm {
                var: var::WEBHOOK_SECRET_PARAM,
                name: "arn:aws:ssm:us-east-1:123456789012:parameter/tripline/hmac".into()
            })
        );
        assert_eq!(
            d.pagerduty_routing_key,
            Some(SecretSource::SecretsManager {
                var: var::PAGERDUTY_ROUTING_KEY_PARAM,
                id: "arn:aws:secretsmanager:us-east-1:123456789012:secret:pd-AbCdEf".into()
            })
        );
        assert_eq!(
            d.splunk_hec_token,
            Some(SecretSource::SecretsManager {
                var: var::SPLUNK_HEC_TOKEN_PARAM,
                id: "tripline/hec".into()
            })
        );
        assert_eq!(
            d.splunk_hec_url,
            Some(SecretSource::SecretsManager {
                var: var::SPLUNK_HEC_URL_PARAM,
                id: "arn:aws-us-gov:secretsmanager:us-gov-west-1:1:secret:x".into()
            })
        );
        assert_eq!(d.pagerduty_url, "http://127.0.0.1:9/enqueue");
        assert!(d.needs_resolution());
    }

    #[test]
    fn empty_means_unset_for_values_and_no_prefix_for_prefixes() {
        let s = parse(&[
            (var::BUCKET, ""),
            (var::SLACK_WEBHOOK_URL, "  "),
            (var::RAW_PREFIX, ""),
            (var::NORMALIZED_PREFIX, "n/"),
            (var::QUARANTINE_PREFIX, "q/"),
            (var::ALERTS_PREFIX, "a/"),
            (var::STATE_PREFIX, "s/"),
        ]);
        // An empty raw prefix overlaps every other prefix.
        assert!(matches!(s, Err(Error::Settings(m)) if m.contains(var::RAW_PREFIX)));
        let s = parse(&[(var::BUCKET, ""), (var::SLACK_WEBHOOK_URL, "  ")]).unwrap();
        assert_eq!(s.bucket, None);
        assert_eq!(s.destinations.slack_webhook_url, None);
    }

    #[test]
    fn both_value_and_param_is_an_error() {
        let err = parse(&[
            (var::SPLUNK_HEC_TOKEN, "tok"),
            (var::SPLUNK_HEC_TOKEN_PARAM, "/p"),
        ])
        .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(var::SPLUNK_HEC_TOKEN_PARAM), "{msg}");
        assert!(!msg.contains("tok\""), "{msg}");
    }

    #[test]
    fn overlapping_prefixes_are_rejected() {
        let err = parse(&[(var::NORMALIZED_PREFIX, "raw/normalized/")]).unwrap_err();
        assert!(err.to_string().contains("overlap"), "{err}");
        assert!(parse(&[(var::ALERTS_PREFIX, "state/")]).is_err());
    }

    #[test]
    fn bad_pagerduty_url_is_rejected() {
        assert!(parse(&[(var::PAGERDUTY_URL, "events.pagerduty.com")]).is_err());
    }

    #[test]
    fn output_compression_is_parsed_and_checked() {
        let s = parse(&[(var::OUTPUT_COMPRESSION, "gzip")]).unwrap();
        assert_eq!(s.output_compression, Codec::Gzip);
        let s = parse(&[(var::OUTPUT_COMPRESSION, " ")]).unwrap();
        assert_eq!(s.output_compression, Codec::Zstd);
        let e = parse(&[(var::OUTPUT_COMPRESSION, "lz4")]).unwrap_err();
        let e = e.to_string();
        assert!(
            e.contains(var::OUTPUT_COMPRESSION) && e.contains("lz4"),
            "{e}"
        );
    }

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s}"), "***");
        assert_eq!(format!("{s:?}"), "***");
        let settings = parse(&[
            (
                var::SLACK_WEBHOOK_URL,
                "https://hooks.slack.com/services/SECRET",
            ),
            (var::SPLUNK_HEC_TOKEN, "hunter2"),
        ])
        .unwrap();
        let dbg = format!("{settings:?}");
        assert!(!dbg.contains("SECRET") && !dbg.contains("hunter2"), "{dbg}");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn clean_strips_trailing_newlines_only() {
        assert_eq!(clean(" tok\r\n"), " tok");
    }

    /// `from_lookup` reads exactly the variables that `ENV_VARS` lists, no more, no fewer.
    #[test]
    fn env_vars_lists_exactly_what_is_read() {
        let read = RefCell::new(BTreeSet::new());
        Settings::from_lookup(&|k| {
            read.borrow_mut().insert(k.to_owned());
            None
        })
        .unwrap();
        let listed: BTreeSet<String> = ENV_VARS
            .iter()
            .flat_map(|(_, vars)| vars.iter().map(|v| v.to_string()))
            .collect();
        assert_eq!(read.into_inner(), listed);
        let names: Vec<&str> = ENV_VARS.iter().map(|(f, _)| *f).collect();
        assert_eq!(names, ["parse", "detect", "notify"]);
        for (_, vars) in ENV_VARS {
            let unique: BTreeSet<_> = vars.iter().collect();
            assert_eq!(unique.len(), vars.len());
            assert!(vars.iter().all(|v| v.starts_with("TRIPLINE_")));
        }
    }
}
