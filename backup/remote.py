"""Reaching devices over SSH with the inventory's credentials, and the backup state directory.

Credentials are references in the inventory ({env: NAME}); they are resolved here from the
environment at the moment of use and never written anywhere.
"""
from __future__ import annotations

import os
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

from jinbao_netops.inventory import Device, Inventory, Role, access
from jinbao_netops.errors import UsageError

STORE_ROOT = "/srv/netops"  # on a backup store: configs.git, restic/ ...


class RemoteError(Exception):
    """A device could not be reached or a command on it failed: reported per target, never fatal for others."""


def state_dir() -> Path:
    """Where the ops host keeps working clones, reports and the catalogue ($NETOPS_BACKUP_STATE)."""
    return Path(os.environ.get("NETOPS_BACKUP_STATE") or "/var/lib/jinbao-netops/backup")


def secret(inv: Inventory, device: Device, field: str, ref) -> str:
    """The inventory's one resolver; a missing credential fails this device (reported), not the run."""
    try:
        return access.secret(inv, device.credentials, field, ref)
    except UsageError as e:
        raise RemoteError(str(e)) from None


@dataclass(frozen=True)
class Login:
    username: str
    host: str
    key_file: str | None = None
    password: str | None = None

    def ssh(self, timeout: float = 10) -> list[str]:
        """The OpenSSH client command line (batch mode, the lab's known_hosts via ANSIBLE_SSH_COMMON_ARGS)."""
        cmd = ["ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={max(1, int(timeout))}",
               "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3"]
        if self.key_file:
            cmd += ["-i", self.key_file, "-o", "IdentitiesOnly=yes"]
        cmd += shlex.split(os.environ.get("ANSIBLE_SSH_COMMON_ARGS", ""))
        return cmd + [f"{self.username}@{self.host}"]


def login(inv: Inventory, device: Device) -> Login:
    cred = inv.credentials.get(device.credentials)
    if cred is None:
        raise RemoteError(f"device {device.id}: credentials {device.credentials!r} not found")
    key = secret(inv, device, "ssh_key", cred.ssh_key) if cred.ssh_key else None
    pw = secret(inv, device, "password", cred.password) if cred.password and not key else None
    return Login(cred.username, str(device.management), key, pw)


def run(lg: Login, command: str, *, timeout: float = 60, input: bytes | None = None, stdout=None) -> subprocess.CompletedProcess:
    """Run one shell command on the device; RemoteError on SSH failure, timeout or non-zero exit."""
    try:
        p = subprocess.run([*lg.ssh(timeout), command], input=input, stdout=stdout or subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RemoteError(f"{lg.host}: timed out after {timeout:g} s") from None
    if p.returncode != 0:
        err = (p.stderr or b"").decode(errors="replace").strip().splitlines()
        raise RemoteError(f"{lg.host}: exit {p.returncode}: {err[-1] if err else 'no message'}")
    return p


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
    from jinbao_netops.errors import UsageError

    if scope is None:
        return sorted(inv.devices)
    if scope in inv.sites:
        sites = set(inv.descendants(scope))
        return sorted(d for d, dev in inv.devices.items() if dev.site in sites)
    if scope in inv.devices:
        return [scope]
    raise UsageError(f"--scope {scope}: no such site or device in the inventory")
