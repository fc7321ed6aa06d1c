"""Topology analysis: paths to the ministry, single points of failure, failure impact, homing check.

Every question is "which sites can still reach the ministry". A site reaches it when any of its
routers does; the ministry is reached at *any* of its routers (the virtual ``ROOT`` of
``Topology.split``). Only active links count.

How each answer is computed (n = devices + active links, all linear or near-linear):

- **Single points of failure, devices and links** — one dominator tree of the split graph rooted at
  ROOT (networkx ``immediate_dominators``). A node dominates a site's router iff every path from the
  ministry to it passes that node — exactly "if it fails, the router is cut off". Links are nodes of
  the split graph, so articulation-point routers and bridge links come out of the same tree. A site
  with several routers is cut off by the common dominators of all of them: the ancestors of their
  lowest common ancestor in the tree. O(n) for the tree (a few passes of Cooper–Harvey–Kennedy on this
  near-tree), plus O(sites × depth) to read it.
- **Shared-risk groups with more than one active link** — not a single node, so each is failed on
  its own with a local search (below). An SRLG with one active link is that link, already covered.
- **Impact of a failure (any set of devices, links, SRLGs)** — local search: from every neighbour of
  the failed nodes, a best-first search ordered by distance from the ministry in the intact graph
  tries to reach ROOT; what it reaches is marked safe, a search that runs dry has enumerated a cut-off
  component. Cost ∝ what is cut off plus a few hops per neighbour, not the whole graph.
- **Paths** — one Dijkstra from ROOT (cost = 100000 // bandwidth_mbps, the lab's OSPF reference) gives
  every site's equal-cost shortest paths from the predecessor DAG.
- **Disjoint paths** — unit-capacity augmenting paths (node splitting for node-disjointness), searched
  best-first toward the ministry; the last, failing search explores only the site's side of the cut.
  Parallel links in one SRLG count once.
"""
from __future__ import annotations

import heapq
from collections import defaultdict, deque
from dataclasses import dataclass, field
from functools import cached_property
from itertools import pairwise

import networkx as nx

from jinbao_netops.inventory.model import Level
from jinbao_netops.errors import UsageError

from .graph import (
    LEVEL_RANK,
    LEVELS,
    ROOT,
    Failure,
    Topology,
    is_link_node,
    link_node,
    quiet_gc,
)

MAX_PATHS = 64          # equal-cost paths listed per site
MAX_DISJOINT = 16       # disjoint paths are counted up to this many
KIND_ORDER = {"device": 0, "link": 1, "srlg": 2}


@dataclass
class Spof:
    """A failure unit whose failure alone cuts some site (not its own) off from the ministry."""

    failure: Failure
    tier: str                       # the level the element belongs to
    sites: list[str]                # cut off, senior first

    def as_dict(self, topo: Topology) -> dict:
        return {**describe(topo, self.failure), "tier": self.tier, "cuts_off": [site_ref(topo, s) for s in self.sites]}


@dataclass
class Finding:
    code: str                       # "no_path" | "not_dual_homed"
    site: str
    level: str
    message: str
    cut_by: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"code": self.code, "site": self.site, "level": self.level, "message": self.message,
                "cut_by": self.cut_by}


def site_ref(topo: Topology, sid: str) -> dict:
    s = topo.inv.sites[sid]
    return {"id": sid, "name": s.name, "level": s.level.value}


def describe(topo: Topology, f: Failure) -> dict:
    """A failure unit as JSON: kind, id, and what it is (device name and site, link ends, SRLG links)."""
    out: dict = {"kind": f.kind, "id": f.id}
    if f.kind == "device":
        n = topo.graph.nodes[f.id]
        out.update(name=n["name"], site=n["site"], role=n["role"])
    elif f.kind == "link":
        lk = topo.inv.links[f.id]
        out.update(a=lk.a.device, b=lk.b.device, srlg=lk.srlg, carrier=lk.carrier, state=lk.state.value,
                   bandwidth_mbps=lk.bandwidth_mbps)
    else:
        out.update(links=sorted(f.links), planned_links=sorted(set(topo.srlg_links[f.id]) - f.links))
    return out


def by_level(topo: Topology, sites) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for lv in LEVELS:
        ids = sorted(s for s in sites if topo.inv.sites[s].level.value == lv)
        if ids:
            out[lv] = ids
    return out


def _senior_first(topo: Topology, sites) -> list[str]:
    return sorted(sites, key=lambda s: (LEVEL_RANK[topo.inv.sites[s].level.value], s))


