"""The SNMP collector on recordings of real vendors' agents (tests/fixtures/snmp/*.snmprec, written by
record.py there from the public MIBs): Huawei S5720 and AR6280 (VRP5) and CE6881 (VRP8), H3C S6520 (Comware 7)
and MSR36-20 (Comware 5), Cisco Catalyst 9300 (IOS-XE) and 2960-X (IOS). Each test shows one of issue 13's defects
on the data of the agent that has it: ifXTable absent, 32-bit counters, no ifTableLastChange, duplicated ifNames,
vendor CPU/memory/temperature/fans/power/transceiver powers, a restricted view, GBK text, a slow table, ports,
credentials."""
from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from jinbao_netops import inventory
from jinbao_netops.collectors import ssh, wire
from jinbao_netops.collectors.exporter import Snapshot
from jinbao_netops.collectors.snmp import Poller, Target
from jinbao_netops.collectors.targets import labels, snmp_targets
from jinbao_netops.errors import NetopsError
from jinbao_netops.testing.simagent import Agent, FastResponder, Recording, ScriptedAgent, snmprec

from conftest import clean_env
from test_collect_snmp import free_port

FIXTURES = Path(__file__).parent / "fixtures"
REC = FIXTURES / "snmp"


def agent(name: str, recording: str, last: int, port: int, **kw) -> Agent:
    return Agent(name, f"127.0.6.{last}", port, recording=str(REC / f"{recording}.snmprec"), **kw)


def poll(poller: Poller, loop, r: FastResponder, name: str, **kw):
    a = next(x for x in r.agents if x.name == name)
    t = r.target(a, **{"timeout": 2, "retries": 2, "deadline": 30, **kw})
    return loop.run_until_complete(poller.cycle([t], deadline=60))[0]


@pytest.fixture(scope="module")
def vendors():
    port = free_port()
    fleet = [agent("s5720", "huawei-s5720", 1, port), agent("ar6280", "huawei-ar6280", 2, port),
             agent("s5720-ifview", "huawei-s5720-ifview", 3, port), agent("s6520", "h3c-s6520", 4, port),
             agent("msr-v5", "h3c-msr3620-v5", 5, port), agent("c9300", "cisco-c9300", 6, port),
             agent("ce6881", "huawei-ce6881", 7, port), agent("c2960x", "cisco-c2960x", 8, port)]
    with FastResponder(fleet) as r:
        loop, poller = asyncio.new_event_loop(), Poller()
        targets = [r.target(a, timeout=2, retries=2, deadline=30) for a in fleet]
        results = {x.device: x for x in loop.run_until_complete(poller.cycle(targets, deadline=60))}
        poller.close()
        loop.close()
        yield results


def render(results) -> dict:
    snap = Snapshot()
    snap.update([({"level": "county", "province": "gd", "city": "gz", "county": "", "site": "s", "device": r.device}, r)
                 for r in results], [], 1.0)
    reg = CollectorRegistry()
    reg.register(snap)
    return {f.name: f for f in text_string_to_metric_families(generate_latest(reg).decode())}


def test_every_recording_polls_completely(vendors):
    for name, res in vendors.items():
        assert res.ok and res.error is None, (name, res.error)
        assert all(why is None for t, why in res.tables.items() if t != "system"), (name, res.tables)
    assert len(vendors["ar6280"].interfaces) == 306 and len(vendors["s6520"].interfaces) == 228


def test_names_fall_back_to_ifdescr_without_ifxtable(vendors):
    """Defect 2: Comware 5 has no ifXTable; its interfaces were named by their ifIndex."""
    ifs = vendors["msr-v5"].interfaces
    assert {i: x["name"] for i, x in ifs.items()} == {
        1: "GigabitEthernet0/0", 2: "GigabitEthernet0/1", 3: "GigabitEthernet0/2", 5: "Serial1/0", 9: "NULL0",
        10: "InLoopBack0", 14: "Vlan-interface1"}
    assert ifs[5]["descr"] == "Serial1/0" and ifs[5]["alias"] == ""


