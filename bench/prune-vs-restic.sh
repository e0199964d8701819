#!/usr/bin/env bash
# Deleting old backup sets and collecting the garbage: backstop against `restic forget --prune`
# (Debian's package) on the same history of a real, changing software tree, in the same run.
#
# The history: the newest SETS (default 300) commits of the first-parent line of a real git
# repository's default branch (SRC_REV, default HEAD), oldest first. The repository is cloned
# bare, once, into bench/work/prune-src.git (kept across runs, cloned again when the source
# changes), from the first of:
#   SRC_REPO=path-or-URL   any git repository with at least SETS first-parent commits
#   /work/.mirror/         a bare mirror there (MIRROR_DIR): BurntSushi+ripgrep/repo first, a
#                          bare mirror of github.com/BurntSushi/ripgrep (2215 first-parent
#                          commits; its tree is about 3.3 MB in 240 files), which is what this
#                          script used on the project's machine; else the first other one, by
#                          name, with SETS commits
#   this repository's own .git, once it has SETS first-parent commits
# and otherwise stops, saying how to give one (SRC_REPO=/path/to/repo.git, or a URL such as
# https://github.com/BurntSushi/ripgrep). The list of commits is fixed at the start of a run and
# is the same for every round and both tools; the first and last are printed.
#
# One round (ROUNDS, default 3), every round into fresh repositories and, for backstop, a fresh
# server and catalog:
#   setup    for k = 1 .. SETS: commit k is checked out into the ONE working folder
#            bench/work/prune/tree (`git read-tree --reset -u` with an index of this run, then
#            `git clean -fdx`: only the files that changed are rewritten, as a checkout does),
#            then each tool backs it up, the tools in this round's order:
#              backstop  ALTER SYSTEM BACKUP TENANT bench WAIT (the first set), then
#                        ALTER SYSTEM BACKUP INCREMENTAL TENANT bench WAIT (every set restores
#                        on its own; incremental sets share chunks)
#              restic    restic backup (of the same folder: restic picks its parent snapshot)
#            Not timed as a step; the total wall time of the SETS backups is printed.
#   delete   the measured step: every set but the newest KEEP (default 30) is deleted and the
#            space they alone held is reclaimed:
#              backstop  ALTER SYSTEM SET backup_gc_grace_period = '0s' (before, not timed: the
#                        collector marks and sweeps in one job), then ONE statement, timed:
#                        ALTER SYSTEM DELETE BACKUPSET id1, id2, ..., idN WAIT
#                        (the ids from oceanbase.CDB_OB_BACKUP_SET_FILES, all but the newest
#                        KEEP); the job ends after its collection, so the WAITed statement is
#                        the whole of it
#              restic    restic forget --keep-last KEEP --prune (restic's defaults otherwise:
#                        it may leave up to 5% of the repository unused rather than repack)
# Before the delete step: `sync`, and the repository read into the page cache (not timed).
# The tools take turns in an order that rotates each round, so that none always runs first.
#
# Measured for the delete step, per tool and round:
#   wall time     restic: GNU time's; backstop: around the psql statement (psql's start included)
#   peak memory   restic: GNU time's maximum RSS of the process; backstop: the server's RSS
#                 high-water mark during the step (5 written to /proc/PID/clear_refs just
#                 before the statement resets VmHWM, which is read from /proc/PID/status right
#                 after it). backstop's figure includes its resident SQL engine and catalog.
#   CPU seconds   user + system; backstop's from /proc/PID/stat of the server
#   bytes         `du -sb` of the repository (backstop: its destination folder) before and
#                 after; reclaimed = before - after
# Prints the medians with min and max over the rounds, the ratios backstop/restic, and the
# targets of issue 14, each "met" or "MISSED": time at most 1/3 of restic's, peak memory at most
# restic's, bytes reclaimed at least restic's. Not a test: these machines are shared and noisy,
# so only ratios measured together mean much.
#
# What differs between the tools: restic always encrypts (AES-256 and Poly1305 over every blob,
# its key derived with scrypt at each command; RESTIC_PASSWORD is fixed here) and cannot be told
# not to; backstop here does not encrypt. restic starts a process per command and keeps a local
# cache (RESTIC_CACHE_DIR, this run's folder, as its backups left it); backstop is a resident
# server whose start is not timed. Compression: restic --compression auto (repository version
# 2), backstop backup_compression = 'zstd:1'.
#
#   bench/prune-vs-restic.sh                         # SETS=300, KEEP=30, ROUNDS=3
#   SETS=20 KEEP=5 ROUNDS=1 bench/prune-vs-restic.sh # a quick look
#   SKIP_BACKSTOP=1 bench/prune-vs-restic.sh         # restic only; no build, no server
#   BACKSTOP=path/to/backstop bench/prune-vs-restic.sh   # that binary, no build
#   SRC_REPO=/path/to/repo.git bench/prune-vs-restic.sh  # another history (SRC_REV=ref to pin it)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."
root=$(pwd)
work=$root/bench/work
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/backstop-target}"
sets=${SETS:-300}
keep=${KEEP:-30}
rounds=${ROUNDS:-3}
skip_backstop=${SKIP_BACKSTOP:-0}
src_rev=${SRC_REV:-HEAD}
mirrors=${MIRROR_DIR:-/work/.mirror}
preferred_mirror=BurntSushi+ripgrep
for v in sets keep rounds; do
    [[ ${!v} =~ ^[0-9]+$ ]] || { echo "${v^^} must be a whole number, not '${!v}'" >&2; exit 1; }
