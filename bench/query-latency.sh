#!/usr/bin/env bash
# Query latency of backstop's views beside PostgreSQL on the same 100k rows. Not a test: prints
# figures and ratios measured in one run on this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-test-env.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/backstop-target}"
cargo bench --bench query_latency
