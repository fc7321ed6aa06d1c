"""Database health through the engine table's queries, against a DB-API stand-in (no server)."""
from __future__ import annotations

import dataclasses

from jinbao_netops.collectors import db
from jinbao_netops.inventory.engines import ENGINES


class Cursor:
    def __init__(self, answers: dict[str, tuple[list[str], list[tuple]]], log: list[str]):
        self.answers, self.log, self.description, self.rows = answers, log, None, []

    def execute(self, query: str):
        self.log.append(query)
        names, self.rows = next(v for k, v in self.answers.items() if query.startswith(k))
        self.description = [(n,) for n in names]

    def fetchall(self):
        return self.rows

    def close(self):
        pass


class Conn:
    def __init__(self, answers, log):
        self.answers, self.log, self.closed = answers, log, False

    def cursor(self):
        return Cursor(self.answers, self.log)

    def close(self):
        self.closed = True


def target(monkeypatch, service: str, answers: dict, log: list, seen: list) -> db.DbTarget:
    def connect(host, port, user, password, timeout):
        seen.append((host, port, user, password))
        seen.append(conn := Conn(answers, log))
        return conn

    monkeypatch.setitem(db.ENGINES, service, dataclasses.replace(ENGINES[service], connect=connect))
    return db.DbTarget("panyu-db1", service, "10.254.44.21", "pw", {"province": "guangdong"})


def test_a_mariadb_replica_in_two_queries(monkeypatch):
    eng, log, seen = ENGINES["mariadb"], [], []
    health = [n for n, _ in eng.health]
    answers = {"SELECT (": (health, [tuple(["12"] * len(health))]),
               "SHOW ALL REPLICAS STATUS": (["Connection_name", "Slave_IO_Running", "Slave_SQL_Running",
                                            "Seconds_Behind_Master"], [("", "Yes", "Yes", 3)])}
    rec = db.check(target(monkeypatch, "mariadb", answers, log, seen))
    assert rec["up"] and rec["role"] == "replica" and rec["error"] is None
    assert rec["metrics"]["threads_connected"] == 12.0 and rec["metrics"]["replica_lag_s"] == 3.0
    assert rec["metrics"]["replica_io_running"] == 1.0 and rec["database_size_bytes"] == {}
    assert seen[0] == ("10.254.44.21", 3306, "netops_monitor", "pw") and seen[1].closed
    assert log == [eng.health_query(), "SHOW ALL REPLICAS STATUS"]


def test_a_postgresql_primary_with_sizes(monkeypatch):
    eng, log, seen = ENGINES["postgresql"], [], []
    health = [n for n, _ in eng.health]
    answers = {"SELECT (": (health, [tuple(range(len(health)))]),
               "SELECT pg_is_in_recovery": (["in_recovery", "replica_lag_s", "replicas"], [(0, 1.5, 1)]),
               "SELECT datname": (["datname", "pg_database_size"], [("postgres", 7_000_000), ("shebao", 9_000_000)])}
    rec = db.check(target(monkeypatch, "postgresql", answers, log, seen))
    assert rec["up"] and rec["role"] == "primary"
    assert rec["metrics"]["replicas"] == 1.0 and rec["metrics"]["replica_lag_s"] == 1.5
    assert rec["database_size_bytes"] == {"postgres": 7_000_000, "shebao": 9_000_000}
    assert seen[0][1] == 5432 and len(log) == 3 and seen[1].closed


def test_a_refusal_is_down_with_the_drivers_words(monkeypatch):
    def refuse(*a):
        raise ConnectionRefusedError("[Errno 111] Connection refused")

    monkeypatch.setitem(db.ENGINES, "postgresql", dataclasses.replace(ENGINES["postgresql"], connect=refuse))
    rec = db.check(db.DbTarget("gd-db1", "postgresql", "10.254.44.11", "pw", {}))
    assert not rec["up"] and rec["error"] == "ConnectionRefusedError: [Errno 111] Connection refused"
