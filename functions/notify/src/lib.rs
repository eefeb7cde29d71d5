//! The notify stage: each alert object named by an S3 event is delivered to every enabled
//! destination: SNS (email), Slack, a signed generic webhook, PagerDuty, Splunk HEC.
//!
//! # Exactly once per destination, whoever runs at the same time
//!
//! [`delivery::deliver`] skips destinations whose delivery marker exists, claims each other
//! one before sending (a concurrent copy of the invocation that finds the claim leaves the
//! destination to its owner) and marks each one that accepted, so a retried, replayed or
//! duplicated invocation sends only to destinations that no run has delivered or is
//! delivering.
//!
//! # One slow destination never starves the others
//!
//! Every (alert, destination) is sent at once, and all of them end within the invocation's
//! time budget ([`Invocation::budget`]: the Lambda deadline less a reserve), every wait for a
//! retry included. A destination that fails or cannot finish in time is reported in
//! [`Report::failed`] and fails the invocation after the others were delivered, so Lambda's
//! retry sends only to it, and then the on-failure destination takes over.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use std::sync::{Arc, RwLock};

use futures_util::future::join_all;
use serde::Serialize;
use serde_json::Value;
use tripline_aws::site::SiteSource;
use tripline_aws::{s3event, ObjectRef, ObjectStore, S3Store, Settings, Unreadable};
use tripline_core::alert::Alert;
use tripline_core::config::Config;
use tripline_core::layout::Layout;
use tripline_core::notify::storm;

pub mod delivery;
pub mod destination;

pub use delivery::Invocation;
pub use destination::{destinations, Destination};

use delivery::Delivery;

/// Built once per container (secrets resolved at cold start). Generic over where the
/// objects are: [`S3Store`] in the function, `tripline_aws::MemStore` in tests.
pub struct Notify<S = S3Store> {
    pub store: S,
    pub settings: Settings,
    pub destinations: Vec<Box<dyn Destination>>,
    /// The site's routes and storm control: the site directory's `tripline.toml`, else
    /// `TRIPLINE_CONFIG`; replaced whole when a changed site loads.
    config: RwLock<Arc<Config>>,
    /// `TRIPLINE_CONFIG`, for a site without a `tripline.toml`.
    fallback: Config,
    /// The site directory under the site prefix of `TRIPLINE_BUCKET`; `None` without one.
    site: Option<SiteSource<S>>,
}

/// What the invocation did. Delivery failures are in `failed`; see [`Report::into_result`].
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub alerts: Vec<String>,
    pub ignored: Vec<String>,
    /// `alert id/destination` delivered now.
    pub delivered: Vec<String>,
    /// Already delivered by an earlier invocation.
    pub skipped: Vec<String>,
    /// Being delivered by another invocation that holds the claim (`alert id/destination`).
    pub claimed_by_another: Vec<String>,
    /// Not sent because the destination's route does not take the alert
    /// (`alert id/destination`); the alert stays in the alerts prefix.
    pub unrouted: Vec<String>,
    /// Alerts past their rule's storm threshold in their window: destinations got (or had)
    /// the storm's roll-up instead (its deliveries are in `delivered`/`skipped` under the
    /// roll-up's id).
    pub in_storm: Vec<String>,
    /// Failures, safe to log (no URLs or secrets): each destination that failed after its
    /// retries or could not finish within the time budget.
    pub failed: Vec<String>,
    /// Alert objects that can never be read (gone, access denied): logged, counted, not retried.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<Unreadable>,
    /// Why the site directory could not be loaded; routing used the last one that loaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub site_error: Option<String>,
}

impl Report {
    /// Turns delivery failures into the invocation's error, so Lambda retries it.
    pub fn into_result(self) -> anyhow::Result<Report> {
        if self.failed.is_empty() {
            Ok(self)
        } else {
            anyhow::bail!(
                "{} delivery failure(s): {}",
                self.failed.len(),
                self.failed.join("; ")
            )
        }
    }
}

