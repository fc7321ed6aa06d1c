"""SNMP polling with asyncio: one UDP socket per process, many targets at once.

Per target and cycle:
1. one GET of the scalars (sysUpTime, sysName, sysObjectID, ifTableLastChange); an agent whose view hides
   the system group still answers it, and is up: reachability and data are separate facts;
2. the label columns (ifName, ifAlias, ifDescr — the name where ifXTable is absent) are walked when the
   cache is empty, the agent restarted (sysUpTime went back), ifTableLastChange moved, an ifIndex is not
   in the cache, or ``label_refresh`` seconds have passed (many agents do not implement ifTableLastChange);
   with them, where the platform's sensors depend on it, sysDescr (the release that decides a unit);
3. the counter/state columns are walked with GETBULK, several columns per PDU, split into at most
   ``inflight`` concurrent walks (the per-device in-flight limit); a device that showed an interface
   without an HC counter or ifHighSpeed also gets the ifTable's 32-bit counters and ifSpeed from then on;
4. health: the vendor columns the platform table names for the sysObjectID's enterprise (CPU, memory,
   temperature, fans, power supplies, transceiver powers), else HOST-RESOURCES-MIB; sensors told apart by their
   entity's name (entPhysicalName) have the names of their entities cached like the labels, and an entity not seen
   before named by a GET at once.
Each of these tables is walked on its own until the device deadline: what answered is kept, what did not
is named in ``Result.tables`` (per-table freshness) instead of costing the device's whole round.

Requests go through the purpose-built codec in collectors/wire.py: SNMPv2c, and SNMPv3 authPriv with
SHA or SHA-224/256/384/512 and AES-128/192/256 (SHA/AES is the inventory's default).

Every request has its own timeout and retry count (counted into the self-metrics), every device a hard
deadline and the cycle one more; a device that does not answer, or answers garbage, only costs its own
deadline: whatever goes wrong while polling one device is that device's error, never the cycle's.

Counters are exported monotonic: deltas are accumulated across polls, a counter that went back without
a restart wrapped (at 2^32 or 2^64), one that went back with sysUpTime is counted from zero.
"""
from __future__ import annotations

import asyncio
import functools
import math
import re
import time
from dataclasses import dataclass, field

from jinbao_netops.inventory.loader import paused_gc
from jinbao_netops.inventory.platforms import PLATFORMS, EnvSensor

from . import IF_STATUS, wire

SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
SYS_OBJECT_ID = "1.3.6.1.2.1.1.2.0"
SYS_NAME = "1.3.6.1.2.1.1.5.0"
IF_TABLE_LAST_CHANGE = "1.3.6.1.2.1.31.1.5.0"
SCALARS = (SYS_UPTIME, SYS_OBJECT_ID, SYS_NAME, IF_TABLE_LAST_CHANGE)
SYS_DESCR = "1.3.6.1.2.1.1.1.0"                       # the release, where a sensor's unit depends on it
ENT_PHYSICAL_NAME = "1.3.6.1.2.1.47.1.1.1.1.7"        # ENTITY-MIB: what a sensor is, where its type does not say

IF_LABELS = {"name": "1.3.6.1.2.1.31.1.1.1.1",       # ifName (ifXTable)
             "alias": "1.3.6.1.2.1.31.1.1.1.18",     # ifAlias (ifXTable)
             "descr": "1.3.6.1.2.1.2.2.1.2"}         # ifDescr: the name where ifXTable is absent
