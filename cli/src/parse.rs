//! `tripline parse`: osquery logs in, normalized events out (NDJSON).

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use std::sync::Arc;
use tripline_core::compress::{Codec, Output};

use tripline_core::config::Config;
use tripline_core::decode::{Limits, Options};
use tripline_core::stage::StageOptions;
use tripline_core::tables::{QueryDefs, Resolver};
use tripline_core::{Mapper, Parallelism};

use crate::inputs::{self, Driver, RunError};
use crate::rules_cmd::load_config;

#[derive(clap::Args)]
pub struct ParseArgs {
    /// Files, directories (recursive), - for stdin, or s3://bucket/prefix (every object under
    /// it, in key order). Gzip is detected by content.
    #[arg(value_name = "PATH|-", required = true)]
    pub paths: Vec<PathBuf>,
    /// Write one compressed NDJSON file per input here (`<input>.ndjson.zst`, or `.gz` with
    /// `--compression gzip`; plus quarantine.ndjson) instead of stdout.
    #[arg(long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// How `--output` files are compressed: zstd or gzip (the parse Lambda's
    /// TRIPLINE_OUTPUT_COMPRESSION).
    #[arg(long, value_name = "zstd|gzip", default_value_t = Codec::default())]
    pub compression: Codec,
    /// Write quarantine entries (NDJSON, with reasons: records', and an object's own when it
    /// could not be read as osquery) to this file.
    #[arg(long, value_name = "FILE")]
    pub quarantine: Option<PathBuf>,
    /// Site settings (tripline.toml): its `queries` and `[query_sql]` are read.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub site: crate::site::SiteArg,
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
    /// Your fleet's query definitions (osquery config or pack JSON, Fleet YAML), so rows
    /// are known by the tables their SQL reads; repeatable. Added to tripline.toml's.
    #[arg(long = "queries", value_name = "FILE")]
    pub queries: Vec<PathBuf>,
}

impl DecodeArgs {
    /// The decoder's settings, with threads beside the decoding where there are cores.
    pub fn options(&self, tables: Arc<Resolver>) -> StageOptions {
        StageOptions {
            parallelism: Parallelism::available(),
            decode: Options {
                limits: Limits {
                    max_record_bytes: self.max_record_bytes,
                    max_decompressed_bytes: self.max_decompressed_bytes,
                },
                extra_packs: self.packs.clone(),
                tables,
            },
            mapper: None,
        }
    }
}

/// The query definitions of `config` and then of each `--queries` file, with every warning
/// (SQL the parser could not read, pack files not found) on stderr.
pub fn load_resolver(config: &Config, files: &[PathBuf]) -> anyhow::Result<Arc<Resolver>> {
    let mut defs = config.query_defs()?;
    for file in files {
        defs.extend(QueryDefs::load(file)?);
    }
    for warning in defs.warnings() {
        eprintln!("tripline: warning: {warning}");
    }
    Ok(Arc::new(Resolver::with_queries(defs)))
}

pub fn run(mut args: ParseArgs) -> anyhow::Result<ExitCode> {
    args.site.clone().expand(crate::site::Parts {
        config: Some(&mut args.config),
        rules: None,
        filters: None,
        queries: Some(&mut args.decode.queries),
        iocs: None,
    })?;
    let config = load_config(args.config.as_deref())?;
    let tables = load_resolver(&config, &args.decode.queries)?;
    let inputs = inputs::collect(&args.paths)?;
    if let Some(dir) = &args.output {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let quarantine = args
        .quarantine
        .clone()
        .or_else(|| args.output.as_ref().map(|d| d.join("quarantine.ndjson")));
    let mut options = args.decode.options(tables);
    // Written events name their techniques, as the parse function's do.
    options.mapper = Some(Arc::new(
        Mapper::builtin().context("loading the built-in ATT&CK mappings")?,
    ));
    let parallelism = options.parallelism;
    let mut driver = Driver::new(&inputs, options, quarantine.as_deref())?;
    let stdout = io::stdout();
    let mut stdout = BufWriter::with_capacity(256 << 10, stdout.lock());
    let mut used_names = HashSet::new();

    for input in &inputs {
        let mut file_out = match &args.output {
            Some(dir) => {
                let suffix = format!(".ndjson{}", args.compression.extension());
                let path = unique(dir.join(input.output_name(&suffix)), &mut used_names);
                if let Some(parent) = path.parent() {
                    fs::create_dir_all(parent)?;
                }
                let file =
                    File::create(&path).with_context(|| format!("creating {}", path.display()))?;
                Some(Output::new(
                    BufWriter::new(file),
                    args.compression,
                    parallelism,
                )?)
            }
            None => None,
        };
        let out: &mut dyn Write = match &mut file_out {
            Some(f) => f,
            None => &mut stdout,
        };
        let ran = driver.run(input, Some(out), None);
        match ran {
            Err(RunError::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => {
                return Ok(ExitCode::SUCCESS)
            }
            other => other?,
        }
        if let Some(f) = file_out {
            f.finish()?.flush()?;
        }
    }
    if let Err(e) = stdout.flush() {
        if e.kind() == io::ErrorKind::BrokenPipe {
            return Ok(ExitCode::SUCCESS);
        }
        return Err(anyhow::Error::new(e).context("writing output"));
    }
    let (total, io_failed) = driver.finish()?;
    eprintln!("tripline parse: {total}");
    Ok(if io_failed {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
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
