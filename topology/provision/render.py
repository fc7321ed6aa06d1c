"""Render one end of a link from the platform's Jinja2 templates; parse configs into trees; diff.

Drift (``drift.py``) reads configs as hier_config trees instead (:func:`hconfig`: the vendor's negation
forms, from the platform table's ``hier_config`` column), with the same normalisation and the same
rules: the owned stanzas (:func:`owns`) and intended negations (:func:`negation_in_place`).

A config is read as a tree by indentation (the shape every supported CLI prints): a line's children
are the deeper-indented lines under it. Separators (``!``, ``#``) and mode exits are dropped. The
diff is hierarchical: lines the intended config has and the running one lacks are added; in the
stanzas the link owns (its interface), running lines the intended config lacks are removed.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path

from hier_config import HConfig, get_hconfig
from hier_config import Platform as HierPlatform
from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateNotFound

from jinbao_netops import escape
from jinbao_netops.inventory import Inventory
from jinbao_netops.inventory.model import Role
from jinbao_netops.inventory.platforms import PLATFORMS
from jinbao_netops.errors import UsageError

TEMPLATES = Path(__file__).parent / "templates"
_SKIP = {"exit", "quit", "return", "end", "exit-address-family"}


@dataclass
class Node:
    line: str
    children: list[Node] = field(default_factory=list)

    def find(self, line: str) -> Node | None:
        return next((c for c in self.children if c.line == line), None)

    def lines(self, depth: int = 0) -> list[str]:
        out = []
        for c in self.children:
            out.append(" " * depth + c.line)
            out.extend(c.lines(depth + 1))
        return out


def _structural(body: str) -> bool:
    """A blank line, a comment or separator (``!``, ``#``), or a mode exit: no configuration."""
    return not body or body[0] in "!#" or body in _SKIP


def parse(text: str) -> Node:
    root = Node("")
    stack: list[tuple[int, Node]] = [(-1, root)]
    for raw in text.splitlines():
        line = raw.rstrip()
        body = line.strip()
        if _structural(body):
            continue
        ind = len(line) - len(line.lstrip(" "))
        while stack[-1][0] >= ind:
            stack.pop()
        node = Node(body)
        stack[-1][1].children.append(node)
        stack.append((ind, node))
    return root


@dataclass
class Change:
    """One stanza's (or one global line's) change: ``path`` is the stanza header(s), empty for a global."""
    path: tuple[str, ...]
    add: list[str]
    remove: list[str]
    created: bool = False  # the stanza itself is new: undone by removing it whole


def negated(line: str, negate: str, defaults=()) -> str:
    """The line that undoes ``line``: ``undo X`` ↔ ``X``; a setting with an unprinted default in
    ``defaults`` is undone by setting that default (FRR: ``no exec-timeout`` means no timeout at all)."""
    if line.startswith(negate + " "):
        return line[len(negate) + 1:]
    return next((d for d in defaults if d.split()[0] == line.split()[0]), f"{negate} {line}")


def negation_in_place(line: str, has, negate: str) -> bool:
    """An intended ``undo X`` (``no X``) asks for X's absence: it is in place when the running config
    shows it or lacks X (most CLIs do not print a setting that is off by default). ``has(line)``:
    the running stanza holds that line."""
    return has(line) or not has(negated(line, negate))


def diff(running: Node, intended: Node, owned, negate: str = "no", single_value=(), forbid=(),
         key=lambda line: line, unprinted=()) -> list[Change]:
    """``owned(header)`` → True for stanzas whose running lines not in ``intended`` are removed.
    Intended negations: :func:`negation_in_place`.
    ``single_value``: regexes of settings that hold one value; a running line of the same setting as
    an added one is removed (its old value). ``forbid``: regexes of lines that must not be anywhere;
    running lines matching one are removed. ``key`` is what two lines are compared by (a device may
    print a secret otherwise than it was given: compare them redacted). ``unprinted``: default values
    the device does not print; such an intended line is in place when the stanza shows no value of its
    setting (a ``single_value`` one)."""
    out: list[Change] = []
    settings = [re.compile(rx) for rx in single_value]
    banned = [re.compile(rx) for rx in forbid]

    def has(run: Node, line: str) -> bool:
        return any(key(c.line) == key(line) for c in run.children)

    def setting(line: str) -> int | None:
        return next((i for i, rx in enumerate(settings) if rx.match(line)), None)

    def missing(run: Node | None, line: str) -> bool:
        if run is None:
            return True
        if line.startswith(negate + " "):
            return not negation_in_place(line, lambda x: has(run, x), negate)
        if line in unprinted and (slot := setting(line)) is not None:
            return not has(run, line) and any(setting(c.line) == slot for c in run.children)
        return not has(run, line)

    def walk(run: Node | None, want: Node, path: tuple[str, ...]) -> None:
        add = [c.line for c in want.children if not c.children and missing(run, c.line)]
        remove = []
        if run is not None:
            wanted = {key(c.line) for c in want.children}
            slots = {setting(line) for line in add if not line.startswith(negate + " ")} - {None}
            mine = bool(path) and owned(path[0])
            remove = [c.line for c in run.children if key(c.line) not in wanted
                      and (mine or (not c.children and setting(c.line) in slots))]
        if add or remove:  # a stanza's own lines first, then its sub-stanzas
            out.append(Change(path, add, remove, created=bool(path) and run is None))
        for c in want.children:
            if c.children:
                walk(run.find(c.line) if run else None, c, path + (c.line,))

    def sweep(run: Node, want: Node | None, path: tuple[str, ...]) -> None:
        """Forbidden lines anywhere in the running config (a stanza's header: the whole stanza)."""
        for c in run.children:
            if any(rx.match(c.line) for rx in banned):
                if want is not None and has(want, c.line):
                    continue
                ch = next((x for x in out if x.path == path), None)
                if ch is None:
                    out.append(ch := Change(path, [], []))
                if c.line not in ch.remove:
                    ch.remove.append(c.line)
            elif c.children:
                sweep(c, want.find(c.line) if want else None, path + (c.line,))

    walk(running, intended, ())
    if banned:
        sweep(running, intended, ())
    return out


def diff_text(changes: list[Change], negate: str) -> list[str]:
    """The diff for people: ``+``/``-`` lines under their stanza headers."""
    out = []
    for ch in changes:
        out.extend(f"  {' ' * i}{h}" for i, h in enumerate(ch.path))
        ind = " " * len(ch.path)
        out.extend(f"- {ind}{line}" for line in ch.remove)
        out.extend(f"+ {ind}{line}" for line in ch.add)
    return out


def commands(changes: list[Change], negate: str, stanza_exit: str, reverse: bool = False, defaults=(),
             fixed=()) -> list[str]:
    """Configuration-mode commands that apply the changes (``reverse``: that undo them); ``defaults``:
    the platform's unprinted defaults (:func:`negated`); ``fixed``: stanzas the platform cannot remove
    whole (FRR's ``line vty``): a created one is undone line by line."""
    out: list[str] = []
    gone: list[tuple[str, ...]] = []
    for ch in changes:
        if reverse and any(ch.path[:len(g)] == g for g in gone):
            continue  # inside a stanza that is removed whole
        if reverse and ch.created and ch.path[-1] not in fixed:
            gone.append(ch.path)
            out.extend(ch.path[:-1])
            out.append(f"{negate} {ch.path[-1]}")
            out.extend([stanza_exit] * (len(ch.path) - 1))
            continue
        add, remove = (ch.remove, ch.add) if reverse else (ch.add, ch.remove)
        out.extend(ch.path)
        out.extend(x for x in (negated(line, negate, defaults) for line in remove) if x not in add)
        out.extend(add)
        out.extend([stanza_exit] * len(ch.path))
    return out


# --- hier_config trees (drift) ---------------------------------------------------------------

def hconfig(platform: str, text: str = "") -> HConfig:
    """``text`` as a hier_config tree for the platform's driver, normalised first: comments,
    separators and mode exits dropped (as :func:`parse` does), and the platform's volatile lines."""
    plat = PLATFORMS[platform]
    volatile = [re.compile(rx) for rx in plat.volatile]
    lines = [raw.rstrip() for raw in text.splitlines()
             if not _structural(raw.strip()) and not any(rx.search(raw.strip()) for rx in volatile)]
    return get_hconfig(HierPlatform[plat.hier_config], "\n".join(lines))


def merge(into, other) -> None:
    """Add ``other``'s lines to ``into`` (hier_config nodes), a stanza both hold merged line by line:
    the intents of a device's links, whose global lines and shared stanzas (OSPF) repeat."""
    for child in other.children:
        have = into.get_child(equals=child.text)
        if have is None:
            into.add_deep_copy_of(child)
        else:
            merge(have, child)


# --- rendering ---------------------------------------------------------------------------------

def _env(template_dir: Path) -> Environment:
    env = Environment(loader=FileSystemLoader(template_dir), undefined=StrictUndefined, trim_blocks=True,
                      lstrip_blocks=True, keep_trailing_newline=True, **escape.jinja(escape.cli))
    env.filters["area"] = lambda n: str(ipaddress.IPv4Address(n))
    env.tests["match"] = lambda text, rx: re.match(rx, text) is not None
    env.filters["delimited"] = escape.cli_delimited
    return env


def _nearest(inv: Inventory, site: str, role: Role):
    """Management address of the nearest device with ``role`` up the site's ancestry, else the ops host."""
    for s in [inv.sites[site], *inv.ancestors(site)]:
        for d in sorted(inv.devices_by_site.get(s.id, [])):
            if inv.devices[d].role == role:
                return inv.devices[d].management
    return inv.network.address_plan.ops_host


def end_context(inv: Inventory, link, end, addresses: dict[str, ipaddress.IPv4Interface | None]) -> dict:
    """Everything a template needs for one end; ``addresses`` None for an end means unconfigured."""
    dev = inv.devices[end.device]
    peer = link.b if link.a == end else link.a
    cred = inv.credentials[dev.credentials]
    mon = _nearest(inv, dev.site, Role.monitor)
    addr = addresses.get(str(end))
    return {
        "device": dev, "interface": end.interface, "description": inv.interface(end).description,
        "address": addr, "peer": peer, "peer_address": addresses.get(str(peer)), "link": link,
        "bandwidth_mbps": link.bandwidth_mbps, "area": inv.link_area(link), "ospf": inv.network.ospf,
        "router_id": dev.loopback, "snmp_user": cred.snmp.user if cred.snmp else None,
        "syslog_host": mon, "ntp_server": mon, "management": inv.network.address_plan.management,
    }


def render(template_dir: Path, device, template: str, context: dict) -> str:
    """``<platform>/<template>`` rendered for ``device``; a platform without it is bad input."""
    try:
        tpl = _env(template_dir / device.platform).get_template(template)
    except TemplateNotFound:
        raise UsageError(f"device '{device.id}': platform {device.platform!r} has no {template.removesuffix('.j2')} template "
                         f"({template_dir / device.platform / template})") from None
    return tpl.render(**context)


def render_end(inv: Inventory, link, end, addresses, template_dir: Path = TEMPLATES) -> str:
    """The intended config of ``end`` (interface, OSPF, baseline lines) from ``<platform>/link.j2``."""
    return render(template_dir, inv.devices[end.device], "link.j2", end_context(inv, link, end, addresses))


def owns(interface: str):
    """The stanza of the link's interface is the link's own: its other lines are removed."""
    return lambda header: header.split()[0].lower() == "interface" and header.split()[-1] == interface