# counter column → (OID, width in bits)
IF_COUNTERS = {
    "in_octets": ("1.3.6.1.2.1.31.1.1.1.6", 64),        # ifHCInOctets
    "out_octets": ("1.3.6.1.2.1.31.1.1.1.10", 64),      # ifHCOutOctets
    "in_unicast_packets": ("1.3.6.1.2.1.31.1.1.1.7", 64),
    "out_unicast_packets": ("1.3.6.1.2.1.31.1.1.1.11", 64),
    "in_errors": ("1.3.6.1.2.1.2.2.1.14", 32),
    "out_errors": ("1.3.6.1.2.1.2.2.1.20", 32),
    "in_discards": ("1.3.6.1.2.1.2.2.1.13", 32),
    "out_discards": ("1.3.6.1.2.1.2.2.1.19", 32),
}
# the ifTable's 32-bit counters, read for the interfaces without an HC counter (no ifXTable, some sub-interfaces)
IF_COUNTERS_32 = {
    "in_octets": "1.3.6.1.2.1.2.2.1.10",                # ifInOctets
    "out_octets": "1.3.6.1.2.1.2.2.1.16",               # ifOutOctets
    "in_unicast_packets": "1.3.6.1.2.1.2.2.1.11",       # ifInUcastPkts
    "out_unicast_packets": "1.3.6.1.2.1.2.2.1.17",      # ifOutUcastPkts
}
IF_STATE = {
    "admin_status": "1.3.6.1.2.1.2.2.1.7",
    "oper_status": "1.3.6.1.2.1.2.2.1.8",
    "speed_mbps": "1.3.6.1.2.1.31.1.1.1.15",            # ifHighSpeed
}
IF_SPEED_32 = "1.3.6.1.2.1.2.2.1.5"                     # ifSpeed (bit/s, saturates at 4.29 Gbit/s)
# the legacy columns, walked only for devices that showed an interface without the HC/ifXTable column
IF_LEGACY = {**{f"{c}_32": o for c, o in IF_COUNTERS_32.items()}, "speed_bps_32": IF_SPEED_32}
HR_CPU = {"load": "1.3.6.1.2.1.25.3.3.1.2"}            # hrProcessorLoad (percent per CPU)
HR_STORAGE = {
    "type": "1.3.6.1.2.1.25.2.3.1.2",
    "descr": "1.3.6.1.2.1.25.2.3.1.3",
    "units": "1.3.6.1.2.1.25.2.3.1.4",
    "size": "1.3.6.1.2.1.25.2.3.1.5",
    "used": "1.3.6.1.2.1.25.2.3.1.6",
}
HR_STORAGE_RAM = "1.3.6.1.2.1.25.2.1.2"


class SnmpError(Exception):
    pass


@dataclass
class Target:
    device: str
    address: str
    platform: str = "debian"
    port: int = 161
    version: str = "v3"
    user: str = ""
    auth_key: str = ""
    priv_key: str = ""
    auth_protocol: str = "SHA"   # wire.AUTH
    priv_protocol: str = "AES"   # wire.PRIV
    community: str = ""
    context: str = ""            # SNMPv3 context name (empty on most devices)
    labels: dict = field(default_factory=dict)  # level/province/city/county/site
    max_repetitions: int = 25
    inflight: int = 2            # concurrent PDUs towards this device
    timeout: float = 1.0         # per request attempt
    retries: int = 1
    deadline: float = 10.0       # the whole poll of this device
    label_refresh: float = 3600.0  # the interface labels are walked again at least this often (seconds)


@dataclass
class Stats:
    pdus: int = 0
    retries: int = 0
    timeouts: int = 0
    varbinds: int = 0
    dropped: dict = field(default_factory=dict)  # answers dropped, by wire.DROP_REASONS reason


@dataclass
class _State:
    """What a target's previous polls left: label cache, raw counters, exported totals."""
    uptime: int | None = None
    last_change: int | None = None
    labels: dict = field(default_factory=dict)   # ifIndex → {"name", "alias", "descr"}
    labels_at: float = 0.0                       # monotonic time of the last label walk
    legacy: bool = False                         # some interface needs the 32-bit ifTable columns
    descr: str | None = None                     # sysDescr ("" where the agent gives none), read with the labels
    entity_names: dict = field(default_factory=dict)  # entPhysicalIndex → entPhysicalName of the named sensors
    raw: dict = field(default_factory=dict)      # counter column → {ifIndex → last raw value}
    total: dict = field(default_factory=dict)    # counter column → {ifIndex → exported monotonic total}
    timeouts_total: int = 0
    label_walks: int = 0


@dataclass
class Result:
    device: str
    ok: bool                    # the device answered (reachability); what it answered is in ``tables``
    error: str | None = None
    system: dict = field(default_factory=dict)
    interfaces: dict = field(default_factory=dict)   # ifIndex → dict
    cpu_ratio: float | None = None
    memory_ratio: float | None = None
    storage: list = field(default_factory=list)
    environment: dict = field(default_factory=dict)  # EnvSensor kind → {sensor index: value}
    tables: dict = field(default_factory=dict)       # table → None (fresh this poll) or why it is not
    duration_s: float = 0.0
    stats: Stats = field(default_factory=Stats)
    labels_walked: bool = False
    restarted: bool = False


@functools.lru_cache(maxsize=4096)
def _oid(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split("."))


