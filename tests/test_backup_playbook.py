"""playbooks/backup.yml: lint-clean, aimed at the provinces' centre backup stores, and every schedule
in backup/policy.yml is a calendar expression systemd accepts."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, clean_env

from jinbao_netops.backup.jobs import policy

BIN = Path(sys.executable).parent


def test_backup_playbook_is_lint_clean():
    r = subprocess.run([str(BIN / "ansible-lint"), "backup.yml"], cwd=REPO / "playbooks", env=clean_env(),
                       capture_output=True, text=True, timeout=600, check=False)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]


def test_the_timers_go_to_each_provinces_centre_store_only():
    r = subprocess.run([str(BIN / "ansible-playbook"), "--list-hosts", "playbooks/backup.yml"], cwd=REPO,
                       env=clean_env(), capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    hosts = sorted(line.strip() for line in r.stdout.split("hosts (", 1)[1].splitlines()[1:] if line.strip())
    assert hosts == ["gd-bak1", "sc-bak1"]  # not the DR stores, which only receive copies


@pytest.mark.parametrize("cls", ["configs", "files", "databases"])
def test_every_asset_class_has_a_valid_oncalendar(cls):
    spec = policy()["schedule"][cls]
    r = subprocess.run(["systemd-analyze", "calendar", spec], capture_output=True, text=True, check=False)
    assert r.returncode == 0 and "Next elapse" in r.stdout, r.stdout + r.stderr
