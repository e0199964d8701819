#!/usr/bin/env bash
# backstop against restic and borg (Debian's packages) on real data, in the same run.
#
# The data set (bench/work/realdata, built once and reused):
#   pgdata/     a PostgreSQL data directory after `pgbench -i -s 40` (SCALE), cleanly stopped
#   rust-lib/   the Rust toolchain's lib folder    ($(rustc --print sysroot)/lib)
#   rust-doc/   the Rust toolchain's share/doc     ($(rustc --print sysroot)/share/doc)
# Each run backs up a copy of it (bench/work/runs/data); the copy's cluster is put back to the
# built one at the start of every round, so every round sees the same bytes.
#
# Steps, each ROUNDS times (default 3), every round into fresh repositories:
#   full        the first backup
#   unchanged   an incremental with nothing changed
#   changed     an incremental after `pgbench -T 30` ran against the copy's cluster (started for
#               it, then stopped cleanly, so the tree is static while it is read)
#   restore     the newest backup into an empty folder, followed by `sync` INSIDE the timed
#               region for every tool: restores are compared durable with durable
# and the physical floor of a restore: `cp -a` of the data set plus `sync`, on the file system the
# restores go to (one made for each round where possible: see new_restore_fs).
# The tools take turns in an order that rotates each round, so that none always runs first.
# Before every step the page cache is emptied and the step's inputs are read into it (the
# data set before a backup, the repository before a restore, and the tool's own cache or
# catalog), so that every tool and every round starts from the same memory (needs root).
#
# backstop runs twice in every round, in turn with the others: `backstop` into a plain
# destination and `backstop-enc` into an encrypted one (SET ENCRYPTION before its full backup,
# SET DECRYPTION before its restore), since restic always encrypts.
#
# Prints, per step and tool, the median wall time with min and max over the rounds, CPU
# seconds, peak RSS (medians), the repository size after the last incremental, and the ratios
# backstop/restic and backstop/borg of the medians. Not a test: these machines are shared and
# noisy, so only ratios measured together mean much.
#
#   bench/backup-vs-restic-borg.sh                   # SCALE=40, ROUNDS=3
#   SCALE=100 ROUNDS=5 bench/backup-vs-restic-borg.sh  # another SCALE rebuilds the data set
#   SKIP_BACKSTOP=1 bench/backup-vs-restic-borg.sh   # restic, borg and the floor only; no build
#   BACKSTOP=path/to/backstop bench/backup-vs-restic-borg.sh   # that binary, no build
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."
root=$(pwd)
work=$root/bench/work
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/backstop-target}"
scale=${SCALE:-40}
rounds=${ROUNDS:-3}
skip_backstop=${SKIP_BACKSTOP:-0}
[ "$rounds" -ge 1 ] || { echo "ROUNDS must be at least 1" >&2; exit 1; }

scripts/setup-test-env.sh
scripts/setup-bench-env.sh
[ "$skip_backstop" = 1 ] || build_backstop

pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
pg_owned() { if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$@"; fi; }

# A private socket folder for the short-lived PostgreSQL servers (no TCP port needed).
pgsock=$(mktemp -d /tmp/bench-pgsock-XXXX)
pg_owned "$pgsock"
pgport=55439
pg_running=
cleanup() {
    drop_restore_fs || true
    [ -z "$pg_running" ] || as_pg "$pgbin/pg_ctl" -D "$pg_running" -m immediate -w stop >/dev/null 2>&1 || true
    [ -z "${server:-}" ] || kill "$server" 2>/dev/null || true
    rm -rf "$pgsock"
}
trap cleanup EXIT
pg_start() { # pg_start DATADIR
    as_pg "$pgbin/pg_ctl" -D "$1" -o "-p $pgport -k $pgsock -c listen_addresses=" \
        -l "$pgsock/log" -w start >/dev/null
    pg_running=$1
}
pg_stop() { # a clean stop: a checkpoint, then the files are static
    as_pg "$pgbin/pg_ctl" -D "$1" -m fast -w stop >/dev/null
    pg_running=
}

# --- The data set: built once, reused while its SCALE matches.
src=$work/realdata
if [ ! -d "$src" ] || [ "$(cat "$work/realdata.scale" 2>/dev/null)" != "$scale" ]; then
    echo "building the data set in $src (pgbench -i -s $scale, the Rust toolchain's lib and share/doc)"
    rm -rf "$src" "$src.tmp" "$work/realdata.scale"
    mkdir -p "$src.tmp/pgdata"
    pg_owned "$src.tmp/pgdata"
    chmod 700 "$src.tmp/pgdata"
    as_pg "$pgbin/initdb" -D "$src.tmp/pgdata" -A trust -U postgres --no-sync >/dev/null
    pg_start "$src.tmp/pgdata"
    as_pg "$pgbin/pgbench" -h "$pgsock" -p $pgport -U postgres -i -q -s "$scale" postgres >/dev/null 2>&1
    pg_stop "$src.tmp/pgdata"
    sysroot=$(rustc --print sysroot)
    cp -a "$sysroot/lib" "$src.tmp/rust-lib"
    cp -a "$sysroot/share/doc" "$src.tmp/rust-doc"
    mv "$src.tmp" "$src"  # only a complete data set gets the name
    echo "$scale" > "$work/realdata.scale"
fi
src_bytes=$(du -sb "$src" | cut -f1)
echo "data set: $src, $((src_bytes >> 20)) MiB, $(find "$src" -type f | wc -l) files (pgbench scale $scale)"

rm -rf "$work/runs"
mkdir -p "$work/runs"
runs=$work/runs
data=$runs/data
cp -a "$src" "$data"
results=$runs/results.tsv
: > "$results"

# Restored trees are kept until the end of the run when the disk has room for them: ext4
# without a journal (this machine's) creates files several times slower for minutes after a
# large delete. Without the room, each round's are deleted when it ends.
avail=$(df -B1 --output=avail "$work" | tail -1)
need=$((src_bytes * (rounds * 6 + 2)))
if [ "$avail" -gt "$need" ]; then keep_restores=1; else keep_restores=; fi

# Better still, and the default where the machine allows it (root, a free loop device): every
# round's restores go to a file system made for that round (fresh_fs_* in lib.sh), so that no
# restore follows a delete on the file system it writes to and every round starts alike. The
# floor (cp -a + sync) is measured there too. FRESH_FS=0 restores into bench/work/runs instead.
fresh_fs=
if [ "${FRESH_FS:-1}" = 1 ] && fresh_fs_possible; then fresh_fs=1; fi
new_restore_fs() { # sets $restores: where this round's restores go
    if [ -z "$fresh_fs" ]; then restores=$rdir; return; fi
    # Five trees of the data set, with room for the file system's own tables.
    restores=$work/restores
    fresh_fs_mount "$work/restores.img" $(((src_bytes * 6 >> 20) + 1)) "$restores"
}
drop_restore_fs() { [ -z "${fresh_fs:-}" ] || fresh_fs_drop; }

# --- The tools, with their exact flags.
export RESTIC_PASSWORD=bench RESTIC_CACHE_DIR=$runs/restic-cache
export BORG_BASE_DIR=$runs/borg-home BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes
export BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
compression=zstd:1
restic_init=(restic init -q --repository-version 2)
restic_backup=(restic backup -q --compression auto)
restic_restore=(restic restore -q latest)
borg_init=(borg init --encryption=none)
borg_create=(borg create --compression zstd,1)
borg_extract=(borg extract)
echo
echo "restic $(restic version | cut -d' ' -f2), $(borg --version), $(nproc) cores"
echo "restic: ${restic_init[*]} -r REPO (RESTIC_PASSWORD set: encryption is always on in restic)"
echo "        ${restic_backup[*]} -r REPO DATA;  ${restic_restore[*]} -r REPO --target DIR"
echo "borg:   ${borg_init[*]} REPO (no encryption);  ${borg_create[*]} REPO::STEP DATA"
echo "        ${borg_extract[*]} REPO::changed (in DIR)"
if [ "$skip_backstop" = 1 ]; then
    echo "backstop: skipped (SKIP_BACKSTOP=1)"
else
    echo "backstop: $backstop, ALTER SYSTEM SET backup_compression = '$compression';"
    echo "        ALTER SYSTEM BACKUP [INCREMENTAL] TENANT t WAIT;  ALTER SYSTEM RESTORE r FROM t TO 'dir://DIR' WAIT"
    echo "backstop-enc: the same into an encrypted destination: SET ENCRYPTION ON IDENTIFIED BY 'bench'"
    echo "        ONLY before the full backup, SET DECRYPTION IDENTIFIED BY 'bench' before the restore"
fi
echo "floor:  cp -a DATA DIR && sync"
echo "restore steps of every tool: the restore, then sync, in one timed region"
echo

# record TOOL STEP ROUND WALL CPU RSS_KB
record() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >> "$results"; }

