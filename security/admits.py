"""What a server's default-deny firewall admits beyond the management network: per port, the exact peers
that need it — a log host's own senders (logstore.admitted), a replication pair's other member
(backup.replication.admitted), a zone policy flow's sources (topology.zones.admitted). The firewall role writes these rules and the audit checks them
(``dengbao_peer_admit``: [{proto, port, sources, what, management?}]; ``management``: the port is a service
port the management network reaches as well)."""
from __future__ import annotations

from jinbao_netops.backup import replication
from jinbao_netops.inventory import Inventory
from jinbao_netops.topology import zones

from . import logstore


def admitted(inv: Inventory, host: str) -> list[dict]:
    return logstore.admitted(inv, host) + replication.admitted(inv, host) + zones.admitted(inv, host)
