#!/usr/bin/env bash
# A whole cluster on loopback (`make cluster`, `make cluster-stop`):
#
#   trunks --SIP--> Kamailio dispatcher (deploy/kamailio/cluster.cfg) 127.0.0.1:5060
#                     --> masker serve node1..nodeN (127.0.0.1:5071..)  --agent leg--> PBX
#   node1..nodeN --> one PostgreSQL (vault where the config has it, call directory)
#   desktops --> nginx 127.0.0.1:8080 (scripts/nginx-cluster.sh) --> any node's API
#                (127.0.0.1:8081..): every node shows every call
#
#   scripts/cluster.sh start    PostgreSQL, the nodes, Kamailio, nginx; prints the addresses
#   scripts/cluster.sh stop     SIGTERM the nodes (each drains its calls), then the rest
#   scripts/cluster.sh status   what runs, and the dispatcher's view of each node
#
# Everything lives under ./var/cluster: pg/ (PostgreSQL data), nodeN/ (masker.toml,
# masker.log, pid), keys/ (the development keys all nodes share: the same card gets
# the same token on every node), dev-api-key (the development API key of every node),
# dispatcher.list, kamailio.log.  Settings (environment, defaults shown):
#   CLUSTER_NODES=3                 CLUSTER_ADDR=127.0.0.1 (every socket's address)
#   CLUSTER_SIP_PORT=5060           the cluster's one SIP address (Kamailio, UDP and TCP)
#   CLUSTER_NODE_SIP_PORT=5071      node i listens on CLUSTER_NODE_SIP_PORT + i - 1
#   CLUSTER_API_PORT=8081           node i's API on CLUSTER_API_PORT + i - 1
#   CLUSTER_DESKTOP_PORT=8080       the desktops' one API address (nginx)
#   CLUSTER_MEDIA_PORT=20000        node i's RTP ports: 2000 from CLUSTER_MEDIA_PORT + 2000 (i - 1)
#   CLUSTER_PG_PORT=55432           PostgreSQL (scripts/pg-local.sh)
#   CLUSTER_PBX_HOST=127.0.0.1 CLUSTER_PBX_PORT=5080   where every node sends the agent leg
#   CLUSTER_DRAIN_GRACE_S=30        how long a stopping node lets its calls run
# (CLUSTER_*, not MASKER_CLUSTER_*: those are the nodes' own [cluster] settings.)
set -euo pipefail
cd "$(dirname "$0")/.."

: "${CLUSTER_NODES:=3}"
: "${CLUSTER_ADDR:=127.0.0.1}"
: "${CLUSTER_SIP_PORT:=5060}"
: "${CLUSTER_NODE_SIP_PORT:=5071}"
: "${CLUSTER_API_PORT:=8081}"
: "${CLUSTER_DESKTOP_PORT:=8080}"
: "${CLUSTER_MEDIA_PORT:=20000}"
: "${CLUSTER_PG_PORT:=55432}"
: "${CLUSTER_PBX_HOST:=127.0.0.1}"
: "${CLUSTER_PBX_PORT:=5080}"
: "${CLUSTER_DRAIN_GRACE_S:=30}"

ROOT=$PWD/var/cluster
PY=${PYTHON:-.venv/bin/python}
KAMAILIO=${KAMAILIO:-$(command -v kamailio || echo /usr/sbin/kamailio)}
KAMCMD=${KAMCMD:-$(command -v kamcmd || echo /usr/sbin/kamcmd)}
CTL=unix:$ROOT/run/kamailio.ctl

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# Does this checkout's config know [section] key?  (The PostgreSQL vault is optional.)
config_knows() {
    "$PY" -c "import sys, dataclasses as d; from masker.runtime import service_config as c
sys.exit(0 if any(f.name == '$2' for f in d.fields(getattr(c.Config(), '$1'))) else 1)"
}