done
[ "$rounds" -ge 1 ] || { echo "ROUNDS must be at least 1" >&2; exit 1; }
[ "$keep" -ge 1 ] || { echo "KEEP must be at least 1" >&2; exit 1; }
[ "$sets" -gt "$keep" ] || { echo "SETS ($sets) must be larger than KEEP ($keep)" >&2; exit 1; }

# --- The history: a bare clone of a real repository, and SETS commits of it.
first_parents() { # first_parents GITDIR: how many first-parent commits SRC_REV has (0: none)
    git --git-dir="$1" rev-list --first-parent --count "$src_rev" 2>/dev/null || echo 0
}
no_source() {
    cat >&2 <<EOF
prune-vs-restic: no git repository with at least $sets first-parent commits to take the history
from. Give one (a bare or ordinary repository, or a URL; it is cloned once into
bench/work/prune-src.git):
    SRC_REPO=/path/to/repo.git $0
    SRC_REPO=https://github.com/BurntSushi/ripgrep $0
EOF
    [ -n "${SRC_REPO:-}" ] || echo "(searched: bare mirrors under $mirrors, then $root/.git)" >&2
    exit 1
}
if [ -n "${SRC_REPO:-}" ]; then
    source_repo=$SRC_REPO
else
    source_repo=
    candidates=()
    [ ! -d "$mirrors/$preferred_mirror/repo" ] || candidates+=("$mirrors/$preferred_mirror/repo")
    if [ -d "$mirrors" ]; then
        mapfile -t found < <(find "$mirrors" -mindepth 1 -maxdepth 2 -type d | sort)
        candidates+=("${found[@]}")
    fi
    own=$(git -C "$root" rev-parse --absolute-git-dir 2>/dev/null || true)
    [ -z "$own" ] || candidates+=("$own")
    for d in "${candidates[@]}"; do
        [ -f "$d/HEAD" ] || continue  # a git directory, not its parent folder
        if [ "$(first_parents "$d")" -ge "$sets" ]; then source_repo=$d; break; fi
    done
    [ -n "$source_repo" ] || no_source
