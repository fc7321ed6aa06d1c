"""Replication to the DR site, without a lab: the inventory's pairs and their checks, the configuration each
member gets, what the firewall admits, the alert's inventory facts."""
from __future__ import annotations

import contextlib
import copy
import functools
import ipaddress
import sys

import pytest
from conftest import REPO

from jinbao_netops.backup import replication
from jinbao_netops.errors import UsageError
from jinbao_netops.inventory import load
from jinbao_netops.monitoring import generate, rules
from jinbao_netops.security import admits

INV = load(None)


def test_the_default_inventory_pairs_each_province_database_with_its_dr_site():
    pairs = {p.standby: p for p in replication.pairs(INV)}
    assert set(pairs) == {"gd-dr-db1", "sc-dr-db1", "gd-db1", "sc-db1"}
    assert {p.service for p in pairs.values() if p.primary in ("gd-db1", "sc-db1")} == {"postgresql"}
    # a county's MariaDB is copied to its province data centre, which is itself the primary of its PostgreSQL pair
    assert (pairs["gd-db1"].primary, pairs["gd-db1"].service, pairs["gd-db1"].sync) == ("panyu-db1", "mariadb", False)
    assert pairs["sc-db1"].primary == "shuangliu-db1"
    gd = pairs["gd-dr-db1"]
    assert (gd.primary, gd.sync, gd.primary_address, gd.standby_address, gd.slot) == (
        "gd-db1", True, "10.44.0.10", "10.44.1.11", "netops_gd_dr_db1")
    assert pairs["sc-dr-db1"].sync is False
    # a scope takes the pairs whose standby or primary is in it
    assert [p.standby for p in replication.pairs(INV, "gd-dr-db1")] == ["gd-dr-db1"]
    assert [p.standby for p in replication.pairs(INV, "gd-db1")] == ["gd-db1", "gd-dr-db1"]
    assert [p.standby for p in replication.pairs(INV, "sichuan")] == ["sc-db1", "sc-dr-db1"]


def test_each_member_admits_only_its_peer_on_the_engine_port():
    # per engine: gd-db1 is the PostgreSQL primary of gd-dr-db1 and the MariaDB replica of panyu-db1
    assert [a for a in admits.admitted(INV, "gd-db1") if a["what"].startswith("replication")] == [
        {"proto": "tcp", "port": 3306, "sources": ["10.44.17.10"], "what": "replication peers 复制对端", "management": True},
        {"proto": "tcp", "port": 5432, "sources": ["10.44.1.11"], "what": "replication peers 复制对端", "management": True}]
    assert [(a["port"], a["sources"]) for a in admits.admitted(INV, "panyu-db1")] == [(3306, ["10.44.0.10"])]
    assert admits.admitted(INV, "gd-dr-db1")[0]["sources"] == ["10.44.0.10"]
    assert admits.admitted(INV, "huadu-srv1") == []


def test_the_primary_names_its_synchronous_standbys_and_an_async_one_none():
    gd, sc = replication.primary_conf(INV, "gd-db1"), replication.primary_conf(INV, "sc-db1")
    assert "synchronous_standby_names = 'FIRST 1 (\"gd-dr-db1\")'" in gd
    assert "synchronous_standby_names = ''" in sc
    # it listens on its management address (monitoring) and its business address (the standby's connection)
    assert "listen_addresses = 'localhost,10.254.44.13,10.44.0.10'" in gd


def test_the_standby_connects_over_verified_tls_with_a_passfile_and_its_slot():
    pair = next(p for p in replication.pairs(INV) if p.standby == "gd-dr-db1")
    conf = replication.standby_conf(INV, pair)
    assert ("primary_conninfo = 'host=10.44.0.10 port=5432 user=netops_replication "
            f"passfile={replication.PASSFILE} sslmode=verify-full sslrootcert={replication.PG_TLS}/ca.crt "
            "application_name=gd-dr-db1'") in conf
    # both members serve the node's certificate: the standby verifies it (the CA, the address), and serves it once promoted
    for c in (conf, replication.primary_conf(INV, "gd-db1")):
        assert f"ssl = on\nssl_cert_file = '{replication.PG_TLS}/node.crt'\nssl_key_file = '{replication.PG_TLS}/node.key'\n" in c
    assert "primary_slot_name = 'netops_gd_dr_db1'" in conf
    assert "password" not in conf.replace("passfile", "")


def test_a_pgpass_field_escapes_its_separators():
    from jinbao_netops import escape

    assert escape.pgpass("a:b\\c") == "a\\:b\\\\c"


