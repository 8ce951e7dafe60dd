//! `nhigov-surrealdb-server`: SurrealDB's server (the `surreal` command), built from the
//! `surrealdb-server` crate at the version of the SDK nhigov uses. The test suite runs
//! against it over `ws://` to prove the store behaves the same remote as embedded:
//!
//! ```text
//! nhigov-surrealdb-server start --bind 127.0.0.1:8000 --user root --pass root memory
//! ```

// The server's async state machines nest deeper than rustc's default query depth.
#![recursion_limit = "256"]

use std::process::ExitCode;

use surrealdb_server::core::CommunityComposer;

fn main() -> ExitCode {
    surrealdb_server::init(CommunityComposer())
}
