//! A blocking reader over one listed object that survives a dropped connection: after a
//! failure that retrying may fix, it asks for the rest of the object (`Range: bytes=N-`,
//! `If-Match` the listed ETag) and goes on where it stopped, so the decoder above it sees
//! one unbroken stream, nothing read twice, nothing skipped, and never bytes of a rewritten
//! object spliced onto the old one's.
//!
//! It follows [`crate::s3io`]'s threading rules: read it on a thread outside the runtime
//! (or `spawn_blocking`), never on an async worker, since it blocks on the runtime
//! ([`Handle::block_on`]) to start each request.

use std::io::{self, Read};
use std::time::Duration;

use tokio::runtime::Handle;

use crate::error::{retry_of, Retry};
use crate::store::{Listed, ObjectStore};

/// Failures in a row (without a byte read between them) after which the reader gives up.
pub const MAX_RETRIES: u32 = 4;

/// The wait before the first retry; it doubles with each retry in a row, with jitter.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// A blocking reader over one listed object that resumes where it stopped after a failure
/// retrying may fix (see the module docs).
pub struct ResumingReader<S: ObjectStore> {
    store: S,
    handle: Handle,
    bucket: String,
    object: Listed,
    /// Bytes of the object handed out so far: where a resumed request starts.
    offset: u64,
    /// The current request's body, `None` before the first and after a failure.
    body: Option<S::Reader>,
    /// Failures since the last byte read.
    failures: u32,
    /// Requests started (the first one included).
    requests: u32,
    backoff: Duration,
    /// Once it gave up: the error's text, returned again by every later read (without
    /// another request).
    gave_up: Option<String>,
}

impl<S: ObjectStore> std::fmt::Debug for ResumingReader<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResumingReader")
            .field("bucket", &self.bucket)
            .field("key", &self.object.key)
            .field("offset", &self.offset)
            .field("requests", &self.requests)
            .finish_non_exhaustive()
    }
}

impl<S: ObjectStore> ResumingReader<S> {
    /// A reader over `object` of `bucket`, as listed (its ETag and size). Nothing is
    /// requested until the first `read`, so an object that cannot be read fails there,
    /// where the decoder reports it against that object.
    pub fn new(store: S, handle: Handle, bucket: impl Into<String>, object: Listed) -> Self {
        ResumingReader {
            store,
            handle,
            bucket: bucket.into(),
            object,
            offset: 0,
            body: None,
            failures: 0,
            requests: 0,
            backoff: FIRST_BACKOFF,
            gave_up: None,
        }
    }

    /// The wait before the first retry (it doubles with each retry in a row).
    pub fn with_backoff(mut self, first: Duration) -> Self {
        self.backoff = first;
        self
    }

    /// Bytes read so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// GetObject requests made so far: 1 when nothing failed.
    pub fn requests(&self) -> u32 {
        self.requests
    }

    fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.object.key)
    }

    /// Counts a failure and waits before the next try, or, when retrying cannot help or the
    /// retries are spent, returns the error to give the caller. The error keeps its kind and,
    /// inside it, a typed [`crate::Error`] when there was one.
    fn failed(&mut self, error: io::Error) -> io::Result<()> {
        self.body = None;
        self.failures += 1;
        if retry_of(&error) == Retry::Permanent || self.failures > MAX_RETRIES {
            let retries = self.failures - 1;
            // A typed error names the request and so the object already.
            let url = self.url();
            let subject = if error.to_string().contains(&url) {
                String::new()
            } else {
                format!("{url}: ")
            };
            let message = format!(
                "{subject}{error} (after {} of {} bytes{})",
                self.offset,
                self.object.size,
                match retries {
                    0 => String::new(),
                    1 => ", 1 retry".to_owned(),
                    n => format!(", {n} retries"),
                }
            );
            self.gave_up = Some(message.clone());
            return Err(match error.into_inner() {
                Some(inner) => match inner.downcast::<crate::Error>() {
                    Ok(ours) => io::Error::other(Contextual {
                        message,
                        source: *ours,
                    }),
                    Err(other) => io::Error::other(format!("{message}: {other}")),
                },
                None => io::Error::other(message),
            });
        }
        let wait = self.backoff * 2u32.pow(self.failures - 1);
        // Up to half again, so readers cut off by one network blip do not come back at once.
        let jitter = wait.mul_f64(fastrand::f64() * 0.5);
        tracing::debug!(url = %self.url(), offset = self.offset, failures = self.failures,
            %error, "object read failed; resuming");
        std::thread::sleep(wait + jitter);
        Ok(())
    }
}

/// A typed error with the reader's own account of it in front (which object, how far).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
struct Contextual {
    message: String,
    #[source]
    source: crate::Error,
}

