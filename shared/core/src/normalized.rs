//! Reading normalized events back: the detect stage's input.
//!
//! The parse stage writes one [`Event`] per line (zstd or gzip NDJSON, see [`Codec`]); the
//! detect stage streams them back. Re-reading is most of what the detect stage costs, so a
//! [`NormalizedReader`] reuses one line buffer instead of allocating a `String` per line and
//! checks UTF-8 once per line; with [`Parallelism::Threads`] it also decompresses on a thread
//! of its own. A
//! line that is not an event (which we never write, but an object can be damaged or
//! foreign) is returned as a [`BadLine`] and reading goes on; a line longer than
//! [`MAX_LINE_BYTES`] is skipped without being buffered.

use std::io::{self, BufRead, BufReader, Read};

use crate::compress::Codec;
use crate::event::Event;
use crate::worker::{read_ahead, Parallelism};

/// Longest line accepted. A normalized event is one osquery row plus its record's header;
/// osquery caps a whole record at 1 MiB, so anything near this is not ours.
pub const MAX_LINE_BYTES: usize = 8 << 20;

/// One line of a normalized object.
#[derive(Debug)]
pub enum Line {
    /// An event, as the parse stage wrote it.
    Event(Box<Event>),
    /// A line that is not an event.
    Bad(BadLine),
}

/// A line that is not a normalized event, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    /// 1-based line number.
    pub line: u64,
    /// Why it is not an event.
    pub error: String,
}

/// Streams the events of a normalized object (zstd or gzip, told by their magic bytes, or
/// plain).
pub struct NormalizedReader<'a> {
    input: Box<dyn BufRead + Send + 'a>,
    buf: Vec<u8>,
    line: u64,
    bytes: u64,
}

/// Buffers the raw input and tells how it is compressed, by its magic bytes.
fn open<R: Read>(reader: R) -> (BufReader<R>, Option<Codec>) {
    let mut raw = BufReader::with_capacity(64 << 10, reader);
    let codec = raw.fill_buf().ok().and_then(Codec::sniff);
    (raw, codec)
}

impl NormalizedReader<'static> {
    /// Like [`NormalizedReader::new`]; with [`Parallelism::Threads`], a compressed object is
    /// decompressed on a thread of its own, a bounded distance ahead of the line parser.
    /// Items, byte counts and errors are the same either way; if no thread can be started,
    /// that is the first item's read error. Plain input is read on the calling thread.
    pub fn with_parallelism(reader: impl Read + Send + 'static, parallelism: Parallelism) -> Self {
        let input: Box<dyn BufRead + Send> = match (open(reader), parallelism) {
            ((raw, Some(codec)), Parallelism::Threads) => read_ahead(codec.decoder(raw)),
            ((raw, Some(codec)), Parallelism::Inline) => {
                Box::new(BufReader::with_capacity(256 << 10, codec.decoder(raw)))
            }
            ((raw, None), _) => Box::new(raw),
        };
        Self::assemble(input)
    }
}

impl<'a> NormalizedReader<'a> {
    /// Reads `reader` on the calling thread, decompressing there too: with one core (or less, as
    /// a Lambda function at 1,769 MB and below), a second thread would only take turns.
    pub fn new(reader: impl Read + Send + 'a) -> Self {
        let input: Box<dyn BufRead + Send + 'a> = match open(reader) {
            (raw, Some(codec)) => Box::new(BufReader::with_capacity(256 << 10, codec.decoder(raw))),
            (raw, None) => Box::new(raw),
        };
        Self::assemble(input)
    }

    fn assemble(input: Box<dyn BufRead + Send + 'a>) -> Self {
        NormalizedReader {
            input,
            buf: Vec::with_capacity(16 << 10),
            line: 0,
            bytes: 0,
        }
    }

    /// Decompressed bytes read so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Reads the next line into `buf` (without its newline). `Ok(None)` at the end;
    /// `Ok(Some(false))` for a line over the limit (skipped, not buffered).
    fn next_line(&mut self) -> io::Result<Option<bool>> {
        self.buf.clear();
        let (mut seen, mut oversized) = (false, false);
        loop {
            let chunk = match self.input.fill_buf() {
                Ok(c) => c,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if chunk.is_empty() {
                return Ok(seen.then_some(!oversized));
            }
            seen = true;
            let (piece, used, end) = match memchr::memchr(b'\n', chunk) {
                Some(i) => (&chunk[..i], i + 1, true),
                None => (chunk, chunk.len(), false),
            };
            if !oversized && self.buf.len() + piece.len() > MAX_LINE_BYTES {
                oversized = true;
                self.buf.clear();
            }
            if !oversized {
                self.buf.extend_from_slice(piece);
            }
            self.bytes += used as u64;
            self.input.consume(used);
            if end {
                return Ok(Some(!oversized));
            }
        }
    }
}