impl<S: ObjectStore> Notify<S> {
    pub fn new(
        store: S,
        settings: Settings,
        destinations: Vec<Box<dyn Destination>>,
    ) -> anyhow::Result<Self> {
        let fallback = match &settings.config_toml {
            Some(text) => Config::from_toml_str(text).context("TRIPLINE_CONFIG")?,
            None => Config::default(),
        };
        let site = settings.bucket.clone().map(|bucket| {
            SiteSource::new(store.clone(), bucket, settings.site_prefix.clone())
                .only(&[tripline_core::site::CONFIG_FILE])
        });
        Ok(Notify {
            store,
            settings,
            destinations,
            config: RwLock::new(Arc::new(fallback.clone())),
            fallback,
            site,
        })
    }

    /// These settings instead of the site's (tests).
    pub fn with_config(self, config: Config) -> Self {
        Notify {
            config: RwLock::new(Arc::new(config.clone())),
            fallback: config,
            site: None,
            ..self
        }
    }

    /// Looks at the site directory at most once per `every` (a minute by default).
    pub fn with_site_every(mut self, every: std::time::Duration) -> Self {
        if let Some(site) = &mut self.site {
            site.every = every;
        }
        self
    }

    /// The routes and storm control in force.
    pub fn config(&self) -> Arc<Config> {
        self.config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Looks for a changed site and loads its `tripline.toml`; one that cannot be read or
    /// is invalid leaves the last one in place and is reported in `report.site_error`.
    async fn refresh(&self, report: &mut Report) {
        let Some(source) = &self.site else { return };
        let loaded = match source.poll().await {
            Ok(None) => return,
            // Routes and storm control are all notify takes from the site: its rules and
            // lists (possibly millions of indicators) are detect's.
            Ok(Some(files)) => tripline_core::site::Site::load(&files)
                .map(|site| match site.has_config_file {
                    true => site.config,
                    false => self.fallback.clone(),
                })
                .map_err(anyhow::Error::new),
            Err(e) => Err(anyhow::Error::new(e).context("reading the site directory")),
        };
        match loaded {
            Ok(config) => {
                *self.config.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(config);
            }
            Err(e) => {
                let error = format!("{e:#}");
                tracing::error!(%error, "site directory not loaded; routing with the last one that loaded");
                report.site_error = Some(error);
            }
        }
    }

    /// Delivers every alert `event` names to every destination, within `invocation`'s
    /// time budget.
    pub async fn handle(&self, event: &Value, invocation: &Invocation) -> anyhow::Result<Report> {
        let mut report = Report::default();
        self.refresh(&mut report).await;
        let config = self.config();
        let layout = self.settings.layout();
        let mut alerts = Vec::new();
        for object in s3event::parse_value(event)? {
            if !object.is_created() || !layout.is_alert(&object.key) {
                tracing::info!(bucket = %object.bucket, key = %object.key, "ignoring: not an alert object");
                report.ignored.push(object.key);
                continue;
            }
            if let Some(alert) = self.read(&object, &mut report).await? {
                report.alerts.push(alert.id.clone());
                let state_bucket = self.settings.output_bucket(&object.bucket).to_owned();
                // Past its rule's storm threshold, the alert's destinations get the roll-up.
                let send = match self.storm(&config, &layout, &state_bucket, &alert).await? {
                    Some(rollup) => {
                        report.in_storm.push(alert.id.clone());
                        rollup
                    }
                    None => alert.clone(),
                };
                for dest in &self.destinations {
                    if !config.routes_to(dest.name(), &alert) {
                        report
                            .unrouted
                            .push(format!("{}/{}", alert.id, dest.name()));
                    }
                }
                alerts.push((alert, send, state_bucket));
            }
        }
        let (layout, config) = (&layout, &config);
        let sends = alerts.iter().flat_map(|(routed, alert, bucket)| {
            self.destinations
                .iter()
                .filter(move |dest| config.routes_to(dest.name(), routed))
                .map(move |dest| async move {
                    let label = format!("{}/{}", alert.id, dest.name());
                    let delivery = delivery::deliver(
                        &self.store,
                        layout,
                        bucket,
                        alert,
                        dest.as_ref(),
                        invocation,
                    )
                    .await;
                    (label, delivery)
                })
        });
        let mut store_error = None;
        for (label, delivery) in join_all(sends).await {
            match delivery {
                Ok(Delivery::Delivered(_)) => report.delivered.push(label),
                Ok(Delivery::Skipped) => report.skipped.push(label),
                Ok(Delivery::ClaimedByAnother(_)) => report.claimed_by_another.push(label),
                Ok(Delivery::Failed(e)) => report.failed.push(format!("{label}: {e}")),
                // Every other delivery has finished (and is marked); the first store error
                // is the invocation's.
                Err(e) => {
                    tracing::error!(delivery = %label, error = format!("{e:#}"), "delivery state unavailable");
                    store_error.get_or_insert(e);
                }
            }
        }
        match store_error {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    /// The storm's roll-up when `alert` is past its rule's threshold in its window, counted
    /// by marking it under the rule and window and listing the marks (one page, so the
    /// count stops just past the threshold); `None` when it is within the threshold.
    async fn storm(
        &self,
        config: &Config,
        layout: &Layout,
        bucket: &str,
        alert: &Alert,
    ) -> anyhow::Result<Option<Alert>> {
        let threshold = config.storm.threshold(&alert.rule.name, alert.rule.storm);
        if threshold == 0 {
            return Ok(None);
        }
        let prefix = layout.storm_prefix(alert);
        let hosts: Vec<&String> = alert.hosts.iter().take(storm::ROLLUP_HOSTS).collect();
        let mark = serde_json::to_vec(&serde_json::json!({"alert": alert.id, "hosts": hosts}))?;
        self.store
            .put_if_absent(bucket, &format!("{prefix}{}", alert.id), mark.into())
            .await?;
        let marks = self
            .store
            .list(bucket, &prefix, threshold as usize + 1)
            .await?;
        if marks.len() <= threshold as usize {
            return Ok(None);
        }
        // The first marks' hosts, for the roll-up to name.
        let mut first_hosts = alert.hosts.clone();
        for key in marks.iter().take(5).map(|m| &m.key) {
            let mark: Value = serde_json::from_slice(&self.store.get(bucket, key).await?)
                .with_context(|| format!("s3://{bucket}/{key} is not a storm mark"))?;
            if let Some(hosts) = mark["hosts"].as_array() {
                first_hosts.extend(hosts.iter().filter_map(|h| h.as_str().map(str::to_owned)));
            }
        }
        let alerts_at = format!("s3://{bucket}/{}", layout.alerts_day_prefix(alert));
        tracing::warn!(alert = %alert.id, rule = %alert.rule.name, threshold, "alert storm: destinations get the roll-up");
        Ok(Some(storm::rollup(
            alert,
            threshold,
            marks.len(),
            first_hosts,
            &alerts_at,
        )))
    }

    /// The alert `object` names; `None` when it can never be read (counted in `report`).
    async fn read(&self, object: &ObjectRef, report: &mut Report) -> anyhow::Result<Option<Alert>> {
        let bytes = match self.store.get(&object.bucket, &object.key).await {
            Ok(bytes) => bytes,
            Err(e) => match Unreadable::of(&object.bucket, &object.key, &e) {
                Some(unreadable) => {
                    report.unreadable.push(unreadable);
                    return Ok(None);
                }
                None => return Err(e.into()),
            },
        };
        let alert = serde_json::from_slice(&bytes)
            .with_context(|| format!("s3://{}/{} is not an alert", object.bucket, object.key))?;
        Ok(Some(alert))
    }
}

/// Seconds since the epoch: the webhook's signed timestamp and the markers' `delivered_at`.
fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The EMF metrics line for an invocation.
pub fn metrics(report: &Report, duration_ms: f64) -> String {
    use tripline_aws::metrics::{emit, Unit};
    emit(
        "tripline",
        "notify",
        &[
            ("Alerts", report.alerts.len() as f64, Unit::Count),
            ("Deliveries", report.delivered.len() as f64, Unit::Count),
            (
                "DeliveriesSkipped",
                report.skipped.len() as f64,
                Unit::Count,
            ),
            (
                "DeliveriesClaimedByAnother",
                report.claimed_by_another.len() as f64,
                Unit::Count,
            ),
            (
                "DeliveriesUnrouted",
                report.unrouted.len() as f64,
                Unit::Count,
            ),
            ("AlertsInStorm", report.in_storm.len() as f64, Unit::Count),
            (
                "SiteErrors",
                f64::from(u8::from(report.site_error.is_some())),
                Unit::Count,
            ),
            ("DeliveryFailures", report.failed.len() as f64, Unit::Count),
            ("Unreadable", report.unreadable.len() as f64, Unit::Count),
            ("Duration", duration_ms, Unit::Milliseconds),
        ],
    )
}
