"""`netops backup run | status | verify | restore`."""
from __future__ import annotations

import sys

from jinbao_netops import escape
from jinbao_netops.access import Access
from jinbao_netops.cli import noun_verbs
from jinbao_netops.inventory import load
from jinbao_netops.errors import FINDINGS, OK, PARTIAL, DeviceError, NetopsError, UsageError
from jinbao_netops.output import Out

KINDS = ("configs", "files", "databases")


def register(nouns, common) -> None:
    verb = noun_verbs(nouns, common, "backup", "provincial backup: device configs in git, files and databases in restic")
    r = verb("run", cmd_run, "back up a scope to its province's backup store (configs, files, databases)")
    r.add_argument("--scope", metavar="SITE", help="a site (with everything below it) or one device; default: all")
    r.add_argument("--kind", choices=KINDS, action="append",
                   help="what to back up (repeatable; default: all kinds)")
    r.add_argument("--workers", type=int, default=32, metavar="N", help="devices fetched at once (default 32)")
    r.add_argument("--timeout", type=float, default=30, metavar="S", help="per-device timeout in seconds (default 30)")
    st = verb("status", cmd_status, "the catalogue: per asset last success, size, duration, verification, copies (3-2-1)")
    st.add_argument("--rebuild", action="store_true",
                    help="rebuild the catalogue from the stores' restic repositories and config archives (after "
                         "it was found corrupt); the file it replaces is kept beside it 从备份仓库重建备份目录")
    v = verb("verify", cmd_verify, "restic check (rotating data subset) and a test restore of every asset's newest snapshot")
    v.add_argument("--scope", metavar="SITE", help="only the assets of this site (and below) or device")
    rs = verb("restore", cmd_restore, "restore an asset (database or files) to a node")
    rs.add_argument("asset", metavar="ASSET", help="e.g. panyu-db1:mariadb:shebao or gd-db1:files (see backup status)")
    rs.add_argument("--to", required=True, metavar="NODE", help="the node to restore to")
    rs.add_argument("--snapshot", metavar="ID", help="a snapshot id (default: the newest)")
    rs.add_argument("--from-dr", action="store_true", help="restore from the DR site's off-site copy")
    rs.add_argument("--force", action="store_true",
                    help="restore across provinces, an unverified snapshot, or over an existing database")


    d = nouns.add_parser("drill", help="disaster-recovery drills on the lab twin with measured RTO/RPO")
    dverbs = d.add_subparsers(dest="verb", metavar="VERB")
    dverbs.required = True
    dr = dverbs.add_parser("run", parents=[common], help="run a drill scenario (built-in name or YAML file)",
                           description="run a drill scenario (built-in name or YAML file); exit 1 when it fails")
    dr.add_argument("scenario", metavar="SCENARIO", help="a built-in scenario (netops drill list) or a scenario file")
    dr.add_argument("--dry-run", action="store_true", help="validate the scenario and print its steps; touch nothing")
    dr.set_defaults(func=cmd_drill_run)
    dverbs.add_parser("list", parents=[common], help="the built-in scenarios").set_defaults(func=cmd_drill_list)


def cmd_drill_list(args, out: Out) -> int:
    from .drill import SCENARIOS, load_scenario

    inv = load(args.inventory)
    rows = [load_scenario(inv, p.stem) for p in sorted(SCENARIOS.glob("*.yml"))]
    if out.json_mode:
        out.json([{k: v for k, v in r.items() if not k.startswith("_")} for r in rows])
    else:
        out.table("演练场景 Drill scenarios", ["scenario 场景", "name 名称", "scope 范围", "targets 目标"],
                  [[r["id"], r["name"], r["scope"], ", ".join(f"{k}={v}" for k, v in r["targets"].items())] for r in rows])
    return OK


