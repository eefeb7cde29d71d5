//! Decoding Firehose objects into normalized events, streaming.
//!
//! An [`ObjectDecoder`] wraps any `Read` (a file, stdin, an S3 body) and yields
//! [`Decoded`] items one at a time: memory stays bounded by the largest record
//! ([`Limits::max_record_bytes`]) however large the object is. Gzip is detected by its
//! magic bytes, because Firehose keys don't always end in `.gz` and users rename files.
//!
//! Accounting is the contract: every record is either decoded (into zero or more events:
//! an empty snapshot has none) or quarantined with a reason, so
//! `records == decoded + quarantined` always holds, and damage to the object itself
//! (corrupt gzip, the decompression cap) is reported in [`Summary::error`] after keeping
//! every record decoded before it.

mod framing;
mod raw;
mod record;

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read};

use serde::{Deserialize, Serialize};

use std::sync::Arc;

use crate::event::{Event, Kind, Quarantined, SourceRef};
use crate::tables::{Resolver, TableCache};
use crate::worker::{read_ahead, Parallelism};
use framing::{Frame, Problem, Splitter};

pub use framing::HEAD_BYTES as QUARANTINE_RAW_BYTES;

/// Configurable limits that turn hostile or broken input into clear, counted errors.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest record accepted; osquery itself caps a log line at 1 MiB.
    pub max_record_bytes: usize,
    /// Most bytes one object may decompress to, so a gzip bomb costs bounded time.
    pub max_decompressed_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_record_bytes: 1 << 20,
            // Firehose objects are at most 128 MiB of gzip; osquery JSON compresses ~10-30x.
            max_decompressed_bytes: 8 << 30,
        }
    }
}

/// Where an object came from; copied into every event's and quarantine entry's `source`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    /// The S3 bucket, for an object read from S3.
    pub bucket: Option<String>,
    /// The S3 key, for an object read from S3.
    pub key: Option<String>,
    /// The file path, for a local file.
    pub path: Option<String>,
}

impl Origin {
    /// A local file (or `-` for stdin).
    pub fn path(path: impl Into<String>) -> Self {
        Origin {
            path: Some(path.into()),
            ..Default::default()
        }
    }

    /// An S3 object.
    pub fn s3(bucket: impl Into<String>, key: impl Into<String>) -> Self {
        Origin {
            bucket: Some(bucket.into()),
            key: Some(key.into()),
            path: None,
        }
    }

    fn source(&self, record: u64) -> SourceRef {
        SourceRef {
            bucket: self.bucket.clone(),
            key: self.key.clone(),
            path: self.path.clone(),
            record,
            row: None,
        }
    }
}

/// Extra decoding options beyond the limits.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Size limits: larger records are quarantined, larger objects stopped.
    pub limits: Limits,
    /// The user's own pack names, so `pack_<pack>_<query>` splits for them too.
    pub extra_packs: Vec<String>,
    /// Works out each row's `tables` (the built-in registry and column inference by
    /// default; [`Resolver::with_queries`] adds the user's query definitions, whose pack
    /// names then split like `extra_packs`).
    pub tables: Arc<Resolver>,
}

/// One item out of the decoder.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// One normalized row (or status line).
    Event(Box<Event>),
    /// A record that could not be normalized, with its reason.
    Quarantined(Box<Quarantined>),
}

/// Damage to the object as a whole (as opposed to one bad record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ObjectError {
    /// The gzip stream was truncated or corrupt; records before the damage were kept.
    Corrupt {
        /// What the decompressor said.
        message: String,
        /// Decompressed bytes read before the damage.
        after_bytes: u64,
    },
    /// The object decompressed past [`Limits::max_decompressed_bytes`].
    DecompressedTooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// Reading the object failed (I/O, network).
    Read {
        /// What the reader said.
        message: String,
    },
}

impl fmt::Display for ObjectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ObjectError::Corrupt {
                message,
                after_bytes,
            } => write!(
                f,
                "corrupt or truncated gzip after {after_bytes} decompressed bytes: {message}"
            ),
            ObjectError::DecompressedTooLarge { limit } => write!(
                f,
                "object decompresses to more than {limit} bytes (gzip bomb?); stopped there"
            ),
            ObjectError::Read { message } => write!(f, "read failed: {message}"),
        }
    }
}

