"""8.1.4.9 b) real-time off-site backup and c) hot redundancy: judged per database service on what a primary's own
engine reports of the replicas the inventory gives it (its collection's replication section: PostgreSQL's
pg_stat_replication and slot, MariaDB's binlog dump threads) and on the failover drills on record; a service the host
is itself the replica of is its primary's subject."""
from __future__ import annotations

import json
import re
import shlex
import time
from datetime import UTC, datetime
from pathlib import Path

from jinbao_netops import inventory
from jinbao_netops.inventory import engines
from jinbao_netops.security import hostchecks, records
from jinbao_netops.security.audit import audit_server, run_audit
from jinbao_netops.security.catalogue import FAIL, NA, PARTIAL, PASS, host_params, load_catalogue

FIX = Path(__file__).parent / "fixtures/security"
INV = inventory.load(inventory.DEFAULT_INVENTORY)
CAT = load_catalogue()
NOW = time.time()
HARDENED = (FIX / "debian12-hardened.txt").read_text()


def failover(verdict: str, days_ago: float, standby: str = "gd-dr-db1", source: str = "gd-db1") -> dict:
    """A failover drill's journal as records._journal reads it (province-db-failover's scenario: a PostgreSQL pair)."""
    started = datetime.fromtimestamp(NOW - days_ago * 86400, UTC).isoformat(timespec="seconds")
    return {"id": "gd-switchover", "kind": records.FAILOVER, "started": started, "verdict": verdict,
            "devices": {source, standby}, "standby": standby, "service": "postgresql", "journal": f"drills/{started}/journal.json"}


def judge(host: str, replication: str = "", drills=()) -> dict[str, dict]:
    """``host``'s two DR verdicts from the hardened fixture plus ``replication`` as its replication section."""
    rec = records.from_catalogue({"assets": {}}, list(drills), "backup catalogue test", NOW)
    params = {**host_params(INV, host), **records.dr_view(INV, host, rec, 365)}
    output = HARDENED + f"{hostchecks.MARK}replication\n{replication}"
    rows = audit_server(CAT, params, output, "2027-01-10T00:00:00+00:00", rec, host)
    return {r["id"]: r for r in rows if r["id"] in ("data-realtime", "hot-redundancy")}


def failing(r: dict) -> list[str]:
    return [f["label"] for f in r["findings"] if not f["ok"]]


