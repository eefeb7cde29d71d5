//! Splitting a byte stream into osquery records without reading it all.
//!
//! Firehose objects hold newline-terminated records (osquery's Firehose logger) or
//! records with no separator at all (`}{`, the Kinesis logger behind a Firehose), and
//! real objects end mid-record when a gzip stream is cut. So the splitter tracks JSON
//! nesting (strings and escapes included) rather than splitting on newlines alone, and
//! treats a raw newline inside an open record as the record's end: osquery never writes a
//! record across lines, and this keeps one truncated record from swallowing the rest.

use std::io::{self, BufRead};

use memchr::memchr3;

/// One unit the splitter found in the stream.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Frame {
    /// A complete, balanced JSON object or array (not yet parsed).
    Record(Vec<u8>),
    /// Something that can't be a record; `head` is its first bytes, `len` its full size.
    Bad {
        head: Vec<u8>,
        len: u64,
        problem: Problem,
    },
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub(crate) enum Problem {
    /// Bytes outside any record that aren't whitespace.
    Garbage,
    /// A record longer than the limit; it was skipped to its end without being buffered.
    Oversized,
    /// A line ended while the record was still open.
    TruncatedAtLineEnd,
    /// The stream ended (or failed) while the record was still open.
    TruncatedAtEnd,
}

#[derive(Clone, Copy)]
enum State {
    Between,
    Record {
        depth: u32,
        in_string: bool,
        escaped: bool,
    },
    Garbage,
}

/// How many bytes of a bad frame are kept for the quarantine entry.
pub const HEAD_BYTES: usize = 4096;

pub(crate) struct Splitter<R> {
    reader: R,
    max_record: usize,
    state: State,
    buf: Vec<u8>,
    /// Full length of the current frame, including bytes not kept in `buf`.
    len: u64,
    oversized: bool,
    error: Option<io::Error>,
    finished: bool,
}

impl<R: BufRead> Splitter<R> {
    pub(crate) fn new(reader: R, max_record: usize) -> Self {
        Splitter {
            reader,
            max_record,
            state: State::Between,
            buf: Vec::new(),
            len: 0,
            oversized: false,
            error: None,
            finished: false,
        }
    }

    pub(crate) fn max_record(&self) -> usize {
        self.max_record
    }

    /// Hands a record's buffer back once the caller is done with it, so the next record
    /// is collected into already-grown memory instead of reallocating its way up.
    pub(crate) fn recycle(&mut self, mut bytes: Vec<u8>) {
        if self.buf.capacity() < bytes.capacity() && self.buf.is_empty() {
            bytes.clear();
            self.buf = bytes;
        }
    }

    /// The next frame; `Err` once, after the last frame, if the stream failed.
    pub(crate) fn next_frame(&mut self) -> Option<io::Result<Frame>> {
        if let Some(e) = self.error.take() {
            self.finished = true;
            return Some(Err(e));
        }
        if self.finished {
            return None;
        }
        loop {
            let chunk = match self.reader.fill_buf() {
                Ok(chunk) => chunk,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Keep what was decoded before the damage: close the open frame now,
                    // report the error on the next call.
                    self.error = Some(e);
                    return match self.close_at_end() {
                        Some(frame) => Some(Ok(frame)),
                        None => self.next_frame(),
                    };
                }
            };
            if chunk.is_empty() {
                self.finished = true;
                return self.close_at_end().map(Ok);
            }
            let (used, frame) = scan(
                chunk,
                &mut self.state,
                &mut self.buf,
                &mut self.len,
                &mut self.oversized,
                self.max_record,
            );
            self.reader.consume(used);
            if let Some(frame) = frame {
                return Some(Ok(frame));
            }
        }
    }

    fn close_at_end(&mut self) -> Option<Frame> {
        let problem = match self.state {
            State::Between => return None,
            State::Record { .. } => Problem::TruncatedAtEnd,
            State::Garbage => Problem::Garbage,
        };
        self.state = State::Between;
        Some(take_bad(
            &mut self.buf,
            &mut self.len,
            &mut self.oversized,
            problem,
        ))
    }
}