impl std::error::Error for ObjectError {}

/// The accounting of one object (or, after [`Summary::add`], of many).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Objects decoded (1 for one object; summed over several).
    pub objects: u64,
    /// Records seen: always `decoded + quarantined`.
    pub records: u64,
    /// Records that became events.
    pub decoded: u64,
    /// Records quarantined, each with its reason.
    pub quarantined: u64,
    /// Events the decoded records became (one per row).
    pub events: u64,
    /// Missing host, time or query name in records that still decoded.
    pub warnings: u64,
    /// Result events whose tables nothing explained (see [`crate::tables`]).
    #[serde(default)]
    pub tables_unknown: u64,
    /// Bytes read from the source (compressed size for gzip).
    pub bytes_in: u64,
    /// Bytes after decompression (equal to `bytes_in` for plain objects).
    pub bytes_decoded: u64,
    /// Objects with object-level damage.
    pub objects_with_errors: u64,
    /// What damaged the object, if anything (the last object's, when summed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ObjectError>,
}

impl Summary {
    /// Folds another object's summary into this one. The first error is kept.
    pub fn add(&mut self, other: &Summary) {
        self.objects += other.objects;
        self.records += other.records;
        self.decoded += other.decoded;
        self.quarantined += other.quarantined;
        self.events += other.events;
        self.warnings += other.warnings;
        self.tables_unknown += other.tables_unknown;
        self.bytes_in += other.bytes_in;
        self.bytes_decoded += other.bytes_decoded;
        self.objects_with_errors += other.objects_with_errors;
        if self.error.is_none() {
            self.error.clone_from(&other.error);
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "objects={} records={} decoded={} quarantined={} events={} warnings={} tables_unknown={} bytes_in={} bytes_decoded={}",
            self.objects,
            self.records,
            self.decoded,
            self.quarantined,
            self.events,
            self.warnings,
            self.tables_unknown,
            self.bytes_in,
            self.bytes_decoded
        )?;
        if self.objects_with_errors > 0 {
            write!(f, " object_errors={}", self.objects_with_errors)?;
        }
        if let (1, Some(e)) = (self.objects, &self.error) {
            write!(f, " error=\"{e}\"")?;
        }
        Ok(())
    }
}

/// Streams one object's records as normalized events and quarantine entries.
pub struct ObjectDecoder<'a> {
    splitter: Splitter<Box<dyn BufRead + Send + 'a>>,
    counters: Counters,
    origin: Origin,
    extra_packs: Vec<String>,
    tables: TableCache,
    limit: u64,
    pending: VecDeque<Box<Event>>,
    /// Buffers kept from record to record, and events handed back to be refilled.
    reuse: record::Reuse,
    summary: Summary,
    done: bool,
}

impl ObjectDecoder<'static> {
    /// Like [`ObjectDecoder::new`]; with [`Parallelism::Threads`], a gzip object is inflated
    /// on a thread of its own, a bounded distance ahead of the parser, so decompression
    /// overlaps with parsing on a second core. Items, accounting and errors are the same
    /// either way. Plain input is read on the calling thread (there is nothing to overlap).
    pub fn with_parallelism(
        reader: impl Read + Send + 'static,
        origin: Origin,
        options: Options,
        parallelism: Parallelism,
    ) -> Self {
        match parallelism {
            Parallelism::Inline => Self::new(reader, origin, options),
            Parallelism::Threads => Self::open_with(reader, origin, options, read_ahead),
        }
    }
}

/// Buffers the raw input (counting its bytes) and tells whether it is gzip, by its magic
/// bytes: Firehose keys don't always end in `.gz` and users rename files.
fn open<R: Read>(reader: R, counters: &Counters) -> (BufReader<Counting<R>>, bool) {
    let mut raw = BufReader::with_capacity(
        64 << 10,
        Counting {
            inner: reader,
            count: counters.raw.clone(),
            limit: None,
            failed: Some(counters.source_failed.clone()),
        },
    );
    let gzip = matches!(raw.fill_buf(), Ok(b) if b.starts_with(&[0x1f, 0x8b]));
    (raw, gzip)
}

