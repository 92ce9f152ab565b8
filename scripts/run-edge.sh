#!/usr/bin/env bash
# Starts the Kamailio SIP over TLS/TCP edge (deploy/kamailio/kamailio.cfg) beside
# `masker serve` (`make run-edge`), both in the foreground; Ctrl-C stops both, and
# when either exits the other is stopped.
#
#   trunk --TLS :5061 / mTLS :5062 / TCP :5060--> edge --UDP--> masker 127.0.0.1:5060
#   masker [pbx] = edge 127.0.0.1:5070 (UDP) --TCP (or TLS)--> PBX 127.0.0.1:5080
#
# Settings (environment, defaults shown); arguments go to `masker serve`
# (e.g. --config my.toml; the [pbx] address/port below win over the file):
#   MASKER_EDGE_ADDR=127.0.0.1      trunk-facing address (0.0.0.0 for every interface)
#   MASKER_EDGE_TLS_PORT=5061       MASKER_EDGE_TCP_PORT=5060
#   MASKER_EDGE_MTLS_PORT=5062      mutual TLS: trunks present a certificate of the
#                                   CA in tls.cfg's mutual TLS profile (ca_list)
#   MASKER_EDGE_TLS_CONFIG=deploy/kamailio/tls.cfg  the profiles, loaded as a copy
#                                   (var/run/kamailio/tls.cfg) whose mutual TLS header
#                                   [server:127.0.0.1:5062] becomes [server:ADDR:MTLS_PORT]
#   MASKER_EDGE_INNER_ADDR=127.0.0.1 MASKER_EDGE_INNER_PORT=5070  (UDP, the masker's side;
#                                   a private address must be in [sip] trusted_sources)
#   MASKER_EDGE_PBX_HOST=127.0.0.1  MASKER_EDGE_PBX_PORT=5080  MASKER_EDGE_PBX_TRANSPORT=tcp|tls
#   MASKER_SIP_LISTEN_ADDRESS=127.0.0.1 MASKER_SIP_LISTEN_PORT=5060 (the masker's trunk side)
# Certificates: ./var/tls (made here by scripts/make-tls-certs.sh when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

: "${MASKER_EDGE_ADDR:=127.0.0.1}"
: "${MASKER_EDGE_TLS_PORT:=5061}"
: "${MASKER_EDGE_TCP_PORT:=5060}"
: "${MASKER_EDGE_MTLS_PORT:=5062}"
: "${MASKER_EDGE_TLS_CONFIG:=deploy/kamailio/tls.cfg}"
: "${MASKER_EDGE_INNER_ADDR:=127.0.0.1}"
: "${MASKER_EDGE_INNER_PORT:=5070}"
: "${MASKER_EDGE_PBX_HOST:=127.0.0.1}"
: "${MASKER_EDGE_PBX_PORT:=5080}"
: "${MASKER_EDGE_PBX_TRANSPORT:=tcp}"
: "${MASKER_SIP_LISTEN_ADDRESS:=127.0.0.1}"
: "${MASKER_SIP_LISTEN_PORT:=5060}"
# The masker sends every agent leg to the edge's inner UDP socket.
export MASKER_SIP_LISTEN_ADDRESS MASKER_SIP_LISTEN_PORT
export MASKER_PBX_ADDRESS="$MASKER_EDGE_INNER_ADDR" MASKER_PBX_PORT="$MASKER_EDGE_INNER_PORT"

KAMAILIO=${KAMAILIO:-$(command -v kamailio || echo /usr/sbin/kamailio)}
MASKER=${MASKER:-.venv/bin/masker}
[ -s var/tls/server.pem ] || scripts/make-tls-certs.sh var/tls
mkdir -p var/run/kamailio
# Kamailio picks a server TLS profile by the local address:port it was reached on.
tls_cfg="$PWD/var/run/kamailio/tls.cfg"
sed "s/^\[server:127\.0\.0\.1:5062\]/[server:$MASKER_EDGE_ADDR:$MASKER_EDGE_MTLS_PORT]/" \
    "$MASKER_EDGE_TLS_CONFIG" > "$tls_cfg"

"$MASKER" serve "$@" &
masker_pid=$!
"$KAMAILIO" -f deploy/kamailio/kamailio.cfg -DD -E -n "${MASKER_EDGE_CHILDREN:-2}" \
    -w "$PWD" -Y "$PWD/var/run/kamailio" \
    "--substdef=!EDGE_ADDR!$MASKER_EDGE_ADDR!" \
    "--substdef=!EDGE_TLS_PORT!$MASKER_EDGE_TLS_PORT!" \
    "--substdef=!EDGE_MTLS_PORT!$MASKER_EDGE_MTLS_PORT!" \
    "--substdef=!EDGE_TCP_PORT!$MASKER_EDGE_TCP_PORT!" \
    "--substdef=!TLS_CONFIG!$tls_cfg!" \
    "--substdef=!INNER_ADDR!$MASKER_EDGE_INNER_ADDR!" \
    "--substdef=!INNER_PORT!$MASKER_EDGE_INNER_PORT!" \
    "--substdef=!MASKER_ADDR!$MASKER_SIP_LISTEN_ADDRESS!" \
    "--substdef=!MASKER_PORT!$MASKER_SIP_LISTEN_PORT!" \
    "--substdef=!PBX_HOST!$MASKER_EDGE_PBX_HOST!" \
    "--substdef=!PBX_PORT!$MASKER_EDGE_PBX_PORT!" \
    "--substdef=!PBX_TRANSPORT!$MASKER_EDGE_PBX_TRANSPORT!" &
edge_pid=$!

stop() { kill -TERM "$masker_pid" "$edge_pid" 2>/dev/null || true; }
trap stop INT TERM
status=0
wait -n "$masker_pid" "$edge_pid" || status=$?
stop
wait "$masker_pid" "$edge_pid" 2>/dev/null || true
exit "$status"
