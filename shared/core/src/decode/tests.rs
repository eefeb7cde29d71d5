//! Whole-object decoding: framing + records + accounting, including damaged input.

use std::io::Write;

use flate2::{write::GzEncoder, Compression};
use proptest::prelude::*;

use super::*;
use crate::event::{Action, Kind};

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

type Run = (Vec<Event>, Vec<Quarantined>, Summary);

/// Decodes `input` on one thread and with decompression on its own thread; every test
/// here thereby also checks that the two agree item for item and count for count.
fn run(input: &[u8], options: Options) -> Run {
    let one = collect(ObjectDecoder::new(
        input,
        Origin::path("t"),
        options.clone(),
    ));
    let reader = io::Cursor::new(input.to_vec());
    let two = collect(ObjectDecoder::with_parallelism(
        reader,
        Origin::path("t"),
        options.clone(),
        crate::Parallelism::Threads,
    ));
    assert_eq!(one, two, "inline and threaded decoders disagree");
    let recycled = collect_recycling(ObjectDecoder::new(
        input,
        Origin::path("t"),
        options.clone(),
    ));
    assert_eq!(one, recycled, "recycling events changed what was decoded");
    let fresh = collect_fresh(ObjectDecoder::new(input, Origin::path("t"), options));
    assert_eq!(
        one, fresh,
        "a record's events depend on the records before it"
    );
    one
}

/// [`collect`], with nothing kept from one record to the next (no template, no spare
/// events or fields): what decoding each record on its own gives.
fn collect_fresh(mut dec: ObjectDecoder<'_>) -> Run {
    let (mut events, mut quarantined) = (Vec::new(), Vec::new());
    loop {
        dec.reuse = record::Reuse::default();
        match dec.next() {
            None => break,
            Some(Decoded::Event(e)) => events.push(*e),
            Some(Decoded::Quarantined(q)) => quarantined.push(*q),
        }
    }
    (events, quarantined, dec.summary())
}

/// [`collect`], handing every event back to the decoder a few events later (as a caller
/// with events in flight does), so later rows are decoded into events still holding
/// other records' contents.
fn collect_recycling(mut dec: ObjectDecoder<'_>) -> Run {
    let (mut events, mut quarantined) = (Vec::new(), Vec::new());
    let mut held = VecDeque::new();
    while let Some(item) = dec.next() {
        match item {
            Decoded::Event(e) => {
                events.push(Event::clone(&e));
                held.push_back(e);
                if held.len() > 2 {
                    dec.recycle(held.pop_front().unwrap());
                }
            }
            Decoded::Quarantined(q) => quarantined.push(*q),
        }
    }
    (events, quarantined, dec.summary())
}

fn collect(mut dec: ObjectDecoder<'_>) -> Run {
    let (mut events, mut quarantined) = (Vec::new(), Vec::new());
    for item in dec.by_ref() {
        match item {
            Decoded::Event(e) => events.push(*e),
            Decoded::Quarantined(q) => quarantined.push(*q),
        }
    }
    (events, quarantined, dec.summary())
}

/// The accounting every decode keeps: records are decoded or quarantined one by one, an
/// object entry comes at most once, last, and an object without records has one.
fn assert_accounting(events: &[Event], quarantined: &[Quarantined], s: &Summary) {
    assert_eq!(s.records, s.decoded + s.quarantined, "{s:?}");
    assert_eq!(s.events, events.len() as u64);
    let (objects, records): (Vec<_>, Vec<_>) = quarantined.iter().partition(|q| q.object.is_some());
    assert_eq!(s.quarantined, records.len() as u64, "{s:?}");
    assert_eq!(s.objects_quarantined, objects.len() as u64, "{s:?}");
    assert_eq!(
        s.quarantined + s.objects_quarantined,
        quarantined.len() as u64
    );
    assert!(objects.len() <= 1, "{objects:?}");
    if let Some(object) = objects.first() {
        assert_eq!(
            Some(*object),
            quarantined.last(),
            "the object entry comes last"
        );
        assert_eq!(object.source.record, 0);
        assert_eq!(
            Some(object.reason.as_str()),
            s.quarantined_as.map(ObjectReason::as_str)
        );
        let detail = object.object.as_ref().unwrap();
        assert!(detail.message.len() <= MAX_MESSAGE_BYTES);
        assert!(object.raw.len() <= 3 * QUARANTINE_RAW_BYTES);
    }
    assert!(records
        .iter()
        .all(|q| q.source.record >= 1 && q.source.record <= s.records));
    // Every object leaves a trace: records, or an entry for the object (a read error,
    // which none of these inputs has, being the one exception).
    assert!(s.records > 0 || s.objects_quarantined == 1, "{s:?}");
    // Damage always has its entry.
    if matches!(
        s.error,
        Some(ObjectError::Corrupt { .. } | ObjectError::DecompressedTooLarge { .. })
    ) {
        assert_eq!(s.objects_quarantined, 1, "{s:?}");
    }
}

