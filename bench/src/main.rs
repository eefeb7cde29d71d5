//! `tripline-bench`: corpus generator, whole-pipeline benchmark with its baselines, start-up.
//!
//! ```text
//! tripline-bench gen --seed 1 --size 5MiB --shape osquery -o target/bench/osquery-5m.json.gz
//! tripline-bench pipeline target/bench/osquery-5m.json.gz [--runs 5] [--no-python] [--duckdb]
//! tripline-bench startup [--runs 10]
//! tripline-bench iocs --count 1000000 [--object normalized.ndjson.zst]
//! tripline-bench run fused FILE               # one measurement, in this process (for perf)
//! tripline-bench run detect-inline FILE --filters bench/filters   # with Sigma filters
//! ```
//!
//! Every measurement runs in a fresh child process (`run`), so each peak RSS (`VmHWM`) is
//! that measurement's own; times are the best of `--runs`.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tripline_bench::gen::{self, Shape};
use tripline_bench::iocs;
use tripline_bench::pipeline::{self, Engine, RunResult};
use tripline_core::compress::Codec;
use tripline_core::decode::Origin;
use tripline_core::{Mapper, Parallelism};

// mimalloc instead of glibc malloc: decoding and detection allocate many small, short-lived
// values, which it serves faster (BENCHMARKS.md). `no_thp`: no transparent huge pages, which
// would otherwise inflate resident memory.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "tripline-bench",
    about = "tripline benchmark harness (see BENCHMARKS.md)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Write a synthetic Firehose object (gzip), deterministic by seed.
    Gen {
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Target gzip size: 5MiB (Firehose's default buffer) or 128MiB (its maximum).
        #[arg(long, default_value = "5MiB", value_parser = gen::parse_size)]
        size: u64,
        #[arg(long, default_value = "osquery")]
        shape: Shape,
        /// Attack records per 10,000 records: 10 (0.1%) is a fleet's normal day; a few
        /// thousand make an object with tens of thousands of distinct alerts.
        #[arg(long, default_value_t = gen::ATTACKS_PER_10K)]
        attacks_per_10k: u32,
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Whole pipeline on each object, ours against the baselines, each in fresh processes.
    Pipeline {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Repetitions per measurement (best time kept).
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Repetitions of the Python baseline (default: same as --runs).
        #[arg(long)]
        python_runs: Option<usize>,
        #[arg(long)]
        no_python: bool,
        /// Also run the DuckDB + pySigma baseline (needs .venv-bench).
        #[arg(long)]
        duckdb: bool,
        /// Python interpreter [default: .venv-bench/bin/python if present, else python3].
        #[arg(long)]
        python: Option<PathBuf>,
        /// Where the normalized objects go between the parse and detect stages.
        #[arg(long, default_value = "target/bench/tmp")]
        tmp: PathBuf,
        /// Also write every result as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Measurements to leave out (comma-separated): single-thread,
        /// scan (parse+detect without the normalized copy), other-codec (the one-process row with the other output codec), lambdas (the parse
        /// and detect rows and the compress-output lower bound).
        #[arg(long, value_delimiter = ',')]
        skip: Vec<String>,
        /// The normalized output's compression, as TRIPLINE_OUTPUT_COMPRESSION: zstd | gzip.
        #[arg(long, default_value_t = Codec::default())]
        codec: Codec,
    },
    /// Peak memory with many distinct alerts (a noisy rule across a fleet): generates the
    /// object once, then `run scan`, `run parse` and `run detect-inline` (the detect Lambda's
    /// work on the normalized copy) in fresh processes. Fails if a peak passes --max-mib.
    Alerts {
        /// Target gzip size of the generated object.
        #[arg(long, default_value = "64MiB", value_parser = gen::parse_size)]
        size: u64,
        /// Attack records per 10,000: 3,000 gives about 50k distinct alerts at 64 MiB.
        #[arg(long, default_value_t = 3000)]
        attacks_per_10k: u32,
        /// Where the object and its normalized copy go.
        #[arg(long, default_value = "target/bench/tmp")]
        tmp: PathBuf,
        /// The bound: the detect function and `tripline scan` must stay under it.
        #[arg(long, default_value_t = 256)]
        max_mib: u64,
    },
    /// Indicator lists at scale: generates `--count` entries (60% hashes, 20% domains, 15%
    /// IPv4, 5% CIDRs; 80% plain text, 10% CSV, 10% STIX), then loads them in fresh
    /// processes (all, and each file alone) and looks a million events' indicators up.
    /// With `--object` (a normalized object), also the detect Lambda's work on it without
    /// and with the lists.
    Iocs {
        #[arg(long, default_value_t = 1_000_000)]
        count: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Where the lists go (`<tmp>/iocs-<count>-<seed>/`).
        #[arg(long, default_value = "target/bench/tmp")]
        tmp: PathBuf,
        /// A normalized object (`run parse --out`) for the detect rows.
        #[arg(long)]
        object: Option<PathBuf>,
        /// Repetitions per measurement (best time kept).
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// Start-up: built-in catalog, rules and mappings ready, in fresh processes.
    Startup {
        #[arg(long, default_value_t = 10)]
        runs: usize,
    },
    /// One measurement in this process; prints its result as JSON (used by `pipeline`, and
    /// the thing to put under `perf record`).
    Run {
        /// fused | fused-single-thread | scan | parse | parse-inline | detect |
        /// detect-inline | gunzip | compress-output (FILE: a normalized object) | startup
        mode: String,
        file: Option<PathBuf>,
        /// Normalized output of `parse` (default: a sink).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Repeat the measurement in-process this many times (for profiling).
        #[arg(long, default_value_t = 1)]
        repeat: usize,
        /// The normalized output's compression: zstd | gzip.
        #[arg(long, default_value_t = Codec::default())]
        codec: Codec,
        /// Sigma filters (a directory, as `tripline scan --filters`) for the detecting modes.
        #[arg(long, value_name = "DIR")]
        filters: Option<PathBuf>,
        /// Indicator lists for the detectors (`IocSet::load_dir`); for `iocs`, FILE is the
        /// directory or list to load.
        #[arg(long)]
        iocs: Option<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::Gen {
            seed,
            size,
            shape,
            attacks_per_10k,
            output,
        } => {
            if let Some(dir) = output.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            let t = Instant::now();
            let f = BufWriter::new(File::create(&output)?);
            let s = gen::generate_with(seed, size, shape, attacks_per_10k, f)?;
            eprintln!(
                "{}: {} records, {} rows/events, {} attack records, {} hosts, {:.1} MB plain, {:.2} MiB gzip ({:.1}x) in {:.1}s",
                output.display(),
                s.records,
                s.rows,
                s.attack_records,
                s.hosts,
                s.plain_bytes as f64 / 1e6,
                s.gzip_bytes as f64 / (1 << 20) as f64,
                s.plain_bytes as f64 / s.gzip_bytes as f64,
                t.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Cmd::Run {
            mode,
            file,
            out,
            repeat,
            codec,
            filters,
            iocs,
        } => {
            let mut r = RunResult::default();
            for _ in 0..repeat.max(1) {
                r = run_one(
                    &mode,
                    file.as_deref(),
                    out.as_deref(),
                    codec,
                    filters.as_deref(),
                    iocs.as_deref(),
                )?;
            }
            r.peak_rss_kib = pipeline::peak_rss_kib();
            // The iocs mode measures the CPU time of its load alone.
            if r.mode != "iocs" {
                r.cpu_s = pipeline::cpu_seconds();
            }
            println!("{}", serde_json::to_string(&r)?);
            Ok(())
        }
        Cmd::Startup { runs } => startup(runs),
        Cmd::Iocs {
            count,
            seed,
            tmp,
            object,
            runs,
        } => iocs_rows(count, seed, &tmp, object.as_deref(), runs),
        Cmd::Alerts {
            size,
            attacks_per_10k,
            tmp,
            max_mib,
        } => alerts_memory(size, attacks_per_10k, &tmp, max_mib),
        Cmd::Pipeline {
            files,
            runs,
            python_runs,
            no_python,
            duckdb,
            python,
            tmp,
            json,
            skip,
            codec,
        } => {
            let python = python.unwrap_or_else(default_python);
            let mut all = Vec::new();
            for f in &files {
                let plan = Plan {
                    runs,
                    python_runs: python_runs.unwrap_or(runs),
                    python: (!no_python).then_some(python.as_path()),
                    duckdb,
                    tmp: &tmp,
                    skip: &skip,
                    codec,
                };
                all.push(bench_object(f, &plan)?);
            }
            if let Some(path) = json {
                std::fs::write(&path, serde_json::to_vec_pretty(&all)?)?;
                eprintln!("results written to {}", path.display());
            }
            Ok(())
        }
    }
}

fn run_one(
    mode: &str,
    file: Option<&Path>,
    out: Option<&Path>,
    codec: Codec,
    filters: Option<&Path>,
    iocs: Option<&Path>,
) -> anyhow::Result<RunResult> {
    // The built-in engine, with the lists when given (loaded before the measurement starts,
    // as the detect function loads them at cold start).
    let engine = || -> anyhow::Result<Engine> {
        let mut e = Engine::with_filters(filters)?;
        if let Some(dir) = iocs {
            e.iocs = Some(std::sync::Arc::new(tripline_core::IocSet::load_dir(dir)?));
        }
        Ok(e)
    };
    let open = || -> anyhow::Result<File> {
        let f = file.context("this mode needs a FILE")?;
        File::open(f).with_context(|| format!("opening {}", f.display()))
    };
    let origin = || Origin::path(file.map(|f| f.display().to_string()).unwrap_or_default());
    Ok(match mode {
        "gunzip" => pipeline::gunzip(open()?)?,
        "startup" => {
            let (d, split, engine) = pipeline::startup()?;
            RunResult {
                mode: "startup".into(),
                wall_s: d.as_secs_f64(),
                records: engine.rules.len() as u64,
                startup_split: split,
                ..Default::default()
            }
        }
        "fused" => {
            let engine = engine()?;
            pipeline::fused(open()?, origin(), &engine, Parallelism::Threads, codec)?
        }
        "fused-single-thread" => {
            let engine = engine()?;
            pipeline::fused(open()?, origin(), &engine, Parallelism::Inline, codec)?
        }
        "scan" => {
            let engine = engine()?;
            pipeline::scan(open()?, origin(), &engine)?
        }
        "compress-output" => pipeline::compress_output(open()?, codec)?,
        "parse" => {
            let mapper = Arc::new(Mapper::builtin()?);
            let threads = Parallelism::Threads;
            match out {
                Some(p) => {
                    let w = BufWriter::with_capacity(8 << 20, File::create(p)?);
                    pipeline::parse_stage(open()?, origin(), w, mapper, threads, codec)?.0
                }
                None => {
                    let sink = std::io::sink();
                    pipeline::parse_stage(open()?, origin(), sink, mapper, threads, codec)?.0
                }
            }
        }
        "parse-inline" => {
            let mapper = Arc::new(Mapper::builtin()?);
            let sink = std::io::sink();
            let inline = Parallelism::Inline;
            pipeline::parse_stage(open()?, origin(), sink, mapper, inline, codec)?.0
        }
        "detect" => {
            let engine = engine()?;
            pipeline::detect_stage(open()?, &engine, Parallelism::Threads)?
        }
        "detect-inline" => {
            let engine = engine()?;
            pipeline::detect_stage(open()?, &engine, Parallelism::Inline)?
        }
        "iocs" => iocs::load_and_lookup(file.context("iocs needs a directory or list")?)?,
        other => bail!("unknown mode {other:?}"),
    })
}

fn default_python() -> PathBuf {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv-bench/bin/python");
    if venv.exists() {
        venv
    } else {
        PathBuf::from("python3")
    }
}

fn baseline_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("baseline")
        .join(name)
}

/// Runs `run MODE FILE --codec CODEC` in a fresh child and reads back its result.
fn child(mode: &str, file: &Path, extra: &[&str], codec: Codec) -> anyhow::Result<RunResult> {
    child_env(mode, file, extra, codec, &[])
}

/// [`child`] with environment variables set.
fn child_env(
    mode: &str,
    file: &Path,
    extra: &[&str],
    codec: Codec,
    env: &[(&str, &str)],
) -> anyhow::Result<RunResult> {
    let exe = std::env::current_exe()?;
    let out = Command::new(exe)
        .envs(env.iter().copied())
        .arg("run")
        .arg(mode)
        .arg(file)
        .args(["--codec", &codec.to_string()])
        .args(extra)
        .stderr(Stdio::inherit())
        .output()?;
    if !out.status.success() {
        bail!("child {mode} {} failed: {}", file.display(), out.status);
    }
    parse_last_json(&out.stdout)
}

fn parse_last_json<T: for<'a> Deserialize<'a>>(stdout: &[u8]) -> anyhow::Result<T> {
    let text = String::from_utf8_lossy(stdout);
    let line = text
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .context("no JSON result on the child's stdout")?;
    Ok(serde_json::from_str(line)?)
}

/// Best (shortest wall) of `runs` results; peak RSS is the largest seen.
fn best_of(
    runs: usize,
    mut f: impl FnMut() -> anyhow::Result<RunResult>,
) -> anyhow::Result<RunResult> {
    let mut best: Option<RunResult> = None;
    let mut peak = 0;
    for _ in 0..runs.max(1) {
        let r = f()?;
        peak = peak.max(r.peak_rss_kib);
        if best.as_ref().is_none_or(|b| r.wall_s < b.wall_s) {
            best = Some(r);
        }
    }
    let mut b = best.expect("at least one run");
    b.peak_rss_kib = peak;
    eprintln!(
        "  {:<24} best of {}: {:.3}s, peak RSS {:.1} MiB",
        b.mode,
        runs.max(1),
        b.wall_s,
        peak as f64 / 1024.0
    );
    Ok(b)
}

#[derive(Serialize)]
struct ObjectReport {
    file: String,
    load_avg_before: String,
    load_avg_after: String,
    gunzip: RunResult,
    fused: RunResult,
    /// The output codec of every row below but the `_other` ones.
    codec: String,
    /// The one-process row with the other codec.
    fused_other: RunResult,
    /// Parse + detect with no normalized copy written: what `tripline scan` does.
    scan: RunResult,
    /// Compressing the normalized output alone (run on the parse row's output), with the
    /// codec and with the other one.
    compress_output: RunResult,
    compress_output_other: RunResult,
    fused_single_thread: RunResult,
    parse: RunResult,
    /// The parse Lambda under one vCPU: no inflate/compress threads.
    parse_inline: RunResult,
    detect: RunResult,
    detect_inline: RunResult,
    python: Option<RunResult>,
    duckdb: Option<serde_json::Value>,
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// What `pipeline` measures on each object, from its flags.
struct Plan<'a> {
    runs: usize,
    python_runs: usize,
    python: Option<&'a Path>,
    duckdb: bool,
    tmp: &'a Path,
    skip: &'a [String],
    codec: Codec,
}

fn bench_object(file: &Path, plan: &Plan<'_>) -> anyhow::Result<ObjectReport> {
    let Plan {
        runs,
        python_runs,
        python,
        duckdb,
        tmp,
        skip,
        codec,
    } = *plan;
    let other = match codec {
        Codec::Zstd => Codec::Gzip,
        Codec::Gzip => Codec::Zstd,
    };
    let skipped = |name: &str| skip.iter().any(|s| s == name);
    let maybe = |name: &str, mode: &str, extra: &[&str], n: usize| {
        if skipped(name) {
            Ok(RunResult::default())
        } else {
            best_of(n, || child(mode, file, extra, codec))
        }
    };
    std::fs::create_dir_all(tmp)?;
    let load_before = loadavg();
    eprintln!("== {} (load average {load_before})", file.display());
    // Warm the page cache so the first measurement doesn't pay for the disk.
    std::io::copy(&mut File::open(file)?, &mut std::io::sink())?;

    let gunzip = best_of(runs, || child("gunzip", file, &[], codec))?;
    let fused = best_of(runs, || child("fused", file, &[], codec))?;
    let fused_other = if skipped("other-codec") {
        RunResult::default()
    } else {
        best_of(runs, || child("fused", file, &[], other))?
    };
    let scan = maybe("scan", "scan", &[], runs)?;
    let fused_single_thread = maybe("single-thread", "fused-single-thread", &[], runs)?;
    let stem = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "object".into());
    let normalized = tmp.join(format!("{stem}.normalized.ndjson{}", codec.extension()));
    let norm_arg = normalized.display().to_string();
    let parse = if skipped("lambdas") && !duckdb {
        RunResult::default()
    } else {
        best_of(runs, || child("parse", file, &["--out", &norm_arg], codec))?
    };
    // The deployed functions' rows, all skipped together with `--skip lambdas`.
    let lambda_row = |mode: &str, input: &Path, codec: Codec| {
        if skipped("lambdas") {
            Ok(RunResult::default())
        } else {
            best_of(runs, || child(mode, input, &[], codec))
        }
    };
    let detect = lambda_row("detect", &normalized, codec)?;
    let parse_inline = lambda_row("parse-inline", file, codec)?;
    let detect_inline = lambda_row("detect-inline", &normalized, codec)?;
    let compress_output = lambda_row("compress-output", &normalized, codec)?;
    let compress_output_other = lambda_row("compress-output", &normalized, other)?;

    let python = match python {
        Some(py) => Some(best_of(python_runs, || {
            run_script(py, &baseline_script("python_rules.py"), file)
        })?),
        None => None,
    };
    let duckdb = if duckdb {
        let py = default_python();
        let mut best: Option<serde_json::Value> = None;
        for _ in 0..python_runs.max(1) {
            let v = run_script_value(&py, &baseline_script("duckdb_sigma.py"), &normalized)?;
            let wall = v["wall_s"].as_f64().unwrap_or(f64::MAX);
            if best
                .as_ref()
                .is_none_or(|b| wall < b["wall_s"].as_f64().unwrap_or(f64::MAX))
            {
                best = Some(v);
            }
        }
        best
    } else {
        None
    };
    let report = ObjectReport {
        file: file.display().to_string(),
        load_avg_before: load_before,
        load_avg_after: loadavg(),
        gunzip,
        fused,
        codec: codec.to_string(),
        fused_other,
        scan,
        compress_output,
        compress_output_other,
        fused_single_thread,
        parse,
        parse_inline,
        detect,
        detect_inline,
        python,
        duckdb,
    };
    print_report(&report);
    Ok(report)
}

fn run_script_value(
    python: &Path,
    script: &Path,
    file: &Path,
) -> anyhow::Result<serde_json::Value> {
    let out = Command::new(python)
        .arg(script)
        .arg(file)
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {} {}", python.display(), script.display()))?;
    if !out.status.success() {
        bail!("{} failed: {}", script.display(), out.status);
    }
    parse_last_json(&out.stdout)
}

fn run_script(python: &Path, script: &Path, file: &Path) -> anyhow::Result<RunResult> {
    Ok(serde_json::from_value(run_script_value(
        python, script, file,
    )?)?)
}

/// "ours 3.1x faster" or "ours 2.0x slower", from the two wall times.
fn vs_ours(theirs: f64, ours: f64) -> String {
    if theirs >= ours {
        format!("ours {:.1}x faster", theirs / ours)
    } else {
        format!("ours {:.1}x slower", ours / theirs)
    }
}

fn mb(r: &RunResult) -> f64 {
    r.bytes_decoded as f64 / 1e6
}

fn print_report(r: &ObjectReport) {
    let f = &r.fused;
    let plain_mb = mb(f);
    println!();
    println!(
        "object {}: {:.2} MiB gzip, {:.1} MB decompressed ({:.1}x), {} records, {} events, {} quarantined, {} alerts",
        r.file,
        f.bytes_in as f64 / (1 << 20) as f64,
        plain_mb,
        f.bytes_decoded as f64 / f.bytes_in.max(1) as f64,
        f.records,
        f.events,
        f.quarantined,
        f.alerts
    );
    println!(
        "load average before {} after {}",
        r.load_avg_before, r.load_avg_after
    );
    println!(
        "{:<44} {:>9} {:>7} {:>9} {:>11} {:>9} {:>12}",
        "measurement (best wall time)",
        "wall s",
        "cpu s",
        "MB/s",
        "events/s",
        "peak MiB",
        "vs ours"
    );
    let row = |name: &str, x: &RunResult, events: u64, note: String| {
        if x.wall_s == 0.0 {
            return;
        }
        let ev = if events > 0 {
            format!("{:.0}", events as f64 / x.wall_s)
        } else {
            "-".into()
        };
        let cpu = if x.cpu_s > 0.0 {
            format!("{:.2}", x.cpu_s)
        } else {
            "-".into()
        };
        println!(
            "{:<44} {:>9.3} {:>7} {:>9.1} {:>11} {:>9.1} {:>12}",
            name,
            x.wall_s,
            cpu,
            plain_mb / x.wall_s,
            ev,
            x.peak_rss_kib as f64 / 1024.0,
            note
        );
    };
    row(
        "ours: parse+detect, one process",
        f,
        f.events,
        "1.00x".into(),
    );
    row(
        "floor: gunzip alone (flate2, same backend)",
        &r.gunzip,
        0,
        format!("ours {:.2}x its time", f.wall_s / r.gunzip.wall_s),
    );
    let other = &r.fused_other;
    row(
        &format!(
            "the same with {} output",
            other.mode.trim_start_matches("fused_")
        ),
        other,
        f.events,
        format!("{:.2}x floor", other.wall_s / r.gunzip.wall_s),
    );
    row(
        "parse+detect, no normalized copy (scan)",
        &r.scan,
        f.events,
        format!("{:.2}x floor", r.scan.wall_s / r.gunzip.wall_s),
    );
    let size = |x: &RunResult| format!("{:.1} MB", x.normalized_bytes as f64 / 1e6);
    for x in [&r.compress_output, &r.compress_output_other] {
        let codec = x.mode.trim_start_matches("compress_output_");
        row(
            &format!("{codec} of the output alone ({})", size(x)),
            x,
            0,
            format!("{:.2}x floor", x.wall_s / r.gunzip.wall_s),
        );
    }
    if r.compress_output.wall_s > 0.0 {
        // Inflating and compressing must both happen whatever the parsing costs; two cores
        // can at best split them evenly.
        let bound = (r.gunzip.wall_s + r.compress_output.wall_s) / 2.0;
        println!(
            "{:<44} {:>9.3} {:>7} {:>9} {:>11} {:>9} {:>12}",
            format!("lower bound: (gunzip + {} output) / 2", r.codec),
            bound,
            "-",
            "-",
            "-",
            "-",
            format!("{:.2}x floor", bound / r.gunzip.wall_s)
        );
    }
    row(
        "all on one thread (what <1 vCPU runs)",
        &r.fused_single_thread,
        f.events,
        format!(
            "{:.2}x floor",
            r.fused_single_thread.wall_s / r.gunzip.wall_s
        ),
    );
    let lambdas = RunResult {
        wall_s: r.parse.wall_s + r.detect.wall_s,
        cpu_s: r.parse.cpu_s + r.detect.cpu_s,
        peak_rss_kib: r.parse.peak_rss_kib.max(r.detect.peak_rss_kib),
        ..Default::default()
    };
    row(
        "as deployed: parse Lambda",
        &r.parse,
        f.events,
        format!("{:.2}x floor", r.parse.wall_s / r.gunzip.wall_s),
    );
    row(
        "  the same at <= 1769 MB (no threads)",
        &r.parse_inline,
        f.events,
        format!("{:.2}x floor", r.parse_inline.wall_s / r.gunzip.wall_s),
    );
    row(
        "as deployed: detect Lambda (re-reads output)",
        &r.detect,
        f.events,
        String::new(),
    );
    row(
        "  the same at <= 1769 MB (no threads)",
        &r.detect_inline,
        f.events,
        String::new(),
    );
    row(
        "as deployed: parse + detect Lambdas",
        &lambdas,
        f.events,
        format!("{:.2}x floor", lambdas.wall_s / r.gunzip.wall_s),
    );
    let inline = RunResult {
        wall_s: r.parse_inline.wall_s + r.detect_inline.wall_s,
        cpu_s: r.parse_inline.cpu_s + r.detect_inline.cpu_s,
        peak_rss_kib: r
            .parse_inline
            .peak_rss_kib
            .max(r.detect_inline.peak_rss_kib),
        ..Default::default()
    };
    row(
        "  the same at <= 1769 MB (no threads)",
        &inline,
        f.events,
        format!("{:.2}x floor", inline.wall_s / r.gunzip.wall_s),
    );
    if let Some(p) = &r.python {
        row(
            "python baseline (json + Sigma matcher)",
            p,
            p.events,
            vs_ours(p.wall_s, f.wall_s),
        );
    }
    if let Some(d) = &r.duckdb {
        let wall = d["wall_s"].as_f64().unwrap_or(0.0);
        println!(
            "{:<44} {:>9.3} {:>7} {:>9.1} {:>11} {:>9.1} {:>12}",
            "duckdb + pySigma SQL (normalized NDJSON)",
            wall,
            "-",
            plain_mb / wall,
            format!("{:.0}", d["events"].as_f64().unwrap_or(0.0) / wall),
            d["peak_rss_kib"].as_f64().unwrap_or(0.0) / 1024.0,
            vs_ours(wall, f.wall_s)
        );
    }

    // Same alerts? Rule name + count.
    if let Some(p) = &r.python {
        let ours = &f.alerts_by_rule;
        let theirs = &p.alerts_by_rule;
        let mut names: Vec<&String> = ours.keys().chain(theirs.keys()).collect();
        names.sort();
        names.dedup();
        let same = ours == theirs && f.matches_by_rule == p.matches_by_rule;
        println!(
            "alerts by rule (ours alerts/matches vs python alerts/matches): {}",
            if same { "IDENTICAL" } else { "DIFFERENT" }
        );
        let get = |m: &BTreeMap<String, u64>, k: &str| m.get(k).copied().unwrap_or(0);
        for n in names {
            println!(
                "  {n:<44} {:>5}/{:<6} {:>5}/{:<6}{}",
                get(ours, n),
                get(&f.matches_by_rule, n),
                get(theirs, n),
                get(&p.matches_by_rule, n),
                if get(ours, n) == get(theirs, n)
                    && get(&f.matches_by_rule, n) == get(&p.matches_by_rule, n)
                {
                    ""
                } else {
                    "  <-- differs"
                }
            );
        }
        if p.events != f.events {
            println!("  events differ: ours {} python {}", f.events, p.events);
        }
    }
    if let Some(d) = &r.duckdb {
        let skipped: Vec<String> = d["rules_skipped_derived"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let theirs: BTreeMap<String, u64> =
            serde_json::from_value(d["alerts_by_rule"].clone()).unwrap_or_default();
        let theirs_m: BTreeMap<String, u64> =
            serde_json::from_value(d["matches_by_rule"].clone()).unwrap_or_default();
        let ours: BTreeMap<String, u64> = f
            .alerts_by_rule
            .iter()
            .filter(|(k, _)| !skipped.contains(k))
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        let ours_m: BTreeMap<String, u64> = f
            .matches_by_rule
            .iter()
            .filter(|(k, _)| !skipped.contains(k))
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        println!(
            "duckdb: {} rules run, {} skipped (need derived.*: {}), load {:.3}s + queries {:.3}s (+ pySigma conversion {:.3}s once); alerts/matches on the rules it runs: {}",
            d["rules_run"],
            skipped.len(),
            skipped.join(", "),
            d["load_s"].as_f64().unwrap_or(0.0),
            d["query_s"].as_f64().unwrap_or(0.0),
            d["convert_s"].as_f64().unwrap_or(0.0),
            if ours == theirs && ours_m == theirs_m {
                "IDENTICAL to ours".to_string()
            } else {
                format!("DIFFERENT (ours {ours:?} / {ours_m:?}, duckdb {theirs:?} / {theirs_m:?})")
            }
        );
    }
    let _ = std::io::stdout().flush();
}

fn startup(runs: usize) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let mut in_process = f64::MAX;
    let mut whole = f64::MAX;
    let mut rss = 0;
    let mut split = [0.0; 3];
    let mut rules = 0;
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        let out = Command::new(&exe)
            .args(["run", "startup"])
            .stderr(Stdio::inherit())
            .output()?;
        let wall = t.elapsed().as_secs_f64();
        if !out.status.success() {
            bail!("startup child failed");
        }
        let r: RunResult = parse_last_json(&out.stdout)?;
        if r.wall_s < in_process {
            split = r.startup_split;
        }
        rules = r.records;
        in_process = in_process.min(r.wall_s);
        whole = whole.min(wall);
        rss = rss.max(r.peak_rss_kib);
    }
    println!(
        "start-up, best of {runs}: catalog + {rules} rules + mappings ready in {:.1} ms in-process \
         (catalog {:.1} ms, rules {:.1} ms, mappings {:.1} ms); fresh process spawn→ready→exit \
         {:.1} ms; peak RSS {:.1} MiB",
        in_process * 1e3,
        split[0] * 1e3,
        split[1] * 1e3,
        split[2] * 1e3,
        whole * 1e3,
        rss as f64 / 1024.0
    );
    Ok(())
}

/// The many-alerts row: see `Cmd::Alerts`.
fn alerts_memory(size: u64, attacks_per_10k: u32, tmp: &Path, max_mib: u64) -> anyhow::Result<()> {
    std::fs::create_dir_all(tmp)?;
    let object = tmp.join(format!("alerts-{size}-{attacks_per_10k}.json.gz"));
    if !object.exists() {
        let f = BufWriter::new(File::create(&object)?);
        let s = gen::generate_with(3, size, Shape::Osquery, attacks_per_10k, f)?;
        eprintln!(
            "{}: {} records, {} events",
            object.display(),
            s.records,
            s.rows
        );
    }
    let codec = Codec::default();
    let normalized = tmp.join(format!("alerts-{size}-{attacks_per_10k}.ndjson.zst"));
    let norm_arg = normalized.display().to_string();
    let scan = child("scan", &object, &[], codec)?;
    let parse = child("parse", &object, &["--out", &norm_arg], codec)?;
    let detect = child("detect-inline", &normalized, &[], codec)?;
    println!(
        "{:<44} {:>9} {:>9} {:>10}",
        "many distinct alerts", "alerts", "wall s", "peak MiB"
    );
    let mut over = Vec::new();
    for (name, r, bounded) in [
        ("tripline scan's work (run scan)", &scan, true),
        ("parse Lambda (run parse)", &parse, false),
        ("detect Lambda at <= 1769 MB (detect-inline)", &detect, true),
    ] {
        let peak = r.peak_rss_kib as f64 / 1024.0;
        println!(
            "{name:<44} {:>9} {:>9.3} {:>10.1}",
            r.alerts, r.wall_s, peak
        );
        if bounded && peak >= max_mib as f64 {
            over.push(format!("{name}: {peak:.1} MiB"));
        }
    }
    if !over.is_empty() {
        bail!("over the {max_mib} MiB bound: {}", over.join(", "));
    }
    Ok(())
}

/// The IOC rows: see `Cmd::Iocs`.
fn iocs_rows(
    count: usize,
    seed: u64,
    tmp: &Path,
    object: Option<&Path>,
    runs: usize,
) -> anyhow::Result<()> {
    let dir = tmp.join(format!("iocs-{count}-{seed}"));
    let t = Instant::now();
    let generated = iocs::generate(&dir, count, seed)?;
    eprintln!(
        "{}: {count} entries generated in {:.1}s",
        dir.display(),
        t.elapsed().as_secs_f64()
    );
    let codec = Codec::default();
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!(
        "{:<28} {:>9} {:>8} {:>8} {:>8} {:>10} {:>9} {:>9} {:>9} {:>10} {:>7}",
        "IOC lists, best of runs",
        "entries",
        "file MB",
        "load s",
        "load cpu",
        "entries/s",
        "peak MiB",
        "RSS+ MiB",
        "heap MiB",
        "lookup ns",
        "hits"
    );
    let mut rows: Vec<(String, PathBuf, u64)> = vec![(
        "all three (load_dir)".into(),
        dir.clone(),
        generated.files.iter().map(|f| f.2).sum(),
    )];
    for (path, n, bytes) in &generated.files {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        rows.push((format!("{name} alone ({n})"), path.clone(), *bytes));
    }
    for (name, path, bytes) in rows {
        // As deployed (mimalloc's defaults) for the time, the peak and the lookups; the
        // memory kept from a run whose allocator returns freed pages at once (see
        // `iocs::load_and_lookup`).
        let r = best_of(runs, || child("iocs", &path, &[], codec))?;
        let kept = child_env("iocs", &path, &[], codec, &[("MIMALLOC_PURGE_DELAY", "0")])?;
        println!(
            "{name:<28} {:>9} {:>8.1} {:>8.3} {:>8.2} {:>10.0} {:>9.1} {:>9.1} {:>9.1} {:>10.0} {:>7}",
            r.ioc_entries,
            bytes as f64 / 1e6,
            r.wall_s,
            r.cpu_s,
            r.ioc_entries as f64 / r.wall_s,
            mib(r.load_peak_kib),
            mib(kept.rss_after_kib.saturating_sub(kept.rss_before_kib)),
            r.ioc_heap_bytes as f64 / f64::from(1 << 20),
            r.lookup_ns,
            r.lookup_hits,
        );
    }
    if let Some(object) = object {
        let lists = dir.display().to_string();
        let without = best_of(runs, || child("detect-inline", object, &[], codec))?;
        let with = best_of(runs, || {
            child("detect-inline", object, &["--iocs", &lists], codec)
        })?;
        println!(
            "detect-inline on {}: {} events, {:.3}s without lists, {:.3}s with {count} entries \
             ({:+.0} ns an event; list load not included); alerts {} / {}",
            object.display(),
            without.events,
            without.wall_s,
            with.wall_s,
            (with.wall_s - without.wall_s) * 1e9 / without.events.max(1) as f64,
            without.alerts,
            with.alerts,
        );
    }
    Ok(())
}
