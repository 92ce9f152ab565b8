#!/bin/sh
# Installs the Debian packages the service, the tests and the benchmarks use,
# only those that are missing (so repeated runs are quick).
set -e
# kamailio + kamailio-tls-modules + openssl: the SIP over TLS/TCP edge (deploy/kamailio).
PKGS="libspandsp-dev multimon-ng sox baresip sip-tester chromium gcc kamailio kamailio-tls-modules openssl"
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
