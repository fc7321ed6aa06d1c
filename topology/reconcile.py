"""Reconciliation: the inventory vs what the network's devices report (`netops inventory reconcile`).

Each network device in scope is read through the access layer with the platform table's ``reconcile``
commands (its interfaces with their state and addresses, its OSPF neighbours, its LLDP neighbours where it
runs LLDP) and compared with the model:

* a declared interface the device does not have, or whose address differs;
* an active link whose end is shut down or down, has no OSPF adjacency to the other end (point-to-point
  links between two network devices; a LAN is the servers' business), or whose LLDP neighbour is missing
  or another device or port (where the end runs LLDP and the far end is a network device not known to lack it);
* an interface with an LLDP or OSPF neighbour that no active link of the inventory explains: cabled but not
  in the inventory (OSPF on a planned link: in service though planned).

Planned links are expected unconfigured: a planned link already cabled is reported as information, not as a
difference. Every difference names the inventory file, object and field to edit, as validation does, and what
the network shows (device-reported text is data: renderers escape it).

Where the model names a device's chassis ``serial`` or ``software`` version, the device is also asked over SNMP
(the collector's client, the inventory's SNMPv3 credentials): sysDescr, read as the platform table's
``snmp_software`` says, and the serial numbers of ENTITY-MIB's chassis entities (a stack has one per member: the
sets are compared). A device that does not report one (net-snmp has no ENTITY-MIB; a sysDescr in an unknown form)
gets a note, not a difference; a device with neither field set is not asked.
"""
from __future__ import annotations

import asyncio
import ipaddress

from jinbao_netops.access import Access, network_devices, read_each
from jinbao_netops.collectors.parsers import parse_outputs
from jinbao_netops.collectors.snmp import SYS_DESCR, Poller, SnmpError, Stats
from jinbao_netops.collectors.targets import snmp_targets
from jinbao_netops.errors import FINDINGS, OK, PARTIAL, UsageError
from jinbao_netops.inventory import Inventory, load
from jinbao_netops.inventory.model import LinkKind, LinkState


def parse(platform, outputs: dict[str, str]) -> dict:
    """What the device reports, from the outputs of its platform's ``reconcile`` commands: interfaces by
    their full name, OSPF neighbours, LLDP neighbours (None: the device runs no LLDP). A device whose
    interface table cannot be read is a ValueError (nothing could be compared)."""
    rec = parse_outputs(platform.reconcile, outputs)
    if "interface_state" not in rec:
        raise ValueError(f"no interface table in the output of {platform.reconcile[0][0]!r} 无法读取接口表")
    name = platform.full_name
    return {"interfaces": {name(i["name"]): i for i in rec["interface_state"]},
            "ospf": [{**n, "interface": name(n["interface"])} for n in rec.get("ospf_neighbors", [])],
            "lldp": None if "lldp_neighbors" not in rec else
            [{**n, "interface": name(n["interface"])} for n in rec["lldp_neighbors"]]}


def read(session) -> dict[str, str]:
    """The outputs of the platform's reconcile commands (a failing command gives its error text: the
    parser finds nothing in it)."""
    return {cmd: session.run(cmd, check=False) for cmd, _ in session.plat.reconcile}


ENT_PHYSICAL_CLASS = "1.3.6.1.2.1.47.1.1.1.1.5"     # ENTITY-MIB entPhysicalClass
ENT_PHYSICAL_SERIAL = "1.3.6.1.2.1.47.1.1.1.1.11"   # entPhysicalSerialNum
CHASSIS = 3                                         # entPhysicalClass chassis(3)
SNMP_CONCURRENCY = 32                               # devices asked at once


async def _identity(poller: Poller, t, dev) -> dict:
    """What one device reports of itself over SNMP: its software version (where the model names one) from
    sysDescr, its chassis serial numbers (where the model names any): every chassis entity's, in index order,
    those with an empty serial left out."""
    rec = {"status": "read"}
    if dev.software:
        descr = (await poller.get(t, [SYS_DESCR])).get(SYS_DESCR)
        rec["sys_descr"] = " ".join(descr.split()) if isinstance(descr, str) else ""
        rec["software"] = dev.platform_info.software_version(rec["sys_descr"])
    if dev.serial:
        classes = (await poller.walk(t, Stats(), asyncio.Semaphore(1), {"c": ENT_PHYSICAL_CLASS}))["c"]
        chassis = sorted(i for i, c in classes.items() if c == CHASSIS and isinstance(i, int))
        serials = await poller.get(t, [f"{ENT_PHYSICAL_SERIAL}.{i}" for i in chassis]) if chassis else {}
        rec["serials"] = [v.strip() for v in serials.values() if isinstance(v, str) and v.strip()]
    return rec


