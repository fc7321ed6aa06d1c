"""Disaster-recovery benchmark in the lab (issue 15): the province-dc-lost drill, N runs on the default lab.

Measured per run, from the drill's own journal: RTO-service (fault → the first commit acknowledged at the promoted
DR standby), RTO-network (fault → each county reaches the pair's service address at the DR site; median and max over
the counties), RPO (acknowledged commits lost, and the seconds between the last commit the standby has and the last
the primary acknowledged) and the failback time (the data centre back → original roles, checksums equal).
Anchor, in the same run: the city-router-lost drill once (a city router dark, the dual-homed counties rerouted by
OSPF alone, no database and no address move): what the network's own reconvergence costs on this machine now.

Goals (issue 15): RTO-service ≤ 30 s, RTO-network ≤ 15 s (max over counties), RPO 0 for the synchronous pair.
Takes the lab tests' session lock, brings the lab up if it is not and builds the replication pairs (dr setup); the lab
is left up. Prints ONE JSON line; ``ok``: every run passed within the goals.
Usage: .venv/bin/python bench/bench_dr.py [--runs 3]
"""
from __future__ import annotations

import argparse
import fcntl
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchlib import finish

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

from jinbao_netops import inventory
from jinbao_netops.lab.runtime import Lab, state_root

GOALS = {"rto_service_s": 30.0, "rto_network_s": 15.0, "rpo_transactions": 0}


def netops(env: dict, *args: str) -> dict | None:
    p = subprocess.run([str(BIN / "netops"), *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=1800,
                       check=False)
    if p.returncode not in (0, 1) or (p.returncode and "--json" not in args):
        raise SystemExit(f"bench_dr: netops {' '.join(args)} exited {p.returncode}: {(p.stderr or p.stdout).strip()[-400:]}")
    return json.loads(p.stdout) if "--json" in args else None


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    inv = inventory.load(inventory.DEFAULT_INVENTORY)
    with open(state_root() / ".test-session.lock", "w") as lock, tempfile.TemporaryDirectory() as state:
        fcntl.flock(lock, fcntl.LOCK_EX)
        base = {k: v for k, v in os.environ.items() if k != "NETOPS_INVENTORY"}
        netops(base, "lab", "up")
        env = {**base, **Lab.open(inv).env(), "NETOPS_BACKUP_STATE": state}
        netops(env, "dr", "setup", "--force")
        runs = [netops(env, "drill", "run", "province-dc-lost", "--json") for _ in range(args.runs)]
        anchor = netops(env, "drill", "run", "city-router-lost", "--json")
    per_run = [{"passed": r["passed"], "rto_service_s": r.get("rto_seconds"), "rto_network_max_s": r.get("rto_network_seconds"),
                "rto_network_median_s": r.get("rto_network_median_seconds"), "rpo_transactions": r.get("rpo_transactions"),
                "rpo_s": r.get("rpo_seconds"), "failback_s": r.get("failback_seconds"),
                "dr_level": (r.get("dr_level") or {}).get("level"), **({"error": r["error"]} if r.get("error") else {})}
               for r in runs]

    def spread(key: str) -> dict | None:
        vals = [r[key] for r in per_run if r[key] is not None]
        return {"median": round(statistics.median(vals), 3), "max": max(vals)} if vals else None

    ok = all(r["passed"] and r["rto_service_s"] <= GOALS["rto_service_s"] and r["rto_network_max_s"] is not None
             and r["rto_network_max_s"] <= GOALS["rto_network_s"] and r["rpo_transactions"] == GOALS["rpo_transactions"]
             for r in per_run)
    return finish({
        "bench": "dr", "scenario": "province-dc-lost", "runs": len(per_run), "goals": GOALS,
        "rto_service_s": spread("rto_service_s"), "rto_network_max_s": spread("rto_network_max_s"),
        "rto_network_median_s": spread("rto_network_median_s"), "rpo_transactions": [r["rpo_transactions"] for r in per_run],
        "failback_s": spread("failback_s"), "dr_level": [r["dr_level"] for r in per_run],
        "anchor_ospf_reroute_s": anchor.get("rto_seconds"), "anchor_passed": anchor.get("passed"),
        "per_run": per_run, "ok": ok, "load1": round(os.getloadavg()[0], 1),
    })


if __name__ == "__main__":
    sys.exit(main())
