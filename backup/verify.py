"""Verification: the repositories' structure and a rotating share of their data (`restic check`), and
every asset's newest snapshot read back in full: database dumps test-restored into a scratch
database and compared (row counts, checksums per table) with the source at backup time, file
archives read and listed. Evidence for each is stored as JSON under the state directory.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

from jinbao_netops.errors import DeviceError
from jinbao_netops.files import write_atomic
from jinbao_netops.inventory.engines import ENGINES

from . import catalogue
from .jobs import Shell, fingerprint_digest, runner
from .remote import state_dir
from .restic import Repo, ResticError


def check_repo(repo: Repo, subset: str) -> dict:
    p = repo.restic("check", f"--read-data-subset={subset}", check=False, timeout=7200)
    text = (p.stdout + p.stderr).decode(errors="replace")
    return {"repo": repo.name, "subset": subset, "ok": p.returncode == 0,
            "errors": [] if p.returncode == 0 else
            [line for line in text.splitlines() if "error" in line.lower() or "fail" in line.lower()][:20]}


def read_back(repo: Repo, entry: dict, aid: str, shell: Shell) -> dict:
    """Stream the asset's newest snapshot out of the repository; databases into a scratch database."""
    snap, fname = entry["snapshot"], entry["filename"]
    ev = {"asset": aid, "snapshot": snap, "repo": repo.name, "ok": False}
    if not entry.get("database"):
        p = subprocess.run(repo.cmd("dump", snap, fname), capture_output=True, env=repo.env(), timeout=7200)
        if p.returncode != 0:
            ev["error"] = "restic dump: " + (p.stderr.decode(errors="replace").strip().splitlines() or ["failed"])[-1]
            return ev
        ev.update(bytes=len(p.stdout), sha256=hashlib.sha256(p.stdout).hexdigest())
        if entry.get("service"):  # a base backup: what the engine can restore a whole server from
            missing = ENGINES[entry["service"]].cluster_backup_missing(p.stdout)
            ev.update(ok=not missing, basebackup=True)
            if missing:
                ev["error"] = "not a usable base backup, missing: " + ", ".join(missing)
            return ev
        listing = subprocess.run(["tar", "-tf", "-"], input=p.stdout, capture_output=True)
        ev.update(ok=listing.returncode == 0, files=len(listing.stdout.decode(errors="replace").splitlines()))
        if listing.returncode != 0:
            ev["error"] = "the archive does not list: " + listing.stderr.decode(errors="replace").strip()[:200]
        return ev
    eng = ENGINES[entry["service"]]
    scratch = f"netops_verify_{entry['database']}"[:60]
    run = runner(shell, entry["device"])
    try:
        run(eng.drop(scratch))
        run(eng.create(scratch))
        stream_restore(repo, snap, fname, shell, entry["device"], eng.load(scratch).line)
        got = eng.fingerprint(run, scratch)
        ev.update(scratch=scratch, node=entry["device"], tables=len(got), restored_fingerprint=got)
        err = source_differs(got, entry, snap, ev)
        if err:
            ev["error"] = err
        else:
            ev["ok"] = True
    except (DeviceError, ResticError) as e:
        ev["error"] = str(e)
    finally:
        try:
            run(eng.drop(scratch))
        except DeviceError:
            pass
    return ev


def source_differs(got: dict, entry: dict, snap: str, ev: dict) -> str | None:
    """Why a restored database's fingerprint ``got`` is not the source's at backup time (None: it is).
    The catalogue's per-table fingerprint where it has one (it names the differing tables), else the
    digest the snapshot's tag carried (a catalogue filled from the repositories); what was compared
    goes into the evidence ``ev``."""
    want = entry.get("fingerprints", {}).get(snap)
    ev["source_fingerprint"] = want
    if want is not None:
        if got == want:
            return None
        diff = sorted(t for t in set(got) | set(want) if got.get(t) != want.get(t))
        return f"restored data differs from the source at backup time in {len(diff)} table(s): {', '.join(diff[:5])}"
    digest = entry.get("fingerprint_digests", {}).get(snap)
    if digest is None:
        return "no source fingerprint recorded at backup time"
    ev.update(source_fingerprint_sha256=digest, restored_fingerprint_sha256=fingerprint_digest(got))
    if ev["restored_fingerprint_sha256"] == digest:
        return None
    return ("restored data differs from the source at backup time: its fingerprint's digest is not the one "
            "the snapshot's tag recorded (the per-table fingerprint is not in this catalogue: tables unknown)")


def stream_restore(repo: Repo, snap: str, fname: str, shell: Shell, device: str, load: str) -> None:
    """``restic dump`` piped straight into a load command on the node."""
    dump = subprocess.Popen(repo.cmd("dump", snap, fname), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=repo.env())
    try:
        target = subprocess.run([*shell(device), load], stdin=dump.stdout, capture_output=True, timeout=7200)
    finally:
        dump.stdout.close()
    err = dump.stderr.read().decode(errors="replace").strip()
    if dump.wait() != 0:
        raise ResticError(f"{repo.name}: restic dump {snap}: {err.splitlines()[-1] if err else 'failed'}")
    if target.returncode != 0:
        last = target.stderr.decode(errors="replace").strip().splitlines()
        raise DeviceError(device, f"loading the dump failed: {last[-1] if last else target.returncode}")


def verify_store(repo: Repo, dr: Repo | None, entries: dict[str, dict], shell: Shell, subsets: int, rnd: int) -> dict:
    subset = f"{rnd % subsets + 1}/{subsets}"
    checks = [check_repo(r, subset) for r in (repo, dr) if r is not None]
    evidence = [read_back(repo, e, aid, shell) for aid, e in sorted(entries.items()) if e.get("snapshot")]
    return {"store": repo.name, "checks": checks, "assets": evidence,
            "ok": all(c["ok"] for c in checks) and all(e["ok"] for e in evidence)}


def record(results: list[dict]) -> Path:
    """Store the evidence and mark the catalogue: verified_at, verify_ok and the verified snapshots."""
    now = time.time()
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = state_dir() / "evidence" / f"verify-{stamp}-{os.getpid()}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(results, ensure_ascii=False, indent=1), 0o640)
    with catalogue.edit() as cat:
        cat["verify_round"] += 1
        for st in results:
            repo_bad = not all(c["ok"] for c in st["checks"])
            for ev in st["assets"]:
                e = cat["assets"].setdefault(ev["asset"], {})
                ok = ev["ok"] and not repo_bad
                e.update(verified_at=now, verify_ok=ok, verify_error=ev.get("error") or
                         (None if ok else "restic check reported errors in the repository"), evidence=str(path))
                e.setdefault("verified", {})[ev["snapshot"]] = ok
                e["verified"] = dict(list(e["verified"].items())[-20:])
    return path
