"""The live health map: `netops monitor web`.

A small HTTP server (stdlib) that serves a self-contained page (``monitoring/static/``: own HTML, JS and
CSS, SVG drawn in the browser, nothing from the internet) and two JSON documents:

* ``/api/topology`` — the inventory as the map draws it: sites by level with their devices, links, and the
  database replication pairs (primary → DR standby, ``netops dr setup``);
* ``/api/health``  — live health merged from each province's Prometheus (instant queries and its
  active alerts), merged at most every ``CACHE_SECONDS`` so many open pages do not multiply the queries, in
  the background: a page is answered with the last merge at once, never after the Prometheus round trips.

Health words: ``ok`` (green), ``warn`` (amber), ``down`` (red), ``unknown`` (grey: no data — the
province's Prometheus unreachable, its collector down, or the device not scraped); links also
``saturated`` (utilisation at or above ``SATURATED``) and ``planned``. A replication pair (PostgreSQL streaming, or
MariaDB's GTID replication, judged from the replica's own readings) is ``ok`` (replicating, lag within the target, a
synchronous pair's primary waiting for it), ``lagging`` (over the target, or a synchronous pair fallen back to async:
RPO 0 lost), ``broken`` (not replicating: a PostgreSQL standby not streaming, a MariaDB replica's IO or SQL thread
stopped or its channel gone; a member's database down) or ``unknown``, with the roles its members have now (a
failover promotes the standby: the map follows the databases, not the inventory) and the mode it replicates in now.

Who may ask (docs/SECURITY.md): it listens on loopback unless ``--allow-remote`` says otherwise, and
then only with an access token (``--token-file``: a 0600 file or stdin; never an argument or an
environment variable). Every request's ``Host`` must name the server — the address it arrived at,
the ``--listen`` name, ``localhost`` on loopback, this host's names on a wildcard address — or it
is answered 421 (a DNS-rebinding page cannot read the map through a victim's browser). With a
token, the page is reached after a login form (or ``?token=`` once), which sets an HttpOnly,
SameSite=Strict session cookie; scripts send ``Authorization: Bearer TOKEN``.
"""
from __future__ import annotations

import gc
import hashlib
import hmac
import ipaddress
import json
import os
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path

from jinbao_netops import escape, procs
from jinbao_netops.backup import replication
from jinbao_netops.collectors import IF_STATUS
from jinbao_netops.collectors.db import GAUGES
from jinbao_netops.inventory import load
from jinbao_netops.inventory.engines import ENGINES, MARIADB, POSTGRESQL
from jinbao_netops.inventory.model import (BOUNDARY_ROLES, LEVEL_NAMES, LEVEL_ORDER, LinkState, Zone, level_label,
                                          zone_label)
from jinbao_netops.inventory.store import Inventory
from jinbao_netops.files import write_atomic
from jinbao_netops.errors import FINDINGS, OK, PARTIAL, UsageError
from jinbao_netops.output import Out
from jinbao_netops.security.catalogue import host_params

from . import rules, stack

SATURATED = 0.8  # the LinkUtilisationHigh threshold
CACHE_SECONDS = 2.0
QUERY_TIMEOUT = 4.0
REFRESH_SECONDS = 5

# a database server's replication readings (collectors/db.py GAUGES), per service: its lag; PostgreSQL's in recovery,
# standbys streaming and how many of them its commits wait for (sync_state sync or quorum); MariaDB's replication
# channels and each channel's IO and SQL threads running
PG_READINGS = ("in_recovery", "replicas", "sync_standbys")
MARIADB_READINGS = ("replicas_configured", "replica_io_running", "replica_sql_running")
REPLICATION = ("replica_lag_s", *PG_READINGS, *MARIADB_READINGS)
# instant queries against a province's Prometheus; the collector's metrics (collectors/METRICS.md)
QUERIES = {
    "snmp_up": "netops_snmp_up",
    "oper": "netops_interface_oper_status",
    "admin": "netops_interface_admin_status",
    "util": f"max by (device, interface) ({dict(rules.PROVINCE_RECORDS)[rules.UTIL]})",
    "db_up": "netops_db_up",
    "collector_up": 'up{job="netops-collect"}',
    # replication, per database server (the engine table's replication readings)
    **{k: GAUGES[k][0] for k in REPLICATION},
}
LAG_TARGET = "dengbao_replication_max_lag_seconds"  # security/params.yml: the audit's lag target (an async pair's RPO)
STATIC = {"/": ("index.html", "text/html"), "/index.html": ("index.html", "text/html"),
          "/app.js": ("app.js", "text/javascript"), "/style.css": ("style.css", "text/css")}


@dataclass(frozen=True)
class Source:
    """One Prometheus: ``scope`` is the province it covers (None: the whole network); ``alertmanager``, if
    given, is asked which of its alerts are inhibited or silenced."""
    url: str
    scope: str | None = None
    alertmanager: str | None = None


# --- the inventory as the map draws it ---------------------------------------------------------------

def _province(inv: Inventory, site_id: str) -> str | None:
    p = inv.province_of(site_id)
    return p.id if p else None


def _zones(dev) -> set[Zone]:
    return {dev.zone, *(dev.interface_zone(i) for i in dev.interfaces)}