def identities(inv: Inventory, devices: list[str], environ=None) -> dict[str, dict]:
    """What the devices among ``devices`` whose model names a serial or software version report over SNMP, by
    device: status "read" (with ``software`` / ``serials``), "unreachable" or "not_read" (no SNMP access declared),
    the latter two with the reason as ``error``. Devices are asked concurrently; one failing costs only itself."""
    out, targets = {}, []
    for d in devices:
        if not (inv.devices[d].serial or inv.devices[d].software):
            continue
        try:
            t = snmp_targets(inv, [d], environ, timeout=2.0, retries=1)
        except UsageError as e:  # a credential that cannot be resolved fails this device only
            out[d] = {"status": "unreachable", "error": str(e)}
            continue
        if t:
            targets += t
        else:
            out[d] = {"status": "not_read", "error": "no SNMP access declared (access) 未声明SNMP访问"}

    async def ask() -> list:
        poller, gate = Poller(concurrency=SNMP_CONCURRENCY), asyncio.Semaphore(SNMP_CONCURRENCY)

        async def one(t):
            async with gate:
                try:
                    return await _identity(poller, t, inv.devices[t.device])
                except SnmpError as e:
                    return {"status": "unreachable", "error": f"SNMP: {e}"}
                except OSError as e:
                    return {"status": "unreachable", "error": f"SNMP transport: {e}"}
        try:  # the client's socket belongs to this event loop: closed in it
            return await asyncio.gather(*(one(t) for t in targets))
        finally:
            poller.close()

    if targets:
        out.update(zip((t.device for t in targets), asyncio.run(ask())))
    return out


def _has_address(seen: list[str], want) -> bool:
    """The device shows ``want`` (an IPv4Interface); where it prints no mask (IOS's brief view), the address."""
    for a in seen:
        got = ipaddress.IPv4Interface(a)
        if got == want or ("/" not in a and got.ip == want.ip):
            return True
    return False


def _same_system(reported: str, device: str) -> bool:
    """An LLDP system name is the device's hostname, maybe qualified (xa-r1.gd.example) or cut (IOS: 20)."""
    name = reported.split(".")[0].lower()
    return name == device or (len(reported) >= 20 and device.startswith(name))


class _Report:
    def __init__(self, inv: Inventory):
        self.inv, self.differences, self.info = inv, [], []

    def add(self, obj, noun: str, field: str, kind: str, message: str, network: str = "", info: bool = False) -> None:
        rec = {"file": obj.where(), "object": f"{noun} '{obj.id}'", "field": field, "kind": kind,
               "message": message, "network": network}
        (self.info if info else self.differences).append(rec)


def compare(inv: Inventory, seen: dict[str, dict], reported: dict[str, dict] | None = None) -> _Report:
    """The differences between the inventory and ``seen`` (what each device read reports, by device id) and
    ``reported`` (what devices report of themselves over SNMP: :func:`identities`)."""
    r = _Report(inv)
    explained: set[tuple[str, str]] = set()  # (device, interface) of an active link: its neighbours are checked there
    for link in sorted(inv.links.values(), key=lambda lk: lk.id):
        ends = [(side, e) for side, e in (("a", link.a), ("b", link.b)) if e.device in seen]
        if not ends:
            continue
        if link.state == LinkState.planned:
            _planned(r, link, ends, seen)
            continue
        explained |= {(e.device, e.interface) for _, e in ends}
        _active(r, inv, link, ends, seen)
    planned = {(e.device, e.interface) for lk in inv.links.values() if lk.state == LinkState.planned for e in lk.ends()}
    for d, obs in sorted(seen.items()):
        _device(r, inv, d, obs, explained | planned)
    for d, got in sorted((reported or {}).items()):
        _identity_differences(r, inv.devices[d], got)
    return r