class Analysis:
    """All analyses of one Topology; intermediate results (dominators, distances) are computed once."""

    def __init__(self, topo: Topology):
        self.topo = topo
        # plain dicts: the searches below touch them hundreds of thousands of times
        self.adj: dict[str, list[str]] = {n: list(nbrs) for n, nbrs in topo.split.adjacency()}
        self.transit = {n: topo.transit(n) for n in topo.split}
        self.site_of: dict[str, str] = dict(topo.graph.nodes(data="site"))

    # --- shared structures -----------------------------------------------------------------
    @cached_property
    @quiet_gc
    def depth(self) -> dict[str, int]:
        """Hops from ROOT in the intact split graph, moving only through transit nodes; the keys are
        everything reachable."""
        depth = {ROOT: 0}
        todo = deque([ROOT])
        adj, transit = self.adj, self.transit
        while todo:
            x = todo.popleft()
            if not transit[x]:
                continue
            dx = depth[x] + 1
            for y in adj[x]:
                if y not in depth:
                    depth[y] = dx
                    todo.append(y)
        return depth

    @cached_property
    @quiet_gc
    def idom(self) -> dict[str, str]:
        """Immediate dominators (toward ROOT) of every reachable split-graph node."""
        d = nx.DiGraph()
        d.add_node(ROOT)
        transit = self.transit
        d.add_edges_from((u, v) for u, nbrs in self.adj.items() if transit[u] for v in nbrs)
        return nx.immediate_dominators(d, ROOT)

    @cached_property
    @quiet_gc
    def _dom_depth(self) -> dict[str, int]:
        idom, out = self.idom, {ROOT: 0}
        for v in idom:
            chain = []
            while v not in out:
                chain.append(v)
                v = idom[v]
            base = out[v]
            for i, c in enumerate(reversed(chain), 1):
                out[c] = base + i
        return out

    def reachable_anchors(self, sid: str) -> list[str]:
        return [a for a in self.topo.anchors[sid] if a in self.depth]

    @cached_property
    def unreachable_sites(self) -> list[str]:
        """Sites that cannot reach the ministry even with everything up (or have no devices)."""
        m = self.topo.ministry
        return _senior_first(self.topo, [s for s in self.topo.inv.sites if s != m and not self.reachable_anchors(s)])

    # --- single points of failure ---------------------------------------------------------------
    def _common_dominator(self, nodes: list[str]) -> str:
        idom, dd = self.idom, self._dom_depth
        x = nodes[0]
        for y in nodes[1:]:
            while x != y:
                if dd[x] >= dd[y]:
                    x = idom[x]
                else:
                    y = idom[y]
        return x

    @cached_property
    @quiet_gc
    def spof_list(self) -> list[Spof]:
        topo = self.topo
        cuts: dict[tuple[str, str], set[str]] = defaultdict(set)
        idom, site_of = self.idom, self.site_of
        for sid in topo.inv.sites:
            if sid == topo.ministry:
                continue
            anchors = self.reachable_anchors(sid)
            if not anchors:
                continue  # no path at all: a finding of check(), not a single point of failure
            v = self._common_dominator(anchors)
            while v != ROOT:
                if is_link_node(v):
                    cuts[("link", v[len(link_node("")):])].add(sid)
                elif site_of[v] != sid:  # a site's own devices are not its single point of failure
                    cuts[("device", v)].add(sid)
                v = idom[v]
        units = [topo.failure_of(kind, ident) for kind, ident in cuts]
        found = [(f, cuts[(f.kind, f.id)]) for f in units]
        for srlg, links in topo.srlgs.items():
            if len(links) > 1:
                f = topo.failure_of("srlg", srlg)
                cut, _ = self.cut_off([f])
                if cut:
                    found.append((f, cut))
        out = [Spof(f, topo.tier(f), _senior_first(topo, sites)) for f, sites in found]
        out.sort(key=lambda s: (LEVEL_RANK[s.tier], KIND_ORDER[s.failure.kind], s.failure.id))
        return out

    @cached_property
    @quiet_gc
    def cut_by(self) -> dict[str, list[Failure]]:
        """site → the single failure units that cut it off."""
        out: dict[str, list[Failure]] = defaultdict(list)
        for s in self.spof_list:
            for sid in s.sites:
                out[sid].append(s.failure)
        return dict(out)

    # --- impact -------------------------------------------------------------------------------
    def _cut_nodes(self, failed: set[str]) -> set[str]:
        """Split-graph nodes (reachable before) that cannot reach ROOT once ``failed`` nodes are down."""
        adj, transit, depth = self.adj, self.transit, self.depth
        safe: set[str] = set()
        cut: set[str] = set()
        todo = [y for x in failed if x in adj for y in adj[x] if y not in failed and y in depth]
        while todo:
            s = todo.pop()
            if s in safe or s in cut:
                continue
            seen = {s}
            heap = [(depth[s], s)]
            found = False
            while heap:
                _, x = heapq.heappop(heap)
                if x == ROOT:
                    found = True
                    break
                if x != s and not transit[x]:
                    continue  # a host is an end, never a way through (even one known to reach ROOT)
                if x in safe:
                    found = True
                    break
                for y in adj[x]:
                    if y not in failed and y not in seen and y not in cut:  # a cut-off part leads nowhere
                        seen.add(y)
                        heapq.heappush(heap, (depth[y], y))
            if not transit[s]:
                # a host's search may run through the host itself: it only tells about the host
                (safe if found else cut).add(s)
                continue
            for y in seen:
                if transit[y] or found:
                    (safe if found else cut).add(y)
                elif y not in safe and y not in cut:
                    todo.append(y)  # a host at the edge of a cut-off part may have another way out
        return cut

    def cut_off(self, failures: list[Failure]) -> tuple[set[str], set[str]]:
        """(sites cut off, sites down) when ``failures`` happen together. A site is *down* when its own
        devices failed (its routers are gone or stranded behind them); *cut off* otherwise."""
        failed: set[str] = set()
        own: set[str] = set()
        for f in failures:
            failed |= f.nodes()
            own |= {self.site_of[d] for d in f.devices}
        lost = self._cut_nodes(failed) | failed
        site_of = self.site_of
        candidates = {site_of[n] for n in lost if n in site_of}
        cut, down = set(), set()
        for sid in candidates:
            anchors = self.reachable_anchors(sid)
            if anchors and all(a in lost for a in anchors):
                (down if sid in own else cut).add(sid)
        return cut, down

    @quiet_gc
    def impact(self, failures: list[Failure]) -> dict:
        cut, down = self.cut_off(failures)
        topo = self.topo
        return {
            "fail": [describe(topo, f) for f in failures],
            "cut_off": by_level(topo, cut),
            "down": by_level(topo, down),
            "cut_off_count": len(cut),
            "sites": {s: site_ref(topo, s) for s in _senior_first(topo, cut | down)},
        }

    # --- paths ---------------------------------------------------------------------------------
    @cached_property
    @quiet_gc
    def _shortest(self) -> tuple[dict, dict, dict]:
        """Dijkstra from ROOT over active links by OSPF cost: (predecessors, distances, cheapest links
        per device pair)."""
        topo = self.topo
        w = nx.DiGraph()
        w.add_node(ROOT)
        best: dict[frozenset, tuple[int, list[str]]] = {}
        for u, v, k, d in topo.active.edges(keys=True, data=True):
            key = frozenset((u, v))
            c = d["cost"]
            have = best.get(key)
            if have is None or c < have[0]:
                best[key] = (c, [k])
            elif c == have[0]:
                have[1].append(k)
        for key, (c, _) in best.items():
            u, v = tuple(key)
            if self.transit[u]:
                w.add_edge(u, v, cost=c)
            if self.transit[v]:
                w.add_edge(v, u, cost=c)
        for a in topo.anchors[topo.ministry]:
            w.add_edge(ROOT, a, cost=0)
        pred, dist = nx.dijkstra_predecessor_and_distance(w, ROOT, weight="cost")
        return pred, dist, best

    @quiet_gc
    def paths(self, sid: str) -> dict:
        topo = self.topo
        site = topo.site(sid)
        pred, dist, best = self._shortest
        anchors = [a for a in topo.anchors[sid] if a in dist]
        out = {"site": site_ref(topo, sid), "homing": site.homing if site.level == Level.county else None,
               "uplinks": topo.uplinks(sid), "reachable": bool(anchors), "cost": None, "paths": [],
               "truncated": False, "link_disjoint": 0, "node_disjoint": 0, "cut_by": []}
        if not anchors:
            return out
        cost = min(dist[a] for a in anchors)
        out["cost"] = cost
        paths: list[dict] = []
        for a in sorted(x for x in anchors if dist[x] == cost):
            for devs in self._dag_paths(a, pred):
                for links in self._link_choices(devs, best):
                    if len(paths) >= MAX_PATHS:
                        out["truncated"] = True
                        break
                    paths.append(self._path_record(devs, links))
        out["paths"] = paths
        if sid == topo.ministry:
            out["link_disjoint"] = out["node_disjoint"] = None  # it is the destination
        else:
            out["link_disjoint"] = self.disjoint(sid, nodes=False)
            out["node_disjoint"] = self.disjoint(sid, nodes=True)
            out["cut_by"] = [describe(topo, f) for f in self.cut_by.get(sid, [])]
        return out

    def _dag_paths(self, start: str, pred: dict) -> list[list[str]]:
        """Device sequences from ``start`` to a ministry router along the shortest-path DAG."""
        out: list[list[str]] = []
        stack = [(start, [start])]
        while stack and len(out) < MAX_PATHS:
            x, path = stack.pop()
            ps = sorted(pred.get(x, []), reverse=True)
            if ps == [ROOT] or not ps:
                out.append(path)
                continue
            for p in ps:
                if p != ROOT:
                    stack.append((p, path + [p]))
        return out

    def _link_choices(self, devs: list[str], best: dict) -> list[list[str]]:
        choices: list[list[str]] = [[]]
        for u, v in pairwise(devs):
            ks = sorted(best[frozenset((u, v))][1])
            choices = [c + [k] for c in choices for k in ks][:MAX_PATHS]
        return choices

    def _path_record(self, devs: list[str], links: list[str]) -> dict:
        topo = self.topo
        hops = []
        for i, d in enumerate(devs):
            hops.append({"device": d, "site": topo.site_of(d)})
            if i < len(links):
                lk = topo.inv.links[links[i]]
                hops.append({"link": lk.id, "bandwidth_mbps": lk.bandwidth_mbps, "cost": topo.graph.edges[
                    lk.a.device, lk.b.device, lk.id]["cost"], "srlg": lk.srlg, "carrier": lk.carrier})
        return {"from": devs[0], "to": devs[-1], "devices": devs, "links": links,
                "sites": list(dict.fromkeys(topo.site_of(d) for d in devs)),
                "cost": sum(h["cost"] for h in hops if "link" in h), "hops": hops}

    # --- disjoint paths ------------------------------------------------------------------------
    @cached_property
    @quiet_gc
    def _flow(self) -> tuple[dict[str, list[str]], dict[str, int]]:
        """Flow graph: devices, ROOT, and one node per group of parallel active links in the same SRLG
        (a link without an SRLG is a group of its own); with hop distances from ROOT."""
        topo = self.topo
        groups: dict[tuple, str] = {}
        adj: dict[str, list[str]] = {n: [] for n in topo.graph.nodes}
        adj[ROOT] = list(topo.anchors[topo.ministry])
        for a in adj[ROOT]:
            adj[a].append(ROOT)
        for u, v, k, d in topo.active.edges(keys=True, data=True):
            key = (min(u, v), max(u, v), d["srlg"]) if d["srlg"] else (k,)
            if key in groups:
                continue
            n = groups[key] = link_node(k)
            adj[n] = [u, v]
            adj[u].append(n)
            adj[v].append(n)
        depth = {ROOT: 0}
        todo = deque([ROOT])
        while todo:
            x = todo.popleft()
            if not self._can_transit(x):
                continue
            for y in adj[x]:
                if y not in depth:
                    depth[y] = depth[x] + 1
                    todo.append(y)
        far = len(depth)
        for n, nbrs in adj.items():
            nbrs.sort(key=lambda y: depth.get(y, far))
        return adj, depth

    @cached_property
    def _link_nodes(self) -> frozenset[str]:
        return frozenset(n for n in self._flow[0] if is_link_node(n))

    def _can_transit(self, n: str) -> bool:
        return self.transit.get(n, True)

    def disjoint(self, sid: str, nodes: bool) -> int:
        """How many paths from the site to the ministry share no link (``nodes=False``; parallel links in
        one SRLG count once) or no device or link outside the site and the ministry (``nodes=True``)."""
        topo = self.topo
        adj, depth = self._flow
        sources = [a for a in topo.anchors[sid] if a in depth]
        if not sources:
            return 0
        src = set(sources)
        free = set(topo.inv.devices_by_site.get(sid, [])) | set(topo.inv.devices_by_site.get(topo.ministry, []))
        free.add(ROOT)
        links = self._link_nodes
        transit = self.transit
        limited = (lambda n: n in links or n not in free) if nodes else links.__contains__
        used: set[str] = set()                               # limited nodes carrying a path
        flow: dict[tuple[str, str], int] = defaultdict(int)  # (u, v): units from u into v

        def steps(n: str, side: int):
            """Residual moves from a search state: (node, 0) = entering a limited node, (node, 1) = leaving
            it, or standing on any other node. Nearest-to-the-ministry neighbours first."""
            if side == 0:
                if n not in used:
                    yield (n, 1), "in"
            elif limited(n) and n in used:
                yield (n, 0), "unin"
            if side == 1 and (transit.get(n, True) or n in src):
                for w in adj[n]:
                    yield (w, 0 if limited(w) else 1), "fwd"
            if side == 0 or not limited(n):
                for u in adj[n]:
                    if flow[(u, n)] > 0:
                        yield (u, 1), "back"

        count = 0
        while count < MAX_DISJOINT:
            # depth-first, shallowest neighbour first: a path up to the ministry is usually found at once,
            # and a failing search only explores the site's side of the cut
            parent: dict[tuple[str, int], tuple | None] = {}
            stack = []
            for s in sources:
                parent[(s, 1)] = None
                stack.append(((s, 1), steps(s, 1)))
            end = None
            while stack and end is None:
                st, it = stack[-1]
                for nxt, how in it:
                    if nxt not in parent:
                        parent[nxt] = (st, how)
                        if nxt[0] == ROOT:
                            end = nxt
                        else:
                            stack.append((nxt, steps(*nxt)))
                        break
                else:
                    stack.pop()
            if end is None:
                break
            st = end
            while parent[st] is not None:
                prev, how = parent[st]
                a, b = prev[0], st[0]
                if how == "in":
                    used.add(a)
                elif how == "unin":
                    used.discard(a)
                elif how == "fwd":
                    if flow[(b, a)] > 0:
                        flow[(b, a)] -= 1
                    else:
                        flow[(a, b)] += 1
                else:  # "back": undo a unit that went from b into a
                    flow[(b, a)] -= 1
                st = prev
            count += 1
        return count

    # --- check ---------------------------------------------------------------------------------
    @quiet_gc
    def check(self) -> list[Finding]:
        topo = self.topo
        out: list[Finding] = []
        for sid in self.unreachable_sites:
            s = topo.inv.sites[sid]
            why = ("it has no devices 无设备" if not topo.inv.devices_by_site.get(sid)
                   else "no active path from its routers 其路由器无可用路径")
            out.append(Finding("no_path", sid, s.level.value,
                               f"{s.name} ({sid}): no path to the ministry 无通往部中心的路径: {why}"))
        for sid, s in topo.inv.sites.items():
            if s.level != Level.county or s.homing != "dual" or sid in self.unreachable_sites:
                continue
            cuts = self.cut_by.get(sid, [])
            if cuts:
                what = "; ".join(_unit_text(topo, f) for f in cuts)
                out.append(Finding(
                    "not_dual_homed", sid, s.level.value,
                    f"{s.name} ({sid}): declared dual-homed but one failure cuts it off "
                    f"声明双归属但单点故障即可切断: {what}",
                    [describe(topo, f) for f in cuts]))
        out.sort(key=lambda f: (LEVEL_RANK[f.level], f.site, f.code))
        return out


