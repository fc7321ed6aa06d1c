"""The SNMP trap and inform receiver: one per province (and one for the ministry's own sites), beside that
province's Alertmanager — `netops collect traps`, which `netops monitor up` runs in the monitor node's network
namespace like the collector, and `monitor down` ends.

Why the suite's own codec and not Debian's snmptrapd with a traphandle:

- SNMPv3 is collectors/wire.py's USM (RFC 3414/3826/7860: HMAC-SHA and SHA-2, AES-128/192/256), the code the
  collector already checks agents' answers with. snmptrapd accepts a v3 trap only from a user created with the
  sender's engine ID (``createUser -e ENGINEID``), and the inventory knows no engine IDs; here the keys are
  localized to the engine ID the message names, which only the holder of the password can authenticate;
- the receiver knows the inventory: the source address names the device, which gives the alert its site,
  level and province labels, its credentials (resolved from their references as the collector resolves them)
  and its platform's trap table (inventory/platforms.py). A traphandle is a process per trap that would have to
  load the inventory each time;
- it posts to Alertmanager's API itself, and what it drops is a metric, not a line in snmptrapd's log.

What is accepted; everything else is dropped, counted by reason (``netops_trap_dropped_total{reason}``) and never
alerts:

- the UDP source is the management address of a device in scope (else ``unknown_source``);
- SNMPv1 and v2c only from a device the inventory gives ``snmp_version: v2c``, with its community
  (``wrong_community``); a v2c InformRequest is acknowledged with a Response, once it is accepted;
- SNMPv3 only at authPriv, the inventory's level (``unsupported_sec_level``), from the device's user
  (``unknown_user_name``), with the right HMAC (``wrong_digest``), within the sender's time window
  (``not_in_time_window``: as RFC 3414 3.2.7b has a non-authoritative engine do, the first authentic message sets
  the receiver's notion of the sender's clock, which moves only forward; a replay older than 150 s is refused),
  decrypting (``decryption_error``). A v3 inform would need the receiver to be an authoritative engine (its own
  engine ID, discovery): not supported (``unsupported_pdu``); the devices send v3 traps;
- a trap whose snmpTrapOID is in ``platforms.STANDARD_TRAPS`` or the device platform's ``snmp_traps``
  (``unknown_trap``); anything undecodable is ``malformed``.

An accepted trap is an alert posted to Alertmanager (``/api/v2/alerts``): ``alertname`` and ``severity`` from the
platform table, the device's inventory labels (level, province, city, county, site, device), ``source="snmp-trap"``
and what it is about — ``ifindex`` and ``ifname`` (the trap's ifName or ifDescr) for an interface, ``entity`` (the
entity index) for a vendor entity trap. Alertmanager routes it by level as it routes Prometheus' alerts. Traps are
events: each alert ends after ``ttl`` seconds (the collector's own LinkDown takes over a lasting fault at its next
poll), and a clearing trap (linkUp, a vendor's resume trap) ends the alert it names on the same interface or entity
at once. Text the device sent (ifDescr, entPhysicalName, any varbind) is hostile: it reaches Alertmanager only
through ``escape.alert``.
"""
from __future__ import annotations

import asyncio
import datetime
import hmac
import json
import sys
import urllib.request
from dataclasses import dataclass, field

from jinbao_netops import escape
from jinbao_netops.inventory.platforms import PLATFORMS, STANDARD_TRAPS, Trap

from . import wire
from .snmp import Target

TRAP_V1, INFORM, TRAP_V2 = 0xA4, 0xA6, 0xA7
SYS_UPTIME = (1, 3, 6, 1, 2, 1, 1, 3, 0)
SNMP_TRAP_OID = (1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0)
V1_GENERIC = "1.3.6.1.6.3.1.1.5"                   # RFC 3584 3.1: v1 generic-trap n is snmpTraps.(n + 1)
IF_TABLES = ((1, 3, 6, 1, 2, 1, 2, 2, 1), (1, 3, 6, 1, 2, 1, 31, 1, 1, 1))   # ifTable, ifXTable: instance = ifIndex
IF_NAME, IF_DESCR = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 1), (1, 3, 6, 1, 2, 1, 2, 2, 1, 2)
ENT_PHYSICAL = (1, 3, 6, 1, 2, 1, 47, 1, 1, 1, 1)  # entPhysicalTable: instance = entPhysicalIndex
ENT_NAME, ENT_DESCR = ENT_PHYSICAL + (7,), ENT_PHYSICAL + (2,)
DROP_REASONS = ("unknown_source", "malformed", "wrong_community", "unsupported_sec_level", "unknown_user_name",
                "wrong_digest", "not_in_time_window", "decryption_error", "unsupported_pdu", "unknown_trap")
