"""The poller's own SNMP codec: against pysnmp's (pyasn1) encoder and decoder (every value type, long lengths,
multi-byte OID arcs, v2c and v3 messages), against the keys net-snmp localizes (RFC 3414, RFC 7860, AES-192/256
in the standard and the Cisco key extension), what RFC 3412/3414 say a client must drop (scripted agents on
loopback answering forged, stale, replayed and damaged messages next to the genuine one), and damaged messages
of every kind, which the decoder turns into a drop and never into another exception."""
from __future__ import annotations

import asyncio
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto import api, rfc1902, rfc1905

from jinbao_netops.collectors import wire
from jinbao_netops.collectors.snmp import Target, _oid
from jinbao_netops.testing.mutate import damaged
from jinbao_netops.testing.simagent import ScriptedAgent

V2 = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]

VALUES = [
    ((1, 3, 6, 1, 2, 1, 1, 3, 0), rfc1902.TimeTicks(123456), 123456),
    ((1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 6, 7), rfc1902.Counter64(2**64 - 1), 2**64 - 1),
    ((1, 3, 6, 1, 2, 1, 2, 2, 1, 14, 300), rfc1902.Counter32(2**32 - 1), 2**32 - 1),
    ((1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 15, 16384), rfc1902.Gauge32(1000), 1000),
    ((1, 3, 6, 1, 2, 1, 2, 2, 1, 8, 2), rfc1902.Integer32(-7), -7),
    ((1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 18, 1), rfc1902.OctetString("上行-guangzhou ".encode() * 20),
     "上行-guangzhou " * 20),  # > 255 bytes: a two-byte length
    ((1, 3, 6, 1, 2, 1, 1, 2, 0), rfc1902.ObjectIdentifier("1.3.6.1.4.1.2011.2.224"), "1.3.6.1.4.1.2011.2.224"),
    ((1, 3, 6, 1, 2, 1, 4, 20, 1, 1, 10, 0, 0, 1), rfc1902.IpAddress("10.0.0.1"), "10.0.0.1"),
    ((1, 3, 6, 1, 4, 1, 2011, 5, 25, 31, 1, 1, 1, 1, 5, 16842754), rfc1902.Integer32(61), 61),
    ((1, 3, 6, 1, 2, 1, 99, 0), rfc1905.noSuchObject, None),
    ((1, 3, 6, 1, 2, 1, 99, 1), rfc1905.noSuchInstance, None),
    ((1, 3, 6, 1, 2, 1, 99, 2), rfc1905.endOfMibView, None),
]
DECODED = [(o, want) for o, _, want in VALUES]
SYS_NAME = _oid("1.3.6.1.2.1.1.5.0")
ENGINE, USER = bytes.fromhex("8000a0b403010203040506"), b"netops"
AUTH_KEY, PRIV_KEY = wire.localized_key("authkey-1", ENGINE), wire.privacy_key("privkey-1", ENGINE)


def pysnmp_response(request_id: int, status: int = 0, index: int = 0) -> bytes:
    p = V2.GetResponsePDU()
    V2.apiPDU.set_defaults(p)
    V2.apiPDU.set_request_id(p, request_id)
    V2.apiPDU.set_error_status(p, status)
    V2.apiPDU.set_error_index(p, index)
    V2.apiPDU.set_varbinds(p, [(o, v) for o, v, _ in VALUES])
    msg = V2.Message()
    V2.apiMessage.set_defaults(msg)
    V2.apiMessage.set_community(msg, "public")
    V2.apiMessage.set_pdu(msg, p)
    return encoder.encode(msg)


def varbind_list(data: bytes) -> bytes:
    """The varbind list's contents in a v2c message."""
    s, _ = wire.expect(data, 0, 0x30)
    _, i = wire.read_int(data, s)
    _, i = wire.read_octets(data, i)
    *_, vs, ve = wire.read_pdu(data, i)
    return data[vs:ve]


