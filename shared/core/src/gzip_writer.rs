//! Gzip compression on a second thread, behind a plain [`Write`].
//!
//! [`ThreadedGzWriter`] copies what it is given into fixed-size buffers (256 KiB by default)
//! and hands each full buffer over a bounded channel to a thread that owns the
//! [`GzEncoder`]. The caller's thread then only serializes and copies, while deflate runs on
//! another core. The thread sends each buffer back once compressed, so after start-up nothing
//! is allocated per buffer, and at most `buffers` of them exist at once: memory stays bounded
//! whatever the output's size (with 3 buffers: one being filled, one queued, one being
//! compressed).
//!
//! Errors are never lost. An error from the encoder or the inner writer stops the thread. The
//! next [`Write`] call that hands over a buffer returns it, and [`ThreadedGzWriter::finish`]
//! returns it (the first one) in any case. A panic on the thread becomes an error too.
//! Dropping the writer without `finish` stops the thread and waits for it. The encoder and the
//! inner writer are dropped on that thread, unfinished as far as this writer is concerned
//! (flate2's `GzEncoder` still writes its trailer on drop, and ignores errors doing so).
//!
//! The output is one gzip member, byte for byte what a `GzEncoder` at the same level would
//! write given the same bytes in 256 KiB writes.

use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TryRecvError};
use std::thread::JoinHandle;

use flate2::write::GzEncoder;
use flate2::Compression;

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

/// A [`Write`] that gzips on its own thread into `W`. See the [module docs](self).
pub struct ThreadedGzWriter<W: Write + Send + 'static> {
    buf: Vec<u8>,
    buffer_size: usize,
    /// Empty buffers ready to fill.
    free: Vec<Vec<u8>>,
    /// Buffers created so far (at most `max_buffers`).
    allocated: usize,
    max_buffers: usize,
    jobs: Option<SyncSender<Job>>,
    back: Receiver<Back>,
    thread: Option<JoinHandle<io::Result<W>>>,
    /// Why the thread stopped, once known; [`ThreadedGzWriter::finish`] returns it.
    failed: Option<io::Error>,
}

