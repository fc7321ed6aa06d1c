"""Hardening benchmark in the lab (issue 12 §5): deploy + harden N lab servers (playbooks/site.yml, as the
README's main job runs it), the first run on fresh nodes and the second on the result.

Measured per run: wall time, time per host (wall ÷ N: the hosts run side by side, ansible.cfg forks), and per host
the remote actions (a module run on the host: one per task, one per loop item; local checks not counted)
and the changed results, from bench/callback_plugins/netops_actions.py. The second run must change nothing.
Anchor, in the same run: one no-op remote action (ansible.builtin.ping) on the same N hosts, so a figure
taken on a busy machine can be read against what one action costs there.

For reference, from the issue (measured outside this project on the same lab): the community baseline
devsec.hardening (os_hardening + ssh_hardening) needed about 52–62 s per host and ~333 remote actions.

Takes the lab tests' session lock; rebuilds the lab for fresh nodes unless --no-fresh (the lab is left up,
hardened). Prints ONE JSON line; ``ok``: first run within --goal-s and the second changed nothing.
Usage: .venv/bin/python bench/bench_harden.py [--hosts N] [--goal-s 240] [--no-fresh]
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
import time
from pathlib import Path

from benchlib import finish

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

from jinbao_netops import inventory
from jinbao_netops.lab.runtime import Lab, state_root


def netops(*args: str) -> None:
    p = subprocess.run([str(BIN / "netops"), *args], cwd=REPO, capture_output=True, text=True, timeout=900, check=False)
    if p.returncode != 0:
        raise SystemExit(f"bench_harden: netops {' '.join(args)} exited {p.returncode}: {p.stderr.strip()[-300:]}")


def ansible(env: dict, *argv: str) -> tuple[float, dict]:
    """Run an Ansible tool; (wall seconds, per-host counts)."""
    with tempfile.NamedTemporaryFile(suffix=".json") as counts:
        run_env = {**env, "ANSIBLE_CALLBACK_PLUGINS": str(REPO / "bench/callback_plugins"),
                   "ANSIBLE_CALLBACKS_ENABLED": "netops_actions", "NETOPS_ACTIONS_OUT": counts.name}
        t0 = time.monotonic()
        p = subprocess.run([str(BIN / argv[0]), *argv[1:]], cwd=REPO, env=run_env, capture_output=True, text=True,
                           timeout=3600, check=False)
        wall = time.monotonic() - t0
        if p.returncode != 0:
            raise SystemExit(f"bench_harden: {' '.join(argv)} exited {p.returncode}: {p.stdout.strip()[-600:]}")
        return wall, json.loads(Path(counts.name).read_text() or "{}")


def run_figures(wall: float, counts: dict, hosts: list[str]) -> dict:
    actions = [counts.get(h, {}).get("actions", 0) for h in hosts]
    return {"wall_s": round(wall, 1), "per_host_s": round(wall / len(hosts), 2),
            "actions_per_host": {"median": statistics.median(actions), "max": max(actions)},
            "changed": sum(counts.get(h, {}).get("changed", 0) for h in hosts)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, help="the first N servers in inventory order (default: all)")
    ap.add_argument("--goal-s", type=float, default=240.0, help="goal for the first run's wall time")
    ap.add_argument("--no-fresh", action="store_true", help="keep the lab as it is (the first run is then no first run)")
    args = ap.parse_args()
    inv = inventory.load(inventory.DEFAULT_INVENTORY)
    servers = [d.id for d in inv.devices.values() if d.platform_info.kind == "server"]
    hosts = servers[:args.hosts] if args.hosts else servers
    with open(state_root() / ".test-session.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not args.no_fresh:
            netops("lab", "down")
        netops("lab", "up")
        env = {**os.environ, **Lab.open(inv).env(), "ANSIBLE_DEPRECATION_WARNINGS": "False"}
        limit = ["--limit", ",".join(hosts)]
        anchor, _ = ansible(env, "ansible", ",".join(hosts), "-m", "ansible.builtin.ping")
        first, c1 = ansible(env, "ansible-playbook", "playbooks/site.yml", *limit)
        second, c2 = ansible(env, "ansible-playbook", "playbooks/site.yml", *limit)
    r1, r2 = run_figures(first, c1, hosts), run_figures(second, c2, hosts)
    return finish({
        "bench": "harden", "hosts": len(hosts), "fresh": not args.no_fresh, "goal_s": args.goal_s,
        "anchor_ping_s": round(anchor, 1), "first": r1, "second": r2,
        "first_in_pings": round(first / anchor, 1),
        "ok": first <= args.goal_s and r2["changed"] == 0,
        "load1": round(os.getloadavg()[0], 1),
    })


if __name__ == "__main__":
    sys.exit(main())
