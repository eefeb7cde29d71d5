//! The object store the handlers are generic over: S3 in production ([`S3Store`]), memory in
//! tests ([`MemStore`]).
//!
//! [`ObjectStore`] is the handful of operations the pipeline makes, one per
//! [`tripline_core::layout::Op`]: a streaming read for the synchronous decoder and a small
//! read, an existence check, a put, a put-if-absent (the atomic "first writer wins" that dedup
//! and delivery markers rest on) and a streaming writer (a multipart upload on S3). Each
//! [`S3Store`] method is one adapter of [`crate::s3io`], as [`crate::iam::store_adapters`]
//! records for the IAM check.
//!
//! The trait lives here, not in the pure core, because its errors are this crate's [`Error`]
//! (with its [`Error::retry`] classification) and its streams follow [`crate::s3io`]'s
//! threading rules: readers and writers are used on a blocking thread, created inside a tokio
//! runtime.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::io::{self, Cursor, Read, Write};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tripline_core::layout::{self, Area, Layout, Op};

use crate::error::{Error, Result, Retry};
use crate::s3io::{self, ObjectReader, PutOutcome, S3Writer};

/// An object an event named that can never be read: gone, its bucket gone, or its access
/// denied. Retrying cannot help, so a function logs it once, counts it and goes on.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Unreadable {
    /// The bucket.
    pub bucket: String,
    /// The key.
    pub key: String,
    /// Why ([`Error::kind`]: `NotFound` or `AccessDenied`).
    pub kind: &'static str,
}

impl Unreadable {
    /// `Some` when `error`, met reading `bucket`/`key`, is one retrying cannot fix (logged here,
    /// in one line with the key); `None` for any other error.
    pub fn of(bucket: &str, key: &str, error: &Error) -> Option<Unreadable> {
        let kind = error.kind();
        if !matches!(kind, "NotFound" | "AccessDenied") {
            return None;
        }
        tracing::error!(%bucket, %key, kind, "object unreadable, and retrying cannot change that: skipped");
        Some(Unreadable {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            kind,
        })
    }
}

/// Starts reading `key`; a failure that retrying cannot fix is `Ok(Err(Unreadable))`
/// ([`Unreadable::of`]), and any other failure is the error.
pub async fn open<S: ObjectStore>(
    store: &S,
    bucket: &str,
    key: &str,
) -> Result<std::result::Result<S::Reader, Unreadable>> {
    match store.reader(bucket, key).await {
        Ok(reader) => Ok(Ok(reader)),
        Err(e) => Unreadable::of(bucket, key, &e).map(Err).ok_or(e),
    }
}

/// Where the pipeline's objects live.
pub trait ObjectStore: Clone + Send + Sync + 'static {
    /// A blocking reader over an object's body (read it on a blocking thread).
    type Reader: Read + Send + 'static;
    /// A blocking writer that creates an object when finished.
    type Writer: ObjectWriter;

    /// Starts reading an object; a missing object is an error with [`Error::is_not_found`].
    fn reader(&self, bucket: &str, key: &str) -> impl Future<Output = Result<Self::Reader>> + Send;

    /// Starts reading an object from byte `offset`, only if its ETag is still `etag` (else
    /// an error with the code `PreconditionFailed`, which retrying cannot fix): how a read
    /// cut short resumes ([`crate::resume::ResumingReader`]).
    fn reader_at(
        &self,
        bucket: &str,
        key: &str,
        offset: u64,
        etag: &str,
    ) -> impl Future<Output = Result<Self::Reader>> + Send;

    /// Reads a small object whole (alerts, markers).
    fn get(&self, bucket: &str, key: &str) -> impl Future<Output = Result<Bytes>> + Send;

    /// Whether an object exists.
    fn exists(&self, bucket: &str, key: &str) -> impl Future<Output = Result<bool>> + Send;

    /// Writes a small object, replacing any there.
    fn put(&self, bucket: &str, key: &str, body: Bytes) -> impl Future<Output = Result<()>> + Send;

    /// Creates a small object only if none exists at the key: of concurrent callers, exactly
    /// one gets [`PutOutcome::Created`].
    fn put_if_absent(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
    ) -> impl Future<Output = Result<PutOutcome>> + Send;

    /// Up to `max` objects under `prefix`, in key order (on S3, a page per 1000 keys).
    fn list(
        &self,
        bucket: &str,
        prefix: &str,
        max: usize,
    ) -> impl Future<Output = Result<Vec<Listed>>> + Send;

    /// A writer for `bucket/key`; nothing exists there until [`ObjectWriter::finish`].
    /// Call inside a tokio runtime (an async task or a `spawn_blocking` thread).
    fn writer(&self, bucket: &str, key: &str) -> Self::Writer;
}

