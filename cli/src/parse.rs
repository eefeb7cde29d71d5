//! `tripline parse`: osquery logs in, normalized events out (NDJSON).

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use flate2::write::GzEncoder;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tripline_core::decode::{Decoded, Limits, ObjectDecoder, ObjectError, Options, Summary};

use crate::inputs::{self, Input};

#[derive(clap::Args)]
pub struct ParseArgs {
    /// Files, directories (recursive), or - for stdin. Gzip is detected by content.
    #[arg(value_name = "PATH|-", required = true)]
    pub paths: Vec<PathBuf>,
    /// Write one gzip NDJSON file per input here (plus quarantine.ndjson) instead of stdout.
    #[arg(long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// Write quarantined records (NDJSON, with reasons) to this file.
    #[arg(long, value_name = "FILE")]
    pub quarantine: Option<PathBuf>,
    #[command(flatten)]
    pub decode: DecodeArgs,
}

/// Decoder settings shared by `parse` and `scan`.
#[derive(clap::Args, Clone)]
pub struct DecodeArgs {
    /// Quarantine records larger than this many bytes (osquery's own cap is 1 MiB).
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_record_bytes)]
    pub max_record_bytes: usize,
    /// Stop an object that decompresses past this many bytes (gzip bomb guard).
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_decompressed_bytes)]
    pub max_decompressed_bytes: u64,
    /// Your own osquery pack names, so `pack_<pack>_<query>` names split correctly.
    #[arg(long = "pack", value_name = "NAME")]
    pub packs: Vec<String>,
}

impl DecodeArgs {
    pub fn options(&self) -> Options {
        Options {
            limits: Limits {
                max_record_bytes: self.max_record_bytes,
                max_decompressed_bytes: self.max_decompressed_bytes,
            },
            extra_packs: self.packs.clone(),
        }
    }
}

pub fn run(args: ParseArgs) -> anyhow::Result<ExitCode> {
    let inputs = inputs::collect(&args.paths)?;
    if let Some(dir) = &args.output {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let quarantine_path = args
        .quarantine
        .clone()
        .or_else(|| args.output.as_ref().map(|d| d.join("quarantine.ndjson")));
    let mut quarantine = match &quarantine_path {
        Some(p) => Some(BufWriter::new(
            File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => None,
    };

    let progress = progress_bar(&inputs);
    let stdout = io::stdout();
    let mut stdout = BufWriter::with_capacity(256 << 10, stdout.lock());
    let mut total = Summary::default();
    let mut used_names = HashSet::new();
    let mut io_failed = false;

    for input in &inputs {
        progress.set_message(input.display());
        let reader = match input.open() {
            Ok(r) => r,
            Err(e) => {
                progress.suspend(|| eprintln!("tripline: {e:#}"));
                io_failed = true;
                continue;
            }
        };
        let mut file_out = match &args.output {
            Some(dir) => {
                let path = unique(dir.join(input.output_name(".ndjson.gz")), &mut used_names);
                if let Some(parent) = path.parent() {
                    fs::create_dir_all(parent)?;
                }
                let file =
                    File::create(&path).with_context(|| format!("creating {}", path.display()))?;
                Some(GzEncoder::new(
                    BufWriter::new(file),
                    flate2::Compression::fast(),
                ))
            }
            None => None,
        };
        let mut decoder = ObjectDecoder::new(reader, input.origin(), args.decode.options());
        let mut since_tick = 0u32;
        while let Some(item) = decoder.next() {
            match item {
                Decoded::Event(event) => {
                    let out: &mut dyn Write = match &mut file_out {
                        Some(f) => f,
                        None => &mut stdout,
                    };
                    if let Err(e) = write_line(out, &event) {
                        return finish_on_write_error(e);
                    }
                }
                Decoded::Quarantined(q) => match &mut quarantine {
                    Some(w) => write_line(w, &q).context("writing the quarantine file")?,
                    None => progress.suspend(|| {
                        eprintln!(
                            "tripline: quarantined {} record {}: {}",
                            input.display(),
                            q.source.record,
                            q.reason
                        )
                    }),
                },
            }
            since_tick += 1;
            if since_tick == 4096 {
                since_tick = 0;
                progress.set_position(total.bytes_in + decoder.summary().bytes_in);
            }
        }
        let summary = decoder.summary();
        if let Some(f) = file_out {
            f.finish()?.flush()?;
        }
        if let Some(error) = &summary.error {
            progress.suspend(|| eprintln!("tripline: {}: {error}", input.display()));
            io_failed |= matches!(error, ObjectError::Read { .. });
        }
        total.add(&summary);
        progress.set_position(total.bytes_in);
    }
    progress.finish_and_clear();
    if let Err(e) = stdout.flush() {
        return finish_on_write_error(e);
    }
    if let Some(mut q) = quarantine {
        q.flush().context("writing the quarantine file")?;
    }
    eprintln!("tripline parse: {total}");
    Ok(if io_failed {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

fn write_line<T: serde::Serialize>(out: &mut dyn Write, value: &T) -> io::Result<()> {
    serde_json::to_writer(&mut *out, value)?;
    out.write_all(b"\n")
}

/// A closed stdout (`tripline parse x | head`) is the reader saying "enough", not an error.
fn finish_on_write_error(e: io::Error) -> anyhow::Result<ExitCode> {
    if e.kind() == io::ErrorKind::BrokenPipe {
        return Ok(ExitCode::SUCCESS);
    }
    Err(anyhow::Error::new(e).context("writing output"))
}

/// Two inputs with the same relative name (`a/x.gz`, `b/x.gz` given as files) must not
/// overwrite each other's output.
fn unique(path: PathBuf, used: &mut HashSet<PathBuf>) -> PathBuf {
    let mut candidate = path.clone();
    let mut n = 2;
    while !used.insert(candidate.clone()) {
        let mut name = path.clone().into_os_string();
        name.push(format!(".{n}"));
        candidate = PathBuf::from(name);
        n += 1;
    }
    candidate
}

/// A byte-based progress bar, only when a person is watching stderr.
pub fn progress_bar(inputs: &[Input]) -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let total: u64 = inputs.iter().filter_map(Input::size).sum();
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {bytes}/{total_bytes} {bytes_per_sec} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}
