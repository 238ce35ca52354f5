//! Local stand-ins for the outside systems hpa-tier talks to, speaking their
//! real wire protocols on 127.0.0.1: Google (OAuth token endpoint and the GA4
//! Data API realtime report), a Kubernetes API server (autoscaling/v2 HPAs
//! and core/v1 ConfigMaps, usable by kubectl), a Feishu bot webhook, a
//! Prometheus Pushgateway, and the Python tool's mock online-users server.
//! AWS is played by moto, not by this crate.
//!
//! Tests start them in-process with `spawn` (each on its own thread and
//! runtime) and steer them through their handles; `scripts/demo.sh` and
//! `scripts/bench.sh` run the `hpa-tier-standins` binary. Test and demo
//! support only: nothing here is part of the product.

pub mod delay_proxy;
pub mod feishu;
pub mod google;
pub mod kube;
pub mod pushgateway;
pub mod server;
#[cfg(test)]
mod test_client;
pub mod users;
