"""`netops cycle`: the full operations cycle on one inventory, step by step — the README's main
job. Each capability adds its steps in ``steps()``.

Each step is a verb of this CLI, called directly (the same function `netops <noun> <verb>` runs,
with arguments parsed by the same parser): its result is collected, never scraped from stdout, and
the lab's credentials reach it as an explicit environment, never by editing os.environ. A failed
step is reported in the summary and the cycle goes on, except for the steps that need it.

Steps change things (provisioning edits the inventory and writes change records), so without
``-i`` the cycle works on a writable copy of the embedded default under ``--out`` (made on the
first run, reused after), never on the files inside the suite.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from . import escape
from .errors import FAILED, FINDINGS, OK, NetopsError
from .files import out_path
from .output import Out

SUITE = Path(__file__).resolve().parents[1]  # the repository: playbooks/ and the Ansible inventory plugin


def register(nouns, common) -> None:
    p = nouns.add_parser("cycle", parents=[common], help="run the full operations cycle on the inventory",
                         description="Validate the inventory, bring the lab twin up, check reachability, analyse "
                                     "and draw the topology, provision planned county links, collect health, audit "
                                     "and harden servers and network devices to 等保 三级, push the boundary firewalls' rules "
                                     "and probe the security zones, generate monitoring and "
                                     "bring the stack and the health map up, back up a province, run a county database drill and the province-DC-lost failover drill. Exit status: the "
                                     "worst step's; an audit's findings are its report, not a failed cycle.")
    p.add_argument("--out", default="out", metavar="DIR",
                   help="where reports, diagrams and (without -i) the working inventory go (default: ./out)")
    p.set_defaults(func=cmd_cycle)


# how a step's failure counts: STOP ends the cycle; FAIL counts in the exit status; REPORT steps
# produce a report whose findings (exit 1) are its content, shown with the report's path
STOP, FAIL, REPORT = "stop", "fail", "report"


@dataclass(frozen=True)
class Step:
    key: str
    title: str
    argv: list[str]              # a netops command line, or a tool of the suite's venv when it starts with '!'
    kind: str = FAIL
    needs: tuple[str, ...] = ()  # steps whose failure makes this one pointless: it is skipped
    on: str | None = None        # a lab node where the suite is installed: the verb runs there, with its defaults

    @property
    def shown(self) -> str:
        if self.argv[0].startswith("!"):
            return " ".join(self.argv)[1:]
        return "netops " + " ".join(self.argv) + (f"  (@ {self.on})" if self.on else "")


def steps(inv, out_dir: Path) -> list[Step]:
    from jinbao_netops.inventory.model import Level, LinkState, Role

    planned = sorted({inv.devices[e.device].site for link in inv.links.values() if link.state == LinkState.planned
                      for e in link.ends() if inv.site_of(e.device).level == Level.county})
    first_province = next(s.id for s in inv.sites_in_order() if s.level == Level.province)
    first_monitor = inv.first(first_province, Role.monitor).id
    # the lab's monitor nodes see this installation of the suite (lab.runtime.suite_paths): the service runs it
    serve_vars = json.dumps({"netops_serve_python": sys.executable, "netops_serve_inventory": str(inv.root)})
    return [
        Step("validate", "校验清单 Validate the inventory", ["inventory", "validate"], STOP),
        Step("lab", "启动实验网络 Bring the lab twin up", ["lab", "up"], STOP),
        Step("status", "节点状态 Lab status", ["lab", "status"]),
        Step("reach", "可达性 County → ministry reachability", ["lab", "reach"]),
        Step("spof", "单点故障 Single points of failure", ["topology", "spof"]),
        Step("check", "拓扑检查 Topology check", ["topology", "check"]),
        Step("draw", "拓扑图 Topology diagram", ["topology", "draw", "--format", "html", "--out", str(out_dir / "topology.html")]),
        *[Step(f"provision-{county}", f"开通链路 Provision the planned link of {county}", ["link", "provision", county])
          for county in planned],
        Step("reach-after", "可达性（开通后） Reachability after provisioning", ["lab", "reach"]),
        Step("prepare", "采集准备 Database monitoring role", ["collect", "prepare-lab"]),
        Step("collect", "健康采集 One collection round", ["collect", "once"]),
        Step("audit-before", "等保审计（加固前） Audit before hardening",
             ["audit", "--save", str(out_dir / "audit-before.json")], REPORT),
        Step("harden", "部署与加固 Deploy and harden servers, the log store up",
             ["!ansible-playbook", "-i", str(SUITE / "inventory/jinbao.yml"), "playbooks/site.yml"]),
        Step("harden-devices", "网络设备加固 Harden network devices", ["harden", "devices"]),
        Step("zones-apply", "边界规则下发 Boundary devices' rules from the zone policy (verified, else rolled back)",
             ["zones", "apply"]),
        Step("zones", "安全区域检查 Security zones: every path between zones through a boundary device, the flows probed",
             ["zones", "check", "--probe"], REPORT),
        Step("logs", "日志存储 Log store status", ["logs", "status"], REPORT, ("harden",)),
        Step("audit", "等保审计 Audit after hardening",
             ["audit", "--diff", str(out_dir / "audit-before.json"), "--save", str(out_dir / "audit.json"),
              "--html", str(out_dir / "audit.html"), "--xlsx", str(out_dir / "audit.xlsx")], REPORT),
        Step("monitor-generate", "监控配置 Monitoring configuration", ["monitor", "generate", "--out", str(out_dir / "monitoring")]),
        # the lab's timing: faults show within seconds (production defaults: 30 s scrapes, the rules' own for:)
        Step("monitor-up", "启动监控 Monitoring stack up",
             ["monitor", "up", "--scrape-interval", "5", "--evaluation-interval", "1", "--max-for", "10"]),
        Step("monitor-status", "监控状态 Monitoring status", ["monitor", "status"], REPORT, ("monitor-up",)),
        Step("serve", "运维服务 Operations service on each province's monitor host",
             ["!ansible-playbook", "-i", str(SUITE / "inventory/jinbao.yml"), "playbooks/serve.yml", "-e", serve_vars]),
        Step("serve-status", f"运维服务状态 Operations service status ({first_monitor})", ["serve", "status"], REPORT, ("serve",),
             on=first_monitor),
        Step("map-check", "健康地图检查 Health map check", ["monitor", "web", "--check", "--listen", "127.0.0.1:0"], REPORT,
             ("monitor-up",)),
        Step("map", "健康地图 Health map", ["monitor", "web", "--detach", "--listen", "127.0.0.1:8470"]),
        Step("dr-setup", "灾备复制 Replication to the DR sites", ["dr", "setup"]),
        Step("seed", "演示数据 Demo business databases", ["lab", "seed"]),
        Step("dr-status", "复制状态 DR replication status", ["dr", "status"], REPORT, ("dr-setup",)),
        Step("backup", f"省级备份 Back up {first_province}", ["backup", "run", "--scope", first_province], FAIL, ("seed",)),
        Step("verify", "备份校验 Verify backups", ["backup", "verify", "--scope", first_province], FAIL, ("backup",)),
        Step("catalogue", "备份目录 Backup catalogue (3-2-1)", ["backup", "status"], REPORT, ("backup",)),
        Step("drill", "灾备演练 County database drill", ["drill", "run", "county-db-lost"], FAIL, ("backup",)),
        Step("failover", "省中心失效演练 Province data centre lost: failover to the DR site", ["drill", "run", "province-dc-lost"],
             FAIL, ("dr-setup",)),
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
        out.print(f"working inventory 工作清单: {escape.rich(work)} (a copy of the embedded default)")
    return work


class Run:
    """One cycle: the parser every step's arguments go through, the inventory, the credentials."""

    def __init__(self, inv_path: Path, out: Out):
        from .cli import build_parser

        self.parser, self.inv_path, self.out = build_parser(), inv_path, out
        self.environ: dict[str, str] = dict(os.environ)

    def step(self, step: Step) -> tuple[int, object, str | None]:
        """(exit status, the verb's JSON result under --json, the error message if it failed)."""
        if step.argv[0].startswith("!"):
            return self._tool(step)
        json_mode = ["--json"] if self.out.json_mode else []
        if step.on:
            return self._on_node(step, json_mode)
        return self._verb(["-i", str(self.inv_path), *json_mode, *step.argv])

    def _verb(self, argv: list[str]) -> tuple[int, object, str | None]:
        # the global options before the noun: a verb's trailing words (lab exec's command) stay its own
        args = self.parser.parse_args(argv)
        args.environ = self.environ
        sub = Out(json_mode=self.out.json_mode, capture=self.out.json_mode)
        try:
            rc = int(args.func(args, sub) or 0)
        except NetopsError as e:
            if not self.out.json_mode:
                for line in e.lines():
                    self.out.err.print(f"[red]✗[/] {escape.rich(line)}")
            return e.code, sub.captured, e.message
        return rc, sub.captured, None

    def _on_node(self, step: Step, json_mode: list[str]) -> tuple[int, object, str | None]:
        """The verb run on a lab node by the suite installed there (`lab exec`); under --json its own JSON
        document (what it printed, the error contract's envelope included) is the step's result."""
        rc, data, error = self._verb(["-i", str(self.inv_path), *json_mode, "lab", "exec", step.on, "--",
                                      sys.executable, "-m", "jinbao_netops.cli", *json_mode, *step.argv])
        if error or not json_mode:
            return rc, data, error
        try:
            doc = json.loads(data["stdout"])
        except ValueError:
            tail = (data["stderr"] or data["stdout"]).strip().splitlines()[-1:] or [""]
            return rc or FAILED, data, f"{step.on}: no JSON document from `{step.shown}` (exit {rc}): {tail[0][:300]}"
        return rc, doc, doc.get("error") if isinstance(doc, dict) else None  # the envelope of a failure names it

    def _tool(self, step: Step) -> tuple[int, object, str | None]:
        """A tool of the suite's own virtualenv (Ansible), run from the repository with the cycle's inventory."""
        tool = Path(sys.executable).with_name(step.argv[0][1:])
        p = subprocess.run([str(tool), *step.argv[1:]], cwd=SUITE, env={**self.environ, "NETOPS_INVENTORY": str(self.inv_path)},
                           capture_output=self.out.json_mode, text=True)
        if p.returncode == 0:
            return OK, (p.stdout or "")[-4000:] if self.out.json_mode else None, None
        return FINDINGS, (p.stdout or "")[-4000:] if self.out.json_mode else None, f"{tool.name} exited {p.returncode}"

    def lab_ready(self, inv) -> None:
        """After `lab up`, the later steps reach the lab with its per-lab credentials."""
        from jinbao_netops.lab.runtime import Lab

        self.environ = {**self.environ, **Lab.open(inv).env()}


