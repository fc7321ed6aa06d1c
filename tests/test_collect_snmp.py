"""The SNMP poller against snmpsim's full responder: several agents on loopback addresses, v3 authPriv
and v2c, Huawei/H3C entity MIBs, the label cache, counter wraps, agent restarts, dead agents, answers of
the wrong type, and one agent answering garbage among 50."""
from __future__ import annotations

import asyncio
import re
import socket
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jinbao_netops.collectors import wire
from jinbao_netops.collectors.snmp import Poller, Target, advance, vendor_platform
from jinbao_netops.testing.mutate import DAMAGES
from jinbao_netops.testing.simagent import Agent, FastResponder, Responder, ScriptedAgent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


PORT = free_port()


def agents() -> list[Agent]:
    return [
        Agent("sw48", "127.0.1.1", PORT, platform="frr", ports=48),
        Agent("hw-ne40", "127.0.1.2", PORT, platform="huawei_vrp", cpu=61, mem=44, down={3}),
        Agent("h3c-sr88", "127.0.1.3", PORT, platform="hp_comware", cpu=12, mem=70),
        Agent("legacy-v2", "127.0.1.4", PORT, platform="frr", community="legacy-ro"),
        Agent("wrap", "127.0.1.5", PORT, platform="frr", octets=(1 << 64) - 1000, errors=(1 << 32) - 10),
        Agent("dead", "127.0.1.6", PORT, answer=False),
    ]


@pytest.fixture(scope="module", params=[Responder, FastResponder], ids=["snmpsim", "fast"])
def sim(request):
    """snmpsim (the independent reference) and the benchmarks' fast responder must answer alike."""
    with request.param(agents()) as r:
        yield r


def by_name(r: Responder) -> dict[str, Agent]:
    return {a.name: a for a in r.agents}