/// One object of a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    /// Its key.
    pub key: String,
    /// Its ETag: changes whenever the object is written with other content.
    pub etag: String,
    /// Its size in bytes (as stored: compressed, for a gzip object).
    pub size: u64,
}

/// A streaming writer of one object.
pub trait ObjectWriter: Write + Send + 'static {
    /// Writes the rest and creates the object; blocks until it exists.
    fn finish(self) -> Result<()>;
}

// ---------------------------------------------------------------------------------------------
// S3

/// [`ObjectStore`] on S3, through the [`crate::s3io`] adapters.
#[derive(Clone, Debug)]
pub struct S3Store {
    client: aws_sdk_s3::Client,
}

impl S3Store {
    /// A store on this client.
    pub fn new(client: aws_sdk_s3::Client) -> Self {
        S3Store { client }
    }

    /// The client.
    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }
}

impl ObjectStore for S3Store {
    type Reader = ObjectReader;
    type Writer = S3Writer;

    async fn reader(&self, bucket: &str, key: &str) -> Result<ObjectReader> {
        s3io::get_object_reader(&self.client, bucket, key).await
    }

    async fn reader_at(
        &self,
        bucket: &str,
        key: &str,
        offset: u64,
        etag: &str,
    ) -> Result<ObjectReader> {
        s3io::get_object_reader_at(&self.client, bucket, key, offset, Some(etag)).await
    }

    async fn get(&self, bucket: &str, key: &str) -> Result<Bytes> {
        s3io::get_object_bytes(&self.client, bucket, key).await
    }

    async fn exists(&self, bucket: &str, key: &str) -> Result<bool> {
        s3io::object_exists(&self.client, bucket, key).await
    }

    async fn put(&self, bucket: &str, key: &str, body: Bytes) -> Result<()> {
        s3io::put_object(&self.client, bucket, key, body).await
    }

    async fn list(&self, bucket: &str, prefix: &str, max: usize) -> Result<Vec<Listed>> {
        s3io::list_keys(&self.client, bucket, prefix, max).await
    }

    async fn put_if_absent(&self, bucket: &str, key: &str, body: Bytes) -> Result<PutOutcome> {
        s3io::put_if_absent(&self.client, bucket, key, body).await
    }

    fn writer(&self, bucket: &str, key: &str) -> S3Writer {
        S3Writer::new(self.client.clone(), bucket, key)
    }
}

impl ObjectWriter for S3Writer {
    fn finish(self) -> Result<()> {
        S3Writer::finish(self).map(drop)
    }
}

// ---------------------------------------------------------------------------------------------
// Memory

/// One operation a [`MemStore`] was asked to make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accessed {
    /// The operation.
    pub op: Op,
    /// The bucket.
    pub bucket: String,
    /// The key.
    pub key: String,
}

/// What an injected fault does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The operation fails with an error of this kind (a 500 `InternalError`, or a 403
    /// `AccessDenied`), having done nothing.
    Fail(Retry),
    /// The operation waits this long first (a writer's `finish` sleeps its thread), so
    /// another run can overtake it.
    Delay(Duration),
    /// A read's body breaks after this many bytes, as a dropped connection does (an
    /// `io::Error` of kind `ConnectionReset`, which retrying may fix). Other operations
    /// ignore it.
    Cut(u64),
}

struct Injected {
    op: Op,
    key_contains: String,
    times: usize,
    fault: Fault,
}

#[derive(Default)]
struct Mem {
    objects: BTreeMap<(String, String), Bytes>,
    accesses: Vec<Accessed>,
    /// `(bucket, key)` of every write that created or replaced an object, in order.
    created: Vec<(String, String)>,
    faults: Vec<Injected>,
}

/// An [`ObjectStore`] in memory, for tests: thread-safe (clones share the objects), it
/// records every operation ([`MemStore::accesses`]) and can fail or delay chosen ones
/// ([`MemStore::inject`]) to play a crash between two writes or two runs interleaved.
#[derive(Clone, Default)]
pub struct MemStore {
    mem: Arc<Mutex<Mem>>,
}

