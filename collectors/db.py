"""Database health over the network with a least-privilege monitoring role (never a superuser).

PostgreSQL: the role is a member of ``pg_monitor`` (reads pg_stat_* and sizes); MariaDB: the user has
``PROCESS, REPLICA MONITOR`` only. The role's name is ``netops_monitor``; its password is the inventory
profile's ``db_password`` reference. What each engine is asked (health, replication, sizes) and how
the role is set up come from the engine table (``inventory/engines.py``). ``prepare_lab`` creates
the role in the lab twin, makes the servers listen on their management address and admits the role
from exactly the inventory's management network (``address_plan.management``).
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from jinbao_netops.access import secret
from jinbao_netops.errors import UsageError
from jinbao_netops.inventory.engines import ENGINES, number

from .targets import LABELS, labels

ROLE = "netops_monitor"


@dataclass
class DbTarget:
    device: str
    service: str
    address: str
    password: str
    labels: dict
    timeout: float = 5.0

    def record(self) -> dict:
        return {"device": self.device, "service": self.service, "address": self.address, **self.labels}


def targets(inv, devices: list[str], environ=None) -> list[DbTarget]:
    wanted = [(d, s) for d in devices for s in inv.devices[d].services]
    if not wanted:
        return []
    out = []
    for d, svc in wanted:
        profile = inv.devices[d].credentials
        try:
            password = secret(inv, profile, "db_password", inv.credentials[profile].db_password, environ)
        except UsageError as e:
            raise UsageError(f"{e} (the {ROLE} role's password), or pass --no-db") from None
        out.append(DbTarget(d, svc, str(inv.devices[d].management), password, labels(inv, d)))
    return out


def _rows(cursor, query: str) -> list[dict]:
    cursor.execute(query)
    names = [d[0].lower() for d in cursor.description or []]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def check_engine(t: DbTarget) -> dict:
    """Health, replication and sizes from the engine table's queries, as the monitoring role."""
    eng = ENGINES[t.service]
    conn = eng.connect(t.address, eng.port, ROLE, t.password, t.timeout)
    try:
        with closing(conn.cursor()) as c:
            [health] = _rows(c, eng.health_query())
            m = {k: number(v) for k, v in health.items()}
            m.update(eng.replication_metrics(_rows(c, eng.replication)))
            sizes = {}
            if eng.sizes:
                c.execute(eng.sizes)
                sizes = dict(c.fetchall())
    finally:
        conn.close()
    return {"role": "replica" if m[eng.replica_metric] else "primary", "metrics": m, "database_size_bytes": sizes}


def check(t: DbTarget) -> dict:
    start = time.monotonic()
    rec = t.record()
    try:
        rec.update(check_engine(t), up=True, error=None)
    except Exception as e:  # any driver error means "not healthy"; the message says which
        rec.update(up=False, error=f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}",
                   role=None, metrics={}, database_size_bytes={})
    rec["duration_s"] = round(time.monotonic() - start, 3)
    return rec


def check_all(ts: list[DbTarget], workers: int = 16) -> list[dict]:
    if not ts:
        return []
    with ThreadPoolExecutor(min(workers, len(ts))) as pool:
        return list(pool.map(check, ts))


def table_rows(health: list[dict]) -> list[list]:
    rows = []
    for h in health:
        m = h["metrics"]
        conn = m.get("connections", m.get("threads_connected"))
        size = sum(h["database_size_bytes"].values()) if h["database_size_bytes"] else None
        rows.append([h["device"], h["service"], "✓" if h["up"] else "✗", h["role"] or "",
                     f"{conn:.0f}/{m['max_connections']:.0f}" if conn is not None else "",
                     f"{m['replica_lag_s']:.1f}" if "replica_lag_s" in m else "",
                     f"{size / 2**20:.0f} MiB" if size else "", f"{m['longest_xact_s']:.1f}" if "longest_xact_s" in m else "",
                     h["error"] or ""])
    return rows


