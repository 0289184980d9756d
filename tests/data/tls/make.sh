#!/usr/bin/env bash
# Regenerates the test CA, server and client certificates in this folder (see README.md).
set -euo pipefail
cd "$(dirname "$0")"
days=36500
openssl ecparam -name prime256v1 -genkey -noout -out ca.key
openssl req -x509 -new -key ca.key -sha256 -days $days -subj "/CN=deepsearch test CA" -out ca.pem
leaf() {  # name, subject, extensions
  openssl ecparam -name prime256v1 -genkey -noout -out "$1.key.ec"
  openssl pkcs8 -topk8 -nocrypt -in "$1.key.ec" -out "$1.key" && rm "$1.key.ec"
  openssl req -new -key "$1.key" -subj "$2" -out "$1.csr"
  printf '%s\n' "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -sha256 -days $days \
    -extfile "$1.ext" -out "$1.pem"
  rm "$1.csr" "$1.ext"
}
leaf server "/CN=localhost" "subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth"
leaf client "/CN=deepsearch test client" "extendedKeyUsage=clientAuth"
rm -f ca.srl ca.key
