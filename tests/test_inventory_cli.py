"""`netops inventory show | graph | validate | generate` as a user runs them (subprocess, embedded default)."""
from __future__ import annotations

import json

import pytest

from jinbao_netops.inventory import DEFAULT_INVENTORY, load


def test_show_summary(netops):
    r = netops("inventory", "show")
    assert r.returncode == 0, r.stderr
    assert "金保工程社会保障专网（演示） (jinbao)" in r.stdout
    assert "national 10.0.0.0/8, management 10.254.0.0/16" in r.stdout
    for level in ("ministry", "province", "dr", "city", "county"):
        assert level in r.stdout
    assert r.stderr == ""


def test_show_summary_json(netops):
    r = netops("inventory", "show", "--json")
    assert r.returncode == 0
    data = json.loads(r.stdout)
    assert data["network"]["id"] == "jinbao"
    assert data["sites"] == {"ministry": 1, "province": 2, "dr": 2, "city": 4, "county": 8}
    assert sum(data["devices"].values()) == 46 and data["devices"]["router"] == 18
    assert data["links"] == {"active": 55, "planned": 1}


def test_show_site(netops):
    r = netops("inventory", "show", "panyu")
    assert r.returncode == 0, r.stderr
    assert "番禺区社会保险经办中心 (panyu, county, block 10.44.17.0/24)" in r.stdout
    assert "上级 parent: guangzhou" in r.stdout and "归属 homing: dual" in r.stdout
    assert "panyu-r1" in r.stdout and "panyu-db1" in r.stdout


def test_show_site_json(netops):
    r = netops("inventory", "show", "guangzhou", "--json")
    assert r.returncode == 0
    rec = json.loads(r.stdout)
    assert rec["id"] == "guangzhou" and rec["level"] == "city" and rec["parent"] == "guangdong"
    assert rec["lineage"] == {"city": "guangzhou", "province": "guangdong", "ministry": "bu"}
    assert rec["children"] == ["huadu", "panyu"] and rec["homing"] is None
    assert [d["id"] for d in rec["devices"]] == ["guangzhou-db1", "guangzhou-r1"]
    links = {lk["id"]: lk for lk in rec["links"]}
    # every link touching a device of the site: uplinks, county downlinks (incl. the planned one), LAN
    assert {"guangzhou-up-core", "guangzhou-up-dr", "panyu-up1", "huadu-up1", "baoan-up2", "longgang-up2",
            "guangzhou-db1-lan"} == set(links)
    assert links["longgang-up2"]["state"] == "planned"
    assert links["guangzhou-up-core"]["a"] == {"device": "guangzhou-r1", "interface": "eth1"}


def test_show_ansible(netops):
    r = netops("inventory", "show", "--ansible")
    assert r.returncode == 0
    view = json.loads(r.stdout)
    assert view["bu"]["children"] == ["guangdong", "sichuan"]
    assert view["guangdong"]["children"] == ["guangdong_zaibei", "guangzhou", "shenzhen"]
    assert view["panyu"]["hosts"] == ["panyu-db1", "panyu-r1"]
    assert set(view["_meta"]["hostvars"]) == set(load().devices)
    assert view["_meta"]["hostvars"]["gd-r1"]["ansible_host"] == "10.254.44.11"
    assert "level_county" in view["all"]["children"] and "role_router" in view["all"]["children"]


def test_show_ansible_site(netops):
    r = netops("inventory", "show", "huadu", "--ansible")
    assert r.returncode == 0
    view = json.loads(r.stdout)
    assert view["group"]["hosts"] == ["huadu-r1", "huadu-srv1"]
    assert set(view["hostvars"]) == {"huadu-r1", "huadu-srv1"}
    assert view["hostvars"]["huadu-r1"]["netops_snmp_version"] == "v2c"


def test_graph(netops):
    r = netops("inventory", "graph")
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    assert lines[0] == "金保工程社会保障专网（演示）"
    assert "人力资源和社会保障部信息中心 bu · ministry · 4 devices" in r.stdout
    assert "双归属 dual-homed" in r.stdout
    # tree order: a county line comes after its city line
    pos = {sid: next(i for i, line in enumerate(lines) if f" {sid} · " in line) for sid in ("guangzhou", "panyu", "sichuan")}
    assert pos["guangzhou"] < pos["panyu"] < pos["sichuan"]


def test_graph_subtree(netops):
    r = netops("inventory", "graph", "shenzhen")
    assert r.returncode == 0
    assert "baoan" in r.stdout and "longgang" in r.stdout and "guangzhou" not in r.stdout


def test_graph_json(netops):
    r = netops("inventory", "graph", "--json")
    assert r.returncode == 0
    tree = json.loads(r.stdout)
    assert tree["id"] == "bu" and tree["level"] == "ministry"
    assert [c["id"] for c in tree["children"]] == ["guangdong", "sichuan"]

    def walk(n, depth=0):
        yield n, depth
        for c in n["children"]:
            yield from walk(c, depth + 1)

    nodes = {n["id"]: (n, d) for n, d in walk(tree)}
    inv = load()
    assert set(nodes) == set(inv.sites)
    for sid, (n, d) in nodes.items():
        assert n["devices"] == sorted(inv.devices_by_site.get(sid, []))
        assert d == {"ministry": 0, "province": 1, "dr": 2, "city": 2, "county": 3}[n["level"]]


NO_SUCH_SITE = {"ok": False, "code": 2, "problems": [],  # the error contract's envelope, under --json
                "error": f"{DEFAULT_INVENTORY}: site 'nope': no such site (try `netops inventory graph`)"}


@pytest.mark.parametrize("args, envelope", [(("show", "nope"), None), (("show", "nope", "--json"), NO_SUCH_SITE),
                                            (("show", "nope", "--ansible"), None), (("graph", "nope"), None)])
def test_unknown_site(netops, args, envelope):
    r = netops("inventory", *args)
    assert r.returncode == 2
    assert (json.loads(r.stdout) if r.stdout else None) == envelope  # nothing on stdout without --json
    assert r.stderr.endswith("site 'nope': no such site (try `netops inventory graph`)\n")
    assert len(r.stderr.splitlines()) == 1 and "Traceback" not in r.stderr


def test_bad_inventory_for_show(netops, tmp_path):
    r = netops("inventory", "show", "-i", str(tmp_path))
    assert r.returncode == 2
    assert r.stderr == f"{tmp_path}: no .yml files in this directory\n"


@pytest.mark.parametrize("verb", ["validate", "show", "graph", "generate"])
def test_verb_help(netops, verb):
    r = netops("inventory", verb, "--help")
    assert r.returncode == 0
    assert r.stdout.startswith(f"usage: netops inventory {verb}")
    assert "--json" in r.stdout


def test_noun_help_lists_verbs(netops):
    r = netops("inventory", "--help")
    assert r.returncode == 0
    for verb in ("validate", "show", "graph", "generate"):
        assert verb in r.stdout


def test_usage_error_is_one_line(netops):
    r = netops("inventory", "frobnicate")
    assert r.returncode == 2
    assert len(r.stderr.splitlines()) == 1 and r.stderr.startswith("netops: ")
