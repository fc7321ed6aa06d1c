"""MariaDB GTID replication for `netops dr setup` and `netops dr status` (PostgreSQL pairs are replication.py's).

A county's MariaDB is copied, asynchronously, to a replica at its province data centre (``replica: {of: PRIMARY,
service: mariadb}`` on the replica's device). Each step checks first and changes only what differs:

- on the primary: its binary log (``log_bin``, ``binlog_format = ROW`` so every row change is replicated as data,
  not as a statement to re-run), a ``server_id`` and a GTID domain of its own (both its management address as a
  number: unique across the network, stable), TLS with the node's certificate (the site PKI's, as PostgreSQL uses),
  and the account ``netops_replication``: REPLICATION SLAVE only, admitted from the replica's business address
  only, ``REQUIRE SSL``, its password the credentials profile's ``replication_password`` (on stdin, kept out of the
  binary log so it is not replicated);
- on the replica: ``read_only``, its own ``server_id``; a clone of the primary's business databases
  (``mariadb-dump --single-transaction --gtid --master-data``: a consistent copy and the GTID position it was taken
  at, streamed from the primary's dump to the replica's client through the suite, never stored), then
  ``CHANGE MASTER TO … MASTER_USE_GTID = slave_pos`` over TLS verified against the CA and the primary's address
  (``MASTER_SSL_VERIFY_SERVER_CERT``): a man in the middle cannot pose as the primary.

A replica that replicates from its primary by GTID over verified TLS with both threads running is left alone;
anything else is cloned again (a replica that is not one yet and holds databases only with ``--force``).
"""
from __future__ import annotations

import ipaddress
import subprocess

from jinbao_netops.access import Access
from jinbao_netops.errors import DeviceError
from jinbao_netops.inventory import Inventory
from jinbao_netops.inventory.engines import MARIADB, Command

from .jobs import runner, ssh_shell
from .replication import NODE_TLS, ROLE, Pair, as_root, business_address, lines, role_password, wait_until

CONF = "/etc/mysql/mariadb.conf.d/91-netops-replication.cnf"
TLS = "/etc/mysql/netops-tls"   # the node's PKI files, the mysql account's copies
BINLOG = "netops-binlog"
BINLOG_KEEP_S = 7 * 86400       # how long the primary keeps its binary log (a replica down longer is cloned again)
CONNECT_RETRY_S = 5             # a replica whose primary restarted reconnects within seconds, not the default minute
SENT_ALL = "Master has sent all binlog to slave; waiting for more updates"  # a binlog dump thread with nothing to send


def dump_thread(address: str) -> str:
    """SQL printing one row, as a MariaDB server sees a reader of its binary log at ``address`` (a replica, the
    binary log archive): its binlog dump thread, ``HOST STATE`` (HOST its ``IP:port``; one that has sent everything
    first), or ``-`` when there is none."""
    return ("SELECT COALESCE((SELECT CONCAT(HOST, ' ', STATE) FROM information_schema.PROCESSLIST "
            f"WHERE COMMAND LIKE {MARIADB.literal('Binlog Dump%')} "
            f"AND SUBSTRING_INDEX(HOST, ':', 1) = {MARIADB.literal(address)} "
            f"ORDER BY STATE = {MARIADB.literal(SENT_ALL)} DESC LIMIT 1), '-');\n")


def server_id(inv: Inventory, device: str) -> int:
    """The server's replication identity (``server_id``; on a primary also its GTID domain): its management
    address as a number, unique across the inventory and the same on every run."""
    return int(ipaddress.IPv4Address(inv.devices[device].management))


def _listen(inv: Inventory, device: str) -> str:
    return f"127.0.0.1,{inv.devices[device].management},{business_address(inv, device)}"


def primary_conf(inv: Inventory, primary: str) -> str:
    sid = server_id(inv, primary)
    return ("# managed by netops dr setup: this server is a replication primary (GTID)\n[mariadbd]\n"
            f"bind_address = {_listen(inv, primary)}\nserver_id = {sid}\ngtid_domain_id = {sid}\n"
            f"log_bin = {BINLOG}\nbinlog_format = ROW\nbinlog_expire_logs_seconds = {BINLOG_KEEP_S}\n"
            f"ssl_ca = {TLS}/ca.crt\nssl_cert = {TLS}/node.crt\nssl_key = {TLS}/node.key\n")


