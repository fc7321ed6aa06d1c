"""A minimal SNMP wire codec for the poller's hot loop: BER for SNMPv2c and SNMPv3 USM messages
(HMAC-SHA-96 and the RFC 7860 HMAC-SHA-2 authentication protocols, AES-128/192/256-CFB privacy; RFC 3412/
3414/3826/7860), and an asyncio UDP client.

pysnmp's generic pyasn1 decoder costs ~170 µs of CPU per varbind; this codec walks the response bytes
once, caches decoded OIDs, and hands back plain Python values. It covers what the collector sends
(GET and GETBULK of plain OIDs) and what agents answer (Response and Report PDUs). The simulated agents
(tests/support/simagent.py FastResponder) use the same encoder and decoder to answer at the rate the
benchmarks need.
"""
from __future__ import annotations

import asyncio
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


class WireError(Exception):
    """A message that cannot be decoded, fails authentication, or an agent's refusal."""


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
    t = _OID_DEC.get(body)
    if t is None:
        arcs, v = [], 0
        for c in body:
            v = (v << 7) | (c & 0x7F)
            if not c & 0x80:
                arcs.append(v)
                v = 0
        if not arcs:
            raise WireError("empty OID")
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
        i += 2
        if n & 0x80:
            k = n & 0x7F
            n = int.from_bytes(buf[i:i + k], "big")
            i += k
    except IndexError:
        raise WireError("truncated message") from None
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
    return int.from_bytes(buf[s:e], "big", signed=True), e


def read_octets(buf: bytes, i: int) -> tuple[bytes, int]:
    s, e = expect(buf, i, 0x04)
    return buf[s:e], e


def varbinds(buf: bytes, i: int, end: int) -> list[tuple[tuple[int, ...], object]]:
    """The varbind list's (OID, value): ints, str for strings and OIDs, None for the exceptions."""
    out = []
    dec = _OID_DEC
    while i < end:
        # SEQUENCE { OID, value }: headers inlined, this is the hot loop
        n = buf[i + 1]
        i += 2 if n < 0x80 else 2 + (n & 0x7F)
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
        if tag in UNSIGNED:
            v = int.from_bytes(buf[i:i + n], "big")
        elif tag == 0x02:
            v = int.from_bytes(buf[i:i + n], "big", signed=True)
        elif tag == 0x04:
            v = buf[i:i + n].decode("utf-8", "replace")
        elif tag == 0x06:
            v = ".".join(map(str, oid_tuple(buf[i:i + n])))
        elif tag == 0x40:
            v = ".".join(map(str, buf[i:i + n]))
        elif tag in (NO_SUCH_OBJECT, NO_SUCH_INSTANCE, END_OF_MIB_VIEW, 0x05):
            v = None
        else:
            v = buf[i:i + n]
        i += n
        out.append((oid, v))
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
    m = V3()
    m.buf = buf
    s, _ = expect(buf, 0, 0x30)
    _, i = read_int(buf, s)
    hs, he = expect(buf, i, 0x30)
    m.msg_id, j = read_int(buf, hs)
    _, j = read_int(buf, j)
    flags, j = read_octets(buf, j)
    m.flags = flags[0] if flags else 0
    us, ue = expect(buf, he, 0x04)
    ss, _ = expect(buf, us, 0x30)
    m.engine_id, j = read_octets(buf, ss)
    m.boots, j = read_int(buf, j)
    m.time, j = read_int(buf, j)
    m.user, j = read_octets(buf, j)
    a_s, a_e = expect(buf, j, 0x04)
    m.auth, m.auth_at = buf[a_s:a_e], a_s
    m.salt, j = read_octets(buf, a_e)
    m.data = ue
    return m


def verify(m: V3, auth_key: bytes, auth: str = "SHA") -> None:
    h, n = AUTH[auth]
    if len(m.auth) != n:
        raise WireError("unauthenticated message")
    zeroed = m.buf[:m.auth_at] + bytes(n) + m.buf[m.auth_at + n:]
    if not hmac.compare_digest(hmac.new(auth_key, zeroed, h).digest()[:n], m.auth):
        raise WireError("wrong digest")


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


# --- client --------------------------------------------------------------------------------------
class _Engine:
    """What discovery told us about one agent: engine ID, boots, time (and when), localized keys."""
    __slots__ = ("at", "boots", "engine_id", "keys", "time")

    def __init__(self, engine_id: bytes, boots: int, etime: int):
        self.engine_id, self.boots, self.time, self.at, self.keys = engine_id, boots, etime, time.monotonic(), {}

    def now(self) -> int:
        return self.time + int(time.monotonic() - self.at)


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, client: Client):
        self.client = client

    def datagram_received(self, data, addr):
        self.client._received(data, addr)

    def error_received(self, exc):  # ICMP unreachable etc.: the request times out on its own
        pass