def cmd_drill_run(args, out: Out) -> int:
    from .drill import load_scenario, plan, run

    inv = load(args.inventory)
    sc = load_scenario(inv, args.scenario)
    if args.dry_run:
        steps = plan(sc)
        if out.json_mode:
            out.json({"scenario": sc["id"], "dry_run": True, "steps": steps})
        else:
            out.print(f"{escape.rich(sc['name'])} ({sc['id']}), scope {sc['scope']} — dry run 预演，不做任何改动")
            for i, s in enumerate(steps, 1):
                out.print(f"  {i}. {escape.rich(s)}")
        return OK
    with Access(inv, args.environ) as access, out.progress(f"drill {sc['id']} 演练", total=6) as step:
        jn = run(access, sc, progress=step)
    if out.json_mode:
        out.json(jn)
    else:
        for s in jn["steps"]:
            step = escape.rich(f"[{s['phase']}] {s['step']}")
            out.print(f"+{s['offset_s']:7.1f} s  {'✓' if s['ok'] else '✗'} {step}")
        fmt = lambda v: "—" if v is None else f"{v:.1f} s"  # noqa: E731
        out.print(f"RTO {fmt(jn['rto_seconds'])} (target {fmt(jn['targets'].get('rto_seconds'))}), "
                  f"RPO {fmt(jn['rpo_seconds'])} (target {fmt(jn['targets'].get('rpo_seconds'))})")
        out.print(("[green]通过 PASSED[/]" if jn["passed"] else "[red]未通过 FAILED[/]") + f" — report 报告: {escape.rich(jn['report'])}")
    return OK if jn["passed"] else FINDINGS


def cmd_run(args, out: Out) -> int:
    from . import catalogue
    from .configs import backup_configs, network_devices

    if args.workers < 1 or args.timeout <= 0:
        raise UsageError("--workers must be ≥ 1 and --timeout > 0")
    inv = load(args.inventory)
    catalogue.load()  # a corrupt catalogue stops the run before any backup is taken, not after
    kinds = args.kind or list(KINDS)
    reports = {}
    with Access(inv, args.environ, timeout=args.timeout) as access:
        if "configs" in kinds:
            n = len(network_devices(inv, args.scope))
            with out.progress("configs 设备配置", total=n) as step:
                reports["configs"] = backup_configs(inv, args.scope, access=access, workers=args.workers,
                                                    timeout=args.timeout, progress=step)
        server_kinds = [k for k in kinds if k != "configs"]
        if server_kinds:
            from .jobs import backup_servers

            reports["servers"] = backup_servers(inv, args.scope, server_kinds, access=access,
                                                progress_factory=out.progress)
    failed = sum(r["failed"] for r in reports.values())
    if out.json_mode:
        out.json({"ok": failed == 0, **reports})
    else:
        if "configs" in reports:
            _print_configs(out, reports["configs"])
        if "servers" in reports:
            _print_servers(out, reports["servers"])
    return PARTIAL if failed else OK


def _in_scope(inv, scope):
    return set(inv.scope(scope))


def cmd_status(args, out: Out) -> int:
    import time

    from . import catalogue

    inv = load(args.inventory)
    rebuilt = None
    if args.rebuild:
        from .rebuild import rebuild

        with Access(inv, args.environ) as access:
            rebuilt = rebuild(inv, access)
    cat = catalogue.load()
    rows = []
    for aid, a in sorted(cat["assets"].items()):
        d = catalogue.derived(a)
        rows.append({"asset": aid, **{k: a.get(k) for k in ("province", "site", "device", "kind", "store", "snapshot",
                                                             "size", "duration", "last_success", "last_ok", "offsite",
                                                             "verified_at", "verify_error")},
                     "verify_ok": a.get("verify_ok"), "copies": d["copies"], "ok_321": bool(d["ok_321"])})
    stale = [r["asset"] for r in rows if not r["last_ok"] or r["verify_ok"] is False]
    code = PARTIAL if rebuilt and rebuilt["problems"] else FINDINGS if stale else OK
    if out.json_mode:
        out.json({"assets": rows, "problems": stale, "catalogue": str(catalogue.path()), "inventory": str(inv.root),
                  **({"rebuild": rebuilt} if rebuilt else {})})
        return code

    def ago(t):
        return "-" if not t else f"{int(time.time() - t)} s ago"

    out.table("备份目录 Backup catalogue", ["asset 资产", "kind", "last success 最近成功", "bytes", "s",
                                       "verified 校验", "copies 副本", "3-2-1"],
              [[r["asset"], r["kind"], ago(r["last_success"]) + ("" if r["last_ok"] else " ✗"), r["size"], r["duration"],
                {True: "✓ " + ago(r["verified_at"]), False: "✗ " + (r["verify_error"] or "")}.get(r["verify_ok"], "-"),
                r["copies"], "✓" if r["ok_321"] else "✗"] for r in rows])
    out.print(f"{len(rows)} assets, {len(stale)} with problems 有问题; catalogue {catalogue.path()}")
    if rebuilt:
        out.print(("重建 rebuilt from " + (", ".join(rebuilt["read"]) or "no repository 无仓库")) if rebuilt["installed"]
                  else "未重建 not rebuilt: a store could not be read and the catalogue is good 目录完好，保持不变")
        for p in rebuilt["problems"]:
            out.print(f"✗ {p}", markup=False)
        if rebuilt["aside"]:
            out.print(f"previous catalogue kept 原目录已保留: {rebuilt['aside']}", markup=False)
        if rebuilt["installed"]:
            out.print(f"not in the repositories 仓库中没有: {rebuilt['lost']}", markup=False)
    return code


