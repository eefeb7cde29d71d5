//! SDK clients from one shared configuration.
//!
//! Configuration comes from the SDK's default chain (`aws_config::defaults`): region and
//! credentials from the Lambda environment, and the standard `AWS_ENDPOINT_URL` /
//! `AWS_ENDPOINT_URL_<SERVICE>` variables, which the SDK honours on its own. That is how tests
//! and local runs point everything at moto or another emulator without code of ours.
//!
//! S3 is the one client that needs a hint: with a custom endpoint (a host name like
//! `localhost` or `moto`), virtual-hosted addressing would put the bucket into the host name,
//! which such endpoints don't resolve, so path-style addressing is forced whenever an endpoint
//! URL is configured for S3.

use aws_config::{BehaviorVersion, SdkConfig};
use aws_types::service_config::ServiceConfigKey;

/// Loads the shared configuration from the default provider chain.
pub async fn load_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

/// [`load_config`], with `region` when the chain finds none (no `AWS_REGION`, no profile
/// region, not on AWS): the second value says whether it was used, so a caller can say so.
pub async fn load_config_or_region(region: &'static str) -> (SdkConfig, bool) {
    let config = load_config().await;
    if config.region().is_some() {
        return (config, false);
    }
    let config = aws_config::defaults(BehaviorVersion::latest())
        .region(aws_config::Region::from_static(region))
        .load()
        .await;
    (config, true)
}

/// Whether S3 requests go to a configured endpoint rather than AWS's: `AWS_ENDPOINT_URL_S3`,
/// `AWS_ENDPOINT_URL`, their profile equivalents, or an endpoint set in code.
pub fn s3_endpoint_url(config: &SdkConfig) -> Option<String> {
    let key = ServiceConfigKey::builder()
        .service_id("S3")
        .env("AWS_ENDPOINT_URL")
        .profile("endpoint_url")
        .build()
        .expect("all fields set");
    config
        .service_config()
        .and_then(|c| c.load_config(key))
        .or_else(|| config.endpoint_url().map(str::to_owned))
}

/// An S3 client; path-style addressing when an endpoint URL is configured.
pub fn s3(config: &SdkConfig) -> aws_sdk_s3::Client {
    let mut builder = aws_sdk_s3::config::Builder::from(config);
    if s3_endpoint_url(config).is_some() {
        builder = builder.force_path_style(true);
    }
    aws_sdk_s3::Client::from_conf(builder.build())
}

/// An SNS client.
pub fn sns(config: &SdkConfig) -> aws_sdk_sns::Client {
    aws_sdk_sns::Client::new(config)
}

/// An SSM client (for `_PARAM` secrets).
pub fn ssm(config: &SdkConfig) -> aws_sdk_ssm::Client {
    aws_sdk_ssm::Client::new(config)
}

/// A Secrets Manager client (for `_PARAM` secrets).
pub fn secrets_manager(config: &SdkConfig) -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(config)
}
