# Sourced by the bench scripts: builds backstop and starts a server for one run.
#
#   build_backstop                   # sets $backstop; BACKSTOP=path uses that binary instead,
#                                    # to compare two builds in turn
#   start_backstop BINARY PORT DIR   # catalog in DIR/catalog, log in DIR/log; killed on exit
#
# Sets $server (its pid) and PGPASSWORD; returns once it answers SQL, or exits naming the log.
build_backstop() {
    if [ -n "${BACKSTOP:-}" ]; then
        backstop=$BACKSTOP
        return
    fi
    # --benches: the same feature set as `cargo bench`, so DataFusion is built once for both.
    cargo build --release --quiet --bins --benches
    backstop=${CARGO_TARGET_DIR:-target}/release/backstop
}

start_backstop() {
    local binary=$1 port=$2 dir=$3
    BACKSTOP_ADMIN_PASSWORD=bench BACKSTOP_LOG=warn "$binary" server --listen "127.0.0.1:$port" \
        --data-dir "$dir/catalog" >/dev/null 2>"$dir/log" &
    server=$!
    trap 'kill $server 2>/dev/null || true' EXIT
    export PGPASSWORD=bench
    for _ in $(seq 1 100); do
        psql -X -q -h 127.0.0.1 -p "$port" -U admin -d backstop -c 'SELECT 1' >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "backstop did not answer on port $port; see $dir/log" >&2
    exit 1
}