const EVENT: &str = r#"{"name":"pack_osx-attacks_Keylogger","hostIdentifier":"mac-1","calendarTime":"Wed Jun  9 18:29:49 2021 UTC","unixTime":1623263389,"epoch":0,"counter":1,"numerics":false,"columns":{"path":"/tmp/k"},"action":"added"}"#;
const SNAPSHOT: &str = r#"{"snapshot":[{"port":"22"},{"port":"443"}],"action":"snapshot","name":"pack/Global/listening_ports","hostIdentifier":"web-1","unixTime":"1623263389","log_type":"result"}"#;

fn sample() -> String {
    format!("{EVENT}\n{SNAPSHOT}\n")
}

#[test]
fn plain_and_gzip_give_the_same_events() {
    let plain = run(sample().as_bytes(), Options::default());
    let gz = run(&gzip(sample().as_bytes()), Options::default());
    assert_eq!(plain.0, gz.0);
    assert_eq!(plain.0.len(), 3);
    assert_eq!(plain.0[0].pack.as_deref(), Some("osx-attacks"));
    assert_eq!(plain.0[2].columns.get("port").unwrap(), "443");
    assert_eq!(plain.0[2].source.record, 2);
    assert_eq!(plain.0[2].source.row, Some(1));
    assert_eq!(gz.2.records, 2);
    assert!(gz.2.bytes_in < gz.2.bytes_decoded);
    assert_eq!(gz.2.bytes_decoded, sample().len() as u64);
}

#[test]
fn multi_member_gzip_and_kinesis_style_concatenation() {
    let mut data = gzip(EVENT.as_bytes());
    data.extend(gzip(format!("{SNAPSHOT}{EVENT}").as_bytes()));
    let (events, q, s) = run(&data, Options::default());
    assert!(q.is_empty());
    assert_eq!(s.records, 3);
    assert_eq!(events.len(), 4);
    assert_eq!(events[3].action, Some(Action::Added));
    assert_eq!(s.error, None);
}

#[test]
fn truncated_gzip_keeps_records_before_the_damage() {
    let body: String = (0..2000)
        .map(|i| EVENT.replace("/tmp/k", &format!("/tmp/{i}")) + "\n")
        .collect();
    let gz = gzip(body.as_bytes());
    let cut = &gz[..gz.len() / 2];
    let (events, q, s) = run(cut, Options::default());
    assert_accounting(&events, &q, &s);
    assert!(events.len() > 100, "kept {} events", events.len());
    assert!(
        matches!(s.error, Some(ObjectError::Corrupt { .. })),
        "{:?}",
        s.error
    );
    // The record cut in half is quarantined, not lost; then the object's own entry.
    assert_eq!(q.len(), 2);
    assert!(q[0].reason.contains("truncated"));
    assert_eq!(s.objects_with_errors, 1);
    let detail = object_entry(&q, "gzip_truncated");
    assert_eq!(detail.offset, s.bytes_decoded);
    assert_eq!(detail.compressed_offset, Some(cut.len() as u64));
    assert_eq!(detail.lines, 0);
    assert!(
        detail.message.starts_with(&format!(
            "truncated gzip after {} decompressed bytes ({} compressed bytes consumed)",
            s.bytes_decoded,
            cut.len()
        )),
        "{}",
        detail.message
    );
    assert_eq!(s.quarantined_as, Some(ObjectReason::GzipTruncated));
}

