"""restic side of the backup with real restic and local repositories; sources are local shell lines."""
from __future__ import annotations

import ctypes
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jinbao_netops.backup import catalogue
from jinbao_netops.backup.jobs import Asset, policy, run_store
from jinbao_netops.backup.restic import Repo
from jinbao_netops.inventory.engines import ENGINES

LOCAL = lambda device: ["sh", "-c"]  # noqa: E731  every "node" is this machine


PW = secrets.token_hex(16)


def local(name: str, path: Path, password: str = PW) -> Repo:
    return Repo(name, str(path), password)


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("NETOPS_BACKUP_STATE", str(tmp_path / "state"))
    monkeypatch.setenv("RESTIC_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


def asset(name: str, stream: str, kind: str = "files") -> Asset:
    return Asset(f"{name}:files", name, "huadu", "guangdong", kind, stream, f"/{name}/files.tar")


def test_run_store_backs_up_copies_offsite_and_catalogues(env):
    data = env / "src"
    data.mkdir()
    (data / "a.conf").write_text("x = 1\n" * 1000)
    repo, dr = local("gd-bak1", env / "primary"), local("gd-dr-bak1", env / "dr")
    good = asset("huadu-srv1", f"tar -C {data} -cf - .")
    bad = asset("huadu-srv2", "echo partial; echo 'tar: /etc: Cannot open' >&2; exit 2")
    out = run_store(repo, dr, [good, bad], LOCAL, policy(), ["files"])
    res = {a["asset"]: a for a in out["assets"]}
    assert out["error"] is None and out["copied"]
    assert res["huadu-srv1:files"]["ok"] and res["huadu-srv1:files"]["size"] > 6000
    assert not res["huadu-srv2:files"]["ok"] and "source exited 2: tar: /etc: Cannot open" in res["huadu-srv2:files"]["error"]
    snaps = repo.snapshots()
    assert [s["hostname"] for s in snaps] == ["huadu-srv1"]  # the partial stream left no snapshot
    assert "asset=huadu-srv1:files" in snaps[0]["tags"] and "province=guangdong" in snaps[0]["tags"]
    assert [s["original"][:8] for s in dr.snapshots()] == [snaps[0]["id"][:8]]
    cat = catalogue.load()["assets"]
    assert cat["huadu-srv1:files"]["offsite"] is True and catalogue.derived(cat["huadu-srv1:files"])["ok_321"] == 1
    assert cat["huadu-srv2:files"]["last_ok"] is False and "last_success" not in cat["huadu-srv2:files"]
    prom = (env / "state/metrics/netops_backup.prom").read_text()
    assert 'netops_backup_321_ok{province="guangdong",site="huadu",device="huadu-srv1",kind="files",asset="huadu-srv1:files"} 1' in prom
    size = cat["huadu-srv1:files"]["size"]
    assert f'netops_backup_size_bytes{{province="guangdong",site="huadu",device="huadu-srv1",kind="files",asset="huadu-srv1:files"}} {size}\n' in prom
    assert "netops_backup_last_success_timestamp_seconds{" in prom and 'asset="huadu-srv2:files"' not in prom.split(
        "netops_backup_last_success_timestamp_seconds")[2]
    # the restored bytes are the source's
    got = subprocess.run(repo.cmd("dump", "latest", "/huadu-srv1/files.tar"), capture_output=True, env=repo.env()).stdout
    assert got == subprocess.run(["tar", "-C", str(data), "-cf", "-", "."], capture_output=True).stdout


def test_wrong_password_is_a_reported_store_error(env, monkeypatch):
    repo = local("gd-bak1", env / "primary")
    run_store(repo, None, [asset("n1", "echo hi")], LOCAL, policy(), ["files"])
    out = run_store(local("gd-bak1", env / "primary", "not-the-password"), None, [asset("n1", "echo hi")], LOCAL, policy(), ["files"])
    assert out["error"] and not out["assets"][0]["ok"]


def test_the_repository_password_is_the_stores_inventory_reference():
    from jinbao_netops import inventory
    from jinbao_netops.backup.jobs import backup_servers
    from jinbao_netops.access import Access
    from jinbao_netops.errors import DeviceError

    inv = inventory.load(inventory.DEFAULT_INVENTORY)
    env = {"NETOPS_SSH_KEY": "/nonexistent/key", "NETOPS_RESTIC_PASSWORD": "from-the-inventory"}
    assert Repo.on_store(Access(inv, env), "gd-bak1").password == "from-the-inventory"
    del env["NETOPS_RESTIC_PASSWORD"]
    with pytest.raises(DeviceError, match=r"credentials 'ops': field 'restic_password': environment variable "
                                          r"NETOPS_RESTIC_PASSWORD is not set"):
        Repo.on_store(Access(inv, env), "gd-bak1")
    # the run goes on: that store's assets fail with the one-line reason, nothing raises
    rep = backup_servers(inv, "huadu", ["files"], access=Access(inv, env), shell=LOCAL)
    [st] = rep["stores"]
    assert st["store"] == "gd-bak1" and "NETOPS_RESTIC_PASSWORD is not set" in st["error"]
    assert rep["failed"] >= 1 and all(not a["ok"] and "restic_password" in a["error"] for a in st["assets"])


def test_a_backup_killed_with_sigkill_leaves_the_repo_usable(env):
    repo = local("gd-bak1", env / "primary")
    repo.ensure()
    # a child process backs up an endless-ish stream; it is killed mid-stream
    script = ("from jinbao_netops.backup.jobs import Asset, backup_asset; from jinbao_netops.backup.restic import Repo;"
              f"backup_asset(Repo('gd-bak1', {str(env / 'primary')!r}, {PW!r}), Asset('n1:files', 'n1', 'huadu', 'guangdong',"
              "'files', 'head -c 200000000 /dev/urandom', '/n1/files.tar'), lambda d: ['sh', '-c'])")
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: the killed run's restic is ours to reap, as init would
    child = subprocess.Popen([sys.executable, "-c", script], start_new_session=True, env=os.environ.copy())
    # killed mid-stream: once it holds the repository's lock and has stored its first pack of data
    def under_way():
        return list((env / "primary/locks").glob("*")) and any(p.is_file() for p in (env / "primary/data").rglob("*"))

    deadline = time.monotonic() + 60
    while not under_way() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert under_way(), "the backup never got under way"
    assert child.poll() is None, "the backup finished before it was killed"
    os.killpg(child.pid, signal.SIGKILL)
    child.wait()
    try:
        while True:
            os.waitpid(-child.pid, 0)  # every process of the killed group, restic included
    except ChildProcessError:
        pass
    finally:
        libc.prctl(36, 0, 0, 0, 0)
    assert list((env / "primary/locks").glob("*"))  # the killed run's lock is left behind
    assert repo.restic("prune", check=False).returncode != 0  # the stale lock blocks exclusive work...
    out = run_store(repo, None, [asset("n1", "head -c 100000 /dev/zero")], LOCAL, policy(), ["files"])
    assert out["error"] is None and out["assets"][0]["ok"] and out["assets"][0]["size"] == 100000  # ...not the next run
    assert not list((env / "primary/locks").glob("*"))
    assert repo.restic("check").returncode == 0
    assert len(repo.snapshots()) == 1  # the killed run made no snapshot


def test_a_corrupted_object_is_found_by_verify_with_the_affected_asset(env):
    from jinbao_netops.backup.verify import record, verify_store

    repo = local("gd-bak1", env / "primary")
    big = asset("huadu-srv1", f"cd {env} && head -c 3000000 /dev/urandom > big.bin && tar -cf - big.bin")
    small = asset("huadu-srv2", f"cd {env} && echo small > small.txt && tar -cf - small.txt")
    run_store(repo, None, [big, small], LOCAL, policy(), ["files"])
    entries = catalogue.load()["assets"]
    clean = verify_store(repo, None, entries, LOCAL, 7, 0)
    assert clean["ok"] and all(e["ok"] for e in clean["assets"]), clean
    record([clean])
    assert catalogue.load()["assets"]["huadu-srv1:files"]["verify_ok"] is True

    pack = max((env / "primary/data").rglob("*"), key=lambda p: p.stat().st_size if p.is_file() else 0)
    raw = bytearray(pack.read_bytes())
    raw[len(raw) // 2: len(raw) // 2 + 64] = bytes(64)
    pack.chmod(0o600)
    pack.write_bytes(bytes(raw))

    res = verify_store(repo, None, catalogue.load()["assets"], LOCAL, 1, 0)  # 1/1: read all data
    assert not res["ok"] and not res["checks"][0]["ok"] and res["checks"][0]["errors"]
    bad = {e["asset"]: e for e in res["assets"]}
    assert not bad["huadu-srv1:files"]["ok"] and "restic dump" in bad["huadu-srv1:files"]["error"]
    assert bad["huadu-srv2:files"]["ok"]
    path = record([res])
    cat = catalogue.load()["assets"]
    assert cat["huadu-srv1:files"]["verify_ok"] is False and cat["huadu-srv1:files"]["verified"][cat["huadu-srv1:files"]["snapshot"]] is False
    assert json.loads(path.read_text())[0]["assets"][0]["asset"] == "huadu-srv1:files"
    assert 'netops_backup_verify_ok{province="guangdong",site="huadu",device="huadu-srv1",kind="files",asset="huadu-srv1:files"} 0' \
        in (env / "state/metrics/netops_backup.prom").read_text()


def test_a_declared_base_backup_is_a_database_asset_of_its_server():
    from jinbao_netops import inventory
    from jinbao_netops.backup.jobs import discover
    from jinbao_netops.errors import UsageError

    inv = inventory.load(inventory.DEFAULT_INVENTORY)
    pol = policy()
    assert "gd-db1" in pol["basebackup"]
    by_store, errors, _ = discover(inv, "gd-db1", ["databases"], lambda d: ["true"], pol)  # no databases listed
    [a] = by_store["gd-bak1"]
    assert (a.id, a.kind, a.service, a.database, a.filename) == (
        "gd-db1:postgresql:basebackup", "databases", "postgresql", None, "/gd-db1/postgresql/base.tar")
    assert a.stream == ENGINES["postgresql"].basebackup("netops").line  # the engine table's, as the operator
    assert "pg_basebackup -h /var/run/postgresql -U netops" in a.stream and "-D - -F tar -X fetch" in a.stream
    assert "LOGIN REPLICATION" in a.stream and "superuser" not in a.stream.lower()
    assert not errors
    with pytest.raises(UsageError, match=r"policy.yml: basebackup: 'huadu-srv1' is not a database server"):
        discover(inv, "gd-db1", ["databases"], lambda d: ["true"], {**pol, "basebackup": ["huadu-srv1"]})
    # a MariaDB server's: every database with the GTID position it was taken at (the base its binary log replays on),
    # as the engine's administrator
    [m] = discover(inv, "panyu-db1", ["databases"], lambda d: ["true"], pol)[0]["gd-bak1"]
    assert (m.id, m.service, m.filename) == ("panyu-db1:mariadb:basebackup", "mariadb", "/panyu-db1/mariadb/base.sql")
    assert m.stream.startswith("sudo -n -u root -- sh -c") and "mariadb-dump --all-databases --single-transaction --gtid " \
        "--master-data=2" in m.stream and "the binary log is off" in m.stream


def test_every_database_a_server_lists_is_one_asset_dumped_by_the_engine_table(tmp_path):
    """Names come whole, spaces and all (a listing split on whitespace made two assets of "社保 2024")."""
    from jinbao_netops import inventory
    from jinbao_netops.backup.jobs import discover

    inv = inventory.load(inventory.DEFAULT_INVENTORY)
    names, seen = ["shebao", "社保 2024"], tmp_path / "seen"
    listing = "".join(n.encode().hex() + "\\n" for n in names)
    # the "node" records the command line and the script on its stdin, and answers the listing
    node = ["sh", "-c", f'printf "%s\\n" "$1" > {seen}; cat >> {seen}; printf "{listing}"', "sh"]
    by_store, errors, _ = discover(inv, "panyu-db1", ["databases"], lambda device: node, {**policy(), "basebackup": []})
    assert not errors
    eng = ENGINES["mariadb"]
    assert [(a.id, a.stream, a.filename) for a in by_store["gd-bak1"]] == [
        (f"panyu-db1:mariadb:{n}", eng.dump(n).line, f"/panyu-db1/mariadb/{n}.sql") for n in names]
    listed = eng.sql(eng.list_databases)
    assert seen.read_text() == listed.line + "\n" + listed.input


def test_a_standbys_databases_are_its_primarys_not_dumped_twice():
    """A read-only streaming standby cannot take verify's test restore, and its data is its primary's: only its
    files are its own assets (the old code listed and dumped its databases and verify failed on them)."""
    from jinbao_netops import inventory
    from jinbao_netops.backup.jobs import discover

    inv = inventory.load(inventory.DEFAULT_INVENTORY)
    listed = []
    by_store, errors, _ = discover(inv, "gd-dr-db1", ["files", "databases"], lambda d: listed.append(d) or ["printf", "73686562616f\\n"],
                                   {**policy(), "basebackup": []})
    assert not errors and [a.id for a in by_store["gd-bak1"]] == ["gd-dr-db1:files"] and listed == []


def test_a_server_without_ssh_access_is_skipped_with_the_reason():
    """A server reached by SNMP alone has no stream to take: skipped with the reason, not an asset that fails."""
    from conftest import snmp_only

    from jinbao_netops import inventory
    from jinbao_netops.backup.jobs import discover

    inv = snmp_only(inventory.load(inventory.DEFAULT_INVENTORY), "panyu-db1")
    by_store, errors, skipped = discover(inv, "panyu", ["files", "databases"], lambda d: pytest.fail(f"{d} asked"),
                                        {**policy(), "basebackup": []})
    assert skipped == {"panyu-db1": "no SSH access declared (access: [snmp]) 未声明SSH访问方式"} and not errors
    assert not [a for assets in by_store.values() for a in assets if a.device == "panyu-db1"]