def topology(inv: Inventory, refresh: int = REFRESH_SECONDS) -> dict:
    sites = []
    for s in inv.sites_in_order():
        devs = sorted(inv.devices_by_site.get(s.id, []))
        sites.append({"id": s.id, "name": s.name, "level": s.level.value, "parent": s.parent, "rank": LEVEL_ORDER[s.level],
                      "province": _province(inv, s.id), "devices": devs,
                      # the security zones its devices sit in (a boundary device: each of its interfaces' zones)
                      "zones": sorted({z.value for d in devs for z in _zones(inv.devices[d])})})
    devices = {d.id: {"name": d.name or d.id, "site": d.site, "role": d.role.value, "platform": d.platform,
                      "management": str(d.management), "services": list(d.services), "interfaces": sorted(d.interfaces),
                      "zone": d.zone.value, "boundary": d.role in BOUNDARY_ROLES}
               for d in sorted(inv.devices.values(), key=lambda d: d.id)}
    links = [{"id": lk.id, "kind": lk.kind.value, "state": lk.state.value, "bandwidth_mbps": lk.bandwidth_mbps,
              "carrier": lk.carrier, "ends": [{"device": e.device, "interface": e.interface, "site": inv.devices[e.device].site}
                                              for e in lk.ends()]}
             for lk in sorted(inv.links.values(), key=lambda lk: lk.id)]
    net = inv.network
    return {"network": {"id": net.id if net else "", "name": net.name if net else ""}, "refresh_seconds": refresh,
            "levels": {lv.value: level_label(lv) for lv in LEVEL_NAMES},  # the labels, from the inventory's one table
            "zones": {z.value: zone_label(z) for z in Zone},
            "sites": sites, "devices": devices, "links": links, "replication": replication_pairs(inv)}


def replication_pairs(inv: Inventory) -> list[dict]:
    """The inventory's replication pairs as the map shows them (keyed by the standby: a server is the standby of
    one primary), each with its members' sites and the lag target it is judged against."""
    return [{"id": p.standby, "primary": p.primary, "standby": p.standby, "sync": p.sync,
             "service": inv.devices[p.standby].replica.service, "service_address": p.service_address,
             "primary_site": inv.devices[p.primary].site, "standby_site": inv.devices[p.standby].site,
             "max_lag_seconds": host_params(inv, p.primary)[LAG_TARGET]}
            for p in replication.pairs(inv)]


# --- reading Prometheus --------------------------------------------------------------------------------

def _get(url: str, timeout: float) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        doc = json.loads(r.read())
    if doc.get("status") != "success":
        raise ValueError(doc.get("error") or "status is not success")
    return doc["data"]