def cmd_verify(args, out: Out) -> int:
    from . import catalogue
    from .jobs import policy, ssh_shell
    from .rebuild import refresh
    from .remote import dr_store_of
    from .restic import Repo, ResticError
    from .verify import record, verify_store

    inv = load(args.inventory)
    devs = _in_scope(inv, args.scope)
    catalogue.load()  # a corrupt catalogue stops the run before any repository is read
    with Access(inv, args.environ) as access:
        # the repositories first: assets backed up by other hosts (the monitor host's service: the nodes take
        # them), and newer snapshots than the catalogue's (the nodes' timers keep backing up, retention forgets)
        fresh = refresh(inv, access, devs)
        cat = catalogue.load()
        by_store = _to_verify(inv, devs, cat)
        if not by_store and fresh["problems"]:
            raise NetopsError("nothing verified 未校验: the catalogue holds no backed-up asset in scope and the "
                              "backup repositories could not be read 无法读取备份仓库: " + "; ".join(fresh["problems"]),
                              code=PARTIAL)
        if not by_store:
            raise UsageError("nothing to verify: no backed-up asset in scope in the catalogue or the backup "
                             "repositories 备份目录与备份仓库中均无范围内的备份 (run `netops backup run` first)")
        print(_refreshed(fresh), file=sys.stderr)
        for p in fresh["problems"]:
            print(f"✗ {p}", file=sys.stderr)
        subsets = int(policy()["verify"]["read_data_subsets"])
        results = []
        with out.progress("verify 校验", total=len(by_store)) as step:
            for sid, entries in sorted(by_store.items()):
                store = inv.devices[sid]
                drdev = dr_store_of(inv, store)
                try:
                    repo = Repo.on_store(access, sid)
                    dr = Repo.on_store(access, drdev.id) if drdev else None
                    results.append(verify_store(repo, dr, entries, ssh_shell(access), subsets, cat["verify_round"]))
                except (DeviceError, ResticError) as e:
                    results.append({"store": sid, "ok": False, "checks": [{"repo": sid, "subset": "-", "ok": False,
                                                                           "errors": [str(e)]}], "assets": []})
                step(1, sid)
    evidence = record(results)
    ok = all(r["ok"] for r in results)
    partial = bool(fresh["problems"])  # a store whose snapshots could not be read: its newest may not be verified
    if out.json_mode:
        out.json({"ok": ok and not partial, "stores": results, "evidence": str(evidence), "refresh": fresh})
    else:
        for r in results:
            for c in r["checks"]:
                out.print(f"{c['repo']}: restic check --read-data-subset={c['subset']} "
                          + ("✓" if c["ok"] else "✗ " + escape.rich("; ".join(c["errors"][:3]))))
        out.table("恢复校验 Restore verification", ["asset 资产", "snapshot", "result 结果"],
                  [[e["asset"], e["snapshot"], "✓ " + (f"{e['tables']} tables match 表一致" if "tables" in e else
                                                       f"{e.get('files', 0)} files") if e["ok"] else "✗ " + (e.get("error") or "")]
                   for r in results for e in r["assets"]])
        out.print(f"evidence 证据: {escape.rich(evidence)}")
    return PARTIAL if partial else OK if ok else FINDINGS


def _refreshed(fresh: dict) -> str:
    """verify's stderr line on what the repositories changed in the catalogue."""
    if not fresh["read"]:
        return "备份目录未更新 the catalogue was not brought up to the repositories: none was read 未读取任何备份仓库"
    line = (f"备份目录已按备份仓库更新 catalogue brought up to {', '.join(fresh['read'])}: {len(fresh['added'])} "
            f"added 新增, {len(fresh['updated'])} moved to a newer snapshot 更新至较新快照")
    return line + (f"; not in the repositories 仓库中没有: {fresh['lost']}" if fresh["added"] or fresh["updated"] else "")


