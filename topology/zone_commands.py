"""`netops zones check [--scope X] [--probe] | rules DEVICE [--out PATH] | apply [DEVICE…] [--scope X] [--check]`:
security zones and their boundaries."""
from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

from jinbao_netops import escape
from jinbao_netops.errors import EXIT_CODES_HELP, FINDINGS, OK, PARTIAL, UsageError
from jinbao_netops.files import out_path, write_atomic, write_error
from jinbao_netops.inventory import load
from jinbao_netops.inventory.model import zone_label
from jinbao_netops.output import Out

# without --probe the check is the static half only: say so wherever its result is shown, so nobody takes it
# for the whole proof
STATIC_ONLY = ("静态检查，未探测 static check only: the flows were not probed on the network (--probe tries every "
               "allowed flow and a forbidden sample per boundary from the hosts themselves)")


def register(nouns, common) -> None:
    p = nouns.add_parser("zones", help="security zones 安全区: the static boundary check and the boundary devices' rules")
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    v = verbs.add_parser(
        "check", parents=[common], help="static zone check: every path between two zones passes a boundary device",
        description="Static zone check 静态安全区检查: from the inventory graph, every path between two zones passes a "
                    "boundary device (firewall, 网闸 gap_gateway), and every flow the zone policy allows is carried by "
                    "one; a zone × zone matrix of allowed flows and the boundary devices on the paths. With --probe, the "
                    "dynamic check 动态检查 too: every allowed flow is tried from its source host (over SSH) and must get "
                    "through, and per boundary device a forbidden sample (each zone towards each other, common ports "
                    "and ICMP) must not; the result is recorded in <inventory>/changes/zones-checks.jsonl (the audit's "
                    "evidence).",
        epilog=f"Here 1: a violation (a path between zones through no boundary device, an allowed flow no boundary "
               f"device carries, an allowed probe stopped or a forbidden one through); 3: a probe's source could not "
               f"be reached. {EXIT_CODES_HELP}.")
    v.add_argument("--scope", metavar="SITE|DEVICE", help="report the boundary devices and violations of this site "
                                                          "(and the sites under it) or device")
    v.add_argument("--probe", action="store_true", help="also probe the flows on the network (the lab twin: after "
                                                        "eval \"$(netops lab env)\")")
    v.add_argument("--changes", metavar="DIR", help="where the check is recorded (default: <inventory>/changes)")
    v.set_defaults(func=cmd_check)
    v = verbs.add_parser(
        "rules", parents=[common], help="a boundary device's rules rendered from the zone policy (default deny)",
        description="A boundary device's rules, rendered from the zone policy, default deny, minimal: nftables on "
                    "Linux and FRR nodes, security-policy on Huawei USG (VRP) and H3C SecPath (Comware), inbound "
                    "access lists on Cisco ASA. `zones apply` pushes the nftables ones.",
        epilog=f"{EXIT_CODES_HELP}.")
    v.add_argument("device", help="boundary device id, e.g. gd-fw1")
    v.add_argument("--out", metavar="PATH", help="write the rules to this file (default: print them)")
    v.set_defaults(func=cmd_rules)
    v = verbs.add_parser(
        "apply", parents=[common], help="push boundary devices' rules from the zone policy: backup, verify, roll back",
        description="Push each boundary device's rules, rendered from the zone policy (nftables boundaries): its "
                    "table is backed up, replaced in one transaction, then verified — the forward chain's policy is "
                    "drop, every allowed flow through it gets through and the forbidden sample does not (probed from "
                    "the hosts). A failed verification restores the backup and checks the device holds it again. A "
                    "verified change is saved (loaded at boot) and recorded in <inventory>/changes/zones.jsonl. A "
                    "second run with the same policy changes nothing.",
        epilog=f"Here 1: a device's verification failed (rolled back). {EXIT_CODES_HELP}.")
    v.add_argument("devices", nargs="*", metavar="DEVICE", help="boundary device ids (default: every boundary device "
                                                               "in --scope, or all)")
    v.add_argument("--scope", metavar="SITE", help="the boundary devices at this site and the sites under it")
    v.add_argument("--check", action="store_true", help="render and read what each device holds; change nothing")
    v.add_argument("--changes", metavar="DIR", help="change records and backups (default: <inventory>/changes)")
    v.set_defaults(func=cmd_apply)


def _topology(args):
    from .graph import build

    return build(load(args.inventory))


def _changes(args, inv) -> Path:
    from .provision.allocate import inventory_dir

    if args.changes:
        return out_path(args.changes, "--changes", directory=True)
    return inventory_dir(inv.root) / "changes"


def _probe(args, topo, scope, out: Out) -> tuple[list, list[dict]]:
    """(probes, matrix): the dynamic check of the boundaries in ``scope`` (None: all)."""
    from jinbao_netops.access import Access

    from . import zoneprobe, zones

    view = zones.ZoneView(topo)
    bounds = set(view.rules) if scope is None else set(view.rules) & set(scope)
    probes = zoneprobe.plan(view, bounds)
    with out.progress("probing 探测", total=1) as step, Access(topo.inv, args.environ) as access:
        zoneprobe.run(access, probes)
        step(1)
    return probes, zoneprobe.matrix(probes)