def fetch(src: Source, timeout: float = QUERY_TIMEOUT) -> dict:
    """Every query and the active alerts from one Prometheus, concurrently: {url, scope, ok, error, seconds,
    results, alerts, suppressed}. Any Prometheus failure makes the whole source unusable (half a picture would
    show stale parts green); an unreachable Alertmanager only means no alert is known to be suppressed."""
    base = src.url.rstrip("/")
    calls = {k: f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": q}) for k, q in QUERIES.items()}
    calls["alerts"] = f"{base}/api/v1/alerts"
    start = time.monotonic()
    rec = {"url": src.url, "scope": src.scope, "ok": False, "error": None, "results": {}, "alerts": [], "suppressed": []}
    with ThreadPoolExecutor(len(calls) + 1) as pool:
        am = pool.submit(_suppressed, src.alertmanager, timeout) if src.alertmanager else None
        futures = {k: pool.submit(_get, u, timeout) for k, u in calls.items()}
        try:
            data = {k: f.result() for k, f in futures.items()}
        except (OSError, ValueError, KeyError) as e:  # URLError is an OSError
            rec["error"] = str(getattr(e, "reason", None) or e)
        else:
            rec["ok"] = True
            rec["results"] = {k: [(s["metric"], float(s["value"][1])) for s in data[k]["result"]] for k in QUERIES}
            rec["alerts"] = data["alerts"]["alerts"]
        rec["suppressed"] = am.result() if am else []
    rec["seconds"] = round(time.monotonic() - start, 3)
    return rec


def _suppressed(url: str, timeout: float) -> list[dict]:
    """Label sets of the alerts an Alertmanager holds back (inhibited or silenced); [] if it does not answer."""
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/api/v2/alerts", timeout=timeout) as r:
            return [a["labels"] for a in json.loads(r.read()) if a.get("status", {}).get("state") == "suppressed"]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def fetch_all(sources: list[Source], timeout: float = QUERY_TIMEOUT) -> list[dict]:
    with ThreadPoolExecutor(max(1, len(sources))) as pool:
        return list(pool.map(lambda s: fetch(s, timeout), sources))


# --- merging into health -------------------------------------------------------------------------------

def _alert_site(inv: Inventory, labels: dict) -> str | None:
    if labels.get("site") in inv.sites:
        return labels["site"]
    if labels.get("device") in inv.devices:
        return inv.devices[labels["device"]].site
    for key in ("county", "city", "province"):
        if labels.get(key) in inv.sites:
            return labels[key]
    return None


def merge(inv: Inventory, fetched: list[dict], now: float | None = None, pairs: list[dict] | None = None) -> dict:
    """The map's health from what each source returned (``fetch`` records). Pure (no I/O) when given the
    replication ``pairs`` (:func:`replication_pairs`, which reads the lag targets)."""
    pairs = replication_pairs(inv) if pairs is None else pairs
    good = [f for f in fetched if f["ok"]]
    snmp: dict[str, float] = {}
    ifs: dict[str, dict[str, dict]] = {}
    dbs: dict[str, dict[str, bool]] = {}
    repl: dict[tuple[str, str], dict[str, float]] = {}  # (device, service) -> its REPLICATION readings
    collector: dict[str, bool] = {}  # province -> its collector scraped fine
    for f in good:
        res = f["results"]
        for lab, v in res.get("collector_up", []):
            p = lab.get("province") or f["scope"]
            collector[p] = collector.get(p, False) or v == 1
        for lab, v in res.get("snmp_up", []):
            snmp[lab.get("device", "")] = max(v, snmp.get(lab.get("device", ""), 0))
        for key in ("oper", "admin", "util"):
            for lab, v in res.get(key, []):
                if lab.get("device") in inv.devices and lab.get("interface"):
                    ifs.setdefault(lab["device"], {}).setdefault(lab["interface"], {})[key] = v
        for lab, v in res.get("db_up", []):
            if lab.get("device") in inv.devices and lab.get("service"):
                dbs.setdefault(lab["device"], {})[lab["service"]] = v == 1
        for key in REPLICATION:
            for lab, v in res.get(key, []):
                repl.setdefault((lab.get("device", ""), lab.get("service", "")), {})[key] = v
    unreachable = {f["scope"] for f in fetched if not f["ok"]}

    # devices
    devices: dict[str, dict] = {}
    for did, d in inv.devices.items():
        prov = _province(inv, d.site) or inv.ministry.id  # the ministry's own devices: the ministry's source
        rec = {"health": "unknown", "snmp_up": None, "interfaces": {}, "databases": {}, "reason": None}
        if collector.get(prov) is False:
            rec["reason"] = "采集器无数据 / collector not scraped"
        elif did not in snmp:
            rec["reason"] = ("Prometheus 不可达 / unreachable" if prov in unreachable or None in unreachable
                             else "无数据 / no data")
        else:
            rec["snmp_up"] = snmp[did] == 1
            rec["interfaces"] = {n: {"oper": _oper(v.get("oper")), "admin": _oper(v.get("admin")), "util": v.get("util")}
                                 for n, v in sorted(ifs.get(did, {}).items())}
            rec["databases"] = dbs.get(did, {})
            if not rec["snmp_up"]:
                rec["health"], rec["reason"] = "down", "SNMP 无响应 / not answering"
            elif not all(rec["databases"].values()):
                down = [s for s, up in rec["databases"].items() if not up]
                rec["health"], rec["reason"] = "down", f"数据库停止 / database down: {', '.join(down)}"
            else:
                rec["health"] = "ok"
        devices[did] = rec

    # alerts (deduplicated: a rule may be evaluated by more than one source); Alertmanager adds external
    # labels, so an alert is suppressed when a suppressed label set contains all of its labels
    held = [set(lab.items()) for f in good for lab in f.get("suppressed", [])]
    alerts, seen = [], set()
    for f in good:
        for a in f["alerts"]:
            lab = a.get("labels", {})
            key = tuple(sorted(lab.items()))
            if key in seen:
                continue
            seen.add(key)
            ann = a.get("annotations", {})
            alerts.append({"name": lab.get("alertname", ""), "state": a.get("state", ""), "severity": lab.get("severity", ""),
                           "site": _alert_site(inv, lab), "device": lab.get("device"),
                           "links": [x for x in lab.get("link", "").split(",") if x in inv.links],
                           "summary_zh": ann.get("summary_zh", ""), "summary_en": ann.get("summary_en", ""),
                           "runbook": ann.get("runbook", ""), "active_at": a.get("activeAt"), "labels": lab,
                           "suppressed": any(set(lab.items()) <= h for h in held)})
    alerts.sort(key=lambda a: (a["state"] != "firing", a["suppressed"], a["severity"] != "critical", a["name"], a["site"] or ""))
    firing = [a for a in alerts if a["state"] == "firing" and not a["suppressed"]]  # what colours the map

    # links: both ends' interfaces
    links: dict[str, dict] = {}
    link_alerts = {lid for a in firing for lid in a["links"]}
    for lid, lk in inv.links.items():
        if lk.state == LinkState.planned:
            links[lid] = {"health": "planned", "util": None}
            continue
        states, utils = [], []
        for e in lk.ends():
            dev = devices[e.device]
            if dev["snmp_up"] is None:  # no data for that end
                continue
            if dev["snmp_up"] is False:
                states.append(False)
                continue
            itf = dev["interfaces"].get(e.interface)
            if itf is None or itf["oper"] is None:
                continue
            states.append(itf["oper"] == "up")
            if itf["util"] is not None:
                utils.append(itf["util"])
        util = max(utils) if utils else None
        if not states:
            health = "unknown"
        elif not all(states) or lid in link_alerts:
            health = "down"
        elif util is not None and util >= SATURATED:
            health = "saturated"
        else:
            health = "ok"
        links[lid] = {"health": health, "util": util}

    replicas = replication_health(pairs, devices, repl)
    pair_reasons: dict[str, list[str]] = {}  # site -> its pairs that lag or are broken (both members' sites)
    for p in pairs:
        if replicas[p["id"]]["state"] in ("lagging", "broken"):
            for sid in {p["primary_site"], p["standby_site"]}:
                pair_reasons.setdefault(sid, []).append(f"{p['primary']} → {p['standby']}: {replicas[p['id']]['reason']}")

    # sites
    site_links: dict[str, set[str]] = {}
    for lid, lk in inv.links.items():
        for e in lk.ends():
            site_links.setdefault(inv.devices[e.device].site, set()).add(lid)
    firing_at: dict[str, list[dict]] = {}
    for a in firing:
        firing_at.setdefault(a["site"], []).append(a)
    sites: dict[str, dict] = {}
    for sid in inv.sites:
        devs = inv.devices_by_site.get(sid, [])
        hs = [devices[d]["health"] for d in devs]
        mine = firing_at.get(sid, [])
        reasons = [f"{d}: {devices[d]['reason']}" for d in sorted(devs) if devices[d]["health"] != "ok" and devices[d]["reason"]]
        bad_links = sorted(lid for lid in site_links.get(sid, ()) if links[lid]["health"] in ("down", "saturated"))
        reasons += [f"{lid}: {'链路中断 / link down' if links[lid]['health'] == 'down' else '链路拥塞 / saturated'}" for lid in bad_links]
        bad_pairs = pair_reasons.get(sid, [])
        reasons += bad_pairs
        reasons += [f"{a['name']}: {a['summary_zh'] or a['summary_en']}" for a in mine]
        critical = [a for a in mine if a["severity"] == "critical" and not a["links"]]  # a link's alert colours the link
        known = [h for h in hs if h != "unknown"]
        if "down" in hs or critical:
            health = "down"
        elif not known and not mine:
            health = "unknown"
        elif mine or bad_links or bad_pairs or len(known) < len(hs):
            health = "warn"
        else:
            health = "ok"
        sites[sid] = {"health": health, "reasons": reasons, "alerts": len(mine)}

    count = {h: sum(1 for s in sites.values() if s["health"] == h) for h in ("ok", "warn", "down", "unknown")}
    return {"time": now if now is not None else time.time(), "sites": sites, "devices": devices, "links": links,
            "replication": replicas, "alerts": alerts, "summary": count,
            "sources": [{k: f[k] for k in ("url", "scope", "ok", "error", "seconds")} for f in fetched]}




def _role(service: str, db: bool | None, readings: dict[str, float]) -> str:
    """A pair member's role as its database reports it: primary, standby (the engine's replica reading non-zero: a
    PostgreSQL server in recovery, a MariaDB server with a replication channel), down or unknown."""
    replica = ENGINES[service].replica_metric
    if db is None or (db and replica not in readings):
        return "unknown"
    if not db:
        return "down"
    return "standby" if readings[replica] else "primary"


def _pg_replicating(primary: str, standby: str, repl: dict, expected: int) -> tuple[float | None, str | None]:
    """PostgreSQL, from the primary: how many standbys stream from it (every member in recovery under it must), and
    why that is broken."""
    n = repl.get((primary, POSTGRESQL.service), {}).get("replicas")
    if n is None or n >= expected:
        return n, None
    return n, (f"复制中断：{primary} 在线备库 {n:g}/{expected} / broken: {n:g} of {expected} standbys streaming")


def _mariadb_replicating(primary: str, standby: str, repl: dict, expected: int) -> tuple[float | None, str | None]:
    """MariaDB, from the replica (a primary cannot see its replicas): 1 when its IO and SQL threads run, and why
    that is broken."""
    r = repl.get((standby, MARIADB.service), {})
    threads = {"IO": r.get("replica_io_running"), "SQL": r.get("replica_sql_running")}
    if None in threads.values():
        return None, None
    stopped = [t for t, v in threads.items() if v != 1]
    if not stopped:
        return 1.0, None
    return 0.0, (f"复制中断：{standby} 的 {'/'.join(stopped)} 线程停止 / broken: {standby}'s replica "
                 f"{' and '.join(stopped)} thread{'s' if len(stopped) > 1 else ''} stopped")


# how each engine tells that a pair replicates (the rest of a pair's judgement is one for both)
REPLICATING = {POSTGRESQL.service: _pg_replicating, MARIADB.service: _mariadb_replicating}


def replication_health(pairs: list[dict], devices: dict[str, dict], repl: dict[tuple[str, str], dict]) -> dict[str, dict]:
    """Each pair's live state, keyed by its id: the roles its members have now (``serving``: the one not a replica),
    ``state`` ok / lagging (over its lag target, or a synchronous pair whose primary's commits no longer wait for it:
    its RPO of 0 is lost) / broken / unknown, the lag, the ``mode`` it replicates in now (sync or async, None where the
    primary's readings cannot tell: a MariaDB pair's never do) and why. Whether it replicates is read where its engine
    tells (``REPLICATING``: a PostgreSQL primary's standbys streaming, a MariaDB replica's own threads); the lag is
    the replica's own. A member's readings count only where its device's are trusted (``devices``: the merged device
    records)."""
    roles = {p["id"]: {m: _role(p["service"], devices[m]["databases"].get(p["service"]), repl.get((m, p["service"]), {}))
                       for m in (p["primary"], p["standby"])} for p in pairs}
    # a primary must see every member that is in recovery under it streaming (netops_pg_replicas counts them)
    # and its commits wait for each synchronous one the inventory gives it (the inventory's direction only: a
    # promoted standby serves as `dr setup` or the drill configured it, which the rules do not judge either)
    expected: dict[tuple[str, str], int] = {}  # (primary, service) -> its members replicating under it now
    expected_sync: dict[tuple[str, str], int] = {}
    for p in pairs:
        r = roles[p["id"]]
        if sorted(r.values()) == ["primary", "standby"]:
            key = (next(m for m, role in r.items() if role == "primary"), p["service"])
            expected[key] = expected.get(key, 0) + 1
            if p["sync"] and key[0] == p["primary"]:
                expected_sync[key] = expected_sync.get(key, 0) + 1
    out = {}
    for p in pairs:
        r = roles[p["id"]]
        serving = [m for m, role in r.items() if role == "primary"]
        rec = {"state": "unknown", "serving": serving[0] if len(serving) == 1 else None, "roles": r, "swapped": False,
               "streaming": None, "sync_standbys": None, "mode": None, "lag_seconds": None, "reason": None}
        if len(serving) == 2:
            # before `dr setup` as after a failover whose old primary came back unfenced, or a MariaDB replica whose
            # channel is gone: nothing replicates
            rec.update(state="broken", reason="两端均为主库：复制未建立或双主 / both members are primary: "
                                              "replication not set up, or split brain")
        elif not serving:
            if "unknown" in r.values():
                rec["reason"] = "无数据 / no data"
            else:
                rec.update(state="broken", reason="无主库在服务 / no member serves as primary")
        else:
            primary = serving[0]
            other = p["standby"] if primary == p["primary"] else p["primary"]
            key = (primary, p["service"])
            readings = repl.get(key, {})
            rec["swapped"] = primary != p["primary"]
            rec["sync_standbys"] = readings.get("sync_standbys")
            rec["streaming"], broken = REPLICATING[p["service"]](primary, other, repl, expected.get(key, 0))
            if r[other] == "down":
                rec.update(state="broken", reason=f"{other} 数据库停止 / database down")
            elif r[other] == "unknown" or rec["streaming"] is None:
                rec["reason"] = "无数据 / no data"
            elif broken:
                rec.update(state="broken", reason=broken)
            else:
                lag = repl.get((other, p["service"]), {}).get("replica_lag_s", readings.get("replica_lag_s"))
                sync, want = rec["sync_standbys"], expected_sync.get(key, 0)
                rec.update(lag_seconds=lag, mode=_mode(sync, expected[key]))
                problems = []
                if p["sync"] and not rec["swapped"] and sync is not None and sync < want:
                    problems.append(f"同步复制降为异步：{primary} 同步备库 {sync:g}/{want}，RPO 不再为 0 / "
                                    f"synchronous replication fell back to async: {sync:g} of {want} synchronous "
                                    "standbys, RPO is no longer 0")
                if lag is not None and lag > p["max_lag_seconds"]:
                    problems.append(f"复制延迟 {lag:g} s（目标 {p['max_lag_seconds']:g} s）/ "
                                    f"lagging {lag:g} s (target {p['max_lag_seconds']:g} s)")
                rec.update(state="lagging" if problems else "ok", reason="; ".join(problems) or None)
        out[p["id"]] = rec
    return out


def _mode(sync: float | None, standbys: int) -> str | None:
    """How a primary replicates now, from how many of its ``standbys`` its commits wait for (``sync``): async when
    none, sync when all, None when it cannot tell (no reading, or some of several: which ones is not collected)."""
    if sync is None:
        return None
    return "async" if sync == 0 else "sync" if sync >= standbys else None


def _oper(v: float | None) -> str | None:
    """ifOperStatus / ifAdminStatus as its MIB name."""
    if v is None:
        return None
    name = IF_STATUS.get(v)  # 1.0 == 1: float values find the int keys
    return name if name is not None else str(int(v))


# --- serving ---------------------------------------------------------------------------------------------

class HealthMap:
    """The map's state behind the server: the topology once; health merged at most every CACHE_SECONDS, and
    never waited for once there is some: a page that finds it older is answered with it at once while a
    background refresh asks the Prometheus servers (a national map asks 32 of them, ~2 s). Only the first
    request after the server started waits, for the refresh ``warm()`` began."""

    def __init__(self, inv: Inventory, sources: list[Source], refresh: int = REFRESH_SECONDS):
        self.inv, self.sources = inv, sources
        topo = topology(inv, refresh)
        self.pairs = topo["replication"]
        self.topology = json.dumps(topo, ensure_ascii=False).encode()
        self._refreshing = threading.Lock()  # one refresh at a time; whoever waits for one shares its result
        self._health: tuple[float, bytes] | None = None  # (monotonic time merged, the document)

    def _refresh(self) -> bytes:
        with self._refreshing:
            if self._health is not None and time.monotonic() - self._health[0] <= CACHE_SECONDS:
                return self._health[1]  # merged while this one waited for the lock
            doc = merge(self.inv, fetch_all(self.sources), pairs=self.pairs)
            self._health = (time.monotonic(), json.dumps(doc, ensure_ascii=False).encode())
            return self._health[1]

    def warm(self) -> None:
        """Start a refresh in the background unless one runs."""
        if not self._refreshing.locked():
            threading.Thread(target=self._refresh, daemon=True).start()

    def health(self) -> bytes:
        last = self._health
        if last is None:
            return self._refresh()
        if time.monotonic() - last[0] > CACHE_SECONDS:
            self.warm()
        return last[1]


COOKIE = "netops_map"
TOKEN_MIN = 16  # characters of an access token
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer",
                    "Cache-Control": "no-store"}


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or a name) is this machine's loopback: no other machine reaches it."""
    try:
        return all(ipaddress.ip_address(a[4][0]).is_loopback for a in socket.getaddrinfo(host, None))
    except (OSError, ValueError):
        return False


