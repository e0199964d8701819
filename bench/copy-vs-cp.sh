#!/usr/bin/env bash
# Copy throughput of ALTER SYSTEM BACKUP BACKUPSET against `cp -r` of the same destination
# folder (and `cp -r` followed by `sync`, since backstop makes every object durable before it
# counts), on the dataset of bench/make-dataset.sh, warm page cache. Prints figures; asserts
# nothing.
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

port=55434
start_backstop "$backstop" $port "$run"
sql() { psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p $port -U admin -d backstop -c "$1" >/dev/null; }
sql "CREATE TENANT bench SOURCE = 'dir://$data'"
sql "ALTER SYSTEM SET DATA_BACKUP_DEST = 'file://$run/dest'"
sql "ALTER SYSTEM BACKUP TENANT bench WAIT"
sql "ALTER SYSTEM SET BACKUP_BACKUP_DEST = 'file://$run/copy'"
find "$run/dest" -type f -exec cat {} + >/dev/null
bytes=$(du -sb "$run/dest" | cut -f1)

t0=$(date +%s.%N); sql "ALTER SYSTEM BACKUP BACKUPSET 1 WAIT"; t1=$(date +%s.%N)
t2=$(date +%s.%N); cp -r "$run/dest" "$run/cp"; t3=$(date +%s.%N); sync; t4=$(date +%s.%N)

python3 - "$bytes" "$t0" "$t1" "$t2" "$t3" "$t4" <<'PY'
import sys
b, t0, t1, t2, t3, t4 = (float(x) for x in sys.argv[1:])
mb = b / 2**20
copy, cp, cps = t1 - t0, t3 - t2, t4 - t2
print(f"destination: {mb:.0f} MiB")
print(f"BACKUP BACKUPSET: {copy:.2f} s  {mb / copy:.0f} MiB/s")
print(f"cp -r:            {cp:.2f} s  {mb / cp:.0f} MiB/s   (backstop / cp: {copy / cp:.2f})")
print(f"cp -r + sync:     {cps:.2f} s  {mb / cps:.0f} MiB/s   (backstop / cp+sync: {copy / cps:.2f})")
PY
rm -rf "$run"
