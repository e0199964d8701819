#!/usr/bin/env bash
# Builds the backup benchmark's dataset in $1 (default bench/work/data): a real PostgreSQL data
# directory filled by pgbench, many small text files, large binaries and an incompressible file.
# SCALE (default 1) multiplies every part; SCALE=1 is about 2.2 GB.
set -euo pipefail
out=${1:-$(dirname "$0")/work/data}
scale=${SCALE:-1}
rm -rf "$out"
mkdir -p "$out"
out=$(cd "$out" && pwd)

# 1. PostgreSQL data directory after pgbench -i (about 800 MB at SCALE=1), cleanly stopped.
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
pgtmp=$(mktemp -d)
chown postgres "$pgtmp"
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
as_pg "$bin/initdb" -D "$pgtmp/data" -A trust -U postgres --no-sync >/dev/null
as_pg "$bin/pg_ctl" -D "$pgtmp/data" -o "-p 55439 -k $pgtmp -c listen_addresses=" -l "$pgtmp/log" -w start >/dev/null
as_pg "$bin/pgbench" -h "$pgtmp" -p 55439 -U postgres -i -q -s $((50 * scale)) postgres >/dev/null 2>&1
as_pg "$bin/pg_ctl" -D "$pgtmp/data" -m fast -w stop >/dev/null
cp -a "$pgtmp/data" "$out/pgdata"
rm -rf "$pgtmp"

# 2. Many small text files: 20000 * SCALE files of 1-24 KB in 200 directories (about 250 MB).
python3 - "$out/text" "$scale" <<'PY'
import os, random, sys
root, scale = sys.argv[1], int(sys.argv[2])
rng = random.Random(42)
words = [w.strip() for w in open('/usr/share/dict/words')] if os.path.exists('/usr/share/dict/words') else \
    ["backup", "restore", "tenant", "archive", "piece", "round", "chunk", "pack", "index", "manifest",
     "checkpoint", "context", "cancel", "stop", "suspend", "resume", "validate", "delete", "plan", "policy"]
for i in range(20000 * scale):
    d = os.path.join(root, f"d{i % 200:03d}")
    os.makedirs(d, exist_ok=True)
    n = rng.randint(100, 3000)
    with open(os.path.join(d, f"f{i:06d}.txt"), "w") as f:
        f.write(" ".join(rng.choice(words) for _ in range(n)))
        f.write("\n")
PY

# 3. Large binaries: system programs and libraries concatenated into 4 files (about 400 MB).
mkdir -p "$out/bin"
set +o pipefail  # head closes the pipe early on purpose
for i in 1 2 3 4; do
    for k in $(seq 1 $scale); do
        find /usr/lib/x86_64-linux-gnu /usr/bin -maxdepth 1 -type f -size +100k 2>/dev/null | sort | head -n 400 | \
            xargs cat 2>/dev/null | head -c $((100 << 20))
    done > "$out/bin/blob$i.bin"
done
set -o pipefail

# 4. An incompressible file (about 600 MB).
openssl rand -out "$out/random.bin" $((600 * scale << 20))

du -sh "$out"