def server_names(host: str) -> set[str]:
    """The names a request's Host may give besides the address it arrived at: the listen name, and
    ``localhost`` on loopback or this host's names on a wildcard address."""
    names = {host.lower()}
    if host in ("0.0.0.0", "::", ""):
        names |= {socket.gethostname().lower(), socket.getfqdn().lower()}
    elif is_loopback(host):
        names.add("localhost")
    return names


def _session(token: str) -> str:
    """The cookie value: derived from the token, so the browser never stores the token itself."""
    return hmac.new(token.encode(), b"jinbao-netops health map session", hashlib.sha256).hexdigest()


def login_page(error: str = "") -> bytes:
    msg = f'<p class="error">{escape.html(error)}</p>' if error else ""
    return f"""<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"><title>健康地图 登录 · Health map login</title>
<style>body{{font-family:sans-serif;margin:4em auto;max-width:28em}}input{{width:100%;padding:.4em;margin:.4em 0}}.error{{color:#b22}}</style>
</head><body><h1>金保工程 健康地图 <small>Health map</small></h1>
<p>请输入访问令牌 / Enter the map's access token (the operator's <code>--token-file</code>).</p>{msg}
<form method="post" action="/login"><input type="password" name="token" id="token" autocomplete="current-password" autofocus>
<input type="submit" value="登录 / Log in"></form></body></html>
""".encode()