MAX_ENGINES = 4      # engine IDs remembered per device (an agent has one; a new one after a re-image)


@dataclass
class Source:
    """A device traps are accepted from: its collector target (address, version, credentials, labels) and the
    SNMPv3 engines it authenticated as (engine ID → wire.Engine)."""
    target: Target
    engines: dict = field(default_factory=dict)

    def traps(self) -> dict[str, Trap]:
        return {t.oid: t for t in (*STANDARD_TRAPS, *PLATFORMS[self.target.platform].snmp_traps)}


@dataclass
class Notification:
    device: str
    version: str
    oid: str
    varbinds: list


def _oid(t: tuple) -> str:
    return ".".join(map(str, t))


# --- decoding, as the module docstring says ---------------------------------------------------------
def _community(data: bytes, src: Source) -> tuple[int, int]:
    """(version, offset of the PDU) of a v1/v2c message with the device's community, or Dropped."""
    s, _ = wire.expect(data, 0, 0x30)
    version, i = wire.read_int(data, s)
    community, i = wire.read_octets(data, i)
    t = src.target
    if t.version != "v2c" or not hmac.compare_digest(community, t.community.encode()):
        raise wire.Dropped("wrong_community")
    return version, i


def _v1(data: bytes, i: int) -> tuple[str, list]:
    """snmpTrapOID (RFC 3584 3.1) and varbinds of a v1 Trap-PDU."""
    tag, s, _ = wire.header(data, i)
    if tag != TRAP_V1:
        raise wire.Dropped("unsupported_pdu")
    es, ee = wire.expect(data, s, 0x06)
    enterprise = _oid(wire.oid_tuple(data[es:ee]))
    _, j = wire.expect(data, ee, 0x40)                 # agent-addr: the UDP source is what names the device
    generic, j = wire.read_int(data, j)
    specific, j = wire.read_int(data, j)
    _, j = wire.expect(data, j, 0x43)                  # time-stamp
    vs, ve = wire.expect(data, j, 0x30)
    oid = f"{V1_GENERIC}.{generic + 1}" if 0 <= generic < 6 else f"{enterprise}.0.{specific}"
    return oid, wire.varbinds(data, vs, ve)


def _trap_oid(vbs: list) -> str:
    """An SNMPv2 notification's snmpTrapOID: its second varbind (RFC 3416 4.2.6)."""
    if len(vbs) < 2 or vbs[0][0] != SYS_UPTIME or vbs[1][0] != SNMP_TRAP_OID or not isinstance(vbs[1][1], str):
        raise wire.Dropped("malformed")
    return vbs[1][1]


def _v3(data: bytes, src: Source) -> list:
    """The varbinds of an authPriv SNMPv3 trap from the device's user, checked in RFC 3414 3.2's order."""
    t = src.target
    m = wire.read_v3(data)
    if t.version != "v3" or m.flags & 3 != 3:
        raise wire.Dropped("unsupported_sec_level")
    if m.user != t.user.encode() or not m.engine_id:
        raise wire.Dropped("unknown_user_name")
    if not wire.authentic(m, wire.localized_key(t.auth_key, m.engine_id, t.auth_protocol), t.auth_protocol):
        raise wire.Dropped("wrong_digest")
    eng = src.engines.get(m.engine_id) or wire.Engine(m.engine_id, m.boots, m.time)
    if not eng.timely(m.boots, m.time):
        raise wire.Dropped("not_in_time_window")
    if m.engine_id not in src.engines:
        if len(src.engines) >= MAX_ENGINES:
            src.engines.pop(next(iter(src.engines)))
        src.engines[m.engine_id] = eng
    try:
        buf, i, _ = wire.scoped_pdu(m, wire.privacy_key(t.priv_key, m.engine_id, t.auth_protocol, t.priv_protocol))
        tag, _, _, _, vbs = wire.decode_pdu(buf, i)
    except wire.WireError:
        raise wire.Dropped("decryption_error") from None
    if tag != TRAP_V2:
        raise wire.Dropped("unsupported_pdu")
    return vbs


