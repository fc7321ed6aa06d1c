"""`netops backup run | status | verify | restore`."""
from __future__ import annotations

from inventory import load
from netops.output import OK, PARTIAL, Out

KINDS = ("configs", "files", "databases")


def register(nouns, common) -> None:
    p = nouns.add_parser("backup", help="provincial backup: device configs in git, files and databases in restic")
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True

    def verb(name, func, help):
        v = verbs.add_parser(name, parents=[common], help=help, description=help)
        v.set_defaults(func=func)
        return v

    r = verb("run", cmd_run, "back up a scope to its province's backup store (configs, files, databases)")
    r.add_argument("--scope", metavar="SITE", help="a site (with everything below it) or one device; default: all")
    r.add_argument("--kind", choices=KINDS, action="append",
                   help="what to back up (repeatable; default: all kinds)")
    r.add_argument("--workers", type=int, default=32, metavar="N", help="devices fetched at once (default 32)")
    r.add_argument("--timeout", type=float, default=30, metavar="S", help="per-device timeout in seconds (default 30)")


def cmd_run(args, out: Out) -> int:
    from netops.output import UsageError

    from .configs import backup_configs, network_devices

    if args.workers < 1 or args.timeout <= 0:
        raise UsageError("--workers must be ≥ 1 and --timeout > 0")
    inv = load(args.inventory)
    kinds = args.kind or list(KINDS)
    reports = {}
    if "configs" in kinds:
        n = len(network_devices(inv, args.scope))
        with out.progress("configs 设备配置", total=n) as step:
            reports["configs"] = backup_configs(inv, args.scope, workers=args.workers, timeout=args.timeout,
                                                progress=step)
    failed = sum(r["failed"] for r in reports.values())
    if out.json_mode:
        out.json({"ok": failed == 0, **reports})
    else:
        if "configs" in reports:
            _print_configs(out, reports["configs"])
    return PARTIAL if failed else OK


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
        out.print(f"{s['store']}: " + (f"commit {s['commit'][:12]}" if s["commit"] else "no change 无变更，未提交")
                  + ("" if s["pushed"] else f" ✗ {s['error']}"))
    if rep["unassigned"]:
        out.print("no backup store above 无备份存储: " + ", ".join(rep["unassigned"]))
    out.print(f"{rep['ok']} ok, {rep['failed']} failed, {rep['changed']} changed in {rep['seconds']} s; report {rep['report']}")
