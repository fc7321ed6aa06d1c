"""Benchmark: `netops lab up` of the embedded default inventory (issue 2), as root.

Prints one JSON line. Goal: `lab up` of the default (40 nodes) within ``goal_s`` (60 s); ``ok`` says
whether it was met and the exit status is 1 when not (a failed `lab up` or `lab down` — one that leaves
anything behind — stops the bench with exit status 1). The anchor, measured in the same run, is
`lab up` of a two-node inventory (tests/fixtures/lab-mini): the fixed cost of any lab. Per-node
seconds of the default against the anchor's show how well staggered boots overlap. The base image must
already be cached (`netops lab image`); its build is not part of the figure. Refuses to run while a
lab is up.

    .venv/bin/python bench/bench_lab.py
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from benchlib import finish

REPO = Path(__file__).resolve().parent.parent
MINI = REPO / "tests/fixtures/lab-mini"
GOAL_S = 60


def netops(*args: str, ok: tuple[int, ...] = (0,)) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "NETOPS_INVENTORY"}
    p = subprocess.run([sys.executable, "-m", "jinbao_netops.cli", *args, "--json"], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=1800)
    if p.returncode not in ok:
        sys.exit(f"bench_lab: netops {' '.join(args)} failed: {p.stderr.strip() or p.stdout.strip()}")
    return json.loads(p.stdout)


def mem_available_mib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    return 0.0


def timed_up_down(*inv: str) -> dict:
    before = mem_available_mib()
    t0 = time.monotonic()
    up = netops("lab", "up", *inv)
    t_up = time.monotonic() - t0
    time.sleep(5)  # let services settle before reading memory
    used = before - mem_available_mib()
    from jinbao_netops.lab.runtime import _inotify_in_use_by_root

    inotify = _inotify_in_use_by_root()
    t0 = time.monotonic()
    netops("lab", "down", *inv)
    return {"nodes": up["nodes"], "up_s": round(t_up, 2), "down_s": round(time.monotonic() - t0, 2),
            "memory_mib": round(used), "inotify_instances": inotify}


def main() -> int:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()  # --help, before anything runs
    if os.geteuid() != 0:
        sys.exit("bench_lab: needs root")
    # status exits 1 (a finding) when the lab is down, which is what we want here
    if netops("lab", "status", ok=(0, 1))["up"] or netops("lab", "status", "-i", str(MINI), ok=(0, 1))["up"]:
        sys.exit("bench_lab: a lab is up; take it down first (netops lab down)")
    image = netops("lab", "image")
    anchor = timed_up_down("-i", str(MINI))
    full = timed_up_down()
    per_node = full["up_s"] / full["nodes"]
    anchor_per_node = anchor["up_s"] / anchor["nodes"]
    return finish({
        "bench": "lab_up", "image_cached": not image["built"],
        "default": full, "anchor_mini_lab": anchor,
        "per_node_s": round(per_node, 2), "anchor_per_node_s": round(anchor_per_node, 2),
        "per_node_vs_anchor": round(per_node / anchor_per_node, 2),
        "memory_per_node_mib": round(full["memory_mib"] / full["nodes"], 1),
        "goal_s": GOAL_S, "ok": full["up_s"] <= GOAL_S,
        "cpus": os.cpu_count(),
    })


if __name__ == "__main__":
    sys.exit(main())
