#!/bin/sh
# Regenerates the strongSwan-made test PKI in this directory with strongSwan's `pki` tool.
# TEST DATA ONLY: the private keys live in a temporary directory and are thrown away; only
# certificates, a CRL and strongSwan's own key identifiers are kept, as independent oracles
# for tests/test_auth_certs.py and tests/test_auth_signatures.py.
#
#   root.pem          RSA-3072 root CA, self-signed sha256WithRSAEncryption (PKCS#1 v1.5)
#   intermediate.pem  ECDSA P-384 CA, signed by the root with RSASSA-PSS/SHA-384 (--rsa-padding pss)
#   gateway.pem       ECDSA P-256 gateway, signed by the intermediate (ecdsa-with-SHA384, DER),
#                     SANs vpn.example.org, 192.0.2.1, 2001:db8::1, admin@example.org,
#                     EKU serverAuth + ikeIntermediate
#   revoked.pem       ECDSA P-256, signed by the intermediate, listed in intermediate.crl
#   intermediate.crl  CRL by the intermediate (ecdsa-with-SHA384), revokes revoked.pem
#   ed25519.pem       a self-signed Ed25519 certificate (its signature is Ed25519 by strongSwan)
#   keyids.txt        `pki --keyid` output: SHA-1 of each CA's subjectPublicKeyInfo
#
# Validity: certificates 01.01.25 .. 01.01.45, the CRL 01.01.25 .. 01.01.45.
set -eu
out=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
quiet() { "$@" 2>/dev/null; }
span="--not-before 01.01.25_00:00:00 --not-after 01.01.45_00:00:00 --dateform %d.%m.%y_%T"

quiet pki --gen --type rsa --size 3072 --outform pem > root.key
quiet pki --self --in root.key --type rsa --ca --digest sha256 $span \
    --dn "C=CH, O=ikehub test, CN=ikehub Test Root CA" --serial 01 --outform pem > root.pem

quiet pki --gen --type ecdsa --size 384 --outform pem > intermediate.key
quiet pki --pub --in intermediate.key --type ecdsa | quiet pki --issue --type pub \
    --cacert root.pem --cakey root.key --ca --digest sha384 --rsa-padding pss $span \
    --dn "C=CH, O=ikehub test, CN=ikehub Test Intermediate CA" --serial 02 --outform pem \
    > intermediate.pem

quiet pki --gen --type ecdsa --size 256 --outform pem > gateway.key
quiet pki --pub --in gateway.key --type ecdsa | quiet pki --issue --type pub \
    --cacert intermediate.pem --cakey intermediate.key $span \
    --dn "C=CH, O=ikehub test, CN=vpn.example.org" --serial 10 \
    --san vpn.example.org --san 192.0.2.1 --san 2001:db8::1 --san admin@example.org \
    --flag serverAuth --flag ikeIntermediate --outform pem > gateway.pem

quiet pki --gen --type ecdsa --size 256 --outform pem > revoked.key
quiet pki --pub --in revoked.key --type ecdsa | quiet pki --issue --type pub \
    --cacert intermediate.pem --cakey intermediate.key $span \
    --dn "C=CH, O=ikehub test, CN=revoked.example.org" --serial 11 \
    --san revoked.example.org --outform pem > revoked.pem

quiet pki --signcrl --cacert intermediate.pem --cakey intermediate.key \
    --this-update 01.01.25_00:00:00 --next-update 01.01.45_00:00:00 --dateform %d.%m.%y_%T \
    --reason key-compromise --date 1735689600 --cert revoked.pem --outform pem \
    > intermediate.crl

quiet pki --gen --type ed25519 --outform pem > ed25519.key
quiet pki --self --in ed25519.key --type ed25519 $span --dn "CN=ikehub Ed25519" --serial 20 \
    --outform pem > ed25519.pem

{
    for name in root intermediate; do
        printf '%s ' "$name"
        quiet pki --keyid --in "$name.pem" --type x509 --id spki --format hex
    done
} > keyids.txt

cp root.pem intermediate.pem gateway.pem revoked.pem intermediate.crl ed25519.pem keyids.txt "$out/"
