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
//!
//! Every object leaves a trace: one that could not be read to its end (corrupt or
//! truncated gzip, the cap), holds no record (`not_osquery`, `empty`) or too many lines
//! that are not records before its first one (`not_json`) also yields one quarantine entry
//! for the object itself ([`Quarantined::object`], reason an [`ObjectReason`]), counted in
//! [`Summary::objects_quarantined`]. The quarantine output of an object thus holds
//! `quarantined + objects_quarantined` entries.
//!
//! Lines that are not records (not JSON, cut off, JSON that is no object with members) are
//! held while no record has been seen yet: the first record releases them to be quarantined
//! one by one, in order, as they would be anywhere else in the object. An object that ends
//! without a record has them folded into its one `not_osquery` entry instead (they are then
//! not records: a PNG has none), and once more than [`HOLD_LINES`] lines or [`HOLD_BYTES`]
//! bytes of them came before any record, they are only counted, into that one entry, for
//! the rest of the object. A binary or foreign object therefore leaves one entry, not one per
//! line, in bounded memory, while the records of an osquery object, wherever they are, are
//! still decoded or quarantined one by one.

mod framing;
mod raw;
mod record;

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read};

use serde::{Deserialize, Serialize};

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use crate::event::{Event, Kind, ObjectDetail, Quarantined, SourceRef};
use crate::tables::{Resolver, TableCache};
use crate::worker::{read_ahead, Parallelism};
use framing::{Frame, Problem, Splitter};
use record::Rejected;

pub use framing::HEAD_BYTES as QUARANTINE_RAW_BYTES;

/// Longest message of an object entry ([`ObjectDetail::message`]), in bytes.
pub const MAX_MESSAGE_BYTES: usize = 512;

/// Lines that are not records held before an object's first record; past this (or
/// [`HOLD_BYTES`]) they are folded into the object's entry.
pub const HOLD_LINES: usize = 1024;

/// Bytes of lines that are not records held before an object's first record (the lines'
/// full lengths; memory holds at most [`QUARANTINE_RAW_BYTES`] of each).
pub const HOLD_BYTES: u64 = 1 << 20;

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
    /// A record that could not be normalized, with its reason; or, last, the object's own
    /// entry ([`Quarantined::object`]).
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

/// Why an object was quarantined as a whole: the `reason` of its object entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectReason {
    /// The gzip stream is corrupt (a bad header, bad deflate data, a CRC-32 or length that
    /// does not match); the records before the damage were kept.
    GzipCorrupt,
    /// The gzip stream ends before its end: the object was cut.
    GzipTruncated,
    /// The object decompresses past [`Limits::max_decompressed_bytes`]; reading stopped there.
    DecompressedTooLarge,
    /// Read to its end, the object holds no record: no line is a JSON object with members
    /// (binary data, another format, text).
    NotOsquery,
    /// More than [`HOLD_LINES`] lines or [`HOLD_BYTES`] bytes that are not records came
    /// before the object's first record: all of its such lines are this entry.
    NotJson,
    /// The object holds nothing but whitespace (or nothing at all).
    Empty,
    /// Reading the object failed (access denied, gone, changed, the network) and retrying
    /// did not help; the records before the failure were kept. The decoder reports such a
    /// failure as [`ObjectError::Read`] and writes no entry: whoever owns the retries decides
    /// (the CLI writes this entry for an `s3://` object; the parse function fails so Lambda
    /// retries the object).
    ReadFailed,
}

impl ObjectReason {
    /// The code written as the entry's `reason`.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectReason::GzipCorrupt => "gzip_corrupt",
            ObjectReason::GzipTruncated => "gzip_truncated",
            ObjectReason::DecompressedTooLarge => "decompressed_too_large",
            ObjectReason::NotOsquery => "not_osquery",
            ObjectReason::NotJson => "not_json",
            ObjectReason::Empty => "empty",
            ObjectReason::ReadFailed => "read_failed",
        }
    }
}

