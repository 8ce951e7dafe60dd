//! `serve`: the server on its store, with the demo graph when asked.

use anyhow::{Context, Result, anyhow, bail};
use tokio::net::TcpListener;
use tracing::{info, warn};

use super::{authenticator, open_store};
use crate::config::{Config, Mode};

pub(super) async fn serve(cfg: Config, demo: bool) -> Result<()> {
    for variable in crate::config::ignored_variables() {
        warn!(%variable, "ignored: an NHIGOV_ variable that names no configuration section");
    }
    let auth = authenticator(&cfg)?;
    let store = open_store(&cfg).await?;
    if demo {
        match crate::demo::load(&store).await {
            Ok(Some(s)) => info!(nodes = s.nodes, edges = s.edges, "demo graph loaded"),
            Ok(None) => info!("store not empty; demo graph not loaded again"),
            Err(e) => bail!("loading the demo graph: {e}"),
        }
        let token = auth.mint(&crate::demo::investigator(), chrono::Duration::hours(8)).map_err(|e| anyhow!(e))?;
        println!("Demo investigator: {}", crate::demo::DEMO_INVESTIGATOR);
        println!("Token (8h):        {token}");
        println!("Try:  curl -s http://{}/graphql -H 'Authorization: Bearer {token}' \\", cfg.bind);
        println!("        -H 'Content-Type: application/json' \\");
        println!(
            "        -d '{{\"query\":\"{{ nhis(first: 5) {{ totalCount edges {{ node {{ id name owners {{ ... on Person {{ name }} ... on Team {{ name }} }} }} }} }} }}\"}}'"
        );
        println!("Console:  http://{}/console  (paste the token to sign in)", cfg.bind);
        if cfg.mode == Mode::Development {
            // The fragment stays in the browser; the page keeps the token for its tab and
            // sends it with queries and subscriptions.
            println!("GraphiQL: http://{}/#token={token}", cfg.bind);
        }
    }
    let listener = TcpListener::bind(cfg.bind).await.with_context(|| format!("cannot listen on {}", cfg.bind))?;
    // Traversals answer from the graph index: the app loads it now, while /readyz says
    // so, rather than in the first investigator's request.
    crate::app::App::start(&cfg, store.clone(), auth)?.serve(listener, shutdown_signal()).await?;
    store.close().await;
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
pub(super) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => info!(signal = "SIGINT", "shutting down"),
        _ = term => info!(signal = "SIGTERM", "shutting down"),
    }
}
