"""Provincial backup against the live lab: router configs into git on the province's backup store."""
from __future__ import annotations

import json

import pytest

from .conftest import netops

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def env(lab, tmp_path_factory):
    return {**lab["env"], "NETOPS_BACKUP_STATE": str(tmp_path_factory.mktemp("backup-state"))}


def store_log(env) -> list[str]:
    r = netops("lab", "exec", "gd-bak1", "--", "git", "-c", "safe.directory=*", "-C", "/srv/netops/configs.git",
               "log", "--format=%H", "main", check=True)
    return r.stdout.split()


def configs(env, scope="guangdong") -> dict:
    r = netops("backup", "run", "--kind", "configs", "--scope", scope, "--json", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)["configs"]


def vtysh(node, *lines):
    args = [a for line in ("configure terminal", *lines) for a in ("-c", line)]
    netops("lab", "exec", node, "--", "vtysh", *args, check=True)


def test_router_config_change_is_one_commit_with_its_diff(env):
    first = configs(env)
    assert first["failed"] == 0 and first["ok"] == 8  # guangdong's routers, DR site's included
    base = store_log(env)
    assert base[0] == first["stores"][0]["commit"]  # a fresh lab: the first run archives everything
    assert configs(env)["changed"] == 0 and store_log(env) == base  # unchanged run: no commit
    vtysh("huadu-r1", "interface lo", "description 备份演练 backup-test")
    try:
        rep = configs(env)
        changed = [d for d in rep["devices"] if d["changed"]]
        assert [d["device"] for d in changed] == ["huadu-r1"]
        assert "+ description 备份演练 backup-test" in changed[0]["diff"]
        assert store_log(env)[1:] == base and store_log(env)[0] == rep["stores"][0]["commit"]
    finally:
        vtysh("huadu-r1", "interface lo", "no description")
    back = configs(env)
    assert [d["device"] for d in back["devices"] if d["changed"]] == ["huadu-r1"]
    assert "- description 备份演练 backup-test" in next(d for d in back["devices"] if d["changed"])["diff"]
    assert len(store_log(env)) == len(base) + 2