def replica_conf(inv: Inventory, pair: Pair) -> str:
    return (f"# managed by netops dr setup: this server is a replica of {pair.primary} (GTID)\n[mariadbd]\n"
            f"bind_address = {_listen(inv, pair.standby)}\nserver_id = {server_id(inv, pair.standby)}\n"
            "read_only = ON\n")


# $1 the configuration, $2 the TLS files to copy; prints a line per change, restarts MariaDB when one was made
SERVER_SCRIPT = r'''set -e
if [ "$(cat %(conf)s 2>/dev/null)" != "$(printf '%%s' "$1")" ]; then
  printf '%%s\n' "$1" > %(conf)s.tmp && chmod 0644 %(conf)s.tmp && mv %(conf)s.tmp %(conf)s
  echo "configuration %(conf)s"; restart=1
fi
install -d -o mysql -g mysql -m 0700 %(tls)s
for f in $2; do
  install -o mysql -g mysql -m 0600 "%(node)s/$f" "%(tls)s/$f.tmp"
  if cmp -s "%(tls)s/$f.tmp" "%(tls)s/$f"; then rm -f "%(tls)s/$f.tmp"
  else mv "%(tls)s/$f.tmp" "%(tls)s/$f"; echo "tls %(tls)s/$f"; restart=1; fi
done
if [ -n "$restart" ]; then systemctl restart mariadb; fi
''' % {"conf": CONF, "tls": TLS, "node": NODE_TLS}


def account_sql(replica_address: str, password: str) -> str:
    """The replication account on the primary, admitted from the replica's address over TLS (not binlogged)."""
    user = f"{MARIADB.literal(ROLE)}@{MARIADB.literal(replica_address)}"
    pw = MARIADB.literal(password)
    return ("SET SESSION sql_log_bin = 0;\n"
            f"CREATE USER IF NOT EXISTS {user} IDENTIFIED BY {pw} REQUIRE SSL;\n"
            f"ALTER USER {user} IDENTIFIED BY {pw} REQUIRE SSL;\n"
            f"GRANT REPLICATION SLAVE ON *.* TO {user};\n")


def change_master_sql(pair: Pair, password: str) -> str:
    return ("CHANGE MASTER TO "
            f"MASTER_HOST = {MARIADB.literal(pair.primary_address)}, MASTER_PORT = {MARIADB.port}, "
            f"MASTER_USER = {MARIADB.literal(ROLE)}, MASTER_PASSWORD = {MARIADB.literal(password)}, "
            f"MASTER_SSL = 1, MASTER_SSL_CA = {MARIADB.literal(TLS + '/ca.crt')}, MASTER_SSL_VERIFY_SERVER_CERT = 1, "
            f"MASTER_CONNECT_RETRY = {CONNECT_RETRY_S}, MASTER_USE_GTID = slave_pos;\nSTART SLAVE;\n")


# --- the replica's own view ------------------------------------------------------------------------------
REPLICA_STATUS = Command(MARIADB.as_admin("mariadb", "--vertical"), "SHOW REPLICA STATUS;\n")


def read_status(text: str) -> dict[str, str]:
    """``SHOW REPLICA STATUS`` as printed ``--vertical``: field → value ({} without a replication connection)."""
    row = {}
    for ln in text.splitlines():
        name, sep, value = ln.strip().partition(": ")
        if sep and not name.startswith("*"):
            row[name] = value.strip()
        elif ln.strip().endswith(":"):  # an empty value prints no blank after the colon
            row[ln.strip()[:-1]] = ""
    return row


