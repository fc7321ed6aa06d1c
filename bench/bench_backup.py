"""Backup benchmarks, each against an anchor measured in the same run; prints ONE JSON line.

configs: N FRR devices backed up by the suite's config archive run (backup.configs.backup_configs:
         concurrent SSH pull with the platform table's command, filter, redaction, one git archive per
         province store, push, off-site push to the DR store, catalogue, report) — against the anchor:
         the same N pulls by plain OpenSSH, `xargs -P W ssh HOST "vtysh -H /dev/null -c 'show running-config'"`
         into files, with the suite's own ssh options. The devices are the default inventory's
         provincial routers' sites, N/16 devices each, at
         --simulator (default): jinbao_netops.testing.simssh on 127.7.x.y answering the recorded running config
                  of a lab FRR router (tests/fixtures/collect/frr_show_running_config.txt, hostname per
                  device); with two or more CPUs the simulator is pinned to the last CPU and the suite
                  and its ssh clients to the others; the simulator's CPU is reported.
         --lab:   the lab's FRR routers (each stands in for N/16 devices; its sshd, PAM and vtysh run on
                  the same cores as the client).
restic:  one stream backed up by the suite (ssh-less local source, run_store with retention) —
         against the anchor: plain `restic backup --stdin` of the same bytes into a fresh repo.

Goal: the configs of N devices backed up within 60 s with none failed (``configs_goal_met``); restic
has no goal of its own (its anchor is the figure). ``ok``: the configs goal met (unless
--skip-configs) and the suite's restic backup succeeded; the exit status is 1 when not.

    .venv/bin/python bench/bench_backup.py [--devices 1000] [--workers 32] [--mb 256]
    eval "$(.venv/bin/netops lab env)"; .venv/bin/python bench/bench_backup.py --lab [--devices 1000]
"""
from __future__ import annotations

import argparse
import copy
import os
import secrets
import shlex
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from ipaddress import IPv4Address
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

from benchlib import finish
from bench_collect_ssh import free_port, proc_cpu

from jinbao_netops import inventory
from jinbao_netops.access import Access
from jinbao_netops.backup import filters
from jinbao_netops.backup.configs import backup_configs
from jinbao_netops.backup.jobs import Asset, policy, run_store
from jinbao_netops.backup.remote import store_of
from jinbao_netops.backup.restic import Repo
from jinbao_netops.testing.simssh import SshSim
from jinbao_netops.inventory import Role
from jinbao_netops.inventory.platforms import PLATFORMS

FRR = PLATFORMS["frr"]
CONFIG_COMMAND = FRR.cli_exec.format(command=shlex.quote(FRR.show_running))  # as backup/configs.py sends it
RECORDED = REPO / "tests/fixtures/collect/frr_show_running_config.txt"  # guangzhou-r1 in the lab
GOAL_S = 60.0


def _cpu() -> float:
    """CPU seconds of this process and its waited-for children (the ssh clients, git): the ops host's
    share; the devices' side (simulator or lab containers) is not counted."""
    import resource

    return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                resource.getrusage(resource.RUSAGE_CHILDREN)))


def fleet(n: int, address) -> inventory.Inventory:
    """The default inventory with its provincial routers replaced by N FRR devices ``sim00000``… on the
    routers' sites (so archived in both provinces' stores); ``address(i, router)`` is device i's
    management address."""
    inv = copy.copy(inventory.load(inventory.DEFAULT_INVENTORY))
    routers = sorted((d for d in inv.devices.values() if d.platform_info.kind == "network" and store_of(inv, d.site)),
                     key=lambda d: d.id)
    devices = {k: d for k, d in inv.devices.items() if d.platform_info.kind != "network"}
    for i in range(n):
        r = routers[i % len(routers)]
        devices[f"sim{i:05d}"] = r.model_copy(update={"id": f"sim{i:05d}", "management": address(i, r)})
    inv.devices = devices
    inv.index()
    return inv