def test_32bit_counters_and_ifspeed_without_hc_columns(vendors):
    """Defect 3: no ifXTable (Comware 5) or sub-interfaces without HC counters and ifHighSpeed (AR6280)."""
    msr = vendors["msr-v5"].interfaces
    assert msr[2]["counters"]["in_octets"] == 2_000_006 and msr[2]["counters"]["out_octets"] == 4_000_012
    assert msr[2]["counters"]["in_unicast_packets"] == 2000 and msr[2]["speed_bps"] == 1_000_000_000
    assert msr[5]["speed_bps"] == 2_000_000
    ar = vendors["ar6280"].interfaces
    sub = ar[40]  # GigabitEthernet0/0/0.100: 32-bit ifInOctets, ifSpeed
    assert sub["name"] == "GigabitEthernet0/0/0.100" and sub["speed_bps"] == 100_000_000
    assert sub["counters"]["in_octets"] == 1_000_003 * 40 and sub["counters"]["out_unicast_packets"] == 2 * 1_000_003 * 40 // 1000
    assert ar[3]["speed_bps"] == 1_000_000_000 and ar[3]["counters"]["in_octets"] == 3_000_009  # HC where it exists


def test_32bit_octets_wrap_like_64bit(tmp_path):
    """Defect 3: a 32-bit octet counter that went back without a restart wrapped at 2^32."""
    port = free_port()
    a = agent("msr", "h3c-msr3620-v5", 20, port, extra={"1.3.6.1.2.1.2.2.1.10.1": (65, (1 << 32) - 100)})
    with FastResponder([a], workdir=str(tmp_path / "sim")) as r:
        loop, p = asyncio.new_event_loop(), Poller()
        assert poll(p, loop, r, "msr").interfaces[1]["counters"]["in_octets"] == (1 << 32) - 100
        a.extra = {"1.3.6.1.2.1.2.2.1.10.1": (65, 400), "1.3.6.1.2.1.1.3.0": (67, 2_592_100_00)}
        r.restart()
        assert poll(p, loop, r, "msr").interfaces[1]["counters"]["in_octets"] == (1 << 32) + 400


def test_labels_refresh_on_a_new_ifindex_and_on_a_timer(tmp_path):
    """Defect 4: the S5720 has no ifTableLastChange: a new interface stayed nameless, a rename stale."""
    port = free_port()
    a = agent("s5720", "huawei-s5720", 21, port)
    with FastResponder([a], workdir=str(tmp_path / "sim")) as r:
        loop, p = asyncio.new_event_loop(), Poller()
        first = poll(p, loop, r, "s5720")
        assert first.labels_walked and first.interfaces[5]["name"] == "GigabitEthernet0/0/1"
        assert not poll(p, loop, r, "s5720").labels_walked  # nothing new: the cache serves
        ifx = "1.3.6.1.2.1.31.1.1.1"
        a.extra = {f"{ifx}.1.90": (4, "Eth-Trunk1"), f"{ifx}.6.90": (70, 5), f"{ifx}.15.90": (66, 2000),
                   "1.3.6.1.2.1.2.2.1.8.90": (2, 1), f"{ifx}.1.5": (4, "GigabitEthernet0/0/1-renamed")}
        r.restart()
        new = poll(p, loop, r, "s5720")
        assert new.labels_walked and new.interfaces[90]["name"] == "Eth-Trunk1"
        assert new.interfaces[5]["name"] == "GigabitEthernet0/0/1-renamed"
        a.extra[f"{ifx}.18.6"] = (4, "moved to floor 3")
        r.restart()
        assert not poll(p, loop, r, "s5720").labels_walked
        p.state["s5720"].labels_at -= 3600  # the refresh period (Target.label_refresh) has passed
        timed = poll(p, loop, r, "s5720")
        assert timed.labels_walked and timed.interfaces[6]["alias"] == "moved to floor 3"


