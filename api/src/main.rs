//! The `nhigov` binary: arguments, logging and the runtime; the work is in `nhigov::cli`.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use nhigov::cli::{Cli, run};
use nhigov::config::LogFormat;
use tracing_subscriber::EnvFilter;

/// Our own information, and only warnings from the storage engine, which otherwise
/// describes its configuration at length on every start.
const DEFAULT_LOG: &str = "info,surrealdb=warn,surrealkv=warn";

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_env("NHIGOV_LOG").unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match cli.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
    // Embedded SurrealDB runs queries on the runtime's threads and recurses deeply.
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().thread_stack_size(16 << 20).build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async { tokio::spawn(run(cli)).await });
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
