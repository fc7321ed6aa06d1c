"""The engine end to end with collected outputs: unreachable hosts, roll-ups, diff, the HTML report
parsed back against the JSON, and the CLI's exit codes."""
from __future__ import annotations

import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import clean_env

from jinbao_netops import inventory
from jinbao_netops.errors import DeviceError
from jinbao_netops.security.audit import diff, run_audit
from jinbao_netops.security.catalogue import FAIL, PASS, VERDICTS
from jinbao_netops.security.report import render

FIX = Path(__file__).parent / "fixtures/security"
INV = inventory.load(inventory.DEFAULT_INVENTORY)


@pytest.fixture(autouse=True)
def no_backup_records(tmp_path, monkeypatch):
    """An ops host with no backups on record (the machine's own state never leaks into a test)."""
    monkeypatch.setenv("NETOPS_BACKUP_STATE", str(tmp_path / "backup-state"))


def fake_runner(hardened: set[str] = frozenset(), down: set[str] = frozenset()):
    def run(device, command, stdin=None):
        if device in down:
            raise DeviceError(device, "unreachable over SSH at 10.254.0.1:22: timed out")
        if stdin is not None:
            assert command == "sudo -n /bin/sh -s"
            name = "debian12-hardened.txt" if device in hardened else "debian12-lab-fresh.txt"
            return (FIX / name).read_text()
        assert command == "show running-config"
        return (FIX / ("frr-compliant.cfg" if device in hardened else "frr-lab-fresh.cfg")).read_text()
    return run


def test_unreachable_hosts_are_reported_never_passing():
    rep = run_audit(INV, "guangdong", run=fake_runner(down={"gd-db1", "huadu-r1"}), parallel=4)
    hosts = {h["host"]: h for h in rep["hosts"]}
    assert len(hosts) == sum(1 for d in INV.devices.values() if INV.lineage(d.site).get("province") == "guangdong")
    assert hosts["gd-db1"]["status"] == "unreachable" and hosts["gd-db1"]["results"] == []
    assert "timed out" in hosts["gd-db1"]["error"]
    assert rep["summary"]["unreachable"] == ["gd-db1", "huadu-r1"]
    assert all(h["status"] == "ok" and h["results"] for n, h in hosts.items() if n not in ("gd-db1", "huadu-r1"))


def test_rollup_by_site_level_and_clause():
    rep = run_audit(INV, None, run=fake_runner(), parallel=8)
    levels = [lv["level"] for lv in rep["rollup"]["levels"]]
    assert levels[0] == "county" and levels[-1] == "ministry"
    sites = {s["site"]: s for s in rep["rollup"]["sites"]}
    assert sites["bu"]["tree_hosts"] == len(INV.devices)
    gd_tree = sum(s["verdicts"][FAIL] for s in rep["rollup"]["sites"] if INV.lineage(s["site"]).get("province") == "guangdong")
    assert sites["guangdong"]["tree_verdicts"][FAIL] == gd_tree
    clauses = [c["clause"] for c in rep["rollup"]["controls"]]
    key = [tuple(int(x) for x in c.split()[0].split(".")) for c in clauses]
    assert key == sorted(key) and "8.1.4.10 a)" in clauses
    total = {v: sum(c["verdicts"][v] for c in rep["rollup"]["controls"]) for v in VERDICTS}
    assert total == rep["summary"]["verdicts"]


def test_diff_shows_what_changed():
    before = run_audit(INV, "huadu", run=fake_runner())
    after = run_audit(INV, "huadu", run=fake_runner(hardened={"huadu-srv1", "gd-mon1"}))  # gd-mon1: its log store
    d = diff(before, after)
    changed = {(c["host"], c["control"]) for c in d["changes"]}
    assert ("huadu-srv1", "ssh-root-login") in changed and not any(h == "huadu-r1" for h, _ in changed)
    assert all(c["after"] == PASS for c in d["changes"])
    assert d["verdicts_delta"][PASS] > 0 and d["verdicts_delta"][FAIL] < 0


class _Counts(HTMLParser):
    def __init__(self):
        super().__init__()
        self.cells, self.rows, self._cell, self.unreachable = {}, [], None, []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "td" and "data-verdict" in a:
            self._cell = (a["data-scope"], a["data-verdict"])
        if tag == "tr" and a.get("class") == "result":
            self.rows.append((a["data-host"], a["data-control"], a["data-verdict"]))
        if tag == "span" and a.get("class") == "unreachable-host":
            self._cell = ("unreachable", None)

    def handle_data(self, data):
        if self._cell and self._cell[0] == "unreachable":
            self.unreachable.append(data)
        elif self._cell:
            self.cells[self._cell] = int(data)
        self._cell = None


