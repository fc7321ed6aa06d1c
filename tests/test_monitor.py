"""`netops monitor generate`: every generated file passes promtool / amtool, the rules pass their
promtool unit tests, routing goes by level, and a real Alertmanager (on loopback) inhibits as designed."""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from jinbao_netops.inventory import load
from jinbao_netops.monitoring import generate as gen
from jinbao_netops.monitoring.silences import AlertmanagerError, call
from jinbao_netops.cli import main
from jinbao_netops.errors import UsageError

FIXTURES = Path(__file__).parent / "fixtures" / "monitor"


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("monitor")
    gen.generate(load(None), d)
    return d


def run(*cmd, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def test_layout(out):
    names = sorted(str(p.relative_to(out)) for p in out.rglob("*.yml"))
    assert names == ["alertmanager/alertmanager.yml",
                     *[f"grafana/provisioning/{d}/netops.yml" for d in ("dashboards", "datasources")], "ministry/prometheus.yml",
                     *[f"ministry/rules/{f}.yml" for f in ("alerts", "inventory", "ministry", "records")],
                     *[f"province/{p}/{f}" for p in ("guangdong", "sichuan")
                       for f in ("prometheus.yml", "rules/alerts.yml", "rules/inventory.yml", "rules/records.yml")]]


@pytest.mark.parametrize("cfg", ["province/guangdong", "province/sichuan", "ministry"])
def test_promtool_check_config_and_rules(out, cfg):
    # run where the config is: promtool resolves rule_files relative to it
    r = run("promtool", "check", "config", "prometheus.yml", cwd=out / cfg)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout
    rule_files = sorted((out / cfg / "rules").glob("*.yml"))
    r = run("promtool", "check", "rules", *map(str, rule_files))
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("SUCCESS") == len(rule_files)


def test_amtool_check_config(out):
    r = run("amtool", "check-config", str(out / "alertmanager/alertmanager.yml"))
    assert r.returncode == 0, r.stdout + r.stderr
    am = yaml.safe_load((out / "alertmanager/alertmanager.yml").read_text())
    assert f"{len(am['inhibit_rules'])} inhibit rules" in r.stdout and len(am["inhibit_rules"]) > 2  # the root causes' (test_rootcause)


def test_promtool_check_catches_a_broken_rule(out, tmp_path):
    """The check is not vacuous: a rule with a bad expression fails it."""
    bad = yaml.safe_load((out / "province/guangdong/rules/alerts.yml").read_text())
    bad["groups"][0]["rules"][0]["expr"] = "netops_snmp_up == == 0"
    (tmp_path / "bad.yml").write_text(yaml.safe_dump(bad))
    assert run("promtool", "check", "rules", str(tmp_path / "bad.yml")).returncode != 0


@pytest.mark.parametrize("where,fixture", [("province/guangdong", "guangdong_test.yml"), ("province/guangdong", "serve_test.yml"),
                                           ("ministry", "ministry_test.yml")])
def test_promtool_rule_unit_tests(out, where, fixture):
    shutil.copy(FIXTURES / fixture, out / where / fixture)
    r = run("promtool", "test", "rules", fixture, cwd=out / where)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout


def test_province_scrapes_its_operations_service_where_the_playbook_registers_it(out):
    from jinbao_netops.serve import TARGET_FILE

    cfg = yaml.safe_load((out / "province/guangdong/prometheus.yml").read_text())
    job = next(j for j in cfg["scrape_configs"] if j["job_name"] == "netops-serve")
    assert job["file_sd_configs"] == [{"files": [TARGET_FILE]}]
    assert TARGET_FILE in (Path(__file__).parents[1] / "playbooks/serve.yml").read_text().replace("{{ netops_serve_etc }}", "/etc/jinbao-netops")
    ministry = yaml.safe_load((out / "ministry/prometheus.yml").read_text())
    assert "netops-serve" not in [j["job_name"] for j in ministry["scrape_configs"]]


def test_province_config(out):
    cfg = yaml.safe_load((out / "province/guangdong/prometheus.yml").read_text())
    assert cfg["global"]["external_labels"] == {"level": "province", "province": "guangdong"}
    jobs = {j["job_name"]: j for j in cfg["scrape_configs"]}
    assert jobs["netops-collect"]["static_configs"][0] == {  # gd-mon1's collector; `up` names the province
        "targets": ["10.254.44.15:9469"], "labels": {"monitor": "gd-mon1", "province": "guangdong", "level": "province"}}
    assert cfg["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["10.254.44.15:9093"]
    keep = jobs["netops-backup"]["metric_relabel_configs"][0]
    assert keep["action"] == "keep" and keep["regex"] == "netops_backup_.*;guangdong"


def test_ministry_federates_aggregates_only(out):
    cfg = yaml.safe_load((out / "ministry/prometheus.yml").read_text())
    fed = next(j for j in cfg["scrape_configs"] if j["job_name"] == "federate")
    assert fed["metrics_path"] == "/federate" and fed["honor_labels"] is True
    assert fed["params"]["match[]"] == ['{__name__=~"province:.*"}']
    assert {(t["targets"][0], t["labels"]["province"]) for t in fed["static_configs"]} == {
        ("10.254.44.15:9090", "guangdong"), ("10.254.51.15:9090", "sichuan")}
    # every federated name is a province recording rule, named level:metric:operation
    records = yaml.safe_load((out / "province/guangdong/rules/records.yml").read_text())["groups"][0]["rules"]
    federated = [r["record"] for r in records if r["record"].startswith("province:")]
    assert "province:netops_snmp_up:sum" in federated
    assert all(len(name.split(":")) == 3 for name in federated)


def test_ministry_collects_its_own_devices_only(out):
    """The ministry's own sites are nobody else's: bu-mon1's collector covers them (and nothing below a
    province), scraped at the provinces' pace, with the inventory facts its device alerts join on."""
    inv = load(None)
    assert gen.collector_devices(inv, gen.MINISTRY) == sorted(inv.devices_by_site[inv.ministry.id])
    provinces = [d for p in gen.provinces(inv) for d in gen.collector_devices(inv, p)]
    assert sorted(provinces + gen.collector_devices(inv, gen.MINISTRY)) == sorted(inv.devices)  # each device once
    cfg = yaml.safe_load((out / "ministry/prometheus.yml").read_text())
    job = next(j for j in cfg["scrape_configs"] if j["job_name"] == "netops-collect")
    assert job["static_configs"] == [{"targets": ["10.254.0.22:9469"], "labels": {"monitor": "bu-mon1", "level": "ministry"}}]
    assert job["scrape_interval"] == f"{gen.SCRAPE_INTERVAL}s" != cfg["global"]["scrape_interval"]
    rules = yaml.safe_load((out / "ministry/rules/inventory.yml").read_text())["groups"][0]["rules"]
    assert {r["labels"]["device"] for r in rules} == set(inv.devices_by_site[inv.ministry.id])
    alerts = yaml.safe_load((out / "ministry/rules/alerts.yml").read_text())["groups"][0]
    assert alerts["interval"] == f"{gen.SCRAPE_INTERVAL}s" and "NodeDown" in {r["alert"] for r in alerts["rules"]}


def test_replication_facts_per_engine_where_its_readings_judge_the_pair(out):
    """A PostgreSQL primary's standby counts name PostgreSQL pairs only (panyu-db1, the primary of gd-db1's MariaDB,
    has no netops_pg_replicas: counted, ReplicationBroken could never fire for it, a silent gap); a MariaDB pair is
    judged at its replica, which the inventory gives one channel from its primary."""
    facts = {}
    for prov in ("guangdong", "sichuan"):
        for r in yaml.safe_load((out / f"province/{prov}/rules/inventory.yml").read_text())["groups"][0]["rules"]:
            facts.setdefault(r["record"], []).append((r["labels"], r["expr"]))
    assert facts["inventory:netops_db_standbys:count"] == [({"device": "gd-db1"}, "vector(1)"),
                                                           ({"device": "sc-db1"}, "vector(1)")]
    assert facts["inventory:netops_db_sync_standbys:count"] == [({"device": "gd-db1"}, "vector(1)")]
    assert facts["inventory:netops_mysql_replica_channels:count"] == [
        ({"device": "gd-db1", "primary": "panyu-db1"}, "vector(1)"), ({"device": "sc-db1", "primary": "shuangliu-db1"}, "vector(1)")]
    # a MariaDB primary's binary log readers: panyu-db1's replica and its archive (backup/policy.yml), shuangliu-db1's
    # replica; jiangyou-db1 (neither) is not expected to have any
    assert facts["inventory:netops_mysql_binlog_readers:count"] == [({"device": "panyu-db1"}, "vector(2)"),
                                                                    ({"device": "shuangliu-db1"}, "vector(1)")]


def test_every_alert_has_severity_level_summaries_and_runbook(out):
    files = [*out.glob("province/*/rules/alerts.yml"), *out.glob("ministry/rules/*.yml")]
    alerts = [r for f in files for g in yaml.safe_load(f.read_text())["groups"] for r in g["rules"] if "alert" in r]
    names = {a["alert"] for a in alerts}
    assert {"NodeDown", "LinkDown", "LinkUtilisationHigh", "InterfaceErrorsRising", "DatabaseDown", "ReplicationLag",
            "DiskNearlyFull", "BackupStale", "SnmpScrapeFailing", "ProvinceUnreachable", "ReplicationBroken",
            "MariaDBReplicationBroken", "BinlogReadersMissing"} <= names
    for a in alerts:
        assert a["labels"]["severity"] in ("critical", "warning"), a["alert"]
        assert a["labels"]["level"], a["alert"]
        assert set(a["annotations"]) == {"summary_zh", "summary_en", "runbook"}, a["alert"]
        assert any("\u4e00" <= ch <= "\u9fff" for ch in a["annotations"]["summary_zh"]), a["alert"]


def test_link_ends_one_series_per_interface(out):
    """A LAN port shared by several links is one series (a duplicate would break the group_left joins)."""
    rules = yaml.safe_load((out / "province/guangdong/rules/inventory.yml").read_text())["groups"][0]["rules"]
    ends = [(r["labels"]["device"], r["labels"]["interface"]) for r in rules if r["record"] == "inventory:netops_link_end:info"]
    assert len(ends) == len(set(ends))
    by_end = {(r["labels"]["device"], r["labels"]["interface"]): r["labels"] for r in rules if "interface" in r["labels"]}
    assert by_end[("guangzhou-r1", "eth1")]["uplink"] == "true"     # city → province core
    assert by_end[("gd-r1", "eth3")]["uplink"] == "false"           # the same line seen from the province
    assert set(by_end[("gd-r1", "eth0")]["link"].split(",")) == {"gd-db1-lan", "gd-bak1-lan", "gd-mon1-lan", "gd-fw1-lan"}


def test_receivers_post_to_the_inventory_webhook(out, tmp_path):
    default = yaml.safe_load((out / "alertmanager/alertmanager.yml").read_text())
    assert {r["name"]: r["webhook_configs"][0]["url"] for r in default["receivers"]}["guangdong-city-ops"] == \
        "http://127.0.0.1:9095/alerts/guangdong-city-ops"
    inv_dir = tmp_path / "inv"
    shutil.copytree(load(None).root, inv_dir)
    net = inv_dir / "network.yml"
    net.write_text(net.read_text().replace("http://127.0.0.1:9095/alerts/{receiver}", "https://noc.example.cn/am?team={receiver}"))
    cfg = gen.alertmanager_config(load(str(inv_dir)))
    urls = {r["name"]: [w["url"] for w in r["webhook_configs"]] for r in cfg["receivers"]}
    assert urls["ministry-noc"] == ["https://noc.example.cn/am?team=ministry-noc"]
    assert urls["sichuan-county-ops"] == ["https://noc.example.cn/am?team=sichuan-county-ops"]
    assert len(urls) == 1 + 3 * 2


@pytest.mark.parametrize("labels,receiver", [
    (["level=county", "province=guangdong", "city=guangzhou", "county=panyu"], "guangdong-county-ops"),
    (["level=city", "province=guangdong", "city=guangzhou"], "guangdong-city-ops"),
    (["level=province", "province=sichuan"], "sichuan-province-noc"),
    (["level=dr", "province=sichuan"], "sichuan-province-noc"),
    (["level=ministry", "province=guangdong", "alertname=ProvinceUnreachable"], "ministry-noc"),
    (["level=ministry"], "ministry-noc"),
    (["alertname=Unknown"], "ministry-noc"),
])
def test_routing_by_level(out, labels, receiver):
    r = run("amtool", "config", "routes", "test", f"--config.file={out / 'alertmanager/alertmanager.yml'}",
            f"--verify.receivers={receiver}", *labels)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.split() == [receiver]


def test_inhibition_rules_in_config(out):
    am = yaml.safe_load((out / "alertmanager/alertmanager.yml").read_text())
    rules = {tuple(r["source_matchers"]): r for r in am["inhibit_rules"]}
    cut = rules[('alertname="ProvinceUnreachable"',)]
    assert cut["equal"] == ["province"]
    # a device down holds back its other alerts, not the root causes that name it as the unit that failed
    device = rules[('alertname="NodeDown"',)]
    assert device["target_matchers"] == ['alertname!~"NodeDown|SitesCutOff|RedundancyLost"'] and device["equal"] == ["device"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _api(port, path, data=None):
    return call(f"http://127.0.0.1:{port}", "GET" if data is None else "POST", f"/api/v2/{path}", data)


@pytest.fixture
def alertmanager(out, tmp_path):
    """A real Alertmanager with the generated configuration, on loopback, no clustering."""
    port = _free_port()
    proc = subprocess.Popen(["prometheus-alertmanager", f"--config.file={out / 'alertmanager/alertmanager.yml'}",
                             f"--storage.path={tmp_path}", f"--web.listen-address=127.0.0.1:{port}",
                             "--cluster.listen-address="], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(200):
            try:
                _api(port, "status")
                break
            except AlertmanagerError:
                assert proc.poll() is None, proc.stderr.read().decode()
                time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_inhibition_in_real_alertmanager(alertmanager):
    """guangzhou-r1 dead: its root cause holds back huadu (cut off), its own site and the lines down with it; the
    dual-homed county it served warns; a Shenzhen county's own fault pages; a province cut off from the ministry
    pages once; a device down holds back its other alerts (test_rootcause: the whole scenario, notifications too)."""
    gz = {"province": "guangdong", "city": "guangzhou"}
    alerts = {
        "root": {"alertname": "SitesCutOff", "level": "city", "device": "guangzhou-r1", "site": "guangzhou", "cut_off_county": "huadu", **gz},
        "city-router": {"alertname": "NodeDown", "level": "city", "role": "router", "device": "guangzhou-r1", "site": "guangzhou", **gz},
        "county-node": {"alertname": "NodeDown", "level": "county", "role": "router", "device": "huadu-r1", "county": "huadu",
                        "site": "huadu", **gz},
        "county-link": {"alertname": "LinkDown", "level": "county", "device": "panyu-r1", "interface": "eth1", "county": "panyu",
                        "site": "panyu", "link": "panyu-up1", "uplink": "true", **gz},
        "dual-homed": {"alertname": "RedundancyLost", "level": "county", "device": "guangzhou-r1", "county": "panyu", "site": "panyu", **gz},
        "city-db": {"alertname": "DatabaseDown", "level": "city", "device": "guangzhou-db1", "site": "guangzhou", **gz},
        "other-city-county": {"alertname": "NodeDown", "level": "county", "role": "router", "device": "baoan-r1", "site": "baoan",
                              "province": "guangdong", "city": "shenzhen", "county": "baoan"},
        "server-down": {"alertname": "NodeDown", "level": "county", "device": "longgang-srv1", "site": "longgang",
                        "province": "guangdong", "city": "shenzhen", "county": "longgang"},
        "server-disk": {"alertname": "DiskNearlyFull", "level": "county", "device": "longgang-srv1", "site": "longgang",
                        "province": "guangdong", "city": "shenzhen", "county": "longgang"},
        "cut-off": {"alertname": "ProvinceUnreachable", "level": "ministry", "province": "sichuan"},
        "behind-cut": {"alertname": "ProvinceNodesDown", "level": "ministry", "province": "sichuan"},
        "other-province": {"alertname": "ProvinceNodesDown", "level": "ministry", "province": "guangdong"},
    }
    _api(alertmanager, "alerts", [{"labels": {**lab, "severity": "critical"}} for lab in alerts.values()])
    inhibited = {"city-router", "county-node", "county-link", "city-db", "server-disk", "behind-cut"}
    name = {tuple(sorted({**lab, "severity": "critical"}.items())): k for k, lab in alerts.items()}
    for _ in range(300):
        got = {name[tuple(sorted(a["labels"].items()))]: a["status"] for a in _api(alertmanager, "alerts")}
        if len(got) == len(alerts) and all(got[k]["inhibitedBy"] for k in inhibited):
            break
        time.sleep(0.1)
    state = {k: bool(got[k]["inhibitedBy"]) for k in alerts}
    assert state == {k: k in inhibited for k in alerts}


def test_cli_generate_json(tmp_path, capsys):
    assert main(["monitor", "generate", "--out", str(tmp_path / "m"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] and data["provinces"] == ["guangdong", "sichuan"] and len(data["files"]) == 14 + 9  # + Grafana's
    assert (tmp_path / "m/alertmanager/alertmanager.yml").is_file()
    assert not list((tmp_path / "m").rglob(".*.tmp"))


def test_cli_out_is_a_file(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    assert main(["monitor", "generate", "--out", str(tmp_path / "f")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--out" in err and "not a directory" in err


def test_province_without_monitor_host_is_bad_input():
    inv = load(None)
    del inv.devices["sc-mon1"]
    for lid in [lid for lid, lk in inv.links.items() if "sc-mon1" in (lk.a.device, lk.b.device)]:
        del inv.links[lid]
    inv.index()
    with pytest.raises(UsageError, match="site 'sichuan': no device with role monitor"):
        gen.files(inv)
