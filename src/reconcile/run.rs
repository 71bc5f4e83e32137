//! One source's reconciler: every `interval`, while it holds the source's
//! lease, it lists what the provider sent, finds what the history lacks,
//! acts on it (or only reports, in dry-run mode), counts it in the metrics
//! and stores the run's report for `GET /v1/reconcile`.

use std::collections::HashSet;
use std::time::Duration;

use serde::Serialize;
use serde_json::value::RawValue;
use tokio::sync::watch;

use super::github::GithubHook;
use super::recover::{self, Recovered};
use super::stripe::StripeEvents;
use super::{Lease, ReconcileError, Shared};
use crate::config::{Preset, ReconcileConfig, SourceConfig};
use crate::history::now_micros;
use crate::shutdown::stopped;
use crate::telemetry::names;

/// Actions listed in a stored report; the counts cover all of them.
pub const ACTIONS_SHOWN: usize = 100;
/// Most redeliveries asked for one GitHub delivery within the lookback: one per failed
/// attempt, so a redelivery that failed too (hookgate restarted meanwhile) is asked again, a bounded number of times.
pub(super) const MAX_REQUESTS_PER_ITEM: usize = 3;

/// One item the provider says it sent.
#[derive(Debug)]
pub(super) struct Sent {
    /// Its dedup key in hookgate: GitHub's delivery guid, Stripe's event id.
    pub(super) key: String,
    /// What the provider's API calls it: the latest attempt id to redeliver, the event id.
    pub(super) handle: String,
    /// Every handle of the item within the lookback (GitHub: each attempt's id), latest included.
    pub(super) handles: Vec<String>,
    /// When it was sent or created, µs since the epoch.
    pub(super) at: i64,
    /// Whether its last delivery attempt failed (always true for Stripe, which does not say).
    pub(super) failed: bool,
    /// Whether the last attempt got 409: hookgate was still publishing the same delivery (a
    /// reservation left by a crash lapses after `dedup::PENDING_TTL`).
    pub(super) in_flight: bool,
    /// The event type.
    pub(super) event_type: String,
    /// The event as the API returned it (Stripe), to publish.
    pub(super) payload: Option<Box<RawValue>>,
    /// The address of the API server it was fetched from (Stripe).
    pub(super) origin: Option<std::net::IpAddr>,
}

/// What a run did about one missing item.
#[derive(Debug, Clone, Serialize)]
pub struct Action {
    /// The item's dedup key (delivery guid, event id).
    pub item: String,
    /// The event type.
    pub event_type: String,
    /// `redelivery_requested`, `published`, `already_delivered`, `already_handled`,
    /// `in_flight` (hookgate answered 409: retried later), `would_redeliver`, `would_publish` (dry run) or `failed`.
    pub action: &'static str,
    /// The error code when `action` is `failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
}

/// The report of a source's last run, stored as JSON and shown by `GET /v1/reconcile`.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// The source.
    pub source: String,
    /// `github` or `stripe`.
    pub provider: &'static str,
    /// Whether the run only reported.
    pub dry_run: bool,
    /// The replica that ran it.
    pub replica: String,
    /// Start and end, RFC 3339.
    pub started_at: String,
    /// End of the run, RFC 3339.
    pub finished_at: String,
    /// `ok` or `error`.
    pub status: &'static str,
    /// The error code when `status` is `error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
    /// The error message when `status` is `error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Items the provider listed within the lookback (older than `settle`).
    pub checked: usize,
    /// Of those, missing from the history (GitHub: and whose last attempt failed).
    pub missing: usize,
    /// Missing items this run recovered (redelivery requested, event published).
    pub recovered: usize,
    /// Missing items still missing after this run (handled before, failed, or dry run).
    pub outstanding: usize,
    /// What was done, item by item (at most [`ACTIONS_SHOWN`]).
    pub actions: Vec<Action>,
}

/// The provider side of a source.
#[derive(Debug)]
enum Provider {
    /// A GitHub hook.
    Github(GithubHook),
    /// A Stripe account.
    Stripe(StripeEvents),
}

