"""Point-in-time recovery of PostgreSQL: WAL streamed continuously to the province backup store, and a restore
to any second between the oldest base backup and the last WAL received.

**The archive.** For every PostgreSQL server the backup policy takes base backups of (``basebackup:`` in
backup/policy.yml), `netops dr setup` runs ``pg_receivewal`` on the server's backup store as the systemd unit
``netops-wal@SERVER``: it connects to the server's management address as the replication role (REPLICATION and
nothing else, the role replication already uses; its password in a 0600 file of the store's postgres account, never
in argv), over TLS, through a physical slot of its own (the server keeps WAL until the store has it), and writes
every WAL record as it arrives, flushed (``--synchronous``), the current segment as ``.partial``: the archive is a
moment behind the server, not one 16 MB segment. The store pulls, so the database server holds no credential for
the store (an ``archive_command`` would push with one); pgBackRest would duplicate the restic repositories the base
backups already live in. The unit restarts after any error.

**A restore** (`netops dr pitr SERVER --to TIME --out FILE`) runs on the store, which has the engine's binaries: the
newest restic ``basebackup`` snapshot taken before TIME is streamed from the repository into a scratch directory,
started as a private instance (no TCP listener, its own socket directory) that replays the archived WAL and stops
before the first commit after TIME; every database is then dumped (``pg_dumpall --no-role-passwords``) into FILE on
the controller, and the scratch instance is removed, also when anything fails. Nothing on the database server
changes: the operator loads what they need from FILE.

After a failover the promoted server has a new timeline and the old one's WAL ends at the fault: ``dr setup`` on the
new steady state starts the archive again (the old archive is kept beside it), and PITR needs a base backup taken
after that.
"""
from __future__ import annotations

import os
import re
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

from jinbao_netops import escape
from jinbao_netops.access import Access
from jinbao_netops.errors import DeviceError, UsageError
from jinbao_netops.files import fsync_dir, out_path, write_error
from jinbao_netops.inventory import Inventory
from jinbao_netops.inventory.engines import ENGINES, MARIADB, POSTGRESQL, WAL_ARCHIVER

from . import binlog, replication
from .jobs import BASEBACKUP, Shell, policy, runner, ssh_shell
from .remote import store_of, unit_up
from .restic import Repo, ResticError

WAL_ROOT = "/var/lib/netops-wal"
APP = WAL_ARCHIVER   # the receiver's application_name, as the server's pg_stat_replication shows it
UNIT = "netops-wal@.service"


def slot(store: str) -> str:
    """The server's replication slot for its store's receiver."""
    return "netops_wal_" + re.sub(r"[^a-z0-9_]", "_", store)


def asset(server: str, service: str = POSTGRESQL.service) -> str:
    return f"{server}:{service}:{BASEBACKUP}"


def archived(inv: Inventory, scope: str | None = None) -> list[tuple[str, str]]:
    """(server, service) for every database in ``scope`` whose log is archived (PostgreSQL's WAL here, MariaDB's
    binary log in binlog.py): those the backup policy takes base backups of, but not a service the server only
    replicates."""
    devs = set(inv.scope(scope))
    return [(d, svc) for d in policy()["basebackup"] if d in devs for svc in inv.devices[d].primary_services
            if ENGINES[svc].cluster_backup]


def store(inv: Inventory, server: str) -> str:
    st = store_of(inv, inv.devices[server].site)
    if st is None:
        raise UsageError(f"{server}: no backup store at or above site {inv.devices[server].site} to archive its WAL to")
    return st.id


# The receiver: one instance per archived server. Any error ends the process (--no-loop) and systemd starts it
# again 5 s later; the slot is created by `dr setup` (a server that lost it, re-cloned or promoted, needs a new
# archive, which setup starts).
UNIT_TEXT = f"""# managed by netops dr setup: WAL archive of PostgreSQL server %i (point-in-time recovery)
[Unit]
Description=netops WAL archive of %i (pg_receivewal)
After=network-online.target

[Service]
User=postgres
EnvironmentFile={WAL_ROOT}/%i.env
Environment=PGSSLMODE=verify-full PGSSLROOTCERT={replication.PG_TLS}/ca.crt PGAPPNAME={APP} PGPASSFILE={WAL_ROOT}/%i.pgpass
ExecStart=/usr/bin/pg_receivewal --directory={WAL_ROOT}/%i --slot=${{SLOT}} --host=${{HOST}} --port=${{PORT}} --username=${{ROLE}} --no-password --synchronous --no-loop
Restart=always
RestartSec=5

[Install]
WantedBy=multi-user.target
"""