def decode(data: bytes, src: Source) -> tuple[Notification, bytes | None]:
    """A message from ``src``'s address: the notification and the reply it needs (an inform's Response), or
    wire.Dropped with one of DROP_REASONS."""
    try:
        s, _ = wire.expect(data, 0, 0x30)
        version, _ = wire.read_int(data, s)
        if version == 3:
            vbs = _v3(data, src)
            return Notification(src.target.device, "v3", _trap_oid(vbs), vbs), None
        if version not in (0, 1):
            raise wire.Dropped("malformed")
        version, i = _community(data, src)
        if version == 0:
            oid, vbs = _v1(data, i)
            return Notification(src.target.device, "v1", oid, vbs), None
        tag, rid, _, _, vs, ve = wire.read_pdu(data, i)
        if tag not in (TRAP_V2, INFORM):
            raise wire.Dropped("unsupported_pdu")
        vbs = wire.varbinds(data, vs, ve)
        reply = wire.v2c_message(src.target.community.encode(), wire.pdu(wire.RESPONSE, rid, 0, 0, data[vs:ve])) \
            if tag == INFORM else None
        return Notification(src.target.device, "v2c", _trap_oid(vbs), vbs), reply
    except wire.Dropped:
        raise
    except wire.WireError:
        raise wire.Dropped("malformed") from None


# --- alerts ----------------------------------------------------------------------------------------
def _instance(vbs: list, tables: tuple[tuple, ...]) -> int | None:
    """The row index (last arc) of the first varbind in one of ``tables``' columns."""
    for oid, _ in vbs:
        if any(oid[:len(t)] == t and len(oid) == len(t) + 2 for t in tables):
            return oid[-1]
    return None


def _value(vbs: list, *columns: tuple) -> str | None:
    for col in columns:
        for oid, v in vbs:
            if oid[:-1] == col and isinstance(v, str) and v:
                return v
    return None


