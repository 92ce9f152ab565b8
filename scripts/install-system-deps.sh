#!/bin/sh
# Installs the Debian packages the service, the tests and the benchmarks use,
# only those that are missing (so repeated runs are quick).
set -e
PKGS="libspandsp-dev multimon-ng sox baresip sip-tester chromium gcc"
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
