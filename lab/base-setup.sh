#!/bin/sh
# Runs once inside the freshly debootstrapped base image (chroot). Everything per node or per
# lab (hostname, host keys, operator key, SNMP users, which services start) is done later,
# in each node's own overlay, by the lab builder.
set -eu
export DEBIAN_FRONTEND=noninteractive

# The suite's operator account; its authorized key is generated per lab.
id netops >/dev/null 2>&1 || useradd --create-home --shell /bin/bash --uid 1500 --user-group netops
usermod -a -G frrvty,frr netops
# lldpcli reaches lldpd's socket through its group (`inventory reconcile` reads the routers' LLDP neighbours).
# Debian ships lldpcli executable by group adm only (a statoverride); adm is for reading logs, so the operator
# is not in it: lldpcli is made executable by lldpd's own group instead.
usermod -a -G _lldpd netops
dpkg-statoverride --remove /usr/sbin/lldpcli >/dev/null 2>&1 || true
dpkg-statoverride --update --add _lldpd _lldpd 4750 /usr/sbin/lldpcli
printf 'netops ALL=(ALL) NOPASSWD: ALL\n' > /etc/sudoers.d/netops
chmod 0440 /etc/sudoers.d/netops

# No host keys in the image: every node generates its own.
rm -f /etc/ssh/ssh_host_*

# Services start only where a node's role asks for them; nothing phones out from the lab.
for unit in frr lldpd postgresql mariadb prometheus prometheus-alertmanager prometheus-node-exporter iperf3 auditd nftables; do
    systemctl disable "$unit" >/dev/null 2>&1 || true
done
# inotify instances are a per-uid budget shared by every node on the host (all run as root),
# so nothing that only watches files for interactive use runs in a node: no ask-password
# agents, no D-Bus or logind (systemctl talks to systemd directly; PAM's pam_systemd is optional).
for unit in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer man-db.timer \
            console-getty.service getty@tty1.service systemd-networkd-wait-online.service \
            systemd-ask-password-console.path systemd-ask-password-wall.path \
            dbus.service dbus.socket systemd-logind.service; do
    systemctl mask "$unit" >/dev/null 2>&1 || true
done

# Keep the journal in memory: 40 nodes on one disk.
mkdir -p /etc/systemd/journald.conf.d
printf '[Journal]\nStorage=volatile\nRuntimeMaxUse=16M\n' > /etc/systemd/journald.conf.d/lab.conf

apt-get clean
rm -rf /var/lib/apt/lists/*
