//! The notify stage: each alert object named by an S3 event is delivered to every enabled
//! destination: SNS (email), Slack, a signed generic webhook, PagerDuty, Splunk HEC.
//!
//! # Exactly once per destination, as far as S3 can make it
//!
//! [`delivery::deliver`] skips destinations whose delivery marker exists and marks each one
//! that accepted, so a retried or replayed invocation re-sends only to destinations that
//! failed (at least once, never lost).
//!
//! A destination that still fails after its retries fails the invocation (after every other
//! destination was tried), so Lambda's retries and then the on-failure destination take over.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use serde::Serialize;
use serde_json::Value;
use tripline_aws::{s3event, ObjectRef, ObjectStore, S3Store, Settings, Unreadable};
use tripline_core::alert::Alert;
use tripline_core::layout::Layout;

pub mod delivery;
pub mod destination;

pub use destination::{destinations, Destination};

use delivery::Delivery;

/// Built once per container (secrets resolved at cold start). Generic over where the
/// objects are: [`S3Store`] in the function, `tripline_aws::MemStore` in tests.
pub struct Notify<S = S3Store> {
    pub store: S,
    pub settings: Settings,
    pub destinations: Vec<Box<dyn Destination>>,
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
    /// Failures, safe to log (no URLs or secrets).
    pub failed: Vec<String>,
    /// Alert objects that can never be read (gone, access denied): logged, counted, not retried.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<Unreadable>,
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
        Ok(Notify {
            store,
            settings,
            destinations,
        })
    }

    pub async fn handle(&self, event: &Value) -> anyhow::Result<Report> {
        let mut report = Report::default();
        let layout = self.settings.layout();
        for object in s3event::parse_value(event)? {
            if !object.is_created() || !layout.is_alert(&object.key) {
                tracing::info!(bucket = %object.bucket, key = %object.key, "ignoring: not an alert object");
                report.ignored.push(object.key);
                continue;
            }
            self.alert(&layout, &object, &mut report).await?;
        }
        Ok(report)
    }

    async fn alert(
        &self,
        layout: &Layout,
        object: &ObjectRef,
        report: &mut Report,
    ) -> anyhow::Result<()> {
        let bytes = match self.store.get(&object.bucket, &object.key).await {
            Ok(bytes) => bytes,
            Err(e) => match Unreadable::of(&object.bucket, &object.key, &e) {
                Some(unreadable) => {
                    report.unreadable.push(unreadable);
                    return Ok(());
                }
                None => return Err(e.into()),
            },
        };
        let alert: Alert = serde_json::from_slice(&bytes)
            .with_context(|| format!("s3://{}/{} is not an alert", object.bucket, object.key))?;
        let state_bucket = self.settings.output_bucket(&object.bucket).to_owned();
        report.alerts.push(alert.id.clone());
        for dest in &self.destinations {
            let label = format!("{}/{}", alert.id, dest.name());
            match delivery::deliver(&self.store, layout, &state_bucket, &alert, dest.as_ref())
                .await?
            {
                Delivery::Delivered(_) => report.delivered.push(label),
                Delivery::Skipped => report.skipped.push(label),
                Delivery::Failed(e) => report.failed.push(format!("{label}: {e}")),
            }
        }
        Ok(())
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
            ("DeliveryFailures", report.failed.len() as f64, Unit::Count),
            ("Unreadable", report.unreadable.len() as f64, Unit::Count),
            ("Duration", duration_ms, Unit::Milliseconds),
        ],
    )
}
