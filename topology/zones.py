"""Security zones on the graph: the static proof that every path between two zones passes a boundary
device, the zone × zone matrix, and the rules each boundary device needs for the zone policy.

The view (``ZoneView``) is derived from ``Topology.graph``: every device, and every LAN as one node of
its own (``segment:<subnet>``: the hosts of a LAN reach each other without passing the device whose
interface is the LAN's hub, so a firewall that is a LAN's hub is not on the path between its hosts).
Take the boundary devices out and what stays connected is a **region**; a region holding two zones
is a path between them that no boundary device controls (a violation). Put the boundary devices back
as nodes between regions (the region graph, edges labelled with the boundary's interfaces) and the
shortest paths between a zone's regions are the boundaries a crossing passes, and on each one the
interface it arrives on and the one it leaves by: what its rules say.

Management addresses are the out-of-band management zone (``management``); they are no path of the
graph, so they cross nothing here.
"""
from __future__ import annotations

import hashlib
import ipaddress
import re
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import networkx as nx
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from jinbao_netops import escape
from jinbao_netops.errors import UsageError
from jinbao_netops.inventory.model import Flow, FlowEnd, LinkKind, Zone
from jinbao_netops.inventory.platforms import PLATFORMS

from .graph import Topology

SEGMENT = "segment:"  # a LAN's node (device ids cannot contain ':')
REGION = "region:"


@dataclass
class Rule:
    """One permit on one boundary device: connections of ``protocol``/``ports`` arriving on
    ``inbound`` and leaving by ``outbound``, from ``sources`` to ``destinations`` (host addresses;
    None: any address of that side's zone). Replies are let back by the device's connection state."""

    flow: str
    description: str | None
    from_zone: str
    to_zone: str
    inbound: list[str]
    outbound: list[str]
    sources: list[str] | None
    destinations: list[str] | None
    protocol: str
    ports: list[int]

    def as_dict(self) -> dict:
        return {"flow": self.flow, "description": self.description, "from_zone": self.from_zone,
                "to_zone": self.to_zone, "inbound": self.inbound, "outbound": self.outbound,
                "sources": self.sources, "destinations": self.destinations, "protocol": self.protocol,
                "ports": self.ports}


@dataclass
class Bridge:
    """A region holding several zones: a path between them passes no boundary device."""

    zones: list[str]
    path: list[str]  # a shortest such path, devices and segments

    def as_dict(self) -> dict:
        return {"kind": "bridge", "zones": self.zones, "path": self.path,
                "message": f"zones {' and '.join(self.zones)} are joined without a boundary device: {' — '.join(self.path)}"}


@dataclass
class Region:
    zones: set[str]
    nodes: set[str] = field(default_factory=set)


