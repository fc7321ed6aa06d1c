"""Monitoring benchmark in the lab: time from a fault to its alert firing (issue 6).

With the lab up, `netops monitor up` with the lab timing (scrape and collection every S seconds, every
`for:` capped at F seconds), then N times: huadu's uplink goes dead at the city end (guangzhou-r1 eth4
down) and the clock runs, polled every 0.2 s, until
  - the province collector's own /metrics shows huadu-r1 eth1 not up (``collector_s``: the anchor,
    the part before Prometheus),
  - the province Prometheus has scraped it (``scraped_s``),
  - LinkDown is firing there (``firing_s``; goal ≤ 2 × scrape interval + for), and
  - Guangdong's Alertmanager holds it (``alertmanager_s``);
then the link is restored and the alert left to resolve. The stack is taken down at the end.

Takes the lab tests' session lock (never runs beside a lab test session). Prints ONE JSON line;
``ok`` is whether every run's ``firing_s`` met the goal, and the exit status is 1 when not.
Usage: .venv/bin/python bench/bench_monitor_lab.py [--runs 3] [--scrape-interval 5] [--max-for 10]
                                                  [--evaluation-interval S]
"""
from __future__ import annotations

import argparse
import fcntl
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

from benchlib import finish

REPO = Path(__file__).resolve().parent.parent

from jinbao_netops import inventory
from jinbao_netops.monitoring.stack import endpoints, http_json
from jinbao_netops.lab.runtime import Lab, state_root


def netops(*args: str) -> dict:
    p = subprocess.run([sys.executable, "-m", "jinbao_netops.cli", *args, "--json"], cwd=REPO, capture_output=True, text=True,
                       timeout=900, check=False)
    if p.returncode != 0:
        raise SystemExit(f"bench_monitor_lab: netops {' '.join(args)} exited {p.returncode}: {p.stderr.strip()}")
    return json.loads(p.stdout)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--scrape-interval", type=int, default=5)
    ap.add_argument("--max-for", type=int, default=10)
    ap.add_argument("--evaluation-interval", type=int, help="province rule evaluation (default: the scrape interval)")
    args = ap.parse_args()
    with open(state_root() / ".test-session.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return finish(measure(args))


def measure(args) -> dict:
    inv = inventory.load(inventory.DEFAULT_INVENTORY)
    lab = Lab.open(inv)
    if not lab.is_up:
        raise SystemExit("bench_monitor_lab: the lab is not up (.venv/bin/pytest tests/lab/test_lab.py -k second_up)")
    gd = endpoints(inv)["guangdong"]
    collector = f"http://{inv.devices['gd-mon1'].management}:9469/metrics"
    t0 = time.monotonic()
    netops("monitor", "up", "--scrape-interval", str(args.scrape_interval), "--collect-interval", str(args.scrape_interval),
           "--max-for", str(args.max_for),
           *(["--evaluation-interval", str(args.evaluation_interval)] if args.evaluation_interval else []))
    up_s = time.monotonic() - t0

    def q(expr: str) -> list:
        return http_json(f"{gd['prometheus']}/api/v1/query?query={urllib.parse.quote(expr)}")["data"]["result"]

    def collector_down() -> bool:
        text = urllib.request.urlopen(collector, timeout=5).read().decode()
        return any(ln.startswith("netops_interface_oper_status{") and 'device="huadu-r1"' in ln and 'interface="eth1"' in ln
                   and not ln.endswith(" 1.0") for ln in text.splitlines())

    def alert(state: str) -> bool:
        return any(a["labels"].get("alertname") == "LinkDown" and a["labels"].get("device") == "huadu-r1" and a["state"] == state
                   for a in http_json(f"{gd['prometheus']}/api/v1/alerts")["data"]["alerts"])

    checks = {
        "collector_s": collector_down,
        "scraped_s": lambda: bool(q('netops_interface_oper_status{device="huadu-r1",interface="eth1"} != 1')),
        "firing_s": lambda: alert("firing"),
        "alertmanager_s": lambda: any(a["labels"].get("alertname") == "LinkDown" and a["labels"].get("device") == "huadu-r1"
                                      for a in http_json(f"{gd['alertmanager']}/api/v2/alerts")),
    }
    runs = []
    try:
        for _ in range(args.runs):
            while alert("firing") or alert("pending") or q('ALERTS{alertname="LinkDown",device="huadu-r1"}'):
                time.sleep(0.5)  # the previous run's alert resolved
            time.sleep(args.scrape_interval * 1.7)  # a random phase against the scrape and round clocks
            start = time.monotonic()
            lab.node("guangzhou-r1").exec(["ip", "link", "set", "eth4", "down"], check=True)
            seen: dict[str, float] = {}
            try:
                while len(seen) < len(checks) and time.monotonic() - start < 300:
                    for name, check in checks.items():
                        if name not in seen and check():
                            seen[name] = round(time.monotonic() - start, 2)
                    time.sleep(0.2)
            finally:
                lab.node("guangzhou-r1").exec(["ip", "link", "set", "eth4", "up"], check=True)
            if len(seen) < len(checks):
                raise SystemExit(f"bench_monitor_lab: LinkDown did not arrive within 300 s (seen {seen})")
            runs.append(seen)
    finally:
        netops("monitor", "down")
    goal = 2 * args.scrape_interval + args.max_for
    med = {k: round(statistics.median(r[k] for r in runs), 2) for k in checks}
    return {
        "bench": "monitor_lab", "runs": len(runs), "scrape_interval_s": args.scrape_interval,
        "collect_interval_s": args.scrape_interval, "evaluation_interval_s": args.evaluation_interval or args.scrape_interval,
        "for_s": args.max_for, "goal_s": goal,
        "median": med, "max_firing_s": max(r["firing_s"] for r in runs), "anchor_collector_s": med["collector_s"],
        "firing_after_collector_s": round(med["firing_s"] - med["collector_s"], 2),
        "ok": all(r["firing_s"] <= goal for r in runs), "monitor_up_s": round(up_s, 1), "all": runs,
        "load1": round(os.getloadavg()[0], 1),
    }


if __name__ == "__main__":
    sys.exit(main())