def _identity_differences(r: _Report, dev, got: dict) -> None:
    """The model's serial and software version against what the device reports (an unreachable device is
    reported as such, not here)."""
    if got["status"] == "not_read":
        for field in ("serial", "software"):
            if getattr(dev, field) is not None:
                r.add(dev, "device", field, "not_compared", f"not compared: {got['error']} 未核对", info=True)
    if got["status"] != "read":
        return
    if dev.software:
        seen = got["software"]
        if seen is None:
            r.add(dev, "device", "software", "not_compared",
                  f"sysDescr names no software version in the {dev.platform} form: not compared 未能读出软件版本",
                  got["sys_descr"] or "no sysDescr", info=True)
        elif seen.casefold() != dev.software.casefold():
            r.add(dev, "device", "software", "software", f"the device runs {seen}, not {dev.software} 软件版本不符", seen)
    if dev.serial:
        seen = got["serials"]
        if not seen:
            r.add(dev, "device", "serial", "not_compared",
                  "the device reports no chassis serial number (ENTITY-MIB): not compared 设备未报告机框序列号", "none",
                  info=True)
        elif {s.casefold() for s in seen} != {s.casefold() for s in dev.serial}:
            r.add(dev, "device", "serial", "serial",
                  f"the chassis serial number is {', '.join(seen)}, not {', '.join(dev.serial)} 序列号不符", ", ".join(seen))


def _planned(r: _Report, link, ends, seen) -> None:
    noted = False
    for side, e in ends:
        obs = seen[e.device]
        lldp = [n for n in obs["lldp"] or [] if n["interface"] == e.interface]
        ospf = [n for n in obs["ospf"] if n["interface"] == e.interface]
        if ospf:
            r.add(link, "link", "state", "planned_in_service",
                  f"planned, but {e} has an OSPF neighbour: in service? set state: active 规划中但已有OSPF邻居",
                  f"OSPF {ospf[0]['neighbor_id']} {ospf[0]['state']}")
        elif lldp:
            r.add(link, "link", "state", "planned_cabled", f"planned; {e} is already cabled 规划中，线路已接通",
                  f"LLDP {lldp[0]['system']}:{lldp[0]['port']}", info=True)
        noted = noted or bool(ospf or lldp)
    if not noted:
        r.add(link, "link", "state", "planned", "planned: expected unconfigured 规划中，预期未配置", info=True)


def _active(r: _Report, inv: Inventory, link, ends, seen) -> None:
    usable = []
    for side, e in ends:
        itf = seen[e.device]["interfaces"].get(e.interface)
        if itf is None:
            continue  # reported once, on the device's interface
        if not itf["admin_up"]:
            r.add(link, "link", side, "shutdown", f"{e} is shut down 接口已关闭", "admin down")
        elif not itf["oper_up"]:
            r.add(link, "link", side, "down", f"{e} is down (no line) 接口down（线路不通）", "line protocol down")
        else:
            usable.append((side, e))
    whole = len(usable) == len(ends)  # a down end explains a missing adjacency and neighbour, not a wrong one
    if whole:
        _ospf(r, inv, link, usable, seen)
    _lldp(r, inv, link, usable, seen, whole)


def _ospf(r: _Report, inv: Inventory, link, ends, seen) -> None:
    if link.kind == LinkKind.lan or any(inv.devices[e.device].platform_info.kind != "network" for e in link.ends()):
        return
    found = []
    for side, e in ends:
        other = link.b if e is link.a else link.a
        rid = inv.devices[other.device].loopback
        nbs = [n for n in seen[e.device]["ospf"] if n["interface"] == e.interface]
        if any(n["full"] and (rid is None or n["neighbor_id"] == str(rid)) for n in nbs):
            return
        found += [f"{e}: {n['neighbor_id']} {n['state']}" for n in nbs]
    r.add(link, "link", "(object)", "no_ospf", "no Full OSPF adjacency between its ends 两端无OSPF完全邻接",
          "; ".join(found) or "no OSPF neighbour")


