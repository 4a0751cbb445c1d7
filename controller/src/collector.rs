//! The stats collector: every interval it reads one-shot stats of every running managed
//! container (all at once, up to [`CONCURRENCY`]), computes CPU from its previous
//! reading, stores the cycle and publishes each application's figures on the bus.
//!
//! One-shot stats answer at once; a plain `stream=false` call makes the engine wait for
//! a second reading (1–2 s per container), which would not fit 200 containers into an
//! interval. Keeping the previous reading here gives the same CPU figure.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use longin_store::Store;
use longin_store::bus::{Aggregate, AppRef, Bus, ContainerMetrics, Event};
use longin_store::usage::UsageRow;
use tokio_util::sync::CancellationToken;

use crate::engine::Engine;
use crate::plan::RunState;
use crate::runtime::RuntimeError;
use crate::stats::{Sample, Usage, usage};

/// Stats requests in flight at once. High on purpose: the engine (Docker 20.10 at
/// least) answers even a one-shot request at its stats collector's next tick, once a
/// second, so requests in flight together share one tick — 100 containers took 4.4 s
/// 32 at a time and 1.3 s all at once. 256 keeps a 200-container host to one tick
/// while bounding the connections to the engine.
pub(crate) const CONCURRENCY: usize = 256;

/// Collects until `cancel`.
pub async fn run(
    store: Store,
    runtime: Engine,
    bus: Bus,
    every: Duration,
    cancel: CancellationToken,
) {
    tracing::info!(interval_s = every.as_secs_f64(), "stats collector started");
    let mut previous: HashMap<String, Sample> = HashMap::new();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            _ = tick.tick() => {}
        }
        let started = Instant::now();
        match tokio::select! {
            () = cancel.cancelled() => break,
            r = collect(&store, &runtime, &bus, &mut previous) => r,
        } {
            Ok(containers) => {
                let took = started.elapsed();
                metrics::histogram!("longin_metrics_collection_duration_seconds")
                    .record(took.as_secs_f64());
                tracing::debug!(containers, took_ms = took.as_millis(), "stats cycle");
            }
            Err(err) => {
                metrics::counter!("longin_metrics_collection_errors_total").increment(1);
                tracing::warn!(error = %err, "stats cycle failed");
            }
        }
    }
    tracing::info!("stats collector stopped");
}

/// Why a cycle failed.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Store(#[from] longin_store::StoreError),
}

/// One cycle; returns how many containers it read.
async fn collect(
    store: &Store,
    runtime: &Engine,
    bus: &Bus,
    previous: &mut HashMap<String, Sample>,
) -> Result<usize, CollectError> {
    let running: Vec<_> = runtime
        .managed_containers()
        .await?
        .into_iter()
        .filter(|(_, c)| c.state == RunState::Running)
        .collect();
    let apps: HashMap<String, _> = store
        .all_applications()
        .await?
        .into_iter()
        .map(|a| (a.id.clone(), a))
        .collect();
    let mut samples: HashMap<String, _> = runtime
        .stats_of(running.iter().map(|(_, c)| c.id.clone()).collect())
        .await
        .into_iter()
        .collect();
    let read: Vec<_> = running
        .into_iter()
        .filter_map(|(app, c)| {
            let sample = samples.remove(&c.id)?;
            Some((app, c, sample))
        })
        .collect();

    let now = longin_store::now_ms();
    let mut rows = Vec::with_capacity(read.len());
    let mut per_app: HashMap<String, Vec<ContainerMetrics>> = HashMap::new();
    let mut seen = HashMap::with_capacity(read.len());
    for (app, c, sample) in read {
        let sample = match sample {
            Ok(sample) => sample,
            // Gone between the listing and the read: nothing to report.
            Err(err) => {
                tracing::debug!(container = %c.id, error = %err, "no stats");
                continue;
            }
        };
        // A first reading has no CPU figure: it waits for the next cycle rather than
        // be stored as 0 % and drag averages down.
        let Some(before) = previous.get(&c.id) else {
            seen.insert(c.id, sample);
            continue;
        };
        let u = usage(Some(before), &sample);
        seen.insert(c.id.clone(), sample);
        if !apps.contains_key(&app) {
            continue; // an orphan, about to be removed
        }
        rows.push(usage_row(&app, &c.id, now, &u));
        per_app
            .entry(app)
            .or_default()
            .push(container_metrics(c.id, c.replica, &u));
    }
    let count = seen.len();
    *previous = seen;
    store.record_usage(&rows).await?;
    publish(bus, &apps, per_app, &longin_store::time::rfc3339(now)).await;
    Ok(count)
}

fn usage_row(app: &str, docker_id: &str, now: i64, u: &Usage) -> UsageRow {
    let int = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    UsageRow {
        application_id: app.to_owned(),
        docker_id: docker_id.to_owned(),
        recorded_at: now,
        cpu_percent: u.cpu_percent,
        memory_bytes: int(u.memory_bytes),
        memory_limit_bytes: int(u.memory_limit_bytes),
        net_rx_bytes: int(u.net_rx_bytes),
        net_tx_bytes: int(u.net_tx_bytes),
        block_read_bytes: int(u.block_read_bytes),
        block_write_bytes: int(u.block_write_bytes),
    }
}

fn container_metrics(container_id: String, replica: u32, u: &Usage) -> ContainerMetrics {
    ContainerMetrics {
        container_id,
        replica,
        cpu_percent: u.cpu_percent,
        cpu_percent_of_limit: u.cpu_percent_of_limit,
        memory_bytes: u.memory_bytes,
        memory_limit_bytes: u.memory_limit_bytes,
        net_rx_bytes: u.net_rx_bytes,
        net_tx_bytes: u.net_tx_bytes,
        block_read_bytes: u.block_read_bytes,
        block_write_bytes: u.block_write_bytes,
    }
}

/// One metrics event per application, its replicas in order.
async fn publish(
    bus: &Bus,
    apps: &HashMap<String, longin_store::applications::ApplicationRecord>,
    per_app: HashMap<String, Vec<ContainerMetrics>>,
    timestamp: &str,
) {
    for (app_id, mut containers) in per_app {
        let Some(app) = apps.get(&app_id) else {
            continue;
        };
        containers.sort_by_key(|c| c.replica);
        let aggregated = Aggregate {
            total_cpu: containers.iter().map(|c| c.cpu_percent).sum(),
            total_memory: containers.iter().map(|c| c.memory_bytes).sum(),
            container_count: u32::try_from(containers.len()).unwrap_or(u32::MAX),
        };
        bus.publish(Event::Metrics {
            app: AppRef {
                app_id,
                owner_id: app.owner_id.clone(),
                name: app.name.clone(),
            },
            containers,
            aggregated,
            timestamp: timestamp.to_owned(),
        })
        .await;
    }
}
