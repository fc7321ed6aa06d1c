"""SSH health parsers against realistic command output of every platform, through the platform table."""
from __future__ import annotations

from pathlib import Path

import pytest

from jinbao_netops.collectors.parsers import PARSERS
from jinbao_netops.collectors.ssh import parse
from jinbao_netops.inventory.platforms import LINUX_HEALTH, PLATFORMS

FIX = Path(__file__).parent / "fixtures/collect"


def fixture(name: str) -> str:
    return (FIX / f"{name}.txt").read_text()


def test_every_platform_names_existing_parsers():
    for p in PLATFORMS.values():
        assert p.ssh_health, p.name
        for _, parser in p.ssh_health:
            assert parser in PARSERS, (p.name, parser)


def test_frr_router_ospf_and_linux_health():
    rec = parse("frr", {"vtysh -H /dev/null -c 'show ip ospf neighbor'": fixture("frr_show_ip_ospf_neighbor"),
                        LINUX_HEALTH: fixture("linux_health"), "ip -s -j link": fixture("frr_ip_link")})
    assert len(rec["interfaces"]) == 4 and rec["interfaces"][1]["counters"]["in_octets"] == 32196
    assert [(n["neighbor_id"], n["state"], n["interface"], n["full"]) for n in rec["ospf_neighbors"]] == [
        ("10.44.254.2", "full", "eth3", True), ("10.44.254.3", "full", "eth4", True),
        ("10.0.254.1", "init", "eth2", False)]
    assert (rec["load1"], rec["load5"], rec["load15"]) == (0.52, 0.41, 0.30)
    assert rec["memory_ratio"] == pytest.approx(1 - 6203412480 / 8326467584, abs=1e-4)
    assert rec["disk_used_ratio"] == pytest.approx(9861632000 / 51474898944, abs=1e-4)
    assert rec["failed_units"] == ["chrony.service", "rsyslog.service"]


def test_huawei_vrp():
    rec = parse("huawei_vrp", {"display cpu-usage": fixture("huawei_vrp_display_cpu_usage"),
                               "display memory-usage": fixture("huawei_vrp_display_memory_usage"),
                               "display ospf peer brief": fixture("huawei_vrp_display_ospf_peer_brief")})
    assert rec["cpu_ratio"] == 0.23 and rec["memory_ratio"] == 0.56
    assert [(n["neighbor_id"], n["state"], n["interface"]) for n in rec["ospf_neighbors"]] == [
        ("10.44.254.2", "full", "GigabitEthernet0/0/1"), ("10.44.254.3", "exstart", "GigabitEthernet0/0/2")]


def test_h3c_comware():
    rec = parse("hp_comware", {"display cpu-usage": fixture("hp_comware_display_cpu_usage"),
                               "display memory": fixture("hp_comware_display_memory"),
                               "display ospf peer": fixture("hp_comware_display_ospf_peer")})
    assert rec["cpu_ratio"] == 0.28  # the busiest slot's last minute
    assert rec["memory_ratio"] == pytest.approx(875560 / 1989908)
    assert [(n["neighbor_id"], n["state"], n["full"]) for n in rec["ospf_neighbors"]] == [
        ("10.44.254.1", "full", True), ("10.44.254.7", "2-way", False)]


def test_cisco_ios():
    rec = parse("cisco_ios", {"show processes cpu | include CPU utilization": fixture("cisco_ios_show_processes_cpu"),
                              "show ip ospf neighbor": fixture("cisco_ios_show_ip_ospf_neighbor")})
    assert rec["cpu_ratio"] == 0.12
    assert [(n["neighbor_id"], n["state"], n["interface"]) for n in rec["ospf_neighbors"]] == [
        ("10.51.254.2", "full", "GigabitEthernet0/1"), ("10.51.254.3", "full", "Serial0/0/0")]


def test_cisco_asa():
    assert parse("cisco_asa", {"show cpu usage": fixture("cisco_asa_show_cpu_usage")})["cpu_ratio"] == 0.07


def test_garbage_gives_empty_not_wrong():
    for name, fn in PARSERS.items():
        rec = fn("% Unrecognized command found at '^' position.\n")
        assert rec.get("ospf_neighbors", []) == [] and rec.get("cpu_ratio") is None, name


