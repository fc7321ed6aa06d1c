"""The lab twin of the embedded default inventory, for real: nodes, links, routing, SSH, SNMP."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jinbao_netops import inventory
from jinbao_netops.lab.runtime import Lab

from .conftest import MINI, REPO, netops

pytestmark = pytest.mark.lab
INV = inventory.load(inventory.DEFAULT_INVENTORY)
ROUTERS = sorted(d.id for d in INV.devices.values() if d.role.value == "router")
HOSTS = sorted(d.id for d in INV.devices.values() if d.platform_info.kind == "server")


def snmpget(ip: str, oid: str, *auth: str) -> subprocess.CompletedProcess:
    return subprocess.run(["snmpget", "-On", "-Oqv", "-t", "1", "-r", "1", *auth, ip, oid],
                          capture_output=True, text=True, timeout=30)


def v3(env: dict, auth_key: str | None = None) -> list[str]:
    return ["-v3", "-l", "authPriv", "-u", "netops", "-a", "SHA", "-A", auth_key or env["NETOPS_SNMP_AUTH_KEY"],
            "-x", "AES", "-X", env["NETOPS_SNMP_PRIV_KEY"]]


def test_up_brought_every_node_up(lab):
    assert lab["up"]["ok"] and lab["up"]["nodes"] == len(INV.devices) == 46
    st = json.loads(netops("lab", "status", "--json", check=True).stdout)
    assert {n["node"] for n in st["nodes"]} == set(INV.devices)
    for n in st["nodes"]:
        assert n["state"] == "running" and n["system"] == "running", n
        assert set(n["services"].values()) == {"active"}, n
        assert n["addresses"]["mgmt0"] == [f"{INV.devices[n['node']].management}/16"]


def test_services_follow_the_inventory(lab):
    st = {n["node"]: n for n in json.loads(netops("lab", "status", "--json").stdout)["nodes"]}
    assert "postgresql" in st["gd-db1"]["services"] and "mariadb" in st["panyu-db1"]["services"]
    assert "frr" in st["gd-r1"]["services"] and "frr" not in st["bu-srv1"]["services"]
    r = netops("lab", "exec", "bu-srv1", "--", "systemctl", "is-active", "postgresql")
    assert r.stdout.strip() != "active"  # not asked for there, so not running


def test_second_up_changes_nothing(lab):
    again = json.loads(netops("lab", "up", "--json", check=True).stdout)
    assert again["changed"] is False and "nothing changed" in again["message"]


def test_proc_sys_is_read_only_in_nodes(lab):
    host_forward = Path("/proc/sys/net/ipv4/ip_forward").read_text()
    r = netops("lab", "exec", "gd-r1", "--", "sh", "-c", "echo 0 > /proc/sys/net/ipv4/ip_forward")
    assert r.returncode != 0 and "Read-only file system" in r.stderr
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text() == host_forward
    # the router forwards in its own namespace (set from outside), the host's setting is its own
    assert netops("lab", "exec", "gd-r1", "--", "cat", "/proc/sys/net/ipv4/ip_forward").stdout.strip() == "1"


def test_links_carry_inventory_names_and_addresses(lab):
    r = netops("lab", "exec", "guangzhou-r1", "--", "ip", "-j", "-d", "link", "show", "eth1", check=True)
    assert json.loads(r.stdout)[0]["ifalias"] == INV.devices["guangzhou-r1"].interfaces["eth1"].description
    # the node's /sys is its own namespace's view (tools and Ansible facts read interfaces there)
    r = netops("lab", "exec", "guangzhou-r1", "--", "ls", "/sys/class/net", check=True)
    assert set(r.stdout.split()) == {"lo", "mgmt0", *INV.devices["guangzhou-r1"].interfaces}
    r = netops("lab", "exec", "guangzhou-r1", "--", "ip", "-j", "addr", "show", "eth1", check=True)
    itf = json.loads(r.stdout)[0]
    assert [f"{a['local']}/{a['prefixlen']}" for a in itf["addr_info"]] == [str(INV.devices["guangzhou-r1"].interfaces["eth1"].address)]
    # the planned link is cabled but unconfigured until provisioning
    planned = INV.links["longgang-up2"]
    r = netops("lab", "exec", planned.a.device, "--", "ip", "-j", "addr", "show", planned.a.interface, check=True)
    assert json.loads(r.stdout)[0]["addr_info"] == []


def test_snmpv3_sysname_on_every_router(lab):
    env = lab["env"]
    for r in ROUTERS:
        res = snmpget(str(INV.devices[r].management), "1.3.6.1.2.1.1.5.0", *v3(env))
        assert res.returncode == 0 and res.stdout.strip().strip('"') == r, (r, res.stderr)


def test_snmp_rejects_wrong_keys_and_v2c_only_where_declared(lab):
    env = lab["env"]
    gd = str(INV.devices["gd-r1"].management)
    assert snmpget(gd, "1.3.6.1.2.1.1.5.0", *v3(env, auth_key="wrong-passphrase")).returncode != 0
    community = ["-v2c", "-c", env["NETOPS_SNMP_COMMUNITY"]]
    assert snmpget(gd, "1.3.6.1.2.1.1.5.0", *community).returncode != 0          # v3 only
    v2c_devices = [d for d in INV.devices.values() if d.snmp_version == "v2c"]
    assert v2c_devices
    for d in v2c_devices:
        res = snmpget(str(d.management), "1.3.6.1.2.1.1.5.0", *community)
        assert res.returncode == 0 and d.id in res.stdout


def test_snmp_reports_the_nodes_real_interfaces(lab):
    res = subprocess.run(["snmpwalk", "-On", "-Oqv", *v3(lab["env"]), str(INV.devices["gd-r1"].management),
                          "1.3.6.1.2.1.31.1.1.1.1"], capture_output=True, text=True, timeout=30)
    names = {n.strip('"') for n in res.stdout.split()}
    assert {"lo", "mgmt0", "eth0", "eth1", "eth2", "eth3", "eth4"} <= names


def _expected_adjacencies(router: str) -> int:
    n = 0
    for link in INV.links.values():
        if link.state.value != "active":
            continue
        ends = [e.device for e in link.ends()]
        if router in ends:
            other = ends[1] if ends[0] == router else ends[0]
            n += INV.devices[other].role.value == "router"
    return n


def test_ospf_adjacencies_full(lab):
    for r in ROUTERS:
        out = netops("lab", "exec", r, "--", "vtysh", "-c", "show ip ospf neighbor json", check=True).stdout
        states = [n.get("nbrState") or n.get("state") for lst in json.loads(out)["neighbors"].values() for n in lst]
        assert len(states) == _expected_adjacencies(r) and all(s.startswith("Full") for s in states), (r, states)


def test_routers_run_the_rendered_config(lab):
    """FRR drops lines it rejects without failing; every rendered line must be live."""
    from jinbao_netops.lab.plan import build

    plan = build(INV, "jinbao")
    for r in ROUTERS:
        running = {ln.strip() for ln in netops("lab", "exec", r, "--", "vtysh", "-c", "show running-config").stdout.splitlines()}
        rendered = [ln.strip() for ln in plan.nodes[r].frr_conf.splitlines() if ln.strip() and not ln.startswith("!")]
        # FRR 8.4 applies but does not echo auto-cost; the costs below show it took effect
        missing = [ln for ln in rendered if ln not in running and not ln.startswith("auto-cost")]
        assert not missing, (r, missing)
    costs = netops("lab", "exec", "guangzhou-r1", "--", "vtysh", "-c", "show ip ospf interface json", check=True).stdout
    by_if = {name: i["cost"] for name, i in json.loads(costs)["interfaces"].items()}
    links = {name: next(lk for lk in INV.links.values() if ("guangzhou-r1", name) in ((lk.a.device, lk.a.interface),
                                                                                      (lk.b.device, lk.b.interface)))
             for name, itf in INV.devices["guangzhou-r1"].interfaces.items() if itf.address}
    assert len(links) == 6, sorted(links)  # every addressed interface carries a link: the LAN, uplinks, counties
    assert {name: by_if.get(name) for name in links} == {name: 100_000 // lk.bandwidth_mbps for name, lk in links.items()}


def test_every_county_reaches_the_ministry(lab):
    r = netops("lab", "reach", "--json")
    data = json.loads(r.stdout)
    counties = {s.id for s in INV.sites.values() if s.level.value == "county"}
    assert r.returncode == 0 and data["ok"]
    assert {row["county"] for row in data["rows"]} == counties and all(row["ok"] for row in data["rows"])
    # across the routed WAN, router by router: county → its city (either, if dual-homed) → the
    # province or its DR site → the ministry; never across the management network
    for row in data["rows"]:
        hops = [INV.devices[h] for h in row["path"]]
        levels = [INV.sites[d.site].level.value for d in hops]
        assert row["path"][0] == row["from"] and row["path"][-1] == row["to"]
        assert levels[:2] == ["county", "county"] and levels[-1] == "ministry" and "city" in levels
        assert [INV.sites[d.site].level.value for d in hops if d.role.value == "router"][-1] == "ministry"
        # OSPF costs follow the inventory's bandwidths: the 10G line via the provincial centre is
        # the primary path, the DR site only a backup
        assert "province" in levels and "dr" not in levels, row["path"]


def test_ansible_reaches_every_server_over_ssh(lab):
    env = {**os.environ, **lab["env"]}
    env.pop("NETOPS_INVENTORY", None)
    ansible = str(Path(sys.executable).with_name("ansible"))
    r = subprocess.run([ansible, "all:!platform_frr", "-m", "ping"], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("SUCCESS") == len(HOSTS) == 28


def test_lab_check_playbook(lab):
    env = {**os.environ, **lab["env"]}
    env.pop("NETOPS_INVENTORY", None)
    playbook = str(Path(sys.executable).with_name("ansible-playbook"))
    r = subprocess.run([playbook, "playbooks/lab_check.yml"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    recap = {ln.split()[0]: ln for ln in r.stdout.splitlines() if "ok=" in ln and "failed=" in ln}
    assert set(recap) == set(INV.devices) and all("failed=0" in ln and "unreachable=0" in ln for ln in recap.values())


def test_vtysh_over_ssh_with_the_lab_key(lab):
    env = lab["env"]
    r = subprocess.run(["ssh", "-i", env["NETOPS_SSH_KEY"], *env["ANSIBLE_SSH_COMMON_ARGS"].split(), "-o", "BatchMode=yes",
                        f"netops@{INV.devices['bu-r1'].management}", "vtysh", "-c", "'show ip ospf neighbor'"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "Full" in r.stdout, r.stderr
    # password logins are not how the suite gets in
    r = subprocess.run(["ssh", *env["ANSIBLE_SSH_COMMON_ARGS"].split(), "-o", "BatchMode=yes", "-o", "PubkeyAuthentication=no",
                        f"netops@{INV.devices['bu-r1'].management}", "true"], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0


def test_seed_fills_every_database_once(lab):
    """`lab seed` gives every database service the demo 社保 database; a rerun changes nothing."""
    services = sorted((d.id, s) for d in INV.devices.values() for s in d.services)
    try:
        first = json.loads(netops("lab", "seed", "--json", check=True).stdout)
        assert first["ok"] and sorted((r["device"], r["service"]) for r in first["databases"]) == services
        assert {r["rows"] for r in first["databases"] if r["service"] == "postgresql"} == {5000}
        assert {r["rows"] for r in first["databases"] if r["service"] == "mariadb"} == {3000}
        r = netops("lab", "exec", "panyu-db1", "--", "mariadb", "-NB", "shebao", "-e",
                   "select count(distinct sfzh), min(sfzh) from jfjl", check=True)
        assert r.stdout.split() == ["3000", "440000000000000001"]  # Guangdong's division code leads
        netops("lab", "exec", "gd-db1", "--", "runuser", "-u", "postgres", "--", "psql", "-d", "shebao", "-c",
               "delete from cbry where id > 4990", check=True)
        again = json.loads(netops("lab", "seed", "--json", check=True).stdout)
        assert [r["rows"] for r in again["databases"]] == [r["rows"] for r in first["databases"]]  # refilled, not doubled
    finally:
        for dev, svc in services:
            if INV.devices[dev].replica and netops("lab", "exec", dev, "--", "runuser", "-u", "postgres", "--", "psql", "-Atc",
                                                   "select pg_is_in_recovery()", check=True).stdout.strip() == "t":
                continue  # a streaming standby (test_dr's): read-only, it loses the database with its primary
            drop = (["runuser", "-u", "postgres", "--", "dropdb", "--if-exists", "--force", "shebao"] if svc == "postgresql"
                    else ["mariadb", "-e", "drop database if exists shebao"])
            netops("lab", "exec", dev, "--", *drop, check=True)


def test_lab_exec_unknown_node_is_a_usage_error(lab):
    r = netops("lab", "exec", "no-such-node", "--", "true")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "no-such-node" in r.stderr


def test_failed_up_cleans_up_after_itself(lab):
    """A lab that cannot boot in time is removed entirely, and the running lab is untouched."""
    r = netops("lab", "up", "-i", str(MINI), env={"NETOPS_LAB_BOOT_TIMEOUT": "0.01"})
    assert r.returncode == 4 and "cleaned up" in r.stderr, r.stderr  # the command itself failed
    assert Lab("mini").leftovers() == []
    assert json.loads(netops("lab", "up", "--json").stdout)["changed"] is False
