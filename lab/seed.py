"""Demo business data for the lab twin: a 社保 (`shebao`) database on every database server.

A fresh lab's PostgreSQL and MariaDB hold only their system databases, so there is nothing for a
backup to protect or a drill to restore. `netops lab seed` gives every database service of the
inventory a small insured-persons database: PostgreSQL gets `cbry` (参保人员, insured persons),
MariaDB gets `jfjl` (缴费记录, contribution records). Identity-card numbers start with the
administrative division code of the server's site (or the nearest site above it that has one).
Idempotent: a database that already holds its table is left alone.
"""
from __future__ import annotations

DATABASE = "shebao"
ROWS = {"postgresql": 5000, "mariadb": 3000}

SQL = {
    "postgresql": (
        "CREATE TABLE IF NOT EXISTS cbry (id int PRIMARY KEY, sfzh char(18), xm text, jfjs numeric(12,2));"
        "INSERT INTO cbry SELECT g, '{prefix}' || lpad(g::text, 12, '0'),"
        " '参保人' || g, g * 1.5 FROM generate_series(1, {rows}) g ON CONFLICT DO NOTHING;"
        "SELECT count(*) FROM cbry;"),
    "mariadb": (
        "CREATE TABLE IF NOT EXISTS jfjl (id int PRIMARY KEY, sfzh char(18), je decimal(12,2));"
        "INSERT IGNORE INTO jfjl SELECT seq, concat('{prefix}', lpad(seq, 12, '0')),"
        " seq * 2.5 FROM seq_1_to_{rows};"
        "SELECT count(*) FROM jfjl;"),
}

# how to run SQL as the engine's administrator inside a node (local socket, no password)
CREATE = {
    "postgresql": ["sh", "-c", "runuser -u postgres -- psql -AtXq -c 'SELECT 1' -d {db} >/dev/null 2>&1 || "
                               "runuser -u postgres -- createdb {db}"],
    "mariadb": ["mariadb", "-e", "CREATE DATABASE IF NOT EXISTS {db} CHARACTER SET utf8mb4"],
}
RUN = {
    "postgresql": ["runuser", "-u", "postgres", "--", "psql", "-AtXq", "-v", "ON_ERROR_STOP=1", "-d", "{db}", "-c", "{sql}"],
    "mariadb": ["mariadb", "-NB", "{db}", "-e", "{sql}"],
}


def _fill(argv: list[str], **kw) -> list[str]:
    return [a.replace("{db}", kw["db"]).replace("{sql}", kw.get("sql", "")) for a in argv]


def seed(inv, lab, note=lambda m: None) -> list[dict]:
    """Create and fill the demo database on every database service; one record per service."""
    records = []
    for dev_id, dev in sorted(inv.devices.items()):
        for svc in dev.services:
            if svc not in SQL:
                continue
            code = next((s.code for s in [inv.sites[dev.site], *inv.ancestors(dev.site)] if s.code), "")
            prefix = (code + "000000")[:6]  # the administrative division code of the nearest site that has one
            note(f"seed {dev_id} {svc}")
            rec = {"device": dev_id, "service": svc, "database": DATABASE, "ok": False, "rows": 0, "error": None}
            r = lab.node(dev_id).exec(_fill(CREATE[svc], db=DATABASE), timeout=60)
            if r.returncode == 0:
                sql = SQL[svc].format(prefix=prefix, rows=ROWS[svc])
                r = lab.node(dev_id).exec(_fill(RUN[svc], db=DATABASE, sql=sql), timeout=120)
            if r.returncode == 0:
                rec.update(ok=True, rows=int(r.stdout.split()[-1]))
            else:
                rec["error"] = ((r.stderr or r.stdout).strip().splitlines() or ["failed"])[-1]
            records.append(rec)
    return records
