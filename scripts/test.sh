#!/usr/bin/env bash
# Runs the whole test suite: installs what the tests need, then unit, integration and
# sqllogictest tests against a real server on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-test-env.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/backstop-target}"
cargo test --locked "$@"
