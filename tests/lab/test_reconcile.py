"""`netops inventory reconcile` on the default lab: the routers' interfaces, OSPF (FRR) and LLDP (lldpd)
agree with the inventory; a cable the inventory does not have and a line of it taken down are both found,
each naming the file and object to edit; undone, the lab is clean again. A router's software version, asked
of its snmpd, is the node's kernel release; its serial is not reported (net-snmp has no ENTITY-MIB)."""
from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import yaml

from jinbao_netops import inventory
from jinbao_netops.lab.runtime import Lab

from .conftest import netops, until

pytestmark = pytest.mark.lab

A, B = "guangzhou-r1", "shenzhen-r1"   # two city routers the inventory does not cable together
DOWN = ("guangzhou-up-dr", "guangzhou-r1", "eth2")  # a link the inventory has: its guangzhou end taken down


def reconcile(lab) -> tuple[int, dict]:
    p = netops("--json", "inventory", "reconcile", "--scope", "guangdong", env=lab["env"])
    return p.returncode, json.loads(p.stdout)


def test_reconcile_finds_an_added_and_a_removed_line(lab):
    # lldpd on a lab just up has not heard every neighbour yet (it sends every few seconds)
    rc, doc = until("the default lab reconciles clean", lambda: (lambda r: r if r[0] == 0 else None)(reconcile(lab)), 120)
    assert (doc["differences"], doc["failed"]) == ([], []), doc["differences"]
    assert all(d["lldp"] for d in doc["devices"] if d["status"] == "read")  # lldpd runs on every router
    lab_ = Lab("jinbao")
    a, b = lab_.node(A), lab_.node(B)
    link, dev, itf = DOWN
    subprocess.run(["ip", "link", "add", "rc-extra", "netns", a.ns, "type", "veth", "peer", "name", "rc-extra",
                    "netns", b.ns], check=True, timeout=30)
    try:
        for n in (a, b):
            n.run_in_netns(["ip", "link", "set", "rc-extra", "up"])
        lab_.node(dev).run_in_netns(["ip", "link", "set", itf, "down"])

        def found():
            code, doc = reconcile(lab)
            got = {(d["object"], d["field"], d["kind"]) for d in doc["differences"]}
            want = {(f"device '{A}'", "interfaces.rc-extra", "not_in_inventory"),
                    (f"device '{B}'", "interfaces.rc-extra", "not_in_inventory"),
                    (f"link '{link}'", "a", "shutdown")}
            return code == 1 and want <= got and doc
        doc = until("the extra cable and the line taken down, both reported", found, 120)
        assert all("guangdong.yml:" in d["file"] for d in doc["differences"])
    finally:
        subprocess.run(["ip", "-n", a.ns, "link", "del", "rc-extra"], timeout=30)
        lab_.node(dev).run_in_netns(["ip", "link", "set", itf, "up"])
    until("reconcile clean again once undone", lambda: reconcile(lab)[0] == 0, 120)


def test_reconcile_compares_the_software_version_over_snmp(lab, tmp_path):
    """In a copy of the inventory, guangzhou-r1's software set to another release: one difference naming the
    file, the device and the field, the node's kernel release as seen; set to that release: none. Its serial is a
    note either way."""
    release = netops("lab", "exec", A, "--", "uname", "-r", env=lab["env"], check=True).stdout.strip()
    copy = tmp_path / "inv"
    shutil.copytree(inventory.DEFAULT_INVENTORY, copy)
    f = copy / "guangdong.yml"

    def reconcile_with(software: str) -> tuple[int, dict]:
        doc = yaml.safe_load(f.read_text(encoding="utf-8"))
        doc["devices"][A].update(software=software, serial="LAB-NO-SERIAL")
        f.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
        p = netops("--json", "inventory", "reconcile", "--scope", A, "-i", str(copy), env=lab["env"])
        return p.returncode, json.loads(p.stdout)

    def identity(doc: dict) -> tuple[list, list]:
        return ([(d["object"], d["field"], d["kind"], d["network"]) for d in doc["differences"]
                 if d["field"] in ("serial", "software")],
                [(i["field"], i["kind"]) for i in doc["info"] if i["field"] in ("serial", "software")])

    code, doc = reconcile_with("5.10.0-0-wrong")
    assert code == 1 and doc["failed"] == [], doc
    assert identity(doc) == ([(f"device '{A}'", "software", "software", release)], [("serial", "not_compared")])
    assert all("guangdong.yml:" in d["file"] for d in doc["differences"])
    code, doc = reconcile_with(release)
    assert doc["failed"] == [] and doc["devices"][0]["snmp"]["software"] == release
    assert identity(doc) == ([], [("serial", "not_compared")])
