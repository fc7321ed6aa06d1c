"""Secrets stay secret: what people read (audit findings and excerpts, reports, diffs of the config
archive, change records) never shows a password, key or community a device's configuration holds;
the files that must keep them (the archive, provisioning backups) are not world-readable."""
from __future__ import annotations

import json
import stat

import pytest

from jinbao_netops import inventory
from jinbao_netops.inventory.platforms import PLATFORMS, REDACTED, redact
from jinbao_netops.security.audit import audit_network
from jinbao_netops.security.catalogue import host_params, load_catalogue
from jinbao_netops.security.report import render

from conftest import REPO

INV = inventory.load(inventory.DEFAULT_INVENTORY)
FIX = REPO / "tests/fixtures/security"
# each platform's secret-bearing lines, with a planted secret the test then looks for everywhere
PLANTED = {
    "huawei_vrp": ["snmp-agent community read cipher PLANTED-1", "local-user admin password irreversible-cipher PLANTED-2",
                   "snmp-agent usm-user v3 netops authentication-mode sha cipher PLANTED-3",
                   "radius-server shared-key cipher PLANTED-4"],
    "hp_comware": ["snmp-agent community read simple PLANTED-1", "local-user admin class manage\n password hash PLANTED-2",
                   "snmp-agent usm-user v3 netops g cipher authentication-mode sha PLANTED-3 privacy-mode aes128 PLANTED-4"],
    "cisco_ios": ["snmp-server community PLANTED-1 RO", "username admin privilege 15 secret 9 PLANTED-2",
                  "enable password PLANTED-3", "line vty 0 4\n password 7 PLANTED-4",
                  "snmp-server user netops g v3 auth sha PLANTED-5 priv aes 128 PLANTED-6"],
    "cisco_asa": ["enable password PLANTED-1 encrypted", "passwd PLANTED-2 encrypted",
                  "username admin password PLANTED-3 encrypted privilege 15", "snmp-server community PLANTED-4",
                  "snmp-server host inside 10.254.0.1 community PLANTED-5 version 2c",
                  "snmp-server user netops g v3 engineID 80 encrypted auth sha PLANTED-6 priv aes 128 PLANTED-7",
                  "tunnel-group 203.0.113.9 ipsec-attributes\n ikev1 pre-shared-key PLANTED-8"],
    "frr": ["password PLANTED-1", "enable password PLANTED-2", "interface eth0\n ip ospf authentication-key PLANTED-3",
            "interface eth1\n ip ospf message-digest-key 1 md5 PLANTED-4"],
}
# the platforms with an audit rule pack (cisco_asa has none yet: its audit is all "no rule")
BASE = {"huawei_vrp": "vrp-noncompliant", "hp_comware": "comware-noncompliant", "cisco_ios": "ios-noncompliant",
        "frr": "frr-noncompliant"}


def test_every_network_platform_says_which_lines_carry_secrets():
    assert {p for p, x in PLATFORMS.items() if x.kind == "network"} == set(PLANTED)
    assert all(PLATFORMS[p].secrets for p in PLANTED)


@pytest.mark.parametrize("platform", sorted(PLANTED))
def test_redaction_hides_each_planted_secret_and_keeps_the_line(platform):
    text = "\n".join(PLANTED[platform]) + "\n"
    shown = redact(platform, text)
    assert "PLANTED" not in shown
    assert shown.count(REDACTED) == text.count("PLANTED")  # the line stays, only the secret goes
    assert redact(platform, "interface eth0\n description 至花都区\n") == "interface eth0\n description 至花都区\n"


@pytest.mark.parametrize("platform", sorted(BASE))
def test_audit_findings_excerpts_and_reports_show_no_secret(platform):
    config = (FIX / f"{BASE[platform]}.cfg").read_text() + "\n".join(PLANTED[platform]) + "\n"
    cat = load_catalogue()
    params = host_params(INV, "huadu-r1")
    results = audit_network(cat, platform, params, config, PLATFORMS[platform].show_running, "2026-12-02T00:00:00+00:00")
    rep = {"tool": "netops audit", "hosts": [{"host": "r", "name": "r", "address": "10.0.0.1", "site": "huadu", "site_name": "花都", "level": "county",
                                               "platform": platform, "status": "ok", "error": None, "results": results}],
           "summary": {"hosts": 1, "reachable": 1, "unreachable": [], "verdicts": {}, "non_compliant_hosts": []},
           "rollup": {"sites": [], "levels": [], "controls": []}, "started": "", "finished": "", "seconds": 0,
           "scope": "r", "inventory": "", "network": "", "baseline": "", "format": 1}
    assert "PLANTED" not in json.dumps(results, ensure_ascii=False)
    assert any(REDACTED in r["evidence"]["excerpt"] or any(REDACTED in s["detail"] for s in r["findings"]) for r in results)
    assert "PLANTED" not in render(rep)


def test_the_config_archive_and_its_diffs_show_no_secret_and_are_not_world_readable(tmp_path, monkeypatch):
    import os
    import subprocess

    from jinbao_netops.backup.configs import backup_configs
    from test_backup_configs import Fleet

    monkeypatch.setenv("NETOPS_BACKUP_STATE", str(tmp_path / "state"))
    stores = {s: str(tmp_path / f"{s}.git") for s in ("gd-bak1", "gd-dr-bak1")}
    for path in stores.values():
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", path], check=True)
    fleet = Fleet()
    assert backup_configs(INV, "huadu", fetcher=fleet, remotes=stores, workdir=tmp_path / "work/configs")["failed"] == 0
    fleet.extra = {"huadu-r1": "\npassword PLANTED-1\nenable password PLANTED-2"}
    rep = backup_configs(INV, "huadu", fetcher=fleet, remotes=stores, workdir=tmp_path / "work/configs")
    [d] = [d for d in rep["devices"] if d["changed"]]
    assert d["device"] == "huadu-r1" and f"+password {REDACTED}" in d["diff"]
    archived = tmp_path / "work/configs/gd-bak1/huadu/huadu-r1.cfg"
    for f in (archived, rep["report"]):
        assert "PLANTED" not in open(f).read()
        assert stat.S_IMODE(os.stat(f).st_mode) == 0o640
    assert "PLANTED" not in json.dumps(rep)
