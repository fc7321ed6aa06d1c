"""The baseline catalogue: complete, consistent with its checks and parameters, and site overrides."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from jinbao_netops import inventory
from jinbao_netops.errors import UsageError
from jinbao_netops.security import boundary, devicerules, hostchecks, records
from jinbao_netops.security.catalogue import PARAMS, PLAYBOOKS, host_params, load_catalogue

CAT = load_catalogue()
INV = inventory.load(inventory.DEFAULT_INVENTORY)


def test_every_control_is_well_formed():
    ids = [c.id for c in CAT.controls]
    assert len(ids) == len(set(ids)) >= 40
    for c in CAT.controls:
        assert re.match(r"^8\.1\.[234]\.\d+( [a-g]\))?$", c.clause), c
        assert c.clause.split()[0] in CAT.clauses, c
        assert c.item is None or re.match(r"^L3-(CES|CNS|ABS)1-\d\d$", c.item), c
        assert c.title_zh and c.title_en and c.check and c.fix
    manual = [c for c in CAT.controls if not c.automatable]
    assert manual and all(c.evidence for c in manual), [c.id for c in manual if not c.evidence]  # what the evaluator asks for


def test_every_computing_environment_clause_is_covered():
    clauses = {c.clause.split()[0] for c in CAT.controls}
    for n in range(1, 12):
        assert f"8.1.4.{n}" in clauses
    assert "8.1.2.2" in clauses and "8.1.3.2" in clauses


def test_automatable_server_controls_have_checks_and_manual_ones_do_not():
    """A server control is checked on the host or on the suite's own records (backups), never both."""
    for c in CAT.scope("server"):
        assert ((c.id in hostchecks.CHECKS) + (c.id in records.CHECKS)) == c.automatable, c.id


def test_automatable_network_controls_have_a_rule_for_every_platform():
    """A network control is checked by every platform's rule pack or — the boundary control — on the zone
    records and the boundary's live rules (security/boundary.py), never both."""
    for c in CAT.scope("network"):
        for plat in ("huawei_vrp", "hp_comware", "cisco_ios", "frr"):
            assert ((c.id in devicerules.RULES[plat]) + (c.id == boundary.CONTROL)) == c.automatable, (plat, c.id)


def test_documented_defaults():
    d = CAT.defaults
    assert (d["dengbao_pass_min_len"], d["dengbao_pass_min_class"], d["dengbao_pass_history"], d["dengbao_pass_max_days"]) == (8, 3, 5, 90)
    assert (d["dengbao_lock_deny"], d["dengbao_lock_unlock_time"], d["dengbao_lock_root"]) == (5, 600, True)
    assert d["dengbao_idle_timeout"] == 600 and d["dengbao_log_retention_days"] >= 180 and d["dengbao_umask"] == "027"
    assert d["dengbao_ssh_permit_root_login"] == "no" and 23 in d["dengbao_high_risk_ports"]


def test_role_defaults_are_the_catalogue_parameters():
    """One source of truth: the Ansible role's defaults file IS security/params.yml."""
    role_defaults = PLAYBOOKS / "roles/dengbao_params/defaults/main.yml"
    assert role_defaults.resolve() == PARAMS.resolve()


def test_province_log_host_is_the_province_monitor():
    p = host_params(INV, "huadu-srv1")
    assert p["dengbao_log_host"] == str(INV.devices["gd-mon1"].management) == p["dengbao_ntp_server"]
    assert host_params(INV, "gd-mon1")["dengbao_log_host"] == str(INV.devices["bu-mon1"].management)
    assert host_params(INV, "bu-srv1")["dengbao_log_host"] == str(INV.devices["bu-mon1"].management)
    assert host_params(INV, "bu-mon1")["dengbao_log_host"] == ""  # top of the chain


def test_group_vars_override_at_any_level(tmp_path: Path):
    (tmp_path / "group_vars/all").mkdir(parents=True)
    (tmp_path / "group_vars/all/x.yml").write_text("dengbao_idle_timeout: 900\ndengbao_pass_min_len: 10\n")
    (tmp_path / "group_vars/guangdong.yml").write_text("dengbao_idle_timeout: 300\n")
    (tmp_path / "group_vars/huadu.yml").write_text("dengbao_pass_min_len: 12\n")
    (tmp_path / "host_vars").mkdir()
    (tmp_path / "host_vars/huadu-srv1.yml").write_text("dengbao_lock_deny: 3\n")
    p = host_params(INV, "huadu-srv1", tmp_path)
    assert (p["dengbao_idle_timeout"], p["dengbao_pass_min_len"], p["dengbao_lock_deny"]) == (300, 12, 3)
    q = host_params(INV, "pidu-srv1", tmp_path)  # sichuan: only the 'all' layer applies
    assert (q["dengbao_idle_timeout"], q["dengbao_pass_min_len"], q["dengbao_lock_deny"]) == (900, 10, 5)


def test_broken_group_vars_is_one_line_error(tmp_path: Path):
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars/all.yml").write_text("dengbao_idle_timeout: [unclosed\n")
    with pytest.raises(UsageError, match=r"group_vars/all.yml: cannot read"):
        host_params(INV, "huadu-srv1", tmp_path)


def test_params_file_is_plain_variables():
    data = yaml.safe_load(PARAMS.read_text())
    assert all(k.startswith("dengbao_") for k in data)