node_toml() {  # node_toml I DSN
    local i=$1 dsn=$2 dir=$ROOT/node$1
    local sip=$((CLUSTER_NODE_SIP_PORT + i - 1)) api=$((CLUSTER_API_PORT + i - 1))
    local media=$((CLUSTER_MEDIA_PORT + 2000 * (i - 1)))
    cat <<TOML
# Written by scripts/cluster.sh for node$i (every key: masker/runtime/default.toml).
[sip]
listen_address = "$CLUSTER_ADDR"
listen_port = $sip

[pbx]
address = "$CLUSTER_PBX_HOST"
port = $CLUSTER_PBX_PORT

[media]
address = "$CLUSTER_ADDR"
port_min = $media
port_max = $((media + 1999))

[service]
drain_grace_s = $CLUSTER_DRAIN_GRACE_S
dev_api_key_file = "$ROOT/dev-api-key"

[tokenizer]
keys_dir = "$ROOT/keys"
vault_path = "$dir/vault.sqlite"
TOML
    if config_knows tokenizer vault_backend; then
        printf 'vault_backend = "postgresql"\nvault_dsn = "%s"\n' "$dsn"
    fi
    if config_knows cluster node_id; then
        printf '\n[cluster]\nnode_id = "node%s"\ndsn = "%s"\napi_url = "http://%s:%s"\n' \
            "$i" "$dsn" "$CLUSTER_ADDR" "$api"
    fi
    printf '\n[api]\nhost = "%s"\nport = %s\n' "$CLUSTER_ADDR" "$api"
}

start_node() {  # start_node I DSN
    local i=$1 dir=$ROOT/node$1
    mkdir -p "$dir"
    if alive "$dir/pid"; then echo "node$i already running (pid $(cat "$dir/pid"))"; return; fi
    node_toml "$i" "$2" >"$dir/masker.toml"
    : >"$dir/masker.log"
    # Only this script's settings: no MASKER_* from the caller's shell reaches a node.
    env $(env | sed -n 's/^\(MASKER_[A-Z0-9_]*\)=.*/-u \1/p') \
        .venv/bin/masker serve --config "$dir/masker.toml" >>"$dir/masker.log" 2>&1 &
    echo $! >"$dir/pid"
}

wait_ready() {  # wait_ready I: the node logged "service ready" (or died)
    local dir=$ROOT/node$1
    for _ in $(seq 150); do
        grep -q '"service ready"' "$dir/masker.log" 2>/dev/null && return 0
        alive "$dir/pid" || break
        sleep 0.2
    done
    echo "node$1 did not start; the end of $dir/masker.log:" >&2
    tail -5 "$dir/masker.log" >&2
    return 1
}