def make_server(hm: HealthMap, host: str, port: int, token: str | None = None) -> ThreadingHTTPServer:
    """The map's HTTP server on ``host:port``. Every request's Host is checked (421 otherwise); with
    ``token`` every request but the login needs the session cookie or ``Authorization: Bearer``."""
    static = resources.files("jinbao_netops.monitoring") / "static"
    names = server_names(host)
    session = _session(token) if token else None

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            if not self._host_ok():
                return
            if token and not self._authorised():
                given = urllib.parse.parse_qs(url.query).get("token", [""])[0]
                if given and hmac.compare_digest(given.encode(), token.encode()):  # ?token= once: a cookie, a clean URL
                    return self._logged_in()
                if url.path in ("/", "/index.html"):
                    return self._send(401, "text/html", login_page("令牌错误 / wrong token" if given else ""))
                return self._send(401, "text/plain", b"401 unauthorised: log in at / first\n")
            if url.path == "/api/topology":
                self._send(200, "application/json", hm.topology)
            elif url.path == "/api/health":
                self._send(200, "application/json", hm.health())
            elif url.path in STATIC:
                name, ctype = STATIC[url.path]
                self._send(200, ctype, (static / name).read_bytes())
            else:
                self._send(404, "text/plain", b"not found\n")

        def do_POST(self):
            if not self._host_ok():
                return
            if urllib.parse.urlsplit(self.path).path != "/login" or not token:
                return self._send(404, "text/plain", b"not found\n")
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if not 0 <= length <= 4096:
                return self._send(400, "text/plain", b"400 bad request\n")
            given = urllib.parse.parse_qs(self.rfile.read(length).decode(errors="replace")).get("token", [""])[0]
            if hmac.compare_digest(given.encode(), token.encode()):
                return self._logged_in()
            self._send(401, "text/html", login_page("令牌错误 / wrong token"))

        def _host_ok(self) -> bool:
            """The Host names this server (the address the request came to, or one of ``names``): a page
            served from another name (DNS rebinding) gets 421 and nothing else."""
            try:
                parts = urllib.parse.urlsplit("//" + (self.headers.get("Host") or ""))
                name, hport = (parts.hostname or "").rstrip("."), parts.port
            except ValueError:  # a malformed Host
                name, hport = "", None
            ok = bool(name) and hport in (None, self.server.server_address[1])
            if ok and name not in names:
                try:
                    ok = ipaddress.ip_address(name) == ipaddress.ip_address(self.connection.getsockname()[0])
                except ValueError:
                    ok = False
            if not ok:
                self._send(421, "text/plain", b"421 misdirected request: this server does not serve that Host\n")
            return ok

        def _authorised(self) -> bool:
            auth = self.headers.get("Authorization") or ""
            if auth.startswith("Bearer ") and hmac.compare_digest(auth[7:].strip().encode(), token.encode()):
                return True
            cookies = dict(c.strip().partition("=")[::2] for c in (self.headers.get("Cookie") or "").split(";"))
            return hmac.compare_digest(cookies.get(COOKIE, "").encode(), session.encode())

        def _logged_in(self):
            """The session cookie, and on to the map (always /: nothing from the request picks where)."""
            self.send_response(303)
            self.send_header("Location", "/")
            self.send_header("Set-Cookie", f"{COOKIE}={session}; Path=/; HttpOnly; SameSite=Strict")
            self.send_header("Content-Length", "0")
            for k, v in SECURITY_HEADERS.items():
                self.send_header(k, v)
            self.end_headers()

        def _send(self, code: int, ctype: str, body: bytes):
            self.send_response(code)
            self.send_header("Content-Type", f"{ctype}; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            for k, v in SECURITY_HEADERS.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):  # quiet: the terminal shows the address, not every request
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


# --- the command -----------------------------------------------------------------------------------------

def register_verb(verbs, common) -> None:
    w = verbs.add_parser("web", parents=[common], help="serve the live health map (four levels coloured by Prometheus)",
                         description="Serve the live health map: the four-level topology coloured by live health from "
                                     "each province's Prometheus, firing alerts, a site's devices and interfaces on click.")
    w.add_argument("--listen", default="127.0.0.1:8470", metavar="ADDR:PORT",
                   help="where to serve (default 127.0.0.1:8470); an address beyond loopback needs --allow-remote "
                        "and --token-file")
    w.add_argument("--allow-remote", action="store_true",
                   help="allow --listen beyond loopback (other machines reach the map; a token is then required)")
    w.add_argument("--token-file", metavar="PATH",
                   help="the access token: a file only its owner can read (chmod 600), or - for stdin; the page asks "
                        "for it once, scripts send 'Authorization: Bearer TOKEN' 访问令牌"),
    w.add_argument("--prometheus", action="append", default=[], metavar="[SITE=]URL",
                   help="a Prometheus to read, repeatable; SITE= names the site it covers (without: the whole "
                        "network). Default: each province's and the ministry's Prometheus, where `netops monitor up` runs them")
    w.add_argument("--refresh", type=int, default=REFRESH_SECONDS, metavar="S", help="page refresh interval (default 5)")
    mode = w.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true",
                      help="serve, read the page and both APIs from the server once, print the map's health and exit "
                           "(0 ok, 1 a site down or a replication pair broken, 3 a Prometheus unreachable)")
    mode.add_argument("--detach", action="store_true",
                      help="serve in the background (replacing a map this command started on the same port), print "
                           "the address and return; log and pid file in $NETOPS_RUN_DIR (default /run/jinbao-netops)")
    mode.add_argument("--stop", action="store_true", help="stop the map that --detach started on this --listen port")
    w.set_defaults(func=cmd_web)