def test_the_collection_asks_the_primary_about_each_of_its_standbys_and_only_reads():
    rec = records.from_catalogue({"assets": {}}, [], "t", NOW)
    view = records.dr_view(INV, "gd-db1", rec, 365)
    assert view["dengbao_replicas"] == [{"standby": "gd-dr-db1", "site": "guangdong_zaibei", "sync": True, "slot": "netops_gd_dr_db1",
                                         "service": "postgresql", "address": "10.44.1.11"}]
    assert view["dengbao_replica_of"] == {"mariadb": "panyu-db1"}  # its MariaDB is the county's copy
    script = hostchecks.script({**host_params(INV, "gd-db1"), **view})
    section = script.split(f"{hostchecks.MARK}replication")[1]
    assert all(w in section for w in ("pg_stat_replication", "gd-dr-db1", "netops_gd_dr_db1", "runuser -u postgres"))
    assert "PROCESSLIST" not in section  # it is no MariaDB primary
    for verb in ("INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "ALTER", "pg_create", "pg_drop"):
        assert verb not in section.upper(), verb
    # a host without standbys runs nothing
    plain = hostchecks.script({**host_params(INV, "chengdu-db1"), **records.dr_view(INV, "chengdu-db1", rec, 365)})
    assert "pg_stat_replication" not in plain.split(f"{hostchecks.MARK}replication")[1]


def test_a_synchronous_standby_streaming_at_rest_is_compliant_and_hot_redundancy_wants_a_drill():
    v = judge("gd-db1", "gd-dr-db1\nstreaming sync 0 0.000912;1 0\n")
    assert v["data-realtime"]["verdict"] == PASS, v["data-realtime"]["findings"]
    assert "state streaming" in json.dumps(v["data-realtime"]["findings"])
    # a hot standby, but no failover drill on record: partly met, and the finding says what is missing
    assert v["hot-redundancy"]["verdict"] == PARTIAL
    assert failing(v["hot-redundancy"]) == ["postgresql: failover drill passed within 365 d 切换演练通过"]
    assert "无主备切换演练记录" in v["hot-redundancy"]["findings"][-1]["detail"]
    # with a passed failover drill of the pair within the period: met; the evidence names the journal
    v = judge("gd-db1", "gd-dr-db1\nstreaming sync 0 0;1 0\n", [failover("passed", 30)])
    assert v["hot-redundancy"]["verdict"] == PASS and "gd-switchover passed" in v["hot-redundancy"]["findings"][-1]["detail"]


def test_the_newest_failover_drill_within_the_period_counts():
    stream = "gd-dr-db1\nstreaming sync 0 0;1 0\n"
    assert judge("gd-db1", stream, [failover("passed", 30), failover("failed", 2)])["hot-redundancy"]["verdict"] == PARTIAL
    assert judge("gd-db1", stream, [failover("passed", 400)])["hot-redundancy"]["verdict"] == PARTIAL  # too old
    other = failover("passed", 3, standby="sc-dr-db1") | {"devices": {"sc-db1", "sc-dr-db1"}}
    assert judge("gd-db1", stream, [other])["hot-redundancy"]["verdict"] == PARTIAL  # another pair's drill


def test_a_disconnected_lagging_or_no_longer_synchronous_standby_is_not_compliant():
    v = judge("gd-db1", "gd-dr-db1\n-;1 65536\n")  # not connected; the slot keeps its WAL
    assert v["data-realtime"]["verdict"] == FAIL and v["hot-redundancy"]["verdict"] == FAIL
    v = judge("sc-db1", "sc-dr-db1\nstreaming async 81920 7.5;1 81920\n")  # streams, 7.5 s behind a 5 s target
    assert v["data-realtime"]["verdict"] == PARTIAL
    assert failing(v["data-realtime"]) == ["postgresql: sc-dr-db1 at sichuan_zaibei: lag within 5 s 复制延迟在目标内"]
    v = judge("gd-db1", "gd-dr-db1\nstreaming async 0 0;1 0\n")  # sync: true in the inventory, async on the primary
    assert failing(v["data-realtime"]) == ["postgresql: gd-dr-db1 at guangdong_zaibei: synchronous (no committed transaction lost) 同步复制"]
    # the section missing (PostgreSQL down, psql refused): nothing was read, nothing passes
    v = judge("gd-db1", "postgresql not running\n")
    assert v["data-realtime"]["verdict"] == FAIL and "not read" in json.dumps(v["data-realtime"]["findings"])


def test_a_database_without_a_standby_fails_and_what_is_not_the_subject_says_why():
    v = judge("jiangyou-db1")  # a county's MariaDB: nothing replicates it
    assert v["data-realtime"]["verdict"] == FAIL == v["hot-redundancy"]["verdict"]
    assert "no replica in the inventory replicates mariadb" in v["data-realtime"]["findings"][0]["detail"]
    for host, why in (("gd-dr-db1", "postgresql is the standby of gd-db1"), ("gd-dr-bak1", "at the DR site"),
                      ("huadu-srv1", "no database")):
        v = judge(host)
        assert v["data-realtime"]["verdict"] == NA == v["hot-redundancy"]["verdict"], host
        assert why in v["data-realtime"]["evidence"]["excerpt"], (host, v["data-realtime"]["evidence"])


def test_the_audit_engine_gives_each_host_its_pairs():
    seen = {}

    def run(device: str, command: str, stdin: str | None = None) -> str:
        seen[device] = stdin or ""
        return HARDENED + (f"{hostchecks.MARK}replication\ngd-dr-db1\nstreaming sync 0 0;1 0\n" if device == "gd-db1" else "")

    rec = records.from_catalogue({"assets": {}}, [], "t", NOW)
    rep = run_audit(INV, "gd-db1", run=run, rec=rec)
    v = {r["id"]: r["verdict"] for r in next(h for h in rep["hosts"] if h["host"] == "gd-db1")["results"]}
    assert v["data-realtime"] == PASS and v["hot-redundancy"] == PARTIAL
    assert "netops_gd_dr_db1" in seen["gd-db1"] and "pg_stat_replication" in seen["gd-db1"]
    assert "PROCESSLIST" not in seen["gd-db1"]  # the county's MariaDB is asked on the county's primary


def test_the_audit_engine_asks_a_mariadb_primary_about_its_replica():
    seen = {}

    def run(device: str, command: str, stdin: str | None = None) -> str:
        seen[device] = stdin or ""
        return HARDENED + f"{hostchecks.MARK}replication\ngd-db1\n{MDB_SENT}\n"

    rec = records.from_catalogue({"assets": {}}, [], "t", NOW)
    rep = run_audit(INV, "panyu-db1", run=run, rec=rec)
    v = {r["id"]: r["verdict"] for r in next(h for h in rep["hosts"] if h["host"] == "panyu-db1")["results"]}
    assert v["data-realtime"] == PASS and v["hot-redundancy"] == PARTIAL  # no MariaDB failover drill exists
    assert "information_schema.PROCESSLIST" in seen["panyu-db1"] and "10.44.0.10" in seen["panyu-db1"]


# gd-db1's binlog dump thread on panyu-db1 (HOST STATE), as the lab's MariaDB shows it once everything was sent
SENT_ALL = "Master has sent all binlog to slave; waiting for more updates"
MDB_SENT = f"10.44.0.10:40608 {SENT_ALL}"


def test_a_host_is_judged_on_the_services_it_is_the_primary_of_not_on_those_it_replicates():
    # gd-db1: the primary of its PostgreSQL pair, the replica of panyu-db1's MariaDB
    v = judge("gd-db1", "gd-dr-db1\nstreaming sync 0 0;1 0\n", [failover("passed", 30)])
    for r in v.values():
        assert r["verdict"] == PASS, r["findings"]
        note = next(f for f in r["findings"] if f["label"].startswith("mariadb"))
        assert note["na"] and "mariadb is the standby of panyu-db1" in note["detail"], note
        assert all(f["label"].startswith("postgresql: ") for f in r["findings"] if f is not note)
    # the note counts for nothing: a disconnected PostgreSQL standby still fails the host outright
    v = judge("gd-db1", "gd-dr-db1\n-;1 65536\n")
    assert v["data-realtime"]["verdict"] == FAIL and v["hot-redundancy"]["verdict"] == FAIL
    # a host whose every database is a replica is not the subject; the reason names the service and its primary
    view = records.dr_view(INV, "gd-dr-db1", records.from_catalogue({"assets": {}}, [], "t", NOW), 365)
    assert hostchecks.NA_REASONS["data-realtime"](view).startswith("this host's postgresql is the standby of gd-db1")


def test_a_mariadb_primary_is_asked_for_its_binlog_dump_threads_and_only_reads_with_no_secret():
    rec = records.from_catalogue({"assets": {}}, [], "t", NOW)
    view = records.dr_view(INV, "panyu-db1", rec, 365)
    assert view["dengbao_replicas"] == [{"standby": "gd-db1", "site": "guangdong", "sync": False, "slot": "netops_gd_db1",
                                         "service": "mariadb", "address": "10.44.0.10"}]
    section = hostchecks.sections({**host_params(INV, "panyu-db1"), **view})["replication"]
    # the engine's client as its administrator, the SQL on stdin: quoted by the engine, then as one shell word
    client = " ".join(a for a in engines.MARIADB.client if "{db}" not in a)
    assert f"runuser -u root -- {client}" in section and "systemctl is-active -q mariadb" in section
    sql = shlex.split(section.split("printf '%s' ", 1)[1].split(" | ")[0])[0]
    assert engines.MARIADB.literal("10.44.0.10") in sql and engines.MARIADB.literal("Binlog Dump%") in sql
    assert sql.startswith(f"SELECT {engines.MARIADB.literal('gd-db1')};") and "information_schema.PROCESSLIST" in sql
    # only reads: every statement a SELECT, none writing (the sent-all state's text says "updates": strings aside)
    assert all(st.strip().startswith("SELECT ") for st in sql.split(";\n") if st.strip()), sql
    code = re.sub(r"'(?:[^'\\]|\\.|'')*'", "''", sql).upper()
    assert not re.search(r"\b(INSERT|UPDATE|DELETE|CREATE|DROP|ALTER|GRANT|KILL|SET|INTO)\b", code), code
    # no secret: no password option, no credentials profile's value
    assert not re.search(r"password|-p\S|--user|pgpass|IDENTIFIED", section, re.I), section
    assert "pg_stat_replication" not in section  # it is no PostgreSQL primary


def test_a_mariadb_primary_is_compliant_when_its_replica_has_received_everything():
    v = judge("panyu-db1", f"gd-db1\n{MDB_SENT}\n")
    assert v["data-realtime"]["verdict"] == PASS, v["data-realtime"]["findings"]
    found = json.dumps(v["data-realtime"]["findings"], ensure_ascii=False)
    assert "binlog dump thread from 10.44.0.10:40608" in found and "not what the replica applied" in found
    assert not any("synchronous" in f["label"] for f in v["data-realtime"]["findings"])  # a MariaDB pair is never sync
    # the replica streams, but no MariaDB failover drill exists: hot redundancy is honestly only partly met
    assert v["hot-redundancy"]["verdict"] == PARTIAL
    assert failing(v["hot-redundancy"]) == ["mariadb: failover drill passed within 365 d 切换演练通过"]
    # a PostgreSQL pair's drill that touched gd-db1 (the source of province-db-failover) proves nothing for MariaDB
    v = judge("panyu-db1", f"gd-db1\n{MDB_SENT}\n", [failover("passed", 3)])
    assert failing(v["hot-redundancy"]) == ["mariadb: failover drill passed within 365 d 切换演练通过"]


def test_a_mariadb_primary_without_the_replicas_dump_thread_or_still_sending_is_not_compliant():
    # no dump thread from the replica's address: not streaming, nothing sent
    v = judge("panyu-db1", "gd-db1\n-\n")
    assert v["data-realtime"]["verdict"] == FAIL and v["hot-redundancy"]["verdict"] == FAIL
    # a thread still sending (the replica is behind)
    v = judge("panyu-db1", "gd-db1\n10.44.0.10:40608 Sending binlog event to slave\n")
    assert v["data-realtime"]["verdict"] == PARTIAL
    assert failing(v["data-realtime"]) == ["mariadb: gd-db1 at guangdong: lag within 5 s 复制延迟在目标内"]
    assert "Sending binlog event" in json.dumps(v["data-realtime"]["findings"])
    # another address's thread, an error, MariaDB down: not read, nothing passes
    for out in (f"gd-db1\n10.44.0.99:40608 {SENT_ALL}\n", "gd-db1\nERROR 1045 (28000): Access denied\n",
                "mariadb not running\n"):
        v = judge("panyu-db1", out)
        assert v["data-realtime"]["verdict"] == FAIL and "not read" in json.dumps(v["data-realtime"]["findings"]), out
