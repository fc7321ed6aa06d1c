#!/usr/bin/python3
"""netops-linktraps: the lab routers' linkDown/linkUp (IF-MIB, RFC 2863) within a moment of a change.

It follows the kernel's link events (``ip -o monitor link``) and, when a data interface starts or stops running,
sends the trap through net-snmp's ``snmptrap`` to the node's trap receiver, in the SNMP version the node is
polled with: an SNMPv3 authPriv trap, or a v2c inform (acknowledged). Varbinds: ifIndex, ifAdminStatus and
ifOperStatus as IF-MIB's notifications require, and ifDescr (the interface's name, as snmpd reports it), which
names the interface in the receiver's alert.

Why not snmpd's own DisMan ``monitor``: net-snmp 5.9 runs its internal queries at authNoPriv whatever
``iquerySecLevel`` says, so the node needed a second SNMPv3 user without privacy, which the audit's
net-snmpv3 check rightly refuses. And a poll every second is still a poll; the kernel tells of a change when it happens.

What it sends:

- for interfaces other than the loopback and those named by ``--ignore`` (the lab's management veth);
- on a change of running (the kernel's operstate UP or UNKNOWN, its IFF_RUNNING) to not
  running — linkDown — and back — linkUp; each change, nothing debounced. The state each interface had when the
  watcher started (``ip -o link show``) is the first one compared; an interface that goes away is forgotten;
- ifOperStatus is the kernel's operstate as RFC 2863 numbers it (the kernel names them after RFC 2863).

As an SNMPv3 notification originator it is an authoritative engine of its own (RFC 3414 2.2): an engine ID made
at its first start and its boots, counted at every start, kept in ``--state``; its engine time is the seconds
since it started (from 1: snmptrap takes ``-Z boots,0`` as "unset"). So each trap is timely for the receiver,
which follows a sender's boots and time (RFC 3414 3.2.7), also after a restart.

Credentials are never in an argument, here or of snmptrap: snmptrap reads its user, protocols and passphrases
(or the v2c community) from the root-only ``snmp.conf`` in ``$SNMPCONFPATH``, which the lab writes when it
prepares the node. The node's python3 runs this file as it is (standard library only); the lab installs it as
/usr/local/sbin/netops-linktraps, run by netops-linktraps.service (lab/plan.py ``link_trap_files``).
"""
from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

LINK_DOWN, LINK_UP = "1.3.6.1.6.3.1.1.5.3", "1.3.6.1.6.3.1.1.5.4"
IF_INDEX, IF_DESCR, IF_ADMIN_STATUS, IF_OPER_STATUS = (f"1.3.6.1.2.1.2.2.1.{c}" for c in (1, 2, 7, 8))
OPER_STATUS = {"UP": 1, "DOWN": 2, "TESTING": 3, "UNKNOWN": 4, "DORMANT": 5, "NOTPRESENT": 6, "LOWERLAYERDOWN": 7}
RUNNING = ("UP", "UNKNOWN")   # the kernel's IFF_RUNNING
NETSNMP_ENGINE = "80001f8805"  # RFC 3411 SnmpEngineID: net-snmp's enterprise (8072), format 5: octets (8 random)
# "3: eth1@if7: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP group default \    link/ether …";
# "Deleted 3: …" when it goes. Only the head is read: the name, the flags, the first "state".
LINE = re.compile(r"^(Deleted )?(\d+): ([^\s:@]+)(?:@\S*)?: <([^>]*)> .*? state ([A-Z]+) ")


def parse(line: str) -> tuple[bool, int, str, bool, str] | None:
    """(deleted, ifindex, name, administratively up, operstate) of one line of ``ip -o link``, or None."""
    m = LINE.match(line)
    if m is None:
        return None
    flags = m.group(4).split(",")
    if "LOOPBACK" in flags:
        return None
    return bool(m.group(1)), int(m.group(2)), m.group(3), "UP" in flags, m.group(5)