/// One source's reconciler task.
#[derive(Debug)]
pub(super) struct Reconciler {
    /// Store, publisher, dedup, configuration.
    shared: Shared,
    /// The source reconciled.
    source: SourceConfig,
    /// Its `[sources.reconcile]`.
    settings: ReconcileConfig,
    /// Its provider API.
    provider: Provider,
    /// Its lease.
    lease: Lease,
}

impl Reconciler {
    /// The reconciler of `source` (which has a `[sources.reconcile]` table).
    pub(super) fn new(shared: Shared, source: &SourceConfig) -> Result<Self, ReconcileError> {
        let settings = source
            .reconcile
            .clone()
            .ok_or_else(|| ReconcileError::Decode("no [sources.reconcile]".into()))?;
        let provider = match source.verify {
            Preset::Github => Provider::Github(GithubHook::new(&source.name, &settings)?),
            _ => Provider::Stripe(StripeEvents::new(&source.name, &settings)?),
        };
        let lease = Lease::new(shared.store.clone(), &source.name, &shared.holder, settings.interval);
        Ok(Self {
            shared,
            source: source.clone(),
            settings,
            provider,
            lease,
        })
    }

    /// Runs every `interval` while holding the lease, until `shutdown`; then gives the lease up.
    pub(super) async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(self.settings.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = stopped(&mut shutdown) => break,
            }
            match self.lease.renew().await {
                Ok(true) => {}
                Ok(false) => continue,
                Err(error) => {
                    self.count_error(&ReconcileError::Store(error));
                    continue;
                }
            }
            tokio::select! {
                report = self.run_once() => self.finish(report).await,
                () = stopped(&mut shutdown) => break,
            }
        }
        self.lease.release().await;
    }

    /// One run: list, compare, act.
    async fn run_once(&self) -> RunReport {
        let started = chrono::Utc::now();
        let mut report = self.empty_report(started);
        if let Err(error) = self.reconcile(&mut report).await {
            self.count_error(&error);
            tracing::warn!(source = %self.source.name, %error, "reconciliation run failed");
            report.status = "error";
            report.error = Some(error.reason());
            report.message = Some(error.to_string());
        }
        report.finished_at = chrono::Utc::now().to_rfc3339();
        report
    }

    async fn reconcile(&self, report: &mut RunReport) -> Result<(), ReconcileError> {
        let now = now_micros();
        let cutoff = now - micros(self.settings.lookback);
        let settled = now - micros(self.settings.settle);
        let store = &self.shared.store;
        store.forget_actions(&self.source.name, cutoff).await?;
        let mut sent = match &self.provider {
            Provider::Github(hook) => hook.list(cutoff, &self.lease).await?,
            Provider::Stripe(events) => events.list(cutoff, &self.lease).await?,
        };
        sent.retain(|item| item.at <= settled);
        report.checked = sent.len();
        let keys: Vec<String> = sent.iter().map(|item| item.key.clone()).collect();
        let present = store.present_dedup_keys(&self.source.name, &keys).await?;
        // A delivery GitHub saw succeed is in Kafka: at most the indexer has not stored it yet.
        sent.retain(|item| item.failed && !present.contains(&item.key));
        report.missing = sent.len();
        let handles: Vec<String> = sent.iter().flat_map(|item| item.handles.iter().cloned()).collect();
        let handled = store.acted_on(&self.source.name, &handles, cutoff).await?;
        for item in &sent {
            let action = self.act(item, &handled).await?;
            report.note(item, action);
        }
        Ok(())
    }

    /// Decides and does what one missing item needs; only store failures end the run.
    async fn act(
        &self,
        item: &Sent,
        handled: &HashSet<String>,
    ) -> Result<Result<&'static str, ReconcileError>, ReconcileError> {
        let github = matches!(self.provider, Provider::Github(_));
        // Never the same attempt twice; a later attempt that failed as well, a few times at most.
        let requests = item.handles.iter().filter(|h| handled.contains(*h)).count();
        if handled.contains(&item.handle) || requests >= MAX_REQUESTS_PER_ITEM {
            return Ok(Ok("already_handled"));
        }
        let pending = micros(crate::dedup::PENDING_TTL + Duration::from_secs(10));
        if item.in_flight && now_micros() - item.at < pending {
            return Ok(Ok("in_flight"));
        }
        if self.settings.dry_run {
            return Ok(Ok(if github { "would_redeliver" } else { "would_publish" }));
        }
        let done = match &self.provider {
            Provider::Github(hook) => hook.redeliver(&item.handle).await.map(|()| "redelivery_requested"),
            Provider::Stripe(_) => recover::publish(&self.shared, &self.source, item)
                .await
                .map(|r| match r {
                    Recovered::Published => "published",
                    Recovered::AlreadyDelivered => "already_delivered",
                    Recovered::InFlight => "in_flight",
                }),
        };
        match done {
            // Nothing done: not remembered, the next run looks again.
            Ok("in_flight") => Ok(Ok("in_flight")),
            Ok(action) => {
                let store = &self.shared.store;
                store
                    .record_action(&self.source.name, &item.handle, action, now_micros())
                    .await?;
                if action != "already_delivered" {
                    let how = if github { "redelivered" } else { "published" };
                    metrics::counter!(names::RECONCILE_RECOVERED, "source" => self.source.name.clone(), "how" => how)
                        .increment(1);
                }
                Ok(Ok(action))
            }
            Err(error) => {
                self.count_error(&error);
                tracing::warn!(source = %self.source.name, item = %item.key, %error, "could not recover a missing item");
                Ok(Err(error))
            }
        }
    }

    /// Stores the report and updates the metrics.
    async fn finish(&self, report: RunReport) {
        let source = self.source.name.clone();
        metrics::counter!(names::RECONCILE_CHECKED, "source" => source.clone()).increment(report.checked as u64);
        metrics::counter!(names::RECONCILE_MISSING, "source" => source.clone()).increment(report.missing as u64);
        metrics::gauge!(names::RECONCILE_OUTSTANDING, "source" => source.clone()).set(report.outstanding as f64);
        if report.status == "ok" {
            let now = chrono::Utc::now().timestamp_micros() as f64 / 1e6;
            metrics::gauge!(names::RECONCILE_LAST_SUCCESS, "source" => source.clone()).set(now);
        }
        tracing::info!(source = %source, checked = report.checked, missing = report.missing, recovered = report.recovered, outstanding = report.outstanding, status = report.status, "reconciliation run");
        let json = serde_json::to_string(&report).unwrap_or_default();
        if let Err(error) = self.shared.store.save_run(&source, &json, now_micros()).await {
            self.count_error(&ReconcileError::Store(error));
        }
    }

    fn count_error(&self, error: &ReconcileError) {
        metrics::counter!(names::RECONCILE_ERRORS, "source" => self.source.name.clone(), "reason" => error.reason())
            .increment(1);
    }

    fn empty_report(&self, started: chrono::DateTime<chrono::Utc>) -> RunReport {
        RunReport {
            source: self.source.name.clone(),
            provider: super::provider_name(self.source.verify),
            dry_run: self.settings.dry_run,
            replica: self.shared.holder.clone(),
            started_at: started.to_rfc3339(),
            finished_at: String::new(),
            status: "ok",
            error: None,
            message: None,
            checked: 0,
            missing: 0,
            recovered: 0,
            outstanding: 0,
            actions: Vec::new(),
        }
    }
}

impl RunReport {
    /// Counts what became of one missing item and lists it.
    fn note(&mut self, item: &Sent, outcome: Result<&'static str, ReconcileError>) {
        let (action, error) = match outcome {
            Ok(action) => (action, None),
            Err(error) => ("failed", Some(error.reason())),
        };
        match action {
            // It arrived as a webhook meanwhile: not missing after all.
            "already_delivered" => self.missing -= 1,
            "redelivery_requested" | "published" => self.recovered += 1,
            _ => self.outstanding += 1,
        }
        if self.actions.len() < ACTIONS_SHOWN {
            self.actions.push(Action {
                item: item.key.clone(),
                event_type: item.event_type.clone(),
                action,
                error,
            });
        }
    }
}

fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}
