//! tripline-bench: the benchmark harness (see BENCHMARKS.md).
//!
//! - [`gen`]: deterministic Firehose objects in osquery's and Fleet's shapes;
//! - [`iocs`]: generated indicator lists in the three formats, loaded and looked up;
//! - [`pipeline`]: the parse + detect work over one object through the product's library
//!   calls, the gunzip floor, and peak-RSS / start-up helpers.
//!
//! The binary (`src/main.rs`) runs each measurement in a fresh child process, repeats it and
//! keeps the best time, and prints ours against the baselines as ratios.

pub mod gen;
pub mod iocs;
pub mod pipeline;
