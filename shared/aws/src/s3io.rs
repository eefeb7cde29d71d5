//! S3 object I/O for a synchronous decoder running inside an async Lambda.
//!
//! `tripline-core`'s decoder is a plain `Iterator` over `std::io::Read`, so the functions run it
//! in `tokio::task::spawn_blocking` and bridge to the SDK's async world here:
//!
//! - **Reading** ([`get_object_reader`]): an async task pulls the body's chunks and hands them to
//!   the blocking thread through a bounded channel. Download and decoding overlap (the task reads
//!   ahead at most [`READ_AHEAD_CHUNKS`] chunks), and memory stays bounded whatever the object's
//!   size: nothing is buffered whole.
//! - **Writing** ([`S3Writer`]): the blocking thread fills 8 MiB parts and sends them through a
//!   channel of one slot to an async task that uploads them, so compression and upload overlap
//!   too, with at most three parts in memory (filling, queued, uploading). Output that never
//!   fills a part goes out as a single PutObject; larger output as a multipart upload, which is
//!   aborted on any error or if the writer is dropped without [`S3Writer::finish`], so a failed
//!   invocation leaves no half object (a bucket lifecycle rule for incomplete multipart uploads
//!   is still the backstop for a killed process).
//!
//! Both halves block on channels, so their `Read`/`Write` calls must run on a blocking thread
//! (`spawn_blocking`, or any thread outside the runtime), never on an async worker: tokio panics
//! there rather than deadlock. They must be created inside a tokio runtime.
//!
//! The small-object helpers ([`put_object`], [`put_if_absent`], [`get_object_bytes`]) are plain
//! async calls for alerts and markers.

use std::io::{self, Read, Write};
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use bytes::{Bytes, BytesMut};
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::error::{Error, Result};

/// Chunks (as the HTTP stack delivers them, typically a few KiB to a few hundred KiB) the reader
/// task may fetch ahead of the decoder.
pub const READ_AHEAD_CHUNKS: usize = 16;

/// Default multipart part size: 8 MiB (S3's minimum is 5 MiB, except for the last part).
pub const DEFAULT_PART_SIZE: usize = 8 * 1024 * 1024;

/// S3's minimum part size.
pub const MIN_PART_SIZE: usize = 5 * 1024 * 1024;

/// S3's maximum number of parts in one upload.
const MAX_PARTS: i32 = 10_000;

/// [`get_object_bytes`] refuses objects larger than this: it is for alerts and markers, and
/// anything bigger should stream.
pub const MAX_SMALL_OBJECT_BYTES: u64 = 64 * 1024 * 1024;

/// A `Content-Type` from the key's extension, so every writer labels objects the same way.
pub fn content_type_for(key: &str) -> &'static str {
    if key.ends_with(".json") {
        "application/json"
    } else if key.ends_with(".ndjson") {
        "application/x-ndjson"
    } else if key.ends_with(".gz") {
        "application/gzip"
    } else if key.ends_with(".zst") {
        "application/zstd"
    } else {
        "application/octet-stream"
    }
}

fn s3_url(bucket: &str, key: &str) -> String {
    format!("s3://{bucket}/{key}")
}

// ---------------------------------------------------------------------------------------------
// Reading

/// A streaming, blocking reader over an S3 object's body. See the module docs for the threading
/// rules. Dropping it stops the download.
pub struct ObjectReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
    content_length: Option<u64>,
    received: u64,
    task: JoinHandle<()>,
}

impl ObjectReader {
    /// The object's size, from GetObject's `Content-Length`.
    pub fn content_length(&self) -> Option<u64> {
        self.content_length
    }

    /// Bytes handed to the reader's caller (or buffered for it) so far.
    pub fn bytes_received(&self) -> u64 {
        self.received
    }
}

impl std::fmt::Debug for ObjectReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectReader")
            .field("content_length", &self.content_length)
            .field("received", &self.received)
            .finish_non_exhaustive()
    }
}

