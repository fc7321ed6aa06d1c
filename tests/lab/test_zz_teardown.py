"""Runs last in the lab session (pytest orders files by name): take the lab down and prove the
host is exactly as the session found it."""
from __future__ import annotations

import json

import pytest

from topology.lab.runtime import Lab

from .conftest import host_snapshot, netops

pytestmark = pytest.mark.lab


def test_down_leaves_nothing_behind(lab):
    r = netops("lab", "down", "--json")
    assert r.returncode == 0, r.stderr
    assert Lab("jinbao").leftovers() == []
    assert host_snapshot() == lab["before"]
    assert json.loads(netops("lab", "status", "--json").stdout)["up"] is False