def default_sources(inv: Inventory) -> list[Source]:
    """Every Prometheus where `netops monitor up` runs it: each province's (device detail and alerts) and the
    ministry's (its alerts about whole provinces, e.g. ProvinceUnreachable)."""
    return [Source(e["prometheus"], inv.ministry.id if key == "ministry" else key, e["alertmanager"])
            for key, e in stack.endpoints(inv).items()]


def parse_sources(inv: Inventory, specs: list[str]) -> list[Source]:
    out = []
    for spec in specs:
        scope, _, url = spec.partition("=") if "=" in spec.split("://", 1)[0] else (None, "", spec)
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise UsageError(f"monitor web: --prometheus {spec!r}: give [SITE=]http://HOST:PORT")
        if scope is not None and scope not in inv.sites:
            raise UsageError(f"monitor web: --prometheus {spec!r}: site {scope!r} is not in the inventory")
        out.append(Source(url, scope))
    return out


def _listen(spec: str) -> tuple[str, int]:
    host, sep, port = spec.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise UsageError(f"monitor web: --listen {spec!r}: give ADDR:PORT, e.g. 127.0.0.1:8470")
    return host.strip("[]") or "0.0.0.0", int(port)


def read_token(path: str) -> str:
    """The access token from ``path`` (a regular file of the running user that no one else may read)
    or stdin (``-``): its first line, at least TOKEN_MIN printable characters."""
    if path == "-":
        text = sys.stdin.readline()
    else:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
        except OSError as e:
            raise UsageError(f"{path}: --token-file: cannot read 无法读取: {e.strerror or e}") from None
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_mode & 0o077 or st.st_uid != os.geteuid():
                raise UsageError(f"{path}: --token-file: must be a regular file of this user that no one else may read "
                                 "(chmod 600) 令牌文件权限过宽")
            text = fh.read(4096).decode(errors="replace").split("\n", 1)[0]
    token = text.strip()
    if len(token) < TOKEN_MIN or not token.isprintable() or any(c.isspace() for c in token):
        raise UsageError(f"{path}: --token-file: the token must be at least {TOKEN_MIN} printable characters without "
                         "spaces (e.g. `openssl rand -hex 16`) 令牌太短")
    return token