impl<W: Write + Send + 'static> ThreadedGzWriter<W> {
    /// Gzip at `level` into `inner`, with [`DEFAULT_BUFFERS`] buffers of
    /// [`DEFAULT_BUFFER_SIZE`].
    pub fn new(inner: W, level: Compression) -> Self {
        Self::with_buffers(inner, level, DEFAULT_BUFFER_SIZE, DEFAULT_BUFFERS)
    }

    /// Gzip at `level` into `inner`, with at most `buffers` buffers (at least 2) of
    /// `buffer_size` bytes (at least 1).
    ///
    /// Panics if the operating system cannot start the thread (as `std::thread::spawn` does).
    pub fn with_buffers(inner: W, level: Compression, buffer_size: usize, buffers: usize) -> Self {
        let buffer_size = buffer_size.max(1);
        let max_buffers = buffers.max(2);
        // Never full in practice: at most `max_buffers` data jobs exist, plus a flush or finish.
        let (jobs, job_rx) = mpsc::sync_channel(max_buffers + 1);
        let (back_tx, back) = mpsc::channel();
        let encoder = GzEncoder::new(inner, level);
        let thread = std::thread::Builder::new()
            .name("gzip-writer".into())
            .spawn(move || compress(encoder, job_rx, back_tx))
            .expect("spawning the gzip writer thread");
        ThreadedGzWriter {
            buf: Vec::with_capacity(buffer_size),
            buffer_size,
            free: Vec::new(),
            allocated: 1,
            max_buffers,
            jobs: Some(jobs),
            back,
            thread: Some(thread),
            failed: None,
        }
    }

    /// Compresses what is buffered, ends the gzip stream, waits for the thread and returns the
    /// inner writer (not flushed: finishing it, e.g. completing an upload, is the caller's
    /// job). Returns the first error the thread met instead, if any.
    pub fn finish(mut self) -> io::Result<W> {
        if let (None, Some(jobs)) = (&self.failed, self.jobs.take()) {
            let last = std::mem::take(&mut self.buf);
            // A failed send means the thread stopped; joining it says why.
            if last.is_empty() || jobs.send(Job::Data(last)).is_ok() {
                let _ = jobs.send(Job::Finish);
            }
        }
        self.jobs = None;
        let result = self.join();
        match self.failed.take() {
            Some(e) => Err(e),
            None => result,
        }
    }

    /// Waits for the thread (which stops once `jobs` is dropped or after `Finish`).
    fn join(&mut self) -> io::Result<W> {
        match self.thread.take() {
            None => Err(io::Error::other("gzip writer thread already stopped")),
            Some(thread) => match thread.join() {
                Ok(result) => result,
                Err(panic) => {
                    let message = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "unknown panic".into());
                    Err(io::Error::other(format!(
                        "gzip writer thread panicked: {message}"
                    )))
                }
            },
        }
    }

    /// The thread stopped: record why (once) and return a copy of the error.
    fn stopped(&mut self) -> io::Error {
        if self.failed.is_none() {
            self.jobs = None;
            self.failed = Some(match self.join() {
                Err(e) => e,
                Ok(_) => io::Error::other("gzip writer thread stopped before finish"),
            });
        }
        let e = self.failed.as_ref().expect("just set");
        io::Error::new(e.kind(), e.to_string())
    }

    /// Hands the current buffer to the thread and takes an empty one.
    #[cold]
    fn hand_over(&mut self) -> io::Result<()> {
        if self.failed.is_some() {
            return Err(self.stopped());
        }
        // Send first, so the thread has work queued while this one waits for a buffer.
        let full = std::mem::take(&mut self.buf);
        let sent = self.jobs.as_ref().map(|jobs| jobs.send(Job::Data(full)));
        if !matches!(sent, Some(Ok(()))) {
            return Err(self.stopped());
        }
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
            match self.back.try_recv() {
                Ok(Back::Empty(b)) => return Ok(b),
                Ok(Back::Flushed) => continue,
                Err(TryRecvError::Disconnected) => return Err(self.stopped()),
                Err(TryRecvError::Empty) => {}
            }
            if self.allocated < self.max_buffers {
                self.allocated += 1;
                return Ok(Vec::with_capacity(self.buffer_size));
            }
            match self.back.recv() {
                Ok(Back::Empty(b)) => return Ok(b),
                Ok(Back::Flushed) => continue,
                Err(_) => return Err(self.stopped()),
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

impl<W: Write + Send + 'static> Write for ThreadedGzWriter<W> {
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
    /// flushed the encoder (a deflate sync flush) and the inner writer.
    fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.hand_over()?;
        }
        if self.failed.is_some() {
            return Err(self.stopped());
        }
        if !matches!(self.jobs.as_ref().map(|j| j.send(Job::Flush)), Some(Ok(()))) {
            return Err(self.stopped());
        }
        loop {
            match self.back.recv() {
                Ok(Back::Empty(b)) => self.free.push(b),
                Ok(Back::Flushed) => return Ok(()),
                Err(_) => return Err(self.stopped()),
            }
        }
    }
}

impl<W: Write + Send + 'static> Drop for ThreadedGzWriter<W> {
    /// Without [`ThreadedGzWriter::finish`]: stops the thread (it sees the channel close
    /// before a finish and drops the encoder) and waits for it.
    fn drop(&mut self) {
        self.jobs = None;
        if self.thread.is_some() {
            let _ = self.join();
        }
    }
}

impl<W: Write + Send + 'static> std::fmt::Debug for ThreadedGzWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadedGzWriter")
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
    mut encoder: GzEncoder<W>,
    jobs: Receiver<Job>,
    back: Sender<Back>,
) -> io::Result<W> {
    loop {
        match jobs.recv() {
            Ok(Job::Data(mut buf)) => {
                encoder.write_all(&buf)?;
                buf.clear();
                // The writer may be gone already (dropped); nothing to return the buffer to.
                let _ = back.send(Back::Empty(buf));
            }
            Ok(Job::Flush) => {
                encoder.flush()?;
                let _ = back.send(Back::Flushed);
            }
            Ok(Job::Finish) => return encoder.finish(),
            Err(_) => {
                return Err(io::Error::other(
                    "gzip writer dropped before finish; output incomplete",
                ))
            }
        }
    }
}

/// Gzip output either on a thread of its own ([`ThreadedGzWriter`]) or inline on the
/// caller's thread (a [`DEFAULT_BUFFER_SIZE`] `BufWriter` in front of a `GzEncoder`, so deflate
/// still sees large writes), chosen at run time: the thread only pays where a second core
/// is free, and costs a little extra CPU where it is not.
pub enum GzOutput<W: Write + Send + 'static> {
    Threaded(ThreadedGzWriter<W>),
    Inline(io::BufWriter<GzEncoder<W>>),
}

