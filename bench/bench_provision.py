"""Benchmark: `netops link provision longgang` end to end in the running lab (issue 3), as root.

Prints one JSON line. Works on a temporary copy of the default inventory (the lab's), provisions
the planned link longgang-up2 (allocate, render, back up, diff, push, verify, save, record), then
decommissions it, so the lab is left as found. The anchor, measured in the same run, is
`provision --check` (the same CLI start, inventory load, SSH sessions and running-config reads, no
push or verification, nothing written): the difference is the cost of pushing and of waiting for OSPF and the checks.
Goal: provision ≤ 60 s (``goal_s``); ``ok`` also needs the provision applied, the rerun a no-op and the
decommission applied, and the exit status is 1 when not. Needs the lab up (`netops lab status`); take the lab test session lock
so no lab test session runs meanwhile.

    .venv/bin/python bench/bench_provision.py
"""
from __future__ import annotations

import argparse
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import finish

REPO = Path(__file__).resolve().parent.parent
GOAL_S = 60


def netops(*args: str, env: dict | None = None, ok: tuple[int, ...] = (0,)) -> tuple[float, dict]:
    base = {k: v for k, v in os.environ.items() if k != "NETOPS_INVENTORY"}
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "jinbao_netops.cli", *args, "--json"], cwd=REPO, env={**base, **(env or {})},
                       capture_output=True, text=True, timeout=600)
    took = time.monotonic() - t0
    if p.returncode not in ok:
        sys.exit(f"bench_provision: netops {' '.join(args)} exited {p.returncode}: {p.stderr.strip() or p.stdout[-400:]}")
    return took, json.loads(p.stdout)


def main() -> int:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()  # --help, before anything runs
    if os.geteuid() != 0:
        sys.exit("bench_provision: needs root")
    from jinbao_netops.lab.runtime import state_root

    lock = open(state_root() / ".test-session.lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)  # no lab test session recreates the lab meanwhile
    _, st = netops("lab", "status", ok=(0, 1))  # 1: the lab is down (a finding)
    if not st.get("up"):
        sys.exit("bench_provision: the lab is not up (pytest tests/lab/test_lab.py -k second_up)")
    _, env = netops("lab", "env")
    with tempfile.TemporaryDirectory(prefix="bench-prov-") as tmp:
        inv = Path(tmp) / "inv"
        from jinbao_netops.inventory import DEFAULT_INVENTORY

        shutil.copytree(DEFAULT_INVENTORY, inv)
        anchor, _ = netops("link", "provision", "longgang", "--check", "-i", str(inv), env=env)
        t_prov, res = netops("link", "provision", "longgang", "-i", str(inv), env=env)
        t_again, again = netops("link", "provision", "longgang", "-i", str(inv), env=env)
        t_dec, dec = netops("link", "decommission", "longgang-up2", "-i", str(inv), env=env)
    results = {"provision": res["result"], "rerun": again["result"], "decommission": dec["result"]}
    correct = results == {"provision": "applied", "rerun": "no_change", "decommission": "applied"}
    return finish({
        "bench": "link_provision", "link": "longgang-up2", "goal_s": GOAL_S,
        "provision_s": round(t_prov, 2), "rerun_no_op_s": round(t_again, 2), "decommission_s": round(t_dec, 2),
        "anchor_check_s": round(anchor, 2), "provision_vs_anchor": round(t_prov / anchor, 1),
        "checks": len(res["verification"]), "results": results, "correct": correct,
        "ok": correct and t_prov <= GOAL_S, "cpus": os.cpu_count(),
    })


if __name__ == "__main__":
    sys.exit(main())
