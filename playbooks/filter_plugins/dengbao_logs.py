"""The log store's files for a host, rendered by the suite's own Python (security/logstore.py) from the
inventory the jinbao inventory plugin reads ($NETOPS_INVENTORY, else the embedded default) — the
allowlist, the lookup tables and the TLS actions are never rebuilt in Jinja."""
from __future__ import annotations

import os
from functools import cache


@cache
def _inventory(path: str | None):
    from jinbao_netops.inventory import load

    return load(path)


def dengbao_log_files(host: str, part: str) -> dict[str, str]:
    """path → content: ``sender`` (TLS identity, forwarding to the log host) or ``receiver`` (empty
    unless some device sends its logs to ``host``)."""
    from jinbao_netops.security import logstore

    inv = _inventory(os.environ.get("NETOPS_INVENTORY") or None)
    if part == "sender":
        return logstore.render_sender(inv, host)
    return logstore.render_receiver(inv, host) if logstore.senders(inv, host) else {}


def dengbao_peer_admit(host: str) -> list[dict]:
    """What ``host``'s firewall admits beyond the management network: [{proto, port, sources, what}] (its log
    senders on a log host, its replication peer on a database pair's member)."""
    from jinbao_netops.security import admits

    return admits.admitted(_inventory(os.environ.get("NETOPS_INVENTORY") or None), host)


class FilterModule:
    def filters(self):
        return {"dengbao_log_files": dengbao_log_files, "dengbao_peer_admit": dengbao_peer_admit}