impl Read for ObjectReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => {
                    self.received += chunk.len() as u64;
                    self.current = chunk;
                }
                Some(Err(e)) => return Err(e),
                None => {
                    // The task ends the channel after the last chunk. A short body means the
                    // stream was cut without an error reaching us: never pass that off as EOF.
                    return match self.content_length {
                        Some(len) if self.received < len => Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!("S3 body ended after {} of {len} bytes", self.received),
                        )),
                        _ => Ok(0),
                    };
                }
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

impl Drop for ObjectReader {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts a GetObject and returns a blocking reader over its body, streamed (never buffered
/// whole). Errors of the request itself (`NoSuchKey`, access denied) are returned here; errors
/// mid-body come out of `read`.
pub async fn get_object_reader(client: &Client, bucket: &str, key: &str) -> Result<ObjectReader> {
    // The request is awaited here rather than through `get_object_reader_at`: each nested
    // `async fn` deepens the functions' handler futures, whose layout rustc computes with a
    // bounded query depth.
    let out = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| Error::aws(format!("GetObject {}", s3_url(bucket, key)), e))?;
    Ok(body_reader(out))
}

/// [`get_object_reader`] from byte `offset` on (a `Range` request when `offset > 0`), and,
/// with `if_match`, only while the object's ETag is still that one: a resumed read must
/// continue the object it started, never splice in a rewritten one (S3 answers
/// `PreconditionFailed`, a permanent error, instead).
pub async fn get_object_reader_at(
    client: &Client,
    bucket: &str,
    key: &str,
    offset: u64,
    if_match: Option<&str>,
) -> Result<ObjectReader> {
    let mut request = client.get_object().bucket(bucket).key(key);
    if offset > 0 {
        request = request.range(format!("bytes={offset}-"));
    }
    if let Some(etag) = if_match {
        request = request.if_match(etag);
    }
    let out = request
        .send()
        .await
        .map_err(|e| Error::aws(format!("GetObject {}", s3_url(bucket, key)), e))?;
    Ok(body_reader(out))
}

/// Starts the task that pulls a GetObject's body and returns the reader over it (inside a
/// tokio runtime).
fn body_reader(out: aws_sdk_s3::operation::get_object::GetObjectOutput) -> ObjectReader {
    let content_length = out.content_length().and_then(|l| u64::try_from(l).ok());
    let mut body = out.body;
    let (tx, rx) = mpsc::channel(READ_AHEAD_CHUNKS);
    let task = tokio::spawn(async move {
        while let Some(chunk) = body.next().await {
            let failed = chunk.is_err();
            let item = chunk.map_err(io::Error::other);
            if tx.send(item).await.is_err() || failed {
                return; // reader dropped, or error delivered
            }
        }
    });
    ObjectReader {
        rx,
        current: Bytes::new(),
        content_length,
        received: 0,
        task,
    }
}

// ---------------------------------------------------------------------------------------------
// Writing

/// What [`S3Writer::finish`] uploaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uploaded {
    /// Bytes written.
    pub bytes: u64,
    /// Parts of the multipart upload; 0 when the object went out as one PutObject.
    pub parts: u32,
    /// The object's ETag, as S3 returned it.
    pub e_tag: Option<String>,
}

enum Msg {
    Part(Bytes),
    Finish(Bytes),
}