fi
clone=$work/prune-src.git
if [ ! -d "$clone" ] || [ "$(cat "$work/prune-src.from" 2>/dev/null)" != "$source_repo" ]; then
    echo "cloning $source_repo into $clone (bare, once)"
    rm -rf "$clone" "$clone.tmp" "$work/prune-src.from"
    mkdir -p "$work"
    git clone --bare --quiet "$source_repo" "$clone.tmp"
    mv "$clone.tmp" "$clone"  # only a complete clone gets the name
    echo "$source_repo" > "$work/prune-src.from"
fi
[ "$(first_parents "$clone")" -ge "$sets" ] || {
    echo "$source_repo has $(first_parents "$clone") first-parent commits at $src_rev; SETS=$sets needs as many" >&2
    no_source; }

scripts/setup-test-env.sh
scripts/setup-bench-env.sh
[ "$skip_backstop" = 1 ] || build_backstop

runs=$work/prune
rm -rf "$runs"
mkdir -p "$runs"
results=$runs/results.tsv
: > "$results"
# Oldest first; fixed for the whole run: every round and both tools see the same history.
git --git-dir="$clone" rev-list --first-parent --max-count="$sets" "$src_rev" | tac > "$runs/commits"
mapfile -t commits < "$runs/commits"
[ "${#commits[@]}" -eq "$sets" ] || { echo "expected $sets commits, got ${#commits[@]}" >&2; exit 1; }
tree=$runs/tree
export GIT_INDEX_FILE=$runs/tree.index  # the working folder's own index; the clone's HEAD stays
materialize() { # materialize K: commit K (1 = the oldest) in $tree, rewriting what changed only
    git --git-dir="$clone" --work-tree="$tree" read-tree --reset -u "${commits[$(($1 - 1))]}"
    git --git-dir="$clone" --work-tree="$tree" clean -q -fdx
}
describe() { git --git-dir="$clone" log -1 --format='%h %cs' "$1"; }

# --- The tools, with their exact flags.
export RESTIC_PASSWORD=bench RESTIC_CACHE_DIR=$runs/restic-cache
compression=zstd:1
restic_init=(restic init -q --repository-version 2)
restic_backup=(restic backup -q --compression auto)
restic_prune=(restic forget --keep-last "$keep" --prune)
echo
echo "history: $source_repo, $sets first-parent commits of $src_rev, oldest $(describe "${commits[0]}"),"
echo "         newest $(describe "${commits[$((sets - 1))]}") ($(git --git-dir="$clone" ls-tree -r "${commits[$((sets - 1))]}" | wc -l) files);"
echo "        $(git --git-dir="$clone" diff --shortstat "${commits[0]}" "${commits[$((sets - 1))]}") between them"
echo "         list: $runs/commits; checked out one after the other into $tree"
echo "restic $(restic version | cut -d' ' -f2), $(nproc) cores; $sets sets, the newest $keep kept, $rounds rounds"
echo "restic:   ${restic_init[*]} -r REPO (RESTIC_PASSWORD set: encryption is always on in restic)"
echo "          ${restic_backup[*]} -r REPO TREE;  timed: ${restic_prune[*]} -r REPO"
if [ "$skip_backstop" = 1 ]; then
    echo "backstop: skipped (SKIP_BACKSTOP=1)"
else
    echo "backstop: $backstop, ALTER SYSTEM SET backup_compression = '$compression';"
    echo "          ALTER SYSTEM BACKUP [INCREMENTAL] TENANT bench WAIT;"
    echo "          ALTER SYSTEM SET backup_gc_grace_period = '0s';"
    echo "          timed: ALTER SYSTEM DELETE BACKUPSET id1, ..., idN WAIT (all but the newest $keep)"
fi
echo

# record TOOL STEP ROUND A B C: delete rows are WALL CPU RSS_KB; backups rows WALL CPU 0;
# bytes rows BEFORE AFTER 0
record() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >> "$results"; }

