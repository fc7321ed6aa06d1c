"""The dynamic half of the zone check (issue 16 §3): every flow the zone policy allows is tried for real and
must get through; a sample of what it does not allow — per boundary device, each of its zones towards each
other, the common service ports and ICMP — must not.

A probe runs on its source host, through the access layer (one SSH session per source, a small Python
program on its stdin: a TCP connect, a UDP datagram or one ping per probe, in parallel), so it is what the
network really does to that host's packets: the boundary's rules, routing, and the destination's own
firewall. Outcomes: ``open`` (connected), ``refused`` (the destination host answered with a reset or a port
unreachable: the packet crossed), ``reply`` (ICMP echo reply) — each means the traffic got through;
``timeout``, ``unreachable`` and ``no_reply`` mean it did not. A boundary that drops (the rendered rules'
policy) is told from a closed port by that difference, so a forbidden probe needs no listener.

Every source is a host the suite can log in to and run a program on (Linux servers, FRR routers): a
vendor device cannot be a probe's source, only its destination.
"""
from __future__ import annotations

import json
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from jinbao_netops import escape
from jinbao_netops.errors import DeviceError

from .zones import REGION, ZoneView, _matches

# the forbidden sample's ports: remote shells, web, file sharing, the databases, remote desktop
COMMON_TCP = (22, 23, 80, 443, 445, 1433, 3306, 3389, 5432, 8080, 8443)
TIMEOUT = 2.0          # seconds a probe waits for an answer
DESTINATIONS = 2       # per boundary and zone pair: this many destination hosts in the sample
PASSED = frozenset({"open", "refused", "reply"})

# Run on the source host: reads the probes (JSON) on stdin, prints their outcomes (JSON). No root needed
# (ping is setcap'd on Debian); every probe waits at most TIMEOUT seconds, all of them at once.
PROGRAM = r"""
import errno, json, socket, subprocess, sys
from concurrent.futures import ThreadPoolExecutor
T = float(sys.argv[1])
def tcp(a, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM); s.settimeout(T)
    try:
        s.connect((a, port)); return "open"
    except ConnectionRefusedError: return "refused"
    except socket.timeout: return "timeout"
    except OSError as e: return "unreachable" if e.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH) else "error " + str(e.strerror)
    finally: s.close()
def udp(a, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(T)
    try:
        s.connect((a, port)); s.send(b"netops zone probe"); s.recv(512); return "open"
    except ConnectionRefusedError: return "refused"
    except socket.timeout: return "timeout"
    except OSError as e: return "unreachable" if e.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH) else "error " + str(e.strerror)
    finally: s.close()
def icmp(a, _):
    r = subprocess.run(["ping", "-n", "-c", "1", "-W", str(max(1, int(T))), a], capture_output=True)
    return "reply" if r.returncode == 0 else "no_reply"
probes = json.load(sys.stdin)
with ThreadPoolExecutor(max(1, min(32, len(probes)))) as ex:
    print(json.dumps(list(ex.map(lambda p: {"tcp": tcp, "udp": udp, "icmp": icmp}[p[0]](p[1], p[2]), probes))))
"""


@dataclass
class Probe:
    source: str
    destination: str
    daddr: str
    protocol: str
    port: int | None
    expect: str                       # "pass" (a flow the policy allows) or "block"
    flow: str | None                  # the policy's flow (an allowed probe)
    from_zone: str
    to_zone: str
    boundaries: list[str] = field(default_factory=list)
    outcome: str = ""

    @property
    def ok(self) -> bool:
        if self.expect == "pass":
            return self.outcome in PASSED
        return bool(self.outcome) and self.outcome not in PASSED and not self.outcome.startswith("error")

    @property
    def what(self) -> str:
        svc = self.protocol if self.port is None else f"{self.protocol}/{self.port}"
        return f"{self.source} → {self.destination} {self.daddr} {svc}"

    def as_dict(self) -> dict:
        return {"boundaries": self.boundaries, "flow": self.flow, "expect": self.expect, "from_zone": self.from_zone,
                "to_zone": self.to_zone, "source": self.source,
                "destination": self.destination, "daddr": self.daddr, "protocol": self.protocol, "port": self.port,
                "outcome": self.outcome, "ok": self.ok}


