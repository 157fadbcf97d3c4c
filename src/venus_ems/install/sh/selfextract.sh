#!/bin/sh
# venus-ems @VERSION@ for @ARCH@ (Venus OS v3.60 or later): a self-extracting installer,
# this sh script followed by a tar.gz. SHA-256 of the tar.gz: @PAYLOAD_SHA256@
#   sh venus-ems-@VERSION@-@ARCH@.run              install or upgrade (run as root on the GX)
#   sh venus-ems-@VERSION@-@ARCH@.run --help       the installer's options
#   sh venus-ems-@VERSION@-@ARCH@.run --extract DIR    only unpack (to look inside)
set -eu
self=$0
skip=@LINES@
if [ "${1:-}" = "--extract" ]; then
    [ $# -ge 2 ] || { echo "usage: sh $self --extract DIR" >&2; exit 2; }
    mkdir -p "$2"
    tail -n +"$skip" "$self" | tar -xzf - -C "$2"
    echo "unpacked into $2/@TOP@"
    exit 0
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/venus-ems.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
tail -n +"$skip" "$self" | tar -xzf - -C "$tmp"
status=0
sh "$tmp/@TOP@/install.sh" "$@" || status=$?
exit $status