/// The object entry among `q`, checking its reason and what every object entry has.
fn object_entry<'a>(q: &'a [Quarantined], reason: &str) -> &'a ObjectDetail {
    let entry = q.last().expect("an object entry");
    assert_eq!(entry.reason, reason, "{entry:?}");
    assert_eq!(entry.source.record, 0);
    assert_eq!(entry.source.path.as_deref(), Some("t"));
    entry.object.as_ref().expect("an object entry")
}

#[test]
fn corrupt_gzip_is_an_object_error() {
    let mut gz = gzip(sample().as_bytes());
    let n = gz.len();
    for b in &mut gz[10..n - 8] {
        *b = !*b;
    }
    let (events, q, s) = run(&gz, Options::default());
    assert_accounting(&events, &q, &s);
    assert!(
        matches!(s.error, Some(ObjectError::Corrupt { .. })),
        "{:?}",
        s.error
    );
    let detail = object_entry(&q, "gzip_corrupt");
    assert_eq!(detail.offset, s.bytes_decoded);
    // Detected inside the damaged deflate data, past the 10-byte header.
    let consumed = detail.compressed_offset.unwrap();
    assert!(consumed > 10 && consumed <= n as u64, "{consumed} of {n}");

    // Damage deep in a large object: met at or after the damaged byte, after the records
    // before it, in the same place whether inflating runs inline or on its own thread
    // (`run` compares the two).
    let body: String = (0..20_000)
        .map(|i| EVENT.replace("/tmp/k", &format!("/tmp/{i}")) + "\n")
        .collect();
    let gz = gzip(body.as_bytes());
    for at in [gz.len() / 3, gz.len() / 2, gz.len() - 20] {
        let mut bad = gz.clone();
        for b in &mut bad[at..at + 4] {
            *b = !*b;
        }
        let (events, q, s) = run(&bad, Options::default());
        assert_accounting(&events, &q, &s);
        assert!(events.len() > 1000, "{} events", events.len());
        let detail = object_entry(&q, "gzip_corrupt");
        let consumed = detail.compressed_offset.unwrap();
        assert!(
            consumed >= at as u64 && consumed <= bad.len() as u64,
            "{consumed}, {at}"
        );
        assert_eq!(detail.offset, s.bytes_decoded);
    }
}

#[test]
fn a_blob_that_merely_starts_with_gzip_magic_gets_an_object_entry() {
    for (blob, reason) in [
        (
            &b"\x1f\x8bnot gzip at all, though it starts like it\n"[..],
            "gzip_corrupt",
        ),
        (&b"\x1f\x8b"[..], "gzip_truncated"),
        (
            &b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03"[..],
            "gzip_truncated",
        ),
    ] {
        let (events, q, s) = run(blob, Options::default());
        assert_accounting(&events, &q, &s);
        assert_eq!((s.records, q.len()), (0, 1), "{blob:?}");
        assert_eq!(s.objects_quarantined, 1);
        let detail = object_entry(&q, reason);
        assert_eq!(detail.offset, 0);
        assert!(detail.compressed_offset.unwrap() <= blob.len() as u64);
        assert!(
            detail.message.contains("the object starts with 1f 8b"),
            "{}",
            detail.message
        );
        assert_eq!((q[0].raw.as_str(), q[0].bytes), ("", 0));
        assert!(s.to_string().contains("objects_quarantined=1"), "{s}");
    }
}

#[test]
fn gzip_bomb_stops_at_the_cap() {
    let zeros = vec![b' '; 8 << 20];
    let mut body = sample().into_bytes();
    body.extend(&zeros);
    body.extend(sample().as_bytes());
    let gz = gzip(&body);
    let options = Options {
        limits: Limits {
            max_decompressed_bytes: 1 << 20,
            ..Limits::default()
        },
        ..Options::default()
    };
    let (events, q, s) = run(&gz, options);
    assert_accounting(&events, &q, &s);
    assert_eq!(events.len(), 3);
    assert_eq!(
        s.error,
        Some(ObjectError::DecompressedTooLarge { limit: 1 << 20 })
    );
    assert_eq!(s.bytes_decoded, 1 << 20);
    let detail = object_entry(&q, "decompressed_too_large");
    assert_eq!(detail.offset, 1 << 20);
    assert!(detail.compressed_offset.unwrap() <= gz.len() as u64);
    assert!(detail.message.contains("1048576"), "{}", detail.message);
}