class ZoneView:
    def __init__(self, topo: Topology):
        self.topo = topo
        self.inv = topo.inv
        g = nx.Graph()
        inv = self.inv
        for d in inv.devices.values():
            g.add_node(d.id, zone=d.zone.value, boundary=d.boundary)
        # (node, neighbour) → the node's interfaces on that edge (a boundary device's side of a crossing)
        self.ifaces: dict[tuple[str, str], set[str]] = defaultdict(set)
        # every link of the topology's graph, planned ones too: a line that will carry traffic once
        # active already joins what it joins
        for _, _, lid in topo.graph.edges(keys=True):
            lk = inv.links[lid]
            zone = inv.devices[lk.a.device].interface_zone(lk.a.interface)
            if lk.kind == LinkKind.lan:
                addr = inv.interface(lk.a).address or inv.interface(lk.b).address
                seg = SEGMENT + (str(addr.network) if addr else lid)
                if seg not in g:  # a LAN is in the zone of its first link; a link of another zone bridges
                    g.add_node(seg, zone=zone.value, boundary=False)
                hops = [(e.device, seg, e.interface) for e in lk.ends()]
            else:
                hops = [(lk.a.device, lk.b.device, lk.a.interface), (lk.b.device, lk.a.device, lk.b.interface)]
            for u, v, itf in hops:
                g.add_edge(u, v)
                self.ifaces[(u, v)].add(itf)
        self.graph = g

    # --- regions ------------------------------------------------------------------------------
    @cached_property
    def regions(self) -> dict[str, Region]:
        g = self.graph
        inner = g.subgraph(n for n, b in g.nodes(data="boundary") if not b)
        out = {}
        for i, comp in enumerate(sorted(nx.connected_components(inner), key=min)):
            out[f"{REGION}{i}"] = Region({g.nodes[n]["zone"] for n in comp}, set(comp))
        return out

    @cached_property
    def region_of(self) -> dict[str, str]:
        return {n: r for r, reg in self.regions.items() for n in reg.nodes}

    def bridges(self) -> list[Bridge]:
        out = []
        for reg in self.regions.values():
            if len(reg.zones) < 2:
                continue
            sub = self.graph.subgraph(reg.nodes)
            zones = sorted(reg.zones)
            first = [n for n in reg.nodes if sub.nodes[n]["zone"] == zones[0]]
            lengths, paths = nx.multi_source_dijkstra(sub, first)
            end = min((n for n in reg.nodes if sub.nodes[n]["zone"] != zones[0]), key=lambda n: (lengths[n], n))
            out.append(Bridge(zones, paths[end]))
        return out

    @cached_property
    def region_graph(self) -> nx.Graph:
        """Regions and boundary devices; an edge's ``ifaces`` holds the boundary side's interfaces."""
        rg = nx.Graph()
        rg.add_nodes_from(self.regions)
        for u, v in self.graph.edges:
            for a, b in ((u, v), (v, u)):
                if not self.graph.nodes[a]["boundary"]:
                    continue
                other = b if self.graph.nodes[b]["boundary"] else self.region_of[b]
                if not rg.has_edge(a, other):
                    rg.add_edge(a, other, ifaces={})
                rg.edges[a, other]["ifaces"].setdefault(a, set()).update(self.ifaces[(a, b)])
        return rg

    def zone_regions(self, zone: str) -> list[str]:
        return [r for r, reg in self.regions.items() if zone in reg.zones]

    def crossings(self, sources: list[str], targets: list[str]) -> list[list[str]]:
        """From each of ``sources`` to the nearest of ``targets`` (regions), every shortest region-graph
        path: a province's 外网 reaches its own DMZ through its own firewall, not another province's
        DMZ through the business network (name a site in the policy to mean another)."""
        rg = self.region_graph
        out = []
        for s in sources:
            hops = nx.single_source_shortest_path_length(rg, s)
            near = min((hops[t] for t in targets if t in hops and t != s), default=None)
            for t in targets:
                if t != s and hops.get(t) == near:
                    out.extend(nx.all_shortest_paths(rg, s, t))
        return out

    @staticmethod
    def boundaries(path: list[str]) -> list[str]:
        return [n for n in path if not n.startswith(REGION)]

    # --- the policy on the graph ----------------------------------------------------------------
    def hosts(self, region: str, end: FlowEnd) -> list[str] | None:
        """The host addresses of ``end`` in the region (sorted), None for the whole zone, [] for none."""
        if not end.narrowed:
            return None
        sites = set(self.inv.descendants(end.site)) if end.site else None
        out = set()
        for n in self.regions[region].nodes:
            d = self.inv.devices.get(n)
            if d is None or (end.role is not None and d.role != end.role) or (sites is not None and d.site not in sites) \
                    or (end.devices and d.id not in end.devices):
                continue
            out.update(itf.address.ip for name, itf in d.interfaces.items()
                       if itf.address is not None and d.interface_zone(name) == end.zone)
        return [str(a) for a in sorted(out)]

    def flow_rules(self, flow: Flow) -> dict[str, list[Rule]]:
        """boundary device → the rules ``flow`` needs on it (merged per arriving/leaving interface)."""
        src = {r: self.hosts(r, flow.from_) for r in self.zone_regions(flow.from_.zone.value)}
        dst = {r: self.hosts(r, flow.to) for r in self.zone_regions(flow.to.zone.value)}
        src = {r: h for r, h in src.items() if h is None or h}
        dst = {r: h for r, h in dst.items() if h is None or h}
        merged: dict[tuple[str, str, str], Rule] = {}
        for path in self.crossings(sorted(src), sorted(dst)):
            if not set(flow.via) <= set(path):
                continue
            s, t = src[path[0]], dst[path[-1]]
            for prev, here, nxt in zip(path, path[1:], path[2:]):
                if here.startswith(REGION):
                    continue
                rg = self.region_graph
                inbound = sorted(rg.edges[prev, here]["ifaces"][here])
                outbound = sorted(rg.edges[here, nxt]["ifaces"][here])
                key = (here, ",".join(inbound), ",".join(outbound))
                rule = merged.get(key)
                if rule is None:
                    merged[key] = Rule(flow.id, flow.description, flow.from_.zone.value, flow.to.zone.value,
                                       inbound, outbound, None if s is None else list(s),
                                       None if t is None else list(t), flow.protocol, list(flow.ports))
                else:
                    rule.sources = _union(rule.sources, s)
                    rule.destinations = _union(rule.destinations, t)
        out: dict[str, list[Rule]] = defaultdict(list)
        for (dev, _, _), rule in sorted(merged.items()):
            out[dev].append(rule)
        return dict(out)

    @cached_property
    def rules(self) -> dict[str, list[Rule]]:
        """Every boundary device (even one the policy gives nothing: it denies all) → its rules."""
        out: dict[str, list[Rule]] = {d: [] for d, dev in self.inv.devices.items() if dev.boundary}
        for flow in self.inv.zone_policy.values():
            for dev, rules in self.flow_rules(flow).items():
                out[dev].extend(rules)
        return out


