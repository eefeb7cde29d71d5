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
    /// The 64-byte block path (always, except in tests that hold it to the byte loop).
    blocks: bool,
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
            blocks: true,
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
            let scan = if self.blocks {
                scan::<true>
            } else {
                scan::<false>
            };
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

const BLOCK: usize = 64;

/// A bit per byte of `block` that can change the framing state: quotes, backslashes,
/// brackets and newlines. A record's strings are short, so finding these a block at a
/// time beats a `memchr3` call per string. Portable SWAR (eight bytes per `u64`), so the
/// arm64 functions run the same code as this x86 host tests.
#[inline]
#[cfg(target_arch = "x86_64")]
fn special_bytes(block: &[u8; BLOCK]) -> u64 {
    use std::arch::x86_64::*;
    let mut mask = 0u64;
    for (k, part) in block.chunks_exact(16).enumerate() {
        // SAFETY: SSE2 is part of the x86_64 baseline; `part` is 16 readable bytes and
        // `loadu` takes any alignment.
        let bits = unsafe {
            let v = _mm_loadu_si128(part.as_ptr().cast());
            let is = |c: u8| _mm_cmpeq_epi8(v, _mm_set1_epi8(c as i8));
            let hits = _mm_or_si128(
                _mm_or_si128(
                    _mm_or_si128(is(b'"'), is(b'\\')),
                    _mm_or_si128(is(b'\n'), is(b'{')),
                ),
                _mm_or_si128(_mm_or_si128(is(b'}'), is(b'[')), is(b']')),
            );
            _mm_movemask_epi8(hits) as u32 as u64
        };
        mask |= bits << (k * 16);
    }
    mask
}

#[inline]
#[cfg(not(target_arch = "x86_64"))]
fn special_bytes(block: &[u8; BLOCK]) -> u64 {
    special_bytes_swar(block)
}

/// [`special_bytes`] in portable SWAR, eight bytes per `u64`: what the arm64 functions
/// run, tested here against the SSE2 version.
#[inline]
#[cfg_attr(all(target_arch = "x86_64", not(test)), allow(dead_code))]
fn special_bytes_swar(block: &[u8; BLOCK]) -> u64 {
    let mut mask = 0u64;
    for (w, word) in block.chunks_exact(8).enumerate() {
        let v = u64::from_le_bytes(word.try_into().expect("8 bytes"));
        let hits = eq(v, b'"')
            | eq(v, b'\\')
            | eq(v, b'\n')
            | eq(v, b'{')
            | eq(v, b'}')
            | eq(v, b'[')
            | eq(v, b']');
        mask |= movemask(hits) << (w * 8);
    }
    mask
}

const LO7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
const HI: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `v` that equals `c` (exact: no carries between bytes).
#[inline(always)]
fn eq(v: u64, c: u8) -> u64 {
    let x = v ^ (u64::from(c) * 0x0101_0101_0101_0101);
    !(((x & LO7) + LO7) | x) & HI
}

