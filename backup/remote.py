"""Where backups go: the province backup store of a site, its DR store, and the ops host's backup
state directory. Devices are reached through the access layer (``jinbao_netops.access``)."""
from __future__ import annotations

import os
from pathlib import Path

from jinbao_netops.inventory import Device, Inventory, Level, Role

STORE_ROOT = "/srv/netops"  # on a backup store: configs.git, restic/ ...


def state_dir() -> Path:
    """Where the ops host keeps working clones, reports and the catalogue ($NETOPS_BACKUP_STATE)."""
    return Path(os.environ.get("NETOPS_BACKUP_STATE") or "/var/lib/jinbao-netops/backup")


def store_of(inv: Inventory, site_id: str) -> Device | None:
    """The backup store that archives a site: the backup_store at the nearest site at or above it
    that is not a DR site (the province's data centre for its cities and counties)."""
    for s in [inv.sites[site_id], *inv.ancestors(site_id)]:
        if s.level == Level.dr:
            continue
        if stores := inv.devices_at(s.id, Role.backup_store):
            return inv.devices[stores[0]]
    return None


def dr_store_of(inv: Inventory, store: Device) -> Device | None:
    """The off-site copy target of a store: the backup_store at a DR site under the store's site."""
    for s in sorted(inv.children.get(store.site, [])):
        if inv.sites[s].level == Level.dr and (stores := inv.devices_at(s, Role.backup_store)):
            return inv.devices[stores[0]]
    return None


def unit_up(unit: str) -> str:
    """Shell, as root on a store: the template ``unit`` written from ``$2`` when it differs, its instance for ``$dev``
    enabled, and (re)started when something changed before (``restart``) or it is not running; a line per change."""
    inst = unit.replace("@.service", "@$dev")
    return (f"if ! printf '%s' \"$2\" | cmp -s - /etc/systemd/system/{unit}; then\n"
            f"  printf '%s' \"$2\" > /etc/systemd/system/{unit}.tmp && chmod 0644 /etc/systemd/system/{unit}.tmp\n"
            f"  mv /etc/systemd/system/{unit}.tmp /etc/systemd/system/{unit} && systemctl daemon-reload\n"
            f"  echo \"unit {unit}\"; restart=1\n"
            "fi\n"
            f"systemctl is-enabled --quiet \"{inst}\" || {{ systemctl enable --quiet \"{inst}\"; echo \"enabled {inst}\"; }}\n"
            f"if [ -n \"$restart\" ] || ! systemctl is-active --quiet \"{inst}\"; then\n"
            f"  systemctl restart \"{inst}\"; echo \"started {inst}\"\n"
            "fi\n")
