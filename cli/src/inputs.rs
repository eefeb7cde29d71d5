//! Input paths for `parse` and `scan`: files, directories (walked recursively, in a
//! stable order so output is reproducible), or `-` for stdin.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use tripline_core::decode::Origin;

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
