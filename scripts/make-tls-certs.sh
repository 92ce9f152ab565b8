#!/bin/sh
# Development TLS material for the Kamailio edge (deploy/kamailio): a private CA, a
# server certificate it signs, for localhost / 127.0.0.1 (plus any names in
# TLS_SANS, e.g. TLS_SANS="DNS:edge.lab,IP:10.0.0.5"), and a trunk's client
# certificate for the edge's mutual TLS port.  Never for production.
#
#   scripts/make-tls-certs.sh [DIR]      # default ./var/tls (git-ignored)
#
# DIR/ca.pem       the development CA (trunks and the PBX trust it; the edge trusts
#                  the client certificates it signs)
# DIR/ca.key       its key (only needed to sign more certificates)
# DIR/server.pem   the edge's certificate (also usable by a test PBX)
# DIR/server.key   its key
# DIR/client.pem   a development trunk's client certificate (mutual TLS)
# DIR/client.key   its key
# Existing files are kept (missing ones are made): delete DIR to make new ones.
set -eu
DIR=${1:-./var/tls}
DAYS=${TLS_DAYS:-825}
SANS="DNS:localhost,IP:127.0.0.1${TLS_SANS:+,$TLS_SANS}"
mkdir -p "$DIR"
chmod 700 "$DIR"
cd "$DIR"
umask 077
made=""

# sign NAME SUBJECT EXTENSIONS: NAME.key and NAME.pem signed by the CA, unless both exist.
sign() {
    [ -s "$1.pem" ] && [ -s "$1.key" ] && return 0
    openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
        -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
    printf '%b' "$3" > "$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial \
        -out "$1.pem" -days "$DAYS" -extfile "$1.ext" 2>/dev/null
    rm -f "$1.csr" "$1.ext" ca.srl
    chmod 644 "$1.pem"
    made="$made $1.pem"
}

if [ ! -s ca.pem ]; then
    openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
        -keyout ca.key -out ca.pem -days "$DAYS" -subj "/CN=dtmf-masker development CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        2>/dev/null
    chmod 644 ca.pem
    rm -f server.pem server.key client.pem client.key  # signed by a CA that is gone
    made=" ca.pem"
fi
sign server "/CN=localhost" \
    "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=$SANS\n"
sign client "/CN=dtmf-masker development trunk" \
    "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n"
if [ -z "$made" ]; then
    echo "TLS certificates already in $DIR"
else
    echo "TLS certificates in $DIR:$made (server for $SANS)"
fi
