"""A minimal SNMP wire codec for the poller's hot loop: BER for SNMPv2c and SNMPv3 USM messages
(HMAC-SHA-96 and the RFC 7860 HMAC-SHA-2 authentication protocols, AES-128/192/256-CFB privacy; RFC 3412/
3414/3826/7860), and an asyncio UDP client.

pysnmp's generic pyasn1 decoder costs ~170 µs of CPU per varbind; this codec walks the response bytes
once, caches decoded OIDs, and hands back plain Python values. It covers what the collector sends
(GET and GETBULK of plain OIDs) and what agents answer (Response and Report PDUs). The simulated agents
(tests/support/simagent.py FastResponder) use the same encoder and decoder to answer at the rate the
benchmarks need.

Every decoding failure is a WireError, whatever the bytes: lengths, tags, integers and OID arcs are
bounds-checked. An answer that is not what the request asked for (undecodable, not authenticated and
encrypted as the request was, another engine or user, a wrong digest, outside the time window, no
request waiting for it) is dropped, counted by reason in ``Client.dropped``, and the request keeps
waiting for the genuine answer.
"""
from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import os
import socket
import time

from cryptography.hazmat.decrepit.ciphers.modes import CFB
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

GET, RESPONSE, GETBULK, REPORT = 0xA0, 0xA2, 0xA5, 0xA8
NO_SUCH_OBJECT, NO_SUCH_INSTANCE, END_OF_MIB_VIEW = 0x80, 0x81, 0x82
ERROR_STATUS = ("noError", "tooBig", "noSuchName", "badValue", "readOnly", "genErr", "noAccess", "wrongType",
                "wrongLength", "wrongEncoding", "wrongValue", "noCreation", "inconsistentValue",
                "resourceUnavailable", "commitFailed", "undoFailed", "authorizationError", "notWritable",
                "inconsistentName")
USM_STATS = "1.3.6.1.6.3.15.1.1."   # usmStats* report counters: the reason an agent refused a request
USM_REASON = {"1": "unsupportedSecLevels", "2": "notInTimeWindows", "3": "unknownUserNames", "4": "unknownEngineIDs",
              "5": "wrongDigests", "6": "decryptionErrors"}
UNSIGNED = (0x41, 0x42, 0x43, 0x46, 0x47)       # Counter32, Gauge32, TimeTicks, Counter64, UInteger32
MAX_SIZE = 65507
# USM authentication, named as net-snmp names it: hash and MAC length (HMAC-SHA-96, RFC 7860's HMAC-128-SHA-224,
# HMAC-192-SHA-256, HMAC-256-SHA-384, HMAC-384-SHA-512); the same hash localizes the keys (RFC 3414 A.2, RFC 7860 9.3)
AUTH = {"SHA": (hashlib.sha1, 12), "SHA-224": (hashlib.sha224, 16), "SHA-256": (hashlib.sha256, 24),
        "SHA-384": (hashlib.sha384, 32), "SHA-512": (hashlib.sha512, 48)}
# USM privacy, AES-CFB (RFC 3826): key length, and how a localized key shorter than that is extended. AES-192/256
# extend it the standard way (draft-blumenthal-aes-usm-04: append the hash of the key so far; net-snmp, gosnmp);
# the "-C" variants the Cisco way (draft-reeder-snmpv3-usm-3desede: password-to-key again on the key so far),
# named as net-snmp's createUser and snmpcmd -x name them (snmp_exporter: AES192C, AES256C).
PRIV = {"AES": (16, False), "AES-192": (24, False), "AES-256": (32, False), "AES-192-C": (24, True),
        "AES-256-C": (32, True)}
MAX_INT = 2147483647                      # msgID, snmpEngineBoots, snmpEngineTime: INTEGER (0..2147483647)
TIME_WINDOW = 150                         # seconds (RFC 3414 3.2.7)
# why the client dropped an answer (Client.dropped, the netops_snmp_dropped_packets_total{reason} self-metric); the
# USM ones are RFC 3414's usmStats counters
DROP_REASONS = ("malformed", "unmatched", "unsupported_sec_level", "unknown_engine_id", "unknown_user_name",
                "wrong_digest", "not_in_time_window", "decryption_error")


