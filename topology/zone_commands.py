"""`netops zones check [--scope X] | rules DEVICE [--out PATH]`: security zones and their boundaries."""
from __future__ import annotations

import sys

from jinbao_netops import escape
from jinbao_netops.errors import EXIT_CODES_HELP, FINDINGS, OK
from jinbao_netops.files import out_path, write_atomic, write_error
from jinbao_netops.inventory import load
from jinbao_netops.inventory.model import zone_label
from jinbao_netops.output import Out

# the dynamic half of issue 16 §3 (probing the flows on the lab twin) is not built yet: say so wherever
# the static result is shown, so nobody takes it for the whole proof
DYNAMIC = ("动态探测（实验网孪生上逐一探测允许与禁止的流）尚未实现 dynamic probing of allowed and forbidden flows "
           "on the lab twin is not implemented yet: this is the static check only")


def register(nouns, common) -> None:
    p = nouns.add_parser("zones", help="security zones 安全区: the static boundary check and the boundary devices' rules")
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    v = verbs.add_parser(
        "check", parents=[common], help="static zone check: every path between two zones passes a boundary device",
        description="Static zone check 静态安全区检查: from the inventory graph, every path between two zones passes a "
                    "boundary device (firewall, 网闸 gap_gateway), and every flow the zone policy allows is carried by "
                    "one; a zone × zone matrix of allowed flows and the boundary devices on the paths. " + DYNAMIC + ".",
        epilog=f"Here 1: a violation (a path between zones through no boundary device, or an allowed flow no boundary "
               f"device carries). {EXIT_CODES_HELP}.")
    v.add_argument("--scope", metavar="SITE|DEVICE", help="report the boundary devices and violations of this site "
                                                          "(and the sites under it) or device")
    v.set_defaults(func=cmd_check)
    v = verbs.add_parser(
        "rules", parents=[common], help="a boundary device's rules rendered from the zone policy (default deny)",
        description="A boundary device's rules, rendered from the zone policy, default deny, minimal: nftables on "
                    "Linux and FRR nodes, security-policy on Huawei USG (VRP) and H3C SecPath (Comware), inbound "
                    "access lists on Cisco ASA. Text only: "
                    "pushing them is not implemented yet.",
        epilog=f"{EXIT_CODES_HELP}.")
    v.add_argument("device", help="boundary device id, e.g. gd-fw1")
    v.add_argument("--out", metavar="PATH", help="write the rules to this file (default: print them)")
    v.set_defaults(func=cmd_rules)


def _topology(args):
    from .graph import build

    return build(load(args.inventory))


def cmd_check(args, out: Out) -> int:
    from . import zones

    topo = _topology(args)
    scope = topo.inv.scope(args.scope) if args.scope else None
    rec = zones.check(topo, scope)
    code = OK if rec["ok"] else FINDINGS
    if out.json_mode:
        out.json({**rec, "scope": args.scope, "static": True, "dynamic": None, "note": DYNAMIC})
        return code
    rows = []
    for cell in rec["matrix"]:
        if not cell["connected"]:
            crossing = "不连通 not connected"
        else:
            crossing = ", ".join(cell["boundaries"]) or "—"
        allowed = ", ".join(cell["allowed"]) or "默认拒绝 default deny"
        rows.append([zone_label(cell["from"]), zone_label(cell["to"]), crossing, allowed,
                     str(cell["violations"]) if cell["violations"] else "✓"])
    out.table("安全区矩阵 Zone matrix (static 静态" + (f", scope {args.scope}" if args.scope else "") + ")",
              ["源区 from", "目的区 to", "途经边界设备 boundary devices on the paths", "策略允许 allowed by policy",
               "违规 violations"], rows)
    for v in rec["violations"]:
        out.print(f"[red]✗ 违规 violation[/] {escape.rich(v['message'])}")
    if rec["ok"]:
        out.print(f"[green]✓[/] 跨区路径均经边界设备 every path between zones passes a boundary device "
                  f"({len(rec['boundaries'])} 台边界设备 boundary devices)")
    out.print(f"[yellow]注意 note:[/] {DYNAMIC}")
    return code


def cmd_rules(args, out: Out) -> int:
    from . import zones

    target = out_path(args.out, "--out") if args.out else None  # a bad path costs nothing
    syntax, rules, text = zones.render(_topology(args), args.device)
    if target is not None:
        try:
            write_atomic(target, text.encode("utf-8"))
        except OSError as e:
            raise write_error(target, e) from None
    if out.json_mode:
        out.json({"ok": True, "device": args.device, "syntax": syntax, "rules": [r.as_dict() for r in rules],
                  **({"out": str(target)} if target else {"text": text})})
    elif target is not None:
        out.print(f"[green]✓[/] wrote 已生成 {escape.rich(target)} ({syntax}, {len(rules)} 条规则 rules, "
                  "默认拒绝 default deny)")
    else:
        sys.stdout.write(text)
    return OK