/// Byte counts shared with the reader wrappers inside the splitter.
#[derive(Clone, Default)]
struct Counters {
    raw: std::sync::Arc<std::sync::atomic::AtomicU64>,
    decoded: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Reading the object itself failed (rather than inflating what was read).
    source_failed: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl<'a> ObjectDecoder<'a> {
    /// Decodes `reader` on the calling thread.
    pub fn new(reader: impl Read + Send + 'a, origin: Origin, options: Options) -> Self {
        Self::open_with(reader, origin, options, |inflate| {
            Box::new(BufReader::with_capacity(256 << 10, inflate))
        })
    }

    /// Opens `reader`, inflating a gzip object through `inflate_with`.
    fn open_with(
        reader: impl Read + Send + 'a,
        origin: Origin,
        options: Options,
        inflate_with: impl FnOnce(Box<dyn Read + Send + 'a>) -> Box<dyn BufRead + Send + 'a>,
    ) -> Self {
        let counters = Counters::default();
        let limit = options.limits.max_decompressed_bytes;
        let (raw, gzip) = open(reader, &counters);
        let decoded: Box<dyn BufRead + Send + 'a> = if gzip {
            let inflate = counters.decompressed(flate2::bufread::MultiGzDecoder::new(raw), limit);
            inflate_with(Box::new(inflate))
        } else {
            Box::new(BufReader::with_capacity(
                256 << 10,
                counters.decompressed(raw, limit),
            ))
        };
        Self::assemble(decoded, counters, origin, options)
    }

    fn assemble(
        decoded: Box<dyn BufRead + Send + 'a>,
        counters: Counters,
        origin: Origin,
        options: Options,
    ) -> Self {
        ObjectDecoder {
            splitter: Splitter::new(decoded, options.limits.max_record_bytes),
            counters,
            origin,
            extra_packs: {
                let mut packs = options.extra_packs;
                packs.extend(options.tables.queries().pack_names());
                packs
            },
            tables: TableCache::new(options.tables),
            limit: options.limits.max_decompressed_bytes,
            pending: VecDeque::new(),
            reuse: record::Reuse::default(),
            summary: Summary {
                objects: 1,
                ..Default::default()
            },
            done: false,
        }
    }
    /// The accounting so far; complete once the iterator has returned `None`.
    pub fn summary(&self) -> Summary {
        let mut s = self.summary.clone();
        s.bytes_in = self.counters.raw.load(std::sync::atomic::Ordering::Relaxed);
        s.bytes_decoded = self
            .counters
            .decoded
            .load(std::sync::atomic::Ordering::Relaxed);
        s
    }

    /// Hands back an event this decoder yielded (or any other) once the caller is done with
    /// it: a later row is decoded into it, reusing its buffers instead of allocating new
    /// ones. Optional; it saves most of the allocating and freeing per event. At most
    /// a fixed number of events are kept (what a detection thread can have in flight), so the
    /// memory it holds is bounded; the rest are dropped.
    pub fn recycle(&mut self, event: Box<Event>) {
        if self.reuse.spare.len() < record::MAX_SPARE {
            self.reuse.spare.push(event);
        }
    }

    fn record(&mut self, bytes: &[u8]) -> Option<Decoded> {
        self.summary.records += 1;
        let record = self.summary.records;
        let before = self.pending.len();
        match record::decode(
            bytes,
            &self.origin,
            record,
            &self.extra_packs,
            &mut self.tables,
            &mut self.reuse,
            &mut self.pending,
        ) {
            Ok(warnings) => {
                self.summary.decoded += 1;
                self.summary.warnings += warnings;
                self.summary.events += (self.pending.len() - before) as u64;
                self.summary.tables_unknown += self
                    .pending
                    .range(before..)
                    .filter(|e| e.kind == Kind::Result && e.tables_from.is_none())
                    .count() as u64;
                self.pending.pop_front().map(Decoded::Event)
            }
            Err(reason) => {
                let source = self.origin.source(record);
                Some(self.quarantine(source, reason, bytes, bytes.len() as u64))
            }
        }
    }

    fn quarantine(&mut self, source: SourceRef, reason: String, head: &[u8], len: u64) -> Decoded {
        self.summary.quarantined += 1;
        let head = &head[..head.len().min(QUARANTINE_RAW_BYTES)];
        Decoded::Quarantined(Box::new(Quarantined {
            source,
            reason,
            raw: String::from_utf8_lossy(head).into_owned(),
            bytes: len,
        }))
    }

    fn object_error(&mut self, e: io::Error) {
        let after = self
            .counters
            .decoded
            .load(std::sync::atomic::Ordering::Relaxed);
        let error = if e.get_ref().is_some_and(|inner| inner.is::<LimitExceeded>()) {
            ObjectError::DecompressedTooLarge { limit: self.limit }
        } else if !self
            .counters
            .source_failed
            .load(std::sync::atomic::Ordering::Relaxed)
            && matches!(
                e.kind(),
                io::ErrorKind::InvalidInput
                    | io::ErrorKind::InvalidData
                    | io::ErrorKind::UnexpectedEof
            )
        {
            ObjectError::Corrupt {
                message: e.to_string(),
                after_bytes: after,
            }
        } else {
            ObjectError::Read {
                message: e.to_string(),
            }
        };
        self.summary.objects_with_errors = 1;
        self.summary.error = Some(error);
    }
}

impl Iterator for ObjectDecoder<'_> {
    type Item = Decoded;

