"""The one database-engine table: every PostgreSQL / MariaDB difference the suite knows lives here.

As ``platforms.py`` is for vendors, this is for the services an inventory server runs
(``services: [postgresql, mariadb]``). The DB collector, backups, restores, verification, drills,
the lab's demo data and its monitoring role take what they run from a row here; the code that
drives them is one.

**The admin invocation.** Everything the suite does as an engine's administrator is a
:class:`Command`: an argv that starts with ``sudo -n -u <admin> --`` and, where there is one, a
script for its stdin. The same command runs over SSH as the operator (:attr:`Command.line`, one
POSIX shell line) and inside a lab node as root (:attr:`Command.argv`). SQL and secrets travel on
stdin, never in argv (argv is readable by every user of the node through /proc, and sudo logs it).
Names (databases, tables, roles, addresses) are data, quoted for the syntax they land in by that
syntax's one function in ``jinbao_netops.escape``: the engine's SQL (:meth:`Engine.ident`,
:meth:`Engine.literal`), libpq's connection string for a PostgreSQL database name, the shell line.

Queries whose answer the suite reads (:meth:`Engine.databases`, :meth:`Engine.exists`,
:meth:`Engine.fingerprint`) take a :data:`Run`: whatever runs a command on the node and returns its
standard output, raising its own error when the command fails (an SSH exec in backups, ``nsenter``
in the lab). Names come back hex-encoded, so any byte a name may hold survives the trip.
"""
from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from jinbao_netops import escape
from jinbao_netops.errors import ToolError, UsageError


@dataclass(frozen=True)
class Command:
    """One program run on a database node: its argv (no secret, no SQL) and what goes to its stdin."""
    argv: tuple[str, ...]
    input: str | None = None

    @property
    def line(self) -> str:
        """The same command as one POSIX shell line (what an SSH exec runs)."""
        return _shell_line(self.argv)


Run = Callable[[Command], str]  # runs a command on one node, returns its stdout; raises when it fails


def _shell_line(argv) -> str:
    return " ".join(escape.shell(a) for a in argv)


def _conninfo_dbname(db: str) -> str:
    """A PostgreSQL database name as a libpq connection string (a bare name holding '=' would be read as one)."""
    return "dbname=" + escape.conninfo(db)


def as_user(user: str, *argv: str) -> tuple[str, ...]:
    """``argv`` as ``user`` on a node: the operator's sudo over SSH, root's inside a lab node."""
    return ("sudo", "-n", "-u", user, "--", *argv)


def number(v) -> float:
    try:
        return float(v or 0)
    except (TypeError, ValueError):  # a status that is not a number ('ON', '') counts as 0
        return 0.0


# --- the collector's connections and replication readings (one small function per engine) ----------
def _psycopg(host: str, port: int, user: str, password: str, timeout: float):
    import psycopg

    return psycopg.connect(host=host, port=port, user=user, password=password, dbname="postgres",
                           connect_timeout=max(1, int(timeout)), application_name="netops-collect",
                           options=f"-c statement_timeout={int(timeout * 1000)}")


def _pymysql(host: str, port: int, user: str, password: str, timeout: float):
    import pymysql

    return pymysql.connect(host=host, port=port, user=user, password=password, connect_timeout=timeout,
                           read_timeout=timeout)


def _pg_replication(rows: list[dict]) -> dict[str, float]:
    return {k: number(v) for k, v in rows[0].items()}


def _mariadb_replication(rows: list[dict]) -> dict[str, float]:
    m = {"replicas_configured": float(len(rows))}
    if rows:
        r = rows[0]
        m.update(replica_io_running=float(r.get("slave_io_running") == "Yes"),
                 replica_sql_running=float(r.get("slave_sql_running") == "Yes"),
                 replica_lag_s=number(r.get("seconds_behind_master")))
    return m


def _mariadb_status(name: str) -> str:
    return f"SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = '{name}'"


def _pg_base_missing(data: bytes) -> list[str]:
    listing = subprocess.run(["tar", "-tf", "-"], input=data, capture_output=True)
    if listing.returncode != 0:
        return ["a readable tar: " + listing.stderr.decode(errors="replace").strip()[:200]]
    names = {n.removeprefix("./") for n in listing.stdout.decode(errors="replace").splitlines()}
    return sorted({"PG_VERSION", "backup_label", "global/pg_control"} - names)


