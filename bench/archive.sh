#!/usr/bin/env bash
# Archive log speed: archive-push of 16 MiB segments (p50/p99, MiB/s, segments/s) and the lag
# of a directory tenant's log folder (p50/p99). Prints figures; asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/backstop-target}"
cargo bench --bench archive_throughput
