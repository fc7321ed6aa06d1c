"""Runs last in the lab session (pytest orders files by name): take the lab down and prove the
host is exactly as the session found it."""
from __future__ import annotations

import json
import subprocess

import pytest

from jinbao_netops.lab.runtime import Lab

from .conftest import host_snapshot, netops

pytestmark = pytest.mark.lab


def test_down_leaves_nothing_behind(lab):
    # a host process left in a node's namespace (as `monitor up` leaves its collectors) would keep
    # the namespace and its veths alive: down ends it too
    guest = subprocess.Popen(["ip", "netns", "exec", "jb.jinbao.gd-mon1", "sleep", "600"])
    r = netops("lab", "down", "--json")
    assert r.returncode == 0, r.stderr
    assert guest.wait(10) != 0
    assert Lab("jinbao").leftovers() == []
    assert host_snapshot() == lab["before"]
    assert json.loads(netops("lab", "status", "--json").stdout)["up"] is False