GTID_MARK = re.compile(rb"^-- SET GLOBAL gtid_slave_pos='([0-9,-]*)';$", re.M)  # where a MariaDB base dump was taken


def _mariadb_base_missing(data: bytes) -> list[str]:
    return [what for what, ok in (("its GTID position (-- SET GLOBAL gtid_slave_pos)", GTID_MARK.search(data)),
                                  ("its end (-- Dump completed)", b"\n-- Dump completed" in data[-200:])) if not ok]


@dataclass(frozen=True, kw_only=True)
class Engine:
    service: str                  # the inventory's service name, which is also its systemd unit
    port: int
    admin: str                    # the OS account the engine trusts as its administrator on the local socket
    # programs: an argument holding "{db}" names the database (as database_arg writes it); without a
    # database it is left out and the client connects where the engine puts its administrator
    client: tuple[str, ...]       # the SQL client: a script on stdin, rows tab-separated without headers,
                                  # stops at the first error
    inline_sql: str               # the client's option for one statement in argv (only where stdin carries a stream)
    dump_program: tuple[str, ...]     # one database to stdout
    restore_program: tuple[str, ...]  # a dump on stdin into an existing, empty database
    dump_ext: str
    database_arg: Callable[[str], str]
    preamble: str                 # the first line of every script
    # SQL quoting
    ident_quote: str              # encloses an identifier (doubled inside it)
    literal_prefix: str           # before a quoted string whose backslashes are escapes
    # SQL: {db} a database identifier, {name} a string literal
    list_databases: str           # the business databases (not system, template or netops_ scratch), hex-encoded
    exists_sql: str               # a row if database {name} exists
    create_sql: str
    drop_sql: str
    tables_sql: str               # the current database's base tables: name parts hex-encoded, joined by '.'
    table_fingerprint: str        # for {table}: its row count, then a checksum of its rows, one line each
    # the lab's monitoring role: listen on the management address, admit the role from the management network
    listen_script: str            # POSIX sh, run as root: $1 the management address, $2 the network, $3 the role
    monitor_role_sql: str         # {role} identifier, {role_name}, {password}, {host} (the network) literals
    # the collector, as the monitoring role over the network
    connect: Callable             # (host, port, user, password, timeout) → a DB-API connection
    health: tuple[tuple[str, str], ...]  # metric → a scalar SQL expression
    replication: str              # rows describing replication, named columns
    replication_metrics: Callable[[list[dict]], dict[str, float]]  # those rows → metrics
    replica_metric: str           # the metric that is non-zero on a replica
    sizes: str | None = None      # (database, bytes) rows
    standby_sql: str | None = None  # "1" on a standby: what is written arrives by replication, not by the suite
    standby_has_roles: bool = False  # a standby's roles are its primary's (physical replication), not its own
    # a physical copy of the whole cluster, taken by an operator's role with REPLICATION only
    cluster_backup: tuple[str, ...] | None = None  # "{role}" the role
    cluster_backup_role: str | None = None         # SQL that creates the role if missing: {role}, {name}; None: the
                                                   # backup runs as the engine's administrator
    cluster_backup_file: str = ""                  # its name in the repository, under /DEVICE/SERVICE/
    # what a usable one lacks (its bytes → the missing parts, [] when it can be restored from)
    cluster_backup_missing: Callable[[bytes], list[str]] | None = None

    # --- quoting -------------------------------------------------------------------------------------
    def ident(self, name: str) -> str:
        """A quoted identifier (a database, a table, a role)."""
        return escape.sql_identifier(name, self.ident_quote)

    def literal(self, value: str) -> str:
        """A quoted string whose backslashes are escapes (PostgreSQL E'…', MariaDB's default sql_mode)."""
        return escape.sql_string(value, self.literal_prefix)

    # --- commands --------------------------------------------------------------------------------------
    def as_admin(self, *argv: str) -> tuple[str, ...]:
        """The admin invocation: ``argv`` as the engine's administrator."""
        return as_user(self.admin, *argv)

    def _program(self, template: tuple[str, ...], db: str | None) -> tuple[str, ...]:
        if db is None:
            return self.as_admin(*(a for a in template if "{db}" not in a))
        return self.as_admin(*(a.replace("{db}", self.database_arg(db)) for a in template))

    def sql(self, script: str, db: str | None = None) -> Command:
        """``script`` run by the administrator in ``db`` (default: no database named)."""
        return Command(self._program(self.client, db), self.preamble + script)

    def create(self, db: str) -> Command:
        return self.sql(self.create_sql.format(db=self.ident(db)))

    def drop(self, db: str) -> Command:
        return self.sql(self.drop_sql.format(db=self.ident(db)))

    def dump(self, db: str) -> Command:
        """One database to stdout."""
        return Command(self._program(self.dump_program, db))

    def load(self, db: str) -> Command:
        """A dump on stdin into ``db`` (created first)."""
        return Command(self._program(self.restore_program, db))

    def basebackup(self, role: str) -> Command:
        """The whole server on stdout, the base of a point-in-time recovery (backup/pitr.py). PostgreSQL: one tar
        (WAL fetched into it), taken as ``role``: the operator's login over the local socket (peer), a role with
        REPLICATION and nothing else, created if missing; restored by extracting it into an empty data directory of
        the same major version. MariaDB: a consistent dump of every database with the GTID position it was taken at,
        as the administrator; restored by loading it into a fresh instance, then the binary log from that position."""
        if self.cluster_backup is None:
            raise UsageError(f"{self.service}: the suite takes no cluster backup of this engine")
        if self.cluster_backup_role is None:
            return Command(self.as_admin(*self.cluster_backup))
        ensure = self._program(self.client, None) + (
            self.inline_sql, self.cluster_backup_role.format(role=self.ident(role), name=self.literal(role)))
        backup = tuple(a.replace("{role}", role) for a in self.cluster_backup)
        return Command(("sh", "-c", f"{_shell_line(ensure)} && {_shell_line(backup)}"))

    def monitor_role(self, role: str, password: str, network: IPv4Network) -> Command:
        """Create or update the least-privilege monitoring ``role`` with ``password``, admitted from
        ``network`` (any prefix length): the password is in the script on stdin, never in argv."""
        return self.sql(self.monitor_role_sql.format(
            role=self.ident(role), role_name=self.literal(role), password=self.literal(password),
            host=self.literal(f"{network.network_address}/{network.netmask}")))

    def listen_on(self, address: IPv4Address, network: IPv4Network, role: str) -> Command:
        """Serve on ``address`` too and let ``role`` in from ``network``; restarts the engine."""
        return Command(as_user("root", "sh", "-s", "--", str(address), str(network), role), self.listen_script)

    # --- queries ---------------------------------------------------------------------------------------
    def databases(self, run: Run) -> list[str]:
        """The business databases on the node."""
        return [bytes.fromhex(h).decode() for h in run(self.sql(self.list_databases)).split()]

    def exists(self, run: Run, db: str) -> bool:
        return bool(run(self.sql(self.exists_sql.format(name=self.literal(db)))).strip())

    def fingerprint(self, run: Run, db: str) -> dict[str, list[str]]:
        """Per base table of ``db``: [row count, checksum]. Taken from the source at backup time and
        from a restored copy, the two must be equal."""
        tables = [[bytes.fromhex(h).decode() for h in line.split(".")] for line in run(self.sql(self.tables_sql, db)).split()]
        if not tables:
            return {}
        script = "".join(self.table_fingerprint.format(table=".".join(map(self.ident, t))) for t in tables)
        lines = run(self.sql(script, db)).splitlines()
        if len(lines) != 2 * len(tables):
            raise ToolError(f"{self.service}: fingerprint of {db!r}: {len(lines)} lines for {len(tables)} tables")
        # the last field: MariaDB's CHECKSUM TABLE prints the table's name before its checksum
        return {".".join(t): [lines[2 * i].rsplit("\t", 1)[-1], lines[2 * i + 1].rsplit("\t", 1)[-1]]
                for i, t in enumerate(tables)}

    def is_standby(self, run: Run) -> bool:
        """A standby takes no writes: roles and data reach it from its primary."""
        return bool(self.standby_sql) and run(self.sql(self.standby_sql)).strip() == "1"

    def health_query(self) -> str:
        """One row: every health metric as a named column."""
        return "SELECT " + ", ".join(f"({expr}) AS {name}" for name, expr in self.health)


