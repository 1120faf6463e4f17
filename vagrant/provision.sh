#!/bin/sh
# Runs inside a box as root (Vagrant's shell provisioner): `provision.sh bootstrap | suite | two-host ADDR [PEER]`.
set -eu
REPO=/srv/ipvlan-conformance
cd "$REPO"
case "$1" in
bootstrap)
    apt-get update
    apt-get install -y --no-install-recommends python3 python3-venv iproute2 iputils-ping rsync
    # Ubuntu keeps ipvlan and dummy in linux-modules-extra on some kernels; Debian has them built
    if [ -r /etc/os-release ] && grep -q '^ID=ubuntu' /etc/os-release; then
        apt-get install -y --no-install-recommends "linux-modules-extra-$(uname -r)" || true
    fi
    python3 ci/bootstrap.py
    ;;
suite)
    # our driver in-process and as a plugin; the third-party columns need engines this box may not have
    ci/conformance native plugin
    ;;
two-host)
    addr=$2 peer=${3:-}
    cli=".venv/bin/ipvlan-driver --state-dir /var/lib/ipvlan-two-host"
    $cli rm -f c1 >/dev/null 2>&1 || true
    $cli network rm twohost >/dev/null 2>&1 || true
    $cli network create -d ipvlan --subnet=192.168.56.0/24 --gateway=192.168.56.1 -o parent=eth1 twohost
    $cli run --net=twohost --ip="$addr" --name c1 -d alpine
    echo "two-host: container c1 of $(hostname) is $addr on eth1's segment"
    if [ -n "$peer" ]; then
        # the docs: containers of two hosts on one L2 segment and subnet reach each other
        $cli exec c1 ping -c 3 -W 2 "$peer"
        echo "two-host: $(hostname)'s container reached $peer on the other box"
    fi
    ;;
*)
    echo "provision.sh: unknown step $1" >&2
    exit 2
    ;;
esac
