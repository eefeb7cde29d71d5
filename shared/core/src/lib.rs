//! tripline-core: the pure heart of tripline (no AWS, no network: it works on the
//! `std::io::Read`/`Write` streams a caller hands it, and starts threads only to inflate
//! or deflate those streams beside the work).
//!
//! Data flows through these modules in order:
//!
//! 1. [`decode`]: a Firehose object (gzip or plain bytes) becomes a stream of osquery records,
//!    each record becomes one normalized [`event::Event`] per row, or a [`event::Quarantined`] entry.
//! 2. [`attack`] and [`mapping`]: the embedded MITRE ATT&CK catalog, and the query-name to
//!    technique mapping that annotates every event.
//! 3. [`rules`]: Sigma rules, compiled once and evaluated against every event, with
//!    [`derive`](mod@derive)d fields and [`config`] settings; matches become [`alert`]s.
//! 4. Navigator layers of what fired and what the rules cover are the CLI's (`cli/src/layer.rs`).
//!
//! Between stages, [`compress`] writes normalized events out (zstd or gzip, on a second
//! thread or inline) and [`normalized`] reads them back in.

pub mod alert;
pub mod attack;
pub mod compress;
pub mod config;
pub mod decode;
pub mod derive;
pub mod event;
pub mod fields;
pub mod indicators;
pub mod layout;
pub mod mapping;
pub mod normalized;
pub mod notify;
pub mod query_name;
pub mod rfc3339;
pub mod rules;
pub mod stage;
pub mod tables;
mod worker;

pub use worker::Parallelism;

pub use alert::Alert;
pub use config::Config;
pub use decode::{ObjectDecoder, Options, Origin, Summary};
pub use event::{Event, Quarantined};
pub use mapping::Mapper;
pub use rules::{DetectReport, Detector, RuleSet};
pub use stage::{Detection, StageOptions};
