//! Input paths for `parse` and `scan` (files, directories walked recursively in a stable
//! order so output is reproducible, `-` for stdin, or `s3://bucket/prefix`: every object
//! under the prefix, in key order) and the [`Driver`] that decodes them.
//!
//! S3 objects are streamed: the decoder reads a blocking [`ResumingReader`] on this thread
//! while one tokio worker drives the SDK, and a read cut short resumes where it stopped.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tripline_aws::{Listed, ObjectStore, ResumingReader, S3Store};
use tripline_core::decode::{self, ObjectError, ObjectReason, Origin, Summary};
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
    /// An S3 object, as listed (key, ETag, size).
    S3 {
        bucket: String,
        object: Listed,
        /// The key after the argument's prefix (up to its last `/`), for naming outputs.
        relative: PathBuf,
    },
}

/// The S3 client and the runtime that drives it, made on the first `s3://` argument.
struct S3 {
    runtime: tokio::runtime::Runtime,
    store: S3Store,
}

static S3_CONTEXT: OnceLock<S3> = OnceLock::new();

/// Region used when none is configured: S3's own default, where a bucket in another
/// region answers with an error that names the right one.
const DEFAULT_REGION: &str = "us-east-1";

fn s3() -> anyhow::Result<&'static S3> {
    if let Some(s3) = S3_CONTEXT.get() {
        return Ok(s3);
    }
    // One worker: the SDK's requests and the body's read-ahead run there, the decoder on the
    // calling thread, which blocks on them (so it must never be a runtime thread).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("tripline-s3")
        .enable_all()
        .build()
        .context("starting the S3 client's runtime")?;
    let (config, defaulted) =
        runtime.block_on(tripline_aws::clients::load_config_or_region(DEFAULT_REGION));
    if defaulted {
        eprintln!(
            "tripline: no AWS region configured (AWS_REGION or a profile's region): \
             using {DEFAULT_REGION}"
        );
    }
    let store = S3Store::new(tripline_aws::clients::s3(&config));
    Ok(S3_CONTEXT.get_or_init(|| S3 { runtime, store }))
}

/// `s3://bucket/prefix` as (bucket, prefix); `None` for anything else.
fn s3_url(arg: &Path) -> Option<anyhow::Result<(String, String)>> {
    let rest = arg.to_str()?.strip_prefix("s3://")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Some(Err(anyhow::anyhow!(
            "{}: no bucket (s3://bucket/prefix)",
            arg.display()
        )));
    }
    Some(Ok((bucket.to_owned(), prefix.to_owned())))
}

/// The objects of one `s3://` argument, in key order: every object whose key starts with
/// `prefix`, or the one object whose key is `prefix` when there is one (`s3://b/raw/x.gz`).
/// Folder markers (keys ending in `/`, which consoles create) are not objects.
fn list_s3(bucket: &str, prefix: &str) -> anyhow::Result<Vec<Input>> {
    let s3 = s3()?;
    let mut listed = s3
        .runtime
        .block_on(s3.store.list(bucket, prefix, usize::MAX))
        .map_err(|e| listing_error(bucket, prefix, e))?;
    listed.retain(|o| !o.key.ends_with('/'));
    if !prefix.is_empty() && !prefix.ends_with('/') {
        if let Some(exact) = listed.iter().position(|o| o.key == prefix) {
            listed = vec![listed.swap_remove(exact)];
        }
    }
    if listed.is_empty() {
        bail!("s3://{bucket}/{prefix}: no objects under this prefix");
    }
    Ok(listed
        .into_iter()
        .map(|object| Input::S3 {
            bucket: bucket.to_owned(),
            relative: relative_key(prefix, &object.key),
            object,
        })
        .collect())
}

/// A failed listing as one line that says what to do about it where that is known.
fn listing_error(bucket: &str, prefix: &str, e: tripline_aws::Error) -> anyhow::Error {
    // The SDK's account of an empty credential chain lists every provider it tried;
    // what the user needs is the ways to give it some.
    if e.status().is_none() && e.to_string().contains("no credentials found") {
        return anyhow::anyhow!(
            "s3://{bucket}/{prefix}: no AWS credentials found (environment, profile, SSO, web \
             identity, container or instance role): set AWS_PROFILE, or AWS_ACCESS_KEY_ID and \
             AWS_SECRET_ACCESS_KEY"
        );
    }
    if e.kind() == "AccessDenied" {
        return anyhow::anyhow!("{e} (listing needs s3:ListBucket on arn:aws:s3:::{bucket})");
    }
    anyhow::Error::new(e)
}

