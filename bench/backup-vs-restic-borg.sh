#!/usr/bin/env bash
# backstop against restic and borg (Debian's packages) on the same data in the same run:
# full backup, unchanged incremental, incremental after 5% of the files changed, restore (the
# faster of two rounds; also counted with the `sync` that makes it durable).
# Prints wall time, CPU seconds, repository size and peak RSS, with ratios to restic and borg.
# Not a test: these machines are shared and noisy, so only ratios measured together mean much.
#
#   bench/backup-vs-restic-borg.sh            # dataset in bench/work/data (made if missing)
#   SCALE=2 bench/backup-vs-restic-borg.sh    # a bigger dataset (remove bench/work first)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."
root=$(pwd)
work=$root/bench/work
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/backstop-target}"

scripts/setup-test-env.sh
if ! command -v restic >/dev/null || ! command -v borg >/dev/null || [ ! -x /usr/bin/time ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends restic borgbackup time
fi
build_backstop

data=$work/data
[ -d "$data" ] || bench/make-dataset.sh "$data"
rm -rf "$work/runs"
mkdir -p "$work/runs"
results=$work/runs/results.tsv
: > "$results"

# record TOOL STEP WALL CPU RSS_KB
record() { printf '%s\t%s\t%s\t%s\t%s\n' "$@" >> "$results"; }

timed() { # timed TOOL STEP command...: wall, user+sys CPU and peak RSS of a command
    local tool=$1 step=$2; shift 2
    sync  # no step pays for writing back what the one before it left dirty
    /usr/bin/time -f '%e %U %S %M' -o "$work/runs/time" "$@" >/dev/null 2>"$work/runs/err" || {
        cat "$work/runs/err" >&2; exit 1; }
    read -r wall user sys rss < "$work/runs/time"
    record "$tool" "$step" "$wall" "$(echo "$user + $sys" | bc)" "$rss"
}

# Every tool runs with a warm page cache, as the figures in the issue were taken.
find "$data" -type f -exec cat {} + >/dev/null

# --- backstop: a server on loopback, driven by psql; CPU and RSS read from /proc of the server.
bdir=$work/runs/backstop
mkdir -p "$bdir"
port=55433
start_backstop "$backstop" $port "$bdir"
sqlb() { psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p $port -U admin -d backstop -c "$1" >/dev/null 2>>"$bdir/psql.log" || {
    tail -5 "$bdir/psql.log" >&2; exit 1; }; }
cpu_of() { awk '{print ($14 + $15) / 100}' /proc/$server/stat; }
bstep() { # bstep STEP SQL
    local c0 t0 c1 t1
    sync
    # Peak RSS of this step only: "5" resets the kernel's high-water mark (VmHWM).
    echo 5 > /proc/$server/clear_refs 2>/dev/null || true
    c0=$(cpu_of); t0=$(date +%s.%N)
    sqlb "$2"
    t1=$(date +%s.%N); c1=$(cpu_of)
    record backstop "$1" "$(echo "$t1 - $t0" | bc)" "$(echo "$c1 - $c0" | bc)" "$(awk '/VmHWM/ {print $2}' /proc/$server/status)"
}
sqlb "CREATE TENANT bench SOURCE = 'dir://$data'"
sqlb "ALTER SYSTEM SET DATA_BACKUP_DEST = 'file://$bdir/repo'"

# --- restic and borg repositories.
export RESTIC_PASSWORD=bench RESTIC_REPOSITORY=$work/runs/restic BORG_REPO=$work/runs/borg
export BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
restic init -q
borg init -e none "$BORG_REPO"

run_all() { # run_all STEP
    bstep "$1" "ALTER SYSTEM BACKUP INCREMENTAL TENANT bench WAIT"
    timed restic "$1" restic backup -q "$data"
    timed borg "$1" borg create "::$1" "$data"
}

run_all full
run_all unchanged
python3 - "$data" <<'PY'
import os, sys
files = sorted(os.path.join(d, f) for d, _, fs in os.walk(sys.argv[1]) for f in fs)
for path in files[::20]:
    with open(path, "ab") as f:
        f.write(b"changed by the benchmark\n")
PY
run_all changed5

for tool in backstop restic borg; do
    case $tool in
        backstop) size=$(du -sb "$bdir/repo" | cut -f1) ;;
        *) size=$(du -sb "$work/runs/$tool" | cut -f1) ;;
    esac
    record "$tool" repo_bytes "$size" 0 0
