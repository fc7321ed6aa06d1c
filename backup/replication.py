"""Continuous replication to the disaster-recovery site: `netops dr setup` and `netops dr status`.

The inventory names each standby (``replica: {of: PRIMARY, sync: BOOL}`` on the standby's device); this
module builds PostgreSQL physical streaming replication for every such pair, idempotently:

- on the primary: the role ``netops_replication`` (LOGIN REPLICATION, nothing else; its password the
  credentials profile's ``replication_password``, sent on stdin), a physical replication slot named after
  the standby (WAL is kept until the standby has it), ``hostssl replication`` admitted from the standby's
  business address only with ``scram-sha-256``, and ``synchronous_standby_names`` naming its synchronous
  standbys (a commit returns once they have flushed it: RPO 0);
- on the standby: a clone of the primary (``pg_basebackup`` over TLS through the slot, WAL streamed), then
  ``primary_conninfo`` (``sslmode=verify-full``; the password in a 0600 passfile of the postgres account, never
  in a configuration file or argv), ``primary_slot_name`` and ``standby.signal``.

TLS is verified in full: each member serves the node's own certificate (the site PKI's, ``NODE_TLS``: the one the
log store already uses; the lab's CA signs it for every address of the node) and the standby, like the WAL
archive on the backup store, checks that the primary's certificate is signed by that CA and names the address
it connects to. A man in the middle of the business network cannot pose as the primary.

A pair may name a service address (``replica: {…, service_address: A}``): the address clients use, a free host
address in the primary's LAN. The primary holds it on its LAN interface and the standby does not; a failover drill
moves it to the promoted standby (on lo, announced as a /32 by its site router into OSPF, in the router's own
syntax from the platform table) and back (:func:`service_address`, :func:`service_route`, :func:`announce`).

Replication runs over the business network (the servers' LAN addresses), as the database traffic itself
does, not over the management network; the hardened firewall admits it from the peer's address only
(:func:`admitted`). Each step checks first and changes only what differs; a standby that streams from its
primary through its slot with the intended settings is left alone, anything else is re-cloned.
"""
from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from jinbao_netops import escape
from jinbao_netops.access import Access
from jinbao_netops.errors import DeviceError, UsageError
from jinbao_netops.inventory import Inventory, Role
from jinbao_netops.inventory.model import LinkKind
from jinbao_netops.inventory.engines import ENGINES, POSTGRESQL, Command, as_user
from jinbao_netops.inventory.platforms import PLATFORMS

from .jobs import runner, ssh_shell

ROLE = "netops_replication"
CONF = "91-netops-replication.conf"
PASSFILE = "/var/lib/postgresql/.netops-replication.pgpass"
NODE_TLS = "/etc/jinbao-netops/tls"          # the node's PKI files (ca.crt, node.crt, node.key), root's own
PG_TLS = "/var/lib/postgresql/.netops-tls"   # their copies PostgreSQL and its clients read (the postgres account's)
VERIFY = f"sslmode=verify-full sslrootcert={PG_TLS}/ca.crt"  # every replication client's TLS, as conninfo words


def pg_tls(files: str = "ca.crt node.crt node.key") -> str:
    """A shell snippet (run as root, before PostgreSQL or a client needs them): ``files`` of the node's PKI copied
    for the postgres account, each only when it differs (then ``restart=1``), a line per change."""
    return f"""install -d -o postgres -g postgres -m 0700 {PG_TLS}
for f in {files}; do
  install -o postgres -g postgres -m 0600 "{NODE_TLS}/$f" "{PG_TLS}/$f.tmp"
  if cmp -s "{PG_TLS}/$f.tmp" "{PG_TLS}/$f"; then rm -f "{PG_TLS}/$f.tmp"
  else mv "{PG_TLS}/$f.tmp" "{PG_TLS}/$f"; echo "tls {PG_TLS}/$f"; restart=1; fi
done
"""
STREAM_WAIT_S = 60


@dataclass(frozen=True)
class Pair:
    primary: str
    standby: str
    sync: bool
    primary_address: str   # business (LAN) addresses: where the replication connection goes
    standby_address: str
    service_address: str | None = None  # what clients use: held by whichever of the two is primary
    service: str = POSTGRESQL.service   # the engine replicated (inventory/engines.py): postgresql or mariadb

    @property
    def slot(self) -> str:
        """The primary's replication slot for this standby (a slot name is [a-z0-9_])."""
        return "netops_" + re.sub(r"[^a-z0-9_]", "_", self.standby)


