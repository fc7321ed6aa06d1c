"""The lab's database monitoring role is set up with the lab's own generated password (no root):
the password travels on stdin only, the role is admitted from exactly the management network."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from jinbao_netops import inventory
from jinbao_netops.collectors.db import prepare_lab
from jinbao_netops.errors import UsageError

INV = inventory.load(inventory.DEFAULT_INVENTORY)
MINI = Path(__file__).parent / "fixtures/lab-mini"
SECRET = "s3cret-from-the-lab"


class FakeLab:
    """Records what would run inside each node; answers like a node where every command succeeds."""

    name = "jinbao"

    def __init__(self, secrets):
        self._secrets, self.calls = secrets, []

    def secrets(self):
        return self._secrets

    def answer(self, device, cmd, input):
        return SimpleNamespace(returncode=0, stdout="", stderr="")

    def node(self, device):
        def exec(cmd, timeout=30, input=None):
            self.calls.append((device, cmd, input))
            return self.answer(device, cmd, input)
        return SimpleNamespace(exec=exec)


def test_every_database_gets_the_role_with_the_labs_password_on_stdin_only():
    lab = FakeLab({"NETOPS_DB_MONITOR_PASSWORD": SECRET})
    rep = prepare_lab(INV, lab)
    dbs = sorted(f"{d}/{s}" for d, dev in INV.devices.items() for s in dev.services)
    assert rep["ok"] and sorted(rep["prepared"]) == dbs
    # the secret is in no command line (world-readable in /proc, logged by sudo) and not in the report
    assert not [cmd for _, cmd, _ in lab.calls if any(SECRET in a for a in cmd)]
    assert SECRET not in json.dumps(rep) and rep["password_env"] == ["NETOPS_DB_MONITOR_PASSWORD"]
    scripts = [i for _, _, i in lab.calls if i and SECRET in i]
    assert len(scripts) == len(dbs) and all("netops_monitor" in s for s in scripts)
    assert not any("SUPERUSER" in s and "NOSUPERUSER" not in s for s in scripts)
    # the role is set up through the engines' admin invocation
    assert {tuple(cmd[:5]) for _, cmd, i in lab.calls if i and SECRET in i} == {
        ("sudo", "-n", "-u", "postgres", "--"), ("sudo", "-n", "-u", "root", "--")}


@pytest.mark.parametrize("management, mariadb_host", [
    ("10.253.0.0/24", "'netops_monitor'@'10.253.0.0/255.255.255.0'"),  # narrower than a /16
    ("10.240.0.0/12", "'netops_monitor'@'10.240.0.0/255.240.0.0'"),   # wider than a /16
])
def test_the_role_is_admitted_from_exactly_the_management_network(tmp_path, management, mariadb_host):
    net = yaml.safe_load((MINI / "network.yml").read_text())
    net["network"]["address_plan"]["management"] = management
    net["credentials"]["ops"]["db_password"] = {"env": "NETOPS_DB_MONITOR_PASSWORD"}
    net["devices"]["mini-srv1"]["services"] = ["postgresql", "mariadb"]
    (tmp_path / "network.yml").write_text(yaml.safe_dump(net, allow_unicode=True))
    inv = inventory.load(tmp_path)
    lab = FakeLab({"NETOPS_DB_MONITOR_PASSWORD": SECRET})
    assert prepare_lab(inv, lab)["ok"]
    said = ["\n".join([*cmd, i or ""]) for _, cmd, i in lab.calls]  # each command line with its stdin
    mariadb = next(t for t in said if "IDENTIFIED BY" in t)
    assert mariadb.count(mariadb_host) == 3 and "%" not in mariadb
    # PostgreSQL's listen script, run for real against a scratch configuration directory (twice: idempotent)
    listen = next(cmd for _, cmd, i in lab.calls if i and "pg_hba" in i)
    conf, bin = tmp_path / "16/main", tmp_path / "bin"
    (conf / "conf.d").mkdir(parents=True)
    (conf / "pg_hba.conf").write_text("local all postgres peer\n")
    bin.mkdir()
    for tool, body in (("ls", f"echo {conf}"), ("systemctl", 'echo "$@" >> ' + str(tmp_path / "restarts"))):
        (bin / tool).write_text(f"#!/bin/sh\n{body}\n")
        (bin / tool).chmod(0o755)
    script = next(i for _, cmd, i in lab.calls if cmd == listen)
    for _ in range(2):
        assert listen[:5] == ["sudo", "-n", "-u", "root", "--"]
        subprocess.run(listen[5:], input=script, text=True, check=True, env={"PATH": f"{bin}:/usr/bin:/bin"})
    assert (conf / "pg_hba.conf").read_text().splitlines()[1:] == [f"host all netops_monitor {management} scram-sha-256"]
    assert (conf / "conf.d/90-netops-monitor.conf").read_text() == "listen_addresses = 'localhost,10.253.0.12'\n"
    assert (tmp_path / "restarts").read_text() == "restart postgresql\n" * 2


def test_a_failing_node_is_reported_without_its_secret():
    class Refusing(FakeLab):
        def answer(self, device, cmd, input):
            return SimpleNamespace(returncode=1, stdout="", stderr=f"psql:<stdin>:4: ERROR:  syntax error at or near "
                                                                   f"\"{SECRET}\"\nLINE 1: PASSWORD {SECRET}\n ^\n")

    lab = Refusing({"NETOPS_DB_MONITOR_PASSWORD": SECRET})
    rep = prepare_lab(INV, lab)
    assert not rep["ok"] and not rep["prepared"]
    assert rep["problems"][0] == 'chengdu-db1 postgresql: psql:<stdin>:4: ERROR:  syntax error at or near "********"'
    assert SECRET not in json.dumps(rep)
    assert len(lab.calls) == len(rep["problems"])  # a node whose role failed is not restarted


def test_a_lab_without_the_password_is_told_to_rebuild():
    with pytest.raises(UsageError, match="NETOPS_DB_MONITOR_PASSWORD.*lab down && netops lab up"):
        prepare_lab(INV, FakeLab({}))


@pytest.mark.parametrize("json_mode", [False, True])
def test_the_command_names_the_variable_and_never_prints_the_password(monkeypatch, capsys, json_mode):
    from jinbao_netops import cli
    from jinbao_netops.lab import runtime

    class UpLab(FakeLab):
        @classmethod
        def open(cls, inv, name=None):
            return cls({"NETOPS_DB_MONITOR_PASSWORD": SECRET})

        def require_up(self):
            pass

    monkeypatch.setattr(runtime, "Lab", UpLab)
    assert cli.main(["collect", "prepare-lab", *(["--json"] if json_mode else [])]) == 0
    out = capsys.readouterr()
    assert SECRET not in out.out + out.err and "NETOPS_DB_MONITOR_PASSWORD" in out.out
    assert "export" not in out.out


def test_a_standby_gets_no_role_of_its_own_but_listens():
    """A streaming standby is read-only: the role reaches it from its primary; creating it there fails."""
    class WithStandby(FakeLab):
        def answer(self, device, cmd, input):
            standby = device == "gd-dr-db1" and "pg_is_in_recovery" in (input or "")
            return SimpleNamespace(returncode=0, stdout="1\n" if standby else "", stderr="")

    lab = WithStandby({"NETOPS_DB_MONITOR_PASSWORD": SECRET})
    rep = prepare_lab(INV, lab)
    assert rep["ok"] and "gd-dr-db1/postgresql" in rep["prepared"]
    scripts = [inp or "" for dev, _, inp in lab.calls if dev == "gd-dr-db1"]
    assert len(scripts) == 2 and "pg_is_in_recovery" in scripts[0] and "CREATE ROLE" not in "".join(scripts)
    assert any("CREATE ROLE" in (inp or "") for dev, _, inp in lab.calls if dev == "gd-db1")