def _to_verify(inv, devs: set[str], cat: dict) -> dict[str, dict]:
    """store → {asset id → entry}: the catalogue's restic-backed assets of ``devs`` on a known store."""
    by_store: dict[str, dict] = {}
    for aid, a in cat["assets"].items():
        if a.get("device") in devs and a.get("store") in inv.devices and a.get("kind") != "configs":
            by_store.setdefault(a["store"], {})[aid] = a
    return by_store


def cmd_restore(args, out: Out) -> int:
    from .restore import restore

    with Access(load(args.inventory), args.environ) as access:
        res = restore(access, args.asset, args.to, snapshot=args.snapshot, force=args.force, from_dr=args.from_dr)
    ok = res.get("matches_source", True)
    if out.json_mode:
        out.json({"ok": ok, **res})
    else:
        where = f"database {res['database']} ({res['tables']} tables)" if "database" in res else f"folder {res['folder']}"
        out.print(f"{'✓' if ok else '✗'} {res['asset']} snapshot {res['snapshot']} ({res['time'][:19]}) from {res['repo']} "
                  f"→ {res['to']} {where}" + ("" if ok else " — differs from the source at backup time 与备份时源数据不一致")
                  + f" in {res['seconds']} s")
    return OK if ok else FINDINGS


def _print_servers(out: Out, rep: dict) -> None:
    rows = []
    for s in rep["stores"]:
        for a in s["assets"]:
            rows.append([a["asset"], s["store"], "✓ " + (a["snapshot"] or "") if a["ok"] else "✗ " + (a["error"] or ""),
                         a["size"], a["seconds"]])
    out.table("文件与数据库备份 Files and databases backup", ["asset 资产", "store 备份存储", "snapshot 快照",
                                                        "bytes", "s"], rows)
    for s in rep["stores"]:
        out.print(f"{s['store']}: " + ("off-site copy 异地副本 → " + s["dr"] if s["copied"] else "no off-site copy 无异地副本")
                  + (f" ✗ {escape.rich(s['error'])}" if s["error"] else ""))
    for d, e in rep["discovery_errors"].items():
        out.print(f"✗ {d}: {escape.rich(e)}")
    _print_skipped(out, rep)
    out.print(f"{rep['ok']} ok, {rep['failed']} failed in {rep['seconds']} s")


def _print_configs(out: Out, rep: dict) -> None:
    rows = []
    for d in rep["devices"]:
        state = ("✗ 失败 failed: " + (d["error"] or "")) if not d["ok"] else ("± 已变更 changed" if d["changed"] else "= 未变 unchanged")
        rows.append([d["device"], d["store"], state, d["seconds"]])
    out.table("设备配置备份 Device configuration backup", ["device 设备", "store 备份存储", "result 结果", "s"], rows)
    for d in rep["devices"]:
        if d["diff"]:
            out.print(f"[bold]--- {d['device']}[/]")
            out.print(d["diff"], markup=False)
    for s in rep["stores"]:
        offsite = (f"; off-site copy 异地副本 → {s['dr_store']} " + ("✓" if s["offsite"] else f"✗ {escape.rich(s['offsite_error'])}")
                   if s["dr_store"] else "; no DR store 无灾备存储")
        out.print(f"{s['store']}: " + (f"commit {s['commit'][:12]}" if s["commit"] else "no change 无变更，未提交")
                  + ("" if s["pushed"] else f" ✗ {escape.rich(s['error'])}") + (offsite if s["pushed"] else ""))
    if rep["unassigned"]:
        out.print("no backup store above 无备份存储: " + ", ".join(rep["unassigned"]))
    _print_skipped(out, rep)
    out.print(f"{rep['ok']} ok, {rep['failed']} failed, {rep['changed']} changed in {rep['seconds']} s; report {escape.rich(rep['report'])}")


def _print_skipped(out: Out, rep: dict) -> None:
    for d, why in rep["skipped"].items():
        out.print(f"– 跳过 skipped {escape.rich(d)}: {escape.rich(why)}")