def test_duplicate_ifnames_stay_separate_series(vendors):
    """Defect 5: three Nu0 on the Catalyst 9300 collapsed into one series; ifindex keeps them apart, and an
    alias is no series label (a description edit must not start new series)."""
    fams = render([vendors["c9300"]])
    nu0 = [s for s in fams["netops_interface_in_bytes"].samples if s.labels["interface"] == "Nu0"]
    assert sorted((s.labels["ifindex"], s.value) for s in nu0) == [
        ("73", 1_000_003 * 73), ("74", 1_000_003 * 74), ("75", 1_000_003 * 75)]
    assert all("alias" not in s.labels for f in fams.values() for s in f.samples if f.name != "netops_interface_info")
    info = {s.labels["ifindex"]: s.labels for s in fams["netops_interface_info"].samples}
    assert info["57"]["alias"] == "core-1" and info["57"]["descr"] == "TenGigabitEthernet1/1/1"


def test_cisco_cpu_and_memory_from_cisco_process_mib(vendors):
    """Defect 6: IOS has no HOST-RESOURCES; cpmCPUTotal5minRev and cpmCPUMemoryUsed/Free."""
    c = vendors["c9300"]
    assert c.system["vendor"] == "cisco_ios"
    assert c.cpu_ratio == pytest.approx(0.11) and c.memory_ratio == pytest.approx(3_145_728 / (3_145_728 + 5_242_880))


def test_temperature_fans_and_power_for_every_vendor(vendors):
    """Defect 7: Huawei (0 °C = no sensor), H3C (65535 = not supported), Cisco ENVMON (notPresent dropped) and
    entity sensors."""
    s5720 = vendors["s5720"].environment
    assert {k: s5720[k] for k in ("temperature", "fan", "power")} == {
        "temperature": {"67108873": 43}, "fan": {"0.1": True, "0.2": False}, "power": {"0.1": True, "0.2": True}}
    s6520 = vendors["s6520"].environment
    assert {k: s6520[k] for k in ("temperature", "fan", "power")} == {
        "temperature": {"12": 42}, "fan": {"1": True, "2": True}, "power": {"1": True, "2": False}}
    # optical power per port (ifIndex): port 2's fibre is degrading (-18.75 dBm), port 3 has no reading
    assert s6520["rx_power"] == pytest.approx({"1": -4.12, "2": -18.75, "4": -3.85, "25": -0.87, "26": -0.94})
    assert s6520["tx_power"]["25"] == pytest.approx(0.52) and "3" not in s6520["tx_power"]
    c9300 = vendors["c9300"].environment
    assert {k: c9300[k] for k in ("fan", "power")} == {"fan": {"1011": True, "1012": True},
                                                       "power": {"1014": True, "1015": False}}
    fams = render(list(vendors.values()))
    temps = {(s.labels["device"], s.labels["sensor"]): s.value for s in fams["netops_device_temperature_celsius"].samples}
    assert temps == pytest.approx({("s5720", "67108873"): 43, ("ar6280", "67108873"): 43, ("s6520", "12"): 42,
                                   ("c9300", "1008"): 31, ("c9300", "1009"): 48, ("c9300", "1010"): 38.5,
                                   ("c9300", "1101"): 31.2, ("c9300", "1121"): 35.5, ("ce6881", "67108873"): 43,
                                   ("c2960x", "1006"): 38, ("c2960x", "1025"): 29.5, ("c2960x", "1035"): 30.1})
    assert {s.labels["sensor"]: s.value for s in fams["netops_device_power_supply_ok"].samples
            if s.labels["device"] == "c9300"} == {"1014": 1, "1015": 0}


def test_cisco_temperatures_from_the_entity_sensor_mibs(vendors):
    """IOS-XE's ENVMON temperature table is empty: its temperatures are the celsius(8) rows of ENTITY-SENSOR-MIB
    (chassis and transceivers, mirrored in CISCO-ENTITY-SENSOR-MIB), each value × 10^(3·(scale − 9)) ÷
    10^precision; voltage, current, fan speed and dBm rows are no temperatures, an unavailable(2) reading (a failed
    supply's sensor, a transceiver without diagnostics) none at all."""
    assert vendors["c9300"].environment["temperature"] == pytest.approx(
        {"1008": 31, "1009": 48.0, "1010": 38.5, "1101": 31.2, "1121": 35.5})