class Client:
    """One UDP socket for every target; answers matched to requests by message/request ID."""

    def __init__(self):
        self._transport = None
        self._waiting: dict[int, tuple[asyncio.Future, tuple]] = {}
        self._next = int.from_bytes(os.urandom(3), "big")
        self._engines: dict[tuple, _Engine] = {}

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

    def _received(self, data: bytes, addr) -> None:
        try:  # the message ID (v3) or request ID (v2c) is in clear in either version
            s, _ = expect(data, 0, 0x30)
            version, i = read_int(data, s)
            if version == 3:
                hs, _ = expect(data, i, 0x30)
                key, _ = read_int(data, hs)
            else:
                _, j = read_octets(data, i)
                _, key, *_ = read_pdu(data, j)
        except (WireError, IndexError):
            return
        hit = self._waiting.get(key)
        if hit and hit[1] == addr[:2] and not hit[0].done():
            hit[0].set_result(data)

    async def _exchange(self, addr: tuple, key: int, msg: bytes, timeout: float) -> bytes | None:
        await self._open()
        fut = asyncio.get_running_loop().create_future()
        self._waiting[key] = (fut, addr)
        try:
            self._transport.sendto(msg, addr)
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            return None
        finally:
            self._waiting.pop(key, None)

    async def request(self, t, tag: int, oids: list[tuple], a: int, b: int, timeout: float):
        """One request to target ``t`` (collectors.snmp.Target); its varbinds, or None on a timeout.
        SNMPv3: discovery and time synchronisation happen here, once per agent (and again on a
        notInTimeWindow report), without counting as the caller's request."""
        addr = (t.address, t.port)
        vbs = null_varbinds(oids)
        if t.version == "v2c":
            rid = self._id()
            data = await self._exchange(addr, rid, v2c_message(t.community.encode(), pdu(tag, rid, a, b, vbs)), timeout)
            if data is None:
                return None
            s, _ = expect(data, 0, 0x30)
            _, i = read_int(data, s)
            _, i = read_octets(data, i)
            return self._answer(data, i)
        for _ in range(3):
            eng = self._engines.get(addr)
            if eng is None:
                eng = await self._discover(addr, timeout)
                if eng is None:
                    return None
            auth = t.auth_protocol
            keys = eng.keys.get((auth, t.priv_protocol, t.auth_key, t.priv_key))
            if keys is None:
                if auth not in AUTH or t.priv_protocol not in PRIV:
                    raise WireError(f"unsupported USM protocols {auth}/{t.priv_protocol}")
                keys = eng.keys[(auth, t.priv_protocol, t.auth_key, t.priv_key)] = (
                    localized_key(t.auth_key, eng.engine_id, auth),
                    privacy_key(t.priv_key, eng.engine_id, auth, t.priv_protocol))
            rid = self._id()
            scoped = tlv(0x30, tlv(0x04, eng.engine_id) + tlv(0x04, t.context.encode()) + pdu(tag, rid, a, b, vbs))
            msg = v3_message(rid, 0x07, eng.engine_id, eng.boots, eng.now(), t.user.encode(), scoped, *keys, auth)
            data = await self._exchange(addr, rid, msg, timeout)
            if data is None:
                return None
            m = read_v3(data)
            if m.flags & 1:
                verify(m, keys[0], auth)
                eng.boots, eng.time, eng.at = m.boots, m.time, time.monotonic()
            buf, i, _ = scoped_pdu(m, keys[1])
            try:
                return self._answer(buf, i)
            except _Resync as e:
                if e.reason == "unknownEngineIDs":
                    self._engines.pop(addr, None)
                elif e.reason != "notInTimeWindows":
                    raise WireError(f"agent refused the request: usmStats{e.reason[0].upper()}{e.reason[1:]}") from None
        raise WireError("agent keeps refusing the request's time window")

    async def _discover(self, addr: tuple, timeout: float) -> _Engine | None:
        rid = self._id()
        scoped = tlv(0x30, tlv(0x04, b"") + tlv(0x04, b"") + pdu(GET, rid, 0, 0, b""))
        data = await self._exchange(addr, rid, v3_message(rid, 0x04, b"", 0, 0, b"", scoped), timeout)
        if data is None:
            return None
        m = read_v3(data)
        if not m.engine_id:
            raise WireError("agent answered discovery without an engine ID")
        eng = self._engines[addr] = _Engine(m.engine_id, m.boots, m.time)
        return eng

    @staticmethod
    def _answer(buf: bytes, i: int):
        tag, _, status, index, vs, ve = read_pdu(buf, i)
        vbs = varbinds(buf, vs, ve)
        if tag == REPORT:
            oid = ".".join(map(str, vbs[0][0])) if vbs else ""
            reason = USM_REASON.get(oid[len(USM_STATS):].split(".")[0], oid) if oid.startswith(USM_STATS) else oid
            raise _Resync(reason)
        if tag != RESPONSE:
            raise WireError(f"unexpected PDU 0x{tag:02x}")
        if status:
            name = ERROR_STATUS[status] if status < len(ERROR_STATUS) else str(status)
            raise WireError(f"{name} at varbind {index}")
        return vbs


class _Resync(WireError):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason
