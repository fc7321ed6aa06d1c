"""`netops monitor generate`: the monitoring hierarchy's configuration from the inventory."""
from __future__ import annotations

from inventory import load
from netops.output import OK, Out

from . import generate as gen
from . import web


def register(nouns, common) -> None:
    p = nouns.add_parser("monitor", help="monitoring hierarchy: Prometheus per province, federation, Alertmanager")
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    g = verbs.add_parser("generate", parents=[common],
                         help="write Prometheus (per province and ministry) and Alertmanager configuration to DIR")
    g.add_argument("--out", required=True, metavar="DIR", help="output directory (created; files replaced atomically)")
    g.set_defaults(func=cmd_generate)
    web.register_verb(verbs, common)


def cmd_generate(args, out: Out) -> int:
    inv = load(args.inventory)
    provs = gen.provinces(inv)
    with out.progress("生成监控配置 / generating", len(provs)) as advance:
        written = gen.generate(inv, args.out, advance)
    if out.json_mode:
        out.json({"ok": True, "out": args.out, "provinces": provs, "files": [str(p) for p in written]})
        return OK
    rows = [[p, gen.monitor_host(inv, p).id, f"{gen.monitor_host(inv, p).management}:{gen.PROMETHEUS_PORT}",
             f"{args.out}/province/{p}/prometheus.yml"] for p in provs]
    m = gen.monitor_host(inv, inv.ministry.id)
    rows.append([inv.ministry.id, m.id, f"{m.management}:{gen.PROMETHEUS_PORT}", f"{args.out}/ministry/prometheus.yml"])
    out.table("监控配置 / monitoring configuration", ["站点 site", "监控主机 monitor", "Prometheus", "配置 config"], rows)
    out.print(f"Alertmanager: {args.out}/alertmanager/alertmanager.yml · {len(written)} files")
    return OK
