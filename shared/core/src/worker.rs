//! The core's one piece of thread machinery: a [`Worker`] thread beside the caller, fed jobs
//! over a bounded channel and sending each back once done, so that the buffers a job carries
//! come back to be refilled instead of being allocated per job. Memory stays bounded whatever
//! the input's size, because the caller decides how many jobs exist at once.
//!
//! Three things are built on it, each where a second core overlaps work with the caller's:
//! [`ReadAhead`] (inflating a stream ahead of its reader), the compressing writer in
//! [`crate::compress`] and threaded detection in [`crate::stage`]. Whether to use them is
//! the [`Parallelism`] value a caller passes; none of it is public.

use std::io::{self, BufRead, Read};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TryRecvError};
use std::thread::{self, JoinHandle};

/// Whether a stage runs its inflating, compressing and detecting beside the decoding on
/// threads of their own, or all of it on the caller's thread.
///
/// Threads pay only where a second core is free (a laptop, a Lambda function above
/// 1,769 MB); on one core they take turns with the caller and only add the hand-over cost.
/// Either way the output is the same, byte for byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Parallelism {
    /// Everything on the caller's thread.
    #[default]
    Inline,
    /// Inflate, compress and detect on threads beside the caller's.
    Threads,
}

impl Parallelism {
    /// [`Parallelism::Threads`] when this process can run more than one thread at once.
    pub fn available() -> Self {
        let cores = thread::available_parallelism().map_or(1, |n| n.get());
        Self::for_cores(cores)
    }

    /// [`Parallelism::Threads`] for more than one core.
    pub fn for_cores(cores: usize) -> Self {
        if cores > 1 {
            Parallelism::Threads
        } else {
            Parallelism::Inline
        }
    }

    /// Whether this is [`Parallelism::Threads`].
    pub fn threads(self) -> bool {
        self == Parallelism::Threads
    }
}

/// Events per batch handed to a detection thread: enough that the channel costs nothing per
/// event, few enough that detection starts soon after the first events are decoded.
pub(crate) const EVENT_BATCH: usize = 256;

/// Event batches in existence at once (one being filled, the rest queued or being detected).
pub(crate) const EVENT_BATCHES: usize = 4;

/// The thread has stopped: it returned or panicked. [`Worker::join`] says which.
#[derive(Debug)]
pub(crate) struct Stopped;

/// A named thread that takes jobs `J` in order and sends back `D`s, and returns `S` when its
/// jobs channel closes (or earlier, by its own choice). See the [module docs](self).
pub(crate) struct Worker<J, D, S> {
    jobs: Option<SyncSender<J>>,
    done: Receiver<D>,
    thread: Option<JoinHandle<S>>,
}

impl<J: Send + 'static, D: Send + 'static, S: Send + 'static> Worker<J, D, S> {
    /// Starts `body` on a thread named `name`, with room for `depth` queued jobs. `body`
    /// receives jobs until the caller closes the channel ([`Worker::close`], drop, join)
    /// and sends results back; a send fails only once the caller is gone.
    pub(crate) fn spawn(
        name: &str,
        depth: usize,
        body: impl FnOnce(Receiver<J>, Sender<D>) -> S + Send + 'static,
    ) -> io::Result<Self> {
        let (jobs, job_rx) = mpsc::sync_channel(depth);
        let (done_tx, done) = mpsc::channel();
        let thread = thread::Builder::new()
            .name(name.into())
            .spawn(move || body(job_rx, done_tx))?;
        Ok(Worker {
            jobs: Some(jobs),
            done,
            thread: Some(thread),
        })
    }

    /// Queues `job`, waiting while `depth` jobs are queued already.
    pub(crate) fn send(&self, job: J) -> Result<(), Stopped> {
        match &self.jobs {
            Some(jobs) => jobs.send(job).map_err(|_| Stopped),
            None => Err(Stopped),
        }
    }

    /// A result, if one is waiting.
    pub(crate) fn try_done(&self) -> Result<Option<D>, Stopped> {
        match self.done.try_recv() {
            Ok(d) => Ok(Some(d)),
            Err(TryRecvError::Empty) => Ok(None),
            Err(TryRecvError::Disconnected) => Err(Stopped),
        }
    }

    /// The next result, waiting for it.
    pub(crate) fn wait_done(&self) -> Result<D, Stopped> {
        self.done.recv().map_err(|_| Stopped)
    }

    /// Closes the jobs channel: the thread sees the end of its jobs once it has done the
    /// queued ones.
    pub(crate) fn close(&mut self) {
        self.jobs = None;
    }

    /// Closes the jobs channel and lets the thread finish on its own, unwaited for: for a
    /// thread that may be blocked on input nobody needs any more.
    pub(crate) fn detach(&mut self) {
        self.jobs = None;
        self.thread = None;
    }

    /// Closes the jobs channel and waits for the thread: its return value, or its panic.
    pub(crate) fn join(mut self) -> thread::Result<S> {
        self.close();
        match self.thread.take() {
            Some(thread) => thread.join(),
            None => Err(Box::new("worker joined twice")),
        }
    }
}