def v3_response(rid: int, flags: int, vbs: bytes, tag: int = wire.RESPONSE, boots: int = 3, etime: int = 1000) -> bytes:
    scoped = wire.tlv(0x30, wire.tlv(4, ENGINE) + wire.tlv(4, b"") + wire.pdu(tag, rid, 0, 0, vbs))
    return wire.v3_message(rid, flags, ENGINE, boots, etime, USER, scoped, AUTH_KEY if flags & 1 else None,
                           PRIV_KEY if flags & 2 else None)


def open_v3(data: bytes, rid: int):
    return wire.open_v3(data, wire.Engine(ENGINE, 3, 1000), USER, (AUTH_KEY, PRIV_KEY), "SHA", rid)


# --- encoding and decoding -------------------------------------------------------------------------
def test_decodes_every_value_type_pysnmp_encodes():
    assert wire.open_v2c(pysnmp_response(4242), b"public", 4242) == (0, 0, DECODED)
    assert wire.message_id(pysnmp_response(4242)) == 4242
    with pytest.raises(wire.WireError, match="tooBig at varbind 2"):
        wire.answer(*wire.open_v2c(pysnmp_response(1, status=1, index=2), b"public", 1))
    # another request's answer, or another community's, is not this request's
    for community, rid in ((b"public", 4243), (b"other", 4242)):
        with pytest.raises(wire.Dropped, match="unmatched"):
            wire.open_v2c(pysnmp_response(4242), community, rid)


def test_requests_pysnmp_can_read():
    oids = [o for o, _, _ in VALUES[:4]]
    msg = wire.v2c_message(b"ro-community", wire.pdu(wire.GETBULK, 77, 0, 25, wire.null_varbinds(oids)))
    decoded, rest = decoder.decode(msg, asn1Spec=V2.Message())
    assert rest == b"" and str(decoded["community"]) == "ro-community"
    p = V2.apiMessage.get_pdu(decoded)
    assert int(V2.apiBulkPDU.get_request_id(p)) == 77 and int(V2.apiBulkPDU.get_max_repetitions(p)) == 25
    assert [tuple(o) for o, _ in V2.apiBulkPDU.get_varbinds(p)] == oids


def test_usm_keys_and_privacy_round_trip():
    # RFC 3414 A.3.2: password "maplesyrup", engine ID 000000000000000000000002, SHA
    key = wire.localized_key("maplesyrup", bytes.fromhex("000000000000000000000002"))
    assert key.hex() == "6695febc9288e36282235fc7151f128497b38f3f"
    scoped = wire.tlv(0x30, wire.tlv(4, ENGINE) + wire.tlv(4, b"ctx")
                      + wire.pdu(wire.GET, 9, 0, 0, wire.null_varbinds([SYS_NAME])))
    for priv in wire.PRIV:
        pk = wire.privacy_key("privkey-1", ENGINE, "SHA", priv)
        assert len(pk) == wire.PRIV[priv][0]
        msg = wire.v3_message(9, 0x07, ENGINE, 3, 1000, USER, scoped, AUTH_KEY, pk)
        m = wire.read_v3(msg)
        assert (m.msg_id, m.flags, m.engine_id, m.boots, m.time, m.user) == (9, 7, ENGINE, 3, 1000, USER)
        assert scoped not in msg  # encrypted
        assert wire.authentic(m, AUTH_KEY)
        buf, i, ctx = wire.scoped_pdu(m, pk)
        assert ctx == b"ctx" and wire.read_pdu(buf, i)[:4] == (wire.GET, 9, 0, 0)
    assert not wire.authentic(m, wire.localized_key("another-key", ENGINE))
    tampered = bytearray(msg)
    tampered[-1] ^= 1
    assert not wire.authentic(wire.read_v3(bytes(tampered)), AUTH_KEY)


