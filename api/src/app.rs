//! The composition root: the running service over an open store. `nhigov serve` and the
//! test harness both start it, so what runs beside the HTTP server (the graph index
//! warm-up, the governance sweep, webhooks, started by `server::run`) is what the tests
//! run too.

use std::time::Duration;

use graph_model::store::Store;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tracing::info;

use crate::auth::Authenticator;
use crate::config::Config;
use crate::server::AppState;

/// The service, started: its state and the tasks that run beside the server.
pub struct App {
    state: AppState,
    warming: JoinHandle<()>,
    sweeper: JoinHandle<()>,
    evaluator: JoinHandle<()>,
    checkpoints: Option<JoinHandle<()>>,
}

impl App {
    /// Start the background work over `store`: the graph index loads (while `/readyz`
    /// says so), the governance sweep, the control evaluator and, with a key configured,
    /// the chain checkpoints begin. Serve with [`App::serve`]. Fails when the checkpoint
    /// key or file cannot be read.
    pub fn start(cfg: &Config, store: Store, auth: Authenticator) -> anyhow::Result<App> {
        let checkpoints = crate::checkpoints::Checkpointer::open(&cfg.checkpoints)?.map(|signer| {
            let every = Duration::from_secs(cfg.checkpoints.every_secs.max(1));
            tokio::spawn(crate::checkpoints::run(store.clone(), signer, every))
        });
        let warming = store.warm_graph();
        let state = crate::app_state(cfg, store.clone(), auth);
        let every = Duration::from_secs(cfg.governance.sweep_secs.max(1));
        let sweeper = tokio::spawn(sweep(store.clone(), every, cfg.retention.clone()));
        let every = Duration::from_secs(cfg.governance.controls_secs.max(1));
        let evaluator = tokio::spawn(evaluate_controls(store, every));
        Ok(App { state, warming, sweeper, evaluator, checkpoints })
    }

    /// Serve on `listener` until `shutdown` resolves, then stop what runs beside it.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let App { state, warming, sweeper, evaluator, checkpoints } = self;
        let served = crate::server::run(listener, state, shutdown).await;
        if let Some(c) = checkpoints {
            c.abort();
        }
        sweeper.abort();
        evaluator.abort();
        warming.abort();
        served
    }
}

/// Every `every`, what the server does by itself: raise alerts for break-glass access
/// left unapproved past its window (the alert puts it in front of people), close the
/// approved rotations seen done, then close that overdue access, each closing a
/// decision of the server; remind reviewers of campaign items due soon and escalate the
/// overdue ones; and, at most hourly, prune what `retention` lets go.
/// Failures are logged, and the next tick tries again.
async fn sweep(store: Store, every: Duration, retention: graph_model::store::Retention) {
    const PRUNE_EVERY: Duration = Duration::from_secs(3600);
    let mut tick = tokio::time::interval(every);
    let mut pruned: Option<std::time::Instant> = None;
    loop {
        tick.tick().await;
        if retention.prunes() && pruned.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
            pruned = Some(std::time::Instant::now());
            match store.prune(chrono::Utc::now(), &retention).await {
                Ok(r) if r == graph_model::store::PruneReport::default() => {}
                Ok(r) => info!(events = r.events, deliveries = r.deliveries, traversals = r.traversals, "pruned"),
                Err(e) => tracing::warn!(error = %e, "pruning failed"),
            }
        }
        match store.raise_overdue_emergency_alerts().await {
            Ok(0) => {}
            Ok(n) => info!(alerts = n, "emergency access past its approval window"),
            Err(e) => tracing::warn!(error = %e, "sweep for overdue emergency access failed"),
        }
        match store.observe_rotations().await {
            Ok(0) => {}
            Ok(n) => info!(fulfilled = n, "approved rotations seen done"),
            Err(e) => tracing::warn!(error = %e, "observing rotations failed"),
        }
        match store.close_overdue_emergency_access().await {
            Ok(0) => {}
            Ok(n) => info!(closed = n, "unapproved emergency access closed"),
            Err(e) => tracing::warn!(error = %e, "closing overdue emergency access failed"),
        }
        match store.sweep_reviews(chrono::Utc::now()).await {
            Ok(s) if s == graph_model::store::ReviewSweep::default() => {}
            Ok(s) => {
                info!(reminded = s.reminded, escalated = s.escalated, "campaign review items reminded and escalated")
            }
            Err(e) => tracing::warn!(error = %e, "sweeping campaign reviews failed"),
        }
    }
}

/// Keep control results current: when this server has written something (after a
/// pause that gathers a burst of writes into one pass), judge again the subjects the
/// writes touched; every `every`, evaluate every control over the whole graph, for the
/// checks that turn on the clock and whatever a pass between missed. The pause is at
/// least as long as the last pass took, so under a stream of writes evaluation takes
/// at most half the time. With several replicas the evaluation lease lets one run at a
/// time, and a pass after a write judges what any replica touched since the last.
async fn evaluate_controls(store: Store, every: Duration) {
    const GATHER: Duration = Duration::from_millis(200);
    let mut tick = tokio::time::interval(every);
    let mut last = Duration::ZERO;
    loop {
        let full = tokio::select! {
            _ = tick.tick() => true,
            _ = store.graph_changed() => {
                tokio::time::sleep(GATHER.max(last).min(every)).await;
                false
            }
        };
        let started = std::time::Instant::now();
        let now = chrono::Utc::now();
        let outcome = if full { store.evaluate_controls(now).await } else { store.evaluate_control_changes(now).await };
        last = started.elapsed();
        match outcome {
            Ok(r) if r.skipped => tracing::debug!("another replica holds the control evaluation lease"),
            Ok(r) if r.full.is_empty() && r.changes == 0 => {}
            Ok(r) => info!(
                full = ?r.full,
                changes = r.changes,
                touched = r.touched,
                ms = last.as_millis() as u64,
                "control results updated"
            ),
            Err(e) => tracing::warn!(error = %e, "evaluating controls failed"),
        }
    }
}
