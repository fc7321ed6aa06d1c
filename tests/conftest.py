"""Shared helpers for the unit tests: run the CLI and the .venv's Ansible as real subprocesses."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


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
