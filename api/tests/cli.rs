//! The command line's integration tests, one binary: each module runs the real
//! `nhigov` executable.

mod backup;
mod bootstrap;
mod durability;
mod export;
mod import;
mod running;
mod telemetry;
mod verify;
