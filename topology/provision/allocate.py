"""Point-to-point address allocation for a county link, and the inventory file edits it implies.

Allocation is keyed by link id: the link's addresses live in the inventory itself (on its two
interfaces), so a rerun finds them there and returns the same ones. Concurrent runs serialise on
an flock of the inventory directory and re-read the inventory under it. Files are edited line by
line (comments and order stay), the edited inventory is loaded by the one loader from a temporary
copy, and only then do the files replace the originals, as one journalled change (a run killed
midway is completed by the next load).
"""
from __future__ import annotations

import fcntl
import ipaddress
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from jinbao_netops.inventory import Inventory, InventoryError, load
from jinbao_netops.inventory.loader import inventory_files
from jinbao_netops.inventory.model import Level, LinkKind, LinkState
from jinbao_netops.files import commit
from jinbao_netops.errors import UsageError


class PoolFull(UsageError):
    """No free /31 is left in the pools both ends share."""


@dataclass
class Allocation:
    link: str
    subnet: ipaddress.IPv4Network
    ends: dict[str, ipaddress.IPv4Interface]   # "device:interface" → address
    pool: str                                  # "site pool" it came from
    new: bool                                  # False when the inventory already held it

    def as_dict(self) -> dict:
        return {"link": self.link, "subnet": str(self.subnet), "pool": self.pool, "new": self.new,
                "ends": {k: str(v) for k, v in self.ends.items()}}


def inventory_dir(path: Path) -> Path:
    return path if path.is_dir() else path.parent


