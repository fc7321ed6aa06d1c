"""Simulated SNMP agents for tests, benchmarks and rehearsals: recorded data (.snmprec) for routers of
any port count, with Huawei/H3C entity MIBs, served by snmpsim's full responder on loopback addresses.

One responder process serves many agents, each on its own UDP endpoint with its own recording
``<name>.snmprec``: snmpsim selects it by the SNMPv3 context name (the agent's name) or, for a v2c
agent, by its community.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from inventory.platforms import PLATFORMS

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


def snmprec(a: Agent) -> str:
    """The agent's recorded data, sorted by OID as snmpsim requires."""
    plat = PLATFORMS[a.platform]
    rec: list[tuple[tuple[int, ...], str, str]] = []

    def put(oid: str, tag: int, value) -> None:
        rec.append((tuple(int(x) for x in oid.split(".")), str(tag), str(value)))

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
    if plat.snmp_cpu_oid:  # vendor entity MIB: a chassis (no CPU) and two boards
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
    rec.sort()
    return "".join(f"{'.'.join(map(str, o))}|{t}|{v}\n" for o, t, v in rec)


class Responder:
    """snmpsim-command-responder serving ``agents`` (SNMPv3 user/keys shared, v2c per agent)."""

    def __init__(self, agents: list[Agent], user: str = "netops", auth_key: str = "authkey-sim-1",
                 priv_key: str = "privkey-sim-1", workdir: str | None = None):
        self.agents, self.user, self.auth_key, self.priv_key = agents, user, auth_key, priv_key
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
        exe = Path(sys.executable).with_name("snmpsim-command-responder")
        # engine options start with --v3-engine-id; the data dir and users after it belong to that engine
        args = [str(exe), f"--v3-engine-id={self.engine_id}", f"--data-dir={self.dir / 'data'}", f"--cache-dir={self.dir / 'cache'}",
                "--force-index-rebuild", "--logging-method=null", "--max-var-binds=1000",
                f"--v3-user={self.user}", f"--v3-auth-key={self.auth_key}", "--v3-auth-proto=SHA",
                f"--v3-priv-key={self.priv_key}", "--v3-priv-proto=AES"]
        argfile = self.dir / "endpoints"  # thousands of endpoints do not fit a command line
        argfile.write_text("".join(f"--agent-udpv4-endpoint={a.address}:{a.port}\n" for a in self.live()))
        self.proc = subprocess.Popen([*args, f"--args-from-file={argfile}"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True,
                                     # as root snmpsim would drop to nobody, who cannot read this venv's Python
                                     env={**os.environ, "SNMPSIM_ALLOW_ROOT": "true"})
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        """Until the last agent answers a v3 GET (the responder binds endpoints one by one)."""
        import asyncio

        from .snmp import SYS_NAME, Poller, Stats

        last = self.live()[-1] if self.live() else None
        if last is None:
            return
        t = self.target(last, timeout=0.5, retries=0)
        end = time.monotonic() + timeout

        async def probe() -> bool:
            p = Poller()
            try:
                await p._request(t, Stats(), asyncio.Semaphore(1), [SYS_NAME], bulk=False)
                return True
            except Exception:
                return False
            finally:
                p.engine.close_dispatcher()

        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"snmpsim exited with {self.proc.returncode}")
            if asyncio.run(probe()):
                return
            time.sleep(0.2)
        raise RuntimeError("snmpsim did not answer in time")

    def target(self, a: Agent, **kw):
        from .snmp import Target

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
