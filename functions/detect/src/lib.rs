//! The detect stage: each normalized object named by an S3 event is streamed through the
//! [`Detector`] (ATT&CK mapping, derived fields, every Sigma rule, aggregation), and each
//! resulting alert is written once to `<alerts prefix>YYYY/MM/DD/<alert id>.json`.
//!
//! # Dedup across invocations
//!
//! Each alert is written once, whatever the retries, replays, concurrent copies of one event
//! and later objects in the same window: [`dedup::write_once`] creates the alert object only
//! if none exists at its key.
//!
//! # Counts and thresholds across objects
//!
//! One invocation aggregates the events of the objects it was given (one Firehose object,
//! normally: up to 5 MiB or 300 s of logs). So an alert's `count`, `hosts` and samples describe
//! the matches in that object, and a rule's `threshold` must be reached *within one object*:
//! matches spread over several objects are not added up. The first object that produces an
//! alert for a window defines it; later objects in the same window are counted as
//! `deduplicated` and do not change it.
//!
//! # Events without a time
//!
//! An event with no usable time of its own is placed in its dedup window by its object's
//! time ([`object_time`]): the hour in the key (Firehose's `YYYY/MM/DD/HH/`, kept under the
//! normalized prefix), else when S3 says the object was written, else the invocation's start.
//! The key comes first because it is the same in every invocation that reads the object,
//! replays included, so such an alert gets the same id each time.

use std::sync::{Arc, RwLock};

use anyhow::Context;
use serde::Serialize;
use serde_json::Value;
use time::Date;
use tripline_aws::site::SiteSource;
use tripline_aws::{s3event, ObjectRef, ObjectStore, S3Store, Settings, Unreadable};
use tripline_core::config::Config;
use tripline_core::ioc::IocSet;
use tripline_core::layout::key_hour;
use tripline_core::mapping::Mapper;
use tripline_core::rules::filters::{today_utc, FilterSet};
use tripline_core::rules::{DetectStats, Detector, RuleSet};
use tripline_core::site::{Site, SiteFiles};
use tripline_core::stage::{self, Detection};
use tripline_core::tables::Resolver;
use tripline_core::Parallelism;

pub mod dedup;

use dedup::Outcome;

/// Built once per container: the rules compile once, not per invocation, and again only
/// when the site directory changes. Generic over where the objects are: [`S3Store`] in the
/// function, `tripline_aws::MemStore` in tests.
pub struct Detect<S = S3Store> {
    pub store: S,
    pub settings: Settings,
    /// Whether decompressing and detecting run on threads of their own: only worth it with
    /// more than one vCPU ([`tripline_aws::lambda::parallelism`]). [`Detect::new`] turns
    /// them on.
    pub parallelism: Parallelism,
    /// The site directory under the site prefix of `TRIPLINE_BUCKET`; `None` without one.
    site: Option<SiteSource<S>>,
    /// What detection runs with now: replaced whole when a changed site compiles.
    compiled: RwLock<Arc<Compiled>>,
    /// Today's date (UTC), by which filters' expiry is judged.
    today: Arc<dyn Fn() -> Date + Send + Sync>,
}

/// What detection runs with: the built-in pack and mappings with the site's settings and
/// query definitions, compiled once per version of the site.
pub struct Compiled {
    pub rules: Arc<RuleSet>,
    pub mapper: Arc<Mapper>,
    pub config: Arc<Config>,
    /// Works out events' tables with the site's query definitions, which take precedence
    /// over what the parse stage found.
    pub tables: Arc<Resolver>,
    /// The site's suppressions.
    pub filters: Arc<FilterSet>,
    /// The site's indicator lists.
    pub iocs: Arc<IocSet>,
}