def business_interface(inv: Inventory, device: str):
    """A server's first interface with an address (its LAN), where its databases serve the business."""
    for itf in inv.devices[device].interfaces.values():
        if itf.address is not None:
            return itf.address
    raise UsageError(f"{inv.root}: device {device!r}: field 'interfaces': no address to replicate over")


def business_address(inv: Inventory, device: str) -> str:
    return str(business_interface(inv, device).ip)


def gateway(inv: Inventory, device: str) -> str:
    """The router a server's LAN is cabled to: where its site announces what the server holds."""
    for lid in inv.links_by_device.get(device, []):
        link = inv.links[lid]
        other = link.b if link.a.device == device else link.a
        if link.kind == LinkKind.lan and inv.devices[other.device].role == Role.router:
            return other.device
    raise UsageError(f"{inv.root}: device {device!r}: field 'interfaces': no LAN link to a router")


# The service address on a server ($1 the address with its prefix, $2 the business address whose interface holds it
# or "lo", $3 "hold" or "release"); prints a line when it changed something.
SERVICE_ADDRESS_SCRIPT = r"""set -e
addr=${1%/*}
have=$(ip -o -4 addr show | awk -v a="$addr" '{split($4, p, "/")} p[1] == a {print $2 " " $4; exit}')
if [ "$2" = lo ]; then dev=lo
else dev=$(ip -o -4 addr show | awk -v a="$2" '{split($4, p, "/")} p[1] == a {print $2; exit}'); fi
want=""; [ "$3" = hold ] && want="$dev $1"
if [ "$have" != "$want" ]; then
  if [ -n "$have" ]; then ip addr del "${have#* }" dev "${have%% *}"; fi
  if [ -n "$want" ]; then ip addr add "$1" dev "$dev"; echo "service address $addr held on $dev"
  else echo "service address $addr released"; fi
fi
"""


def service_route(inv: Inventory, pair: Pair, device: str) -> tuple[str, str]:
    """(router, next hop): ``device``'s site router, which announces the pair's service address as a /32 into OSPF
    while ``device`` holds it, and ``device``'s business address, where the route points. A router whose platform
    has no host-route forms in the platform table is refused."""
    router = gateway(inv, device)
    plat = inv.devices[router].platform_info
    if plat.host_route is None:
        raise UsageError(f"{inv.root}: device {router!r}: field 'platform': moving a service address is not rendered "
                         f"for {plat.name} (rendered for {', '.join(p.name for p in PLATFORMS.values() if p.host_route)})")
    return router, business_address(inv, device)


def route_lines(router: str, plat, running: str, address: str, next_hop: str, on: bool) -> list[str]:
    """The configuration-mode lines that make ``router`` (``plat``, its running configuration ``running``) announce
    (``on``) a /32 to ``address`` via ``next_hop`` into OSPF, or withdraw it; [] when it is so already. The
    announcement adds the static route and the OSPF process's redistribution of static routes where they are
    missing; the withdrawal removes the route, and the redistribution too when no other static route remains (the
    router's own static routes keep theirs). Lines are compared stripped: Comware prints its global lines indented."""
    from jinbao_netops.topology.provision.render import parse

    route = plat.host_route.format(address=escape.cli(address), next_hop=escape.cli(next_hop))
    lines = [ln.strip() for ln in running.splitlines()]
    # the process's header as printed: the view itself, else the view with options (VRP's `ospf 1 router-id X`)
    heads = [c for c in parse(running).children if (c.line + " ").startswith(plat.ospf_process + " ")]
    process = next((c for c in heads if c.line == plat.ospf_process), heads[0] if heads else None)
    redistributes = process is not None and process.find(plat.redistribute_static) is not None
    if on:
        if process is None:
            raise DeviceError(router, f"no OSPF process {plat.ospf_process!r} in its running configuration to announce "
                                      f"{address} into 运行配置中无OSPF进程，无法通告业务地址")
        return ([] if route in lines else [route]) + \
            ([] if redistributes else [plat.ospf_process, plat.redistribute_static, plat.stanza_exit])
    if route not in lines:
        return []
    others = [ln for ln in lines if ln.startswith(plat.static_route) and ln != route]
    return [f"{plat.negate} {route}"] + \
        ([plat.ospf_process, f"{plat.negate} {plat.redistribute_static}", plat.stanza_exit]
         if redistributes and not others else [])