#[test]
fn exactly_at_the_cap_is_fine() {
    let body = sample();
    let options = Options {
        limits: Limits {
            max_decompressed_bytes: body.len() as u64,
            ..Limits::default()
        },
        ..Options::default()
    };
    let (_, _, s) = run(&gzip(body.as_bytes()), options);
    assert_eq!(s.error, None);
}

#[test]
fn oversized_record_is_quarantined_and_the_rest_continues() {
    let big = EVENT.replace("/tmp/k", &"A".repeat(3 << 20));
    let input = format!("{EVENT}\n{big}\n{SNAPSHOT}");
    let (events, q, s) = run(input.as_bytes(), Options::default());
    assert_accounting(&events, &q, &s);
    assert_eq!(events.len(), 3);
    assert_eq!(q.len(), 1);
    assert!(
        q[0].reason.contains("exceeds the 1048576-byte limit"),
        "{}",
        q[0].reason
    );
    assert_eq!(q[0].bytes, big.len() as u64);
    assert_eq!(q[0].raw.len(), QUARANTINE_RAW_BYTES);
    assert_eq!(q[0].source.record, 2);
}

#[test]
fn bad_records_are_quarantined_with_reasons() {
    let input = format!("not json at all\n{EVENT}\n{{\"name\":\"q\"}}\n[1]\n{{\"a\":\n{SNAPSHOT}");
    let (events, q, s) = run(input.as_bytes(), Options::default());
    assert_accounting(&events, &q, &s);
    assert_eq!(s.records, 6);
    assert_eq!(events.len(), 3);
    let reasons: Vec<_> = q
        .iter()
        .map(|q| (q.source.record, q.reason.as_str()))
        .collect();
    assert!(reasons[0].1.starts_with("not JSON"));
    assert_eq!(reasons[0].0, 1);
    assert!(reasons[1].1.starts_with("unrecognized"));
    assert!(reasons[2].1.contains("array"));
    assert!(reasons[3].1.contains("truncated"));
}

#[test]
fn status_and_results_mix() {
    let status = r#"{"hostIdentifier":"h","calendarTime":"Wed Jun  9 18:29:49 2021 UTC","unixTime":1623263389,"severity":0,"filename":"tls.cpp","line":254,"message":"m","version":"5.12.1"}"#;
    let input = format!("{status}\r\n{EVENT}");
    let (events, _, s) = run(input.as_bytes(), Options::default());
    assert_eq!(events[0].kind, Kind::Status);
    assert_eq!(events[1].kind, Kind::Result);
    assert_eq!(s.warnings, 0);
}

#[test]
fn shared_log_samples_decode_without_quarantine() {
    // The shapes in events/osquery/ cover every documented record variant.
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/osquery");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.starts_with("shapes") {
            continue;
        }
        let data = std::fs::read(&path).unwrap();
        let (events, q, s) = run(&data, Options::default());
        assert_accounting(&events, &q, &s);
        assert!(q.is_empty(), "{name}: {q:?}");
        assert!(s.error.is_none(), "{name}: {:?}", s.error);
        assert!(!events.is_empty());
        seen += 1;
    }
    assert!(seen >= 2, "expected the shapes fixtures in {dir}");
}