# Keys as Debian's net-snmp 5.9.3 snmpd stored them (usmUser lines of its persistent snmpd.conf) for
# `createUser uN AUTH "authpass-1" PRIV "privpass-1"` under engine ID 80001f88806e7fe149867a106b00000000
NET_SNMP_ENGINE = bytes.fromhex("80001f88806e7fe149867a106b00000000")
NET_SNMP_KEYS = [
    ("SHA", "AES-256", "1ce5a436b6a452df25793ba11e25712085d28acf",
     "a9d2abff533919b14ad75447cfa6d7fcd8735a9246e110055d63fc9b2dcff674"),
    ("SHA", "AES-256-C", "1ce5a436b6a452df25793ba11e25712085d28acf",
     "a9d2abff533919b14ad75447cfa6d7fcd8735a92aca192e35ec8fcf0c9cb8477"),
    ("SHA-224", "AES-192", "332ef3e26bcb3858e346a91ff685a632e626a16688718b5d6fa0d50e",
     "7aed9a1a7a11fad1853b6b40e4481d598628f30aedb49163"),
    ("SHA-384", "AES-256", "dc190448bae93d28e0563106e25d13accdfc8940635d06eb20a2d39deaf7c5e9"
                           "e46c0fb400014b518bc524593a7a0583",
     "9571514054d644a262f5eaa29312e52a1d17ef9f3597659f7aa28e07384843e7"),
]


@pytest.mark.parametrize(("auth", "priv", "auth_key", "priv_key"), NET_SNMP_KEYS, ids=[f"{a}-{p}" for a, p, *_ in NET_SNMP_KEYS])
def test_keys_as_net_snmp_localizes_them(auth, priv, auth_key, priv_key):
    assert wire.localized_key("authpass-1", NET_SNMP_ENGINE, auth).hex() == auth_key
    assert wire.privacy_key("privpass-1", NET_SNMP_ENGINE, auth, priv).hex() == priv_key


# --- damaged messages: a WireError (a drop), never another exception ------------------------------
def test_garbage_is_a_wire_error_not_a_crash():
    for junk in (b"", b"\x30", b"\x30\x05\x02\x01", b"\x30\x82\xff\xff\x02\x01\x03", b"\x30\x80\x02\x01\x03"):
        with pytest.raises(wire.WireError):
            wire.read_v3(junk)
        with pytest.raises(wire.WireError):
            wire.message_id(junk)


def test_truncated_varbind_is_a_wire_error():
    # a well-formed message whose last varbind stops after its SEQUENCE header and OID tag (IndexError before)
    first = wire.tlv(0x30, wire.tlv(0x06, wire.oid_body(SYS_NAME)) + wire.tlv(0x04, b"x"))
    msg = wire.v2c_message(b"public", wire.pdu(wire.RESPONSE, 5, 0, 0, first + b"\x30\x0c\x06"))
    with pytest.raises(wire.WireError):
        wire.varbinds(msg, len(msg) - len(first) - 3, len(msg))
    with pytest.raises(wire.Dropped, match="malformed"):
        wire.open_v2c(msg, b"public", 5)


def test_engine_boots_and_time_out_of_range_are_wire_errors():
    # msgFlags say authPriv, boots are negative: building the AES IV raised OverflowError before
    for boots, etime in ((-1, 1000), (3, -1), (2**31, 0)):
        usm = wire.tlv(0x30, wire.tlv(4, ENGINE) + wire.integer(boots) + wire.integer(etime) + wire.tlv(4, USER)
                       + wire.tlv(4, bytes(12)) + wire.tlv(4, bytes(8)))
        msg = wire.tlv(0x30, wire.integer(3) + wire.tlv(0x30, wire.integer(7) + wire.integer(65507) + wire.tlv(4, b"\x03")
                                                        + wire.integer(3)) + wire.tlv(4, usm) + wire.tlv(4, bytes(40)))
        with pytest.raises(wire.WireError):
            wire.scoped_pdu(wire.read_v3(msg), PRIV_KEY)