impl fmt::Display for ObjectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

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
    /// Quarantine entries for an object as a whole (at most one per object), besides the
    /// `quarantined` records: the quarantine output holds the sum of the two.
    #[serde(default)]
    pub objects_quarantined: u64,
    /// Why the object was quarantined as a whole, if it was (the first such object's, when
    /// summed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantined_as: Option<ObjectReason>,
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
        self.objects_quarantined += other.objects_quarantined;
        if self.quarantined_as.is_none() {
            self.quarantined_as = other.quarantined_as;
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
        if self.objects_quarantined > 0 {
            write!(f, " objects_quarantined={}", self.objects_quarantined)?;
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
    /// Quarantine entries to yield, before `pending` (they come from earlier records).
    queued: VecDeque<Box<Quarantined>>,
    /// Whether a record has been seen, and what is held or folded until one is.
    verdict: Verdict,
    /// Whether the object is gzip.
    gzip: bool,
    /// The first bytes of the object as stored, for an entry about damage at its start.
    stored_head: Vec<u8>,
    /// Buffers kept from record to record, and events handed back to be refilled.
    reuse: record::Reuse,
    summary: Summary,
    done: bool,
}

/// What the decoder knows about an object's lines that are not records (garbage, records
/// cut off, bytes that are not JSON, JSON that is no object with members).
enum Verdict {
    /// No record yet: such lines are quarantined but held, with their sum in `fold`.
    Open {
        #[allow(clippy::vec_box)]
        held: Vec<Box<Quarantined>>,
        fold: Fold,
    },
    /// A record came first: every line is quarantined one by one.
    Records,
    /// More than [`HOLD_LINES`] or [`HOLD_BYTES`] of them before any record: they are only
    /// counted, into the object's entry.
    Folded(Fold),
}

/// Lines that are not records, as one entry for the object.
#[derive(Default)]
struct Fold {
    lines: u64,
    bytes: u64,
    /// The first line's `raw`.
    raw: String,
    /// The first line's first bytes, shown in the message.
    start: Vec<u8>,
    /// Whether a record came after all (so the object is `not_json`, not `not_osquery`).
    records_after: bool,
}

impl Fold {
    fn add(&mut self, entry: &Quarantined, head: &[u8]) {
        if self.lines == 0 {
            self.raw.clone_from(&entry.raw);
            self.start = head[..head.len().min(START_BYTES)].to_vec();
        }
        self.lines += 1;
        self.bytes += entry.bytes;
    }
}

/// Bytes of an object's or a line's start shown (in hex) in an object entry's message.
const START_BYTES: usize = 8;

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
/// bytes: Firehose keys don't always end in `.gz` and users rename files. Also returns the
/// object's first bytes.
fn open<R: Read>(reader: R, counters: &Counters) -> (BufReader<Counting<R>>, bool, Vec<u8>) {
    let mut raw = BufReader::with_capacity(
        64 << 10,
        Counting {
            inner: reader,
            count: counters.raw.clone(),
            limit: None,
            failed: Some(counters.source_failed.clone()),
        },
    );
    let head = match raw.fill_buf() {
        Ok(b) => b[..b.len().min(START_BYTES)].to_vec(),
        Err(_) => Vec::new(),
    };
    (raw, head.starts_with(&[0x1f, 0x8b]), head)
}

/// Byte counts shared with the reader wrappers inside the splitter.
#[derive(Clone, Default)]
struct Counters {
    raw: std::sync::Arc<std::sync::atomic::AtomicU64>,
    decoded: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Stored bytes the inflater consumed: where it is in the object.
    consumed: std::sync::Arc<std::sync::atomic::AtomicU64>,
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
        let (raw, gzip, stored_head) = open(reader, &counters);
        let decoded: Box<dyn BufRead + Send + 'a> = if gzip {
            let raw = Consumed {
                inner: raw,
                count: counters.consumed.clone(),
            };
            let inflate = counters.decompressed(flate2::bufread::MultiGzDecoder::new(raw), limit);
            inflate_with(Box::new(inflate))
        } else {
            Box::new(BufReader::with_capacity(
                256 << 10,
                counters.decompressed(raw, limit),
            ))
        };
        let mut decoder = Self::assemble(decoded, counters, origin, options);
        decoder.gzip = gzip;
        decoder.stored_head = stored_head;
        decoder
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
            queued: VecDeque::new(),
            verdict: Verdict::Open {
                held: Vec::new(),
                fold: Fold::default(),
            },
            gzip: false,
            stored_head: Vec::new(),
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

    /// Decodes one framed record: its events to `pending`, or its entry to `queued`.
    fn record(&mut self, bytes: &[u8]) {
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
                self.saw_record();
                self.summary.decoded += 1;
                self.summary.warnings += warnings;
                self.summary.events += (self.pending.len() - before) as u64;
                self.summary.tables_unknown += self
                    .pending
                    .range(before..)
                    .filter(|e| e.kind == Kind::Result && e.tables_from.is_none())
                    .count() as u64;
            }
            Err(Rejected {
                reason,
                record_like,
            }) => {
                let entry = self.entry(record, reason, bytes, bytes.len() as u64);
                if record_like {
                    self.saw_record();
                    self.quarantine(entry);
                } else {
                    self.not_a_record(entry, bytes);
                }
            }
        }
    }

    /// A frame that was no record at all.
    fn bad(&mut self, head: &[u8], len: u64, problem: Problem) {
        self.summary.records += 1;
        let reason = match problem {
            Problem::Garbage => "not JSON: unexpected bytes between records".to_string(),
            Problem::Oversized => format!(
                "record of {len} bytes exceeds the {}-byte limit",
                self.splitter.max_record()
            ),
            Problem::TruncatedAtLineEnd => {
                "truncated record: the line ended before the JSON object closed".to_string()
            }
            Problem::TruncatedAtEnd => {
                "truncated record: the object ended before the JSON object closed".to_string()
            }
        };
        let entry = self.entry(self.summary.records, reason, head, len);
        if problem == Problem::Oversized {
            // It opened as a record and ran on past the limit without a line break: what a
            // large osquery record looks like, and next to never what binary data does.
            self.saw_record();
            self.quarantine(entry);
        } else {
            self.not_a_record(entry, head);
        }
    }

    /// A record: lines held before it are quarantined one by one, ahead of it.
    #[inline]
    fn saw_record(&mut self) {
        match &mut self.verdict {
            Verdict::Records => {}
            Verdict::Open { held, .. } => {
                self.queued.extend(held.drain(..));
                self.verdict = Verdict::Records;
            }
            Verdict::Folded(fold) => fold.records_after = true,
        }
    }

    /// A line that is not a record: quarantined, held or folded, as the verdict says.
    fn not_a_record(&mut self, entry: Box<Quarantined>, head: &[u8]) {
        match &mut self.verdict {
            Verdict::Records => self.quarantine(entry),
            Verdict::Open { held, fold } => {
                fold.add(&entry, head);
                self.summary.quarantined += 1;
                held.push(entry);
                if held.len() > HOLD_LINES || fold.bytes > HOLD_BYTES {
                    // Too many to hold: from now on they are the object's entry, not records.
                    let fold = std::mem::take(fold);
                    self.summary.records -= held.len() as u64;
                    self.summary.quarantined -= held.len() as u64;
                    self.verdict = Verdict::Folded(fold);
                }
            }
            Verdict::Folded(fold) => {
                fold.add(&entry, head);
                self.summary.records -= 1;
            }
        }
    }

    fn entry(&self, record: u64, reason: String, head: &[u8], len: u64) -> Box<Quarantined> {
        let head = &head[..head.len().min(QUARANTINE_RAW_BYTES)];
        Box::new(Quarantined {
            source: self.origin.source(record),
            reason,
            raw: String::from_utf8_lossy(head).into_owned(),
            bytes: len,
            object: None,
        })
    }

    fn quarantine(&mut self, entry: Box<Quarantined>) {
        self.summary.quarantined += 1;
        self.queued.push_back(entry);
    }

    /// The object ended, cleanly or with `error`: settles the lines not yet known to be
    /// records, and queues the object's entry if it gets one.
    fn end(&mut self, error: Option<io::Error>) {
        self.done = true;
        let read_to_end = error.is_none();
        let damage = error.and_then(|e| self.object_error(e));
        let fold = match std::mem::replace(&mut self.verdict, Verdict::Records) {
            Verdict::Records => None,
            Verdict::Folded(fold) => Some(fold),
            Verdict::Open { held, .. } if !read_to_end => {
                // An object not read to its end (damaged, or its read failed) may hold
                // records past that point: what came before it is quarantined one by one.
                self.queued.extend(held);
                None
            }
            Verdict::Open { held, fold } => {
                self.summary.records -= held.len() as u64;
                self.summary.quarantined -= held.len() as u64;
                Some(fold)
            }
        };
        let (reason, offset, compressed_offset, mut message) = match (damage, &fold) {
            (Some(d), _) => (d.reason, d.offset, d.compressed_offset, d.message),
            (None, Some(fold)) if fold.lines > 0 => {
                let (reason, message) = if fold.records_after {
                    (
                        ObjectReason::NotJson,
                        format!(
                            "more than {HOLD_LINES} lines (or {HOLD_BYTES} bytes) that are not \
                             records before the object's first record: its {} such lines ({} \
                             bytes) are this one entry, its records were decoded or \
                             quarantined one by one",
                            fold.lines, fold.bytes
                        ),
                    )
                } else {
                    (
                        ObjectReason::NotOsquery,
                        format!(
                            "no record in the object: {} lines ({} bytes), none a JSON object \
                             with members",
                            fold.lines, fold.bytes
                        ),
                    )
                };
                (reason, 0, None, message)
            }
            (None, _) if read_to_end && self.summary.records == 0 => {
                let bytes = self.counters.decoded.load(Relaxed);
                let message = match (bytes, self.gzip) {
                    (0, false) => "no records: the object is empty (0 bytes)".to_string(),
                    (0, true) => "no records: the object decompresses to 0 bytes".to_string(),
                    (n, _) => format!("no records: the object holds {n} bytes of whitespace"),
                };
                (ObjectReason::Empty, 0, None, message)
            }
            (None, _) => return,
        };
        let (lines, bytes, raw) = match fold {
            Some(fold) if fold.lines > 0 => {
                if reason != ObjectReason::NotOsquery && reason != ObjectReason::NotJson {
                    message.push_str(&format!(
                        "; before that, {} lines ({} bytes) that are not records, too many \
                         to quarantine one by one",
                        fold.lines, fold.bytes
                    ));
                }
                message.push_str(&format!(
                    "; the first such line starts with {}",
                    hex(&fold.start)
                ));
                (fold.lines, fold.bytes, fold.raw)
            }
            _ => (0, 0, String::new()),
        };
        self.summary.objects_quarantined = 1;
        self.summary.quarantined_as = Some(reason);
        self.queued.push_back(Box::new(Quarantined {
            source: self.origin.source(0),
            reason: reason.as_str().to_string(),
            raw,
            bytes,
            object: Some(ObjectDetail {
                offset,
                compressed_offset,
                lines,
                message: bounded(message),
            }),
        }));
    }

    /// Records the object's damage in the summary; what its entry says, unless reading
    /// (not the bytes read) failed, which is no fault of the object.
    fn object_error(&mut self, e: io::Error) -> Option<Damage> {
        let after = self.counters.decoded.load(Relaxed);
        let compressed_offset = self.gzip.then(|| self.counters.consumed.load(Relaxed));
        let (error, damage) = if e.get_ref().is_some_and(|inner| inner.is::<LimitExceeded>()) {
            let limit = self.limit;
            let damage = Damage {
                reason: ObjectReason::DecompressedTooLarge,
                offset: after,
                compressed_offset,
                message: format!(
                    "the object decompresses to more than {limit} bytes (the decompression \
                     cap: a gzip bomb?); reading stopped there"
                ),
            };
            (ObjectError::DecompressedTooLarge { limit }, Some(damage))
        } else if !self.counters.source_failed.load(Relaxed)
            && matches!(
                e.kind(),
                io::ErrorKind::InvalidInput
                    | io::ErrorKind::InvalidData
                    | io::ErrorKind::UnexpectedEof
            )
        {
            let (reason, what) = if e.kind() == io::ErrorKind::UnexpectedEof {
                (ObjectReason::GzipTruncated, "truncated")
            } else {
                (ObjectReason::GzipCorrupt, "corrupt")
            };
            let mut message = format!("{what} gzip after {after} decompressed bytes");
            if let Some(consumed) = compressed_offset {
                message.push_str(&format!(" ({consumed} compressed bytes consumed)"));
            }
            message.push_str(&format!(": {e}"));
            if after == 0 {
                message.push_str(&format!(
                    "; the object starts with {}",
                    hex(&self.stored_head)
                ));
            }
            let damage = Damage {
                reason,
                offset: after,
                compressed_offset,
                message,
            };
            let error = ObjectError::Corrupt {
                message: e.to_string(),
                after_bytes: after,
            };
            (error, Some(damage))
        } else {
            let error = ObjectError::Read {
                message: e.to_string(),
            };
            (error, None)
        };
        self.summary.objects_with_errors = 1;
        self.summary.error = Some(error);
        damage
    }
}