def test_cisco_transceiver_powers_by_entity_name(vendors):
    """IOS-XE's transceiver powers were not read: ENTITY-SENSOR-MIB types them other(1) (RFC 3433 has no dBm),
    CISCO-ENTITY-SENSOR-MIB dBm(14), and only the entity's name (ENTITY-MIB entPhysicalName "Te1/1/1 Receive Power
    Sensor") tells receive from transmit. Scaled like any sensor (tenths, milli-dBm); Te1/1/2's unavailable and
    nonoperational readings (no diagnostics, laser shut down) are none; voltage and bias current are no powers."""
    env = vendors["c9300"].environment
    assert env["rx_power"] == pytest.approx({"1105": -4.1, "1125": -17.9})
    assert env["tx_power"] == pytest.approx({"1104": -2.3, "1124": -2.4})
    fams = render([vendors["c9300"]])
    assert {s.labels["sensor"]: s.value for s in fams["netops_device_optical_rx_power_dbm"].samples} == pytest.approx(
        {"1105": -4.1, "1125": -17.9})
    # IOS 15 (no ENTITY-SENSOR-MIB): its SFPs' dBm(14) rows in CISCO-ENTITY-SENSOR-MIB, named after the long port name
    old = vendors["c2960x"].environment
    assert (old["rx_power"], old["tx_power"]) == (pytest.approx({"1029": -6.2, "1039": -12.8}),
                                                  pytest.approx({"1028": -5.1, "1038": -5.5}))


def test_cisco_sensor_names_are_cached_and_new_entities_named_at_once(tmp_path):
    """The names come from a GET of the dBm sensors' entPhysicalName, kept like the interface labels: a rename shows
    after the label refresh, not before; a transceiver inserted (new sensor entities) is named in the poll that
    sees it. IOS-XE routers name the sensors "subslot 0/1 transceiver 2 Rx Power Sensor"."""
    port = free_port()
    a = agent("c9300", "cisco-c9300", 23, port)
    with FastResponder([a], workdir=str(tmp_path / "sim")) as r:
        loop, p = asyncio.new_event_loop(), Poller()
        assert poll(p, loop, r, "c9300").environment["rx_power"].keys() == {"1105", "1125"}
        es, name = "1.3.6.1.2.1.99.1.1.1", "1.3.6.1.2.1.47.1.1.1.1.7"
        a.extra = {f"{name}.1125": (4, "Te1/1/3 Bias Current Sensor"),     # renamed: stale until the refresh
                   **{f"{es}.{col}.1135": (2, v) for col, v in enumerate((1, 9, 1, -33, 1), 1)},
                   f"{name}.1135": (4, "subslot 1/1 transceiver 4 Rx Power Sensor")}
        r.restart()
        second = poll(p, loop, r, "c9300")
        assert second.environment["rx_power"] == pytest.approx({"1105": -4.1, "1125": -17.9, "1135": -3.3})
        assert second.tables["labels"] is None
        p.state["c9300"].labels_at -= 3600  # the refresh period (Target.label_refresh) has passed
        assert poll(p, loop, r, "c9300").environment["rx_power"].keys() == {"1105", "1135"}


def test_cisco_envmon_temperatures_are_the_fallback(tmp_path, vendors):
    """ENVMON's temperatures are read only where ENTITY-SENSOR-MIB gave none: an IOS-XE agent that fills both reports
    the same sensors twice under other indexes (they were exported twice); IOS 15 has its chassis temperature in
    ENVMON only, and its SFPs' in CISCO-ENTITY-SENSOR-MIB join it."""
    port = free_port()
    a = agent("c9300", "cisco-c9300", 22, port, extra={"1.3.6.1.4.1.9.9.13.1.3.1.3.1": (66, 29)})
    with FastResponder([a], workdir=str(tmp_path / "sim")) as r:
        loop, p = asyncio.new_event_loop(), Poller()
        assert poll(p, loop, r, "c9300").environment["temperature"] == pytest.approx(
            {"1008": 31, "1009": 48.0, "1010": 38.5, "1101": 31.2, "1121": 35.5})
    assert vendors["c2960x"].environment["temperature"] == pytest.approx({"1006": 38, "1025": 29.5, "1035": 30.1})


