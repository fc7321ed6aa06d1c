"""Checks that relate inventory objects to each other. Each problem is one line:
``FILE:LINE: OBJECT: field 'FIELD': message``. All problems are collected, none raised.
"""
from __future__ import annotations

import ipaddress
from collections import defaultdict

from .model import BOUNDARY_ROLES, PARENT_LEVELS, Level, LinkKind, LinkState, _Obj
from .store import Inventory, province_area


class _Problems(list):
    def add(self, obj: _Obj, noun: str, fld: str, msg: str) -> None:
        name = getattr(obj, "id", "") or ""
        label = f"{noun} '{name}'" if name else noun
        self.append(f"{obj.where()}: {label}: field '{fld}': {msg}")


def validate(inv: Inventory) -> list[str]:
    p = _Problems()
    _sites(inv, p)
    _prefixes(inv, p)
    _devices(inv, p)
    _replicas(inv, p)
    _links(inv, p)
    _homing(inv, p)
    _zones(inv, p)
    _policy(inv, p)
    return list(p)


def _known(inv: Inventory, ref: str | None, table: dict) -> bool | None:
    """True if known, False if unknown, None if it names an object that failed its own schema."""
    if ref in table:
        return True
    return None if ref in inv.broken else False


def _sites(inv: Inventory, p: _Problems) -> None:
    ministries = [s for s in inv.sites.values() if s.level == Level.ministry]
    if len(ministries) > 1:
        for s in ministries[1:]:
            p.add(s, "site", "level", f"a second ministry site (first: {ministries[0].id})")
    elif not ministries and inv.sites:
        first = next(iter(inv.sites.values()))
        p.add(first, "site", "level", "no site has level 'ministry'")
    for s in inv.sites.values():
        if s.parent is None:
            continue
        known = _known(inv, s.parent, inv.sites)
        if known is False:
            p.add(s, "site", "parent", f"unknown site {s.parent!r}")
            continue
        if not known:
            continue
        parent = inv.sites[s.parent]
        allowed = PARENT_LEVELS[s.level]
        if parent.level not in allowed:
            want = " or ".join(lv.value for lv in allowed)
            p.add(s, "site", "parent", f"a {s.level.value} site hangs off a {want}, but {parent.id!r} is a {parent.level.value}")
        if s.level == Level.province and s.ospf_area is None and s.code is None:
            p.add(s, "site", "code", "a province needs a division code or an explicit ospf_area")
    areas: dict[int, str] = {}
    for s in inv.sites.values():
        if s.level == Level.province and (s.code or s.ospf_area is not None):
            a = province_area(s)
            if a == 0:
                p.add(s, "site", "ospf_area", "area 0 is the backbone; a province needs its own area")
            elif a in areas:
                p.add(s, "site", "ospf_area", f"area {a} is already used by province {areas[a]!r}")
            else:
                areas[a] = s.id


def _prefixes(inv: Inventory, p: _Problems) -> None:
    """Site blocks nest along the hierarchy; pools sit inside their site's block; nothing else overlaps."""
    net = inv.network
    # (prefix, kind, site) with kind "block" or "pool:<type>"
    entries: list[tuple[ipaddress.IPv4Network, str, str]] = []
    for s in inv.sites.values():
        entries.append((s.block, "block", s.id))
        for kind in ("p2p", "loopback"):
            for pool in getattr(s.pools, kind):
                entries.append((pool, f"pool {kind}", s.id))
                if not pool.subnet_of(s.block):
                    p.add(s, "site", f"pools.{kind}", f"{pool} is outside the site's block {s.block}")
        if s.level in (Level.ministry, Level.province) or (s.parent and _known(inv, s.parent, inv.sites) is False):
            outer = net.address_plan.national if net else None
        else:
            outer = inv.sites[s.parent].block if s.parent in inv.sites else None
        if outer is not None and not s.block.subnet_of(outer):
            what = "the national block" if s.level in (Level.ministry, Level.province) else f"the parent's block ({s.parent})"
            p.add(s, "site", "block", f"{s.block} is outside {what} {outer}")
    if net:
        entries.append((net.address_plan.management, "management pool", ""))
    # Sweep in address order, larger prefix first: a prefix's containers are on the stack.
    order = {"block": 0}
    entries.sort(key=lambda e: (int(e[0].network_address), e[0].prefixlen, order.get(e[1], 1)))
    stack: list[tuple[ipaddress.IPv4Network, str, str]] = []
    for e in entries:
        while stack and not e[0].subnet_of(stack[-1][0]):
            stack.pop()
        if stack and not (e[2] and not _rooted(inv, e[2])):
            outer_net, outer_kind, outer_site = stack[-1]
            ok = outer_kind == "block" and e[2] and outer_site in _self_and_ancestors(inv, e[2])
            if ok and e[1] == "block" and e[2] == outer_site:
                ok = False  # the same site twice cannot happen; a sibling with an equal block
            if not ok:
                obj = inv.sites.get(e[2]) or net
                owner = f"{outer_kind} of site {outer_site!r}" if outer_site else outer_kind
                p.add(obj, "site" if e[2] else "network", "block" if e[1] == "block" else
                      ("address_plan.management" if not e[2] else "pools." + e[1].split()[1]),
                      f"{e[0]} overlaps {outer_net} ({owner})")
        stack.append(e)


