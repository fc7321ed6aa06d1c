"""The monitoring stack live in the lab: real Prometheus and Alertmanager (Debian packages, systemd in the
monitor nodes), the province collectors, faults injected into the twin and read back through the APIs.

Lab timing (options of `monitor up`, not edits to the rules): 5 s scrape and collection rounds, 10 s
federation, every `for:` capped at 10 s. Each test restores what it broke before it ends.
"""
from __future__ import annotations

import json
import urllib.parse
from pathlib import Path

import pytest

from jinbao_netops import inventory
from jinbao_netops.monitoring import dashboards as dash
from jinbao_netops.monitoring import generate as gen
from jinbao_netops.monitoring.stack import Stack, endpoints, http_json
from jinbao_netops.lab.runtime import Lab

from dashboard_queries import queries, variable_selectors  # tests/ (as tests/cdp.py for the health map's test)

from .conftest import netops, until as wait_until

pytestmark = pytest.mark.lab
INV = inventory.load(inventory.DEFAULT_INVENTORY)
EP = endpoints(INV)
GD, MIN = EP["guangdong"], EP["ministry"]
FAST = ["--scrape-interval", "5", "--collect-interval", "5", "--max-for", "10"]
WAIT = 120  # generous: 40 nodes share this 2-core machine with whatever else runs


def query(prom: str, expr: str) -> dict[tuple, float]:
    res = http_json(f"{prom}/api/v1/query?query={urllib.parse.quote(expr)}")["data"]["result"]
    return {tuple(sorted(r["metric"].items())): float(r["value"][1]) for r in res}


def scalar(prom: str, expr: str) -> float | None:
    vals = list(query(prom, expr).values())
    return vals[0] if len(vals) == 1 else None


def prom_alerts(prom: str, state: str = "firing") -> list[dict]:
    return [a["labels"] for a in http_json(f"{prom}/api/v1/alerts")["data"]["alerts"] if a["state"] == state]


def am_alerts(am: str) -> list[dict]:
    return http_json(f"{am}/api/v2/alerts")


def until(what: str, fn, timeout: float = WAIT):
    return wait_until(what, fn, timeout)


@pytest.fixture(scope="module")
def stack(lab):
    r = netops("monitor", "up", "--json", *FAST, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    first = json.loads(r.stdout)
    try:
        # healthy baseline: every target scraped, federation carrying both provinces, nothing critical firing
        until("every target up", lambda: all(s["prometheus"].get("targets_up") and not s["prometheus"]["targets_down"]
                                             and not s["prometheus"]["targets_unscraped"]
                                             for s in Stack(INV, Lab("jinbao")).status()["servers"]))
        until("federated aggregates of both provinces at the ministry",
              lambda: len(query(MIN["prometheus"], "province:netops_snmp_up:sum")) == 2)
        yield first
    finally:
        down = netops("monitor", "down", "--json", timeout=300)
    assert down.returncode == 0, down.stdout + down.stderr
    assert Stack(INV, Lab("jinbao")).leftovers() == []
    st = json.loads(netops("monitor", "status", "--json").stdout)
    assert st["lab_up"] and not st["up"] and not st["installed"]


def test_up_is_ready_and_idempotent(stack):
    assert stack["ok"]
    assert stack["endpoints"] == EP
    again = json.loads(netops("monitor", "up", "--json", *FAST, check=True, timeout=300).stdout)
    assert again["changed"] == [] and "nothing changed" in again["message"]
    st = json.loads(netops("monitor", "status", "--json", check=True).stdout)
    assert st["up"] and {s["node"] for s in st["servers"]} == {"gd-mon1", "sc-mon1", "bu-mon1"}
    for s in st["servers"]:
        assert s["prometheus"]["service"] == s["alertmanager"]["service"] == "active", s
    # each monitor host's collector and trap receiver, and the ops host's textfile server
    assert {p["name"]: p["running"] for p in st["processes"]} == {
        **{f"{verb}-{where}": True for verb in ("collect", "traps") for where in ("guangdong", "sichuan", "ministry")},
        "textfile": True}
    assert all(p["failed_targets"] == 0 for p in st["processes"] if p["name"].startswith("collect-")), st["processes"]
    # the collector answers on the province monitor's management address, as if it ran there
    assert query(GD["prometheus"], 'up{job="netops-collect"}') == {
        (("__name__", "up"), ("instance", "10.254.44.15:9469"), ("job", "netops-collect"), ("level", "province"),
         ("monitor", "gd-mon1"), ("province", "guangdong")): 1.0}
    assert not [a for a in prom_alerts(GD["prometheus"]) if a["severity"] == "critical"]
    # the ministry's own devices, in full detail at the ministry, and only there
    own = sorted(INV.devices_by_site[INV.ministry.id])
    assert {dict(k)["device"]: v for k, v in query(MIN["prometheus"], "netops_snmp_up").items()} == {d: 1.0 for d in own}
    assert not query(GD["prometheus"], 'netops_snmp_up{level="ministry"}')


_VENDOR = "vendor MIBs only (Huawei, H3C, Cisco entity/environment): the lab's nodes are Debian and FRR with net-snmp"
_BACKUP = ("the stack's textfile server reads this host's default backup state, which no lab test fills (test_backup "
           "keeps its own NETOPS_BACKUP_STATE): data only if a backup ran on this host before")
# (board, panel key) → why its queries may return nothing in the lab; every other query must return data
MAY_BE_EMPTY = {
    ("device", "temperature"): _VENDOR, ("device", "fans"): _VENDOR, ("device", "power"): _VENDOR,
    ("device", "optics"): "Huawei's and H3C's transceiver MIBs only; " + _VENDOR,
    # a counter of a kind appears with its first trap: none may have come in this test's window (test_traps proves them)
    ("collector", "traps"): "no trap in a quiet lab", ("collector", "traps-dropped"): "nothing dropped in a quiet lab",
    ("national", "backup-age"): _BACKUP, ("province", "backup-age"): _BACKUP,
    ("backup", "age"): _BACKUP, ("backup", "verify-age"): _BACKUP, ("backup", "assets"): _BACKUP,
    ("province", "alerts"): "a table of the alerts firing: nothing fires in the healthy baseline",
}
# boards whose template variables may offer no value in the lab (their metric may be absent)
VARIABLES_MAY_BE_EMPTY = {"backup": _BACKUP}


def test_dashboard_queries_return_data(stack):
    """Every query of every generated Grafana dashboard, as Grafana sends it with its variables at "All",
    against the Prometheus its datasource variable chooses by default (the ministry's for the national
    overview, each province's for its own board, the first province's for the others): it is accepted,
    and it returns series unless MAY_BE_EMPTY says why not; each query variable offers values."""
    boards = dash.dashboards(INV, gen.grafana_servers(INV), gen.MINISTRY)
    assert {key for key, _ in boards.values()} == set(EP)
    pending = {}
    for rel, (key, model) in boards.items():
        kind = Path(rel).stem.split("-")[0]
        prom = EP[key]["prometheus"]
        assert [p["title"] for p in model["panels"]] == [f"{p.zh} {p.en}" for p in dash.BOARDS[kind].panels]
        for spec, (panel, ref, expr) in ((spec, q) for spec, p in zip(dash.BOARDS[kind].panels, model["panels"])
                                         for q in queries({**model, "panels": [p]})):
            query(prom, expr)  # accepted by Prometheus (a bad query is an HTTP error at once)
            if (kind, spec.key) not in MAY_BE_EMPTY:
                pending[(rel, spec.key, ref)] = (prom, expr)
        for v, selector, label in variable_selectors(model):
            if kind not in VARIABLES_MAY_BE_EMPTY:
                pending[(rel, f"${v['name']}", label)] = (prom, f"count by ({label}) ({selector})")

    def empty():  # the rates need two scrapes of a series: poll until each query has had its chance
        for k in [k for k, (prom, expr) in pending.items() if query(prom, expr)]:
            del pending[k]
        return not pending or None
    try:
        until("every dashboard query returning data", empty)
    except AssertionError:
        raise AssertionError(f"dashboard queries without data in the lab: {sorted(pending.items())}") from None


def test_county_link_down_fires_and_federates(stack):
    lab = Lab("jinbao")
    # the line of huadu's only uplink goes dead at the city end: huadu-r1 eth1 loses carrier
    before = scalar(MIN["prometheus"], 'province:netops_link_end_up:sum{province="guangdong"}')
    nbrs = lab.node("huadu-r1").ospf_full()
    lab.node("guangzhou-r1").exec(["ip", "link", "set", "eth4", "down"], check=True)
    try:
        firing = until("LinkDown for huadu-r1 at Guangdong's Prometheus", lambda: [
            a for a in prom_alerts(GD["prometheus"]) if a["alertname"] == "LinkDown" and a["device"] == "huadu-r1"])
        assert firing[0]["level"] == "county" and firing[0]["link"] == "huadu-up1" and firing[0]["uplink"] == "true"
        # huadu's only uplink: the line's root cause pages, naming huadu cut off, and holds the line's LinkDown back
        root = until("SitesCutOff for huadu-up1 in Guangdong's Alertmanager", lambda: [
            a for a in am_alerts(GD["alertmanager"]) if a["labels"]["alertname"] == "SitesCutOff"
            and a["labels"].get("link") == "huadu-up1"])
        assert root[0]["status"]["state"] == "active" and root[0]["labels"]["cut_off_county"] == "huadu", root
        got = until("LinkDown for huadu-r1 in Guangdong's Alertmanager, held back under the root cause", lambda: [
            a for a in am_alerts(GD["alertmanager"]) if a["labels"]["alertname"] == "LinkDown"
            and a["labels"]["device"] == "huadu-r1" and root[0]["fingerprint"] in a["status"]["inhibitedBy"]])
        assert got[0]["status"]["state"] == "suppressed" and got[0]["labels"]["severity"] == "critical"
        assert got[0]["annotations"]["summary_en"] == "Link huadu-up1 is down at huadu-r1 eth1"
        # the ministry sees Guangdong's aggregate drop by both ends of the line, through federation only
        # (each end's snmpd caches its ifTable on its own clock: one end may show down a round earlier)
        until("the drop of both ends federated to the ministry", lambda: scalar(
            MIN["prometheus"], 'province:netops_link_end_up:sum{province="guangdong"}') == before - 2)
        # full detail stays in the province (the ministry holds detail only for its own devices)
        assert not query(MIN["prometheus"], 'netops_interface_oper_status{province="guangdong"}')
        assert query(MIN["prometheus"], 'netops_interface_oper_status{level="ministry"}')
    finally:
        lab.node("guangzhou-r1").exec(["ip", "link", "set", "eth4", "up"], check=True)
    until("OSPF back on huadu-r1", lambda: lab.node("huadu-r1").ospf_full() >= nbrs)
    until("the aggregate back at the ministry", lambda: scalar(
        MIN["prometheus"], 'province:netops_link_end_up:sum{province="guangdong"}') == before)


ROOT_CAUSES = ("NodeDown", "LinkDown", "SitesCutOff", "RedundancyLost")


def test_city_router_down_one_root_cause_dual_homed_counties_warn(stack):
    """A city router loses power: its links lose carrier, its SNMP agent and routing stop. One root cause pages,
    naming the county the topology says it cuts off (huadu, single-homed); that county's alerts and the lines that
    went down with the router are held back under it; the dual-homed counties it served (panyu, baoan) keep a path
    and warn (RedundancyLost), never silenced. When it returns, everything resolves."""
    lab = Lab("jinbao")
    imp = next(i for i in gen.impacts(INV)["guangdong"] if i.failure.id == "guangzhou-r1")
    cut, warned = imp.cut["county"], sorted(imp.lost)
    assert (cut, warned) == (["huadu"], ["baoan", "panyu"])
    wan = sorted(INV.devices["guangzhou-r1"].interfaces)
    nbrs = lab.node("guangzhou-r1").ospf_full()
    lab.node("guangzhou-r1").exec(["sh", "-c", "systemctl stop snmpd frr netops-linktraps && " +
                                 " && ".join(f"ip link set {i} down" for i in wan)], check=True, timeout=60)
    try:
        def settled():
            alerts = [a for a in am_alerts(GD["alertmanager"]) if a["labels"]["alertname"] in ROOT_CAUSES]
            active = [a for a in alerts if not a["status"]["inhibitedBy"]]
            lines = {a["labels"]["device"] for a in alerts if a["labels"]["alertname"] == "LinkDown"}
            # the far ends of its lines have seen the carrier go, and only the root cause and the warnings page
            if lines >= {"huadu-r1", "panyu-r1", "baoan-r1", "gd-r1"} and len(active) == 1 + len(warned):
                return alerts, active
        alerts, active = until("one root cause and the dual-homed counties' warnings in Alertmanager", settled)
        root = [a for a in active if a["labels"]["alertname"] == "SitesCutOff"]
        assert [(a["labels"]["device"], a["labels"]["level"], a["labels"]["cut_off_county"], a["labels"]["severity"])
                for a in root] == [("guangzhou-r1", "city", ",".join(cut), "critical")]
        assert sorted((a["labels"]["site"], a["labels"]["device"], a["labels"]["severity"]) for a in active if a not in root) == [
            (c, "guangzhou-r1", "warning") for c in warned]
        assert all(a["status"]["state"] == "active" for a in active)
        # what the cut-off county raised (in the lab its devices still answer over the management network, so its
        # lines), the router's own NodeDown and the lines down with it: held back, the county's under the root cause
        held = [a for a in alerts if a not in active]
        assert all(a["status"]["state"] == "suppressed" for a in held)
        assert {"NodeDown", "LinkDown"} <= {a["labels"]["alertname"] for a in held}
        behind = [a for a in held if a["labels"].get("site") in cut]
        assert behind and all(root[0]["fingerprint"] in a["status"]["inhibitedBy"] for a in behind)
        # the dual-homed counties' own line alerts give way to their warning, never to silence
        assert {a["labels"]["device"] for a in held if a["labels"]["alertname"] == "LinkDown"} >= {"panyu-r1", "baoan-r1"}
    finally:
        lab.node("guangzhou-r1").exec(["sh", "-c", " && ".join(f"ip link set {i} up" for i in wan) +
                                     " && systemctl start frr snmpd netops-linktraps"], check=True, timeout=60)
    until("OSPF back on guangzhou-r1", lambda: lab.node("guangzhou-r1").ospf_full() >= nbrs)
    until("every alert resolved at the province's Prometheus", lambda: not [
        a for a in prom_alerts(GD["prometheus"]) + prom_alerts(GD["prometheus"], "pending") if a["alertname"] in ROOT_CAUSES])
    until("and in its Alertmanager", lambda: not [
        a for a in am_alerts(GD["alertmanager"]) if a["labels"]["alertname"] in ROOT_CAUSES])


def test_city_database_down_fires(stack):
    lab = Lab("jinbao")
    lab.node("guangzhou-db1").exec(["systemctl", "stop", "postgresql"], check=True, timeout=60)
    try:
        firing = until("DatabaseDown for guangzhou-db1", lambda: [
            a for a in prom_alerts(GD["prometheus"]) if a["alertname"] == "DatabaseDown"])
        assert [(a["device"], a["service"], a["level"]) for a in firing] == [("guangzhou-db1", "postgresql", "city")]
        until("DatabaseDown in Alertmanager", lambda: [a for a in am_alerts(GD["alertmanager"])
                                                       if a["labels"]["alertname"] == "DatabaseDown"])
    finally:
        lab.node("guangzhou-db1").exec(["systemctl", "start", "postgresql"], check=True, timeout=60)
    until("the database up again", lambda: scalar(
        GD["prometheus"], 'netops_db_up{device="guangzhou-db1"}') == 1)


def test_ministry_device_down_fires_at_the_ministry(stack):
    """A ministry server stops answering SNMP: NodeDown at level ministry, from the ministry's own
    collector, in the ministry's Alertmanager (the ministry NOC's route)."""
    lab = Lab("jinbao")
    lab.node("bu-srv1").exec(["systemctl", "stop", "snmpd"], check=True, timeout=60)
    try:
        firing = until("NodeDown for bu-srv1 at the ministry's Prometheus", lambda: [
            a for a in prom_alerts(MIN["prometheus"]) if a["alertname"] == "NodeDown"])
        assert [(a["device"], a["level"], a["role"]) for a in firing] == [("bu-srv1", "ministry", "server")]
        got = until("NodeDown for bu-srv1 in the ministry's Alertmanager", lambda: [
            a for a in am_alerts(MIN["alertmanager"]) if a["labels"]["alertname"] == "NodeDown"])
        assert [(a["labels"]["device"], a["status"]["state"], [r["name"] for r in a["receivers"]]) for a in got] == [
            ("bu-srv1", "active", ["ministry-noc"])]
        assert not [a for a in prom_alerts(GD["prometheus"]) if a["alertname"] == "NodeDown"]
    finally:
        lab.node("bu-srv1").exec(["systemctl", "start", "snmpd"], check=True, timeout=60)
    until("bu-srv1 answering again", lambda: scalar(MIN["prometheus"], 'netops_snmp_up{device="bu-srv1"}') == 1)
