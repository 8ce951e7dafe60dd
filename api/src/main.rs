//! The `nhigov` binary: arguments, logging and the runtime; the work is in `nhigov::cli`.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use nhigov::cli::{Cli, run};
use nhigov::config::LogFormat;
use tracing_subscriber::prelude::*;
use tracing_subscriber::{EnvFilter, Layer};

/// Our own information, and only warnings from the storage engine, which otherwise
/// describes its configuration at length on every start.
const DEFAULT_LOG: &str = "info,surrealdb=warn,surrealkv=warn";

/// mimalloc rather than glibc's malloc: the query engine allocates and frees many small
/// values per record, where glibc spent as much time as the queries themselves
/// (BENCHMARKS.md, "The allocator"). It keeps what it frees ([`nhigov::allocator`]).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Errors capture no backtrace unless `RUST_LIB_BACKTRACE` asks for one; panics keep
/// theirs (`RUST_BACKTRACE`). SurrealDB makes error values in its normal course (a name
/// no query binds looked up in the catalog, a key found present) and, with
/// `RUST_BACKTRACE=1` in the environment, each captured a backtrace: 2% of the decision
/// committer's CPU where it was measured (BENCHMARKS.md).
fn errors_without_backtraces() {
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // SAFETY: first thing in `main`, before any other thread exists.
        unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") }
    }
}

fn main() -> ExitCode {
    errors_without_backtraces();
    nhigov::allocator::configure();
    let cli = Cli::parse();
    // Embedded SurrealDB runs queries on the runtime's threads and recurses deeply.
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().thread_stack_size(16 << 20).build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Traces, when `serve` is configured to export them: the exporter needs the runtime,
    // and its layer must be on the registry from the start.
    let telemetry = match cli.telemetry_config() {
        Some(cfg) => match runtime.block_on(async { nhigov::telemetry::start(&cfg) }) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: {e:#}");
                return ExitCode::FAILURE;
            }
        },
        None => None,
    };
    let filter = EnvFilter::try_from_env("NHIGOV_LOG").unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(std::io::stderr().is_terminal());
    let fmt = match cli.log_format {
        LogFormat::Json => fmt.json().boxed(),
        LogFormat::Text => fmt.boxed(),
    };
    tracing_subscriber::registry().with(telemetry.as_ref().map(|t| t.layer())).with(fmt).with(filter).init();
    if let Some(t) = &telemetry {
        tracing::info!(endpoint = t.endpoint(), "exporting traces over OTLP");
    }
    let outcome = runtime.block_on(async {
        let outcome = tokio::spawn(run(cli)).await;
        if let Some(t) = telemetry {
            t.shutdown().await;
        }
        outcome
    });
    match outcome {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
