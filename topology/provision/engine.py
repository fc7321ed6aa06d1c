"""Provision or decommission one county link: allocate, render, back up, diff, push, verify,
roll back or save, record. One code path for every platform (the platform table and the
templates carry the differences). The steps that work on any set of devices — ``backup``,
``device_entry``, ``push`` (armed, checked, confirmed and saved), ``rollback`` and ``append_record`` —
are also the device hardening's (``harden.py``)."""
from __future__ import annotations

import asyncio
import fcntl
import getpass
import json
import os
import re
import socket
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from jinbao_netops.inventory import Inventory, load
from jinbao_netops.access import Access
from jinbao_netops.collectors.snmp import Poller, SnmpError
from jinbao_netops.collectors.targets import snmp_targets
from jinbao_netops.inventory.model import Level, LinkKind, LinkState, Role
from jinbao_netops.inventory.platforms import redact
from jinbao_netops.files import write_atomic
from jinbao_netops.errors import DeviceError, UsageError
from jinbao_netops.monitoring import silences

from . import allocate as al
from . import render as rd

# Test hook (documented in docs and the lab test): when set, the named template directory replaces
# the shipped one; the lab test points it at a deliberately broken copy to exercise the rollback.
TEMPLATES_ENV = "NETOPS_PROVISION_TEMPLATES"


class Busy(UsageError):
    """Another run is changing the same link."""


@dataclass
class Options:
    check: bool = False
    changes: Path | None = None       # where change records and backups go (default: <inventory>/changes;
                                      # a check run writes backups only where this names)
    templates: Path | None = None
    arm_minutes: int = 5              # native commit-confirm timer on platforms that have one
    verify_timeout: float = 40.0      # seconds to wait for the checks (OSPF needs a few hellos)
    port: int = 22
    snmp_port: int | None = None      # every device's SNMP on this port instead of its own snmp_port (the tests' doubles)
    step: object = field(default=lambda n=1, label=None: None)


@dataclass
class End:
    """One device a change touches: a link's end (``end`` its Endpoint), or a device hardened (``end`` None)."""
    end: object                       # Endpoint, or None
    device: object                    # Device
    session: object = None
    backup: str = ""
    intended: str = ""
    changes: list = field(default_factory=list)
    pushed: bool = False
    saved: bool = False

    @property
    def plat(self):
        return self.device.platform_info


def changes_dir(root: Path, opts: Options) -> Path:
    return opts.changes or (al.inventory_dir(root) / "changes")


@contextmanager
def change_locks(cdir: Path, devices: list[str], link_id: str | None = None):
    """One run per link at a time: a second one fails at once with a clear message. Then one run per
    device at a time (a native revert restores the whole device): a run for another county through
    the same city router, or hardening it, waits its turn. Devices are taken in name order, so two
    runs never deadlock."""
    (cdir / "backups").mkdir(parents=True, exist_ok=True)
    fds = []
    first = [f"link-{link_id}"] if link_id else []
    try:
        for i, name in enumerate([*first, *(f"device-{d}" for d in sorted(devices))]):
            fds.append(os.open(cdir / f".{name}.lock", os.O_RDWR | os.O_CREAT, 0o644))
            try:
                fcntl.flock(fds[-1], fcntl.LOCK_EX | (fcntl.LOCK_NB if i < len(first) else 0))
            except BlockingIOError:
                raise Busy(f"link '{link_id}': another netops run is changing it now; try again when it has finished") from None
        yield
    finally:
        for fd in fds:
            os.close(fd)


LINKS_LOG = "links.jsonl"


def history(cdir: Path, log: str = LINKS_LOG) -> list[dict]:
    f = cdir / log
    return [json.loads(x) for x in f.read_text(encoding="utf-8").splitlines() if x.strip()] if f.exists() else []