start() {
    mkdir -p "$ROOT/run"
    local dsn
    dsn=$(scripts/pg-local.sh start "$ROOT/pg" "$CLUSTER_PG_PORT")
    : >"$ROOT/dispatcher.list"
    for i in $(seq "$CLUSTER_NODES"); do
        start_node "$i" "$dsn"
        # node1 first: it creates the shared development keys and API key.
        [ "$i" = 1 ] && wait_ready 1
        echo "1 sip:$CLUSTER_ADDR:$((CLUSTER_NODE_SIP_PORT + i - 1))" >>"$ROOT/dispatcher.list"
    done
    for i in $(seq 2 "$CLUSTER_NODES"); do wait_ready "$i"; done
    if ! alive "$ROOT/kamailio.pid"; then
        "$KAMAILIO" -f deploy/kamailio/cluster.cfg -DD -E -w "$ROOT" -Y "$ROOT/run" \
            "--substdef=!CLUSTER_ADDR!$CLUSTER_ADDR!" \
            "--substdef=!CLUSTER_PORT!$CLUSTER_SIP_PORT!" \
            "--substdef=!DISPATCHER_LIST!$ROOT/dispatcher.list!" \
            "--substdef=!CTL_SOCKET!$CTL!" >"$ROOT/kamailio.log" 2>&1 &
        echo $! >"$ROOT/kamailio.pid"
        sleep 1
        alive "$ROOT/kamailio.pid" || { tail -5 "$ROOT/kamailio.log" >&2; exit 1; }
    fi
    local desktop="" apis=()
    for i in $(seq "$CLUSTER_NODES"); do apis+=("$CLUSTER_ADDR:$((CLUSTER_API_PORT + i - 1))"); done
    if [ -x scripts/nginx-cluster.sh ] && ! alive "$ROOT/nginx/nginx.pid"; then
        desktop=$(scripts/nginx-cluster.sh start "$ROOT/nginx" \
            "$CLUSTER_ADDR:$CLUSTER_DESKTOP_PORT" "${apis[@]}")
    fi
    echo "cluster up: SIP sip:$CLUSTER_ADDR:$CLUSTER_SIP_PORT (UDP/TCP) -> $CLUSTER_NODES nodes," \
        "agent legs to $CLUSTER_PBX_HOST:$CLUSTER_PBX_PORT; PostgreSQL $dsn"
    for i in $(seq "$CLUSTER_NODES"); do
        echo "  node$i: SIP $CLUSTER_ADDR:$((CLUSTER_NODE_SIP_PORT + i - 1))" \
            "API http://$CLUSTER_ADDR:$((CLUSTER_API_PORT + i - 1))/desktop  log $ROOT/node$i/masker.log"
    done
    [ -n "$desktop" ] && echo "  desktops (every call, any node): $desktop/desktop"
    [ -s "$ROOT/dev-api-key" ] && echo "  development API key (every node): $ROOT/dev-api-key"
    echo "stop: make cluster-stop (or scripts/cluster.sh stop)"
}

stop() {
    local pids=()
    for dir in "$ROOT"/node*; do
        [ -d "$dir" ] || continue
        if alive "$dir/pid"; then kill -TERM "$(cat "$dir/pid")"; pids+=("$(cat "$dir/pid")"); fi
    done
    # Each node drains: its calls (their BYEs come through Kamailio) run up to the grace.
    for _ in $(seq $(((CLUSTER_DRAIN_GRACE_S + 5) * 5))); do
        local left=0
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && left=1; done
        [ "$left" = 0 ] && break
        sleep 0.2
    done
    alive "$ROOT/kamailio.pid" && kill -TERM "$(cat "$ROOT/kamailio.pid")"
    [ -x scripts/nginx-cluster.sh ] && scripts/nginx-cluster.sh stop "$ROOT/nginx"
    rm -f "$ROOT"/node*/pid "$ROOT/kamailio.pid"
    [ -d "$ROOT/pg" ] && scripts/pg-local.sh stop "$ROOT/pg"
    echo "cluster stopped"
}

status() {
    local code=0
    for dir in "$ROOT"/node*; do
        [ -d "$dir" ] || continue
        if alive "$dir/pid"; then echo "$(basename "$dir"): running (pid $(cat "$dir/pid"))"
        else echo "$(basename "$dir"): stopped"; code=3; fi
    done
    if alive "$ROOT/kamailio.pid"; then
        echo "kamailio: running (pid $(cat "$ROOT/kamailio.pid")); dispatcher (AP = in, IP/TP = out):"
        "$KAMCMD" -s "$CTL" dispatcher.list 2>/dev/null | sed -n 's/^[[:space:]]*\(URI\|FLAGS\): */\1 /p' \
            | paste - - | sed 's/^/  /'
    else
        echo "kamailio: stopped"; code=3
    fi
    if alive "$ROOT/nginx/nginx.pid"; then echo "nginx: running (desktops: port $CLUSTER_DESKTOP_PORT)"
    else echo "nginx: stopped"; fi
    if [ -f "$ROOT/pg/postmaster.pid" ]; then echo "postgresql: running (port $CLUSTER_PG_PORT)"
    else echo "postgresql: stopped"; code=3; fi
    return "$code"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) status ;;
*) echo "usage: scripts/cluster.sh start|stop|status" >&2; exit 2 ;;
esac
