"""The trap receiver (collectors/traps.py) on loopback: real v1, v2c and v3 notifications encoded by pysnmp, an
Alertmanager that is a small HTTP server here, and what it must refuse (forged, unauthenticated, unknown sources)."""
from __future__ import annotations

import asyncio
import http.server
import json
import os
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from pysnmp.hlapi.v3arch.asyncio import (CommunityData, ContextData, Integer, NotificationType, ObjectIdentity,
                                         OctetString, SnmpEngine, UdpTransportTarget, UsmUserData,
                                         send_notification, usmAesCfb128Protocol, usmHMACSHAAuthProtocol)
from pysnmp.proto.rfc1902 import ObjectName

from jinbao_netops import inventory
from jinbao_netops.collectors import traps
from jinbao_netops.collectors.snmp import Target
from jinbao_netops.collectors.targets import labels
from jinbao_netops.lab import linktraps
from jinbao_netops.lab import plan as labplan

INV = inventory.load(inventory.DEFAULT_INVENTORY)
AUTH, PRIV, COMMUNITY = "trap-auth-key-123", "trap-priv-key-456", "trap-community"
LINK_DOWN, LINK_UP, COLD_START = "1.3.6.1.6.3.1.1.5.3", "1.3.6.1.6.3.1.1.5.4", "1.3.6.1.6.3.1.1.5.1"
HOSTILE = "GE0/0/1\n[告警] resolved\u202e\x1b[31m"


def v3_target(platform="huawei_vrp", device="guangzhou-r1") -> Target:
    return Target(device=device, address="127.0.0.1", platform=platform, version="v3", user="netops", auth_key=AUTH,
                  priv_key=PRIV, labels=labels(INV, device))


def v2c_target() -> Target:
    return Target(device="guangzhou-r1", address="127.0.0.1", platform="hp_comware", version="v2c", community=COMMUNITY,
                  labels=labels(INV, "guangzhou-r1"))