def _self_and_ancestors(inv: Inventory, site_id: str) -> set[str]:
    return {site_id, *(s.id for s in inv.ancestors(site_id))}


def _rooted(inv: Inventory, site_id: str) -> bool:
    """The site's parent chain reaches the ministry. Checks that depend on ancestry skip unrooted
    sites: their unknown parent is already reported, and guessing further would only add noise."""
    chain = [inv.sites[site_id], *inv.ancestors(site_id)]
    return chain[-1].level == Level.ministry


def _devices(inv: Inventory, p: _Problems) -> None:
    net = inv.network
    mgmt_seen: dict[ipaddress.IPv4Address, str] = {}
    if net:
        mgmt_seen[net.address_plan.ops_host] = "the ops host (address_plan.ops_host)"
    host_seen: dict[ipaddress.IPv4Address, str] = {}
    for d in inv.devices.values():
        site_known = _known(inv, d.site, inv.sites)
        if site_known is False:
            p.add(d, "device", "site", f"unknown site {d.site!r}")
        cred_known = _known(inv, d.credentials, inv.credentials)
        if cred_known is False:
            p.add(d, "device", "credentials", f"unknown credentials profile {d.credentials!r}")
        elif cred_known:
            _credentials(d, inv.credentials[d.credentials], p)
        if net:
            if d.management not in net.address_plan.management:
                p.add(d, "device", "management", f"{d.management} is outside the management pool {net.address_plan.management}")
            elif d.management in mgmt_seen:
                p.add(d, "device", "management", f"{d.management} is already used by {mgmt_seen[d.management]}")
            else:
                mgmt_seen[d.management] = f"device {d.id!r}"
        if d.loopback is not None:
            if d.loopback in host_seen:
                p.add(d, "device", "loopback", f"{d.loopback} is already used by {host_seen[d.loopback]}")
            host_seen[d.loopback] = f"device {d.id!r} loopback"
            if site_known and _rooted(inv, d.site):
                owners = [inv.sites[d.site], *inv.ancestors(d.site)]
                if not any(d.loopback in pool for s in owners for pool in s.pools.loopback):
                    p.add(d, "device", "loopback", f"{d.loopback} is outside every loopback pool of {', '.join(s.id for s in owners)}")
        for name, itf in d.interfaces.items():
            if itf.address is None:
                continue
            ip = itf.address.ip
            if ip in host_seen:
                p.add(d, "device", f"interfaces.{name}.address", f"{ip} is already used by {host_seen[ip]}")
            else:
                host_seen[ip] = f"device {d.id!r} interface {name}"
            net_ = itf.address.network
            if net_.prefixlen < 31 and ip in (net_.network_address, net_.broadcast_address):
                p.add(d, "device", f"interfaces.{name}.address", f"{ip} is the network or broadcast address of {net_}")


