"""Database engines the suite backs up: one row per service, the commands that drive it.

Every command is a shell line run on the database node (over SSH as the operator, with sudo).
A fingerprint is, per table, the row count and a checksum of the rows: taken from the source at
backup time and from a restored copy, they must be equal.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass


def q(s: str) -> str:
    return shlex.quote(s)


_PG_FINGERPRINT = r"""
select format('%I.%I', n.nspname, c.relname),
  (xpath('/row/c/text()', query_to_xml(format('select count(*) as c from %I.%I', n.nspname, c.relname), false, true, '')))[1]::text,
  (xpath('/row/m/text()', query_to_xml(format('select md5(coalesce(string_agg(t::text, chr(10) order by t::text), '''')) as m from %I.%I t', n.nspname, c.relname), false, true, '')))[1]::text
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where c.relkind in ('r', 'p') and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg_toast%'
order by 1
"""


@dataclass(frozen=True)
class Engine:
    service: str
    dump_ext: str

    def list_databases(self) -> str: ...
    def dump(self, db: str) -> str: ...
    def fingerprint(self, db: str) -> str: ...
    def exists(self, db: str) -> str: ...
    def create(self, db: str) -> str: ...
    def drop(self, db: str) -> str: ...
    def load(self, db: str) -> str: ...


class Postgres(Engine):
    def list_databases(self):
        return "sudo -u postgres psql -AtXc " + q("select datname from pg_database where datallowconn and "
                                                  "not datistemplate and datname <> 'postgres' and datname not like 'netops\\_%' order by 1")

    def dump(self, db):
        return f"sudo -u postgres pg_dump -Fc {q(db)}"

    def fingerprint(self, db):
        return f"sudo -u postgres psql -AtX -F '\t' -d {q(db)} -c {q(_PG_FINGERPRINT)}"

    def exists(self, db):
        return "sudo -u postgres psql -AtXc " + q(f"select 1 from pg_database where datname = '{db}'")

    def create(self, db):
        return f"sudo -u postgres createdb {q(db)}"

    def drop(self, db):
        return f"sudo -u postgres dropdb --if-exists --force {q(db)}"

    def load(self, db):
        return f"sudo -u postgres pg_restore --no-owner --exit-on-error -d {q(db)}"

    def basebackup(self, role: str) -> str:
        """The whole cluster as one tar on stdout (WAL fetched into it), taken as ``role``: the operator's
        login over the local socket (peer), a role with REPLICATION and nothing else; created if missing.
        Restore: extract into an empty data directory of the same major version and start PostgreSQL."""
        ensure = (f"do $$ begin if not exists (select from pg_roles where rolname = '{role}') then "
                  f"execute format('create role %I login replication', '{role}'); end if; end $$")
        return (f"sudo -u postgres psql -qAtX -c {q(ensure)} && "
                f"pg_basebackup -h /var/run/postgresql -U {q(role)} -d dbname=postgres -D - -F tar -X fetch -c fast")


class MariaDB(Engine):
    _SYSTEM = "'information_schema','performance_schema','mysql','sys'"

    def list_databases(self):
        return "sudo mariadb -NBe " + q(f"select schema_name from information_schema.schemata where schema_name not in "
                                        f"({self._SYSTEM}) and schema_name not like 'netops\\_%' order by 1")

    def dump(self, db):
        return f"sudo mariadb-dump --single-transaction --routines --events --triggers {q(db)}"

    def fingerprint(self, db):
        # per table: name, count(*), CHECKSUM TABLE; one shell line, tables listed on the node
        lst = q(f"select table_name from information_schema.tables where table_schema = '{db}' "
                "and table_type = 'BASE TABLE' order by 1")
        return (f"for t in $(sudo mariadb -NBe {lst}); do "
                f"n=$(sudo mariadb -NB {q(db)} -e \"select count(*) from \\`$t\\`\"); "
                f"c=$(sudo mariadb -NB {q(db)} -e \"checksum table \\`$t\\`\" | cut -f2); "
                "printf '%s\\t%s\\t%s\\n' \"$t\" \"$n\" \"$c\"; done")

    def exists(self, db):
        return "sudo mariadb -NBe " + q(f"select 1 from information_schema.schemata where schema_name = '{db}'")

    def create(self, db):
        return "sudo mariadb -e " + q(f"create database `{db}`")

    def drop(self, db):
        return "sudo mariadb -e " + q(f"drop database if exists `{db}`")

    def load(self, db):
        return f"sudo mariadb {q(db)}"


ENGINES: dict[str, Engine] = {"postgresql": Postgres("postgresql", "pgdump"), "mariadb": MariaDB("mariadb", "sql")}


def parse_fingerprint(text: str) -> dict[str, list[str]]:
    out = {}
    for line in text.splitlines():
        if line.strip():
            name, count, checksum = (line.split("\t") + ["", ""])[:3]
            out[name] = [count, checksum]
    return out