def test_hostile_sizes_cost_neither_memory_nor_a_crash():
    """Lengths that claim gigabytes, a 60 KB OID sub-identifier (str() of it raised ValueError before) and a
    60 KB INTEGER: dropped as malformed, decoding them allocates next to nothing."""
    def msg(value: bytes) -> bytes:
        vb = wire.tlv(0x30, wire.tlv(0x06, wire.oid_body(SYS_NAME)) + value)
        return wire.v2c_message(b"public", wire.pdu(wire.RESPONSE, 5, 0, 0, vb))

    cases = [msg(b"\x04\x84\xff\xff\xff\xff"), msg(wire.tlv(0x06, b"\x2b" + b"\xff" * 60_000 + b"\x7f")),
             msg(wire.tlv(0x02, b"\x7f" * 60_000)), msg(wire.tlv(0x46, b"\x01" * 10))]
    tracemalloc.start()
    try:
        for data in cases:
            with pytest.raises(wire.Dropped, match="malformed"):
                wire.open_v2c(data, b"public", 5)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 256 * 1024


V2C = pysnmp_response(4242)
RID = 99
VBS = varbind_list(V2C)
AUTH_PRIV = v3_response(RID, 0x03, VBS)
UNSIGNED = v3_response(RID, 0x00, VBS)
DISCOVERY = v3_response(RID, 0x00, b"", tag=wire.REPORT)


def outcome(fn, *args, error=wire.Dropped):
    """What fn(*args) returns, or the ``error`` it raises; any other exception fails the test."""
    try:
        return fn(*args)
    except error as e:
        return e


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_damaged_answers_are_dropped_never_raised(data):
    # the genuine messages pass
    assert outcome(open_v3, AUTH_PRIV, RID) == (wire.RESPONSE, 0, 0, DECODED)
    assert outcome(wire.open_v2c, V2C, b"public", 4242) == (0, 0, DECODED)
    # damaged authPriv answers: never accepted (they no longer carry their digest)
    got = outcome(open_v3, data.draw(damaged(AUTH_PRIV), "authPriv"), RID)
    assert isinstance(got, wire.Dropped), got
    # damaged answers in clear: at most a Report (an agent's refusal), never data
    got = outcome(open_v3, data.draw(damaged(UNSIGNED), "unsigned"), RID)
    assert isinstance(got, wire.Dropped) or got[0] == wire.REPORT, got
    # damaged v2c answers (no integrity in v2c): decoded to plain values or dropped
    got = outcome(wire.open_v2c, data.draw(damaged(V2C), "v2c"), b"public", 4242)
    assert isinstance(got, wire.Dropped) or (
        isinstance(got[2], list) and all(isinstance(o, tuple) and all(isinstance(a, int) for a in o) for o, _ in got[2])), got
    got = outcome(wire.open_discovery, data.draw(damaged(DISCOVERY), "discovery"))
    assert isinstance(got, wire.Dropped) or (got[0] and 0 <= got[1] <= wire.MAX_INT and 0 <= got[2] <= wire.MAX_INT)
    for raw in (data.draw(damaged(AUTH_PRIV)), data.draw(damaged(V2C))):
        assert isinstance(outcome(wire.message_id, raw, error=wire.WireError), (int, wire.WireError))


# --- what the client accepts: scripted agents on loopback ---------------------------------------------
FORGED = "FORGED-BY-ATTACKER"
GENUINE = [(SYS_NAME, "genuine")]


def exchange(script, requests: int = 2, timeout: float = 3.0):
    """``requests`` GETs of sysName through a new client from a ScriptedAgent on 127.0.5.1 running ``script``:
    (their results, the client, the agent, the client's notion of the agent's engine)."""
    async def main():
        agent = ScriptedAgent(script)
        host, port = await agent.start("127.0.5.1")
        client = wire.Client()
        t = Target("scripted", host, port=port, user="netops", auth_key="authkey-sim-1", priv_key="privkey-sim-1")
        try:
            out = [await client.request(t, wire.GET, [SYS_NAME], 0, 0, timeout) for _ in range(requests)]
        finally:
            client.close()
            agent.close()
        return out, client, agent, client._engines[(host, port)]

    return asyncio.run(main())


