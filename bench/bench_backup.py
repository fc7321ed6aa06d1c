"""Backup benchmarks, each against an anchor measured in the same run; prints ONE JSON line.

configs: N device configs fetched concurrently over SSH from the lab's FRR routers (each router
         stands in for N/16 devices), filtered, written and committed to a git archive — against the
         anchor: the same N fetches by plain `xargs -P W ssh ... vtysh` into files.
restic:  one stream backed up by the suite (ssh-less local source, run_store with retention) —
         against the anchor: plain `restic backup --stdin` of the same bytes into a fresh repo.

    eval "$(.venv/bin/netops lab env)"; .venv/bin/python bench/bench_backup.py [--devices 1000] [--mb 256]
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import inventory  # noqa: E402
from backup.configs import Archive, ensure_bare, fetch_all, ssh_fetcher  # noqa: E402
from backup.jobs import Asset, policy, run_store  # noqa: E402
from backup.remote import login  # noqa: E402
from backup.restic import Repo  # noqa: E402


def _cpu() -> float:
    """CPU seconds of this process and its waited-for children (the ssh clients, git): the ops host's
    share; the devices' sshd and vtysh run in the lab's containers and are not counted."""
    import resource

    return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                resource.getrusage(resource.RUSAGE_CHILDREN)))


def bench_configs(n: int, workers: int, tmp: Path) -> dict:
    inv = inventory.load(inventory.DEFAULT_INVENTORY)
    routers = sorted(d for d, dev in inv.devices.items() if dev.platform_info.kind == "network")
    devs = [inv.devices[routers[i % len(routers)]].model_copy(update={"id": f"dev{i:05d}"})
            for i in range(n)]
    real = {d.id: inv.devices[routers[i % len(routers)]] for i, d in enumerate(devs)}
    fetch = ssh_fetcher(inv)
    ensure_bare(None, str(tmp / "configs.git"))
    cpu0 = _cpu()
    t0 = time.monotonic()
    got = fetch_all(devs, lambda d: fetch(real[d.id]), workers)
    fetched = time.monotonic() - t0
    arch = Archive(tmp / "work", str(tmp / "configs.git"))
    arch.open()
    rels = []
    for d in devs:
        if got[d.id][0] is not None:
            rels.append(f"{real[d.id].site}/{d.id}.cfg")
            arch.write(rels[-1], got[d.id][0])
    arch.stage(rels)
    arch.commit("bench")
    arch.push()
    arch.close()
    suite = time.monotonic() - t0
    cpu = _cpu() - cpu0
    failed = sum(v[0] is None for v in got.values())

    lg = login(inv, real[devs[0].id])
    ssh = shlex.join(lg.ssh()[:-1])
    lines = "\n".join(f"{lg.username}@{real[d.id].management} {d.id}" for d in devs)
    out = tmp / "plain"
    out.mkdir()
    t0 = time.monotonic()
    subprocess.run(["xargs", "-P", str(workers), "-L", "1", "sh", "-c",
                    f"{ssh} \"$0\" \"vtysh -c 'show running-config'\" > {out}/\"$1\".cfg"],
                   input=lines, text=True, check=True)
    plain = time.monotonic() - t0
    return {"configs_devices": n, "configs_workers": workers, "configs_client_cpu_seconds": round(cpu, 2),
            "configs_failed": failed, "configs_seconds": round(suite, 2),
            "configs_fetch_seconds": round(fetched, 2), "configs_archive_seconds": round(suite - fetched, 2),
            "anchor_plain_ssh_seconds": round(plain, 2), "configs_ratio": round(suite / plain, 2)}


def bench_restic(mb: int, tmp: Path) -> dict:
    pw = secrets.token_hex(16)
    os.environ["NETOPS_BACKUP_STATE"] = str(tmp / "state")
    data = tmp / "data.bin"
    with open(data, "wb") as fh:  # half random, half repetitive: like a dump
        for _ in range(mb):
            fh.write(os.urandom(512 * 1024) + bytes(512 * 1024))
    asset = Asset("bench:files", "bench", "huadu", "guangdong", "files", f"cat {data}", "/bench/data.bin")
    t0 = time.monotonic()
    out = run_store(Repo("bench", str(tmp / "suite"), pw), None, [asset], lambda d: ["sh", "-c"], policy(), ["files"])
    suite = time.monotonic() - t0
    assert out["assets"][0]["ok"], out
    plain_repo = Repo("plain", str(tmp / "plain-repo"), pw)
    t0 = time.monotonic()
    plain_repo.restic("init")
    with open(data, "rb") as fh:
        plain_repo.restic("backup", "--stdin", "--stdin-filename", "/bench/data.bin", stdin=fh)
    plain = time.monotonic() - t0
    return {"restic_mb": mb, "restic_suite_seconds": round(suite, 2), "anchor_plain_restic_seconds": round(plain, 2),
            "restic_suite_mb_s": round(mb / suite, 1), "restic_ratio": round(suite / plain, 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=32)
    ap.add_argument("--mb", type=int, default=256)
    ap.add_argument("--skip-configs", action="store_true", help="restic only (no lab needed)")
    a = ap.parse_args()
    res = {"bench": "backup"}
    with tempfile.TemporaryDirectory() as t:
        if not a.skip_configs:
            (Path(t) / "c").mkdir()
            res.update(bench_configs(a.devices, a.workers, Path(t) / "c"))
        (Path(t) / "r").mkdir()
        res.update(bench_restic(a.mb, Path(t) / "r"))
    print(json.dumps(res))


if __name__ == "__main__":
    main()
