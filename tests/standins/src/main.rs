//! `hpa-tier-standins <google|kube|feishu|pushgateway|users|delay-proxy> [options]`: one
//! stand-in in the foreground, for `scripts/demo.sh` and `scripts/bench.sh`.
//! It prints `<name> listening on http://127.0.0.1:PORT` once ready.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "hpa-tier-standins")]
struct Cli {
    #[command(subcommand)]
    which: Which,
}

#[derive(Subcommand)]
enum Which {
    /// Google OAuth token endpoint + GA4 Data API runRealtimeReport.
    Google(hpa_tier_standins::google::Args),
    /// Kubernetes API server with autoscaling/v2 HPAs and core/v1 ConfigMaps.
    Kube(hpa_tier_standins::kube::Args),
    /// Feishu bot webhook receiver.
    Feishu(hpa_tier_standins::feishu::Args),
    /// Prometheus Pushgateway (push API and /metrics).
    Pushgateway(hpa_tier_standins::pushgateway::Args),
    /// The Python tool's mock online-users server.
    Users(hpa_tier_standins::users::Args),
    /// An HTTP proxy that delays every response (latency in front of moto).
    DelayProxy(hpa_tier_standins::delay_proxy::Args),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().which {
        Which::Google(a) => hpa_tier_standins::google::main(a).await,
        Which::Kube(a) => hpa_tier_standins::kube::main(a).await,
        Which::Feishu(a) => hpa_tier_standins::feishu::main(a).await,
        Which::Pushgateway(a) => hpa_tier_standins::pushgateway::main(a).await,
        Which::Users(a) => hpa_tier_standins::users::main(a).await,
        Which::DelayProxy(a) => hpa_tier_standins::delay_proxy::main(a).await,
    }
}