def _int(v) -> int | None:
    """A value used as a number, or None: an agent may answer any type for any OID."""
    return v if isinstance(v, int) else None


def _str(v) -> str | None:
    """A value used as text (a label), or None."""
    return v if isinstance(v, str) else None


def _index(i) -> str:
    """A row index as text: "5", or "0.2" for a multi-part one."""
    return ".".join(map(str, i)) if isinstance(i, tuple) else str(i)


def _measure(e: EnvSensor, v: int, h: dict, i) -> float | None:
    """Row ``i``'s raw value ``v`` in the sensor's unit; None where it has none (its scale or precision unread,
    no dBm for a power of zero)."""
    x = v * e.scale
    if e.scale_columns:  # RFC 3433: SI prefix units(9) = 10^0, 3 decimal orders a step; precision 1..9 decimals
        prefix, precision = (_int(h[c].get(i)) for c in e.scale_columns)
        if prefix is None or precision is None:
            return None
        exp = 3 * (prefix - 9) - max(precision, 0)  # a negative precision counts accurate digits: no shift
        x = x * 10 ** exp if exp >= 0 else x / 10 ** -exp
    if not e.milliwatts:
        return x
    return 10 * math.log10(x) if x > 0 else None


def vendor_platform(sys_object_id: str | None, hint: str) -> str | None:
    """The platform whose enterprise prefixes sysObjectID; the inventory's own platform wins a tie."""
    if not sys_object_id:
        return None
    matches = [p.name for p in PLATFORMS.values()
               if p.snmp_enterprise and (sys_object_id + ".").startswith(p.snmp_enterprise + ".")]
    if hint in matches:
        return hint
    return max(matches, key=lambda n: len(PLATFORMS[n].snmp_enterprise), default=None)


def advance(prev_raw: int | None, prev_total: int | None, raw: int, bits: int, restarted: bool) -> int:
    """The exported monotonic total after reading ``raw``: wraps and agent restarts handled."""
    if prev_raw is None or prev_total is None:
        return raw
    if restarted:
        return prev_total + raw  # the agent counted again from zero
    if raw >= prev_raw:
        return prev_total + raw - prev_raw
    return prev_total + raw + (1 << bits) - prev_raw  # wrapped


