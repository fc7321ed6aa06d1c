"""Maintenance windows live: a silence from `netops monitor silence add` holds back the alerts of the device it
names (and only those) in the province's Alertmanager of the lab's monitoring stack, until it is expired; a
county-link provisioning that fails opens its window on that Alertmanager and expires it when it rolls back.
"""
from __future__ import annotations

import json
import shutil

import pytest

from jinbao_netops import inventory
from jinbao_netops.lab.runtime import Lab

from .conftest import REPO, netops
from .test_monitor import GD, am_alerts, stack, until  # noqa: F401  (stack: the module's monitoring stack)

pytestmark = pytest.mark.lab


def node_down(device: str) -> list[dict]:
    return [a for a in am_alerts(GD["alertmanager"]) if a["labels"]["alertname"] == "NodeDown" and a["labels"]["device"] == device]


def test_a_silence_holds_back_its_device_until_expired(stack):  # noqa: F811
    """Two county servers stop answering SNMP (servers: no root cause holds their NodeDown back); the one the silence
    names is held back by it alone, the other pages, and expiring the silence lets the first page too."""
    lab = Lab("jinbao")
    named, other = "huadu-srv1", "longgang-srv1"
    p = netops("monitor", "silence", "add", "--device", named, "--duration", "10m", "--comment", "lab: huadu server",
               "--json", check=True)
    [made] = json.loads(p.stdout)["silences"]
    assert made["alertmanager"] == GD["alertmanager"]
    for d in (named, other):
        lab.node(d).exec(["systemctl", "stop", "snmpd"], check=True, timeout=60)
    try:
        held = until(f"NodeDown for {named} silenced", lambda: [
            a for a in node_down(named) if a["status"]["silencedBy"] == [made["id"]]])
        assert held[0]["status"]["state"] == "suppressed" and not held[0]["status"]["inhibitedBy"], held
        paging = until(f"NodeDown for {other}", lambda: node_down(other))
        assert paging[0]["status"]["state"] == "active" and not paging[0]["status"]["silencedBy"], paging
        listed = json.loads(netops("monitor", "silence", "list", "--json", check=True).stdout)
        assert made["id"] in [s["id"] for s in listed["silences"]]
        netops("monitor", "silence", "expire", made["id"], check=True)
        until(f"NodeDown for {named} active again", lambda: [a for a in node_down(named) if a["status"]["state"] == "active"])
    finally:
        for d in (named, other):
            lab.node(d).exec(["systemctl", "start", "snmpd"], check=True, timeout=60)
    until("both NodeDown resolved", lambda: not node_down(named) and not node_down(other))


def test_a_failed_provisioning_opens_and_expires_its_window(stack, lab, tmp_path):  # noqa: F811
    copy = tmp_path / "inv"
    shutil.copytree(inventory.DEFAULT_INVENTORY, copy)
    broken = tmp_path / "templates"  # the fault: the interface never joins OSPF, the run rolls back
    shutil.copytree(REPO / "topology/provision/templates", broken)
    tpl = broken / "frr/link.j2"
    tpl.write_text("".join(ln for ln in tpl.read_text().splitlines(True) if "ip ospf area" not in ln))
    p = netops("link", "provision", "longgang", "-i", str(copy), "--verify-timeout", "5", "--json",
               env={**lab["env"], "NETOPS_PROVISION_TEMPLATES": str(broken)})
    res = json.loads(p.stdout)
    assert p.returncode == 1 and res["result"] == "rolled_back", p.stderr
    win = res["maintenance"]
    assert win["opened"] and win["expired"] and win["devices"] == ["guangzhou-r1", "longgang-r1"]
    [s] = win["silences"]
    assert s["alertmanager"] == GD["alertmanager"]
    listed = json.loads(netops("monitor", "silence", "list", "--all", "--json", check=True).stdout)["silences"]
    [got] = [x for x in listed if x["id"] == s["id"]]
    assert got["state"] == "expired" and got["matchers"] == ["device=~guangzhou-r1|longgang-r1"]
    assert got["createdBy"] == res["who"] and res["change"] in got["comment"]
