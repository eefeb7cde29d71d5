//! The parse stage: each raw Firehose object named by an S3 event is streamed through the
//! decoder and written back as compressed NDJSON (zstd by default, or gzip: see
//! [`tripline_core::compress`]), events to `<normalized prefix><original key>.ndjson.zst`
//! and quarantined records to `<quarantine prefix><original key>.ndjson.zst` (`.gz` with
//! gzip). Keys depend only on the input key and the setting, so a retried or replayed event
//! rewrites the same objects instead of adding new ones.

use anyhow::Context;
use serde::Serialize;
use serde_json::Value;
use tripline_aws::{get_object_reader, s3event, ObjectRef, S3Writer, Settings};
use tripline_core::compress::Codec;
use tripline_core::decode::{ObjectError, Origin, Summary};
use tripline_core::stage::{self, NdjsonOutput, StageOptions};

/// Everything an invocation needs, built once per container.
pub struct Parse {
    pub s3: aws_sdk_s3::Client,
    pub settings: Settings,
    /// The decoder's settings, and whether inflating and compressing run on threads of their
    /// own (see [`tripline_aws::lambda::threads_pay`]).
    pub options: StageOptions,
}

/// What one object produced.
#[derive(Debug, Serialize)]
pub struct ObjectReport {
    pub bucket: String,
    pub key: String,
    pub output_bucket: String,
    pub events_key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quarantine_key: Option<String>,
    pub summary: Summary,
}

/// What the invocation did; also the function's response.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub objects: Vec<ObjectReport>,
    /// Keys outside the raw prefix (or non-create events), left alone.
    pub ignored: Vec<String>,
    pub totals: Summary,
}

impl Parse {
    pub async fn handle(&self, event: &Value) -> anyhow::Result<Report> {
        let mut report = Report::default();
        for object in s3event::parse_value(event)? {
            if !object.is_created() || !object.key.starts_with(&self.settings.raw_prefix) {
                tracing::info!(bucket = %object.bucket, key = %object.key, event = ?object.event_name,
                    raw_prefix = %self.settings.raw_prefix, "ignoring: not an object created under the raw prefix");
                report.ignored.push(object.key);
                continue;
            }
            let done = self.object(&object).await?;
            tracing::info!(bucket = %done.bucket, key = %done.key, events_key = %done.events_key,
                records = done.summary.records, events = done.summary.events,
                quarantined = done.summary.quarantined, warnings = done.summary.warnings, "parsed object");
            if let Some(error) = &done.summary.error {
                tracing::error!(bucket = %done.bucket, key = %done.key, %error,
                    "object damaged; records before the damage were kept");
            }
            report.totals.add(&done.summary);
            report.objects.push(done);
        }
        Ok(report)
    }

    /// Streams one object: S3 body → inflate → decode → compress → multipart upload, with
    /// bounded buffers between, so memory stays at a few upload parts whatever the object's
    /// size. With [`tripline_core::Parallelism::Threads`], inflate and compression each run
    /// on a thread of their own beside the decoding one.
    async fn object(&self, object: &ObjectRef) -> anyhow::Result<ObjectReport> {
        let reader = get_object_reader(&self.s3, &object.bucket, &object.key).await?;
        let output_bucket = self.settings.output_bucket(&object.bucket).to_owned();
        let codec = self.settings.output_compression;
        let suffix = key_suffix(codec);
        let events_key = format!("{}{}{suffix}", self.settings.normalized_prefix, object.key);
        let quarantine_key = format!("{}{}{suffix}", self.settings.quarantine_prefix, object.key);
        let (s3, options) = (self.s3.clone(), self.options.clone());
        let origin = Origin::s3(&object.bucket, &object.key);
        let (bucket, key) = (object.bucket.clone(), object.key.clone());
        tokio::task::spawn_blocking(move || -> anyhow::Result<ObjectReport> {
            let upload = {
                let (s3, bucket) = (s3.clone(), output_bucket.clone());
                move |key: &str| S3Writer::new(s3.clone(), &bucket, key)
            };
            let quarantine = {
                let (upload, key) = (upload.clone(), quarantine_key.clone());
                move || Ok(upload(&key))
            };
            let mut output =
                NdjsonOutput::new(upload(&events_key), codec, options.parallelism, quarantine)
                    .context("starting the compressor")?;
            let summary = stage::parse(reader, origin, &options, &mut output, None)
                .context("writing normalized events")?;
            if let Some(ObjectError::Read { message }) = &summary.error {
                // A network failure, not bad data: fail so Lambda retries the object.
                anyhow::bail!("reading s3://{bucket}/{key}: {message}");
            }
            let (events, quarantine) = output.finish().context("compressing the output")?;
            events.finish().context("uploading normalized events")?;
            let quarantine_key = match quarantine {
                Some(q) => {
                    q.finish().context("uploading quarantine")?;
                    Some(quarantine_key)
                }
                None => None,
            };
            Ok(ObjectReport {
                bucket,
                key,
                output_bucket,
                events_key,
                quarantine_key,
                summary,
            })
        })
        .await
        .context("parse worker panicked")?
    }
}

/// What the output keys end in: `.ndjson` and the codec's extension. Spelled out, since the
/// detect trigger's S3 filter (Terraform's `local.normalized_suffix`) must match it, and the
/// infra cross-check looks for these literals.
pub fn key_suffix(codec: Codec) -> &'static str {
    match codec {
        Codec::Zstd => ".ndjson.zst",
        Codec::Gzip => ".ndjson.gz",
    }
}

/// The EMF metrics line for an invocation.
pub fn metrics(report: &Report, duration_ms: f64) -> String {
    use tripline_aws::metrics::{emit, Unit};
    let t = &report.totals;
    emit(
        "tripline",
        "parse",
        &[
            ("Objects", t.objects as f64, Unit::Count),
            ("Records", t.records as f64, Unit::Count),
            ("Events", t.events as f64, Unit::Count),
            ("Quarantined", t.quarantined as f64, Unit::Count),
            ("Warnings", t.warnings as f64, Unit::Count),
            ("ObjectErrors", t.objects_with_errors as f64, Unit::Count),
            ("BytesIn", t.bytes_in as f64, Unit::Bytes),
            ("BytesDecoded", t.bytes_decoded as f64, Unit::Bytes),
            ("Duration", duration_ms, Unit::Milliseconds),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::key_suffix;
    use tripline_core::compress::Codec;

    #[test]
    fn key_suffix_is_ndjson_and_the_codec_extension() {
        for codec in [Codec::Zstd, Codec::Gzip] {
            assert_eq!(key_suffix(codec), format!(".ndjson{}", codec.extension()));
        }
    }
}