def append_record(cdir: Path, record: dict, log: str = LINKS_LOG) -> None:
    line = (json.dumps(record, ensure_ascii=False, default=str) + "\n").encode()
    cdir.mkdir(parents=True, exist_ok=True)
    fd = os.open(cdir / log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def _commands(e: End, reverse: bool = False) -> list[str]:
    """The commands that apply (or undo) an end's changes, in its platform's forms."""
    return rd.commands(e.changes, e.plat.negate, e.plat.stanza_exit, reverse, e.plat.unprinted, e.plat.fixed_stanzas)


def template_dir(opts: Options) -> Path:
    return opts.templates or (Path(os.environ[TEMPLATES_ENV]) if os.environ.get(TEMPLATES_ENV) else rd.TEMPLATES)


# --- checks ----------------------------------------------------------------------------------

def _snmp_ifname(access: Access, dev, address, port: int | None = None) -> str:
    """ifName of the interface that carries ``address`` (IP-MIB ipAdEntIfIndex, IF-MIB ifName), asked
    through the collectors' own SNMPv3 client: keys from the credential references, never in argv."""
    target, = snmp_targets(access.inv, [dev.id], access.environ, timeout=2.0, retries=1)
    target.port = port or target.port
    index_oid = f"1.3.6.1.2.1.4.20.1.2.{address}"

    async def ask() -> object:
        poller = Poller(concurrency=1)
        try:  # the client's socket belongs to this event loop: closed in it
            idx = (await poller.get(target, [index_oid])).get(index_oid)
            if not isinstance(idx, int):
                return None
            name_oid = f"1.3.6.1.2.1.31.1.1.1.1.{idx}"
            return (await poller.get(target, [name_oid])).get(name_oid)
        finally:
            poller.close()

    try:
        name = asyncio.run(ask())
    except SnmpError:
        return ""
    return name if isinstance(name, str) else ""


def _names(plat, name: str) -> set[str]:
    """The interface as the platform's show output may print it: in full or abbreviated."""
    short = name
    for long, abbr in plat.interface_short:
        short = short.replace(long, abbr)
    return {name, short}


def checks(access: Access, link, ends: list[End], addrs: dict, county: End, active: bool,
           snmp_port: int | None = None) -> list[dict]:
    """Run every check once; each result has name, ok and the evidence text."""
    out = []

    def add(name, ok, evidence):
        out.append({"check": name, "ok": bool(ok), "evidence": evidence.strip()[-600:]})

    for e, peer in ((ends[0], ends[1]), (ends[1], ends[0])):
        s, p, name = e.session, e.plat, e.end.interface
        text = s.cli(p.show_interface.format(name=name), check=False)
        add(f"{e.device.id}:{name} up 接口状态", re.search(p.interface_up, text), text[:400])
        nb = s.cli(p.show_ospf_neighbor, check=False)
        peer_ip = str(addrs[str(peer.end)].ip)
        # the peer's router id, a Full state and this interface (or the peer's address) on one line
        full = [ln for ln in nb.splitlines() if str(peer.device.loopback) in (words := set(ln.split()))
                and any(w.lower().startswith("full") for w in words) and words & (_names(p, name) | {peer_ip})]
        add(f"{e.device.id} OSPF neighbour {peer.device.id} Full 邻居", bool(full) == active, "\n".join(full) or nb)
        if active:
            if p.ping:
                cmd = p.ping.format(source=addrs[str(e.end)].ip, target=addrs[str(peer.end)].ip)
                pr = s.run(cmd, check=False)
                add(f"{e.device.id} ping {peer.device.id} across the link 链路连通", re.search(p.ping_ok, pr), pr)
            if "snmp" not in e.device.access:  # not managed over SNMP: nothing to see there
                continue
            ifname = _snmp_ifname(access, e.device, addrs[str(e.end)].ip, snmp_port)
            add(f"{e.device.id} SNMP ifName of {addrs[str(e.end)].ip} = {name} 网管可见", ifname == name,
                f"ipAdEntIfIndex → ifName {ifname or '(none)'}")
    mr = access.inv.first(access.inv.ministry.id, Role.router)  # what the county must reach
    p = county.plat
    if p.ping:
        cmd = p.ping.format(source=county.device.loopback, target=mr.loopback)
        pr = county.session.run(cmd, check=False)
        add(f"{county.device.id} → {mr.id} ministry reachable 部级可达", re.search(p.ping_ok, pr), pr)
    return out


def verify(access: Access, link, ends, addrs, county, active, timeout: float, snmp_port: int | None = None) -> list[dict]:
    """Repeat the checks until all pass or ``timeout`` seconds have gone by; the last round is the evidence."""
    deadline = time.monotonic() + timeout
    while True:
        res = checks(access, link, ends, addrs, county, active, snmp_port)
        if all(r["ok"] for r in res) or time.monotonic() > deadline:
            return res
        time.sleep(1)


# --- the change -------------------------------------------------------------------------------

def who() -> str:
    """A change's author, as its record and its maintenance window name it."""
    return f"{getpass.getuser()}@{socket.gethostname()}"


def _record_base(action: str, link, alloc) -> dict:
    return {"when": datetime.now(UTC).isoformat(timespec="seconds"),
            "who": who(), "action": action, "link": link.id,
            "allocation": alloc.as_dict() if alloc else None}


def _check_templates(inv: Inventory, link, opts: Options) -> None:
    """A missing template is bad input: found before any device or file is touched."""
    tdir = template_dir(opts)
    for e in link.ends():
        dev = inv.devices[e.device]
        if not (tdir / dev.platform / "link.j2").is_file():
            raise UsageError(f"device '{dev.id}': platform {dev.platform!r} has no link template "
                             f"({tdir / dev.platform / 'link.j2'})")


def _open_ends(access: Access, inv: Inventory, link) -> list[End]:
    """A session to each end; an unreachable device is a DeviceError before anything is written."""
    ends = [End(e, inv.devices[e.device]) for e in (link.a, link.b)]
    try:
        for e in ends:
            e.session = access.session(e.device.id)
    except DeviceError as x:
        raise DeviceError(x.device, f"{x.detail} (nothing pushed 未下发任何配置)") from None
    return ends


def rollback(ends: list[End]) -> list[dict]:
    """Undo what was pushed; then the running config must equal the backup byte for byte."""
    out = []
    for e in ends:
        if not e.pushed:
            continue
        cmds = _commands(e, reverse=True)
        err, now = "", None
        try:
            cmds = e.session.revert(cmds)
            if e.saved:  # saved before the other end failed: the saved config goes back too
                e.session.save()
            now = e.session.show_running()
        except DeviceError as x:  # unreachable now: an armed change still reverts when its timer runs out
            err = str(x)
        out.append({"device": e.device.id, "commands": [redact(e.device.platform, c) for c in cmds],
                    "identical": now == e.backup, "error": err})
    return out


def change(root: Path, link_id: str, action: str, opts: Options, environ=None) -> dict:
    """Provision (action "provision") or decommission one link. Returns the result (also recorded).
    A check run takes no locks and writes nothing (backups only into ``opts.changes`` if given).
    ``environ`` resolves the credential references (default: the process environment)."""
    cdir = changes_dir(root, opts)
    inv = load(root)
    with Access(inv, environ, port=opts.port) as access:
        return _change(root, inv, link_id, action, opts, cdir, access)


def _change(root: Path, inv: Inventory, link_id: str, action: str, opts: Options, cdir: Path, access: Access) -> dict:
    link = inv.links[link_id]
    _check_templates(inv, link, opts)
    al.allocate(inv, link)  # a full pool, too, is found before any device is touched
    locks = nullcontext() if opts.check else change_locks(cdir, [e.device for e in link.ends()], link_id)
    with locks:
        ends = _open_ends(access, inv, link)  # before the allocation is written: unreachable changes nothing
        inv, alloc = al.reserve(root, link_id, write=action == "provision" and not opts.check)
        link = inv.links[link_id]
        county = next(e for e in ends if inv.is_uplink(link, e.device.id))
        addrs = dict(alloc.ends)
        opts.step(1, "allocated 已分配地址")
        want = addrs if action == "provision" else {}
        return _apply(root, inv, link, action, alloc, addrs, want, ends, county, cdir, opts, access)


def _apply(root, inv, link, action, alloc, addrs, want, ends, county, cdir, opts, access: Access) -> dict:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    # the change id: the stamp its backups carry, the action and the link
    result = {"change": f"{stamp}-{action}-{link.id}", **_record_base(action, link, alloc), "devices": {}}
    for e in ends:
        bfile = backup(e, cdir, stamp, opts)
        e.intended = rd.render_end(inv, link, e.end, want, template_dir(opts))
        e.changes = rd.diff(rd.parse(e.backup), rd.parse(e.intended), rd.owns(e.end.interface), e.plat.negate)
        result["devices"][e.device.id] = device_entry(e, bfile)
    opts.step(1, "diff 差异")
    if opts.check:
        return {**result, "result": "check", "ok": True}
    target = LinkState.active if action == "provision" else LinkState.planned
    if not any(e.changes for e in ends) and link.state == target:
        return {**result, "result": "no_change", "ok": True}
    # the devices' alerts silenced from the push to the end of the verification or rollback; the change
    # record written when the window has ended (so it says whether the silence was expired)
    try:
        with silences.maintenance(inv, [e.device.id for e in ends if e.changes], result["change"],
                                  f"{action} link {link.id}", result["who"]) as result["maintenance"]:
            try:
                evidence = push(ends, opts, result, lambda: verify(access, link, ends, addrs, county, action == "provision",
                                                                    opts.verify_timeout, opts.snmp_port))
            except KeyboardInterrupt:  # Ctrl-C mid-change: undo what reached the devices, record it, then stop (exit 130)
                result["verification"] = [{"check": "interrupted 已中断", "ok": False, "evidence": "KeyboardInterrupt (Ctrl-C)"}]
                result["rollback"] = rollback(ends)
                result["result"], result["ok"] = "interrupted", False
                raise
            if not all(c["ok"] for c in evidence):
                result["rollback"] = rollback(ends)
                result["result"], result["ok"] = "rolled_back", False
                return result
            with al.locked(root):
                al.record_link(root, link.id, {k: (str(v) if action == "provision" else None) for k, v in addrs.items()}, target)
            result["result"], result["ok"] = "applied", True
    finally:
        if "result" in result:
            append_record(cdir, result)
    opts.step(1, "saved 已保存")
    return result


def backup(e: End, cdir: Path, stamp: str, opts: Options) -> Path | None:
    """Read the device's running config into ``e.backup`` and keep it in the change directory's
    backups/ (a check run: only where ``opts.changes`` names). Returns the file, or None."""
    e.backup = e.session.show_running()
    if opts.check and not opts.changes:
        return None
    bfile = cdir / "backups" / f"{stamp}-{e.device.id}.cfg"
    bfile.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(bfile, e.backup, 0o600)  # a whole running config, secrets included
    return bfile


def device_entry(e: End, bfile: Path | None) -> dict:
    """What the change record and the output say of one device: its diff and commands, redacted."""
    p = e.device.platform
    return {"platform": p, "backup": str(bfile) if bfile else None,
            "diff": [redact(p, x) for x in rd.diff_text(e.changes, e.plat.negate)],
            "commands": [redact(p, x) for x in _commands(e)]}


def push(ends: list[End], opts: Options, result: dict, check) -> list[dict]:
    """Push each device's commands armed, run ``check()`` (the evidence: a list of {check, ok,
    evidence}), and when every check passes confirm and save each device. Returns the evidence (also
    in ``result``); a device failing is a failed check, not an exception."""
    try:
        for e in ends:
            if e.changes:
                e.pushed = True
                e.session.configure(_commands(e), arm_minutes=opts.arm_minutes)
        opts.step(1, "pushed 已下发")
        evidence = check()
    except DeviceError as x:
        evidence = [{"check": "push 下发", "ok": False, "evidence": str(x)}]
    result["verification"] = evidence
    opts.step(1, "verified 已验证")
    if all(c["ok"] for c in evidence):
        try:
            for e in ends:
                e.session.confirm()
                e.session.save()
                e.saved = True
        except DeviceError as x:  # a session lost now: roll back what can be (an armed timer does the rest)
            evidence.append({"check": "confirm and save 确认并保存", "ok": False, "evidence": str(x)})
    return evidence


# --- finding the link ---------------------------------------------------------------------------

def county_link(root: Path, county: str, opts: Options) -> str:
    """The county's planned uplink; once provisioned by netops (change record), the same link again,
    so a rerun is a no-op."""
    inv = load(root)
    found = al.county_uplink(inv, county)
    if found:
        return found[0].id
    done = {r["link"] for r in history(changes_dir(root, opts)) if r.get("result") == "applied"
            and r.get("action") == "provision"}
    cands = [lid for lid in sorted(inv.links) if lid in done and inv.links[lid].state == LinkState.active
             and any(inv.devices[e.device].site == county for e in inv.links[lid].ends())]
    if cands:
        return cands[0]
    raise UsageError(f"{root}: site '{county}': no planned county link (links with state: planned that lead to its city)")


def decommission_link(root: Path, link_id: str) -> str:
    inv = load(root)
    link = inv.links.get(link_id)
    if link is None:
        raise UsageError(f"{root}: link '{link_id}': unknown link")
    if link.kind == LinkKind.lan or not any(inv.is_uplink(link, e.device) and inv.site_of(e.device).level == Level.county
                                            for e in link.ends()):
        raise UsageError(f"{root}: link '{link_id}': not a county uplink")
    county = next(inv.site_of(e.device) for e in link.ends() if inv.is_uplink(link, e.device))
    others = [lid for lid in inv.links_by_device.get(next(e.device for e in link.ends() if inv.is_uplink(link, e.device)), [])
              if lid != link_id and inv.links[lid].state == LinkState.active and inv.links[lid].kind != LinkKind.lan]
    if link.state != LinkState.active:
        if inv.interface(link.a).address is None:
            raise UsageError(f"{root}: link '{link_id}': field 'state': already planned and unaddressed (nothing to decommission)")
    if not others:
        raise UsageError(f"{root}: link '{link_id}': the only active uplink of county '{county.id}'; decommissioning it would cut the county off")
    return link_id

