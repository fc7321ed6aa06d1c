"""`netops link provision COUNTY [--check]` and `netops link decommission LINK`."""
from __future__ import annotations

import os
from pathlib import Path

from jinbao_netops.cli import noun_verbs
from jinbao_netops.files import out_path
from jinbao_netops.inventory.loader import DEFAULT_INVENTORY
from jinbao_netops.errors import FINDINGS, OK
from jinbao_netops.monitoring import silences
from jinbao_netops.output import Out

from .engine import Options, change, county_link, decommission_link

STEPS = 6


def register(nouns, common) -> None:
    def options(v):
        v.add_argument("--check", action="store_true", help="allocate, render, read the running configs and show the diff; "
                                                               "change and write nothing")
        v.add_argument("--changes", metavar="DIR", help="change records and backups (default: <inventory>/changes; "
                                                        "--check writes backups only here, and nothing without it)")
        v.add_argument("--verify-timeout", type=float, default=40.0, metavar="S",
                       help="seconds to wait for the checks to pass before rolling back (default 40)")

    verb = noun_verbs(nouns, common, "link", "county links: provision or decommission with diff, verify and automatic rollback",
                      options)

    verb("provision", cmd_provision, "provision a county's planned uplink end to end 开通区县链路").add_argument(
        "county", help="county site id (pinyin), e.g. longgang")
    verb("decommission", cmd_decommission, "remove a county link's configuration from both ends 拆除链路").add_argument(
        "link", help="link id, e.g. longgang-up2")


def inventory_root(args) -> Path:
    return Path(args.inventory or os.environ.get("NETOPS_INVENTORY") or DEFAULT_INVENTORY)


def _opts(args, step) -> Options:
    return Options(check=args.check, changes=out_path(args.changes, "--changes", directory=True) if args.changes else None,
                   verify_timeout=args.verify_timeout, step=step)


def _run(args, out: Out, action: str, find) -> int:
    root = inventory_root(args)
    link_id = find(root)
    with out.progress(f"{action} {link_id}", total=STEPS) as step:
        res = change(root, link_id, action, _opts(args, step), environ=args.environ)
    _report(out, res)
    return OK if res["ok"] else FINDINGS


def cmd_provision(args, out: Out) -> int:
    return _run(args, out, "provision", lambda root: county_link(root, args.county, _opts(args, None)))


def cmd_decommission(args, out: Out) -> int:
    return _run(args, out, "decommission", lambda root: decommission_link(root, args.link))


_VERDICT = {"check": "检查完成 check only, nothing changed", "no_change": "无变化 no change needed (already in place)",
            "applied": "已生效 applied, verified and saved", "rolled_back": "验证失败已回滚 verification failed, rolled back"}


def _report(out: Out, res: dict) -> None:
    if out.json_mode:
        out.json(res)
        return
    alloc = res.get("allocation") or {}
    out.print(f"[bold]{res['action']} {res['link']}[/]  {alloc.get('subnet', '')} ({alloc.get('pool', '')})")
    for dev, d in res["devices"].items():
        out.print(f"[bold]{dev}[/] ({d['platform']}) diff 差异:" + ("" if d["diff"] else " (none 无)"))
        for line in d["diff"]:
            style = "green" if line.startswith("+") else "red" if line.startswith("-") else ""
            out.print(line, style=style or None, markup=False)
    if res.get("verification"):
        out.table("verification 验证", ["check 检查项", "ok"], [[c["check"], "✓" if c["ok"] else "✗"] for c in res["verification"]])
    for rb in res.get("rollback", []):
        out.print(f"rollback 回滚 {rb['device']}: running config {'identical to backup 与备份一致' if rb['identical'] else 'DIFFERS from backup 与备份不一致'}")
    window = silences.summary(res.get("maintenance"))
    if window:
        out.print(window, markup=False)
    out.print(_VERDICT[res["result"]])