@contextmanager
def locked(path: Path):
    """Exclusive flock on the inventory directory (blocks until the other run releases it)."""
    fd = os.open(inventory_dir(path), os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def county_uplink(inv: Inventory, county: str, states=(LinkState.planned,)):
    """The county's uplink to its city in one of ``states``: (link, county end, city end)."""
    site = inv.sites.get(county)
    if site is None or site.level != Level.county:
        known = ", ".join(sorted(s.id for s in inv.sites.values() if s.level == Level.county))
        raise UsageError(f"{inv.root}: site '{county}': unknown county (counties: {known})")
    for lid in sorted(inv.links):
        link = inv.links[lid]
        if link.state not in states or link.kind == LinkKind.lan:
            continue
        for here, there in ((link.a, link.b), (link.b, link.a)):
            if inv.devices[here.device].site == county and inv.is_uplink(link, here.device):
                return link, here, there
    return None


def shared_pools(inv: Inventory, link) -> list[tuple[str, ipaddress.IPv4Network]]:
    """The p2p pools of the nearest site that is an ancestor-or-self of both ends and has any
    (a county link is numbered from its province's pool; it does not spill into the ministry's)."""
    sa, sb = (inv.devices[e.device].site for e in link.ends())
    chain_b = {sb, *(s.id for s in inv.ancestors(sb))}
    common = [s for s in [inv.sites[sa], *inv.ancestors(sa)] if s.id in chain_b and s.pools.p2p]
    return [(common[0].id, pool) for pool in common[0].pools.p2p] if common else []


def _used_networks(inv: Inventory) -> list[ipaddress.IPv4Network]:
    return [itf.address.network if itf.address.network.prefixlen >= 24 else ipaddress.ip_network(f"{itf.address.ip}/32")
            for d in inv.devices.values() for itf in d.interfaces.values() if itf.address is not None]


def allocate(inv: Inventory, link) -> Allocation:
    """Existing addresses of the link if it has them, else the first free /31 of a shared pool.
    The upper-level (city) end takes the even address, as elsewhere in the inventory."""
    upper, lower = (link.b, link.a) if inv.is_uplink(link, link.a.device) else (link.a, link.b)
    ia, ib = inv.interface(upper), inv.interface(lower)
    pools = shared_pools(inv, link)
    if ia.address and ib.address:
        pool = next((f"{s} {p}" for s, p in pools if ia.address.network.subnet_of(p)), "")
        return Allocation(link.id, ia.address.network, {str(upper): ia.address, str(lower): ib.address}, pool, False)
    if not pools:
        raise UsageError(f"link '{link.id}': no p2p pool on a site both ends share")
    used = _used_networks(inv)
    for site, pool in pools:
        for net in pool.subnets(new_prefix=31):
            if not any(net.overlaps(u) for u in used):
                lo, hi = net[0], net[1]
                return Allocation(link.id, net, {str(upper): ipaddress.IPv4Interface(f"{lo}/31"),
                                                 str(lower): ipaddress.IPv4Interface(f"{hi}/31")}, f"{site} {pool}", True)
    names = ", ".join(f"{s} {p}" for s, p in pools)
    raise PoolFull(f"link '{link.id}': every /31 of the p2p pool(s) {names} is in use (pool full)")


# --- line-level inventory edits ---------------------------------------------------------------

_KEY = r"^(?P<ind>\s*)(?P<q>['\"]?){key}(?P=q):(?P<rest>.*)$"


def _find_key(lines: list[str], key: str, start: int = 0, end: int | None = None, indent: int | None = None) -> int:
    rx = re.compile(_KEY.format(key=re.escape(key)))
    for i in range(start, len(lines) if end is None else end):
        m = rx.match(lines[i])
        if m and (indent is None or len(m.group("ind")) > indent):
            return i
    raise ValueError(f"key {key!r} not found")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _block_end(lines: list[str], i: int) -> int:
    """First line after the block of the key on line ``i`` (deeper-indented or blank/comment lines)."""
    ind, j = _indent(lines[i]), i + 1
    while j < len(lines) and (not lines[j].strip() or lines[j].lstrip().startswith("#") or _indent(lines[j]) > ind):
        j += 1
    return j


_FLOW = re.compile(r"^(?P<head>\s*['\"]?[^:]+['\"]?:\s*)\{(?P<body>.*)\}(?P<tail>\s*(#.*)?)$")


def _set_field(lines: list[str], i: int, field: str, value: str | None, first: bool = True) -> None:
    """Set (or with None remove) ``field`` in the mapping whose key is on line ``i``: flow style
    ``key: {a: 1, b: 2}`` or block style (children on the following deeper lines)."""
    m = _FLOW.match(lines[i].rstrip("\n"))
    if m:
        items = [x.strip() for x in m.group("body").split(",") if x.strip()]
        at = next((k for k, x in enumerate(items) if re.match(rf"^{re.escape(field)}\s*:", x)), None)
        if at is not None:
            del items[at]
        if value is not None:  # in place, else first (an address leads, as elsewhere) or last
            items.insert(at if at is not None else 0 if first else len(items), f"{field}: {value}")
        lines[i] = f"{m.group('head')}{{{', '.join(items)}}}{m.group('tail')}\n"
        return
    end = _block_end(lines, i)
    rx = re.compile(rf"^\s+{re.escape(field)}\s*:")
    hit = next((j for j in range(i + 1, end) if rx.match(lines[j])), None)
    child = next((_indent(lines[j]) for j in range(i + 1, end) if lines[j].strip() and not lines[j].lstrip().startswith("#")),
                 _indent(lines[i]) + 2)
    if value is None:
        if hit is not None:
            del lines[hit]
        return
    new = f"{' ' * child}{field}: {value}\n"
    if hit is not None:
        comment = re.search(r"\s+#.*$", lines[hit].rstrip("\n"))
        lines[hit] = new.rstrip("\n") + (comment.group(0) if comment else "") + "\n"
    else:
        lines.insert(i + 1, new)


def _section(lines: list[str], name: str) -> tuple[int, int]:
    i = _find_key(lines, name)
    return i, _block_end(lines, i)


def edit_link(inv: Inventory, link, addresses: dict[str, str | None], state: LinkState) -> dict[Path, str]:
    """New text of each inventory file touched: interface addresses (None removes) and the link state."""
    texts: dict[Path, list[str]] = {}

    def lines_of(fname: str) -> list[str]:
        p = Path(fname)
        if p not in texts:
            texts[p] = p.read_text(encoding="utf-8").splitlines(keepends=True)
            if texts[p] and not texts[p][-1].endswith("\n"):
                texts[p][-1] += "\n"
        return texts[p]

    for end, addr in addresses.items():
        dev_id, ifname = end.split(":", 1)
        dev = inv.devices[dev_id]
        lines = lines_of(dev._file)
        s0, s1 = _section(lines, "devices")
        di = _find_key(lines, dev_id, s0 + 1, s1)
        ii = _find_key(lines, "interfaces", di + 1, _block_end(lines, di))
        fi = _find_key(lines, ifname, ii + 1, _block_end(lines, ii))
        _set_field(lines, fi, "address", addr)
    lines = lines_of(link._file)
    s0, s1 = _section(lines, "links")
    _set_field(lines, _find_key(lines, link.id, s0 + 1, s1), "state", state.value, first=False)
    return {p: "".join(ls) for p, ls in texts.items()}


def write_checked(root: Path, new_texts: dict[Path, str], expect) -> Inventory:
    """Load the edited inventory from a temporary copy with the one loader, check ``expect(inv)``,
    then replace the files as one journalled change (``files.commit``). Returns the inventory as now
    written."""
    files = inventory_files(root)
    with tempfile.TemporaryDirectory(prefix="netops-inv-") as tmp:
        tdir = Path(tmp)
        for f in files:
            target = tdir / f.name
            if f in new_texts:
                target.write_text(new_texts[f], encoding="utf-8")
            else:
                shutil.copyfile(f, target)
        try:
            trial = load(tdir if root.is_dir() else tdir / root.name)
        except InventoryError as e:
            raise UsageError(f"{root}: the edited inventory does not validate: {e.problems[0]}") from None
        problem = expect(trial)
        if problem:
            raise UsageError(f"{root}: the line edit did not give the intended inventory: {problem}")
    idir = inventory_dir(root)  # every file at once: a run killed midway is completed by the next load
    commit(idir, {str(f.relative_to(idir)): text for f, text in new_texts.items()})
    return load(root)


def record_link(root: Path, link_id: str, addresses: dict[str, str | None], state: LinkState) -> Inventory:
    """Under the caller's lock: write the link's addresses and state into the inventory files."""
    inv = load(root)
    link = inv.links[link_id]
    texts = edit_link(inv, link, addresses, state)

    def expect(trial: Inventory) -> str | None:
        tl = trial.links.get(link_id)
        if tl is None or tl.state != state:
            return f"link '{link_id}' state is not {state.value}"
        for end, addr in addresses.items():
            dev, ifn = end.split(":", 1)
            got = trial.devices[dev].interfaces[ifn].address
            if (str(got) if got else None) != addr:
                return f"device '{dev}' interface {ifn} address is {got}, not {addr}"
        return None

    return write_checked(root, texts, expect)


def reserve(root: Path, link_id: str, write: bool = True) -> tuple[Inventory, Allocation]:
    """Allocate the link's /31 under the inventory lock and (``write``) record it on the link's
    interfaces at once, the link still planned: a concurrent run re-reads and picks another."""
    with locked(root):
        inv = load(root)
        alloc = allocate(inv, inv.links[link_id])
        if alloc.new and write:
            inv = record_link(root, link_id, {k: str(v) for k, v in alloc.ends.items()}, inv.links[link_id].state)
        return inv, alloc
