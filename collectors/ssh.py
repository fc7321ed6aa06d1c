"""SSH health collection: what SNMP does not give (OSPF neighbour states, failed units…).

A bounded thread pool, one session per device (from the access layer, which picks an SSH exec or an
interactive vendor CLI from the platform table) running every command the platform table lists for
it (``Platform.ssh_health``), each output parsed by the named parser. Sessions stay in the
``Access`` the caller passes: ``collect serve`` keeps one for the life of the process, so after the
first round a device costs its commands only, not a key exchange and login each round; a kept
session that died (device reboot, idle timeout) is replaced by a fresh login in the same round.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from jinbao_netops.access import Access
from jinbao_netops.errors import DeviceError
from jinbao_netops.inventory.platforms import PLATFORMS

from .parsers import parse_outputs
from .targets import labels


@dataclass
class SshTarget:
    device: str
    platform: str
    labels: dict
    timeout: float = 20.0


def targets(inv, devices: list[str], timeout: float = 20.0) -> list[SshTarget]:
    return [SshTarget(d, inv.devices[d].platform, labels(inv, d), timeout)
            for d in devices if inv.devices[d].platform_info.ssh_health and "ssh" in inv.devices[d].access]


def parse(platform: str, outputs: dict[str, str]) -> dict:
    return parse_outputs(PLATFORMS[platform].ssh_health, outputs)


def collect(t: SshTarget, access: Access) -> dict:
    start = time.monotonic()
    rec = {"device": t.device, **t.labels, "platform": t.platform}
    commands = [cmd for cmd, _ in PLATFORMS[t.platform].ssh_health]
    reused = access.kept(t.device)
    try:
        try:
            s = access.session(t.device)
            outputs = {cmd: s.run(cmd, check=False, timeout=t.timeout) for cmd in commands}
        except DeviceError:
            if not reused:
                raise
            access.discard(t.device)  # the kept session died between rounds: log in again
            reused = False
            s = access.session(t.device)
            outputs = {cmd: s.run(cmd, check=False, timeout=t.timeout) for cmd in commands}
        rec.update(parse(t.platform, outputs), ok=True, error=None)
    except DeviceError as e:  # any transport/auth/host-key failure: this device only
        access.discard(t.device)
        rec.update(ok=False, error=e.detail)
    rec["session_reused"] = reused
    rec["duration_s"] = round(time.monotonic() - start, 3)
    return rec


def collect_all(ts: list[SshTarget], access: Access, workers: int = 32, on_done=None) -> list[dict]:
    def one(t):
        r = collect(t, access)
        if on_done:
            on_done(r)
        return r

    if not ts:
        return []
    with ThreadPoolExecutor(min(workers, len(ts))) as pool:
        return list(pool.map(one, ts))
