"""Collection over the live lab: real snmpd on every node, PostgreSQL and MariaDB with the monitoring
role, traffic showing up in octet counters, a link and a database going down (and restored)."""
from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

import pytest

from jinbao_netops import inventory
from jinbao_netops.lab.runtime import Lab

from .conftest import REPO, netops, until

pytestmark = pytest.mark.lab
INV = inventory.load(inventory.DEFAULT_INVENTORY)
ROUTERS = sorted(d.id for d in INV.devices.values() if d.role.value == "router")
DBS = sorted((d.id, s) for d in INV.devices.values() for s in d.services)


@pytest.fixture(scope="module")
def env(lab):
    p = netops("collect", "prepare-lab", "--json", env=lab["env"], timeout=600, check=True)
    rep = json.loads(p.stdout)
    assert rep["ok"] and len(rep["prepared"]) == len(DBS)
    # the role's password is the lab's (exported by `lab env`), never printed
    password = lab["env"]["NETOPS_DB_MONITOR_PASSWORD"]
    assert rep["password_env"] == ["NETOPS_DB_MONITOR_PASSWORD"] and password not in p.stdout + p.stderr
    text = netops("collect", "prepare-lab", env=lab["env"], timeout=600, check=True)
    assert password not in text.stdout + text.stderr and "NETOPS_DB_MONITOR_PASSWORD" in text.stdout
    # the county's MariaDB copied to gd-db1 (idempotent: earlier tests may have built it), which then reads as a replica
    netops("dr", "setup", "--scope", "panyu-db1", env=lab["env"], timeout=600, check=True)
    return lab["env"]


def once(env, *args) -> dict:
    # generous limits: the lab's 40 snmpd share this 2-core machine with whatever else runs on it
    p = netops("collect", "once", "--json", "--timeout", "5", "--retries", "2", "--device-deadline", "60",
               "--deadline", "120", *args, env=env, timeout=300)
    assert p.returncode in (0, 3), p.stderr
    return json.loads(p.stdout)


def iface(rec: dict, device: str, name: str) -> dict:
    dev = next(d for d in rec["devices"] if d["device"] == device)
    return next(i for i in dev["interfaces"] if i["name"] == name)


def test_once_reads_every_router_and_database(env):
    rec = once(env)
    assert rec["ok"] and rec["failed"] == [], [(d["device"], d["error"], d["stats"]) for d in rec["devices"] if not d["ok"]]
    by = {d["device"]: d for d in rec["devices"]}
    assert set(by) == set(INV.devices)
    for r in ROUTERS:
        d = by[r]
        assert d["ok"] and d["system"]["name"] == r and d["system"]["vendor"] == "frr"
        names = {i["name"] for i in d["interfaces"]}
        assert set(INV.devices[r].interfaces) <= names, (r, names)
        assert all(len(i["counters"]) == 8 for i in d["interfaces"]), r  # 64-bit octets/packets, errors, discards
        eth = [i for i in d["interfaces"] if i["name"].startswith("eth")]
        assert sum(i["counters"]["in_octets"] for i in eth) > 0 and sum(i["counters"]["out_octets"] for i in eth) > 0, r
        mgmt = next(i for i in d["interfaces"] if i["name"] == "mgmt0")
        assert mgmt["counters"]["in_octets"] > 0 and mgmt["oper_status"] == "up", r
    assert by["huadu-r1"]["snmp_version"] == "v2c" and by["gd-r1"]["snmp_version"] == "v3"
    assert by["gd-r1"]["province"] == "guangdong" and by["panyu-r1"]["county"] == "panyu"
    health = {(h["device"], h["service"]): h for h in rec["databases"]}
    assert set(health) == set(DBS)
    for key, h in health.items():
        assert h["up"] and h["role"] == ("replica" if key == ("gd-db1", "mariadb") else "primary"), (key, h["error"])
        assert 0 < h["metrics"]["max_connections"]
    replica = health[("gd-db1", "mariadb")]["metrics"]
    assert replica["replica_io_running"] == replica["replica_sql_running"] == 1, replica
    assert health[("panyu-db1", "mariadb")]["metrics"]["binlog_readers"] == 2  # the replica and the archive
    assert health[("gd-db1", "postgresql")]["database_size_bytes"]["postgres"] > 1_000_000
    shell = {s["device"]: s for s in rec["ssh"]}
    assert set(shell) == set(INV.devices)
    for r in ROUTERS:  # OSPF over SSH: every router has its neighbours, all Full
        nbrs = shell[r]["ospf_neighbors"]
        assert nbrs and all(n["full"] for n in nbrs), (r, nbrs)
    assert all("load1" in s and s["failed_units"] == [] for s in shell.values())


def test_traffic_raises_octet_counters(env):
    """A flood of traffic shows in the octet counters. net-snmp serves a node's interface counters from a cache it
    reloads every few seconds, so a poll soon after the previous one can read the same values (seen in CI: both
    polls 0, a server's LAN having sent nothing before the flood): the collector is polled until the agent's
    next reload shows the flood."""
    lab = Lab(INV.network.id)
    peer = str(INV.devices["gd-r1"].interfaces["eth0"].address.ip)
    first = once(env, "--scope", "guangdong", "--no-db", "--no-ssh")
    before = iface(first, "gd-db1", "eth0")["counters"]
    r = lab.node("gd-db1").exec(["ping", "-f", "-q", "-s", "1400", "-w", "2", peer], timeout=30)
    assert r.returncode == 0, r.stderr
    seen = []

    def risen():
        seen.append(once(env, "--scope", "guangdong", "--no-db", "--no-ssh"))
        c = iface(seen[-1], "gd-db1", "eth0")["counters"]
        return c if c["out_octets"] - before["out_octets"] > 1_000_000 else None

    try:
        after = until("gd-db1's eth0 counters show the flood", risen, 45)
    except AssertionError:  # both polls of the device as the collector saw them, and what the node's kernel counted
        print(json.dumps([d for rec in (first, *seen) for d in rec["devices"] if d["device"] == "gd-db1"], ensure_ascii=False))
        print(lab.node("gd-db1").exec(["ip", "-s", "-j", "link"], timeout=30).stdout)
        raise
    assert after["in_octets"] - before["in_octets"] > 1_000_000, (before, after)
    assert after["out_unicast_packets"] > before["out_unicast_packets"]