def subject(trap: Trap, n: Notification) -> dict[str, str]:
    """The labels naming what the trap is about: ifindex and ifname, or entity; none for a device's own trap. An
    entity is the entPhysicalIndex of its ENTITY-MIB varbinds, else the first object the notification carries (the
    physical index, first in both HUAWEI-ENTITY-TRAP-MIB's and HH3C-ENTITY-EXT-MIB's notifications)."""
    vbs = n.varbinds[2:] if n.version != "v1" else n.varbinds
    if trap.subject == "interface":
        index = _instance(vbs, IF_TABLES)
        name = _value(vbs, IF_NAME, IF_DESCR)
        return {**({"ifindex": str(index)} if index is not None else {}), **({"ifname": escape.alert(name)} if name else {})}
    if trap.subject == "entity":
        index = _instance(vbs, (ENT_PHYSICAL,))
        if index is None and vbs:
            index = vbs[0][1] if isinstance(vbs[0][1], int) else vbs[0][0][-1]
        return {"entity": str(index)} if index is not None else {}
    return {}


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _iso(t: datetime.datetime) -> str:
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Receiver:
    """Turns datagrams into Alertmanager alerts; counts what it receives, drops and posts. ``sources``: address →
    Source. ``post`` sends a list of alerts (the default: HTTP POST to ``alertmanager``'s /api/v2/alerts)."""

    def __init__(self, sources: dict[str, Source], alertmanager: str, ttl: float = 3600.0, post=None):
        self.sources, self.alertmanager, self.ttl = sources, alertmanager.rstrip("/"), ttl
        self.post = post or self._post
        self.received = dict.fromkeys(("v1", "v2c", "v3"), 0)
        self.dropped = dict.fromkeys(DROP_REASONS, 0)
        self.alerts = dict.fromkeys(("raised", "cleared"), 0)
        self.post_failures = 0
        self.open: dict[tuple, dict] = {}  # (device, alertname, subject labels) → the alert as posted

    def handle(self, data: bytes, address: str) -> tuple[list[dict], bytes | None]:
        """(alerts to post, reply to send) for one datagram from ``address``; a drop is counted, never raised."""
        try:
            src = self.sources.get(address)
            if src is None:
                raise wire.Dropped("unknown_source")
            n, reply = decode(data, src)
            trap = src.traps().get(n.oid)
            if trap is None:
                self.received[n.version] += 1
                raise wire.Dropped("unknown_trap")
        except wire.Dropped as e:
            self.dropped[e.reason] += 1
            return [], None
        self.received[n.version] += 1
        a = self.alert(src, trap, n)
        return [a] if a else [], reply

    def alert(self, src: Source, trap: Trap, n: Notification) -> dict | None:
        """The alert a trap raises, or the end of the open one it clears (posted again, ending now); None for a
        clearing trap with nothing open (its alert, if any, ends at its ttl)."""
        about = subject(trap, n)
        key = (n.device, trap.alert, tuple(sorted((k, v) for k, v in about.items() if k != "ifname")))
        now = _now()
        if trap.clear:
            opened = self.open.pop(key, None)
            if opened is None:
                return None
            self.alerts["cleared"] += 1
            return {**opened, "endsAt": _iso(now)}
        labels = {"alertname": trap.alert, "severity": trap.severity,
                  # an empty label is no label (as in Prometheus): a city device has no county
                  **{k: escape.alert(v) for k, v in src.target.labels.items() if v}, "source": "snmp-trap", **about}
        where = " ".join(f"{k}={v}" for k, v in about.items())
        site = src.target.labels.get("site", "")
        detail = "; ".join(f"{_oid(o)}={v.hex(':') if isinstance(v, bytes) else v}" for o, v in n.varbinds[:16])
        a = {"labels": labels,
             "annotations": {"summary_zh": escape.alert(f"设备 {n.device}（{site}）发来 SNMP trap {trap.alert} {where}".strip()),
                             "summary_en": escape.alert(f"Device {n.device} at {site} sent SNMP trap {trap.alert} {where}".strip()),
                             "trap_oid": n.oid, "varbinds": escape.alert(detail)},
             "startsAt": _iso(now), "endsAt": _iso(now + datetime.timedelta(seconds=self.ttl))}
        self.alerts["raised"] += 1
        if trap.subject != "device":
            self.open = {k: v for k, v in self.open.items() if v["endsAt"] > a["startsAt"]}  # those ended by their ttl go
            self.open[key] = a
        return a


    def _post(self, alerts: list[dict]) -> None:
        req = urllib.request.Request(f"{self.alertmanager}/api/v2/alerts", data=json.dumps(alerts).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(req, timeout=5) as r:
            r.read()

    def deliver(self, alerts: list[dict]) -> None:
        """Post; a failure is counted and logged on one line (the receiver goes on with the next trap)."""
        try:
            self.post(alerts)
        except OSError as e:
            self.post_failures += 1
            print(f"posting {len(alerts)} alert(s) to {self.alertmanager} failed 告警发送失败: {e}", file=sys.stderr,
                  flush=True)

    def metrics(self) -> bytes:
        """The receiver's counters in the Prometheus text format (collectors/METRICS.md)."""
        lines = ["# HELP netops_trap_received_total Notifications authenticated from devices in scope, by SNMP version.",
                 "# TYPE netops_trap_received_total counter",
                 *(f'netops_trap_received_total{{version="{v}"}} {n}' for v, n in self.received.items()),
                 "# HELP netops_trap_dropped_total Datagrams dropped without an alert, by reason.",
                 "# TYPE netops_trap_dropped_total counter",
                 *(f'netops_trap_dropped_total{{reason="{r}"}} {n}' for r, n in self.dropped.items()),
                 "# HELP netops_trap_alerts_total Alerts raised and cleared by traps.",
                 "# TYPE netops_trap_alerts_total counter",
                 *(f'netops_trap_alerts_total{{action="{a}"}} {n}' for a, n in self.alerts.items()),
                 "# HELP netops_trap_post_failures_total Posts to Alertmanager that failed.",
                 "# TYPE netops_trap_post_failures_total counter",
                 f"netops_trap_post_failures_total {self.post_failures}"]
        return ("\n".join(lines) + "\n").encode()


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, receiver: Receiver):
        self.receiver = receiver
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        alerts, reply = self.receiver.handle(data, addr[0])
        if reply is not None:
            self.transport.sendto(reply, addr)
        if alerts:  # Alertmanager is a network call: off the loop, so the next trap is read meanwhile
            asyncio.get_running_loop().run_in_executor(None, self.receiver.deliver, alerts)


async def listen(receiver: Receiver, host: str, port: int) -> asyncio.DatagramTransport:
    """Receive on UDP ``host:port`` until the transport is closed."""
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(lambda: _Protocol(receiver),
                                                                             local_addr=(host, port))
    return transport


def sources(targets: list[Target]) -> dict[str, Source]:
    return {t.address: Source(t) for t in targets}