def test_huawei_optical_power_in_dbm(vendors):
    """hwEntityOpticalRx/TxPower per transceiver entity: the S5720 (VRP5) sends µW, exported as dBm
    (10·log10(µW / 1000)); a module without light (0 µW) has no dBm and no series, an empty cage no row."""
    env = vendors["s5720"].environment
    assert env["rx_power"] == pytest.approx({"67174453": -3.851, "67174454": -17.696}, abs=1e-3)
    assert env["tx_power"] == pytest.approx({"67174453": -2.503, "67174454": -2.604, "67174455": -2.700}, abs=1e-3)
    rx = {s.labels["sensor"]: s.value for s in render([vendors["s5720"]])["netops_device_optical_rx_power_dbm"].samples}
    assert rx == pytest.approx({"67174453": -3.851, "67174454": -17.696}, abs=1e-3)


def test_huawei_optical_power_unit_follows_the_release(tmp_path, vendors):
    """The same columns in hundredths of dBm, as the MIB says, on VRP8 (CloudEngine) and YunShan OS; they were read
    as µW (negative powers dropped, +0.32 dBm shown as -14.9 dBm). The empty cage's -1 is no reading, a dark port
    reads the floor of -40 dBm; a Huawei agent whose sysDescr names no known release gets no optical reading."""
    env = vendors["ce6881"].environment
    assert env["rx_power"] == pytest.approx({"16850434": -2.35, "16850435": -19.12, "16850482": 0.32, "16850483": -40})
    assert env["tx_power"] == pytest.approx({"16850434": -1.8, "16850435": -2.1, "16850482": 4.59, "16850483": -40})
    descr = "1.3.6.1.2.1.1.1.0"
    port = free_port()
    fleet = [agent("yunshan", "huawei-ce6881", 24, port, extra={descr: (4, "Huawei YunShan OS Version 1.24.0.1 "
                                                                          "(S6700 V600R024C00SPC100) HUAWEI S6730-H")}),
             agent("unknown", "huawei-ce6881", 25, port, extra={descr: (4, "HUAWEI CE6881-48S6CQ")})]
    with FastResponder(fleet, workdir=str(tmp_path / "sim")) as r:
        loop, p = asyncio.new_event_loop(), Poller()
        assert poll(p, loop, r, "yunshan").environment["rx_power"] == pytest.approx(env["rx_power"])
        unknown = poll(p, loop, r, "unknown").environment
        assert "rx_power" not in unknown and "tx_power" not in unknown and unknown["temperature"] == {"67108873": 43}


def test_huawei_power_supplies_by_presence_and_state(vendors):
    """hwPwrStatusTable: a supply asleep in energy saving (sleep(3)) works, an empty slot (hwEntityPwrPresent
    absent(2), which also says notSupply(2)) is no failed supply; both were 0 before."""
    assert vendors["s5720"].environment["power"] == {"0.1": True, "0.2": True}
    assert vendors["ar6280"].environment["power"] == {"0.1": True}
    fams = render([vendors["s5720"], vendors["ar6280"]])
    assert {(s.labels["device"], s.labels["sensor"]): s.value for s in fams["netops_device_power_supply_ok"].samples} == {
        ("s5720", "0.1"): 1, ("s5720", "0.2"): 1, ("ar6280", "0.1"): 1}


def test_a_view_without_the_system_group_is_not_down(vendors):
    """Defect 8: no sysUpTime in the view, every interface table answers: the device is up, uptime unknown."""
    v = vendors["s5720-ifview"]
    assert v.ok and v.system["uptime_s"] is None and len(v.interfaces) == 60
    assert v.tables["system"] == "no numeric sysUpTime in the answer" and v.tables["interfaces"] is None
    fams = render([v])
    assert [s.value for s in fams["netops_snmp_up"].samples] == [1]
    assert not fams["netops_device_uptime_seconds"].samples
    assert {s.labels["table"]: s.value for s in fams["netops_snmp_table_up"].samples}["system"] == 0