# the application_name of the WAL archive's receiver on a PostgreSQL server's backup store (backup/pitr.py): not a
# standby (it replays nothing), counted apart from them
WAL_ARCHIVER = "netops-wal"

POSTGRESQL = Engine(
    service="postgresql", port=5432, admin="postgres",
    client=("psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "--dbname={db}"), inline_sql="-c",
    dump_program=("pg_dump", "-Fc", "--dbname={db}"),
    restore_program=("pg_restore", "--no-owner", "--exit-on-error", "--dbname={db}"),
    dump_ext="pgdump", database_arg=_conninfo_dbname,
    preamble="SET client_encoding = 'UTF8';\n",
    ident_quote='"', literal_prefix="E",
    list_databases=r"""SELECT encode(convert_to(datname, 'UTF8'), 'hex') FROM pg_database
WHERE datallowconn AND NOT datistemplate AND datname <> 'postgres' AND datname NOT LIKE 'netops\_%' ORDER BY datname;
""",
    exists_sql="SELECT 1 FROM pg_database WHERE datname = {name};\n",
    create_sql="CREATE DATABASE {db};\n",
    drop_sql="DROP DATABASE IF EXISTS {db} WITH (FORCE);\n",
    tables_sql=r"""SELECT encode(convert_to(n.nspname, 'UTF8'), 'hex') || '.' || encode(convert_to(c.relname, 'UTF8'), 'hex')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_toast%'
ORDER BY n.nspname, c.relname;
""",
    table_fingerprint="SELECT count(*) FROM {table};\n"
                      "SELECT md5(coalesce(string_agg(t::text, chr(10) ORDER BY t::text), '')) FROM {table} t;\n",
    listen_script=r"""set -e
conf=$(ls -d /etc/postgresql/*/main | head -1)
printf "listen_addresses = 'localhost,%s'\n" "$1" > "$conf/conf.d/90-netops-monitor.conf"
rule="host all $3 $2 scram-sha-256"
grep -qxF "$rule" "$conf/pg_hba.conf" || printf '%s\n' "$rule" >> "$conf/pg_hba.conf"
systemctl restart postgresql
""",
    monitor_role_sql="""DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {role_name}) THEN CREATE ROLE {role} LOGIN; END IF;
END $$;
ALTER ROLE {role} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {password};
GRANT pg_monitor TO {role};
""",
    connect=_psycopg,
    health=(
        ("connections", "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"),
        ("max_connections", "SELECT setting::int FROM pg_settings WHERE name = 'max_connections'"),
        ("xact_commit", "SELECT COALESCE(sum(xact_commit), 0)::bigint FROM pg_stat_database"),
        ("xact_rollback", "SELECT COALESCE(sum(xact_rollback), 0)::bigint FROM pg_stat_database"),
        ("deadlocks", "SELECT COALESCE(sum(deadlocks), 0)::bigint FROM pg_stat_database"),
        ("longest_xact_s", "SELECT COALESCE(max(EXTRACT(EPOCH FROM now() - xact_start)), 0)::float FROM pg_stat_activity "
                           "WHERE xact_start IS NOT NULL AND pid <> pg_backend_pid()"),
    ),
    # a standby: its replay lag (0 when it has replayed all it received: an idle primary sends nothing to
    # replay, and the age of the last replayed transaction is not a lag); a primary: the largest among its standbys,
    # and how many of them its commits wait for now (synchronous_standby_names, as the server applies it: a standby
    # it does not name, or one still catching up, is not counted)
    replication="""SELECT pg_is_in_recovery()::int AS in_recovery,
  (CASE WHEN pg_is_in_recovery() THEN CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
        ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0) END
        ELSE (SELECT COALESCE(max(EXTRACT(EPOCH FROM replay_lag)), 0) FROM pg_stat_replication) END)::float AS replica_lag_s,
  (SELECT count(*) FROM pg_stat_replication WHERE application_name IS DISTINCT FROM '%(archiver)s') AS replicas,
  (SELECT count(*) FROM pg_stat_replication WHERE application_name IS DISTINCT FROM '%(archiver)s'
     AND sync_state IN ('sync', 'quorum')) AS sync_standbys,
  (SELECT count(*) FROM pg_stat_replication WHERE application_name = '%(archiver)s' AND state = 'streaming') AS wal_archivers""" % {
        "archiver": WAL_ARCHIVER},
    replication_metrics=_pg_replication, replica_metric="in_recovery",
    sizes="SELECT datname, pg_database_size(datname) FROM pg_database WHERE datallowconn ORDER BY datname",
    standby_sql="SELECT pg_is_in_recovery()::int;\n", standby_has_roles=True,
    cluster_backup=("pg_basebackup", "-h", "/var/run/postgresql", "-U", "{role}", "-d", "dbname=postgres",
                    "-D", "-", "-F", "tar", "-X", "fetch", "-c", "fast"),
    cluster_backup_role="DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {name}) THEN "
                        "CREATE ROLE {role} LOGIN REPLICATION; END IF; END $$",
    cluster_backup_file="base.tar", cluster_backup_missing=_pg_base_missing,
)

MARIADB = Engine(
    service="mariadb", port=3306, admin="root",
    client=("mariadb", "-N", "-B", "--default-character-set=utf8mb4", "--database={db}"), inline_sql="-e",
    dump_program=("mariadb-dump", "--single-transaction", "--routines", "--events", "--triggers", "--", "{db}"),
    restore_program=("mariadb", "--default-character-set=utf8mb4", "--database={db}"),
    dump_ext="sql", database_arg=str, preamble="",
    ident_quote="`", literal_prefix="",
    list_databases=r"""SELECT hex(schema_name) FROM information_schema.schemata
WHERE schema_name NOT IN ('information_schema', 'performance_schema', 'mysql', 'sys') AND schema_name NOT LIKE 'netops\_%'
ORDER BY schema_name;
""",
    exists_sql="SELECT 1 FROM information_schema.schemata WHERE schema_name = {name};\n",
    create_sql="CREATE DATABASE {db} CHARACTER SET utf8mb4;\n",
    drop_sql="DROP DATABASE IF EXISTS {db};\n",
    tables_sql="SELECT hex(table_name) FROM information_schema.tables WHERE table_schema = database() "
               "AND table_type = 'BASE TABLE' ORDER BY table_name;\n",
    table_fingerprint="SELECT count(*) FROM {table};\nCHECKSUM TABLE {table};\n",
    # accounts are admitted by address: no reverse lookup of each client (a node without DNS waits
    # its resolver's timeout on every connection, as long as the collector's)
    listen_script=r"""set -e
printf '[mysqld]\nbind-address = 0.0.0.0\nskip-name-resolve\n' > /etc/mysql/mariadb.conf.d/90-netops-monitor.cnf
systemctl restart mariadb
""",
    monitor_role_sql="""CREATE USER IF NOT EXISTS {role_name}@{host} IDENTIFIED BY {password};
ALTER USER {role_name}@{host} IDENTIFIED BY {password};
GRANT PROCESS, REPLICA MONITOR ON *.* TO {role_name}@{host};
""",
    connect=_pymysql,
    health=(
        ("threads_connected", _mariadb_status("THREADS_CONNECTED")),
        ("threads_running", _mariadb_status("THREADS_RUNNING")),
        ("max_connections", "@@GLOBAL.max_connections"),
        ("uptime_s", _mariadb_status("UPTIME")),
        ("questions", _mariadb_status("QUESTIONS")),
        ("innodb_buffer_pool_size_bytes", "@@GLOBAL.innodb_buffer_pool_size"),
        ("innodb_buffer_pool_pages_total", _mariadb_status("INNODB_BUFFER_POOL_PAGES_TOTAL")),
        ("innodb_buffer_pool_pages_free", _mariadb_status("INNODB_BUFFER_POOL_PAGES_FREE")),
        ("innodb_row_lock_waits", _mariadb_status("INNODB_ROW_LOCK_WAITS")),
        ("innodb_deadlocks", _mariadb_status("INNODB_DEADLOCKS")),
        # who reads the binary log now: its replicas and its archive (the monitoring role has PROCESS)
        ("binlog_readers", "SELECT count(*) FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'"),
    ),
    replication="SHOW ALL REPLICAS STATUS",
    replication_metrics=_mariadb_replication, replica_metric="replicas_configured",
    # its GTID position needs the binary log on, which `dr setup` turns on for the servers whose binary log it archives
    cluster_backup=("sh", "-c", "[ \"$(mariadb -N -B -e 'SELECT @@log_bin')\" = 1 ] || { echo 'the binary log is off: "
                    "netops dr setup turns it on and archives it' >&2; exit 1; }; exec mariadb-dump --all-databases "
                    "--single-transaction --gtid --master-data=2 --routines --events --triggers"),
    cluster_backup_file="base.sql", cluster_backup_missing=_mariadb_base_missing,
    # a replica applying its primary's binlog now (netops dr setup's GTID replication); the accounts stay its own
    standby_sql=f"SELECT ({_mariadb_status('SLAVES_RUNNING')}) > 0;\n",
)

ENGINES: dict[str, Engine] = {e.service: e for e in (POSTGRESQL, MARIADB)}
