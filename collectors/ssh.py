"""SSH health collection with netmiko: what SNMP does not give (OSPF neighbour states, failed units…).

A bounded thread pool, one session per device running every command the platform table lists for it
(``Platform.ssh_health``), each output parsed by the named parser; ``Sessions`` keeps them open from
one round to the next where a collector runs rounds (``collect serve``). Host keys are checked against the
known_hosts the suite's SSH tools share (``UserKnownHostsFile`` in ANSIBLE_SSH_COMMON_ARGS, as
``netops lab env`` sets it), else the user's own.
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from jinbao_netops.inventory.platforms import PLATFORMS

from jinbao_netops.inventory.access import known_hosts, secret

from .parsers import PARSERS

from .targets import labels


@dataclass
class SshTarget:
    device: str
    address: str
    platform: str
    username: str
    key_file: str | None
    password: str | None
    labels: dict
    timeout: float = 20.0
    port: int = 22


def targets(inv, devices: list[str], timeout: float = 20.0) -> list[SshTarget]:
    out = []
    for d in devices:
        dev = inv.devices[d]
        if not dev.platform_info.ssh_health:
            continue
        cred = inv.credentials[dev.credentials]
        key = secret(inv, dev.credentials, "ssh_key", cred.ssh_key) if cred.ssh_key else None
        pw = secret(inv, dev.credentials, "password", cred.password) if cred.password and not key else None
        out.append(SshTarget(d, str(dev.management), dev.platform, cred.username, key, pw, labels(inv, d), timeout))
    return out


def parse(platform: str, outputs: dict[str, str]) -> dict:
    rec: dict = {}
    for command, parser in PLATFORMS[platform].ssh_health:
        if command in outputs:
            rec.update(PARSERS[parser](outputs[command]))
    return rec


class Sessions:
    """Sessions kept open between rounds (``collect serve``): after the first round a device costs its
    commands only, not a key exchange and login each round. A kept session that died (device reboot,
    idle timeout) is replaced by a fresh login in the same round."""

    def __init__(self):
        self._open: dict[str, object] = {}
        self._lock = threading.Lock()

    def take(self, device: str):
        with self._lock:
            return self._open.pop(device, None)

    def give(self, device: str, conn) -> None:
        with self._lock:  # a round that outlived its deadline may hand one back late: keep one per device
            old, self._open[device] = self._open.get(device), conn
        if old is not None:
            _hang_up(old)

    def close(self) -> None:
        with self._lock:
            conns, self._open = list(self._open.values()), {}
        for conn in conns:
            _hang_up(conn)


def _hang_up(conn) -> None:
    try:
        conn.disconnect()
    except Exception:  # already gone: nothing left to release
        pass


def _login(t: SshTarget, plat):
    from netmiko import ConnectHandler

    kh = known_hosts()
    conn = ConnectHandler(device_type=plat.netmiko_device_type, host=t.address, port=t.port, username=t.username,
                          key_file=t.key_file, use_keys=bool(t.key_file), password=t.password or "",
                          allow_agent=False, ssh_strict=True, system_host_keys=kh is None,
                          alt_host_keys=kh is not None, alt_key_file=kh or "",
                          conn_timeout=t.timeout, auth_timeout=t.timeout, banner_timeout=t.timeout,
                          fast_cli=True)
    try:
        if plat.paging_off:
            conn.send_command(plat.paging_off, read_timeout=t.timeout)
    except Exception:
        _hang_up(conn)
        raise
    return conn


def collect(t: SshTarget, sessions: Sessions | None = None) -> dict:
    start = time.monotonic()
    rec = {"device": t.device, **t.labels, "platform": t.platform}
    plat = PLATFORMS[t.platform]

    def run(conn) -> dict:
        return {cmd: conn.send_command(cmd, read_timeout=t.timeout) for cmd, _ in plat.ssh_health}

    conn = sessions.take(t.device) if sessions else None
    rec["session_reused"] = False
    try:
        outputs = None
        if conn is not None:
            try:
                outputs = run(conn)
                rec["session_reused"] = True
            except Exception:  # the kept session died: log in again below
                _hang_up(conn)
                conn = None
        if conn is None:
            conn = _login(t, plat)
            outputs = run(conn)
        rec.update(parse(t.platform, outputs), ok=True, error=None)
    except Exception as e:  # any transport/auth failure: this device only
        rec.update(ok=False, error=f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0]}")
    if conn is not None:
        if sessions and rec["ok"]:
            sessions.give(t.device, conn)
        else:
            _hang_up(conn)
    rec["duration_s"] = round(time.monotonic() - start, 3)
    return rec


def collect_all(ts: list[SshTarget], workers: int = 32, on_done=None, sessions: Sessions | None = None) -> list[dict]:
    def one(t):
        r = collect(t, sessions)
        if on_done:
            on_done(r)
        return r

    if not ts:
        return []
    with ThreadPoolExecutor(min(workers, len(ts))) as pool:
        return list(pool.map(one, ts))
