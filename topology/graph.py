"""The inventory as a graph: a networkx MultiGraph of devices, one edge per link.

``build(inv)`` returns a ``Topology``:

- ``topo.graph`` — every device (node attributes ``site``, ``level``, ``role``, ``name``, ``platform``,
  ``zone``, ``boundary``, ``transit``) and every link, active or planned (edge key = link id; attributes ``link``, ``kind``,
  ``bandwidth_mbps``, ``carrier``, ``srlg``, ``state``, ``cost``). Diagrams draw from it.
- ``topo.active`` — the same without planned links: what the analysis works on.
- failure units: a device, a link, or a shared-risk group (SRLG: every active link carrying that
  ``srlg`` fails together — two lines in one carrier duct are not redundancy). ``topo.resolve(text)``
  turns a name into a ``Failure``; ``topo.without(failure)`` is the active graph after it.

For the algorithms there is a second, derived view, ``topo.split``: a simple graph in which every
active link is a node of its own between its two devices (``link:<id>``), plus a virtual ``ROOT``
joined to the ministry's routers. Failing a link is then failing a node, so one dominator tree
answers "what does this router / this line cut off" for every router and line at once, and
reaching ROOT means reaching *any* ministry router.

Only devices whose platform is a network OS, and boundary devices (a Linux firewall or 网闸), forward
traffic (``transit``); a server with two NICs is not a path between two routers.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from functools import cached_property, wraps

import networkx as nx

from jinbao_netops.inventory.loader import paused_gc
from jinbao_netops.inventory.model import LEVEL_NAMES, LEVEL_ORDER, Level, LinkKind, LinkState, Role
from jinbao_netops.inventory.store import Inventory
from jinbao_netops.errors import UsageError

ROOT = "@ministry"              # virtual node: "the ministry" (device ids cannot start with @)
LINK_PREFIX = "link:"           # split-graph node of a link (device ids cannot contain ':')
REFERENCE_MBPS = 100_000        # OSPF auto-cost reference bandwidth, as the lab twin's FRR uses
LEVELS = tuple(lv.value for lv in LEVEL_NAMES)  # display order, senior first
LEVEL_RANK = {lv.value: LEVEL_ORDER[lv] for lv in Level}
LEVEL_ZH = {lv.value: zh for lv, (zh, _) in LEVEL_NAMES.items()}


def quiet_gc(func):
    """Run ``func`` with the cyclic GC paused: graph building allocates tens of thousands of small
    acyclic dicts, and each collection would rescan the inventory's hundreds of thousands of objects."""

    @wraps(func)
    def run(*args, **kw):
        with paused_gc():
            return func(*args, **kw)

    return run