done

# Restores run twice, the tools taking turns, and the faster of each tool's two counts: ext4
# without a journal (this machine's) creates files several times slower for minutes after a
# large delete, and the first restore comes soon after this run deleted the previous one.
# The restored trees are kept until the end for the same reason (about 16 GB at SCALE=1).
# Each tool's repository is read into the page cache before its restore, as the source is
# before a backup: backstop drops its packs from the cache once they are durable, restic and
# borg leave theirs there, and a restore from disk would measure the disk instead.
# A backstop restore ends only once what it wrote is durable (syncfs); restic and borg return
# with the restored tree still dirty in the page cache. So each restore is also counted with the
# `sync` after it: "restore+sync" compares restores that survive a power loss.
warm() { find "$1" -type f -exec cat {} + >/dev/null; }
synced() { # synced: the restore just recorded, plus the sync that makes it durable
    local t0 t1
    t0=$(date +%s.%N); sync; t1=$(date +%s.%N)
    tail -1 "$results" | awk -F'\t' -v s="$(echo "$t1 - $t0" | bc)" -v OFS='\t' \
        '{print $1, "restore+sync", $3 + s, $4, $5}' >> "$results"
}
for round in 1 2; do
    warm "$bdir/repo"
    bstep restore "ALTER SYSTEM RESTORE r$round FROM bench TO 'dir://$work/runs/r$round-backstop' WAIT"
    synced
    mkdir -p "$work/runs/r$round-restic" "$work/runs/r$round-borg"
    warm "$RESTIC_REPOSITORY"
    timed restic restore restic restore -q latest --target "$work/runs/r$round-restic"
    synced
    warm "$BORG_REPO"
    (cd "$work/runs/r$round-borg" && timed borg restore borg extract ::changed5)
    synced
done
if diff -rq "$data" "$work/runs/r1-backstop" >/dev/null && diff -rq "$data" "$work/runs/r2-backstop" >/dev/null; then
    echo "backstop restores identical to the source"
else
    echo "backstop restores DIFFER from the source" >&2
fi
rm -rf "$work/runs/r"[12]-*

python3 - "$results" <<'PY'
import sys, collections
rows = collections.defaultdict(dict)
for line in open(sys.argv[1]):
    tool, step, wall, cpu, rss = line.split("\t")
    row = (float(wall), float(cpu), int(rss))
    if tool not in rows[step] or row[0] < rows[step][tool][0]:  # the faster of repeated steps
        rows[step][tool] = row
def ratio(a, b):
    return f"{a / b:.2f}" if b else "-"
print(f"{'step':<12} {'tool':<9} {'wall s':>8} {'cpu s':>8} {'peak RSS MB':>12} {'wall/restic':>12} {'wall/borg':>10}")
for step in ["full", "unchanged", "changed5", "restore", "restore+sync"]:
    for tool in ["backstop", "restic", "borg"]:
        wall, cpu, rss = rows[step][tool]
        print(f"{step:<12} {tool:<9} {wall:8.2f} {cpu:8.2f} {rss / 1024:12.0f} "
              f"{ratio(wall, rows[step]['restic'][0]):>12} {ratio(wall, rows[step]['borg'][0]):>10}")
print()
for tool in ["backstop", "restic", "borg"]:
    size = rows["repo_bytes"][tool][0]
    print(f"repository {tool:<9} {size / 2**20:10.1f} MB  /restic {ratio(size, rows['repo_bytes']['restic'][0])}  /borg {ratio(size, rows['repo_bytes']['borg'][0])}")
PY
