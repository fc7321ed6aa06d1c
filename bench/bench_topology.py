#!/usr/bin/env python3
"""Topology benchmark (issue 3): graph + single points of failure + check + paths of every county, national scale.

Prints ONE JSON line. Goal: on the national synthetic inventory (~10,000 devices), building the graph
and running spof, check and paths (shortest paths, link- and node-disjoint counts) for every county
takes at most ``goal_s`` seconds. Loading the inventory is not part of it (see bench_inventory.py).
``anchor_nx_ap_bridges_s`` is measured in the same run: plain networkx ``articulation_points`` +
``bridges`` on the same active MultiGraph — the least any "find the SPOFs" tool built on networkx pays,
without saying what each one cuts off. ``srlg_stress`` (outside the goal) puts every dual-homed county's
two uplinks into one SRLG and times build + spof + check again: ~1,000 multi-link SRLGs to fail one by one.

    .venv/bin/python bench/bench_topology.py [--provinces 32 --cities 340 --counties 2850 --seed 0] [--repeat N]
"""
from __future__ import annotations

import argparse
import gc
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

import networkx as nx
from benchlib import finish

from jinbao_netops.inventory import load
from jinbao_netops.inventory.generate import generate, write
from jinbao_netops.inventory.loader import paused_gc
from jinbao_netops.topology import analysis as an
from jinbao_netops.topology.graph import build

GOAL_S = 5.0


def one_run(inv, counties: list[str]) -> dict:
    gc.collect()
    t0 = time.perf_counter()
    topo = build(inv)
    topo.split  # noqa: B018 - the derived views are part of building
    t1 = time.perf_counter()
    spof = an.spof(topo)
    t2 = time.perf_counter()
    findings = an.check(topo)
    t3 = time.perf_counter()
    paths = [an.paths(topo, c) for c in counties]
    t4 = time.perf_counter()
    # informative, outside the goal: what-if for every province core router, one at a time
    cores = sorted(d for d, n in topo.graph.nodes(data=True) if n["level"] == "province" and n["role"] == "router")
    impacts = [an.impact(topo, d) for d in cores]
    t5 = time.perf_counter()
    g = topo.active
    gc.collect()
    a0 = time.perf_counter()
    aps = list(nx.articulation_points(g))
    brs = list(nx.bridges(g))
    a1 = time.perf_counter()
    with paused_gc():  # the same with the collector paused, as the analysis runs
        list(nx.articulation_points(g))
        list(nx.bridges(g))
    a2 = time.perf_counter()
    return {"topo": topo, "spof": spof, "findings": findings, "paths": paths, "impacts": impacts,
            "aps": len(aps), "bridges": len(brs),
            "build_s": t1 - t0, "spof_s": t2 - t1, "check_s": t3 - t2, "paths_s": t4 - t3,
            "impact_s": t5 - t4, "anchor_s": a1 - a0, "anchor_quiet_s": a2 - a1}


def srlg_stress(inv) -> dict:
    """Every dual-homed county's two uplinks put in one SRLG (one duct): ~1,000 multi-link SRLGs, each
    failed on its own by the local search, and as many check findings. Restores the inventory after."""
    saved = {}
    for lid, lk in inv.links.items():
        if lid.endswith("-up2") and lk.state.value == "active":
            up1 = inv.links[lid[:-1] + "1"]
            saved[lid] = lk.srlg
            lk.srlg = up1.srlg
    try:
        gc.collect()
        t0 = time.perf_counter()
        topo = build(inv)
        spof = an.spof(topo)
        findings = an.check(topo)
        t1 = time.perf_counter()
    finally:
        for lid, srlg in saved.items():
            inv.links[lid].srlg = srlg
    return {"shared_srlgs": len(saved), "seconds": round(t1 - t0, 3),
            "srlg_spofs": sum(s.failure.kind == "srlg" for s in spof),
            "not_dual_homed_findings": sum(f.code == "not_dual_homed" for f in findings),
            "ok": len(findings) == len(saved) == sum(s.failure.kind == "srlg" for s in spof)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--provinces", type=int, default=32)
    ap.add_argument("--cities", type=int, default=340)
    ap.add_argument("--counties", type=int, default=2850)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=1, help="repeat the timed part N times; report medians")
    args = ap.parse_args()
    loadavg = os.getloadavg()[0]

    with tempfile.TemporaryDirectory(prefix="bench-topology-") as tmp:
        out = Path(tmp) / "national"
        write(generate(args.provinces, args.cities, args.counties, args.seed), out)
        t0 = time.perf_counter()
        inv = load(out)
        t_load = time.perf_counter() - t0

    counties = sorted(s.id for s in inv.sites.values() if s.level.value == "county")
    runs = [one_run(inv, counties) for _ in range(args.repeat)]
    med = {k: statistics.median(r[k] for r in runs) for k in
           ("build_s", "spof_s", "check_s", "paths_s", "impact_s", "anchor_s", "anchor_quiet_s")}
    stress = srlg_stress(inv)
    last = runs[-1]
    total = med["build_s"] + med["spof_s"] + med["check_s"] + med["paths_s"]

    # sanity: the generator's single-homed counties are exactly what the analysis finds at risk, its
    # dual-homed ones really are dual-homed, and every county reaches the ministry
    single = {s.id for s in inv.sites.values() if s.level.value == "county" and s.homing == "single"}
    at_risk = {x for s in last["spof"] for x in s.sites}
    by_homing = {"single": [0, 0], "dual": [0, 0]}
    for p in last["paths"]:
        h = inv.sites[p["site"]["id"]].homing
        by_homing[h][0] += p["link_disjoint"] >= 2
        by_homing[h][1] += p["node_disjoint"] >= 2
    correct = (at_risk == single and not last["findings"] and all(p["reachable"] for p in last["paths"])
               and by_homing["dual"] == [len(counties) - len(single)] * 2 and by_homing["single"] == [0, 0])

    result = {
        "bench": "topology",
        "provinces": args.provinces, "seed": args.seed,
        "sites": len(inv.sites), "devices": len(inv.devices), "links": len(inv.links),
        "counties": len(counties), "single_homed_counties": len(single),
        "load_s": round(t_load, 3),
        "build_s": round(med["build_s"], 3),
        "spof_s": round(med["spof_s"], 3),
        "check_s": round(med["check_s"], 3),
        "paths_all_counties_s": round(med["paths_s"], 3),
        "build_spof_check_paths_s": round(total, 3),
        "anchor_nx_ap_bridges_s": round(med["anchor_s"], 3),
        "anchor_nx_ap_bridges_gc_paused_s": round(med["anchor_quiet_s"], 3),
        "impact_province_cores_s": round(med["impact_s"], 3),
        "spof_count": len(last["spof"]),
        "spof_by_kind": {k: sum(s.failure.kind == k for s in last["spof"]) for k in ("device", "link", "srlg")},
        "sites_at_risk": len(at_risk),
        "findings": len(last["findings"]),
        "anchor_articulation_points": last["aps"], "anchor_bridges": last["bridges"],
        "correct": correct,
        "srlg_stress": stress,
        "goal_s": GOAL_S,
        "ok": total <= GOAL_S and correct and stress["ok"],
        "repeat": args.repeat, "python": platform.python_version(), "networkx": nx.__version__,
        "cpus": os.cpu_count(), "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "loadavg_1m_start": round(loadavg, 2), "loadavg_1m_end": round(os.getloadavg()[0], 2),
    }
    return finish(result)


if __name__ == "__main__":
    sys.exit(main())