impl std::fmt::Debug for MemStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mem = self.lock();
        f.debug_struct("MemStore")
            .field("objects", &mem.objects.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

fn url(bucket: &str, key: &str) -> String {
    format!("s3://{bucket}/{key}")
}

fn op_name(op: Op) -> &'static str {
    match op {
        Op::Read => "GetObject",
        Op::Exists => "HeadObject",
        Op::Put => "PutObject",
        Op::PutIfAbsent => "PutObject If-None-Match",
        Op::Write => "upload",
        Op::List => "ListObjectsV2",
    }
}

impl MemStore {
    /// An empty store.
    pub fn new() -> Self {
        MemStore::default()
    }

    fn lock(&self) -> MutexGuard<'_, Mem> {
        // A test that panicked while holding the lock left consistent data: every change
        // is one map operation.
        self.mem.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Puts an object without recording an access (a test's setup).
    pub fn insert(&self, bucket: &str, key: &str, body: impl Into<Bytes>) {
        self.lock()
            .objects
            .insert((bucket.to_owned(), key.to_owned()), body.into());
    }

    /// Stores an object written by an operation: what S3 would raise an `ObjectCreated`
    /// event for.
    fn create(&self, bucket: &str, key: &str, body: Bytes) {
        let mut mem = self.lock();
        mem.created.push((bucket.to_owned(), key.to_owned()));
        mem.objects
            .insert((bucket.to_owned(), key.to_owned()), body);
    }

    /// The keys under `prefix` in `bucket` of every object written through the store (not by
    /// [`MemStore::insert`]), once per write, in order: the `ObjectCreated` events S3 would
    /// raise.
    pub fn created(&self, bucket: &str, prefix: &str) -> Vec<String> {
        self.lock()
            .created
            .iter()
            .filter(|(b, k)| b == bucket && k.starts_with(prefix))
            .map(|(_, k)| k.clone())
            .collect()
    }

    /// Removes an object without recording an access (a test's setup).
    pub fn remove(&self, bucket: &str, key: &str) {
        self.lock()
            .objects
            .remove(&(bucket.to_owned(), key.to_owned()));
    }

    /// An object's body.
    pub fn object(&self, bucket: &str, key: &str) -> Option<Bytes> {
        self.lock()
            .objects
            .get(&(bucket.to_owned(), key.to_owned()))
            .cloned()
    }

    /// The keys in `bucket` that start with `prefix`, sorted.
    pub fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        self.lock()
            .objects
            .keys()
            .filter(|(b, k)| b == bucket && k.starts_with(prefix))
            .map(|(_, k)| k.clone())
            .collect()
    }

    /// Every operation made so far, in order (failed ones included).
    pub fn accesses(&self) -> Vec<Accessed> {
        self.lock().accesses.clone()
    }

    /// The (operation, area) pairs `function` made, checking each access against the layout:
    /// panics on a key outside every area of the default layout, or an access
    /// `tripline_core::layout::ACCESS` does not give `function` (this store is for tests).
    pub fn areas_touched(&self, function: &str) -> BTreeSet<(Op, Area)> {
        let layout = Layout::default();
        self.accesses()
            .iter()
            .map(|a| {
                let area = layout.area(&a.key).unwrap_or_else(|| panic!("{a:?}"));
                assert!(
                    layout::allowed(function, a.op, area),
                    "{a:?} not in ACCESS for {function}"
                );
                (a.op, area)
            })
            .collect()
    }

    /// The next `times` operations `op` on keys containing `key_contains` meet `fault`.
    pub fn inject(&self, op: Op, key_contains: &str, times: usize, fault: Fault) {
        self.lock().faults.push(Injected {
            op,
            key_contains: key_contains.to_owned(),
            times,
            fault,
        });
    }

    /// Records the access and takes the fault that applies to it, if any.
    fn begin(&self, op: Op, bucket: &str, key: &str) -> Option<Fault> {
        let mut mem = self.lock();
        mem.accesses.push(Accessed {
            op,
            bucket: bucket.to_owned(),
            key: key.to_owned(),
        });
        let hit = mem
            .faults
            .iter_mut()
            .find(|f| f.op == op && f.times > 0 && key.contains(&f.key_contains))?;
        hit.times -= 1;
        Some(hit.fault)
    }

