//! The pure core of hpa-tier: everything that decides, and nothing that
//! does I/O. The tier table, the instance-class catalog and what the
//! prerequisites allow, the HPAs and run records as plain values, the
//! schedule windows and which one is active, the decision itself and the
//! notices it produces. Values in, values out;
//! `now` is always a parameter.
//!
//! This crate's `Cargo.toml` has no Kubernetes, AWS, MySQL, HTTP or async
//! runtime dependency, so the boundary is kept by the compiler. The binary
//! crate (`hpa-tier`) holds the adapters and the shell that wires them.
#![forbid(unsafe_code)]

pub mod catalog;
pub mod conclude;
pub mod duration;
pub mod forecast;
pub mod hpa;
pub mod metrics;
pub mod notice;
pub mod plan;
pub mod policy;
pub mod prereq;
pub mod record;
pub mod schedule;
pub mod simulate;
pub mod status;
pub mod tiers;
