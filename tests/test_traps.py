"""The trap receiver (collectors/traps.py) on loopback: real v1, v2c and v3 notifications encoded by pysnmp, an
Alertmanager that is a small HTTP server here, and what it must refuse (forged, unauthenticated, unknown sources)."""
from __future__ import annotations

import asyncio
import http.server
import json
import threading
import time

import pytest
from pysnmp.hlapi.v3arch.asyncio import (CommunityData, ContextData, Integer, NotificationType, ObjectIdentity,
                                         OctetString, SnmpEngine, UdpTransportTarget, UsmUserData,
                                         send_notification, usmAesCfb128Protocol, usmHMACSHAAuthProtocol)
from pysnmp.proto.rfc1902 import ObjectName

from jinbao_netops import inventory
from jinbao_netops.collectors import traps
from jinbao_netops.collectors.snmp import Target
from jinbao_netops.collectors.targets import labels

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