class WireError(Exception):
    """A message that cannot be decoded, or an agent's refusal."""


class Dropped(WireError):
    """An answer the client drops (one of DROP_REASONS) while the request keeps waiting."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# --- BER -----------------------------------------------------------------------------------------
def _len(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(b),)) + b


def tlv(tag: int, body: bytes) -> bytes:
    return bytes((tag,)) + _len(len(body)) + body


def integer(v: int) -> bytes:
    return tlv(0x02, v.to_bytes(v.bit_length() // 8 + 1, "big", signed=True))


def unsigned(v: int, tag: int) -> bytes:
    return tlv(tag, v.to_bytes(v.bit_length() // 8 + 1, "big"))


_OID_ENC: dict[tuple, bytes] = {}
_OID_DEC: dict[bytes, tuple] = {}


def oid_body(oid: tuple[int, ...]) -> bytes:
    """The BER contents of an OBJECT IDENTIFIER (cached: the poller asks for the same columns)."""
    b = _OID_ENC.get(oid)
    if b is None:
        out = bytearray()
        for arc in (oid[0] * 40 + oid[1], *oid[2:]):
            chunk = [arc & 0x7F]
            arc >>= 7
            while arc:
                chunk.append(0x80 | (arc & 0x7F))
                arc >>= 7
            out += bytes(reversed(chunk))
        b = _OID_ENC[oid] = bytes(out)
    return b


def oid_tuple(body: bytes) -> tuple[int, ...]:
    """The arcs of an OBJECT IDENTIFIER's contents: at most 128 sub-identifiers of 32 bits (RFC 2578 7.1.3)."""
    t = _OID_DEC.get(body)
    if t is None:
        if not body or len(body) > 640 or body[-1] & 0x80:
            raise WireError("bad OID")
        arcs, v = [], 0
        for c in body:
            v = (v << 7) | (c & 0x7F)
            if not c & 0x80:
                arcs.append(v)
                v = 0
            elif v > 0x1FFFFFF:  # the next 7 bits would take it past 32
                raise WireError("OID sub-identifier out of range")
        if len(arcs) > 127:
            raise WireError("OID too long")
        first = arcs[0]
        t = (min(first // 40, 2), first - 40 * min(first // 40, 2), *arcs[1:])
        if len(_OID_DEC) > 200_000:
            _OID_DEC.clear()
        _OID_DEC[body] = t
    return t


def header(buf: bytes, i: int) -> tuple[int, int, int]:
    """(tag, start of contents, end of contents) of the TLV at ``i``."""
    try:
        tag, n = buf[i], buf[i + 1]
    except IndexError:
        raise WireError("truncated message") from None
    i += 2
    if n & 0x80:
        k = n & 0x7F
        if not 0 < k <= 3:  # no indefinite form in SNMP, and a datagram is shorter than 2^24
            raise WireError("bad length")
        n = int.from_bytes(buf[i:i + k], "big")
        i += k
    if i + n > len(buf):
        raise WireError("truncated message")
    return tag, i, i + n


def expect(buf: bytes, i: int, tag: int) -> tuple[int, int]:
    t, s, e = header(buf, i)
    if t != tag:
        raise WireError(f"unexpected tag 0x{t:02x} (wanted 0x{tag:02x})")
    return s, e


def read_int(buf: bytes, i: int) -> tuple[int, int]:
    s, e = expect(buf, i, 0x02)
    if not 0 < e - s <= 9:
        raise WireError("bad INTEGER")
    return int.from_bytes(buf[s:e], "big", signed=True), e


def read_octets(buf: bytes, i: int) -> tuple[bytes, int]:
    s, e = expect(buf, i, 0x04)
    return buf[s:e], e


def legacy_text(b: bytes) -> str:
    """An OCTET STRING that is not UTF-8: GB18030 (a superset of GBK and GB2312, what Chinese gear sends in
    descriptions), else the bytes in hex, never replacement characters."""
    try:
        return b.decode("gb18030")
    except UnicodeDecodeError:
        return b.hex(":")


def varbinds(buf: bytes, i: int, end: int) -> list[tuple[tuple[int, ...], object]]:
    """The varbind list's (OID, value): ints, str for strings and OIDs, None for the exceptions. Each varbind's
    SEQUENCE must hold exactly its name and value, integers at most 9 bytes (a Counter64 with its sign octet)."""
    out = []
    dec = _OID_DEC
    try:
        while i < end:
            # SEQUENCE { OID, value }: headers inlined, this is the hot loop
            n = buf[i + 1]
            if buf[i] != 0x30:
                raise WireError("bad varbind")
            if n < 0x80:
                i += 2
            else:
                k = n & 0x7F
                n = int.from_bytes(buf[i + 2:i + 2 + k], "big")
                i += 2 + k
            stop = i + n
            n = buf[i + 1]
            if buf[i] != 0x06 or n & 0x80:
                raise WireError("bad varbind")
            body = buf[i + 2:i + 2 + n]
            oid = dec.get(body) or oid_tuple(body)
            i += 2 + n
            tag, n = buf[i], buf[i + 1]
            i += 2
            if n & 0x80:
                k = n & 0x7F
                n = int.from_bytes(buf[i:i + k], "big")
                i += k
            if i + n != stop:
                raise WireError("bad varbind")
            if tag in UNSIGNED:
                if n > 9:
                    raise WireError("bad integer value")
                v = int.from_bytes(buf[i:stop], "big")
            elif tag == 0x02:
                if n > 9:
                    raise WireError("bad integer value")
                v = int.from_bytes(buf[i:stop], "big", signed=True)
            elif tag == 0x04:
                try:
                    v = buf[i:stop].decode("utf-8")
                except UnicodeDecodeError:
                    v = legacy_text(buf[i:stop])
            elif tag == 0x06:
                v = ".".join(map(str, oid_tuple(buf[i:stop])))
            elif tag == 0x40:
                v = ".".join(map(str, buf[i:stop]))
            elif tag in (NO_SUCH_OBJECT, NO_SUCH_INSTANCE, END_OF_MIB_VIEW, 0x05):
                v = None
            else:
                v = buf[i:stop]
            i = stop
            out.append((oid, v))
    except IndexError:
        raise WireError("truncated varbind") from None
    if i != end:
        raise WireError("varbind list overruns its sequence")
    return out


def pdu(tag: int, request_id: int, a: int, b: int, vbs: bytes) -> bytes:
    return tlv(tag, integer(request_id) + integer(a) + integer(b) + tlv(0x30, vbs))


def null_varbinds(oids) -> bytes:
    return b"".join(tlv(0x30, tlv(0x06, oid_body(o)) + b"\x05\x00") for o in oids)


def read_pdu(buf: bytes, i: int):
    """(tag, request-id, error-status or non-repeaters, error-index or max-repetitions, varbinds start, end)."""
    tag, s, _ = header(buf, i)
    rid, j = read_int(buf, s)
    a, j = read_int(buf, j)
    b, j = read_int(buf, j)
    vs, ve = expect(buf, j, 0x30)
    return tag, rid, a, b, vs, ve


def decode_pdu(buf: bytes, i: int):
    """(tag, request-id, error-status, error-index, varbinds) of the PDU at ``i``."""
    tag, rid, a, b, vs, ve = read_pdu(buf, i)
    return tag, rid, a, b, varbinds(buf, vs, ve)


def answer(status: int, index: int, vbs: list):
    """A Response's varbinds, or its error-status as a WireError."""
    if status:
        name = ERROR_STATUS[status] if 0 < status < len(ERROR_STATUS) else str(status)
        raise WireError(f"{name} at varbind {index}")
    return vbs


def report_reason(vbs: list) -> str:
    """What a Report PDU says: the usmStats counter it carries (e.g. notInTimeWindows), else its first OID."""
    oid = ".".join(map(str, vbs[0][0])) if vbs else ""
    return USM_REASON.get(oid[len(USM_STATS):].split(".")[0], oid) if oid.startswith(USM_STATS) else oid


def message_id(data: bytes) -> int:
    """The message ID (v3) or request ID (v2c), in clear in either version: what matches an answer to its request."""
    s, _ = expect(data, 0, 0x30)
    version, i = read_int(data, s)
    if version == 3:
        hs, _ = expect(data, i, 0x30)
        return read_int(data, hs)[0]
    _, j = read_octets(data, i)
    return read_pdu(data, j)[1]


# --- USM -----------------------------------------------------------------------------------------
_KU: dict[tuple, bytes] = {}


def _localize(secret: bytes, engine_id: bytes, auth: str) -> bytes:
    """RFC 3414 A.2: the secret to Ku (cached) with the authentication protocol's hash, localized to the engine ID."""
    h = AUTH[auth][0]
    ku = _KU.get((secret, auth))
    if ku is None:
        if not secret:
            raise WireError("empty USM key")
        ku = _KU[(secret, auth)] = h((secret * (1048576 // len(secret) + 1))[:1048576]).digest()
    return h(ku + engine_id + ku).digest()


def localized_key(password: str, engine_id: bytes, auth: str = "SHA") -> bytes:
    """The authentication key: the password localized to the agent's engine ID (RFC 3414 A.2, RFC 7860 9.3)."""
    return _localize(password.encode(), engine_id, auth)


def privacy_key(password: str, engine_id: bytes, auth: str = "SHA", priv: str = "AES") -> bytes:
    """The AES key: the password localized like the authentication key, then extended to the cipher's key length
    the way PRIV names (standard, or Cisco's for the "-C" variants) and cut to it."""
    size, cisco = PRIV[priv]
    key = localized_key(password, engine_id, auth)
    while len(key) < size:
        key += _localize(key, engine_id, auth) if cisco else AUTH[auth][0](key).digest()
    return key[:size]


def aes_cfb(key: bytes, iv: bytes, data: bytes, encrypt: bool) -> bytes:
    """AES-CFB128 with a 16, 24 or 32 byte key (AES-128, -192, -256)."""
    c = Cipher(algorithms.AES(key), CFB(iv))
    op = c.encryptor() if encrypt else c.decryptor()
    return op.update(data) + op.finalize()


def v2c_message(community: bytes, body: bytes) -> bytes:
    return tlv(0x30, integer(1) + tlv(0x04, community) + body)


def v3_message(msg_id: int, flags: int, engine_id: bytes, boots: int, etime: int, user: bytes, scoped: bytes,
               auth_key: bytes | None = None, priv_key: bytes | None = None, auth: str = "SHA") -> bytes:
    """An SNMPv3 message; authenticated when ``auth_key`` is given, encrypted when ``priv_key`` (privacy_key) is."""
    salt = os.urandom(8) if priv_key else b""
    data = tlv(0x04, aes_cfb(priv_key, boots.to_bytes(4, "big") + etime.to_bytes(4, "big") + salt, scoped, True)) \
        if priv_key else scoped
    tail = tlv(0x04, salt)
    usm = tlv(0x30, tlv(0x04, engine_id) + integer(boots) + integer(etime) + tlv(0x04, user)
              + tlv(0x04, bytes(AUTH[auth][1]) if auth_key else b"") + tail)
    msg = tlv(0x30, integer(3) + tlv(0x30, integer(msg_id) + integer(MAX_SIZE) + tlv(0x04, bytes((flags,))) + integer(3))
              + tlv(0x04, usm) + data)
    if not auth_key:
        return msg
    end = len(msg) - len(data) - len(tail)
    h, n = AUTH[auth]
    return msg[:end - n] + hmac.new(auth_key, msg, h).digest()[:n] + msg[end:]


class V3:
    """A decoded SNMPv3 message: header, USM parameters and the (still encrypted) scoped PDU."""
    __slots__ = ("auth", "auth_at", "boots", "buf", "data", "engine_id", "flags", "msg_id", "salt", "time", "user")


def read_v3(buf: bytes) -> V3:
    """The header and USM parameters of an SNMPv3 message (version 3, one flags octet, the user-based security
    model, engine boots and time in their range)."""
    m = V3()
    m.buf = buf
    s, _ = expect(buf, 0, 0x30)
    version, i = read_int(buf, s)
    if version != 3:
        raise WireError("not an SNMPv3 message")
    hs, he = expect(buf, i, 0x30)
    m.msg_id, j = read_int(buf, hs)
    _, j = read_int(buf, j)
    flags, j = read_octets(buf, j)
    if len(flags) != 1:
        raise WireError("bad msgFlags")
    m.flags = flags[0]
    model, j = read_int(buf, j)
    if model != 3:
        raise WireError("not the user-based security model")
    us, ue = expect(buf, he, 0x04)
    ss, _ = expect(buf, us, 0x30)
    m.engine_id, j = read_octets(buf, ss)
    m.boots, j = read_int(buf, j)
    m.time, j = read_int(buf, j)
    if not (0 <= m.boots <= MAX_INT and 0 <= m.time <= MAX_INT):
        raise WireError("engine boots or time out of range")
    m.user, j = read_octets(buf, j)
    a_s, a_e = expect(buf, j, 0x04)
    m.auth, m.auth_at = buf[a_s:a_e], a_s
    m.salt, j = read_octets(buf, a_e)
    m.data = ue
    return m


def authentic(m: V3, auth_key: bytes, auth: str = "SHA") -> bool:
    """Whether the message carries the right HMAC of itself (RFC 3414 6.3.2, RFC 7860 4.2.2)."""
    h, n = AUTH[auth]
    if len(m.auth) != n:
        return False
    zeroed = m.buf[:m.auth_at] + bytes(n) + m.buf[m.auth_at + n:]
    return hmac.compare_digest(hmac.new(auth_key, zeroed, h).digest()[:n], m.auth)


def scoped_pdu(m: V3, priv_key: bytes | None) -> tuple[bytes, int, bytes]:
    """(buffer, offset of the PDU in it, context name) of the message's scoped PDU."""
    buf = m.buf
    if m.flags & 2:
        s, e = expect(buf, m.data, 0x04)
        if priv_key is None or len(m.salt) != 8:
            raise WireError("encrypted message without a privacy key")
        buf = aes_cfb(priv_key, m.boots.to_bytes(4, "big") + m.time.to_bytes(4, "big") + m.salt, buf[s:e], False)
        start = 0
    else:
        start = m.data
    s, _ = expect(buf, start, 0x30)
    _, j = read_octets(buf, s)
    ctx, j = read_octets(buf, j)
    return buf, j, ctx


# --- what the client accepts ------------------------------------------------------------------------
class Engine:
    """What the client knows of one agent (RFC 3414 2.3): engine ID, its boots and time as of ``at``, the latest
    engine time received in an authenticated message (None until one is: discovery is not authenticated), the keys
    localized to it."""
    __slots__ = ("at", "boots", "engine_id", "keys", "latest", "time")

    def __init__(self, engine_id: bytes, boots: int, etime: int):
        self.engine_id, self.boots, self.time, self.at, self.keys = engine_id, boots, etime, time.monotonic(), {}
        self.latest: int | None = None

    def now(self) -> int:
        return self.time + int(time.monotonic() - self.at)

    def timely(self, boots: int, etime: int) -> bool:
        """RFC 3414 3.2.7b, on an authenticated message from this engine: the local notion follows a message only if
        it is newer than the latest received (so an older one never moves the clock back), and the message is in the
        time window if it has our boots (not the latched maximum) and a time at most 150 s behind our notion."""
        if self.latest is None or boots > self.boots or (boots == self.boots and etime > self.latest):
            self.boots, self.time, self.latest, self.at = boots, etime, etime, time.monotonic()
            return boots != MAX_INT  # the message is our notion now
        return self.boots != MAX_INT and boots == self.boots and etime >= self.now() - TIME_WINDOW


def open_v2c(data: bytes, community: bytes, rid: int):
    """An answer to a v2c request: (error-status, error-index, varbinds), or Dropped."""
    try:
        s, _ = expect(data, 0, 0x30)
        version, i = read_int(data, s)
        got, i = read_octets(data, i)
        tag, r, status, index, vs, ve = read_pdu(data, i)
        if version != 1 or got != community or tag != RESPONSE or r != rid:
            raise Dropped("unmatched")
        return status, index, varbinds(data, vs, ve)
    except Dropped:
        raise
    except WireError:
        raise Dropped("malformed") from None


def open_discovery(data: bytes) -> tuple[bytes, int, int]:
    """The engine ID, boots and time an agent's answer to discovery tells (RFC 3414 4; not authenticated), or Dropped."""
    try:
        m = read_v3(data)
    except WireError:
        raise Dropped("malformed") from None
    if not m.engine_id:
        raise Dropped("malformed")
    return m.engine_id, m.boots, m.time


def open_v3(data: bytes, eng: Engine, user: bytes, keys: tuple[bytes, bytes], auth: str, rid: int):
    """An answer to an authPriv request, checked as RFC 3412 7.2 and RFC 3414 3.2 say and in that order: security
    level, engine ID and user as discovered, authentication, timeliness, decryption. (PDU type, error-status,
    error-index, varbinds) of a Response to request ``rid`` or of a Report; else Dropped.

    Below authPriv only a Report passes: in clear, an agent's refusal of a request it could not authenticate
    (unknown engine or user, wrong digest...: it carries no data and never moves the clock), or authenticated,
    its notInTimeWindows (RFC 3414 3.2.7a sends it authNoPriv; a message in clear is not trusted to say it)."""
    try:
        m = read_v3(data)
        level = m.flags & 3
        if level != 3:
            tag, _, status, index, vbs = decode_pdu(*scoped_pdu(m, None)[:2])
    except WireError:
        raise Dropped("malformed") from None
    if level != 3:
        if tag != REPORT or (level == 0 and report_reason(vbs) == "notInTimeWindows"):
            raise Dropped("unsupported_sec_level")
        if level == 0:
            return tag, status, index, vbs
    if m.engine_id != eng.engine_id:
        raise Dropped("unknown_engine_id")
    if m.user != user:
        raise Dropped("unknown_user_name")
    if not authentic(m, keys[0], auth):
        raise Dropped("wrong_digest")
    if not eng.timely(m.boots, m.time):
        raise Dropped("not_in_time_window")
    if level == 3:
        try:
            buf, i, _ = scoped_pdu(m, keys[1])
        except WireError:
            raise Dropped("decryption_error") from None
        try:
            tag, got, status, index, vbs = decode_pdu(buf, i)
        except WireError:
            raise Dropped("malformed") from None
        if tag != REPORT and (tag != RESPONSE or got != rid):
            raise Dropped("unmatched")
    return tag, status, index, vbs


# --- client --------------------------------------------------------------------------------------
class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, client: Client):
        self.client = client

    def datagram_received(self, data, addr):
        self.client._received(data, addr)

    def error_received(self, exc):  # ICMP unreachable etc.: the request times out on its own
        pass


class Client:
    """One UDP socket for every target; answers matched to requests by message/request ID and source address,
    then checked by the request's own ``open_*``; ``dropped`` counts what was dropped, by reason."""

    def __init__(self):
        self._transport = None
        self._waiting: dict[int, tuple] = {}     # ID → (future, address, check, the caller's drop counts)
        self._next = int.from_bytes(os.urandom(3), "big")
        self._engines: dict[tuple, Engine] = {}
        self.dropped = dict.fromkeys(DROP_REASONS, 0)

    async def _open(self):
        if self._transport is None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            for opt in (getattr(socket, "SO_RCVBUFFORCE", None), socket.SO_RCVBUF):
                try:  # many agents answering at once: room for their datagrams
                    sock.setsockopt(socket.SOL_SOCKET, opt, 4 << 20)
                    break
                except (OSError, TypeError):
                    continue
            sock.bind(("0.0.0.0", 0))
            self._transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
                lambda: _Protocol(self), sock=sock)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def _id(self) -> int:
        self._next = (self._next + 1) & 0x7FFFFFFF
        return self._next

    def _drop(self, reason: str, counts: dict | None) -> None:
        self.dropped[reason] += 1
        if counts is not None:
            counts[reason] = counts.get(reason, 0) + 1

    def _received(self, data: bytes, addr) -> None:
        try:
            key = message_id(data)
        except WireError:
            return self._drop("malformed", None)
        hit = self._waiting.get(key)
        if hit is None or hit[1] != addr[:2] or hit[0].done():
            return self._drop("unmatched", None)
        fut, _, check, counts = hit
        try:
            fut.set_result(check(data))
        except Dropped as e:
            self._drop(e.reason, counts)
        except Exception as e:  # a defect, not a drop: the request fails with it, the socket serves the others
            fut.set_exception(e)

    async def _exchange(self, addr: tuple, key: int, msg: bytes, timeout: float, check, counts: dict | None):
        """Send ``msg`` and wait for the first answer ``check`` accepts (its result), or None after ``timeout``."""
        await self._open()
        fut = asyncio.get_running_loop().create_future()
        self._waiting[key] = (fut, addr, check, counts)
        try:
            self._transport.sendto(msg, addr)
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            return None
        finally:
            self._waiting.pop(key, None)

    async def request(self, t, tag: int, oids: list[tuple], a: int, b: int, timeout: float, dropped: dict | None = None):
        """One request to target ``t`` (collectors.snmp.Target); its varbinds, or None on a timeout. Answers dropped
        on the way are counted into ``dropped`` too. SNMPv3: discovery and time synchronisation happen here, once
        per agent (and again on an unknownEngineIDs or notInTimeWindows report), without counting as the caller's
        request."""
        addr = (t.address, t.port)
        vbs = null_varbinds(oids)
        if t.version == "v2c":
            rid, community = self._id(), t.community.encode()
            got = await self._exchange(addr, rid, v2c_message(community, pdu(tag, rid, a, b, vbs)), timeout,
                                       functools.partial(open_v2c, community=community, rid=rid), dropped)
            return None if got is None else answer(*got)
        user, auth = t.user.encode(), t.auth_protocol
        rediscover = False
        for _ in range(3):
            eng = self._engines.get(addr)
            if eng is None or rediscover:
                eng = await self._discover(addr, timeout, dropped)
                if eng is None:
                    return None
            keys = eng.keys.get((auth, t.priv_protocol, t.auth_key, t.priv_key))
            if keys is None:
                if auth not in AUTH or t.priv_protocol not in PRIV:
                    raise WireError(f"unsupported USM protocols {auth}/{t.priv_protocol}")
                keys = eng.keys[(auth, t.priv_protocol, t.auth_key, t.priv_key)] = (
                    localized_key(t.auth_key, eng.engine_id, auth),
                    privacy_key(t.priv_key, eng.engine_id, auth, t.priv_protocol))
            rid = self._id()
            scoped = tlv(0x30, tlv(0x04, eng.engine_id) + tlv(0x04, t.context.encode()) + pdu(tag, rid, a, b, vbs))
            msg = v3_message(rid, 0x07, eng.engine_id, eng.boots, eng.now(), user, scoped, *keys, auth)
            got = await self._exchange(addr, rid, msg, timeout,
                                       functools.partial(open_v3, eng=eng, user=user, keys=keys, auth=auth, rid=rid),
                                       dropped)
            if got is None:
                return None
            kind, status, index, vbs_in = got
            if kind == RESPONSE:
                return answer(status, index, vbs_in)
            reason = report_reason(vbs_in)
            if reason == "unknownEngineIDs":
                rediscover = True
            elif reason != "notInTimeWindows":  # authenticated (open_v3 drops it otherwise): the clock has moved
                what = f"usmStats{reason[0].upper()}{reason[1:]}" if reason in USM_REASON.values() else reason
                raise WireError(f"agent refused the request: {what or 'a Report without varbinds'}")
        raise WireError("agent keeps refusing the request's time window")

    async def _discover(self, addr: tuple, timeout: float, dropped: dict | None) -> Engine | None:
        rid = self._id()
        scoped = tlv(0x30, tlv(0x04, b"") + tlv(0x04, b"") + pdu(GET, rid, 0, 0, b""))
        got = await self._exchange(addr, rid, v3_message(rid, 0x04, b"", 0, 0, b"", scoped), timeout, open_discovery,
                                   dropped)
        if got is None:
            return None
        eng = self._engines.get(addr)
        if eng is None or eng.engine_id != got[0]:  # the same engine keeps its clock: it never moves back
            eng = self._engines[addr] = Engine(*got)
        return eng
