"""The health map (`netops monitor web`): the merge of Prometheus answers into site/device/link health
(pure, synthetic answers), and the server against a real Prometheus on loopback scraping synthetic
collector metrics (no lab)."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cdp import Chromium

from jinbao_netops.inventory import load
from jinbao_netops.monitoring import healthmap as web
from jinbao_netops import procs
from jinbao_netops.cli import main

INV = load(None)
REPO = Path(__file__).resolve().parent.parent
GD = sorted(d for s in INV.descendants("guangdong") for d in INV.devices_by_site.get(s, []))


def labels(dev: str, **extra) -> dict:
    lin = INV.lineage(INV.devices[dev].site)
    site = INV.devices[dev].site
    return {"device": dev, "site": site, "level": INV.sites[site].level.value, "province": "guangdong",
            "city": lin.get("city", ""), "county": lin.get("county", ""), **extra}


def healthy_results(devices=GD) -> dict:
    """What a province's Prometheus answers when everything there is fine."""
    res = {k: [] for k in web.QUERIES}
    res["collector_up"] = [({"job": "netops-collect", "province": "guangdong"}, 1.0)]
    for d in devices:
        res["snmp_up"].append((labels(d), 1.0))
        for ifname in INV.devices[d].interfaces:
            res["oper"].append((labels(d, interface=ifname), 1.0))
            res["admin"].append((labels(d, interface=ifname), 1.0))
            res["util"].append(({"device": d, "interface": ifname}, 0.01))
        for svc in INV.devices[d].services:
            res["db_up"].append((labels(d, service=svc), 1.0))
    for pair in web.replication_pairs(INV):  # replicating, nothing behind, as each engine's collector reads it
        for d, standby in ((pair["primary"], 0.0), (pair["standby"], 1.0)):
            if d in devices:
                lab = labels(d, service=pair["service"])
                for key, value in READINGS[pair["service"]](standby, pair["sync"]).items():
                    res[key].append((lab, value))
    return res


READINGS = {  # a pair member's readings (1.0: the standby): collectors/db.py through inventory/engines.py
    # PostgreSQL: in recovery on the standby; the primary streams to it, waits for it when the pair is synchronous
    "postgresql": lambda standby, sync: {"in_recovery": standby, "replicas": 1.0 - standby, "replica_lag_s": 0.0,
                                         "sync_standbys": (1.0 - standby) * sync},
    # MariaDB (SHOW ALL REPLICAS STATUS): the replica's channel, its threads and lag; the primary has no channel and
    # nothing else to say
    "mariadb": lambda standby, sync: {"replicas_configured": standby} | (
        {"replica_io_running": 1.0, "replica_sql_running": 1.0, "replica_lag_s": 0.0} if standby else {}),
}


def source(scope, results=None, alerts=(), ok=True) -> dict:
    return {"url": f"http://127.0.0.1:1/{scope}", "scope": scope, "ok": ok, "error": None if ok else "refused",
            "seconds": 0.01, "results": results or {}, "alerts": list(alerts)}


def put(res: dict, key: str, dev: str, value: float, **match) -> None:
    for lab, _ in res[key]:
        if lab["device"] == dev and all(lab.get(k) == v for k, v in match.items()):
            res[key].remove((lab, _))
            res[key].append((lab, value))
            return
    raise AssertionError(f"no {key} series for {dev} {match}")


def alert(name, severity, state="firing", **lab) -> dict:
    return {"labels": {"alertname": name, "severity": severity, **lab}, "state": state,
            "annotations": {"summary_zh": f"{name} 中文", "summary_en": f"{name} English", "runbook": "do this"},
            "activeAt": "2026-11-23T07:00:00Z"}


def test_all_healthy_province_is_green_and_the_rest_unknown():
    h = web.merge(INV, [source("guangdong", healthy_results())])
    gd_sites = set(INV.descendants("guangdong"))
    assert {s for s, v in h["sites"].items() if v["health"] == "ok"} == gd_sites
    # no source answers for sichuan or the ministry's own devices: grey, never green
    assert {s for s, v in h["sites"].items() if v["health"] == "unknown"} == set(INV.sites) - gd_sites
    assert h["summary"] == {"ok": len(gd_sites), "warn": 0, "down": 0, "unknown": len(INV.sites) - len(gd_sites)}
    assert h["links"]["guangzhou-up-core"] == {"health": "ok", "util": 0.01}
    assert h["links"]["longgang-up2"]["health"] == "planned"
    assert h["links"]["gd-up-bu"]["health"] == "ok"  # one end known and up (bu-r1's source not given)


def test_the_ministry_source_colours_the_ministry_own_site():
    """The ministry's Prometheus scrapes the ministry's own collector: its devices are green, and grey
    with the reason when that collector is not scraped."""
    bu = sorted(INV.devices_by_site[INV.ministry.id])
    ministry = healthy_results(bu)
    ministry["collector_up"] = [({"job": "netops-collect", "monitor": "bu-mon1", "level": "ministry"}, 1.0)]
    h = web.merge(INV, [source("guangdong", healthy_results()), source(INV.ministry.id, ministry)])
    assert h["sites"][INV.ministry.id]["health"] == "ok"
    assert all(h["devices"][d]["health"] == "ok" for d in bu)
    assert h["links"]["gd-up-bu"]["health"] == "ok"
    ministry["collector_up"] = [({"job": "netops-collect", "monitor": "bu-mon1", "level": "ministry"}, 0.0)]
    h = web.merge(INV, [source("guangdong", healthy_results()), source(INV.ministry.id, ministry)])
    assert h["sites"][INV.ministry.id]["health"] == "unknown"
    assert {h["devices"][d]["reason"] for d in bu} == {"采集器无数据 / collector not scraped"}
    assert h["sites"]["guangdong"]["health"] == "ok"  # a province's own collector still counts


def test_stopped_router_turns_its_site_red_and_its_links_down():
    res = healthy_results()
    put(res, "snmp_up", "huadu-r1", 0.0)
    for lab, _ in list(res["oper"]):  # a stopped router: the collector drops its series, its peers lose carrier
        if lab["device"] == "huadu-r1":
            res["oper"].remove((lab, _))
    up = INV.links["huadu-up1"]
    assert up.b.device == "guangzhou-r1"
    put(res, "oper", "guangzhou-r1", 2.0, interface=up.b.interface)
    h = web.merge(INV, [source("guangdong", res)])
    assert h["sites"]["huadu"]["health"] == "down"
    assert "huadu-r1: SNMP 无响应 / not answering" in h["sites"]["huadu"]["reasons"]
    assert h["devices"]["huadu-r1"]["health"] == "down" and h["devices"]["huadu-r1"]["snmp_up"] is False
    assert h["links"][up.id]["health"] == "down"
    # the city at the other end of the dead line: amber, not red (its own devices answer)
    assert h["sites"]["guangzhou"]["health"] == "warn"
    assert any(up.id in r for r in h["sites"]["guangzhou"]["reasons"])
    assert h["sites"]["panyu"]["health"] == "ok"


def test_database_down_is_red_and_saturation_amber():
    res = healthy_results()
    put(res, "db_up", "gd-db1", 0.0, service="postgresql")
    put(res, "util", "shenzhen-r1", 0.93, interface="eth1")
    h = web.merge(INV, [source("guangdong", res)])
    assert h["devices"]["gd-db1"]["health"] == "down"
    assert h["devices"]["gd-db1"]["databases"] == {"postgresql": False, "mariadb": True}
    assert h["sites"]["guangdong"]["health"] == "down"
    sat = next(lid for lid, lk in INV.links.items() if any(e.device == "shenzhen-r1" and e.interface == "eth1" for e in lk.ends()))
    assert h["links"][sat] == {"health": "saturated", "util": 0.93}
    assert h["sites"]["shenzhen"]["health"] == "warn"


def test_unreachable_prometheus_greys_its_province():
    h = web.merge(INV, [source("guangdong", healthy_results()), source("sichuan", ok=False)])
    for s in INV.descendants("sichuan"):
        assert h["sites"][s]["health"] == "unknown", s
    assert h["devices"]["sc-r1"]["reason"] == "Prometheus 不可达 / unreachable"
    assert [s["ok"] for s in h["sources"]] == [True, False] and "results" not in h["sources"][0]


def test_collector_down_greys_stale_series():
    res = healthy_results()
    res["collector_up"] = [({"job": "netops-collect", "province": "guangdong"}, 0.0)]
    h = web.merge(INV, [source("guangdong", res)])
    assert all(h["sites"][s]["health"] == "unknown" for s in INV.descendants("guangdong"))
    assert h["devices"]["gd-r1"]["reason"].startswith("采集器无数据")


