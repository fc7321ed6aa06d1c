"""The validated inventory as one object, with the hierarchy queries every capability needs."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from .model import LEVEL_ORDER, Credentials, Device, Endpoint, Interface, Level, Link, LinkKind, Network, Site


@dataclass
class Inventory:
    root: Path
    network: Network | None = None
    credentials: dict[str, Credentials] = field(default_factory=dict)
    sites: dict[str, Site] = field(default_factory=dict)
    devices: dict[str, Device] = field(default_factory=dict)
    links: dict[str, Link] = field(default_factory=dict)
    broken: set[str] = field(default_factory=set)  # ids whose own schema failed (loading only)
    # (device, interface) ends named by links whose own schema failed (loading only): cross-checks
    # treat those interfaces as linked and their sites' homing as unknown instead of adding noise
    broken_ends: set[tuple[str, str]] = field(default_factory=set)
    broken_device_sites: set[str] = field(default_factory=set)  # sites named by devices whose schema failed
    children: dict[str, list[str]] = field(default_factory=dict)
    devices_by_site: dict[str, list[str]] = field(default_factory=dict)
    links_by_device: dict[str, list[str]] = field(default_factory=dict)

    def index(self) -> None:
        children: dict[str, list[str]] = defaultdict(list)
        for s in self.sites.values():
            if s.parent:
                children[s.parent].append(s.id)
        by_site: dict[str, list[str]] = defaultdict(list)
        for d in self.devices.values():
            by_site[d.site].append(d.id)
        by_dev: dict[str, list[str]] = defaultdict(list)
        for link in self.links.values():
            by_dev[link.a.device].append(link.id)
            by_dev[link.b.device].append(link.id)
        self.children, self.devices_by_site, self.links_by_device = dict(children), dict(by_site), dict(by_dev)

    # --- hierarchy -------------------------------------------------------------------------
    @property
    def ministry(self) -> Site:
        return next(s for s in self.sites.values() if s.level == Level.ministry)

    def ancestors(self, site_id: str) -> list[Site]:
        """Parent first, ministry last. Tolerates a broken chain (stops at the first unknown parent)."""
        out: list[Site] = []
        s = self.sites.get(site_id)
        while s is not None and s.parent and len(out) < 6:
            s = self.sites.get(s.parent)
            if s is not None:
                out.append(s)
        return out

    def lineage(self, site_id: str) -> dict[str, str]:
        """level → site id for the site and its ancestors (e.g. {'county': .., 'city': .., ...})."""
        site = self.sites[site_id]
        return {s.level.value: s.id for s in [site, *self.ancestors(site_id)]}

    def province_of(self, site_id: str) -> Site | None:
        for s in [self.sites[site_id], *self.ancestors(site_id)]:
            if s.level == Level.province:
                return s
        return None

    def descendants(self, site_id: str) -> list[str]:
        out, todo = [], [site_id]
        while todo:
            s = todo.pop()
            out.append(s)
            todo.extend(self.children.get(s, []))
        return out

    def sites_in_order(self) -> list[Site]:
        """Depth-first from the ministry, children by id: the order reports and trees use."""
        out: list[Site] = []

        def walk(sid: str) -> None:
            out.append(self.sites[sid])
            for c in sorted(self.children.get(sid, [])):
                walk(c)

        walk(self.ministry.id)
        return out

    # --- devices and links --------------------------------------------------------------------
    def interface(self, end: Endpoint) -> Interface | None:
        d = self.devices.get(end.device)
        return d.interfaces.get(end.interface) if d else None

    def site_of(self, device_id: str) -> Site:
        return self.sites[self.devices[device_id].site]

    def is_uplink(self, link: Link, device_id: str) -> bool:
        """True when ``link`` leads from ``device_id`` to a site higher in the hierarchy."""
        if link.kind == LinkKind.lan:
            return False
        other = link.b if link.a.device == device_id else link.a
        here, there = self.site_of(device_id), self.site_of(other.device)
        return LEVEL_ORDER[there.level] < LEVEL_ORDER[here.level]

    # --- routing ------------------------------------------------------------------------------
    def site_area(self, site_id: str) -> int:
        """OSPF area: the backbone (0) for the ministry, provinces and DR sites; one area per province below."""
        site = self.sites[site_id]
        if LEVEL_ORDER[site.level] <= 1:
            return 0
        prov = self.province_of(site_id)
        return province_area(prov) if prov else 0

    def link_area(self, link: Link) -> int:
        areas = {self.site_area(self.devices[e.device].site) for e in link.ends()} - {0}
        return areas.pop() if areas else 0


def province_area(site: Site) -> int:
    """A province's OSPF area: explicit ``ospf_area``, else its two-digit division code (广东 44 → 0.0.0.44)."""
    if site.ospf_area is not None:
        return site.ospf_area
    return int(site.code[:2]) if site.code else 0
