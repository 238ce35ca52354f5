//! hpa-tier as a library: the binary (`main.rs`) is a thin wrapper, and the
//! integration tests drive the adapters and the shell directly.
//!
//! Functional core, imperative shell. Everything that decides lives in the
//! `hpa-tier-core` crate (`core/`), whose manifest names no I/O crate. This
//! crate holds one adapter per outside system, each behind a narrow trait —
//! `source` (online users), `prereq::aws`, `cluster`, `store`, `notify`,
//! `metrics` (the Pushgateway and node_exporter's textfile) —
//! the configuration, and `app`, the shell that runs a command's phases over
//! those adapters (`simulate`, the offline replay, has its own small shell).
#![forbid(unsafe_code)]

pub mod app;
pub mod budget;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod error;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod output;
pub mod prereq;
pub mod quote;
pub mod simulate;
pub mod source;
pub mod store;
