"""Monitoring benchmark: generation for the national synthetic inventory, and what federation costs.

1. `inventory generate` (32 provinces) → `monitoring.generate` → `promtool check config` on every
   generated Prometheus configuration (rules included): time for each.
2. A real Prometheus (Debian package, loopback only) runs the largest province's generated rules
   against a synthetic exporter serving that province's collector series (every device, every
   inventory interface, every database), then `/federate` is fetched twice in the same run:
   the ministry's match[] (the `province:*` aggregates) and, as the anchor, the full detail
   (`{__name__=~".+"}`) a ministry would pull without aggregation. Bytes, series and ms for each.

Prints ONE JSON line. Usage: .venv/bin/python bench/bench_monitor.py [--provinces N]
"""
from __future__ import annotations

import argparse
import http.server
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from inventory import load
from monitoring import generate as gen


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def exposition(inv, prov: str) -> str:
    """The province collector's series, shaped as collectors/METRICS.md describes (values synthetic)."""
    lines = []
    t = int(time.time())
    for did in gen.province_devices(inv, prov):
        d = inv.devices[did]
        lin = inv.lineage(d.site)
        base = {"level": inv.sites[d.site].level.value, "province": prov, "city": lin.get("city", ""),
                "county": lin.get("county", ""), "site": d.site, "device": did}
        lab = ",".join(f'{k}="{v}"' for k, v in base.items())
        lines.append(f"netops_snmp_up{{{lab}}} 1")
        for svc in d.services:
            lines.append(f'netops_db_up{{{lab},service="{svc}"}} 1')
            lines.append(f'netops_db_replication_lag_seconds{{{lab},service="{svc}"}} 0')
        for ifname in d.interfaces:
            il = f'{lab},interface="{ifname}",alias=""'
            lines += [f"netops_interface_oper_status{{{il}}} 1", f"netops_interface_admin_status{{{il}}} 1",
                      f"netops_interface_speed_bits_per_second{{{il}}} 1e9",
                      f"netops_interface_in_bytes_total{{{il}}} {t * 1000}", f"netops_interface_out_bytes_total{{{il}}} {t * 800}",
                      f"netops_interface_in_errors_total{{{il}}} 0", f"netops_interface_out_errors_total{{{il}}} 0"]
    lines.append(f"netops_collect_round_timestamp_seconds {t}")
    return "\n".join(lines) + "\n"


def fetch(url: str) -> tuple[bytes, float]:
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=30) as r:
        body = r.read()
    return body, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--provinces", type=int, default=32)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        subprocess.run([sys.executable, "-m", "netops.cli", "inventory", "generate", "--out", str(tmp / "inv"),
                        "--provinces", str(args.provinces), "--json"], check=True, capture_output=True)
        inv = load(str(tmp / "inv"))
        t0, c0 = time.perf_counter(), time.process_time()
        written = gen.generate(inv, tmp / "mon")
        t_gen, c_gen = time.perf_counter() - t0, time.process_time() - c0
        t0 = time.perf_counter()
        for cfg in sorted((tmp / "mon").rglob("prometheus.yml")):
            subprocess.run(["promtool", "check", "config", "prometheus.yml"], cwd=cfg.parent, check=True, capture_output=True)
        t_check = time.perf_counter() - t0

        provs = gen.provinces(inv)
        prov = max(provs, key=lambda p: len(gen.province_devices(inv, p)))
        body = exposition(inv, prov).encode()

        class Exporter(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        exp = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Exporter)
        threading.Thread(target=exp.serve_forever, daemon=True).start()
        pdir = tmp / "mon/province" / prov
        cfg = yaml.safe_load((pdir / "prometheus.yml").read_text())
        cfg["global"].update(scrape_interval="1s", evaluation_interval="1s")
        cfg.pop("alerting")
        cfg["scrape_configs"] = [{"job_name": "netops-collect", "honor_labels": True, "scrape_interval": "1s",
                                  "static_configs": [{"targets": [f"127.0.0.1:{exp.server_port}"]}]}]
        (pdir / "bench.yml").write_text(yaml.safe_dump(cfg))
        port = free_port()
        proc = subprocess.Popen(["prometheus", "--config.file=bench.yml", f"--storage.tsdb.path={tmp / 'tsdb'}",
                                 f"--web.listen-address=127.0.0.1:{port}"], cwd=pdir,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            q = f"http://127.0.0.1:{port}/api/v1/query?query=" + urllib.parse.quote("province:netops_interface_utilisation:max")
            for _ in range(600):  # until the aggregates (rate needs two scrapes) are there
                try:
                    if json.loads(fetch(q)[0])["data"]["result"]:
                        break
                except OSError:
                    pass
                time.sleep(0.1)
            else:
                raise SystemExit("bench_monitor: the province's aggregates never appeared")
            time.sleep(2)

            def federate(match: str):
                url = f"http://127.0.0.1:{port}/federate?" + urllib.parse.urlencode({"match[]": match})
                runs = [fetch(url) for _ in range(5)]
                data = runs[-1][0]
                series = sum(1 for ln in data.decode().splitlines() if ln and not ln.startswith("#"))
                return {"bytes": len(data), "series": series, "ms": round(min(t for _, t in runs) * 1000, 2)}

            agg = federate('{__name__=~"province:.*"}')
            full = federate('{__name__=~".+"}')
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            exp.shutdown()
    print(json.dumps({
        "bench": "monitor", "provinces": len(provs), "devices": len(inv.devices), "files": len(written),
        "generate_s": round(t_gen, 2), "generate_cpu_s": round(c_gen, 2), "promtool_check_all_s": round(t_check, 2),
        "largest_province": prov, "province_devices": len(gen.province_devices(inv, prov)),
        "federate_aggregates": agg, "anchor_federate_full_detail": full,
        "bytes_ratio_full_over_aggregates": round(full["bytes"] / agg["bytes"], 1),
        "national_aggregate_series_est": agg["series"] * len(provs), "load1": round(os.getloadavg()[0], 1),
    }, ensure_ascii=False))


if __name__ == "__main__":
    main()
