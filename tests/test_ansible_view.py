"""The Ansible view through the real `ansible-inventory` and the jinbao plugin (repo's ansible.cfg)."""
from __future__ import annotations

import functools
import json
import re
import subprocess
import sys
from pathlib import Path

from conftest import REPO, clean_env
from jinbao_netops.inventory import load
from jinbao_netops.inventory.ansible_view import build

GOLDEN = Path(__file__).parent / "golden" / "ansible_graph.txt"  # rewritten only by tests/golden/regenerate.py
ANSIBLE_INVENTORY = str(Path(sys.executable).parent / "ansible-inventory")


def ansible_inventory(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([ANSIBLE_INVENTORY, *args], cwd=REPO, env=clean_env(**env), capture_output=True, text=True,
                          timeout=300)


def plain(v):
    """Ansible marks inventory strings as {'__ansible_unsafe': s} in its JSON; unwrap them."""
    if isinstance(v, dict):
        if set(v) == {"__ansible_unsafe"}:
            return v["__ansible_unsafe"]
        return {k: plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [plain(x) for x in v]
    return v


@functools.cache
def listed() -> dict:
    r = ansible_inventory("--list")
    assert r.returncode == 0, r.stderr
    return plain(json.loads(r.stdout))


@functools.cache
def host(name: str) -> dict:
    r = ansible_inventory("--host", name)
    assert r.returncode == 0, r.stderr
    return plain(json.loads(r.stdout))


def test_graph_matches_golden():
    r = ansible_inventory("--graph")
    assert r.returncode == 0, r.stderr
    assert "WARNING" not in r.stderr and "ERROR" not in r.stderr, r.stderr
    assert r.stdout == GOLDEN.read_text(encoding="utf-8")


def test_golden_is_the_hierarchy():
    """The golden itself encodes the right tree: each site's hosts sit directly under it, site groups nest
    ministry → province (→ DR) → city → county, and the level_/role_/platform_ groups hold every host."""
    inv = load()
    depth_of, parent_at, where = {}, {}, {}
    for line in GOLDEN.read_text(encoding="utf-8").splitlines()[1:]:
        m = re.match(r"^((?:  \|)+)--(@?)(\S+?):?$", line)
        assert m, line
        depth, is_group, name = len(m.group(1)) // 3, m.group(2), m.group(3)
        parent = parent_at.get(depth - 1, "all")
        if is_group:
            parent_at[depth] = name
            depth_of[name] = depth
            if name in inv.sites:
                site = inv.sites[name]
                assert parent == (site.parent or "all"), line
        else:
            where.setdefault(name, []).append(parent)
    for d in inv.devices.values():
        groups = where[d.id]
        assert d.site in groups
        assert f"level_{inv.sites[d.site].level.value}" in groups
        assert f"role_{d.role.value}" in groups and f"platform_{d.platform}" in groups
        assert len(groups) == 4, (d.id, groups)  # its own site only, not repeated at ancestors
    assert depth_of["bu"] == 1 and depth_of["guangdong"] == 2 and depth_of["guangdong_zaibei"] == 3
    assert depth_of["guangzhou"] == 3 and depth_of["panyu"] == 4


def test_list_is_the_view():
    """What Ansible lists is exactly inventory.ansible_view.build(): groups, children, host variables."""
    got, want = listed(), build(load())
    assert got["_meta"]["hostvars"] == want["_meta"]["hostvars"]
    for name, group in want.items():
        if name in ("_meta", "all"):
            continue
        assert sorted(got[name].get("hosts", [])) == group["hosts"], name
        assert sorted(got[name].get("children", [])) == sorted(group.get("children", [])), name
    assert set(got["all"]["children"]) - {"ungrouped"} == set(want["all"]["children"])


def test_router_host_vars():
    v = host("gd-r1")
    assert v["ansible_host"] == "10.254.44.11"
    assert v["ansible_network_os"] == "frr.frr.frr"
    assert v["ansible_connection"] == "ssh" and v["ansible_user"] == "netops"
    assert v["netops_level"] == "province" and v["netops_role"] == "router" and v["netops_platform"] == "frr"
    assert v["netops_lineage"] == {"ministry": "bu", "province": "guangdong"}
    assert v["netops_loopback"] == "10.44.254.1"
    assert v["netops_display_name"] == "广东省省中心核心路由器"
    county = host("panyu-r1")
    assert county["netops_lineage"] == {"ministry": "bu", "province": "guangdong", "city": "guangzhou",
                                        "county": "panyu"}


def test_server_host_vars():
    v = host("gd-db1")
    assert "ansible_network_os" not in v
    assert v["ansible_become"] is True
    assert v["ansible_host"] == "10.254.44.13"
    assert v["netops_services"] == ["postgresql", "mariadb"]
    assert host("huadu-r1")["netops_snmp_version"] == "v2c"


def test_no_plaintext_secrets():
    for name, v in listed()["_meta"]["hostvars"].items():
        assert v["ansible_ssh_private_key_file"] == "{{ lookup('ansible.builtin.env', 'NETOPS_SSH_KEY') }}", name
        assert "ansible_password" not in v and "ansible_ssh_pass" not in v, name
        for key, value in v.items():
            assert "NETOPS_SNMP" not in json.dumps(value), (name, key)  # SNMP keys are not Ansible's business


def test_invalid_inventory_fails_with_the_problem_line():
    """NETOPS_INVENTORY pointing at a broken inventory: the one-line problem reaches the user, and with
    unparsed_is_failed (ANSIBLE_INVENTORY_UNPARSED_FAILED) ansible-inventory exits non-zero instead of
    carrying on with an empty inventory."""
    case = REPO / "tests" / "fixtures" / "broken" / "duplicate_management"
    line = (f"{case}/inventory.yml:128: device 'huadu-r1': field 'management': 10.254.44.13 is already used by "
            "device 'guangzhou-r1'")
    r = ansible_inventory("--list", NETOPS_INVENTORY=str(case), ANSIBLE_INVENTORY_UNPARSED_FAILED="true")
    assert r.returncode != 0
    assert line in r.stdout + r.stderr
    assert "Traceback" not in r.stdout + r.stderr


def test_a_name_that_looks_like_a_template_stays_data(tmp_path):
    """Reproduced: a name holding `{{ lookup('pipe', …) }}` ran a command as root when a playbook read the
    variable. Only the credential references are templates; everything else is data."""
    import shutil

    inv = tmp_path / "inv"
    shutil.copytree(REPO / "inventory" / "default", inv)
    import os

    marker = Path(f"/tmp/jb-pwned-{os.getpid()}")
    evil = "{{ lookup('pipe','touch " + str(marker) + "') }}"
    text = (inv / "guangdong.yml").read_text(encoding="utf-8")
    (inv / "guangdong.yml").write_text(text.replace("name: 花都区社会保险经办中心", f'name: "{evil}"', 1), encoding="utf-8")
    assert load(inv).sites["huadu"].name == evil  # a legal display name: the defence is in what reads it
    r = subprocess.run([str(Path(sys.executable).parent / "ansible"), "huadu-srv1", "-m", "ansible.builtin.debug",
                        "-a", "msg={{ netops_site_name }}|{{ ansible_ssh_private_key_file }}"], cwd=REPO,
                       env=clean_env(NETOPS_INVENTORY=str(inv), NETOPS_SSH_KEY="/the/key"), capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert evil in r.stdout and "|/the/key" in r.stdout  # the name verbatim, the credential reference resolved
    assert not marker.exists()


def test_a_host_without_ssh_access_is_in_no_group_a_playbook_targets(tmp_path):
    """A v2c-only router and a database server reached by SNMP alone (access: [snmp]): in access_no_ssh and
    their site's group, in no level_/role_/platform_ group (the playbooks' targets: they were, and a play
    failed on them with a credential error); the others as before."""
    import yaml
    from conftest import snmp_only_yaml

    raw = snmp_only_yaml(yaml.safe_load((REPO / "tests/fixtures/broken/base.yml").read_text()), "huadu-r1", "gd-db1")
    path = tmp_path / "inv.yml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True))
    r = ansible_inventory("--list", NETOPS_INVENTORY=str(path))
    assert r.returncode == 0 and "WARNING" not in r.stderr, r.stderr
    got = plain(json.loads(r.stdout))
    no_ssh = {"huadu-r1", "gd-db1"}
    assert sorted(got["access_no_ssh"]["hosts"]) == sorted(no_ssh) and "access_no_ssh" in got["all"]["children"]
    attr_groups = [g for g in got if g.startswith(("level_", "role_", "platform_"))]
    assert {"platform_frr", "role_router", "level_county"} <= set(attr_groups)
    assert not [(g, h) for g in attr_groups for h in got[g].get("hosts", []) if h in no_ssh]
    assert "huadu-r1" in got["huadu"]["hosts"] and "gd-db1" in got["guangdong"]["hosts"]
    assert "panyu-r1" in got["platform_huawei_vrp"]["hosts"] and "gd-r1" in got["role_router"]["hosts"]
    assert build(load(path))["access_no_ssh"] == {"hosts": sorted(no_ssh)}  # `inventory show --ansible` says the same