def _lldp(r: _Report, inv: Inventory, link, ends, seen, whole: bool) -> None:
    for side, e in ends:
        other = link.b if e is link.a else link.a
        if seen[e.device]["lldp"] is None or inv.devices[other.device].platform_info.kind != "network" or \
                (other.device in seen and seen[other.device]["lldp"] is None):
            continue  # no evidence: this end runs no LLDP, or the far end is known not to (a server, a device without it)
        port = inv.devices[other.device].platform_info.full_name
        nbs = [n for n in seen[e.device]["lldp"] if n["interface"] == e.interface]
        if any(_same_system(n["system"], other.device) and port(n["port"]) == other.interface for n in nbs):
            continue
        if nbs:
            r.add(link, "link", side, "lldp_other", f"{e} is cabled to another port, not {other} 接线与清单不符",
                  ", ".join(f"LLDP {n['system']}:{n['port']}" for n in nbs))
        elif whole:
            r.add(link, "link", side, "no_lldp", f"{e} sees no LLDP neighbour ({other} expected) 无LLDP邻居", "none")


def _device(r: _Report, inv: Inventory, d: str, obs: dict, expected: set) -> None:
    """``expected``: the (device, interface) ends of the inventory's links, active or planned."""
    dev = inv.devices[d]
    for name, itf in dev.interfaces.items():
        got = obs["interfaces"].get(name)
        if got is None:
            r.add(dev, "device", f"interfaces.{name}", "missing", "the device has no such interface 设备上无此接口",
                  "absent")
        elif itf.address and not _has_address(got["addresses"], itf.address):
            r.add(dev, "device", f"interfaces.{name}.address", "address",
                  f"the device has {', '.join(got['addresses']) or 'no address'}, not {itf.address} 地址不符",
                  ", ".join(got["addresses"]) or "none")
    cabled: dict[str, list[str]] = {}
    for n in obs["lldp"] or []:
        cabled.setdefault(n["interface"], []).append(f"LLDP {n['system']}:{n['port']}")
    for n in obs["ospf"]:
        cabled.setdefault(n["interface"], []).append(f"OSPF {n['neighbor_id']} {n['state']}")
    for name, what in sorted(cabled.items()):
        if (d, name) in expected:
            continue
        r.add(dev, "device", f"interfaces.{name}", "not_in_inventory",
              f"{name} is cabled to a neighbour but no link of the inventory has it 已布线但清单中无此链路",
              ", ".join(what))


def check(inv: Inventory, devices: list[str], access: Access) -> tuple[list[dict], _Report]:
    """One record per network device in ``devices`` (read, unreachable, not read or unreadable) and
    the comparison of what the devices read report."""
    out, seen = [], {}
    net = network_devices(inv, devices)
    reported = identities(inv, net, access.environ)
    for d, outputs, failure in read_each(access, net, read):
        dev = inv.devices[d]
        rec = {"device": d, "name": dev.name or "", "site": dev.site, "platform": dev.platform,
               **({"snmp": reported[d]} if d in reported else {})}
        if failure:
            out.append({**rec, **failure})
            continue
        try:
            seen[d] = parse(dev.platform_info, outputs)
        except ValueError as e:
            out.append({**rec, "status": "unreadable", "error": str(e)})
            continue
        out.append({**rec, "status": "read", "interfaces": len(seen[d]["interfaces"]),
                    "ospf_neighbors": len(seen[d]["ospf"]), "lldp": seen[d]["lldp"] is not None})
    return out, compare(inv, seen, reported)


def line(diff: dict) -> str:
    """One difference as one line: the file, object and field to edit, and what the network shows."""
    shows = f" — network 网络: {diff['network']}" if diff["network"] else ""
    return f"{diff['file']}: {diff['object']}: field '{diff['field']}': {diff['message']}{shows}"


def run(root, scope: str | None, environ=None, port: int | None = None) -> dict:
    """The reconciliation of every network device in ``scope``: exit status 3 when a device could not be
    read (over SSH, or over SNMP where its serial or software is compared), else 1 on any difference, else 0."""
    inv = load(root)
    with Access(inv, environ, port=port) as access:
        devices, report = check(inv, inv.scope(scope), access)
    failed = [r["device"] for r in devices if r["status"] in ("unreachable", "unreadable")
              or r.get("snmp", {}).get("status") == "unreachable"]
    code = PARTIAL if failed else FINDINGS if report.differences else OK
    return {"scope": scope, "devices": devices, "differences": report.differences, "info": report.info,
            "summary": {"differences": len(report.differences), "info": len(report.info),
                        "devices": len(devices), "failed": len(failed)},
            "failed": failed, "code": code, "ok": code == OK}
