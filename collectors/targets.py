"""The collectors' view of the inventory: which devices a scope covers, their Prometheus labels and
their credentials resolved from the inventory's references ({env: NAME}) in the environment."""
from __future__ import annotations

from jinbao_netops.access import secret
from jinbao_netops.inventory.store import Inventory
from jinbao_netops.errors import UsageError

from .snmp import Target

LABELS = ("level", "province", "city", "county", "site", "device")


def labels(inv: Inventory, device: str) -> dict[str, str]:
    site = inv.site_of(device)
    lineage = inv.lineage(site.id)
    return {"level": site.level.value, "province": lineage.get("province") or lineage.get("dr", ""),
            "city": lineage.get("city", ""), "county": lineage.get("county", ""), "site": site.id, "device": device}


def snmp_targets(inv: Inventory, devices: list[str], environ=None, **opts) -> list[Target]:
    out = []
    for d in devices:
        dev = inv.devices[d]
        cred = inv.credentials[dev.credentials]
        snmp = cred.snmp
        if snmp is None:
            raise UsageError(f"{inv.root}: credentials {dev.credentials!r}: field 'snmp': not set (device {d!r})")
        t = Target(device=d, address=str(dev.management), platform=dev.platform, version=dev.snmp_version,
                   user=snmp.user, auth_protocol=snmp.auth_protocol, priv_protocol=snmp.priv_protocol,
                   labels=labels(inv, d), **opts)
        if dev.snmp_version == "v2c":
            t.community = secret(inv, dev.credentials, "snmp.community", snmp.community, environ)
        else:
            t.auth_key = secret(inv, dev.credentials, "snmp.auth_key", snmp.auth_key, environ)
            t.priv_key = secret(inv, dev.credentials, "snmp.priv_key", snmp.priv_key, environ)
        out.append(t)
    return out