timed() { # timed TOOL STEP OUT command...: wall, user+sys CPU and peak RSS of a command;
          # its output goes to OUT
    local tool=$1 step=$2 out=$3 wall user sys rss; shift 3
    /usr/bin/time -f '%e %U %S %M' -o "$runs/time" "$@" >"$out" 2>&1 </dev/null || {
        tail -20 "$out" >&2; echo "$tool $step failed: $*" >&2; exit 1; }
    read -r wall user sys rss < "$runs/time"
    record "$tool" "$step" "$round" "$wall" "$(echo "$user + $sys" | bc)" "$rss"
}

warm() { find "$1" -type f -exec cat {} + >/dev/null; }

# --- backstop: a server per round on a free loopback port, driven by psql; CPU and RSS from /proc.
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
cleanup() { [ -z "${server:-}" ] || kill "$server" 2>/dev/null || true; }
trap cleanup EXIT
if [ "$skip_backstop" != 1 ]; then
    ticks=$(getconf CLK_TCK)
    cpu_of() { awk -v t="$ticks" '{print ($14 + $15) / t}' "/proc/$server/stat"; }
    psqlb() { psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U admin -d backstop "$@"; }
    sqlb() { # sqlb SQL: run it, or stop naming it
        psqlb -c "$1" >/dev/null 2>>"$rdir/psql.log" || {
            tail -5 "$rdir/psql.log" >&2; echo "backstop statement failed: ${1:0:200}" >&2; exit 1; }
    }
    sqlv() { # sqlv SQL: its rows, unaligned
        psqlb -At -c "$1" 2>>"$rdir/psql.log" || {
            tail -5 "$rdir/psql.log" >&2; echo "backstop query failed: $1" >&2; exit 1; }
    }
    bstep() { # bstep STEP SQL: the statement timed; peak RSS of this step only
        local c0 t0 c1 t1
        echo 5 > "/proc/$server/clear_refs" 2>/dev/null || true  # resets VmHWM
        c0=$(cpu_of); t0=$(date +%s.%N)
        sqlb "$2"
        t1=$(date +%s.%N); c1=$(cpu_of)
        record backstop "$1" "$round" "$(echo "$t1 - $t0" | bc)" "$(echo "$c1 - $c0" | bc)" \
            "$(awk '/VmHWM/ {print $2}' "/proc/$server/status")"
    }
    server_up() { # a fresh server and catalog, a tenant over the tree and this round's destination
        mkdir -p "$rdir/server"
        port=$(free_port)
        start_backstop "$backstop" "$port" "$rdir/server"
        trap cleanup EXIT  # start_backstop set its own; cleanup kills the server too
        sqlb "ALTER SYSTEM SET backup_compression = '$compression'"
        sqlb "CREATE TENANT bench SOURCE = 'dir://$tree'"
        sqlb "ALTER SYSTEM SET DATA_BACKUP_DEST = 'file://$rdir/backstop' TENANT = bench"
    }
    server_down() {
        kill "$server"
        wait "$server" 2>/dev/null || true
        server=
    }
fi

backup() { # backup TOOL K: set K of this round, of the tree as it is now
    sync  # no backup pays for writing back what the one before it left dirty
    case $1 in
        backstop)
            if [ "$2" -eq 1 ]; then bstep backups "ALTER SYSTEM BACKUP TENANT bench WAIT"
            else bstep backups "ALTER SYSTEM BACKUP INCREMENTAL TENANT bench WAIT"; fi ;;
        restic) timed restic backups "$rdir/restic-backup.out" "${restic_backup[@]}" -r "$rdir/restic" "$tree" ;;
    esac
}