    fn failure(op: Op, bucket: &str, key: &str, retry: Retry) -> Error {
        let (code, status) = match retry {
            Retry::Transient => ("InternalError", 500),
            Retry::Permanent => ("AccessDenied", 403),
        };
        Error::Aws {
            context: format!("{} {}", op_name(op), url(bucket, key)),
            code: Some(code.into()),
            status: Some(status),
            message: "injected fault".into(),
        }
    }

    /// Applies the fault of an async operation.
    async fn fault(&self, op: Op, bucket: &str, key: &str) -> Result<()> {
        match self.begin(op, bucket, key) {
            None => Ok(()),
            Some(Fault::Delay(d)) => {
                tokio::time::sleep(d).await;
                Ok(())
            }
            Some(Fault::Fail(retry)) => Err(Self::failure(op, bucket, key, retry)),
            Some(Fault::Cut(_)) => Ok(()),
        }
    }

    /// A reader over `bucket/key` from `offset`, with the fault of [`Op::Read`] applied.
    async fn read_from(
        &self,
        bucket: &str,
        key: &str,
        offset: u64,
        etag: Option<&str>,
    ) -> Result<MemReader> {
        let fault = self.begin(Op::Read, bucket, key);
        match fault {
            Some(Fault::Delay(d)) => tokio::time::sleep(d).await,
            Some(Fault::Fail(retry)) => return Err(Self::failure(Op::Read, bucket, key, retry)),
            _ => {}
        }
        let body = self
            .object(bucket, key)
            .ok_or_else(|| Self::missing(bucket, key))?;
        if etag.is_some_and(|e| e != etag_of(&body)) {
            return Err(Error::Aws {
                context: format!("GetObject {}", url(bucket, key)),
                code: Some("PreconditionFailed".into()),
                status: Some(412),
                message: "PreconditionFailed: At least one of the pre-conditions you specified \
                          did not hold"
                    .into(),
            });
        }
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(body.len());
        Ok(MemReader {
            body: Cursor::new(body.slice(start..)),
            cut: match fault {
                Some(Fault::Cut(n)) => Some(n),
                _ => None,
            },
        })
    }

    fn missing(bucket: &str, key: &str) -> Error {
        Error::Aws {
            context: format!("GetObject {}", url(bucket, key)),
            code: Some("NoSuchKey".into()),
            status: Some(404),
            message: "The specified key does not exist.".into(),
        }
    }
}

/// An object's ETag in a [`MemStore`]: a hash of its body, quoted as S3 quotes ETags.
fn etag_of(body: &Bytes) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    body.hash(&mut h);
    format!("\"{:016x}\"", h.finish())
}

/// [`MemStore`]'s reader: the body, broken after [`Fault::Cut`]'s bytes when one applied.
#[derive(Debug)]
pub struct MemReader {
    body: Cursor<Bytes>,
    cut: Option<u64>,
}

impl Read for MemReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(cut) = self.cut else {
            return self.body.read(buf);
        };
        let left = cut.saturating_sub(self.body.position());
        if left == 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "injected fault: connection reset",
            ));
        }
        let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        self.body.read(&mut buf[..n])
    }
}

impl ObjectStore for MemStore {
    type Reader = MemReader;
    type Writer = MemWriter;

    async fn reader(&self, bucket: &str, key: &str) -> Result<MemReader> {
        self.read_from(bucket, key, 0, None).await
    }

    async fn reader_at(
        &self,
        bucket: &str,
        key: &str,
        offset: u64,
        etag: &str,
    ) -> Result<MemReader> {
        self.read_from(bucket, key, offset, Some(etag)).await
    }

    async fn get(&self, bucket: &str, key: &str) -> Result<Bytes> {
        self.fault(Op::Read, bucket, key).await?;
        self.object(bucket, key)
            .ok_or_else(|| Self::missing(bucket, key))
    }

    async fn exists(&self, bucket: &str, key: &str) -> Result<bool> {
        self.fault(Op::Exists, bucket, key).await?;
        Ok(self.object(bucket, key).is_some())
    }

    async fn put(&self, bucket: &str, key: &str, body: Bytes) -> Result<()> {
        self.fault(Op::Put, bucket, key).await?;
        self.create(bucket, key, body);
        Ok(())
    }

