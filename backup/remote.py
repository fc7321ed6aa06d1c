"""Where backups go: the province backup store of a site, its DR store, and the ops host's backup
state directory. Devices are reached through the access layer (``jinbao_netops.access``)."""
from __future__ import annotations

import os
from pathlib import Path

from jinbao_netops.errors import UsageError
from jinbao_netops.inventory import Device, Inventory, Role

STORE_ROOT = "/srv/netops"  # on a backup store: configs.git, restic/ ...


def state_dir() -> Path:
    """Where the ops host keeps working clones, reports and the catalogue ($NETOPS_BACKUP_STATE)."""
    return Path(os.environ.get("NETOPS_BACKUP_STATE") or "/var/lib/jinbao-netops/backup")


def store_of(inv: Inventory, site_id: str) -> Device | None:
    """The backup store that archives a site: the backup_store at the nearest site at or above it
    that is not a DR site (the province's data centre for its cities and counties)."""
    for s in [inv.sites[site_id], *inv.ancestors(site_id)]:
        if s.level.value == "dr":
            continue
        stores = sorted(d for d in inv.devices_by_site.get(s.id, []) if inv.devices[d].role == Role.backup_store)
        if stores:
            return inv.devices[stores[0]]
    return None


def dr_store_of(inv: Inventory, store: Device) -> Device | None:
    """The off-site copy target of a store: the backup_store at a DR site under the store's site."""
    for s in sorted(inv.children.get(store.site, [])):
        if inv.sites[s].level.value == "dr":
            stores = sorted(d for d in inv.devices_by_site.get(s, []) if inv.devices[d].role == Role.backup_store)
            if stores:
                return inv.devices[stores[0]]
    return None


def scope_devices(inv: Inventory, scope: str | None) -> list[str]:

    if scope is None:
        return sorted(inv.devices)
    if scope in inv.sites:
        sites = set(inv.descendants(scope))
        return sorted(d for d, dev in inv.devices.items() if dev.site in sites)
    if scope in inv.devices:
        return [scope]
    raise UsageError(f"--scope {scope}: no such site or device in the inventory")
