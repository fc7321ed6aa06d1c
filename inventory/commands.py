"""`netops inventory validate | show [SITE] | graph | generate | reconcile`."""
from __future__ import annotations

from collections import Counter

from rich.console import Console
from rich.tree import Tree

from jinbao_netops import escape
from jinbao_netops.errors import UsageError
from jinbao_netops.files import out_path, write_error

from jinbao_netops.output import Out

from .loader import load
from .model import LEVEL_ORDER, Level
from .store import Inventory


def register(nouns, common) -> None:
    p = nouns.add_parser("inventory", help="the source of truth: validate, show, graph, generate")
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    v = verbs.add_parser("validate", parents=[common], help="check the inventory; every problem on one line, exit 2 if any")
    v.set_defaults(func=cmd_validate)
    s = verbs.add_parser("show", parents=[common], help="summary of the network, or one site with its devices and links")
    s.add_argument("site", nargs="?", help="site id (pinyin), e.g. guangzhou")
    s.add_argument("--ansible", action="store_true", help="print the Ansible view (groups and host variables)")
    s.set_defaults(func=cmd_show)
    g = verbs.add_parser("graph", parents=[common], help="the ministry → province → city → county tree")
    g.add_argument("site", nargs="?", help="root the tree at this site")
    g.set_defaults(func=cmd_graph)
    n = verbs.add_parser("generate", parents=[common],
                         help="write a synthetic national-scale inventory (~10,000 devices) to a directory")
    n.add_argument("--out", required=True, metavar="DIR", help="directory to create (written atomically)")
    n.add_argument("--provinces", type=int, default=32, metavar="N", help="number of provinces, 1-32 (default 32)")
    n.add_argument("--cities", type=int, metavar="N", help="total cities (default: 340 × the provinces' real share)")
    n.add_argument("--counties", type=int, metavar="N", help="total counties (default: 2850 × the provinces' real share)")
    n.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same inventory (default 0)")
    n.add_argument("--force", action="store_true", help="replace DIR even if it is not empty")
    n.set_defaults(func=cmd_generate)
    help_ = ("compare the inventory with what the network devices report (interfaces, addresses, OSPF and LLDP "
             "neighbours; serials and software versions over SNMP where the inventory names them): one line per "
             "difference naming the file and object to edit, exit 1 if any 清单与现网核对")
    r = verbs.add_parser("reconcile", parents=[common], help=help_, description=help_)
    r.add_argument("--scope", metavar="SITE", help="a site (and everything below it) or a device (default: all)")
    r.set_defaults(func=cmd_reconcile)


def _counts(inv: Inventory) -> dict:
    return {
        "sites": dict(Counter(s.level.value for s in inv.sites.values())),
        "devices": dict(Counter(d.role.value for d in inv.devices.values())),
        "links": dict(Counter(link.state.value for link in inv.links.values())),
    }


def cmd_validate(args, out: Out) -> int:
    inv = load(args.inventory)  # raises InventoryError → exit 2 with every problem
    counts = _counts(inv)
    if out.json_mode:
        out.json({"ok": True, "inventory": str(inv.root), "problems": [], **counts})
    else:
        out.print(f"[green]✓[/] inventory {inv.root} is valid 有效: {len(inv.sites)} sites 站点, "
                  f"{len(inv.devices)} devices 设备, {len(inv.links)} links 链路")
    return 0


def _site(inv: Inventory, site_id: str):
    if site_id not in inv.sites:
        raise UsageError(f"{inv.root}: site {site_id!r}: no such site (try `netops inventory graph`)")
    return inv.sites[site_id]


def site_record(inv: Inventory, site_id: str) -> dict:
    s = inv.sites[site_id]
    devs = [inv.devices[d] for d in sorted(inv.devices_by_site.get(site_id, []))]
    link_ids = sorted({lk for d in devs for lk in inv.links_by_device.get(d.id, [])})
    return {
        "id": s.id, "name": s.name, "level": s.level.value, "parent": s.parent, "block": str(s.block),
        "lineage": inv.lineage(s.id), "homing": s.homing if s.level == Level.county else None,
        "children": sorted(inv.children.get(s.id, [])),
        "devices": [d.model_dump(mode="json") for d in devs],
        "links": [inv.links[lk].model_dump(mode="json") for lk in link_ids],
    }