fn take_bad(buf: &mut Vec<u8>, len: &mut u64, oversized: &mut bool, problem: Problem) -> Frame {
    let mut head = std::mem::take(buf);
    head.truncate(HEAD_BYTES);
    let frame = Frame::Bad {
        head,
        len: *len,
        problem: if *oversized && problem != Problem::Garbage {
            Problem::Oversized
        } else {
            problem
        },
    };
    *len = 0;
    *oversized = false;
    frame
}

/// Appends `bytes` to the frame being built, keeping at most `max` bytes buffered; past
/// that only the head is kept and the frame is marked oversized.
fn keep(buf: &mut Vec<u8>, len: &mut u64, oversized: &mut bool, max: usize, bytes: &[u8]) {
    *len += bytes.len() as u64;
    if *oversized {
        return;
    }
    if buf.len() + bytes.len() > max {
        *oversized = true;
        let room = HEAD_BYTES.saturating_sub(buf.len());
        buf.truncate(HEAD_BYTES);
        buf.extend_from_slice(&bytes[..room.min(bytes.len())]);
    } else {
        buf.extend_from_slice(bytes);
    }
}

/// Scans one buffered chunk. Returns how many bytes were used and, if a frame ended
/// inside this chunk, that frame.
fn scan(
    chunk: &[u8],
    state: &mut State,
    buf: &mut Vec<u8>,
    len: &mut u64,
    oversized: &mut bool,
    max: usize,
) -> (usize, Option<Frame>) {
    let mut i = 0;
    while i < chunk.len() {
        match state {
            State::Between => {
                let b = chunk[i];
                if matches!(b, b' ' | b'\t' | b'\r' | b'\n') {
                    i += 1;
                } else if b == b'{' || b == b'[' {
                    *state = State::Record {
                        depth: 1,
                        in_string: false,
                        escaped: false,
                    };
                    keep(buf, len, oversized, max, &chunk[i..i + 1]);
                    i += 1;
                } else {
                    *state = State::Garbage;
                }
            }
            State::Garbage => {
                let end = memchr::memchr(b'\n', &chunk[i..]).map(|n| i + n);
                let stop = end.unwrap_or(chunk.len());
                let mut piece = &chunk[i..stop];
                if piece.last() == Some(&b'\r') {
                    piece = &piece[..piece.len() - 1];
                }
                keep(buf, len, oversized, max, piece);
                match end {
                    Some(end) => {
                        *state = State::Between;
                        let frame = take_bad(buf, len, oversized, Problem::Garbage);
                        return (end + 1, Some(frame));
                    }
                    None => i = chunk.len(),
                }
            }
            State::Record {
                depth,
                in_string,
                escaped,
            } => {
                let start = i;
                let mut done = None;
                while i < chunk.len() {
                    if *in_string {
                        if *escaped {
                            *escaped = false;
                            if chunk[i] == b'\n' {
                                done = Some(Problem::TruncatedAtLineEnd);
                                break;
                            }
                            i += 1;
                            continue;
                        }
                        // Most of a record is string content: jump to what matters.
                        match memchr3(b'"', b'\\', b'\n', &chunk[i..]) {
                            None => i = chunk.len(),
                            Some(n) => {
                                i += n;
                                match chunk[i] {
                                    b'"' => *in_string = false,
                                    b'\\' => *escaped = true,
                                    _ => {
                                        done = Some(Problem::TruncatedAtLineEnd);
                                        break;
                                    }
                                }
                                i += 1;
                            }
                        }
                        continue;
                    }
                    match chunk[i] {
                        b'"' => *in_string = true,
                        b'{' | b'[' => *depth += 1,
                        b'}' | b']' => {
                            *depth -= 1;
                            if *depth == 0 {
                                i += 1;
                                keep(buf, len, oversized, max, &chunk[start..i]);
                                *state = State::Between;
                                if *oversized {
                                    let frame = take_bad(buf, len, oversized, Problem::Oversized);
                                    return (i, Some(frame));
                                }
                                *len = 0;
                                return (i, Some(Frame::Record(std::mem::take(buf))));
                            }
                        }
                        b'\n' => {
                            done = Some(Problem::TruncatedAtLineEnd);
                            break;
                        }
                        _ => {}
                    }
                    i += 1;
                }
                let mut piece = &chunk[start..i];
                if done.is_some() && piece.last() == Some(&b'\r') {
                    piece = &piece[..piece.len() - 1];
                }
                keep(buf, len, oversized, max, piece);
                if let Some(problem) = done {
                    *state = State::Between;
                    let frame = take_bad(buf, len, oversized, problem);
                    return (i + 1, Some(frame));
                }
            }
        }
    }
    (i, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(input: &[u8], max: usize, chunk: usize) -> Vec<Frame> {
        let reader = io::BufReader::with_capacity(chunk, input);
        let mut s = Splitter::new(reader, max);
        let mut out = Vec::new();
        while let Some(f) = s.next_frame() {
            out.push(f.unwrap());
        }
        out
    }

    fn rec(s: &str) -> Frame {
        Frame::Record(s.as_bytes().to_vec())
    }

    #[test]
    fn splits_every_separator_style_at_every_chunk_size() {
        let input = b"{\"a\":1}\n{\"b\":\"}{\\\"\"}\r\n\n\n{\"c\":[{}]}{\"d\":2}  {\"e\":3}";
        for chunk in 1..input.len() + 2 {
            assert_eq!(
                frames(input, 1 << 20, chunk),
                vec![
                    rec("{\"a\":1}"),
                    rec("{\"b\":\"}{\\\"\"}"),
                    rec("{\"c\":[{}]}"),
                    rec("{\"d\":2}"),
                    rec("{\"e\":3}"),
                ],
                "chunk size {chunk}"
            );
        }
    }

    #[test]
    fn a_truncated_line_does_not_swallow_the_next_record() {
        let input = b"{\"a\":\"unterminated\n{\"b\":1}\n{\"c\":{\"d\":1}\r\n{\"e\":1}";
        let got = frames(input, 1 << 20, 7);
        assert_eq!(got.len(), 4);
        assert!(matches!(
            &got[0],
            Frame::Bad { problem: Problem::TruncatedAtLineEnd, head, .. } if head == b"{\"a\":\"unterminated"
        ));
        assert_eq!(got[1], rec("{\"b\":1}"));
        assert!(matches!(
            &got[2],
            Frame::Bad { problem: Problem::TruncatedAtLineEnd, head, len: 12 } if head == b"{\"c\":{\"d\":1}"
        ));
        assert_eq!(got[3], rec("{\"e\":1}"));
    }

    #[test]
    fn garbage_and_end_of_stream() {
        let got = frames(b"hello world\r\n{\"a\":1}\n{\"b\":", 1 << 20, 3);
        assert_eq!(got.len(), 3);
        assert!(matches!(
            &got[0],
            Frame::Bad {
                problem: Problem::Garbage,
                len: 11,
                ..
            }
        ));
        assert_eq!(got[1], rec("{\"a\":1}"));
        assert!(matches!(
            &got[2],
            Frame::Bad {
                problem: Problem::TruncatedAtEnd,
                len: 5,
                ..
            }
        ));
    }

    #[test]
    fn oversized_records_are_skipped_with_their_head_kept() {
        let big = format!("{{\"x\":\"{}\"}}", "y".repeat(10_000));
        let input = format!("{big}\n{{\"a\":1}}");
        let got = frames(input.as_bytes(), 5_000, 512);
        assert_eq!(got.len(), 2);
        match &got[0] {
            Frame::Bad { head, len, problem } => {
                assert_eq!(*problem, Problem::Oversized);
                assert_eq!(*len, big.len() as u64);
                assert_eq!(head.len(), HEAD_BYTES);
                assert!(head.starts_with(b"{\"x\":\"yyy"));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(got[1], rec("{\"a\":1}"));
    }

    #[test]
    fn empty_and_whitespace_only_streams_have_no_frames() {
        assert!(frames(b"", 100, 4).is_empty());
        assert!(frames(b" \r\n\n\t", 100, 4).is_empty());
    }
}