def announce(session, address: str, next_hop: str, on: bool) -> list[str]:
    """Announce (``on``) or withdraw the /32 to ``address`` via ``next_hop`` on the router of ``session`` (the
    access layer's: a vendor CLI, or FRR's vtysh), reading its running configuration first; the change is saved.
    What changed, one line (none when it was so already)."""
    lines = route_lines(session.device, session.plat, session.show_running(), address, next_hop, on)
    if not lines:
        return []
    session.configure(lines)
    session.save()
    return [f"announced {address}/32 via {next_hop}" if on else f"withdrew {address}/32"]


def service_address(inv: Inventory, pair: Pair, device: str, hold: bool) -> Command:
    """``device`` (a member of ``pair``) holds or releases the pair's service address: in its home LAN (the inventory's
    primary) on the LAN interface with the LAN's prefix, elsewhere on lo as a /32 its site router announces."""
    lan = business_interface(inv, device)
    at_home = ipaddress.IPv4Address(pair.service_address) in lan.network
    spec = f"{pair.service_address}/{lan.network.prefixlen if at_home else 32}"
    return as_root(SERVICE_ADDRESS_SCRIPT, spec, business_address(inv, device) if at_home else "lo",
                    "hold" if hold else "release")


def pairs(inv: Inventory, scope: str | None = None) -> list[Pair]:
    """Every standby in ``scope`` (a site and below, or a device) or whose primary is, with its primary."""
    devs = set(inv.scope(scope))
    out = []
    for d in sorted(inv.devices.values(), key=lambda d: d.id):
        if d.replica and (d.id in devs or d.replica.of in devs):
            out.append(Pair(d.replica.of, d.id, d.replica.sync, business_address(inv, d.replica.of),
                            business_address(inv, d.id),
                            str(d.replica.service_address) if d.replica.service_address else None, d.replica.service))
    if scope and not out:
        raise UsageError(f"no standby in scope {scope!r} (a standby is a device with `replica: {{of: PRIMARY}}`)")
    return out


def admitted(inv: Inventory, host: str) -> list[dict]:
    """What ``host``'s firewall admits for replication, per engine: its port from the peers' business addresses
    (a primary from its standbys, a standby from its primary, ready for a switchover)."""
    out = []
    for service in sorted({p.service for p in pairs(inv) if host in (p.primary, p.standby)}):
        peers = sorted({p.standby_address if p.primary == host else p.primary_address
                        for p in pairs(inv) if host in (p.primary, p.standby) and p.service == service})
        # the engine's port is also open to the management network (the collector's monitoring role)
        out.append({"proto": "tcp", "port": ENGINES[service].port, "sources": peers, "what": "replication peers 复制对端",
                     "management": True})
    return out


def _listen(inv: Inventory, device: str) -> str:
    return f"localhost,{inv.devices[device].management},{business_address(inv, device)}"


# both members serve the node's certificate (a standby is promoted, and then serves its own standby)
_SSL = f"ssl = on\nssl_cert_file = '{PG_TLS}/node.crt'\nssl_key_file = '{PG_TLS}/node.key'\n"


def primary_conf(inv: Inventory, primary: str) -> str:
    sync = [p.standby for p in pairs(inv) if p.primary == primary and p.sync]
    names = ", ".join('"' + s + '"' for s in sync)
    return ("# managed by netops dr setup: this server is a replication primary\n"
            f"listen_addresses = '{_listen(inv, primary)}'\n" + _SSL +
            f"synchronous_standby_names = '{'FIRST ' + str(len(sync)) + ' (' + names + ')' if sync else ''}'\n")


def standby_conf(inv: Inventory, pair: Pair) -> str:
    conninfo = (f"host={pair.primary_address} port={POSTGRESQL.port} user={ROLE} passfile={PASSFILE} "
                f"{VERIFY} application_name={pair.standby}")
    return ("# managed by netops dr setup: this server is a streaming standby of " + pair.primary + "\n"
            f"listen_addresses = '{_listen(inv, pair.standby)}'\n" + _SSL +
            f"primary_conninfo = '{conninfo}'\n"
            f"primary_slot_name = '{pair.slot}'\n"
            # a primary gone silent (its data centre's links cut) is noticed within 5 s, not the default minute
            "wal_receiver_timeout = 5s\n"
            "hot_standby = on\n"
            "hot_standby_feedback = on\n")


