"""SSH collection benchmark: collectors.ssh (netmiko, bounded thread pool) from N simulated devices,
against plain OpenSSH in the same run.

The devices are jinbao_netops.testing.simssh.SshSim on loopback addresses (one process; public-key login; the
platform table's health commands answered with the recorded outputs in tests/fixtures/collect/):
half FRR routers (`vtysh -H /dev/null -c 'show ip ospf neighbor'`, `ip -s -j link` and the Linux health command), half Debian servers
(the Linux health command). Timed: ``collect_all`` over all N with ``--workers`` threads, every output
parsed; then a second round on the sessions the first one kept open (as ``collect serve`` does).
Anchor: the same N logins by `xargs -P WORKERS ssh HOST '<linux health command>'` (OpenSSH,
one exec each: the least an SSH collection of a host pays). With two or more CPUs the simulator is
pinned to the last CPU and the clients to the others; the simulator's CPU is reported.

Goal: every device complete in both rounds and the first round within ``--goal-s`` (15 s): ``ok``,
and exit status 1 when not.

Prints ONE JSON line. Usage: .venv/bin/python bench/bench_collect_ssh.py [--devices 200] [--workers 32]
"""
from __future__ import annotations

import argparse
import os
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

from benchlib import finish


from jinbao_netops.testing.simssh import SshSim
from jinbao_netops.access import Access
from jinbao_netops.collectors.ssh import SshTarget, collect_all
from jinbao_netops.inventory.platforms import LINUX_HEALTH, PLATFORMS

FIX = Path(__file__).resolve().parent.parent / "tests/fixtures/collect"
OUTPUTS = {"frr_show_ip_ospf_neighbor": "vtysh -H /dev/null -c 'show ip ospf neighbor'", "frr_ip_link": "ip -s -j link",
           "linux_health": LINUX_HEALTH}


def proc_cpu(pid: int) -> float:
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=200)
    ap.add_argument("--workers", type=int, default=32)
    ap.add_argument("--goal-s", type=float, default=15.0)
    a = ap.parse_args()
    outputs = {cmd: (FIX / f"{name}.txt").read_text() for name, cmd in OUTPUTS.items()}
    assert {c for c, _ in PLATFORMS["frr"].ssh_health} <= set(outputs)
    platform = {i: "frr" if i % 2 == 0 else "debian" for i in range(a.devices)}
    devices = {f"d{i:04d}": (f"127.4.{i // 250}.{i % 250 + 1}", outputs) for i in range(a.devices)}
    port = free_port()
    cpus = sorted(os.sched_getaffinity(0))
    pin = len(cpus) >= 2
    out: dict = {"bench": "collect_ssh", "devices": a.devices, "workers": a.workers, "goal_s": a.goal_s,
                 "pinned": {"simulator": cpus[-1], "clients": cpus[:-1]} if pin else None,
                 "load1_start": os.getloadavg()[0]}
    with SshSim(devices, port) as sim:
        if pin:
            os.sched_setaffinity(sim.proc.pid, {cpus[-1]})
            os.sched_setaffinity(0, set(cpus[:-1]))
        inv = sim.inventory({name: platform[i] for i, name in enumerate(devices)})
        targets = [SshTarget(name, platform[i], {"device": name}, 20.0) for i, name in enumerate(devices)]
        access = Access(inv, sim.environ(), port=port, timeout=20.0)
        for phase in ("collector", "collector_sessions_reused"):  # a round, then the next (as collect serve)
            s0, c0, w0 = proc_cpu(sim.proc.pid), time.process_time(), time.monotonic()
            res = collect_all(targets, access, workers=a.workers)
            wall, cpu, sim_cpu = time.monotonic() - w0, time.process_time() - c0, proc_cpu(sim.proc.pid) - s0
            complete = sum(r["ok"] and "load1" in r
                           and (r["platform"] != "frr" or (len(r["ospf_neighbors"]) == 3 and len(r["interfaces"]) == 4))
                           for r in res)
            out[phase] = {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "ok_devices": complete,
                          "reused": sum(r["session_reused"] for r in res), "simulator_cpu_s": round(sim_cpu, 2),
                          "errors": sorted({r["error"] for r in res if not r["ok"]})[:3]}
            if phase == "collector":
                first_wall, first_complete = wall, complete
        access.close()

        ssh = ["ssh", "-i", sim.client_key, "-p", str(port), "-o", f"UserKnownHostsFile={sim.known_hosts}",
               "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
               "-o", "LogLevel=ERROR", "-l", "netops"]
        script = f"{shlex.join(ssh)} \"$0\" {shlex.quote(LINUX_HEALTH)} | grep -c '^Mem:'"
        s0, w0 = proc_cpu(sim.proc.pid), time.monotonic()
        p = subprocess.run(["xargs", "-P", str(a.workers), "-n", "1", "sh", "-c", script], check=False,
                           input="\n".join(addr for addr, _ in devices.values()), capture_output=True, text=True)
        wall_plain, sim_cpu = time.monotonic() - w0, proc_cpu(sim.proc.pid) - s0
        out["anchor_plain_ssh"] = {"wall_s": round(wall_plain, 2), "ok_devices": p.stdout.split().count("1"),
                                   "simulator_cpu_s": round(sim_cpu, 2)}
    out["ratio_vs_plain_ssh"] = round(first_wall / wall_plain, 2)
    out["ok"] = first_complete == complete == a.devices and first_wall <= a.goal_s
    out["load1_end"] = os.getloadavg()[0]
    return finish(out)


if __name__ == "__main__":
    sys.exit(main())