impl Compiled {
    /// The built-in pack with `site`; its `tripline.toml`, when it has one, else the
    /// `fallback` settings (`TRIPLINE_CONFIG`).
    pub fn new(
        site: &Site,
        fallback: Option<&Config>,
        mapper: Arc<Mapper>,
    ) -> anyhow::Result<Self> {
        for warning in &site.warnings {
            tracing::warn!(%warning, "site");
        }
        let config = match fallback {
            Some(c) if !site.has_config_file => c.clone(),
            _ => site.config.clone(),
        };
        let mut queries = site.queries.clone();
        if let Some(c) = fallback.filter(|_| !site.has_config_file) {
            c.define_inline_queries(&mut queries);
        }
        Ok(Compiled {
            rules: Arc::clone(&site.rules),
            mapper,
            config: Arc::new(config),
            tables: Arc::new(Resolver::with_queries(queries)),
            filters: Arc::clone(&site.filters),
            iocs: Arc::clone(&site.iocs),
        })
    }
}

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub objects: Vec<String>,
    pub ignored: Vec<String>,
    /// Objects that can never be read (gone, access denied): logged, counted, not retried.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<Unreadable>,
    /// Lines of a normalized object that were not events (should never happen: we wrote them).
    pub bad_lines: u64,
    pub stats: DetectStats,
    /// Alerts written now.
    pub written: Vec<String>,
    /// Alerts another invocation had already written (earlier, or at the same time).
    pub deduplicated: Vec<String>,
    /// Why the site directory in the bucket could not be read or compiled; detection ran
    /// with the last site that compiled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub site_error: Option<String>,
}

impl<S: ObjectStore> Detect<S> {
    /// Loads the built-in rules and mappings and `TRIPLINE_CONFIG`, with threads (the
    /// function sets [`Detect::parallelism`] from its memory size). The site directory in
    /// the bucket is read on the first invocation.
    pub fn new(store: S, settings: Settings) -> anyhow::Result<Self> {
        let fallback = Self::fallback(&settings)?;
        let mapper = Arc::new(Mapper::builtin().context("built-in mappings")?);
        let compiled = Compiled::new(&Site::load(&SiteFiles::new())?, fallback.as_ref(), mapper)?;
        let site = settings
            .bucket
            .clone()
            .map(|bucket| SiteSource::new(store.clone(), bucket, settings.site_prefix.clone()));
        Ok(Detect {
            store,
            settings,
            parallelism: Parallelism::Threads,
            site,
            compiled: RwLock::new(Arc::new(compiled)),
            today: Arc::new(today_utc),
        })
    }

    /// `TRIPLINE_CONFIG`, the settings for a site without a `tripline.toml`.
    fn fallback(settings: &Settings) -> anyhow::Result<Option<Config>> {
        settings
            .config_toml
            .as_deref()
            .map(|text| Config::from_toml_str(text).context("TRIPLINE_CONFIG"))
            .transpose()
    }

    /// This detector's parallelism.
    pub fn with_parallelism(mut self, parallelism: Parallelism) -> Self {
        self.parallelism = parallelism;
        self
    }

    /// Looks at the site directory at most once per `every` (a minute by default).
    pub fn with_site_every(mut self, every: std::time::Duration) -> Self {
        if let Some(site) = &mut self.site {
            site.every = every;
        }
        self
    }

    /// This detector with another calendar: `today` gives the date filters' expiry is
    /// judged by (the UTC date by default).
    pub fn with_today(mut self, today: impl Fn() -> Date + Send + Sync + 'static) -> Self {
        self.today = Arc::new(today);
        self
    }

