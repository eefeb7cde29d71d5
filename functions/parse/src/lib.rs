//! The parse stage: each raw Firehose object named by an S3 event is streamed through the
//! decoder and written back as compressed NDJSON (zstd by default, or gzip: see
//! [`tripline_core::compress`]), events to `<normalized prefix><original key>.ndjson.zst`
//! and quarantine entries (records, and the object's own when it could not be read as
//! osquery) to `<quarantine prefix><original key>.ndjson.zst` (`.gz` with gzip). Keys depend only on the input key and the setting, so a retried or replayed event
//! rewrites the same objects instead of adding new ones.

use std::sync::Arc;

use anyhow::Context;
use serde::Serialize;
use serde_json::Value;
use tripline_aws::{s3event, ObjectRef, ObjectStore, ObjectWriter, S3Store, Settings, Unreadable};
use tripline_core::decode::{ObjectError, Origin, Summary};
use tripline_core::layout::Layout;
use tripline_core::stage::{self, NdjsonOutput, StageOptions};
use tripline_core::{Mapper, Parallelism};

/// Everything an invocation needs, built once per container. Generic over where the objects
/// are: [`S3Store`] in the function, `tripline_aws::MemStore` in tests.
pub struct Parse<S = S3Store> {
    pub store: S,
    pub settings: Settings,
    /// The decoder's settings, and whether inflating and compressing run on threads of their
    /// own (see [`tripline_aws::lambda::parallelism`]).
    pub options: StageOptions,
}

/// The function's stage settings: the default decoder, `parallelism`, and the built-in ATT&CK
/// mappings, so every normalized event names its techniques (`attack`) and the lake can be
/// grouped by technique and tactic without the detect stage.
pub fn stage_options(parallelism: Parallelism) -> anyhow::Result<StageOptions> {
    Ok(StageOptions {
        parallelism,
        mapper: Some(Arc::new(
            Mapper::builtin().context("loading the built-in ATT&CK mappings")?,
        )),
        ..StageOptions::default()
    })
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
    /// Objects that can never be read (gone, access denied): logged, counted, not retried.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<Unreadable>,
    pub totals: Summary,
}

impl<S: ObjectStore> Parse<S> {
    pub async fn handle(&self, event: &Value) -> anyhow::Result<Report> {
        let mut report = Report::default();
        let layout = self.settings.layout();
        for object in s3event::parse_value(event)? {
            if !object.is_created() || !layout.is_raw(&object.key) {
                tracing::info!(bucket = %object.bucket, key = %object.key, event = ?object.event_name,
                    raw_prefix = %self.settings.raw_prefix, "ignoring: not an object created under the raw prefix");
                report.ignored.push(object.key);
                continue;
            }
            let done = match self.object(&layout, &object).await? {
                Ok(done) => done,
                Err(unreadable) => {
                    report.unreadable.push(unreadable);
                    continue;
                }
            };
            tracing::info!(bucket = %done.bucket, key = %done.key, events_key = %done.events_key,
                records = done.summary.records, events = done.summary.events,
                quarantined = done.summary.quarantined, warnings = done.summary.warnings,
                objects_quarantined = done.summary.objects_quarantined, "parsed object");
            if let Some(error) = &done.summary.error {
                tracing::error!(bucket = %done.bucket, key = %done.key, %error,
                    quarantine_key = done.quarantine_key.as_deref(),
                    "object damaged; records before the damage were kept");
            } else if let Some(reason) = done.summary.quarantined_as {
                tracing::warn!(bucket = %done.bucket, key = %done.key, %reason,
                    quarantine_key = done.quarantine_key.as_deref(),
                    "object quarantined as a whole");
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
    async fn object(
        &self,
        layout: &Layout,
        object: &ObjectRef,
    ) -> anyhow::Result<Result<ObjectReport, Unreadable>> {
        let reader = match tripline_aws::open(&self.store, &object.bucket, &object.key).await? {
            Ok(reader) => reader,
            Err(unreadable) => return Ok(Err(unreadable)),
        };
        let output_bucket = self.settings.output_bucket(&object.bucket).to_owned();
        let codec = layout.codec();
        let events_key = layout.normalized_key(&object.key);
        let quarantine_key = layout.quarantine_key(&object.key);
        let (store, options) = (self.store.clone(), self.options.clone());
        let origin = Origin::s3(&object.bucket, &object.key);
        let (bucket, key) = (object.bucket.clone(), object.key.clone());
        tokio::task::spawn_blocking(move || -> anyhow::Result<ObjectReport> {
            let quarantine = {
                let (store, bucket, key) =
                    (store.clone(), output_bucket.clone(), quarantine_key.clone());
                move || Ok(store.writer(&bucket, &key))
            };
            let events = store.writer(&output_bucket, &events_key);
            let mut output = NdjsonOutput::new(events, codec, options.parallelism, quarantine)
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
        .map(Ok)
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
            (
                "ObjectsQuarantined",
                t.objects_quarantined as f64,
                Unit::Count,
            ),
            ("Warnings", t.warnings as f64, Unit::Count),
            ("ObjectErrors", t.objects_with_errors as f64, Unit::Count),
            ("Unreadable", report.unreadable.len() as f64, Unit::Count),
            ("BytesIn", t.bytes_in as f64, Unit::Bytes),
            ("BytesDecoded", t.bytes_decoded as f64, Unit::Bytes),
            ("Duration", duration_ms, Unit::Milliseconds),
        ],
    )
}
