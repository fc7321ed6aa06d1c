"""Health map benchmark (issue 6): one /api/health refresh's own work on the national synthetic inventory.

The map refreshes every 5 s. Per refresh the server parses every province Prometheus's answers
(instant queries and active alerts) and merges them into site/device/link health. Measured here on
the national inventory (32 provinces, ~10,000 devices), with every device, inventory interface and
database answering (the largest answers a healthy network gives) and a few hundred alerts firing:

  * ``merge_s``    — everything a refresh does once the answers have arrived: parse them (as ``web.fetch``
                     does), ``monitoring.healthmap.merge``, and the JSON the page receives;
  * ``anchor_s``   — the floor in the same run: ``json.loads`` of the Prometheus answers the merge reads
                     (the refresh cannot be cheaper than reading what Prometheus said);
  * ``topology_s`` — the /api/topology document (built once at start);
  * sizes of the health and topology documents the browser downloads.

Goal: ``merge_s`` within the refresh interval (``goal_s``), with the merge correct: every site ok or warn
from the answers but at most the ministry's own (no source covers it here). ``ok`` says whether
both hold; the exit status is 1 when not.

Prints ONE JSON line. Usage: .venv/bin/python bench/bench_healthmap.py [--provinces N] [--repeat N]
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchlib import finish

from jinbao_netops.inventory import load
from jinbao_netops.inventory.generate import generate, write
from jinbao_netops.monitoring import generate as gen
from jinbao_netops.monitoring import healthmap as web


def answers(inv, prov: str) -> dict[str, str]:
    """The province Prometheus's answers as JSON text, shaped like /api/v1/query and /api/v1/alerts."""
    series: dict[str, list] = {k: [] for k in web.QUERIES}
    series["collector_up"].append(({"job": "netops-collect", "province": prov}, 1))
    alerts = []
    for n, did in enumerate(gen.collector_devices(inv, prov)):
        d = inv.devices[did]
        lin = inv.lineage(d.site)
        base = {"level": inv.sites[d.site].level.value, "province": prov, "city": lin.get("city", ""),
                "county": lin.get("county", ""), "site": d.site, "device": did}
        series["snmp_up"].append((base, 1))
        for n, ifname in enumerate(d.interfaces, 1):
            for key in ("oper", "admin"):
                series[key].append(({**base, "ifindex": str(n), "interface": ifname}, 1))
            series["util"].append(({"device": did, "interface": ifname}, 0.05))
        for svc in d.services:
            series["db_up"].append(({**base, "service": svc}, 1))
        if n % 40 == 0:
            alerts.append({"labels": {"alertname": "InterfaceErrorsRising", "severity": "warning", **base, "interface": "eth1"},
                           "annotations": {"summary_zh": "错包增加", "summary_en": "errors rising", "runbook": "check"},
                           "state": "firing", "activeAt": "2026-11-23T07:00:00Z", "value": "12"})
    now = time.time()
    out = {k: json.dumps({"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": m, "value": [now, str(v)]} for m, v in s]}}) for k, s in series.items()}
    out["alerts"] = json.dumps({"status": "success", "data": {"alerts": alerts}})
    return out


def parse(prov: str, texts: dict[str, str]) -> dict:
    """What ``web.fetch`` does with the answers once they are read."""
    data = {k: json.loads(t)["data"] for k, t in texts.items()}
    return {"url": f"http://prometheus.{prov}:9090", "scope": prov, "ok": True, "error": None, "seconds": 0.0,
            "results": {k: [(s["metric"], float(s["value"][1])) for s in data[k]["result"]] for k in web.QUERIES},
            "alerts": data["alerts"]["alerts"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--provinces", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=3, help="timed runs; medians reported")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-healthmap-") as tmp:
        write(generate(args.provinces), Path(tmp) / "national")
        inv = load(Path(tmp) / "national")
    provs = gen.provinces(inv)
    texts = {p: answers(inv, p) for p in provs}
    gc.freeze()  # as `netops monitor web` does once the inventory is loaded
    runs = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        for p in provs:
            for t in texts[p].values():
                json.loads(t)
        anchor = time.perf_counter() - t0
        t0 = time.perf_counter()
        fetched = [parse(p, texts[p]) for p in provs]
        doc = json.dumps(web.merge(inv, fetched), ensure_ascii=False).encode()
        merge = time.perf_counter() - t0
        t0 = time.perf_counter()
        topo = json.dumps(web.topology(inv), ensure_ascii=False).encode()
        runs.append({"merge_s": merge, "anchor_s": anchor, "topology_s": time.perf_counter() - t0})
    health = json.loads(doc)
    correct = health["summary"]["ok"] + health["summary"]["warn"] >= len(inv.sites) - 1
    med = {k: round(statistics.median(r[k] for r in runs), 3) for k in runs[0]}
    return finish({"bench": "healthmap", "provinces": len(provs), "sites": len(inv.sites), "devices": len(inv.devices),
                   "links": len(inv.links), "series": sum(len(f["results"][k]) for f in fetched for k in web.QUERIES),
                   "alerts": len(health["alerts"]), **med, "merge_over_anchor": round(med["merge_s"] / med["anchor_s"], 2),
                   "health_bytes": len(doc), "topology_bytes": len(topo), "summary": health["summary"], "correct": correct,
                   "goal_s": web.REFRESH_SECONDS, "ok": correct and med["merge_s"] <= web.REFRESH_SECONDS,
                   "repeat": args.repeat, "loadavg": round(os.getloadavg()[0], 2)})


if __name__ == "__main__":
    sys.exit(main())
