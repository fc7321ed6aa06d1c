"""SSH health collection with netmiko: what SNMP does not give (OSPF neighbour states, failed units…).

A bounded thread pool, one session per device running every command the platform table lists for it
(``Platform.ssh_health``), each output parsed by the named parser. Host keys are checked against the
known_hosts the suite's SSH tools share (``UserKnownHostsFile`` in ANSIBLE_SSH_COMMON_ARGS, as
``netops lab env`` sets it), else the user's own.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from inventory.platforms import PLATFORMS

from inventory.access import known_hosts, secret

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


def collect(t: SshTarget) -> dict:
    from netmiko import ConnectHandler

    start = time.monotonic()
    rec = {"device": t.device, **t.labels, "platform": t.platform}
    plat = PLATFORMS[t.platform]
    kh = known_hosts()
    try:
        conn = ConnectHandler(device_type=plat.netmiko_device_type, host=t.address, port=t.port, username=t.username,
                              key_file=t.key_file, use_keys=bool(t.key_file), password=t.password or "",
                              allow_agent=False, ssh_strict=True, system_host_keys=kh is None,
                              alt_host_keys=kh is not None, alt_key_file=kh or "",
                              conn_timeout=t.timeout, auth_timeout=t.timeout, banner_timeout=t.timeout,
                              fast_cli=True)
        try:
            if plat.paging_off:
                conn.send_command(plat.paging_off, read_timeout=t.timeout)
            outputs = {cmd: conn.send_command(cmd, read_timeout=t.timeout) for cmd, _ in plat.ssh_health}
        finally:
            conn.disconnect()
        rec.update(parse(t.platform, outputs), ok=True, error=None)
    except Exception as e:  # any transport/auth failure: this device only
        rec.update(ok=False, error=f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0]}")
    rec["duration_s"] = round(time.monotonic() - start, 3)
    return rec


def collect_all(ts: list[SshTarget], workers: int = 32, on_done=None) -> list[dict]:
    def one(t):
        r = collect(t)
        if on_done:
            on_done(r)
        return r

    if not ts:
        return []
    with ThreadPoolExecutor(min(workers, len(ts))) as pool:
        return list(pool.map(one, ts))