fn record_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(EVENT.to_string()),
        Just(SNAPSHOT.to_string()),
        Just(
            r#"{"diffResults":{"added":[{"a":"1"}],"removed":""},"name":"q","unixTime":"1"}"#
                .to_string()
        ),
        Just(r#"{"severity":"1","filename":"f","line":"2","message":"m"}"#.to_string()),
        "[ -~]{0,40}",
        "\\{[ -~]{0,40}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_and_always_add_up(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let (events, q, s) = run(&data, Options::default());
        assert_accounting(&events, &q, &s);
        let (events, q, s) = run(&gzip(&data), Options::default());
        assert_accounting(&events, &q, &s);
    }

    #[test]
    fn mutated_objects_never_panic_and_always_add_up(
        records in proptest::collection::vec(record_strategy(), 0..12),
        seps in proptest::collection::vec(prop_oneof![Just(""), Just("\n"), Just("\r\n"), Just("\n\n")], 12),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        cut in any::<usize>(),
        compress in any::<bool>(),
        max_record in 16usize..4096,
    ) {
        let mut body = Vec::new();
        for (i, r) in records.iter().enumerate() {
            body.extend(r.as_bytes());
            body.extend(seps[i].as_bytes());
        }
        let mut data = if compress { gzip(&body) } else { body };
        for (pos, byte) in flips {
            if !data.is_empty() {
                let n = data.len();
                data[pos % n] ^= byte;
            }
        }
        if !data.is_empty() && cut % 3 == 0 {
            data.truncate(cut % data.len());
        }
        let options = Options { limits: Limits { max_record_bytes: max_record, max_decompressed_bytes: 1 << 20 }, ..Options::default() };
        let (events, q, s) = run(&data, options);
        assert_accounting(&events, &q, &s);
        for e in &events {
            prop_assert!(e.source.record >= 1 && e.source.record <= s.records);
            prop_assert_eq!(e.id.len(), 32);
        }
    }
}

#[test]
fn recycled_events_decode_every_fixture_alike() {
    // Every fixture's records back to back (gzip ones inflated), so records of every
    // shape follow one another and refill events left by other shapes; `run` compares
    // the recycling decoder with the plain one.
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../events");
    let mut names: Vec<_> = ["osquery", "broken"]
        .iter()
        .flat_map(|sub| std::fs::read_dir(format!("{root}/{sub}")).unwrap())
        .map(|entry| entry.unwrap().path())
        .collect();
    names.sort();
    let mut all = Vec::new();
    for path in names {
        let data = std::fs::read(&path).unwrap();
        if data.starts_with(&[0x1f, 0x8b]) {
            // The truncated fixture errors at its end; what came before is kept.
            let _ =
                io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(&data[..]), &mut all);
        } else {
            all.extend(data);
        }
        all.push(b'\n');
    }
    let (events, q, s) = run(&all, Options::default());
    assert_accounting(&events, &q, &s);
    assert!(events.len() > 200, "only {} events", events.len());
    assert!(!q.is_empty(), "the broken fixtures quarantine records");
}

#[test]
fn each_row_gets_the_tables_of_its_own_columns() {
    // One record whose rows differ in shape (a forwarder that merged two results): the
    // second row's tables are its own, not the first row's.
    let input = br#"{"name":"pack/Global/mixed","hostIdentifier":"h","unixTime":1700000000,"snapshot":[{"command":"x","minute":"*","hour":"*","day_of_month":"*","month":"*","day_of_week":"*","event":"","path":"/etc/crontab"},{"pid":"1","fd":"3","socket":"9","family":"2","protocol":"6","local_address":"10.0.0.1","remote_address":"1.2.3.4","local_port":"1","remote_port":"4444","path":"/bin/sh","state":"ESTABLISHED","net_namespace":"0"},{"pid":"2","fd":"4","socket":"8","family":"2","protocol":"6","local_address":"10.0.0.1","remote_address":"1.2.3.5","local_port":"2","remote_port":"4445","path":"/bin/sh","state":"ESTABLISHED","net_namespace":"0"}]}"#;
    let (events, _, summary) = run(input, Options::default());
    assert_eq!(summary.events, 3);
    assert_eq!(&events[0].tables[..], ["crontab"]);
    assert_eq!(&events[1].tables[..], ["process_open_sockets"]);
    assert_eq!(&events[2].tables[..], ["process_open_sockets"]);
    assert!(events
        .iter()
        .all(|e| e.tables_from == Some(crate::tables::TablesFrom::Columns)));
    assert_eq!(summary.tables_unknown, 0);
}

/// A PNG's start: the signature (whose `\r\n` and `\n` split it into lines) and chunks of
/// what a PNG holds after it, bytes of every value.
fn png_like(len: usize) -> Vec<u8> {
    let mut data = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00".to_vec();
    let mut x = 0x2545_f491_4f6c_dd1du64;
    while data.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    data.truncate(len);
    data
}

