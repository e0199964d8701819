#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets) for a bounded time each, with cargo-fuzz on the
# nightly toolchain, both installed here when missing:
#
#   scripts/fuzz.sh                      # every target, 60 s each (what CI runs)
#   FUZZ_SECONDS=600 scripts/fuzz.sh     # longer
#   scripts/fuzz.sh wire index_file      # some targets
#
# Targets are built without a sanitizer (backstop has no unsafe code of its own outside
# syscalls; a panic, an abort, a timeout or memory past 4 GiB is a crash). The corpus grows in
# $HOME/.cache/backstop-fuzz/corpus/<target>, seeded from fuzz/seeds/<target>; a crash is written
# to fuzz/artifacts/<target>/ and ends the run with its name: make it a regression test (a unit
# test that decodes the same bytes) before fixing it. Prints "N passed, N failed" (one per
# target) for .ci/run to sum.
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-60}
all=(parse wire pack_trailer index_file manifest_segment checkpoint set_descriptor
     archived_segment format_file)
if [ "$#" -gt 0 ]; then targets=("$@"); else targets=("${all[@]}"); fi

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
cargo fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --version 0.13.1
export CARGO_TARGET_DIR="$HOME/.cache/backstop-fuzz-target"
work="$HOME/.cache/backstop-fuzz"
mkdir -p "$work/corpus"

if ! cargo +nightly fuzz build --sanitizer none > "$work/build.log" 2>&1; then
    tail -30 "$work/build.log" >&2
    echo "0 passed, ${#targets[@]} failed"
    exit 1
fi
passed=0
failed=0
for target in "${targets[@]}"; do
    corpus="$work/corpus/$target"
    mkdir -p "$corpus" "fuzz/artifacts/$target"
    seeds=()
    [ -d "fuzz/seeds/$target" ] && seeds=("fuzz/seeds/$target")
    echo "fuzzing $target for ${seconds}s"
    if cargo +nightly fuzz run --sanitizer none "$target" "$corpus" "${seeds[@]}" -- \
        -max_total_time="$seconds" -rss_limit_mb=4096 -timeout=30 \
        -artifact_prefix="fuzz/artifacts/$target/" > "$work/$target.log" 2>&1; then
        passed=$((passed + 1))
        tail -1 "$work/$target.log"
    else
        failed=$((failed + 1))
        echo "fuzz target $target FAILED; its log: $work/$target.log; the input:" >&2
        ls fuzz/artifacts/"$target"/ >&2
        tail -30 "$work/$target.log" >&2
    fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
