"""Exposition and CLI contract of the collectors, without a lab: metric names, types and labels in
Prometheus text format, credentials from the inventory's references, bad input as one line + exit 2."""
from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from jinbao_netops import inventory
from jinbao_netops.collectors.exporter import Snapshot
from jinbao_netops.collectors.snmp import Result, Stats
from jinbao_netops.collectors.targets import labels, snmp_targets
from jinbao_netops.collectors.wire import DROP_REASONS
from jinbao_netops.inventory.model import Level

from conftest import clean_env

INV = inventory.load(inventory.DEFAULT_INVENTORY)


def render(snap: Snapshot) -> str:
    reg = CollectorRegistry()
    reg.register(snap)
    return generate_latest(reg).decode()


def test_labels_follow_the_hierarchy():
    assert labels(INV, "panyu-r1") == {"level": "county", "province": "guangdong", "city": "guangzhou",
                                       "county": "panyu", "site": "panyu", "device": "panyu-r1"}
    assert labels(INV, "gd-dr-bak1")["level"] == "dr" and labels(INV, "gd-dr-bak1")["province"] == "guangdong"
    assert set(INV.scope("guangzhou")) >= {"guangzhou-r1", "panyu-r1", "huadu-srv1"}
    assert "gd-r1" not in INV.scope("guangzhou") and len(INV.scope(None)) == 46
    # the ministry's own collector: its own site, nothing of a province's
    assert INV.scope("bu", Level.province) == ["bu-mon1", "bu-r1", "bu-r2", "bu-srv1"]
    assert INV.scope("guangdong", Level.city) == sorted(
        d for s in ("guangdong", "guangdong_zaibei") for d in INV.devices_by_site[s])


def test_credentials_come_from_the_references(monkeypatch):
    monkeypatch.setenv("NETOPS_SNMP_AUTH_KEY", "a" * 12)
    monkeypatch.setenv("NETOPS_SNMP_PRIV_KEY", "p" * 12)
    monkeypatch.setenv("NETOPS_SNMP_COMMUNITY", "ro-community")
    ts = {t.device: t for t in snmp_targets(INV, ["gd-r1", "huadu-r1"], timeout=1)}
    assert (ts["gd-r1"].version, ts["gd-r1"].auth_key, ts["gd-r1"].priv_key, ts["gd-r1"].community) == \
        ("v3", "a" * 12, "p" * 12, "")
    assert (ts["huadu-r1"].version, ts["huadu-r1"].community, ts["huadu-r1"].auth_key) == ("v2c", "ro-community", "")
    assert ts["gd-r1"].address == "10.254.44.11" and ts["gd-r1"].timeout == 1