impl Iterator for NormalizedReader<'_> {
    type Item = io::Result<Line>;

    fn next(&mut self) -> Option<io::Result<Line>> {
        loop {
            let fits = match self.next_line() {
                Ok(Some(fits)) => fits,
                Ok(None) => return None,
                Err(e) => return Some(Err(e)),
            };
            self.line += 1;
            let bad = |error: String| {
                Some(Ok(Line::Bad(BadLine {
                    line: self.line,
                    error,
                })))
            };
            if !fits {
                return bad(format!("line longer than {MAX_LINE_BYTES} bytes"));
            }
            let text = self.buf.strip_suffix(b"\r").unwrap_or(&self.buf);
            if text.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let text = match std::str::from_utf8(text) {
                Ok(t) => t,
                Err(e) => return bad(format!("not UTF-8 (byte {})", e.valid_up_to())),
            };
            return match serde_json::from_str::<Event>(text) {
                Ok(event) => Some(Ok(Line::Event(Box::new(event)))),
                Err(e) => bad(format!("not a normalized event: {e}")),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{Decoded, ObjectDecoder, Options, Origin};
    use std::io::Write;

    fn fixture_events() -> Vec<Event> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../events/osquery/attack-linux.ndjson"
        );
        let file = std::fs::File::open(path).unwrap();
        ObjectDecoder::new(file, Origin::path("f"), Options::default())
            .filter_map(|i| match i {
                Decoded::Event(e) => Some(*e),
                _ => None,
            })
            .collect()
    }

    fn ndjson(events: &[Event]) -> Vec<u8> {
        let mut out = Vec::new();
        for e in events {
            serde_json::to_writer(&mut out, e).unwrap();
            out.push(b'\n');
        }
        out
    }

    const CODECS: [Codec; 2] = [Codec::Zstd, Codec::Gzip];

    /// `data` as the parse stage writes it with `codec`.
    fn pack(codec: Codec, data: &[u8]) -> Vec<u8> {
        let mut enc = codec.encoder(Vec::new()).unwrap();
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    /// What a reader yielded, comparable: its items up to the first error, and its byte count.
    #[derive(Debug, PartialEq)]
    enum Item {
        Event(Box<Event>),
        Bad(BadLine),
        Error(io::ErrorKind, String),
    }

    fn collect(mut r: NormalizedReader<'_>) -> (Vec<Item>, u64) {
        let mut items = Vec::new();
        for item in r.by_ref() {
            match item {
                Ok(Line::Event(e)) => items.push(Item::Event(e)),
                Ok(Line::Bad(b)) => items.push(Item::Bad(b)),
                Err(e) => {
                    // The detect stage stops at a read error; so do we.
                    items.push(Item::Error(e.kind(), e.to_string()));
                    break;
                }
            }
        }
        (items, r.bytes())
    }

    /// Reads `input` inline and with decompression on its own thread; every test here thereby also
    /// checks that the two agree item for item (line numbers and errors included) and in bytes.
    fn read_both(input: &[u8]) -> (Vec<Item>, u64) {
        let one = collect(NormalizedReader::new(input));
        let two = collect(NormalizedReader::with_parallelism(
            io::Cursor::new(input.to_vec()),
            Parallelism::Threads,
        ));
        assert_eq!(one, two, "inline and threaded readers disagree");
        one
    }

    fn read_all(input: Vec<u8>) -> (Vec<Event>, Vec<BadLine>, u64) {
        let (items, bytes) = read_both(&input);
        let (mut events, mut bad) = (Vec::new(), Vec::new());
        for item in items {
            match item {
                Item::Event(e) => events.push(*e),
                Item::Bad(b) => bad.push(b),
                Item::Error(kind, e) => panic!("{kind:?}: {e}"),
            }
        }
        (events, bad, bytes)
    }

    #[test]
    fn events_round_trip_compressed_and_plain() {
        let events = fixture_events();
        assert!(events.len() > 5);
        let plain = ndjson(&events);
        for codec in CODECS {
            let (back, bad, bytes) = read_all(pack(codec, &plain));
            assert_eq!(back, events, "{codec}");
            assert!(bad.is_empty());
            assert_eq!(bytes, plain.len() as u64);
        }
        let (back, bad, _) = read_all(plain);
        assert_eq!(back, events);
        assert!(bad.is_empty());
    }

    #[test]
    fn bad_lines_are_reported_and_reading_goes_on() {
        let events = fixture_events();
        let mut data = ndjson(&events[..1]);
        data.extend_from_slice(b"{\"not\":\"an event\"}\n\n   \n\xff\xfe\n");
        data.extend_from_slice(&vec![b'x'; MAX_LINE_BYTES + 10]);
        data.push(b'\n');
        data.extend_from_slice(&ndjson(&events[1..2]));
        // The last line has no newline and a CR: still read.
        let last = ndjson(&events[2..3]);
        data.extend_from_slice(&last[..last.len() - 1]);
        data.extend_from_slice(b"\r");
        for codec in CODECS {
            let (back, bad, _) = read_all(pack(codec, &data));
            assert_eq!(back, events[..3].to_vec());
            let lines: Vec<_> = bad.iter().map(|b| b.line).collect();
            assert_eq!(lines, vec![2, 5, 6], "{codec}");
            assert!(bad[0].error.starts_with("not a normalized event"));
            assert!(bad[1].error.starts_with("not UTF-8"));
            assert!(bad[2].error.contains("longer than"));
        }
    }

    #[test]
    fn a_cut_stream_is_an_error_after_the_lines_before_it() {
        let events = fixture_events();
        for codec in CODECS {
            let packed = pack(codec, &ndjson(&events));
            let (mut items, _) = read_both(&packed[..packed.len() - 20]);
            let error = match items.pop() {
                Some(Item::Error(kind, _)) => kind,
                other => panic!("a cut {codec} stream must end in an error, not {other:?}"),
            };
            assert!(
                items.iter().all(|i| matches!(i, Item::Event(_))),
                "{items:?}"
            );
            assert!(items.len() < events.len());
            assert!(matches!(
                error,
                io::ErrorKind::UnexpectedEof
                    | io::ErrorKind::InvalidData
                    | io::ErrorKind::InvalidInput
                    | io::ErrorKind::Other
            ));
        }
    }

    #[test]
    fn empty_and_blank_input_have_no_lines() {
        let mut inputs = vec![b"".to_vec(), b"\n\n  \r\n".to_vec()];
        for codec in CODECS {
            inputs.extend([pack(codec, b""), pack(codec, b"\n \n")]);
        }
        for input in inputs {
            let (events, bad, _) = read_all(input);
            assert!(events.is_empty() && bad.is_empty());
        }
    }

    #[test]
    fn concatenated_members_and_frames_are_read_through() {
        let events = fixture_events();
        let (a, b) = events.split_at(events.len() / 2);
        for codec in CODECS {
            let mut data = pack(codec, &ndjson(a));
            data.extend_from_slice(&pack(codec, &ndjson(b)));
            let (back, bad, bytes) = read_all(data);
            assert_eq!(back, events, "{codec}");
            assert!(bad.is_empty());
            assert_eq!(bytes, ndjson(&events).len() as u64);
        }
    }
}