def ospf_cost(bandwidth_mbps: int) -> int:
    """OSPF interface cost for a link: reference bandwidth / bandwidth, at least 1 (as FRR computes it)."""
    return max(1, REFERENCE_MBPS // bandwidth_mbps)


def link_node(link_id: str) -> str:
    return LINK_PREFIX + link_id


def is_link_node(node: str) -> bool:
    return node.startswith(LINK_PREFIX)


@dataclass(frozen=True)
class Failure:
    """A failure unit: what goes down together."""

    kind: str                   # "device" | "link" | "srlg"
    id: str
    devices: frozenset[str]     # devices that go down
    links: frozenset[str]       # active links that go down (a planned link carries nothing)

    def nodes(self) -> set[str]:
        """The split-graph nodes this failure removes."""
        return set(self.devices) | {link_node(lk) for lk in self.links}

    def label(self) -> str:
        return f"{self.kind} {self.id}"


class Topology:
    """The inventory as graphs. Build with ``build(inv)``; everything else is derived lazily."""

    def __init__(self, inv: Inventory):
        self.inv = inv
        self.ministry = inv.ministry.id
        g = nx.MultiGraph(name=inv.network.id if inv.network else "jinbao")
        for d in inv.devices.values():
            site = inv.sites[d.site]
            g.add_node(d.id, site=d.site, level=site.level.value, role=d.role.value, name=d.name or d.id,
                       platform=d.platform, zone=d.zone.value, boundary=d.boundary,
                       transit=d.platform_info.kind == "network" or d.boundary)
        srlg_all: dict[str, list[str]] = defaultdict(list)
        srlg_active: dict[str, list[str]] = defaultdict(list)
        for lk in inv.links.values():
            g.add_edge(lk.a.device, lk.b.device, key=lk.id, link=lk.id, kind=lk.kind.value,
                       bandwidth_mbps=lk.bandwidth_mbps, carrier=lk.carrier, srlg=lk.srlg, state=lk.state.value,
                       cost=ospf_cost(lk.bandwidth_mbps))
            if lk.srlg:
                srlg_all[lk.srlg].append(lk.id)
                if lk.state == LinkState.active:
                    srlg_active[lk.srlg].append(lk.id)
        self.graph = g
        self.srlg_links = {s: sorted(v) for s, v in srlg_all.items()}        # every link of the group
        self.srlgs = {s: sorted(srlg_active.get(s, [])) for s in srlg_all}   # its active links
        # The devices that stand for a site: reaching any of them reaches the site.
        self.anchors: dict[str, list[str]] = {}
        for sid in inv.sites:
            devs = sorted(inv.devices_by_site.get(sid, []))
            routers = [d for d in devs if inv.devices[d].role == Role.router]
            forwarders = [d for d in devs if g.nodes[d]["transit"]]
            self.anchors[sid] = routers or forwarders or devs

    # --- views --------------------------------------------------------------------------------
    @cached_property
    @quiet_gc
    def active(self) -> nx.MultiGraph:
        """Devices and active links only (planned links carry nothing)."""
        a = nx.MultiGraph(name=self.graph.name)
        a.add_nodes_from(self.graph.nodes(data=True))
        a.add_edges_from((u, v, k, d) for u, v, k, d in self.graph.edges(keys=True, data=True)
                         if d["state"] == LinkState.active.value)
        return a

    @cached_property
    @quiet_gc
    def split(self) -> nx.Graph:
        """Devices, one node per active link, and ROOT joined to the ministry's anchors."""
        s = nx.Graph()
        s.add_node(ROOT)
        s.add_nodes_from(self.graph.nodes)
        for u, v, k in self.active.edges(keys=True):
            n = link_node(k)
            s.add_edge(u, n)
            s.add_edge(n, v)
        for d in self.anchors[self.ministry]:
            s.add_edge(ROOT, d)
        return s

    def transit(self, node: str) -> bool:
        """Whether traffic may pass through a split-graph node (links and network devices do)."""
        if node == ROOT or is_link_node(node):
            return True
        return self.graph.nodes[node]["transit"]

    def without(self, failure: Failure) -> nx.MultiGraph:
        """The active graph after ``failure`` (a read-only view)."""
        edges = [(u, v, k) for u, v, k in self.active.edges(keys=True) if k in failure.links]
        return nx.restricted_view(self.active, failure.devices, edges)

    # --- lookups ------------------------------------------------------------------------------
    def site_of(self, node: str) -> str:
        return self.graph.nodes[node]["site"]

    def link_ends(self, link_id: str) -> tuple[str, str]:
        lk = self.inv.links[link_id]
        return lk.a.device, lk.b.device

    def tier(self, failure: Failure) -> str:
        """The level a failure unit belongs to: a device's site level; a link's junior end (a city–county
        line is county tier); an SRLG the most senior tier among its links."""
        if failure.kind == "device":
            return self.graph.nodes[next(iter(failure.devices))]["level"]
        tiers = [self.link_tier(lk) for lk in (failure.links or self.srlg_links.get(failure.id, [failure.id]))]
        return min(tiers, key=LEVEL_RANK.__getitem__)

    def link_tier(self, link_id: str) -> str:
        return max((self.graph.nodes[d]["level"] for d in self.link_ends(link_id)), key=LEVEL_RANK.__getitem__)

    def failure_of(self, kind: str, ident: str) -> Failure:
        if kind == "device":
            return Failure("device", ident, frozenset([ident]), frozenset())
        if kind == "link":
            active = self.inv.links[ident].state == LinkState.active
            return Failure("link", ident, frozenset(), frozenset([ident] if active else []))
        return Failure("srlg", ident, frozenset(), frozenset(self.srlgs[ident]))

    def resolve(self, text: str) -> Failure:
        """A device id, link id or SRLG name (optionally prefixed ``device:``, ``link:``, ``srlg:``)."""
        kind, _, ident = text.partition(":") if text.split(":", 1)[0] in ("device", "link", "srlg") else ("", "", text)
        tables = {"device": self.inv.devices, "link": self.inv.links, "srlg": self.srlgs}
        hits = [k for k, table in tables.items() if ident in table and kind in ("", k)]
        if not hits:
            what = {"": "a device, link or shared-risk group (srlg)", "device": "a device", "link": "a link",
                    "srlg": "a shared-risk group (srlg)"}[kind]
            raise UsageError(f"{self.inv.root}: {ident!r} is not {what} of this inventory "
                             f"(未知的设备/链路/共享风险组 unknown failure target)")
        if len(hits) > 1:
            raise UsageError(f"{ident!r} names a {' and a '.join(hits)}; say which: "
                             + ", ".join(f"{k}:{ident}" for k in hits))
        return self.failure_of(hits[0], ident)

    def site(self, site_id: str):
        if site_id not in self.inv.sites:
            raise UsageError(f"{self.inv.root}: site {site_id!r}: no such site 未知站点 "
                             f"(try `netops inventory graph`)")
        return self.inv.sites[site_id]

    def uplinks(self, site_id: str, active_only: bool = True) -> list[str]:
        """Links from the site's devices to a more senior site (not LAN)."""
        out = []
        for d in self.inv.devices_by_site.get(site_id, []):
            for lid in self.inv.links_by_device.get(d, []):
                lk = self.inv.links[lid]
                if lk.kind == LinkKind.lan or (active_only and lk.state != LinkState.active):
                    continue
                if self.inv.is_uplink(lk, d):
                    out.append(lid)
        return sorted(set(out))


def build(inv: Inventory) -> Topology:
    """The inventory as a Topology (see the module docstring)."""
    return quiet_gc(Topology)(inv)