timed() { # timed TOOL STEP DIR SYNC command...: wall, user+sys CPU and peak RSS of a command run
          # in DIR; SYNC=1 counts a sync after it in the same timed region
    local tool=$1 step=$2 dir=$3 dosync=$4; shift 4
    sync  # no step pays for writing back what the one before it left dirty
    SYNC=$dosync /usr/bin/time -f '%e %U %S %M' -o "$runs/time" \
        sh -c 'cd "$0" && "$@" && if [ "$SYNC" = 1 ]; then sync; fi' "$dir" "$@" \
        >/dev/null 2>"$runs/err" < /dev/null || {
        cat "$runs/err" >&2; echo "$tool $step failed: $*" >&2; exit 1; }
    read -r wall user sys rss < "$runs/time"
    record "$tool" "$step" "$round" "$wall" "$(echo "$user + $sys" | bc)" "$rss"
}

# --- backstop: a server on loopback, driven by psql; CPU and RSS read from /proc of the server.
if [ "$skip_backstop" != 1 ]; then
    bdir=$runs/backstop
    mkdir -p "$bdir"
    port=55433
    start_backstop "$backstop" $port "$bdir"
    trap cleanup EXIT  # start_backstop set its own; cleanup kills the server too
    sqlb() { # sqlb SQL...: the statements in one session, in order
        local args=() s
        for s in "$@"; do args+=(-c "$s"); done
        psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p $port -U admin -d backstop "${args[@]}" >/dev/null 2>>"$bdir/psql.log" || {
            tail -5 "$bdir/psql.log" >&2; echo "backstop statement failed: $*" >&2; exit 1; }
    }
    ticks=$(getconf CLK_TCK)
    cpu_of() { awk -v t="$ticks" '{print ($14 + $15) / t}' /proc/$server/stat; }
    bstep() { # bstep TOOL STEP SYNC SQL...: the statements (and a sync after them when SYNC=1)
              # timed on this side
        local tool=$1 step=$2 dosync=$3 c0 t0 c1 t1
        shift 3
        sync
        # Peak RSS of this step only: "5" resets the kernel's high-water mark (VmHWM).
        echo 5 > /proc/$server/clear_refs 2>/dev/null || true
        c0=$(cpu_of); t0=$(date +%s.%N)
        sqlb "$@"
        [ "$dosync" != 1 ] || sync
        t1=$(date +%s.%N); c1=$(cpu_of)
        record "$tool" "$step" "$round" "$(echo "$t1 - $t0" | bc)" "$(echo "$c1 - $c0" | bc)" \
            "$(awk '/VmHWM/ {print $2}' /proc/$server/status)"
    }
    sqlb "ALTER SYSTEM SET backup_compression = '$compression'"
fi

warm() { # warm DIR...: read every file of the DIRs that exist into the page cache
    local d
    for d in "$@"; do [ ! -e "$d" ] || find "$d" -type f -exec cat {} + >/dev/null; done
}

# Every step starts from the same memory: the page cache emptied (what earlier steps wrote
# and read, restored trees above all, would otherwise fill it, and every later write would pay
# for reclaiming it: the CPU of `cp -a` doubled from round 1 to round 3 in an earlier run), then
# the step's inputs read into it. Needs root; without it the rounds drift, and the script says so.
if [ -w /proc/sys/vm/drop_caches ]; then can_drop=1; else can_drop=
    echo "note: not root, the page cache is not emptied between steps: later rounds may be slower"; fi
prepare() { # prepare DIR...: sync, empty the page cache, read DIR... into it
    sync
    [ -z "$can_drop" ] || echo 3 > /proc/sys/vm/drop_caches
    warm "$@"
}

backup() { # backup TOOL STEP: one backup of $data into this round's repository
    case $1 in
        backstop*) prepare "$data" "$bdir/catalog" ;;
        restic) prepare "$data" "$RESTIC_CACHE_DIR" ;;
        borg) prepare "$data" "$BORG_BASE_DIR" ;;
    esac
    case $1 in
        backstop)
            if [ "$2" = full ]; then bstep backstop "$2" 0 "ALTER SYSTEM BACKUP TENANT bench$round WAIT"
            else bstep backstop "$2" 0 "ALTER SYSTEM BACKUP INCREMENTAL TENANT bench$round WAIT"; fi ;;
        backstop-enc)
            if [ "$2" = full ]; then
                bstep backstop-enc "$2" 0 "SET ENCRYPTION ON IDENTIFIED BY 'bench' ONLY" \
                    "ALTER SYSTEM BACKUP TENANT enc$round WAIT"
            else bstep backstop-enc "$2" 0 "ALTER SYSTEM BACKUP INCREMENTAL TENANT enc$round WAIT"; fi ;;
        restic) timed restic "$2" "$runs" 0 "${restic_backup[@]}" -r "$rdir/restic" "$data" ;;
        borg) timed borg "$2" "$runs" 0 "${borg_create[@]}" "$rdir/borg::$2" "$data" ;;
    esac
}

