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

# A file system made for one measurement's restores: ext4 without a journal (like this
# machine's disk) on a loop device with direct I/O over an image file, so that no restore
# follows a large delete on the file system it writes to (ext4 without a journal then checks,
# for each file it creates, whether a free inode was deleted recently) and every round starts
# alike. Needs root and a free loop device.
#
#   fresh_fs_possible                 # whether this machine can
#   fresh_fs_mount IMAGE MIB DIR      # a new file system of MIB MiB in IMAGE, mounted on DIR
#   fresh_fs_drop                     # unmounts it, frees the loop device, deletes the image
fresh_fs_possible() {
    [ "$(id -u)" -eq 0 ] && command -v mkfs.ext4 >/dev/null && losetup -f >/dev/null 2>&1
}
fresh_fs_mount() {
    local image=$1 mib=$2 dir=$3
    fresh_fs_drop
    truncate -s "${mib}M" "$image"
    fresh_fs_dev=$(losetup --direct-io=on -f --show "$image")
    fresh_fs_image=$image fresh_fs_dir=$dir
    mkfs.ext4 -q -F -O ^has_journal -E lazy_itable_init=0,lazy_journal_init=0 "$fresh_fs_dev"
    mkdir -p "$dir"
    mount "$fresh_fs_dev" "$dir"
}
fresh_fs_drop() {
    [ -n "${fresh_fs_dev:-}" ] || return 0
    ! mountpoint -q "$fresh_fs_dir" || umount "$fresh_fs_dir"
    losetup -d "$fresh_fs_dev"
    rm -f "$fresh_fs_image"
    fresh_fs_dev=
}
