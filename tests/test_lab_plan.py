"""The lab plan as a pure function of the inventory (no root, no lab)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from jinbao_netops import inventory
from jinbao_netops.lab import base, plan
from jinbao_netops.security import hostchecks

INV = inventory.load(inventory.DEFAULT_INVENTORY)
PLAN = plan.build(INV, "jinbao")


def test_every_device_is_a_node_in_its_own_namespace():
    assert set(PLAN.nodes) == set(INV.devices)
    assert len({n.ns for n in PLAN.nodes.values()}) == len(PLAN.nodes)
    assert all(n.ns == f"jb.jinbao.{d}" for d, n in PLAN.nodes.items())
    assert len({n.host_veth for n in PLAN.nodes.values()}) == len(PLAN.nodes)
    assert all(len(n.host_veth) <= 15 for n in PLAN.nodes.values())  # Linux netdev name limit
    assert PLAN.nodes["gd-r1"].image == "frr" and PLAN.nodes["gd-db1"].image == "linux"


def test_services_per_role():
    assert PLAN.nodes["gd-r1"].services == ["ssh", "snmpd", "frr", "lldpd", "netops-linktraps"]
    assert PLAN.nodes["huadu-r1"].services == ["ssh", "snmpd", "frr", "lldpd", "netops-linktraps"]  # v2c: informs
    assert PLAN.nodes["gd-db1"].services == ["ssh", "snmpd", "postgresql", "mariadb"]  # the county's MariaDB replica too
    assert PLAN.nodes["panyu-db1"].services == ["ssh", "snmpd", "mariadb"]


def test_every_link_is_one_wire_and_lan_hubs_become_bridges():
    assert sorted(w.link for w in PLAN.wires) == sorted(INV.links)
    hub = [w for w in PLAN.wires if w.a[0] == "bu-r1" and w.bridge]
    assert {w.b[0] for w in hub} == {"bu-r2", "bu-srv1", "bu-mon1"}
    assert len({w.a[1] for w in hub}) == 3  # one bridge port each
    # a LAN with one host is a plain veth, no bridge
    lan = next(w for w in PLAN.wires if w.link == "huadu-srv1-lan")
    assert lan.bridge is None
    assert next(w for w in PLAN.wires if w.link == "longgang-up2").planned


def test_linux_interface_names():
    assert plan.linux_ifname("eth1", 1) == "eth1"
    assert plan.linux_ifname("GigabitEthernet0/0/1", 3) == "if3"  # '/' is not allowed in netdev names
    assert plan.linux_ifname("a-very-long-interface-name", 2) == "if2"  # over 15 characters
    assert plan.linux_ifname("mgmt0", 4) == "if4"  # reserved for the management network


def test_ospf_areas_and_passive_interfaces():
    gd = {i.name: i for i in PLAN.nodes["gd-r1"].interfaces}
    assert gd["eth1"].area == 0 and gd["eth1"].p2p          # to the ministry: backbone
    assert gd["eth2"].area == 0                               # to its DR site: backbone
    assert gd["eth3"].area == 44 and gd["eth4"].area == 44   # to its cities: the province's area
    assert gd["eth0"].passive                                 # LAN with servers only
    bu = {i.name: i for i in PLAN.nodes["bu-r1"].interfaces}
    assert bu["eth0"].bridge and not bu["eth0"].passive       # the ministry LAN has two routers
    hd = {i.name: i for i in PLAN.nodes["huadu-r1"].interfaces}
    assert hd["eth1"].area == 44 and hd["eth1"].bandwidth_mbps == 100


def test_frr_config_follows_the_inventory():
    conf = PLAN.nodes["guangzhou-r1"].frr_conf
    assert "ospf router-id 10.44.254.3" in conf and "auto-cost reference-bandwidth 100000" in conf
    assert " ip address 10.44.255.3/31\n ip ospf area 0.0.0.44\n ip ospf network point-to-point" in conf
    assert " ip ospf hello-interval 1\n ip ospf dead-interval 4" in conf
    # the planned link's interface is described but carries no address or OSPF yet
    block = conf.split("interface eth6\n", 1)[1].split("exit", 1)[0]
    assert "description" in block and "ip address" not in block and "ospf" not in block


def test_hosts_route_through_their_site_router():
    assert PLAN.nodes["huadu-srv1"].gateway == "10.44.18.1"
    assert PLAN.nodes["bu-srv1"].gateway == "10.0.1.1"
    assert PLAN.nodes["gd-r1"].gateway is None


def test_snmpd_v3_everywhere_v2c_only_where_declared():
    secrets = {"NETOPS_SNMP_AUTH_KEY": "a" * 16, "NETOPS_SNMP_PRIV_KEY": "p" * 16, "NETOPS_SNMP_COMMUNITY": "c0mm"}
    v3 = plan.render_snmpd(PLAN.nodes["gd-r1"], secrets)
    assert 'createUser netops SHA "aaaaaaaaaaaaaaaa" AES "pppppppppppppppp"' in v3 and "rouser netops priv" in v3
    assert "community" not in v3
    v2c = plan.render_snmpd(PLAN.nodes["huadu-r1"], secrets)
    assert "rocommunity c0mm 10.254.0.0/16" in v2c and "rouser netops priv" in v2c
    assert "agentAddress udp:161\n" in v3
    # notifications to the province's trap receiver (its monitor host), in the version the device is polled with
    assert 'trapsess -v3 -l authPriv -u netops -a SHA -A "aaaaaaaaaaaaaaaa" -x AES -X "pppppppppppppppp" 10.254.44.15:162' in v3
    assert "informsink 10.254.44.15:162 c0mm" in v2c and "trapsess" not in v2c
    assert "trapsess -v3" in plan.render_snmpd(PLAN.nodes["bu-srv1"], secrets)


def test_snmpd_has_the_authpriv_user_only():
    """The routers' link traps come from netops-linktraps, not a DisMan monitor: no second user whose internal
    queries run at authNoPriv, so every access line asks for privacy (the audit's net-snmpv3 check)."""
    secrets = {"NETOPS_SNMP_AUTH_KEY": "a" * 16, "NETOPS_SNMP_PRIV_KEY": "p" * 16, "NETOPS_SNMP_COMMUNITY": "c0mm"}
    for device in ("gd-r1", "huadu-r1", "bu-srv1"):
        conf = plan.render_snmpd(PLAN.nodes[device], secrets)
        users = [ln for ln in conf.splitlines() if ln.startswith(("createUser", "rouser", "rwuser"))]
        assert users == ['createUser netops SHA "aaaaaaaaaaaaaaaa" AES "pppppppppppppppp"', "rouser netops priv"], device
        assert not [ln for ln in conf.splitlines() if ln.startswith(("iquery", "monitor", "notificationEvent"))]
    # the audit's net-snmpv3 host check on a v3 router's snmpd (as Debian's unit runs it, with this configuration)
    ps = "/usr/sbin/snmpd -LOw -u Debian-snmp -g Debian-snmp -I -smux,mteTrigger,mteTriggerConf -f -p /run/snmpd.pid"
    subs, _ = hostchecks.snmp_v3_only({"snmpd": ps + "\n" + plan.render_snmpd(PLAN.nodes["gd-r1"], secrets)}, {})
    assert [(c["label"], c["ok"]) for c in subs] == [("snmpd running 运行中", True), ("no v1/v2c community 无团体名", True),
                                                     ("SNMPv3 user with privacy (authPriv) 加密", True)]


SECRETS = {"NETOPS_SNMP_AUTH_KEY": "auth-secret-1234", "NETOPS_SNMP_PRIV_KEY": "priv-secret-5678",
           "NETOPS_SNMP_COMMUNITY": "community-secret"}


def test_routers_get_the_link_trap_watcher_with_credentials_in_a_root_only_file():
    files = {f.path: f for f in plan.link_trap_files(PLAN.nodes["gd-r1"], SECRETS)}
    prog, unit = files["/usr/local/sbin/netops-linktraps"], files["/etc/systemd/system/netops-linktraps.service"]
    conf = files["/etc/jinbao-netops/linktraps/snmp.conf"]
    assert set(files) == {prog.path, unit.path, conf.path}
    assert (prog.mode, unit.mode, conf.mode) == (0o755, 0o644, 0o600)
    assert prog.text == (Path(plan.__file__).parent / "linktraps.py").read_text() and prog.text.startswith("#!/usr/bin/python3\n")
    # no credential on a command line: the unit holds none, snmptrap reads them from the 0600 file
    assert not any(v in unit.text or v in prog.text for v in SECRETS.values())
    [exec_start] = [ln for ln in unit.text.splitlines() if ln.startswith("ExecStart=")]
    assert exec_start == ('ExecStart="/usr/local/sbin/netops-linktraps" "--sink" "10.254.44.15:162" "--version" "v3" '
                          '"--ignore" "mgmt0" "--state" "/var/lib/netops-linktraps"')
    assert 'Environment="SNMPCONFPATH=/etc/jinbao-netops/linktraps" "SNMP_PERSISTENT_DIR=/var/lib/netops-linktraps"' in unit.text
    assert "StateDirectory=netops-linktraps\n" in unit.text and "WantedBy=multi-user.target" in unit.text
    lines = [ln for ln in conf.text.splitlines() if not ln.startswith("#")]
    assert lines == ["mibs :", "noPersistentLoad yes", "noPersistentSave yes", "defSecurityName netops", "defAuthType SHA", 'defAuthPassphrase "auth-secret-1234"',
                     "defPrivType AES", 'defPrivPassphrase "priv-secret-5678"']
    # a v2c router informs with its community, from the same kind of file
    v2c = {f.path: f for f in plan.link_trap_files(PLAN.nodes["huadu-r1"], SECRETS)}
    assert '"--version" "v2c"' in v2c[unit.path].text and "community-secret" not in v2c[unit.path].text
    assert [ln for ln in v2c[conf.path].text.splitlines() if not ln.startswith("#")] [-1:] == ['defCommunity "community-secret"']
    # servers send no link traps
    assert not any(n.snmp.link_traps or "netops-linktraps" in n.services for n in PLAN.nodes.values() if n.image != "frr")


def test_snmpd_of_a_v2c_only_device_on_its_own_port(tmp_path):
    """The twin answers as the inventory declares: a device reached by v2c only, on its snmp_port, has no
    SNMPv3 user (its profile gives none) and listens on that port."""
    raw = yaml.safe_load((Path(__file__).parent / "fixtures" / "broken" / "base.yml").read_text())
    raw["credentials"]["legacy"] = {"username": "netops", "snmp": {"community": {"env": "NETOPS_SNMP_COMMUNITY"}}}
    raw["devices"]["huadu-r1"].update(credentials="legacy", access=["snmp"], snmp_version="v2c", snmp_port=1161)
    (tmp_path / "inv.yml").write_text(yaml.safe_dump(raw, allow_unicode=True))
    node = plan.build(inventory.load(tmp_path / "inv.yml"), "jinbao").nodes["huadu-r1"]
    conf = plan.render_snmpd(node, {"NETOPS_SNMP_COMMUNITY": "c0mm"})
    assert "agentAddress udp:1161\n" in conf and "rocommunity c0mm" in conf and "createUser" not in conf


def test_the_plan_holds_what_the_runtime_needs():
    """The runtime carries out the plan without reading the inventory again: logins, generated
    secrets and the reachability check are decided here."""
    assert PLAN.nodes["gd-db1"].login == plan.Login("netops", "NETOPS_SSH_KEY", None)
    assert {(s.name, s.kind) for s in PLAN.secrets} >= {("NETOPS_SSH_KEY", "ssh_key"), ("NETOPS_SNMP_AUTH_KEY", "token"),
                                                        ("NETOPS_DB_MONITOR_PASSWORD", "token")}
    assert len({s.name for s in PLAN.secrets}) == len(PLAN.secrets)
    r = PLAN.reach
    assert (r.target, r.address) == ("bu-srv1", str(next(i.address.ip for i in INV.devices["bu-srv1"].interfaces.values())))
    counties = [s.id for s in INV.sites_in_order() if s.level.value == "county"]
    assert [c for c, _, _ in r.sources] == counties
    assert all(INV.devices[d].site == c for c, _, d in r.sources)
    assert r.owner[str(next(i.address.ip for i in INV.devices["gd-r1"].interfaces.values() if i.address))] == "gd-r1"


def test_bad_lab_name():
    with pytest.raises(ValueError, match="lab name"):
        plan.build(INV, "Bad Name")


def test_base_image_key_follows_package_list_and_setup(tmp_path, monkeypatch):
    key = base.image_key()
    pk = tmp_path / "packages.txt"
    shutil.copy(base.PACKAGES_FILE, pk)
    monkeypatch.setattr(base, "PACKAGES_FILE", pk)
    assert base.image_key() == key
    pk.write_text(pk.read_text() + "\n# a comment changes nothing\n")
    assert base.image_key() == key
    pk.write_text(pk.read_text() + "tcpdump\n")
    assert base.image_key() != key and "tcpdump" in base.packages()


def test_plan_for_any_valid_inventory(tmp_path):
    """A vendor router (no FRR in production) is still twinned by an FRR node, its interface
    names mapped to Linux names with the inventory name kept as the alias."""
    src = tmp_path / "inv"
    shutil.copytree(inventory.DEFAULT_INVENTORY, src)
    doc = yaml.safe_load((src / "guangdong.yml").read_text())
    dev = doc["devices"]["huadu-r1"]
    dev["platform"] = "huawei_vrp"
    dev.pop("snmp_version")
    dev["interfaces"] = {"GigabitEthernet0/0/0": dev["interfaces"]["eth0"], "GigabitEthernet0/0/1": dev["interfaces"]["eth1"]}
    for lk in doc["links"].values():
        for side in ("a", "b"):
            lk[side] = lk[side].replace("huadu-r1:eth0", "huadu-r1:GigabitEthernet0/0/0").replace("huadu-r1:eth1", "huadu-r1:GigabitEthernet0/0/1")
    (src / "guangdong.yml").write_text(yaml.safe_dump(doc, allow_unicode=True))
    p = plan.build(inventory.load(src), "t")
    node = p.nodes["huadu-r1"]
    assert node.image == "frr"
    assert [(i.name, i.linux) for i in node.interfaces] == [("GigabitEthernet0/0/0", "if0"), ("GigabitEthernet0/0/1", "if1")]
    assert "interface if1\n description 至广州市核心" in node.frr_conf
    assert any(w.a == ("huadu-r1", "if1") or w.b == ("huadu-r1", "if1") for w in p.wires)


def test_lab_refuses_what_root_inotify_budget_cannot_hold(monkeypatch):
    from jinbao_netops.errors import UsageError
    from jinbao_netops.lab import runtime

    limit = int(open("/proc/sys/fs/inotify/max_user_instances").read())
    monkeypatch.setattr(runtime, "_inotify_in_use_by_root", lambda: 0)
    runtime._budget(len(PLAN.nodes))  # the default fits an idle host
    monkeypatch.setattr(runtime, "_inotify_in_use_by_root", lambda: limit - 10)
    with pytest.raises(UsageError, match=r"46 more nodes need about 98 inotify instances.*max_user_instances"):
        runtime._budget(len(PLAN.nodes))
