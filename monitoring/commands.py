"""`netops monitor generate | up | down | status`: the monitoring hierarchy's configuration from the
inventory, and the live stack in the lab twin."""
from __future__ import annotations


from jinbao_netops import escape
from jinbao_netops.inventory import Role, load
from jinbao_netops.errors import FINDINGS, OK
from jinbao_netops.output import Out

from . import generate as gen
from . import healthmap, silences


def register(nouns, common) -> None:
    p = nouns.add_parser("monitor", help="monitoring hierarchy: Prometheus per province, federation, Alertmanager")
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True

    def timing(v):
        v.add_argument("--scrape-interval", type=int, default=gen.SCRAPE_INTERVAL, metavar="S",
                       help=f"collector scrape and rule evaluation interval (the provinces', and the ministry's for its "
                            f"own devices), seconds (default {gen.SCRAPE_INTERVAL})")
        v.add_argument("--federate-interval", type=int, metavar="S",
                       help=f"the ministry's federation interval, seconds (default {gen.FEDERATE_INTERVAL}, "
                            "or twice --scrape-interval when that is shorter)")
        v.add_argument("--max-for", type=int, metavar="S",
                       help="cap every alert's `for:` at S seconds (the lab's short faults; default: the rules' own)")
        v.add_argument("--evaluation-interval", type=int, metavar="S",
                       help="evaluation interval of the device alerts (provinces and the ministry's own), seconds (default: the scrape interval)")

    def lab_opt(v):
        v.add_argument("--lab", metavar="NAME", help="lab name (default: the inventory's network id)")

    g = verbs.add_parser("generate", parents=[common],
                         help="write Prometheus (per province and ministry), Alertmanager and Grafana (dashboards, datasources) configuration to DIR")
    g.add_argument("--out", required=True, metavar="DIR", help="output directory (created; files replaced atomically)")
    timing(g)
    g.set_defaults(func=cmd_generate)
    u = verbs.add_parser("up", parents=[common], help="start the stack in the lab: Prometheus + Alertmanager on every "
                         "monitor host (systemd in the node), each province's collector and the ministry's; wait until ready")
    timing(u)
    u.add_argument("--collect-interval", type=float, metavar="S",
                   help="seconds between the collectors' rounds (default: the scrape interval)")
    lab_opt(u)
    u.set_defaults(func=cmd_up)
    d = verbs.add_parser("down", parents=[common], help="stop the stack and remove everything `monitor up` installed")
    lab_opt(d)
    d.set_defaults(func=cmd_down)
    s = verbs.add_parser("status", parents=[common],
                         help="each Prometheus, Alertmanager and collector: running, ready, targets up/down, alerts "
                              "(exit 1 if anything is down or an alert is firing)")
    lab_opt(s)
    s.set_defaults(func=cmd_status)
    healthmap.register_verb(verbs, common)
    silences.register_verb(verbs, common)


def _timing(args) -> gen.Timing:
    fed = args.federate_interval or (min(gen.FEDERATE_INTERVAL, args.scrape_interval * 2))
    return gen.Timing(scrape=args.scrape_interval, federate=fed, max_for=args.max_for,
                      evaluate=args.evaluation_interval).check()


def _stack(args):
    from jinbao_netops.lab.runtime import Lab

    from .stack import Stack

    inv = load(args.inventory)
    return Stack(inv, Lab.open(inv, args.lab))


def cmd_generate(args, out: Out) -> int:
    inv = load(args.inventory)
    provs = gen.provinces(inv)
    with out.progress("生成监控配置 / generating", len(provs)) as advance:
        written = gen.generate(inv, args.out, advance, _timing(args))
    if out.json_mode:
        out.json({"ok": True, "out": args.out, "provinces": provs, "files": [str(p) for p in written]})
        return OK
    rows = [[p, inv.first(p, Role.monitor).id, f"{inv.first(p, Role.monitor).management}:{gen.PROMETHEUS_PORT}",
             f"{args.out}/province/{p}/prometheus.yml"] for p in provs]
    m = inv.first(inv.ministry.id, Role.monitor)
    rows.append([inv.ministry.id, m.id, f"{m.management}:{gen.PROMETHEUS_PORT}", f"{args.out}/ministry/prometheus.yml"])
    out.table("监控配置 / monitoring configuration", ["站点 site", "监控主机 monitor", "Prometheus", "配置 config"], rows)
    out.print(f"Alertmanager: {args.out}/alertmanager/alertmanager.yml · {len(written)} files")
    boards = sum(p.suffix == ".json" for p in written)
    out.print(f"Grafana 仪表盘 dashboards: {args.out}/grafana/dashboards ({boards}) · "
              f"数据源 datasources: {args.out}/grafana/provisioning/datasources/netops.yml")
    return OK


