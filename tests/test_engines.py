"""The engine table: the commands it builds, how names are quoted for the shell, libpq and SQL, and
that no secret reaches a command line."""
from __future__ import annotations

import os
import re
import subprocess
from ipaddress import ip_address, ip_network
from typing import get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jinbao_netops.collectors.db import COUNTERS, GAUGES
from jinbao_netops.errors import ToolError, UsageError
from jinbao_netops.inventory.engines import ENGINES, Command
from jinbao_netops.inventory.model import Service
from jinbao_netops.lab.seed import SQL

PG, MARIADB = ENGINES["postgresql"], ENGINES["mariadb"]
SECRET = "pa$$'w\\o\"rd `x` $(id)"
HOSTILE = ["shebao", "社保 2024", "x'; DROP DATABASE shebao; --", 'a"b', "a`b", "$(touch /tmp/pwned)", "-rf",
           "dbname=postgres host=evil", "back\\slash", "new\nline", "tab\there"]
names = st.text(st.characters(blacklist_characters="\0"), min_size=1)


def as_admin(eng, db: str, password: str = SECRET) -> list[Command]:
    """Every command the table builds that runs as the engine's administrator."""
    return [eng.sql("SELECT 1;", db), eng.sql("SELECT 1;"), eng.create(db), eng.drop(db), eng.dump(db), eng.load(db),
            eng.monitor_role("netops_monitor", password, ip_network("10.254.0.0/16"))]


def every_command(eng, db: str, password: str = SECRET) -> list[Command]:
    """... and the one that runs as root (the lab's listen setup)."""
    return [*as_admin(eng, db, password),
            eng.listen_on(ip_address("10.254.44.11"), ip_network("10.254.0.0/16"), "netops_monitor")]


def test_one_row_per_service_the_inventory_knows():
    assert set(ENGINES) == set(get_args(Service)) == set(SQL)
    assert {e.service: e.port for e in ENGINES.values()} == {"postgresql": 5432, "mariadb": 3306}


@pytest.mark.parametrize("eng", ENGINES.values(), ids=ENGINES)
def test_the_admin_invocation_is_one_form(eng):
    """Over SSH as the operator or in a lab node as root: sudo to the engine's administrator."""
    assert {cmd.argv[:5] for cmd in as_admin(eng, "shebao")} == {("sudo", "-n", "-u", eng.admin, "--")}
    listen = eng.listen_on(ip_address("10.254.44.11"), ip_network("10.254.0.0/16"), "netops_monitor")
    assert listen.argv[:5] == ("sudo", "-n", "-u", "root", "--")


def test_the_commands_it_builds():
    assert PG.dump("shebao").argv == ("sudo", "-n", "-u", "postgres", "--", "pg_dump", "-Fc", "--dbname=dbname='shebao'")
    assert PG.load("shebao").argv[5:] == ("pg_restore", "--no-owner", "--exit-on-error", "--dbname=dbname='shebao'")
    assert MARIADB.dump("shebao").argv == ("sudo", "-n", "-u", "root", "--", "mariadb-dump", "--single-transaction",
                                           "--routines", "--events", "--triggers", "--", "shebao")
    assert MARIADB.load("shebao").argv[5:] == ("mariadb", "--default-character-set=utf8mb4", "--database=shebao")
    # SQL goes to the client on stdin; without a database the client picks the administrator's own
    assert PG.create("shebao") == Command(("sudo", "-n", "-u", "postgres", "--", "psql", "-X", "-q", "-A", "-t", "-v",
                                           "ON_ERROR_STOP=1"), "SET client_encoding = 'UTF8';\nCREATE DATABASE \"shebao\";\n")
    assert MARIADB.drop("shebao") == Command(("sudo", "-n", "-u", "root", "--", "mariadb", "-N", "-B",
                                              "--default-character-set=utf8mb4"), "DROP DATABASE IF EXISTS `shebao`;\n")
    bb = PG.basebackup("netops").line
    assert "pg_basebackup -h /var/run/postgresql -U netops -d dbname=postgres -D - -F tar -X fetch -c fast" in bb
    mb = MARIADB.basebackup("netops").argv
    assert mb[:7] == ("sudo", "-n", "-u", "root", "--", "sh", "-c") and "exec mariadb-dump --all-databases" in mb[7]
    # what a usable base backup holds: MariaDB's its GTID position and its end (a dump cut short lacks it)
    base = b"-- MariaDB dump\n-- SET GLOBAL gtid_slave_pos='1-1-3';\nINSERT ...;\n-- Dump completed on 2026-12-05\n"
    assert MARIADB.cluster_backup_missing(base) == []
    assert MARIADB.cluster_backup_missing(base[:60]) == ["its end (-- Dump completed)"]
    assert MARIADB.cluster_backup_missing(base.replace(b"-- SET", b"SET")) == ["its GTID position (-- SET GLOBAL gtid_slave_pos)"]
    assert PG.cluster_backup_missing(b"not a tar")[0].startswith("a readable tar")


@pytest.mark.parametrize("eng", ENGINES.values(), ids=ENGINES)
@pytest.mark.parametrize("db", HOSTILE)
def test_a_database_name_is_one_shell_word_on_the_node(eng, db, tmp_path):
    """Each command's shell line, run by a real POSIX shell, gives the program exactly its argv."""
    fake = tmp_path / "sudo"
    fake.write_text('#!/bin/sh\nfor a in "$@"; do printf "%s\\0" "$a"; done\n')
    fake.chmod(0o755)
    for cmd in every_command(eng, db):
        got = subprocess.run(["/bin/sh", "-c", cmd.line], env={"PATH": f"{tmp_path}:{os.environ['PATH']}"},
                             capture_output=True, check=True, cwd=tmp_path).stdout
        assert got.decode().split("\0")[:-1] == list(cmd.argv[1:]), cmd
    assert not (tmp_path / "pwned").exists() and not os.path.exists("/tmp/pwned")