prune() { # prune TOOL: every set but the newest $keep deleted, its space reclaimed; timed
    local repo=$rdir/$1 before after left
    before=$(du -sb "$repo" | cut -f1)
    case $1 in
        backstop)
            sqlb "ALTER SYSTEM SET backup_gc_grace_period = '0s'"
            local ids doomed list
            ids=$(sqlv "SELECT DISTINCT backup_set_id FROM oceanbase.CDB_OB_BACKUP_SET_FILES
                        WHERE file_status <> 'DELETED' ORDER BY backup_set_id")
            [ "$(echo "$ids" | wc -l)" -eq "$sets" ] || {
                echo "backstop has $(echo "$ids" | wc -l) sets, expected $sets" >&2; exit 1; }
            doomed=$(echo "$ids" | head -n $((sets - keep)))
            list=$(echo "$doomed" | paste -sd, | sed 's/,/, /g')
            sync; warm "$repo"
            bstep delete "ALTER SYSTEM DELETE BACKUPSET $list WAIT"
            echo "  round $round: backstop's delete job: $(sqlv "SELECT comment FROM
                oceanbase.CDB_OB_BACKUP_DELETE_JOB_HISTORY ORDER BY job_id DESC LIMIT 1")"
            left=$(sqlv "SELECT count(DISTINCT backup_set_id) FROM oceanbase.CDB_OB_BACKUP_SET_FILES
                         WHERE file_status <> 'DELETED'")
            ;;
        restic)
            sync; warm "$repo"
            timed restic delete "$rdir/restic-prune.out" "${restic_prune[@]}" -r "$repo"
            echo "  round $round: restic's prune: $(grep -E '^(this removes|total prune|remaining:|unused size after prune)' \
                "$rdir/restic-prune.out" | sed 's/  */ /g' | paste -sd';' | sed 's/;/; /g')"
            left=$(restic snapshots --json -r "$repo" | python3 -c 'import json, sys; print(len(json.load(sys.stdin)))')
            ;;
    esac
    after=$(du -sb "$repo" | cut -f1)
    record "$1" bytes "$round" "$before" "$after" 0
    [ "$left" -eq "$keep" ] || echo "  round $round: $1 has $left sets left, expected $keep" >&2
}

