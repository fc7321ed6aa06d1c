"""`netops drift [--scope SITE|DEVICE] [--fix]`: intended vs running vs saved, per network device."""
from __future__ import annotations

from jinbao_netops import escape
from jinbao_netops.files import out_path
from jinbao_netops.monitoring import silences
from jinbao_netops.output import Out

from .commands import inventory_root
from .drift import run
from .engine import Options


def register(nouns, common) -> None:
    help_ = "intended vs running vs saved config per network device: drift, unauthorised and unsaved changes 配置漂移检查"
    p = nouns.add_parser("drift", parents=[common], help=help_, description=help_)
    p.add_argument("--scope", metavar="SITE", help="a site (and everything below it) or a device (default: all)")
    p.add_argument("--fix", action="store_true", help="re-provision the links of every device that drifted through "
                                                      "`link provision`'s safe push (diff, commit-confirm, verify, "
                                                      "roll back, change record), then check again")
    p.add_argument("--changes", metavar="DIR", help="with --fix: change records and backups (default: <inventory>/changes)")
    p.add_argument("--verify-timeout", type=float, default=40.0, metavar="S",
                   help="with --fix: seconds to wait for the checks to pass before rolling back (default 40)")
    p.set_defaults(func=cmd_drift)


def cmd_drift(args, out: Out) -> int:
    opts = Options(changes=out_path(args.changes, "--changes", directory=True) if args.changes else None,
                   verify_timeout=args.verify_timeout)
    with out.progress("drift 配置漂移", total=1) as step:
        res = run(inventory_root(args), args.scope, opts, environ=args.environ, do_fix=args.fix)
        step()
    if out.json_mode:
        out.json(res)
    else:
        _report(out, res)
    return res["code"]


_STATUS = {"clean": "一致 clean", "findings": "有差异 findings", "unreachable": "不可达 unreachable",
           "unreadable": "无法解析 unreadable", "not_read": "未读取 not read"}


def _lines(out: Out, title: str, paths: list[list[str]], mark: str, style: str) -> None:
    if not paths:
        return
    out.print(f"  {title}:")
    for p in paths:
        out.print(f"    {mark} " + escape.rich(" › ".join(p)), style=style)


def _report(out: Out, res: dict) -> None:
    for f in res.get("fixes", []):
        out.print(escape.rich(f"fix 修复 {f['action']} {f['link']}: {f['result']}" + (f" — {f['error']}" if "error" in f else "")))
        window = silences.summary(f.get("maintenance"))
        if window:
            out.print(f"  {window}", markup=False)
    rows = [[r["device"], r["name"], r["platform"], len(r.get("drift", [])), len(r.get("unauthorised", [])),
             sum(len(v) for v in r.get("unsaved", {}).values()), _STATUS[r["status"]]] for r in res["devices"]]
    out.table("drift 配置漂移", ["device 设备", "name 名称", "platform", "drift 缺失", "unauthorised 未授权",
                               "unsaved 未保存", "status 状态"], rows)
    for r in res["devices"]:
        if "error" in r:
            out.print(escape.rich(f"{r['device']}: {r['error']}"), style="yellow")
        if r["status"] != "findings":
            continue
        out.print(f"[bold]{escape.rich(r['device'])}[/] {escape.rich(r['name'])}")
        _lines(out, "drift 缺失（意图有、运行无）intended, not running", r["drift"], "+", "green")
        _lines(out, "unauthorised 未授权变更 running, outside intent", r["unauthorised"], "-", "red")
        _lines(out, "unsaved 未保存（重启将丢失）running, not saved", r["unsaved"]["running_only"], "!", "yellow")
        _lines(out, "unsaved 未保存（重启将恢复）saved, not running", r["unsaved"]["saved_only"], "!", "yellow")
        if r["remediation"]:
            out.print("  fix 修复命令 (netops drift --fix):")
            for line in r["remediation"]:
                out.print(f"    {escape.rich(line)}")
