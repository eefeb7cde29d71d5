//! Loading: rule sets from the embedded pack or a directory of YAML files, and why a load
//! fails ([`LoadError`]).

use std::path::{Path, PathBuf};

use super::{builtin, Problem, RuleSet};

/// Why a rule set could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A rule file or directory could not be read. The I/O error is in the message, not
    /// chained, so anyhow's `{:#}` does not repeat it.
    #[error("cannot read {path}: {error}")]
    Io {
        /// The file or directory that could not be read.
        path: String,
        /// Why not.
        error: std::io::Error,
    },
    /// No `*.yml` or `*.yaml` rule in the named directory (or in the built-in pack).
    #[error("no Sigma rules (*.yml, *.yaml) found in {0}")]
    Empty(String),
    /// The files were read but some rules (or filters) are invalid: every problem, from
    /// every file.
    #[error("{} problem(s):\n  {}", .0.len(), join_problems(.0))]
    Invalid(Vec<Problem>),
}

impl LoadError {
    /// Every problem, for `rules check` to print one per line.
    pub fn problems(&self) -> Vec<Problem> {
        match self {
            LoadError::Invalid(p) => p.clone(),
            other => vec![Problem {
                file: String::new(),
                line: None,
                rule: None,
                field: None,
                message: other.to_string(),
            }],
        }
    }
}

fn join_problems(p: &[Problem]) -> String {
    p.iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join("\n  ")
}

impl RuleSet {
    /// The rules shipped in the repository's `rules/sigma/`, embedded in the binary.
    pub fn builtin() -> Result<RuleSet, LoadError> {
        if builtin::SIGMA_RULES.is_empty() {
            return Err(LoadError::Empty("the built-in rule pack".into()));
        }
        Self::from_sources(builtin::SIGMA_RULES.iter().copied())
    }

    /// Loads every `*.yml`/`*.yaml` file under `dir` (recursively, in path order).
    pub fn load_dir(dir: impl AsRef<Path>) -> Result<RuleSet, LoadError> {
        let dir = dir.as_ref();
        let sources = read_tree(dir, SkipTests::No)?;
        if sources.is_empty() {
            return Err(LoadError::Empty(dir.display().to_string()));
        }
        Self::from_sources(sources.iter().map(|(n, t)| (n.as_str(), t.as_str())))
    }
}

/// Whether [`read_tree`] leaves out the `tests` directories under the root: site rule and
/// filter directories keep their tests in `tests/`, while a `--rules` directory is read
/// whole, as it always was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SkipTests {
    Yes,
    No,
}

/// `(path, text)` of every non-hidden `*.yml`/`*.yaml` file under `dir`, recursively, in
/// path order; with [`SkipTests::Yes`] none under a directory named `tests` (below `dir`:
/// the directories above it do not count).
pub(crate) fn read_tree(dir: &Path, skip: SkipTests) -> Result<Vec<(String, String)>, LoadError> {
    let files = yaml_files(dir, skip)?;
    let mut sources = Vec::with_capacity(files.len());
    for path in files {
        let text = std::fs::read_to_string(&path).map_err(|error| LoadError::Io {
            path: path.display().to_string(),
            error,
        })?;
        sources.push((path.display().to_string(), text));
    }
    Ok(sources)
}

fn yaml_files(dir: &Path, skip: SkipTests) -> Result<Vec<PathBuf>, LoadError> {
    fn walk(
        dir: &Path,
        out: &mut Vec<PathBuf>,
        depth: usize,
        skip: SkipTests,
    ) -> Result<(), LoadError> {
        let io = |error| LoadError::Io {
            path: dir.display().to_string(),
            error,
        };
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            let name = path.file_name().and_then(|n| n.to_str());
            if name.is_none_or(|n| n.starts_with('.')) {
                continue;
            }
            if path.is_dir() {
                // Bounded so a symlink loop cannot recurse forever.
                if depth < 16 && !(skip == SkipTests::Yes && name == Some("tests")) {
                    walk(&path, out, depth + 1, skip)?;
                }
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yml" | "yaml")
            ) {
                out.push(path);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, &mut out, 0, skip)?;
    out.sort();
    Ok(out)
}