/// A blocking `std::io::Write` that uploads to S3: one PutObject for output smaller than the
/// part size, a multipart upload otherwise. Call [`S3Writer::finish`] to complete it; dropping
/// it unfinished aborts the upload and creates no object. See the module docs for threading.
///
/// Once the upload has failed, every `write` returns an [`io::Error`] that carries the
/// upload's typed [`Error`] (same text; `ErrorKind::Other`), and [`S3Writer::finish`]
/// returns that error itself. A caller that has only the `io::Error` gets the typed one back
/// with `io_err.get_ref().and_then(|e| e.downcast_ref::<tripline_aws::Error>())` or
/// `io_err.downcast::<tripline_aws::Error>()`, e.g. to branch on [`Error::code`]. Which write
/// finds out first depends on timing (parts are uploaded in the background); a failure none
/// of them saw comes out of `finish`.
///
/// The key is the caller's: make it deterministic (derived from the input key) so a retried
/// invocation overwrites instead of duplicating.
pub struct S3Writer {
    client: Client,
    bucket: String,
    key: String,
    content_type: String,
    part_size: usize,
    handle: Handle,
    buf: BytesMut,
    written: u64,
    uploader: Option<(mpsc::Sender<Msg>, oneshot::Receiver<Result<Uploaded>>)>,
    /// Why the upload task stopped, once a write found out; [`S3Writer::finish`] returns it
    /// and each later write a copy (as an `io::Error`'s inner error).
    failed: Option<Error>,
}

impl std::fmt::Debug for S3Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Writer")
            .field("bucket", &self.bucket)
            .field("key", &self.key)
            .field("written", &self.written)
            .finish_non_exhaustive()
    }
}

impl S3Writer {
    /// A writer for `s3://bucket/key`, with [`DEFAULT_PART_SIZE`] and a content type from
    /// [`content_type_for`]. Must be called inside a tokio runtime (an async task or a
    /// `spawn_blocking` thread): the upload task is spawned on it.
    pub fn new(client: Client, bucket: impl Into<String>, key: impl Into<String>) -> Self {
        let key = key.into();
        S3Writer {
            client,
            bucket: bucket.into(),
            content_type: content_type_for(&key).to_owned(),
            key,
            part_size: DEFAULT_PART_SIZE,
            handle: Handle::current(),
            buf: BytesMut::new(),
            written: 0,
            uploader: None,
            failed: None,
        }
    }

    /// Overrides the `Content-Type`.
    pub fn with_content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = content_type.into();
        self
    }

    /// Overrides the part size (at least [`MIN_PART_SIZE`]; smaller values are raised to it).
    pub fn with_part_size(mut self, part_size: usize) -> Self {
        self.part_size = part_size.max(MIN_PART_SIZE);
        self
    }

    /// Bytes written so far.
    pub fn bytes_written(&self) -> u64 {
        self.written
    }

    /// Sends the rest and completes the upload (PutObject, or the last part and
    /// CompleteMultipartUpload). Blocks until S3 has answered.
    pub fn finish(mut self) -> Result<Uploaded> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        let tail = self.buf.split().freeze();
        let (tx, done) = match self.uploader.take() {
            Some(u) => u,
            None => self.spawn_uploader(),
        };
        // If the task already failed, the send fails and `done` holds the reason.
        let _ = tx.blocking_send(Msg::Finish(tail));
        drop(tx);
        match done.blocking_recv() {
            Ok(result) => result,
            Err(_) => Err(self.upload_error("upload task ended without a result".into())),
        }
    }

    fn upload_error(&self, message: String) -> Error {
        Error::io(
            format!("upload {}", s3_url(&self.bucket, &self.key)),
            io::Error::other(message),
        )
    }

    fn spawn_uploader(&self) -> (mpsc::Sender<Msg>, oneshot::Receiver<Result<Uploaded>>) {
        let (tx, rx) = mpsc::channel(1);
        let (done_tx, done_rx) = oneshot::channel();
        let job = Upload {
            client: self.client.clone(),
            bucket: self.bucket.clone(),
            key: self.key.clone(),
            content_type: self.content_type.clone(),
        };
        self.handle.spawn(async move {
            let _ = done_tx.send(job.run(rx).await);
        });
        (tx, done_rx)
    }

    fn send_part(&mut self, part: Bytes) -> io::Result<()> {
        if self.uploader.is_none() {
            self.uploader = Some(self.spawn_uploader());
        }
        let (tx, _) = self.uploader.as_ref().expect("just set");
        if tx.blocking_send(Msg::Part(part)).is_ok() {
            return Ok(());
        }
        // The task stopped: it failed (and aborted the upload). Take its reason.
        let (_, done) = self.uploader.take().expect("present");
        let e = match done.blocking_recv() {
            Ok(Err(e)) => e,
            Ok(Ok(_)) | Err(_) => self.upload_error("upload task ended early".into()),
        };
        let io_err = io::Error::other(e.duplicate());
        self.failed = Some(e);
        Err(io_err)
    }
}

