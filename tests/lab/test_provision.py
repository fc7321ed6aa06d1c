"""County-link provisioning for real: the default's planned link longgang-up2 on the lab's FRR routers.

Works on a COPY of the default inventory (the lab was built from the default, so names and
addresses match); the repo's inventory/default is never modified. Each test states the link state
it needs (``planned`` or ``provisioned`` fixtures bring it there), so they pass alone and in any
order; the module leaves the lab as it found it (the link decommissioned, the running configs the
originals).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jinbao_netops import inventory
from jinbao_netops.lab.plan import build
from jinbao_netops.topology.provision import render as rd

from .conftest import REPO, netops

pytestmark = pytest.mark.lab
LINK, COUNTY, CITY = "longgang-up2", "longgang-r1", "guangzhou-r1"
MINISTRY_LO = str(inventory.load(inventory.DEFAULT_INVENTORY).devices["bu-r1"].loopback)


def running(dev: str) -> str:
    return netops("lab", "exec", dev, "--", "vtysh", "-c", "show running-config", check=True).stdout


def vtysh(dev: str, cmd: str) -> str:
    return netops("lab", "exec", dev, "--", "vtysh", "-c", cmd, check=True).stdout


def wait(pred, timeout=30.0):
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            return False
        time.sleep(0.5)
    return True


@pytest.fixture(scope="module")
def copy(lab, tmp_path_factory):
    d = tmp_path_factory.mktemp("prov") / "inv"
    shutil.copytree(inventory.DEFAULT_INVENTORY, d)
    before = {dev: running(dev) for dev in (COUNTY, CITY)}
    return {"dir": d, "before": before, "text": (d / "guangdong.yml").read_text(encoding="utf-8")}


def active(copy) -> bool:
    return inventory.load(copy["dir"]).links[LINK].state.value == "active"


@pytest.fixture(scope="module")
def state(lab, copy):
    """The provisioning that made the link active (for the tests that look at it); at the end the
    link goes back to planned."""
    st: dict = {}
    yield st
    if active(copy):
        p, _ = link(lab, copy, "decommission", LINK)
        assert p.returncode == 0, p.stdout + p.stderr


@pytest.fixture
def planned(lab, copy, state):
    if active(copy):
        p, _ = link(lab, copy, "decommission", LINK)
        assert p.returncode == 0, p.stdout + p.stderr
        state.clear()


@pytest.fixture
def provisioned(lab, copy, state):
    if not active(copy):
        state["applied"] = link(lab, copy, "provision", "longgang")
    return state["applied"]


def full_on(dev: str, ifname: str) -> bool:
    nb = json.loads(vtysh(dev, "show ip ospf neighbor json"))["neighbors"]
    return any(n["ifaceName"].split(":")[0] == ifname and n["converged"] == "Full" for ns in nb.values() for n in ns)


def link(lab, copy, *args, env=None):
    p = netops("link", *args, "-i", str(copy["dir"]), "--json", env={**lab["env"], **(env or {})})
    return p, (json.loads(p.stdout) if p.stdout.strip().startswith("{") else None)


def test_check_shows_the_diff_and_changes_nothing(lab, copy, planned):
    p, res = link(lab, copy, "provision", "longgang", "--check")
    assert p.returncode == 0, p.stderr
    assert res["result"] == "check" and res["allocation"]["subnet"] == "10.44.255.22/31"
    assert "+  ip address 10.44.255.23/31" in res["devices"][COUNTY]["diff"]
    assert {d: running(d) for d in (COUNTY, CITY)} == copy["before"]
    assert (copy["dir"] / "guangdong.yml").read_text(encoding="utf-8") == copy["text"]
    assert not (copy["dir"] / "changes").exists()  # a check run writes nothing into the inventory tree


def test_broken_render_fails_verification_and_rolls_back(lab, copy, planned, tmp_path):
    broken = tmp_path / "templates"
    shutil.copytree(REPO / "topology/provision/templates", broken)
    tpl = broken / "frr/link.j2"  # the fault: the interface never joins OSPF
    tpl.write_text("".join(ln for ln in tpl.read_text().splitlines(True) if "ip ospf area" not in ln))
    p, res = link(lab, copy, "provision", "longgang", "--verify-timeout", "5",
                  env={"NETOPS_PROVISION_TEMPLATES": str(broken)})
    assert p.returncode == 1, p.stderr
    assert res["result"] == "rolled_back"
    assert not all(c["ok"] for c in res["verification"])
    assert [r["identical"] for r in res["rollback"]] == [True, True]
    assert {d: running(d) for d in (COUNTY, CITY)} == copy["before"]


def test_provision_end_to_end(lab, copy, provisioned):
    p, res = provisioned
    assert p.returncode == 0, p.stdout + p.stderr
    assert res["result"] == "applied" and all(c["ok"] for c in res["verification"])
    assert full_on(COUNTY, "eth2") and full_on(CITY, "eth6")
    inv = inventory.load(copy["dir"])
    assert inv.links[LINK].state.value == "active"
    assert str(inv.devices[COUNTY].interfaces["eth2"].address) == "10.44.255.23/31"
    rec = [json.loads(x) for x in (copy["dir"] / "changes/links.jsonl").read_text().splitlines()]
    applied = [r for r in rec if r["result"] == "applied" and r["action"] == "provision"]
    assert applied and applied[-1]["when"] == res["when"] and applied[-1]["who"]
    # the running config is what a fresh lab would render with the link active
    plan = build(inv, "jinbao")
    for dev, ifn in ((COUNTY, "eth2"), (CITY, "eth6")):
        fresh = rd.parse(plan.nodes[dev].frr_conf).find(f"interface {ifn}")
        now = rd.parse(running(dev)).find(f"interface {ifn}")
        assert sorted(c.line for c in now.children) == sorted(c.line for c in fresh.children)


def test_county_reaches_the_ministry_over_the_new_link(lab, copy, provisioned):
    netops("lab", "exec", COUNTY, "--", "ip", "link", "set", "eth1", "down", check=True)
    try:
        def via_new():
            r = netops("lab", "exec", COUNTY, "--", "ip", "route", "get", MINISTRY_LO)
            return "dev eth2" in r.stdout
        assert wait(via_new)
        r = netops("lab", "exec", COUNTY, "--", "ping", "-c", "2", "-W", "1", "-I", "10.44.254.8", MINISTRY_LO)
        assert r.returncode == 0, r.stdout
    finally:
        netops("lab", "exec", COUNTY, "--", "ip", "link", "set", "eth1", "up", check=True)
    assert wait(lambda: full_on(COUNTY, "eth1"))


def test_rerun_is_a_no_op(lab, copy, provisioned):
    before = {d: running(d) for d in (COUNTY, CITY)}
    p, res = link(lab, copy, "provision", "longgang")
    assert p.returncode == 0, p.stderr
    assert res["result"] == "no_change" and all(not d["diff"] for d in res["devices"].values())
    assert {d: running(d) for d in (COUNTY, CITY)} == before


def test_decommission_leaves_the_lab_as_found(lab, copy, provisioned):
    p, res = link(lab, copy, "decommission", LINK)
    assert p.returncode == 0, p.stdout + p.stderr
    assert res["result"] == "applied"
    assert {d: running(d) for d in (COUNTY, CITY)} == copy["before"]
    assert (copy["dir"] / "guangdong.yml").read_text(encoding="utf-8") == copy["text"]


def test_playbook_check_mode_shows_the_same_diff(lab, copy, planned):
    env = {**os.environ, **lab["env"]}
    env.pop("NETOPS_INVENTORY", None)
    r = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "playbooks/provision_county_link.yml", "--check",
         "-e", "county=longgang", "-e", f"inventory_path={copy['dir']}"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert '"result": "check"' in r.stdout and "+  ip address 10.44.255.23/31" in r.stdout


def drift(lab, copy, *args):
    p = netops("drift", "-i", str(copy["dir"]), "--scope", COUNTY, "--json", *args, env=lab["env"])
    assert p.stdout.strip().startswith("{"), p.stdout + p.stderr
    return p, json.loads(p.stdout)


def test_drift_hand_change_unsaved_then_saved_then_fixed(lab, copy, planned):
    """The issue's scenario on the county router (FRR): an interface changed by hand in vtysh and not
    saved → drift (the intended line gone, the hand-made one unauthorised) and unsaved; `write memory`
    → drift only; `drift --fix` (the engine's push: verify, save, change record) → clean."""
    link_ = inventory.load(copy["dir"]).links["longgang-up1"]
    ifn = next(e.interface for e in link_.ends() if e.device == COUNTY)
    bw = link_.bandwidth_mbps
    hand = 999 if bw != 999 else 998
    vtysh(COUNTY, "write memory")  # start from a saved state: whatever saved file the lab wrote, FRR's own now
    p, res = drift(lab, copy)
    assert p.returncode == 0 and res["devices"][0]["status"] == "clean", json.dumps(res, ensure_ascii=False, indent=1)

    netops("lab", "exec", COUNTY, "--", "vtysh", "-c", "configure terminal", "-c", f"interface {ifn}",
           "-c", f"bandwidth {hand}", check=True)
    p, res = drift(lab, copy)
    [rec] = res["devices"]
    assert p.returncode == 1 and rec["status"] == "findings", p.stderr
    assert [f"interface {ifn}", f"bandwidth {bw}"] in rec["drift"]
    assert [f"interface {ifn}", f"bandwidth {hand}"] in rec["unauthorised"]
    assert rec["unsaved"] == {"running_only": [[f"interface {ifn}", f"bandwidth {hand}"]],
                              "saved_only": [[f"interface {ifn}", f"bandwidth {bw}"]]}

    vtysh(COUNTY, "write memory")
    p, res = drift(lab, copy)
    [rec] = res["devices"]
    assert p.returncode == 1 and rec["unsaved"] == {"running_only": [], "saved_only": []}
    assert [f"interface {ifn}", f"bandwidth {bw}"] in rec["drift"]
    assert [f"interface {ifn}", f"bandwidth {hand}"] in rec["unauthorised"]

    p, res = drift(lab, copy, "--fix")
    assert p.returncode == 0, json.dumps(res, ensure_ascii=False, indent=1)
    assert {f["link"]: f["result"] for f in res["fixes"]} == {"longgang-up1": "applied", LINK: "no_change"}
    assert res["devices"][0]["status"] == "clean"
    iface = rd.parse(running(COUNTY)).find(f"interface {ifn}")
    assert f"bandwidth {bw}" in [c.line for c in iface.children]
    rec = [json.loads(x) for x in (copy["dir"] / "changes/links.jsonl").read_text().splitlines()]
    assert rec[-1]["link"] == "longgang-up1" and rec[-1]["result"] == "applied" and all(c["ok"] for c in rec[-1]["verification"])
    assert wait(lambda: full_on(COUNTY, ifn))