def test_gbk_descriptions_are_decoded(vendors):
    """Defect 9: GBK ifAlias became replacement characters; GB18030 when UTF-8 fails, hex as the last resort."""
    ifs = vendors["s5720"].interfaces
    assert ifs[1]["alias"] == "至广州市局核心" and ifs[7]["alias"] == "业务服务器区"
    assert vendors["ar6280"].interfaces[40]["alias"] == "vlan 100 网点"  # UTF-8 stays UTF-8
    assert wire.legacy_text(b"\xff\xfe\x01") == "ff:fe:01"


def test_a_slow_table_costs_only_that_table():
    """Defect 10: the entity table never answers; the interfaces answered and are kept, the device is up and
    the health table is marked, all within the device deadline."""
    rec = Recording(snmprec(Agent("s5720", recording=str(REC / "huawei-s5720.snmprec"))))
    entity = (1, 3, 6, 1, 4, 1, 2011, 5, 25, 31)

    def script(agent, req):
        if any(o[:len(entity)] == entity for o in req.oids):
            return []  # as an overloaded entity MIB: silence
        vbs = b"".join(wire.tlv(0x30, wire.tlv(0x06, wire.oid_body(o)) + b"\x05\x00") for o in req.oids)
        return [agent.response(req, varbinds=rec.answer(req.tag, 0, req.max_repetitions, vbs, 0, len(vbs)))]

    loop, p = asyncio.new_event_loop(), Poller()
    slow = ScriptedAgent(script)
    host, port = loop.run_until_complete(slow.start("127.0.6.30"))
    try:
        t = Target("s5720", host, port=port, user="netops", auth_key="authkey-sim-1", priv_key="privkey-sim-1",
                   timeout=1, retries=9, deadline=4)
        res = loop.run_until_complete(p.cycle([t], deadline=30))[0]
    finally:
        slow.close()
        p.close()
    assert res.ok and res.error is None and len(res.interfaces) == 60 and res.interfaces[5]["counters"]["in_octets"]
    assert res.tables["health"] == "deadline exceeded" and res.tables["interfaces"] is None
    assert res.cpu_ratio is None and res.environment == {} and res.duration_s < 30


def inventory_with(tmp_path, port: int):
    """The validation fixture's inventory, its management pool on loopback: panyu-r1 (Huawei) polled on
    ``port`` with its own timeout/retries, huadu-r1 a v2c-only device with a community and nothing else."""
    raw = yaml.safe_load((FIXTURES / "broken" / "base.yml").read_text())
    raw["network"]["address_plan"].update(management="127.0.0.0/8", ops_host="127.0.0.1")
    for n, d in enumerate(raw["devices"].values()):
        d["management"] = f"127.0.7.{n + 1}"
    raw["devices"]["panyu-r1"].update(snmp_port=port, snmp_timeout=3, snmp_retries=2)
    raw["credentials"]["legacy"] = {"username": "netops", "snmp": {"community": {"env": "NETOPS_SNMP_COMMUNITY"}}}
    raw["devices"]["huadu-r1"].update(credentials="legacy", access=["snmp"], snmp_version="v2c", snmp_port=port)
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True))
    return path, raw


def test_snmp_port_and_timing_per_device(tmp_path):
    """Defect 1: snmp_port (and the device's own timeout/retries) from the inventory to the poll."""
    port = free_port()
    path, _ = inventory_with(tmp_path, port)
    inv = inventory.load(path)
    env = {"NETOPS_SNMP_AUTH_KEY": "authkey-sim-1", "NETOPS_SNMP_PRIV_KEY": "privkey-sim-1", "NETOPS_SNMP_COMMUNITY": "legacy-ro"}
    ts = {t.device: t for t in snmp_targets(inv, ["panyu-r1", "huadu-r1", "gd-r1"], env, timeout=1, retries=0, deadline=30)}
    pan = ts["panyu-r1"]
    assert (pan.port, pan.timeout, pan.retries) == (port, 3, 2) and (ts["gd-r1"].port, ts["gd-r1"].timeout) == (161, 1)
    assert pan.labels == labels(inv, "panyu-r1")
    fleet = [Agent("panyu-r1", pan.address, port, recording=str(REC / "huawei-s5720.snmprec")),
             Agent("huadu-r1", ts["huadu-r1"].address, port, recording=str(REC / "h3c-msr3620-v5.snmprec"),
                   community="legacy-ro")]
    with FastResponder(fleet, workdir=str(tmp_path / "sim")):
        res = {x.device: x for x in asyncio.new_event_loop().run_until_complete(
            Poller().cycle([pan, ts["huadu-r1"]], deadline=60))}
    assert res["panyu-r1"].ok and len(res["panyu-r1"].interfaces) == 60, res["panyu-r1"].error
    assert res["huadu-r1"].ok and res["huadu-r1"].interfaces[1]["name"] == "GigabitEthernet0/0"


