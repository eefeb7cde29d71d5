//! One alert to one destination, exactly once per destination whoever runs at the same time.
//!
//! [`deliver`] goes through three objects per (alert, destination), all under the state prefix:
//!
//! 1. The **delivery marker** ([`Layout::delivery_marker`]). There: an earlier run delivered,
//!    nothing to do.
//! 2. A **claim** ([`Layout::claim`]), created if absent (`If-None-Match: *`) before the send,
//!    holding the invocation's id and a lease that ends after the invocation's own deadline.
//!    Of concurrent runs exactly one creates it and sends. A run that finds another's claim
//!    whose lease has not ended neither sends nor fails: the owner is still running (Lambda
//!    has not yet stopped it), and finishes or fails the delivery itself. A claim whose lease
//!    ended belongs to an invocation that Lambda has stopped, so it is taken over by creating
//!    the next generation of the claim, which again only one run can do. A claim written by
//!    this invocation id (Lambda's retry of an async event keeps its request id) is ours: the
//!    attempt that wrote it is over, and the claim is renewed with this attempt's lease.
//! 3. After the destination accepted, the delivery marker is created; after it failed, the
//!    claim is rewritten as released, so the next run (a retry, which for SQS-fed functions
//!    has a new id) sends at once instead of waiting out the lease.
//!
//! A crash between a successful send and its marker re-sends once, after the lease: at least
//! once, never lost; PagerDuty folds that repeat into the incident through its `dedup_key`.
//! Only the claim's owner writes to a claim after creating it, which is what makes the
//! overwrites (renew, release) safe without a compare-and-swap.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tripline_aws::s3io::PutOutcome;
use tripline_aws::ObjectStore;
use tripline_core::alert::Alert;
use tripline_core::layout::Layout;

use crate::destination::Destination;

/// How long a claim outlives its owner's deadline: covers clock differences between the
/// hosts that run two invocations, which NTP keeps far below this.
pub const LEASE_MARGIN: Duration = Duration::from_secs(30);

/// Time kept back from the deadline for what follows the sends (delivery markers, the
/// metrics line, the response).
pub const RESERVE: Duration = Duration::from_secs(2);

/// Most claim generations followed before giving up: each one is a run that died holding the
/// claim or failed the destination, so this many means something else is wrong.
const MAX_GENERATIONS: u32 = 64;

/// The invocation a delivery runs in: its id (the Lambda request id) and when Lambda stops
/// it.
#[derive(Clone, Debug)]
pub struct Invocation {
    /// Written into claims, so a retry of this invocation recognises its own.
    pub id: String,
    /// When Lambda stops the invocation.
    pub deadline: SystemTime,
}

impl Invocation {
    /// An invocation stopped `timeout` from now.
    pub fn new(id: impl Into<String>, timeout: Duration) -> Self {
        Invocation {
            id: id.into(),
            deadline: SystemTime::now() + timeout,
        }
    }

    /// An invocation with a deadline in milliseconds since the epoch (the Lambda context's
    /// `deadline`). Lambda's deadline is always ahead; one that has passed already comes from
    /// an emulator (`cargo lambda watch` sends a fixed 600000, ten minutes after 1970), and
    /// the invocation then gets `fallback` from now, with a warning.
    pub fn with_deadline_ms(id: impl Into<String>, deadline_ms: u64, fallback: Duration) -> Self {
        let id = id.into();
        let deadline = UNIX_EPOCH + Duration::from_millis(deadline_ms);
        if deadline > SystemTime::now() {
            return Invocation { id, deadline };
        }
        tracing::warn!(
            deadline_ms,
            ?fallback,
            "the runtime's deadline has passed already (an emulator?): using the fallback budget"
        );
        Invocation::new(id, fallback)
    }

    /// Time left for sending: until the deadline, less [`RESERVE`].
    pub fn budget(&self) -> Duration {
        self.deadline
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO)
            .saturating_sub(RESERVE)
    }

    /// When this invocation's claims stop holding: its deadline plus [`LEASE_MARGIN`], in
    /// milliseconds since the epoch.
    fn lease_until_ms(&self) -> u64 {
        epoch_ms(self.deadline + LEASE_MARGIN)
    }
}

fn epoch_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// What [`deliver`] did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Delivery {
    /// Sent now, and marked; the destination's description of the result.
    Delivered(String),
    /// The marker was there: an earlier run delivered it.
    Skipped,
    /// Another invocation (this id) holds a live claim and is sending it.
    ClaimedByAnother(String),
    /// The destination failed after its retries, or could not finish within the invocation's
    /// budget (safe to log: no URL or secret). The claim is released, so the next run sends.
    Failed(String),
}

/// A claim's content.
#[derive(Debug, Serialize, Deserialize)]
struct Claim {
    alert: String,
    destination: String,
    /// The invocation that holds (or held) it.
    owner: String,
    /// Milliseconds since the epoch after which the claim no longer holds.
    lease_until_ms: u64,
    /// Let go by its owner after a failed send: the next run takes over at once.
    #[serde(default)]
    released: bool,
}