/// Packs the high bit of each byte (little-endian order) into the low 8 bits.
#[inline(always)]
fn movemask(hits: u64) -> u64 {
    ((hits >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56
}

/// Scans one buffered chunk. Returns how many bytes were used and, if a frame ended
/// inside this chunk, that frame. `FAST` is the block path; without it (tests only) every
/// byte goes through the byte loop, the reference the block path is tested against.
fn scan<const FAST: bool>(
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
                // Whole 64-byte blocks first: one mask of the bytes that can matter, then
                // only those bytes, in order, through the same rules as the byte loop
                // below (which finishes the chunk's tail).
                'blocks: while FAST && i + BLOCK <= chunk.len() {
                    if *escaped {
                        // The byte after a backslash at the end of the previous block.
                        *escaped = false;
                        if chunk[i] == b'\n' {
                            done = Some(Problem::TruncatedAtLineEnd);
                            break 'blocks;
                        }
                        i += 1;
                        continue;
                    }
                    let block: &[u8; BLOCK] = chunk[i..i + BLOCK].try_into().expect("64 bytes");
                    let mut mask = special_bytes(block);
                    while mask != 0 {
                        let p = mask.trailing_zeros() as usize;
                        mask &= mask - 1;
                        let b = block[p];
                        if *in_string {
                            match b {
                                b'"' => *in_string = false,
                                b'\\' if p + 1 < BLOCK => {
                                    if block[p + 1] == b'\n' {
                                        i += p + 1;
                                        done = Some(Problem::TruncatedAtLineEnd);
                                        break 'blocks;
                                    }
                                    // The escaped byte is content, whatever it is.
                                    mask &= !(1 << (p + 1));
                                }
                                b'\\' => *escaped = true,
                                b'\n' => {
                                    i += p;
                                    done = Some(Problem::TruncatedAtLineEnd);
                                    break 'blocks;
                                }
                                _ => {}
                            }
                            continue;
                        }
                        match b {
                            b'"' => *in_string = true,
                            b'{' | b'[' => *depth += 1,
                            b'}' | b']' => {
                                *depth -= 1;
                                if *depth == 0 {
                                    i += p + 1;
                                    keep(buf, len, oversized, max, &chunk[start..i]);
                                    *state = State::Between;
                                    if *oversized {
                                        let frame =
                                            take_bad(buf, len, oversized, Problem::Oversized);
                                        return (i, Some(frame));
                                    }
                                    *len = 0;
                                    return (i, Some(Frame::Record(std::mem::take(buf))));
                                }
                            }
                            b'\n' => {
                                i += p;
                                done = Some(Problem::TruncatedAtLineEnd);
                                break 'blocks;
                            }
                            _ => {}
                        }
                    }
                    i += BLOCK;
                }
                while done.is_none() && i < chunk.len() {
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
        let got = frames_with(input, max, chunk, true);
        assert_eq!(
            got,
            frames_with(input, max, chunk, false),
            "block path differs"
        );
        got
    }

    fn frames_with(input: &[u8], max: usize, chunk: usize, blocks: bool) -> Vec<Frame> {
        let reader = io::BufReader::with_capacity(chunk, input);
        let mut s = Splitter::new(reader, max);
        s.blocks = blocks;
        let mut out = Vec::new();
        while let Some(f) = s.next_frame() {
            out.push(f.unwrap());
        }
        out
    }

    use proptest::prelude::*;

    /// Bytes that matter to framing, mixed with content, so random inputs hit escapes,
    /// nesting and newlines at every offset of a block.
    fn framing_bytes() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(framing_byte(), 0..600)
    }

    fn framing_byte() -> impl Strategy<Value = u8> {
        prop_oneof![
            6 => Just(b'"'),
            4 => Just(b'\\'),
            3 => Just(b'{'),
            3 => Just(b'}'),
            1 => Just(b'['),
            1 => Just(b']'),
            1 => Just(b'\n'),
            1 => Just(b'\r'),
            1 => Just(b' '),
            10 => Just(b'a'),
            2 => any::<u8>(),
        ]
    }

    proptest! {
        /// Both ways of finding the special bytes (the one this host runs, and the
        /// portable one the arm64 functions run) agree with the plain definition.
        #[test]
        fn special_bytes_finds_exactly_the_special_bytes(block in prop::collection::vec(framing_byte(), 64)) {
            let block: [u8; BLOCK] = block.try_into().unwrap();
            let naive = block.iter().enumerate().fold(0u64, |m, (j, b)| {
                m | (u64::from(b"\"\\\n{}[]".contains(b)) << j)
            });
            prop_assert_eq!(special_bytes(&block), naive);
            prop_assert_eq!(special_bytes_swar(&block), naive);
        }

        #[test]
        fn block_path_frames_like_the_byte_loop(
            input in framing_bytes(),
            chunk in 1usize..300,
            max in prop_oneof![Just(1usize << 20), 1usize..200],
        ) {
            prop_assert_eq!(
                frames_with(&input, max, chunk, true),
                frames_with(&input, max, chunk, false)
            );
        }

        /// Realistic records (escaped slashes, quotes, nested values) cut and joined in
        /// every style, which random bytes rarely form.
        #[test]
        fn block_path_frames_records_like_the_byte_loop(
            values in prop::collection::vec("[a-z\\\\/\"{}\\[\\] ]{0,90}", 1..12),
            seps in prop::collection::vec(prop_oneof![Just(""), Just("\n"), Just("\r\n"), Just("\n\n")], 12),
            cut in any::<prop::sample::Index>(),
            chunk in 1usize..300,
        ) {
            let mut input = String::new();
            for (i, v) in values.iter().enumerate() {
                let v = serde_json::to_string(v).unwrap();
                input.push_str(&format!(r#"{{"name":"q\/{i}","columns":{{"path":{v},"n":[1,{{"x":{v}}}]}}}}"#));
                input.push_str(seps[i]);
            }
            let bytes = input.as_bytes();
            let bytes = &bytes[..cut.index(bytes.len() + 1)];
            prop_assert_eq!(
                frames_with(bytes, 1 << 20, chunk, true),
                frames_with(bytes, 1 << 20, chunk, false)
            );
        }
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