def test_alerts_are_attributed_deduplicated_and_coloured():
    node = alert("DatabaseDown", "critical", device="panyu-db1", site="panyu", level="county", province="guangdong")
    link = alert("LinkDown", "critical", device="guangzhou-r1", interface="eth4", link="huadu-up1", level="city",
                 site="guangzhou", province="guangdong")
    warn = alert("DiskNearlyFull", "warning", device="shenzhen-db1", level="city", province="guangdong")
    pend = alert("NodeDown", "critical", state="pending", device="baoan-r1", site="baoan", province="guangdong")
    prov = alert("SnmpScrapeFailing", "critical", state="firing", province="sichuan", level="province")
    h = web.merge(INV, [source("guangdong", healthy_results(), [node, link, warn, pend]), source("sichuan", {}, [prov, node])])
    assert [(a["name"], a["site"]) for a in h["alerts"]] == [
        ("DatabaseDown", "panyu"), ("LinkDown", "guangzhou"), ("SnmpScrapeFailing", "sichuan"),
        ("DiskNearlyFull", "shenzhen"), ("NodeDown", "baoan")]  # firing first, critical first; the duplicate once
    assert h["sites"]["panyu"]["health"] == "down"         # critical alert at the site
    assert h["sites"]["guangzhou"]["health"] == "warn"     # a link's alert colours the link, the site amber
    assert h["links"]["huadu-up1"]["health"] == "down"
    assert h["sites"]["shenzhen"]["health"] == "warn"      # warning
    assert h["sites"]["baoan"]["health"] == "ok"           # pending is listed, does not colour
    assert h["sites"]["sichuan"]["health"] == "down"       # no device data, but a critical alert there
    assert h["alerts"][0]["summary_zh"] == "DatabaseDown 中文" and h["alerts"][0]["runbook"] == "do this"


def test_topology_document():
    t = web.topology(INV)
    assert [s["id"] for s in t["sites"]][:3] == ["bu", "guangdong", "guangdong_zaibei"]
    assert len(t["sites"]) == 17 and len(t["devices"]) == 46 and len(t["links"]) == len(INV.links)
    panyu = next(s for s in t["sites"] if s["id"] == "panyu")
    assert panyu["level"] == "county" and panyu["parent"] == "guangzhou" and panyu["province"] == "guangdong"
    assert panyu["devices"] == ["panyu-db1", "panyu-r1"]
    assert t["devices"]["gd-db1"]["services"] == ["postgresql", "mariadb"]


# --- replication pairs: the inventory's primary → DR standby, in the state the databases report ------------

def test_topology_lists_the_replication_pairs():
    t = web.topology(INV)
    assert t["replication"] == [
        # the county's MariaDB copied to the province data centre, itself the primary of the PostgreSQL pair
        {"id": "gd-db1", "primary": "panyu-db1", "standby": "gd-db1", "sync": False, "service": "mariadb",
         "service_address": None, "primary_site": "panyu", "standby_site": "guangdong", "max_lag_seconds": 5},
        {"id": "gd-dr-db1", "primary": "gd-db1", "standby": "gd-dr-db1", "sync": True, "service": "postgresql",
         "service_address": "10.44.0.100", "primary_site": "guangdong", "standby_site": "guangdong_zaibei", "max_lag_seconds": 5},
        {"id": "sc-db1", "primary": "shuangliu-db1", "standby": "sc-db1", "sync": False, "service": "mariadb",
         "service_address": None, "primary_site": "shuangliu", "standby_site": "sichuan", "max_lag_seconds": 5},
        {"id": "sc-dr-db1", "primary": "sc-db1", "standby": "sc-dr-db1", "sync": False, "service": "postgresql",
         "service_address": "10.51.0.100", "primary_site": "sichuan", "standby_site": "sichuan_zaibei", "max_lag_seconds": 5}]


def test_a_streaming_pair_is_ok_with_its_roles_and_lag():
    h = web.merge(INV, [source("guangdong", healthy_results())])
    assert h["replication"]["gd-dr-db1"] == {
        "state": "ok", "serving": "gd-db1", "roles": {"gd-db1": "primary", "gd-dr-db1": "standby"}, "swapped": False,
        "streaming": 1.0, "sync_standbys": 1.0, "mode": "sync", "lag_seconds": 0.0, "reason": None}
    # sichuan's Prometheus not given: its pair is unknown, never ok
    assert h["replication"]["sc-dr-db1"]["state"] == "unknown" and h["replication"]["sc-dr-db1"]["serving"] is None
    assert h["sites"]["guangdong"]["health"] == h["sites"]["guangdong_zaibei"]["health"] == "ok"


def test_a_pair_over_its_lag_target_is_lagging_and_its_sites_amber():
    res = healthy_results()
    put(res, "replica_lag_s", "gd-dr-db1", 42.5)  # the standby's own replay lag (the primary says 0: it is the max)
    h = web.merge(INV, [source("guangdong", res)])
    pair = h["replication"]["gd-dr-db1"]
    assert pair["state"] == "lagging" and pair["lag_seconds"] == 42.5 and pair["serving"] == "gd-db1"
    assert pair["reason"] == "复制延迟 42.5 s（目标 5 s）/ lagging 42.5 s (target 5 s)"
    for site in ("guangdong", "guangdong_zaibei"):  # both ends of the pair
        assert h["sites"][site]["health"] == "warn"
        assert f"gd-db1 → gd-dr-db1: {pair['reason']}" in h["sites"][site]["reasons"]
    put(res, "replica_lag_s", "gd-dr-db1", 5.0)  # at the target: still ok
    assert web.merge(INV, [source("guangdong", res)])["replication"]["gd-dr-db1"]["state"] == "ok"


def test_a_standby_not_streaming_is_broken():
    res = healthy_results()
    put(res, "replicas", "gd-db1", 0.0)  # the standby is in recovery but its primary sees nobody streaming
    put(res, "sync_standbys", "gd-db1", 0.0)  # nor waits for anyone: broken says it all, not also fallen back to async
    h = web.merge(INV, [source("guangdong", res)])
    pair = h["replication"]["gd-dr-db1"]
    assert pair["state"] == "broken" and pair["streaming"] == 0.0 and pair["lag_seconds"] is None
    assert pair["reason"] == "复制中断：gd-db1 在线备库 0/1 / broken: 0 of 1 standbys streaming"
    assert h["sites"]["guangdong_zaibei"]["health"] == "warn" and h["sites"]["guangdong"]["health"] == "warn"
    # the standby's database stopped: broken, and its site red for the database itself
    res = healthy_results()
    put(res, "db_up", "gd-dr-db1", 0.0, service="postgresql")
    h = web.merge(INV, [source("guangdong", res)])
    assert h["replication"]["gd-dr-db1"]["state"] == "broken"
    assert h["replication"]["gd-dr-db1"]["roles"] == {"gd-db1": "primary", "gd-dr-db1": "down"}
    assert h["replication"]["gd-dr-db1"]["reason"] == "gd-dr-db1 数据库停止 / database down"
    assert h["sites"]["guangdong_zaibei"]["health"] == "down"


def test_a_sync_pair_streaming_asynchronously_is_lagging_with_its_live_mode():
    """gd-dr-db1 is synchronous in the inventory; its primary still streams to it but no longer waits for it
    (synchronous_standby_names emptied, or the standby back under another application_name): RPO 0 is lost, which
    the inventory's `sync: true` alone would never show."""
    res = healthy_results()
    put(res, "sync_standbys", "gd-db1", 0.0)
    h = web.merge(INV, [source("guangdong", res)])
    pair = h["replication"]["gd-dr-db1"]
    assert pair["state"] == "lagging" and pair["mode"] == "async" and pair["streaming"] == 1.0
    assert pair["reason"] == ("同步复制降为异步：gd-db1 同步备库 0/1，RPO 不再为 0 / synchronous replication fell back "
                              "to async: 0 of 1 synchronous standbys, RPO is no longer 0")
    for site in ("guangdong", "guangdong_zaibei"):
        assert h["sites"][site]["health"] == "warn"
        assert f"gd-db1 → gd-dr-db1: {pair['reason']}" in h["sites"][site]["reasons"]
    put(res, "replica_lag_s", "gd-dr-db1", 42.5)  # and behind as well: both said
    assert web.merge(INV, [source("guangdong", res)])["replication"]["gd-dr-db1"]["reason"] == \
        pair["reason"] + "; 复制延迟 42.5 s（目标 5 s）/ lagging 42.5 s (target 5 s)"