def _replicas(inv: Inventory, p: _Problems) -> None:
    """A standby replicates a primary of the same service at another site, one level of replication deep (a server
    may be the primary of one service and the replica of another), with a replication password to log in with;
    a MariaDB replica is asynchronous."""
    for d in inv.devices.values():
        r = d.replica
        if r is None:
            continue
        known = _known(inv, r.of, inv.devices)
        if known is False:
            p.add(d, "device", "replica.of", f"unknown device {r.of!r}")
        if not known:
            continue
        primary = inv.devices[r.of]
        if r.of == d.id:
            p.add(d, "device", "replica.of", "a server cannot replicate itself")
        elif r.service not in primary.services:
            p.add(d, "device", "replica.of", f"{r.of!r} does not run {r.service}")
        elif primary.replica is not None and primary.replica.service == r.service:
            p.add(d, "device", "replica.of", f"{r.of!r} is itself a standby (of {primary.replica.of!r}); replicate its primary")
        elif primary.site == d.site:
            p.add(d, "device", "replica.of", f"{r.of!r} is at the same site {d.site!r}: a standby for disaster recovery is off-site")
        if r.service == "mariadb" and r.sync:  # GTID replication is asynchronous: a commit never waits for the replica
            p.add(d, "device", "replica.sync", "MariaDB replication is asynchronous (GTID); a synchronous pair (RPO 0) is "
                                               "PostgreSQL's")
        if r.service == "mariadb" and r.service_address is not None:
            p.add(d, "device", "replica.service_address", "a service address moves with a PostgreSQL pair's failover only")
        if r.service_address is not None:
            _service_address(inv, d, primary, r.service_address, p)
        cred = inv.credentials.get(d.credentials)
        if cred is not None and cred.replication_password is None:
            p.add(d, "device", "credentials", f"profile {d.credentials!r} has no replication_password for the standby's login")


def _service_address(inv: Inventory, d, primary, address, p: _Problems) -> None:
    """A pair's business address: a free host address in the primary's LAN (the first interface with an address,
    where its databases serve), named by no other standby."""
    lan = next((i.address for i in primary.interfaces.values() if i.address is not None), None)
    used = {ip: f"device {x.id!r}" for x in inv.devices.values()
            for ip in [x.management, x.loopback, *(i.address.ip for i in x.interfaces.values() if i.address)] if ip}
    others = [x.id for x in inv.devices.values() if x.id != d.id and x.replica and x.replica.service_address == address]
    if lan is None or address not in lan.network or address in (lan.network.network_address, lan.network.broadcast_address):
        p.add(d, "device", "replica.service_address", f"{address} is not a host address of {primary.id}'s LAN "
                                                      f"{lan.network if lan else '(none)'}")
    elif address in used:
        p.add(d, "device", "replica.service_address", f"{address} is already used by {used[address]}")
    elif others:
        p.add(d, "device", "replica.service_address", f"{address} is already the service address of {others[0]}'s pair")


def _credentials(d, cred, p: _Problems) -> None:
    """The secrets the device's declared access uses, and only those, are in its credentials profile."""
    if "ssh" in d.access and cred.ssh_key is None and cred.password is None:
        p.add(d, "device", "access", f"ssh needs ssh_key or password in credentials profile {d.credentials!r}")
    if "snmp" not in d.access:
        return
    if cred.snmp is None:
        p.add(d, "device", "credentials", f"profile {d.credentials!r} has no snmp section")
    elif d.snmp_version == "v2c" and cred.snmp.community is None:
        p.add(d, "device", "snmp_version", f"v2c needs snmp.community in credentials profile {d.credentials!r}")
    elif d.snmp_version == "v3":
        missing = [f"snmp.{k}" for k in ("user", "auth_key", "priv_key") if getattr(cred.snmp, k) is None]
        if missing:
            p.add(d, "device", "snmp_version", f"v3 needs {', '.join(missing)} in credentials profile {d.credentials!r}")


