//! The command line's integration tests, one binary: each module runs the real
//! `nhigov` executable.

mod bootstrap;
mod durability;
mod export;
mod import;
mod telemetry;
mod verify;
