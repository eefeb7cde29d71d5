//! Fast checks of the harness itself (the measurements are run by hand; see BENCHMARKS.md).

use std::io::Cursor;

use tripline_bench::gen::{generate_vec, Shape};
use tripline_bench::pipeline::{self, Engine};
use tripline_core::compress::Codec;
use tripline_core::decode::{Decoded, ObjectDecoder, Options, Origin};
use tripline_core::Parallelism;

const SMALL: u64 = 256 << 10;

#[test]
fn the_generator_is_deterministic_by_seed() {
    for shape in [Shape::Osquery, Shape::Fleet] {
        let (a, sa) = generate_vec(7, SMALL, shape, 10);
        let (b, sb) = generate_vec(7, SMALL, shape, 10);
        let (c, _) = generate_vec(8, SMALL, shape, 10);
        assert_eq!(a, b, "{shape:?}: same seed, same bytes");
        assert_eq!(sa, sb);
        assert_ne!(a, c, "{shape:?}: another seed, other bytes");
        assert!(sa.gzip_bytes >= SMALL && sa.gzip_bytes < SMALL + (256 << 10));
    }
}

#[test]
fn generated_records_all_decode_with_nothing_quarantined() {
    for (seed, shape) in [(1, Shape::Osquery), (2, Shape::Fleet)] {
        let (gz, stats) = generate_vec(seed, SMALL, shape, 100);
        let mut decoder =
            ObjectDecoder::new(Cursor::new(&gz), Origin::path("t"), Options::default());
        let mut events = 0u64;
        for item in decoder.by_ref() {
            match item {
                Decoded::Event(_) => events += 1,
                Decoded::Quarantined(q) => panic!("{shape:?}: quarantined: {} {}", q.reason, q.raw),
            }
        }
        let s = decoder.summary();
        assert_eq!(s.quarantined, 0);
        assert_eq!(s.records, stats.records, "{shape:?}");
        assert_eq!(events, stats.rows, "{shape:?}: one event per generated row");
        assert_eq!(s.bytes_decoded, stats.plain_bytes);
        assert!(s.warnings == 0, "{shape:?}: {} warnings", s.warnings);
        // The Firehose shape stringifies every scalar and escapes slashes; Fleet's doesn't.
        let plain = {
            use std::io::Read;
            let mut v = String::new();
            flate2::read::MultiGzDecoder::new(&gz[..])
                .read_to_string(&mut v)
                .unwrap();
            v
        };
        let first = plain.lines().next().unwrap();
        match shape {
            Shape::Osquery => {
                assert!(first.contains("\"log_type\":\"result\""), "{first}");
                assert!(first.contains("\"unixTime\":\""), "{first}");
                assert!(plain.contains("\\/"));
            }
            Shape::Fleet => {
                assert!(first.contains("\"name\":\"pack/"), "{first}");
                assert!(!first.contains("\"unixTime\":\""), "{first}");
            }
        }
    }
}