impl Write for S3Writer {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if let Some(e) = &self.failed {
            return Err(io::Error::other(e.duplicate()));
        }
        self.buf.extend_from_slice(data);
        self.written += data.len() as u64;
        while self.buf.len() >= self.part_size {
            let part = self.buf.split_to(self.part_size).freeze();
            self.send_part(part)?;
        }
        Ok(data.len())
    }

    /// Does nothing: parts go out when full, the rest at [`S3Writer::finish`] (S3 has no
    /// "append", so there is nothing meaningful to flush early).
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct Upload {
    client: Client,
    bucket: String,
    key: String,
    content_type: String,
}

struct Multipart {
    upload_id: String,
    parts: Vec<CompletedPart>,
}

impl Upload {
    fn context(&self, op: &str) -> String {
        format!("{op} {}", s3_url(&self.bucket, &self.key))
    }

    async fn run(self, mut rx: mpsc::Receiver<Msg>) -> Result<Uploaded> {
        let mut mpu: Option<Multipart> = None;
        let mut bytes = 0u64;
        loop {
            let msg = rx.recv().await;
            let step = match msg {
                Some(Msg::Part(part)) => {
                    bytes += part.len() as u64;
                    self.part(&mut mpu, part).await.map(|()| None)
                }
                Some(Msg::Finish(tail)) => {
                    bytes += tail.len() as u64;
                    self.finish(&mut mpu, tail, bytes).await.map(Some)
                }
                None => Err(Error::io(
                    self.context("upload"),
                    io::Error::other("writer dropped before finish; upload aborted"),
                )),
            };
            match step {
                Ok(None) => continue,
                Ok(Some(done)) => return Ok(done),
                Err(e) => {
                    if let Some(m) = mpu {
                        self.abort(&m.upload_id).await;
                    }
                    return Err(e);
                }
            }
        }
    }

