//! Reading normalized events back: the detect stage's input.
//!
//! The parse stage writes one [`Event`] per line (gzip NDJSON); the detect stage streams
//! them back. Re-reading is most of what the detect stage costs, so a [`NormalizedReader`]
//! inflates on its own thread (like [`crate::decode::ObjectDecoder::threaded`]), reuses
//! one line buffer instead of allocating a `String` per line, and checks UTF-8 once per
//! line. A line that is not an event (which we never write, but an object can be damaged
//! or foreign) is returned as a [`BadLine`] and reading goes on; a line longer than
//! [`MAX_LINE_BYTES`] is skipped without being buffered.

use std::io::{self, BufRead, BufReader, Read};

use crate::decode::readahead::spawn_or_fail;
use crate::event::Event;

/// Longest line accepted. A normalized event is one osquery row plus its record's header;
/// osquery caps a whole record at 1 MiB, so anything near this is not ours.
pub const MAX_LINE_BYTES: usize = 8 << 20;

/// One line of a normalized object.
#[derive(Debug)]
pub enum Line {
    Event(Box<Event>),
    Bad(BadLine),
}

/// A line that is not a normalized event, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    /// 1-based line number.
    pub line: u64,
    pub error: String,
}

/// Streams the events of a normalized object (gzip, detected by its magic bytes, or plain).
pub struct NormalizedReader {
    input: Box<dyn BufRead + Send>,
    buf: Vec<u8>,
    line: u64,
    bytes: u64,
}

impl NormalizedReader {
    pub fn new(reader: impl Read + Send + 'static) -> Self {
        let mut raw = BufReader::with_capacity(64 << 10, reader);
        let gzip = matches!(raw.fill_buf(), Ok(b) if b.starts_with(&[0x1f, 0x8b]));
        let input: Box<dyn BufRead + Send> = if gzip {
            let inflate = flate2::bufread::MultiGzDecoder::new(raw);
            spawn_or_fail(inflate)
        } else {
            Box::new(raw)
        };
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

impl Iterator for NormalizedReader {
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

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    fn read_all(input: Vec<u8>) -> (Vec<Event>, Vec<BadLine>, u64) {
        let mut r = NormalizedReader::new(io::Cursor::new(input));
        let (mut events, mut bad) = (Vec::new(), Vec::new());
        for item in r.by_ref() {
            match item.unwrap() {
                Line::Event(e) => events.push(*e),
                Line::Bad(b) => bad.push(b),
            }
        }
        (events, bad, r.bytes())
    }

    #[test]
    fn events_round_trip_gzip_and_plain() {
        let events = fixture_events();
        assert!(events.len() > 5);
        let plain = ndjson(&events);
        let (back, bad, bytes) = read_all(gzip(&plain));
        assert_eq!(back, events);
        assert!(bad.is_empty());
        assert_eq!(bytes, plain.len() as u64);
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
        let (back, bad, _) = read_all(gzip(&data));
        assert_eq!(back, events[..3].to_vec());
        let lines: Vec<_> = bad.iter().map(|b| b.line).collect();
        assert_eq!(lines, vec![2, 5, 6]);
        assert!(bad[0].error.starts_with("not a normalized event"));
        assert!(bad[1].error.starts_with("not UTF-8"));
        assert!(bad[2].error.contains("longer than"));
    }

    #[test]
    fn a_cut_gzip_stream_is_an_error_after_the_lines_before_it() {
        let events = fixture_events();
        let gz = gzip(&ndjson(&events));
        let mut r = NormalizedReader::new(io::Cursor::new(gz[..gz.len() - 20].to_vec()));
        let mut seen = 0;
        let error = loop {
            match r.next() {
                Some(Ok(Line::Event(_))) => seen += 1,
                Some(Ok(Line::Bad(b))) => panic!("{b:?}"),
                Some(Err(e)) => break e,
                None => panic!("a cut stream must not end quietly"),
            }
        };
        assert!(seen < events.len());
        assert!(matches!(
            error.kind(),
            io::ErrorKind::UnexpectedEof | io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput
        ));
    }
}