def cmd_up(args, out: Out) -> int:
    stack = _stack(args)
    timing = _timing(args)
    with out.progress("启动监控 / monitor up", 2 * len(stack.servers) + 1) as advance:
        res = stack.up(timing, args.collect_interval or timing.scrape, advance)
    if out.json_mode:
        out.json({"ok": True, **res})
        return OK
    out.print(("[green]✓[/] " if res["changed"] else "= ") + escape.rich(res["message"]))
    for line in res["changed"]:
        out.print(f"  · {escape.rich(line)}")
    out.table("监控端点 / endpoints", ["站点 site", "监控主机 monitor", "Prometheus", "Alertmanager"],
              [[k, e["monitor"], e["prometheus"], e["alertmanager"]] for k, e in res["endpoints"].items()])
    return OK


def cmd_down(args, out: Out) -> int:
    stack = _stack(args)
    with out.progress("停止监控 / monitor down", 2 * len(stack.servers)) as advance:
        res = stack.down(advance)
    if out.json_mode:
        out.json({"ok": True, **res})
    else:
        out.print("[green]✓[/] " + escape.rich(res["message"]))
    return OK


def cmd_status(args, out: Out) -> int:
    st = _stack(args).status()
    if out.json_mode:
        out.json(st)
    elif not st["lab_up"]:
        out.print(f"lab {st['lab']!r} is down 实验网络未运行; the monitoring stack is not running")
    else:
        rows = []
        for s in st["servers"]:
            p, a = s["prometheus"], s["alertmanager"]
            rows.append([s["key"], s["node"], "Prometheus", p["url"], _state(p),
                         f"targets {p['targets_up']} up / {len(p['targets_down'])} down"
                         + (f" / {p['targets_unscraped']} not yet scraped 尚未采集" if p.get("targets_unscraped") else "")
                         if "targets_up" in p else p.get("error", ""),
                         " ".join(p.get("firing", [])) or ("-" if p["ready"] else "")])
            rows.append([s["key"], s["node"], "Alertmanager", a["url"], _state(a),
                         f"{len(a['active'])} active, {len(a['suppressed'])} inhibited 已抑制" if "active" in a else a.get("error", ""),
                         " ".join(a.get("active", [])) or ("-" if a["ready"] else "")])
        for c in st["processes"]:
            detail = (f"last round {c['last_round_age_s']} s ago, {c['round_s']} s, {c['failed_targets']} failed"
                      if "last_round_age_s" in c else c.get("error", ""))
            rows.append(["", "(ops host)" if c["name"] == "textfile" else "", c["name"], f"http://{c['listen']}/metrics",
                         f"✓ running pid {c['pid']}" if c["ok"] else "✗ " + ("not running" if not c["running"] else "error"),
                         detail, ""])
        out.table(f"监控栈 monitoring stack (lab {st['lab']})", ["site 站点", "node 节点", "component 组件", "address 地址",
                                                              "state 状态", "detail 详情", "alerts 告警"], rows)
        down = [t for s in st["servers"] for t in s["prometheus"].get("targets_down", [])]
        for t in down:
            out.print(f"  target down 目标不可达: {escape.rich(t)}")
        firing = sum(len(s["prometheus"].get("firing", [])) for s in st["servers"])
        out.print(("[green]✓[/] stack up 监控栈运行中" if st["up"] else "[red]✗[/] stack not (fully) up 监控栈未完全运行") +
                  f"; {len(down)} targets down 目标不可达, {firing} alerts firing 告警")
    return OK if st["ok"] else FINDINGS


def _state(c: dict) -> str:
    return "✓ ready" if c["ok"] else f"✗ {c['service']}{'' if c['ready'] else ', not ready'}"