def test_html_report_counts_match_the_json():
    rep = run_audit(INV, "guangdong", run=fake_runner(hardened={"gd-db1", "gd-r1"}, down={"panyu-db1"}))
    rep["diff"] = diff(run_audit(INV, "guangdong", run=fake_runner()), rep)
    html = render(rep)
    assert html.startswith("<!DOCTYPE html>") and "<script" not in html and "http://" not in html and "https://" not in html
    p = _Counts()
    p.feed(html)
    for v in VERDICTS:
        assert p.cells[("all", v)] == rep["summary"]["verdicts"][v]
        for lv in rep["rollup"]["levels"]:
            assert p.cells[(f"level:{lv['level']}", v)] == lv["verdicts"][v]
        for s in rep["rollup"]["sites"]:
            assert p.cells[(f"site:{s['site']}", v)] == s["verdicts"][v]
        assert sum(1 for r in p.rows if r[2] == v) == rep["summary"]["verdicts"][v]
    assert p.unreachable == ["panyu-db1"]
    json_rows = {(h["host"], r["id"], r["verdict"]) for h in rep["hosts"] for r in h["results"]}
    assert set(p.rows) == json_rows


def test_cli_audits_saved_configs_and_exit_codes(netops, tmp_path: Path):
    cfgs = tmp_path / "configs"
    cfgs.mkdir()
    shutil.copy(FIX / "frr-compliant.cfg", cfgs / "huadu-r1.cfg")
    shutil.copy(FIX / "frr-host-hardened.txt", cfgs / "huadu-r1.host")  # its Linux host's collection output
    r = netops("audit", "--scope", "huadu-r1", "--configs", str(cfgs), "--save", str(tmp_path / "a.json"),
               "--html", str(tmp_path / "a.html"), "--json", env=clean_env(NETOPS_SSH_KEY="/nonexistent"))
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["summary"]["verdicts"][FAIL] == 0 and (tmp_path / "a.html").read_text().count('class="result"') == 11
    shutil.copy(FIX / "frr-noncompliant.cfg", cfgs / "huadu-r1.cfg")
    r = netops("audit", "--scope", "huadu-r1", "--configs", str(cfgs), "--diff", str(tmp_path / "a.json"), "--json")
    assert r.returncode == 1
    assert {c["control"] for c in json.loads(r.stdout)["diff"]["changes"]} >= {"net-ssh-only", "net-idle-timeout", "net-vty-acl"}  # the banner: the host's
    (cfgs / "huadu-r1.cfg").unlink()
    r = netops("audit", "--scope", "huadu-r1", "--configs", str(cfgs), "--json")
    assert r.returncode == 3 and json.loads(r.stdout)["summary"]["unreachable"] == ["huadu-r1"]