def test_credentials_follow_the_declared_access(tmp_path):
    """Defect 11: a v2c-only device needed SNMPv3 keys and an SSH key in its profile to validate."""
    path, raw = inventory_with(tmp_path, 16161)
    inv = inventory.load(path)  # validates: the legacy profile has a community and nothing more
    assert inv.devices["huadu-r1"].access == ["snmp"]
    assert "huadu-r1" not in {t.device for t in ssh.targets(inv, list(inv.devices))}
    t = snmp_targets(inv, ["huadu-r1"], {"NETOPS_SNMP_COMMUNITY": "legacy-ro"})[0]
    assert (t.version, t.community, t.auth_key) == ("v2c", "legacy-ro", "")
    # what the access uses is still required: SSH needs a login, v3 its user and keys
    raw["devices"]["huadu-r1"].update(access=["ssh", "snmp"], snmp_version="v3")
    path.write_text(yaml.safe_dump(raw, allow_unicode=True))
    with pytest.raises(NetopsError) as e:
        inventory.load(path)
    text = str(e.value) + "".join(getattr(e.value, "problems", []))
    assert "device 'huadu-r1': field 'access': ssh needs ssh_key or password in credentials profile 'legacy'" in text
    assert "field 'snmp_version': v3 needs snmp.user, snmp.auth_key, snmp.priv_key in credentials profile 'legacy'" in text


def test_collect_once_shows_vendor_health(tmp_path, netops):
    """`netops collect once` on the recordings: CPU, memory and temperature of a Huawei device polled on its
    own port, a v2c-only H3C device without SSH, and no device down while it answers."""
    port = free_port()
    path, raw = inventory_with(tmp_path, port)
    addr = {d: raw["devices"][d]["management"] for d in ("panyu-r1", "huadu-r1")}
    fleet = [Agent("panyu-r1", addr["panyu-r1"], port, recording=str(REC / "huawei-s5720.snmprec")),
             Agent("huadu-r1", addr["huadu-r1"], port, recording=str(REC / "h3c-s6520.snmprec"), community="legacy-ro")]
    env = clean_env(NETOPS_SNMP_AUTH_KEY="authkey-sim-1", NETOPS_SNMP_PRIV_KEY="privkey-sim-1",
                    NETOPS_SNMP_COMMUNITY="legacy-ro")
    with FastResponder(fleet, workdir=str(tmp_path / "sim")):
        # guangzhou-r1 has no agent: down, and the round partial (3)
        args = ("collect", "once", "-i", str(path), "--scope", "guangzhou", "--no-db", "--no-ssh", "--timeout", "1",
                "--retries", "0", "--device-deadline", "5")
        r = netops(*args, "--json", env=env)
        got = {d["device"]: d for d in json.loads(r.stdout)["devices"]}
        table = netops(*args, env=env).stdout
    assert r.returncode == 3 and not got["guangzhou-r1"]["ok"]
    pan, hd = got["panyu-r1"], got["huadu-r1"]
    assert pan["ok"] and (pan["cpu_ratio"], pan["memory_ratio"]) == (0.23, 0.41)
    assert pan["environment"]["temperature"] == {"67108873": 43} and len(pan["interfaces"]) == 60
    assert hd["ok"] and hd["snmp_version"] == "v2c" and hd["environment"]["temperature"] == {"12": 42}
    assert "temp °C" in table and " 43 " in table and " 42 " in table
