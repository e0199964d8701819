#!/usr/bin/env bash
# Installs what the tests talk to: PostgreSQL (server, psql, and with the server pgbench and
# amcheck, which the PostgreSQL-tenant tests run) and openssl, from Debian's
# packages, and the client drivers the driver tests run. Safe to run again; does nothing when everything is present.
set -euo pipefail

need=()
command -v psql >/dev/null 2>&1 || need+=(postgresql-client)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# The client drivers tests/drivers runs against the server: psycopg 3, node-postgres, pgjdbc.
/usr/bin/python3 -c 'import psycopg' >/dev/null 2>&1 || need+=(python3-psycopg)
command -v node >/dev/null 2>&1 || need+=(nodejs npm)
[ -f /usr/share/java/postgresql.jar ] || need+=(libpostgresql-jdbc-java)
command -v java >/dev/null 2>&1 || need+=(default-jdk-headless)

if [ ${#need[@]} -gt 0 ]; then
    echo "setup-test-env: installing ${need[*]}"
    if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

# node-postgres from npm, pinned, into a cache outside the clone: Debian's node-pg cannot be
# installed beside a newer nodejs than Debian's own.
NODE_PG_DIR="${BACKSTOP_NODE_DIR:-$HOME/.cache/backstop-node}"
if [ ! -f "$NODE_PG_DIR/node_modules/pg/package.json" ]; then
    echo "setup-test-env: installing node-postgres into $NODE_PG_DIR"
    mkdir -p "$NODE_PG_DIR"
    npm install --silent --no-audit --no-fund --prefix "$NODE_PG_DIR" pg@8.13.1 >/dev/null
fi