# Each script runs as root (sh -c SCRIPT sh ARGS…), prints one line per change it made, and leaves the
# service running. A configuration file is replaced only when its content differs (then PostgreSQL
# restarts: listen_addresses needs it).
_WRITE_CONF = r'''
conf=$(ls -d /etc/postgresql/*/main | head -1)
want="$1"; file="$conf/conf.d/%s"
if [ "$(cat "$file" 2>/dev/null)" != "$(printf '%%s' "$want")" ]; then
  printf '%%s\n' "$want" > "$file.tmp" && chmod 0644 "$file.tmp" && mv "$file.tmp" "$file"
  echo "configuration $file"; restart=1
fi
''' % CONF

PRIMARY_SCRIPT = "set -e\n" + _WRITE_CONF + pg_tls() + r'''
rule="hostssl replication %s $2/32 scram-sha-256"
if ! grep -qxF "$rule" "$conf/pg_hba.conf"; then
  printf '%%s\n' "$rule" >> "$conf/pg_hba.conf"; echo "pg_hba: replication from $2"; reload=1
fi
if [ -n "$restart" ]; then systemctl restart postgresql
elif [ -n "$reload" ]; then systemctl reload postgresql; fi
''' % ROLE

# $1 the configuration, $2 the primary's address, $3 the slot, $4 "reclone" to clone again; the password on stdin
STANDBY_SCRIPT = "set -e\numask 077\n" + r'''
cat > %(passfile)s.tmp
chown postgres:postgres %(passfile)s.tmp
if ! cmp -s %(passfile)s.tmp %(passfile)s; then mv %(passfile)s.tmp %(passfile)s; echo "passfile %(passfile)s"
else rm -f %(passfile)s.tmp; fi
umask 022
''' % {"passfile": PASSFILE} + _WRITE_CONF + pg_tls() + r'''
if [ "$4" = reclone ]; then
  set -- "$@" $(pg_lsclusters -h | awk '$2 == "main" {print $1, $6}'); data=$6
  # the primary answers first (it may be restarting with its new role, or its site's routes still converging after
  # a failback): nothing is deleted here before a clone can start
  i=0; until pg_isready -q -h "$2" -p %(port)d -t 2; do i=$((i + 1)); [ $i -lt 60 ] || break; sleep 1; done
  systemctl stop "postgresql@$5-main"  # the cluster itself: stopping the umbrella unit returns before it is down
  find "$data" -mindepth 1 -delete
  runuser -u postgres -- env PGPASSFILE=%(passfile)s PGSSLMODE=verify-full PGSSLROOTCERT=%(tls)s/ca.crt PGAPPNAME=netops-clone \
    pg_basebackup -h "$2" -p %(port)d -U %(role)s -D "$data" -X stream -S "$3" -c fast
  runuser -u postgres -- touch "$data/standby.signal"
  echo "cloned from $2 through slot $3"; restart=1
fi
if [ -n "$restart" ]; then systemctl restart postgresql; fi
''' % {"passfile": PASSFILE, "port": POSTGRESQL.port, "role": ROLE, "tls": PG_TLS}


def wait_until(device: str, seen: Callable[[], str], want: Callable[[str], bool], failure: str) -> None:
    """Read ``seen()`` each second until ``want`` it, for STREAM_WAIT_S at most; then a DeviceError on ``device``
    saying ``failure`` with what was seen last (``{seen}``)."""
    deadline = time.monotonic() + STREAM_WAIT_S
    while not want(now := seen()):
        if time.monotonic() > deadline:
            raise DeviceError(device, failure.format(seen=now, wait=STREAM_WAIT_S))
        time.sleep(1)


def as_root(script: str, *args: str, input: str | None = None) -> Command:
    return Command(as_user("root", "sh", "-c", script, "sh", *args), input)


# The primary's own statements never wait for a synchronous standby: when `dr setup` rebuilds a broken sync pair,
# the standby it waits for is the one being rebuilt (the commit would hang for good).
LOCAL_COMMIT = "SET synchronous_commit = local;\n"


def role_sql(password: str) -> str:
    return LOCAL_COMMIT + ("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {name}) THEN CREATE ROLE {role}; END IF; END $$;\n"
            "ALTER ROLE {role} WITH LOGIN REPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {pw};\n"
            ).format(name=POSTGRESQL.literal(ROLE), role=POSTGRESQL.ident(ROLE), pw=POSTGRESQL.literal(password))