@pytest.mark.parametrize("replica, message", [
    ({"of": "nowhere"}, "unknown device 'nowhere'"),
    ({"of": "gd-dr-db1"}, "a server cannot replicate itself"),
    ({"of": "gd-bak1"}, "'gd-bak1' does not run postgresql"),
    ({"of": "gd-dr-bak1"}, "is at the same site 'guangdong_zaibei'"),
])
def test_a_bad_replica_is_one_line_naming_the_device_and_field(replica, message):
    from jinbao_netops.inventory.validate import validate

    inv = copy.deepcopy(INV)
    inv.devices["gd-dr-db1"] = inv.devices["gd-dr-db1"].model_copy(
        update={"replica": replication_model(replica)})
    problems = [p for p in validate(inv) if "gd-dr-db1" in p]
    assert len(problems) == 1 and "field 'replica.of'" in problems[0] and message in problems[0], problems


def replication_model(data: dict):
    from jinbao_netops.inventory.model import Replica

    return Replica(**data)


def test_a_standby_of_a_standby_is_refused():
    from jinbao_netops.inventory.validate import validate

    inv = copy.deepcopy(INV)
    inv.devices["sc-dr-db1"] = inv.devices["sc-dr-db1"].model_copy(update={"replica": replication_model({"of": "gd-dr-db1"})})
    assert any("'gd-dr-db1' is itself a standby" in p for p in validate(inv))


def test_replica_needs_the_service_on_the_standby():
    from pydantic import ValidationError

    from jinbao_netops.inventory.model import Device

    with pytest.raises(ValidationError, match="does not run postgresql"):
        Device(site="guangdong", role="database", platform="debian", management="10.254.44.99", credentials="ops",
               services=["mariadb"], replica={"of": "gd-db1"})


def test_the_province_rules_know_each_primarys_standbys_and_alert_when_fewer_stream():
    recs = generate.inventory_rules(INV, "guangdong")["groups"][0]["rules"]
    standbys = [r for r in recs if r["record"] == rules.STANDBYS_INFO]
    assert standbys == [{"record": rules.STANDBYS_INFO, "expr": "vector(1)", "labels": {"device": "gd-db1"}}]
    alert = next(a for a in rules.DEVICE_ALERTS if a["alert"] == "ReplicationBroken")
    assert "netops_pg_replicas" in alert["expr"] and rules.STANDBYS_INFO in alert["expr"]


def test_the_audit_accepts_the_database_port_from_the_peer_and_the_management_network_only():
    from jinbao_netops.security import hostchecks
    from jinbao_netops.security.catalogue import host_params

    params = {**host_params(INV, "gd-db1"), "dengbao_peer_admit": admits.admitted(INV, "gd-db1")}
    head = ("table inet dengbao {\n chain input {\n  type filter hook input priority filter; policy drop;\n"
            "  ip saddr 10.254.0.0/16 tcp dport { 22, 5432 } accept\n  ip saddr 10.254.0.0/16 udp dport 161 accept\n")

    def verdict(extra: str) -> bool:
        subs, _ = hostchecks.CHECKS["mgmt-access"]({"nft": head + extra + " }\n}\n"}, params)
        return next(s for s in subs if "5432/tcp" in s["label"])["ok"]

    assert verdict("  ip saddr { 10.44.1.11 } tcp dport 5432 accept\n") is True
    assert verdict("  ip saddr { 10.44.1.0/24 } tcp dport 5432 accept\n") is False  # the whole DR LAN
    assert verdict("  ip saddr 10.0.0.0/8 tcp dport 5432 accept\n") is False  # the whole business network


def _node(tmp_path, answers: dict[str, str]):
    """A shell whose 'device' answers each SQL script by the first key found in it, and records what it ran."""
    import json as _json

    log = tmp_path / "ran"
    table = tmp_path / "answers.json"
    table.write_text(_json.dumps(answers))
    prog = ("import json, sys; s = sys.argv[1] + sys.stdin.read(); open(%r, 'a').write(s + '\\0'); "
            "v = next((v for k, v in json.load(open(%r)).items() if k in s), ''); "
            "sys.exit('psql: error: connection refused') if v == '!fail' else print(v)") % (str(log), str(table))
    import sys as _sys

    return (lambda device: [_sys.executable, "-c", prog]), log


def test_setup_refuses_to_clone_over_a_server_that_holds_its_own_databases(tmp_path):
    """A clone replaces the standby's data directory: a server that is not a standby and has databases (an
    inventory mistake naming a live primary) is refused, and nothing is changed on either node."""
    from jinbao_netops.errors import DeviceError

    shell, log = _node(tmp_path, {"pg_is_in_recovery": "0 ", "pg_database": "73686562616f"})
    pair = next(p for p in replication.pairs(INV) if p.standby == "gd-dr-db1")
    with pytest.raises(DeviceError, match=r"gd-dr-db1.*not a standby and holds databases shebao.*--force"):
        replication.build_pair(shell, INV, pair, "pw")
    ran = log.read_text()
    assert "pg_basebackup" not in ran and "ALTER ROLE" not in ran and "replication_slot" not in ran


