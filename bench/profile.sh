#!/usr/bin/env bash
# Profiles the server during one full backup or one restore of the benchmark dataset
# (bench/make-dataset.sh), the way docs/benchmarks.md's analyses were made:
#
#   bench/profile.sh full              # wall, CPU-seconds, peak RSS of the step
#   PERF=1 bench/profile.sh restore    # and `perf record` of the server (report printed)
#   THREADS=1 bench/profile.sh full    # and CPU every 100 ms, the process's and per thread
#                                      # (which stage waits; a restore's tail on the disk)
#   PERF=1 PERF_CMD="sched record" bench/profile.sh restore   # scheduler events instead
#                                      # (`perf sched timehist -s -i bench/work/profile/perf.data`)
#   MEMORY=1 bench/profile.sh changed  # and the peaks of RssAnon and RssFile, sampled every 5 ms
#   bench/profile.sh changed           # the incremental after 5% of the files changed
#   bench/profile.sh validate          # VALIDATE BACKUPSET 1 LEVEL = 'physical' of the full
#                                      # backup (every chunk read, decoded and checked)
#   BACKSTOP=/tmp/old bench/profile.sh full   # a given binary instead of building (A/B runs)
#   ENCRYPTED=1 bench/profile.sh restore  # into an encrypted destination (SET ENCRYPTION, and
#                                         # SET DECRYPTION before the restore)
#   DATA=bench/work/realdata bench/profile.sh full   # another data set (the comparison's)
#   FRESH_FS=1 bench/profile.sh restore   # into a file system made for it, as the comparison
#                                         # restores (fresh_fs_mount in lib.sh); dropped after
#
# Not a test. Restores go to a new folder each time and are left for you to delete: ext4
# without a journal avoids reusing inodes freed in the last minutes, so creating files right
# after a large delete is much slower and would be measured instead of backstop.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."
step=${1:-full}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/backstop-target}"
build_backstop
work=$(pwd)/bench/work/profile
data=$(realpath -m "${DATA:-bench/work/data}")
[ -d "$data" ] || bench/make-dataset.sh "$data"
rm -rf "$work/catalog" "$work/repo"
mkdir -p "$work"
port=55477
start_backstop "$backstop" $port "$work"
targets=$work
if [ -n "${FRESH_FS:-}" ] && [ "$step" = restore ]; then
    fresh_fs_possible || { echo "FRESH_FS=1 needs root and a free loop device" >&2; exit 2; }
    trap 'kill $server 2>/dev/null || true; fresh_fs_drop' EXIT
    targets=$work/fresh
    fresh_fs_mount "$work/restores.img" $(($(du -sm "$data" | cut -f1) * 2 + 256)) "$targets"
fi
q() { # q SQL...: the statements in one session
    local args=() s
    for s in "$@"; do args+=(-c "$s"); done
    psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p $port -U admin -d backstop "${args[@]}" >/dev/null
}
# The session state a backup or a restore needs first (encryption keys).
if [ -n "${ENCRYPTED:-}" ]; then
    writing="SET ENCRYPTION ON IDENTIFIED BY 'bench' ONLY"
    reading="SET DECRYPTION IDENTIFIED BY 'bench'"
else
    writing="SELECT 1"
    reading="SELECT 1"
fi
q "CREATE TENANT bench SOURCE = 'dir://$data'"
q "ALTER SYSTEM SET DATA_BACKUP_DEST = 'file://$work/repo'"
find "$data" -type f -exec cat {} + >/dev/null
# Before a restore or a validation: the repository warm, as the source is for a backup (its
# packs left the cache once durable), and nothing else cached. ext4 without a journal checks,
# for every free inode it considers for a new file, whether the inode was deleted recently,
# reading its inode table block when that block is cached, under the directory's lock: the
# blocks of files deleted before the run (earlier restores) made creating files several times
# slower (perf: find_inode_bit, recently_deleted, rwsem_spin_on_owner).
only_repo_cached() {
    sync
    [ ! -w /proc/sys/vm/drop_caches ] || echo 3 > /proc/sys/vm/drop_caches
    find "$work/repo" -type f -exec cat {} + >/dev/null
}
cpu() { awk '{print ($14 + $15) / 100}' /proc/$server/stat; }