class Poller:
    """One codec client, many targets; keeps each target's cache and counter state between cycles."""

    def __init__(self, concurrency: int = 256):
        self.wire = wire.Client()
        self.state: dict[str, _State] = {}
        self.concurrency = concurrency

    def close(self) -> None:
        """Release the socket."""
        self.wire.close()

    async def get(self, t: Target, oids: list[str]) -> dict[str, object]:
        """One GET (with the target's timeout and retries): OID → value, None where the agent has no such object."""
        vbs = await self._request(t, Stats(), asyncio.Semaphore(1), [_oid(o) for o in oids], bulk=False)
        return {".".join(map(str, o)): v for o, v in vbs}

    # --- one request -----------------------------------------------------------------------------
    async def _request(self, t: Target, stats: Stats, sem: asyncio.Semaphore, oids: list[tuple], bulk: bool):
        for attempt in range(t.retries + 1):
            stats.pdus += 1
            stats.retries += attempt > 0
            async with sem:
                try:
                    vbs = await self.wire.request(t, wire.GETBULK if bulk else wire.GET, oids,
                                                  0, t.max_repetitions if bulk else 0, t.timeout, stats.dropped)
                except wire.WireError as e:
                    raise SnmpError(str(e)) from None
            if vbs is None:
                stats.timeouts += 1
                continue
            stats.varbinds += len(vbs)
            return vbs
        dropped = ", ".join(f"{n} {r}" for r, n in sorted(stats.dropped.items()))
        raise SnmpError(f"no response after {t.retries + 1} attempts of {t.timeout:g} s"
                        + (f" (answers dropped: {dropped})" if dropped else ""))

    async def walk(self, t: Target, stats: Stats, sem, columns: dict[str, str]) -> dict[str, dict[int | tuple, object]]:
        """GETBULK several columns side by side until each leaves its subtree; row index → value."""
        out: dict[str, dict] = {n: {} for n in columns}
        prefix = {n: _oid(o) for n, o in columns.items()}
        upper = {n: p[:-1] + (p[-1] + 1,) for n, p in prefix.items()}  # the first OID after each subtree
        pending = dict(prefix)  # column → last OID seen
        while pending:
            names = list(pending)
            vbs = await self._request(t, stats, sem, [pending[n] for n in names], bulk=True)
            moved = False
            for k, n in enumerate(names):  # varbinds come row by row: column k is every len(names)-th
                col, last, lp = out[n], pending[n], len(prefix[n])
                after, ended = upper[n], False
                for oid, v in vbs[k::len(names)]:
                    # inside the column's subtree (prefix < oid < its next sibling) and moving on
                    if v is None or oid <= last or oid >= after:
                        ended = True
                        break
                    col[oid[lp] if len(oid) == lp + 1 else oid[lp:]] = v
                    last = oid
                moved |= ended or last != pending[n]
                if ended:
                    del pending[n]
                else:
                    pending[n] = last
            if not moved:  # an agent that answers without progress: stop rather than loop
                break
        return out

    async def entity_names(self, t: Target, stats: Stats, sem, indexes: list) -> dict:
        """entPhysicalName of the given entities (GETs of at most max_repetitions OIDs at once): index → name, ""
        where the agent has none."""
        oids = [_oid(f"{ENT_PHYSICAL_NAME}.{_index(i)}") for i in indexes]
        n = max(1, t.max_repetitions)
        answers = await asyncio.gather(*(self._request(t, stats, sem, oids[k:k + n], bulk=False)
                                         for k in range(0, len(oids), n)))
        return dict(zip(indexes, (_str(v) or "" for vbs in answers for _, v in vbs)))

    # --- one device ------------------------------------------------------------------------------
    async def poll(self, t: Target) -> Result:
        start = time.monotonic()
        res = Result(t.device, ok=False)
        try:
            await self._poll(t, res, start + t.deadline)
            res.ok = True
        except asyncio.TimeoutError:
            res.error = f"deadline {t.deadline:g} s exceeded"
        except SnmpError as e:
            res.error = str(e)
        except OSError as e:
            res.error = f"transport: {e}"
        except Exception as e:  # a defect met on this device's answers costs this device, never the cycle
            res.error = f"internal error: {type(e).__name__}: {e}"
        res.duration_s = time.monotonic() - start
        st = self.state.setdefault(t.device, _State())
        st.timeouts_total += res.stats.timeouts
        return res

    async def _tables(self, jobs: dict, end: float, res: Result) -> dict:
        """Run the table walks at once until ``end``; what answered in time, each failure in ``res.tables``."""
        tasks = {name: asyncio.ensure_future(job) for name, job in jobs.items()}
        done, pending = await asyncio.wait(tasks.values(), timeout=max(0.0, end - time.monotonic()))
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        got = {}
        for name, task in tasks.items():
            table = name.split("/")[0]
            if task not in done:
                res.tables[table] = "deadline exceeded"
            elif task.exception() is not None:
                e = task.exception()
                if not isinstance(e, (SnmpError, OSError)):
                    raise e
                res.tables[table] = str(e)
            else:
                got[name] = task.result()
                res.tables.setdefault(table, None)
        return got

    async def _poll(self, t: Target, res: Result, end: float) -> None:
        st = self.state.setdefault(t.device, _State())
        sem = asyncio.Semaphore(t.inflight)
        stats = res.stats
        answer = await asyncio.wait_for(self._request(t, stats, sem, [_oid(o) for o in SCALARS], bulk=False),
                                        max(0.0, end - time.monotonic()))
        scal = {".".join(map(str, o)): v for o, v in answer}
        # a view may hide the system group: the device answered all the same, only the restart check is blind
        uptime, last_change = _int(scal.get(SYS_UPTIME)), _int(scal.get(IF_TABLE_LAST_CHANGE))
        res.tables["system"] = None if uptime is not None else "no numeric sysUpTime in the answer"
        restarted = st.uptime is not None and uptime is not None and uptime < st.uptime
        object_id = _str(scal.get(SYS_OBJECT_ID))
        vendor = vendor_platform(object_id, t.platform)
        res.system = {"uptime_s": uptime / 100 if uptime is not None else None, "name": _str(scal.get(SYS_NAME)),
                      "object_id": object_id, "vendor": vendor}
        res.restarted = restarted
        now = time.monotonic()
        stale = (not st.labels or restarted or now - st.labels_at >= t.label_refresh
                 or (last_change is not None and last_change != st.last_change))
        columns = {**{n: o for n, (o, _) in IF_COUNTERS.items()}, **IF_STATE, **(IF_LEGACY if st.legacy else {})}
        names = list(columns)
        k = max(1, min(t.inflight, len(names)))
        jobs = {f"interfaces/{g}": self.walk(t, stats, sem, {n: columns[n] for n in names[g::k]}) for g in range(k)}
        if stale:
            jobs["labels"] = self.walk(t, stats, sem, IF_LABELS)
        plat = PLATFORMS.get(vendor) if vendor else None
        # sysDescr says the release where a sensor's unit depends on it: read with the labels (a release changes with a
        # restart), and until the agent has answered it once
        if plat and any(e.release for e in plat.snmp_env) and (stale or st.descr is None):
            jobs["labels/descr"] = self._request(t, stats, sem, [_oid(SYS_DESCR)], bulk=False)
        if plat and (plat.snmp_cpu_oid or plat.snmp_env):
            vendor_cols = {"cpu": plat.snmp_cpu_oid, "mem": plat.snmp_mem_oid, "mem_used": plat.snmp_mem_used_oid,
                           "mem_free": plat.snmp_mem_free_oid, **{o: o for e in plat.snmp_env for o in e.columns}}
            jobs["health"] = self.walk(t, stats, sem, {n: o for n, o in vendor_cols.items() if o})
        else:
            jobs["health"] = self.walk(t, stats, sem, {**HR_CPU, **HR_STORAGE})
        got = await self._tables(jobs, end, res)
        if "labels/descr" in got:
            st.descr = "".join(_str(v) or "" for _, v in got["labels/descr"])
        poll: dict[str, dict] = {n: {} for n in columns}
        for name, part in got.items():
            if name.startswith("interfaces/"):
                poll.update(part)
        ids = {i for i in set().union(*(poll[c].keys() for c in poll)) if isinstance(i, int)}
        # an interface without its HC counter or ifHighSpeed: the 32-bit ifTable columns, from now on every poll
        if not st.legacy and res.tables.get("interfaces") is None and (
                ids.difference(poll["in_octets"]) or ids.difference(poll["speed_mbps"])):
            st.legacy = True
            got.update(await self._tables({"interfaces/legacy": self.walk(t, stats, sem, IF_LEGACY)}, end, res))
            poll.update(got.get("interfaces/legacy", {}))
        if "labels" not in got and ids.difference(st.labels):  # a new interface: name it now
            got.update(await self._tables({"labels": self.walk(t, stats, sem, IF_LABELS)}, end, res))
        if "labels" in got:
            lab = got["labels"]
            st.labels = {i: {"name": _str(lab["name"].get(i)) or _str(lab["descr"].get(i)) or str(i),
                             "alias": _str(lab["alias"].get(i)) or "", "descr": _str(lab["descr"].get(i)) or ""}
                         for i in set(lab["name"]) | set(lab["alias"]) | set(lab["descr"]) if isinstance(i, int)}
            st.labels_at = now
            st.label_walks += 1
            res.labels_walked = True
        st.uptime = uptime if uptime is not None else st.uptime
        st.last_change = last_change
        self._interfaces(st, res, poll, sorted(ids), restarted)
        if "health" in got:
            if plat and (named := [e for e in plat.snmp_env if e.named]):
                await self._name_sensors(t, stats, sem, st, named, got["health"], stale, end, res)
            self._health(plat, got["health"], res, st)

    async def _name_sensors(self, t: Target, stats: Stats, sem, st: _State, named: list, h: dict, stale: bool,
                            end: float, res: Result) -> None:
        """The entity names of the rows ``named`` sensors read, from the cache (refreshed with the labels) or, for an
        entity not seen before (a transceiver inserted), asked now."""
        if stale:
            st.entity_names = {}
        new = sorted({i for e in named for i in h[e.oid] if i not in st.entity_names
                      and all(h[c].get(i) in accept for c, accept in e.where)}, key=_index)
        if new:
            got = await self._tables({"labels/entity": self.entity_names(t, stats, sem, new)}, end, res)
            st.entity_names.update(got.get("labels/entity", {}))

    @staticmethod
    def _interfaces(st: _State, res: Result, poll: dict, indexes: list[int], restarted: bool) -> None:
        # column by column (the hot loop of a warm cycle): each counter's state is a dict per column
        speed, speed_32 = poll["speed_mbps"], poll.get("speed_bps_32", {})
        admin, oper = poll["admin_status"], poll["oper_status"]
        recs = res.interfaces
        for i in indexes:
            lab = st.labels.get(i) or {"name": str(i), "alias": "", "descr": ""}
            mbps = _int(speed.get(i))
            recs[i] = {"index": i, "name": lab["name"], "alias": lab["alias"], "descr": lab["descr"],
                       "admin_status": IF_STATUS.get(_int(admin.get(i)), "unknown"),
                       "oper_status": IF_STATUS.get(_int(oper.get(i)), "unknown"),
                       "speed_bps": mbps * 1_000_000 if mbps is not None else _int(speed_32.get(i)),
                       "counters": {}}
        for c, (_, bits) in IF_COUNTERS.items():
            col, col_32 = poll[c], poll.get(f"{c}_32") if c in IF_COUNTERS_32 else None
            raws, totals = st.raw.setdefault(c, {}), st.total.setdefault(c, {})
            for i in indexes:
                raw, width = col.get(i), bits
                if not isinstance(raw, int):
                    if col_32 is None or not isinstance(raw := col_32.get(i), int):
                        continue
                    width = 32
                totals[i] = total = advance(raws.get(i), totals.get(i), raw, width, restarted)
                raws[i] = raw
                recs[i]["counters"][c] = total

    @staticmethod
    def _health(plat, h: dict, res: Result, st: _State) -> None:
        if "load" not in h:  # the vendor's entity / process MIB
            cpu = [v for v in h.get("cpu", {}).values() if isinstance(v, int)]
            res.cpu_ratio = max(cpu) / 100 if cpu else None
            if "mem" in h:
                mem = [v for v in h["mem"].values() if isinstance(v, int)]
                res.memory_ratio = max(mem) / 100 if mem else None
            elif "mem_used" in h:
                ratios = [u / (u + f) for i, u in h["mem_used"].items()
                          if isinstance(u, int) and isinstance(f := h["mem_free"].get(i), int) and u + f > 0]
                res.memory_ratio = max(ratios) if ratios else None
            for e in plat.snmp_env:  # each column walked once (keyed by its OID), however many sensors read it
                if (e.release and not re.search(e.release, st.descr or "")) or (e.fallback and e.kind in res.environment):
                    continue
                rows = [(i, v) for i, v in h[e.oid].items() if isinstance(v, int) and v not in e.absent
                        and all(h[c].get(i) in accept for c, accept in e.where)
                        and (not e.named or re.search(e.named, st.entity_names.get(i, "")))]
                vals = {_index(i): m for i, v in rows
                        if (m := v in e.ok if e.state else _measure(e, v, h, i)) is not None}
                if vals:
                    res.environment.setdefault(e.kind, {}).update(vals)
            return
        loads = [v for v in h["load"].values() if isinstance(v, int)]
        res.cpu_ratio = sum(loads) / len(loads) / 100 if loads else None
        for i, descr in sorted((i, d) for i, d in h["descr"].items() if isinstance(i, int) and isinstance(d, str)):
            units = _int(h["units"].get(i)) or 1
            size, used = _int(h["size"].get(i)), _int(h["used"].get(i))
            if size is None or used is None:
                continue
            res.storage.append({"storage": descr, "type": h["type"].get(i), "size_bytes": size * units,
                                "used_bytes": used * units})
            if h["type"].get(i) == HR_STORAGE_RAM and size:
                res.memory_ratio = used / size

    # --- one cycle -------------------------------------------------------------------------------
    async def cycle(self, targets: list[Target], deadline: float = 50.0, on_done=None) -> list[Result]:
        """Poll every target concurrently; whatever is not done by ``deadline`` is reported as such."""
        gate = asyncio.Semaphore(self.concurrency)

        async def one(t: Target) -> Result:
            async with gate:
                r = await self.poll(t)
            if on_done:
                on_done(r)
            return r

        # a cycle makes millions of short-lived acyclic objects; the cyclic GC kept rescanning the
        # long-lived per-target state meanwhile (a third of the CPU at 2,000 devices): paused for the cycle
        with paused_gc():
            tasks = {asyncio.ensure_future(one(t)): t for t in targets}
            done, pending = await asyncio.wait(tasks, timeout=deadline) if tasks else (set(), set())
        for task in pending:
            task.cancel()
        results = {tasks[task].device: task.result() for task in done}
        for task in pending:
            t = tasks[task]
            results[t.device] = Result(t.device, ok=False, error=f"cycle deadline {deadline:g} s exceeded",
                                       duration_s=deadline)
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        return [results[t.device] for t in targets]
