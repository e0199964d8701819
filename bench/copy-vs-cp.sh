#!/usr/bin/env bash
# Copy throughput of ALTER SYSTEM BACKUP BACKUPSET against `cp -r` of the same destination
# folder (and `cp -r` followed by `sync`, since backstop makes every object durable before it
# counts), on the dataset of bench/make-dataset.sh, warm page cache. Prints figures; asserts
# nothing.
#
# The last line is the disk's own write rate for the same bytes (dd, O_DIRECT, 4 writers): a
# copy that is durable before it counts cannot be faster than that, whatever `cp -r` into the
# page cache shows.
#
# ROUNDS (default 3) rounds, each into fresh folders; odd rounds run the copy first, even rounds
# `cp -r` first. On these virtual machines a write into page-cache pages freed a moment ago is
# several times faster than one into pages the host must supply again, so whichever runs second
# gains from the pages the first freed; alternating gives both the same share of that luck.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."
root=$(pwd)
work=$root/bench/work
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/backstop-target}"
scripts/setup-test-env.sh
build_backstop
data=$work/data
[ -d "$data" ] || bench/make-dataset.sh "$data"
run=$work/copy-run
rm -rf "$run"
mkdir -p "$run"
rounds=${ROUNDS:-3}

port=55434
start_backstop "$backstop" $port "$run"
sql() { psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p $port -U admin -d backstop -c "$1" >/dev/null; }
sql "CREATE TENANT bench SOURCE = 'dir://$data'"
sql "ALTER SYSTEM SET DATA_BACKUP_DEST = 'file://$run/dest'"
sql "ALTER SYSTEM BACKUP TENANT bench WAIT" 2>/dev/null
find "$run/dest" -type f -exec cat {} + >/dev/null
bytes=$(du -sb "$run/dest" | cut -f1)

now() { date +%s.%N; }
copy() {
    sql "ALTER SYSTEM SET BACKUP_BACKUP_DEST = 'file://$run/copy-$1'"
    local t0; t0=$(now)
    sql "ALTER SYSTEM BACKUP BACKUPSET 1 WAIT" 2>/dev/null
    echo "copy $(now) $t0" >>"$run/times"
}
cp_r() {
    local t0 t1; t0=$(now)
    cp -r "$run/dest" "$run/cp-$1"
    t1=$(now)
    sync
    echo "cp $t1 $t0" >>"$run/times"
    echo "cp+sync $(now) $t0" >>"$run/times"
}
: >"$run/times"
for round in $(seq 1 "$rounds"); do
    sync
    if [ $((round % 2)) = 1 ]; then copy "$round"; cp_r "$round"; else cp_r "$round"; copy "$round"; fi
    rm -rf "$run/copy-$round" "$run/cp-$round"
done

# The disk's own rate for the same bytes: 4 writers with O_DIRECT, as the copy's 4 threads.
sync
t0=$(now)
writers=()
for i in 1 2 3 4; do
    dd if=/dev/zero of="$run/dd-$i" bs=8M count=$((bytes / 4 / 8388608 + 1)) oflag=direct conv=fsync status=none &
    writers+=($!)
done
wait "${writers[@]}"
echo "disk $(now) $t0" >>"$run/times"

python3 - "$bytes" "$run/times" <<'PY'
import statistics, sys
mb = int(sys.argv[1]) / 2**20
runs = {}
for line in open(sys.argv[2]):
    what, end, start = line.split()
    runs.setdefault(what, []).append(float(end) - float(start))
med = {what: statistics.median(t) for what, t in runs.items()}
print(f"destination: {mb:.0f} MiB, {len(runs['copy'])} rounds (odd rounds copy first); median, then each round")
for what, label in [("copy", "BACKUP BACKUPSET"), ("cp", "cp -r"), ("cp+sync", "cp -r + sync"),
                    ("disk", "disk (dd direct)")]:
    each = " ".join(f"{t:.2f}" for t in runs[what])
    ratio = "" if what == "copy" else f"   backstop / it: {med['copy'] / med[what]:.2f}"
    print(f"{label:17} {med[what]:.2f} s  {mb / med[what]:5.0f} MiB/s  [{each}]{ratio}")
PY
rm -rf "$run"