impl<J, D, S> Drop for Worker<J, D, S> {
    /// Stops the thread after its queued jobs and waits for it, so no thread outlives its
    /// owner; its result or panic is dropped.
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The message of a panic payload, for turning a worker's panic into an error.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// Bytes per chunk handed from the read-ahead thread to the reader.
const CHUNK: usize = 256 << 10;
/// Chunks in circulation (filled and waiting, plus the one being read).
const DEPTH: usize = 4;

/// A chunk and how many of its bytes were read into it.
type Filled = (Vec<u8>, usize);

/// A `BufRead` whose bytes are read from `inner` on a [`Worker`] thread, a bounded distance
/// ahead. Chunks keep their full length and travel back to be refilled, so nothing is
/// allocated or zeroed per read.
pub(crate) struct ReadAhead {
    worker: Worker<Vec<u8>, io::Result<Filled>, ()>,
    current: Filled,
    pos: usize,
    done: bool,
}

impl ReadAhead {
    /// Starts reading `inner` on a new thread. The thread ends at the end of `inner`, at its
    /// first error (handed on after the bytes before it), or once this reader is dropped.
    fn spawn(mut inner: impl Read + Send + 'static) -> io::Result<Self> {
        let body = move |empty: Receiver<Vec<u8>>, full: Sender<io::Result<Filled>>| {
            let mut failed = None;
            for mut chunk in empty {
                let result = match failed.take() {
                    Some(e) => Err(e),
                    None => fill(&mut inner, &mut chunk, &mut failed),
                };
                let end = !matches!(result, Ok(n) if n > 0);
                if full.send(result.map(|n| (chunk, n))).is_err() || end {
                    return;
                }
            }
        };
        let worker = Worker::spawn("tripline-read-ahead", DEPTH + 1, body)?;
        for _ in 0..DEPTH {
            // Cannot fail: the queue has room for every chunk.
            let _ = worker.send(vec![0; CHUNK]);
        }
        Ok(ReadAhead {
            worker,
            current: (Vec::new(), 0),
            pos: 0,
            done: false,
        })
    }
}

/// Reads until `chunk` is full or `inner` ends; returns the bytes read, `Ok(0)` only at the
/// end. An error after some bytes goes to `failed`, to be reported after them.
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
                // The thread may be gone already (end of input); the chunk is then freed.
                let _ = self.worker.send(spent);
            }
            self.pos = 0;
            match self.worker.wait_done() {
                Ok(Ok(filled)) if filled.1 > 0 => self.current = filled,
                Ok(Ok(_)) => self.done = true,
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                Err(Stopped) => {
                    self.done = true;
                    return Err(io::Error::other("read-ahead thread stopped"));
                }
            }
        }
        Ok(&self.current.0[self.pos..self.current.1])
    }

    fn consume(&mut self, amount: usize) {
        self.pos = (self.pos + amount).min(self.current.1);
    }
}

impl Drop for ReadAhead {
    /// The thread may be blocked reading `inner` (a stalled network stream): it stops at its
    /// next chunk, without the reader waiting for it.
    fn drop(&mut self) {
        self.worker.detach();
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
pub(crate) fn read_ahead(inner: impl Read + Send + 'static) -> Box<dyn BufRead + Send> {
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

    #[test]
    fn jobs_come_back_in_order_and_the_state_at_the_end() {
        let worker: Worker<u32, u32, u32> = Worker::spawn("t", 2, |jobs, done| {
            let mut sum = 0;
            for j in jobs {
                sum += j;
                let _ = done.send(j * 10);
            }
            sum
        })
        .unwrap();
        let mut back = Vec::new();
        for j in 1..=5 {
            worker.send(j).unwrap();
            while let Some(d) = worker.try_done().unwrap() {
                back.push(d);
            }
        }
        let sum = worker.join().unwrap();
        assert_eq!(sum, 15);
        assert!(back
            .iter()
            .enumerate()
            .all(|(i, d)| *d == (i as u32 + 1) * 10));
    }

    #[test]
    fn a_panic_reaches_join_and_sends_fail() {
        let worker: Worker<u32, u32, ()> = Worker::spawn("t", 1, |jobs, _| {
            for j in jobs {
                assert!(j < 3, "job {j} too large");
            }
        })
        .unwrap();
        let mut stopped = false;
        for j in 0..100 {
            if worker.send(j).is_err() {
                stopped = true;
                break;
            }
        }
        assert!(stopped, "sends fail once the thread has panicked");
        assert!(worker.wait_done().is_err());
        let panic = worker.join().unwrap_err();
        assert!(panic_message(&*panic).contains("too large"));
    }

    #[test]
    fn parallelism_follows_the_cores() {
        assert_eq!(Parallelism::for_cores(1), Parallelism::Inline);
        assert_eq!(Parallelism::for_cores(2), Parallelism::Threads);
        assert!(!Parallelism::default().threads());
    }

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
    fn read_ahead_passes_every_byte_in_order() {
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
    fn read_ahead_gives_the_bytes_before_an_error_then_the_error() {
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
    fn dropping_a_read_ahead_early_stops_its_thread() {
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
