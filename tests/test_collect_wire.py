"""The poller's own SNMP codec against pysnmp's (pyasn1) encoder and decoder: every value type, long
lengths, multi-byte OID arcs, v2c and v3 messages; HMAC-SHA-96 and AES-CFB with the RFC 3414 keys, and the
keys net-snmp localizes (RFC 7860 SHA-2, AES-192/256 in the standard and the Cisco key extension)."""
from __future__ import annotations

import pytest
from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto import api, rfc1902, rfc1905

from jinbao_netops.collectors import wire

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


def test_decodes_every_value_type_pysnmp_encodes():
    data = pysnmp_response(4242)
    s, _ = wire.expect(data, 0, 0x30)
    _, i = wire.read_int(data, s)
    community, i = wire.read_octets(data, i)
    assert community == b"public"
    assert wire.Client._answer(data, i) == [(o, want) for o, _, want in VALUES]
    with pytest.raises(wire.WireError, match="tooBig at varbind 2"):
        wire.Client._answer(pysnmp_response(1, status=1, index=2), i)


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
    engine, user = bytes.fromhex("8000a0b403010203040506"), b"netops"
    auth = wire.localized_key("authkey-1", engine)
    scoped = wire.tlv(0x30, wire.tlv(4, engine) + wire.tlv(4, b"ctx")
                      + wire.pdu(wire.GET, 9, 0, 0, wire.null_varbinds([(1, 3, 6, 1, 2, 1, 1, 5, 0)])))
    for name in wire.PRIV:
        priv = wire.privacy_key("privkey-1", engine, "SHA", name)
        assert len(priv) == wire.PRIV[name][0]
        msg = wire.v3_message(9, 0x07, engine, 3, 1000, user, scoped, auth, priv)
        m = wire.read_v3(msg)
        assert (m.msg_id, m.flags, m.engine_id, m.boots, m.time, m.user) == (9, 7, engine, 3, 1000, user)
        assert scoped not in msg  # encrypted
        wire.verify(m, auth)
        buf, i, ctx = wire.scoped_pdu(m, priv)
        assert ctx == b"ctx" and wire.read_pdu(buf, i)[:4] == (wire.GET, 9, 0, 0)
    with pytest.raises(wire.WireError, match="wrong digest"):
        wire.verify(m, wire.localized_key("another-key", engine))
    tampered = bytearray(msg)
    tampered[-1] ^= 1
    with pytest.raises(wire.WireError, match="wrong digest"):
        wire.verify(wire.read_v3(bytes(tampered)), auth)


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


def test_garbage_is_a_wire_error_not_a_crash():
    for junk in (b"", b"\x30", b"\x30\x05\x02\x01", b"\x30\x82\xff\xff\x02\x01\x03"):
        with pytest.raises(wire.WireError):
            wire.read_v3(junk)
