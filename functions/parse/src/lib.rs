//! The parse stage: each raw Firehose object named by an S3 event is streamed through the
//! decoder and written back as compressed NDJSON (zstd by default, or gzip: see
//! [`tripline_core::compress`]), events to `<normalized prefix><original key>.ndjson.zst`
//! and quarantined records to `<quarantine prefix><original key>.ndjson.zst` (`.gz` with
//! gzip). Keys depend only on the input key and the setting, so a retried or replayed event
//! rewrites the same objects instead of adding new ones.

use std::io::Write;

use anyhow::Context;
use serde::Serialize;
use serde_json::Value;
use tripline_aws::{s3event, ObjectRef, ObjectStore, ObjectWriter, S3Store, Settings};
use tripline_core::compress::Output;
use tripline_core::decode::{Decoded, ObjectDecoder, ObjectError, Options, Origin, Summary};
use tripline_core::layout::Layout;

/// Everything an invocation needs, built once per container. Generic over where the objects
/// are: [`S3Store`] in the function, `tripline_aws::MemStore` in tests.
pub struct Parse<S = S3Store> {
    pub store: S,
    pub settings: Settings,
    pub options: Options,
    /// Inflate and compress on threads of their own (see [`tripline_aws::lambda::threads_pay`]).
    pub threads: bool,
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
            let done = self.object(&layout, &object).await?;
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
    /// size. With [`Parse::threads`], inflate and compression each run on a thread of their
    /// own beside the decoding one.
    async fn object(&self, layout: &Layout, object: &ObjectRef) -> anyhow::Result<ObjectReport> {
        let reader = self.store.reader(&object.bucket, &object.key).await?;
        let output_bucket = self.settings.output_bucket(&object.bucket).to_owned();
        let codec = layout.codec();
        let events_key = layout.normalized_key(&object.key);
        let quarantine_key = layout.quarantine_key(&object.key);
        let (store, options, threads) = (self.store.clone(), self.options.clone(), self.threads);
        let origin = Origin::s3(&object.bucket, &object.key);
        let (bucket, key) = (object.bucket.clone(), object.key.clone());
        tokio::task::spawn_blocking(move || -> anyhow::Result<ObjectReport> {
            // Events go in one write per line into 256 KiB buffers, and the compressor gets
            // one call per full buffer (7x faster than feeding gzip small writes), on a thread
            // of its own (which then owns the store's writer) or inline.
            let writer = |key: &str| {
                let upload = store.writer(&output_bucket, key);
                Output::new(upload, codec, threads).context("starting the compressor")
            };
            let mut events = writer(&events_key)?;
            let mut quarantine = None;
            let mut decoder = if threads {
                ObjectDecoder::threaded(reader, origin, options)
            } else {
                ObjectDecoder::new(reader, origin, options)
            };
            let mut line = Vec::new();
            while let Some(item) = decoder.next() {
                match item {
                    Decoded::Event(e) => {
                        e.write_line(&mut events, &mut line)?;
                        // Written: the decoder fills it again with a later row.
                        decoder.recycle(e);
                    }
                    Decoded::Quarantined(q) => {
                        let out = match &mut quarantine {
                            Some(out) => out,
                            slot @ None => slot.insert(writer(&quarantine_key)?),
                        };
                        write_line(out, &*q)?
                    }
                }
            }
            let summary = decoder.summary();
            if let Some(ObjectError::Read { message }) = &summary.error {
                // A network failure, not bad data: fail so Lambda retries the object.
                anyhow::bail!("reading s3://{bucket}/{key}: {message}");
            }
            finish(events).context("uploading normalized events")?;
            let quarantine_key = match quarantine {
                Some(q) => {
                    finish(q).context("uploading quarantine")?;
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

/// Compresses the rest, ends the compressed stream and completes the upload.
fn finish<W: ObjectWriter>(out: Output<W>) -> anyhow::Result<()> {
    out.finish()?.finish()?;
    Ok(())
}

fn write_line<T: Serialize + ?Sized>(out: &mut impl Write, value: &T) -> anyhow::Result<()> {
    serde_json::to_writer(&mut *out, value)?;
    out.write_all(b"\n")?;
    Ok(())
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