def test_rebuilding_a_synchronous_pair_never_waits_for_the_standby_it_rebuilds(tmp_path, monkeypatch):
    """A sync primary whose standby died: `dr setup --force` sets the role and the slot on the primary before the
    standby is cloned; those commits must not wait for the standby (they hung for good in the lab)."""
    from jinbao_netops.errors import DeviceError

    monkeypatch.setattr(replication, "STREAM_WAIT_S", 0)
    shell, log = _node(tmp_path, {"pg_is_in_recovery": "0 "})
    pair = next(p for p in replication.pairs(INV) if p.standby == "gd-dr-db1" and p.sync)
    with pytest.raises(DeviceError, match="not streaming"):  # the fake standby never streams
        replication.build_pair(shell, INV, pair, "pw", force=True)
    scripts = [s for s in log.read_text().split("\0") if "ALTER ROLE" in s or "pg_create_physical_replication_slot" in s]
    assert len(scripts) == 2
    assert all(s.index("SET synchronous_commit = local;") < min(s.find(w) for w in ("ALTER ROLE", "pg_create_physical")
                                                                  if w in s) for s in scripts)


def test_a_standby_that_does_not_answer_is_cloned_only_with_force(tmp_path, monkeypatch):
    """A failover drill's failback re-clones the old primary while it is stopped: its PostgreSQL does not answer.
    Without --force that is an error (nothing changed); with it, the node is cloned."""
    from jinbao_netops.errors import DeviceError

    monkeypatch.setattr(replication, "STREAM_WAIT_S", 0)
    pair = next(p for p in replication.pairs(INV) if p.standby == "gd-dr-db1")
    shell, log = _node(tmp_path, {"pg_is_in_recovery": "!fail"})
    with pytest.raises(DeviceError, match="connection refused"):
        replication.build_pair(shell, INV, pair, "pw")
    assert "pg_basebackup" not in log.read_text()
    log.unlink()
    with pytest.raises(DeviceError):  # the fake never streams afterwards
        replication.build_pair(shell, INV, pair, "pw", force=True)
    clone = [s for s in log.read_text().split("\0") if "pg_basebackup" in s]
    assert len(clone) == 1 and " reclone" in clone[0]


@pytest.mark.parametrize("address, message", [
    ("10.44.1.100", "is not a host address of gd-db1's LAN 10.44.0.0/24"),  # the standby's LAN, not the primary's
    ("10.44.0.255", "is not a host address of gd-db1's LAN"),               # the LAN's broadcast address
    ("10.44.0.1", "is already used by device 'gd-r1'"),                     # the router's LAN address
    ("10.51.0.100", "is not a host address of gd-db1's LAN"),               # Sichuan's pair's address
])
def test_a_bad_service_address_is_one_line_naming_the_field(address, message):
    from jinbao_netops.inventory.validate import validate

    inv = copy.deepcopy(INV)
    inv.devices["gd-dr-db1"] = inv.devices["gd-dr-db1"].model_copy(
        update={"replica": replication_model({"of": "gd-db1", "sync": True, "service_address": address})})
    problems = [p for p in validate(inv) if "device 'gd-dr-db1'" in p]
    assert len(problems) == 1 and "field 'replica.service_address'" in problems[0] and message in problems[0], problems