#[test]
fn an_object_that_is_not_osquery_is_one_entry_not_one_per_line() {
    let csv = "host,pid,path\nweb-1,42,/bin/sh\nweb-2,43,/bin/bash\n".repeat(20);
    let text = "Nov 20 08:00:10 web-1 sshd[42]: Accepted publickey for alice\n".repeat(5);
    let arrays = "[1]\n{}\n[\"a\"]\n";
    for (name, data, start) in [
        (
            "png",
            png_like(64 << 10),
            "89 50 4e 47 (magic bytes of PNG)",
        ),
        ("csv", csv.into_bytes(), "68 6f 73 74 2c 70 69 64"),
        ("text", text.into_bytes(), "4e 6f 76 20 32 30 20 30"),
        (
            "json that is no record",
            arrays.as_bytes().to_vec(),
            "5b 31 5d",
        ),
        (
            "zip",
            b"PK\x03\x04\x14\x00\x00\x00".to_vec(),
            "(magic bytes of zip)",
        ),
    ] {
        for compress in [false, true] {
            let input = if compress { gzip(&data) } else { data.clone() };
            let (events, q, s) = run(&input, Options::default());
            assert_accounting(&events, &q, &s);
            // No records: its lines are the object's one entry.
            assert_eq!((s.records, s.quarantined, q.len()), (0, 0, 1), "{name}");
            assert_eq!(s.error, None);
            assert_eq!(s.quarantined_as, Some(ObjectReason::NotOsquery));
            let detail = object_entry(&q, "not_osquery");
            assert_eq!((detail.offset, detail.compressed_offset), (0, None));
            assert!(detail.lines > 0, "{name}");
            assert!(q[0].bytes > 0 && q[0].bytes <= data.len() as u64, "{name}");
            assert!(
                detail.message.starts_with("no record in the object")
                    && detail.message.contains(start),
                "{name}: {}",
                detail.message
            );
            assert!(!q[0].raw.is_empty());
        }
    }
    // The lines it stands for are counted exactly: three, of 10 bytes without their line
    // ends and leading whitespace (as a record's `bytes` are counted).
    let (_, q, _) = run(b"a,b\r\n\n  c,d\nlast", Options::default());
    let detail = object_entry(&q, "not_osquery");
    assert_eq!(
        (detail.lines, q[0].bytes, q[0].raw.as_str()),
        (3, 10, "a,b")
    );
}

#[test]
fn a_large_foreign_object_is_still_one_entry() {
    // Far more lines and bytes than are held: counted into the one entry all the same.
    let data = png_like(4 << 20);
    let lines = {
        let (events, q, s) = run(&data, Options::default());
        assert_accounting(&events, &q, &s);
        assert_eq!((s.records, q.len()), (0, 1));
        let detail = object_entry(&q, "not_osquery");
        assert!(detail.lines > HOLD_LINES as u64, "{} lines", detail.lines);
        assert!(q[0].bytes > HOLD_BYTES);
        assert!(q[0].raw.starts_with("\u{fffd}PNG"), "{:?}", q[0].raw);
        detail.lines
    };
    // The same under the line limit: every line the splitter sees is counted.
    let frames = data
        .split(|b| *b == b'\n')
        .filter(|l| !l.trim_ascii().is_empty())
        .count() as u64;
    assert!(
        lines >= frames / 2 && lines <= frames * 2,
        "{lines} vs {frames}"
    );
}

