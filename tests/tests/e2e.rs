//! The end-to-end suite, one binary: every module starts the real server (or the
//! CLI) and talks to it as a client would. One binary links the engine once, not once
//! per file, which keeps the build small on disk and quick to link.

mod auth;
mod bad_input;
mod cases;
mod compliance;
mod concurrency;
mod console;
mod containers;
mod cors;
mod demo;
mod docs;
mod export;
mod extremes;
mod governed;
mod graph;
mod inventory;
mod layers;
mod least_privilege;
mod metrics;
mod node_clients;
mod oidc;
mod opengraph;
mod paging;
mod persisted;
mod query_count;
mod relay;
mod roles;
mod scanners;
mod sdl;
mod sod;
mod story;
mod subscriptions;
mod tamper;
mod webhooks;
