"""Monitoring benchmark: generation for the national synthetic inventory, and what federation costs.

1. `inventory generate` (32 provinces) → `monitoring.generate` → `promtool check config` on every
   generated Prometheus configuration (rules included): time for each.
2. A real Prometheus (Debian package, loopback only) runs the largest province's generated rules
   against a synthetic exporter serving that province's collector series (every device, every
   inventory interface, every database), then `/federate` is fetched twice in the same run:
   the ministry's match[] (the `province:*` aggregates) and, as the anchor, the full detail
   (`{__name__=~".+"}`) a ministry would pull without aggregation. Bytes, series and ms for each.
3. The whole country (``national``): every province's synthetic collector series at once, scraped by
   one province-tier Prometheus running every province's generated rules, and the ministry's generated
   Prometheus (its own rules) federating each province's aggregates as a target of its own. Read
   back from the ministry: samples and scrape time per province target (its own
   ``scrape_samples_scraped`` / ``scrape_duration_seconds``), bytes of all 32 federation answers, and
   that ``ministry:netops_snmp_up:count`` counts every device below the provinces.

Goal: what the ministry pulls is the aggregates only — every series of the ``province:*`` answer is a
``province:`` record of the generated rules — and, in part 3, it federates every province. ``ok`` says
whether that holds (the figures are reported against the anchor); the exit status is 1 when not.

Prints ONE JSON line. Usage: .venv/bin/python bench/bench_monitor.py [--provinces N] [--no-national]
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
from benchlib import finish

from jinbao_netops.inventory import load
from jinbao_netops.monitoring import generate as gen


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def exposition(inv, prov: str) -> str:
    """The province collector's series, shaped as collectors/METRICS.md describes (values synthetic)."""
    lines = []
    t = int(time.time())
    for did in gen.collector_devices(inv, prov):
        d = inv.devices[did]
        lin = inv.lineage(d.site)
        base = {"level": inv.sites[d.site].level.value, "province": prov, "city": lin.get("city", ""),
                "county": lin.get("county", ""), "site": d.site, "device": did}
        lab = ",".join(f'{k}="{v}"' for k, v in base.items())
        lines.append(f"netops_snmp_up{{{lab}}} 1")
        for svc in d.services:
            lines.append(f'netops_db_up{{{lab},service="{svc}"}} 1')
            lines.append(f'netops_db_replication_lag_seconds{{{lab},service="{svc}"}} 0')
        for n, ifname in enumerate(d.interfaces, 1):
            il = f'{lab},ifindex="{n}",interface="{ifname}"'
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