def test_an_async_pair_is_not_judged_by_sync_and_a_collector_without_the_reading_leaves_the_mode_unknown():
    sc = healthy_results(["sc-db1", "sc-dr-db1"])
    pair = web.merge(INV, [source("sichuan", sc)])["replication"]["sc-dr-db1"]
    assert pair["state"] == "ok" and pair["mode"] == "async" and pair["sync_standbys"] == 0.0
    put(sc, "sync_standbys", "sc-db1", 1.0)  # an async pair found synchronous: shown, not judged
    pair = web.merge(INV, [source("sichuan", sc)])["replication"]["sc-dr-db1"]
    assert pair["state"] == "ok" and pair["mode"] == "sync"
    res = healthy_results()
    res["sync_standbys"] = []  # a collector from before the reading: the pair as before, its mode unknown
    pair = web.merge(INV, [source("guangdong", res)])["replication"]["gd-dr-db1"]
    assert pair["state"] == "ok" and pair["mode"] is None and pair["sync_standbys"] is None


def test_after_a_failover_the_map_shows_the_roles_as_they_are():
    """province-dc-lost promotes the DR standby: the map follows the databases, not the inventory."""
    res = healthy_results()
    put(res, "db_up", "gd-db1", 0.0, service="postgresql")  # the data centre is gone
    put(res, "in_recovery", "gd-dr-db1", 0.0)               # promoted
    put(res, "replicas", "gd-dr-db1", 0.0)
    h = web.merge(INV, [source("guangdong", res)])
    assert h["replication"]["gd-dr-db1"] == {
        "state": "broken", "serving": "gd-dr-db1", "roles": {"gd-db1": "down", "gd-dr-db1": "primary"}, "swapped": True,
        "streaming": 0.0, "sync_standbys": 0.0, "mode": None, "lag_seconds": None, "reason": "gd-db1 数据库停止 / database down"}
    # the old primary re-synced as the standby of the DR site (before the planned switchover back): ok, swapped
    put(res, "db_up", "gd-db1", 1.0, service="postgresql")
    put(res, "in_recovery", "gd-db1", 1.0)
    put(res, "replicas", "gd-db1", 0.0)
    put(res, "replicas", "gd-dr-db1", 1.0)
    put(res, "replica_lag_s", "gd-db1", 0.25, service="postgresql")
    h = web.merge(INV, [source("guangdong", res)])
    assert h["replication"]["gd-dr-db1"] == {
        "state": "ok", "serving": "gd-dr-db1", "roles": {"gd-db1": "standby", "gd-dr-db1": "primary"}, "swapped": True,
        "streaming": 1.0, "sync_standbys": 0.0, "mode": "async", "lag_seconds": 0.25, "reason": None}
    assert h["sites"]["guangdong"]["health"] == "ok"


def test_two_primaries_are_broken_and_no_data_is_unknown():
    res = healthy_results()
    put(res, "in_recovery", "gd-dr-db1", 0.0)  # promoted while the primary still serves: split brain
    h = web.merge(INV, [source("guangdong", res)])
    assert h["replication"]["gd-dr-db1"]["state"] == "broken" and h["replication"]["gd-dr-db1"]["serving"] is None
    assert "split brain" in h["replication"]["gd-dr-db1"]["reason"]
    res = healthy_results()
    res["collector_up"] = [({"job": "netops-collect", "province": "guangdong"}, 0.0)]  # stale series are not read
    h = web.merge(INV, [source("guangdong", res)])
    assert h["replication"]["gd-dr-db1"]["state"] == "unknown"
    assert h["replication"]["gd-dr-db1"]["roles"] == {"gd-db1": "unknown", "gd-dr-db1": "unknown"}
    res = healthy_results()
    put(res, "db_up", "gd-db1", 0.0, service="postgresql")  # primary down, standby not promoted
    assert web.merge(INV, [source("guangdong", res)])["replication"]["gd-dr-db1"]["reason"] == \
        "无主库在服务 / no member serves as primary"


# --- MariaDB pairs (GTID, asynchronous): judged from the replica's own readings, a primary cannot see its replicas -----

def test_a_mariadb_pair_is_ok_from_its_replicas_threads_and_lag():
    """panyu-db1 → gd-db1 (MariaDB) beside gd-db1 → gd-dr-db1 (PostgreSQL): one server, a replica of one engine and
    the primary of the other; each pair has its own roles."""
    h = web.merge(INV, [source("guangdong", healthy_results())])
    assert h["replication"]["gd-db1"] == {
        "state": "ok", "serving": "panyu-db1", "roles": {"panyu-db1": "primary", "gd-db1": "standby"}, "swapped": False,
        "streaming": 1.0, "sync_standbys": None, "mode": None, "lag_seconds": 0.0, "reason": None}
    assert h["replication"]["gd-dr-db1"]["roles"] == {"gd-db1": "primary", "gd-dr-db1": "standby"}
    assert h["replication"]["gd-dr-db1"]["state"] == "ok"
    assert h["sites"]["panyu"]["health"] == h["sites"]["guangdong"]["health"] == "ok"
    assert h["replication"]["sc-db1"]["state"] == "unknown"  # sichuan's Prometheus not given
    res = healthy_results()
    put(res, "replica_lag_s", "gd-db1", 42.5, service="mariadb")  # Seconds_Behind_Master, over the pair's target
    h = web.merge(INV, [source("guangdong", res)])
    pair = h["replication"]["gd-db1"]
    assert pair["state"] == "lagging" and pair["lag_seconds"] == 42.5
    assert pair["reason"] == "复制延迟 42.5 s（目标 5 s）/ lagging 42.5 s (target 5 s)"
    for site in ("panyu", "guangdong"):
        assert h["sites"][site]["health"] == "warn" and f"panyu-db1 → gd-db1: {pair['reason']}" in h["sites"][site]["reasons"]
    assert h["replication"]["gd-dr-db1"]["state"] == "ok"  # the PostgreSQL pair is not the MariaDB one's lag


@pytest.mark.parametrize("stopped,reason", [
    (["replica_io_running"], "复制中断：gd-db1 的 IO 线程停止 / broken: gd-db1's replica IO thread stopped"),
    (["replica_sql_running"], "复制中断：gd-db1 的 SQL 线程停止 / broken: gd-db1's replica SQL thread stopped"),
    (["replica_io_running", "replica_sql_running"],
     "复制中断：gd-db1 的 IO/SQL 线程停止 / broken: gd-db1's replica IO and SQL threads stopped"),
])
def test_a_mariadb_replica_with_a_thread_stopped_is_broken(stopped, reason):
    res = healthy_results()
    for key in stopped:
        put(res, key, "gd-db1", 0.0, service="mariadb")
    h = web.merge(INV, [source("guangdong", res)])
    pair = h["replication"]["gd-db1"]
    assert (pair["state"], pair["streaming"], pair["reason"], pair["serving"]) == ("broken", 0.0, reason, "panyu-db1")
    assert pair["lag_seconds"] is None  # MariaDB says 0 behind once its SQL thread stops: not a lag to show
    for site in ("panyu", "guangdong"):
        assert h["sites"][site]["health"] == "warn" and f"panyu-db1 → gd-db1: {reason}" in h["sites"][site]["reasons"]
    assert h["replication"]["gd-dr-db1"]["state"] == "ok"


def test_a_mariadb_replica_without_its_channel_or_a_member_down_is_broken_and_no_data_unknown():
    res = healthy_results()
    put(res, "replicas_configured", "gd-db1", 0.0)  # RESET REPLICA ALL: no channel, no threads to read
    res["replica_io_running"], res["replica_sql_running"] = [], []
    res["replica_lag_s"] = [(lab, v) for lab, v in res["replica_lag_s"] if lab["service"] != "mariadb"]
    pair = web.merge(INV, [source("guangdong", res)])["replication"]["gd-db1"]
    assert pair["state"] == "broken" and pair["roles"] == {"panyu-db1": "primary", "gd-db1": "primary"}
    assert pair["reason"].startswith("两端均为主库：复制未建立")
    res = healthy_results()
    put(res, "db_up", "gd-db1", 0.0, service="mariadb")
    h = web.merge(INV, [source("guangdong", res)])
    assert h["replication"]["gd-db1"]["state"] == "broken"
    assert h["replication"]["gd-db1"]["reason"] == "gd-db1 数据库停止 / database down"
    assert h["replication"]["gd-dr-db1"]["state"] == "ok"  # its PostgreSQL serves on
    res = healthy_results()
    put(res, "db_up", "panyu-db1", 0.0, service="mariadb")
    h = web.merge(INV, [source("guangdong", res)])
    assert h["replication"]["gd-db1"]["state"] == "broken"
    assert h["replication"]["gd-db1"]["reason"] == "无主库在服务 / no member serves as primary"
    res = healthy_results()
    res["replica_io_running"] = []  # a collector that does not read the threads: never ok
    pair = web.merge(INV, [source("guangdong", res)])["replication"]["gd-db1"]
    assert pair["state"] == "unknown" and pair["reason"] == "无数据 / no data"