def test_metrics_text():
    snap = Snapshot()
    lab = labels(INV, "panyu-r1")
    ok = Result("panyu-r1", ok=True, system={"uptime_s": 12.5, "name": "panyu-r1", "object_id": "1.3.6.1.4.1.2011.2.1",
                                             "vendor": "huawei_vrp"},
                interfaces={1: {"index": 1, "name": "GE0/0/1", "alias": "to-guangzhou", "descr": "GigabitEthernet0/0/1",
                                "admin_status": "up", "oper_status": "down",
                                "speed_bps": 1_000_000_000, "counters": {"in_octets": 123, "in_errors": 4}}},
                cpu_ratio=0.5, stats=Stats(pdus=3, retries=1, timeouts=1, varbinds=40))
    dead = Result("huadu-r1", ok=False, error="no response", stats=Stats(pdus=2, retries=1, timeouts=2))
    db = [{"device": "gd-db1", "service": "postgresql", **labels(INV, "gd-db1"), "up": True, "role": "primary",
           "metrics": {"connections": 3.0, "max_connections": 100.0, "xact_commit": 77.0, "replica_lag_s": 0.0},
           "database_size_bytes": {"postgres": 7_000_000}, "error": None},
          {"device": "panyu-db1", "service": "mariadb", **labels(INV, "panyu-db1"), "up": False, "role": None,
           "metrics": {}, "database_size_bytes": {}, "error": "OperationalError"}]
    shell = [{"device": "panyu-r1", **lab, "platform": "frr", "ok": True, "error": None, "load1": 0.5,
              "failed_units": ["chrony.service"],
              "interfaces": [{"name": "eth1", "oper_status": "up", "counters": {"in_octets": 5000, "out_discards": 2}},
                             {"name": "eth3", "oper_status": "down", "counters": {"in_octets": None}}],
              "ospf_neighbors": [
                  {"neighbor_id": "10.44.254.2", "state": "full", "interface": "eth1", "full": True},
                  {"neighbor_id": "10.44.254.3", "state": "full", "interface": "eth2", "full": True},
                  {"neighbor_id": "10.44.254.4", "state": "init", "interface": "eth3", "full": False}]},
             {"device": "huadu-r1", **labels(INV, "huadu-r1"), "platform": "frr", "ok": False, "error": "timeout"}]
    snap.update([(lab, ok), (labels(INV, "huadu-r1"), dead)], db, 1.5, shell)
    snap.update([(lab, ok), (labels(INV, "huadu-r1"), dead)], db, 1.5, shell,  # self-metric counters accumulate
                {**dict.fromkeys(DROP_REASONS, 0), "wrong_digest": 3, "malformed": 1})  # the client's own running count
    fams = {f.name: f for f in text_string_to_metric_families(render(snap))}

    def value(name: str, **want):
        hits = [smp.value for f in fams.values() for smp in f.samples
                if smp.name == name and all(smp.labels.get(k) == v for k, v in want.items())]
        assert len(hits) == 1, (name, want, hits)
        return hits[0]

    pan = dict(level="county", province="guangdong", city="guangzhou", county="panyu", site="panyu", device="panyu-r1")
    ge = {**pan, "ifindex": "1", "interface": "GE0/0/1"}
    assert value("netops_snmp_up", **pan) == 1
    assert value("netops_snmp_up", level="county", city="guangzhou", county="huadu", device="huadu-r1") == 0
    assert value("netops_interface_in_bytes_total", **ge) == 123
    assert value("netops_interface_in_errors_total", **ge) == 4
    assert value("netops_interface_oper_status", **ge) == 2
    assert value("netops_interface_speed_bits_per_second", **ge) == 1e9
    assert value("netops_interface_info", **ge, alias="to-guangzhou", descr="GigabitEthernet0/0/1") == 1
    assert value("netops_snmp_pdus_total", **pan) == 6 and value("netops_snmp_timeouts_total", **pan) == 2
    assert value("netops_device_cpu_utilization_ratio", **pan) == 0.5
    assert value("netops_device_info", sys_name="panyu-r1", sys_object_id="1.3.6.1.4.1.2011.2.1", vendor="huawei_vrp") == 1
    assert fams["netops_interface_in_bytes"].type == "counter" and fams["netops_snmp_up"].type == "gauge"
    gd = dict(level="province", province="guangdong", city="", county="", site="guangdong", device="gd-db1")
    assert value("netops_db_up", **gd, service="postgresql") == 1
    assert value("netops_db_up", device="panyu-db1", service="mariadb") == 0
    assert value("netops_pg_xact_commits_total", **gd) == 77
    assert value("netops_pg_database_size_bytes", **gd, database="postgres") == 7e6
    assert value("netops_collect_round_failed_targets") == 3
    assert value("netops_ospf_neighbors", **pan, state="full") == 2 and value("netops_ospf_neighbors", **pan, state="init") == 1
    assert value("netops_ssh_up", **pan) == 1 and value("netops_ssh_up", device="huadu-r1") == 0
    assert value("netops_host_failed_units", **pan) == 1 and value("netops_host_load1", **pan) == 0.5
    assert value("netops_ssh_interface_oper_up", **pan, interface="eth1") == 1
    assert value("netops_ssh_interface_oper_up", **pan, interface="eth3") == 0
    assert value("netops_ssh_interface_in_bytes_total", **pan, interface="eth1") == 5000
    assert value("netops_ssh_interface_out_discards_total", **pan, interface="eth1") == 2
    assert fams["netops_ssh_interface_in_bytes"].type == "counter"
    assert not [s for s in fams["netops_ssh_interface_in_bytes"].samples if s.labels["interface"] == "eth3"]
    # a device that did not answer has no stale values, only up=0 and its self-metrics
    assert not [s for s in fams["netops_device_uptime_seconds"].samples if s.labels["device"] == "huadu-r1"]
    assert value("netops_snmp_timeouts_total", device="huadu-r1") == 4
    # answers the SNMP client dropped, by reason, every reason present from the start
    assert fams["netops_snmp_dropped_packets"].type == "counter"
    assert value("netops_snmp_dropped_packets_total", reason="wrong_digest") == 3
    assert value("netops_snmp_dropped_packets_total", reason="malformed") == 1
    assert {s.labels["reason"] for s in fams["netops_snmp_dropped_packets"].samples if s.name.endswith("_total")} == set(DROP_REASONS)


def test_cli_bad_input_is_one_line(netops):
    r = netops("collect", "once", "--scope", "atlantis", "--no-db")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "scope 'atlantis': no such site" in r.stderr
    env = {k: v for k, v in clean_env().items() if not k.startswith("NETOPS_SNMP")}
    r = netops("collect", "once", "--scope", "panyu", "--no-db", env=env)
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "credentials 'ops': field 'snmp.auth_key': environment variable NETOPS_SNMP_AUTH_KEY is not set" in r.stderr
    r = netops("collect", "serve", "--scope", "guangdong", "--listen", "nowhere")
    assert r.returncode == 2 and "--listen 'nowhere': give ADDR:PORT" in r.stderr
    r = netops("collect", "once", "--timeout", "0")
    assert r.returncode == 2 and "--timeout must be positive" in r.stderr
    env = {**clean_env(), "NETOPS_SNMP_AUTH_KEY": "x" * 10, "NETOPS_SNMP_PRIV_KEY": "y" * 10}
    env.pop("NETOPS_DB_MONITOR_PASSWORD", None)
    r = netops("collect", "once", "--scope", "panyu", env=env)
    assert r.returncode == 2 and "NETOPS_DB_MONITOR_PASSWORD is not set" in r.stderr and "--no-db" in r.stderr
    for verb in ("once", "serve", "prepare-lab"):
        h = netops("collect", verb, "--help")
        assert h.returncode == 0 and "--json" in h.stdout
