"""The inventory as Ansible sees it: nested site groups (ministry → province → city → county),
groups by level, role and platform, and per-host variables. The inventory plugin and
``netops inventory show --ansible`` both print this one structure.

The level, role and platform groups are what the playbooks target, over SSH: a device whose ``access``
lacks ssh is in none of them but in ``access_no_ssh`` (and its site's group), so no play logs in to it."""
from __future__ import annotations

from .engines import ENGINES
from .loader import paused_gc
from .store import Inventory


# the host variables that are templates (the credential references, as lookups); the inventory plugin
# lets Ansible evaluate these and nothing else
CREDENTIAL_VARS = ("ansible_ssh_private_key_file", "ansible_password", "netops_admin_key_files")
NO_SSH_GROUP = "access_no_ssh"  # the devices declared without SSH access: no play may target them


def admin_key_files(inv: Inventory) -> dict[str, str]:
    """People's SSH keys: credential profiles no device connects with (the 三权 administrators), username →
    the reference to the private key file (hardening installs its .pub for that account on the servers)."""
    used = {d.credentials for d in inv.devices.values()}
    return {c.username: c.ssh_key.ansible_expr() for c in inv.credentials.values() if c.id not in used and c.ssh_key}


def hostvars(inv: Inventory, device_id: str, admin_keys: dict[str, str] | None = None) -> dict:
    d = inv.devices[device_id]
    site = inv.sites[d.site]
    plat = d.platform_info
    cred = inv.credentials[d.credentials]
    v: dict = {
        "ansible_host": str(d.management),
        "ansible_user": cred.username,
        "ansible_connection": plat.ansible_connection,
        "netops_display_name": d.name or d.id,
        "netops_role": d.role.value,
        "netops_platform": d.platform,
        "netops_site": site.id,
        "netops_site_name": site.name,
        "netops_level": site.level.value,
        "netops_lineage": inv.lineage(site.id),
        "netops_services": list(d.services),
        "netops_service_ports": sorted(ENGINES[s].port for s in d.services if s in ENGINES),
        "netops_snmp_version": d.snmp_version,
    }
    if plat.ansible_network_os:
        v["ansible_network_os"] = plat.ansible_network_os
    if cred.ssh_key:
        v["ansible_ssh_private_key_file"] = cred.ssh_key.ansible_expr()
    if cred.password:
        v["ansible_password"] = cred.password.ansible_expr()
    if d.loopback:
        v["netops_loopback"] = str(d.loopback)
    if plat.kind == "server":
        v["ansible_become"] = True
        v["netops_admin_key_files"] = admin_key_files(inv) if admin_keys is None else admin_keys
    return v


def build(inv: Inventory) -> dict:
    """The same shape as ``ansible-inventory --list``."""
    with paused_gc():
        return _build(inv)


def _build(inv: Inventory) -> dict:
    out: dict = {"_meta": {"hostvars": {}}}
    top: list[str] = []
    for site in inv.sites_in_order():
        group = {"hosts": sorted(inv.devices_by_site.get(site.id, [])),
                 "children": sorted(inv.children.get(site.id, [])),
                 "vars": {"netops_site_name": site.name}}
        out[site.id] = group
        if site.parent is None:
            top.append(site.id)
    reached = [d for d in inv.devices.values() if "ssh" in d.access]
    for attr, prefix in (("level", "level_"), ("role", "role_"), ("platform", "platform_")):
        groups: dict[str, list[str]] = {}
        for d in reached:
            key = inv.sites[d.site].level.value if attr == "level" else getattr(d, attr)
            key = getattr(key, "value", key)
            groups.setdefault(prefix + key, []).append(d.id)
        for name, hosts in sorted(groups.items()):
            out[name] = {"hosts": sorted(hosts)}
            top.append(name)
    no_ssh = sorted(d.id for d in inv.devices.values() if "ssh" not in d.access)
    if no_ssh:
        out[NO_SSH_GROUP] = {"hosts": no_ssh}
        top.append(NO_SSH_GROUP)
    admin_keys = admin_key_files(inv)
    for did in sorted(inv.devices):
        out["_meta"]["hostvars"][did] = hostvars(inv, did, admin_keys)
    out["all"] = {"children": top}
    return out
