"""Simulated SNMP agents for tests, benchmarks and rehearsals: recorded data (.snmprec) for routers of
any port count, with Huawei/H3C entity MIBs, served by snmpsim's full responder on loopback addresses.

One responder process serves many agents, each on its own UDP endpoint with its own recording
``<name>.snmprec``: snmpsim selects it by the SNMPv3 context name (the agent's name) or, for a v2c
agent, by its community.

``Responder`` runs snmpsim's full responder: the independent reference the collector's tests check
against. ``FastResponder`` serves the same recordings from ``python -m jinbao_netops.testing.simagent`` with the
collector's own codec (collectors/wire.py) and answer caching: snmpsim answers a few hundred varbinds a
second, too few to simulate thousands of 48-port devices in one benchmark run.

``ScriptedAgent`` is one SNMPv3 agent in the test's own event loop whose answers a test writes: genuine ones,
and forged, stale, replayed or damaged ones next to them.
"""
from __future__ import annotations

import asyncio
import bisect
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, NamedTuple

from jinbao_netops.inventory.platforms import PLATFORMS

from jinbao_netops.collectors import wire

SYSOBJ = {"huawei_vrp": ".25.1.1", "hp_comware": ".1.1", "frr": ".3.2.10", "debian": ".3.2.10"}


@dataclass
class Agent:
    name: str
    address: str = "127.0.0.2"
    port: int = 16100
    platform: str = "frr"
    ports: int = 4
    uptime: int = 123456           # TimeTicks (centiseconds)
    last_change: int = 100         # ifTableLastChange
    octets: int = 1_000_000        # ifHCInOctets of port 1 (others scaled)
    errors: int = 5                # ifInErrors (32-bit) of port 1
    down: set = field(default_factory=set)  # ifIndexes whose oper-status is down
    cpu: int = 37
    mem: int = 52
    alias_prefix: str = "uplink"
    community: str | None = None   # v2c agent when set
    answer: bool = True            # False: the endpoint is bound by a silent socket
    extra: dict = field(default_factory=dict)  # OID → (snmprec tag, value): recorded instead of, or next to, the above
    recording: str | None = None   # a .snmprec file served instead of the generated data (``extra`` still applies)


def snmprec(a: Agent) -> str:
    """The agent's recorded data, sorted by OID as snmpsim requires."""
    plat = PLATFORMS[a.platform]
    rec: list[tuple[tuple[int, ...], str, str]] = []

    def put(oid: str, tag, value) -> None:
        rec.append((tuple(int(x) for x in oid.split(".")), str(tag), str(value)))

    if a.recording:
        for line in Path(a.recording).read_text().splitlines():
            if line and not line.startswith("#"):
                put(*line.split("|", 2))
    else:
        generated(a, plat, put)
    rec = [r for r in rec if ".".join(map(str, r[0])) not in a.extra]
    for oid, (tag, value) in a.extra.items():
        put(oid, tag, value)
    rec.sort()
    return "".join(f"{'.'.join(map(str, o))}|{t}|{v}\n" for o, t, v in rec)


