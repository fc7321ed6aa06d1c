"""The validated inventory as one object, with the hierarchy queries every capability needs."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from jinbao_netops.errors import UsageError

from .model import (
    LEVEL_ORDER,
    Credentials,
    Device,
    Endpoint,
    Flow,
    Interface,
    Level,
    Link,
    LinkKind,
    Network,
    Role,
    Site,
)


@dataclass
class Inventory:
    root: Path
    network: Network | None = None
    credentials: dict[str, Credentials] = field(default_factory=dict)
    sites: dict[str, Site] = field(default_factory=dict)
    devices: dict[str, Device] = field(default_factory=dict)
    links: dict[str, Link] = field(default_factory=dict)
    zone_policy: dict[str, Flow] = field(default_factory=dict)  # the flows allowed across zones (default deny)
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

    # --- scopes: what --scope means, the same for every verb ------------------------------------
    def scope(self, name: str | None, stop_at: Level | None = None) -> list[str]:
        """The device ids a ``--scope`` names: every device without one; a site → that site and every
        site below it (``stop_at`` leaves out the sites of that level below the scope, and all under
        them: the ministry's collector covers ``scope("bu", Level.province)``); a device → itself."""
        if name is None:
            return sorted(self.devices)
        if name in self.devices:
            return [name]
        if name not in self.sites:
            raise UsageError(f"{self.root}: --scope {name!r}: no such site or device (see `netops inventory graph`)")
        sites, todo = set(), [name]
        while todo:
            s = todo.pop()
            sites.add(s)
            todo.extend(c for c in self.children.get(s, []) if self.sites[c].level != stop_at)
        return sorted(d for d, dev in self.devices.items() if dev.site in sites)

    def devices_at(self, site_id: str, role: Role | None = None) -> list[str]:
        """The devices of one site (with ``role``: only those), by id."""
        return sorted(d for d in self.devices_by_site.get(site_id, []) if role is None or self.devices[d].role == role)

    def first(self, site_id: str, role: Role) -> Device:
        """The site's device of that role (the first by id), or a one-line error naming the site."""
        found = self.devices_at(site_id, role)
        if not found:
            raise UsageError(f"{self.root}: site {site_id!r}: no device with role {role.value}")
        return self.devices[found[0]]

    def reach_target(self) -> tuple[str, str] | None:
        """What every county must reach: the ministry's server (first by id) and its first WAN
        address; None when the ministry has no addressed server."""
        servers = self.devices_at(self.ministry.id, Role.server)
        if not servers:
            return None
        addr = next((str(i.address.ip) for i in self.devices[servers[0]].interfaces.values() if i.address), None)
        return (servers[0], addr) if addr else None

    def reach_source(self, county: str) -> str | None:
        """Where a county's reachability is measured from: its server, else its router (first by id)."""
        devs = sorted(self.devices_at(county), key=lambda d: (self.devices[d].role == Role.router, d))
        return devs[0] if devs else None

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