tools=(restic)
[ "$skip_backstop" = 1 ] || tools=(backstop restic)
rotate() { # rotate N WORD...: the words, starting at the Nth (modulo their count)
    local n=$1; shift
    local all=("$@") i
    for i in $(seq 0 $(($# - 1))); do echo "${all[$(((n + i) % $#))]}"; done
}
total_of() { # total_of TOOL: the wall seconds of this round's backups by TOOL
    awk -F'\t' -v t="$1" -v r="$round" '$1 == t && $2 == "backups" && $3 == r {s += $4}
        END {printf "%.1f", s}' "$results"
}

for round in $(seq 1 "$rounds"); do
    rdir=$runs/r$round
    mkdir -p "$rdir"
    rm -rf "$tree" "$GIT_INDEX_FILE"
    mkdir -p "$tree"
    order=$(rotate $((round - 1)) "${tools[@]}")
    "${restic_init[@]}" -r "$rdir/restic"
    [ "$skip_backstop" = 1 ] || server_up

    for k in $(seq 1 "$sets"); do
        materialize "$k"
        for tool in $order; do backup "$tool" "$k"; done
        [ $((k % 50)) -ne 0 ] || [ "$k" -eq "$sets" ] || echo "  round $round: $k of $sets sets"
    done
    echo "  round $round: $sets sets backed up, in $(for tool in $order; do
        echo "$tool $(total_of "$tool") s"; done | paste -sd, | sed 's/,/, /g') (not timed as a step)"

    for tool in $order; do prune "$tool"; done
    [ "$skip_backstop" = 1 ] || server_down
done

echo
python3 - "$results" "$rounds" "$sets" "$keep" <<'PY'
import collections, statistics, sys
rows = collections.defaultdict(lambda: collections.defaultdict(lambda: collections.defaultdict(list)))
for line in open(sys.argv[1]):
    tool, step, rnd, a, b, c = line.rstrip("\n").split("\t")
    rows[step][tool][int(rnd)].append((float(a), float(b), float(c)))
rounds, sets, keep = sys.argv[2], sys.argv[3], sys.argv[4]
tools = [t for t in ["backstop", "restic"] if t in rows["delete"]]

def per_round(step, tool, f):
    return [f(v) for _, v in sorted(rows[step][tool].items())]
def span(xs, fmt):
    return f"{fmt(statistics.median(xs))} [{fmt(min(xs))} - {fmt(max(xs))}]"
mib = lambda x: f"{x / 2**20:.1f}"
sec = lambda x: f"{x:.2f}"
mb = lambda x: f"{x / 1024:.0f}"
dec1 = lambda x: f"{x:.1f}"

fig = {}
for t in tools:
    fig[t] = {
        "wall": per_round("delete", t, lambda v: v[0][0]),
        "cpu": per_round("delete", t, lambda v: v[0][1]),
        "rss": per_round("delete", t, lambda v: v[0][2]),
        "before": per_round("bytes", t, lambda v: v[0][0]),
        "after": per_round("bytes", t, lambda v: v[0][1]),
        "reclaimed": per_round("bytes", t, lambda v: v[0][0] - v[0][1]),
        "setup": per_round("backups", t, lambda v: sum(x[0] for x in v)),
    }
print(f"{rounds} rounds of {sets} sets, the newest {keep} kept; medians [min - max] over the rounds")
print()
print(f"backing up the {sets} sets (setup, not the measured step): "
      + ", ".join(f"{t} {span(fig[t]['setup'], dec1)} s" for t in tools))
print()
print(f"{'delete + collect':<17} {'wall s':>22} {'CPU s':>7} {'peak RSS MB':>16} "
      f"{'repo before MiB':>16} {'after MiB':>10} {'reclaimed MiB':>26}")
for t in tools:
    f = fig[t]
    print(f"{t:<17} {span(f['wall'], sec):>22} {statistics.median(f['cpu']):7.2f} "
          f"{span(f['rss'], mb):>16} {mib(statistics.median(f['before'])):>16} "
          f"{mib(statistics.median(f['after'])):>10} {span(f['reclaimed'], mib):>26}")
if len(tools) == 2:
    b, r = fig["backstop"], fig["restic"]
    m = lambda xs: statistics.median(xs)
    def ratio(x, y):
        return x / y if y else float("inf")
    checks = [
        ("time", ratio(m(b["wall"]), m(r["wall"])), "at most 0.33 (1/3 of restic's)",
         lambda q: q <= 1 / 3),
        ("peak memory", ratio(m(b["rss"]), m(r["rss"])), "at most 1.00", lambda q: q <= 1),
        ("bytes reclaimed", ratio(m(b["reclaimed"]), m(r["reclaimed"])), "at least 1.00",
         lambda q: q >= 1),
    ]
    print()
    print("backstop / restic (of the medians), against the targets of issue 14:")
    for name, q, target, ok in checks:
        print(f"  {name:<16} {q:6.2f}   target {target:<32} {'met' if ok(q) else 'MISSED'}")
    print(f"  (repository after: backstop/restic {ratio(m(b['after']), m(r['after'])):.2f}; "
          f"before: {ratio(m(b['before']), m(r['before'])):.2f})")
PY

cat <<EOF

What each tool does that the other does not:
* restic always encrypts its repository (AES-256 and Poly1305 over every blob) and derives its
  key from the password with scrypt at each command; it cannot be told not to. backstop here
  does not encrypt. Compression: restic --compression auto, backstop '$compression'.
* restic's prune runs with its defaults: it repacks packs that hold both used and unused data
  only while more than 5% of the repository would stay unused (--max-unused 5%); backstop
  repacks a pack whose live bytes are under backup_gc_repack_threshold (50%) of it, and leaves
  the others whole.
* 'bytes reclaimed' favours the larger repository: compare the sizes after as well.
* restic starts a process per command and keeps a local cache ($RESTIC_CACHE_DIR, as its backups
  left it); its peak memory is GNU time's maximum RSS. backstop is a resident server on
  loopback: its start is not timed, and its peak memory is the server's RSS high-water mark
  (VmHWM, reset through clear_refs just before the statement), its SQL engine and catalog
  included.
EOF
