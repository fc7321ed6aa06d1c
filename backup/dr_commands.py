"""`netops dr`: continuous replication to the disaster-recovery site (backup/replication.py)."""
from __future__ import annotations

from jinbao_netops.access import Access
from jinbao_netops.cli import noun_verbs
from jinbao_netops.errors import FINDINGS, OK, PARTIAL, DeviceError
from jinbao_netops.inventory import load
from jinbao_netops.output import Out

from . import replication


def register(nouns, common) -> None:
    verb = noun_verbs(nouns, common, "dr", "disaster recovery: database replication to the DR site 灾备复制", lambda v: v.add_argument(
        "--scope", metavar="SITE", help="the standbys of a site (and below) or device, or of its primaries; default: all"))
    verb("setup", cmd_setup, "build the inventory's replication pairs (PostgreSQL streaming, TLS, a slot per standby); "
                             "idempotent 建立数据库实时复制").add_argument(
        "--force", action="store_true", help="clone onto a standby-to-be that holds databases of its own or does not answer (its data is discarded)")
    st = verb("status", cmd_status, "per pair: state, sync mode, lag in bytes and seconds, the slot 复制状态")
    st.add_argument("--max-lag", type=float, default=5.0, metavar="S",
                    help="a pair lagging more than this many seconds is a finding (default 5)")


def cmd_setup(args, out: Out) -> int:
    inv = load(args.inventory)
    pairs = replication.pairs(inv, args.scope)
    rows, problems = [], []
    with Access(inv, args.environ) as access, out.progress("dr setup 建立复制", total=len(pairs)) as step:
        for pair in pairs:
            try:
                rows.append(replication.setup_pair(access, inv, pair, args.force))
            except DeviceError as e:
                problems.append(str(e))
                rows.append({"primary": pair.primary, "standby": pair.standby, "sync": pair.sync, "changed": [],
                             "error": str(e)})
            step(1, pair.standby)
    changed = any(r["changed"] for r in rows)
    if out.json_mode:
        out.json({"ok": not problems, "changed": changed, "pairs": rows, "problems": problems})
    else:
        for r in rows:
            mode = "同步 sync" if r["sync"] else "异步 async"
            what = r.get("error") or ("; ".join(r["changed"]) or "unchanged 无变化")
            out.print(f"{'✗' if r.get('error') else '✓'} {r['primary']} → {r['standby']} ({mode}): {what}", markup=False)
    return PARTIAL if problems else OK


def cmd_status(args, out: Out) -> int:
    inv = load(args.inventory)
    pairs = replication.pairs(inv, args.scope)
    with Access(inv, args.environ) as access:
        rows = [replication.status_pair(access, inv, p, args.max_lag) for p in pairs]
    bad = [r for r in rows if not r["ok"]]
    if out.json_mode:
        out.json({"ok": not bad, "max_lag_seconds": args.max_lag, "pairs": rows})
    else:
        out.table("灾备复制 DR replication", ["primary 主库", "standby 备库", "mode 模式", "state 状态", "lag bytes",
                                          "lag s 延迟", "slot 复制槽", "ok"],
                  [[r["primary"], r["standby"], r["mode"], f"{r['state']} ({r['sync_state'] or '-'})", r["lag_bytes"],
                    "-" if r["lag_seconds"] is None else f"{r['lag_seconds']:.3f}",
                    "active" if r["slot_active"] else "inactive", "✓" if r["ok"] else "✗"] for r in rows])
        for r in bad:
            for p in r["problems"]:
                out.print(f"✗ {r['standby']}: {p}", markup=False)
    return FINDINGS if bad else OK