class Planner:
    """Which probes prove the policy on the network the inventory describes."""

    def __init__(self, view: ZoneView):
        self.view, self.inv = view, view.inv

    def can_probe(self, device: str) -> bool:
        d = self.inv.devices[device]
        return not d.boundary and d.platform_info.session == "exec" and "ssh" in d.access

    def addresses(self, device: str, zone: str) -> list[str]:
        d = self.inv.devices[device]
        return [str(i.address.ip) for n, i in d.interfaces.items() if i.address is not None and d.interface_zone(n).value == zone]

    def members(self, region: str, zone: str) -> list[str]:
        """The devices of ``region`` with an address in ``zone`` (no boundary device: its own addresses are
        its input, not what it forwards)."""
        return sorted(n for n in self.view.regions[region].nodes
                      if n in self.inv.devices and not self.inv.devices[n].boundary and self.addresses(n, zone))

    def boundaries_between(self, src: str, dst: str) -> list[str]:
        ra, rb = self.view.region_of[src], self.view.region_of[dst]
        return sorted({b for p in self.view.crossings([ra], [rb]) for b in self.view.boundaries(p)})

    def _pick(self, devices: list[str], near: set[str], named: set[str] = frozenset()) -> list[str]:
        """Devices a flow names first, then those at the sites of ``near`` (the boundary's own data centre), then by
        name."""
        sites = {self.inv.devices[d].site for d in near}
        return sorted(devices, key=lambda d: (d not in named, self.inv.devices[d].site not in sites, d))

    def named(self, boundary: str, side: str) -> set[str]:
        """The devices the flows carried by ``boundary`` name as their sources (``side`` "from_") or destinations."""
        flows = {r.flow for r in self.view.rules[boundary]}
        return {d.id for f in self.inv.zone_policy.values() if f.id in flows and (end := getattr(f, side)).narrowed
                for d in self.inv.devices.values() if _matches(self.inv, d, end)}

    def side(self, flow_end, zone: str, near: set[str], sources: bool) -> list[str]:
        """The devices a flow's side names; an un-narrowed side (a whole zone) is represented by one device per
        region of the zone, nearest the boundaries that carry the flow."""
        want = self.can_probe if sources else (lambda d: True)
        if flow_end.narrowed:
            return sorted(d.id for d in self.inv.devices.values()
                          if not d.boundary and _matches(self.inv, d, flow_end) and want(d.id))
        out = []
        for region in self.view.zone_regions(zone):
            cands = [d for d in self.members(region, zone) if want(d)]
            out += self._pick(cands, near)[:1]
        return out

    def allowed(self) -> list[Probe]:
        out = []
        carriers: dict[str, set[str]] = defaultdict(set)
        for dev, rules in self.view.rules.items():
            for r in rules:
                carriers[r.flow].add(dev)
        for flow in self.inv.zone_policy.values():
            fz, tz = flow.from_.zone.value, flow.to.zone.value
            near = carriers[flow.id]
            for src in self.side(flow.from_, fz, near, sources=True):
                for dst in self.side(flow.to, tz, near, sources=False):
                    bounds = self.boundaries_between(src, dst)
                    if flow.via and not set(flow.via) <= set(bounds) or not bounds:
                        continue
                    for addr in self.addresses(dst, tz):
                        for port in flow.ports or [None]:
                            out.append(Probe(src, dst, addr, flow.protocol, port, "pass", flow.id, fz, tz, bounds))
        return out

    def permitted(self, src: str, dst: str, protocol: str, port: int | None) -> bool:
        """Whether some flow of the policy lets ``src`` open this connection to ``dst``."""
        s, d = self.inv.devices[src], self.inv.devices[dst]
        return any(f.protocol == protocol and (port is None or port in f.ports)
                   and _matches(self.inv, s, f.from_) and _matches(self.inv, d, f.to)
                   for f in self.inv.zone_policy.values())

    def forbidden(self, boundary: str) -> list[Probe]:
        """Per pair of the boundary's zones, one source facing it in the first and a few destinations facing it in
        the second; every common port and ICMP that no flow allows between them."""
        rg, out = self.view.region_graph, []
        facing: dict[str, list[str]] = defaultdict(list)  # zone → the regions beside the boundary in it
        for nb in rg.neighbors(boundary):
            if nb.startswith(REGION):
                for z in self.view.regions[nb].zones:
                    facing[z].append(nb)
        near, named, targets = {boundary}, self.named(boundary, "from_"), self.named(boundary, "to")
        for za in sorted(facing):
            for zb in sorted(facing):
                if za == zb:
                    continue
                # a source the policy names (does the boundary let it do more than declared?) and one it does not
                cands = self._pick([d for r in facing[za] for d in self.members(r, za) if self.can_probe(d)], near, named)
                srcs = cands[:1] + [d for d in cands[1:] if d not in named][:1]
                dsts = self._pick([d for r in facing[zb] for d in self.members(r, zb)], near, targets)[:DESTINATIONS]
                for src in srcs:
                    for dst in dsts:
                        bounds = self.boundaries_between(src, dst)
                        if boundary not in bounds:
                            continue
                        addr = self.addresses(dst, zb)[0]
                        for proto, port in [("tcp", p) for p in COMMON_TCP] + [("icmp", None)]:
                            if not self.permitted(src, dst, proto, port):
                                out.append(Probe(src, dst, addr, proto, port, "block", None, za, zb, bounds))
        return out


