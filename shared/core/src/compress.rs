//! Compressing the stages' NDJSON output ([`Codec`]: zstd or gzip), on a second thread or
//! inline, behind a plain [`Write`]; and reading it back.
//!
//! The parse stage writes more bytes than it reads (every event repeats its record's
//! header), so compressing its output costs more than inflating its input. zstd at level 1
//! does that as fast as zlib-rs' fastest deflate, writes fewer bytes (so less S3 storage,
//! the pipeline's largest recurring cost) and inflates faster in the detect stage
//! (BENCHMARKS.md); gzip stays available for readers that need it. Readers tell the two apart by
//! their magic bytes ([`Codec::sniff`]), so objects written under either setting stay
//! readable.
//!
//! With [`Parallelism::Threads`], [`Output`] copies what it is given into fixed-size buffers (256 KiB by default)
//! and hands each full buffer over a bounded channel to a thread that owns the
//! [`Encoder`]. The caller's thread then only serializes and copies, while compression runs
//! on another core. The thread sends each buffer back once compressed, so after start-up nothing
//! is allocated per buffer, and at most `buffers` of them exist at once: memory stays bounded
//! whatever the output's size (with 3 buffers: one being filled, one queued, one being
//! compressed).
//!
//! Errors are never lost. An error from the encoder or the inner writer stops the thread. The
//! next [`Write`] call that hands over a buffer returns it, and [`Output::finish`]
//! returns it (the first one) in any case. A panic on the thread becomes an error too.
//! Dropping the writer without `finish` stops the thread and waits for it. The encoder and the
//! inner writer are dropped on that thread, unfinished as far as this writer is concerned
//! (both encoders still try to end their stream on drop, and ignore errors doing so).
//!
//! The output is one gzip member or one zstd frame, byte for byte what the [`Encoder`] would
//! write given the same bytes in 256 KiB writes.

use std::fmt;
use std::io::{self, BufRead, Read, Write};
use std::str::FromStr;
use std::sync::mpsc::{Receiver, Sender};

use flate2::write::GzEncoder;
use flate2::Compression;

use crate::worker::{panic_message, Failed, Parallelism, Stopped, Worker};

/// How the stages' NDJSON output is compressed. Each codec runs at its fastest useful level:
/// the output is written once per object, under a CPU bill, and read back once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Codec {
    /// zstd level 1, with a content checksum (`.zst`, `application/zstd`).
    #[default]
    Zstd,
    /// gzip at flate2's `Compression::fast()` (`.gz`, `application/gzip`).
    Gzip,
}

/// zstd's level 1: its fastest regular level. Negative ("fast") levels were slower *and*
/// larger on normalized events here.
const ZSTD_LEVEL: i32 = 1;

impl Codec {
    /// The file name extension, with its dot.
    pub fn extension(self) -> &'static str {
        match self {
            Codec::Zstd => ".zst",
            Codec::Gzip => ".gz",
        }
    }

    /// The MIME type of a compressed object.
    pub fn content_type(self) -> &'static str {
        match self {
            Codec::Zstd => "application/zstd",
            Codec::Gzip => "application/gzip",
        }
    }

    /// The codec whose magic bytes `prefix` starts with (a zstd frame, or a gzip member).
    pub fn sniff(prefix: &[u8]) -> Option<Codec> {
        if prefix.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Some(Codec::Zstd)
        } else if prefix.starts_with(&[0x1f, 0x8b]) {
            Some(Codec::Gzip)
        } else {
            None
        }
    }

    /// An encoder into `inner`. Fails only if zstd cannot allocate its context.
    pub fn encoder<W: Write>(self, inner: W) -> io::Result<Encoder<W>> {
        Ok(match self {
            Codec::Gzip => Encoder::Gzip(GzEncoder::new(inner, Compression::fast())),
            Codec::Zstd => {
                let mut z = zstd::stream::write::Encoder::new(inner, ZSTD_LEVEL)?;
                z.include_checksum(true)?;
                Encoder::Zstd(z)
            }
        })
    }

    /// A reader of everything compressed in `raw` (all gzip members, all zstd frames). A
    /// zstd context that cannot be allocated is the first read's error.
    pub fn decoder<'a, R: BufRead + Send + 'a>(self, raw: R) -> Box<dyn Read + Send + 'a> {
        match self {
            Codec::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(raw)),
            Codec::Zstd => match zstd::stream::read::Decoder::with_buffer(raw) {
                Ok(d) => Box::new(d),
                Err(e) => Box::new(Failed(Some(e))),
            },
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Codec::Zstd => "zstd",
            Codec::Gzip => "gzip",
        })
    }
}