class Alertmanager:
    """POST /api/v2/alerts, recorded."""

    def __init__(self):
        self.posts: list[list[dict]] = []
        am = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                assert self.path == "/api/v2/alerts"
                am.posts.append(json.loads(body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}"

    def alerts(self) -> list[dict]:
        return [a for post in self.posts for a in post]


@pytest.fixture
def am():
    a = Alertmanager()
    yield a
    a.srv.shutdown()


def run(receiver: traps.Receiver, sends, settle: float = 0.3) -> None:
    """Listen on a loopback port, send each notification (an async function of the port), give the posts time."""
    async def main():
        transport = await traps.listen(receiver, "127.0.0.1", 0)
        port = transport.get_extra_info("sockname")[1]
        try:
            for send in sends:
                await send(port)
            await asyncio.sleep(settle)
        finally:
            transport.close()
    asyncio.run(main())


def notify(auth, oid: str, *varbinds, kind: str = "trap", engine: SnmpEngine | None = None):
    async def send(port: int):
        err, status, _, _ = await send_notification(
            engine or SnmpEngine(), auth, await UdpTransportTarget.create(("127.0.0.1", port), timeout=1, retries=0),
            ContextData(), kind, NotificationType(ObjectIdentity(oid)).add_varbinds(*varbinds))
        if kind == "inform":
            assert not err and not status, err or status
    return send


def v3(auth=AUTH, priv=PRIV, user="netops"):
    return UsmUserData(user, auth, priv, authProtocol=usmHMACSHAAuthProtocol, privProtocol=usmAesCfb128Protocol)


IF_VARBINDS = ((ObjectName("1.3.6.1.2.1.2.2.1.1.7"), Integer(7)), (ObjectName("1.3.6.1.2.1.2.2.1.7.7"), Integer(1)),
               (ObjectName("1.3.6.1.2.1.2.2.1.8.7"), Integer(2)), (ObjectName("1.3.6.1.2.1.2.2.1.2.7"), OctetString(HOSTILE.encode())))


def test_v3_link_down_becomes_an_alert_with_the_device_labels_and_link_up_ends_it(am):
    r = traps.Receiver(traps.sources([v3_target()]), am.url, ttl=600)
    engine = SnmpEngine()  # one agent: linkDown then linkUp from the same engine, as the clock moves on
    run(r, [notify(v3(), LINK_DOWN, *IF_VARBINDS, engine=engine)])
    [down] = am.alerts()
    lab = {k: v for k, v in labels(INV, "guangzhou-r1").items() if v}  # a city device: no county label
    assert down["labels"] == {"alertname": "TrapLinkDown", "severity": "critical", **lab, "source": "snmp-trap",
                              "ifindex": "7", "ifname": "GE0/0/1 [告警] resolved  [31m"}
    assert down["labels"]["level"] == "city" and down["labels"]["site"] == "guangzhou" and "county" not in down["labels"]
    assert all("\n" not in v and "\x1b" not in v for v in [*down["labels"].values(), *down["annotations"].values()])
    assert down["annotations"]["trap_oid"] == LINK_DOWN and "guangzhou-r1" in down["annotations"]["summary_zh"]
    assert down["endsAt"] > down["startsAt"]
    run(r, [notify(v3(), LINK_UP, *IF_VARBINDS[:3], engine=engine)])
    up = am.alerts()[1]
    assert up["labels"] == down["labels"] and up["startsAt"] == down["startsAt"] and up["endsAt"] < down["endsAt"]
    assert r.received["v3"] == 2 and r.alerts == {"raised": 1, "cleared": 1} and not any(r.dropped.values())


def test_v2c_inform_is_acknowledged_and_v1_trap_is_mapped(am):
    r = traps.Receiver(traps.sources([v2c_target()]), am.url)
    run(r, [notify(CommunityData(COMMUNITY), "1.3.6.1.4.1.25506.2.6.2.0.13", kind="inform",
                   *[(ObjectName("1.3.6.1.2.1.47.1.1.1.1.2.12"), OctetString("LSU-1"))]),
            notify(CommunityData(COMMUNITY, mpModel=0), COLD_START)])
    removed, cold = am.alerts()
    assert removed["labels"]["alertname"] == "TrapEntityRemoved" and removed["labels"]["entity"] == "12"
    assert cold["labels"]["alertname"] == "TrapColdStart" and "ifindex" not in cold["labels"]
    assert r.received == {"v1": 1, "v2c": 1, "v3": 0}


def test_forged_and_unauthenticated_traps_are_dropped_and_counted(am):
    r = traps.Receiver(traps.sources([v3_target()]), am.url)
    run(r, [notify(v3(auth="not-the-key-000"), LINK_DOWN, *IF_VARBINDS),                  # forged digest
            notify(v3(user="intruder"), LINK_DOWN, *IF_VARBINDS),                          # another user
            notify(UsmUserData("netops"), LINK_DOWN, *IF_VARBINDS),                         # noAuthNoPriv
            notify(UsmUserData("netops", AUTH, authProtocol=usmHMACSHAAuthProtocol), LINK_DOWN),  # authNoPriv
            notify(CommunityData("public"), LINK_DOWN, *IF_VARBINDS)])                       # v2c to a v3 device
    assert am.posts == []
    assert {k: v for k, v in r.dropped.items() if v} == {"wrong_digest": 1, "unknown_user_name": 1,
                                                         "unsupported_sec_level": 2, "wrong_community": 1}
    assert 'netops_trap_dropped_total{reason="wrong_digest"} 1' in r.metrics().decode()


def test_unknown_source_wrong_community_unknown_trap_and_garbage(am):
    r = traps.Receiver({"127.0.0.9": traps.Source(v2c_target())}, am.url)
    run(r, [notify(CommunityData(COMMUNITY), LINK_DOWN, *IF_VARBINDS)])
    r.sources = traps.sources([v2c_target()])
    run(r, [notify(CommunityData("guessed"), LINK_DOWN, *IF_VARBINDS),
            notify(CommunityData(COMMUNITY), "1.3.6.1.4.1.99999.0.1")])
    assert r.handle(b"\x30\x03\x02\x01", "127.0.0.1") == ([], None)
    assert am.posts == []
    assert {k: v for k, v in r.dropped.items() if v} == {"unknown_source": 1, "wrong_community": 1, "unknown_trap": 1,
                                                         "malformed": 1}


def test_replayed_v3_trap_outside_the_time_window_is_dropped(am):
    """A captured trap replayed after the sender's clock moved on more than 150 s."""
    r = traps.Receiver(traps.sources([v3_target()]), am.url)
    captured: list[bytes] = []
    real = r.handle
    r.handle = lambda data, addr: (captured.append(data), real(data, addr))[1]
    run(r, [notify(v3(), COLD_START)])
    eng = next(iter(r.sources["127.0.0.1"].engines.values()))
    eng.time, eng.latest, eng.at = eng.time + 1000, eng.latest + 1000, time.monotonic()
    assert real(captured[0], "127.0.0.1") == ([], None)
    assert r.dropped["not_in_time_window"] == 1 and len(am.alerts()) == 1


def test_alertmanager_down_is_counted_not_fatal(capsys):
    r = traps.Receiver(traps.sources([v3_target()]), "http://127.0.0.1:9")
    run(r, [notify(v3(), COLD_START)], settle=1.0)
    assert r.post_failures == 1 and "告警发送失败" in capsys.readouterr().err


def test_vendor_trap_tables_live_in_the_platform_table():
    from jinbao_netops.inventory.platforms import PLATFORMS, STANDARD_TRAPS

    assert {t.alert for t in STANDARD_TRAPS} == {"TrapColdStart", "TrapWarmStart", "TrapLinkDown",
                                                 "TrapAuthenticationFailure"}
    for name in ("huawei_vrp", "hp_comware"):
        trs = PLATFORMS[name].snmp_traps
        assert trs and all(t.subject == "entity" for t in trs)
        raised = {t.alert for t in trs if not t.clear}
        assert raised == {t.alert for t in trs if t.clear}  # every fault has the trap that ends it


# --- the lab routers' link-trap watcher (lab/linktraps.py), as the lab installs it ---------------------------------
# A router node as `ip -o link show` and `ip -o monitor link` print it (iproute2 6.1, veths whose peers are in other
# namespaces): its state when the watcher starts, then eth1 set down and up again, its neighbour's end of eth2 going
# down, the management veth and the loopback changing, an event that changes no state, an interface deleted.
LINK = "mtu 1500 qdisc noqueue state {} {}group default {}\\    link/ether 4a:1f:0c:3e:8d:{:02x} brd ff:ff:ff:ff:ff:ff link-netnsid {}"
SEED = ["1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN mode DEFAULT group default qlen 1000\\    "
        "link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00",
        "2: mgmt0@if31: <BROADCAST,MULTICAST,UP,LOWER_UP> " + LINK.format("UP", "mode DEFAULT ", "qlen 1000", 2, 0),
        "3: eth1@if5: <BROADCAST,MULTICAST,UP,LOWER_UP> " + LINK.format("UP", "mode DEFAULT ", "qlen 1000", 3, 1),
        "4: eth2@if9: <BROADCAST,MULTICAST,UP,LOWER_UP> " + LINK.format("UP", "mode DEFAULT ", "qlen 1000", 4, 2)]
EVENTS = ["3: eth1@if5: <BROADCAST,MULTICAST> " + LINK.format("DOWN", "", "", 3, 1),
          "2: mgmt0@if31: <NO-CARRIER,BROADCAST,MULTICAST,UP> " + LINK.format("LOWERLAYERDOWN", "", "", 2, 0),
          "1: lo: <LOOPBACK> mtu 65536 qdisc noqueue state DOWN group default \\    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00",
          "4: eth2@if9: <BROADCAST,MULTICAST,UP,LOWER_UP> " + LINK.format("UP", "", "", 4, 2),   # e.g. its MTU: no change
          "3: eth1@if5: <BROADCAST,MULTICAST,UP,LOWER_UP> " + LINK.format("UP", "", "", 3, 1),
          "2: mgmt0@if31: <BROADCAST,MULTICAST,UP,LOWER_UP> " + LINK.format("UP", "", "", 2, 0),
          "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN group default \\    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00",
          "4: eth2@if9: <NO-CARRIER,BROADCAST,MULTICAST,UP,M-DOWN> " + LINK.format("LOWERLAYERDOWN", "", "", 4, 2),
          "Deleted 4: eth2@if9: <BROADCAST,MULTICAST> mtu 1500 qdisc noop state DOWN group default \\    link/ether "
          "4a:1f:0c:3e:8d:04 brd ff:ff:ff:ff:ff:ff link-netnsid 2"]
ROUTER_SECRETS = {"NETOPS_SNMP_AUTH_KEY": AUTH, "NETOPS_SNMP_PRIV_KEY": PRIV, "NETOPS_SNMP_COMMUNITY": COMMUNITY}
IF_MIB = "1.3.6.1.2.1.2.2.1"


def install_watcher(tmp_path: Path, device: str, events: list[str], sink: str, snmptrap: str | None = None):
    """The device's watcher files as the lab renders them, under ``tmp_path``; an `ip` on PATH printing SEED and
    ``events``; and, when given, a `snmptrap` script in front of net-snmp's. Returns the command line of the unit's
    ExecStart (the program, its state directory and the sink here) and the environment the unit gives it."""
    node = labplan.build(INV, "jinbao").nodes[device]
    files = {Path(f.path).name: f for f in labplan.link_trap_files(node, ROUTER_SECRETS)}
    (tmp_path / "conf").mkdir()
    (tmp_path / "state").mkdir()
    prog, conf = tmp_path / "netops-linktraps", tmp_path / "conf" / "snmp.conf"
    for path, f in ((prog, files[labplan.LINKTRAPS]), (conf, files["snmp.conf"])):
        path.write_text(f.text)
        path.chmod(f.mode)
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    (tmp_path / "show").write_text("\n".join(SEED) + "\n")
    (tmp_path / "monitor").write_text("\n".join(events) + "\n")
    (bin_ / "ip").write_text(f'#!/bin/sh\ncase "$*" in\n"-o link show") exec cat {tmp_path}/show ;;\n'
                             f'"-o monitor link") exec cat {tmp_path}/monitor ;;\nesac\nexit 1\n')
    if snmptrap:
        (bin_ / "snmptrap").write_text(snmptrap)
    for f in bin_.iterdir():
        f.chmod(0o755)
    unit = files[f"{labplan.LINKTRAPS}.service"].text
    [exec_start] = [ln.removeprefix("ExecStart=") for ln in unit.splitlines() if ln.startswith("ExecStart=")]
    words = shlex.split(exec_start)
    options = {**dict(zip(words[1::2], words[2::2])), "--sink": sink, "--state": str(tmp_path / "state")}
    env = {**os.environ, "PATH": f"{bin_}:{os.environ['PATH']}", "SNMPCONFPATH": str(conf.parent),
           "SNMP_PERSISTENT_DIR": str(tmp_path / "state")}
    return [str(prog), *(w for kv in options.items() for w in kv)], env


RECORDER = f"""#!{sys.executable}
import json, os, sys
with open(os.path.join(os.path.dirname(__file__), "..", "sent.jsonl"), "a") as f:
    f.write(json.dumps({{"argv": sys.argv[1:], "SNMPCONFPATH": os.environ.get("SNMPCONFPATH")}}) + "\\n")
"""


def test_watcher_sends_link_down_and_up_of_data_interfaces_only(tmp_path):
    """Run as its unit runs it, against a recorded `ip monitor` stream and a snmptrap that records its arguments:
    one trap per change of a data interface (eth1 down, eth1 up, eth2's far end down), none for the management veth
    or the loopback or an event that changes nothing; the SNMPv3 authPriv options, no credential among them."""
    cmd, env = install_watcher(tmp_path, "gd-r1", EVENTS, "10.254.44.15:162", RECORDER)
    for run_ in (1, 2):  # the same engine after a restart, one boot more
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        sent = [json.loads(ln) for ln in (tmp_path / "sent.jsonl").read_text().splitlines()]
        assert len(sent) == 3 * run_ and {s["SNMPCONFPATH"] for s in sent} == {str(tmp_path / "conf")}
        argvs = [s["argv"] for s in sent[-3:]]
        for a in argvs:
            assert a[:5] == ["-v", "3", "-l", "authPriv", "-e"] and a[6] == "-Z" and a[8:10] == ["10.254.44.15:162", ""]
            assert not {AUTH, PRIV, COMMUNITY} & set(a)
        engine_id, boots = (tmp_path / "state" / "engine").read_text().split()
        assert {a[5] for a in argvs} == {"0x" + engine_id} and engine_id.startswith("80001f8805") and boots == str(run_)
        assert all(a[7].split(",")[0] == boots and int(a[7].split(",")[1]) >= 1 for a in argvs)
        assert [a[10:] for a in argvs] == [
            [LINK_DOWN, f"{IF_MIB}.1.3", "i", "3", f"{IF_MIB}.7.3", "i", "2", f"{IF_MIB}.8.3", "i", "2", f"{IF_MIB}.2.3", "s", "eth1"],
            [LINK_UP, f"{IF_MIB}.1.3", "i", "3", f"{IF_MIB}.7.3", "i", "1", f"{IF_MIB}.8.3", "i", "1", f"{IF_MIB}.2.3", "s", "eth1"],
            [LINK_DOWN, f"{IF_MIB}.1.4", "i", "4", f"{IF_MIB}.7.4", "i", "1", f"{IF_MIB}.8.4", "i", "7", f"{IF_MIB}.2.4", "s", "eth2"]]
        assert r.stdout.splitlines() == ["linkDown eth1 (ifIndex 3, DOWN) to 10.254.44.15:162",
                                         "linkUp eth1 (ifIndex 3, UP) to 10.254.44.15:162",
                                         "linkDown eth2 (ifIndex 4, LOWERLAYERDOWN) to 10.254.44.15:162"]


def test_watcher_reports_a_failed_snmptrap_and_goes_on(tmp_path):
    cmd, env = install_watcher(tmp_path, "gd-r1", EVENTS, "10.254.44.15:162",
                               "#!/bin/sh\necho 'snmptrap: Unknown host (10.254.44.15)' >&2\nexit 1\n")
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout == ""
    assert r.stderr.splitlines() == [f"{what}: snmptrap failed: snmptrap: Unknown host (10.254.44.15)" for what in (
        "linkDown eth1 (ifIndex 3, DOWN) to 10.254.44.15:162", "linkUp eth1 (ifIndex 3, UP) to 10.254.44.15:162",
        "linkDown eth2 (ifIndex 4, LOWERLAYERDOWN) to 10.254.44.15:162")]


def watcher(cmd: list[str], env: dict):
    async def send(port: int):
        argv = [w.replace("@PORT@", str(port)) for w in cmd]
        proc = await asyncio.create_subprocess_exec(*argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = await proc.communicate()
        assert proc.returncode == 0 and not err, err.decode()
    return send


def test_watcher_traps_through_net_snmp_are_the_receivers_alerts(am, tmp_path):
    """The real thing but the kernel: net-snmp's snmptrap reading the 0600 snmp.conf the lab writes, to the
    receiver. eth1 down raises TrapLinkDown named by ifIndex and ifDescr, eth1 up ends it. After a restart the
    watcher's engine counts a boot: its traps stay timely though its clock starts again (the receiver's notion of
    it had moved on 1000 s)."""
    cmd, env = install_watcher(tmp_path, "gd-r1", EVENTS[:5], "127.0.0.1:@PORT@")
    r = traps.Receiver(traps.sources([v3_target(device="gd-r1")]), am.url, ttl=600)
    run(r, [watcher(cmd, env)])
    down, up = am.alerts()
    assert down["labels"] == {"alertname": "TrapLinkDown", "severity": "critical",
                              **{k: v for k, v in labels(INV, "gd-r1").items() if v}, "source": "snmp-trap",
                              "ifindex": "3", "ifname": "eth1"}
    assert up["labels"] == down["labels"] and up["endsAt"] < down["endsAt"]
    [eng] = r.sources["127.0.0.1"].engines.values()
    assert eng.engine_id.hex() == (tmp_path / "state" / "engine").read_text().split()[0] and eng.boots == 1
    eng.time, eng.latest = eng.time + 1000, eng.latest + 1000
    run(r, [watcher(cmd, env)])
    assert len(am.alerts()) == 4 and eng.boots == 2
    assert sorted(p.name for p in (tmp_path / "state").iterdir()) == ["cert_indexes", "engine"]  # snmptrap keeps none
    assert r.received["v3"] == 4 and r.alerts == {"raised": 2, "cleared": 2} and not any(r.dropped.values())


def test_watcher_of_a_v2c_router_sends_acknowledged_informs(am, tmp_path):
    cmd, env = install_watcher(tmp_path, "huadu-r1", EVENTS[:1], "127.0.0.1:@PORT@")
    assert cmd[cmd.index("--version") + 1] == "v2c"
    target = v2c_target()
    target.device, target.labels = "huadu-r1", labels(INV, "huadu-r1")
    r = traps.Receiver(traps.sources([target]), am.url)
    run(r, [watcher(cmd, env)])   # snmptrap -Ci exits 0 only once the receiver acknowledged the inform
    [down] = am.alerts()
    assert (down["labels"]["alertname"], down["labels"]["device"], down["labels"]["ifname"]) == ("TrapLinkDown", "huadu-r1", "eth1")
    assert r.received == {"v1": 0, "v2c": 1, "v3": 0}


def test_watcher_parses_only_what_ip_prints_about_a_link():
    assert linktraps.parse(SEED[2]) == (False, 3, "eth1", True, "UP")
    assert linktraps.parse(EVENTS[-1]) == (True, 4, "eth2", False, "DOWN")
    assert linktraps.parse(SEED[0]) is None   # the loopback, whatever its name
    assert linktraps.parse("    link/ether 4a:1f:0c:3e:8d:03 brd ff:ff:ff:ff:ff:ff state UP ") is None
