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

The page (issue 14): the same answers served by a Prometheus double on loopback (one path per province,
queried by the real ``HealthMap`` over HTTP), the real server, the real page in headless Chromium at
1366×768 and 1920×1080. Per load, ``renderMs`` — navigation start to the national view drawn and coloured
(``body[data-render-ms]``):

  * ``drawn_ms`` — navigation start to the national view drawn (grey: the topology alone);
  * ``warm_ms`` — to the view coloured, health merged a moment ago (another operator's page is open);
  * ``cold_ms`` — to the view coloured when nobody asked for health in the last ``CACHE_SECONDS``: the server
               answers with its last merge at once and refreshes in the background (it once made this page wait
               for all 32 Prometheus and the merge); ``cold_health_ms`` is that request alone, from Python
               (the server's part: the page cannot colour before it);
  * ``page_anchor_ms`` — the floor in the same page: fetching and parsing both documents, nothing drawn;
  * ``drill_ms`` / ``search_ms`` — drawing the largest province from a click, one search over every site;
  * ``dom_nodes`` — elements in the page at the national view (one place at a time, not 3,255 sites).

Goal (``page_goal_ms``): the page's own part — ``drawn_ms`` and ``warm_ms`` medians — within 2 s; ``cold_ms``
is reported next to ``cold_health_ms``. ``--no-browser`` skips the page.

Prints ONE JSON line. Usage: .venv/bin/python bench/bench_healthmap.py [--provinces N] [--repeat N] [--no-browser]
"""
from __future__ import annotations

import argparse
import gc
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from benchlib import finish

from jinbao_netops.inventory import load
from jinbao_netops.inventory.generate import generate, write
from jinbao_netops.monitoring import generate as gen
from jinbao_netops.monitoring import healthmap as web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from cdp import Chromium  # noqa: E402  (the tests' DevTools client: real headless Chromium, loopback only)

VIEWPORTS = [(1366, 768), (1920, 1080)]
PAGE_GOAL_MS = 2000


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
        for i, ifname in enumerate(d.interfaces, 1):
            for key in ("oper", "admin"):
                series[key].append(({**base, "ifindex": str(i), "interface": ifname}, 1))
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


class _Answers(BaseHTTPRequestHandler):
    """Every province's answers as its Prometheus gives them: /PROVINCE/api/v1/query?query=Q, /PROVINCE/api/v1/alerts."""
    texts: dict[str, dict[str, str]] = {}
    keys = {q: k for k, q in web.QUERIES.items()}

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        prov, _, rest = url.path.lstrip("/").partition("/")
        key = "alerts" if rest == "api/v1/alerts" else self.keys.get(urllib.parse.parse_qs(url.query).get("query", [""])[0])
        body = self.texts.get(prov, {}).get(key, "").encode()
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the map gave up waiting (its query timeout): its error
            pass

    def log_message(self, *args):
        pass


def _serve_answers(server: ThreadingHTTPServer) -> None:
    server.serve_forever()


def prometheus_double(texts: dict[str, dict[str, str]]):
    """The answers over HTTP on loopback from a process of their own (as Prometheus is: the map server's threads
    do not share an interpreter with it): (process, port)."""
    _Answers.texts = texts
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    server.daemon_threads = True
    proc = multiprocessing.get_context("fork").Process(target=_serve_answers, args=(server,), daemon=True)
    proc.start()
    server.server_close()  # the child serves on its copy of the socket
    return proc, server.server_address[1]


def page(inv, texts: dict[str, dict[str, str]], repeat: int) -> dict:
    """The national map in headless Chromium: load to first coloured render (cold and warm), the anchor, a drill
    into the largest province and a search, at both window sizes."""
    prom, port = prometheus_double(texts)
    sources = [web.Source(f"http://127.0.0.1:{port}/{p}", p) for p in texts]
    server = web.make_server(web.HealthMap(inv, sources), "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    biggest = max(texts, key=lambda p: len(inv.descendants(p)))
    runs: dict[str, list[float]] = {k: [] for k in ("drawn_ms", "warm_ms", "cold_ms", "cold_health_ms", "page_anchor_ms",
                                                          "drill_ms", "search_ms")}
    try:
        with Chromium() as tab:
            for width, height in VIEWPORTS:
                tab.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
                for _ in range(repeat):
                    for kind in ("cold_ms", "warm_ms"):
                        tab.goto("about:blank")
                        if kind == "cold_ms":
                            time.sleep(web.CACHE_SECONDS + 0.5)  # the server's health has expired
                        else:
                            urllib.request.urlopen(base + "api/health", timeout=60).read()
                        tab.goto(base)
                        tab.wait_for("document.body.dataset.ready === '1'", 120)
                        runs[kind].append(float(tab.eval("document.body.dataset.renderMs")))
                        runs["drawn_ms"].append(float(tab.eval("document.body.dataset.drawnMs")))
                    time.sleep(web.CACHE_SECONDS + 0.5)
                    t0 = time.perf_counter()
                    urllib.request.urlopen(base + "api/health", timeout=60).read()
                    runs["cold_health_ms"].append((time.perf_counter() - t0) * 1000)
                    runs["page_anchor_ms"].append(tab.eval(
                        "(async () => { const t0 = performance.now(); await Promise.all(['api/topology', 'api/health'].map("
                        "u => fetch(u, { cache: 'no-store' }).then(r => r.json()))); return performance.now() - t0; })()"))
                    runs["drill_ms"].append(tab.eval(
                        f"(() => {{ const t0 = performance.now(); go('{biggest}'); document.body.offsetHeight; "
                        "return performance.now() - t0; })()"))
                    runs["search_ms"].append(tab.eval(
                        "(() => { const t0 = performance.now(); search('guang'); return performance.now() - t0; })()"))
                    assert tab.eval("document.documentElement.scrollWidth <= innerWidth"), "the page scrolls sideways"
                tab.eval("history.back()")
                tab.wait_for("document.body.dataset.view === 'bu'", 30)
                nodes = tab.eval("document.getElementsByTagName('*').length")
            assert tab.errors() == [], tab.errors()
    finally:
        server.shutdown()
        prom.terminate()
        prom.join()
    out = {k: round(statistics.median(v), 1) for k, v in runs.items()}
    out.update({"cold_max_ms": round(max(runs["cold_ms"]), 1), "warm_max_ms": round(max(runs["warm_ms"]), 1),
                "drill_province": biggest, "dom_nodes": nodes, "loads": len(runs["cold_ms"]) * 2})
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--provinces", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=3, help="timed runs (per window size for the page); medians reported")
    ap.add_argument("--no-browser", action="store_true", help="the server's refresh work only, not the page")
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
    shown = {} if args.no_browser else page(inv, texts, args.repeat)
    page_ok = not shown or max(shown["drawn_ms"], shown["warm_ms"]) <= PAGE_GOAL_MS
    return finish({"bench": "healthmap", "provinces": len(provs), "sites": len(inv.sites), "devices": len(inv.devices),
                   "links": len(inv.links), "series": sum(len(f["results"][k]) for f in fetched for k in web.QUERIES),
                   "alerts": len(health["alerts"]), **med, "merge_over_anchor": round(med["merge_s"] / med["anchor_s"], 2),
                   "health_bytes": len(doc), "topology_bytes": len(topo), "summary": health["summary"], "correct": correct,
                   "goal_s": web.REFRESH_SECONDS, **({"page": shown, "page_goal_ms": PAGE_GOAL_MS} if shown else {}),
                   "ok": correct and med["merge_s"] <= web.REFRESH_SECONDS and page_ok,
                   "repeat": args.repeat, "loadavg": round(os.getloadavg()[0], 2)})


if __name__ == "__main__":
    sys.exit(main())