impl FromStr for Codec {
    type Err = String;

    /// `zstd` or `gzip` (any case; `zst` and `gz` too).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "zstd" | "zst" => Ok(Codec::Zstd),
            "gzip" | "gz" => Ok(Codec::Gzip),
            other => Err(format!(
                "unknown output compression {other:?}: expected zstd or gzip"
            )),
        }
    }
}

/// A running compressor: a [`Write`] whose [`Encoder::finish`] ends the stream.
pub enum Encoder<W: Write> {
    /// gzip, one member.
    Gzip(GzEncoder<W>),
    /// zstd, one frame with a content checksum.
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Encoder<W> {
    /// Ends the compressed stream and returns the inner writer (not flushed).
    pub fn finish(self) -> io::Result<W> {
        match self {
            Encoder::Gzip(e) => e.finish(),
            Encoder::Zstd(e) => e.finish(),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Gzip(e) => e.write(buf),
            Encoder::Zstd(e) => e.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Encoder::Gzip(e) => e.write_all(buf),
            Encoder::Zstd(e) => e.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Gzip(e) => e.flush(),
            Encoder::Zstd(e) => e.flush(),
        }
    }
}

/// Default size of each buffer handed to the compression thread.
pub const DEFAULT_BUFFER_SIZE: usize = 256 << 10;

/// Default number of buffers (one being filled, one queued, one being compressed).
pub const DEFAULT_BUFFERS: usize = 3;

/// To the compression thread.
enum Job {
    Data(Vec<u8>),
    Flush,
    Finish,
}

/// Back from the compression thread.
enum Back {
    Empty(Vec<u8>),
    Flushed,
}

/// A [`Write`] that compresses on a [`Worker`] thread into `W`. See the [module docs](self).
pub(crate) struct ThreadedEncoder<W: Write + Send + 'static> {
    buf: Vec<u8>,
    buffer_size: usize,
    /// Empty buffers ready to fill.
    free: Vec<Vec<u8>>,
    /// Buffers created so far (at most `max_buffers`).
    allocated: usize,
    max_buffers: usize,
    /// `None` once joined.
    worker: Option<Worker<Job, Back, io::Result<W>>>,
    /// Why the thread stopped, once known.
    failed: Option<Failure>,
}

/// Why the compressor thread stopped. The first call to report it gets the error itself, so
/// a typed error inside it (an S3 upload's `tripline_aws::Error`, say) can still be
/// downcast; later calls get a copy of its kind and message.
#[derive(Debug)]
struct Failure {
    original: Option<io::Error>,
    kind: io::ErrorKind,
    message: String,
}

impl Failure {
    fn new(e: io::Error) -> Self {
        Failure {
            kind: e.kind(),
            message: e.to_string(),
            original: Some(e),
        }
    }

    fn report(&mut self) -> io::Error {
        self.original
            .take()
            .unwrap_or_else(|| io::Error::new(self.kind, self.message.clone()))
    }
}