def _links(inv: Inventory, p: _Problems) -> None:
    used: dict[tuple[str, str], str] = {}           # p2p interface → link
    lan_hub: dict[tuple[str, str], str] = {}         # interface shared by several LAN links → first link
    subnet_owner: dict[ipaddress.IPv4Network, str] = {}
    linked: set[tuple[str, str]] = set(inv.broken_ends)  # interfaces on a link (even a faulty one)
    for link in inv.links.values():
        ends_ok = True
        for side in ("a", "b"):
            end = getattr(link, side)
            known = _known(inv, end.device, inv.devices)
            if known is False:
                p.add(link, "link", side, f"unknown device {end.device!r}")
                ends_ok = False
            elif known is None:
                ends_ok = False
            elif end.interface not in inv.devices[end.device].interfaces:
                p.add(link, "link", side, f"device {end.device!r} has no interface {end.interface!r}")
                ends_ok = False
            else:
                linked.add((end.device, end.interface))
        if not ends_ok:
            continue
        ia, ib = inv.interface(link.a), inv.interface(link.b)
        for side, end in (("a", link.a), ("b", link.b)):
            key = (end.device, end.interface)
            if link.kind == LinkKind.lan:
                # one side of a LAN segment (the router's) may appear in several LAN links
                if key in used:
                    p.add(link, "link", side, f"{end} is already a point-to-point end of link {used[key]!r}")
                lan_hub.setdefault(key, link.id)
            else:
                other = used.get(key) or lan_hub.get(key)
                if other:
                    p.add(link, "link", side, f"{end} is already used by link {other!r}")
                used[key] = link.id
        # addressing
        addrs = (ia.address, ib.address)
        if link.state == LinkState.planned and addrs == (None, None):
            continue
        if None in addrs:
            side, end = ("a", link.a) if ia.address is None else ("b", link.b)
            p.add(link, "link", side, f"{end} has no address (an {link.state.value} link needs both ends addressed)")
            continue
        na, nb = ia.address.network, ib.address.network
        if na != nb:
            p.add(link, "link", "b", f"{link.a} ({ia.address}) and {link.b} ({ib.address}) are not in the same subnet")
            continue
        if link.kind != LinkKind.lan:
            if na.prefixlen not in (30, 31):
                p.add(link, "link", "a", f"a point-to-point link needs a /30 or /31, not /{na.prefixlen}")
            owner = subnet_owner.get(na)
            if owner and owner != link.id:
                p.add(link, "link", "a", f"subnet {na} is already used by link {owner!r}")
            subnet_owner[na] = link.id
            _link_pool(inv, p, link, na)
            if inv.sites.get(inv.devices[link.a.device].site) and inv.sites.get(inv.devices[link.b.device].site):
                _link_area(inv, p, link)
        else:
            for side, end in (("a", link.a), ("b", link.b)):
                d = inv.devices[end.device]
                if d.site in inv.sites and not inv.interface(end).address.ip in inv.sites[d.site].block:
                    p.add(link, "link", side, f"LAN address {inv.interface(end).address} is outside site {d.site!r} block {inv.sites[d.site].block}")
    # interface addresses that are on no link: LAN/service addresses inside the site's own block
    for d in inv.devices.values():
        if d.site not in inv.sites:
            continue
        block = inv.sites[d.site].block
        for name, itf in d.interfaces.items():
            if itf.address is not None and (d.id, name) not in linked and itf.address.ip not in block:
                p.add(d, "device", f"interfaces.{name}.address", f"{itf.address} is outside site {d.site!r} block {block}")


def _link_pool(inv: Inventory, p: _Problems, link, subnet: ipaddress.IPv4Network) -> None:
    sa, sb = (inv.devices[e.device].site for e in link.ends())
    if sa not in inv.sites or sb not in inv.sites or not (_rooted(inv, sa) and _rooted(inv, sb)):
        return
    common = [s for s in [inv.sites[sa], *inv.ancestors(sa)] if s.id in _self_and_ancestors(inv, sb)]
    if not any(subnet.subnet_of(pool) for s in common for pool in s.pools.p2p):
        names = ", ".join(s.id for s in common) or "none"
        p.add(link, "link", "a", f"subnet {subnet} is outside every p2p pool of the sites both ends share ({names})")


def _link_area(inv: Inventory, p: _Problems, link) -> None:
    areas = {inv.site_area(inv.devices[e.device].site) for e in link.ends()} - {0}
    if len(areas) > 1:
        p.add(link, "link", "b", f"joins two provincial OSPF areas {sorted(areas)}; link provinces through province-level sites")


def _homing(inv: Inventory, p: _Problems) -> None:
    uplinks: dict[str, set[str]] = defaultdict(set)
    # sites with a faulty link or device (already reported): their uplink count is unknown
    unsure = {inv.devices[d].site for d, _ in inv.broken_ends if d in inv.devices} | inv.broken_device_sites
    for link in inv.links.values():
        if link.state != LinkState.active or link.kind == LinkKind.lan:
            continue
        ends = [e for e in link.ends() if e.device in inv.devices and inv.devices[e.device].site in inv.sites]
        if len(ends) != 2:
            unsure.update(inv.devices[e.device].site for e in ends)
            continue
        for e in ends:
            if inv.is_uplink(link, e.device):
                uplinks[inv.devices[e.device].site].add(link.id)
    for s in inv.sites.values():
        if s.id in unsure:
            continue
        if s.level == Level.county and s.homing == "dual" and len(uplinks[s.id]) < 2:
            have = ", ".join(sorted(uplinks[s.id])) or "none"
            p.add(s, "site", "homing", f"declared dual-homed but has {len(uplinks[s.id])} active uplink(s) ({have})")


