"""`netops cycle`: the full operations cycle on one inventory, step by step. The README's main
job; each capability adds its steps here."""
from __future__ import annotations

import io
import json
import time
from contextlib import redirect_stdout

from .output import Out

# (title, argv, stop the cycle if this step fails)
STEPS = [
    ("校验清单 Validate the inventory", ["inventory", "validate"], True),
    ("启动实验网络 Bring the lab twin up", ["lab", "up"], True),
    ("节点状态 Lab status", ["lab", "status"], False),
    ("可达性 County → ministry reachability", ["lab", "reach"], False),
]


def register(nouns, common) -> None:
    p = nouns.add_parser("cycle", parents=[common], help="run the full operations cycle on the inventory",
                         description="Validate the inventory, bring the lab twin up, show its status and "
                                     "check every county reaches the ministry. Exit status: the worst step's.")
    p.set_defaults(func=cmd_cycle)


def cmd_cycle(args, out: Out) -> int:
    from .cli import main

    common = (["-i", args.inventory] if args.inventory else []) + (["--json"] if out.json_mode else [])
    results, worst = [], 0
    for title, argv, critical in STEPS:
        out.print(f"\n[bold cyan]══ {title}[/]  [dim]netops {' '.join(argv)}[/]")
        started = time.monotonic()
        if out.json_mode:
            buf = io.StringIO()
            with redirect_stdout(buf):
                rc = main(argv + common)
            try:
                data = json.loads(buf.getvalue() or "null")
            except ValueError:
                data = buf.getvalue()
        else:
            rc, data = main(argv + common), None
        results.append({"step": " ".join(argv), "title": title, "rc": rc,
                        "seconds": round(time.monotonic() - started, 1), "result": data})
        worst = max(worst, rc)
        if rc and critical:
            break
    if out.json_mode:
        out.json({"ok": worst == 0, "rc": worst, "steps": results})
    else:
        out.print("\n[bold]" + ("✓ cycle complete 运维周期完成" if worst == 0 else f"✗ cycle finished with status {worst}") + "[/]")
        for r in results:
            out.print(f"  {'✓' if r['rc'] == 0 else '✗'} {r['title']}  ({r['seconds']} s)")
    return worst
