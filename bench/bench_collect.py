"""SNMP collection benchmark: this collector against Prometheus snmp_exporter, same agents, same run.

Simulated 48-port devices (SNMPv3 authPriv SHA/AES, one recording served on N loopback endpoints)
are polled for the same columns (sysUpTime, ifName, ifAlias, admin/oper status, ifHighSpeed, 64-bit
octets and unicast packets, errors, discards) by
  1. collectors.snmp.Poller: a cold cycle (label columns walked) and a warm one (labels cached);
  2. prometheus-snmp-exporter (the anchor), every target scraped once over HTTP with the same
     concurrency and max-repetitions.
Client CPU-seconds are the process's own (ours: time.process_time around the cycle; the exporter's:
/proc/PID/stat utime+stime around the scrapes). Varbinds are the values each client delivers
(48 ports × 13 columns + sysUpTime per device), so the ratio compares CPU per useful value. The warm
cycle runs ``--warm-rounds`` times and the one with the least CPU is reported (the machine is shared).

``codec_receive_us_per_varbind`` is the client's receive path alone (wire.message_id, wire.open_v3 with
its RFC 3414 checks, HMAC and AES, wire.answer) on the simulator's answer to one GETBULK of six counter
and state columns, timed in-process: the least of seven batches.

The agents: ``--simulator fast`` (default) is jinbao_netops.testing.simagent.FastResponder (the collector's codec,
answers cached), ``snmpsim`` the reference responder (a few hundred varbinds a second: small runs only).
With two or more CPUs the simulator is pinned to the last CPU and both clients to the others, so the
simulator's own CPU (reported per phase) does not eat into the clients' wall time.

Prints ONE JSON line and exits 1 when it is not ``ok``. Usage:
.venv/bin/python bench/bench_collect.py [--devices N] [--concurrency C]
"""
from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchlib import finish

from jinbao_netops.collectors import wire
from jinbao_netops.collectors.snmp import IF_COUNTERS, IF_LABELS, IF_STATE, SYS_UPTIME, Poller, _oid
from jinbao_netops.testing.simagent import Agent, FastResponder, Recording, Responder, snmprec

EXPORTER = shutil.which("prometheus-snmp-exporter") or "/usr/bin/prometheus-snmp-exporter"
PORTS = 48
# the 13 columns the figures have always counted (the cold cycle also walks ifDescr: not counted as useful)
LABELS = {n: IF_LABELS[n] for n in ("name", "alias")}
COLUMNS = {**LABELS, **{k: o for k, (o, _) in IF_COUNTERS.items()}, **IF_STATE}


