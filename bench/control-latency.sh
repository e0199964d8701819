#!/usr/bin/env bash
# Latency of CANCEL, SUSPEND and STOP on a running backup (p50/p99 over 30 runs each), and the
# cost of resuming a backup killed at 50%. Prints figures; asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/backstop-target}"
cargo bench --bench control_latency
