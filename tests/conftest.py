"""Shared helpers for the unit tests: run the CLI and the .venv's Ansible as real subprocesses."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import settings

# a property test asserts behaviour, never speed: Hypothesis' default 200 ms deadline per example made a
# loaded machine fail them (speed goals are benchmarks under bench/)
settings.register_profile("suite", deadline=None)
settings.load_profile("suite")

REPO = Path(__file__).resolve().parent.parent


def pytest_xdist_make_scheduler(config, log):
    """Under pytest-xdist (pyproject's addopts): the lab tests are one unit of work, run in file order by one
    worker on the session's one lab, while the other workers take the unit tests one by one. (xdist's own
    ``loadgroup`` renames node IDs, which pytest 9 no longer allows.)"""
    from xdist.scheduler import LoadScopeScheduling

    class LabApart(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "lab" if nodeid.startswith("tests/lab/") else nodeid

    return LabApart(config, log)


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without NETOPS_INVENTORY (so the embedded default applies) plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k != "NETOPS_INVENTORY"}
    env.update(extra)
    return env


@pytest.fixture
def netops():
    """Run ``python -m jinbao_netops.cli ARGS`` from the repo root; returns the CompletedProcess (text)."""

    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "jinbao_netops.cli", *args], cwd=REPO, env=env or clean_env(),
                              capture_output=True, text=True, timeout=120)

    return run


# A device the suite reaches by SNMP alone (a v2c-only switch): its profile holds a community and nothing
# else, so no SSH login could be built for it.
SNMP_ONLY_PROFILE = {"username": "netops", "snmp": {"community": {"env": "NETOPS_SNMP_COMMUNITY"}}}
SNMP_ONLY = {"credentials": "snmp-only", "access": ["snmp"], "snmp_version": "v2c"}


def snmp_only_yaml(raw: dict, *devices: str) -> dict:
    """An inventory file's YAML (as loaded) with ``devices`` declaring ``access: [snmp]``."""
    raw["credentials"]["snmp-only"] = SNMP_ONLY_PROFILE
    for d in devices:
        raw["devices"][d].update(SNMP_ONLY)
    return raw


def snmp_only(inv, *devices: str):
    """A copy of a loaded inventory with ``devices`` declaring ``access: [snmp]``."""
    import copy

    from jinbao_netops.inventory.model import Credentials

    inv = copy.deepcopy(inv)
    inv.credentials["snmp-only"] = Credentials.model_validate({"id": "snmp-only", **SNMP_ONLY_PROFILE})
    for d in devices:
        inv.devices[d] = inv.devices[d].model_copy(update=SNMP_ONLY)
    return inv
