"""The operations service's systemd unit and the credentials it is given, computed by the suite's own Python
(``netops/serve.py``: the unit's command line quoted for systemd there, never in Jinja; the credentials the
province's jobs read, from the inventory)."""
from __future__ import annotations

import os


def netops_serve_unit(python: str, scope: str, listen: str, credentials: list[dict], schedule: str = "",
                      inventory: str = "") -> str:
    from jinbao_netops import serve

    return serve.unit(python, scope, listen, [c["name"] for c in credentials], schedule=schedule or None,
                      inventory=inventory or None)


def netops_serve_credentials(scope: str, inventory: str = "") -> list[dict]:
    """The credentials of ``scope``'s jobs that this controller has: [{name, file, source}] (``source``: the
    controller's path to a file credential; a value credential is read from the environment by the playbook)."""
    from dataclasses import asdict

    from jinbao_netops import serve
    from jinbao_netops.inventory import load

    return [asdict(c) for c in serve.shipped(load(inventory or None), scope, os.environ)]


class FilterModule:
    def filters(self):
        return {"netops_serve_unit": netops_serve_unit, "netops_serve_credentials": netops_serve_credentials}
