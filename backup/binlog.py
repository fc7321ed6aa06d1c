"""Point-in-time recovery of MariaDB: the binary log streamed continuously to the province backup store, and a restore
to any second between the oldest base backup and the last transaction received (pitr.py is PostgreSQL's).

**The archive.** For every MariaDB server the backup policy takes base backups of (``basebackup:`` in
backup/policy.yml), `netops dr setup` turns the server's binary log on (the same settings as a replication primary's,
gtid.py) and runs ``mariadb-binlog --read-from-remote-server --raw --stop-never`` on the server's backup store as the
systemd unit ``netops-binlog@SERVER``: it connects to the server's management address as the replication account
(REPLICATION SLAVE only, admitted from the store's address only, TLS required; the store verifies the server's
certificate against the site CA and the address), and writes the binary log files as the server writes them. The
store pulls, so the database server holds no credential for the store. The account's password is in a 0600 option
file of the store, never in argv. The unit restarts after any error, fetching the newest file again whole.

**A restore** (`netops dr pitr SERVER --to TIME --out FILE`) runs on the store: the newest restic ``basebackup``
snapshot taken before TIME (a consistent dump of every database with the GTID position it was taken at) is loaded
into a private scratch instance (no network, no grant tables, its own socket and directory), the archived binary
log from that position up to TIME is applied to it, and its business databases are dumped into FILE on the
controller; the scratch instance is removed, also when anything fails. Nothing on the database server changes.
"""
from __future__ import annotations

from datetime import datetime, timezone

from jinbao_netops.access import Access
from jinbao_netops.errors import DeviceError
from jinbao_netops.inventory import Inventory
from jinbao_netops.inventory.engines import MARIADB

from . import gtid, replication
from .jobs import Shell, runner, ssh_shell
from .remote import unit_up

ROOT = "/var/lib/netops-binlog"
UNIT = "netops-binlog@.service"

# %i the server; on (re)start the newest archived file is fetched again from its start, or the server's first one
UNIT_TEXT = f"""# managed by netops dr setup: binary log archive of MariaDB server %i (point-in-time recovery)
[Unit]
Description=netops binary log archive of %i (mariadb-binlog)
After=network-online.target

[Service]
EnvironmentFile={ROOT}/%i.env
WorkingDirectory={ROOT}/%i
ExecStart=/bin/sh -c 'last=$$(ls | tail -n 1); exec /usr/bin/mariadb-binlog --defaults-extra-file={ROOT}/%i.cnf --read-from-remote-server --raw --stop-never --stop-never-slave-server-id=$${{SID}} --result-file=./ "$${{last:-$${{FIRST}}}}"'
Restart=always
RestartSec=5
UMask=0077

[Install]
WantedBy=multi-user.target
"""


def option_value(text: str) -> str:
    """A value in a MariaDB option file: double-quoted, its backslashes and quotes escaped (one line)."""
    if any(c in text for c in "\n\r\0"):
        raise ValueError("an option value is one line")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# as root on the store: $1 server, $2 unit text, $3 env file text; the option file on stdin. One line per change.
STORE_SCRIPT = r'''set -e
umask 077
dev="$1"; dir=%(root)s/$dev
put() {  # put FILE: stdin becomes FILE (0600, root's) if it differs
  cat > "$1.tmp"
  if cmp -s "$1.tmp" "$1"; then rm -f "$1.tmp"; else mv "$1.tmp" "$1"; echo "$1"; restart=1; fi
}
install -d -m 0700 %(root)s
put "%(root)s/$dev.cnf"
printf '%%s\n' "$3" | put "%(root)s/$dev.env"
[ -d "$dir" ] || { install -d -m 0700 "$dir"; echo "archive $dir"; }
''' % {"root": ROOT} + unit_up(UNIT)

def _receiving(view: str) -> bool:
    return view.strip() != "-"


def setup(access: Access, inv: Inventory, server: str) -> list[str]:
    """Build (or repair) ``server``'s binary log archive on its store; what changed, one line each."""
    return build(ssh_shell(access), inv, server, replication.role_password(access, inv, server))


def build(shell: Shell, inv: Inventory, server: str, password: str) -> list[str]:
    from .pitr import store

    st = store(inv, server)
    on_server, on_store = runner(shell, server, 120), runner(shell, st, 120)
    host, store_address = str(inv.devices[server].management), str(inv.devices[st].management)
    changed = [f"{server}: {ln}" for ln in replication.lines(on_server(replication.as_root(
        gtid.SERVER_SCRIPT, gtid.primary_conf(inv, server), "ca.crt node.crt node.key")))]
    if not _receiving(on_server(MARIADB.sql(gtid.dump_thread(store_address)))):
        on_server(MARIADB.sql(gtid.account_sql(store_address, password)))
    first = on_server(MARIADB.sql("SHOW BINARY LOGS;\n")).split()[:1]
    env = f"SID={gtid.server_id(inv, st)}\nFIRST={first[0] if first else gtid.BINLOG + '.000001'}"
    options = ("[client]\n" + "".join(f"{k} = {option_value(v)}\n" for k, v in (
        ("host", host), ("port", str(MARIADB.port)), ("user", replication.ROLE), ("password", password),
        ("ssl-ca", f"{replication.NODE_TLS}/ca.crt"))) + "ssl-verify-server-cert\n")
    changed += [f"{st}: {ln}" for ln in replication.lines(on_store(replication.as_root(
        STORE_SCRIPT, server, UNIT_TEXT, env, input=options)))]
    replication.wait_until(st, lambda: on_server(MARIADB.sql(gtid.dump_thread(store_address))), _receiving,
                           f"the binary log archive of {server} is not receiving {{wait}} s after setup; "
                           f"see journalctl -u netops-binlog@{server} on {st} 二进制日志归档未开始")
    return changed


