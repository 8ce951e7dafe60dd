//! The store's integration tests, one binary: each module opens its own store.

mod backup;
mod bulk;
mod campaigns;
mod controls;
mod governance;
mod reimport;
mod store;