# as root on the store: $1 server, $2 unit text, $3 env file text, $4 "fresh" to start a new archive (the old kept
# aside); the passfile line on stdin. One line per change.
STORE_SCRIPT = r'''set -e
umask 077
dev="$1"; dir=%(root)s/$dev
put() {  # put FILE MODE OWNER: stdin becomes FILE if it differs
  cat > "$1.tmp"; chmod "$2" "$1.tmp"; chown "$3" "$1.tmp"
  if cmp -s "$1.tmp" "$1"; then rm -f "$1.tmp"; else mv "$1.tmp" "$1"; echo "$1"; restart=1; fi
}
install -d -o postgres -g postgres -m 0700 %(root)s
%(tls)sput "%(root)s/$dev.pgpass" 0600 postgres:postgres
put "%(root)s/$dev.env" 0600 root:root <<ENV
$3
ENV
if [ "$4" = fresh ] && [ -d "$dir" ] && [ -n "$(ls -A "$dir")" ]; then
  aside="$dir.until-$(date -u +%%Y%%m%%dT%%H%%M%%SZ)"; mv "$dir" "$aside"; echo "archive restarted, the old one kept as $aside"; restart=1
fi
[ -d "$dir" ] || { install -d -o postgres -g postgres -m 0700 "$dir"; echo "archive $dir"; }
''' % {"root": WAL_ROOT, "tls": replication.pg_tls("ca.crt")} + unit_up(UNIT)


# the receiver as the server sees it (replication.primary_view's row)
def _view(store_id: str) -> str:
    return replication.primary_view(slot(store_id), APP, "flush")


def setup(access: Access, inv: Inventory, server: str) -> list[str]:
    """Build (or repair) ``server``'s WAL archive on its store; what changed, one line each."""
    return build(ssh_shell(access), inv, server, replication.role_password(access, inv, server))


def build(shell: Shell, inv: Inventory, server: str, password: str) -> list[str]:
    """:func:`setup` over ``shell`` (a drill's, which restores the archive with the roles after a failback)."""
    st = store(inv, server)
    on_server, on_store = runner(shell, server, 120), runner(shell, st, 120)
    host, port = str(inv.devices[server].management), POSTGRESQL.port
    seen = replication.read_primary_view(on_server(POSTGRESQL.sql(_view(st))))
    changed: list[str] = []
    if seen["state"] != "streaming":
        on_server(POSTGRESQL.sql(replication.role_sql(password)))
    changed += [f"{server}: {ln}" for ln in replication.lines(on_server(replication.admit(
        inv, server, str(inv.devices[st].management))))]
    # a server with no slot for its receiver has either never been archived or lost its place in the WAL (re-cloned or
    # promoted after a failover): the slot is made and the archive starts again
    fresh = seen["slot_active"] is None
    changed += [f"{server}: {ln}" for ln in replication.lines(on_server(POSTGRESQL.sql(replication.slot_sql(slot(st), True))))]
    env = f"HOST={host}\nPORT={port}\nROLE={replication.ROLE}\nSLOT={slot(st)}"
    changed += [f"{st}: {ln}" for ln in replication.lines(on_store(replication.as_root(
        STORE_SCRIPT, server, UNIT_TEXT, env, "fresh" if fresh else "keep",
        input=f"{host}:{port}:replication:{replication.ROLE}:{escape.pgpass(password)}\n")))]
    replication.wait_until(st, lambda: replication.read_primary_view(on_server(POSTGRESQL.sql(_view(st))))["state"],
                           lambda state: state == "streaming",
                           f"the WAL archive of {server} is not streaming {{wait}} s after setup (state: {{seen}}); "
                           f"see journalctl -u netops-wal@{server} on {st} WAL 归档未开始")
    return changed


