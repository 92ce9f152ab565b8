#!/bin/sh
# A throwaway PostgreSQL on loopback for `make cluster` and the tests:
#   pg-local.sh start DATADIR PORT   (initdb on first use; prints the DSN)
#   pg-local.sh stop DATADIR [fast|immediate]
# Debian's server binaries refuse to run as root, so as root the cluster belongs to
# the `postgres` system user.  Database `masker`, user `masker` (trust on loopback
# only: a development cluster, never a production one).
set -e
BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$BIN/pg_ctl" ] || { echo "pg-local: PostgreSQL server not installed (Debian package postgresql)" >&2; exit 2; }
cmd=$1; dir=$2
as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
case "$cmd" in
start)
    port=$3
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    chmod 700 "$dir"
    if [ ! -f "$dir/PG_VERSION" ]; then
        as_owner "$BIN/initdb" -D "$dir" -U postgres -A trust --no-instructions >/dev/null
        cat >>"$dir/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
logging_collector = off
log_min_messages = warning
CONF
        printf 'host all all 127.0.0.1/32 trust\nlocal all all trust\n' >"$dir/pg_hba.conf"
        fresh=1
    fi
    as_owner "$BIN/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 30 start >/dev/null
    if [ -n "$fresh" ]; then
        as_owner "$BIN/psql" -h "$dir" -p "$port" -U postgres -q -c "CREATE ROLE masker LOGIN" \
            -c "CREATE DATABASE masker OWNER masker" >/dev/null
    fi
    echo "postgresql://masker@127.0.0.1:$port/masker"
    ;;
stop)
    mode=${3:-fast}
    [ -f "$dir/postmaster.pid" ] && as_owner "$BIN/pg_ctl" -D "$dir" -m "$mode" -w stop >/dev/null
    exit 0
    ;;
*)
    echo "usage: pg-local.sh start DATADIR PORT | stop DATADIR [fast|immediate]" >&2; exit 2 ;;
esac
