"""`netops topology path | spof | impact | check | draw` as a user runs them (subprocess)."""
from __future__ import annotations

import json
import os
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import yaml
from conftest import clean_env

from jinbao_netops.inventory import DEFAULT_INVENTORY



def edited(tmp_path: Path, edit) -> str:
    root = tmp_path / "inv"
    shutil.copytree(DEFAULT_INVENTORY, root)
    for p in root.glob("*.yml"):
        doc = yaml.safe_load(p.read_text(encoding="utf-8"))
        edit(p.name, doc)
        p.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return str(root)


def shared_srlg(name, doc):
    if name == "guangdong.yml":
        doc["links"]["panyu-up2"]["srlg"] = "panyu-ct"


def one_line_error(r, *fragments, code=2):
    assert r.returncode == code, (r.stdout, r.stderr)
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("netops: ")
    for f in fragments:
        assert f in lines[0]


def test_help_for_every_verb(netops):
    for verb in ("path", "spof", "impact", "check", "draw"):
        r = netops("topology", verb, "--help")
        assert r.returncode == 0 and "--json" in r.stdout and "--inventory" in r.stdout, verb
        assert "Exit status" in r.stdout.replace("\n", " ") or "exit status" in r.stdout


def test_spof_table_and_json(netops):
    r = netops("topology", "spof")
    assert r.returncode == 0, r.stderr
    assert "单点故障 Single points of failure" in r.stdout
    assert "guangzhou-r1" in r.stdout and "花都区社会保险经办中心 (huadu)" in r.stdout
    assert "8 个单点故障 single points of failure; 4 个站点有风险 sites at risk" in r.stdout
    r = netops("topology", "spof", "--json")
    assert r.returncode == 0
    data = json.loads(r.stdout)
    got = {(s["kind"], s["id"]): [x["id"] for x in s["cuts_off"]] for s in data["spof"]}
    assert got == {("device", "guangzhou-r1"): ["huadu"], ("device", "shenzhen-r1"): ["longgang"],
                   ("device", "chengdu-r1"): ["pidu"], ("device", "mianyang-r1"): ["jiangyou"],
                   ("link", "huadu-up1"): ["huadu"], ("link", "longgang-up1"): ["longgang"],
                   ("link", "pidu-up1"): ["pidu"], ("link", "jiangyou-up1"): ["jiangyou"]}
    assert data["sites_at_risk"] == {"county": ["huadu", "jiangyou", "longgang", "pidu"]}
    assert data["by_tier"] == {"city": ["device:chengdu-r1", "device:guangzhou-r1", "device:mianyang-r1",
                                        "device:shenzhen-r1"],
                               "county": ["link:huadu-up1", "link:jiangyou-up1", "link:longgang-up1", "link:pidu-up1"]}
    r = netops("topology", "spof", "--level", "province", "--json")
    assert json.loads(r.stdout)["count"] == 0


def test_path(netops):
    r = netops("topology", "path", "panyu")
    assert r.returncode == 0, r.stderr
    assert "OSPF cost 开销 1110" in r.stdout and "链路不相交 link-disjoint 2" in r.stdout
    assert "panyu-r1 —panyu-up1 (100M, 1000)→ guangzhou-r1" in r.stdout
    r = netops("topology", "path", "huadu", "--json")
    data = json.loads(r.stdout)
    assert data["ok"] and data["link_disjoint"] == 1 and data["node_disjoint"] == 1
    assert [c["id"] for c in data["cut_by"]] == ["guangzhou-r1", "huadu-up1"]


def test_impact(netops):
    r = netops("topology", "impact", "--fail", "guangzhou-r1")
    assert r.returncode == 0, r.stderr
    assert "花都区社会保险经办中心 (huadu)" in r.stdout and "番禺" not in r.stdout.split("被切断站点")[1]
    r = netops("topology", "impact", "--fail", "shenzhen-r1", "--json")
    data = json.loads(r.stdout)
    assert data["cut_off"] == {"county": ["longgang"]} and data["down"] == {"city": ["shenzhen"]}
    r = netops("topology", "impact", "--fail", "gd-r1", "--fail", "srlg:bu-gddr-cu", "--json")
    assert json.loads(r.stdout)["cut_off"] == {"city": ["guangzhou", "shenzhen"],
                                               "county": ["baoan", "huadu", "longgang", "panyu"],
                                               "dr": ["guangdong_zaibei"]}
    r = netops("topology", "impact", "--fail", "panyu-up1")
    assert r.returncode == 0 and "no other site is cut off" in r.stdout


def test_check_clean_on_the_default(netops):
    r = netops("topology", "check")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "拓扑检查通过 topology check passed" in r.stdout
    r = netops("topology", "check", "--json")
    assert r.returncode == 0 and json.loads(r.stdout) == {"ok": True, "findings": [], "sites": 17,
                                                          "dual_homed_counties": 4}


def test_shared_srlg_is_a_finding(netops, tmp_path):
    inv = edited(tmp_path, shared_srlg)
    r = netops("topology", "check", "-i", inv)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "not_dual_homed" in r.stdout and "panyu" in r.stdout
    r = netops("topology", "check", "-i", inv, "--json")
    data = json.loads(r.stdout)
    assert r.returncode == 1 and not data["ok"]
    assert [(f["code"], f["site"]) for f in data["findings"]] == [("not_dual_homed", "panyu")]
    r = netops("topology", "impact", "-i", inv, "--fail", "panyu-ct", "--json")
    assert json.loads(r.stdout)["cut_off"] == {"county": ["panyu"]}
    # the same works through $NETOPS_INVENTORY
    r = netops("topology", "spof", "--json", env=clean_env(NETOPS_INVENTORY=inv))
    assert ("srlg", "panyu-ct") in {(s["kind"], s["id"]) for s in json.loads(r.stdout)["spof"]}


def test_no_path_exits_1(netops, tmp_path):
    def edit(name, doc):
        if name == "guangdong.yml":
            doc["links"]["longgang-up1"]["state"] = "planned"
    inv = edited(tmp_path, edit)
    r = netops("topology", "path", "longgang", "-i", inv)
    assert r.returncode == 1 and "无通往部中心的路径 no path to the ministry" in r.stdout
    r = netops("topology", "check", "-i", inv, "--json")
    assert r.returncode == 1 and json.loads(r.stdout)["findings"][0]["code"] == "no_path"


def test_bad_input_is_one_line_exit_2(netops, tmp_path):
    one_line_error(netops("topology", "path", "nosuch"), "site 'nosuch': no such site")
    one_line_error(netops("topology", "impact", "--fail", "nosuch-r1"), "'nosuch-r1' is not a device, link or")
    one_line_error(netops("topology", "impact", "--fail", "link:gd-r1"), "'gd-r1' is not a link")
    one_line_error(netops("topology", "draw", "--scope", "nosuch", "--out", str(tmp_path / "x.svg")),
                   "site 'nosuch'")
    one_line_error(netops("topology", "impact"), "--fail")
    assert not (tmp_path / "x.svg").exists()
    r = netops("topology", "check", "-i", str(tmp_path / "missing"))
    assert r.returncode == 2 and "no such inventory" in r.stderr


def test_draw_every_format(netops, tmp_path):
    for fmt in ("svg", "png", "html", "dot"):
        out = tmp_path / f"net.{fmt}"
        r = netops("topology", "draw", "--out", str(out), "--json")  # format from the suffix
        assert r.returncode == 0, r.stderr
        data = json.loads(r.stdout)
        assert data["format"] == fmt and data["out"] == str(out) and data["sites"] == 17 and data["spof"] == 8
        assert out.stat().st_size == data["bytes"] > 1000
    root = ET.parse(tmp_path / "net.svg").getroot()
    ids = {g.get("id") for g in root.iter("{http://www.w3.org/2000/svg}g")}
    assert {"site-bu", "site-jiangyou", "dev-mianyang-r1", "link-jiangyou-up1"} <= ids
    assert (tmp_path / "net.png").read_bytes()[:4] == b"\x89PNG"
    r = netops("topology", "draw", "--scope", "sichuan", "--format", "html", "--out", str(tmp_path / "sc"))
    assert r.returncode == 0 and "已生成" in r.stdout
    page = (tmp_path / "sc").read_text(encoding="utf-8")
    assert "site-jiangyou" in page.replace("&#45;", "-") and "site-huadu" not in page.replace("&#45;", "-")
    r = netops("topology", "draw", "--format", "dot", "--out", "-")
    assert r.returncode == 0 and r.stdout.startswith('digraph "jinbao"')


def test_draw_without_dot_is_one_line(netops, tmp_path):
    env = clean_env(PATH=str(tmp_path))  # python is run by absolute path; no dot on this PATH
    r = netops("topology", "draw", "--out", str(tmp_path / "x.svg"), env=env)
    one_line_error(r, "Graphviz 'dot' is not installed", code=4)  # a missing tool: the command itself failed
    assert not (tmp_path / "x.svg").exists()
    r = netops("topology", "draw", "--format", "dot", "--out", str(tmp_path / "x.dot"), env=env)
    assert r.returncode == 0 and (tmp_path / "x.dot").read_text(encoding="utf-8").startswith("digraph")


def test_default_output_name(netops, tmp_path):
    import subprocess
    import sys

    from conftest import REPO

    r = subprocess.run([sys.executable, "-m", "jinbao_netops.cli", "topology", "draw", "--format", "dot", "--scope", "pidu"],
                       cwd=tmp_path, env={**clean_env(), "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
                       check=False)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "topology-pidu.dot").exists()
    assert os.listdir(tmp_path) == ["topology-pidu.dot"]  # nothing else (no temp file) left behind
