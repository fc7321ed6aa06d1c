"""Root-cause alerting at national scale (issue 14 §4): what the per-unit root causes cost.

1. The national synthetic inventory (32 provinces) → ``generate.impacts`` (one impact analysis per forwarding device
   and line between sites): seconds, units, root-cause alerting rules, inhibit rules and the bytes of
   alertmanager.yml; ``amtool check-config`` on it.
2. A real Alertmanager (Debian package, loopback only) with that configuration takes a storm: every unit that cuts
   sites off, failed at once — each one's SitesCutOff plus a NodeDown for every device of every site it cuts off.
   Measured: start until ready, posting, and until every consequence is held back (``inhibitedBy``), RSS.
   **Anchor:** the same storm on the same configuration without the per-unit rules (the generic rules only, which
   hold back nothing of it): until every alert is in.

Goal (``ok``): every consequence held back and the root causes not, within ``goal_s`` (10 s) of posting — well inside
Alertmanager's group_wait (30 s), so no consequence pages before its root cause holds it back.

Prints ONE JSON line. Usage: .venv/bin/python bench/bench_rootcause.py [--provinces N]
"""
from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import finish

from jinbao_netops.collectors.targets import labels
from jinbao_netops.inventory import load
from jinbao_netops.inventory.generate import generate, write
from jinbao_netops.monitoring import generate as gen
from jinbao_netops.monitoring.silences import AlertmanagerError, call

GOAL_S = 10


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def storm(inv, imps) -> tuple[list[dict], int]:
    """(alerts, how many are root causes): every cutting device unit's SitesCutOff and its cut-off sites' NodeDown."""
    def dev(d: str, **extra) -> dict:
        return {**{k: v for k, v in labels(inv, d).items() if v}, "severity": "critical", **extra}

    alerts, roots = [], 0
    for lst in imps.values():
        for i in lst:
            if i.failure.kind != "device" or not i.cut:
                continue
            alerts.append(dev(i.failure.id, alertname="SitesCutOff"))
            roots += 1
            alerts += [dev(d, alertname="NodeDown") for ids in i.cut.values() for s in ids for d in inv.devices_by_site[s]]
    return alerts, roots


def run_alertmanager(config: Path, alerts: list[dict], expect_held: int) -> dict:
    port = free_port()
    with tempfile.TemporaryDirectory() as store:
        t0 = time.perf_counter()
        proc = subprocess.Popen(["prometheus-alertmanager", f"--config.file={config}", f"--storage.path={store}",
                                 f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def api(path: str, data=None):
            return call(f"http://127.0.0.1:{port}", "GET" if data is None else "POST", f"/api/v2/{path}", data, timeout=60)

        try:
            while True:
                try:
                    api("status")
                    break
                except AlertmanagerError:
                    if proc.poll() is not None:
                        raise SystemExit("alertmanager exited") from None
                    time.sleep(0.05)
            ready = time.perf_counter() - t0
            t0 = time.perf_counter()
            for i in range(0, len(alerts), 500):
                api("alerts", [{"labels": a} for a in alerts[i:i + 500]])
            posted = time.perf_counter() - t0
            held = free = 0
            while time.perf_counter() - t0 < 6 * GOAL_S:
                got = api("alerts")
                held = sum(1 for a in got if a["status"]["inhibitedBy"])
                free = sum(1 for a in got if not a["status"]["inhibitedBy"])
                if len(got) == len(alerts) and held == expect_held:
                    break
                time.sleep(0.2)
            settled = time.perf_counter() - t0
            rss = int(Path(f"/proc/{proc.pid}/status").read_text().split("VmRSS:")[1].split()[0]) // 1024
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return {"ready_s": round(ready, 2), "post_s": round(posted, 2), "settled_s": round(settled, 2), "held_back": held,
            "paging": free, "rss_mb": rss}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--provinces", type=int, default=32)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write(generate(args.provinces), tmp / "national")
        inv = load(str(tmp / "national"))
        t0 = time.perf_counter()
        imps = gen.impacts(inv)
        impacts_s = time.perf_counter() - t0
        am = gen.alertmanager_config(inv, imps)
        (tmp / "am.yml").write_text(gen._dump(am))
        alerting = [r for key in imps for r in gen.impact_rules(imps[key])]
        t0 = time.perf_counter()
        check = subprocess.run(["amtool", "check-config", str(tmp / "am.yml")], capture_output=True, text=True, check=False)
        amtool_s = time.perf_counter() - t0
        alerts, roots = storm(inv, imps)
        measured = run_alertmanager(tmp / "am.yml", alerts, len(alerts) - roots)
        generic = {**am, "inhibit_rules": am["inhibit_rules"][-3:]}  # the line rule, ProvinceUnreachable, NodeDown
        (tmp / "generic.yml").write_text(gen._dump(generic))
        anchor = run_alertmanager(tmp / "generic.yml", alerts, 0)  # nothing to hold back: until all are in
    ok = (check.returncode == 0 and measured["held_back"] == len(alerts) - roots and measured["paging"] == roots
          and measured["settled_s"] <= GOAL_S)
    return finish({"bench": "rootcause", "provinces": args.provinces, "sites": len(inv.sites), "devices": len(inv.devices),
                   "goal_s": GOAL_S, "ok": ok, "impacts_s": round(impacts_s, 2), "units": sum(map(len, imps.values())),
                   "alerting_rules": len(alerting), "inhibit_rules": len(am["inhibit_rules"]),
                   "alertmanager_yml_bytes": len(gen._dump(am).encode()), "amtool_check_s": round(amtool_s, 2),
                   "storm_alerts": len(alerts), "storm_root_causes": roots, "alertmanager": measured,
                   "anchor_generic_rules_only": anchor, "load1": round(os.getloadavg()[0], 1)})


if __name__ == "__main__":
    sys.exit(main())
