//! Decompression on its own thread, a bounded distance ahead of the parser.
//!
//! Inflating is a tenth of the decoder's work; on a second core it overlaps with parsing
//! instead of adding to it. The reader thread fills fixed-size chunks and sends them over
//! a bounded channel, so memory stays at `DEPTH` chunks whatever the object's size, and
//! chunks travel back to be refilled rather than being allocated (or zeroed) per read: a
//! chunk keeps its full length and travels with the count of bytes filled.

use std::io::{self, BufRead, Read};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread;

/// Bytes per chunk handed from the reader thread to the parser.
const CHUNK: usize = 256 << 10;
/// Chunks in flight (filled and waiting, plus the one being parsed): 1 MiB.
const DEPTH: usize = 4;

/// A `BufRead` whose bytes come from `inner`, read on a separate thread.
pub(crate) struct ReadAhead {
    full: Receiver<io::Result<Filled>>,
    empty: SyncSender<Vec<u8>>,
    current: Filled,
    pos: usize,
    done: bool,
}

/// A chunk and how many of its bytes were read into it.
type Filled = (Vec<u8>, usize);

impl ReadAhead {
    /// Starts reading `inner` on a new thread. The thread ends at the end of `inner`, at
    /// its first error (handed on to the reader, after the bytes before it), or as soon
    /// as this `ReadAhead` is dropped.
    pub(crate) fn spawn(mut inner: impl Read + Send + 'static) -> io::Result<Self> {
        let (full_tx, full) = sync_channel::<io::Result<Filled>>(DEPTH);
        let (empty, empty_rx) = sync_channel::<Vec<u8>>(DEPTH + 1);
        for _ in 0..DEPTH {
            // Cannot fail: the channel has room for every chunk.
            let _ = empty.send(vec![0; CHUNK]);
        }
        thread::Builder::new()
            .name("tripline-gunzip".into())
            .spawn(move || {
                // Reused chunks arrive on `empty_rx`; a hang-up there means the parser
                // is gone, and so is the reason to go on.
                let mut failed = None;
                while let Ok(mut chunk) = empty_rx.recv() {
                    let result = match failed.take() {
                        Some(e) => Err(e),
                        None => fill(&mut inner, &mut chunk, &mut failed),
                    };
                    let end = !matches!(result, Ok(n) if n > 0);
                    let message = result.map(|n| (chunk, n));
                    if full_tx.send(message).is_err() || end {
                        return;
                    }
                }
            })?;
        Ok(ReadAhead {
            full,
            empty,
            current: (Vec::new(), 0),
            pos: 0,
            done: false,
        })
    }
}

/// Reads until `chunk` is full or `inner` ends; returns the bytes read, `Ok(0)` only at
/// the end. An error after some bytes goes to `failed`, to be sent after them.
fn fill(
    inner: &mut impl Read,
    chunk: &mut [u8],
    failed: &mut Option<io::Error>,
) -> io::Result<usize> {
    let mut n = 0;
    while n < chunk.len() {
        match inner.read(&mut chunk[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if n == 0 => return Err(e),
            Err(e) => {
                *failed = Some(e);
                break;
            }
        }
    }
    Ok(n)
}

impl BufRead for ReadAhead {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos == self.current.1 && !self.done {
            let (spent, _) = std::mem::take(&mut self.current);
            if !spent.is_empty() {
                // The thread may already be gone (end of input); the chunk is then freed.
                let _ = self.empty.send(spent);
            }
            self.pos = 0;
            match self.full.recv() {
                Ok(Ok(filled)) if filled.1 > 0 => self.current = filled,
                Ok(Ok(_)) => self.done = true,
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                Err(_) => {
                    self.done = true;
                    return Err(io::Error::other("decompression thread stopped"));
                }
            }
        }
        Ok(&self.current.0[self.pos..self.current.1])
    }

    fn consume(&mut self, amount: usize) {
        self.pos = (self.pos + amount).min(self.current.1);
    }
}

impl Read for ReadAhead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

/// `inner` read on a [`ReadAhead`] thread or, if no thread can be started, a stream that
/// fails at once with that error (so it surfaces as the object's read error, not a panic).
pub(crate) fn spawn_or_fail(inner: impl Read + Send + 'static) -> Box<dyn BufRead + Send> {
    match ReadAhead::spawn(inner) {
        Ok(ahead) => Box::new(ahead),
        Err(e) => Box::new(Failed(Some(e))),
    }
}

/// A stream that fails at once with an error found while setting up (then reads as empty).
pub(crate) struct Failed(pub(crate) Option<io::Error>);

impl Read for Failed {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        self.fill_buf().map(|_| 0)
    }
}

impl BufRead for Failed {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        match self.0.take() {
            Some(e) => Err(e),
            None => Ok(&[]),
        }
    }

    fn consume(&mut self, _: usize) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Yields `data` in small pieces, then fails with `error` (if any).
    struct Source {
        data: Vec<u8>,
        pos: usize,
        error: Option<io::ErrorKind>,
    }

    impl Read for Source {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.pos == self.data.len() {
                return match self.error.take() {
                    Some(kind) => Err(io::Error::new(kind, "boom")),
                    None => Ok(0),
                };
            }
            let n = buf.len().min(1000).min(self.data.len() - self.pos);
            buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[test]
    fn passes_every_byte_in_order() {
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK * DEPTH * 3 + 17] {
            let input = data(len);
            let mut r = ReadAhead::spawn(Source {
                data: input.clone(),
                pos: 0,
                error: None,
            })
            .unwrap();
            let mut out = Vec::new();
            r.read_to_end(&mut out).unwrap();
            assert_eq!(out, input, "length {len}");
        }
    }

    #[test]
    fn bytes_before_an_error_come_first_then_the_error() {
        let input = data(CHUNK + 5000);
        let mut r = ReadAhead::spawn(Source {
            data: input.clone(),
            pos: 0,
            error: Some(io::ErrorKind::InvalidData),
        })
        .unwrap();
        let mut out = Vec::new();
        let err = r.read_to_end(&mut out).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert_eq!(out, input);
    }

    #[test]
    fn dropping_early_stops_the_thread() {
        // An endless source that owns a channel's sender: the channel disconnects only
        // when the thread has ended and dropped it.
        struct Endless {
            _alive: std::sync::mpsc::Sender<()>,
        }
        impl Read for Endless {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                buf.fill(b'x');
                Ok(buf.len())
            }
        }
        let (alive, ended) = std::sync::mpsc::channel();
        let mut r = ReadAhead::spawn(Endless { _alive: alive }).unwrap();
        let mut first = [0u8; 10];
        r.read_exact(&mut first).unwrap();
        assert_eq!(&first, b"xxxxxxxxxx");
        drop(r);
        let waited = ended.recv_timeout(std::time::Duration::from_secs(30));
        assert_eq!(waited, Err(std::sync::mpsc::RecvTimeoutError::Disconnected));
    }
}
