//! Decoder throughput against its floor: gzip decompression alone of the same object,
//! measured in the same run. `cargo bench -p tripline-core --bench decode`.
//!
//! The object is synthetic but shaped like a real Firehose object: osquery's Firehose
//! logger form (stringified scalars, `\/`, `log_type`), a mix of differential events,
//! batch and snapshot records across many hosts.

use std::hint::black_box;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion, Throughput};
use flate2::{bufread::MultiGzDecoder, write::GzEncoder, Compression};
use tripline_core::decode::{Decoded, ObjectDecoder, Options, Origin};
use tripline_core::Parallelism;

/// About 24 MiB of records before compression, varied enough (pids, hashes, addresses
/// from a fixed-seed generator) to compress like real osquery logs (~10x), so the gunzip
/// floor is realistic rather than a memcpy.
fn object() -> (Vec<u8>, usize) {
    let mut plain = Vec::new();
    let mut i: u64 = 0;
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    while plain.len() < 24 << 20 {
        let r = rand();
        let h = rand();
        let host = format!("host-{:04}", i % 1500);
        let t = 1_795_161_600 + i / 50;
        let record = match i % 10 {
            0..=5 => format!(
                r#"{{"name":"pack\/tripline-linux\/processes","hostIdentifier":"{host}","calendarTime":"Fri Nov 20 08:00:00 2026 UTC","unixTime":"{t}","epoch":"0","counter":"{c}","numerics":"false","decorations":{{"host_uuid":"{h:016X}{i:016X}","hostname":"{host}"}},"columns":{{"pid":"{p}","name":"python3","path":"\/usr\/bin\/python3.11","cmdline":"\/usr\/bin\/python3 \/opt\/app\/{r:x}.py --port {p} --token {h:x}","uid":"{u}","parent":"{pp}","start_time":"{t}","md5":"{h:016x}{r:016x}"}},"action":"added","log_type":"result"}}"#,
                c = i % 97,
                p = 1000 + r % 60000,
                u = r % 2000,
                pp = h % 60000
            ),
            6..=7 => format!(
                r#"{{"name":"pack_tripline-linux_socket_events","hostIdentifier":"{host}","calendarTime":"Fri Nov 20 08:00:00 2026 UTC","unixTime":{t},"epoch":0,"counter":5,"numerics":false,"decorations":{{"hostname":"{host}"}},"columns":{{"action":"connect","remote_address":"{a}.{b}.{c}.{d}","remote_port":"{rp}","local_port":"{lp}","pid":"{pid}","path":"/usr/bin/curl"}},"action":"added"}}"#,
                a = r % 223 + 1,
                b = (r >> 8) % 256,
                c = (r >> 16) % 256,
                d = (r >> 24) % 256,
                rp = h % 65536,
                lp = (h >> 16) % 65536,
                pid = (h >> 32) % 60000
            ),
            8 => format!(
                r#"{{"diffResults":{{"added":[{{"user":"root","host":"10.0.{o}.1","type":"user"}},{{"user":"alice","host":"10.0.{o}.2","type":"user"}}],"removed":""}},"name":"pack\/tripline-linux\/logged_in_users","hostIdentifier":"{host}","calendarTime":"Fri Nov 20 08:00:00 2026 UTC","unixTime":"{t}","epoch":"0","counter":"3","numerics":"false","log_type":"result"}}"#,
                o = i % 250
            ),
            _ => format!(
                r#"{{"snapshot":[{{"port":"22","address":"0.0.0.0","pid":"911"}},{{"port":"443","address":"0.0.0.0","pid":"1201"}},{{"port":"5432","address":"127.0.0.1","pid":"77"}}],"action":"snapshot","name":"pack\/tripline-linux\/listening_ports","hostIdentifier":"{host}","calendarTime":"Fri Nov 20 08:00:00 2026 UTC","unixTime":"{t}","epoch":"0","counter":"0","numerics":"false","log_type":"result"}}"#
            ),
        };
        plain.extend_from_slice(record.as_bytes());
        plain.push(b'\n');
        i += 1;
    }
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(&plain).unwrap();
    (enc.finish().unwrap(), plain.len())
}

fn gunzip(gz: &[u8]) -> u64 {
    io::copy(&mut MultiGzDecoder::new(gz), &mut io::sink()).unwrap()
}

fn decode(gz: &[u8]) -> u64 {
    let mut events = 0;
    for item in ObjectDecoder::new(gz, Origin::path("bench"), Options::default()) {
        if let Decoded::Event(e) = item {
            black_box(&e);
            events += 1;
        }
    }
    events
}

/// Decoding plus writing each event as an NDJSON line, as the parse Lambda does
/// (`Event::write_line`, byte-identical to `serde_json`).
fn decode_and_serialize(gz: &[u8]) -> u64 {
    let mut out = io::sink();
    let mut line = Vec::new();
    let mut events = 0;
    for item in ObjectDecoder::new(gz, Origin::path("bench"), Options::default()) {
        if let Decoded::Event(e) = item {
            e.write_line(&mut out, &mut line).unwrap();
            events += 1;
        }
    }
    events
}

/// `decode` with gzip inflated on a second thread ([`Parallelism::Threads`]).
fn decode_threaded(gz: &[u8]) -> u64 {
    let reader = io::Cursor::new(gz.to_vec());
    let mut events = 0;
    for item in ObjectDecoder::with_parallelism(
        reader,
        Origin::path("bench"),
        Options::default(),
        Parallelism::Threads,
    ) {
        if let Decoded::Event(e) = item {
            black_box(&e);
            events += 1;
        }
    }
    events
}

fn bench(c: &mut Criterion) {
    let (gz, plain_len) = object();
    let mut g = c.benchmark_group("firehose_object");
    g.throughput(Throughput::Bytes(plain_len as u64));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(8));
    g.bench_function("gunzip_floor", |b| b.iter(|| gunzip(black_box(&gz))));
    g.bench_function("decode", |b| b.iter(|| decode(black_box(&gz))));
    g.bench_function("decode_threaded", |b| {
        b.iter(|| decode_threaded(black_box(&gz)))
    });
    g.bench_function("decode_serialize", |b| {
        b.iter(|| decode_and_serialize(black_box(&gz)))
    });
    g.finish();
}

/// Criterion reports each figure alone; this prints them as ratios to the floor.
fn ratios() {
    let (gz, plain_len) = object();
    let best = |f: &dyn Fn() -> u64| {
        (0..5)
            .map(|_| {
                let t = Instant::now();
                black_box(f());
                t.elapsed()
            })
            .min()
            .unwrap()
    };
    let floor = best(&|| gunzip(&gz));
    let mb = plain_len as f64 / 1e6;
    let events = decode(&gz);
    println!(
        "\nobject: {:.1} MB gzip, {:.1} MB decompressed, {events} events",
        gz.len() as f64 / 1e6,
        mb
    );
    println!(
        "gunzip floor      {:>8.1} MB/s  1.00x",
        mb / floor.as_secs_f64()
    );
    for (name, f) in [
        ("decode", &(|| decode(&gz)) as &dyn Fn() -> u64),
        ("decode, threaded", &|| decode_threaded(&gz)),
        ("decode+serialize", &|| decode_and_serialize(&gz)),
    ] {
        let t = best(f);
        println!(
            "{name:<17} {:>8.1} MB/s  {:.2}x the floor's time",
            mb / t.as_secs_f64(),
            t.as_secs_f64() / floor.as_secs_f64()
        );
    }
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    if !std::env::args().any(|a| a == "--list" || a == "--test") {
        ratios();
    }
    let _ = io::stdin().read(&mut []);
}
