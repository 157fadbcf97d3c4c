#!/bin/sh
# Install or upgrade venus-ems from this unpacked bundle (the .run file calls this script).
#   install.sh [--root DIR] [--python PATH] [--bus ADDRESS] [--timeout S] [--settle S]
# Checks what it can in plain sh (so an old firmware with Python 3.8 gets a clear message),
# verifies every file against MANIFEST.sha256, then hands over to `venus-ems install`.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
case " $* " in
    *" --help "* | *" -h "*)
        sed -n '2,5p' "$0"
        exit 0
        ;;
esac
root=/
python=
prev=
for arg in "$@"; do
    case "$prev" in
        --root) root=$arg ;;
        --python) python=$arg ;;
    esac
    case "$arg" in
        --root=*) root=${arg#--root=} ;;
        --python=*) python=${arg#--python=} ;;
    esac
    prev=$arg
done

die() {
    echo "venus-ems install: refused: $*" >&2
    exit 2
}

arch=$(sed -n 's/^arch=//p' "$here/PLATFORM")
want_py=$(sed -n 's/^python=//p' "$here/PLATFORM")
version=$(cat "$here/VERSION")

vf="$root/opt/victronenergy/version"
[ -r "$vf" ] || die "this is not a Venus OS device ($vf is missing); venus-ems installs on a GX running Venus OS v3.60 or later"
venus=$(head -n 1 "$vf")
major=$(echo "$venus" | sed -n 's/^v\{0,1\}\([0-9][0-9]*\)\.\([0-9][0-9]*\).*/\1/p')
minor=$(echo "$venus" | sed -n 's/^v\{0,1\}\([0-9][0-9]*\)\.\([0-9][0-9]*\).*/\2/p')
[ -n "$major" ] || die "cannot read the Venus OS version in $vf ($venus)"
if [ "$major" -lt 3 ] || { [ "$major" -eq 3 ] && [ "$minor" -lt 60 ]; }; then
    die "Venus OS $venus is too old: venus-ems needs v3.60 or later (earlier releases ship Python 3.8); update the firmware first"
fi

machine=$(uname -m)
case "$machine" in
    armv7l | armv8l) have=armv7hf ;;
    aarch64) have=aarch64 ;;
    x86_64) have=x86_64 ;;
    *) have= ;;
esac
if [ "$have" != "$arch" ]; then
    if [ -n "$have" ]; then
        die "this bundle is for $arch, this device is $machine: use the $have bundle (venus-ems-$version-$have.run)"
    fi
    die "this bundle is for $arch, this device is $machine: no venus-ems bundle exists for this CPU"
fi

if [ -z "$python" ]; then
    python=$(command -v python3) || die "python3 not found"
fi
pyver=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])') || die "cannot run $python"
[ "$pyver" = "$want_py" ] || die "this bundle is built for Python $want_py, $python is Python $pyver (Venus OS v3.60 and later ship 3.12)"

if command -v sha256sum >/dev/null 2>&1; then
    if ! (cd "$here" && sha256sum -c MANIFEST.sha256 >/dev/null 2>&1); then
        bad=$(cd "$here" && sha256sum -c MANIFEST.sha256 2>&1 | grep -v ': OK$' | head -n 3 | tr '\n' ' ')
        echo "venus-ems install: the bundle is damaged (download it again): $bad" >&2
        exit 1
    fi
fi

exec "$python" -I -S "$here/launch.py" install --source "$here" "$@"
