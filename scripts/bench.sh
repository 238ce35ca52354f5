#!/usr/bin/env bash
# The benchmark: is a `check` bounded by round trips, not by waiting in turn?
#
#   scripts/bench.sh [--latency-ms L] [--runs N]     (defaults: 50 ms, 15 runs)
#
# Builds the release binary and the stand-ins, starts MariaDB (loopback, no
# added latency: in production it sits in the same VPC) and moto, then lets
# scripts/bench/run.py start the Google, Kubernetes and Feishu stand-ins with
# L added to every response and a delay-proxy adding L in front of moto, and
# time: (a) `check` moving six HPAs up one tier, (b) `check` with nothing to
# do, (c) `check` moving 60 HPAs (ten namespaces × six services) up one tier,
# (d) `tiers`, (e) (b) with five weeks of records in MySQL and the forecast
# reading them, (f) (b) on the file store and (g) with five weeks of samples
# there, (h) `simulate` over five weeks of 5-minute ticks. Each runs warm (the GA token cached by the warm-up run). It prints a
# Markdown table (round trips, median and max wall time, median / L, peak
# RSS, the verdict) and exits 1 naming any budget missed. Not a test:
# timings belong to the machine it runs on.
#
# Everything it starts is stopped when it ends; nothing leaves loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
source scripts/lib/services.sh

latency=50
runs=15
while [[ $# -gt 0 ]]; do
  case "$1" in
    --latency-ms) latency=${2:?--latency-ms needs a value}; shift 2 ;;
    --runs) runs=${2:?--runs needs a value}; shift 2 ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/hpa-tier-bench.XXXXXX")
MOTO_PID=
cleanup() {
  if [[ -n "$MOTO_PID" ]]; then
    kill "$MOTO_PID" 2>/dev/null || true
    wait "$MOTO_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

echo "# building the release binary and the stand-ins" >&2
cargo build --release --locked --quiet -p hpa-tier -p hpa-tier-standins
# The helper every run is timed through (see there).
rustc --edition 2021 -O -o "$WORK/spawn" scripts/bench/spawn.rs

ensure_mariadb
ensure_moto_venv
[[ -x /usr/bin/time ]] || apt_install time   # GNU time: the peak RSS of each run
# moto through a wrapper that turns its garbage collector off (see there).
port=$(free_port)
"$VENV/bin/python" scripts/bench/moto_server.py -H 127.0.0.1 -p "$port" >"$WORK/moto.log" 2>&1 &
MOTO_PID=$!
MOTO=http://127.0.0.1:$port
for _ in $(seq 1 100); do http_ok "$MOTO/moto-api/" && break; sleep 0.2; done
http_ok "$MOTO/moto-api/" || { cat "$WORK/moto.log" >&2; echo "moto_server did not start" >&2; exit 1; }

"$VENV/bin/python" scripts/bench/run.py \
  --bin "$ROOT/target/release/hpa-tier" \
  --standins "$ROOT/target/release/hpa-tier-standins" \
  --spawn "$WORK/spawn" \
  --moto "$MOTO" \
  --work "$WORK" \
  --latency-ms "$latency" \
  --runs "$runs"