def _union(a: list[str] | None, b: list[str] | None) -> list[str] | None:
    if a is None or b is None:
        return None
    return [str(x) for x in sorted({ipaddress.ip_address(x) for x in (*a, *b)})]


ZONES = tuple(z.value for z in Zone)


def _matches(inv, dev, end: FlowEnd) -> list:
    """``dev``'s addresses in ``end``'s zone when ``dev`` is one of the side's devices ([] otherwise)."""
    if (end.role is not None and dev.role != end.role) or (end.devices and dev.id not in end.devices) \
            or (end.site is not None and dev.site not in set(inv.descendants(end.site))):
        return []
    return [itf.address for name, itf in dev.interfaces.items()
            if itf.address is not None and dev.interface_zone(name) == end.zone]


def admitted(inv, host: str) -> list[dict]:
    """What ``host``'s own firewall admits for the zone policy (security/admits.py): each tcp/udp flow whose
    destination side is this host, from the source side's addresses (a whole zone: its subnets). The boundary
    decides what crosses; the host must not drop what the policy lets through."""
    dev = inv.devices[host]
    out = []
    for flow in inv.zone_policy.values():
        if flow.protocol == "icmp" or dev.boundary or not _matches(inv, dev, flow.to):
            continue
        src = sorted({str(a.ip) if flow.from_.narrowed else str(a.network)
                      for d in inv.devices.values() for a in _matches(inv, d, flow.from_)},
                     key=lambda x: ipaddress.ip_network(x))
        for port in flow.ports:
            out.append({"proto": flow.protocol, "port": port, "sources": src,
                        "what": f"zone flow 安全区策略 {flow.id}"})
    return out


def check(topo: Topology, scope: list[str] | None = None) -> dict:
    """The static zone check: the zone × zone matrix (flows the policy allows, boundary devices on the
    paths), and the violations — paths between zones through no boundary device, and allowed flows
    that no boundary device carries (the policy and the network disagree). ``scope``: device ids whose
    boundaries and violations are reported (None: all)."""
    view = ZoneView(topo)
    keep = set(scope) if scope is not None else None

    def shown(nodes) -> bool:
        return keep is None or any(n in keep for n in nodes)

    violations = [b.as_dict() for b in view.bridges() if shown(b.path)]
    carried: dict[str, set[str]] = defaultdict(set)  # flow → the boundary devices whose rules carry it
    for dev, rules in view.rules.items():
        for r in rules:
            carried[r.flow].add(dev)
    for flow in topo.inv.zone_policy.values():
        if not carried[flow.id] and keep is None:
            violations.append({"kind": "uncarried", "flow": flow.id, "zones": [flow.from_.zone.value, flow.to.zone.value],
                               "message": f"flow {flow.id}: no boundary device carries it (no path from "
                                          f"{flow.from_.zone.value} to {flow.to.zone.value} with matching hosts)"})
    matrix = []
    for za in ZONES:
        for zb in ZONES:
            if za == zb:
                continue
            paths = view.crossings(view.zone_regions(za), view.zone_regions(zb))
            devices = sorted({d for p in paths for d in view.boundaries(p)} & (keep if keep is not None else set(view.rules)))
            flows = sorted(f.id for f in topo.inv.zone_policy.values() if f.from_.zone.value == za and f.to.zone.value == zb
                           and (keep is None or carried[f.id] & keep))
            matrix.append({"from": za, "to": zb, "connected": bool(paths), "boundaries": devices, "allowed": flows,
                           "violations": sum(1 for v in violations if v["zones"] == [za, zb]
                                             or (v["kind"] == "bridge" and {za, zb} <= set(v["zones"])))})
    return {"ok": not violations, "zones": list(ZONES), "matrix": matrix, "violations": violations,
            "boundaries": sorted(d for d in view.rules if keep is None or d in keep)}