def _access(args, host: str) -> str | None:
    """The token the map requires (None: none), refusing a listen address beyond loopback without
    --allow-remote and a token."""
    if not is_loopback(host) and not (args.allow_remote and args.token_file):
        raise UsageError(f"monitor web: --listen {args.listen}: beyond loopback other machines reach the map; that needs "
                         "--allow-remote and --token-file (docs/SECURITY.md) 远程访问需要 --allow-remote 与访问令牌")
    return read_token(args.token_file) if args.token_file else None


def cmd_web(args, out: Out) -> int:
    inv = load(args.inventory)
    if args.refresh < 1:
        raise UsageError("monitor web: --refresh must be at least 1 second")
    host, port = _listen(args.listen)
    token = None if args.stop else _access(args, host)
    sources = parse_sources(inv, args.prometheus) or default_sources(inv)
    if args.stop or args.detach:
        if port == 0:
            raise UsageError(f"monitor web: --listen {args.listen}: --detach and --stop need a fixed port")
        stopped = _stop(port)
        if args.stop:
            if out.json_mode:
                out.json({"ok": True, "stopped": stopped, "port": port})
            else:
                out.print(f"健康地图已停止 / health map stopped (pid {stopped})" if stopped else
                          f"端口 {port} 上没有后台健康地图 / no detached health map on port {port}")
            return OK
        return _detach(args, host, port, token, out)
    hm = HealthMap(inv, sources, args.refresh)
    hm.warm()  # the first page finds health merged, or waits only for the rest of this refresh
    gc.freeze()  # the inventory lives as long as the server: keep it out of every refresh's GC passes
    try:
        server = make_server(hm, host, port, token)
    except OSError as e:
        raise UsageError(f"monitor web: --listen {args.listen}: {e.strerror or e}") from None
    url = _url(host, server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        if args.check:
            return _check(inv, _url(host, server.server_address[1], local=True), token, out)
        srcs = [{"scope": s.scope or "*", "prometheus": s.url} for s in sources]
        with procs.StopOnSignal() as stop:  # before the address is printed: a SIGTERM right after it is ours
            if out.json_mode:
                # one line, flushed: a script reads the address and leaves the server running
                sys.stdout.write(json.dumps({"ok": True, "url": url, "sources": srcs}, ensure_ascii=False) + "\n")
                sys.stdout.flush()
            else:
                out.print(f"健康地图 Health map: {url}")
                out.table("数据源 Prometheus sources", ["范围 scope", "Prometheus"], [[s["scope"], s["prometheus"]] for s in srcs])
                out.print("Ctrl-C 停止 / to stop")
            stop.wait()
        out.note("健康地图已停止 / health map stopped")
        return OK
    finally:
        server.shutdown()
        server.server_close()


def _run_dir() -> Path:
    return Path(os.environ.get("NETOPS_RUN_DIR", "/run/jinbao-netops"))


def _stop(port: int) -> int | None:
    """Stop the detached map on ``port`` (only a process whose command line is this map's); its pid or None."""
    pidfile = _run_dir() / f"healthmap-{port}.pid"
    try:
        pid = int(pidfile.read_text())
    except (OSError, ValueError):
        pid = None
    pidfile.unlink(missing_ok=True)

    def mine(cmd: list[str]) -> bool:  # this map's server, not a process that reused the pid
        return "web" in cmd and any(a.endswith(f":{port}") for a in cmd)

    if not procs.ours(pid, mine):
        return None
    procs.end([pid], mine)
    return pid


def _url(host: str, port: int, local: bool = False) -> str:
    """The map's address: on a wildcard address this host's name (``local``: loopback, to reach it from here)."""
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1" if local else socket.getfqdn()
    return f"http://{host if ':' not in host else f'[{host}]'}:{port}/"


def _read_map(url: str, token: str | None, timeout: float) -> bytes:
    """One of the map's own pages, as a script reads it (the token as a bearer header)."""
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.read()


def _detach(args, host: str, port: int, token: str | None, out: Out) -> int:
    """The same command without --detach, in its own session, logging to the run directory; the token
    goes to it on stdin, never on its command line."""
    argv = [sys.executable, "-m", "jinbao_netops.cli", "monitor", "web", "--json", "--listen", f"{host}:{port}",
            "--refresh", str(args.refresh), *(["-i", args.inventory] if args.inventory else []),
            *(["--allow-remote"] if args.allow_remote else []), *(["--token-file", "-"] if token else []),
            *(x for p in args.prometheus for x in ("--prometheus", p))]
    run = _run_dir()
    run.mkdir(parents=True, exist_ok=True)
    log = run / f"healthmap-{port}.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE if token else subprocess.DEVNULL, stdout=fh, stderr=fh,
                                start_new_session=True)
    if token:
        proc.stdin.write(f"{token}\n".encode())
        proc.stdin.close()
    url, probe = _url(host, port), _url(host, port, local=True)
    for _ in range(300):
        if proc.poll() is not None:
            tail = (log.read_text().strip().splitlines() or ["exited"])[-1]
            raise UsageError(f"monitor web --detach: the server exited {proc.returncode}: {tail}")
        try:
            _read_map(probe + "api/topology", token, 2)
            break
        except OSError:
            time.sleep(0.1)
    else:
        proc.terminate()
        raise UsageError(f"monitor web --detach: nothing serves at {url} after 30 s (log: {log})")
    write_atomic(run / f"healthmap-{port}.pid", str(proc.pid))
    if out.json_mode:
        out.json({"ok": True, "url": url, "pid": proc.pid, "log": str(log)})
    else:
        out.print(f"健康地图 Health map: {url}  (后台 background pid {proc.pid}; 停止 stop: netops monitor web --stop "
                  f"--listen {host}:{port})")
    return OK


