#!/bin/sh
# Installs the Debian packages the service, the tests and the benchmarks use,
# only those that are missing (so repeated runs are quick).
set -e
# kamailio + kamailio-tls-modules + openssl: the SIP over TLS/TCP edge (deploy/kamailio).
# postgresql: the shared vault and call directory of a cluster (scripts/pg-local.sh).
# nginx: the cluster's one desktop API address (deploy/nginx, scripts/nginx-cluster.sh).
PKGS="libspandsp-dev multimon-ng sox baresip sip-tester chromium gcc kamailio kamailio-tls-modules openssl postgresql nginx"
missing=""
for p in $PKGS; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "installing Debian packages:$missing"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
# Debian starts the stock kamailio.service (port 5060 on every interface) on
# install: the edge runs from deploy/kamailio instead (scripts/run-edge.sh), and
# the stock one would take the masker's 5060.  Only a service we just installed.
case "$missing " in
*" kamailio "*)
    if command -v systemctl >/dev/null 2>&1; then
        $SUDO systemctl disable --now kamailio.service >/dev/null 2>&1 || true
    fi
    ;;
esac
# Likewise Debian's own postgresql cluster (5432): ours are scripts/pg-local.sh's.
case "$missing " in
*" postgresql "*)
    if command -v systemctl >/dev/null 2>&1; then
        $SUDO systemctl disable --now postgresql.service >/dev/null 2>&1 || true
    fi
    ;;
esac
# Likewise Debian's stock nginx site (port 80): ours is deploy/nginx's, run by
# scripts/nginx-cluster.sh.
case "$missing " in
*" nginx "*)
    if command -v systemctl >/dev/null 2>&1; then
        $SUDO systemctl disable --now nginx.service >/dev/null 2>&1 || true
    fi
    ;;
esac
