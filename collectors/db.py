"""Database health over the network with a least-privilege monitoring role (never a superuser).

PostgreSQL: the role is a member of ``pg_monitor`` (reads pg_stat_* and sizes); MariaDB: the user has
``PROCESS, REPLICA MONITOR`` only. The role's name is ``netops_monitor``; its password is the inventory
profile's ``db_password`` reference. ``prepare_lab`` creates the role in the lab twin, makes
the servers listen on their management address and admits the role from the management network.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from jinbao_netops.access import secret
from jinbao_netops.errors import UsageError

from .targets import LABELS, labels

ROLE = "netops_monitor"
PORTS = {"postgresql": 5432, "mariadb": 3306}


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


PG_QUERIES = {
    "connections": "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'",
    "max_connections": "SELECT setting::int FROM pg_settings WHERE name = 'max_connections'",
    "in_recovery": "SELECT pg_is_in_recovery()::int",
    "replica_lag_s": "SELECT COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0)::float "
                     "WHERE pg_is_in_recovery() UNION ALL SELECT COALESCE(max(EXTRACT(EPOCH FROM replay_lag)), 0)::float "
                     "FROM pg_stat_replication WHERE NOT pg_is_in_recovery()",
    "replicas": "SELECT count(*) FROM pg_stat_replication",
    "xact_commit": "SELECT COALESCE(sum(xact_commit), 0)::bigint FROM pg_stat_database",
    "xact_rollback": "SELECT COALESCE(sum(xact_rollback), 0)::bigint FROM pg_stat_database",
    "deadlocks": "SELECT COALESCE(sum(deadlocks), 0)::bigint FROM pg_stat_database",
    "longest_xact_s": "SELECT COALESCE(max(EXTRACT(EPOCH FROM now() - xact_start)), 0)::float FROM pg_stat_activity "
                      "WHERE xact_start IS NOT NULL AND pid <> pg_backend_pid()",
}


def check_postgresql(t: DbTarget) -> dict:
    import psycopg

    with psycopg.connect(host=t.address, port=PORTS["postgresql"], user=ROLE, password=t.password,
                         dbname="postgres", connect_timeout=max(1, int(t.timeout)), application_name="netops-collect",
                         options=f"-c statement_timeout={int(t.timeout * 1000)}") as conn:
        m = {k: conn.execute(q).fetchone()[0] for k, q in PG_QUERIES.items()}
        sizes = dict(conn.execute("SELECT datname, pg_database_size(datname) FROM pg_database "
                                  "WHERE datallowconn ORDER BY datname").fetchall())
    return {"role": "replica" if m["in_recovery"] else "primary", "metrics": {k: float(v) for k, v in m.items()},
            "database_size_bytes": sizes}


def check_mariadb(t: DbTarget) -> dict:
    import pymysql

    conn = pymysql.connect(host=t.address, port=PORTS["mariadb"], user=ROLE, password=t.password,
                           connect_timeout=t.timeout, read_timeout=t.timeout)
    try:
        with conn.cursor() as c:
            c.execute("SHOW GLOBAL STATUS")
            st = {k.lower(): v for k, v in c.fetchall()}
            c.execute("SHOW GLOBAL VARIABLES WHERE Variable_name IN ('max_connections', 'innodb_buffer_pool_size')")
            var = {k.lower(): v for k, v in c.fetchall()}
            c.execute("SHOW ALL REPLICAS STATUS")
            cols = [d[0].lower() for d in c.description or []]
            replicas = [dict(zip(cols, row)) for row in c.fetchall()]
    finally:
        conn.close()

    def num(d, k):
        try:
            return float(d.get(k) or 0)
        except ValueError:
            return 0.0

    m = {"threads_connected": num(st, "threads_connected"), "threads_running": num(st, "threads_running"),
         "max_connections": num(var, "max_connections"), "uptime_s": num(st, "uptime"),
         "questions": num(st, "questions"),
         "innodb_buffer_pool_size_bytes": num(var, "innodb_buffer_pool_size"),
         "innodb_buffer_pool_pages_total": num(st, "innodb_buffer_pool_pages_total"),
         "innodb_buffer_pool_pages_free": num(st, "innodb_buffer_pool_pages_free"),
         "innodb_row_lock_waits": num(st, "innodb_row_lock_waits"),
         "innodb_deadlocks": num(st, "innodb_deadlocks"),
         "replicas_configured": float(len(replicas))}
    if replicas:
        r = replicas[0]
        m["replica_io_running"] = float(r.get("slave_io_running") == "Yes")
        m["replica_sql_running"] = float(r.get("slave_sql_running") == "Yes")
        m["replica_lag_s"] = num(r, "seconds_behind_master")
    return {"role": "replica" if replicas else "primary", "metrics": m, "database_size_bytes": {}}


CHECKS = {"postgresql": check_postgresql, "mariadb": check_mariadb}


def check(t: DbTarget) -> dict:
    start = time.monotonic()
    rec = t.record()
    try:
        rec.update(CHECKS[t.service](t), up=True, error=None)
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
PG_SETUP = r"""set -e
conf=$(ls -d /etc/postgresql/*/main | head -1)
cat > "$conf/conf.d/90-netops-monitor.conf" <<EOF
listen_addresses = 'localhost,{address}'
EOF
grep -q '{role} .*{net}' "$conf/pg_hba.conf" || echo 'host all {role} {net} scram-sha-256' >> "$conf/pg_hba.conf"
runuser -u postgres -- psql -v ON_ERROR_STOP=1 -qc "DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN CREATE ROLE {role} LOGIN; END IF; END \$\$;"
runuser -u postgres -- psql -v ON_ERROR_STOP=1 -qc "ALTER ROLE {role} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '{password}'; GRANT pg_monitor TO {role};"
systemctl restart postgresql
"""

MARIADB_SETUP = r"""set -e
cat > /etc/mysql/mariadb.conf.d/90-netops-monitor.cnf <<EOF
[mysqld]
bind-address = 0.0.0.0
EOF
mariadb -e "CREATE USER IF NOT EXISTS '{role}'@'{host}' IDENTIFIED BY '{password}';
  ALTER USER '{role}'@'{host}' IDENTIFIED BY '{password}';
  GRANT PROCESS, REPLICA MONITOR ON *.* TO '{role}'@'{host}';"
systemctl restart mariadb
"""


def prepare_lab(inv, lab, note=lambda m: None) -> dict:
    """Create the monitoring role on every lab database server (additive, idempotent)."""
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
    host_pattern = ".".join(str(mgmt.network_address).split(".")[:2]) + ".%"  # 10.254.%
    done, problems = [], []
    for d, dev in sorted(inv.devices.items()):
        for svc in dev.services:
            ref = inv.credentials[dev.credentials].db_password
            script = (PG_SETUP if svc == "postgresql" else MARIADB_SETUP).format(
                role=ROLE, password=values[ref.env], address=dev.management, net=mgmt, host=host_pattern)
            note(f"prepare {d} {svc}")
            r = lab.node(d).exec(["sh", "-c", script], timeout=90)
            if r.returncode != 0:
                problems.append(f"{d} {svc}: {(r.stderr or r.stdout).strip().splitlines()[-1:]}")
            else:
                done.append(f"{d}/{svc}")
    return {"ok": not problems, "prepared": done, "problems": problems,
            "env": {r.env: values[r.env] for r in refs}}  # one entry per variable