def test_collect_over_ssh_from_simulated_devices(tmp_path):
    """Sessions from the access layer to the SSH simulator: commands from the platform table, outputs
    parsed; a wrong key or a host nobody answers on fails only its own device, in one line."""
    from jinbao_netops.access import Access
    from jinbao_netops.collectors.ssh import SshTarget, collect_all
    from jinbao_netops.inventory.model import Credentials, SecretRef
    from jinbao_netops.testing.simssh import SshSim, keypair

    outputs = {"vtysh -H /dev/null -c 'show ip ospf neighbor'": fixture("frr_show_ip_ospf_neighbor"), LINUX_HEALTH: fixture("linux_health"),
               "ip -s -j link": fixture("frr_ip_link")}
    with SshSim({"r1": ("127.0.5.1", outputs), "srv1": ("127.0.5.2", outputs)}, free_port()) as sim:
        inv = sim.inventory({"r1": "frr", "srv1": "debian", "badkey": "debian", "nobody": "debian"},
                            extra={"badkey": "127.0.5.2", "nobody": "127.0.5.3"})
        keypair(tmp_path / "other")
        inv.credentials["other"] = Credentials(id="other", username="netops", ssh_key=SecretRef(env="OTHER_KEY"))
        inv.devices["badkey"].credentials = "other"
        ts = [SshTarget(d, inv.devices[d].platform, {"device": d}, 10 if d != "nobody" else 3) for d in sorted(inv.devices)]
        with Access(inv, {**sim.environ(), "OTHER_KEY": str(tmp_path / "other")}, port=sim.port, timeout=3) as access:
            res = {r["device"]: r for r in collect_all(ts, access, workers=4)}
    assert res["r1"]["ok"] and [n["state"] for n in res["r1"]["ospf_neighbors"]] == ["full", "full", "init"]
    assert res["r1"]["failed_units"] == ["chrony.service", "rsyslog.service"] and res["r1"]["load1"] == 0.52
    assert [(i["name"], i["oper_status"]) for i in res["r1"]["interfaces"]] == [
        ("lo", "unknown"), ("mgmt0", "up"), ("eth0", "up"), ("eth1", "up")]
    assert res["srv1"]["ok"] and "ospf_neighbors" not in res["srv1"] and res["srv1"]["disk_used_ratio"] > 0
    for bad in ("badkey", "nobody"):
        assert not res[bad]["ok"] and res[bad]["error"] and "\n" not in res[bad]["error"], res[bad]


def test_sessions_kept_between_rounds_and_replaced_when_dead():
    from jinbao_netops.access import Access
    from jinbao_netops.collectors.ssh import SshTarget, collect_all
    from jinbao_netops.testing.simssh import SshSim

    outputs = {LINUX_HEALTH: fixture("linux_health")}
    with SshSim({"a": ("127.0.6.1", outputs), "b": ("127.0.6.2", outputs)}, free_port()) as sim:
        inv = sim.inventory({"a": "debian", "b": "debian"})
        ts = [SshTarget(n, "debian", {"device": n}, 10) for n in ("a", "b")]
        with Access(inv, sim.environ(), port=sim.port) as access:
            first = collect_all(ts, access, workers=2)
            assert [(r["ok"], r["session_reused"]) for r in first] == [(True, False), (True, False)]
            access.session("b").client.close()  # the device dropped the session between rounds
            second = collect_all(ts, access, workers=2)
            assert [(r["ok"], r["session_reused"]) for r in second] == [(True, True), (True, False)]
            assert second[0]["failed_units"] == ["chrony.service", "rsyslog.service"]
            assert all(r["session_reused"] for r in collect_all(ts, access, workers=2))
        assert not access.kept("a")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_linux_links_state_and_counters():
    """`ip -s -j link` from a lab FRR router (huadu-r1): state and kernel counters per interface."""
    rec = PARSERS["links_linux"](fixture("frr_ip_link"))
    by = {i["name"]: i for i in rec["interfaces"]}
    assert sorted(by) == ["eth0", "eth1", "lo", "mgmt0"]
    assert by["mgmt0"]["oper_status"] == "up" and by["lo"]["oper_status"] == "unknown"
    assert by["mgmt0"]["counters"] == {"in_octets": 32196, "out_octets": 43174, "in_packets": 210, "out_packets": 154,
                                       "in_errors": 0, "out_errors": 0, "in_discards": 0, "out_discards": 0}
    assert PARSERS["links_linux"]("ip: command not found\n") == {}