impl<W: Write + Send + 'static> ThreadedEncoder<W> {
    /// Runs `encoder` on its own thread, with [`DEFAULT_BUFFERS`] buffers of
    /// [`DEFAULT_BUFFER_SIZE`].
    pub(crate) fn new(encoder: Encoder<W>) -> io::Result<Self> {
        Self::with_buffers(encoder, DEFAULT_BUFFER_SIZE, DEFAULT_BUFFERS)
    }

    /// Runs `encoder` on its own thread, with at most `buffers` buffers (at least 2) of
    /// `buffer_size` bytes (at least 1). Fails only if the thread cannot be started.
    pub(crate) fn with_buffers(
        encoder: Encoder<W>,
        buffer_size: usize,
        buffers: usize,
    ) -> io::Result<Self> {
        let buffer_size = buffer_size.max(1);
        let max_buffers = buffers.max(2);
        // Never full in practice: at most `max_buffers` data jobs exist, plus a flush or finish.
        let worker = Worker::spawn("compressor", max_buffers + 1, move |jobs, back| {
            compress(encoder, jobs, back)
        })?;
        Ok(ThreadedEncoder {
            buf: Vec::with_capacity(buffer_size),
            buffer_size,
            free: Vec::new(),
            allocated: 1,
            max_buffers,
            worker: Some(worker),
            failed: None,
        })
    }

    /// Compresses what is buffered, ends the compressed stream, waits for the thread and returns the
    /// inner writer (not flushed: finishing it, e.g. completing an upload, is the caller's
    /// job). Returns the first error the thread met instead, if any (itself, unless a
    /// `write` or `flush` already returned it).
    pub(crate) fn finish(mut self) -> io::Result<W> {
        if let (None, Some(worker)) = (&self.failed, &self.worker) {
            let last = std::mem::take(&mut self.buf);
            // A failed send means the thread stopped; joining it says why.
            if last.is_empty() || worker.send(Job::Data(last)).is_ok() {
                let _ = worker.send(Job::Finish);
            }
        }
        let result = self.join();
        match self.failed.as_mut() {
            Some(failure) => Err(failure.report()),
            None => result,
        }
    }

    /// Waits for the thread (which stops once its jobs close or after `Finish`).
    fn join(&mut self) -> io::Result<W> {
        match self.worker.take() {
            None => Err(io::Error::other("compressor thread already stopped")),
            Some(worker) => match worker.join() {
                Ok(result) => result,
                Err(panic) => Err(io::Error::other(format!(
                    "compressor thread panicked: {}",
                    panic_message(&*panic)
                ))),
            },
        }
    }

    /// The thread stopped: record why (once) and report it (see [`Failure`]).
    fn stopped(&mut self) -> io::Error {
        if self.failed.is_none() {
            self.failed = Some(Failure::new(match self.join() {
                Err(e) => e,
                Ok(_) => io::Error::other("compressor thread stopped before finish"),
            }));
        }
        match self.failed.as_mut() {
            Some(failure) => failure.report(),
            None => io::Error::other("compressor thread stopped"),
        }
    }

    /// Queues `job`, or reports why the thread stopped.
    fn send(&mut self, job: Job) -> io::Result<()> {
        if self.failed.is_some() {
            return Err(self.stopped());
        }
        match self.worker.as_ref().map(|w| w.send(job)) {
            Some(Ok(())) => Ok(()),
            _ => Err(self.stopped()),
        }
    }

    /// Hands the current buffer to the thread and takes an empty one.
    #[cold]
    fn hand_over(&mut self) -> io::Result<()> {
        // Send first, so the thread has work queued while this one waits for a buffer.
        let full = std::mem::take(&mut self.buf);
        self.send(Job::Data(full))?;
        self.buf = self.empty_buffer()?;
        Ok(())
    }

    /// A returned buffer, or a new one while fewer than `max_buffers` exist, or else waits
    /// for the thread to return one.
    fn empty_buffer(&mut self) -> io::Result<Vec<u8>> {
        loop {
            if let Some(b) = self.free.pop() {
                return Ok(b);
            }
            let Some(worker) = &self.worker else {
                return Err(self.stopped());
            };
            match worker.try_done() {
                Ok(Some(Back::Empty(b))) => return Ok(b),
                Ok(Some(Back::Flushed)) => continue,
                Err(Stopped) => return Err(self.stopped()),
                Ok(None) => {}
            }
            if self.allocated < self.max_buffers {
                self.allocated += 1;
                return Ok(Vec::with_capacity(self.buffer_size));
            }
            match worker.wait_done() {
                Ok(Back::Empty(b)) => return Ok(b),
                Ok(Back::Flushed) => continue,
                Err(Stopped) => return Err(self.stopped()),
            }
        }
    }

    #[cold]
    fn write_all_slow(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let room = self.buffer_size - self.buf.len();
            let (now, rest) = data.split_at(room.min(data.len()));
            self.buf.extend_from_slice(now);
            data = rest;
            if self.buf.len() == self.buffer_size {
                self.hand_over()?;
            }
        }
        Ok(())
    }
}