/// Whose the delivery is.
enum Claimed {
    /// Ours, at this generation; `fresh` when we created generation 0 (no run before us).
    Ours { generation: u32, fresh: bool },
    /// Another invocation's, alive.
    Theirs(String),
}

/// Delivers `alert` to `dest` unless its marker in `bucket` says an earlier run did or a live
/// claim says another run is doing it (see the module docs). Errors are the store's; a
/// destination's failure is [`Delivery::Failed`], so the caller can report it with the others.
pub async fn deliver<S: ObjectStore, D: Destination + ?Sized>(
    store: &S,
    layout: &Layout,
    bucket: &str,
    alert: &Alert,
    dest: &D,
    invocation: &Invocation,
) -> anyhow::Result<Delivery> {
    let marker = layout.delivery_marker(&alert.id, dest.name());
    if store.exists(bucket, &marker).await? {
        return Ok(Delivery::Skipped);
    }
    let generation = match claim(store, layout, bucket, alert, dest.name(), invocation).await? {
        Claimed::Theirs(owner) => {
            tracing::info!(alert = %alert.id, destination = dest.name(), %owner, "claimed by another invocation");
            return Ok(Delivery::ClaimedByAnother(owner));
        }
        // A run before us may have delivered and then lost its claim's lease.
        Claimed::Ours { generation, fresh } => {
            if !fresh && store.exists(bucket, &marker).await? {
                return Ok(Delivery::Skipped);
            }
            generation
        }
    };
    let budget = invocation.budget();
    let sent = match tokio::time::timeout(
        budget,
        dest.send(alert, tokio::time::Instant::now() + budget),
    )
    .await
    {
        Ok(sent) => sent,
        Err(_) => Err(anyhow::anyhow!(
            "{}: not finished within the invocation's {budget:?} budget",
            dest.name()
        )),
    };
    match sent {
        Ok(detail) => {
            let body = serde_json::to_vec(&serde_json::json!({
                "alert": alert.id, "destination": dest.name(), "delivered_at": crate::now(),
                "detail": detail, "by": invocation.id,
            }))?;
            store.put_if_absent(bucket, &marker, body.into()).await?;
            tracing::info!(alert = %alert.id, destination = dest.name(), %detail, "delivered");
            Ok(Delivery::Delivered(detail))
        }
        Err(e) => {
            tracing::error!(alert = %alert.id, destination = dest.name(), error = %e, "delivery failed");
            let released = Claim {
                alert: alert.id.clone(),
                destination: dest.name().to_owned(),
                owner: invocation.id.clone(),
                lease_until_ms: 0,
                released: true,
            };
            let key = layout.claim(&alert.id, dest.name(), generation);
            store
                .put(bucket, &key, serde_json::to_vec(&released)?.into())
                .await?;
            Ok(Delivery::Failed(e.to_string()))
        }
    }
}

/// Finds or takes the claim on (alert, destination): walks the generations from 0, creating
/// the first that is absent, and stopping at a live claim of another invocation.
async fn claim<S: ObjectStore>(
    store: &S,
    layout: &Layout,
    bucket: &str,
    alert: &Alert,
    destination: &str,
    invocation: &Invocation,
) -> anyhow::Result<Claimed> {
    let ours = Claim {
        alert: alert.id.clone(),
        destination: destination.to_owned(),
        owner: invocation.id.clone(),
        lease_until_ms: invocation.lease_until_ms(),
        released: false,
    };
    let body = serde_json::to_vec(&ours)?;
    for generation in 0..MAX_GENERATIONS {
        let key = layout.claim(&alert.id, destination, generation);
        if store
            .put_if_absent(bucket, &key, body.clone().into())
            .await?
            == PutOutcome::Created
        {
            return Ok(Claimed::Ours {
                generation,
                fresh: generation == 0,
            });
        }
        let held: Claim = serde_json::from_slice(&store.get(bucket, &key).await?)
            .map_err(|e| anyhow::anyhow!("s3://{bucket}/{key} is not a claim: {e}"))?;
        if held.released {
            continue;
        }
        if held.owner == invocation.id {
            // An earlier attempt of this invocation, over now: renew the lease for this one.
            store.put(bucket, &key, body.into()).await?;
            return Ok(Claimed::Ours {
                generation,
                fresh: false,
            });
        }
        if held.lease_until_ms > epoch_ms(SystemTime::now()) {
            return Ok(Claimed::Theirs(held.owner));
        }
        tracing::warn!(alert = %alert.id, destination, owner = %held.owner, generation,
            "claim's lease ended without a delivery: taking over");
    }
    anyhow::bail!(
        "{MAX_GENERATIONS} claims on {}/{destination} ended without a delivery",
        alert.id
    )
}

#[cfg(test)]
mod tests;