#[test]
fn lines_before_the_first_record_are_still_quarantined_one_by_one() {
    // Within what is held: each line an entry of its own, numbered as records, in order.
    let input = format!("garbage one\n{{\"name\":\"q\",\n\x00\x01binary\n{EVENT}\nmore garbage\n");
    let (events, q, s) = run(input.as_bytes(), Options::default());
    assert_accounting(&events, &q, &s);
    assert_eq!((s.records, s.decoded, s.quarantined), (5, 1, 4));
    assert_eq!(s.objects_quarantined, 0);
    let records: Vec<u64> = q.iter().map(|q| q.source.record).collect();
    assert_eq!(records, [1, 2, 3, 5]);
    assert_eq!(events[0].source.record, 4);
    assert!(q.iter().all(|q| q.object.is_none()));
    // A record too large to check shows the object holds records too.
    let big = EVENT.replace("/tmp/k", &"A".repeat(2 << 20));
    let input = format!("{big}\nnot json\n{EVENT}\n");
    let (events, q, s) = run(input.as_bytes(), Options::default());
    assert_accounting(&events, &q, &s);
    assert_eq!((s.records, q.len(), events.len()), (3, 2, 1));
    assert!(q[0].reason.contains("exceeds"));
    // JSON objects that osquery did not write are records too: quarantined one by one.
    let input = "{\"eventName\":\"PutObject\"}\n{\"a\":1}\n";
    let (events, q, s) = run(input.as_bytes(), Options::default());
    assert_accounting(&events, &q, &s);
    assert_eq!((s.records, s.quarantined, s.objects_quarantined), (2, 2, 0));
    assert!(q.iter().all(|q| q.reason.starts_with("unrecognized")));
}

#[test]
fn records_after_a_long_foreign_start_are_decoded_and_the_rest_is_one_entry() {
    let mut input = "not a record\n".repeat(HOLD_LINES + 10);
    input.push_str(&sample());
    input.push_str("garbage after the records\n");
    input.push_str(&sample());
    let (events, q, s) = run(input.as_bytes(), Options::default());
    assert_accounting(&events, &q, &s);
    // Every record decoded, none lost; the lines that are not records are one entry.
    assert_eq!(events.len(), 6);
    assert_eq!((s.records, s.decoded, s.quarantined), (4, 4, 0));
    let detail = object_entry(&q, "not_json");
    assert_eq!(detail.lines, HOLD_LINES as u64 + 11);
    assert_eq!(
        q[0].bytes,
        (HOLD_LINES as u64 + 10) * 12 + "garbage after the records".len() as u64
    );
    assert_eq!(q[0].raw, "not a record");
    // Records are numbered among records only.
    assert_eq!(events[0].source.record, 1);
    let plain = run(sample().as_bytes(), Options::default()).0;
    let ids = |e: &[Event]| e.iter().map(|e| e.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&events[..3]), ids(&plain));
}

#[test]
fn an_empty_object_gets_an_entry() {
    for (data, message) in [
        (Vec::new(), "the object is empty (0 bytes)"),
        (b" \n\r\n\t".to_vec(), "holds 5 bytes of whitespace"),
        (gzip(b""), "decompresses to 0 bytes"),
    ] {
        let (events, q, s) = run(&data, Options::default());
        assert_accounting(&events, &q, &s);
        let detail = object_entry(&q, "empty");
        assert_eq!(q.len(), 1);
        assert_eq!((detail.offset, detail.lines, q[0].bytes), (0, 0, 0));
        assert!(detail.message.ends_with(message), "{}", detail.message);
    }
    // An object of records without rows is not empty: its records are its trace.
    let (events, q, s) = run(
        br#"{"snapshot":[],"action":"snapshot","name":"q","hostIdentifier":"h","unixTime":1}"#,
        Options::default(),
    );
    assert_accounting(&events, &q, &s);
    assert_eq!((s.records, events.len(), q.len()), (1, 0, 0));
}

#[test]
fn damage_after_lines_that_are_not_records_keeps_them_one_by_one() {
    // The object could not be read to its end, so it may hold records after the damage:
    // the lines before it are quarantined as they are, then the damage is the entry.
    let gz = gzip(
        b"not json\nnor this\n{\"name\":\"q\",\"columns\":{\"a\":\"b\"},\"action\":\"added\"}\n",
    );
    let cut = &gz[..gz.len() - 12];
    let (events, q, s) = run(cut, Options::default());
    assert_accounting(&events, &q, &s);
    assert_eq!(s.quarantined_as, Some(ObjectReason::GzipTruncated));
    assert!(q[..q.len() - 1].iter().all(|q| q.object.is_none()));
    assert!(q[0].reason.starts_with("not JSON"), "{q:?}");
    // A bomb of bytes that are not records: one entry, the damage, with their count.
    let zeros = gzip(&vec![0u8; 3 << 20]);
    let options = Options {
        limits: Limits {
            max_decompressed_bytes: 2 << 20,
            ..Limits::default()
        },
        ..Options::default()
    };
    let (events, q, s) = run(&zeros, options);
    assert_accounting(&events, &q, &s);
    let detail = object_entry(&q, "decompressed_too_large");
    assert_eq!((q.len(), detail.lines, q[0].bytes), (1, 1, 2 << 20));
    assert!(
        detail.message.contains("too many to quarantine one by one")
            && detail.message.contains("00 00 00 00 00 00 00 00"),
        "{}",
        detail.message
    );
}

