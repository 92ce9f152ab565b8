#!/bin/sh
# Development TLS material for the Kamailio edge (deploy/kamailio): a private CA and a
# server certificate it signs, for localhost / 127.0.0.1 (plus any names in
# TLS_SANS, e.g. TLS_SANS="DNS:edge.lab,IP:10.0.0.5").  Never for production.
#
#   scripts/make-tls-certs.sh [DIR]      # default ./var/tls (git-ignored)
#
# DIR/ca.pem       the development CA (trunks and the PBX trust it)
# DIR/ca.key       its key (only needed to sign more certificates)
# DIR/server.pem   the edge's certificate (also usable by a test PBX)
# DIR/server.key   its key
# Existing files are kept: delete DIR to make new ones.
set -eu
DIR=${1:-./var/tls}
DAYS=${TLS_DAYS:-825}
SANS="DNS:localhost,IP:127.0.0.1${TLS_SANS:+,$TLS_SANS}"
mkdir -p "$DIR"
chmod 700 "$DIR"
cd "$DIR"
if [ -s server.pem ] && [ -s server.key ] && [ -s ca.pem ]; then
    echo "TLS certificates already in $DIR"
    exit 0
fi
umask 077
openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -keyout ca.key -out ca.pem -days "$DAYS" -subj "/CN=dtmf-masker development CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    2>/dev/null
openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -keyout server.key -out server.csr -subj "/CN=localhost" 2>/dev/null
printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=%s\n' \
    "$SANS" > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
    -out server.pem -days "$DAYS" -extfile server.ext 2>/dev/null
rm -f server.csr server.ext ca.srl
chmod 644 ca.pem server.pem
echo "TLS certificates in $DIR (CA ca.pem, server server.pem for $SANS)"