class Session:
    """A poller and the one event loop it lives in (its engine's transport belongs to that loop)."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.poller = Poller()

    def cycle(self, targets, deadline: float = 20):
        return self.loop.run_until_complete(self.poller.cycle(targets, deadline=deadline))


def run(s: Session, r: Responder, names: list[str], deadline: float = 20, **kw):
    # limits that hold when the one simulator process shares a busy machine
    targets = [r.target(by_name(r)[n], timeout=2, retries=2, deadline=30, **kw) for n in names]
    return {x.device: x for x in s.cycle(targets, deadline)}


def test_v3_system_and_48_interfaces(sim):
    res = run(Session(), sim, ["sw48"])["sw48"]
    assert res.ok and res.error is None
    assert res.system == {"uptime_s": 1234.56, "name": "sw48", "object_id": "1.3.6.1.4.1.8072.3.2.10", "vendor": "frr"}
    assert sorted(res.interfaces) == list(range(1, 49))
    i7 = res.interfaces[7]
    assert i7["name"] == "GE0/0/7" and i7["alias"] == "uplink-7"
    assert (i7["admin_status"], i7["oper_status"], i7["speed_bps"]) == ("up", "up", 1_000_000_000)
    assert i7["counters"] == {"in_octets": 7_000_000, "out_octets": 14_000_000, "in_unicast_packets": 7000,
                              "out_unicast_packets": 14000, "in_errors": 35, "out_errors": 21,
                              "in_discards": 7, "out_discards": 14}
    # HOST-RESOURCES for a net-snmp agent: CPU load and RAM from hrStorage
    assert res.cpu_ratio == pytest.approx(0.37) and res.memory_ratio == pytest.approx(0.52)
    assert res.storage == [{"storage": "Physical memory", "type": "1.3.6.1.2.1.25.2.1.2",
                            "size_bytes": 1024 * 1000, "used_bytes": 1024 * 520}]
    # self-metrics: every answer counted; 48 rows × 11 columns + labels + scalars, few PDUs thanks to GETBULK
    assert res.stats.timeouts == 0 and res.stats.retries == 0
    assert res.stats.varbinds >= 48 * 13 + 4 and res.stats.pdus <= 16


def test_huawei_and_h3c_cpu_memory_from_their_entity_mibs(sim):
    res = run(Session(), sim, ["hw-ne40", "h3c-sr88"])
    hw, h3c = res["hw-ne40"], res["h3c-sr88"]
    assert hw.system["vendor"] == "huawei_vrp" and h3c.system["vendor"] == "hp_comware"
    assert (hw.cpu_ratio, hw.memory_ratio) == (0.61, 0.44)  # the busiest board, not the chassis row
    assert (h3c.cpu_ratio, h3c.memory_ratio) == (0.12, 0.70)
    assert hw.storage == [] and hw.interfaces[3]["oper_status"] == "down" and hw.interfaces[2]["oper_status"] == "up"


def test_v2c_only_where_asked_and_wrong_keys_fail_cleanly(sim):
    p = Session()
    ok = run(p, sim, ["legacy-v2"])["legacy-v2"]
    assert ok.ok and ok.system["name"] == "legacy-v2" and len(ok.interfaces) == 4
    a = by_name(sim)["sw48"]
    bad = sim.target(a, timeout=0.3, retries=0, deadline=3)
    bad.priv_key = "wrong-privacy-key"
    bad.auth_key = "wrong-auth-key-123"
    res = p.cycle([bad], deadline=10)[0]
    assert not res.ok and res.error and res.interfaces == {}


def test_vendor_from_sys_object_id():
    assert vendor_platform("1.3.6.1.4.1.2011.2.224", "frr") == "huawei_vrp"
    assert vendor_platform("1.3.6.1.4.1.25506.1.1", "huawei_vrp") == "hp_comware"
    assert vendor_platform("1.3.6.1.4.1.8072.3.2.10", "debian") == "debian"  # the inventory's own wins a tie
    assert vendor_platform("1.3.6.1.4.1.99999.1", "frr") is None
    assert vendor_platform("1.3.6.1.4.1.20111.1", "frr") is None  # a prefix of digits is not a prefix of arcs


def test_counter_arithmetic():
    assert advance(None, None, 500, 64, False) == 500
    assert advance(500, 500, 800, 64, False) == 800
    assert advance((1 << 32) - 10, 100, 5, 32, False) == 115          # 32-bit wrap
    assert advance((1 << 64) - 1000, 7, 24, 64, False) == 7 + 1024     # 64-bit wrap
    assert advance(10_000, 10_000, 300, 64, True) == 10_300             # agent restarted: counted from zero


def test_cache_counters_wrap_and_restart(tmp_path):
    port = free_port()
    a = Agent("cache", "127.0.1.20", port, ports=6, octets=(1 << 64) - 1000, errors=(1 << 32) - 10,
              uptime=50_000, last_change=700)
    with Responder([a], workdir=str(tmp_path / "sim")) as r:
        p = Session()
        first = run(p, r, ["cache"])["cache"]
        assert first.ok and first.labels_walked and first.interfaces[1]["counters"]["in_octets"] == (1 << 64) - 1000
        second = run(p, r, ["cache"])["cache"]
        # labels cached: only scalars + counter columns asked for, fewer varbinds than the first poll
        assert second.ok and not second.labels_walked and second.interfaces[1]["name"] == "GE0/0/1"
        assert second.stats.varbinds < first.stats.varbinds

        # the counters wrap (no restart: sysUpTime went on) and the table changed: new aliases
        a.octets, a.errors, a.uptime, a.last_change, a.alias_prefix = 24, 5, 60_000, 900, "renamed"
        r.restart()
        third = run(p, r, ["cache"])["cache"]
        assert third.ok and third.labels_walked and not third.restarted
        assert third.interfaces[1]["alias"] == "renamed-1"
        assert third.interfaces[1]["counters"]["in_octets"] == (1 << 64) - 1000 + 1024
        assert third.interfaces[1]["counters"]["in_errors"] == (1 << 32) - 10 + 15
        assert third.interfaces[2]["counters"]["in_octets"] == (1 << 64) - 2000 + 2048

        # the agent restarted (sysUpTime went back): labels re-read, counters continue from zero
        a.octets, a.uptime = 10, 100
        r.restart()
        fourth = run(p, r, ["cache"])["cache"]
        assert fourth.ok and fourth.restarted and fourth.labels_walked
        assert fourth.interfaces[1]["counters"]["in_octets"] == (1 << 64) - 1000 + 1024 + 10
        assert p.poller.state["cache"].label_walks == 3


def test_dead_agent_costs_only_its_own_deadline(sim):
    p = Session()
    res = run(p, sim, ["dead", "sw48", "hw-ne40"])
    assert not res["dead"].ok and "no response" in res["dead"].error
    assert res["dead"].stats.timeouts == 3 and res["dead"].stats.retries == 2
    assert res["sw48"].ok and len(res["sw48"].interfaces) == 48 and res["hw-ne40"].ok
    # a device that would outlive the cycle is cut off at the cycle deadline; the others are complete
    dead = sim.target(by_name(sim)["dead"], timeout=2, retries=9, deadline=60)
    live = sim.target(by_name(sim)["sw48"], timeout=2, retries=2, deadline=9)
    out = {x.device: x for x in p.cycle([dead, live], deadline=10)}
    assert out["dead"].error == "cycle deadline 10 s exceeded" and out["sw48"].ok


def test_thirty_percent_dead_cycle_completes_with_complete_live_data(tmp_path):
    port = free_port()
    fleet = [Agent(f"r{i:02d}", f"127.0.2.{i + 1}", port, ports=48, answer=i % 10 >= 3) for i in range(20)]
    with Responder(fleet, workdir=str(tmp_path / "sim")) as r:
        # one single-threaded simulator answers all 14 live agents: limits that hold on a busy machine
        targets = [r.target(a, timeout=5, retries=2, deadline=60, inflight=1) for a in fleet]
        s = Session()
        s.poller.concurrency = 8
        results = s.cycle(targets, deadline=120)
    dead = [x for x in results if not x.ok]
    assert sorted(x.device for x in dead) == sorted(a.name for a in fleet if not a.answer), [(x.device, x.error) for x in dead]
    assert len(dead) == 6 and all("no response" in x.error for x in dead), [(x.device, x.error) for x in dead]
    live = [x for x in results if x.ok]
    assert sorted(x.device for x in live) == sorted(a.name for a in fleet if a.answer)
    for x in live:
        assert sorted(x.interfaces) == list(range(1, 49))
        assert x.interfaces[48]["counters"]["in_octets"] == 48_000_000 and x.interfaces[48]["name"] == "GE0/0/48"


# snmpsim's protocol names → the inventory's (net-snmp's); snmpsim's AES192/AES256 are the Cisco key extension
SNMPSIM_USERS = {"netops-s256": ("SHA256", "AES", "SHA-256", "AES"), "netops-s512": ("SHA512", "AES", "SHA-512", "AES"),
                 "netops-s224": ("SHA224", "AES192BLMT", "SHA-224", "AES-192"),
                 "netops-s384": ("SHA384", "AES256BLMT", "SHA-384", "AES-256"),
                 "netops-a256": ("SHA", "AES256BLMT", "SHA", "AES-256"), "netops-a256c": ("SHA", "AES256", "SHA", "AES-256-C"),
                 "netops-a192c": ("SHA", "AES192", "SHA", "AES-192-C")}


def test_sha2_and_aes256_through_the_codec(tmp_path):
    """SHA-2 and AES-192/256, in both key extensions, through the codec; the same answers from snmpsim (pysnmp's
    agent side) as with the default SHA/AES. Real net-snmp: tests/test_collect_snmpd.py."""
    port = free_port()
    a = Agent("strong", "127.0.1.30", port, ports=3)
    users = tuple((u, auth, priv) for u, (auth, priv, _, _) in SNMPSIM_USERS.items())
    with Responder([a], workdir=str(tmp_path / "sim"), more_users=users) as r:
        s = Session()
        for user, (_, _, auth, priv) in SNMPSIM_USERS.items():
            t = r.target(a, timeout=2, retries=2, deadline=30)
            t.user, t.auth_protocol, t.priv_protocol, t.device = user, auth, priv, user
            res = s.cycle([t])[0]
            assert res.ok, (user, res.error)
            assert res.system["name"] == "strong" and sorted(res.interfaces) == [1, 2, 3]
            assert res.interfaces[2]["counters"]["in_octets"] == 2_000_000 and res.interfaces[2]["alias"] == "uplink-2"
        bad = r.target(a, timeout=0.5, retries=0, deadline=5)
        bad.user, bad.auth_protocol = "netops-s256", "SHA-512"  # the agent expects SHA-256 for this user
        res = s.cycle([bad])[0]
        assert not res.ok and res.error


def test_answers_of_the_wrong_type_cost_only_that_device(tmp_path):
    """An agent may answer any type for any OID: text where a number belongs leaves that value out (sysUpTime,
    an interface's speed and counter), and never fails the device or the cycle."""
    port = free_port()
    fleet = [Agent("typed", "127.0.1.40", port, ports=2),
             Agent("uptime-text", "127.0.1.41", port, ports=2, extra={"1.3.6.1.2.1.1.3.0": (4, "a long time")}),
             Agent("speed-text", "127.0.1.42", port, ports=2,
                   extra={"1.3.6.1.2.1.31.1.1.1.15.1": (4, "1000"), "1.3.6.1.2.1.31.1.1.1.6.1": (4, "many")})]
    with FastResponder(fleet, workdir=str(tmp_path / "sim")) as r:
        res = run(Session(), r, [a.name for a in fleet])
    assert res["typed"].ok and res["typed"].interfaces[1]["speed_bps"] == 1_000_000_000
    # a sysUpTime of the wrong type is that table's problem: the device answered, its interfaces are kept
    blind = res["uptime-text"]
    assert blind.ok and blind.system["uptime_s"] is None and sorted(blind.interfaces) == [1, 2]
    assert blind.tables["system"] == "no numeric sysUpTime in the answer" and blind.tables["interfaces"] is None
    odd = res["speed-text"]
    assert odd.ok and odd.interfaces[1]["speed_bps"] is None and "in_octets" not in odd.interfaces[1]["counters"]
    assert odd.interfaces[2]["speed_bps"] == 1_000_000_000 and odd.interfaces[2]["counters"]["in_octets"] == 2_000_000


@pytest.fixture(scope="module")
def fleet49():
    port = free_port()
    with FastResponder([Agent(f"d{i:02d}", f"127.0.3.{i + 1}", port) for i in range(49)]) as r:
        yield r


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from([0x00, 0x01, 0x03]), DAMAGES), min_size=3, max_size=3))
def test_one_device_answering_garbage_costs_only_itself(fleet49, plan):
    """50 devices, one of which answers each request with garbage only: an unauthenticated answer whose last
    varbind is cut short (its IndexError lost the whole cycle before), then answers at the security levels
    ``plan`` draws, each with the damage drawn for it. The other 49 complete, the bad one fails with the
    reasons its answers were dropped, nothing is left waiting and memory stays bounded."""
    cut = wire.tlv(0x30, wire.tlv(0x06, wire.oid_body((1, 3, 6, 1, 2, 1, 1, 5, 0))) + wire.tlv(0x04, b"x")) + b"\x30\x0c\x06"

    def garbage(agent, req):
        return [agent.response(req, flags=0x00, varbinds=cut)] + [
            damage(agent.response(req, flags=flags)) for flags, damage in plan]

    s = Session()
    bad = ScriptedAgent(garbage)
    host, port = s.loop.run_until_complete(bad.start("127.0.4.50"))
    targets = [fleet49.target(a, timeout=5, retries=1, deadline=30) for a in fleet49.agents]
    targets.append(Target("garbage", host, port=port, user="netops", auth_key="authkey-sim-1", priv_key="privkey-sim-1",
                          timeout=2, retries=0, deadline=30))
    tracemalloc.start()
    try:
        results = {x.device: x for x in s.cycle(targets, deadline=60)}
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        bad.close()
        s.poller.close()
    good = [x for n, x in results.items() if n != "garbage"]
    assert len(good) == 49 and all(x.ok and sorted(x.interfaces) == [1, 2, 3, 4] for x in good), \
        [(x.device, x.error) for x in good if not x.ok]
    err = results["garbage"].error
    assert not results["garbage"].ok and re.fullmatch(
        r"no response after 1 attempts of 2 s \(answers dropped: .+\)|agent refused the request: .+", err), err
    assert results["garbage"].stats.dropped and not s.poller.wire._waiting
    assert peak < 64 << 20