restore() { # restore TOOL: the newest backup into $restores/restore-TOOL, then sync, timed together
    local target=$restores/restore-$1
    case $1 in
        backstop)
            prepare "$rdir/backstop" "$bdir/catalog"
            bstep backstop restore 1 "ALTER SYSTEM RESTORE rb$round FROM bench$round TO 'dir://$target' WAIT" ;;
        backstop-enc)
            prepare "$rdir/backstop-enc" "$bdir/catalog"
            bstep backstop-enc restore 1 "SET DECRYPTION IDENTIFIED BY 'bench'" \
                "ALTER SYSTEM RESTORE re$round FROM enc$round TO 'dir://$target' WAIT" ;;
        restic)
            prepare "$rdir/restic" "$RESTIC_CACHE_DIR"; mkdir -p "$target"
            timed restic restore "$runs" 1 "${restic_restore[@]}" -r "$rdir/restic" --target "$target" ;;
        borg)
            prepare "$rdir/borg" "$BORG_BASE_DIR"; mkdir -p "$target"
            timed borg restore "$target" 1 "${borg_extract[@]}" "$rdir/borg::changed" ;;
        floor)
            prepare "$data"
            timed floor restore "$runs" 1 cp -a "$data" "$target" ;;
    esac
}

restored_tree() { # where each tool put the data set inside its target
    case $1 in
        backstop) echo "$restores/restore-backstop" ;;
        backstop-enc) echo "$restores/restore-backstop-enc" ;;
        restic) echo "$restores/restore-restic$data" ;;
        borg) echo "$restores/restore-borg/${data#/}" ;;
    esac
}

change_cluster() { # pgbench -T 30 against the copy's cluster, then a clean stop
    pg_start "$data/pgdata"
    as_pg "$pgbin/pgbench" -h "$pgsock" -p $pgport -U postgres -T 30 postgres > "$runs/pgbench.out" 2>&1 || {
        cat "$runs/pgbench.out" >&2; exit 1; }
    pg_stop "$data/pgdata"
    echo "  round $round: pgbench -T 30: $(awk -F': ' '/actually processed/ {print $2}' "$runs/pgbench.out") transactions"
}