def generated(a: Agent, plat, put) -> None:
    """The data of a synthetic router of ``a.ports`` ports."""
    put("1.3.6.1.2.1.1.1.0", 4, f"simulated {a.platform} {a.name}")
    put("1.3.6.1.2.1.1.2.0", 6, plat.snmp_enterprise + SYSOBJ.get(a.platform, ".1"))
    put("1.3.6.1.2.1.1.3.0", 67, a.uptime)
    put("1.3.6.1.2.1.1.5.0", 4, a.name)
    put("1.3.6.1.2.1.31.1.5.0", 67, a.last_change)
    for i in range(1, a.ports + 1):
        base = a.octets * i % (1 << 64)
        put(f"1.3.6.1.2.1.2.2.1.7.{i}", 2, 1)
        put(f"1.3.6.1.2.1.2.2.1.8.{i}", 2, 2 if i in a.down else 1)
        put(f"1.3.6.1.2.1.2.2.1.13.{i}", 65, i)
        put(f"1.3.6.1.2.1.2.2.1.14.{i}", 65, a.errors * i % (1 << 32))
        put(f"1.3.6.1.2.1.2.2.1.19.{i}", 65, 2 * i)
        put(f"1.3.6.1.2.1.2.2.1.20.{i}", 65, 3 * i)
        put(f"1.3.6.1.2.1.31.1.1.1.1.{i}", 4, f"GE0/0/{i}")
        put(f"1.3.6.1.2.1.31.1.1.1.6.{i}", 70, base)
        put(f"1.3.6.1.2.1.31.1.1.1.7.{i}", 70, base // 1000)
        put(f"1.3.6.1.2.1.31.1.1.1.10.{i}", 70, 2 * base % (1 << 64))
        put(f"1.3.6.1.2.1.31.1.1.1.11.{i}", 70, 2 * base // 1000)
        put(f"1.3.6.1.2.1.31.1.1.1.15.{i}", 66, 1000)
        put(f"1.3.6.1.2.1.31.1.1.1.18.{i}", 4, f"{a.alias_prefix}-{i}")
    if plat.snmp_mem_oid:  # vendor entity MIB: a chassis (no CPU) and two boards
        for idx, (cpu, mem) in {16842753: (0, 0), 16842754: (a.cpu, a.mem), 16842755: (a.cpu // 2, a.mem // 2)}.items():
            put(f"{plat.snmp_cpu_oid}.{idx}", 2, cpu)
            put(f"{plat.snmp_mem_oid}.{idx}", 2, mem)
    else:
        put("1.3.6.1.2.1.25.2.3.1.2.1", 6, "1.3.6.1.2.1.25.2.1.2")
        put("1.3.6.1.2.1.25.2.3.1.3.1", 4, "Physical memory")
        put("1.3.6.1.2.1.25.2.3.1.4.1", 2, 1024)
        put("1.3.6.1.2.1.25.2.3.1.5.1", 2, 1000)
        put("1.3.6.1.2.1.25.2.3.1.6.1", 2, a.mem * 10)
        put("1.3.6.1.2.1.25.3.3.1.2.196608", 2, a.cpu)


class Responder:
    """snmpsim-command-responder serving ``agents`` (SNMPv3 user/keys shared, v2c per agent)."""

    def __init__(self, agents: list[Agent], user: str = "netops", auth_key: str = "authkey-sim-1",
                 priv_key: str = "privkey-sim-1", workdir: str | None = None, more_users: tuple = ()):
        self.agents, self.user, self.auth_key, self.priv_key = agents, user, auth_key, priv_key
        self.more_users = more_users  # (user, auth protocol, priv protocol) in snmpsim's names, same keys
        self.dir = Path(workdir or tempfile.mkdtemp(prefix="netops-snmpsim-"))
        self.proc: subprocess.Popen | None = None
        # a real agent keeps its engine ID across restarts (net-snmp persists it): so does this one
        self.engine_id = "8000a0b40301" + os.urandom(6).hex()
        self._silent: list = []

    def write(self) -> None:
        data = self.dir / "data"
        if data.exists():
            shutil.rmtree(data)
        data.mkdir(parents=True)
        shared: dict[str, Path] = {}
        for a in self.live():
            text = snmprec(a)
            path = data / f"{a.community or a.name}.snmprec"
            if path.exists():  # several endpoints serving one recording
                continue
            key = hashlib.sha1(text.encode()).hexdigest()
            if key in shared:  # identical agents share one recording
                os.symlink(shared[key], path)
            else:
                path.write_text(text)
                shared[key] = path

    def live(self) -> list[Agent]:
        return [a for a in self.agents if a.answer]

    def start(self, timeout: float = 60) -> "Responder":
        import socket

        self.write()
        for a in self.agents:
            if not a.answer:  # bound, never answers: requests time out, as with a dead CPU
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.bind((a.address, a.port))
                self._silent.append(s)
        self.proc = subprocess.Popen(self._command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True,
                                     # as root snmpsim would drop to nobody, who cannot read this venv's Python
                                     env={**os.environ, "SNMPSIM_ALLOW_ROOT": "true"})
        self._wait_ready(timeout)
        return self

    def _command(self) -> list[str]:
        exe = Path(sys.executable).with_name("snmpsim-command-responder")
        # engine options start with --v3-engine-id; the data dir and users after it belong to that engine
        args = [str(exe), f"--v3-engine-id={self.engine_id}", f"--data-dir={self.dir / 'data'}", f"--cache-dir={self.dir / 'cache'}",
                "--force-index-rebuild", "--logging-method=null", "--max-var-binds=1000",
                f"--v3-user={self.user}", f"--v3-auth-key={self.auth_key}", "--v3-auth-proto=SHA",
                f"--v3-priv-key={self.priv_key}", "--v3-priv-proto=AES"]
        for user, auth, priv in self.more_users:
            args += [f"--v3-user={user}", f"--v3-auth-key={self.auth_key}", f"--v3-auth-proto={auth}",
                     f"--v3-priv-key={self.priv_key}", f"--v3-priv-proto={priv}"]
        argfile = self.dir / "endpoints"  # thousands of endpoints do not fit a command line
        argfile.write_text("".join(f"--agent-udpv4-endpoint={a.address}:{a.port}\n" for a in self.live()))
        return [*args, f"--args-from-file={argfile}"]

    def _wait_ready(self, timeout: float) -> None:
        """Until the last agent answers a v3 GET (the responder binds endpoints one by one)."""
        from jinbao_netops.collectors.snmp import SYS_NAME, Poller, Stats, _oid

        last = self.live()[-1] if self.live() else None
        if last is None:
            return
        t = self.target(last, timeout=0.5, retries=0)
        end = time.monotonic() + timeout

        async def probe() -> bool:
            p = Poller()
            try:
                await p._request(t, Stats(), asyncio.Semaphore(1), [_oid(SYS_NAME)], bulk=False)
                return True
            except Exception:
                return False
            finally:
                p.close()

        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"snmpsim exited with {self.proc.returncode}")
            if asyncio.run(probe()):
                return
            time.sleep(0.2)
        raise RuntimeError("snmpsim did not answer in time")

    def target(self, a: Agent, **kw):
        from jinbao_netops.collectors.snmp import Target

        return Target(device=a.name, address=a.address, port=a.port, platform=a.platform,
                      version="v2c" if a.community else "v3", user=self.user, auth_key=self.auth_key,
                      priv_key=self.priv_key, community=a.community or "", context="" if a.community else a.name, **kw)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None
        for s in self._silent:
            s.close()
        self._silent = []

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()


class FastResponder(Responder):
    """The same agents and recordings, answered by ``serve`` below (v2c and v3 authPriv SHA/AES)."""

    def _command(self) -> list[str]:
        cfg = {"engine_id": self.engine_id, "user": self.user, "auth_key": self.auth_key, "priv_key": self.priv_key,
               "endpoints": [[a.address, a.port, str(self.dir / "data" / f"{a.community or a.name}.snmprec"),
                              a.community] for a in self.live()]}
        path = self.dir / "fast.json"
        path.write_text(json.dumps(cfg))
        return [sys.executable, "-m", "jinbao_netops.testing.simagent", str(path)]


def report_scoped(engine_id: bytes, rid: int, reason: str) -> bytes:
    """The scoped PDU of an agent's Report naming usmStats ``reason`` (e.g. notInTimeWindows)."""
    oid = tuple(int(x) for x in (wire.USM_STATS + {v: k for k, v in wire.USM_REASON.items()}[reason] + ".0").split("."))
    vb = wire.tlv(0x30, wire.tlv(0x06, wire.oid_body(oid)) + wire.unsigned(1, 0x41))
    return wire.tlv(0x30, wire.tlv(0x04, engine_id) + wire.tlv(0x04, b"") + wire.pdu(wire.REPORT, rid, 0, 0, vb))


class Request(NamedTuple):
    """An authenticated request a ScriptedAgent decrypted."""
    msg_id: int
    rid: int
    context: bytes
    oids: list
    tag: int = 0xA0                # GET, GETBULK…
    max_repetitions: int = 0


class ScriptedAgent(asyncio.DatagramProtocol):
    """An SNMPv3 agent (the codec's encoder) in the caller's event loop: it answers discovery as agents do, and
    each authPriv request it can authenticate and decrypt with the datagrams ``script(agent, request)`` returns.
    ``response`` and ``report`` build genuine answers; their keywords forge one field each."""

    def __init__(self, script: Callable[["ScriptedAgent", Request], list[bytes]], user: str = "netops",
                 auth_key: str = "authkey-sim-1", priv_key: str = "privkey-sim-1", auth: str = "SHA", priv: str = "AES",
                 boots: int = 5):
        self.script, self.user, self.auth, self.boots = script, user.encode(), auth, boots
        self.engine_id = bytes.fromhex("8000a0b40301") + os.urandom(6)
        self.keys = (wire.localized_key(auth_key, self.engine_id, auth),
                     wire.privacy_key(priv_key, self.engine_id, auth, priv))
        self.started = time.monotonic() - 1000  # up for a while
        self.requests: list[Request] = []
        self.transport = None

    async def start(self, address: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        self.transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(lambda: self,
                                                                                       local_addr=(address, port))
        return self.transport.get_extra_info("sockname")[:2]

    def close(self) -> None:
        self.transport.close()

    def now(self) -> int:
        return int(time.monotonic() - self.started)

    def datagram_received(self, data, addr):
        m = wire.read_v3(data)
        if not m.flags & 1:  # discovery: the engine ID, boots and time, in clear
            rid = wire.read_pdu(*wire.scoped_pdu(m, None)[:2])[1]
            out = [wire.v3_message(m.msg_id, 0, self.engine_id, self.boots, self.now(), b"",
                                   report_scoped(self.engine_id, rid, "unknownEngineIDs"))]
        elif wire.authentic(m, self.keys[0], self.auth):
            buf, i, ctx = wire.scoped_pdu(m, self.keys[1])
            tag, rid, _, reps, vbs = wire.decode_pdu(buf, i)
            req = Request(m.msg_id, rid, ctx, [o for o, _ in vbs], tag, reps)
            self.requests.append(req)
            out = self.script(self, req)
        else:
            return
        for d in out:
            self.transport.sendto(d, addr)

    def _message(self, req: Request, scoped: bytes, flags: int, engine_id: bytes | None, boots: int | None,
                 etime: int | None, user: bytes | None, auth_key: bytes | None) -> bytes:
        return wire.v3_message(req.msg_id, flags, engine_id or self.engine_id, self.boots if boots is None else boots,
                               self.now() if etime is None else etime, self.user if user is None else user, scoped,
                               (auth_key or self.keys[0]) if flags & 1 else None, self.keys[1] if flags & 2 else None,
                               self.auth)

    def response(self, req: Request, text: str = "genuine", flags: int = 0x03, engine_id: bytes | None = None,
                 boots: int | None = None, etime: int | None = None, user: bytes | None = None,
                 auth_key: bytes | None = None, varbinds: bytes | None = None) -> bytes:
        """A Response to ``req``: ``text`` for every OID it asked for (or the encoded ``varbinds``); authPriv unless
        ``flags`` say otherwise."""
        vbs = varbinds if varbinds is not None else b"".join(
            wire.tlv(0x30, wire.tlv(0x06, wire.oid_body(o)) + wire.tlv(0x04, text.encode())) for o in req.oids)
        scoped = wire.tlv(0x30, wire.tlv(0x04, self.engine_id) + wire.tlv(0x04, req.context)
                          + wire.pdu(wire.RESPONSE, req.rid, 0, 0, vbs))
        return self._message(req, scoped, flags, engine_id, boots, etime, user, auth_key)

    def report(self, req: Request, reason: str, flags: int = 0x01, boots: int | None = None,
               etime: int | None = None) -> bytes:
        """A Report to ``req`` naming usmStats ``reason``, authenticated (as notInTimeWindows is) unless ``flags``
        say otherwise."""
        return self._message(req, report_scoped(self.engine_id, req.rid, reason), flags, None, boots, etime, None, None)


# --- the fast responder process ------------------------------------------------------------------
TAGS = {"2": lambda v: wire.integer(int(v)), "4": lambda v: wire.tlv(0x04, v.encode()),
        "4x": lambda v: wire.tlv(0x04, bytes.fromhex(v)),  # snmpsim's hex-encoded OCTET STRING
        "6": lambda v: wire.tlv(0x06, wire.oid_body(tuple(int(x) for x in v.split(".")))),
        "65": lambda v: wire.unsigned(int(v), 0x41), "66": lambda v: wire.unsigned(int(v), 0x42),
        "67": lambda v: wire.unsigned(int(v), 0x43), "70": lambda v: wire.unsigned(int(v), 0x46)}
END = b"\x82\x00"  # endOfMibView
GETNEXT = 0xA1


class Recording:
    """A .snmprec file as sorted OIDs and their encoded values; GET/GETNEXT/GETBULK answers, cached."""

    def __init__(self, text: str):
        rows = sorted((tuple(int(x) for x in o.split(".")), TAGS[t](v))
                      for o, t, v in (line.split("|", 2) for line in text.splitlines() if line))
        self.oids = [o for o, _ in rows]
        self.vbs = [wire.tlv(0x30, wire.tlv(0x06, wire.oid_body(o)) + v) for o, v in rows]
        self.cache: dict[tuple, tuple[bytes, int]] = {}

    def _next(self, oid: tuple, exact: bool) -> tuple[int, bytes]:
        i = bisect.bisect_left(self.oids, oid)
        if exact:
            return (i, self.vbs[i]) if i < len(self.oids) and self.oids[i] == oid else \
                (-1, wire.tlv(0x30, wire.tlv(0x06, wire.oid_body(oid)) + b"\x81\x00"))
        if i < len(self.oids) and self.oids[i] == oid:
            i += 1
        return (i, self.vbs[i]) if i < len(self.oids) else (-1, wire.tlv(0x30, wire.tlv(0x06, wire.oid_body(oid)) + END))

    def answer(self, tag: int, a: int, b: int, req: bytes, vs: int, ve: int) -> bytes:
        if tag not in (wire.GET, GETNEXT, wire.GETBULK):  # read-only: a SET or anything else is dropped
            raise wire.WireError(f"unsupported PDU 0x{tag:02x}")
        key = (tag, a, b, req[vs:ve])
        hit = self.cache.get(key)
        if hit is None:
            oids = [o for o, _ in wire.varbinds(req, vs, ve)]
            if tag == wire.GETBULK:
                head = [self._next(o, False)[1] for o in oids[:a]]
                rows, cur = [], [self._next(o, False) for o in oids[a:]]
                for _ in range(max(b, 0) if cur else 0):
                    rows.extend(v for _, v in cur)
                    if all(i < 0 for i, _ in cur) or len(rows) > 1000:
                        break
                    cur = [(i + 1, self.vbs[i + 1]) if 0 <= i < len(self.oids) - 1 else (-1, v) for i, v in cur]
                out = head + rows
            else:
                out = [self._next(o, tag == wire.GET)[1] for o in oids]
            hit = self.cache[key] = b"".join(out)
        return hit


def serve(config: str) -> None:
    """Answer every endpoint in the JSON ``config`` until killed."""
    cfg = json.loads(Path(config).read_text())
    engine_id = bytes.fromhex(cfg["engine_id"])
    keys = (wire.localized_key(cfg["auth_key"], engine_id), wire.privacy_key(cfg["priv_key"], engine_id))
    user = cfg["user"].encode()
    started = time.monotonic()
    recordings: dict[str, Recording] = {}

    def usm_report(m: "wire.V3", rid: int, reason: str, auth: bool) -> bytes:
        return wire.v3_message(m.msg_id, 0x01 if auth else 0x00, engine_id, 1, int(time.monotonic() - started),
                               m.user, report_scoped(engine_id, rid, reason), keys[0] if auth else None)

    def answer(data: bytes, rec: Recording, community: str | None) -> bytes | None:
        s, _ = wire.expect(data, 0, 0x30)
        version, i = wire.read_int(data, s)
        if version == 1:
            got, i = wire.read_octets(data, i)
            if community is None or got != community.encode():
                return None
            tag, rid, a, b, vs, ve = wire.read_pdu(data, i)
            return wire.v2c_message(got, wire.pdu(wire.RESPONSE, rid, 0, 0, rec.answer(tag, a, b, data, vs, ve)))
        if version != 3 or community is not None:
            return None
        m = wire.read_v3(data)
        if not m.flags & 1:  # discovery: tell the engine ID, boots and time
            buf, j, _ = wire.scoped_pdu(m, None)
            return usm_report(m, wire.read_pdu(buf, j)[1], "unknownEngineIDs", False)
        if m.user != user:
            return usm_report(m, 0, "unknownUserNames", False)
        if not wire.authentic(m, keys[0]):
            return usm_report(m, 0, "wrongDigests", False)
        buf, j, ctx = wire.scoped_pdu(m, keys[1])
        tag, rid, a, b, vs, ve = wire.read_pdu(buf, j)
        now = int(time.monotonic() - started)
        if m.engine_id != engine_id or m.boots != 1 or abs(m.time - now) > 150:
            return usm_report(m, rid, "notInTimeWindows", True)
        scoped = wire.tlv(0x30, wire.tlv(0x04, engine_id) + wire.tlv(0x04, ctx)
                          + wire.pdu(wire.RESPONSE, rid, 0, 0, rec.answer(tag, a, b, buf, vs, ve)))
        return wire.v3_message(m.msg_id, 0x03, engine_id, 1, now, user, scoped, *keys)

    class Endpoint(asyncio.DatagramProtocol):
        def __init__(self, rec: Recording, community: str | None):
            self.rec, self.community = rec, community

        def connection_made(self, transport):
            self.transport = transport

        def datagram_received(self, data, addr):
            try:
                out = answer(data, self.rec, self.community)
            except wire.WireError:
                return  # as an agent does with garbage: drop it
            if out:
                self.transport.sendto(out, addr)

    async def main():
        loop = asyncio.get_running_loop()
        for address, port, path, community in cfg["endpoints"]:
            if path not in recordings:
                recordings[path] = Recording(Path(path).read_text())
            await loop.create_datagram_endpoint(lambda r=recordings[path], c=community: Endpoint(r, c),
                                                local_addr=(address, port))
        await asyncio.Event().wait()

    asyncio.run(main())


if __name__ == "__main__":
    serve(sys.argv[1])