def test_link_down_shows_on_next_poll(env):
    lab = Lab(INV.network.id)
    assert iface(once(env, "--scope", "huadu", "--no-db", "--no-ssh"), "huadu-r1", "eth0")["oper_status"] == "up"
    lab.node("huadu-r1").exec(["ip", "link", "set", "eth0", "down"], check=True)
    try:
        # Each snmpd answers IF-MIB from a table it caches for a few seconds (net-snmp's ifTable
        # cache), so a poll right after the change may still see "up" on either end, each agent's
        # cache expiring on its own; any poll after both caches must see both ends down (production
        # poll intervals are longer than the agent's cache).
        def both_down(rec):
            return (iface(rec, "huadu-r1", "eth0")["oper_status"] == "down"
                    and iface(rec, "huadu-srv1", "eth0")["oper_status"] != "up")
        give_up = time.monotonic() + 30
        while True:
            rec = once(env, "--scope", "huadu", "--no-db", "--no-ssh")
            if both_down(rec) or time.monotonic() > give_up:
                break
            time.sleep(1)
        assert iface(rec, "huadu-r1", "eth0")["oper_status"] == "down"
        assert iface(rec, "huadu-r1", "eth0")["admin_status"] == "down"
        assert iface(rec, "huadu-srv1", "eth0")["oper_status"] in ("down", "lowerLayerDown")
    finally:
        lab.node("huadu-r1").exec(["ip", "link", "set", "eth0", "up"], check=True)
    for _ in range(20):  # carrier back on both ends
        rec = once(env, "--scope", "huadu", "--no-db", "--no-ssh")
        if iface(rec, "huadu-r1", "eth0")["oper_status"] == iface(rec, "huadu-srv1", "eth0")["oper_status"] == "up":
            break
        time.sleep(0.5)
    assert iface(rec, "huadu-r1", "eth0")["oper_status"] == "up"


def test_stopped_database_is_down_then_back(env):
    lab = Lab(INV.network.id)
    lab.node("sc-db1").exec(["systemctl", "stop", "postgresql"], check=True, timeout=60)
    try:
        rec = once(env, "--scope", "sichuan", "--no-ssh")
        h = next(h for h in rec["databases"] if h["device"] == "sc-db1")
        assert h["up"] is False and h["error"]
        assert not rec["ok"] and "sc-db1/postgresql" in rec["failed"]
        assert all(h["up"] for h in rec["databases"] if h["device"] != "sc-db1")
    finally:
        lab.node("sc-db1").exec(["systemctl", "start", "postgresql"], check=True, timeout=60)
    rec = once(env, "--scope", "sichuan", "--no-ssh")
    assert next(h for h in rec["databases"] if h["device"] == "sc-db1")["up"] is True


def test_serve_exposes_province_metrics(env, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "jinbao_netops.cli", "collect", "serve", "--scope", "sichuan",
                             "--listen", f"127.0.0.1:{port}", "--interval", "15", "--timeout", "5", "--retries", "2",
                             "--device-deadline", "12", "--no-ssh"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=(tmp_path / "serve.log").open("w"), text=True)
    log = lambda: (tmp_path / "serve.log").read_text()  # noqa: E731  the exporter's per-round failures
    try:
        # A round where everything answered: on this busy 2-core machine one database connection can
        # miss its 5 s timeout in a round (the exporter logs it and reports up=0 for that round, as it
        # should); the next rounds must then be complete. At most 5 rounds.
        text, give_up = "", time.monotonic() + 5 * 15 + 30
        while time.monotonic() < give_up and proc.poll() is None:
            try:
                text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
            except OSError:
                text = ""
            if "netops_snmp_up{" in text and "netops_db_up{" in text and re.search(r"^netops_collect_round_failed_targets 0(\.0)?$", text, re.M):
                break
            time.sleep(1)
        assert proc.poll() is None, log()
        samples = [smp for f in text_string_to_metric_families(text) for smp in f.samples]

        def value(name: str, **want):
            hits = [smp.value for smp in samples if smp.name == name and all(smp.labels.get(k) == v for k, v in want.items())]
            assert hits, (name, want, log())
            return hits[0]

        assert value("netops_snmp_up", level="province", province="sichuan", city="", county="", site="sichuan",
                     device="sc-r1") == 1
        assert value("netops_interface_in_bytes_total", level="county", province="sichuan", city="mianyang",
                     county="jiangyou", site="jiangyou", device="jiangyou-r1", interface="eth0") > 0
        assert value("netops_db_up", level="city", city="chengdu", device="chengdu-db1", service="postgresql") == 1
        assert value("netops_db_up", device="jiangyou-db1", service="mariadb") == 1, log()
        assert not [smp for smp in samples if smp.labels.get("province") == "guangdong"]  # Guangdong has its own
        for name in ("netops_interface_oper_status", "netops_snmp_pdus_total", "netops_snmp_varbinds_total",
                     "netops_device_uptime_seconds", "netops_pg_xact_commits_total", "netops_mysql_threads_connected"):
            assert value(name, province="sichuan") is not None
    finally:
        proc.terminate()
        proc.wait(10)