def bench_configs(n: int, workers: int, tmp: Path, simulator: bool) -> dict:
    os.environ["NETOPS_BACKUP_STATE"] = str(tmp / "state")
    cpus = sorted(os.sched_getaffinity(0))
    res: dict = {"configs_mode": "simulator" if simulator else "lab", "configs_devices": n,
                 "configs_workers": workers, "configs_goal_s": GOAL_S}
    with ExitStack() as stack:
        sim_cpu = lambda: 0.0
        if simulator:
            recorded = RECORDED.read_text()
            outputs = {f"sim{i:05d}": {CONFIG_COMMAND: recorded.replace("hostname guangzhou-r1", f"hostname sim{i:05d}")}
                       for i in range(n)}
            addrs = [f"127.7.{i // 250}.{i % 250 + 1}" for i in range(n)]
            port = free_port()
            sim = stack.enter_context(SshSim({name: (addrs[i], out) for i, (name, out) in enumerate(outputs.items())},
                                             port))
            if len(cpus) >= 2:
                os.sched_setaffinity(sim.proc.pid, {cpus[-1]})
                os.sched_setaffinity(0, set(cpus[:-1]))
                stack.callback(os.sched_setaffinity, 0, set(cpus))
                res["configs_pinned"] = {"simulator": cpus[-1], "clients": cpus[:-1]}
            inv = fleet(n, lambda i, r: IPv4Address(addrs[i]))
            access = stack.enter_context(Access(inv, {"NETOPS_SSH_KEY": sim.client_key, "ANSIBLE_SSH_COMMON_ARGS":
                                                      f"-o UserKnownHostsFile={sim.known_hosts}"}, port=port, timeout=30))
            sim_cpu = lambda: proc_cpu(sim.proc.pid)
        else:
            inv = fleet(n, lambda i, r: r.management)
            access = stack.enter_context(Access(inv, timeout=30))
        remotes = {d: str(tmp / "stores" / d / "configs.git") for d, dev in inv.devices.items()
                   if dev.role == Role.backup_store}
        fetched_at = []
        cpu0, s0, t0 = _cpu(), sim_cpu(), time.monotonic()
        rep = backup_configs(inv, access=access, remotes=remotes, workdir=tmp / "state/configs", workers=workers,
                             progress=lambda n=1, label=None: fetched_at.append(time.monotonic()))
        suite, cpu, s_cpu = time.monotonic() - t0, _cpu() - cpu0, sim_cpu() - s0
        fetch = max(fetched_at) - t0
        if simulator:  # what was archived is the device's config, filtered and redacted
            store = store_of(inv, inv.devices["sim00000"].site).id
            stored = subprocess.run(["git", "-C", remotes[store], "show", f"main:{inv.devices['sim00000'].site}/sim00000.cfg"],
                                    capture_output=True, text=True, check=True).stdout
            assert stored == filters.clean("frr", outputs["sim00000"][CONFIG_COMMAND]), stored[:200]
        res.update({"configs_ok": rep["ok"], "configs_failed": rep["failed"],
                    "configs_errors": sorted({d["error"] for d in rep["devices"] if d["error"]})[:3],
                    "configs_seconds": round(suite, 2), "configs_fetch_seconds": round(fetch, 2),
                    "configs_archive_seconds": round(suite - fetch, 2), "configs_client_cpu_seconds": round(cpu, 2)})
        if simulator:
            res["configs_simulator_cpu_seconds"] = round(s_cpu, 2)

        lg = access.login("sim00000")
        ssh = shlex.join(["ssh", *access.ssh_options("sim00000", 30)])  # the access layer's own OpenSSH options
        out = tmp / "plain"
        out.mkdir()
        devs = [d for d in inv.devices.values() if d.id.startswith("sim")]
        cpu0, s0, t0 = _cpu(), sim_cpu(), time.monotonic()
        subprocess.run(["xargs", "-P", str(workers), "-L", "1", "sh", "-c",
                        f"{ssh} \"$0\" {shlex.quote(CONFIG_COMMAND)} > {out}/\"$1\".cfg"],
                       input="\n".join(f"{lg.username}@{d.management} {d.id}" for d in devs), text=True, check=False)
        plain, cpu, s_cpu = time.monotonic() - t0, _cpu() - cpu0, sim_cpu() - s0
        res.update({"anchor_plain_ssh_seconds": round(plain, 2), "anchor_client_cpu_seconds": round(cpu, 2),
                    "anchor_plain_ssh_ok": sum("\nhostname " in f.read_text() for f in out.iterdir()),
                    "configs_ratio": round(suite / plain, 2),
                    "configs_goal_met": rep["failed"] == 0 and suite <= GOAL_S})
        if simulator:
            res["anchor_simulator_cpu_seconds"] = round(s_cpu, 2)
    return res


def bench_restic(mb: int, tmp: Path) -> dict:
    pw = secrets.token_hex(16)
    os.environ["NETOPS_BACKUP_STATE"] = str(tmp / "state")
    data = tmp / "data.bin"
    with open(data, "wb") as fh:  # half random, half repetitive: like a dump
        fh.writelines(os.urandom(512 * 1024) + bytes(512 * 1024) for _ in range(mb))
    asset = Asset("bench:files", "bench", "huadu", "guangdong", "files", f"cat {data}", "/bench/data.bin")
    t0 = time.monotonic()
    out = run_store(Repo("bench", str(tmp / "suite"), pw), None, [asset], lambda d: ["sh", "-c"], policy(), ["files"])
    suite = time.monotonic() - t0
    plain_repo = Repo("plain", str(tmp / "plain-repo"), pw)
    t0 = time.monotonic()
    plain_repo.restic("init")
    with open(data, "rb") as fh:
        plain_repo.restic("backup", "--stdin", "--stdin-filename", "/bench/data.bin", stdin=fh)
    plain = time.monotonic() - t0
    return {"restic_mb": mb, "restic_ok": out["error"] is None and out["assets"][0]["ok"],
            "restic_error": out["error"] or out["assets"][0]["error"], "restic_suite_seconds": round(suite, 2),
            "anchor_plain_restic_seconds": round(plain, 2), "restic_suite_mb_s": round(mb / suite, 1),
            "restic_ratio": round(suite / plain, 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=32)
    ap.add_argument("--mb", type=int, default=256)
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--simulator", dest="simulator", action="store_true", default=True,
                      help="devices are SSH simulators on loopback (default)")
    mode.add_argument("--lab", dest="simulator", action="store_false",
                      help="devices are the lab's FRR routers (eval \"$(netops lab env)\" first)")
    ap.add_argument("--skip-configs", action="store_true", help="restic only")
    a = ap.parse_args()
    res = {"bench": "backup", "load1_start": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory() as t:
        if not a.skip_configs:
            (Path(t) / "c").mkdir()
            res.update(bench_configs(a.devices, a.workers, Path(t) / "c", a.simulator))
        (Path(t) / "r").mkdir()
        res.update(bench_restic(a.mb, Path(t) / "r"))
    res["load1_end"] = os.getloadavg()[0]
    res["ok"] = res["restic_ok"] and (a.skip_configs or res["configs_goal_met"])
    return finish(res)


if __name__ == "__main__":
    sys.exit(main())