    /// What detection runs with now.
    pub fn compiled(&self) -> Arc<Compiled> {
        self.compiled
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Looks for a changed site (at most once per [`SiteSource::every`]) and compiles it;
    /// a site that cannot be read or does not compile leaves the last one in place and is
    /// reported in `report.site_error`.
    async fn refresh(&self, report: &mut Report) {
        let Some(source) = &self.site else { return };
        // A filter past its last day must stop applying though no file changed: the site is
        // read and compiled again, by the new date.
        let today = (self.today)();
        if self
            .compiled()
            .filters
            .valid_until()
            .is_some_and(|last| today > last)
        {
            source.forget();
        }
        let outcome = match source.poll().await {
            Ok(None) => return,
            Ok(Some(files)) => self.compile(&files),
            Err(e) => Err(anyhow::Error::new(e).context("reading the site directory")),
        };
        match outcome {
            Ok(compiled) => {
                tracing::info!("site directory loaded");
                *self.compiled.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(compiled);
            }
            Err(e) => {
                let error = format!("{e:#}");
                tracing::error!(%error, "site directory not loaded; detecting with the last one that loaded");
                report.site_error = Some(error);
            }
        }
    }

    fn compile(&self, files: &SiteFiles) -> anyhow::Result<Compiled> {
        let site = Site::load_on(files, (self.today)())?;
        let fallback = Self::fallback(&self.settings)?;
        Compiled::new(&site, fallback.as_ref(), self.compiled().mapper.clone())
    }

    pub async fn handle(&self, event: &Value) -> anyhow::Result<Report> {
        let mut report = Report::default();
        self.refresh(&mut report).await;
        let compiled = self.compiled();
        let detector = Detector::new(
            compiled.rules.clone(),
            Some(compiled.mapper.clone()),
            compiled.config.clone(),
        )
        .with_tables(compiled.tables.clone())
        .with_filters(compiled.filters.clone())
        .with_iocs(compiled.iocs.clone());
        // Its object time until one is set: now.
        let invoked = detector.object_time();
        let mut detector = Detection::new(detector, self.parallelism);
        let mut output_bucket = None;
        let layout = self.settings.layout();
        for object in s3event::parse_value(event)? {
            if !object.is_created() || !layout.is_normalized(&object.key) {
                tracing::info!(bucket = %object.bucket, key = %object.key,
                    "ignoring: not a normalized object created under the normalized prefix");
                report.ignored.push(object.key);
                continue;
            }
            detector.set_object_time(object_time(&object).unwrap_or(invoked));
            let reader = match tripline_aws::open(&self.store, &object.bucket, &object.key).await? {
                Ok(reader) => reader,
                Err(unreadable) => {
                    report.unreadable.push(unreadable);
                    continue;
                }
            };
            let (d, bad) = self.read(&object, reader, detector).await?;
            detector = d;
            report.bad_lines += bad;
            output_bucket
                .get_or_insert_with(|| self.settings.output_bucket(&object.bucket).to_owned());
            report.objects.push(object.key);
        }
        // Waits for the detector thread's last batch, if it has one: milliseconds.
        let result = detector.finish();
        report.stats = result.stats;
        if let Some(bucket) = output_bucket {
            for alert in &result.alerts {
                let (outcome, key) =
                    dedup::write_once(&self.store, &layout, &bucket, alert).await?;
                match outcome {
                    Outcome::Written => report.written.push(key),
                    Outcome::Deduplicated => report.deduplicated.push(key),
                }
            }
        }
        Ok(report)
    }

    /// Streams one compressed NDJSON object through the detection on a blocking thread
    /// (decompressing there too, or on another with [`tripline_core::Parallelism::Threads`]).
    async fn read(
        &self,
        object: &ObjectRef,
        reader: S::Reader,
        mut detection: Detection,
    ) -> anyhow::Result<(Detection, u64)> {
        let name = format!("s3://{}/{}", object.bucket, object.key);
        let parallelism = self.parallelism;
        tokio::task::spawn_blocking(move || -> anyhow::Result<(Detection, u64)> {
            let count = stage::detect(reader, parallelism, &mut detection, |bad| {
                tracing::warn!(object = %name, line = bad.line, error = %bad.error, "not a normalized event");
            })
            .with_context(|| format!("reading {name}"))?;
            Ok((detection, count.bad_lines))
        })
        .await
        .context("detect worker panicked")?
    }
}

/// The time that places this object's events that have no usable time of their own: the
/// hour its key is dated by ([`key_hour`]), else the S3 event's time. `None` when neither
/// is known (the caller then uses the invocation's start).
pub fn object_time(object: &ObjectRef) -> Option<i64> {
    key_hour(&object.key).or(object.event_time)
}

/// The EMF metrics line for an invocation.
pub fn metrics(report: &Report, duration_ms: f64) -> String {
    use tripline_aws::metrics::{emit, Unit};
    let s = &report.stats;
    emit(
        "tripline",
        "detect",
        &[
            ("Objects", report.objects.len() as f64, Unit::Count),
            ("Events", s.events as f64, Unit::Count),
            ("Matches", s.matches as f64, Unit::Count),
            // Matches a site filter suppressed (by filter in the report's stats).
            (
                "MatchesSuppressed",
                s.suppressed_by_filter.values().sum::<u64>() as f64,
                Unit::Count,
            ),
            ("IocHits", s.ioc_hits as f64, Unit::Count),
            // Every alert object this invocation created: each is one notify invocation.
            ("Alerts", report.written.len() as f64, Unit::Count),
            (
                "AlertsDeduplicated",
                report.deduplicated.len() as f64,
                Unit::Count,
            ),
            ("RuleErrors", s.rule_errors as f64, Unit::Count),
            ("BadLines", report.bad_lines as f64, Unit::Count),
            ("Unreadable", report.unreadable.len() as f64, Unit::Count),
            // 1 when the site directory in the bucket did not load: an alarm watches it.
            (
                "SiteErrors",
                f64::from(u8::from(report.site_error.is_some())),
                Unit::Count,
            ),
            ("Duration", duration_ms, Unit::Milliseconds),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::{metrics, object_time, Report};

    #[test]
    fn the_metrics_count_written_and_deduplicated_alerts() {
        let report = Report {
            written: vec!["alerts/a.json".into(), "alerts/b.json".into()],
            deduplicated: vec!["alerts/d.json".into()],
            ..Report::default()
        };
        let line: serde_json::Value = serde_json::from_str(&metrics(&report, 1.0)).unwrap();
        assert_eq!(line["Alerts"], 2.0);
        assert_eq!(line["AlertsDeduplicated"], 1.0);
        let names: Vec<&str> = line["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"AlertsDeduplicated"), "{names:?}");
    }
    use tripline_aws::s3event;

    /// 2026-11-22T14:00:00Z
    const HOUR: i64 = 1_795_356_000;

    fn object(key: &str, event_time: Option<i64>) -> tripline_aws::ObjectRef {
        tripline_aws::ObjectRef {
            bucket: "b".into(),
            key: key.into(),
            size: None,
            event_name: None,
            event_time,
            sqs_message_id: None,
        }
    }

    #[test]
    fn an_object_is_timed_by_its_key_hour_then_its_event() {
        // The S3 event fixtures, as the function receives them.
        for file in ["detect-put.json", "moto-put.json", "sqs-parse-put.json"] {
            let path = format!("{}/../../events/s3/{file}", env!("CARGO_MANIFEST_DIR"));
            let event = std::fs::read(&path).unwrap();
            let objects = s3event::parse_event(&event).unwrap();
            assert_eq!(object_time(&objects[0]), Some(HOUR), "{file}");
        }
        // The key's hour wins over a later write (a replay a day after).
        let key = "normalized/raw/2026/11/22/14/tripline-osquery-1-2026-11-22-14-05-00-6d1f0c2e.gz.ndjson.zst";
        assert_eq!(object_time(&object(key, Some(HOUR + 86_400))), Some(HOUR));
        // A key without a date: the event's time, to the second.
        let undated = "normalized/uploads/osquery.log.ndjson.zst";
        assert_eq!(
            object_time(&object(undated, Some(HOUR + 312))),
            Some(HOUR + 312)
        );
        assert_eq!(object_time(&object(undated, None)), None);
        // A date that does not exist is no date.
        let bad = "normalized/raw/2026/02/30/14/x.gz.ndjson.zst";
        assert_eq!(object_time(&object(bad, Some(HOUR))), Some(HOUR));
    }
}
