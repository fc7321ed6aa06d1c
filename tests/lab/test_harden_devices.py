"""`netops harden devices` on the lab's 18 FRR routers: afterwards every automatable device control the
router's configuration carries is 符合 in the audit (the controls FRR leaves to its Linux host — lockout,
SNMPv3, time, services, management crypto — are the servers' Ansible roles' and judged there); a second
run changes nothing; a render that fails verification is rolled back and the routers are as before.

Works on a copy of the default inventory (change records land there, never in the repo's); the audit
reads the routers through the same access layer.
"""
from __future__ import annotations

import json
import shutil

import pytest

from jinbao_netops import inventory
from jinbao_netops.security import devicerules

from .conftest import REPO, netops

pytestmark = pytest.mark.lab
ROUTERS = sorted(d for d, dev in inventory.load(inventory.DEFAULT_INVENTORY).devices.items()
                 if dev.platform_info.kind == "network")


def running(dev: str) -> str:
    return netops("lab", "exec", dev, "--", "vtysh", "-c", "show running-config", check=True).stdout


@pytest.fixture(scope="module")
def copy(lab, tmp_path_factory):
    d = tmp_path_factory.mktemp("hdev") / "inv"
    shutil.copytree(inventory.DEFAULT_INVENTORY, d)
    return d


def harden(lab, copy, *args, env=None) -> tuple[int, dict]:
    p = netops("harden", "devices", "-i", str(copy), "--json", *args, env={**lab["env"], **(env or {})})
    return p.returncode, json.loads(p.stdout)


def test_a_failing_render_rolls_back_every_router(lab, copy, tmp_path):
    assert len(ROUTERS) == 18
    before = {d: running(d) for d in ROUTERS}
    broken = tmp_path / "templates"
    shutil.copytree(REPO / "topology/provision/templates", broken)
    for tpl in broken.glob("*/baseline.j2"):  # a 30-minute idle timeout rendered: verification fails
        tpl.write_text(tpl.read_text().replace("{{ idle_minutes }}", "30"))
    code, res = harden(lab, copy, env={"NETOPS_PROVISION_TEMPLATES": str(broken)})
    assert code == 1, res
    for d in ROUTERS:
        r = res["devices"][d]
        assert r["result"] == "rolled_back" and r["rollback"][0]["identical"], r
        assert running(d) == before[d]


def test_every_router_passes_every_automatable_device_control_and_a_rerun_changes_nothing(lab, copy):
    code, res = harden(lab, copy)
    assert code == 0 and sorted(res["devices"]) == ROUTERS, res
    assert all(r["result"] == "applied" for r in res["devices"].values()), res["summary"]
    p = netops("audit", "-i", str(copy), "--json", env=lab["env"])
    hosts = {h["host"]: h for h in json.loads(p.stdout)["hosts"]}
    for d in ROUTERS:
        for row in hosts[d]["results"]:
            if row["automatable"] and devicerules.on_config("frr", row["id"]):
                assert row["verdict"] == "符合", (d, row["id"], row["findings"])
    code, again = harden(lab, copy)
    assert code == 0 and {r["result"] for r in again["devices"].values()} == {"no_change"}, again["summary"]