def plan(view: ZoneView, boundaries: set[str] | None = None) -> list[Probe]:
    """The probes for ``boundaries`` (None: every boundary device): allowed flows crossing one of them, and the
    forbidden sample of each."""
    p = Planner(view)
    every = sorted(view.rules)
    keep = set(every) if boundaries is None else set(boundaries)
    probes = [x for x in p.allowed() if keep & set(x.boundaries)]
    for b in every:
        if b in keep:
            probes += p.forbidden(b)
    return probes


def run(access, probes: list[Probe], timeout: float = TIMEOUT) -> list[Probe]:
    """Every probe from its source, sources in parallel. A source that cannot be reached or run the program
    leaves its probes' outcome ``error …`` (never a pass, never a block)."""
    by_source: dict[str, list[Probe]] = defaultdict(list)
    for pr in probes:
        by_source[pr.source].append(pr)

    def one(source: str) -> None:
        todo = by_source[source]
        try:
            text = access.session(source).run(f"python3 -c {escape.shell(PROGRAM)} {timeout:g}", timeout=timeout * 4 + 30,
                                              input=json.dumps([[p.protocol, p.daddr, p.port] for p in todo]))
            outcomes = json.loads(text.strip().splitlines()[-1])
        except (DeviceError, ValueError, IndexError) as e:
            outcomes = [f"error {str(e)[:200]}"] * len(todo)
        for pr, oc in zip(todo, outcomes):
            pr.outcome = str(oc)

    with ThreadPoolExecutor(max(1, min(8, len(by_source)))) as ex:
        list(ex.map(one, sorted(by_source)))
    return probes


def matrix(probes: list[Probe]) -> list[dict]:
    """Per boundary device and zone pair: allowed probes that got through of those tried, forbidden probes
    that were stopped of those tried, and what went wrong."""
    cells: dict[tuple, dict] = {}
    for pr in probes:
        for b in pr.boundaries:
            cell = cells.setdefault((b, pr.from_zone, pr.to_zone), {
                "boundary": b, "from": pr.from_zone, "to": pr.to_zone, "allowed": 0, "allowed_ok": 0,
                "forbidden": 0, "forbidden_ok": 0, "failed": []})
            kind = "allowed" if pr.expect == "pass" else "forbidden"
            cell[kind] += 1
            cell[kind + "_ok"] += pr.ok
            if not pr.ok:
                cell["failed"].append(f"{pr.what}: {'应通 expected to pass' if pr.expect == 'pass' else '应阻断 expected blocked'}"
                                      f", {pr.outcome}")
    return [cells[k] for k in sorted(cells)]