/// A reader that gives `data` and then fails with `kind`, as a network stream cut short.
struct Cut {
    data: io::Cursor<Vec<u8>>,
    kind: io::ErrorKind,
}

impl Read for Cut {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.data.read(buf)? {
            0 => Err(io::Error::new(self.kind, "stream cut")),
            n => Ok(n),
        }
    }
}

#[test]
fn a_failed_read_is_no_damage_to_the_object() {
    // Whatever the error's kind, a stream that fails is a read failure (worth a retry),
    // not a truncated object, and leaves no entry for the object.
    let body = format!("{}not json\n", sample());
    for data in [body.clone().into_bytes(), gzip(body.as_bytes())] {
        for kind in [io::ErrorKind::UnexpectedEof, io::ErrorKind::InvalidData] {
            for parallelism in [crate::Parallelism::Inline, crate::Parallelism::Threads] {
                let reader = Cut {
                    data: io::Cursor::new(data.clone()),
                    kind,
                };
                let decoder = ObjectDecoder::with_parallelism(
                    reader,
                    Origin::path("t"),
                    Options::default(),
                    parallelism,
                );
                let (events, q, s) = collect(decoder);
                assert!(
                    matches!(s.error, Some(ObjectError::Read { .. })),
                    "{kind:?}: {:?}",
                    s.error
                );
                assert_eq!(events.len(), 3);
                assert_eq!((q.len(), s.objects_quarantined), (1, 0));
            }
        }
    }
}

#[test]
fn an_object_entry_serializes_as_the_contract_says() {
    let (_, q, _) = run(
        b"\x1f\x8bXY, then more bytes than a header",
        Options::default(),
    );
    let json = serde_json::to_value(&q[0]).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "source": {"path": "t", "record": 0},
            "reason": "gzip_corrupt",
            "raw": "",
            "bytes": 0,
            "object": {
                "offset": 0,
                "compressed_offset": json["object"]["compressed_offset"],
                "lines": 0,
                "message": json["object"]["message"],
            },
        })
    );
    assert!(json["object"]["compressed_offset"].is_u64());
    // A record's entry is as it always was: no `object`.
    let (_, q, _) = run(b"not json\n{\"a\":1}\n", Options::default());
    let json = serde_json::to_value(&q[0]).unwrap();
    assert_eq!(
        json.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["bytes", "raw", "reason", "source"]
    );
    assert_eq!(serde_json::from_value::<Quarantined>(json).unwrap(), q[0]);
}

#[test]
fn messages_are_bounded() {
    let long = "é".repeat(MAX_MESSAGE_BYTES);
    let cut = bounded(long);
    assert!(cut.len() <= MAX_MESSAGE_BYTES && cut.ends_with('…'));
    assert_eq!(bounded("short".into()), "short");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// However many lines that are not records come first, and whatever they hold, the
    /// records after them give the same events.
    #[test]
    fn lines_before_the_records_never_cost_an_event(
        lines in proptest::collection::vec("[^{\\[\n]{0,30}", 0..(HOLD_LINES + 40)),
        compress in any::<bool>(),
    ) {
        let mut body = lines.join("\n");
        body.push('\n');
        body.push_str(&sample());
        let data = if compress { gzip(body.as_bytes()) } else { body.into_bytes() };
        let (events, q, s) = run(&data, Options::default());
        assert_accounting(&events, &q, &s);
        let alone = run(sample().as_bytes(), Options::default()).0;
        prop_assert_eq!(events.len(), alone.len());
        for (e, a) in events.iter().zip(&alone) {
            prop_assert_eq!(&e.id, &a.id);
        }
        prop_assert_eq!(s.decoded, 2);
    }
}