case $step in
    full) first=$writing; sql="ALTER SYSTEM BACKUP TENANT bench WAIT" ;;
    restore)
        q "$writing" "ALTER SYSTEM BACKUP TENANT bench WAIT"
        first=$reading
        only_repo_cached
        sql="ALTER SYSTEM RESTORE r FROM bench TO 'dir://$targets/r-$(date +%s%N)' WAIT" ;;
    validate)
        q "$writing" "ALTER SYSTEM BACKUP TENANT bench WAIT"
        only_repo_cached
        first=$reading
        sql="ALTER SYSTEM VALIDATE BACKUPSET 1 LEVEL = 'physical' WAIT" ;;
    changed)
        # As the comparison's third step: after a full backup, every 20th file grows a line.
        [ -z "${DATA:-}" ] || { echo "changed edits its data set: run it on the default one" >&2; exit 2; }
        q "$writing" "ALTER SYSTEM BACKUP TENANT bench WAIT"
        first="SELECT 1"
        python3 - "$data" <<'PY'
import os, sys
files = sorted(os.path.join(d, f) for d, _, fs in os.walk(sys.argv[1]) for f in fs)
for path in files[::20]:
    with open(path, "ab") as f:
        f.write(b"changed by the benchmark\n")
PY
        sql="ALTER SYSTEM BACKUP INCREMENTAL TENANT bench WAIT" ;;
    *) echo "usage: $0 full|restore|changed|validate" >&2; exit 2 ;;
esac

echo "$step: RSS before $(awk '/VmRSS/ {print $2}' /proc/$server/status) kB"
echo 5 > /proc/$server/clear_refs 2>/dev/null || true
[ -z "${PERF:-}" ] || { perf ${PERF_CMD:-record} ${PERF_ARGS:-} -F 1999 -o "$work/perf.data" -p $server 2>/dev/null & perf=$!; sleep 0.5; }
[ -z "${MEMORY:-}" ] || { python3 - "$server" > "$work/memory.txt" <<'PY' &
import os, sys, time
pid, peak = sys.argv[1], {}
while True:
    try:
        now = {k: int(v.split()[0]) for k, _, v in
               (line.partition(":") for line in open(f"/proc/{pid}/status"))
               if k in ("RssAnon", "RssFile", "VmRSS")}
    except OSError:
        break
    for k, v in now.items():
        peak[k] = max(peak.get(k, 0), v)
    # One line per sample: the peaks so far, then RssAnon now (the curve of the step).
    print(" ".join(f"{k} {v} kB" for k, v in sorted(peak.items())), "| RssAnon now", now["RssAnon"], flush=True)
    time.sleep(0.005)
PY
memory=$!; }
[ -z "${THREADS:-}" ] || { python3 - "$server" > "$work/threads.txt" <<'PY' &
import os, sys, time
pid, prev, t0, total = sys.argv[1], {}, time.time(), None
while os.path.exists(f"/proc/{pid}"):
    time.sleep(0.1)
    cur, busy = {}, []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = open(f"/proc/{pid}/task/{tid}/stat").read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        cur[tid] = int(fields[11]) + int(fields[12])
        if cur[tid] > prev.get(tid, cur[tid]):
            busy.append(f"{tid}={cur[tid] - prev[tid]}")
    prev = cur
    # The process's own figure counts threads that lived less than a sample too (a restore's
    # workers live one batch).
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except OSError:
        break
    fields = stat[stat.rindex(")") + 2:].split()
    now = int(fields[11]) + int(fields[12])
    whole, total = now - (total if total is not None else now), now
    print(f"{time.time() - t0:5.1f}s process={whole:3d} threads={sum(int(b.split('=')[1]) for b in busy):3d} " + " ".join(sorted(busy)), flush=True)
PY
threads=$!; }
c0=$(cpu); t0=$(date +%s.%N)
q "$first" "$sql"
t1=$(date +%s.%N); c1=$(cpu)
[ -z "${THREADS:-}" ] || kill $threads
[ -z "${MEMORY:-}" ] || { kill $memory; echo "$step: peaks sampled every 5 ms: $(tail -1 "$work/memory.txt" | cut -d'|' -f1)"; }
[ -z "${PERF:-}" ] || { kill -INT $perf; wait $perf || true; }
echo "$step: wall $(echo "$t1 - $t0" | bc) s, CPU $(echo "$c1 - $c0" | bc) s, peak RSS $(awk '/VmHWM/ {print $2}' /proc/$server/status) kB"
echo "$step: after it $(grep -E 'RssAnon|RssFile' /proc/$server/status | tr -s ' \t\n' ' ')"
[ -z "${THREADS:-}" ] || echo "per-thread CPU ticks (10 ms) every 100 ms: $work/threads.txt"
[ -z "${PERF:-}" ] || perf report -i "$work/perf.data" --no-children --sort symbol 2>/dev/null | grep -v '^#' | head -25
