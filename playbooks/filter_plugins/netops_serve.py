"""The operations service's systemd unit, rendered by the suite's own Python (``netops/serve.py``: its
command line quoted for systemd there, never in Jinja)."""
from __future__ import annotations


def netops_serve_unit(python: str, scope: str, listen: str, credentials: list[str], schedule: str = "",
                      inventory: str = "") -> str:
    from jinbao_netops import serve

    return serve.unit(python, scope, listen, list(credentials), schedule=schedule or None, inventory=inventory or None)


class FilterModule:
    def filters(self):
        return {"netops_serve_unit": netops_serve_unit}