_BOUNDARY = " or ".join(r.value for r in BOUNDARY_ROLES)


def _zones(inv: Inventory, p: _Problems) -> None:
    """Every device and subnet in exactly one zone; only a boundary device has interfaces in two, and
    a link between two zones ends on one (on its interface in the other end's zone)."""
    reported: set[tuple[str, str]] = set()  # interfaces already named in a problem: one defect, one line
    for d in inv.devices.values():
        if d.boundary:
            continue
        for name, itf in d.interfaces.items():
            if itf.zone is not None and itf.zone != d.zone:
                p.add(d, "device", f"interfaces.{name}.zone", f"{itf.zone.value}, but the device is in zone "
                      f"{d.zone.value}: only a boundary device ({_BOUNDARY}) has interfaces in two zones 非边界设备不得跨区")
                reported.add((d.id, name))
    for link in inv.links.values():
        ends = link.ends()
        if not all(e.device in inv.devices and e.interface in inv.devices[e.device].interfaces for e in ends):
            continue  # an unknown end is reported by _links
        if any((e.device, e.interface) in reported for e in ends):
            continue
        za, zb = (inv.devices[e.device].interface_zone(e.interface) for e in ends)
        if za == zb:
            continue
        reported.update((e.device, e.interface) for e in ends)
        where = f"joins zone {za.value} ({link.a}) and zone {zb.value} ({link.b})"
        boundary = [side for side, e in (("a", link.a), ("b", link.b)) if inv.devices[e.device].boundary]
        if not boundary:
            p.add(link, "link", "b", f"{where} without a boundary device ({_BOUNDARY}) 跨区链路须终结于边界设备")
        else:
            p.add(link, "link", boundary[0], f"{where}: a boundary device's interface is in the zone of what it "
                  "faces 边界设备接口应属于对端所在安全区")
    # a subnet is in one zone: interfaces sharing one (a LAN) agree, linked or not
    subnet_zone: dict = {}
    for d in inv.devices.values():
        for name, itf in d.interfaces.items():
            if itf.address is None or (d.id, name) in reported:
                continue
            zone = d.interface_zone(name)
            first = subnet_zone.setdefault(itf.address.network, (zone, f"{d.id}:{name}"))
            if first[0] != zone:
                p.add(d, "device", f"interfaces.{name}.zone", f"{zone.value}, but subnet {itf.address.network} is in "
                      f"zone {first[0].value} ({first[1]}): a subnet is in exactly one zone 子网只属于一个安全区")


def _policy(inv: Inventory, p: _Problems) -> None:
    """The zone policy's references resolve: sites, devices in the side's zone, and ``via`` boundary devices."""
    for f in inv.zone_policy.values():
        for side, end in (("from", f.from_), ("to", f.to)):
            if end.site is not None and _known(inv, end.site, inv.sites) is False:
                p.add(f, "flow", f"{side}.site", f"unknown site {end.site!r}")
            for i, dev in enumerate(end.devices):
                known = _known(inv, dev, inv.devices)
                if known is False:
                    p.add(f, "flow", f"{side}.devices.{i}", f"unknown device {dev!r}")
                elif known and end.zone not in {inv.devices[dev].interface_zone(n) for n in inv.devices[dev].interfaces}:
                    p.add(f, "flow", f"{side}.devices.{i}", f"device {dev!r} has no interface in zone {end.zone.value}")
        for i, dev in enumerate(f.via):
            known = _known(inv, dev, inv.devices)
            if known is False:
                p.add(f, "flow", f"via.{i}", f"unknown device {dev!r}")
            elif known and not inv.devices[dev].boundary:
                p.add(f, "flow", f"via.{i}", f"device {dev!r} is a {inv.devices[dev].role.value}, not a boundary "
                      f"device ({_BOUNDARY})")
