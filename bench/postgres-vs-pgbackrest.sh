#!/usr/bin/env bash
# backstop against pgBackRest (Debian's package) on one PostgreSQL cluster, in the same run.
#
# The cluster: initdb --data-checksums, wal_level=replica, archive_mode=on, filled by
# `pgbench -i -s 100` (SCALE), on a free loopback port, run as the postgres user. archive_command
# can call one tool only, so the two tools take turns on the same cluster: each phase first
# points archive_command at its tool (ALTER SYSTEM SET archive_command; SELECT pg_reload_conf()).
#
# One phase, per tool and round (ROUNDS, default 3), into fresh repositories:
#   full        a full backup
#               then `pgbench -T 60 -c 2` (not timed)
#   incr        an incremental backup
#   restore     the incremental into an empty folder, then `sync`, timed together: a restore
#               counts once it is durable
# Before each backup: CHECKPOINT, sync and a read of the data directory, not timed, so that
# neither tool pays for the other's dirty pages, and both read a warm page cache. Before each
# restore its repository is read into the page cache. Odd rounds run pgBackRest first, even
# rounds backstop first.
#
# Prints the median wall time with min and max, CPU seconds, peak RSS, the repository sizes
# after the incremental and what the incremental added, the ratios backstop/pgBackRest, and
# the targets: full backup and restore at most 0.5x pgBackRest's, incremental growth no larger.
# Not a test: these machines are shared and noisy, so only ratios measured together mean much.
#
#   bench/postgres-vs-pgbackrest.sh                   # SCALE=100, ROUNDS=3, 2 processes
#   SCALE=10 ROUNDS=1 bench/postgres-vs-pgbackrest.sh
#   SKIP_BACKSTOP=1 bench/postgres-vs-pgbackrest.sh   # pgBackRest only; no build
#   BACKSTOP=path/to/backstop bench/postgres-vs-pgbackrest.sh   # that binary, no build
#   PGBENCH_TRANSACTIONS=20000 ...   # pgbench -t 20000 -c 2 instead of -T 60: the same change for both
#   KEEP_RESTORES=1 ...              # keep the restored data directories (bench/work/pgbackrest/r*/)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."
root=$(pwd)
work=$root/bench/work/pgbackrest
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/backstop-target}"
scale=${SCALE:-100}
rounds=${ROUNDS:-3}
processes=2  # pgBackRest's process-max; backstop runs one compression worker per usable core
skip_backstop=${SKIP_BACKSTOP:-0}
[ "$rounds" -ge 1 ] || { echo "ROUNDS must be at least 1" >&2; exit 1; }

scripts/setup-test-env.sh
scripts/setup-bench-env.sh
[ "$skip_backstop" = 1 ] || build_backstop

pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
pg_owned() { if [ "$(id -u)" -eq 0 ]; then chown -R postgres:postgres "$@"; fi; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

rm -rf "$work"
mkdir -p "$work"
# Everything the postgres user runs or writes lives under one private folder in /tmp: the
# cluster's socket, pgBackRest's config, logs and locks, and backstop's binary (the build's
# folder under /root is not readable by postgres).
priv=$(mktemp -d /tmp/backstop-bench-XXXX)
chmod 755 "$priv"
pgdata=$work/pg/data
pgport=$(free_port)
pg_running=
cleanup() {
    [ -z "$pg_running" ] || as_pg "$pgbin/pg_ctl" -D "$pgdata" -m immediate -w stop >/dev/null 2>&1 || true
    [ -z "${server:-}" ] || kill "$server" 2>/dev/null || true
    [ -z "${sampler:-}" ] || kill "$sampler" 2>/dev/null || true
    rm -rf "$priv"
}
trap cleanup EXIT
results=$work/results.tsv
sizes=$work/sizes.tsv
: > "$results"
: > "$sizes"

# --- The cluster.
mkdir -p "$work/pg" "$priv/sock" "$priv/run"
pg_owned "$work/pg" "$priv/sock" "$priv/run"
as_pg "$pgbin/initdb" -D "$pgdata" --data-checksums -A trust -U postgres --no-sync >/dev/null
cat >> "$pgdata/postgresql.conf" <<EOF
port = $pgport
listen_addresses = '127.0.0.1'
unix_socket_directories = '$priv/sock'
wal_level = replica
archive_mode = on
archive_command = '/bin/true'    # while the cluster is filled; each phase sets its tool's
EOF
as_pg "$pgbin/pg_ctl" -D "$pgdata" -l "$work/pg/log" -w start >/dev/null
pg_running=1
pgsql() { psql -X -q -A -t -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pgport" -U postgres -d postgres -c "$1"; }
echo "filling the cluster: pgbench -i -s $scale (port $pgport)"
"$pgbin/pgbench" -h 127.0.0.1 -p "$pgport" -U postgres -i -q -s "$scale" postgres >/dev/null 2>&1
pgsql "CHECKPOINT"
echo "cluster: $pgdata, $(($(du -sb "$pgdata" | cut -f1) >> 20)) MiB, PostgreSQL $(cat "$pgdata/PG_VERSION"), data checksums on"

set_archive_command() { # set_archive_command COMMAND: the next segments go to that tool
    pgsql "ALTER SYSTEM SET archive_command = '$1'" >/dev/null
    pgsql "SELECT pg_reload_conf()" >/dev/null
    sleep 1  # the archiver reads its configuration again between segments
    [ "$(pgsql "SHOW archive_command")" = "$1" ] || { echo "archive_command did not change to: $1" >&2; exit 1; }
}
# The change before each incremental: 60 s of pgbench, or a fixed count of transactions per
# client with PGBENCH_TRANSACTIONS=n (the same change for both tools, whatever their speed).
if [ -n "${PGBENCH_TRANSACTIONS:-}" ]; then load=(-t "$PGBENCH_TRANSACTIONS" -c 2 -j 2); else load=(-T 60 -c 2 -j 2); fi
change_cluster() { # pgbench, not timed; prints the transactions and keeps their count in $work/tx
    "$pgbin/pgbench" -h 127.0.0.1 -p "$pgport" -U postgres "${load[@]}" postgres > "$work/pgbench.out" 2>&1 || {
        cat "$work/pgbench.out" >&2; exit 1; }
    awk -F': ' '/actually processed/ {split($2, n, "/"); print n[1]}' "$work/pgbench.out" > "$work/tx"
    echo "  round $round, $1: pgbench ${load[*]}: $(cat "$work/tx") transactions"
}
settle() { # before a backup: no dirty pages left to the backup, data directory in the page cache
    pgsql "CHECKPOINT" >/dev/null
    sync
    find "$pgdata" -type f -exec cat {} + >/dev/null 2>&1 || true  # files may vanish meanwhile
}
warm() { find "$1" -type f -exec cat {} + >/dev/null; }

# record TOOL STEP ROUND WALL CPU RSS_KB RSS_SUM_KB
record() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >> "$results"; }
size() { # size TOOL ROUND WHEN DATA_DIR ARCHIVE_DIR [TX]: bytes of the backups and of the
         # archive; TX the pgbench transactions the incremental followed
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$(du -sb "$4" | cut -f1)" "$(du -sb "$5" | cut -f1)" "${6:-0}" >> "$sizes"
}

# --- pgBackRest: a private config file per run, a fresh repository (and stanza) per round.
pgbr_conf=$priv/pgbackrest.conf
pgbr=(pgbackrest "--config=$pgbr_conf" --stanza=bench)
# 2.45 (Debian 12) has block incremental as a beta feature: it needs beta=y beside repo1-block.
beta=
if pgbackrest help backup repo-block 2>/dev/null | grep -q 'BETA'; then beta=y; fi
pgbr_options="process-max=$processes
compress-type=zst
compress-level=1
repo1-bundle=y
repo1-block=y${beta:+
beta=y}
start-fast=y"
pgbr_repo() { # pgbr_repo DIR: the config names a new, empty repository; stanza-create there
    mkdir -p "$1" "$priv/pgbr-log" "$priv/pgbr-lock" "$priv/pgbr-spool"
    pg_owned "$1" "$priv/pgbr-log" "$priv/pgbr-lock" "$priv/pgbr-spool"
    cat > "$pgbr_conf" <<EOF
[global]
repo1-path=$1
$pgbr_options
log-path=$priv/pgbr-log
lock-path=$priv/pgbr-lock
spool-path=$priv/pgbr-spool
log-level-console=warn
log-level-file=info

[bench]
pg1-path=$pgdata
pg1-port=$pgport
pg1-socket-path=$priv/sock
EOF
    chmod 644 "$pgbr_conf"
    as_pg "${pgbr[@]}" stanza-create >/dev/null
}

# Peak RSS of pgBackRest: GNU time's %M is the largest single process (the main process or
# one of its process-max workers); the sum of all pgbackrest processes is sampled every 100 ms
# too (archive-push processes PostgreSQL starts meanwhile included).
rss_sampler() { # rss_sampler FILE: the largest sum seen, until FILE.stop exists (an hour at most)
    local peak=0 now i
    for i in $(seq 1 36000); do
        [ ! -e "$1.stop" ] || break
        now=$({ ps -C pgbackrest -o rss= || true; } | awk '{s += $1} END {print s + 0}')
        [ "$now" -le "$peak" ] || peak=$now
        sleep 0.1
    done
    echo "$peak" > "$1"
}
pgbr_timed() { # pgbr_timed STEP ROUND SYNC pgbackrest-args...: timed as the postgres user
    local step=$1 r=$2 dosync=$3 peak_sum; shift 3
    sync  # no step pays for writing back what the one before it left dirty
    rm -f "$priv/rss" "$priv/rss.stop" "$priv/run/time"
    rss_sampler "$priv/rss" &
    sampler=$!
    SYNC=$dosync as_pg /usr/bin/time -f '%e %U %S %M' -o "$priv/run/time" \
        sh -c '"$@" && if [ "$SYNC" = 1 ]; then sync; fi' sh "${pgbr[@]}" "$@" \
        >/dev/null 2>"$work/err" < /dev/null || {
        cat "$work/err" >&2; echo "pgBackRest $step failed: ${pgbr[*]} $*" >&2; exit 1; }
    touch "$priv/rss.stop"
    wait "$sampler"
    sampler=
    peak_sum=$(cat "$priv/rss")
    read -r wall user sys rss < "$priv/run/time"
    record pgbackrest "$step" "$r" "$wall" "$(echo "$user + $sys" | bc)" "$rss" "$peak_sum"
}

phase_pgbackrest() { # phase_pgbackrest ROUND
    local r=$1 dir=$work/r$1
    pgbr_repo "$dir/pgbackrest"
    set_archive_command "pgbackrest --config=$pgbr_conf --stanza=bench archive-push %p"
    settle
    pgbr_timed full "$r" 0 --type=full backup
    size pgbackrest "$r" full "$dir/pgbackrest/backup" "$dir/pgbackrest/archive"
    change_cluster pgbackrest
    settle
    pgbr_timed incr "$r" 0 --type=incr backup
    size pgbackrest "$r" incr "$dir/pgbackrest/backup" "$dir/pgbackrest/archive" "$(cat "$work/tx")"
    mkdir -p "$dir/restore-pgbackrest"
    chmod 700 "$dir/restore-pgbackrest"
    pg_owned "$dir/restore-pgbackrest"
    warm "$dir/pgbackrest"
    pgbr_timed restore "$r" 1 "--pg1-path=$dir/restore-pgbackrest" restore
}

# --- backstop: a server on loopback; CPU and peak RSS from /proc of the server. PostgreSQL's
# archiver runs a copy of the binary that the postgres user can execute.
if [ "$skip_backstop" != 1 ]; then
    cp "$backstop" "$priv/backstop"
    chmod 755 "$priv/backstop"
    port=$(free_port)
    mkdir -p "$work/backstop"
    start_backstop "$priv/backstop" "$port" "$work/backstop"
    trap cleanup EXIT  # start_backstop set its own; cleanup kills the server too
    # As many compression workers as usable cores: held to pgBackRest's process count.
    if [ "$(nproc)" -gt "$processes" ]; then taskset -a -p -c 0-$((processes - 1)) "$server" >/dev/null; fi
    sqlb() {
        psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U admin -d backstop -c "$1" >/dev/null 2>>"$work/backstop/psql.log" || {
            tail -5 "$work/backstop/psql.log" >&2; echo "backstop statement failed: $1" >&2; exit 1; }
    }
    sqlv() { psql -X -q -A -t -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U admin -d backstop -c "$1"; }
    ticks=$(getconf CLK_TCK)
    cpu_of() { awk -v t="$ticks" '{print ($14 + $15) / t}' "/proc/$server/stat"; }
    bstep() { # bstep STEP ROUND SQL [sync]: the statement (and a sync after it) timed here
        local c0 t0 c1 t1
        sync  # no step pays for writing back what the one before it left dirty
        echo 5 > "/proc/$server/clear_refs" 2>/dev/null || true  # reset VmHWM: this step's peak
        c0=$(cpu_of); t0=$(date +%s.%N)
        sqlb "$3"
        [ -z "${4:-}" ] || sync
        t1=$(date +%s.%N); c1=$(cpu_of)
        record backstop "$1" "$2" "$(echo "$t1 - $t0" | bc)" "$(echo "$c1 - $c0" | bc)" \
            "$(awk '/VmHWM/ {print $2}' "/proc/$server/status")" 0
    }
    sqlb "ALTER SYSTEM SET backup_compression = 'zstd:1'"
    sqlb "CREATE TENANT pg SOURCE = 'postgres://postgres@127.0.0.1:$pgport/postgres' PGDATA = '$pgdata'"
    backstop_archive="$priv/backstop archive-push --tenant pg --host 127.0.0.1 --port $port --password $PGPASSWORD %p"
fi

archive_status() { # the newest archive round's status of tenant pg (empty: none yet)
    sqlv "SELECT a.status FROM oceanbase.CDB_OB_ARCHIVELOG a JOIN oceanbase.DBA_OB_TENANTS t
          ON a.tenant_id = t.tenant_id WHERE t.tenant_name = 'pg'"
}

phase_backstop() { # phase_backstop ROUND
    local r=$1 dir=$work/r$1 set_id i
    # A fresh archive round per round, into fresh destinations: the round before is stopped first
    # (the destinations cannot change while a round is on).
    if [ -n "$(archive_status)" ] && [ "$(archive_status)" != STOP ]; then
        sqlb "ALTER SYSTEM NOARCHIVELOG TENANT = pg"
        for i in $(seq 1 300); do
            [ "$(archive_status)" != STOP ] || break
            [ "$i" -lt 300 ] || { echo "backstop: tenant pg's archive round did not reach STOP in 30 s" >&2; exit 1; }
            sleep 0.1
        done
    fi
    mkdir -p "$dir"  # the destinations' parent
    sqlb "ALTER SYSTEM SET DATA_BACKUP_DEST = 'file://$dir/backstop-data' TENANT = pg"
    sqlb "ALTER SYSTEM SET LOG_ARCHIVE_DEST = 'LOCATION=file://$dir/backstop-archive' TENANT = pg"
    sqlb "ALTER SYSTEM ARCHIVELOG TENANT = pg"
    set_archive_command "$backstop_archive"
    settle
    bstep full "$r" "ALTER SYSTEM BACKUP TENANT = pg WAIT"
    size backstop "$r" full "$dir/backstop-data" "$dir/backstop-archive"
    change_cluster backstop
    settle
    bstep incr "$r" "ALTER SYSTEM BACKUP INCREMENTAL TENANT = pg WAIT"
    size backstop "$r" incr "$dir/backstop-data" "$dir/backstop-archive" "$(cat "$work/tx")"
    set_id=$(sqlv "SELECT max(backup_set_id) FROM oceanbase.CDB_OB_BACKUP_SET_FILES")
    [ -n "$set_id" ] || { echo "backstop: no backup set in CDB_OB_BACKUP_SET_FILES" >&2; exit 1; }
    mkdir -p "$dir/restore-backstop"
    warm "$dir/backstop-data"
    warm "$dir/backstop-archive"
    sync
    bstep restore "$r" "ALTER SYSTEM RESTORE pgr$r FROM pg UNTIL BACKUPSET = $set_id TO 'dir://$dir/restore-backstop' WAIT" sync
}

echo
echo "pgBackRest $(pgbackrest version | cut -d' ' -f2), $(nproc) cores, $processes processes"
echo "pgBackRest: ${pgbr[*]} [--type=full|--type=incr] backup;  ... --pg1-path=DIR restore"
echo "  config [global]: repo1-path=<fresh per round>, $(echo "$pgbr_options" | paste -sd' ')"
echo "  archive-check=y (the default: a backup ends once its WAL is in the archive), archive-copy=n"
echo "  archive_command = 'pgbackrest --config=$pgbr_conf --stanza=bench archive-push %p'"
if [ "$skip_backstop" = 1 ]; then
    echo "backstop: skipped (SKIP_BACKSTOP=1)"
else
    echo "backstop: $backstop (run as $priv/backstop); backup_compression = 'zstd:1';"
    echo "  one compression worker per usable core (the server may use cores $(taskset -c -p "$server" | sed 's/.*: //'))"
    echo "  ALTER SYSTEM BACKUP [INCREMENTAL] TENANT = pg WAIT;  ALTER SYSTEM RESTORE pgrN FROM pg UNTIL BACKUPSET = n TO 'dir://DIR' WAIT"
    echo "  archive_command = '${backstop_archive/--password $PGPASSWORD/--password ***}'"
fi
echo "restore of both: the restore, then sync, in one timed region"
echo

for round in $(seq 1 "$rounds"); do
    if [ "$skip_backstop" = 1 ]; then order=pgbackrest
    elif [ $((round % 2)) = 1 ]; then order="pgbackrest backstop"
    else order="backstop pgbackrest"; fi
    for tool in $order; do "phase_$tool" "$round"; done
done
failed=$(pgsql "SELECT failed_count FROM pg_stat_archiver")
[ "$failed" = 0 ] || echo "note: PostgreSQL counted $failed failed archive_command runs (see $work/pg/log)"
for tool in pgbackrest backstop; do
    for r in $(seq 1 "$rounds"); do
        [ -d "$work/r$r/restore-$tool" ] || continue
        [ -f "$work/r$r/restore-$tool/PG_VERSION" ] || echo "note: round $r, $tool's restore has no PG_VERSION" >&2
        echo "restored by $tool, round $r: $(($(du -sb "$work/r$r/restore-$tool" | cut -f1) >> 20)) MiB"
    done
done
[ -n "${KEEP_RESTORES:-}" ] || rm -rf "$work"/r*/restore-*

echo
python3 - "$results" "$sizes" "$rounds" <<'PY'
import collections, statistics, sys
runs = collections.defaultdict(lambda: collections.defaultdict(list))
for line in open(sys.argv[1]):
    tool, step, _r, wall, cpu, rss, rss_sum = line.rstrip("\n").split("\t")
    runs[step][tool].append((float(wall), float(cpu), int(rss), int(rss_sum)))
sizes = collections.defaultdict(lambda: collections.defaultdict(list))
for line in open(sys.argv[2]):
    tool, r, when, data, archive, tx = line.rstrip("\n").split("\t")
    sizes[tool][r].append((when, int(data), int(archive), int(tx)))
def med(step, tool, i):
    rows = runs[step].get(tool)
    return statistics.median(r[i] for r in rows) if rows else None
def ratio(a, b):
    return f"{a / b:.2f}" if a is not None and b else "-"
MB = 2 ** 20
print(f"{sys.argv[3]} rounds; medians, wall time's min-max in brackets; restore = restore + sync")
print(f"{'step':<8} {'tool':<11} {'wall s':>8} {'[min - max]':>17} {'cpu s':>8} {'peak RSS MB':>12}"
      f" {'(sum MB)':>9} {'backstop/pgbackrest':>20}")
for step in ["full", "incr", "restore"]:
    for tool in ["backstop", "pgbackrest"]:
        rows = runs[step].get(tool)
        if not rows:
            continue
        walls = [r[0] for r in rows]
        total = f"{med(step, tool, 3) / 1024:9.0f}" if tool == "pgbackrest" else f"{'':9}"
        r = f" {ratio(med(step, 'backstop', 0), med(step, 'pgbackrest', 0)):>20}" if tool == "backstop" else ""
        print(f"{step:<8} {tool:<11} {statistics.median(walls):8.2f} "
              f"{'[' + f'{min(walls):.2f} - {max(walls):.2f}' + ']':>17} {med(step, tool, 1):8.2f} "
              f"{med(step, tool, 2) / 1024:12.0f} {total}{r}")
print("peak RSS: backstop the server's VmHWM; pgBackRest GNU time's %M (its largest process), and in")
print("(sum MB) the largest sum of all pgbackrest processes sampled every 100 ms")
print()
# Repository: backups + archive after the incremental; growth: what the incremental phase added
# (the incremental set itself, and the WAL archived from the full backup's end to the incremental's).
# The change is pgbench for a time, so the two tools' incrementals may follow different numbers
# of transactions: the growth per 1000 transactions is printed too (PGBENCH_TRANSACTIONS=n makes
# the change the same for both).
growth = {}
for tool in ["backstop", "pgbackrest"]:
    if tool not in sizes:
        continue
    total, data_growth, arch_growth, per_ktx, txs = [], [], [], [], []
    for r, rows in sizes[tool].items():
        at = {when: (d, a, tx) for when, d, a, tx in rows}
        total.append(at["incr"][0] + at["incr"][1])
        data_growth.append(at["incr"][0] - at["full"][0])
        arch_growth.append(at["incr"][1] - at["full"][1])
        txs.append(at["incr"][2])
        per_ktx.append(data_growth[-1] / max(at["incr"][2], 1) * 1000)
    growth[tool] = statistics.median(data_growth)
    print(f"repository {tool:<11} {statistics.median(total) / MB:9.1f} MiB after the incremental (backups + archive)")
    print(f"  the incremental added {statistics.median(data_growth) / MB:.1f} MiB of backup "
          f"({statistics.median(per_ktx) / MB:.3f} MiB per 1000 transactions), the archive "
          f"{statistics.median(arch_growth) / MB:.1f} MiB of WAL; pgbench: {statistics.median(txs):.0f} transactions (medians)")
print()
def target(name, value, limit, pass_if_at_most=True):
    if value is None:
        print(f"{name:<44} n/a (backstop skipped)")
        return
    ok = value <= limit
    print(f"{name:<44} {value:.2f} (target <= {limit}): {'PASS' if ok else 'MISS'}")
def r(step):
    b, p = med(step, "backstop", 0), med(step, "pgbackrest", 0)
    return b / p if b is not None and p else None
target("full backup, backstop/pgBackRest (median)", r("full"), 0.5)
target("restore + sync, backstop/pgBackRest (median)", r("restore"), 0.5)
g = growth.get("backstop") / growth["pgbackrest"] if "backstop" in growth and growth.get("pgbackrest") else None
target("incremental's growth, backstop/pgBackRest", g, 1.0)
print("(the incremental's growth: what the incremental set added to the backups, WAL not counted)")
PY

cat <<EOF

What the two do differently here:
* pgBackRest starts a process per command (and process-max=$processes workers), checks every page's
  checksum as it reads it (checksum-page, on because the cluster has data checksums), and
  stores block incremental maps (repo1-block) in bundles (repo1-bundle).
* backstop is a resident server: its start is not in the timings; its CPU seconds and peak RSS
  are read from /proc of the server (its SQL engine and catalog included), and include the work
  its archive-push clients ask of it during the step. pgBackRest's CPU and RSS do not include the
  archive-push processes PostgreSQL starts.
* Both archive WAL through archive_command, one process per segment.
EOF
