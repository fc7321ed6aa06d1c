"""Runs last in the lab session (pytest orders files by name): take the lab down and prove the
host is exactly as the session found it."""
from __future__ import annotations

import json
import subprocess

import pytest

from jinbao_netops.lab.plan import host_veth
from jinbao_netops.lab.runtime import Lab

from .conftest import host_snapshot, netops

pytestmark = pytest.mark.lab


def test_down_leaves_nothing_behind(lab, tmp_path):
    # a host process left in a node's namespace (as `monitor up` leaves its collectors) would keep
    # the namespace and its veths alive: down ends it too
    guest = subprocess.Popen(["ip", "netns", "exec", "jb.jinbao.gd-mon1", "sleep", "600"])
    # a namespace the kernel keeps after `ip netns del` (held here by a bind mount of its handle; seen held with no
    # process in it after the failover drill): its management veth must go all the same, or the next `lab up` fails
    held = tmp_path / "netns-gd-db1"
    held.touch()
    subprocess.run(["mount", "--bind", "/run/netns/jb.jinbao.gd-db1", str(held)], check=True)
    try:
        r = netops("lab", "down", "--json")
        assert r.returncode == 0, r.stderr
        assert guest.wait(10) != 0
        assert subprocess.run(["ip", "link", "show", host_veth("jinbao", "gd-db1")], capture_output=True).returncode != 0
    finally:
        subprocess.run(["umount", str(held)], check=True)
    assert Lab("jinbao").leftovers() == []
    assert host_snapshot() == lab["before"]
    assert json.loads(netops("lab", "status", "--json").stdout)["up"] is False
