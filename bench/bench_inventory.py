#!/usr/bin/env python3
"""Inventory benchmark (issue 2): national-scale generate → load+validate → Ansible view → ansible-inventory.

Prints ONE JSON line. Goal: load+validate plus the Ansible view of the national inventory (~10,000
devices) in at most ``goal_s`` seconds. ``anchor_yaml_safe_load_s`` is measured in the same run: a plain
``yaml.load(..., Loader=yaml.CSafeLoader)`` of the same files, the least any YAML-reading tool pays.
``ok`` needs the goal met and every device the generator made in the loaded inventory, in the view and
(unless --no-ansible) in what ``ansible-inventory --list`` printed; the exit status is 1 when not.

    .venv/bin/python bench/bench_inventory.py [--provinces 32 --cities 340 --counties 2850 --seed 0]
                                              [--repeat N] [--no-ansible]
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import finish

REPO = Path(__file__).resolve().parent.parent

import yaml  # noqa: E402

from jinbao_netops.inventory import load  # noqa: E402
from jinbao_netops.inventory.ansible_view import build  # noqa: E402
from jinbao_netops.inventory.generate import counts_of, generate, write  # noqa: E402

GOAL_S = 5.0


def _ansible_inventory() -> str:
    here = Path(sys.executable).parent / "ansible-inventory"
    return str(here) if here.exists() else (shutil.which("ansible-inventory") or "ansible-inventory")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--provinces", type=int, default=32)
    ap.add_argument("--cities", type=int, default=340)
    ap.add_argument("--counties", type=int, default=2850)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-ansible", action="store_true", help="skip the ansible-inventory subprocess")
    ap.add_argument("--repeat", type=int, default=1, help="repeat anchor, load and view N times; report medians")
    args = ap.parse_args()
    loadavg = os.getloadavg()[0]  # other work on the machine skews every figure; say how busy it was

    with tempfile.TemporaryDirectory(prefix="bench-inventory-") as tmp:
        out = Path(tmp) / "national"
        t0 = time.perf_counter()
        files = generate(args.provinces, args.cities, args.counties, args.seed)
        write(files, out)
        t_generate = time.perf_counter() - t0

        yaml_bytes = sum(len(t.encode()) for t in files.values())
        del files

        anchors, loads, views = [], [], []
        inv = view = None
        for _ in range(args.repeat):
            # anchor first, on a small heap, with the interpreter's default GC settings: what reading the
            # same files with the stock C-accelerated safe loader costs, keeping the documents as a tool would
            inv = view = None
            gc.collect()
            t0 = time.perf_counter()
            docs = [yaml.load(f.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)  # noqa: S506 - safe loader
                    for f in sorted(out.glob("*.yml"))]
            anchors.append(time.perf_counter() - t0)
            del docs
            gc.collect()

            t0 = time.perf_counter()
            inv = load(out)
            loads.append(time.perf_counter() - t0)

            t0 = time.perf_counter()
            view = build(inv)
            views.append(time.perf_counter() - t0)
        t_anchor, t_load, t_view = (statistics.median(x) for x in (anchors, loads, views))
        peak_rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # before parsing ansible's output

        t_ansible = ansible_rc = ansible_hosts = None
        if not args.no_ansible:
            env = {**os.environ, "NETOPS_INVENTORY": str(out)}
            t0 = time.perf_counter()
            proc = subprocess.run([_ansible_inventory(), "--list"], cwd=REPO, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            t_ansible = time.perf_counter() - t0
            ansible_rc = proc.returncode
            if proc.returncode == 0:
                ansible_hosts = len(json.loads(proc.stdout)["_meta"]["hostvars"])
            else:
                print(proc.stderr.decode(errors="replace")[-2000:], file=sys.stderr)

    to_mb = 1 / 1024  # ru_maxrss is KiB on Linux
    render = t_load + t_view
    devices = counts_of(args.provinces, args.cities, args.counties, args.seed)["devices"]
    hosts = {"loaded": len(inv.devices), "view": len(view["_meta"]["hostvars"])}
    if not args.no_ansible:
        hosts["ansible_inventory"] = ansible_hosts  # None when it failed
    all_there = all(n == devices for n in hosts.values())
    result = {
        "bench": "inventory",
        "provinces": args.provinces, "seed": args.seed,
        "sites": len(inv.sites), "devices": len(inv.devices), "links": len(inv.links),
        "yaml_bytes": yaml_bytes,
        "generate_s": round(t_generate, 3),
        "load_validate_s": round(t_load, 3),
        "ansible_view_s": round(t_view, 3),
        "load_validate_view_s": round(render, 3),
        "anchor_yaml_safe_load_s": round(t_anchor, 3),
        "ansible_inventory_list_s": None if t_ansible is None else round(t_ansible, 3),
        "ansible_inventory_rc": ansible_rc,
        "ansible_inventory_hosts": ansible_hosts,
        "view_hosts": hosts["view"],
        "all_hosts_there": all_there,
        "peak_rss_mb": round(peak_rss_kib * to_mb, 1),
        "peak_rss_ansible_mb": None if args.no_ansible else
        round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * to_mb, 1),
        "goal_s": GOAL_S,
        # the goal covers load+validate+view; ansible-inventory is timed alongside, its hosts checked
        "ok": render <= GOAL_S and all_there,
        "repeat": args.repeat, "python": platform.python_version(), "cpus": os.cpu_count(),
        "loadavg_1m_start": round(loadavg, 2), "loadavg_1m_end": round(os.getloadavg()[0], 2),
    }
    return finish(result)


if __name__ == "__main__":
    sys.exit(main())