def slot_sql(slot: str, reserve: bool = False) -> str:
    """Create the physical slot unless it exists; ``reserve``: it holds WAL from now on, not only once a client
    first streams through it (the WAL archive's slot, whose receiver may start later)."""
    return LOCAL_COMMIT + (f"SELECT 'slot ' || slot_name FROM pg_create_physical_replication_slot({POSTGRESQL.literal(slot)}"
            f"{', true' if reserve else ''}) "
            f"WHERE NOT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = {POSTGRESQL.literal(slot)});\n")


# one line: "1 streaming HOST SLOT" on a standby streaming from HOST through SLOT, "0 " on a primary
STANDBY_STATE = ("SELECT pg_is_in_recovery()::int || ' ' || COALESCE((SELECT status || ' ' || sender_host || ' ' || "
                 "COALESCE(slot_name, '-') FROM pg_stat_wal_receiver), '');\n")


def lines(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines() if ln.strip()]


def role_password(access: Access, inv: Inventory, server: str) -> str:
    """The replication role's password on ``server``: its standby's credentials profile's ``replication_password``
    reference (the first standby's, for a primary of several), or its own profile's for a server without one."""
    pair = next((p for p in pairs(inv) if p.primary == server), None)
    profile = inv.devices[pair.standby if pair else server].credentials
    return access.secret(profile, "replication_password", inv.credentials[profile].replication_password)


def admit(inv: Inventory, server: str, address: str) -> Command:
    """The server's replication settings, and the replication login admitted from ``address`` (TLS, scram)."""
    return as_root(PRIMARY_SCRIPT, primary_conf(inv, server), address)


def setup_pair(access: Access, inv: Inventory, pair: Pair, force: bool = False) -> dict:
    """Build one pair; returns {primary, standby, sync, changed: [what changed, per node]}."""
    return build_pair(ssh_shell(access), inv, pair, role_password(access, inv, pair.primary), force)


def build_pair(shell, inv: Inventory, pair: Pair, password: str, force: bool = False) -> dict:
    """:func:`setup_pair` over ``shell`` (device → argv prefix running one command line on it)."""
    on_primary, on_standby = runner(shell, pair.primary, 300), runner(shell, pair.standby, 900)
    changed: list[str] = []
    # the standby first: is it streaming from its primary through its slot already?
    streams = f"1 streaming {pair.primary_address} {pair.slot}"  # STANDBY_STATE's line once it streams as intended
    try:
        state = on_standby(POSTGRESQL.sql(STANDBY_STATE)).strip()
    except DeviceError:
        if not force:  # not answering: a stopped server is cloned only when asked (a failover drill's failback)
            raise
        state = "down"
    streaming = state == streams
    # a clone replaces the standby's data directory: never the data of a server that is not a standby yet
    if not streaming and state.startswith("0") and not force and (dbs := POSTGRESQL.databases(on_standby)):
        raise DeviceError(pair.standby, f"is not a standby and holds databases {', '.join(dbs)}: cloning {pair.primary} "
                                        "would discard them; `netops dr setup --force` if that is intended "
                                        "非备库且有数据库，克隆会覆盖，确认后加 --force")
    # the primary: its role (the password set only when the standby is not streaming with it already)
    if not streaming:
        on_primary(POSTGRESQL.sql(role_sql(password)))
    changed += [f"{pair.primary}: {ln}" for ln in lines(on_primary(POSTGRESQL.sql(slot_sql(pair.slot))))]
    changed += [f"{pair.primary}: {ln}" for ln in lines(on_primary(admit(inv, pair.primary, pair.standby_address)))]
    changed += [f"{pair.standby}: {ln}" for ln in lines(on_standby(as_root(
        STANDBY_SCRIPT, standby_conf(inv, pair), pair.primary_address, pair.slot,
        "keep" if streaming else "reclone",
        input=f"{pair.primary_address}:{POSTGRESQL.port}:replication:{ROLE}:{escape.pgpass(password)}\n")))]
    # done when the standby streams: a later run then finds it so and changes nothing
    deadline = time.monotonic() + STREAM_WAIT_S
    while (seen := on_standby(POSTGRESQL.sql(STANDBY_STATE)).strip()) != streams:
        if time.monotonic() > deadline:
            raise DeviceError(pair.standby, f"not streaming from {pair.primary} {STREAM_WAIT_S} s after setup (state: {seen!r}); "
                                            "see journalctl -u postgresql@*-main on both 备库未进入流复制")
        time.sleep(1)
    if pair.service_address:  # clients follow the primary: it holds the service address, its standby does not
        changed += [f"{pair.standby}: {ln}" for ln in lines(on_standby(service_address(inv, pair, pair.standby, False)))]
        changed += [f"{pair.primary}: {ln}" for ln in lines(on_primary(service_address(inv, pair, pair.primary, True)))]
    return {"primary": pair.primary, "standby": pair.standby, "sync": pair.sync, "changed": changed}