def cmd_show(args, out: Out) -> int:
    inv = load(args.inventory)
    if args.ansible:
        from .ansible_view import build

        view = build(inv)
        if args.site:
            _site(inv, args.site)
            hosts = inv.devices_by_site.get(args.site, [])
            view = {"group": view[args.site], "hostvars": {h: view["_meta"]["hostvars"][h] for h in hosts}}
        out.json(view)  # the Ansible view is data; print it as JSON either way
        return 0
    if args.site:
        rec = site_record(inv, _site(inv, args.site).id)
        if out.json_mode:
            out.json(rec)
            return 0
        out.print(f"[bold]{escape.rich(rec['name'])}[/] ({rec['id']}, {rec['level']}, block {rec['block']})"
                  f"  上级 parent: {rec['parent'] or '-'}" + (f"  归属 homing: {rec['homing']}" if rec["homing"] else ""))
        out.table("设备 Devices", ["id", "名称 name", "role", "platform", "management", "services", "interfaces"],
                  [[d["id"], d["name"], d["role"], d["platform"], d["management"], ",".join(d["services"]),
                    " ".join(f"{n}={i['address'] or '-'}" for n, i in d["interfaces"].items())] for d in rec["devices"]])
        out.table("链路 Links", ["id", "a", "b", "kind", "Mbit/s", "carrier", "srlg", "state"],
                  [[lk["id"], f"{lk['a']['device']}:{lk['a']['interface']}", f"{lk['b']['device']}:{lk['b']['interface']}",
                    lk["kind"], lk["bandwidth_mbps"], lk["carrier"], lk["srlg"], lk["state"]] for lk in rec["links"]])
        return 0
    counts = _counts(inv)
    if out.json_mode:
        out.json({"network": inv.network.model_dump(mode="json"), **counts})
        return 0
    n = inv.network
    out.print(f"[bold]{escape.rich(n.name)}[/] ({n.id})  national {n.address_plan.national}, management {n.address_plan.management}")
    rows = []
    for level in sorted({s.level for s in inv.sites.values()}, key=lambda lv: LEVEL_ORDER[lv]):
        sites = [s for s in inv.sites.values() if s.level == level]
        devs = [d for d in inv.devices.values() if inv.sites[d.site].level == level]
        rows.append([level.value, len(sites), len(devs), ", ".join(sorted(Counter(d.role.value for d in devs)))])
    out.table("层级 Levels", ["level", "sites", "devices", "roles"], rows)
    out.print(f"links 链路: {counts['links']}")
    return 0


def cmd_graph(args, out: Out) -> int:
    inv = load(args.inventory)
    root = _site(inv, args.site).id if args.site else inv.ministry.id

    def node(sid: str) -> dict:
        s = inv.sites[sid]
        return {"id": sid, "name": s.name, "level": s.level.value,
                "devices": sorted(inv.devices_by_site.get(sid, [])),
                "children": [node(c) for c in sorted(inv.children.get(sid, []))]}

    data = node(root)
    if out.json_mode:
        out.json(data)
        return 0

    def add(tree: Tree, n: dict) -> None:
        s = inv.sites[n["id"]]
        extra = " [yellow]双归属 dual-homed[/]" if s.homing == "dual" else ""
        branch = tree.add(f"[bold]{escape.rich(n['name'])}[/] [dim]{n['id']} · {n['level']} · {len(n['devices'])} devices[/]{extra}")
        for c in n["children"]:
            add(branch, c)

    tree = Tree(f"[bold]{escape.rich(inv.network.name)}[/]")
    add(tree, data)
    console = out.console
    if not console.is_terminal:  # piped or captured: rich would crop every line at 80 columns
        console = Console(highlight=False, soft_wrap=True, width=10_000)
    console.print(tree)
    return 0


def cmd_generate(args, out: Out) -> int:
    from .generate import GenerateError, _generate, write

    out_path(args.out, "--out", directory=True)
    try:
        files, counts = _generate(args.provinces, args.cities, args.counties, args.seed)
    except GenerateError as e:
        raise UsageError(f"inventory generate: {e}") from None
    try:
        target = write(files, args.out, force=args.force)
    except FileExistsError as e:
        raise UsageError(str(e)) from None
    except OSError as e:
        raise write_error(args.out, e) from None
    if out.json_mode:
        out.json({"ok": True, "out": str(target), "seed": args.seed, "files": len(files), **counts})
    else:
        out.print(f"[green]✓[/] wrote {target}: {counts['provinces']} provinces 省, {counts['cities']} cities 市, "
                  f"{counts['counties']} counties 县 ({counts['dual_homed']} dual-homed), {counts['devices']} devices 设备, "
                  f"{counts['links']} links 链路 ({counts['planned_links']} planned), {len(files)} files, seed {args.seed}")
    return 0


_READ = {"read": "已读取 read", "unreachable": "不可达 unreachable", "unreadable": "无法解析 unreadable",
         "not_read": "未读取 not read"}


def cmd_reconcile(args, out: Out) -> int:
    from jinbao_netops.topology import reconcile as rc

    with out.progress("reconcile 清单核对", total=1) as step:
        res = rc.run(args.inventory, args.scope, environ=args.environ)
        step()
    if out.json_mode:
        out.json(res)
        return res["code"]
    out.table("reconcile 清单核对", ["device 设备", "name 名称", "platform", "interfaces 接口", "OSPF", "LLDP", "status 状态",
                                   "SNMP"],
              [[r["device"], r["name"], r["platform"], r.get("interfaces", ""), r.get("ospf_neighbors", ""),
                {True: "yes", False: "no"}.get(r.get("lldp"), ""), _READ[r["status"]],
                _READ[r["snmp"]["status"]] if "snmp" in r else ""] for r in res["devices"]])
    for r in res["devices"]:
        for error in (r.get("error"), r.get("snmp", {}).get("error")):
            if error:
                out.print(escape.rich(f"{r['device']}: {error}"), style="yellow")
    for i in res["info"]:
        out.print(escape.rich(rc.line(i)), style="dim")
    for d in res["differences"]:
        out.print(escape.rich(rc.line(d)), style="red")
    s = res["summary"]
    out.print(f"{s['differences']} differences 处差异, {s['info']} notes 条说明, {s['devices']} devices 台设备"
              + (f", {s['failed']} not read 台未能读取" if s["failed"] else ""))
    return res["code"]
