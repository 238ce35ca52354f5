//! hpa-tier as a library: the binary (`main.rs`) is a thin wrapper, and the
//! integration tests drive the adapters directly against the stand-ins.
//!
//! Functional core, imperative shell. The core — `tiers`, `plan`,
//! `prereq::catalog`, `record`, `hpa`, notice rendering — is pure and must not
//! import kube, aws-*, mysql_async or ureq (`scripts/test.sh` checks). Each
//! outside system is one adapter behind a narrow trait: `source` (online
//! users), `prereq::aws`, `cluster`, `store`, `notify`. `app` wires them.
#![forbid(unsafe_code)]

pub mod app;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod error;
pub mod logging;
pub mod notify;
pub mod output;
pub mod prereq;
pub mod source;
pub mod store;