impl<W: Write + Send + 'static> GzOutput<W> {
    pub fn new(inner: W, level: Compression, threaded: bool) -> Self {
        if threaded {
            GzOutput::Threaded(ThreadedGzWriter::new(inner, level))
        } else {
            GzOutput::Inline(io::BufWriter::with_capacity(
                DEFAULT_BUFFER_SIZE,
                GzEncoder::new(inner, level),
            ))
        }
    }

    /// Ends the gzip stream and returns the inner writer (not flushed), or the first error.
    pub fn finish(self) -> io::Result<W> {
        match self {
            GzOutput::Threaded(w) => w.finish(),
            GzOutput::Inline(w) => w.into_inner().map_err(|e| e.into_error())?.finish(),
        }
    }
}

impl<W: Write + Send + 'static> Write for GzOutput<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            GzOutput::Threaded(w) => w.write(buf),
            GzOutput::Inline(w) => w.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            GzOutput::Threaded(w) => w.write_all(buf),
            GzOutput::Inline(w) => w.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            GzOutput::Threaded(w) => w.flush(),
            GzOutput::Inline(w) => w.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::MultiGzDecoder;
    use std::io::Read;
    use std::sync::{Arc, Mutex};

    fn gunzip(gz: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        MultiGzDecoder::new(gz).read_to_end(&mut out).unwrap();
        out
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
    fn gz_output_round_trips_threaded_and_inline() {
        let input = data(DEFAULT_BUFFER_SIZE * 2 + 123);
        for threaded in [true, false] {
            let mut out = GzOutput::new(Vec::new(), Compression::fast(), threaded);
            assert_eq!(matches!(out, GzOutput::Threaded(_)), threaded);
            for piece in input.chunks(1000) {
                out.write_all(piece).unwrap();
            }
            let gz = out.finish().unwrap();
            assert_eq!(gunzip(&gz), input, "threaded: {threaded}");
        }
    }

    #[test]
    fn round_trip_in_many_write_sizes() {
        let input = data(300_007);
        for buffer_size in [7, 4096, 256 << 10, 1 << 20] {
            let mut w =
                ThreadedGzWriter::with_buffers(Vec::new(), Compression::fast(), buffer_size, 2);
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
            let gz = w.finish().unwrap();
            assert_eq!(gunzip(&gz), input, "buffer size {buffer_size}");
        }
    }

    #[test]
    fn same_bytes_as_a_plain_encoder() {
        let input = data(600_000);
        let mut w = ThreadedGzWriter::new(Vec::new(), Compression::fast());
        w.write_all(&input).unwrap();
        let ours = w.finish().unwrap();
        let mut plain = GzEncoder::new(Vec::new(), Compression::fast());
        for chunk in input.chunks(DEFAULT_BUFFER_SIZE) {
            plain.write_all(chunk).unwrap();
        }
        assert_eq!(ours, plain.finish().unwrap());
    }

    #[test]
    fn empty_output_is_a_valid_empty_gzip() {
        let gz = ThreadedGzWriter::new(Vec::new(), Compression::fast())
            .finish()
            .unwrap();
        assert!(!gz.is_empty());
        assert_eq!(gunzip(&gz), b"");
    }

    #[test]
    fn flush_makes_the_data_so_far_decodable() {
        let shared = Arc::new(Mutex::new(Vec::new()));
        let mut w = ThreadedGzWriter::new(Shared(shared.clone()), Compression::fast());
        w.write_all(b"first line\n").unwrap();
        w.flush().unwrap();
        let so_far = shared.lock().unwrap().clone();
        let mut out = Vec::new();
        // No trailer yet: read what inflates, then the stream ends early.
        let _ = flate2::read::GzDecoder::new(&so_far[..]).read_to_end(&mut out);
        assert_eq!(out, b"first line\n");
        w.write_all(b"second\n").unwrap();
        w.finish().unwrap();
        assert_eq!(gunzip(&shared.lock().unwrap()), b"first line\nsecond\n");
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

    fn failing(limit: usize, panic: bool) -> ThreadedGzWriter<Failing> {
        let inner = Failing {
            limit,
            written: 0,
            panic,
        };
        ThreadedGzWriter::with_buffers(inner, Compression::fast(), 4096, 2)
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
        let mut w =
            ThreadedGzWriter::with_buffers(Shared(shared.clone()), Compression::fast(), 4096, 2);
        w.write_all(&data(100_000)).unwrap();
        drop(w);
        // A failed writer drops too.
        let mut w = failing(1000, false);
        let _ = w.write_all(&data(1 << 20));
        drop(w);
        // And one that was never written to.
        drop(ThreadedGzWriter::new(Vec::new(), Compression::fast()));
    }
}