@pytest.mark.parametrize("args,err", [
    (["--prometheus", "ftp://x"], "--prometheus 'ftp://x': give [SITE=]http://HOST:PORT"),
    (["--prometheus", "hubei=http://127.0.0.1:9"], "site 'hubei' is not in the inventory"),
    (["--listen", "nowhere"], "--listen 'nowhere': give ADDR:PORT"),
    (["--refresh", "0"], "--refresh must be at least 1 second"),
])
def test_bad_options_are_one_line_exit_2(args, err, capsys):
    assert main(["monitor", "web", "--check", *args]) == 2
    e = capsys.readouterr().err
    assert e.count("\n") == 1 and err in e


# --- against a real Prometheus on loopback ----------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def exposition(res: dict) -> str:
    names = {k: web.QUERIES[k] for k in ("snmp_up", "oper", "admin", "db_up", *web.REPLICATION)}
    lines = []
    for key, name in names.items():
        for lab, v in res[key]:
            lines.append(name + "{" + ",".join(f'{k}="{v2}"' for k, v2 in sorted(lab.items())) + "} " + repr(v))
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory):
    """A real Prometheus scraping a synthetic guangdong collector every second, with one alert rule."""
    tmp = tmp_path_factory.mktemp("prom")
    state = {"text": exposition(healthy_results())}

    class Exporter(BaseHTTPRequestHandler):
        def do_GET(self):
            body = state["text"].encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    exporter = ThreadingHTTPServer(("127.0.0.1", 0), Exporter)
    threading.Thread(target=exporter.serve_forever, daemon=True).start()
    (tmp / "rules.yml").write_text(
        "groups:\n- name: t\n  rules:\n  - alert: NodeDown\n    expr: netops_snmp_up == 0\n"
        "    labels: {severity: critical}\n    annotations: {summary_zh: '设备 {{ $labels.device }} 无响应', summary_en: down, runbook: r}\n")
    (tmp / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\nrule_files: [rules.yml]\nscrape_configs:\n"
        f"- job_name: netops-collect\n  honor_labels: true\n  static_configs:\n"
        f"  - targets: ['127.0.0.1:{exporter.server_address[1]}']\n    labels: {{province: guangdong}}\n")
    port = free_port()
    proc = subprocess.Popen(["prometheus", f"--config.file={tmp / 'prometheus.yml'}", f"--storage.tsdb.path={tmp / 'data'}",
                             f"--web.listen-address=127.0.0.1:{port}"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: web.fetch(web.Source(url))["results"].get("snmp_up"), proc)
        yield {"url": url, "state": state}
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        exporter.shutdown()


def wait_for(cond, proc=None, tries=300):
    for _ in range(tries):
        try:
            v = cond()
        except OSError:  # not listening yet
            v = None
        if v:
            return v
        assert proc is None or proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.1)
    raise AssertionError("condition not met")


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read()


DRAWN = "[...document.querySelectorAll('g.site')].map(g => g.dataset.site)"
ARTIFACTS = Path(os.environ.get("NETOPS_TEST_ARTIFACTS", REPO / "out" / "test-artifacts"))
VIEWPORTS = [(1366, 768), (1920, 1080)]


def visit(page, site: str) -> None:
    """Go to a site by the short link #/SITE (the page writes the full path) and wait until it is shown."""
    page.eval(f"location.hash = '#/{site}'")
    page.wait_for(f"document.body.dataset.place === '{site}'", 30)


def drawn_everywhere(page, inv) -> dict[str, str]:
    """Every site's colour as the map draws it: the map draws one place at a time, so visit each place that has
    sites under it (the country, each province, each city)."""
    seen = {}
    for place in sorted({s.parent for s in inv.sites.values() if s.parent}):
        visit(page, place)
        drawn = page.eval("Object.fromEntries([...document.querySelectorAll('g.site')].map(g => [g.dataset.site, g.dataset.health]))")
        assert all(seen.get(k, v) == v for k, v in drawn.items()), (place, drawn)
        seen.update(drawn)
    return seen


def viewport(page, width: int, height: int) -> None:
    page.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)


def fits(page) -> bool:
    """Nothing off-screen sideways: neither the page nor the map scrolls horizontally."""
    return page.eval("document.documentElement.scrollWidth <= innerWidth && "
                     "document.getElementById('mapbox').scrollWidth <= document.getElementById('mapbox').clientWidth")


def _stop_and_heal(server, prometheus) -> None:
    """Stop the map's server and put the test Prometheus back to all-healthy (the next test's start)."""
    prometheus["state"]["text"] = exposition(healthy_results())
    server.shutdown()
    server.server_close()

    def picture(h: dict) -> tuple:
        return ({s: v["health"] for s, v in h["sites"].items()}, {p: r["state"] for p, r in h["replication"].items()})
    healthy = picture(web.merge(INV, [source("guangdong", healthy_results())]))

    def healed() -> bool:  # the whole picture back to healthy, not only snmp_up (a standby database left down by
        f = web.fetch(web.Source(prometheus["url"], "guangdong"))  # the failover test failed the next test once)
        return f["ok"] and not f["alerts"] and picture(web.merge(INV, [f])) == healthy
    wait_for(healed)