def _in_netns(script: str) -> str:
    """``script`` as root of a private user and network namespace holding a LAN interface like gd-db1's eth0."""
    import subprocess

    setup = "set -e; ip link add eth0 type veth peer name eth1 && ip addr add 10.44.0.10/24 dev eth0 && ip link set eth0 up && ip link set lo up\n"
    r = subprocess.run(["unshare", "--user", "--map-root-user", "--net", "sh", "-c", setup + script],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_the_primary_holds_the_service_address_in_its_lan_and_elsewhere_it_is_a_host_route():
    """dr setup has the primary hold the pair's service address on its LAN interface with the LAN's prefix (idempotent);
    a promoted standby at the DR site holds it on lo as a /32 (its router announces it); release takes it away."""
    from jinbao_netops.inventory.engines import _shell_line

    pair = next(p for p in replication.pairs(INV) if p.standby == "gd-dr-db1")
    assert pair.service_address == "10.44.0.100"

    def run(device: str, hold: bool) -> str:  # the script with its arguments, as root (sudo is not in the namespace)
        argv = replication.service_address(INV, pair, device, hold).argv
        return _shell_line(argv[argv.index("--") + 1:]) + "\n"

    show = "ip -o -4 addr show | awk '{print $2, $4}'\n"
    out = _in_netns(run("gd-db1", True) + run("gd-db1", True) + show + run("gd-db1", False) + show)
    lines = out.splitlines()
    assert lines[0] == "service address 10.44.0.100 held on eth0"  # once: the second run changed nothing
    assert "eth0 10.44.0.100/24" in lines[1:4] and lines[4] == "service address 10.44.0.100 released"
    assert "10.44.0.100" not in "".join(lines[5:])
    # the standby (its LAN is 10.44.1.0/24): a /32 on lo — in the namespace its business address is absent, lo is named
    out = _in_netns(run("gd-dr-db1", True) + show)
    assert "service address 10.44.0.100 held on lo" in out and "lo 10.44.0.100/32" in out


# --- the /32 at the standby's site router, in each platform's own syntax ------------------------------------------

# gd-dr-r1 as each platform prints it, with the OSPF process the link templates configure (process 1; FRR's one)
ROUTER_CONFIG = {
    "huawei_vrp": "sysname gd-dr-r1\ninterface GigabitEthernet0/0/0\n ip address 10.44.1.1 24\n ospf enable 1 area 0.0.0.0\n"
                  "ospf 1 router-id 10.44.254.2\n bandwidth-reference 100000\n",
    "hp_comware": "sysname gd-dr-r1\ninterface GigabitEthernet1/0/1\n ip address 10.44.1.1 24\n ospf 1 area 0.0.0.0\n"
                  "ospf 1 router-id 10.44.254.2\n bandwidth-reference 100000\n",
    "cisco_ios": "hostname gd-dr-r1\ninterface GigabitEthernet0/1\n ip address 10.44.1.1 255.255.255.0\n ip ospf 1 area 0\n"
                 "router ospf 1\n router-id 10.44.254.2\n auto-cost reference-bandwidth 100000\n",
    "frr": "hostname gd-dr-r1\ninterface eth0\n ip address 10.44.1.1/24\n ip ospf area 0.0.0.0\n"
           "router ospf\n ospf router-id 10.44.254.2\n",
}
# what each prints once the service address 10.44.0.100 is announced via gd-dr-db1 (10.44.1.11): the route, and the
# OSPF process's header with the line that redistributes static routes
ROUTE = {"huawei_vrp": "ip route-static 10.44.0.100 255.255.255.255 10.44.1.11",
         "hp_comware": "ip route-static 10.44.0.100 32 10.44.1.11",
         "cisco_ios": "ip route 10.44.0.100 255.255.255.255 10.44.1.11", "frr": "ip route 10.44.0.100/32 10.44.1.11"}
OSPF = {"huawei_vrp": ("ospf 1 router-id 10.44.254.2", "import-route static"),
        "hp_comware": ("ospf 1 router-id 10.44.254.2", "import-route static"),
        "cisco_ios": ("router ospf 1", "redistribute static subnets"), "frr": ("router ospf", "redistribute static")}
DOUBLE_STYLE = {"huawei_vrp": "vrp", "hp_comware": "comware", "cisco_ios": "ios", "frr": "frr"}
GD_PAIR = next(p for p in replication.pairs(INV) if p.standby == "gd-dr-db1")


@contextlib.contextmanager
def dr_router(tmp_path, platform: str, config: str):
    """(access, the double): gd-dr-r1 on ``platform``, a test double of the vendor's CLI (tests/fixtures/provision)
    on a loopback address, holding ``config``, reached through the access layer as the drill reaches it."""
    sys.path.insert(0, str(REPO / "tests/fixtures/provision"))
    from fakedevice import FakeDevice

    from jinbao_netops.access import Access
    from jinbao_netops.inventory.model import Credentials, SecretRef

    fake = FakeDevice("gd-dr-r1", DOUBLE_STYLE[platform], config, "10.44.254.2", address="127.0.0.1")
    try:
        (tmp_path / "known_hosts").write_text(fake.known_hosts_line())
        inv = copy.deepcopy(INV)
        inv.credentials["double"] = Credentials(id="double", username="netops", password=SecretRef(env="DOUBLE_PW"))
        inv.devices["gd-dr-r1"] = inv.devices["gd-dr-r1"].model_copy(update={
            "platform": platform, "management": ipaddress.IPv4Address("127.0.0.1"), "credentials": "double"})
        with Access(inv, {"DOUBLE_PW": "pw"}, known_hosts=str(tmp_path / "known_hosts"), port=fake.port) as access:
            yield access, fake
    finally:
        fake.close()


def _routed(fake, platform: str) -> tuple[bool, bool]:
    """(the /32 in the double's running config, its OSPF process redistributing static routes)."""
    from jinbao_netops.topology.provision.render import parse

    tree = parse(fake.running())
    header, line = OSPF[platform]
    assert tree.find(header) is not None, fake.running()  # the process itself is never touched
    return tree.find(ROUTE[platform]) is not None, tree.find(header).find(line) is not None


@pytest.mark.parametrize("platform", list(ROUTER_CONFIG))
def test_the_standbys_site_router_announces_and_withdraws_the_service_route_in_its_own_syntax(tmp_path, platform):
    """A failover moves the service address to the DR standby: its site router, whatever its platform, gets the /32
    to it and redistributes static routes into OSPF, saved; the failback removes both. Each reads the running
    config first: done twice, the second changes nothing. (VRP, Comware and IOS were refused before: FRR only.)"""
    router, via = replication.service_route(INV, GD_PAIR, "gd-dr-db1")
    assert (router, via) == ("gd-dr-r1", "10.44.1.11")
    with dr_router(tmp_path, platform, ROUTER_CONFIG[platform]) as (access, fake):
        router, via = replication.service_route(access.inv, GD_PAIR, "gd-dr-db1")
        session = access.session(router)
        show = session.plat.show_running
        assert _routed(fake, platform) == (False, False)

        assert replication.announce(session, "10.44.0.100", via, True) == ["announced 10.44.0.100/32 via 10.44.1.11"]
        assert _routed(fake, platform) == (True, True) and fake.saved == fake.running()
        seen = len(fake.received)
        assert replication.announce(session, "10.44.0.100", via, True) == []
        assert fake.received[seen:] == [show]  # read, nothing configured

        assert replication.announce(session, "10.44.0.100", via, False) == ["withdrew 10.44.0.100/32"]
        assert _routed(fake, platform) == (False, False) and fake.saved == fake.running()
        seen = len(fake.received)
        assert replication.announce(session, "10.44.0.100", via, False) == []
        assert fake.received[seen:] == [show]


@pytest.mark.parametrize("platform", list(ROUTER_CONFIG))
def test_withdrawing_keeps_the_redistribution_another_static_route_needs(platform):
    """The router redistributes a static route of its own already: the announcement adds only the /32, the
    withdrawal removes only the /32 (the lines each platform's CLI is given, from its running config)."""
    from jinbao_netops.inventory.platforms import PLATFORMS

    plat, (header, line) = PLATFORMS[platform], OSPF[platform]
    own = ROUTE[platform].replace("10.44.0.100", "10.44.9.9")
    config = ROUTER_CONFIG[platform].replace(header + "\n", f"{header}\n {line}\n") + own + "\n"
    lines = functools.partial(replication.route_lines, "gd-dr-r1", plat, address="10.44.0.100", next_hop="10.44.1.11")
    assert lines(config, on=True) == [ROUTE[platform]]
    assert lines(config + ROUTE[platform] + "\n", on=False) == [f"{plat.negate} {ROUTE[platform]}"]
    # without it, the redistribution goes with the /32 (as the test against the double shows)
    assert lines(config.replace(own, ROUTE[platform]), on=False)[1:] == [plat.ospf_process, f"{plat.negate} {line}",
                                                                          plat.stanza_exit]


def test_a_router_without_the_ospf_process_is_not_configured(tmp_path):
    from jinbao_netops.errors import DeviceError

    config = ROUTER_CONFIG["huawei_vrp"].split("ospf 1 router-id")[0]
    with dr_router(tmp_path, "huawei_vrp", config) as (access, fake):
        with pytest.raises(DeviceError, match=r"device 'gd-dr-r1': no OSPF process 'ospf 1' .* announce 10.44.0.100"):
            replication.announce(access.session("gd-dr-r1"), "10.44.0.100", "10.44.1.11", True)
        assert fake.running() == fake.saved and "system-view" not in fake.received


def test_the_lines_follow_the_running_config_as_the_vendor_prints_it():
    """Comware 7 prints its global lines indented under ``#`` separators; FRR's lines are the ones the lab's vtysh
    took before (``router ospf`` / ``redistribute static``)."""
    from jinbao_netops.inventory.platforms import PLATFORMS

    comware = ("#\n version 7.1.070, Release 6728P22\n#\n sysname gd-dr-r1\n#\nospf 1 router-id 10.44.254.2\n"
               " import-route static\n area 0.0.0.0\n#\n ip route-static 10.44.0.100 32 10.44.1.11\n#\nreturn\n")
    lines = functools.partial(replication.route_lines, "gd-dr-r1", PLATFORMS["hp_comware"], comware, "10.44.0.100",
                              "10.44.1.11")
    assert lines(True) == []
    assert lines(False) == ["undo ip route-static 10.44.0.100 32 10.44.1.11", "ospf 1", "undo import-route static", "quit"]
    frr = ROUTER_CONFIG["frr"]
    assert replication.route_lines("gd-dr-r1", PLATFORMS["frr"], frr, "10.44.0.100", "10.44.1.11", True) == [
        "ip route 10.44.0.100/32 10.44.1.11", "router ospf", "redistribute static", "exit"]


def test_a_router_platform_without_host_route_forms_is_refused_in_one_line():
    inv = copy.deepcopy(INV)
    inv.devices["gd-dr-r1"] = inv.devices["gd-dr-r1"].model_copy(update={"platform": "cisco_asa"})
    with pytest.raises(UsageError, match=r"device 'gd-dr-r1': field 'platform': moving a service address is not "
                                         r"rendered for cisco_asa \(rendered for huawei_vrp, hp_comware, cisco_ios, frr\)"):
        replication.service_route(inv, GD_PAIR, "gd-dr-db1")


# --- the WAL archive and point-in-time recovery (backup/pitr.py) ---------------------------------------------

VIEW = "pg_stat_replication WHERE application_name"  # the server's view of its receiver (first key: it wins)


def test_a_server_with_no_slot_for_its_receiver_gets_a_new_archive_and_a_streaming_one_is_left_alone(tmp_path, monkeypatch):
    """No slot on the server (never archived, or re-cloned/promoted after a failover, its place in the WAL lost): the
    slot is made holding WAL from now on and the store starts a fresh archive (the old one kept aside). A receiver
    that streams is left as it is: no password change, no new archive."""
    from jinbao_netops.backup import pitr
    from jinbao_netops.errors import DeviceError

    monkeypatch.setattr(replication, "STREAM_WAIT_S", 0)
    shell, log = _node(tmp_path, {VIEW: "-;-"})
    with pytest.raises(DeviceError, match="gd-bak1.*WAL archive of gd-db1 is not streaming"):  # the fake never streams
        pitr.build(shell, INV, "gd-db1", "pw")
    ran = log.read_text().split("\0")
    assert any("pg_create_physical_replication_slot(E'netops_wal_gd_bak1', true)" in s for s in ran)
    store = [s for s in ran if "netops-wal@.service" in s]
    assert len(store) == 1 and " fresh" in store[0] and "HOST=10.254.44.13" in store[0]
    assert ":replication:netops_replication:pw" in store[0]  # the password on stdin, never in argv
    assert any("ALTER ROLE" in s for s in ran) and any("10.254.44.14" in s and "hostssl replication" in s for s in ran)

    log.unlink()
    shell, log = _node(tmp_path, {VIEW: "streaming async 0 0;1 0"})
    assert pitr.build(shell, INV, "gd-db1", "pw") == []
    ran = log.read_text().split("\0")
    assert not any("ALTER ROLE" in s for s in ran)
    assert [s for s in ran if "netops-wal@.service" in s][0].count(" keep") == 1


def test_the_receiver_is_not_counted_as_a_standby():
    """pg_receivewal shows in pg_stat_replication like a standby: counted as one, a primary whose standby died would
    still read one replica and ReplicationBroken would never fire."""
    from jinbao_netops.inventory.engines import POSTGRESQL, WAL_ARCHIVER

    sql = POSTGRESQL.replication
    assert f"application_name IS DISTINCT FROM '{WAL_ARCHIVER}') AS replicas" in sql
    assert f"application_name = '{WAL_ARCHIVER}' AND state = 'streaming') AS wal_archivers" in sql
    recs = generate.inventory_rules(INV, "guangdong")["groups"][0]["rules"]
    assert [r["labels"]["device"] for r in recs if r["record"] == rules.WAL_ARCHIVE_INFO] == ["gd-db1"]


@pytest.mark.parametrize("argv, message", [
    (["sc-db1", "--to", "2026-01-01T00:00:00+08:00"], "sc-db1: its log is not archived"),
    (["gd-db1", "--to", "yesterday"], "--to 'yesterday': not a time"),
    (["gd-db1", "--to", "2999-01-01T00:00:00"], "in the future"),
    (["nosuch", "--to", "2026-01-01T00:00:00"], "nosuch: no such device"),
])
def test_pitr_refuses_bad_requests_in_one_line_before_any_work(argv, message, tmp_path, capsys):
    from jinbao_netops.cli import main

    assert main(["dr", "pitr", *argv, "--out", str(tmp_path / "x.sql")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "x.sql").exists()


def test_a_time_without_a_zone_is_this_machines_local_time():
    from datetime import datetime

    from jinbao_netops.backup import pitr

    assert pitr.parse_time("2026-01-01T08:00:00") == datetime(2026, 1, 1, 8, 0).astimezone()
    assert pitr.parse_time("2026-01-01 08:00:00+08:00").utcoffset().total_seconds() == 8 * 3600


def test_the_collector_reads_how_many_standbys_a_primary_waits_for():
    """`sync: true` in the inventory is what `dr setup` configured, not what the primary does now: the collector reads
    the standbys whose sync_state is sync or quorum (the WAL receiver never counted), as netops_pg_sync_standbys."""
    from jinbao_netops.collectors.db import GAUGES, db_families
    from jinbao_netops.inventory.engines import POSTGRESQL, WAL_ARCHIVER

    assert (f"application_name IS DISTINCT FROM '{WAL_ARCHIVER}'\n     AND sync_state IN ('sync', 'quorum')) AS sync_standbys"
            in POSTGRESQL.replication)
    m = POSTGRESQL.replication_metrics([{"in_recovery": 0, "replica_lag_s": 0.1, "replicas": 1, "sync_standbys": 0,
                                         "wal_archivers": 1}])
    assert m["sync_standbys"] == 0.0 and GAUGES["sync_standbys"][0] == "netops_pg_sync_standbys"
    fams = {f.name: f for f in db_families([{"device": "gd-db1", "service": "postgresql", "up": True, "metrics": m,
                                             "database_size_bytes": {}}])}
    assert [s.value for s in fams["netops_pg_sync_standbys"].samples] == [0.0]


def test_the_province_rules_know_each_primarys_synchronous_standbys_and_alert_when_it_waits_for_fewer():
    recs = generate.inventory_rules(INV, "guangdong")["groups"][0]["rules"]
    assert [r for r in recs if r["record"] == rules.SYNC_STANDBYS_INFO] == [
        {"record": rules.SYNC_STANDBYS_INFO, "expr": "vector(1)", "labels": {"device": "gd-db1"}}]
    sichuan = generate.inventory_rules(INV, "sichuan")["groups"][0]["rules"]  # sc-db1 → sc-dr-db1 is asynchronous
    assert [r["labels"] for r in sichuan if r["record"] == rules.STANDBYS_INFO] == [{"device": "sc-db1"}]
    assert not [r for r in sichuan if r["record"] == rules.SYNC_STANDBYS_INFO]
    alert = next(a for a in rules.DEVICE_ALERTS if a["alert"] == "SyncReplicationDegraded")
    assert alert["labels"]["severity"] == "critical" and rules.SYNC_STANDBYS_INFO in alert["expr"]
    assert rules.STANDBYS_INFO in alert["expr"]  # only while every standby streams: a standby gone is ReplicationBroken's


def test_dr_status_reports_a_synchronous_standby_streaming_asynchronously(tmp_path, monkeypatch):
    """`dr status --json` carries each pair's sync_state as the primary reports it; a sync pair streaming async is
    not ok."""
    shell, _ = _node(tmp_path, {"pg_stat_replication": "streaming async 0 0;1 0",
                                "pg_is_in_recovery": "1 streaming 10.44.0.11 netops_gd_dr_db1"})
    monkeypatch.setattr(replication, "ssh_shell", lambda access: shell)
    pair = next(p for p in replication.pairs(INV) if p.standby == "gd-dr-db1")
    row = replication.status_pair(None, INV, pair, 5)
    assert row["mode"] == "sync" and row["state"] == "streaming" and row["sync_state"] == "async" and not row["ok"]
    assert row["problems"] == ["synchronous standby reported as async 同步模式未生效"]


# --- MariaDB pairs (backup/gtid.py) ----------------------------------------------------------------------
def _mariadb_pair():
    return next(p for p in replication.pairs(INV) if p.service == "mariadb" and p.primary == "panyu-db1")


def test_a_mariadb_primary_logs_rows_with_its_own_gtid_domain_and_serves_tls():
    from jinbao_netops.backup import gtid

    conf = gtid.primary_conf(INV, "panyu-db1")
    sid = gtid.server_id(INV, "panyu-db1")
    assert sid == int(ipaddress.IPv4Address("10.254.44.22")) != gtid.server_id(INV, "gd-db1")
    for line in (f"server_id = {sid}", f"gtid_domain_id = {sid}", "binlog_format = ROW", f"log_bin = {gtid.BINLOG}",
                 f"ssl_cert = {gtid.TLS}/node.crt", "bind_address = 127.0.0.1,10.254.44.22,10.44.17.10"):
        assert line + "\n" in conf, conf
    replica = gtid.replica_conf(INV, _mariadb_pair())
    assert "read_only = ON\n" in replica and f"server_id = {gtid.server_id(INV, 'gd-db1')}\n" in replica
    assert "log_bin" not in replica


def test_the_replication_account_and_the_replica_connection_quote_a_hostile_password():
    from jinbao_netops.backup import gtid

    hostile = "p'; DROP USER root; --\\"
    acct = gtid.account_sql("10.44.0.10", hostile)
    assert acct.startswith("SET SESSION sql_log_bin = 0;\n")  # the password is not replicated
    assert "'netops_replication'@'10.44.0.10' IDENTIFIED BY 'p''; DROP USER root; --\\\\' REQUIRE SSL" in acct
    assert "GRANT REPLICATION SLAVE ON *.* TO 'netops_replication'@'10.44.0.10';" in acct
    cm = gtid.change_master_sql(_mariadb_pair(), hostile)
    for part in ("MASTER_HOST = '10.44.17.10'", "MASTER_SSL = 1", "MASTER_SSL_VERIFY_SERVER_CERT = 1",
                 "MASTER_USE_GTID = slave_pos", "MASTER_PASSWORD = 'p''; DROP USER root; --\\\\'"):
        assert part in cm, cm
    # the SQL travels on stdin; the commands' argv hold no SQL
    assert "SHOW" not in " ".join(gtid.REPLICA_STATUS.argv)


SHOW_REPLICA = """*************************** 1. row ***************************
                Slave_IO_State: Waiting for master to send event
                   Master_Host: 10.44.17.10
                   Master_User: netops_replication
                   Master_Port: 3306
         Relay_Master_Log_File: netops-binlog.000001
              Slave_IO_Running: Yes
             Slave_SQL_Running: Yes
                    Last_Error:
           Exec_Master_Log_Pos: 927
            Master_SSL_Allowed: Yes
         Seconds_Behind_Master: 0
 Master_SSL_Verify_Server_Cert: Yes
                    Using_Gtid: Slave_Pos
"""


def test_the_replica_is_left_alone_only_when_it_replicates_as_setup_builds_it():
    from jinbao_netops.backup import gtid

    pair, st = _mariadb_pair(), gtid.read_status(SHOW_REPLICA)
    assert st["Last_Error"] == "" and st["Exec_Master_Log_Pos"] == "927"
    assert gtid.replicates(pair, st) and gtid.read_status("") == {}
    for field, value in (("Master_SSL_Verify_Server_Cert", "No"), ("Using_Gtid", "No"), ("Slave_IO_Running", "Connecting"),
                         ("Master_Host", "10.44.17.99"), ("Slave_SQL_Running", "No")):
        assert not gtid.replicates(pair, {**st, field: value}), field


def test_a_mariadb_pair_is_never_synchronous_nor_moves_a_service_address(tmp_path):
    import shutil

    import yaml
    from jinbao_netops.inventory.loader import InventoryError

    inv_dir = tmp_path / "inv"
    shutil.copytree(REPO / "inventory" / "default", inv_dir)
    gd = inv_dir / "guangdong.yml"
    doc = yaml.safe_load(gd.read_text(encoding="utf-8"))
    doc["devices"]["gd-db1"]["replica"].update(sync=True, service_address="10.44.17.100")
    gd.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    with pytest.raises(InventoryError) as e:
        load(inv_dir)
    problems = str(e.value)
    assert "gd-db1" in problems and "replica.sync" in problems and "MariaDB replication is asynchronous" in problems
    assert "replica.service_address" in problems


def test_the_binary_log_archive_reads_its_secret_from_a_quoted_option_file_and_its_times_in_utc():
    from datetime import datetime, timedelta, timezone

    from jinbao_netops.backup import binlog, pitr

    assert binlog.option_value('p"w\\x') == '"p\\"w\\\\x"'  # a quote or backslash cannot end the value
    with pytest.raises(ValueError):
        binlog.option_value("pw\nuser = root")  # nor a newline add an option
    # the password never reaches the unit's command line; the store's file is named by the unit
    assert "password" not in binlog.UNIT_TEXT and f"--defaults-extra-file={binlog.ROOT}/%i.cnf" in binlog.UNIT_TEXT
    t = datetime(2026, 12, 5, 15, 0, 3, 600000, tzinfo=timezone(timedelta(hours=8)))
    assert binlog.target_arg(t) == "2026-12-05 07:00:03"
    assert binlog.replayed_time("261205  7:00:01") == "2026-12-05T07:00:01+00:00"
    assert binlog.replayed_time("none") is None
    # the servers whose log is archived, per engine: gd-db1's PostgreSQL (not its MariaDB, a replica), panyu-db1's MariaDB
    assert pitr.archived(INV) == [("gd-db1", "postgresql"), ("panyu-db1", "mariadb")]
