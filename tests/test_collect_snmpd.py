"""The collector against Debian's own net-snmp agent, not only against pysnmp's (snmpsim shares pysnmp's
code): an snmpd the test starts on a loopback port, with a private persistent directory, polled with every
SHA × AES combination the inventory can name (SHA, SHA-224…512 × AES-128/192/256 and the Cisco AES-192-C/
AES-256-C), in net-snmp's own names, which are the inventory's."""
from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
from typing import get_args

import pytest

from jinbao_netops.collectors.snmp import Poller, Target
from jinbao_netops.inventory.model import SnmpCredentials

SNMPD = "/usr/sbin/snmpd"   # install.sh installs it (package snmpd) and leaves its own daemon disabled
ADDRESS = "127.0.6.1"
AUTH_KEY, PRIV_KEY = "authkey-interop-1", "privkey-interop-1"
# every combination the inventory's model accepts
USERS = {(a, p): f"u-{a}-{p}".lower() for a in get_args(SnmpCredentials.model_fields["auth_protocol"].annotation)
         for p in get_args(SnmpCredentials.model_fields["priv_protocol"].annotation)}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((ADDRESS, 0))
        return s.getsockname()[1]


def target(port: int, auth: str, priv: str, user: str | None = None, **kw) -> Target:
    return Target("interop", ADDRESS, platform="debian", port=port, user=user or USERS[auth, priv], auth_key=AUTH_KEY,
                  priv_key=PRIV_KEY, auth_protocol=auth, priv_protocol=priv, **kw)


def poll(t: Target):
    async def main():
        p = Poller()
        try:
            return await p.poll(t)
        finally:
            p.close()

    return asyncio.run(main())


@pytest.fixture(scope="module")
def snmpd(tmp_path_factory):
    """snmpd in the foreground on ADDRESS:port, reading only its own configuration (-C -c), without the SMUX
    listener (-I -smux: TCP 199 on the host), its persistent state (engine ID, localized keys) in a directory of
    its own; stopped by its pid. Root is not needed."""
    d = tmp_path_factory.mktemp("snmpd")
    (d / "persist").mkdir()
    (d / "mibs").mkdir()
    conf = d / "snmpd.conf"
    conf.write_text("sysName netops-interop\n" + "".join(
        f'createUser {u} {a} "{AUTH_KEY}" {p} "{PRIV_KEY}"\nrouser {u} priv\n' for (a, p), u in USERS.items()))
    port = free_port()
    with open(d / "snmpd.log", "w") as log:
        proc = subprocess.Popen([SNMPD, "-f", "-Lo", "-C", "-I", "-smux", "-c", str(conf), f"udp:{ADDRESS}:{port}"],
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, "SNMP_PERSISTENT_DIR": str(d / "persist"), "MIBS": "",
                                     "MIBDIRS": str(d / "mibs")})
    try:
        probe = target(port, "SHA", "AES", timeout=0.5, retries=0)  # each probe waits up to its timeout
        end = time.monotonic() + 30
        while time.monotonic() < end and proc.poll() is None:
            if poll(probe).ok:
                break
        else:
            raise RuntimeError(f"snmpd did not answer: {(d / 'snmpd.log').read_text()[-2000:]}")
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize(("auth", "priv"), list(USERS), ids=[f"{a}-{p}" for a, p in USERS])
def test_every_usm_protocol_against_net_snmp(snmpd, auth, priv):
    res = poll(target(snmpd, auth, priv, timeout=2, retries=1, deadline=30))
    assert res.ok, res.error
    assert res.system["name"] == "netops-interop" and res.system["object_id"].startswith("1.3.6.1.4.1.8072.")
    lo = [i for i in res.interfaces.values() if i["name"] == "lo"]
    assert len(lo) == 1 and lo[0]["oper_status"] == "up" and lo[0]["counters"]["in_octets"] >= 0
    assert res.stats.timeouts == 0 and res.stats.dropped == {}


def test_standard_and_cisco_key_extensions_are_told_apart(snmpd):
    """Where the authentication hash is shorter than the AES key (SHA with AES-192/256, SHA-224 with AES-256)
    the two extensions give different keys: net-snmp cannot decrypt a request in the other one and does not
    answer it (the same user with its own extension answers: test_every_usm_protocol_against_net_snmp)."""
    for auth, priv, other in (("SHA", "AES-256", "AES-256-C"), ("SHA", "AES-192-C", "AES-192"),
                              ("SHA-224", "AES-256-C", "AES-256")):
        res = poll(target(snmpd, auth, other, user=USERS[auth, priv], timeout=1, retries=0, deadline=10))
        assert not res.ok and res.error == "no response after 1 attempts of 1 s", (auth, priv, res.error)

