"""`netops topology path SITE | spof | impact --fail X | check | draw [--scope SITE]`."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from jinbao_netops import escape
from jinbao_netops.inventory import Level, load
from jinbao_netops.inventory.model import LEVEL_NAMES
from jinbao_netops.files import out_path, write_atomic, write_error
from jinbao_netops.errors import EXIT_CODES_HELP, FINDINGS, OK, UsageError
from jinbao_netops.output import Out

from . import KIND_ZH

if TYPE_CHECKING:
    from .graph import Topology

# networkx and the analysis load only when a topology verb runs: `netops --help` stays quick
LEVELS = tuple(lv.value for lv in LEVEL_NAMES)  # senior first
LEVEL_ZH = {lv.value: zh for lv, (zh, _) in LEVEL_NAMES.items()}
BIG_DRAWING = 500  # sites; dot takes a minute or more beyond this


def register(nouns, common) -> None:
    p = nouns.add_parser("topology", help="the network as a graph: paths, single points of failure, impact, check, diagrams")
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True

    def verb(name, func, help, statuses):
        v = verbs.add_parser(name, parents=[common], help=help, description=help, epilog=f"{statuses} {EXIT_CODES_HELP}.")
        v.set_defaults(func=func)
        return v

    v = verb("path", cmd_path, "shortest paths (OSPF cost, reference 100000 Mbit/s) from a site's routers to the "
             "ministry, the number of link- and node-disjoint paths, and the single failures that cut the site off",
             "Here 0: the site reaches the ministry; 1: it does not.")
    v.add_argument("site", help="site id (pinyin), e.g. panyu")
    v = verb("spof", cmd_spof, "single points of failure per level: routers, links and shared-risk groups (SRLGs) "
             "whose failure alone cuts some other site off from the ministry",
             "A report: 0 whatever it finds (use `topology check` as a gate).")
    v.add_argument("--level", choices=LEVELS, help="only elements of this level")
    v = verb("impact", cmd_impact, "what is cut off, by level, if a device, link or shared-risk group fails "
             "(several --fail: together)",
             "A what-if report: 0; an unknown device/link/SRLG is bad input.")
    v.add_argument("--fail", action="append", required=True, metavar="DEVICE|LINK|SRLG",
                   help="device id, link id or srlg name; prefix device:, link: or srlg: if a name is ambiguous")
    verb("check", cmd_check, "findings: a county declared dual-homed that one failure (device, link or SRLG) cuts "
         "off, or a site with no path to the ministry",
         "Here 1: findings.")
    v = verb("draw", cmd_draw, "diagram ranked by level with single points of failure in red: Graphviz SVG/PNG/DOT "
             "or a self-contained interactive HTML page",
             "SVG, PNG and HTML need Graphviz's `dot` (missing: the command failed, 4).")
    v.add_argument("--scope", metavar="SITE", help="draw this site's subtree and its paths up to the ministry")
    v.add_argument("--format", choices=("svg", "png", "html", "dot"),
                   help="output format (default: from --out's suffix, else svg)")
    v.add_argument("--out", metavar="PATH", help="file to write (default: topology-SCOPE.FORMAT here); - for stdout")
    v.add_argument("--hosts", action="store_true", help="draw servers and other hosts too (default: counted per site)")


def _topology(args) -> Topology:
    from .graph import build

    return build(load(args.inventory))


def _site_label(topo: Topology, sid: str) -> str:
    s = topo.inv.sites[sid]
    return f"{s.name} ({sid})"


def _sites_text(topo: Topology, sites) -> str:
    return ", ".join(_site_label(topo, s) for s in sites)


def _unit_text(topo: Topology, d: dict) -> str:
    if d["kind"] == "device":
        return f"{KIND_ZH['device']} device {d['id']} ({d['name']}, {d['site']})"
    if d["kind"] == "link":
        return (f"{KIND_ZH['link']} link {d['id']} ({d['a']} — {d['b']}"
                + (f", srlg {d['srlg']}" if d.get("srlg") else "") + ")")
    return f"{KIND_ZH['srlg']} srlg {d['id']} ({', '.join(d['links']) or 'no active links 无在用链路'})"


def _mbps(n: int) -> str:
    return f"{n // 1000}G" if n >= 1000 and n % 1000 == 0 else f"{n}M"


def _path_text(p: dict) -> str:
    parts = []
    for h in p["hops"]:
        if "device" in h:
            parts.append(h["device"])
        else:
            parts.append(f" —{h['link']} ({_mbps(h['bandwidth_mbps'])}, {h['cost']})→ ")
    return "".join(parts)


# --- verbs ---------------------------------------------------------------------------------------
def cmd_path(args, out: Out) -> int:
    from . import analysis as an

    topo = _topology(args)
    rec = an.paths(topo, args.site)
    code = OK if rec["reachable"] else FINDINGS
    if out.json_mode:
        out.json({"ok": code == OK, **rec})
        return code
    s = topo.inv.sites[args.site]
    homing = {"dual": "双归属 dual-homed", "single": "单归属 single-homed"}.get(rec["homing"] or "", "")
    out.print(f"[bold]{escape.rich(s.name)}[/] ({s.id}, {LEVEL_ZH[s.level.value]} {s.level.value}"
              + (f", {homing}" if homing else "") + ") → 部中心 ministry"
              + (f"   上联 uplinks: {', '.join(rec['uplinks'])}" if rec["uplinks"] else ""))
    if not rec["reachable"]:
        out.print("[red]✗ 无通往部中心的路径 no path to the ministry[/]")
        return code
    n = len(rec["paths"])
    out.table(f"最短路径 Shortest paths — OSPF cost 开销 {rec['cost']}, {n} 条等价 equal-cost"
              + (" (truncated 已截断)" if rec["truncated"] else ""),
              ["#", "开销 cost", "经过站点 sites", "路径 path"],
              [[i, p["cost"], " → ".join(p["sites"]), _path_text(p)] for i, p in enumerate(rec["paths"], 1)])
    if rec["link_disjoint"] is not None:
        out.print(f"不相交路径 Disjoint paths: 链路不相交 link-disjoint {rec['link_disjoint']} · "
                  f"节点不相交 node-disjoint {rec['node_disjoint']}")
        if rec["cut_by"]:
            out.print("[red]单点故障 Single points of failure[/] for this site 可切断本站点: "
                      + "; ".join(_unit_text(topo, d) for d in rec["cut_by"]))
        else:
            out.print("[green]✓[/] 无单点故障 no single failure cuts this site off")
    return code


def cmd_spof(args, out: Out) -> int:
    from . import analysis as an

    topo = _topology(args)
    items = [s for s in an.spof(topo) if args.level is None or s.tier == args.level]
    at_risk = sorted({x for s in items for x in s.sites}, key=lambda x: (LEVELS.index(topo.inv.sites[x].level.value), x))
    if out.json_mode:
        out.json({"ok": True, "count": len(items), "spof": [s.as_dict(topo) for s in items],
                  "by_tier": {lv: [f"{s.failure.kind}:{s.failure.id}" for s in items if s.tier == lv]
                              for lv in LEVELS if any(s.tier == lv for s in items)},
                  "sites_at_risk": an.by_level(topo, at_risk)})
        return OK
    if not items:
        out.print("[green]✓[/] 无单点故障 no single points of failure"
                  + (f" at level {args.level}" if args.level else ""))
        return OK
    rows = []
    for s in items:
        d = s.as_dict(topo)
        if s.failure.kind == "device":
            what = f"{d['name']} @ {d['site']}"
        elif s.failure.kind == "link":
            what = f"{d['a']} — {d['b']}" + (f" · srlg {d['srlg']}" if d["srlg"] else "")
        else:
            what = ", ".join(d["links"])
        cut = ", ".join(f"{topo.inv.sites[x].name} ({x})" for x in s.sites)
        rows.append([f"{LEVEL_ZH[s.tier]} {s.tier}", f"{KIND_ZH[s.failure.kind]} {s.failure.kind}", s.failure.id, what,
                     f"{len(s.sites)}: {cut}"])
    out.table("单点故障 Single points of failure", ["层级 level", "类型 kind", "元素 element", "说明 what",
                                                  "切断站点 cuts off"], rows)
    out.print(f"{len(items)} 个单点故障 single points of failure; {len(at_risk)} 个站点有风险 sites at risk")
    return OK


def cmd_impact(args, out: Out) -> int:
    from . import analysis as an

    topo = _topology(args)
    rec = an.impact(topo, args.fail)
    if out.json_mode:
        out.json({"ok": True, **rec})
        return OK
    out.print("故障 Failure: " + "; ".join(_unit_text(topo, d) for d in rec["fail"]))
    for d in rec["fail"]:
        if d["kind"] == "link" and d["state"] != "active":
            out.print(f"[yellow]注意 note:[/] link {d['id']} is {d['state']} (未启用), it carries nothing yet")
    if rec["down"]:
        out.print("本站失效 Down (their own devices failed): "
                  + "; ".join(f"{LEVEL_ZH[lv]} {lv}: {_sites_text(topo, ids)}" for lv, ids in rec["down"].items()))
    if not rec["cut_off"]:
        out.print("[green]✓[/] 无其他站点被切断 no other site is cut off from the ministry")
        return OK
    out.table(f"被切断站点 Sites cut off from the ministry ({rec['cut_off_count']})", ["层级 level", "数量 count", "站点 sites"],
              [[f"{LEVEL_ZH[lv]} {lv}", len(ids), _sites_text(topo, ids)] for lv, ids in rec["cut_off"].items()])
    return OK


def cmd_check(args, out: Out) -> int:
    from . import analysis as an

    topo = _topology(args)
    findings = an.check(topo)
    dual = [s for s in topo.inv.sites.values() if s.level == Level.county and s.homing == "dual"]
    code = FINDINGS if findings else OK
    if out.json_mode:
        out.json({"ok": not findings, "findings": [f.as_dict() for f in findings], "sites": len(topo.inv.sites),
                  "dual_homed_counties": len(dual)})
        return code
    if not findings:
        out.print(f"[green]✓[/] 拓扑检查通过 topology check passed: all {len(topo.inv.sites)} sites reach the ministry "
                  f"全部站点可达部中心; {len(dual)} 个双归属区县均无单点故障 dual-homed counties survive any single failure")
        return code
    out.table(f"拓扑检查发现 Topology findings ({len(findings)})", ["站点 site", "层级 level", "问题 code", "说明 message"],
              [[f.site, f"{LEVEL_ZH[f.level]} {f.level}", f.code, f.message] for f in findings])
    return code


def cmd_draw(args, out: Out) -> int:
    from . import analysis as an
    from . import draw as dr

    fmt = args.format
    if fmt is None:
        suffix = Path(args.out).suffix.lstrip(".").lower() if args.out and args.out != "-" else ""
        fmt = suffix if suffix in dr.FORMATS else "svg"
    if args.out == "-" and out.json_mode:
        raise UsageError("topology draw: --json reports where the diagram went; give --out PATH, not -")
    topo = _topology(args)
    if args.scope:
        topo.site(args.scope)  # unknown site → one line, exit 2, before any work
    if args.out != "-":  # a bad path too
        target = out_path(args.out or f"topology-{args.scope or topo.graph.name}.{fmt}", "--out")
    n_sites = len(dr.scope_sites(topo, args.scope))
    if n_sites > BIG_DRAWING and fmt != "dot":
        out.note(f"drawing {n_sites} sites with dot takes a minute or more 站点较多，请稍候; "
                 f"--scope SITE draws a part")
    data = dr.draw(topo, fmt, args.scope, hosts=args.hosts)
    if args.out == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return OK
    try:
        write_atomic(target, data)
    except OSError as e:
        raise write_error(target, e) from None
    n_spof = len(an.spof(topo))
    if out.json_mode:
        out.json({"ok": True, "out": str(target), "format": fmt, "bytes": len(data), "sites": n_sites,
                  "scope": args.scope, "spof": n_spof})
    else:
        out.print(f"[green]✓[/] wrote 已生成 {target} ({fmt}, {n_sites} 站点 sites, "
                  f"{n_spof} 单点故障 single points of failure in the network)")
    return OK