def test_cli_bad_input_is_one_line(netops, tmp_path: Path):
    r = netops("audit", "--scope", "atlantis")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "'atlantis'" in r.stderr
    (tmp_path / "prev.json").write_text("{not json")
    r = netops("audit", "--scope", "huadu-r1", "--diff", str(tmp_path / "prev.json"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "prev.json" in r.stderr
    # a credential that cannot be resolved fails that host alone (partial, 3), with the reason, never the run
    r = netops("audit", "--scope", "huadu-srv1", env=clean_env(NETOPS_SSH_KEY=""))
    assert r.returncode == 3 and r.stderr == "", r.stderr
    assert "huadu-srv1: /" in r.stdout and "environment variable NETOPS_SSH_KEY is not set" in r.stdout
    r = netops("audit", "--help")
    assert r.returncode == 0 and "--scope" in r.stdout


def test_a_host_declared_without_ssh_is_not_read_and_every_control_needs_manual_evidence():
    """A v2c-only router and a server reached by SNMP alone (access: [snmp]) are never logged in to: not
    unreachable (they were never meant to be reached over SSH) but not read, every control of their scope
    需人工举证 with the reason — in the JSON, the roll-up, the HTML and the workbook. It was 'unreachable'
    with a credential error, and the run partial."""
    from io import BytesIO

    from conftest import snmp_only
    from openpyxl import load_workbook

    from jinbao_netops.access import Access
    from jinbao_netops.security.catalogue import MANUAL, load_catalogue
    from jinbao_netops.security.workbook import NOT_ASSESSED, RECORD, render as workbook

    inv = snmp_only(INV, "huadu-r1", "huadu-srv1")
    access, fake = Access(inv, {"NETOPS_SSH_KEY": "/the/key"}), fake_runner()

    def run(device, command, stdin=None):  # the fake's outputs behind the access layer's own login
        access.login(device)
        return fake(device, command, stdin)

    rep = run_audit(inv, "huadu", run=run, parallel=4)
    hosts = {h["host"]: h for h in rep["hosts"]}
    cat = load_catalogue()
    reason = "no SSH access declared (access: [snmp]) 未声明SSH访问方式"
    for device, scope in (("huadu-r1", "network"), ("huadu-srv1", "server")):
        h = hosts[device]
        assert (h["status"], h["error"]) == ("not_read", reason)
        assert [r["id"] for r in h["results"]] == [c.id for c in cat.scope(scope)]
        assert {r["verdict"] for r in h["results"]} == {MANUAL}
        assert all(reason in r["evidence"]["excerpt"] for r in h["results"])
    s = rep["summary"]
    assert s["unreachable"] == [] and s["not_read"] == ["huadu-r1", "huadu-srv1"] and s["reachable"] == len(hosts) - 2
    assert all(lv["unreachable"] == 0 for lv in rep["rollup"]["levels"])
    assert all(st["unreachable"] == 0 for st in rep["rollup"]["sites"])

    html = render(rep)
    p = _Counts()
    p.feed(html)
    assert p.unreachable == [] and f"未读取 not read: {reason}" in html
    assert {r for r in p.rows if r[0] == "huadu-r1"} == {("huadu-r1", c.id, MANUAL) for c in cat.scope("network")}
    assert all(p.cells[("all", v)] == s["verdicts"][v] for v in VERDICTS)

    ws = load_workbook(BytesIO(workbook(rep, cat)))[RECORD]
    head = [c.value for c in ws[1]]
    record = [dict(zip(head, (c.value for c in r))) for r in ws.iter_rows(min_row=2)]
    srv = [r for r in record if "huadu-srv1" in r["测评对象 Object"]]
    assert len(srv) == len(cat.scope("server")) and all(reason in r["结果记录 Record"] for r in srv)
    assert not any(r["符合情况 Verdict"] == NOT_ASSESSED for r in record)


def test_cli_a_host_without_ssh_is_not_read_yet_its_saved_config_is_judged(netops, tmp_path: Path):
    """Exit 0, not 3, for a host declared without SSH access; with --configs its configuration comes from the
    file, which needs no SSH, and is judged as any other."""
    import yaml
    from conftest import snmp_only_yaml

    raw = snmp_only_yaml(yaml.safe_load((Path(__file__).parent / "fixtures/broken/base.yml").read_text()), "huadu-r1")
    (tmp_path / "inv.yml").write_text(yaml.safe_dump(raw, allow_unicode=True))
    r = netops("audit", "-i", str(tmp_path / "inv.yml"), "--scope", "huadu-r1", "--json")
    assert r.returncode == 0, r.stderr
    [h] = json.loads(r.stdout)["hosts"]
    assert h["status"] == "not_read" and h["error"] == "no SSH access declared (access: [snmp]) 未声明SSH访问方式"
    r = netops("audit", "-i", str(tmp_path / "inv.yml"), "--scope", "huadu-r1")
    assert r.returncode == 0 and "未读取 not read" in r.stdout and "no SSH access declared" in r.stdout, r.stdout + r.stderr
    cfgs = tmp_path / "configs"
    cfgs.mkdir()
    shutil.copy(FIX / "frr-compliant.cfg", cfgs / "huadu-r1.cfg")
    shutil.copy(FIX / "frr-host-hardened.txt", cfgs / "huadu-r1.host")
    r = netops("audit", "-i", str(tmp_path / "inv.yml"), "--scope", "huadu-r1", "--configs", str(cfgs), "--json")
    [h] = json.loads(r.stdout)["hosts"]
    assert h["status"] == "ok" and h["results"] and {x["verdict"] for x in h["results"]} >= {PASS}, r.stderr
