"""`netops dr`: continuous replication to the disaster-recovery site (backup/replication.py)."""
from __future__ import annotations

from jinbao_netops.access import Access
from jinbao_netops.cli import noun_verbs
from jinbao_netops.errors import FINDINGS, OK, PARTIAL, DeviceError, UsageError
from jinbao_netops.inventory import load
from jinbao_netops.output import Out

from . import binlog, gtid, pitr, replication

ENGINE = {"postgresql": replication, "mariadb": gtid}  # who builds and reads a pair, per replicated engine
ARCHIVE = {"postgresql": pitr, "mariadb": binlog}      # who archives a server's log (WAL, binary log), per engine


def register(nouns, common) -> None:
    verb = noun_verbs(nouns, common, "dr", "disaster recovery: database replication to the DR site 灾备复制", lambda v: v.add_argument(
        "--scope", metavar="SITE", help="the standbys of a site (and below) or device, or of its primaries; default: all"))
    verb("setup", cmd_setup, "build the inventory's replication pairs (PostgreSQL streaming, TLS, a slot per standby; "
                             "MariaDB GTID over TLS); idempotent 建立数据库实时复制").add_argument(
        "--force", action="store_true", help="clone onto a standby-to-be that holds databases of its own or does not answer (its data is discarded)")
    st = verb("status", cmd_status, "per pair: state, sync mode, lag in bytes and seconds, the slot 复制状态")
    st.add_argument("--max-lag", type=float, default=5.0, metavar="S",
                    help="a pair lagging more than this many seconds is a finding (default 5)")
    pt = verb("pitr", cmd_pitr, "point-in-time recovery: the server's databases as they were at a second, from its "
                                "base backup and archived WAL or binary log, dumped into a file (the server is not "
                                "touched) 时间点恢复")
    pt.add_argument("server", metavar="SERVER", help="a database server whose log (PostgreSQL's WAL, MariaDB's binary log) "
                                                     "is archived (backup/policy.yml basebackup)")
    pt.add_argument("--service", choices=sorted(ARCHIVE), help="the engine to recover, on a server that archives both")
    pt.add_argument("--to", required=True, metavar="TIME",
                    help="ISO 8601 time, e.g. 2026-12-05T08:30:00+08:00 (no zone: this machine's local time)")
    pt.add_argument("--out", required=True, metavar="FILE", help="the SQL dump to write, mode 0600 (PostgreSQL: pg_dumpall, no role passwords; MariaDB: its business databases)")


def cmd_setup(args, out: Out) -> int:
    inv = load(args.inventory)
    pairs = replication.pairs(inv, args.scope)
    servers = pitr.archived(inv, args.scope)
    rows, archives, problems = [], [], []
    with Access(inv, args.environ) as access, out.progress("dr setup 建立复制", total=len(pairs) + len(servers)) as step:
        for pair in pairs:
            try:
                rows.append(ENGINE[pair.service].setup_pair(access, inv, pair, args.force))
            except DeviceError as e:
                problems.append(str(e))
                rows.append({"primary": pair.primary, "standby": pair.standby, "sync": pair.sync, "changed": [],
                             "error": str(e)})
            rows[-1]["service"] = pair.service
            step(1, pair.standby)
        for server, service in servers:  # after the pairs: a primary's replication role and settings are in place
            try:
                archives.append({"server": server, "service": service, "store": pitr.store(inv, server),
                                 "changed": ARCHIVE[service].setup(access, inv, server)})
            except DeviceError as e:
                problems.append(str(e))
                archives.append({"server": server, "service": service, "changed": [], "error": str(e)})
            step(1, f"{service} log {server}")
    changed = any(r["changed"] for r in rows + archives)
    if out.json_mode:
        out.json({"ok": not problems, "changed": changed, "pairs": rows, "archives": archives, "problems": problems})
    else:
        for r in rows:
            mode = "同步 sync" if r["sync"] else "异步 async"
            what = r.get("error") or ("; ".join(r["changed"]) or "unchanged 无变化")
            out.print(f"{'✗' if r.get('error') else '✓'} {r['primary']} → {r['standby']} ({r['service']}, {mode}): {what}",
                      markup=False)
        for r in archives:
            what = r.get("error") or ("; ".join(r["changed"]) or "unchanged 无变化")
            out.print(f"{'✗' if r.get('error') else '✓'} 日志归档 log archive {r['server']} ({r['service']}) → "
                      f"{r.get('store', '?')}: {what}", markup=False)
    return PARTIAL if problems else OK


def cmd_status(args, out: Out) -> int:
    inv = load(args.inventory)
    pairs = replication.pairs(inv, args.scope)
    with Access(inv, args.environ) as access:
        rows = [ENGINE[p.service].status_pair(access, inv, p, args.max_lag) for p in pairs]
        archives = [ARCHIVE[svc].status(access, inv, s) for s, svc in pitr.archived(inv, args.scope)]
    bad = [r for r in rows + archives if not r["ok"]]
    if out.json_mode:
        out.json({"ok": not bad, "max_lag_seconds": args.max_lag, "pairs": rows, "archives": archives})
    else:
        out.table("灾备复制 DR replication", ["primary 主库", "standby 备库", "engine 引擎", "mode 模式", "state 状态",
                                          "lag bytes", "lag s 延迟", "slot 复制槽", "ok"],
                  [[r["primary"], r["standby"], r["service"], r["mode"], f"{r['state']} ({r['sync_state'] or '-'})",
                    r["lag_bytes"], "-" if r["lag_seconds"] is None else f"{r['lag_seconds']:.3f}",
                    "-" if r["slot_active"] is None else "active" if r["slot_active"] else "inactive",
                    "✓" if r["ok"] else "✗"] for r in rows])
        if archives:
            out.table("日志归档 Log archive: WAL, binary log (point-in-time recovery 时间点恢复)",
                      ["server 服务器", "engine 引擎", "store 备份存储", "state 状态", "not yet archived bytes 未归档",
                       "PITR from 可恢复起点", "base backups 基础备份", "ok"],
                      [[r["server"], r["service"], r["store"], r["state"], "-" if r["lag_bytes"] is None else r["lag_bytes"],
                        r["pitr_from"] or "none yet 尚无 (netops backup run)", r["base_backups"], "✓" if r["ok"] else "✗"]
                       for r in archives])
        for r in bad:
            for p in r["problems"]:
                out.print(f"✗ {r.get('standby') or r['server']}: {p}", markup=False)
    return FINDINGS if bad else OK


def cmd_pitr(args, out: Out) -> int:
    inv = load(args.inventory)
    if args.server not in inv.devices:
        raise UsageError(f"{args.server}: no such device in the inventory 清单中无此设备")
    target = pitr.parse_time(args.to)
    with Access(inv, args.environ) as access, out.progress(f"pitr {args.server} → {target.isoformat()} 时间点恢复", total=1) as step:
        rep = pitr.restore(access, inv, args.server, target, args.out, service=args.service)
        step(1, args.server)
    if out.json_mode:
        out.json({"ok": True, **rep})
    else:
        out.print(f"✓ {rep['server']} as at {rep['to']} 恢复至该时刻: base backup {rep['base_backup']} ({rep['base_backup_time']}) "
                  f"+ {'WAL' if rep['service'] == 'postgresql' else 'binary log 二进制日志'} on {rep['store']}; "
                  f"last transaction 最后事务 {rep['last_transaction'] or '-'}; "
                  f"{rep['bytes']} bytes → {rep['out']} ({rep['seconds']:.1f} s)", markup=False)
    return OK