impl<W: Write + Send + 'static> Write for ThreadedEncoder<W> {
    #[inline]
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.write_all(data)?;
        Ok(data.len())
    }

    /// The common case (the bytes fit in the current buffer) is a copy, inlined.
    #[inline]
    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        if data.len() < self.buffer_size - self.buf.len() {
            self.buf.extend_from_slice(data);
            Ok(())
        } else {
            self.write_all_slow(data)
        }
    }

    /// Hands over what is buffered, then waits until the thread has compressed it and
    /// flushed the encoder (a deflate sync flush, or the end of a zstd block) and the inner
    /// writer.
    fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.hand_over()?;
        }
        self.send(Job::Flush)?;
        loop {
            let back = match &self.worker {
                Some(worker) => worker.wait_done(),
                None => Err(Stopped),
            };
            match back {
                Ok(Back::Empty(b)) => self.free.push(b),
                Ok(Back::Flushed) => return Ok(()),
                Err(Stopped) => return Err(self.stopped()),
            }
        }
    }
}

impl<W: Write + Send + 'static> std::fmt::Debug for ThreadedEncoder<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadedEncoder")
            .field("buffered", &self.buf.len())
            .field("buffer_size", &self.buffer_size)
            .field("buffers", &self.allocated)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

/// The thread: compress each buffer and send it back, until `Finish` (or the writer is
/// dropped, or an error, which ends the thread and so tells the writer).
fn compress<W: Write>(
    mut encoder: Encoder<W>,
    jobs: Receiver<Job>,
    back: Sender<Back>,
) -> io::Result<W> {
    for job in jobs {
        match job {
            Job::Data(mut buf) => {
                encoder.write_all(&buf)?;
                buf.clear();
                // The writer may be gone already (dropped); nothing to return the buffer to.
                let _ = back.send(Back::Empty(buf));
            }
            Job::Flush => {
                encoder.flush()?;
                let _ = back.send(Back::Flushed);
            }
            Job::Finish => return encoder.finish(),
        }
    }
    Err(io::Error::other(
        "compressor dropped before finish; output incomplete",
    ))
}

/// Compressed output, on a thread of its own with [`Parallelism::Threads`] or inline on the
/// caller's thread: a [`DEFAULT_BUFFER_SIZE`] `BufWriter` in front of the [`Encoder`] then,
/// so the compressor still sees large writes (a `GzEncoder` fed small writes makes a deflate
/// call per write). Both write the same bytes.
pub struct Output<W: Write + Send + 'static>(OutputKind<W>);

enum OutputKind<W: Write + Send + 'static> {
    Threaded(ThreadedEncoder<W>),
    Inline(io::BufWriter<Encoder<W>>),
}

impl<W: Write + Send + 'static> Output<W> {
    /// Compresses with `codec` into `inner`. Fails only if zstd cannot allocate its context
    /// or the compressor thread cannot be started.
    pub fn new(inner: W, codec: Codec, parallelism: Parallelism) -> io::Result<Self> {
        let encoder = codec.encoder(inner)?;
        Ok(Output(match parallelism {
            Parallelism::Threads => OutputKind::Threaded(ThreadedEncoder::new(encoder)?),
            Parallelism::Inline => {
                OutputKind::Inline(io::BufWriter::with_capacity(DEFAULT_BUFFER_SIZE, encoder))
            }
        }))
    }

    /// Ends the compressed stream and returns the inner writer (not flushed), or the first
    /// error.
    pub fn finish(self) -> io::Result<W> {
        match self.0 {
            OutputKind::Threaded(w) => w.finish(),
            OutputKind::Inline(w) => w.into_inner().map_err(|e| e.into_error())?.finish(),
        }
    }

    /// Whether compression runs on a thread of its own.
    pub fn parallelism(&self) -> Parallelism {
        match self.0 {
            OutputKind::Threaded(_) => Parallelism::Threads,
            OutputKind::Inline(_) => Parallelism::Inline,
        }
    }
}

