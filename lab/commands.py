"""`netops lab up | down | status | exec NODE -- CMD | reach | env | seed | image`."""
from __future__ import annotations

import argparse
import subprocess

from jinbao_netops.errors import FINDINGS, UsageError
from jinbao_netops import escape
from jinbao_netops.inventory import load
from jinbao_netops.output import Out

from .runtime import Lab


def register(nouns, common) -> None:
    p = nouns.add_parser("lab", help="the lab twin: a live emulation of the inventory on this machine (root)")
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    lab_opt = {"metavar": "NAME", "help": "lab name (default: the inventory's network id)"}

    def verb(name, func, help):
        v = verbs.add_parser(name, parents=[common], help=help, description=help)
        v.add_argument("--lab", **lab_opt)
        v.set_defaults(func=func)
        return v

    up = verb("up", cmd_up, "build the base image if needed, boot every node, wire every link, wait for OSPF")
    up.add_argument("--keep-on-failure", action="store_true", help="leave a failed lab in place for debugging")
    verb("down", cmd_down, "stop every node and remove every namespace, mount, veth, overlay and file of the lab")
    verb("status", cmd_status, "each node's state, addresses and services")
    ex = verb("exec", cmd_exec, "run a command inside a node (as root): netops lab exec NODE -- CMD ...")
    ex.add_argument("node")
    ex.add_argument("cmd", nargs=argparse.REMAINDER, metavar="CMD")  # keeps a '--' inside CMD (runuser -u x -- cmd)
    verb("reach", cmd_reach, "ping the ministry's server from every county across the routed WAN")
    verb("env", cmd_env, "print shell exports that point the inventory's credential references at this lab")
    verb("seed", cmd_seed, "create the demo 社保 database (shebao) on every database server, for backups and drills")
    verbs.add_parser("image", parents=[common], help="build (or confirm) the cached base image").set_defaults(func=cmd_image)


def _lab(args, inv=None) -> Lab:
    return Lab(args.lab) if args.lab else Lab.open(inv or load(args.inventory))


def cmd_up(args, out: Out) -> int:
    inv = load(args.inventory)
    lab = _lab(args, inv)
    with out.progress("lab up 启动实验网络", total=2 * len(inv.devices)) as step:
        res = lab.up(inv, note=out.note, progress=step, keep_on_failure=args.keep_on_failure)
    if out.json_mode:
        out.json({"ok": True, **res})
    else:
        out.print(("[green]✓[/] " if res["changed"] else "= ") + escape.rich(res["message"]) +
                  (f" in {res['seconds']} s" if res.get("seconds") else ""))
    return 0


def cmd_down(args, out: Out) -> int:
    res = _lab(args).down()
    if out.json_mode:
        out.json({"ok": True, **res})
    else:
        out.print("[green]✓[/] " + escape.rich(res["message"]) + f" (removed {escape.rich(res['removed'])})")
    return 0


def cmd_status(args, out: Out) -> int:
    st = _lab(args).status()
    if out.json_mode:
        out.json(st)
    elif not st["up"]:
        out.print(f"lab {st['lab']!r} is down 未运行")
    else:
        rows = []
        for n in st["nodes"]:
            addrs = " ".join(f"{i}={','.join(a)}" for i, a in sorted(n["addresses"].items()) if a and i != "mgmt0")
            svcs = " ".join(f"{s}{'✓' if v == 'active' else '✗'}" for s, v in n["services"].items())
            rows.append([n["node"], n["state"], n["system"] or "-", n["management"], addrs, svcs])
        out.table(f"lab {st['lab']} 实验网络状态", ["node 节点", "state", "systemd", "management 管理地址",
                                                  "addresses 地址", "services 服务"], rows)
    bad = [n for n in st["nodes"] if n["state"] != "running" or any(v != "active" for v in n["services"].values())]
    return FINDINGS if not st["up"] or bad else 0


def cmd_exec(args, out: Out) -> int:
    if not args.cmd:
        raise UsageError("lab exec: give a command: netops lab exec NODE -- CMD ...")
    node = _lab(args).node(args.node)
    if out.json_mode:
        r = node.exec(args.cmd, timeout=600)
        out.json({"node": args.node, "cmd": args.cmd, "rc": r.returncode, "stdout": r.stdout, "stderr": r.stderr})
        return r.returncode
    return subprocess.call(node.command(args.cmd))  # inherits the terminal


def cmd_reach(args, out: Out) -> int:
    inv = load(args.inventory)
    rows = _lab(args, inv).reach(inv)
    failed = [r for r in rows if not r["ok"]]
    if out.json_mode:
        out.json({"ok": not failed, "rows": rows})
    else:
        out.table("区县 → 部中心 可达性 County → ministry reachability",
                  ["county 区县", "to 目标", "path 路径", "result 结果", "rtt ms"],
                  [[f"{r['name']} ({r['county']})", f"{r['to']} {r['address']}", " → ".join(r["path"]),
                    "✓ 可达 reachable" if r["ok"] else "✗ 不可达 unreachable", r["rtt_ms"]] for r in rows])
        out.print(f"{len(rows) - len(failed)}/{len(rows)} counties reach the ministry")
    return FINDINGS if failed else 0


def cmd_env(args, out: Out) -> int:
    lab = _lab(args)
    lab.require_up()
    env = lab.env()
    if out.json_mode:
        out.json(env)
    else:
        for k, v in env.items():
            print(f"export {k}={escape.shell(v)}")
    return 0


def cmd_seed(args, out: Out) -> int:
    from .seed import seed

    inv = load(args.inventory)
    lab = _lab(args, inv)
    lab.require_up()
    n = sum(len(d.services) for d in inv.devices.values())
    with out.progress("seed 演示数据", total=n) as step:
        recs = seed(inv, lab, note=lambda m: step(1, m))
    failed = [r for r in recs if not r["ok"]]
    if out.json_mode:
        out.json({"ok": not failed, "databases": recs})
    else:
        out.table("演示业务数据 Demo business data", ["device 设备", "service 服务", "database 库", "rows 行数", "result 结果"],
                  [[r["device"], r["service"], r["database"], r["rows"], "✓" if r["ok"] else f"✗ {r['error']}"]
                   for r in recs])
    return FINDINGS if failed else 0


def cmd_image(args, out: Out) -> int:
    from .base import ensure_image

    path, built = ensure_image(out.note)
    if out.json_mode:
        out.json({"image": str(path), "built": built})
    else:
        out.print(f"{'built' if built else 'cached'} base image: {escape.rich(path)}")
    return 0
