//! tripline-core: the pure heart of tripline (no AWS, no network: it works on the
//! `std::io::Read`/`Write` streams a caller hands it, and starts threads only when asked to,
//! through [`Parallelism`]).
//!
//! # The pipeline
//!
//! [`stage`] is the front door, and what every front end (the parse and detect functions,
//! `tripline parse` and `tripline scan`, the bench) calls:
//!
//! - [`stage::parse`]: one raw Firehose object (gzip or plain) into normalized [`Event`]s and
//!   [`Quarantined`] records, written out by an [`NdjsonOutput`](stage::NdjsonOutput) and, in
//!   one process, handed to a [`Detection`];
//! - [`stage::detect`]: one normalized object (what `NdjsonOutput` wrote) into a [`Detection`];
//! - [`Detection`]: a [`Detector`] over a stream of events; [`Detection::finish`] gives the
//!   [`DetectReport`], whose alerts are [`Alert`]s.
//!
//! [`StageOptions`] carries the [`Parallelism`] (inline, or inflating, compressing and
//! detecting each on a thread of its own) and the decoder's [`Options`]. The output is the same
//! either way.
//!
//! # Modules, in the order data meets them
//!
//! 1. [`fields`]: [`Fields`](fields::Fields), a row's columns or decorations as one sorted
//!    block of text.
//! 2. [`event`]: the normalized [`Event`] (the public contract the parse stage writes and every
//!    later stage reads) and the [`Quarantined`] record.
//! 3. [`query_name`], [`tables`] and [`indicators`]: a logged query name split into pack and
//!    query; which osquery tables a row came from, whatever its query was called
//!    ([`Resolver`]); IPs, domains, hashes and users pulled out of a row's columns.
//! 4. [`decode`]: a raw object into records, each into one event per row or a quarantined
//!    entry ([`ObjectDecoder`]: every event carries the object's [`Origin`], and the
//!    [`Summary`] counts them all).
//! 5. [`compress`] and [`normalized`]: normalized events written out as zstd or gzip NDJSON
//!    ([`Codec`]), and read back in for the detect stage.
//! 6. [`attack`] and [`mapping`]: the embedded MITRE ATT&CK catalog, and the query and
//!    table to technique mapping ([`Mapper`]) that annotates every event.
//! 7. [`config`], [`derive`](mod@derive) and [`ioc`]: the site's settings ([`Config`], from
//!    `tripline.toml`) and the `derived` fields worked out once per event from them; the
//!    site's indicator lists ([`IocSet`]), which set `derived.ioc` on a hit.
//! 8. [`rules`]: Sigma rules ([`RuleSet`]), loaded, validated and compiled once, then evaluated
//!    against every event by a [`Detector`] (annotate, derive, evaluate);
//!    [`rules::aggregate`] turns the matches into alerts by rule, dedup key and window.
//! 9. [`alert`]: the alert format alone ([`Alert`], its severity [`Level`]), as S3 holds it
//!    and notify reads it.
//! 10. [`layout`]: the data bucket's keys ([`Layout`]): raw, normalized, quarantine, alerts
//!     and the dedup and delivery markers.
//! 11. [`notify`]: what each destination (SNS, Slack, PagerDuty, Splunk HEC, a signed
//!     webhook) receives, as pure functions of an [`Alert`].
//! 12. [`stage`]: the two stages above, end to end, on a private worker thread primitive when
//!     [`Parallelism::Threads`] asks for it.
//!
//! Navigator layers of what fired and what the rules cover are the CLI's (`cli/src/layer.rs`).
//!
//! # Example
//!
//! One osquery result line, decoded and run through the built-in rules: a shell holding a
//! socket to a remote address is a reverse shell.
//!
//! ```
//! use tripline_core::stage::{self, Discard};
//! use tripline_core::{Config, Detection, Detector, Origin, RuleSet, StageOptions};
//!
//! let log = br#"{"name":"pack_tripline-common_shell_network_connections","hostIdentifier":"web-01","unixTime":1795356000,"action":"added","columns":{"pid":"28417","name":"bash","path":"/usr/bin/bash","cmdline":"bash -i","remote_address":"45.61.137.12","remote_port":"4444","local_port":"51522","protocol":"6"}}
//! "#;
//! let options = StageOptions::default();
//! let detector = Detector::new(RuleSet::builtin()?, None, Config::default());
//! let mut detection = Detection::new(detector, options.parallelism);
//! let summary = stage::parse(&log[..], Origin::path("osquery.log"), &options, &mut Discard, Some(&mut detection))?;
//! assert_eq!((summary.records, summary.events), (1, 1));
//!
//! let report = detection.finish();
//! let alert = report.alerts.iter().find(|a| a.rule.name == "osquery_reverse_shell").unwrap();
//! assert_eq!((alert.count, alert.hosts.as_slice()), (1, &["web-01".to_string()][..]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

pub mod alert;
pub mod attack;
pub mod compress;
pub mod config;
pub mod decode;
pub mod derive;
pub mod event;
pub mod fields;
pub mod indicators;
pub mod ioc;
pub mod layout;
pub mod mapping;
pub mod normalized;
pub mod notify;
pub mod platform;
pub mod query_name;
pub mod rfc3339;
pub mod rules;
pub mod site;
pub mod stage;
pub mod tables;
mod worker;

pub use worker::Parallelism;

pub use alert::{Alert, Level};
pub use compress::Codec;
pub use config::Config;
pub use decode::{ObjectDecoder, Options, Origin, Summary};
pub use event::{Event, Quarantined};
pub use ioc::IocSet;
pub use layout::Layout;
pub use mapping::Mapper;
pub use rules::{DetectReport, Detector, RuleSet};
pub use stage::{Detection, StageOptions};
pub use tables::Resolver;