/// Damage to an object, for its entry.
struct Damage {
    reason: ObjectReason,
    offset: u64,
    compressed_offset: Option<u64>,
    message: String,
}

/// `bytes` in hex, with the format they are the magic bytes of when one is known (what
/// tells a PNG, or Firehose set to compress with something else, at a glance).
fn hex(bytes: &[u8]) -> String {
    const FORMATS: &[(&[u8], &str)] = &[
        (&[0x1f, 0x8b], "gzip"),
        (&[0x28, 0xb5, 0x2f, 0xfd], "zstd"),
        (b"PK\x03\x04", "zip"),
        (&[0xff, 0x06, 0x00, 0x00, b's', b'N'], "Snappy framing"),
        (b"BZh", "bzip2"),
        (&[0xfd, b'7', b'z', b'X', b'Z', 0x00], "xz"),
        (b"PAR1", "Parquet"),
        (b"ORC", "ORC"),
        (b"\x89PNG", "PNG"),
        (&[0xff, 0xd8, 0xff], "JPEG"),
        (b"GIF8", "GIF"),
        (b"%PDF", "PDF"),
    ];
    if bytes.is_empty() {
        return "nothing".to_string();
    }
    let mut out: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    if let Some((_, name)) = FORMATS.iter().find(|(magic, _)| bytes.starts_with(magic)) {
        out.push(format!("(magic bytes of {name})"));
    }
    out.join(" ")
}