    async fn part(&self, mpu: &mut Option<Multipart>, part: Bytes) -> Result<()> {
        if mpu.is_none() {
            let out = self
                .client
                .create_multipart_upload()
                .bucket(&self.bucket)
                .key(&self.key)
                .content_type(&self.content_type)
                .checksum_algorithm(ChecksumAlgorithm::Crc32)
                .send()
                .await
                .map_err(|e| Error::aws(self.context("CreateMultipartUpload"), e))?;
            let upload_id = out.upload_id().ok_or_else(|| Error::Aws {
                context: self.context("CreateMultipartUpload"),
                code: None,
                status: None,
                message: "no UploadId in the response".into(),
            })?;
            *mpu = Some(Multipart {
                upload_id: upload_id.to_owned(),
                parts: Vec::new(),
            });
        }
        let m = mpu.as_mut().expect("just created");
        let number = m.parts.len() as i32 + 1;
        if number > MAX_PARTS {
            return Err(Error::io(
                self.context("UploadPart"),
                io::Error::other(format!("more than {MAX_PARTS} parts; raise the part size")),
            ));
        }
        // S3 checks each part's CRC32 (computed by the SDK) and the composite on completion.
        let out = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&m.upload_id)
            .part_number(number)
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .body(ByteStream::from(part))
            .send()
            .await
            .map_err(|e| Error::aws(self.context(&format!("UploadPart {number}")), e))?;
        let mut completed = CompletedPart::builder().part_number(number);
        if let Some(e_tag) = out.e_tag() {
            completed = completed.e_tag(e_tag);
        }
        if let Some(crc) = out.checksum_crc32() {
            completed = completed.checksum_crc32(crc);
        }
        m.parts.push(completed.build());
        Ok(())
    }

    async fn finish(
        &self,
        mpu: &mut Option<Multipart>,
        tail: Bytes,
        bytes: u64,
    ) -> Result<Uploaded> {
        if mpu.is_none() {
            let out = self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(&self.key)
                .content_type(&self.content_type)
                .body(ByteStream::from(tail))
                .send()
                .await
                .map_err(|e| Error::aws(self.context("PutObject"), e))?;
            return Ok(Uploaded {
                bytes,
                parts: 0,
                e_tag: out.e_tag().map(str::to_owned),
            });
        }
        if !tail.is_empty() {
            self.part(mpu, tail).await?;
        }
        let m = mpu.as_ref().expect("checked");
        let out = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&m.upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(m.parts.clone()))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| Error::aws(self.context("CompleteMultipartUpload"), e))?;
        Ok(Uploaded {
            bytes,
            parts: m.parts.len() as u32,
            e_tag: out.e_tag().map(str::to_owned),
        })
    }

    async fn abort(&self, upload_id: &str) {
        let result = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(upload_id)
            .send()
            .await;
        if let Err(e) = result {
            // The upload stays until the bucket's lifecycle rule cleans it up; nothing else to do.
            tracing::warn!(
                error = %Error::aws(self.context("AbortMultipartUpload"), e),
                "could not abort multipart upload"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Small objects

/// Writes a small object in one PutObject (content type from [`content_type_for`]).
pub async fn put_object(
    client: &Client,
    bucket: &str,
    key: &str,
    body: impl Into<Bytes>,
) -> Result<()> {
    client
        .put_object()
        .bucket(bucket)
        .key(key)
        .content_type(content_type_for(key))
        .body(ByteStream::from(body.into()))
        .send()
        .await
        .map_err(|e| Error::aws(format!("PutObject {}", s3_url(bucket, key)), e))?;
    Ok(())
}

/// What [`put_if_absent`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PutOutcome {
    /// The object did not exist and now does, with our body.
    Created,
    /// An object was already there (ours from an earlier try, or a concurrent writer's); it was
    /// left untouched.
    AlreadyExists,
}

/// Attempts [`put_if_absent`] makes when S3 answers 409 (a concurrent conditional write to the
/// same key is in flight); the SDK's own retries don't cover 409.
const CONFLICT_ATTEMPTS: u32 = 5;

/// Creates the object only if no object exists at the key (`If-None-Match: *`): the atomic
/// "first writer wins" that dedup and delivery markers rely on.
///
/// S3 answers 412 `PreconditionFailed` when the key exists ([`PutOutcome::AlreadyExists`]) and
/// 409 `ConditionalRequestConflict` while a concurrent conditional write to the key is in
/// flight; that is retried with backoff, after which the other writer has won (412) or failed
/// (we create).
pub async fn put_if_absent(
    client: &Client,
    bucket: &str,
    key: &str,
    body: impl Into<Bytes>,
) -> Result<PutOutcome> {
    let body = body.into();
    let mut delay = Duration::from_millis(50);
    for attempt in 1..=CONFLICT_ATTEMPTS {
        let result = client
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type(content_type_for(key))
            .if_none_match("*")
            .body(ByteStream::from(body.clone()))
            .send()
            .await;
        let err = match result {
            Ok(_) => return Ok(PutOutcome::Created),
            Err(e) => Error::aws(
                format!("PutObject If-None-Match {}", s3_url(bucket, key)),
                e,
            ),
        };
        match (err.status(), err.code()) {
            (Some(412), _) | (_, Some("PreconditionFailed")) => {
                return Ok(PutOutcome::AlreadyExists)
            }
            (Some(409), _) | (_, Some("ConditionalRequestConflict"))
                if attempt < CONFLICT_ATTEMPTS =>
            {
                tracing::debug!(bucket, key, attempt, "conditional put conflict; retrying");
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            _ => return Err(err),
        }
    }
    unreachable!("the last attempt returns")
}

/// Whether an object exists (HeadObject). Needs `s3:GetObject` on the key, like a read.
pub async fn object_exists(client: &Client, bucket: &str, key: &str) -> Result<bool> {
    match client.head_object().bucket(bucket).key(key).send().await {
        Ok(_) => Ok(true),
        Err(e) => {
            let err = Error::aws(format!("HeadObject {}", s3_url(bucket, key)), e);
            if err.is_not_found() || err.status() == Some(404) {
                Ok(false)
            } else {
                Err(err)
            }
        }
    }
}

/// Up to `max` objects under `prefix`, in key order, with their ETags and sizes: as many
/// ListObjectsV2 pages (1000 keys each) as that takes. Needs `s3:ListBucket` on the bucket.
pub async fn list_keys(
    client: &Client,
    bucket: &str,
    prefix: &str,
    max: usize,
) -> Result<Vec<crate::store::Listed>> {
    let mut listed = Vec::new();
    let mut token: Option<String> = None;
    // ListObjectsV2 returns keys in UTF-8 binary order, page after page, so the pages
    // concatenated are the listing in key order.
    while listed.len() < max {
        let out = client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .max_keys((max - listed.len()).min(1000) as i32)
            .set_continuation_token(token.take())
            .send()
            .await
            .map_err(|e| Error::aws(format!("ListObjectsV2 {}", s3_url(bucket, prefix)), e))?;
        listed.extend(out.contents().iter().filter_map(|o| {
            Some(crate::store::Listed {
                key: o.key()?.to_owned(),
                etag: o.e_tag().unwrap_or_default().to_owned(),
                size: o.size().and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
            })
        }));
        match out.next_continuation_token() {
            Some(next) if out.is_truncated() == Some(true) => token = Some(next.to_owned()),
            _ => break,
        }
    }
    Ok(listed)
}

/// Reads a small object whole (alerts, markers). Refuses objects over
/// [`MAX_SMALL_OBJECT_BYTES`]; a missing key is an error with [`Error::is_not_found`].
pub async fn get_object_bytes(client: &Client, bucket: &str, key: &str) -> Result<Bytes> {
    let context = || format!("GetObject {}", s3_url(bucket, key));
    let out = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| Error::aws(context(), e))?;
    let too_big = || {
        Error::io(
            context(),
            io::Error::other(format!(
                "object larger than {MAX_SMALL_OBJECT_BYTES} bytes; stream it instead"
            )),
        )
    };
    if out
        .content_length()
        .is_some_and(|l| l as u64 > MAX_SMALL_OBJECT_BYTES)
    {
        return Err(too_big());
    }
    let mut body = out.body;
    let mut buf = BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| Error::io(context(), io::Error::other(e)))?;
        if buf.len() as u64 + chunk.len() as u64 > MAX_SMALL_OBJECT_BYTES {
            return Err(too_big());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_and_writers_move_to_blocking_threads() {
        fn send<T: Send + 'static>() {}
        send::<ObjectReader>();
        send::<S3Writer>();
    }

    #[test]
    fn content_types() {
        assert_eq!(content_type_for("alerts/x.json"), "application/json");
        assert_eq!(content_type_for("n/x.ndjson"), "application/x-ndjson");
        assert_eq!(content_type_for("n/x.ndjson.gz"), "application/gzip");
        assert_eq!(content_type_for("n/x.ndjson.zst"), "application/zstd");
        assert_eq!(content_type_for("state/x"), "application/octet-stream");
    }
}
