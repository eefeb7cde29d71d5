//! Input paths for `parse` and `scan` (files, directories walked recursively in a stable
//! order so output is reproducible, or `-` for stdin) and the [`Driver`] that decodes them.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tripline_core::decode::{ObjectError, Origin, Summary};
use tripline_core::event::{Event, Quarantined};
use tripline_core::stage::{self, Detection, Sink, StageOptions};

/// One object to decode.
#[derive(Debug, Clone)]
pub enum Input {
    Stdin,
    File {
        path: PathBuf,
        /// Path relative to the argument it came from, for naming outputs.
        relative: PathBuf,
    },
}

/// Expands the command line's paths. A missing path is an error before anything runs,
/// so a typo never produces a partial result that looks complete.
pub fn collect(paths: &[PathBuf]) -> anyhow::Result<Vec<Input>> {
    if paths.is_empty() {
        bail!("no input: give files, directories, or - for stdin");
    }
    let mut inputs = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            inputs.push(Input::Stdin);
            continue;
        }
        let meta = std::fs::metadata(path).with_context(|| format!("{}", path.display()))?;
        if meta.is_dir() {
            let root_name = path.file_name().map(PathBuf::from).unwrap_or_default();
            let walker = walkdir::WalkDir::new(path)
                .follow_links(true)
                .sort_by_file_name();
            for entry in walker {
                let entry = entry.with_context(|| format!("walking {}", path.display()))?;
                if !entry.file_type().is_file() || is_hidden(entry.path()) {
                    continue;
                }
                let rel = entry.path().strip_prefix(path).unwrap_or(entry.path());
                inputs.push(Input::File {
                    path: entry.path().to_path_buf(),
                    relative: root_name.join(rel),
                });
            }
        } else {
            let relative = path
                .file_name()
                .map(PathBuf::from)
                .unwrap_or_else(|| path.clone());
            inputs.push(Input::File {
                path: path.clone(),
                relative,
            });
        }
    }
    Ok(inputs)
}

fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
}

impl Input {
    pub fn open(&self) -> anyhow::Result<Box<dyn Read + Send>> {
        match self {
            Input::Stdin => Ok(Box::new(io::stdin())),
            Input::File { path, .. } => {
                let file = File::open(path).with_context(|| format!("{}", path.display()))?;
                Ok(Box::new(file))
            }
        }
    }

    pub fn origin(&self) -> Origin {
        Origin::path(self.display())
    }

    pub fn display(&self) -> String {
        match self {
            Input::Stdin => "-".to_string(),
            Input::File { path, .. } => path.display().to_string(),
        }
    }

    /// Size on disk, for the progress bar (unknown for stdin).
    pub fn size(&self) -> Option<u64> {
        match self {
            Input::Stdin => None,
            Input::File { path, .. } => std::fs::metadata(path).ok().map(|m| m.len()),
        }
    }

    /// A relative output name for this input with `suffix` appended.
    pub fn output_name(&self, suffix: &str) -> PathBuf {
        let base = match self {
            Input::Stdin => PathBuf::from("stdin"),
            Input::File { relative, .. } => relative.clone(),
        };
        let mut name = base.into_os_string();
        name.push(suffix);
        PathBuf::from(name)
    }
}

/// Decodes inputs one after another with the shared behaviour of `parse` and `scan`: a
/// progress bar, one-line errors for unreadable inputs and damaged objects, quarantine
/// entries (records', and an object's own) written to a file or reported on stderr, and the
/// running totals.
pub struct Driver {
    options: StageOptions,
    progress: ProgressBar,
    quarantine: Option<(PathBuf, BufWriter<File>)>,
    /// Totals over every input decoded so far.
    pub total: Summary,
    /// Whether an input could not be read (exit code 2).
    pub io_failed: bool,
}

impl Driver {
    pub fn new(
        inputs: &[Input],
        options: StageOptions,
        quarantine: Option<&Path>,
    ) -> anyhow::Result<Self> {
        let quarantine = match quarantine {
            Some(p) => {
                let file = File::create(p).with_context(|| format!("creating {}", p.display()))?;
                Some((p.to_path_buf(), BufWriter::new(file)))
            }
            None => None,
        };
        Ok(Driver {
            options,
            progress: progress_bar(inputs),
            quarantine,
            total: Summary::default(),
            io_failed: false,
        })
    }

    /// Decodes one input ([`stage::parse`]): each event written as an NDJSON line to
    /// `events` (if given) and detected on by `detection` (if given). An unreadable input
    /// is reported and skipped (the run goes on); an error writing `events` stops the run.
    pub fn run(
        &mut self,
        input: &Input,
        events: Option<&mut dyn Write>,
        detection: Option<&mut Detection>,
    ) -> Result<(), RunError> {
        self.run_tapped(input, events, None, detection)
    }