# --- status --------------------------------------------------------------------------------------------
def primary_view(slot: str, standby: str, applied: str = "replay") -> str:
    """One row, as the primary sees its standby: ``state sync_state lag_bytes lag_seconds`` (``-`` when it is not
    connected), then ``;`` and the slot's ``active retained_bytes`` (``-`` when there is none). The lag is to what the
    standby has ``applied`` (``replay``; ``flush`` for a WAL receiver, which replays nothing)."""
    name, slot_ = POSTGRESQL.literal(standby), POSTGRESQL.literal(slot)
    return ("SELECT COALESCE((SELECT state || ' ' || sync_state || ' ' || "
            f"COALESCE(pg_wal_lsn_diff(pg_current_wal_lsn(), {applied}_lsn), -1)::bigint || ' ' || "
            f"COALESCE(EXTRACT(EPOCH FROM {applied}_lag), 0)::float FROM pg_stat_replication WHERE application_name = {name} "
            "LIMIT 1), '-') || ';' || "
            f"COALESCE((SELECT active::int || ' ' || COALESCE(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)::bigint "
            f"FROM pg_replication_slots WHERE slot_name = {slot_}), '-');\n")


def read_primary_view(line: str) -> dict:
    """A :func:`primary_view` row: state ("disconnected" when the standby is not connected), sync_state, lag in
    bytes and seconds (0 s when nothing is behind), slot_active and slot_retained_bytes (None without a slot).
    A row that is not one (an error, a truncated line) is a ValueError."""
    seen, slot = line.strip().split(";")
    row = {"state": "disconnected", "sync_state": None, "lag_bytes": None, "lag_seconds": None,
           "slot_active": None, "slot_retained_bytes": None}
    if seen != "-":
        state, sync_state, lag_b, lag_s = seen.split(" ")
        row.update(state=state, sync_state=sync_state, lag_bytes=int(lag_b), lag_seconds=float(lag_s) if int(lag_b) else 0.0)
    if slot != "-":
        active, retained = slot.split(" ")
        row.update(slot_active=active == "1", slot_retained_bytes=int(retained))
    return row


def status_pair(access: Access, inv: Inventory, pair: Pair, max_lag_s: float) -> dict:
    """One pair as the primary and the standby see it: state, lag in bytes and seconds, the slot."""
    row = {"primary": pair.primary, "standby": pair.standby, "service": pair.service, "mode": "sync" if pair.sync else "async",
           "state": "unknown", "sync_state": None, "lag_bytes": None, "lag_seconds": None, "slot_active": False,
           "slot_retained_bytes": None, "standby_in_recovery": None, "ok": False, "problems": []}
    try:
        view = read_primary_view(runner(ssh_shell(access), pair.primary, 60)(
            POSTGRESQL.sql(primary_view(pair.slot, pair.standby))))
        row.update(view, slot_active=bool(view["slot_active"]))
        if view["state"] == "disconnected":
            row["problems"].append(f"{pair.standby} is not connected to {pair.primary} 备库未连接")
        if view["slot_active"] is None:
            row["problems"].append(f"no replication slot {pair.slot} on {pair.primary} 复制槽缺失")
    except DeviceError as e:
        row["problems"].append(str(e))
    try:
        recovery = runner(ssh_shell(access), pair.standby, 60)(POSTGRESQL.sql(STANDBY_STATE)).strip().startswith("1")
        row["standby_in_recovery"] = recovery
        if not recovery:
            row["problems"].append(f"{pair.standby} is not in recovery (not a standby) 非备库状态")
    except DeviceError as e:
        row["problems"].append(str(e))
    if row["state"] == "streaming" and pair.sync and row["sync_state"] != "sync":
        row["problems"].append(f"synchronous standby reported as {row['sync_state']} 同步模式未生效")
    if row["lag_seconds"] is not None and row["lag_seconds"] > max_lag_s:
        row["problems"].append(f"lag {row['lag_seconds']:.1f} s over {max_lag_s:g} s 复制延迟超限")
    row["ok"] = row["state"] == "streaming" and not row["problems"]
    return row
