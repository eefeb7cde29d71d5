//! The normalized event: one JSON object per osquery row or status line.
//!
//! Field names here are a public contract: Sigma rules address them by dotted path
//! (`columns.cmdline`, `decorations.hostname`), users query them in Athena and Splunk,
//! and the detect function reads them back from the normalized NDJSON. Add fields; never
//! rename them.

use crate::attack::TechniqueRef;
use crate::fields::Fields;
use serde::{Deserialize, Serialize};

/// Whether an event is a query result row or an osquery status (log) line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Result,
    Status,
}

/// What happened to a result row: osquery's differential `added`/`removed`, or a
/// `snapshot` row (from a snapshot record or a snapshot logged as events).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Added,
    Removed,
    Snapshot,
}

impl Action {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "added" => Some(Action::Added),
            "removed" => Some(Action::Removed),
            "snapshot" => Some(Action::Snapshot),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Added => "added",
            Action::Removed => "removed",
            Action::Snapshot => "snapshot",
        }
    }
}

/// Where an event or quarantined record came from, precise enough to find the bytes again.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// 1-based index of the record in the object.
    pub record: u64,
    /// 0-based index of the row within the record (always 0 for event and status records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row: Option<u64>,
}

/// Observables pulled out of the columns so responders (and rules) need not know each
/// table's column names. Each list is deduplicated and keeps first-seen order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Indicators {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ip: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub domain: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub md5: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sha1: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sha256: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub user: Vec<String>,
}

impl Indicators {
    pub fn is_empty(&self) -> bool {
        self.ip.is_empty()
            && self.domain.is_empty()
            && self.md5.is_empty()
            && self.sha1.is_empty()
            && self.sha256.is_empty()
            && self.user.is_empty()
    }
}

/// One normalized osquery row (or status line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub kind: Kind,
    /// The query name exactly as logged (`pack/Global/crontab`, `pack_osx-attacks_Keylogger`).
    pub name: Option<String>,
    /// The pack the query belongs to, when the name carries one we can resolve.
    pub pack: Option<String>,
    /// The query name without its pack prefix.
    pub query: Option<String>,
    pub host: Option<String>,
    pub action: Option<Action>,
    /// Column values exactly as logged (strings, numbers or null), sorted by name.
    pub columns: Fields,
    pub decorations: Fields,
    /// RFC 3339 UTC, from `unixTime`, else `calendarTime`.
    pub time: Option<String>,
    /// Seconds since the Unix epoch behind `time`, kept so consumers need not re-parse it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unix_time: Option<i64>,
    pub epoch: Option<i64>,
    pub counter: Option<i64>,
    pub numerics: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub source: SourceRef,
    /// Stable content hash: the same record and row always give the same id, so
    /// Firehose's at-least-once duplicates and replays can be recognized downstream.
    pub id: String,
    pub indicators: Indicators,
    /// ATT&CK techniques (`{id, name, tactics}`) from the query mapping; filled in by the
    /// detect stage.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attack: Vec<TechniqueRef>,
}

/// A record that could not be decoded or recognized, kept with the reason and its first bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quarantined {
    pub source: SourceRef,
    pub reason: String,
    /// The first [`crate::decode::QUARANTINE_RAW_BYTES`] bytes of the record, lossily UTF-8.
    pub raw: String,
    /// The record's full length in bytes (it may be longer than `raw`).
    pub bytes: u64,
}