    fn next(&mut self) -> Option<Decoded> {
        if let Some(e) = self.pending.pop_front() {
            return Some(Decoded::Event(e));
        }
        while !self.done {
            match self.splitter.next_frame() {
                None => self.done = true,
                Some(Err(e)) => {
                    self.object_error(e);
                    self.done = true;
                }
                Some(Ok(Frame::Record(bytes))) => {
                    let item = self.record(&bytes);
                    self.splitter.recycle(bytes);
                    if item.is_some() {
                        return item;
                    }
                }
                Some(Ok(Frame::Bad { head, len, problem })) => {
                    self.summary.records += 1;
                    let source = self.origin.source(self.summary.records);
                    let reason = match problem {
                        Problem::Garbage => {
                            "not JSON: unexpected bytes between records".to_string()
                        }
                        Problem::Oversized => format!(
                            "record of {len} bytes exceeds the {}-byte limit",
                            self.splitter_limit()
                        ),
                        Problem::TruncatedAtLineEnd => {
                            "truncated record: the line ended before the JSON object closed"
                                .to_string()
                        }
                        Problem::TruncatedAtEnd => {
                            "truncated record: the object ended before the JSON object closed"
                                .to_string()
                        }
                    };
                    return Some(self.quarantine(source, reason, &head, len));
                }
            }
        }
        None
    }
}

impl ObjectDecoder<'_> {
    fn splitter_limit(&self) -> usize {
        self.splitter.max_record()
    }
}

impl Counters {
    /// Wraps the decompressed stream: counts its bytes and stops it at `limit`.
    fn decompressed<R: Read>(&self, inner: R, limit: u64) -> Counting<R> {
        Counting {
            inner,
            count: self.decoded.clone(),
            limit: Some(limit),
            failed: None,
        }
    }
}

/// Marker for the decompression cap, so it can be told apart from real I/O errors.
#[derive(Debug)]
struct LimitExceeded;

impl fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("decompressed size limit exceeded")
    }
}

impl std::error::Error for LimitExceeded {}

/// Counts bytes through a reader and, optionally, refuses to go past a limit.
struct Counting<R> {
    inner: R,
    count: std::sync::Arc<std::sync::atomic::AtomicU64>,
    limit: Option<u64>,
    /// Set when `inner` fails: for the object's own reader, whose errors (a cut network
    /// stream among them) are read failures whatever their kind, never damage.
    failed: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.read_counted(buf);
        if let (Err(_), Some(failed)) = (&read, &self.failed) {
            failed.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        read
    }
}

impl<R: Read> Counting<R> {
    fn read_counted(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use std::sync::atomic::Ordering::Relaxed;
        let so_far = self.count.load(Relaxed);
        if let Some(limit) = self.limit {
            if so_far >= limit {
                // One byte more proves the stream really goes past the limit.
                let mut probe = [0u8; 1];
                return match self.inner.read(&mut probe)? {
                    0 => Ok(0),
                    _ => Err(io::Error::other(LimitExceeded)),
                };
            }
        }
        let room = self.limit.map_or(buf.len() as u64, |l| l - so_far);
        let take = buf.len().min(room.min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..take])?;
        self.count.fetch_add(n as u64, Relaxed);
        Ok(n)
    }
}

#[cfg(test)]
mod tests;
