"""The live lab for the tests in this directory: root, real nodes, never skipped.

The session starts from a clean machine (``lab down``), records what the host looks like,
brings the embedded default's lab up once for every test, and the last test takes it down
and compares the host with that record.
"""
from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MINI = REPO / "tests/fixtures/lab-mini"


def netops(*args: str, env: dict | None = None, timeout: float = 900, check: bool = False) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k != "NETOPS_INVENTORY"}
    p = subprocess.run([sys.executable, "-m", "jinbao_netops.cli", *args], cwd=REPO, env={**base, **(env or {})},
                       capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"netops {' '.join(args)} exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
    return p


def rebuild_lab(lab: dict) -> None:
    """The default lab as `lab up` builds it (a test that needs fresh nodes after others changed them);
    the session's record of it (``lab["env"]``: its freshly generated credentials) follows."""
    netops("monitor", "web", "--stop", "--listen", "127.0.0.1:8470", check=False)
    netops("monitor", "down", check=True)
    netops("lab", "down", check=True)
    lab["up"] = json.loads(netops("lab", "up", "--json", check=True).stdout)
    lab["env"].clear()
    lab["env"].update(json.loads(netops("lab", "env", "--json", check=True).stdout))


@pytest.fixture
def fresh(lab):
    """Nodes as the lab built them: if an earlier test hardened them (a server carries the hardening's
    sshd drop-in) or set up the log store (its TLS forwarding), the lab is rebuilt."""
    r = netops("lab", "exec", "huadu-srv1", "--", "sh", "-c",
               "test -e /etc/ssh/sshd_config.d/10-dengbao.conf || test -e /etc/rsyslog.d/90-dengbao-forward.conf")
    if r.returncode == 0:
        rebuild_lab(lab)


def until(what: str, fn, timeout: float):
    """Poll ``fn`` every second until it returns something truthy; fail naming ``what`` and the last value."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            last = fn()
        except OSError as e:
            last = e
        if last and not isinstance(last, Exception):
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s (last: {last!r})")
        time.sleep(1)


def host_snapshot() -> dict:
    """What the lab must leave as it found it on the host."""
    def sh(*cmd):
        return subprocess.run(cmd, capture_output=True, text=True).stdout

    cgroups = sorted(str(p) for h in ("/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified", "/sys/fs/cgroup")
                     for p in Path(h).glob("*") if p.is_dir())
    return {
        "routes": sh("ip", "-4", "route", "show", "table", "all"),
        "links": sorted(line.split()[0] for line in sh("ip", "-br", "link").splitlines()),
        "addresses": sh("ip", "-4", "-br", "addr"),
        "netns": sh("ip", "netns", "list"),
        "mounts": sorted(line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()),
        "cgroups": cgroups,
        "nft": sh("nft", "list", "ruleset") if Path("/usr/sbin/nft").exists() else "",
        "sysctl": {k: Path("/proc/sys", k).read_text() for k in
                   ("net/ipv4/ip_forward", "net/ipv4/conf/all/rp_filter", "fs/inotify/max_user_instances")},
        "run_systemd": sorted(p.name for p in Path("/run/systemd").glob("*")) if Path("/run/systemd").exists() else [],
    }


@pytest.fixture(scope="session")
def lab():
    if os.geteuid() != 0:
        pytest.fail("lab tests need root (run the README's test command as root; `-m 'not lab'` for unit tests only)")
    # one lab test session at a time on this machine: they all take the default lab down and up
    from jinbao_netops.lab.runtime import state_root

    state_root().mkdir(parents=True, exist_ok=True)
    lock = open(state_root() / ".test-session.lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    # what the README's main job leaves running (health map, monitoring stack, lab) goes first
    netops("monitor", "web", "--stop", check=False)
    netops("monitor", "down", check=False)
    netops("lab", "down", check=True)
    before = host_snapshot()
    up = netops("lab", "up", "--json", check=True)
    env = json.loads(netops("lab", "env", "--json", check=True).stdout)
    yield {"up": json.loads(up.stdout), "env": env, "before": before}
    lock.close()