def varbinds(index: int, name: str, admin_up: bool, state: str) -> list[str]:
    """snmptrap's OID/type/value triplets of a link notification on ``index``."""
    return [f"{IF_INDEX}.{index}", "i", str(index), f"{IF_ADMIN_STATUS}.{index}", "i", "1" if admin_up else "2",
            f"{IF_OPER_STATUS}.{index}", "i", str(OPER_STATUS.get(state, 4)), f"{IF_DESCR}.{index}", "s", name]


class Engine:
    """This sender as an SNMPv3 engine: its ID and boots from ``state`` (a boot counted now), its time."""

    def __init__(self, state: Path):
        path = state / "engine"
        try:
            engine_id, boots = path.read_text().split()
            self.engine_id, self.boots = engine_id, int(boots) + 1
        except (FileNotFoundError, ValueError):
            self.engine_id, self.boots = NETSNMP_ENGINE + os.urandom(8).hex(), 1
        tmp = path.with_name(".engine.tmp")
        tmp.write_text(f"{self.engine_id} {self.boots}\n")
        tmp.replace(path)
        self.started = time.monotonic()

    def options(self) -> list[str]:
        return ["-e", "0x" + self.engine_id, "-Z", f"{self.boots},{int(time.monotonic() - self.started) + 1}"]


class Watcher:
    """What each line of ``ip -o link`` output means: the snmptrap command line of the notification it calls for,
    if any. ``version``: "v3" (an authPriv trap from ``engine``) or "v2c" (an inform)."""

    def __init__(self, sink: str, version: str, ignore: set[str], engine: Engine | None = None):
        self.sink, self.version, self.ignore, self.engine = sink, version, ignore, engine
        self.running: dict[int, bool] = {}

    def seen(self, line: str) -> tuple[str, list[str]] | None:
        """(what, snmptrap command line) of the notification ``line`` calls for, or None."""
        link = parse(line)
        if link is None or link[2] in self.ignore:
            return None
        deleted, index, name, admin_up, state = link
        if deleted:
            self.running.pop(index, None)
            return None
        was, now = self.running.get(index), state in RUNNING
        self.running[index] = now
        if was is None or was == now:
            return None
        version = ["-v", "3", "-l", "authPriv", *self.engine.options()] if self.version == "v3" else ["-v", "2c", "-Ci"]
        return (f"{'linkUp' if now else 'linkDown'} {name} (ifIndex {index}, {state}) to {self.sink}",
                ["snmptrap", *version, self.sink, "", LINK_UP if now else LINK_DOWN, *varbinds(index, name, admin_up, state)])


def send(what: str, cmd: list[str]) -> None:
    """Run snmptrap; what was sent, or why not, is one line in the journal, and the watcher goes on."""
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        print(f"{what}: snmptrap gave no answer within 30 s", file=sys.stderr, flush=True)
        return
    if r.returncode != 0:
        print(f"{what}: snmptrap failed: {(r.stderr.strip().splitlines() or [f'exit {r.returncode}'])[-1]}",
              file=sys.stderr, flush=True)
    else:
        print(what, flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="netops-linktraps", description=__doc__.split("\n\n")[0])
    ap.add_argument("--sink", required=True, help="the trap receiver, HOST:PORT")
    ap.add_argument("--version", choices=("v3", "v2c"), required=True, help="v3: authPriv traps; v2c: informs")
    ap.add_argument("--ignore", action="append", default=[], help="an interface that is not a data interface")
    ap.add_argument("--state", type=Path, required=True, help="directory of the SNMPv3 engine's ID and boots")
    a = ap.parse_args(argv)
    watcher = Watcher(a.sink, a.version, set(a.ignore), Engine(a.state) if a.version == "v3" else None)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # systemctl stop: end the monitor too (finally)
    monitor = subprocess.Popen(["ip", "-o", "monitor", "link"], stdout=subprocess.PIPE, text=True)
    try:  # the monitor starts first: a change while the state is read is compared with it rather than missed
        for line in subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout.splitlines():
            watcher.seen(line)
        for line in monitor.stdout:
            if trap := watcher.seen(line):
                send(*trap)
    finally:
        monitor.terminate()
    return monitor.wait()


if __name__ == "__main__":
    sys.exit(main())