def serve(paths: dict[str, bytes]) -> http.server.ThreadingHTTPServer:
    """A loopback HTTP server answering each path with its fixed body."""
    class Exporter(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = paths.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Exporter)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def prometheus(cwd: Path, config: str, tsdb: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen(["prometheus", f"--config.file={config}", f"--storage.tsdb.path={tsdb}",
                             f"--web.listen-address=127.0.0.1:{port}"], cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, port


def query(port: int, expr: str) -> list:
    return json.loads(fetch(f"http://127.0.0.1:{port}/api/v1/query?query=" + urllib.parse.quote(expr))[0])["data"]["result"]


def national(inv, mon: Path, tmp: Path) -> dict:
    """Part 3: the ministry federating every province's aggregates, measured at the ministry."""
    provs = gen.provinces(inv)
    exp = serve({f"/{p}/metrics": exposition(inv, p).encode() for p in provs})
    tier = tmp / "tier"
    (tier / "rules").mkdir(parents=True)
    for p in provs:  # the records are the same for every province; the inventory facts are each province's
        (tier / "rules" / f"inventory-{p}.yml").write_text((mon / "province" / p / "rules/inventory.yml").read_text())
    (tier / "rules/records.yml").write_text((mon / "province" / provs[0] / "rules/records.yml").read_text())
    (tier / "prometheus.yml").write_text(yaml.safe_dump({
        "global": {"scrape_interval": "5s", "evaluation_interval": "5s"}, "rule_files": ["rules/*.yml"],
        "scrape_configs": [{"job_name": "netops-collect", "honor_labels": True, "scrape_timeout": "5s", "static_configs": [
            {"targets": [f"127.0.0.1:{exp.server_port}"], "labels": {"__metrics_path__": f"/{p}/metrics", "instance": p}}
            for p in provs]}]}))
    tier_proc, tier_port = prometheus(tier, "prometheus.yml", tmp / "tier-tsdb")
    ministry = mon / "ministry"
    cfg = gen.ministry_config(inv, gen.Timing(federate=5))
    cfg.pop("alerting")
    fed = next(j for j in cfg["scrape_configs"] if j["job_name"] == "federate")
    # one target per province as in production, each answered by the tier server for its province only
    cfg["scrape_configs"] = [{**fed, "job_name": f"federate-{p}", "params": {"match[]": [f'{{__name__=~"province:.*",province="{p}"}}']},
                              "static_configs": [{"targets": [f"127.0.0.1:{tier_port}"], "labels": {"province": p}}]} for p in provs]
    (ministry / "bench.yml").write_text(yaml.safe_dump(cfg))
    min_proc, min_port = prometheus(ministry, "bench.yml", tmp / "ministry-tsdb")
    try:
        t0 = time.perf_counter()
        devices = sum(len(gen.collector_devices(inv, p)) for p in provs)  # all but the ministry's own
        for _ in range(1800):  # the ministry's own sum over all provinces' federated counts: every device
            try:
                got = query(min_port, "ministry:netops_snmp_up:count")
                if got and int(float(got[0]["value"][1])) == devices and len(query(
                        min_port, 'province:netops_interface_utilisation:max')) == len(provs):
                    break
            except OSError:
                pass
            time.sleep(0.5)
        else:
            raise SystemExit("bench_monitor: the ministry never saw every province's aggregates")
        ready_s = time.perf_counter() - t0
        time.sleep(11)  # two more federation rounds

        def per_target(metric: str) -> list[float]:
            return [float(r["value"][1]) for r in query(min_port, f'{metric}{{job=~"federate-.*"}}')]

        samples, durations = per_target("scrape_samples_scraped"), per_target("scrape_duration_seconds")
        answers = [fetch(f"http://127.0.0.1:{tier_port}/federate?" + urllib.parse.urlencode(
            {"match[]": f'{{__name__=~"province:.*",province="{p}"}}'})) for p in provs]
        tier_series = json.loads(fetch(f"http://127.0.0.1:{tier_port}/api/v1/status/tsdb")[0])["data"]["headStats"]["numSeries"]
    finally:
        for proc in (min_proc, tier_proc):
            proc.terminate()
            proc.wait(timeout=60)
        exp.shutdown()
    return {"province_targets": len(samples), "series": int(sum(samples)), "bytes": sum(len(b) for b, _ in answers),
            "scrape_ms_max": round(max(durations) * 1000, 2), "scrape_ms_sum": round(sum(durations) * 1000, 2),
            "fetch_ms_sum": round(sum(t for _, t in answers) * 1000, 2), "ministry_devices_counted": devices,
            "province_tier_series": tier_series, "ready_s": round(ready_s, 1)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--provinces", type=int, default=32)
    ap.add_argument("--no-national", action="store_true", help="skip part 3 (the ministry federating every province)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        subprocess.run([sys.executable, "-m", "jinbao_netops.cli", "inventory", "generate", "--out", str(tmp / "inv"),
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
        prov = max(provs, key=lambda p: len(gen.collector_devices(inv, p)))
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
                samples = [ln for ln in data.decode().splitlines() if ln and not ln.startswith("#")]
                return ({"bytes": len(data), "series": len(samples), "ms": round(min(t for _, t in runs) * 1000, 2)},
                        {ln.split("{", 1)[0] for ln in samples})

            agg, agg_names = federate('{__name__=~"province:.*"}')
            full, _ = federate('{__name__=~".+"}')
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            exp.shutdown()
        nat = None if args.no_national else national(inv, tmp / "mon", tmp)
        records = {r["record"] for g in yaml.safe_load((pdir / "rules/records.yml").read_text())["groups"]
                   for r in g["rules"] if r.get("record", "").startswith("province:")}
    aggregates_only = bool(agg_names) and agg_names <= records
    return finish({
        "bench": "monitor", "provinces": len(provs), "devices": len(inv.devices), "files": len(written),
        "generate_s": round(t_gen, 2), "generate_cpu_s": round(c_gen, 2), "promtool_check_all_s": round(t_check, 2),
        "largest_province": prov, "province_devices": len(gen.collector_devices(inv, prov)),
        "federate_aggregates": agg, "anchor_federate_full_detail": full,
        "bytes_ratio_full_over_aggregates": round(full["bytes"] / agg["bytes"], 1),
        "national_aggregate_series_est": agg["series"] * len(provs), "national_federation": nat,
        "aggregates_only": aggregates_only,
        "ok": aggregates_only and (nat is None or nat["province_targets"] == len(provs)),
        "load1": round(os.getloadavg()[0], 1),
    })


if __name__ == "__main__":
    sys.exit(main())
