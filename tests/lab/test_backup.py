"""Provincial backup against the live lab: router configs into git on the province's backup store."""
from __future__ import annotations

import json
from pathlib import Path

from jinbao_netops import inventory

import pytest

from .conftest import netops

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def env(lab, tmp_path_factory):
    return {**lab["env"], "NETOPS_BACKUP_STATE": str(tmp_path_factory.mktemp("backup-state"))}


def store_log(env, store="gd-bak1") -> list[str]:
    r = netops("lab", "exec", store, "--", "git", "-c", "safe.directory=*", "-C", "/srv/netops/configs.git",
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
    # the off-site copy: the DR store's repository holds the same history, catalogued as 3-2-1
    assert back["stores"][0]["offsite"] and store_log(env, "gd-dr-bak1") == store_log(env)
    st = json.loads(netops("backup", "status", "--json", env=env, check=True).stdout)
    row = next(a for a in st["assets"] if a["asset"] == "huadu-r1:config")
    assert row["kind"] == "configs" and row["copies"] == 3 and row["ok_321"]




def sql(node: str, engine: str, text: str, db: str | None = None) -> str:
    if engine == "postgresql":
        cmd = ["sudo", "-u", "postgres", "psql", "-AtXq", *(["-d", db] if db else []), "-c", text]
    else:
        cmd = ["mariadb", "-NB", *([db] if db else []), "-e", text]
    return netops("lab", "exec", node, "--", *cmd, check=True).stdout


@pytest.fixture(scope="module")
def seeded(env):
    """A 社保 database on the province's PostgreSQL and a county's MariaDB; dropped afterwards."""
    assert env["NETOPS_RESTIC_PASSWORD"]  # the lab's, through the inventory's restic_password reference
    # panyu-db1's base backup is the base of its binary log's point-in-time recovery: `dr setup` turns the log on and
    # archives it (and copies the county's MariaDB to gd-db1, its province's replica) before a backup can take one
    r = netops("backup", "run", "--scope", "panyu-db1", "--kind", "databases", env=env)
    assert r.returncode != 0 and "the binary log is off: netops dr setup" in r.stdout + r.stderr, r.stdout + r.stderr
    netops("dr", "setup", "--scope", "panyu-db1", env=env, check=True, timeout=600)
    sql("gd-db1", "postgresql", "create database shebao")
    sql("gd-db1", "postgresql", "create table cbry (id int primary key, xm text, jfjs numeric(12,2)); "
        "insert into cbry select g, '参保人' || g, g * 1.5 from generate_series(1, 5000) g", "shebao")
    sql("panyu-db1", "mariadb", "create database shebao")
    sql("panyu-db1", "mariadb", "create table jfjl (id int primary key, sfzh varchar(18), je decimal(12,2)); "
        "insert into jfjl select seq, concat('44011319900101', lpad(seq, 4, '0')), seq * 2.5 from seq_1_to_3000", "shebao")
    yield env
    for node, engine in (("gd-db1", "postgresql"), ("gd-dr-bak1", "postgresql"), ("panyu-db1", "mariadb")):
        for db in ("shebao", "netops_verify_shebao"):
            sql(node, engine, f"drop database if exists {db}" + (" with (force)" if engine == "postgresql" else ""))


@pytest.fixture(scope="module")
def backed_up(seeded):
    """The province's files and databases in its backup store (and off-site): what restores and drills need."""
    return netops("backup", "run", "--scope", "guangdong", "--kind", "files", "--kind", "databases", "--json", env=seeded)


def test_province_backup_end_to_end_with_offsite_copy_verify_and_guarded_restore(seeded, backed_up):
    env, r = seeded, backed_up
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    rep = json.loads(r.stdout)["servers"]
    [gd] = rep["stores"]
    assert gd["store"] == "gd-bak1" and gd["dr"] == "gd-dr-bak1" and gd["copied"] and gd["error"] is None
    assets = {a["asset"]: a for a in gd["assets"]}
    assert {"gd-db1:postgresql:shebao", "panyu-db1:mariadb:shebao", "gd-db1:files", "huadu-srv1:files",
            "gd-db1:postgresql:basebackup"} <= set(assets)  # policy.yml declares gd-db1's base backup
    assert all(a["ok"] for a in assets.values())
    # taken by the operator's role: replication, not superuser
    assert sql("gd-db1", "postgresql", "select rolsuper, rolreplication from pg_roles where rolname = 'netops'") == "f|t\n"

    r = netops("backup", "verify", "--scope", "guangdong", "--json", env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    ver = json.loads(r.stdout)
    ev = {e["asset"]: e for s in ver["stores"] for e in s["assets"]}
    assert ev["gd-db1:postgresql:shebao"]["restored_fingerprint"]["public.cbry"][0] == "5000"
    assert ev["panyu-db1:mariadb:shebao"]["restored_fingerprint"]["jfjl"][0] == "3000"
    assert {c["repo"] for s in ver["stores"] for c in s["checks"]} == {"gd-bak1", "gd-dr-bak1"}
    base = ev["gd-db1:postgresql:basebackup"]  # a data directory: PG_VERSION, backup_label, pg_control
    assert base["ok"] and base["basebackup"] and base["bytes"] > 1_000_000, base
    assert ev["panyu-db1:mariadb:basebackup"]["ok"]  # every database, and its GTID position

    st = json.loads(netops("backup", "status", "--json", env=env, check=True).stdout)
    rows = {a["asset"]: a for a in st["assets"]}
    assert rows["gd-db1:postgresql:shebao"]["ok_321"] and rows["gd-db1:postgresql:shebao"]["verify_ok"] is True

    # the audit judges 8.1.4.9 a)/b) on these records: backed up, verified and copied off-site is 符合;
    # a server of the other province, never backed up here, is 不符合
    r = netops("audit", "--scope", "gd-db1", "--json", env=env)
    v = {x["id"]: x["verdict"] for h in json.loads(r.stdout)["hosts"] for x in h["results"]}
    assert (v["data-backup"], v["data-offsite"]) == ("符合", "符合"), r.stdout[-3000:]
    r = netops("audit", "--scope", "sc-db1", "--json", env=env)
    v = {x["id"]: x["verdict"] for h in json.loads(r.stdout)["hosts"] for x in h["results"]}
    assert (v["data-backup"], v["data-offsite"]) == ("不符合", "不符合"), r.stdout[-3000:]

    # guards: a running database is never overwritten, another province never receives this one
    r = netops("backup", "restore", "panyu-db1:mariadb:shebao", "--to", "panyu-db1", env=env)
    assert r.returncode == 2 and "database shebao exists" in r.stderr  # a guard: bad input until --force
    r = netops("backup", "restore", "gd-db1:postgresql:shebao", "--to", "sc-dr-bak1", env=env)
    assert r.returncode == 2 and "belongs to province guangdong" in r.stderr
    # the province centre is gone: restore at the DR site from the off-site copy
    r = netops("backup", "restore", "gd-db1:postgresql:shebao", "--to", "gd-dr-bak1", "--from-dr", "--json", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    res = json.loads(r.stdout)
    assert res["repo"] == "gd-dr-bak1" and res["matches_source"] and res["fingerprint"]["public.cbry"][0] == "5000"
    assert sql("gd-dr-bak1", "postgresql", "select count(*) from cbry", "shebao").strip() == "5000"
    sql("gd-dr-bak1", "postgresql", "drop database shebao with (force)")  # the DR site is a standby again


def drill(env, name) -> dict:
    r = netops("drill", "run", name, "--json", env=env)
    assert r.returncode in (0, 1) and r.stdout, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    jn = json.loads(r.stdout)
    assert jn["cleanup_ok"] and Path(jn["report"]).read_text().count("RTO") >= 1
    assert r.returncode == 0 and jn["passed"], json.dumps(jn["steps"], ensure_ascii=False, indent=1)[-4000:]
    return jn


def test_county_database_drill_restores_on_the_standby_within_targets(seeded, backed_up):
    jn = drill(seeded, "county-db-lost")
    assert 0 < jn["rto_seconds"] <= 300 and 0 < jn["rpo_seconds"] <= 86400
    assert [r["asset"] for r in jn["restored"]] == ["panyu-db1:mariadb:shebao"] and jn["restored"][0]["to"] == "guangzhou-db1"
    assert [s["phase"] for s in jn["steps"]][:3] == ["steady", "fault", "detect"]
    # cleanup: the source serves again, the standby holds no copy and runs no MariaDB
    assert sql("panyu-db1", "mariadb", "select count(*) from jfjl", "shebao").strip() == "3000"
    r = netops("lab", "exec", "guangzhou-db1", "--", "systemctl", "is-active", "mariadb")
    assert r.stdout.strip() != "active"


def test_city_router_drill_loses_exactly_the_counties_the_topology_names(seeded, backed_up):
    from jinbao_netops.topology.analysis import impact
    from jinbao_netops.topology.graph import build

    jn = drill(seeded, "city-router-lost")
    expected = impact(build(inventory.load(inventory.DEFAULT_INVENTORY)), "guangzhou-r1")["cut_off"]["county"]
    assert jn["lost_service"] == jn["topology_cut_off"] == sorted(expected) == ["huadu"]
    assert jn["rpo_seconds"] is None and jn["rto_seconds"] <= 60
    assert all(r["ok"] for r in json.loads(netops("lab", "reach", "--json").stdout)["rows"])  # links are back


def test_the_offsite_restore_drill_restores_at_the_dr_site_from_the_offsite_copy(seeded, backed_up):
    jn = drill(seeded, "province-offsite-restore")
    assert [(r["asset"], r["repo"], r["to"]) for r in jn["restored"]] == [("gd-db1:postgresql:shebao", "gd-dr-bak1", "gd-dr-bak1")]
    # the province's store is back on the network: the config archive reaches it again
    assert configs(seeded)["failed"] == 0


def test_backup_playbook_installs_one_timer_per_asset_class_idempotently(env):
    import os
    import subprocess
    import sys

    from jinbao_netops.backup.jobs import policy

    e = {**os.environ, **env}
    e.pop("NETOPS_INVENTORY", None)
    exe = str(Path(sys.executable).with_name("ansible-playbook"))

    def play(*args):
        r = subprocess.run([exe, "playbooks/backup.yml", *args], cwd=Path(__file__).resolve().parents[2], env=e,
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
        return {ln.split()[0]: ln for ln in r.stdout.splitlines() if "ok=" in ln and "failed=" in ln}

    def timers(node):
        return netops("lab", "exec", node, "--", "systemctl", "list-timers", "--all", "--no-legend", "netops-backup-*",
                      check=True).stdout

    classes = sorted(policy()["schedule"])
    try:
        recap = play()
        assert set(recap) == {"gd-bak1", "sc-bak1"}  # the provinces' centre stores, not their DR stores
        for node in recap:
            listed = timers(node)
            assert sorted(c for c in classes if f"netops-backup-{c}.timer" in listed) == classes, listed
        unit = netops("lab", "exec", "gd-bak1", "--", "systemctl", "cat", "netops-backup-databases.service", check=True).stdout
        assert "backup run --scope guangdong --kind databases" in unit
        assert all("changed=0" in ln for ln in play().values())  # a second run changes nothing
    finally:
        play("-e", "netops_backup_state=absent")
    assert "netops-backup" not in timers("gd-bak1") + timers("sc-bak1")