/// `key` after `prefix` up to and including its last `/`, as a relative path that stays
/// inside an output directory: empty, `.` and `..` segments (which keys may hold) are left
/// out or renamed.
fn relative_key(prefix: &str, key: &str) -> PathBuf {
    let cut = prefix.rfind('/').map_or(0, |i| i + 1);
    let rest = key.get(cut..).unwrap_or(key);
    let mut path = PathBuf::new();
    for part in rest.split('/') {
        match part {
            "" | "." => {}
            ".." => path.push("__"),
            part => path.push(part),
        }
    }
    if path.as_os_str().is_empty() {
        path.push("object");
    }
    path
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
        if let Some(url) = s3_url(path) {
            let (bucket, prefix) = url?;
            inputs.extend(list_s3(&bucket, &prefix)?);
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
            // Nothing is requested until the first read, so a failure is the decoder's to
            // report against this object (and the Driver's to quarantine).
            Input::S3 { bucket, object, .. } => {
                let s3 = s3()?;
                Ok(Box::new(ResumingReader::new(
                    s3.store.clone(),
                    s3.runtime.handle().clone(),
                    bucket,
                    object.clone(),
                )))
            }
        }
    }

    pub fn origin(&self) -> Origin {
        match self {
            Input::S3 { bucket, object, .. } => Origin::s3(bucket, &object.key),
            _ => Origin::path(self.display()),
        }
    }

    pub fn display(&self) -> String {
        match self {
            Input::Stdin => "-".to_string(),
            Input::File { path, .. } => path.display().to_string(),
            Input::S3 { bucket, object, .. } => format!("s3://{bucket}/{}", object.key),
        }
    }

    /// Size on disk or as listed, for the progress bar (unknown for stdin).
    pub fn size(&self) -> Option<u64> {
        match self {
            Input::Stdin => None,
            Input::File { path, .. } => std::fs::metadata(path).ok().map(|m| m.len()),
            Input::S3 { object, .. } => Some(object.size),
        }
    }

    /// The object entry for an S3 object that could not be read to its end (the reader
    /// retried what could be retried): `None` for other inputs, whose read errors are
    /// reported and make the exit code 2 without an entry.
    fn read_failed(&self, summary: &Summary, message: &str) -> Option<Quarantined> {
        let Input::S3 { .. } = self else {
            return None;
        };
        Some(decode::read_failed(
            &self.origin(),
            summary.bytes_decoded,
            message,
        ))
    }

    /// A relative output name for this input with `suffix` appended.
    pub fn output_name(&self, suffix: &str) -> PathBuf {
        let base = match self {
            Input::Stdin => PathBuf::from("stdin"),
            Input::File { relative, .. } | Input::S3 { relative, .. } => relative.clone(),
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
    /// Inputs run so far, and of how many, for the progress bar.
    done: usize,
    count: usize,
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
            done: 0,
            count: inputs.len(),
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
        self.progress
            .set_prefix(format!("{}/{}", self.done, self.count));
        self.done += 1;
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
        // The tap also gets the entry of an object that could not be read to its end.
        let tap = sink.tap;
        let mut summary = parsed.map_err(RunError::Output)?;
        let read_failed = match &summary.error {
            Some(ObjectError::Read { message }) => input.read_failed(&summary, message),
            _ => None,
        };
        if let Some(error) = &summary.error {
            // An entry on stderr (no quarantine file) says it all already.
            if read_failed.is_none() || self.quarantine.is_some() {
                self.progress
                    .suspend(|| eprintln!("tripline: {}: {error}", input.display()));
            }
            self.io_failed |= matches!(error, ObjectError::Read { .. });
        }
        if let Some(entry) = read_failed {
            let mut sink = DriverSink {
                events: None,
                tap,
                line: Vec::new(),
                input,
                quarantine: &mut self.quarantine,
                quarantine_error: None,
                progress: &self.progress,
                before: self.total.bytes_in,
            };
            if sink.quarantined(&entry).is_err() {
                let e = sink.quarantine_error.take();
                return Err(RunError::Other(
                    e.unwrap_or_else(|| anyhow::anyhow!("writing the quarantine")),
                ));
            }
            summary.objects_quarantined += 1;
            summary
                .quarantined_as
                .get_or_insert(ObjectReason::ReadFailed);
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
        ProgressStyle::with_template(
            "{prefix} objects {bar:30} {bytes}/{total_bytes} {bytes_per_sec} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_urls_split_into_bucket_and_prefix() {
        let url = |s: &str| s3_url(Path::new(s)).map(|r| r.map_err(|e| e.to_string()));
        assert_eq!(
            url("s3://b/raw/2026/11/22/"),
            Some(Ok(("b".into(), "raw/2026/11/22/".into())))
        );
        assert_eq!(url("s3://b"), Some(Ok(("b".into(), "".into()))));
        assert_eq!(url("s3://b/"), Some(Ok(("b".into(), "".into()))));
        assert!(matches!(url("s3:///raw/"), Some(Err(e)) if e.contains("no bucket")));
        assert_eq!(url("raw/s3://b"), None);
        assert_eq!(url("events/osquery"), None);
    }

    #[test]
    fn output_names_are_keys_after_the_prefix_and_stay_inside_the_directory() {
        let rel = |p: &str, k: &str| relative_key(p, k).display().to_string();
        assert_eq!(rel("raw/2026/11/22/", "raw/2026/11/22/14/a.gz"), "14/a.gz");
        // A partial last segment is kept: it is part of each key's own name.
        assert_eq!(rel("raw/2026/11/2", "raw/2026/11/22/a.gz"), "22/a.gz");
        assert_eq!(rel("raw/x.gz", "raw/x.gz"), "x.gz");
        assert_eq!(rel("", "a/b.gz"), "a/b.gz");
        assert_eq!(rel("raw/", "raw/../../etc/passwd"), "__/__/etc/passwd");
        assert_eq!(rel("raw/", "raw//./x"), "x");
        assert_eq!(rel("", "/abs"), "abs");
        assert_eq!(rel("raw/", "raw/.."), "__");
    }
}