    async fn put_if_absent(&self, bucket: &str, key: &str, body: Bytes) -> Result<PutOutcome> {
        self.fault(Op::PutIfAbsent, bucket, key).await?;
        let mut mem = self.lock();
        let slot = (bucket.to_owned(), key.to_owned());
        if mem.objects.contains_key(&slot) {
            return Ok(PutOutcome::AlreadyExists);
        }
        mem.created.push(slot.clone());
        mem.objects.insert(slot, body);
        Ok(PutOutcome::Created)
    }

    async fn list(&self, bucket: &str, prefix: &str, max: usize) -> Result<Vec<Listed>> {
        self.fault(Op::List, bucket, prefix).await?;
        let mem = self.lock();
        Ok(mem
            .objects
            .iter()
            .filter(|((b, k), _)| b == bucket && k.starts_with(prefix))
            .take(max)
            .map(|((_, key), body)| Listed {
                key: key.clone(),
                etag: etag_of(body),
                size: body.len() as u64,
            })
            .collect())
    }

    fn writer(&self, bucket: &str, key: &str) -> MemWriter {
        MemWriter {
            store: self.clone(),
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            buf: Vec::new(),
        }
    }
}

/// [`MemStore`]'s writer: the object appears, whole, at [`ObjectWriter::finish`] (where a
/// fault injected for [`Op::Write`] applies); dropped unfinished, it leaves nothing.
pub struct MemWriter {
    store: MemStore,
    bucket: String,
    key: String,
    buf: Vec<u8>,
}

impl Write for MemWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl ObjectWriter for MemWriter {
    fn finish(self) -> Result<()> {
        match self.store.begin(Op::Write, &self.bucket, &self.key) {
            None | Some(Fault::Cut(_)) => {}
            Some(Fault::Delay(d)) => std::thread::sleep(d),
            Some(Fault::Fail(retry)) => {
                return Err(MemStore::failure(Op::Write, &self.bucket, &self.key, retry))
            }
        }
        self.store.create(&self.bucket, &self.key, self.buf.into());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_memory_store_keeps_records_and_fails_on_demand() {
        let store = MemStore::new();
        store.insert("b", "k", "body");
        let mut text = String::new();
        store
            .reader("b", "k")
            .await
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "body");
        let missing = store.get("b", "nope").await.unwrap_err();
        assert!(missing.is_not_found() && !missing.retryable(), "{missing}");
        assert!(!store.exists("b", "m").await.unwrap());
        let created = store.put_if_absent("b", "m", "1".into()).await.unwrap();
        let again = store.put_if_absent("b", "m", "2".into()).await.unwrap();
        assert_eq!(
            (created, again),
            (PutOutcome::Created, PutOutcome::AlreadyExists)
        );
        assert_eq!(store.object("b", "m").unwrap(), "1");

        store.inject(Op::Put, "alerts/", 1, Fault::Fail(Retry::Transient));
        let e = store.put("b", "alerts/a", "x".into()).await.unwrap_err();
        assert!(
            e.retryable() && e.to_string().contains("s3://b/alerts/a"),
            "{e}"
        );
        assert_eq!(store.object("b", "alerts/a"), None);
        store.put("b", "alerts/a", "x".into()).await.unwrap();

        let mut w = store.writer("b", "out");
        w.write_all(b"streamed").unwrap();
        assert_eq!(store.object("b", "out"), None);
        w.finish().unwrap();
        assert_eq!(store.object("b", "out").unwrap(), "streamed");
        store.inject(Op::Write, "out", 1, Fault::Fail(Retry::Permanent));
        let w = store.writer("b", "out2");
        assert!(!w.finish().unwrap_err().retryable());
        assert_eq!(store.keys("b", "out"), ["out"]);
        assert_eq!(store.created("b", ""), ["m", "alerts/a", "out"]);

        let ops: Vec<Op> = store.accesses().iter().map(|a| a.op).collect();
        assert_eq!(
            ops,
            [
                Op::Read,
                Op::Read,
                Op::Exists,
                Op::PutIfAbsent,
                Op::PutIfAbsent,
                Op::Put,
                Op::Put,
                Op::Write,
                Op::Write
            ]
        );
    }

    #[test]
    fn stores_and_their_streams_move_to_blocking_threads() {
        fn send<T: Send + Sync + 'static>() {}
        send::<MemStore>();
        send::<S3Store>();
        fn writer<W: ObjectWriter>() {}
        writer::<MemWriter>();
        writer::<S3Writer>();
    }
}