tools=(restic borg)
[ "$skip_backstop" = 1 ] || tools=(backstop backstop-enc restic borg)
rotate() { # rotate N WORD...: the words, starting at the Nth (modulo their count)
    local n=$1; shift
    local all=("$@") i
    for i in $(seq 0 $(($# - 1))); do echo "${all[$(((n + i) % $#))]}"; done
}

for round in $(seq 1 "$rounds"); do
    rdir=$runs/r$round
    mkdir -p "$rdir"
    if [ "$round" -gt 1 ]; then  # the copy's cluster back to the built one
        rm -rf "$data/pgdata"
        cp -a "$src/pgdata" "$data/pgdata"
    fi

    # Fresh repositories for this round.
    "${restic_init[@]}" -r "$rdir/restic"
    "${borg_init[@]}" "$rdir/borg"
    if [ "$skip_backstop" != 1 ]; then
        [ "$round" -eq 1 ] || sqlb "DROP TENANT bench$((round - 1))" "DROP TENANT enc$((round - 1))"
        sqlb "CREATE TENANT bench$round SOURCE = 'dir://$data'" \
            "ALTER SYSTEM SET DATA_BACKUP_DEST = 'file://$rdir/backstop' TENANT = bench$round" \
            "CREATE TENANT enc$round SOURCE = 'dir://$data'" \
            "ALTER SYSTEM SET DATA_BACKUP_DEST = 'file://$rdir/backstop-enc' TENANT = enc$round"
    fi

    order=$(rotate $((round - 1)) "${tools[@]}")
    for step in full unchanged; do
        for tool in $order; do backup "$tool" $step; done
    done
    change_cluster
    for tool in $order; do backup "$tool" changed; done

    for tool in "${tools[@]}"; do
        record "$tool" repo_bytes "$round" "$(du -sb "$rdir/$tool" | cut -f1)" 0 0
    done

    # Each repository is read into the page cache before its restore (prepare), as the source
    # is before a backup; the floor reads the data set.
    new_restore_fs
    for tool in $(rotate $((round - 1)) "${tools[@]}" floor); do restore "$tool"; done

    for tool in "${tools[@]}"; do
        if diff -rq "$data" "$(restored_tree "$tool")" > "$rdir/diff-$tool" 2>&1; then
            echo "  round $round: $tool's restore is identical to the source"
        else
            echo "  round $round: $tool's restore DIFFERS from the source (first lines of $rdir/diff-$tool):" >&2
            head -5 "$rdir/diff-$tool" >&2
        fi
    done
    [ -n "$keep_restores" ] || rm -rf "$rdir"/restore-*
    # The next round's image needs the room: a round's repositories go once measured.
    [ -z "$fresh_fs" ] || [ -n "$keep_restores" ] || rm -rf "${rdir:?}"/{backstop,backstop-enc,restic,borg}
done
rm -rf "$runs"/r*/restore-*
drop_restore_fs

echo
python3 - "$results" "$rounds" <<'PY'
import collections, statistics, sys
runs = collections.defaultdict(lambda: collections.defaultdict(list))
for line in open(sys.argv[1]):
    tool, step, _round, wall, cpu, rss = line.rstrip("\n").split("\t")
    runs[step][tool].append((float(wall), float(cpu), int(rss)))
def med(step, tool, i):
    rows = runs[step].get(tool)
    return statistics.median(r[i] for r in rows) if rows else None
def ratio(a, b):
    return f"{a / b:.2f}" if a is not None and b else "-"
print(f"{sys.argv[2]} rounds; medians, wall time's min-max in brackets; restore = restore + sync")
print(f"{'step':<10} {'tool':<12} {'wall s':>8} {'[min - max]':>17} {'cpu s':>8} {'peak RSS MB':>12}"
      f" {'/restic':>8} {'/borg':>8}")
for step in ["full", "unchanged", "changed", "restore"]:
    for tool in ["backstop", "backstop-enc", "restic", "borg", "floor"]:
        rows = runs[step].get(tool)
        if not rows:
            continue
        walls = [r[0] for r in rows]
        label = "cp -a" if tool == "floor" else tool
        b = med(step, tool, 0)
        ratios = (f" {ratio(b, med(step, 'restic', 0)):>8} {ratio(b, med(step, 'borg', 0)):>8}"
                  if tool.startswith("backstop") else "")
        print(f"{step:<10} {label:<12} {statistics.median(walls):8.2f} "
              f"{'[' + f'{min(walls):.2f} - {max(walls):.2f}' + ']':>17} {med(step, tool, 1):8.2f} "
              f"{med(step, tool, 2) / 1024:12.0f}{ratios}")
floor = med("restore", "floor", 0)
print("restore / physical floor (cp -a + sync): " + ", ".join(
    f"{t} {ratio(med('restore', t, 0), floor)}" for t in ["backstop", "backstop-enc", "restic", "borg"] if runs["restore"].get(t)))
print()
for tool in ["backstop", "backstop-enc", "restic", "borg"]:
    if tool in runs["repo_bytes"]:
        size = med("repo_bytes", tool, 0)
        vs = "" if tool == "backstop" else f"  backstop/{tool} {ratio(med('repo_bytes', 'backstop', 0), size)}"
        print(f"repository {tool:<12} {size / 2**20:10.1f} MiB (median; after the changed incremental){vs}")
PY

cat <<EOF

What each tool does that the others do not:
* restic always encrypts its repository (AES-256 and Poly1305 over every blob), and each run
  derives the key from the password with scrypt as it opens the repository; its compression
  here is --compression auto (zstd at restic's default speed).
* borg runs here without encryption (--encryption=none) and with --compression zstd,1; it
  keeps a files cache and a chunks index per repository (in BORG_BASE_DIR, under this run's folder).
* backstop-enc seals every blob and object with AES-256-GCM (AES-NI here) and names chunks with
  keyed BLAKE3: the same protection as restic's; its key is unwrapped once per statement that
  needs it (Argon2id at 64 MiB, 3 passes, 4 lanes on two threads), inside the full and restore timings.
* backstop is a resident server: its start is not in the timings (restic and borg start a
  process per step, and load their indexes each time). Its CPU seconds and peak RSS are read
  from /proc of the server process (utime + stime; VmHWM reset before each step), and include
  its SQL engine and catalog. Its compression is backup_compression = '$compression'. Its
  restore ends with a syncfs of its own; the sync after it is counted as for the others.
* Every restore is counted with the sync that makes it durable; the floor is cp -a + sync.
EOF