def status(access: Access, inv: Inventory, server: str) -> dict:
    """The archive as the server sees its receiver (state, bytes not yet flushed on the store) and the PITR window's
    start: the oldest base backup in the store's repository."""
    st = store(inv, server)
    row = {"server": server, "service": POSTGRESQL.service, "store": st, "state": "unknown", "lag_bytes": None, "slot_active": None,
           "pitr_from": None, "base_backups": 0, "ok": False, "problems": []}
    try:
        view = replication.read_primary_view(runner(ssh_shell(access), server, 60)(POSTGRESQL.sql(_view(st))))
        row.update(state=view["state"], lag_bytes=view["lag_bytes"], slot_active=view["slot_active"])
        if view["state"] != "streaming":
            row["problems"].append(f"the WAL archive on {st} is not receiving ({view['state']}); `netops dr setup` "
                                   "repairs it WAL 归档中断")
    except DeviceError as e:
        row["problems"].append(str(e))
    base_backups(access, st, server, POSTGRESQL.service, row)
    row["ok"] = not row["problems"]
    return row


def base_backups(access: Access, st: str, server: str, service: str, row: dict) -> None:
    """Into a status ``row``: how many base backups of ``server``'s ``service`` its store holds, and the oldest one's
    time, where the PITR window opens."""
    try:  # no repository yet: no base backup yet (the window opens with the first backup run), not a problem
        repo = Repo.on_store(access, st)
        snaps = repo.snapshots(f"asset={asset(server, service)}") if repo.exists() else []
        row["base_backups"] = len(snaps)
        row["pitr_from"] = min((s["time"] for s in snaps), default=None)
    except (DeviceError, ResticError) as e:
        row["problems"].append(str(e))


def parse_time(text: str) -> datetime:
    """``--to``: ISO 8601; without a zone it is the controller's local time (Beijing time on a province's host)."""
    try:
        t = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"--to {text!r}: not a time (ISO 8601, e.g. 2026-12-05T08:30:00+08:00) 时间格式错误") from None
    t = t.astimezone() if t.tzinfo is None else t
    if t > datetime.now(timezone.utc):
        raise UsageError(f"--to {text!r}: in the future 不能晚于当前时间")
    return t


# as root on the store: $1 the server, $2 the target time; the base backup's tar on stdin; the dump on stdout.
# Diagnostics on stderr, the replayed point as "NETOPS-REPLAYED <time>".
BEYOND = 5  # the restore script's exit status when the archive ends before the target time
RESTORE_SCRIPT = r'''set -eu
wal=%(root)s/$1; bin=
work=$(mktemp -d /var/tmp/netops-pitr.XXXXXX); data=$work/data
stop() {
  [ -z "$bin" ] || runuser -u postgres -- "$bin/pg_ctl" -D "$data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap stop EXIT
chown postgres:postgres "$work"; chmod 0700 "$work"
runuser -u postgres -- install -d -m 0700 "$data" "$work/run"
runuser -u postgres -- tar -x -C "$data" -f -
ver=$(cat "$data/PG_VERSION")
[ -x "/usr/lib/postgresql/$ver/bin/postgres" ] || { echo "PostgreSQL $ver is not installed on this store" >&2; exit 3; }
bin=/usr/lib/postgresql/$ver/bin
[ -d "$wal" ] || { echo "no WAL archive $wal (netops dr setup)" >&2; exit 3; }
runuser -u postgres -- sh -c 'cat > "$1/postgresql.conf"; printf "local all postgres peer\n" > "$1/pg_hba.conf"; touch "$1/recovery.signal"' sh "$data" <<CONF
listen_addresses = ''
unix_socket_directories = '$work/run'
ssl = off
archive_mode = off
hot_standby = off
restore_command = 'cp "$wal/%%f" "%%p" 2>/dev/null || cp "$wal/%%f.partial" "%%p"'
recovery_target_time = '$2'
recovery_target_action = 'promote'
CONF
runuser -u postgres -- "$bin/pg_ctl" -D "$data" -l "$work/log" -w -t 600 start >/dev/null || true
q() { runuser -u postgres -- "$bin/psql" -X -A -t -q -h "$work/run" -d postgres -c "$1" 2>/dev/null; }
i=0
until [ "$(q 'SELECT pg_is_in_recovery()')" = f ]; do
  i=$((i + 1))
  if [ $i -gt 600 ] || ! runuser -u postgres -- "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    if grep -q 'recovery ended before configured recovery target was reached' "$work/log"; then
      echo "NETOPS-BEYOND the archived WAL ends before $2" >&2; exit %(beyond)d
    fi
    echo "recovery to $2 did not complete: $({ grep -E 'FATAL|PANIC' "$work/log" || tail -n 1 "$work/log"; } | tail -n 1)" >&2
    exit 4
  fi
  sleep 1
done
echo "NETOPS-REPLAYED $(q 'SELECT pg_last_xact_replay_timestamp()')" >&2
runuser -u postgres -- "$bin/pg_dumpall" -h "$work/run" --no-role-passwords
''' % {"root": WAL_ROOT, "beyond": BEYOND}