impl<W: Write + Send + 'static> Write for Output<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.0 {
            OutputKind::Threaded(w) => w.write(buf),
            OutputKind::Inline(w) => w.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match &mut self.0 {
            OutputKind::Threaded(w) => w.write_all(buf),
            OutputKind::Inline(w) => w.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.0 {
            OutputKind::Threaded(w) => w.flush(),
            OutputKind::Inline(w) => w.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::sync::{Arc, Mutex};

    const CODECS: [Codec; 2] = [Codec::Zstd, Codec::Gzip];

    /// Decompresses with the codec the bytes say they are in, checking it is `codec`.
    fn unpack(codec: Codec, packed: &[u8]) -> Vec<u8> {
        assert_eq!(Codec::sniff(packed), Some(codec));
        let mut out = Vec::new();
        codec.decoder(packed).read_to_end(&mut out).unwrap();
        out
    }

    fn threaded<W: Write + Send + 'static>(
        codec: Codec,
        inner: W,
        buffer_size: usize,
    ) -> ThreadedEncoder<W> {
        ThreadedEncoder::with_buffers(codec.encoder(inner).unwrap(), buffer_size, 2).unwrap()
    }

    /// Deterministic, somewhat compressible bytes.
    fn data(len: usize) -> Vec<u8> {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        (0..len)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if i % 3 == 0 {
                    b'a' + (x % 26) as u8
                } else {
                    b"{\"event\":\n"[i % 10]
                }
            })
            .collect()
    }

    #[test]
    fn codec_names_extensions_and_magic() {
        for codec in CODECS {
            assert_eq!(codec.to_string().parse::<Codec>(), Ok(codec));
            let packed = Output::new(Vec::new(), codec, Parallelism::Inline)
                .unwrap()
                .finish()
                .unwrap();
            assert_eq!(Codec::sniff(&packed), Some(codec));
        }
        assert_eq!(" ZST ".parse::<Codec>(), Ok(Codec::Zstd));
        assert_eq!("gz".parse::<Codec>(), Ok(Codec::Gzip));
        assert!("brotli".parse::<Codec>().unwrap_err().contains("brotli"));
        assert_eq!(Codec::default(), Codec::Zstd);
        assert_eq!(Codec::Zstd.extension(), ".zst");
        assert_eq!(Codec::Gzip.content_type(), "application/gzip");
        assert_eq!(Codec::sniff(b"{\"kind\""), None);
        assert_eq!(Codec::sniff(b""), None);
    }

    #[test]
    fn output_round_trips_threaded_and_inline() {
        let input = data(DEFAULT_BUFFER_SIZE * 2 + 123);
        for codec in CODECS {
            for parallelism in [Parallelism::Threads, Parallelism::Inline] {
                let mut out = Output::new(Vec::new(), codec, parallelism).unwrap();
                assert_eq!(out.parallelism(), parallelism);
                for piece in input.chunks(1000) {
                    out.write_all(piece).unwrap();
                }
                let packed = out.finish().unwrap();
                assert_eq!(unpack(codec, &packed), input, "{codec} {parallelism:?}");
            }
        }
    }

    #[test]
    fn zstd_is_smaller_than_gzip_on_event_like_text() {
        let line = br#"{"kind":"result","name":"pack_x_processes","host":"h1","columns":{"pid":"1","path":"/usr/bin/true"}}"#;
        let input: Vec<u8> = line
            .iter()
            .chain(b"\n")
            .copied()
            .cycle()
            .take(1 << 20)
            .collect();
        let size = |codec| {
            let mut out = Output::new(Vec::new(), codec, Parallelism::Inline).unwrap();
            out.write_all(&input).unwrap();
            out.finish().unwrap().len()
        };
        assert!(size(Codec::Zstd) < size(Codec::Gzip));
    }

    #[test]
    fn concatenated_streams_read_through() {
        for codec in CODECS {
            let mut packed = Vec::new();
            for part in [&b"first\n"[..], b"second\n"] {
                let mut out = Output::new(Vec::new(), codec, Parallelism::Inline).unwrap();
                out.write_all(part).unwrap();
                packed.extend(out.finish().unwrap());
            }
            assert_eq!(unpack(codec, &packed), b"first\nsecond\n", "{codec}");
        }
    }

    #[test]
    fn a_damaged_stream_is_a_read_error() {
        let input = data(200_000);
        for codec in CODECS {
            let mut out = Output::new(Vec::new(), codec, Parallelism::Inline).unwrap();
            out.write_all(&input).unwrap();
            let mut packed = out.finish().unwrap();
            let cut = &packed[..packed.len() / 2];
            let mut sink = Vec::new();
            assert!(
                codec.decoder(cut).read_to_end(&mut sink).is_err(),
                "{codec} cut"
            );
            // A flipped byte in the middle: the checksum (or the format) notices.
            let mid = packed.len() / 2;
            packed[mid] ^= 0x55;
            let read = codec.decoder(&packed[..]).read_to_end(&mut Vec::new());
            assert!(read.is_err(), "{codec} flipped");
        }
    }

    #[test]
    fn round_trip_in_many_write_sizes() {
        let input = data(300_007);
        for (codec, buffer_size) in CODECS
            .into_iter()
            .flat_map(|c| [7, 4096, 256 << 10, 1 << 20].map(|size| (c, size)))
        {
            let mut w = threaded(codec, Vec::new(), buffer_size);
            let mut rest = &input[..];
            let mut n = 0;
            while !rest.is_empty() {
                // Writes of 0..=300 bytes, and now and then a large one.
                let len = if n % 97 == 0 { 70_000 } else { n % 301 };
                let (now, later) = rest.split_at(len.min(rest.len()));
                w.write_all(now).unwrap();
                rest = later;
                n += 1;
            }
            let packed = w.finish().unwrap();
            assert_eq!(
                unpack(codec, &packed),
                input,
                "{codec} buffer size {buffer_size}"
            );
        }
    }

    #[test]
    fn same_bytes_as_a_plain_encoder() {
        let input = data(600_000);
        for codec in CODECS {
            let mut w = ThreadedEncoder::new(codec.encoder(Vec::new()).unwrap()).unwrap();
            w.write_all(&input).unwrap();
            let ours = w.finish().unwrap();
            let mut plain = codec.encoder(Vec::new()).unwrap();
            for chunk in input.chunks(DEFAULT_BUFFER_SIZE) {
                plain.write_all(chunk).unwrap();
            }
            assert_eq!(ours, plain.finish().unwrap(), "{codec}");
        }
    }

    #[test]
    fn empty_output_is_a_valid_empty_stream() {
        for codec in CODECS {
            let packed = ThreadedEncoder::new(codec.encoder(Vec::new()).unwrap())
                .unwrap()
                .finish()
                .unwrap();
            assert!(!packed.is_empty());
            assert_eq!(unpack(codec, &packed), b"");
        }
    }

    #[test]
    fn flush_makes_the_data_so_far_decodable() {
        for codec in CODECS {
            let shared = Arc::new(Mutex::new(Vec::new()));
            let mut w =
                ThreadedEncoder::new(codec.encoder(Shared(shared.clone())).unwrap()).unwrap();
            w.write_all(b"first line\n").unwrap();
            w.flush().unwrap();
            let so_far = shared.lock().unwrap().clone();
            // Not ended yet: read what decompresses, then the stream ends early.
            let mut out = vec![0; 64];
            let n = codec.decoder(&so_far[..]).read(&mut out).unwrap();
            assert_eq!(&out[..n], b"first line\n", "{codec}");
            w.write_all(b"second\n").unwrap();
            w.finish().unwrap();
            let all = shared.lock().unwrap().clone();
            assert_eq!(unpack(codec, &all), b"first line\nsecond\n", "{codec}");
        }
    }

    #[derive(Clone)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Accepts `limit` bytes, then fails every write (or panics).
    #[derive(Debug)]
    struct Failing {
        limit: usize,
        written: usize,
        panic: bool,
    }

    impl Write for Failing {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.written + buf.len() > self.limit {
                // Not again while unwinding (the encoder's drop writes its trailer).
                if self.panic && !std::thread::panicking() {
                    panic!("inner writer exploded");
                }
                return Err(io::Error::new(io::ErrorKind::StorageFull, "disk full"));
            }
            self.written += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn failing(limit: usize, panic: bool) -> ThreadedEncoder<Failing> {
        let inner = Failing {
            limit,
            written: 0,
            panic,
        };
        threaded(Codec::Gzip, inner, 4096)
    }

    #[test]
    fn inner_error_surfaces_from_write_and_finish() {
        let mut w = failing(1000, false);
        let input = data(4 << 20);
        let mut write_error = None;
        for chunk in input.chunks(1000) {
            if let Err(e) = w.write_all(chunk) {
                write_error = Some(e);
                break;
            }
        }
        let e = write_error.expect("a write fails once the thread has stopped");
        assert_eq!(e.kind(), io::ErrorKind::StorageFull);
        // Writing on after the error keeps failing; finish returns the original error.
        assert!(w.write_all(&input[..8192]).is_err());
        let e = w.finish().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::StorageFull);
        assert_eq!(e.to_string(), "disk full");
    }

    /// An error type of the inner writer's own, as `S3Writer` wraps `tripline_aws::Error`.
    #[derive(Debug)]
    struct Typed(u32);

    impl std::fmt::Display for Typed {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "typed error {}", self.0)
        }
    }

    impl std::error::Error for Typed {}

    /// Accepts nothing: every write fails with a [`Typed`] error inside the `io::Error`.
    #[derive(Debug)]
    struct Refusing;

    impl Write for Refusing {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::other(Typed(7)))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_first_report_of_a_failure_keeps_the_typed_error() {
        let typed = |e: &io::Error| {
            e.get_ref()
                .and_then(|e| e.downcast_ref::<Typed>())
                .map(|t| t.0)
        };
        let mut w = threaded(Codec::Zstd, Refusing, 4096);
        let input = data(1 << 20);
        let first = input
            .chunks(1000)
            .find_map(|chunk| w.write_all(chunk).err())
            .expect("a write fails once the thread has stopped");
        assert_eq!(typed(&first), Some(7), "{first:?}");
        // Later reports are copies: same kind and text.
        let again = w.write_all(&input[..8192]).unwrap_err();
        assert_eq!(
            (again.kind(), again.to_string()),
            (first.kind(), first.to_string())
        );
        let last = w.finish().unwrap_err();
        assert_eq!(last.to_string(), "typed error 7");
        // Had nothing reported it before, finish returns the error itself.
        let e = threaded(Codec::Gzip, Refusing, 4096).finish().unwrap_err();
        assert_eq!(typed(&e), Some(7));
    }

    #[test]
    fn inner_error_surfaces_from_finish_alone() {
        // Everything fits in the first buffer: only finish hands anything over.
        let mut w = failing(10, false);
        w.write_all(&data(100)).unwrap();
        let e = w.finish().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::StorageFull);
        // Even the gzip header does not fit.
        let e = failing(3, false).finish().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::StorageFull);
    }

    #[test]
    fn inner_error_surfaces_from_flush() {
        let mut w = failing(10, false);
        w.write_all(&data(100)).unwrap();
        assert_eq!(w.flush().unwrap_err().kind(), io::ErrorKind::StorageFull);
        assert_eq!(w.finish().unwrap_err().kind(), io::ErrorKind::StorageFull);
    }

    #[test]
    fn panic_on_the_thread_becomes_an_error() {
        let mut w = failing(1000, true);
        let _ = w.write_all(&data(1 << 20));
        let e = w.finish().unwrap_err();
        assert!(e.to_string().contains("inner writer exploded"), "{e}");
    }

    #[test]
    fn drop_without_finish_returns() {
        let shared = Arc::new(Mutex::new(Vec::new()));
        let mut w = threaded(Codec::Zstd, Shared(shared.clone()), 4096);
        w.write_all(&data(100_000)).unwrap();
        drop(w);
        // A failed writer drops too.
        let mut w = failing(1000, false);
        let _ = w.write_all(&data(1 << 20));
        drop(w);
        // And one that was never written to.
        drop(ThreadedEncoder::new(
            Codec::Zstd.encoder(Vec::new()).unwrap(),
        ));
    }
}