def attack_second(forge):
    """A script: the first request answered genuinely (the client's clock is then in step), every later one
    with ``forge(agent, request)`` first and the genuine answer after it."""
    return lambda agent, req: ([forge(agent, req)] if len(agent.requests) > 1 else []) + [agent.response(req)]


FORGERIES = {
    "unsigned": ("unsupported_sec_level", lambda a, r: a.response(r, FORGED, flags=0x00)),
    "signed, not encrypted": ("unsupported_sec_level", lambda a, r: a.response(r, FORGED, flags=0x01)),
    "another engine ID": ("unknown_engine_id", lambda a, r: a.response(r, FORGED, engine_id=bytes.fromhex("80001f8804") + b"evil")),
    "another user": ("unknown_user_name", lambda a, r: a.response(r, FORGED, user=b"intruder")),
    "wrong digest": ("wrong_digest", lambda a, r: a.response(r, FORGED, auth_key=bytes(20))),
    "older boots": ("not_in_time_window", lambda a, r: a.response(r, FORGED, boots=a.boots - 1)),
    "time 160 s behind": ("not_in_time_window", lambda a, r: a.response(r, FORGED, etime=a.now() - 160)),
    "garbage": ("malformed", lambda a, r: a.response(r, FORGED)[:40]),
}


@pytest.mark.parametrize("name", FORGERIES)
def test_forged_answers_are_dropped_and_the_genuine_one_taken(name):
    reason, forge = FORGERIES[name]
    results, client, agent, eng = exchange(attack_second(forge))
    assert results == [GENUINE, GENUINE]  # FORGED-BY-ATTACKER was accepted before
    assert client.dropped == {**dict.fromkeys(wire.DROP_REASONS, 0), reason: 1}
    # the clock follows only the genuine answers: never moved back by a stale one
    assert (eng.boots, eng.engine_id) == (agent.boots, agent.engine_id) and eng.latest >= agent.now() - 1


def test_replayed_answer_is_dropped():
    sent: list[bytes] = []

    def script(agent, req):
        sent.append(agent.response(req))
        return sent[:1] + sent[-1:] if len(sent) > 1 else sent[-1:]  # the first answer again, then the real one

    results, client, _, _ = exchange(script, requests=3)
    assert results == [GENUINE] * 3 and client.dropped["unmatched"] == 2 and sum(client.dropped.values()) == 2


def test_not_in_time_window_resynchronises_forward_only():
    def script(agent, req):
        n = len(agent.requests)
        if n == 2:  # the agent rebooted: its authenticated notInTimeWindows report tells the new boots
            agent.boots += 1
            return [agent.report(req, "notInTimeWindows", boots=agent.boots, etime=3)]
        if n == 4:  # the same report in clear, and one authenticated but older than what the client knows
            return [agent.report(req, "notInTimeWindows", flags=0x00, boots=agent.boots + 9),
                    agent.report(req, "notInTimeWindows", boots=agent.boots - 1), agent.response(req)]
        if n == 5:  # "unknown engine ID" in clear (anyone can say it): discovered again, the same engine...
            return [agent.report(req, "unknownEngineIDs", flags=0x00, boots=1, etime=1)]
        if n == 6:  # ...whose clock the client kept: an older message is still refused
            return [agent.response(req, FORGED, boots=agent.boots - 1), agent.response(req)]
        return [agent.response(req)]

    results, client, agent, eng = exchange(script, requests=4)
    assert results == [GENUINE] * 4 and len(agent.requests) == 6  # the 2nd and 4th requests were sent again
    assert eng.boots == agent.boots == 6 and eng.latest >= agent.now() - 1
    assert client.dropped == {**dict.fromkeys(wire.DROP_REASONS, 0), "unsupported_sec_level": 1, "not_in_time_window": 2}
