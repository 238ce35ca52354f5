//! The one integration-test binary. Each module drives real code against a
//! real peer on loopback: the stand-ins of `tests/standins`, MariaDB, moto.
//! `scripts/test.sh` starts MariaDB and moto and exports where they are.

mod support;

/// The pure core imports no adapter crate.
mod architecture;
/// The binary's command line, config validation and `tiers` (exit codes, messages).
mod cli_config;
/// Reading and patching HPAs over the Kubernetes stand-in; kubectl against it.
mod cluster;
/// The deploy files (kustomize, IAM, Docker, cron, systemd) agree with the binary and each other.
mod deploy;
/// The built binary, as cron runs it, against everything at once.
mod e2e;
/// Bounded fuzzing of every parser of outside input: config, users
/// answers, state-file lines, HPAs from the API. Never a panic.
mod fuzz;
/// The gauges of every run: pushed to the Pushgateway stand-in, written as a textfile.
mod metrics;
/// Feishu notifications over the Feishu stand-in.
mod notify;
/// RDS / ElastiCache prerequisites against moto.
mod prereq;
/// Schedule windows, pre-flight warnings and the forecast, end to end.
mod proactive;
/// The shell's own policies (lock lost, dry run, partial apply, spooled
/// record, deadline, notice repeats, holds) over in-memory fakes of its ports.
mod shell;
/// `simulate`, the built binary: traces, overrides, the chart, every usage
/// error, `--from-store`, and the replay agreeing with real `check` runs.
mod simulate;
/// GA4 realtime over the Google stand-in; HTTP and Prometheus sources.
mod sources;
/// Run records, history, holds, locks and spool: MariaDB and the file store.
mod store;
/// The spool in a ConfigMap: the Kubernetes stand-in and MariaDB.
mod store_configmap;