@pytest.mark.parametrize("eng", ENGINES.values(), ids=ENGINES)
def test_no_secret_in_any_argv(eng):
    for cmd in every_command(eng, "shebao"):
        assert not any(SECRET in a for a in cmd.argv), cmd
    role = eng.monitor_role("netops_monitor", SECRET, ip_network("10.254.0.0/16"))
    assert eng.literal(SECRET) in role.input


def unquote(token: str, quote: str) -> str:
    return token[1:-1].replace(quote * 2, quote)


@given(names)
def test_identifiers_are_one_token_that_reads_back(name):
    for eng in ENGINES.values():
        q = eng.ident_quote
        token = eng.ident(name)
        assert re.fullmatch(f"{q}(?:[^{q}]|{q}{q})*{q}", token, re.S) and unquote(token, q) == name
        assert eng.create(name).input == eng.preamble + eng.create_sql.format(db=token)


@given(names)
def test_string_literals_are_one_token_that_reads_back(value):
    for eng in ENGINES.values():
        token = eng.literal(value)
        body = re.fullmatch(rf"{eng.literal_prefix}'((?:[^'\\]|''|\\.)*)'", token, re.S)
        assert body and re.sub(r"''|\\(.)", lambda m: m.group(1) or "'", body.group(1), flags=re.S) == value


@given(names)
def test_a_postgresql_database_name_is_one_connection_string_value(db):
    arg = PG.dump(db).argv[-1]
    body = re.fullmatch(r"--dbname=dbname='((?:[^'\\]|\\.)*)'", arg, re.S)
    assert body and re.sub(r"\\(.)", r"\1", body.group(1), flags=re.S) == db


def test_nul_is_refused():
    with pytest.raises(UsageError, match="NUL"):
        PG.create("a\0b")


def hexed(*parts: str) -> str:
    return ".".join(p.encode().hex() for p in parts)


def test_databases_come_back_whole():
    """Names with spaces or newlines survive the trip (they are listed hex-encoded)."""
    out = "\n".join(n.encode().hex() for n in HOSTILE) + "\n"
    assert PG.databases(lambda cmd: out) == HOSTILE
    assert MARIADB.databases(lambda cmd: out.upper()) == HOSTILE


def test_fingerprint_reads_every_table_once_with_its_name_quoted():
    seen = []
    answers = iter([hexed("public", "cbry") + "\n" + hexed("public", 'we"ird') + "\n",  # the tables, then the script
                    "5000\nabc123\n0\nd41d8cd98f00b204e9800998ecf8427e\n"])
    assert PG.fingerprint(lambda cmd: seen.append(cmd) or next(answers), "shebao") == {"public.cbry": ["5000", "abc123"],
                                             'public.we"ird': ["0", "d41d8cd98f00b204e9800998ecf8427e"]}
    assert [c.argv[-1] for c in seen] == ["--dbname=dbname='shebao'"] * 2
    assert 'SELECT count(*) FROM "public"."we""ird";' in seen[1].input

    seen.clear()
    answers = iter([hexed("jfjl") + "\n", "3000\nshebao.jfjl\t1234567\n"])
    assert MARIADB.fingerprint(lambda cmd: seen.append(cmd) or next(answers), "shebao") == {"jfjl": ["3000", "1234567"]}
    assert "CHECKSUM TABLE `jfjl`;" in seen[1].input
    assert MARIADB.fingerprint(lambda cmd: "", "empty") == {}
    with pytest.raises(ToolError, match="1 lines for 1 tables"):
        answers = iter([hexed("jfjl") + "\n", "3000\n"])
        MARIADB.fingerprint(lambda cmd: next(answers), "shebao")


def test_every_health_and_replication_metric_is_exposed():
    pg = {name for name, _ in PG.health} | set(PG.replication_metrics([{"in_recovery": 0, "replica_lag_s": 0,
                                                                          "replicas": 1}]))
    maria = {name for name, _ in MARIADB.health} | set(MARIADB.replication_metrics(
        [{"slave_io_running": "Yes", "slave_sql_running": "No", "seconds_behind_master": None}]))
    assert pg | maria <= set(GAUGES) | set(COUNTERS)
    assert MARIADB.replication_metrics([]) == {"replicas_configured": 0.0}
    assert MARIADB.replication_metrics([{"slave_io_running": "Yes", "slave_sql_running": "No",
                                         "seconds_behind_master": "7"}])["replica_lag_s"] == 7.0


def test_the_base_backup_line_runs_the_admins_psql_then_pg_basebackup(tmp_path):
    for prog in ("sudo", "pg_basebackup"):
        (tmp_path / prog).write_text(f'#!/bin/sh\nprintf "{prog}"; for a in "$@"; do printf "\\0%s" "$a"; done; echo\n')
        (tmp_path / prog).chmod(0o755)
    line = PG.basebackup("ops'r").line  # an operator whose name needs quoting in SQL and in the shell
    out = subprocess.run(["/bin/sh", "-c", line], env={"PATH": f"{tmp_path}:{os.environ['PATH']}"},
                         capture_output=True, text=True, check=True).stdout.splitlines()
    sudo, backup = (ln.split("\0") for ln in out)
    assert sudo[:6] == ["sudo", "-n", "-u", "postgres", "--", "psql"] and sudo[-2] == "-c"
    assert "rolname = E'ops''r'" in sudo[-1] and 'CREATE ROLE "ops\'r" LOGIN REPLICATION' in sudo[-1]
    assert backup[:5] == ["pg_basebackup", "-h", "/var/run/postgresql", "-U", "ops'r"]