def cmd_check(args, out: Out) -> int:
    from . import zone_apply, zones
    from .provision.engine import who

    topo = _topology(args)
    scope = topo.inv.scope(args.scope) if args.scope else None
    cdir = _changes(args, topo.inv) if args.probe else None
    rec = zones.check(topo, scope)
    code = OK if rec["ok"] else FINDINGS
    probes, cells = _probe(args, topo, scope, out) if args.probe else ([], [])
    if args.probe:
        unreached = [p for p in probes if p.outcome.startswith("error")]
        dyn_ok = all(p.ok for p in probes)
        if not dyn_ok:
            code = max(code, PARTIAL if unreached and all(p.ok for p in probes if p not in unreached) else FINDINGS)
        zone_apply.record_check(cdir, {"when": datetime.now(UTC).isoformat(timespec="seconds"),
                                       "who": who(),
                                       "scope": args.scope, "static_ok": rec["ok"], "dynamic": True,
                                       "ok": rec["ok"] and dyn_ok, "probes": [p.as_dict() for p in probes]})
    if out.json_mode:
        out.json({**rec, "ok": code == OK, "scope": args.scope, "static": True,
                  "dynamic": {"ok": all(p.ok for p in probes), "matrix": cells, "probes": [p.as_dict() for p in probes]}
                  if args.probe else None, **({} if args.probe else {"note": STATIC_ONLY})})
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
    if not args.probe:
        out.print(f"[yellow]注意 note:[/] {STATIC_ONLY}")
        return code
    out.table("探测矩阵 Probe matrix (dynamic 动态)",
              ["边界设备 boundary", "源区 from", "目的区 to", "允许流通过 allowed passed", "禁止流被阻断 forbidden blocked"],
              [[c["boundary"], zone_label(c["from"]), zone_label(c["to"]),
                f"{c['allowed_ok']}/{c['allowed']}" if c["allowed"] else "—",
                f"{c['forbidden_ok']}/{c['forbidden']}" if c["forbidden"] else "—"] for c in cells])
    for c in cells:
        for f in c["failed"]:
            out.print(f"[red]✗ 探测不符 probe[/] {escape.rich(c['boundary'])}: {escape.rich(f)}")
    if all(p.ok for p in probes):
        out.print(f"[green]✓[/] 探测与策略一致 the network does what the policy says ({len(probes)} 次探测 probes)")
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


def cmd_apply(args, out: Out) -> int:
    from jinbao_netops.access import Access

    from . import zone_apply

    topo = _topology(args)
    inv = topo.inv
    bounds = sorted(d for d, dev in inv.devices.items() if dev.boundary)
    if args.devices:
        for d in args.devices:
            if d not in bounds:
                raise UsageError(f"{inv.root}: device {d!r}: " + ("no such device 未知设备" if d not in inv.devices else
                                 f"a {inv.devices[d].role.value}, not a boundary device (firewall, gap_gateway) 非边界设备"))
        devices = list(dict.fromkeys(args.devices))
    else:
        keep = set(inv.scope(args.scope)) if args.scope else None
        devices = [d for d in bounds if keep is None or d in keep]
    if not devices:
        raise UsageError(f"{inv.root}: no boundary device" + (f" in scope {args.scope!r}" if args.scope else "")
                         + " 无边界设备: give a device role firewall or gap_gateway")
    cdir = _changes(args, inv)
    with out.progress("zones apply 下发边界规则", total=2 * len(devices)) as step, Access(inv, args.environ) as access:
        results = zone_apply.apply(access, topo, cdir, devices, args.check, step)
    ok = all(r["ok"] for r in results)
    if out.json_mode:
        out.json({"ok": ok, "devices": [{k: v for k, v in r.items() if k != "holds"} for r in results]})
        return OK if ok else FINDINGS
    verdict = {"applied": "[green]✓ 已生效 applied, verified and saved[/]",
               "no_change": "[green]✓ 无变化 no change (the device holds the policy's rules)[/]",
               "rolled_back": "[red]✗ 验证失败已回滚 verification failed, rolled back[/]",
               "check": "检查 check only"}
    for r in results:
        extra = ""
        if r["result"] == "check":
            extra = " — 将变更 would change" if r["would_change"] else " — 无需变更 nothing to change"
        elif r["result"] == "rolled_back":
            rb = r.get("rollback") or {}
            extra = (" — 规则已恢复 the device holds its backup again" if rb.get("identical")
                     else f" — 回滚后与备份不一致 DIFFERS from its backup {escape.rich(rb.get('error', ''))}")
        out.print(f"[bold]{escape.rich(r['device'])}[/] ({r['rules']} 条规则 rules): {verdict[r['result']]}{extra}")
        for line in r.get("diff", []):
            out.print(line, style="green" if line.startswith("+") else "red", markup=False)
        for v in r.get("verification", []):
            if not v["ok"]:
                out.print(f"  [red]✗[/] {escape.rich(v['check'])}: {escape.rich(v['evidence'])}")
        passed = sum(v["ok"] for v in r.get("verification", []))
        if r.get("verification"):
            out.print(f"  验证 verification: {passed}/{len(r['verification'])} ✓")
    return OK if ok else FINDINGS