def cmd_cycle(args, out: Out) -> int:
    from jinbao_netops.inventory import load

    out_dir = out_path(args.out, "--out", directory=True).resolve()
    out_dir.mkdir(exist_ok=True)
    inv_path = working_inventory(args, out_dir, out)
    inv = load(inv_path)
    run = Run(inv_path, out)
    results: list[dict] = []
    failed: set[str] = set()
    worst = OK
    for step in steps(inv, out_dir):
        out.print(f"\n[bold cyan]══ {escape.rich(step.title)}[/]  [dim]{escape.rich(step.shown)}[/]")
        rec = {"step": step.shown, "key": step.key, "title": step.title, "kind": step.kind}
        blocked = [k for k in step.needs if k in failed]
        if blocked:
            rec.update(rc=None, skipped=True, seconds=0.0, result=None, error=f"skipped: {', '.join(blocked)} failed")
            out.print(f"[yellow]– skipped 跳过[/]: {escape.rich(rec['error'])}")
            results.append(rec)
            continue
        started = time.monotonic()
        rc, data, error = run.step(step)
        rec.update(rc=rc, skipped=False, seconds=round(time.monotonic() - started, 1), result=data, error=error)
        results.append(rec)
        if rc and not (step.kind == REPORT and rc == FINDINGS):
            failed.add(step.key)
            worst = max(worst, rc)
        if rc and step.kind == STOP:
            break
        if step.key == "lab":
            run.lab_ready(inv)
    if out.json_mode:
        out.json({"ok": worst == OK, "rc": worst, "inventory": str(inv_path), "out": str(out_dir), "steps": results})
    else:
        out.print("\n[bold]" + ("✓ cycle complete 运维周期完成" if worst == OK else f"✗ cycle finished with status {worst}") + "[/]")
        for r in results:
            mark = ("– skipped 跳过" if r["skipped"] else "✓" if r["rc"] == 0 else
                    "⚠ findings 有发现" if r["kind"] == REPORT and r["rc"] == FINDINGS else "✗")
            out.print(f"  {mark} {escape.rich(r['title'])}  ({r['seconds']} s)")
        out.print(f"\ninventory 清单: {escape.rich(inv_path)}\nreports 报告: {escape.rich(out_dir)}")
    return worst
