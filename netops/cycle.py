"""`netops cycle`: the full operations cycle on one inventory, step by step — the README's main
job. Each capability adds its steps in ``steps()``.

Steps change things (provisioning edits the inventory and writes change records), so without
``-i`` the cycle works on a writable copy of the embedded default under ``--out`` (made on the
first run, reused after), never on the files inside the suite.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import time
from contextlib import redirect_stdout
from pathlib import Path

from .output import Out


def register(nouns, common) -> None:
    p = nouns.add_parser("cycle", parents=[common], help="run the full operations cycle on the inventory",
                         description="Validate the inventory, bring the lab twin up, check reachability, analyse "
                                     "and draw the topology, provision planned county links, collect health, audit "
                                     "and harden to 等保 三级, generate monitoring and bring the stack and the health "
                                     "map up, back up a province and run a county database drill. Exit status: the worst step's; an audit's findings "
                                     "are its report, not a failed cycle.")
    p.add_argument("--out", default="out", metavar="DIR",
                   help="where reports, diagrams and (without -i) the working inventory go (default: ./out)")
    p.set_defaults(func=cmd_cycle)


# how a step's failure counts: STOP ends the cycle; FAIL counts in the exit status; REPORT steps
# produce a report whose findings (exit 1) are its content, shown with the report's path
STOP, FAIL, REPORT = "stop", "fail", "report"


def steps(inv, out_dir: Path) -> list[tuple[str, list[str], str]]:
    """(title, argv, kind). argv is a netops command line, or a shell command when it starts with '!'."""
    planned = sorted({inv.devices[e.device].site for link in inv.links.values() if link.state.value == "planned"
                      for e in link.ends() if inv.sites[inv.devices[e.device].site].level.value == "county"})
    first_province = next(s.id for s in inv.sites_in_order() if s.level.value == "province")
    return [
        ("校验清单 Validate the inventory", ["inventory", "validate"], STOP),
        ("启动实验网络 Bring the lab twin up", ["lab", "up"], STOP),
        ("节点状态 Lab status", ["lab", "status"], FAIL),
        ("可达性 County → ministry reachability", ["lab", "reach"], FAIL),
        ("单点故障 Single points of failure", ["topology", "spof"], FAIL),
        ("拓扑检查 Topology check", ["topology", "check"], FAIL),
        ("拓扑图 Topology diagram", ["topology", "draw", "--format", "html", "--out", str(out_dir / "topology.html")], FAIL),
        *[(f"开通链路 Provision the planned link of {county}", ["link", "provision", county], FAIL) for county in planned],
        ("可达性（开通后） Reachability after provisioning", ["lab", "reach"], FAIL),
        ("采集准备 Database monitoring role", ["collect", "prepare-lab"], FAIL),
        ("健康采集 One collection round", ["collect", "once"], FAIL),
        ("等保审计（加固前） Audit before hardening", ["audit", "--save", str(out_dir / "audit-before.json")], REPORT),
        ("部署与加固 Deploy and harden servers", ["!ansible-playbook", "playbooks/deploy.yml", "playbooks/harden.yml"], FAIL),
        ("等保审计 Audit after hardening", ["audit", "--diff", str(out_dir / "audit-before.json"),
                                          "--save", str(out_dir / "audit.json"), "--html", str(out_dir / "audit.html")], REPORT),
        ("监控配置 Monitoring configuration", ["monitor", "generate", "--out", str(out_dir / "monitoring")], FAIL),
        # the lab's timing: faults show within seconds (production defaults: 30 s scrapes, the rules' own for:)
        ("启动监控 Monitoring stack up", ["monitor", "up", "--scrape-interval", "5", "--evaluation-interval", "1",
                                        "--max-for", "10"], FAIL),
        ("监控状态 Monitoring status", ["monitor", "status"], REPORT),
        ("健康地图检查 Health map check", ["monitor", "web", "--check", "--listen", "127.0.0.1:0"], REPORT),
        ("健康地图 Health map", ["monitor", "web", "--detach", "--listen", "127.0.0.1:8470"], FAIL),
        ("演示数据 Demo business databases", ["lab", "seed"], FAIL),
        (f"省级备份 Back up {first_province}", ["backup", "run", "--scope", first_province], FAIL),
        ("备份校验 Verify backups", ["backup", "verify", "--scope", first_province], FAIL),
        ("备份目录 Backup catalogue (3-2-1)", ["backup", "status"], REPORT),
        ("灾备演练 County database drill", ["drill", "run", "county-db-lost"], FAIL),
    ]


def working_inventory(args, out_dir: Path, out: Out) -> Path:
    if args.inventory:
        return Path(args.inventory)
    from jinbao_netops.inventory import DEFAULT_INVENTORY

    work = out_dir / "inventory"
    if not work.exists():
        tmp = out_dir / ".inventory.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(DEFAULT_INVENTORY, tmp)
        os.replace(tmp, work)
        out.print(f"working inventory 工作清单: {work} (a copy of the embedded default)")
    return work


def cmd_cycle(args, out: Out) -> int:
    from jinbao_netops.inventory import load
    from jinbao_netops.lab.runtime import Lab

    from .cli import main

    out_dir = Path(args.out).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    inv_path = working_inventory(args, out_dir, out)
    inv = load(inv_path)
    common = ["-i", str(inv_path)] + (["--json"] if out.json_mode else [])
    results, worst = [], 0
    for title, argv, kind in steps(inv, out_dir):
        shown = " ".join(argv)[1:] if argv[0].startswith("!") else "netops " + " ".join(argv)
        out.print(f"\n[bold cyan]══ {title}[/]  [dim]{shown}[/]")
        started = time.monotonic()
        data = None
        if argv[0].startswith("!"):  # a shell command (the playbooks), from the suite's directory
            tool = Path(sys.executable).with_name(argv[0][1:])
            p = subprocess.run([str(tool), *argv[1:], "-i", str(Path(__file__).resolve().parents[1] / "inventory/jinbao.yml")],
                               cwd=Path(__file__).resolve().parents[1], env={**os.environ, "NETOPS_INVENTORY": str(inv_path)},
                               capture_output=out.json_mode, text=True)
            rc = 0 if p.returncode == 0 else 1
            data = (p.stdout or "")[-4000:] if out.json_mode else None
        elif out.json_mode:
            buf = io.StringIO()
            with redirect_stdout(buf):
                rc = main(argv + common)
            try:
                data = json.loads(buf.getvalue() or "null")
            except ValueError:
                data = buf.getvalue()
        else:
            rc = main(argv + common)
        results.append({"step": shown, "title": title, "rc": rc, "kind": kind,
                        "seconds": round(time.monotonic() - started, 1), "result": data})
        if not (kind == REPORT and rc == 1):
            worst = max(worst, rc)
        if rc and kind == STOP:
            break
        if argv[:2] == ["lab", "up"]:
            # the steps after this one reach the lab with its per-lab credentials
            for k, v in Lab(inv.network.id).env().items():
                os.environ.setdefault(k, v)
    if out.json_mode:
        out.json({"ok": worst == 0, "rc": worst, "inventory": str(inv_path), "out": str(out_dir), "steps": results})
    else:
        out.print("\n[bold]" + ("✓ cycle complete 运维周期完成" if worst == 0 else f"✗ cycle finished with status {worst}") + "[/]")
        for r in results:
            mark = "✓" if r["rc"] == 0 else ("⚠ findings 有发现" if r["kind"] == REPORT and r["rc"] == 1 else "✗")
            out.print(f"  {mark} {r['title']}  ({r['seconds']} s)")
        out.print(f"\ninventory 清单: {inv_path}\nreports 报告: {out_dir}")
    return worst
