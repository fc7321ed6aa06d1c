"""The lab's database monitoring role is set up with the lab's own generated password (no root)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from jinbao_netops import inventory
from jinbao_netops.collectors.db import prepare_lab
from jinbao_netops.errors import UsageError

INV = inventory.load(inventory.DEFAULT_INVENTORY)


class FakeLab:
    """Records what would run inside each node; answers like a node where every command succeeds."""

    name = "jinbao"

    def __init__(self, secrets):
        self._secrets, self.calls = secrets, []

    def secrets(self):
        return self._secrets

    def node(self, device):
        def exec(cmd, timeout=30):
            self.calls.append((device, cmd[-1]))
            return SimpleNamespace(returncode=0, stdout="", stderr="")
        return SimpleNamespace(exec=exec)


def test_every_database_gets_the_role_with_the_labs_password():
    lab = FakeLab({"NETOPS_DB_MONITOR_PASSWORD": "s3cret-from-the-lab"})
    rep = prepare_lab(INV, lab)
    dbs = sorted(f"{d}/{s}" for d, dev in INV.devices.items() for s in dev.services)
    assert rep["ok"] and sorted(rep["prepared"]) == dbs
    assert rep["env"] == {"NETOPS_DB_MONITOR_PASSWORD": "s3cret-from-the-lab"}
    assert all("s3cret-from-the-lab" in script and "netops_monitor" in script for _, script in lab.calls)
    assert not any("SUPERUSER" in script and "NOSUPERUSER" not in script for _, script in lab.calls)


def test_a_lab_without_the_password_is_told_to_rebuild():
    with pytest.raises(UsageError, match="NETOPS_DB_MONITOR_PASSWORD.*lab down && netops lab up"):
        prepare_lab(INV, FakeLab({}))