# --- exposition ---------------------------------------------------------------------------------
GAUGES = {  # metric key → (name, help)
    "connections": ("netops_pg_connections", "Client backends connected"),
    "max_connections": ("netops_db_max_connections", "max_connections"),
    "in_recovery": ("netops_pg_in_recovery", "1 on a standby"),
    "replica_lag_s": ("netops_db_replication_lag_seconds", "Replay lag (standby) or the largest replica lag (primary)"),
    "replicas": ("netops_pg_replicas", "Standbys streaming from this primary"),
    "sync_standbys": ("netops_pg_sync_standbys", "Standbys this primary's commits wait for now (sync_state sync or quorum)"),
    "wal_archivers": ("netops_pg_wal_archivers", "WAL archive receivers streaming from this server (point-in-time recovery)"),
    "longest_xact_s": ("netops_pg_longest_transaction_seconds", "Age of the oldest open transaction"),
    "threads_connected": ("netops_mysql_threads_connected", "Threads_connected"),
    "threads_running": ("netops_mysql_threads_running", "Threads_running"),
    "uptime_s": ("netops_mysql_uptime_seconds", "Uptime"),
    "innodb_buffer_pool_size_bytes": ("netops_mysql_innodb_buffer_pool_size_bytes", "innodb_buffer_pool_size"),
    "innodb_buffer_pool_pages_total": ("netops_mysql_innodb_buffer_pool_pages", "Buffer pool pages"),
    "innodb_buffer_pool_pages_free": ("netops_mysql_innodb_buffer_pool_free_pages", "Free buffer pool pages"),
    "replicas_configured": ("netops_mysql_replica_channels", "Replication channels configured"),
    "replica_io_running": ("netops_mysql_replica_io_running", "1 if the replica IO thread runs"),
    "replica_sql_running": ("netops_mysql_replica_sql_running", "1 if the replica SQL thread runs"),
    "binlog_readers": ("netops_mysql_binlog_readers", "Binary log readers connected: replicas and the binary log archive"),
}
COUNTERS = {
    "xact_commit": ("netops_pg_xact_commits", "Transactions committed (all databases)"),
    "xact_rollback": ("netops_pg_xact_rollbacks", "Transactions rolled back (all databases)"),
    "deadlocks": ("netops_pg_deadlocks", "Deadlocks detected (all databases)"),
    "questions": ("netops_mysql_questions", "Statements executed"),
    "innodb_row_lock_waits": ("netops_mysql_innodb_row_lock_waits", "InnoDB row lock waits"),
    "innodb_deadlocks": ("netops_mysql_innodb_deadlocks", "InnoDB deadlocks"),
}


def db_families(health: list[dict]):
    lab = [*LABELS, "service"]
    up = GaugeMetricFamily("netops_db_up", "1 if the database answered the monitoring role", labels=lab)
    size = GaugeMetricFamily("netops_pg_database_size_bytes", "pg_database_size", labels=[*lab, "database"])
    gauges = {k: GaugeMetricFamily(n, h, labels=lab) for k, (n, h) in GAUGES.items()}
    counters = {k: CounterMetricFamily(n, h, labels=lab) for k, (n, h) in COUNTERS.items()}
    for h in health:
        lv = [h.get(k, "") for k in LABELS] + [h["service"]]
        up.add_metric(lv, 1 if h["up"] else 0)
        for k, v in h["metrics"].items():
            fam = gauges.get(k) or counters.get(k)
            if fam is not None:
                fam.add_metric(lv, v)
        for db, b in h["database_size_bytes"].items():
            size.add_metric([*lv, db], b)
    yield up
    yield size
    yield from gauges.values()
    yield from counters.values()


# --- the lab twin: the monitoring role, listening on the management address ---------------------------
def _error_line(text: str, password: str) -> str:
    """The client's error line (psql and mariadb may quote the failing statement after it), the
    password blotted out should it appear."""
    lines = [ln for ln in text.strip().splitlines() if ln.strip()] or ["failed"]
    return next((ln for ln in lines if "ERROR" in ln), lines[-1]).replace(password, "********")


def prepare_lab(inv, lab, note=lambda m: None) -> dict:
    """Create the monitoring role on every lab database server (additive, idempotent). The password
    goes to the engine's SQL client on stdin, never in a command line; the report names the variable
    that holds it (``netops lab env`` exports it), never its value."""
    refs = [inv.credentials[dev.credentials].db_password for dev in inv.devices.values() if dev.services]
    if None in refs or any(r.vault for r in refs):
        raise UsageError(f"{inv.root}: credentials: field 'db_password': every profile used by a database server "
                         "needs {env: NAME}")
    values = lab.secrets()  # the lab generated them with the rest of its credentials
    missing = sorted(r.env for r in refs if r.env not in values)
    if missing:
        raise UsageError(f"lab {lab.name!r} has no value for {', '.join(missing)} (it was built from another "
                         "inventory); rebuild it: netops lab down && netops lab up")
    mgmt = inv.network.address_plan.management
    done, problems = [], []
    for d, dev in sorted(inv.devices.items()):
        for svc in dev.services:
            eng = ENGINES[svc]
            password = values[inv.credentials[dev.credentials].db_password.env]
            note(f"prepare {d} {svc}")
            role = [eng.monitor_role(ROLE, password, mgmt)]
            if eng.standby_has_roles:  # a standby has the role from its primary, and takes no writes
                probe = eng.sql(eng.standby_sql)
                r = lab.node(d).exec(list(probe.argv), input=probe.input, timeout=90)
                if r.returncode != 0:
                    problems.append(f"{d} {svc}: {_error_line(r.stderr or r.stdout, password)}")
                    continue
                role = [] if r.stdout.strip() == "1" else role
            for cmd in (*role, eng.listen_on(dev.management, mgmt, ROLE)):
                r = lab.node(d).exec(list(cmd.argv), input=cmd.input, timeout=90)
                if r.returncode != 0:
                    problems.append(f"{d} {svc}: {_error_line(r.stderr or r.stdout, password)}")
                    break
            else:
                done.append(f"{d}/{svc}")
    return {"ok": not problems, "prepared": done, "problems": problems,
            "password_env": sorted({r.env for r in refs})}