impl<S: ObjectStore> Read for ResumingReader<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if let Some(message) = &self.gave_up {
            return Err(io::Error::other(message.clone()));
        }
        loop {
            let body = match &mut self.body {
                Some(body) => body,
                None => {
                    self.requests += 1;
                    let request = self.store.reader_at(
                        &self.bucket,
                        &self.object.key,
                        self.offset,
                        &self.object.etag,
                    );
                    match self.handle.block_on(request) {
                        Ok(body) => self.body.insert(body),
                        Err(e) => {
                            self.failed(io::Error::other(e))?;
                            continue;
                        }
                    }
                }
            };
            match body.read(buf) {
                Ok(0) if self.offset < self.object.size => {
                    // The body ended before the listed size: a cut the transport did not
                    // report. The ETag matched, so the object is the one listed.
                    let e = io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("body ended at byte {}", self.offset),
                    );
                    self.failed(e)?;
                }
                Ok(n) => {
                    if n > 0 {
                        self.offset += n as u64;
                        self.failures = 0;
                    }
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => self.failed(e)?,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Fault, MemStore};
    use tripline_core::layout::Op;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// A body whose bytes all differ from their neighbours', so a byte read twice or
    /// skipped shows.
    fn body(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    fn listed(store: &MemStore, key: &str) -> Listed {
        let rt = runtime();
        let mut all = rt.block_on(store.list("b", key, 1)).unwrap();
        all.remove(0)
    }

    fn reader(
        store: &MemStore,
        rt: &tokio::runtime::Runtime,
        key: &str,
    ) -> ResumingReader<MemStore> {
        ResumingReader::new(store.clone(), rt.handle().clone(), "b", listed(store, key))
            .with_backoff(Duration::from_millis(1))
    }

    fn reads(store: &MemStore) -> usize {
        store.accesses().iter().filter(|a| a.op == Op::Read).count()
    }

    #[test]
    fn a_cut_read_resumes_where_it_stopped() {
        let store = MemStore::new();
        let data = body(100_000);
        store.insert("b", "raw/a.gz", data.clone());
        // Two cuts in a row, then one after more progress: all survived.
        store.inject(Op::Read, "raw/a.gz", 1, Fault::Cut(30_000));
        store.inject(Op::Read, "raw/a.gz", 1, Fault::Cut(0));
        store.inject(Op::Read, "raw/a.gz", 1, Fault::Cut(10_000));
        let rt = runtime();
        let mut r = reader(&store, &rt, "raw/a.gz");
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out.len(), data.len());
        assert!(out == data, "the bytes differ");
        assert_eq!((r.requests(), reads(&store)), (4, 4));
        assert_eq!(r.offset(), data.len() as u64);
    }

    #[test]
    fn it_gives_up_after_the_retries_in_a_row() {
        let store = MemStore::new();
        store.insert("b", "raw/a.gz", body(1000));
        store.inject(Op::Read, "raw/a.gz", 1, Fault::Cut(400));
        store.inject(Op::Read, "raw/a.gz", 10, Fault::Cut(0));
        let rt = runtime();
        let mut r = reader(&store, &rt, "raw/a.gz");
        let mut out = Vec::new();
        let e = r.read_to_end(&mut out).unwrap_err();
        assert_eq!(
            out.len(),
            400,
            "what came before the failure was handed out"
        );
        let text = e.to_string();
        assert!(
            text.starts_with("s3://b/raw/a.gz: injected fault: connection reset")
                && text.contains("after 400 of 1000 bytes, 4 retries"),
            "{text}"
        );
        // The first request, then a retry for each failure in a row.
        assert_eq!(r.requests(), 1 + MAX_RETRIES);
    }

    #[test]
    fn a_permanent_failure_is_not_retried_and_keeps_its_kind() {
        let store = MemStore::new();
        store.insert("b", "raw/a.gz", body(1000));
        store.inject(
            Op::Read,
            "raw/a.gz",
            1,
            Fault::Fail(crate::Retry::Permanent),
        );
        let rt = runtime();
        let mut r = reader(&store, &rt, "raw/a.gz");
        let e = r.read(&mut [0; 10]).unwrap_err();
        assert_eq!(crate::kind_of(&e), Some("AccessDenied"));
        let again = r.read(&mut [0; 10]).unwrap_err();
        assert_eq!(again.to_string(), e.to_string());
        assert_eq!(r.requests(), 1, "a reader that gave up asks no more");
        assert_eq!(crate::retry_of(&e), crate::Retry::Permanent);
        assert!(
            e.to_string()
                .starts_with("GetObject s3://b/raw/a.gz: injected fault (after 0 of 1000 bytes)"),
            "{e}"
        );

        // A transient failure to start is retried like a cut.
        store.inject(
            Op::Read,
            "raw/a.gz",
            2,
            Fault::Fail(crate::Retry::Transient),
        );
        let mut r = reader(&store, &rt, "raw/a.gz");
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!((out.len(), r.requests()), (1000, 3));
    }

    #[test]
    fn an_object_rewritten_mid_read_is_not_spliced() {
        let store = MemStore::new();
        store.insert("b", "raw/a.gz", body(1000));
        store.inject(Op::Read, "raw/a.gz", 1, Fault::Cut(500));
        let rt = runtime();
        let mut r = reader(&store, &rt, "raw/a.gz");
        let mut first = vec![0; 500];
        r.read_exact(&mut first).unwrap();
        store.insert("b", "raw/a.gz", vec![b'x'; 2000]);
        let e = r.read(&mut [0; 10]).unwrap_err();
        assert_eq!(r.requests(), 2, "a changed object is not retried");
        assert!(e.to_string().contains("PreconditionFailed"), "{e}");
        assert_eq!(crate::retry_of(&e), crate::Retry::Permanent);
    }

    #[test]
    fn a_body_shorter_than_listed_is_a_cut() {
        let store = MemStore::new();
        store.insert("b", "raw/a.gz", body(1000));
        let rt = runtime();
        let mut object = listed(&store, "raw/a.gz");
        object.size = 1500;
        let mut r = ResumingReader::new(store.clone(), rt.handle().clone(), "b", object)
            .with_backoff(Duration::from_millis(1));
        let mut out = Vec::new();
        let e = r.read_to_end(&mut out).unwrap_err();
        assert_eq!(out.len(), 1000);
        assert!(e.to_string().contains("body ended at byte 1000"), "{e}");
    }
}