def _firing(health: dict) -> int:
    return sum(a["state"] == "firing" and not a["suppressed"] for a in health["alerts"])


MODES = {"sync": "同步 sync", "async": "异步 async"}


def _mode_text(sync: bool, live: str | None) -> str:
    """A pair's mode as it is now where known (and the inventory's when they differ), else the inventory's."""
    want = "sync" if sync else "async"
    return MODES[live or want] + (f"（清单 inventory: {MODES[want]}）" if live and live != want else "")


def _check(inv: Inventory, url: str, token: str | None, out: Out) -> int:
    """Read the page and both APIs through the server, as a browser would."""
    def get(path: str) -> bytes:
        return _read_map(url + path, token, QUERY_TIMEOUT * 3)

    page = get("")
    topo = json.loads(get("api/topology"))
    health = json.loads(get("api/health"))
    served = b'id="map"' in page and len(topo["sites"]) == len(inv.sites) and set(health["sites"]) == set(inv.sites)
    unreachable = [s for s in health["sources"] if not s["ok"]]
    down = sorted(sid for sid, s in health["sites"].items() if s["health"] == "down")
    broken = sorted(pid for pid, p in health["replication"].items() if p["state"] == "broken")
    status = FINDINGS if not served or down or broken else PARTIAL if unreachable else OK
    if out.json_mode:
        out.json({"ok": status == OK, "url": url, "served": served, "summary": health["summary"], "down": down,
                  "broken_pairs": broken, "firing": _firing(health), "sources": health["sources"],
                  "replication": health["replication"]})
        return status
    out.print(f"健康地图 Health map: {url}  ({'served 正常服务' if served else 'NOT served 服务异常'})")
    out.table("数据源 Prometheus sources", ["范围 scope", "Prometheus", "ok", "s", "错误 error"],
              [[s["scope"] or "*", s["url"], "✓" if s["ok"] else "✗", s["seconds"], s["error"] or ""] for s in health["sources"]])
    sm = health["summary"]
    out.print(f"站点 sites: 正常 ok {sm['ok']} · 告警 warn {sm['warn']} · 故障 down {sm['down']} · 未知 unknown {sm['unknown']}"
              + (f" — 故障 down: {', '.join(down)}" if down else "")
              + f" · 告警 firing alerts: {_firing(health)}")
    rows = []
    for p in topo["replication"]:
        h = health["replication"][p["id"]]
        rows.append([p["primary"], p["standby"], p["service"], _mode_text(p["sync"], h["mode"]), h["state"],
                     (h["serving"] or "-") + (" (已切换 failed over)" if h["swapped"] else ""),
                     "-" if h["lag_seconds"] is None else f"{h['lag_seconds']:g}", h["reason"] or ""])
    if rows:
        out.table("灾备复制 DR replication", ["主库 primary", "备库 standby", "引擎 engine", "模式 mode", "状态 state",
                                          "当前主库 serving", "延迟 lag s", "原因 reason"], rows)
    return status
