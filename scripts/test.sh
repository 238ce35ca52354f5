#!/usr/bin/env bash
# The one test command (README, CI). On a fresh machine it installs and starts
# what the tests need, then runs: rustfmt check, clippy -D warnings, the
# dependency-tree check, and every test of the workspace.
#
#   scripts/test.sh            everything
#   scripts/test.sh -- NAME    only tests whose name contains NAME
#
# Needs: a Rust toolchain, python3 with venv, and either a running MariaDB on
# 127.0.0.1:3306 (root, empty password) or permission to install/start one;
# the TLS tests also start MariaDB instances of their own (mariadb-server's
# programs, installed when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/services.sh

filter=()
if [[ "${1:-}" == "--" ]]; then shift; filter=("$@"); fi

step() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }

step "toolchain"
ensure_rust_components

step "services: MariaDB, kubectl, promtool, moto"
ensure_mariadb
ensure_mariadb_programs   # mariadb-install-db & co. for the TLS MariaDB the tests start
ensure_kubectl
ensure_promtool       # exports HPA_TIER_TEST_PROMTOOL
ensure_moto_venv
start_moto            # exports HPA_TIER_TEST_MOTO_URL; stopped on exit
export HPA_TIER_TEST_MYSQL_URL="mysql://root@127.0.0.1:3306"

step "format"
cargo fmt --all -- --check

step "clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "dependency tree: one TLS stack (rustls 0.23 + ring), no OpenSSL, no aws-lc"
scripts/check-deps.sh

step "tests"
cargo test --workspace --locked -- "${filter[@]}"

if [[ ${#filter[@]} -eq 0 ]]; then
step "demo (the README's first command) tells its story"
demo_log=$(mktemp)
if ! bash scripts/demo.sh >"$demo_log" 2>&1; then cat "$demo_log" >&2; exit 1; fi
for line in "blocked at 600: tier 1000 needs RDS db.r5.8xlarge; reader prod-aurora-2 is db.r7g.large" \
            "scaled up 600 → 1000" "scaled up 3000 → 4000" "held at 4000" "scaled down 4000 → 600" \
            "signature verified; code 0" "upgrade to 2000: scaled up 600 → 2000" "held at 2000: hold at 2000" \
            "Window launch at" "tier 3000 not allowed yet" \
            "250 users need tier 600; schedule evening-peak needs 4000: scaled up 2000 → 4000"; do
  grep -qF "$line" "$demo_log" || { cat "$demo_log" >&2; echo "demo output lacks: $line" >&2; exit 1; }
done
rm -f "$demo_log"
fi

step "all green"