def restore(access: Access, inv: Inventory, server: str, target: datetime, out: str | Path,
            shell: Shell | None = None, service: str | None = None) -> dict:
    """Recover ``server`` (its ``service``: the one archived, when it has one) as it was at ``target`` on its store
    and dump it into ``out`` (written atomically)."""
    services = [svc for d, svc in archived(inv) if d == server]
    if not services:
        raise UsageError(f"{server}: its log is not archived (only the servers listed under `basebackup:` in "
                         "backup/policy.yml are) 未归档日志")
    if service is None and len(services) > 1:
        raise UsageError(f"{server}: --service: it archives {', '.join(services)}; name one 请指定服务")
    service = service or services[0]
    if service not in services:
        raise UsageError(f"{server}: --service {service}: not archived here (archived: {', '.join(services)}) 该服务未归档")
    script, target_arg, read_replayed = RESTORERS[service]
    eng = ENGINES[service]
    dest = out_path(out, "--out")
    st = store(inv, server)
    shell = shell or ssh_shell(access)
    repo = Repo.on_store(access, st)
    snaps = sorted(repo.snapshots(f"asset={asset(server, service)}"), key=lambda s: s["time"])
    base = [s for s in snaps if datetime.fromisoformat(s["time"]) < target]
    if not base:
        first = snaps[0]["time"] if snaps else "none yet"
        raise UsageError(f"{server}: no base backup before {target.isoformat()} (the oldest: {first}); "
                         "PITR reaches back to the first base backup 无更早的基础备份")
    snap = base[-1]
    t0 = time.monotonic()
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    dump = subprocess.Popen(repo.cmd("dump", snap["id"], f"/{server}/{service}/{eng.cluster_backup_file}"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=repo.env())
    try:
        try:
            with open(tmp, "wb") as f:
                os.fchmod(f.fileno(), 0o600)  # a dump of business data
                p = subprocess.run([*shell(st), replication.as_root(script, server, target_arg(target)).line],
                                   stdin=dump.stdout, stdout=f, stderr=subprocess.PIPE, timeout=7200)
                os.fsync(f.fileno())
        except OSError as e:
            raise write_error(dest, e) from e
        dump.stdout.close()
        err = p.stderr.decode(errors="replace")
        if dump.wait(timeout=60) != 0:
            last = dump.stderr.read().decode(errors="replace").strip().splitlines()
            raise ResticError(f"{repo.name}: restic dump {snap['id'][:8]}: {last[-1] if last else 'failed'}")
        if p.returncode == BEYOND:
            raise UsageError(f"{server}: --to {target.isoformat()}: the archived WAL ends before that time (nothing has "
                             f"reached {st} for it yet); pick an earlier time 归档 WAL 尚未到达该时间，请选择更早的时间")
        if p.returncode != 0:
            last = [ln for ln in err.strip().splitlines() if not ln.startswith("NETOPS-")]
            raise DeviceError(st, f"point-in-time recovery of {server} to {target.isoformat()}: "
                                  f"{last[-1] if last else f'exit {p.returncode}'} 时间点恢复失败")
        os.replace(tmp, dest)
        fsync_dir(dest.parent)
    finally:
        if dump.poll() is None:
            dump.kill()
            dump.wait()
        tmp.unlink(missing_ok=True)
    replayed = next((ln.split(" ", 1)[1].strip() for ln in err.splitlines() if ln.startswith("NETOPS-REPLAYED")), None)
    return {"server": server, "service": service, "store": st, "to": target.isoformat(), "base_backup": snap["id"][:8],
            "base_backup_time": snap["time"], "last_transaction": read_replayed(replayed) if replayed else None, "out": str(dest),
            "bytes": dest.stat().st_size, "seconds": round(time.monotonic() - t0, 3)}


# per engine: the restore script run on the store, the target time as its second argument, the replayed point it
# reports → an ISO time
RESTORERS = {POSTGRESQL.service: (RESTORE_SCRIPT, lambda t: t.isoformat(), lambda v: v),
             MARIADB.service: (binlog.RESTORE_SCRIPT, binlog.target_arg, binlog.replayed_time)}
