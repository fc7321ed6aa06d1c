"""The live monitoring stack in the lab twin: `netops monitor up | down | status`.

``endpoints`` is the stable API other parts of the suite (the health map) use to find the
Prometheus and Alertmanager servers: one per province on its monitor host, one at the ministry.
"""
from __future__ import annotations

from inventory.store import Inventory

from . import generate as gen


def endpoints(inv: Inventory) -> dict[str, dict[str, str]]:
    """{province id: {"prometheus": url, "alertmanager": url, "monitor": device}, …, "ministry": {…}}:
    where `netops monitor up` runs each server (the monitor host's management address)."""
    out = {}
    for key, site in [*((p, p) for p in gen.provinces(inv)), ("ministry", inv.ministry.id)]:
        mon = gen.monitor_host(inv, site)
        out[key] = {"prometheus": f"http://{mon.management}:{gen.PROMETHEUS_PORT}",
                    "alertmanager": f"http://{mon.management}:{gen.ALERTMANAGER_PORT}", "monitor": mon.id}
    return out