def replicates(pair: Pair, st: dict[str, str]) -> bool:
    """The replica replicates from the pair's primary as setup builds it, both threads running."""
    return (st.get("Master_Host") == pair.primary_address and st.get("Master_User") == ROLE
            and st.get("Using_Gtid") == "Slave_Pos" and st.get("Master_SSL_Allowed") == "Yes"
            and st.get("Master_SSL_Verify_Server_Cert") == "Yes"
            and st.get("Slave_IO_Running") == "Yes" and st.get("Slave_SQL_Running") == "Yes")


def why_not(pair: Pair, st: dict[str, str]) -> str:
    """Why the replica does not replicate as setup builds it ("" when it does)."""
    if replicates(pair, st):
        return ""
    return st.get("Last_IO_Error") or st.get("Last_SQL_Error") or \
        f"IO {st.get('Slave_IO_Running', '-')}, SQL {st.get('Slave_SQL_Running', '-')}"


# --- setup -------------------------------------------------------------------------------------------------
def _clone(shell, pair: Pair, on_primary, on_replica) -> str:
    """The primary's business databases into the replica (whose own are dropped), and the GTID position they were
    taken at as the replica's; what was done, one line."""
    on_replica(MARIADB.sql("STOP ALL SLAVES;\nRESET SLAVE ALL;\n" + "".join(
        MARIADB.drop_sql.format(db=MARIADB.ident(db)) for db in MARIADB.databases(on_replica))))
    dbs = MARIADB.databases(on_primary)
    if not dbs:  # nothing to copy: the replica starts where the primary's binary log is now
        pos = on_primary(MARIADB.sql("SELECT @@GLOBAL.gtid_binlog_pos;\n")).strip()
        on_replica(MARIADB.sql(f"SET GLOBAL gtid_slave_pos = {MARIADB.literal(pos)};\n"))
        return f"replicating from {pair.primary} by GTID from {pos or 'its first transaction'}"
    dump = Command(MARIADB.as_admin("mariadb-dump", "--single-transaction", "--gtid", "--master-data=1", "--routines",
                                    "--events", "--triggers", "--databases", "--", *dbs))
    load = Command(MARIADB.as_admin(*(a for a in MARIADB.client if "{db}" not in a)))
    src = subprocess.Popen([*shell(pair.primary), dump.line], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        p = subprocess.run([*shell(pair.standby), load.line], stdin=src.stdout, capture_output=True, timeout=3600)
        src.stdout.close()
        src_err = src.stderr.read().decode(errors="replace").strip().splitlines()
        if src.wait(timeout=60) != 0:
            raise DeviceError(pair.primary, f"mariadb-dump: {src_err[-1] if src_err else 'failed'} 主库导出失败")
        if p.returncode != 0:
            err = p.stderr.decode(errors="replace").strip().splitlines()
            raise DeviceError(pair.standby, f"loading {pair.primary}'s dump: {err[-1] if err else 'failed'} 备库导入失败")
    finally:
        if src.poll() is None:
            src.kill()
            src.wait()
    return f"cloned {', '.join(dbs)} from {pair.primary}"


def setup_pair(access: Access, inv: Inventory, pair: Pair, force: bool = False) -> dict:
    """Build one pair (replication.setup_pair's counterpart)."""
    return build_pair(ssh_shell(access), inv, pair, role_password(access, inv, pair.primary), force)


def build_pair(shell, inv: Inventory, pair: Pair, password: str, force: bool = False) -> dict:
    """Build one MariaDB pair over ``shell`` (device → argv prefix running one command line on it); returns
    {primary, standby, sync, changed: [what changed, per node]}."""
    on_primary, on_replica = runner(shell, pair.primary, 300), runner(shell, pair.standby, 900)
    changed: list[str] = []
    state = read_status(on_replica(REPLICA_STATUS))
    streaming = replicates(pair, state)
    if not streaming and not state and not force and (dbs := MARIADB.databases(on_replica)):
        raise DeviceError(pair.standby, f"is not a replica and holds databases {', '.join(dbs)}: cloning {pair.primary} "
                                        "would discard them; `netops dr setup --force` if that is intended "
                                        "非备库且有数据库，克隆会覆盖，确认后加 --force")
    changed += [f"{pair.primary}: {ln}" for ln in lines(on_primary(as_root(
        SERVER_SCRIPT, primary_conf(inv, pair.primary), "ca.crt node.crt node.key")))]
    changed += [f"{pair.standby}: {ln}" for ln in lines(on_replica(as_root(
        SERVER_SCRIPT, replica_conf(inv, pair), "ca.crt")))]
    if not streaming and not replicates(pair, read_status(on_replica(REPLICA_STATUS))):
        on_primary(MARIADB.sql(account_sql(pair.standby_address, password)))
        changed.append(f"{pair.standby}: {_clone(shell, pair, on_primary, on_replica)}")
        on_replica(MARIADB.sql(change_master_sql(pair, password)))
    wait_until(pair.standby, lambda: why_not(pair, read_status(on_replica(REPLICA_STATUS))), lambda why: not why,
               f"not replicating from {pair.primary} {{wait}} s after setup ({{seen}}); see SHOW REPLICA STATUS and "
               "journalctl -u mariadb on both 备库未进入复制")
    return {"primary": pair.primary, "standby": pair.standby, "sync": False, "changed": changed}


# --- status ------------------------------------------------------------------------------------------------
PRIMARY_POSITION = "SHOW MASTER STATUS;\n"  # File, Position, … of the binary log being written


def status_pair(access: Access, inv: Inventory, pair: Pair, max_lag_s: float) -> dict:
    """One pair as the replica sees it (the primary cannot tell what its replicas applied): state ``streaming``
    when both threads run, else ``connecting`` / ``stopped`` / ``disconnected`` (no replication connection); lag in
    seconds (``Seconds_Behind_Master``) and in bytes of the primary's binary log, where both are on the same file."""
    row = {"primary": pair.primary, "standby": pair.standby, "service": MARIADB.service, "mode": "async",
           "state": "unknown", "sync_state": None, "lag_bytes": None, "lag_seconds": None, "slot_active": None,
           "slot_retained_bytes": None, "standby_in_recovery": None, "ok": False, "problems": []}
    shell = ssh_shell(access)
    try:
        st = read_status(runner(shell, pair.standby, 60)(REPLICA_STATUS))
        row["standby_in_recovery"] = bool(st)
        if not st:
            row["state"] = "disconnected"
            row["problems"].append(f"{pair.standby} has no replication connection (not a replica) 未配置复制")
        else:
            io, sql = st.get("Slave_IO_Running"), st.get("Slave_SQL_Running")
            row["state"] = "streaming" if io == sql == "Yes" else "connecting" if io == "Connecting" else "stopped"
            if st.get("Seconds_Behind_Master", "NULL") != "NULL":
                row["lag_seconds"] = float(st["Seconds_Behind_Master"])
            if row["state"] != "streaming":
                why = st.get("Last_IO_Error") or st.get("Last_SQL_Error") or f"IO {io}, SQL {sql}"
                row["problems"].append(f"{pair.standby} is not replicating from {pair.primary}: {why} 复制中断")
            elif not replicates(pair, st):
                row["problems"].append(f"{pair.standby} replicates otherwise than dr setup builds it (host "
                                       f"{st.get('Master_Host')}, GTID {st.get('Using_Gtid')}, verified TLS "
                                       f"{st.get('Master_SSL_Verify_Server_Cert')}) 复制配置不符")
            written = runner(shell, pair.primary, 60)(MARIADB.sql(PRIMARY_POSITION)).split()
            if written[:1] == [st.get("Relay_Master_Log_File")] and st.get("Exec_Master_Log_Pos", "").isdigit():
                row["lag_bytes"] = max(0, int(written[1]) - int(st["Exec_Master_Log_Pos"]))
    except DeviceError as e:
        row["problems"].append(str(e))
    if row["lag_seconds"] is not None and row["lag_seconds"] > max_lag_s:
        row["problems"].append(f"lag {row['lag_seconds']:.1f} s over {max_lag_s:g} s 复制延迟超限")
    row["ok"] = row["state"] == "streaming" and not row["problems"]
    return row