    /// [`Driver::run`], and each event and quarantine entry also handed to `tap` (an error
    /// from it stops the run like one writing `events`).
    pub fn run_tapped(
        &mut self,
        input: &Input,
        events: Option<&mut dyn Write>,
        tap: Option<&mut dyn Sink>,
        detection: Option<&mut Detection>,
    ) -> Result<(), RunError> {
        self.progress.set_message(input.display());
        let reader = match input.open() {
            Ok(r) => r,
            Err(e) => {
                self.progress.suspend(|| eprintln!("tripline: {e:#}"));
                self.io_failed = true;
                return Ok(());
            }
        };
        let mut sink = DriverSink {
            events,
            tap,
            line: Vec::new(),
            input,
            quarantine: &mut self.quarantine,
            quarantine_error: None,
            progress: &self.progress,
            before: self.total.bytes_in,
        };
        let parsed = stage::parse(reader, input.origin(), &self.options, &mut sink, detection);
        if let Some(e) = sink.quarantine_error {
            return Err(RunError::Other(e));
        }
        let summary = parsed.map_err(RunError::Output)?;
        if let Some(error) = &summary.error {
            self.progress
                .suspend(|| eprintln!("tripline: {}: {error}", input.display()));
            self.io_failed |= matches!(error, ObjectError::Read { .. });
        }
        self.total.add(&summary);
        self.progress.set_position(self.total.bytes_in);
        Ok(())
    }

    /// Clears the progress bar and flushes the quarantine file.
    pub fn finish(mut self) -> anyhow::Result<(Summary, bool)> {
        self.progress.finish_and_clear();
        if let Some((path, w)) = &mut self.quarantine {
            w.flush()
                .with_context(|| format!("writing {}", path.display()))?;
        }
        Ok((self.total, self.io_failed))
    }
}

/// Where one input's events and quarantined records go.
struct DriverSink<'a, 'w, 't> {
    events: Option<&'w mut dyn Write>,
    tap: Option<&'t mut dyn Sink>,
    line: Vec<u8>,
    input: &'a Input,
    quarantine: &'a mut Option<(PathBuf, BufWriter<File>)>,
    /// Writing the quarantine file failed: not the command's output, so told apart.
    quarantine_error: Option<anyhow::Error>,
    progress: &'a ProgressBar,
    /// Bytes read from the inputs before this one.
    before: u64,
}

impl Sink for DriverSink<'_, '_, '_> {
    fn event(&mut self, event: &Event) -> io::Result<()> {
        if let Some(tap) = &mut self.tap {
            tap.event(event)?;
        }
        match &mut self.events {
            Some(out) => event.write_line(out, &mut self.line),
            None => Ok(()),
        }
    }

    fn quarantined(&mut self, q: &Quarantined) -> io::Result<()> {
        if let Some(tap) = &mut self.tap {
            tap.quarantined(q)?;
        }
        match &mut self.quarantine {
            Some((path, w)) => {
                let mut write = || -> io::Result<()> {
                    serde_json::to_writer(&mut *w, q)?;
                    w.write_all(b"\n")
                };
                write().map_err(|e| {
                    let message = e.to_string();
                    self.quarantine_error =
                        Some(anyhow::Error::new(e).context(format!("writing {}", path.display())));
                    io::Error::other(message)
                })
            }
            None => {
                self.progress.suspend(|| match &q.object {
                    Some(object) => eprintln!(
                        "tripline: quarantined {} as a whole: {}: {}",
                        self.input.display(),
                        q.reason,
                        object.message
                    ),
                    None => eprintln!(
                        "tripline: quarantined {} record {}: {}",
                        self.input.display(),
                        q.source.record,
                        q.reason
                    ),
                });
                Ok(())
            }
        }
    }

    fn progress(&mut self, bytes_in: u64) {
        self.progress.set_position(self.before + bytes_in);
    }
}

/// Why [`Driver::run`] stopped.
#[derive(Debug)]
pub enum RunError {
    /// Writing the command's own output failed (a closed stdout is the reader saying
    /// "enough", so callers treat `BrokenPipe` as success).
    Output(io::Error),
    Other(anyhow::Error),
}

impl From<RunError> for anyhow::Error {
    fn from(e: RunError) -> Self {
        match e {
            RunError::Output(e) => anyhow::Error::new(e).context("writing output"),
            RunError::Other(e) => e,
        }
    }
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
