#!/usr/bin/env bash
# Installs everything jinbao-netops needs on a Debian 12 machine, as root: the Debian packages,
# a virtualenv (.venv) with the suite, and the lab's base image (built once with debootstrap,
# cached under /var/cache/jinbao-netops and rebuilt only when its package list changes).
# Safe to run again: each step skips what is already in place.
set -euo pipefail
cd "$(dirname "$0")"

if [ "$(id -u)" != 0 ]; then
    echo "install.sh: run as root (apt, namespaces and mounts need it)" >&2
    exit 2
fi

PACKAGES=(
    python3 python3-venv python3-dev gcc git ca-certificates
    debootstrap systemd-container iproute2 iputils-ping util-linux mount openssh-client
    snmp snmpd graphviz restic
    prometheus prometheus-alertmanager
    prometheus-snmp-exporter
    chromium fonts-wqy-microhei
    nftables        # `nft -c` checks the zone rules the suite renders (the package leaves nftables.service disabled)
)
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "install.sh: installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # snmpd is for the collector's interop tests, which start their own on a loopback port: the daemon the
    # package enables and starts is not wanted on this host (disable alone also works where systemd is not
    # running, where disable --now fails as a whole)
    if [[ " ${missing[*]} " == *" snmpd "* ]]; then
        systemctl disable snmpd >/dev/null 2>&1 || true
        systemctl stop snmpd 2>/dev/null || true
    fi
fi

PYTHON=${PYTHON:-/usr/bin/python3}
if [ ! -x .venv/bin/python ]; then
    echo "install.sh: creating .venv with $("$PYTHON" --version)"
    "$PYTHON" -m venv .venv
fi
echo "install.sh: installing the suite into .venv"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[test]"

.venv/bin/netops lab image