def rules_for(topo: Topology, device: str) -> list[Rule]:
    dev = topo.inv.devices.get(device)
    if dev is None:
        raise UsageError(f"{topo.inv.root}: device {device!r}: no such device 未知设备")
    if not dev.boundary:
        raise UsageError(f"{topo.inv.root}: device {device!r}: a {dev.role.value}, not a boundary device "
                         f"(firewall, gap_gateway) 非边界设备")
    return ZoneView(topo).rules[device]



# --- rules as text --------------------------------------------------------------------------------
TEMPLATES = Path(__file__).parent / "provision" / "templates" / "zones"
# each rule syntax's escape function (netops/escape.py): every value a template prints passes through it
SYNTAX_ESCAPE = {"nftables": escape.nft, "usg": escape.cli, "secpath": escape.cli, "asa": escape.cli}


def render(topo: Topology, device: str, templates: Path | None = None) -> tuple[str, list[Rule], str]:
    """(syntax, rules, text): the boundary device's rules from the zone policy, default deny, in the
    syntax its platform renders (``zone_rules`` in the platform table); ``templates``: another template
    directory (a test's)."""
    rules = rules_for(topo, device)
    dev = topo.inv.devices[device]
    plat = dev.platform_info
    if plat.zone_rules is None:
        raise UsageError(f"{topo.inv.root}: device {device!r}: platform {dev.platform!r} renders no zone rules; "
                         f"a boundary device runs one of {', '.join(sorted(p for p, x in PLATFORMS.items() if x.zone_rules))}")
    names = dict(plat.zone_names)
    by_zone: dict[str, list[str]] = defaultdict(list)
    for name in dev.interfaces:
        by_zone[dev.interface_zone(name).value].append(name)
    zones = [{"zone": z, "name": names.get(z, z), "builtin": z in names, "interfaces": sorted(by_zone[z])}
             for z in ZONES if z in by_zone]
    # an interface's own name where a syntax names interfaces (ASA's nameif): its zone's, numbered if shared
    nameif = {i: z["name"] if len(z["interfaces"]) == 1 else f"{z['name']}{n}"
              for z in zones for n, i in enumerate(z["interfaces"], 1)}

    def vendor_zones(ifaces: list[str]) -> list[str]:
        return sorted({names.get(dev.interface_zone(i).value, dev.interface_zone(i).value) for i in ifaces})

    ctx_rules = [{**r.as_dict(), "in_zones": vendor_zones(r.inbound), "out_zones": vendor_zones(r.outbound)}
                 for r in rules]
    env = Environment(loader=FileSystemLoader(templates or TEMPLATES), undefined=StrictUndefined, trim_blocks=True,
                      lstrip_blocks=True, keep_trailing_newline=True, **escape.jinja(SYNTAX_ESCAPE[plat.zone_rules]))
    text = env.get_template(f"{plat.zone_rules}.j2").render(device={"id": dev.id, "name": dev.name or ""},
                                                            zones=zones, nameif=nameif, rules=ctx_rules)
    return plat.zone_rules, rules, text


def digest(text: str) -> str:
    """The rendered rules' fingerprint: a push record and the audit compare it with today's rendering."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --- the rules as a Linux boundary holds them ------------------------------------------------------
NFT_TABLE = "inet netops_zones"   # the table nftables.j2 renders (the only one netops writes on a boundary)
NFT_LIST = f"nft list table {NFT_TABLE}"
POLICY_DROP = re.compile(r"^\s*type filter hook forward priority [^;]+; policy drop;", re.M)  # the table's default deny

# the records `zones apply` and `zones check --probe` keep in <inventory dir>/changes (the audit's evidence)
PUSH_LOG = "zones.jsonl"          # one line per device per push
CHECK_LOG = "zones-checks.jsonl"  # one line per probing check
HOLDS = ("applied", "no_change")  # push results after which the device holds the rendering
_NFT_HANDLE = re.compile(r"\s+# handle \d+$")


def nft_installed(text: str) -> str:
    """``nft list table`` output as a comparable text: handles and trailing space dropped, so what a push
    verified and what the device holds later compare equal exactly when the rules are the same."""
    return "\n".join(_NFT_HANDLE.sub("", ln).rstrip() for ln in text.strip().splitlines()) + "\n"
