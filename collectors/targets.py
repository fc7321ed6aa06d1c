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
    """The SNMP targets among ``devices`` (those whose access includes snmp); ``opts`` are the collector's
    defaults, a device's own snmp_timeout / snmp_retries win."""
    out = []
    for d in devices:
        dev = inv.devices[d]
        if "snmp" not in dev.access:
            continue
        cred = inv.credentials[dev.credentials]
        snmp = cred.snmp
        if snmp is None:
            raise UsageError(f"{inv.root}: credentials {dev.credentials!r}: field 'snmp': not set (device {d!r})")
        own = {k: v for k, v in (("timeout", dev.snmp_timeout), ("retries", dev.snmp_retries)) if v is not None}
        t = Target(device=d, address=str(dev.management), port=dev.snmp_port, platform=dev.platform,
                   version=dev.snmp_version, user=snmp.user or "", auth_protocol=snmp.auth_protocol,
                   priv_protocol=snmp.priv_protocol, labels=labels(inv, d), **{**opts, **own})
        if dev.snmp_version == "v2c":
            t.community = secret(inv, dev.credentials, "snmp.community", snmp.community, environ)
        else:
            t.auth_key = secret(inv, dev.credentials, "snmp.auth_key", snmp.auth_key, environ)
            t.priv_key = secret(inv, dev.credentials, "snmp.priv_key", snmp.priv_key, environ)
        out.append(t)
    return out