def test_server_page_apis_and_a_device_going_down(prometheus):
    closed = free_port()
    hm = web.HealthMap(INV, [web.Source(prometheus["url"], "guangdong"), web.Source(f"http://127.0.0.1:{closed}", "sichuan")])
    server = web.make_server(hm, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        page = get(base).decode()
        assert 'id="map"' in page and "http" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")  # no outside assets
        assert b"function" in get(base + "app.js") and b".site" in get(base + "style.css")
        assert len(json.loads(get(base + "api/topology"))["sites"]) == 17
        h = json.loads(get(base + "api/health"))
        assert h["sites"]["huadu"]["health"] == "ok" and h["sites"]["chengdu"]["health"] == "unknown"
        assert [s["ok"] for s in h["sources"]] == [True, False]
        res = healthy_results()
        put(res, "snmp_up", "huadu-r1", 0.0)
        prometheus["state"]["text"] = exposition(res)

        def red():
            h = json.loads(get(base + "api/health"))
            return h if h["sites"]["huadu"]["health"] == "down" and h["alerts"] else None

        h = wait_for(red, tries=100)
        assert h["alerts"][0]["name"] == "NodeDown" and h["alerts"][0]["summary_zh"] == "设备 huadu-r1 无响应"
        assert h["alerts"][0]["site"] == "huadu"
    finally:
        _stop_and_heal(server, prometheus)


def test_a_page_never_waits_for_a_refresh_once_health_was_merged(monkeypatch):
    """Health older than CACHE_SECONDS is answered at once, the last merge, while one background refresh asks the
    Prometheus servers (a national map asks 32, ~2 s); the next page gets the new merge. (It used to make the
    page wait for the round trips.)"""
    gate, calls = threading.Event(), []

    def fetch_all(sources, timeout=web.QUERY_TIMEOUT):
        calls.append(len(calls) + 1)
        assert len(calls) == 1 or gate.wait(60)  # every refresh after the first blocks until the test lets it go
        return []

    monkeypatch.setattr(web, "fetch_all", fetch_all)
    monkeypatch.setattr(web, "merge", lambda inv, fetched, pairs=None: {"merge": len(calls)})
    hm = web.HealthMap(INV, [web.Source("http://127.0.0.1:9")])
    assert json.loads(hm.health()) == {"merge": 1}  # the first request waits: there is nothing to show yet
    monkeypatch.setattr(web, "CACHE_SECONDS", 0.0)  # from now on every merge is stale
    answers: list[bytes] = []
    pages = threading.Thread(target=lambda: answers.extend(hm.health() for _ in range(3)), daemon=True)
    pages.start()
    pages.join(30)
    try:
        assert not pages.is_alive(), "a page waited for the refresh"
        assert [json.loads(a) for a in answers] == [{"merge": 1}] * 3
        wait_for(lambda: len(calls) == 2)
        assert len(calls) == 2  # three stale pages, one refresh
    finally:
        gate.set()
    assert wait_for(lambda: json.loads(hm.health())["merge"] >= 2)


def test_cli_check_json(prometheus, capsys):
    assert main(["monitor", "web", "--check", "--json", "--listen", "127.0.0.1:0", "--prometheus", prometheus["url"]]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["served"] and rep["url"].startswith("http://127.0.0.1:") and rep["down"] == []
    assert rep["summary"]["ok"] >= len(INV.descendants("guangdong")) - 1  # one source for all: sichuan/bu unknown


def test_cli_check_unreachable_is_partial(capsys):
    assert main(["monitor", "web", "--check", "--listen", "127.0.0.1:0", "--prometheus", f"http://127.0.0.1:{free_port()}"]) == 3
    out = capsys.readouterr().out
    assert "未知 unknown 17" in out and "Connection refused" in out


def test_cli_serves_until_sigterm(prometheus):
    env = {k: v for k, v in os.environ.items() if k != "NETOPS_INVENTORY"}
    p = subprocess.Popen([sys.executable, "-m", "jinbao_netops.cli", "monitor", "web", "--json", "--listen", "127.0.0.1:0",
                          "--prometheus", prometheus["url"]], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = json.loads(p.stdout.readline())
        assert first["ok"] and first["sources"] == [{"scope": "*", "prometheus": prometheus["url"]}]
        assert b'id="map"' in get(first["url"])
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=20) == 0, p.stderr.read()
    finally:
        if p.poll() is None:
            p.kill()


def test_page_in_headless_chromium(prometheus, tmp_path):
    """The real page in real Chromium: every site drawn, coloured from the API, a site turning red, its detail."""
    hm = web.HealthMap(INV, [web.Source(prometheus["url"], "guangdong"), web.Source(f"http://127.0.0.1:{free_port()}", "sichuan")],
                       refresh=1)
    server = web.make_server(hm, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with Chromium() as page:
            page.goto(f"http://127.0.0.1:{server.server_address[1]}/#site=huadu")  # an old link still opens the site
            page.wait_for("document.body.dataset.ready === '1'", 60)
            assert page.eval("location.hash") == "#/guangdong/guangzhou/huadu"
            health = drawn_everywhere(page, INV)
            assert set(health) == set(INV.sites)
            assert {s for s, h in health.items() if h == "ok"} == set(INV.descendants("guangdong"))
            assert {s for s, h in health.items() if h == "unknown"} == set(INV.sites) - set(INV.descendants("guangdong"))
            visit(page, "longgang")  # its planned second uplink leaves the city: a stub on the county
            assert page.eval("document.querySelector('path.link[data-link=\"longgang-up2\"]').dataset.health") == "planned"
            visit(page, "huadu")
            assert "番禺" not in page.eval("document.getElementById('detail').innerText")
            assert "huadu-r1" in page.eval("document.getElementById('detail').innerText")  # #site=huadu selected it
            res = healthy_results()
            put(res, "snmp_up", "huadu-r1", 0.0)
            prometheus["state"]["text"] = exposition(res)
            page.wait_for("document.querySelector('g.site[data-site=\"huadu\"]').dataset.health === 'down'", 60)
            page.wait_for("document.getElementById('alert-list').innerText.includes('设备 huadu-r1 无响应')", 60)
            assert "SNMP 无响应" in page.eval("document.getElementById('detail').innerText")
            shot = page.screenshot(tmp_path / "healthmap.png")
            assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
            assert page.errors() == []
            print(f"screenshot 截图: {shot}")
    finally:
        _stop_and_heal(server, prometheus)


def test_replication_pairs_in_headless_chromium(prometheus, capsys):
    """The pair on the real page from a real Prometheus: a dotted line from the province DC to its DR site with a
    badge (mode, state, lag), the members' roles on their sites, the detail; then a failover turns the roles
    round, and `monitor web --check` finds the broken pair."""
    hm = web.HealthMap(INV, [web.Source(prometheus["url"], "guangdong")], refresh=1)
    server = web.make_server(hm, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    pair = "document.querySelector('{}[data-pair=\"gd-dr-db1\"]')"
    role = "document.querySelector('g.site[data-site=\"{}\"]').dataset.dbRole"
    try:
        with Chromium() as page:
            page.goto(f"http://127.0.0.1:{server.server_address[1]}/#site=guangdong_zaibei")
            page.wait_for("document.body.dataset.ready === '1'", 60)
            page.wait_for(pair.format("path.replica") + ".dataset.state === 'ok'", 60)
            assert page.eval(pair.format("path.replica") + " !== null") and page.eval(pair.format("g.replica-badge") + " !== null")
            assert page.eval(pair.format("g.replica-badge") + ".querySelector('text').textContent") == "PG 同步 sync · 正常 OK 0.0s"
            # gd-db1: the PostgreSQL primary and panyu-db1's MariaDB replica, each role with its engine
            assert page.eval(role.format("guangdong")) == "mariadb:standby postgresql:primary"
            assert page.eval("document.querySelector('g.site[data-site=\"guangdong\"] text.db-role').textContent") == \
                "MariaDB 备 S · PG 主 P"
            assert page.eval(role.format("guangdong_zaibei")) == "postgresql:standby"
            detail = page.eval("document.getElementById('detail').innerText")
            assert "gd-db1 → gd-dr-db1" in detail and "同步 sync · postgresql" in detail and "10.44.0.100" in detail
            visit(page, "sichuan")  # the other province's pair: drawn on its own province, unknown (no source)
            assert page.eval("document.querySelector('path.replica[data-pair=\"sc-dr-db1\"]').dataset.state") == "unknown"
            assert page.eval("document.querySelector('path.replica[data-pair=\"gd-dr-db1\"]')") is None
            visit(page, "panyu")  # the county's MariaDB primary: its pair in the detail, with its engine
            assert page.eval(role.format("panyu")) == "mariadb:primary"
            detail = page.eval("document.getElementById('detail').innerText")
            assert "panyu-db1 → gd-db1" in detail and "异步 async · mariadb" in detail
            visit(page, "guangdong_zaibei")
            # the primary no longer waits for its synchronous standby: amber, the badge says the mode it runs in now
            res = healthy_results()
            put(res, "sync_standbys", "gd-db1", 0.0)
            prometheus["state"]["text"] = exposition(res)
            page.wait_for(pair.format("path.replica") + ".dataset.state === 'lagging'", 60)
            assert page.eval(pair.format("g.replica-badge") + ".querySelector('text').textContent") == \
                "PG 异步 async（清单 inventory: 同步 sync） · 延迟 Lagging 0.0s"
            detail = page.eval("document.getElementById('detail').innerText")
            assert "异步 async（清单 inventory: 同步 sync） · postgresql" in detail and "RPO 不再为 0" in detail
            # `monitor web --check`: a degraded pair warns, as a lagging one does; only a broken one fails the check
            assert main(["monitor", "web", "--check", "--json", "--listen", "127.0.0.1:0", "--prometheus",
                         f"guangdong={prometheus['url']}"]) == 0
            rep = json.loads(capsys.readouterr().out)
            assert rep["broken_pairs"] == [] and rep["replication"]["gd-dr-db1"]["mode"] == "async"
            assert rep["replication"]["gd-dr-db1"]["state"] == "lagging"
            # the DR standby promoted, the data centre's database gone
            res = healthy_results()
            put(res, "db_up", "gd-db1", 0.0, service="postgresql")
            put(res, "in_recovery", "gd-dr-db1", 0.0)
            put(res, "replicas", "gd-dr-db1", 0.0)
            prometheus["state"]["text"] = exposition(res)
            page.wait_for(pair.format("path.replica") + ".dataset.state === 'broken'", 60)
            assert page.eval(role.format("guangdong_zaibei")) == "postgresql:primary"
            assert page.eval(role.format("guangdong")) == "mariadb:standby"  # its PostgreSQL gone, its MariaDB still copies
            assert page.eval(pair.format("g.replica-badge") + ".querySelector('text').textContent") == "PG 同步 sync · 中断 Broken ⇄"
            page.eval(pair.format("g.replica-badge") + ".dispatchEvent(new MouseEvent('click'))")  # the serving member's site
            assert page.eval("location.hash") == "#/guangdong/guangdong_zaibei"
            detail = page.eval("document.getElementById('detail').innerText")
            assert "gd-dr-db1 · 已切换 failed over" in detail and "gd-db1 数据库停止 / database down" in detail
            assert page.errors() == []
        assert main(["monitor", "web", "--check", "--json", "--listen", "127.0.0.1:0", "--prometheus",
                     f"guangdong={prometheus['url']}"]) == 1
        rep = json.loads(capsys.readouterr().out)
        assert rep["broken_pairs"] == ["gd-dr-db1"] and rep["replication"]["gd-dr-db1"]["serving"] == "gd-dr-db1"
    finally:
        _stop_and_heal(server, prometheus)


@pytest.mark.parametrize("size", VIEWPORTS, ids=lambda v: f"{v[0]}x{v[1]}")
def test_drill_down_back_and_forward_in_headless_chromium(prometheus, size):
    """The country (the ministry and its provinces as tiles counting their sites), a province (its DC, DR site with
    the replication pair, cities), a city (its counties), a county (its detail): by mouse and keyboard, each place in
    the URL, back and forward, the breadcrumbs; nothing off-screen sideways; a screenshot of each place."""
    server = web.make_server(web.HealthMap(INV, [web.Source(prometheus["url"], "guangdong")], refresh=1), "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    shots = ARTIFACTS / f"healthmap-{size[0]}x{size[1]}"
    shots.mkdir(parents=True, exist_ok=True)
    gd, sc = set(INV.descendants("guangdong")), set(INV.descendants("sichuan"))
    try:
        with Chromium() as page:
            viewport(page, *size)
            page.goto(f"http://127.0.0.1:{server.server_address[1]}/")
            page.wait_for("document.body.dataset.ready === '1'", 60)

            def place() -> tuple:
                crumbs = page.eval("[...document.querySelectorAll('#crumbs li')].map(li => li.innerText)")
                return page.eval("location.hash"), page.eval("document.body.dataset.view"), sorted(page.eval(DRAWN)), crumbs

            def activate(act, hash_: str) -> None:
                """Click or press, then wait for the place it leads to; a lost action is aimed and made again, as a
                user would. On a machine loaded by the lab tests a click on a tile was lost once and a focused tile's
                Enter once (CI, health refreshed every second here); not reproduced on an idle machine, cause not
                pinned down. The place each action leads to is still asserted in full below."""
                for attempt in range(5):
                    act()
                    try:
                        page.wait_for(f"location.hash === '{hash_}'", 3)
                        return
                    except AssertionError:
                        if attempt == 4:
                            raise

            def click(selector: str) -> None:
                page.click(*page.center(selector))

            def enter_on(selector: str) -> None:
                page.eval(f"document.querySelector({json.dumps(selector)}).focus()")
                page.enter("")

            assert place() == ("", "bu", ["bu", "guangdong", "sichuan"], ["全国 National"])
            tile = "document.querySelector('g.site[data-site=\"{}\"]').dataset"
            # a tile counts its whole place (the province DC itself, its DR site, cities and counties)
            counts = page.eval(f"({{...{tile.format('guangdong')}}})")
            assert {k: counts[k] for k in ("health", "ok", "warn", "down", "unknown")} == {
                "health": "ok", "ok": str(len(gd)), "warn": "0", "down": "0", "unknown": "0"}
            assert page.eval(f"{tile.format('sichuan')}.unknown") == str(len(sc))
            assert page.eval(f"{tile.format('bu')}.ok") == str(len(gd))
            assert fits(page)
            page.screenshot(shots / "1-national.png")
            activate(lambda: click('g.site[data-site="guangdong"]'), "#/guangdong")  # a real click on the tile
            assert place() == ("#/guangdong", "guangdong", ["guangdong", "guangdong_zaibei", "guangzhou", "shenzhen"],
                               ["全国 National", "广东省"])
            assert page.eval("document.querySelector('path.replica[data-pair=\"gd-dr-db1\"]').dataset.state") == "ok"
            assert page.eval("document.getElementById('detail').innerText").startswith("广东省社会保险数据中心")
            assert fits(page)
            page.screenshot(shots / "2-province.png")
            activate(lambda: enter_on('g.site[data-site="guangzhou"]'), "#/guangdong/guangzhou")  # the keyboard
            assert place() == ("#/guangdong/guangzhou", "guangzhou", ["guangzhou", "huadu", "panyu"],
                               ["全国 National", "广东省", "广州市"])
            assert page.eval("document.querySelector('path.link[data-link=\"huadu-up1\"]').dataset.health") == "ok"
            activate(lambda: click('g.site[data-site="huadu"]'), "#/guangdong/guangzhou/huadu")  # a county, among its city's
            assert place()[:2] == ("#/guangdong/guangzhou/huadu", "guangzhou")
            assert page.eval("document.querySelector('g.site.selected').dataset.site") == "huadu"
            assert "huadu-r1" in page.eval("document.getElementById('detail').innerText")
            assert fits(page)
            page.screenshot(shots / "3-county.png")
            for move, hash_ in (("back", "#/guangdong/guangzhou"), ("back", "#/guangdong"), ("forward", "#/guangdong/guangzhou")):
                page.eval(f"history.{move}()")
                page.wait_for(f"location.hash === '{hash_}' && document.body.dataset.place === '{hash_.split('/')[-1]}'", 30)
            assert place()[1] == "guangzhou"
            page.click(*page.center("#crumbs a"))  # 全国: the country again
            page.wait_for("document.body.dataset.view === 'bu'", 30)
            assert page.eval("location.hash") == "#/"
            assert page.errors() == []
    finally:
        server.shutdown()
        server.server_close()


def test_url_restores_the_place_and_search_finds_sites(prometheus):
    """A shared link opens its place (the full path, a short #/SITE, an old #site=SITE; an unknown one the country);
    the search finds a site by its id (pinyin) or Chinese name, prefix matches first, from the keyboard."""
    server = web.make_server(web.HealthMap(INV, [web.Source(prometheus["url"], "guangdong")], refresh=1), "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    hits = "[...document.querySelectorAll('#search-results a')].map(a => a.dataset.site)"
    try:
        with Chromium() as page:
            for link, full in (("#/guangdong/shenzhen/longgang", "#/guangdong/shenzhen/longgang"),
                               ("#/longgang", "#/guangdong/shenzhen/longgang"), ("#/sichuan_zaibei", "#/sichuan/sichuan_zaibei"),
                               ("#/nowhere/at/all", "#/"), ("#/%E0%A4%A", "#/")):
                page.goto("about:blank")
                page.goto(base + link)
                page.wait_for("document.body.dataset.ready === '1'", 60)
                assert page.eval("location.hash") == full, link
            page.goto("about:blank")
            page.goto(base + "#/guangdong/shenzhen/longgang")
            page.wait_for("document.body.dataset.ready === '1'", 60)
            assert page.eval("document.body.dataset.view") == "shenzhen"
            assert page.eval("[...document.querySelectorAll('#crumbs li')].map(li => li.innerText)") == [
                "全国 National", "广东省", "深圳市", "龙岗区"]
            assert page.eval("document.getElementById('detail').innerText").startswith("龙岗区社会保险经办中心")
            assert page.eval("document.body.dataset.renderMs") is not None
            page.eval("document.activeElement.blur()")
            page.call("Input.dispatchKeyEvent", type="keyDown", key="/", code="Slash", text="/")  # / focuses the search
            assert page.eval("document.activeElement.id") == "search"
            page.call("Input.insertText", text="guang")
            assert page.eval(hits) == ["guangdong", "guangdong_zaibei", "guangzhou"]  # prefixes, higher levels first
            page.eval("document.getElementById('search').value = ''")
            page.call("Input.insertText", text="番禺")  # a Chinese name
            assert page.eval(hits) == ["panyu"]
            page.enter("")  # Enter takes the first hit
            assert page.eval("location.hash") == "#/guangdong/guangzhou/panyu"
            assert page.eval("document.activeElement.dataset.site") == "panyu"  # focus on the site found
            assert page.eval("document.getElementById('search-results').hidden")
            page.eval("document.getElementById('search').focus()")
            page.call("Input.insertText", text="dong")  # substrings too: 广东 (guangdong), 成都 is not
            assert page.eval(hits) == ["guangdong", "guangdong_zaibei"]
            page.call("Input.dispatchKeyEvent", type="keyDown", key="ArrowDown", code="ArrowDown", windowsVirtualKeyCode=40)
            page.call("Input.dispatchKeyEvent", type="keyDown", key="ArrowDown", code="ArrowDown", windowsVirtualKeyCode=40)
            assert page.eval("document.activeElement.dataset.site") == "guangdong_zaibei"
            page.enter("")  # a hit is a link: Enter follows it
            page.wait_for("location.hash === '#/guangdong/guangdong_zaibei'", 30)
            page.eval("document.getElementById('search').focus()")
            page.call("Input.insertText", text="xyz")
            assert page.eval("document.getElementById('search-results').innerText") == "无匹配站点 / no site matches"
            assert page.errors() == []
    finally:
        server.shutdown()
        server.server_close()


def test_detach_then_stop(netops, tmp_path):
    from conftest import clean_env

    env = clean_env(NETOPS_RUN_DIR=str(tmp_path))
    port = free_port()
    spec = ["--listen", f"127.0.0.1:{port}", "--prometheus", f"http://127.0.0.1:{free_port()}"]
    r = netops("monitor", "web", "--detach", "--json", *spec, env=env)
    try:
        assert r.returncode == 0, r.stderr
        rep = json.loads(r.stdout)
        assert rep["url"] == f"http://127.0.0.1:{port}/" and (tmp_path / f"healthmap-{port}.pid").read_text() == str(rep["pid"])
        assert b'id="map"' in get(rep["url"])
        again = json.loads(netops("monitor", "web", "--detach", "--json", *spec, env=env).stdout)  # replaces the first
        assert again["pid"] != rep["pid"] and not procs.running(rep["pid"])
    finally:
        r = netops("monitor", "web", "--stop", "--json", *spec, env=env)  # never leave a server behind
    assert json.loads(r.stdout) == {"ok": True, "stopped": again["pid"], "port": port}
    with pytest.raises(OSError):
        get(rep["url"])
    assert json.loads(netops("monitor", "web", "--stop", "--json", *spec, env=env).stdout)["stopped"] is None
    assert netops("monitor", "web", "--detach", "--listen", "127.0.0.1:0", env=env).returncode == 2


def test_large_inventory_draws_one_place_at_a_time(tmp_path):
    """Hundreds of sites: the country is the ministry and its provinces; a province clicked is its DC, DR site and
    cities; each city its counties — every site drawn in its place, and never more than one place at once."""
    from jinbao_netops.inventory.generate import generate, write

    write(generate(3, 13, 197), tmp_path / "inv")
    big = load(tmp_path / "inv")
    assert len(big.sites) > 150
    provs = sorted(s.id for s in big.sites.values() if s.level.value == "province")
    server = web.make_server(web.HealthMap(big, [web.Source(f"http://127.0.0.1:{free_port()}")]), "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with Chromium() as page:
            page.goto(f"http://127.0.0.1:{server.server_address[1]}/")
            page.wait_for("document.body.dataset.ready === '1'", 60)
            assert sorted(page.eval(DRAWN)) == sorted([big.ministry.id, *provs])
            page.eval(f"document.querySelector('g.site[data-site=\"{provs[1]}\"]').dispatchEvent(new MouseEvent('click'))")
            under = {s.id for s in big.sites.values() if s.parent == provs[1]}
            assert sorted(page.eval(DRAWN)) == sorted({provs[1], *under})
            assert page.eval("[...document.querySelectorAll('g.site')].every(g => g.dataset.health === 'unknown')")
            seen = drawn_everywhere(page, big)
            assert set(seen) == set(big.sites) and set(seen.values()) == {"unknown"}
            assert page.errors() == []
    finally:
        server.shutdown()
        server.server_close()


def test_alerts_suppressed_by_a_real_alertmanager_do_not_colour(tmp_path):
    """The generated Alertmanager inhibits the alert of a county its city's dead router cuts off (the root cause
    SitesCutOff names it): the map lists it as suppressed and leaves the county's colour to its own devices."""
    from jinbao_netops.monitoring import generate as gen

    gen.generate(INV, tmp_path / "m")
    port = free_port()
    am = subprocess.Popen(["prometheus-alertmanager", f"--config.file={tmp_path / 'm/alertmanager/alertmanager.yml'}",
                           f"--storage.path={tmp_path / 'am'}", f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    city = {"alertname": "SitesCutOff", "severity": "critical", "level": "city", "device": "guangzhou-r1",
            "site": "guangzhou", "province": "guangdong", "city": "guangzhou", "cut_off_county": "huadu"}
    county = {"alertname": "LinkDown", "severity": "critical", "level": "county", "device": "huadu-r1", "interface": "eth1",
              "link": "huadu-up1", "site": "huadu", "province": "guangdong", "city": "guangzhou", "county": "huadu", "uplink": "true"}
    try:
        wait_for(lambda: get(url + "/-/ready"), am)
        body = json.dumps([{"labels": {**lab, "monitor": "gd-mon1"}} for lab in (city, county)]).encode()  # + an external label
        urllib.request.urlopen(urllib.request.Request(url + "/api/v2/alerts", data=body, method="POST",
                                                      headers={"Content-Type": "application/json"}), timeout=10).read()
        held = wait_for(lambda: web._suppressed(url, 5))
    finally:
        am.terminate()
        am.wait(timeout=20)
    assert held == [{**county, "monitor": "gd-mon1"}]
    assert web._suppressed(url, 1) == []  # gone: nothing known to be suppressed, no error
    rec = source("guangdong", healthy_results(), [alert(name=lab["alertname"], severity=lab["severity"],
                                                        **{k: v for k, v in lab.items() if k not in ("alertname", "severity")})
                                                  for lab in (city, county)])
    rec["suppressed"] = held
    h = web.merge(INV, [rec])
    assert {a["device"]: a["suppressed"] for a in h["alerts"]} == {"guangzhou-r1": False, "huadu-r1": True}
    assert h["alerts"][-1]["device"] == "huadu-r1"  # held-back alerts after the live ones
    assert h["sites"]["huadu"]["health"] == "ok" and h["sites"]["guangzhou"]["health"] == "down"


# --- the map is not an open door: loopback by default, Host checked, a token beyond loopback -------------

def _serve(token=None, host="127.0.0.1"):
    server = web.make_server(web.HealthMap(INV, [web.Source(f"http://127.0.0.1:{free_port()}")]), host, 0, token)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _request(port, path="/", host=None, method="GET", body=None, headers=()):
    """(status, headers, body) of one request with the Host header given as is."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest(method, path, skip_host=True)
        conn.putheader("Host", host if host is not None else f"127.0.0.1:{port}")
        for k, v in headers:
            conn.putheader(k, v)
        conn.putheader("Content-Length", str(len(body or b"")))
        conn.endheaders(body)
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        conn.close()


def test_a_host_header_that_does_not_name_the_server_is_421():
    """A DNS-rebinding page (evil.example resolving to 127.0.0.1) read the map through the victim's browser."""
    server = _serve()
    port = server.server_address[1]
    try:
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost"):
            assert _request(port, "/api/topology", host)[0] == 200, host
        for host in (f"evil.example:{port}", "evil.example", f"127.0.0.1:{port + 1}", f"10.0.0.1:{port}", "", "[::1"):
            status, headers, body = _request(port, "/api/topology", host)
            assert status == 421 and b"sites" not in body, host
            assert headers["X-Frame-Options"] == "DENY" and headers["X-Content-Type-Options"] == "nosniff"
    finally:
        server.shutdown()
        server.server_close()


def test_with_a_token_every_request_needs_the_session_or_the_bearer():
    token = "s3cret-token-0123456789"
    server = _serve(token)
    port = server.server_address[1]
    try:
        status, _, body = _request(port, "/")
        assert status == 401 and b'name="token"' in body and b'id="map"' not in body  # the login form, not the map
        assert _request(port, "/api/health")[0] == 401 and _request(port, "/app.js")[0] == 401
        assert _request(port, "/api/topology", headers=[("Authorization", "Bearer nope-nope-nope-nope")])[0] == 401
        assert _request(port, "/api/topology", headers=[("Authorization", f"Bearer {token}")])[0] == 200
        form = [("Content-Type", "application/x-www-form-urlencoded")]
        status, _, body = _request(port, "/login", method="POST", body=b"token=wrong-wrong-wrong", headers=form)
        assert status == 401 and "令牌错误 / wrong token".encode() in body
        status, headers, _ = _request(port, "/login", method="POST", body=f"token={token}".encode(), headers=form)
        assert status == 303 and headers["Location"] == "/"
        cookie = headers["Set-Cookie"]
        assert cookie.endswith("; Path=/; HttpOnly; SameSite=Strict") and token not in cookie
        session = cookie.split(";")[0]
        assert _request(port, "/api/health", headers=[("Cookie", f"a=b; {session}")])[0] == 200
        status, headers, _ = _request(port, f"/?token={token}")  # once, from a link: a cookie and a clean URL
        assert status == 303 and headers["Location"] == "/" and headers["Set-Cookie"].split(";")[0] == session
        assert _request(port, "/", f"evil.example:{port}", headers=[("Cookie", session)])[0] == 421  # Host first
    finally:
        server.shutdown()
        server.server_close()


def _token_file(tmp_path, token="0123456789abcdef0123", mode=0o600, name="token"):
    f = tmp_path / name
    f.write_text(token + "\n")
    f.chmod(mode)
    return str(f)


@pytest.mark.parametrize("extra, err", [
    ([":0"], "--listen :0: beyond loopback other machines reach the map; that needs --allow-remote and --token-file"),
    (["0.0.0.0:0"], "beyond loopback"),
    (["0.0.0.0:0", "--allow-remote"], "needs --allow-remote and --token-file"),
    (["0.0.0.0:0", "--allow-remote", "--token-file", "{open}"], "--token-file: must be a regular file of this user that "
                                                                 "no one else may read (chmod 600)"),
    (["0.0.0.0:0", "--allow-remote", "--token-file", "{short}"], "--token-file: the token must be at least 16"),
])
def test_listening_beyond_loopback_needs_the_flag_and_a_token(tmp_path, capsys, extra, err):
    """`--listen :PORT` bound every interface with no authentication."""
    files = {"open": _token_file(tmp_path, mode=0o644), "short": _token_file(tmp_path, "short", name="short")}
    argv = ["monitor", "web", "--check", "--prometheus", f"http://127.0.0.1:{free_port()}", "--listen",
            *(a.format(**files) for a in extra)]
    assert main(argv) == 2
    e = capsys.readouterr().err
    assert e.count("\n") == 1 and err in e and "0123456789abcdef" not in e


def test_remote_listen_with_a_token_serves_on_every_interface(tmp_path, capsys):
    """--allow-remote with a 0600 token file: bound to the wildcard address, read with the token."""
    assert main(["monitor", "web", "--check", "--json", "--listen", "0.0.0.0:0", "--allow-remote", "--token-file",
                 _token_file(tmp_path), "--prometheus", f"http://127.0.0.1:{free_port()}"]) == 3  # served; Prometheus down
    rep = json.loads(capsys.readouterr().out)
    assert rep["served"] and rep["url"].startswith("http://127.0.0.1:")


def test_the_token_reaches_a_detached_map_on_stdin_not_argv(netops, tmp_path):
    from conftest import clean_env

    env = clean_env(NETOPS_RUN_DIR=str(tmp_path))
    port = free_port()
    token = "0123456789abcdef0123"
    spec = ["--listen", f"127.0.0.1:{port}", "--prometheus", f"http://127.0.0.1:{free_port()}"]
    r = netops("monitor", "web", "--detach", "--json", *spec, "--token-file", _token_file(tmp_path, token), env=env)
    try:
        assert r.returncode == 0, r.stderr
        pid = json.loads(r.stdout)["pid"]
        assert token not in open(f"/proc/{pid}/cmdline").read() and token not in open(f"/proc/{pid}/environ").read()
        with pytest.raises(urllib.error.HTTPError, match="401"):
            get(f"http://127.0.0.1:{port}/api/topology")
        req = urllib.request.Request(f"http://127.0.0.1:{port}/api/topology", headers={"Authorization": f"Bearer {token}"})
        assert len(json.loads(urllib.request.urlopen(req, timeout=10).read())["sites"]) == 17
    finally:
        assert netops("monitor", "web", "--stop", *spec, env=env).returncode == 0


def test_login_and_rebinding_in_headless_chromium():
    """Real Chromium: a page from a rebinding name gets the 421, not the map; the map asks for the token,
    keeps the session in a cookie the page's scripts cannot read, and a ?token= link leaves no token in the URL."""
    token = "0123456789abcdef0123"
    server = _serve(token)
    port = server.server_address[1]
    try:
        with Chromium(hosts={"rebind.test": "127.0.0.1"}) as page:
            page.goto(f"http://rebind.test:{port}/")
            page.wait_for("document.readyState === 'complete' && document.body.innerText.includes('421')", 30)
            assert not page.eval("!!document.getElementById('map')")
            page.goto(f"http://127.0.0.1:{port}/#site=huadu")
            page.wait_for("!!document.getElementById('token')", 30)
            page.eval("document.getElementById('token').value = 'wrong-wrong-wrong-wrong'; document.forms[0].submit()")
            page.wait_for("document.body.innerText.includes('wrong token')", 30)
            page.eval(f"document.getElementById('token').value = '{token}'; document.forms[0].submit()")
            page.wait_for("document.body.dataset.ready === '1'", 60)
            assert sorted(page.eval(DRAWN)) == ["bu", "guangdong", "sichuan"]  # the country: the ministry, its provinces
            assert page.eval("document.cookie") == ""  # HttpOnly: no script of the page sees the session
        with Chromium() as page:
            page.goto(f"http://127.0.0.1:{port}/?token={token}")
            page.wait_for("document.body.dataset.ready === '1'", 60)
            assert page.eval("location.href") == f"http://127.0.0.1:{port}/"
    finally:
        server.shutdown()
        server.server_close()


def test_zones_ring_their_sites_and_show_in_the_detail():
    """A province DC with a 外网 segment and a 前置区: the API gives each device's zone, the page rings the
    site in both zones' colours and its detail names each device's zone (real Chromium)."""
    zoned = load(Path(__file__).parent / "fixtures/zones/inventory.yml")
    t = web.topology(zoned)
    gd = next(s for s in t["sites"] if s["id"] == "guangdong")
    assert gd["zones"] == ["business", "dmz", "internet"]
    assert t["devices"]["gd-web1"]["zone"] == "internet" and t["devices"]["gd-fw1"]["boundary"] is True
    assert not t["devices"]["gd-web1"]["boundary"]
    assert next(s for s in t["sites"] if s["id"] == "bu")["zones"] == ["business"]
    server = web.make_server(web.HealthMap(zoned, [web.Source(f"http://127.0.0.1:{free_port()}")]), "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with Chromium() as page:
            page.goto(f"http://127.0.0.1:{server.server_address[1]}/")
            page.wait_for("document.body.dataset.ready === '1'", 60)
            rings = "s => [...document.querySelectorAll(`g.site[data-site=\"${s}\"] rect.zone`)].map(r => r.getAttribute('class'))"
            assert page.eval(f"({rings})('guangdong')") == ["zone zone-dmz", "zone zone-internet"]
            assert page.eval(f"({rings})('bu')") == []
            assert page.eval("getComputedStyle(document.querySelector('rect.zone-internet')).stroke") == "rgb(142, 68, 173)"
            page.eval("document.querySelector('g.site[data-site=\"guangdong\"]').dispatchEvent(new MouseEvent('click'))")
            detail = page.eval("document.getElementById('detail').innerText")
            assert "外网 internet" in detail and "前置区 DMZ · 边界 boundary" in detail
            assert page.errors() == []
    finally:
        server.shutdown()
        server.server_close()


HOSTILE = '<img src=x onerror="window.pwned=1">第1县 & </svg>'


def test_national_inventory_one_place_at_a_time_in_headless_chromium(tmp_path):
    """3,255 sites: the country is 33 tiles whose counts add up to every site; the largest province and city fit the
    window at both sizes (no sideways scrolling), only one place's sites are ever in the page, the search finds a
    county among thousands, and a hostile site name is text everywhere it shows (tile, breadcrumbs, search)."""
    from jinbao_netops.inventory.generate import generate, write

    files = generate(32)
    files["guangdong.yml"] = files["guangdong.yml"].replace("name: 广东省第1市第1县社会保险经办中心",
                                                            "name: " + json.dumps(HOSTILE, ensure_ascii=False), 1)
    write(files, tmp_path / "national")
    nat = load(tmp_path / "national")
    assert len(nat.sites) == 3255 and nat.sites["p44c01k01"].name == HOSTILE
    under: dict[str, list[str]] = {}
    for s in nat.sites.values():
        if s.parent:
            under.setdefault(s.parent, []).append(s.id)
    provinces = [s for s in under[nat.ministry.id] if nat.sites[s].level.value == "province"]
    biggest = {lv: max((s for s in under if nat.sites[s].level.value == lv), key=lambda s: len(under[s]))
               for lv in ("province", "city")}
    server = web.make_server(web.HealthMap(nat, [web.Source(f"http://127.0.0.1:{free_port()}")]), "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    hits = "[...document.querySelectorAll('#search-results a')].map(a => a.dataset.site)"
    try:
        with Chromium() as page:
            for width, height in VIEWPORTS:
                viewport(page, width, height)
                page.goto("about:blank")
                page.goto(base)
                page.wait_for("document.body.dataset.ready === '1'", 120)
                assert sorted(page.eval(DRAWN)) == sorted([nat.ministry.id, *provinces])
                counts = page.eval("[...document.querySelectorAll('g.site.tile')].map(g => [g.dataset.site, Number(g.dataset.unknown)])")
                total = dict(counts)
                assert total[nat.ministry.id] == 3255 and sum(v for k, v in total.items() if k != nat.ministry.id) == 3254
                assert fits(page)
                page.screenshot(ARTIFACTS / f"healthmap-national-{width}x{height}.png")
                for place in biggest.values():
                    visit(page, place)
                    assert sorted(page.eval(DRAWN)) == sorted([place, *under[place]])
                    assert page.eval("document.querySelectorAll('svg g.site').length") == len(under[place]) + 1 < 60
                    assert fits(page)
                    page.screenshot(ARTIFACTS / f"healthmap-national-{nat.sites[place].level.value}-{width}x{height}.png")
            page.eval("document.getElementById('search').focus()")
            page.call("Input.insertText", text="p44c01k")
            assert page.eval(hits) == sorted(s for s in nat.sites if s.startswith("p44c01k"))[:12]
            page.eval("document.getElementById('search').value = ''")
            page.call("Input.insertText", text="onerror")
            assert page.eval(hits) == ["p44c01k01"]
            assert HOSTILE in page.eval("document.getElementById('search-results').innerText")
            page.enter("")
            assert page.eval("location.hash") == "#/guangdong/p44c01/p44c01k01"
            assert page.eval("document.querySelector('#crumbs [aria-current]').textContent") == HOSTILE.replace("社会保险", "")[:10] + "…"
            assert page.eval("document.querySelector('#crumbs [aria-current]').title") == HOSTILE
            assert page.eval("document.querySelector('g.site[data-site=\"p44c01k01\"]').getAttribute('aria-label')") == HOSTILE
            assert page.eval("document.getElementById('detail').querySelector('h2').innerText").startswith(HOSTILE)
            assert page.eval("document.querySelectorAll('img').length") == 0 and page.eval("window.pwned") is None
            assert page.errors() == []
    finally:
        server.shutdown()
        server.server_close()
