"""Benchmark: `netops audit` over SSH against the live lab (issue 4). Read-only; needs `netops lab up`.

Prints one JSON line. The anchor, measured in the same run, is one plain `ssh netops@node sudo -n true`
round trip (median of 5): the least any SSH-based check of a host pays. Then
  * the whole embedded default (40 nodes: 22 servers, 18 FRR routers) through run_audit();
  * 100 host audits (the 40 nodes cycled, the same engine function per host) at the same concurrency,
    for the goal of 100 hosts in <= 60 s: ``ok`` when met with every host audited; exit status 1 when not.

    eval "$(.venv/bin/netops lab env)"; .venv/bin/python bench/bench_audit.py [--parallel 16]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchlib import finish

REPO = Path(__file__).resolve().parent.parent

from jinbao_netops import inventory
from jinbao_netops.access import Access
from jinbao_netops.security import records
from jinbao_netops.security.audit import audit_host, run_audit, session_runner
from jinbao_netops.security.catalogue import load_catalogue


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--parallel", type=int, default=16)
    ap.add_argument("--hosts", type=int, default=100)
    a = ap.parse_args()
    if not os.environ.get("NETOPS_SSH_KEY"):
        sys.exit('bench_audit: run eval "$(.venv/bin/netops lab env)" first (the lab must be up)')
    inv = inventory.load(inventory.DEFAULT_INVENTORY)
    node = inv.devices["huadu-srv1"]
    ssh = ["ssh", "-i", os.environ["NETOPS_SSH_KEY"], "-o", "BatchMode=yes", *os.environ.get("ANSIBLE_SSH_COMMON_ARGS", "").split(),
           f"netops@{node.management}", "sudo", "-n", "true"]
    rtt = []
    for _ in range(5):
        t0 = time.monotonic()
        subprocess.run(ssh, check=True, capture_output=True, timeout=60)
        rtt.append(time.monotonic() - t0)

    access = Access(inv)
    run = session_runner(access)
    t0 = time.monotonic()
    rep = run_audit(inv, None, run=run, parallel=a.parallel)
    lab_wall = time.monotonic() - t0
    per = [h["seconds"] for h in rep["hosts"]]

    cat, ids, rec = load_catalogue(), sorted(inv.devices), records.load()
    targets = [ids[i % len(ids)] for i in range(a.hosts)]
    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=a.parallel) as pool:
        recs = list(pool.map(lambda d: audit_host(inv, cat, d, run, rec), targets))
    wall_n = time.monotonic() - t0
    per_n = [r["seconds"] for r in recs]
    return finish({
        "bench": "audit", "parallel": a.parallel, "cpus": os.cpu_count(), "loadavg_1m": os.getloadavg()[0],
        "anchor_ssh_roundtrip_s": round(statistics.median(rtt), 3),
        "lab_hosts": len(rep["hosts"]), "lab_unreachable": len(rep["summary"]["unreachable"]), "lab_wall_s": round(lab_wall, 2),
        "lab_per_host_median_s": round(statistics.median(per), 3), "lab_per_host_max_s": round(max(per), 3),
        "n_hosts": a.hosts, "n_unreachable": sum(r["status"] != "ok" for r in recs), "n_wall_s": round(wall_n, 2),
        "n_per_host_median_s": round(statistics.median(per_n), 3), "n_per_host_max_s": round(max(per_n), 3),
        "goal_s": 60, "ok": wall_n <= 60 and all(r["status"] == "ok" for r in recs),
    })


if __name__ == "__main__":
    sys.exit(main())