def free_port(kind=socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_cpu(pid: int) -> float:
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def exporter_config(r: Responder, max_rep: int, timeout: float) -> str:
    lookups = [{"labels": ["ifIndex"], "labelname": n, "oid": COLUMNS[n], "type": "DisplayString"}
               for n in ("name", "alias")]
    metrics = [{"name": "sysUpTime", "oid": SYS_UPTIME[:-2], "type": "gauge"}]
    for n, oid in COLUMNS.items():
        if n in LABELS:
            continue
        metrics.append({"name": f"if_{n}", "oid": oid, "type": "counter" if n in IF_COUNTERS else "gauge",
                        "indexes": [{"labelname": "ifIndex", "type": "gauge"}], "lookups": lookups})
    module = {"walk": [SYS_UPTIME[:-2], *COLUMNS.values()], "version": 3, "max_repetitions": max_rep,
              "retries": 1, "timeout": f"{timeout:g}s",
              "auth": {"username": r.user, "security_level": "authPriv", "password": r.auth_key, "auth_protocol": "SHA",
                       "priv_protocol": "AES", "priv_password": r.priv_key, "context_name": "bench"},
              "metrics": metrics}
    return json.dumps({"bench": module})  # JSON is YAML


def codec_receive_us(r: Responder, max_rep: int, batches: int = 7, n: int = 1000) -> float:
    """CPU µs per varbind of wire.message_id + wire.open_v3 + wire.answer, as Client._received and Client.request
    call them, on the simulator's SHA/AES answer to a GETBULK of six counter and state columns."""
    engine, rid = bytes.fromhex(r.engine_id), 4242
    keys = (wire.localized_key(r.auth_key, engine), wire.privacy_key(r.priv_key, engine))
    req = wire.null_varbinds([_oid(o) for o, _ in list(IF_COUNTERS.values())[:4]] + [_oid(o) for o in list(IF_STATE.values())[:2]])
    vbs = Recording(snmprec(r.agents[0])).answer(wire.GETBULK, 0, max_rep, req, 0, len(req))
    scoped = wire.tlv(0x30, wire.tlv(4, engine) + wire.tlv(4, b"bench") + wire.pdu(wire.RESPONSE, rid, 0, 0, vbs))
    msg = wire.v3_message(rid, 0x03, engine, 1, 1000, r.user.encode(), scoped, *keys)
    check = functools.partial(wire.open_v3, eng=wire.Engine(engine, 1, 1000), user=r.user.encode(), keys=keys,
                              auth="SHA", rid=rid)
    count = len(wire.answer(*check(msg)[1:]))
    best = float("inf")
    for _ in range(batches):
        c0 = time.process_time()
        for _ in range(n):
            wire.message_id(msg)
            wire.answer(*check(msg)[1:])
        best = min(best, time.process_time() - c0)
    return best / n / count * 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=128)
    ap.add_argument("--simulator", choices=("fast", "snmpsim"), default="fast")
    ap.add_argument("--goal-wall-s", type=float, default=60.0,
                    help="one warm cycle, every poll after the first (default 60)")
    ap.add_argument("--goal-cold-wall-s", type=float, default=60.0,
                    help="the cold cycle, once per collector start: it also walks the labels (default 60)")
    ap.add_argument("--max-repetitions", type=int, default=25)
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--warm-rounds", type=int, default=3, help="warm cycles, the least CPU reported (default 3)")
    a = ap.parse_args()

    port = free_port()
    agents = [Agent("bench", f"127.3.{i // 250}.{i % 250 + 1}", port, ports=PORTS) for i in range(a.devices)]
    useful = a.devices * (PORTS * len(COLUMNS) + 1)
    cpus = sorted(os.sched_getaffinity(0))
    pin = len(cpus) >= 2
    clients = set(cpus[:-1]) if pin else set(cpus)
    out: dict = {"bench": "collect_snmp", "devices": a.devices, "ports": PORTS, "concurrency": a.concurrency,
                 "max_repetitions": a.max_repetitions, "useful_varbinds": useful, "simulator": a.simulator,
                 "pinned": {"simulator": cpus[-1], "clients": sorted(clients)} if pin else None,
                 "load1_start": os.getloadavg()[0]}
    work = tempfile.mkdtemp(prefix="netops-bench-collect-")
    sim = FastResponder if a.simulator == "fast" else Responder
    with sim(agents, workdir=os.path.join(work, "sim")) as r:
        if pin:
            for task in os.listdir(f"/proc/{r.proc.pid}/task"):
                os.sched_setaffinity(int(task), {cpus[-1]})
            os.sched_setaffinity(0, clients)
        # --- this collector ---------------------------------------------------------------------
        loop = asyncio.new_event_loop()
        poller = Poller(concurrency=a.concurrency)
        targets = [r.target(ag, timeout=a.timeout, retries=1, deadline=300, max_repetitions=a.max_repetitions)
                   for ag in agents]
        for i, t in enumerate(targets):  # one recording (context "bench"), a device state per endpoint
            t.device, t.context = f"d{i:04d}", "bench"
        for phase, rounds in (("cold", 1), ("warm", a.warm_rounds)):
            runs = []
            for _ in range(rounds):
                c0, w0, s0 = time.process_time(), time.monotonic(), proc_cpu(r.proc.pid)
                res = loop.run_until_complete(poller.cycle(targets, deadline=3600))
                cpu, wall = time.process_time() - c0, time.monotonic() - w0
                ok = sum(x.ok and len(x.interfaces) == PORTS for x in res)
                runs.append({"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "ok_devices": ok,
                             "pdus": sum(x.stats.pdus for x in res),
                             "varbinds_received": sum(x.stats.varbinds for x in res),
                             "cpu_us_per_useful_varbind": round(cpu / useful * 1e6, 2),
                             "simulator_cpu_s": round(proc_cpu(r.proc.pid) - s0, 2)})
            out[f"ours_{phase}"] = {**min(runs, key=lambda x: x["cpu_s"]), "ok_devices": min(x["ok_devices"] for x in runs),
                                    "cpu_us_per_useful_varbind_rounds": [x["cpu_us_per_useful_varbind"] for x in runs]}
        out["ours_dropped_answers"] = sum(poller.wire.dropped.values())  # the codec dropping the simulator's is a defect
        poller.close()
        out["codec_receive_us_per_varbind"] = round(codec_receive_us(r, a.max_repetitions), 3)
        loop.close()

        # --- the anchor: snmp_exporter ---------------------------------------------------------------
        cfg = Path(work) / "snmp.yml"
        cfg.write_text(exporter_config(r, a.max_repetitions, a.timeout))
        http = free_port(socket.SOCK_STREAM)
        exp = subprocess.Popen([EXPORTER, f"--config.file={cfg}", f"--web.listen-address=127.0.0.1:{http}",
                                "--log.level=error"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        # the pinning is inherited by the exporter (started from this, the clients' CPUs)
        try:
            for _ in range(100):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{http}/", timeout=2).read()
                    break
                except OSError:
                    time.sleep(0.1)

            def scrape(ag: Agent) -> int:
                url = f"http://127.0.0.1:{http}/snmp?module=bench&target={ag.address}:{ag.port}"
                text = urllib.request.urlopen(url, timeout=600).read().decode()
                return sum(1 for line in text.splitlines() if line and not line.startswith(("#", "snmp_scrape")))

            c0, w0, s0 = proc_cpu(exp.pid), time.monotonic(), proc_cpu(r.proc.pid)
            with ThreadPoolExecutor(a.concurrency) as pool:
                samples = list(pool.map(scrape, agents))
            cpu, wall = proc_cpu(exp.pid) - c0, time.monotonic() - w0
            out["snmp_exporter"] = {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
                                    "ok_devices": sum(s >= PORTS * (len(COLUMNS) - 2) for s in samples),
                                    "samples": sum(samples),
                                    "cpu_us_per_useful_varbind": round(cpu / useful * 1e6, 2),
                                    "simulator_cpu_s": round(proc_cpu(r.proc.pid) - s0, 2)}
        finally:
            exp.terminate()
            exp.wait(10)
    shutil.rmtree(work, ignore_errors=True)
    anchor = out["snmp_exporter"]["cpu_s"] or 1e-9
    out["cpu_ratio_cold"] = round(out["ours_cold"]["cpu_s"] / anchor, 2)
    out["cpu_ratio_warm"] = round(out["ours_warm"]["cpu_s"] / anchor, 2)
    out["goal_cpu_ratio"] = 1.0
    out["goal_wall_s"], out["goal_cold_wall_s"] = a.goal_wall_s, a.goal_cold_wall_s
    full = (all(out[k]["ok_devices"] == a.devices for k in ("ours_cold", "ours_warm", "snmp_exporter"))
            and not out["ours_dropped_answers"])
    out["ok"] = (full and out["cpu_ratio_warm"] <= 1.0 and out["cpu_ratio_cold"] <= 1.0
                 and out["ours_warm"]["wall_s"] <= a.goal_wall_s and out["ours_cold"]["wall_s"] <= a.goal_cold_wall_s)
    out["load1_end"] = os.getloadavg()[0]
    return finish(out)


if __name__ == "__main__":
    sys.exit(main())
