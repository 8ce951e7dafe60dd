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
}

impl App {
    /// Start the background work over `store`: the graph index loads (while `/readyz`
    /// says so) and the governance sweep begins. Serve with [`App::serve`].
    pub fn start(cfg: &Config, store: Store, auth: Authenticator) -> App {
        let warming = store.warm_graph();
        let state = crate::app_state(cfg, store.clone(), auth);
        let every = Duration::from_secs(cfg.governance.sweep_secs.max(1));
        let sweeper = tokio::spawn(sweep(store, every));
        App { state, warming, sweeper }
    }

    /// Serve on `listener` until `shutdown` resolves, then stop what runs beside it.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let App { state, warming, sweeper } = self;
        let served = crate::server::run(listener, state, shutdown).await;
        sweeper.abort();
        warming.abort();
        served
    }
}

/// Every `every`, what the server does by itself: raise alerts for break-glass access
/// left unapproved past its window (the alert puts it in front of people), close the
/// approved rotations seen done, then close that overdue access, each closing a
/// decision of the server. Failures are logged, and the next tick tries again.
async fn sweep(store: Store, every: Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
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
    }
}
