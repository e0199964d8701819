#!/usr/bin/env bash
# Installs what the tests talk to: PostgreSQL (server, psql, and with the server pgbench and
# amcheck, which the PostgreSQL-tenant tests run) and openssl, from Debian's
# packages. Safe to run again; does nothing when everything is present.
set -euo pipefail

need=()
command -v psql >/dev/null 2>&1 || need+=(postgresql-client)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v openssl >/dev/null 2>&1 || need+=(openssl)

if [ ${#need[@]} -gt 0 ]; then
    echo "setup-test-env: installing ${need[*]}"
    if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