def status(access: Access, inv: Inventory, server: str) -> dict:
    """The archive as the server sees the store's connection, and the bytes of the server's current binary log file
    the store does not hold yet."""
    from .pitr import base_backups, store

    st = store(inv, server)
    row = {"server": server, "service": MARIADB.service, "store": st, "state": "unknown", "lag_bytes": None,
           "slot_active": None, "pitr_from": None, "base_backups": 0, "ok": False, "problems": []}
    shell = ssh_shell(access)
    try:
        on_server = runner(shell, server, 60)
        view = on_server(MARIADB.sql(gtid.dump_thread(str(inv.devices[st].management)))).strip()
        row["state"] = "streaming" if _receiving(view) else "disconnected"
        if not _receiving(view):
            row["problems"].append(f"the binary log archive on {st} is not receiving; `netops dr setup` repairs it "
                                   "二进制日志归档中断")
        written = on_server(MARIADB.sql(gtid.PRIMARY_POSITION)).split()
        if len(written) >= 2:
            size = runner(shell, st, 60)(replication.as_root(
                'stat -c %s "$1" 2>/dev/null || echo 0', f"{ROOT}/{server}/{written[0]}")).strip()
            row["lag_bytes"] = max(0, int(written[1]) - int(size or 0))
    except (DeviceError, ValueError) as e:
        row["problems"].append(str(e))
    base_backups(access, st, server, MARIADB.service, row)
    row["ok"] = not row["problems"]
    return row


# as root on the store: $1 the server, $2 the target time (UTC, "YYYY-MM-DD HH:MM:SS"); the base dump on stdin; the
# business databases' dump on stdout. Diagnostics on stderr, the last transaction applied as "NETOPS-REPLAYED <time>".
RESTORE_SCRIPT = r'''set -eu
arch=%(root)s/$1; target=$2; pid=
work=$(mktemp -d /var/tmp/netops-pitr.XXXXXX)
stop() {
  [ -z "$pid" ] || { kill "$pid"; wait "$pid"; } 2>/dev/null || true
  rm -rf "$work"
}
trap stop EXIT
[ -d "$arch" ] || { echo "no binary log archive $arch (netops dr setup)" >&2; exit 3; }
chown mysql:mysql "$work"; chmod 0700 "$work"
cat > "$work/base.sql"
pos=$(sed -n "s/^-- SET GLOBAL gtid_slave_pos='\([0-9,-]*\)';$/\1/p" "$work/base.sql" | head -n 1)
mariadb-install-db --no-defaults --user=mysql --datadir="$work/data" --skip-test-db >/dev/null 2>"$work/install.log" || {
  tail -n 1 "$work/install.log" >&2; exit 4; }
mariadbd --no-defaults --user=mysql --datadir="$work/data" --socket="$work/sock" --pid-file="$work/pid" \
  --skip-networking --skip-grant-tables --skip-log-bin --log-error="$work/error.log" &
pid=$!
sql() { mariadb --no-defaults --socket="$work/sock" -N -B "$@"; }
i=0; until sql -e 'SELECT 1' >/dev/null 2>&1; do
  i=$((i + 1)); [ $i -lt 120 ] && kill -0 "$pid" 2>/dev/null || { echo "scratch MariaDB did not start: $(tail -n 1 "$work/error.log")" >&2; exit 4; }
  sleep 0.5
done
sql < "$work/base.sql"
# the archive's files in order, from the base's position (each GTID exclusive) up to the target
set -- $(ls "$arch" | sed "s|^|$arch/|")
[ $# -gt 0 ] || { echo "the archive $arch holds no binary log yet" >&2; exit 3; }
TZ=UTC mariadb-binlog --no-defaults ${pos:+--start-position="$pos"} --stop-datetime="$target" "$@" > "$work/replay.sql"
sql < "$work/replay.sql"
last=$(sed -n 's/^#\([0-9]\{6\} [ 0-9][0-9]:[0-9][0-9]:[0-9][0-9]\) server id .*\bXid\b.*/\1/p' "$work/replay.sql" | tail -n 1)
echo "NETOPS-REPLAYED ${last:-none}" >&2
dbs=$(sql -e "SELECT schema_name FROM information_schema.schemata WHERE schema_name NOT IN
  ('information_schema', 'performance_schema', 'mysql', 'sys') ORDER BY 1")
[ -n "$dbs" ] || { echo "the recovered server holds no business database" >&2; exit 4; }
mariadb-dump --no-defaults --socket="$work/sock" --single-transaction --routines --events --triggers --databases $dbs
''' % {"root": ROOT}


def target_arg(t: datetime) -> str:
    """The restore script's target: UTC, as mariadb-binlog's --stop-datetime reads it under TZ=UTC."""
    return t.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def replayed_time(v: str) -> str | None:
    """The restore script's last applied transaction (an event header's ``YYMMDD HH:MM:SS``, UTC) as ISO 8601."""
    try:
        return datetime.strptime(" ".join(v.split()), "%y%m%d %H:%M:%S").replace(tzinfo=timezone.utc).isoformat()
    except ValueError:
        return None