def _unit_text(topo: Topology, f: Failure) -> str:
    if f.kind == "srlg":
        return f"srlg {f.id} (links {', '.join(sorted(f.links))})"
    if f.kind == "link":
        lk = topo.inv.links[f.id]
        return f"link {f.id}" + (f" (srlg {lk.srlg})" if lk.srlg else "")
    return f"device {f.id} ({topo.site_of(f.id)})"


# --- module-level API: accept a Topology (analyses cached on it) ------------------------------
def analysis(topo: Topology) -> Analysis:
    a = topo.__dict__.get("_analysis")
    if a is None:
        a = topo.__dict__["_analysis"] = Analysis(topo)
    return a


def spof(topo: Topology) -> list[Spof]:
    """Single points of failure, senior tier first: devices, links and multi-link SRLGs whose failure
    alone cuts off some site other than the device's own."""
    return analysis(topo).spof_list


def impact(topo: Topology, fail: str | list[str]) -> dict:
    """What is cut off, by level, when the named devices/links/SRLGs fail together."""
    names = [fail] if isinstance(fail, str) else list(fail)
    if not names:
        raise UsageError("topology impact: name at least one device, link or srlg with --fail")
    return analysis(topo).impact([topo.resolve(n) for n in names])


def paths(topo: Topology, site: str) -> dict:
    """Shortest paths (OSPF cost) from the site's routers to the ministry, disjoint path counts and the
    single failures that cut the site off."""
    return analysis(topo).paths(site)


def check(topo: Topology) -> list[Finding]:
    """Findings: sites with no path to the ministry; counties declared dual-homed that one failure cuts off."""
    return analysis(topo).check()