/// The object entry ([`ObjectReason::ReadFailed`]) of an object whose reader gave up after
/// `offset` bytes had been decoded: a caller's read failure, which the decoder cannot tell
/// from the end of the object, so the caller that knows writes it.
pub fn read_failed(origin: &Origin, offset: u64, message: &str) -> Quarantined {
    Quarantined {
        source: origin.source(0),
        reason: ObjectReason::ReadFailed.as_str().to_owned(),
        raw: String::new(),
        bytes: 0,
        object: Some(ObjectDetail {
            offset,
            compressed_offset: None,
            lines: 0,
            message: bounded(message.to_owned()),
        }),
    }
}

/// `message` cut to at most [`MAX_MESSAGE_BYTES`], at a character boundary.
fn bounded(mut message: String) -> String {
    if message.len() > MAX_MESSAGE_BYTES {
        let mut end = MAX_MESSAGE_BYTES - '…'.len_utf8();
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push('…');
    }
    message
}

impl Iterator for ObjectDecoder<'_> {
    type Item = Decoded;

    fn next(&mut self) -> Option<Decoded> {
        loop {
            // Entries first: anything queued comes from records before the pending events.
            if let Some(q) = self.queued.pop_front() {
                return Some(Decoded::Quarantined(q));
            }
            if let Some(e) = self.pending.pop_front() {
                return Some(Decoded::Event(e));
            }
            if self.done {
                return None;
            }
            match self.splitter.next_frame() {
                None => self.end(None),
                Some(Err(e)) => self.end(Some(e)),
                Some(Ok(Frame::Record(bytes))) => {
                    self.record(&bytes);
                    self.splitter.recycle(bytes);
                }
                Some(Ok(Frame::Bad { head, len, problem })) => self.bad(&head, len, problem),
            }
        }
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
            failed.store(true, Relaxed);
        }
        read
    }
}

impl<R: Read> Counting<R> {
    fn read_counted(&mut self, buf: &mut [u8]) -> io::Result<usize> {
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

/// The stored bytes under the inflater, counting those it consumed: its position in the
/// object (a `BufReader` below reads ahead of it).
struct Consumed<B> {
    inner: B,
    count: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<B: BufRead> Read for Consumed<B> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Relaxed);
        Ok(n)
    }
}

impl<B: BufRead> BufRead for Consumed<B> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        self.inner.consume(amount);
        self.count.fetch_add(amount as u64, Relaxed);
    }
}

#[cfg(test)]
mod tests;
