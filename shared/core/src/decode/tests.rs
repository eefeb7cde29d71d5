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

fn assert_accounting(events: &[Event], quarantined: &[Quarantined], s: &Summary) {
    assert_eq!(s.records, s.decoded + s.quarantined, "{s:?}");
    assert_eq!(s.events, events.len() as u64);
    assert_eq!(s.quarantined, quarantined.len() as u64);
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
    // The record cut in half is quarantined, not lost.
    assert_eq!(q.len(), 1);
    assert!(q[0].reason.contains("truncated"));
    assert_eq!(s.objects_with_errors, 1);
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
    // not a truncated object.
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
                assert_eq!((events.len(), q.len()), (3, 1));
            }
        }
    }
}