#[test]
fn the_pipeline_finds_alerts_in_a_small_object() {
    let engine = Engine::builtin().expect("built-in rules load");
    // 1% attack records (ten times the benchmark's share) to keep the object small.
    let (gz, stats) = generate_vec(3, SMALL, Shape::Osquery, 100);
    assert!(stats.attack_records > 0);
    let r = pipeline::fused(
        Cursor::new(gz.clone()),
        Origin::path("t"),
        &engine,
        Parallelism::Threads,
        Codec::Zstd,
    )
    .unwrap();
    assert_eq!(r.events, stats.rows);
    assert_eq!(r.quarantined, 0);
    assert!(
        r.alerts >= 1,
        "no alert from {} attack records",
        stats.attack_records
    );

    // The deployed split (parse writes, detect re-reads) finds the same alerts, threaded or
    // inline, with either output codec, and writes the same lines.
    let plain = |packed: &[u8]| {
        let codec = Codec::sniff(packed).expect("compressed");
        let mut s = String::new();
        std::io::Read::read_to_string(&mut codec.decoder(packed), &mut s).unwrap();
        s
    };
    let parse = |parallelism, codec| {
        let origin = Origin::path("t");
        pipeline::parse_stage(
            Cursor::new(gz.clone()),
            origin,
            Vec::new(),
            engine.mapper.clone(),
            parallelism,
            codec,
        )
        .unwrap()
    };
    let (p, normalized) = parse(Parallelism::Threads, Codec::Zstd);
    assert_eq!(p.events, r.events);
    assert_eq!(Codec::sniff(&normalized), Some(Codec::Zstd));
    // The normalized copy names each event's techniques, as the parse Lambda's does.
    let text = plain(&normalized);
    assert!(
        text.lines().any(|l| l.contains(r#""attack":[{"id":"T"#)),
        "no attack"
    );
    for (threads, codec) in [
        (Parallelism::Inline, Codec::Zstd),
        (Parallelism::Threads, Codec::Gzip),
        (Parallelism::Inline, Codec::Gzip),
    ] {
        let (other, out) = parse(threads, codec);
        assert_eq!(other.events, r.events);
        assert_eq!(Codec::sniff(&out), Some(codec));
        assert_eq!(plain(&out), plain(&normalized), "{codec} {threads:?}");
        let d = pipeline::detect_stage(Cursor::new(out), &engine, threads).unwrap();
        assert_eq!(d.alerts_by_rule, r.alerts_by_rule);
    }
    for threads in [Parallelism::Threads, Parallelism::Inline] {
        let d = pipeline::detect_stage(Cursor::new(normalized.clone()), &engine, threads).unwrap();
        assert_eq!(d.events, r.events);
        assert_eq!(d.alerts_by_rule, r.alerts_by_rule);
        assert_eq!(d.matches_by_rule, r.matches_by_rule);
    }

    // Everything on one thread finds the same, too.
    let one = pipeline::fused(
        Cursor::new(gz.clone()),
        Origin::path("t"),
        &engine,
        Parallelism::Inline,
        Codec::Gzip,
    )
    .unwrap();
    assert_eq!(one.alerts_by_rule, r.alerts_by_rule);
    assert_eq!(one.events, r.events);

    // And so does `tripline scan`'s work, without the normalized copy.
    let scan = pipeline::scan(Cursor::new(gz.clone()), Origin::path("t"), &engine).unwrap();
    assert_eq!(scan.events, r.events);
    assert_eq!(scan.normalized_bytes, 0);
    assert_eq!(scan.alerts_by_rule, r.alerts_by_rule);
    assert_eq!(scan.matches_by_rule, r.matches_by_rule);

    // The lower-bound rows compress exactly the normalized output's bytes; zstd to less.
    let plain = plain(&normalized).len() as u64;
    let z = pipeline::compress_output(Cursor::new(normalized.clone()), Codec::Zstd).unwrap();
    let g = pipeline::compress_output(Cursor::new(normalized), Codec::Gzip).unwrap();
    assert_eq!((z.bytes_in, g.bytes_in), (plain, plain));
    assert!(z.normalized_bytes > 0 && z.normalized_bytes < g.normalized_bytes);
    assert!(g.normalized_bytes < plain);
    let g = pipeline::gunzip(Cursor::new(gz)).unwrap();
    assert_eq!(g.bytes_decoded, r.bytes_decoded);
}

#[test]
fn peak_rss_is_readable() {
    assert!(pipeline::peak_rss_kib() > 0);
}

#[test]
fn cpu_seconds_grow_with_work() {
    let before = pipeline::cpu_seconds();
    let start = std::time::Instant::now();
    let mut x = 0u64;
    // Spin until the kernel has charged at least two ticks, or give up after 10 s.
    while pipeline::cpu_seconds() < before + 0.02 && start.elapsed().as_secs() < 10 {
        for i in 0..100_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
    }
    assert!(pipeline::cpu_seconds() >= before + 0.02);
}

/// Counts the objects below the top level (rows and decorations; not the `diffResults`
/// wrapper) whose keys are not in byte order, walking the JSON as written.
struct UnsortedRows(usize);

impl<'de> serde::Deserialize<'de> for UnsortedRows {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Walk {
            depth: 0,
            check: false,
        })
    }
}

struct Walk {
    depth: usize,
    /// Whether an object here is a row or decorations.
    check: bool,
}

impl<'de> serde::de::DeserializeSeed<'de> for Walk {
    type Value = UnsortedRows;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Walk {
    type Value = UnsortedRows;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("JSON")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut keys, mut below) = (Vec::new(), 0);
        while let Some(key) = map.next_key::<String>()? {
            // Under the record: rows in `columns`, `snapshot`, `added`/`removed` (inside
            // `diffResults`), and `decorations`.
            let check = self.depth == 0
                && matches!(key.as_str(), "columns" | "decorations" | "snapshot")
                || self.depth == 1 && matches!(key.as_str(), "added" | "removed");
            below += map
                .next_value_seed(Walk {
                    depth: self.depth + 1,
                    check,
                })?
                .0;
            keys.push(key);
        }
        let unsorted = self.check && !keys.windows(2).all(|w| w[0] <= w[1]);
        Ok(UnsortedRows(below + usize::from(unsorted)))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut below = 0;
        while let Some(n) = seq.next_element_seed(Walk {
            depth: self.depth,
            check: self.check,
        })? {
            below += n.0;
        }
        Ok(UnsortedRows(below))
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(UnsortedRows(0))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(UnsortedRows(0))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(UnsortedRows(0))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(UnsortedRows(0))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(UnsortedRows(0))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(UnsortedRows(0))
    }
}

#[test]
fn generated_rows_are_in_column_name_order_as_osquery_writes_them() {
    for shape in [Shape::Osquery, Shape::Fleet] {
        // No attack records: those are the hand-written samples, in their own order.
        let (gz, stats) = generate_vec(5, SMALL, shape, 0);
        assert_eq!(stats.attack_records, 0);
        let mut text = String::new();
        std::io::Read::read_to_string(&mut flate2::read::MultiGzDecoder::new(&gz[..]), &mut text)
            .unwrap();
        let unsorted: usize = text
            .lines()
            .map(|l| serde_json::from_str::<UnsortedRows>(l).unwrap().0)
            .sum();
        assert_eq!(unsorted, 0, "{shape:?}");
        // And the walk can tell: a row out of order is counted.
        let bad =
            r#"{"name":"x","columns":{"pid":"1","name":"a"},"decorations":{"b":"1","a":"2"}}"#;
        assert_eq!(serde_json::from_str::<UnsortedRows>(bad).unwrap().0, 2);
    }
}
