#!/usr/bin/env bash
# The one test command (README, CI). On a fresh machine it installs and starts
# what the tests need, then runs: rustfmt check, clippy -D warnings, the
# dependency-tree check, and every test of the workspace.
#
#   scripts/test.sh            everything
#   scripts/test.sh -- NAME    only tests whose name contains NAME
#
# Needs: a Rust toolchain, python3 with venv, and either a running MariaDB on
# 127.0.0.1:3306 (root, empty password) or permission to install/start one.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/services.sh

filter=()
if [[ "${1:-}" == "--" ]]; then shift; filter=("$@"); fi

step() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }

step "toolchain"
ensure_rust_components

step "services: MariaDB, kubectl, moto"
ensure_mariadb
ensure_kubectl
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

step "all green"
