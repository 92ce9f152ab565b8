#!/bin/sh
# One desktop API address for a cluster: Debian's nginx in front of every node's API,
# from deploy/nginx/cluster.conf.template (passive failover, WebSocket feeds).
#
#   scripts/nginx-cluster.sh start RUN_DIR LISTEN NODE_API...   e.g.
#   scripts/nginx-cluster.sh start var/cluster/nginx 127.0.0.1:8080 127.0.0.1:8081 127.0.0.1:8082
#   scripts/nginx-cluster.sh stop RUN_DIR
#
# start renders RUN_DIR/nginx.conf, checks it (nginx -t), starts nginx in the
# background (pid in RUN_DIR/nginx.pid) and prints the desktops' URL.  NODE_API is
# each node's [api] host:port.  MASKER_NGINX_FAIL_TIMEOUT (default 5) is how long a
# failed node is left out.
set -eu
cd "$(dirname "$0")/.."
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
TEMPLATE=deploy/nginx/cluster.conf.template

usage() { echo "usage: $0 start RUN_DIR LISTEN NODE_API... | stop RUN_DIR" >&2; exit 2; }
[ $# -ge 2 ] || usage
cmd=$1 dir=$2
shift 2
case "$cmd" in
start)
    [ $# -ge 2 ] || usage
    listen=$1
    shift
    mkdir -p "$dir/tmp"
    prefix=$(cd "$dir" && pwd)
    fail=${MASKER_NGINX_FAIL_TIMEOUT:-5}
    servers=""
    for node in "$@"; do
        servers="$servers        server $node max_fails=1 fail_timeout=${fail}s;\n"
    done
    awk -v servers="$servers" '$0 == "@SERVERS@" { printf "%s", servers; next } { print }' \
        "$TEMPLATE" |
        sed -e "s|@PREFIX@|$prefix|g" -e "s|@LISTEN@|$listen|g" -e "s|@FAIL_TIMEOUT@|$fail|g" \
        >"$prefix/nginx.conf"
    # as root the workers run as nobody: they only need to pass through the temp dirs
    [ "$(id -u)" -ne 0 ] || chmod 0777 "$prefix/tmp"
    "$NGINX" -t -q -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/error.log"
    "$NGINX" -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/error.log"
    echo "http://$listen"
    ;;
stop)
    [ -f "$dir/nginx.pid" ] || exit 0
    prefix=$(cd "$dir" && pwd)
    "$NGINX" -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/error.log" -s quit || true
    # wait for the master to go (its workers finish open requests first)
    i=0
    while [ -f "$prefix/nginx.pid" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    ;;
*) usage ;;
esac
