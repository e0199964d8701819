#!/usr/bin/env bash
# Installs what the comparison benchmarks run besides backstop, from Debian's packages:
# pgBackRest, restic, borg, GNU time (/usr/bin/time, for wall/CPU/peak RSS of a command), bc,
# and PostgreSQL with pgbench (postgresql + postgresql-contrib). Safe to run again: does
# nothing when everything is present. Uses sudo only when not run as root.
#
#   scripts/setup-bench-env.sh
set -euo pipefail

need=()
command -v pgbackrest >/dev/null 2>&1 || need+=(pgbackrest)
command -v restic >/dev/null 2>&1 || need+=(restic)
command -v borg >/dev/null 2>&1 || need+=(borgbackup)
[ -x /usr/bin/time ] || need+=(time)
command -v bc >/dev/null 2>&1 || need+=(bc)
command -v psql >/dev/null 2>&1 || need+=(postgresql-client)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
# pgbench ships with the server package in Debian; postgresql-contrib is the name that pulls it
# in on every release.
ls /usr/lib/postgresql/*/bin/pgbench >/dev/null 2>&1 || need+=(postgresql-contrib)

if [ ${#need[@]} -gt 0 ]; then
    echo "setup-bench-env: installing ${need[*]}"
    if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
