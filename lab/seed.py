"""Demo business data for the lab twin: a 社保 (`shebao`) database on every database server.

A fresh lab's PostgreSQL and MariaDB hold only their system databases, so there is nothing for a
backup to protect or a drill to restore. `netops lab seed` gives every database service of the
inventory a small insured-persons database: PostgreSQL gets `cbry` (参保人员, insured persons),
MariaDB gets `jfjl` (缴费记录, contribution records). Identity-card numbers start with the
administrative division code of the server's site (or the nearest site above it that has one).
Idempotent: a database that already holds its table is left alone. The SQL runs as the engine's
administrator through the engine table's admin invocation, the script on the client's stdin.
"""
from __future__ import annotations

import time

from jinbao_netops.inventory.engines import ENGINES, Command

from .runtime import LabError

DATABASE = "shebao"
CATCH_UP_S = 30  # how long a standby may take to show its primary's rows
ROWS = {"postgresql": 5000, "mariadb": 3000}

# {prefix}: the division code as the engine's string literal; {rows}: how many rows; the last line counts them
SQL = {
    "postgresql": (
        "CREATE TABLE IF NOT EXISTS cbry (id int PRIMARY KEY, sfzh char(18), xm text, jfjs numeric(12,2));\n"
        "INSERT INTO cbry SELECT g, {prefix} || lpad(g::text, 12, '0'),"
        " '参保人' || g, g * 1.5 FROM generate_series(1, {rows}) g ON CONFLICT DO NOTHING;\n"
        "SELECT count(*) FROM cbry;\n"),
    "mariadb": (
        "CREATE TABLE IF NOT EXISTS jfjl (id int PRIMARY KEY, sfzh char(18), je decimal(12,2));\n"
        "INSERT IGNORE INTO jfjl SELECT seq, concat({prefix}, lpad(seq, 12, '0')),"
        " seq * 2.5 FROM seq_1_to_{rows};\n"
        "SELECT count(*) FROM jfjl;\n"),
}


def node_runner(lab, node: str):
    """Runs the engine table's commands in a lab node as root; a failure is a LabError with its last line."""
    def run(cmd: Command) -> str:
        r = lab.node(node).exec(list(cmd.argv), input=cmd.input, timeout=120)
        if r.returncode != 0:
            raise LabError(((r.stderr or r.stdout).strip().splitlines() or ["failed"])[-1])
        return r.stdout
    return run


def _replicated(eng, svc: str, run, want: int) -> int:
    """The rows a standby shows once it has replayed ``want`` of them (an asynchronous one a moment after
    its primary committed), or what it shows after CATCH_UP_S seconds."""
    deadline = time.monotonic() + CATCH_UP_S
    while True:
        rows = int(run(eng.sql(SQL[svc].splitlines()[-1] + "\n", DATABASE)).split()[-1]) if eng.exists(run, DATABASE) else 0
        if rows == want or time.monotonic() > deadline:
            return rows
        time.sleep(0.5)


def seed(inv, lab, note=lambda m: None) -> list[dict]:
    """Create and fill the demo database on every database service; one record per service."""
    records = []
    # primaries first: a standby's rows are counted against its primary's
    for dev_id, dev in sorted(inv.devices.items(), key=lambda kv: (kv[1].replica is not None, kv[0])):
        for svc in dev.services:
            eng = ENGINES[svc]
            code = next((s.code for s in [inv.sites[dev.site], *inv.ancestors(dev.site)] if s.code), "")
            prefix = (code + "000000")[:6]  # the administrative division code of the nearest site that has one
            note(f"seed {dev_id} {svc}")
            rec = {"device": dev_id, "service": svc, "database": DATABASE, "ok": False, "rows": 0, "error": None}
            run = node_runner(lab, dev_id)
            try:
                if eng.is_standby(run):  # filled by its primary (sorted before it), through replication
                    want = next((r["rows"] for r in records if r["device"] == dev.replica.of and r["service"] == svc), 0) \
                        if dev.replica else 0
                    rec.update(standby=True, rows=_replicated(eng, svc, run, want))
                    rec.update(ok=rec["rows"] == want, error=None if rec["rows"] == want else
                               f"the standby has {rec['rows']} of its primary's {want} rows after {CATCH_UP_S} s")
                    records.append(rec)
                    continue
                if not eng.exists(run, DATABASE):
                    run(eng.create(DATABASE))
                out = run(eng.sql(SQL[svc].format(prefix=eng.literal(prefix), rows=ROWS[svc]), DATABASE))
                rec.update(ok=True, rows=int(out.split()[-1]))
            except LabError as e:
                rec["error"] = str(e)
            records.append(rec)
    return records
