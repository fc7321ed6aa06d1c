"""The backup catalogue: per asset its last success, size, duration, last verification and copies,
kept on the ops host (state dir) and exported as Prometheus metrics (textfile format) so
"backup stale" alerts can fire.
"""
from __future__ import annotations

import fcntl
import json
import time
from contextlib import contextmanager
from pathlib import Path

from jinbao_netops.files import write_atomic

from .remote import state_dir

METRICS = [
    ("netops_backup_last_success_timestamp_seconds", "gauge", "Unix time of the asset's last successful backup", "last_success"),
    ("netops_backup_size_bytes", "gauge", "Size of the asset's last backup (bytes read from the source)", "size"),
    ("netops_backup_duration_seconds", "gauge", "Duration of the asset's last backup", "duration"),
    ("netops_backup_last_verify_timestamp_seconds", "gauge", "Unix time of the asset's last verification", "verified_at"),
    ("netops_backup_verify_ok", "gauge", "1 if the asset's last verification passed", "verify_ok"),
    ("netops_backup_copies", "gauge", "Copies of the asset's newest backup (source + stores holding it)", "copies"),
    ("netops_backup_321_ok", "gauge", "1 if the asset has 3 copies, 2 places, 1 off-site", "ok_321"),
]


def path() -> Path:
    return state_dir() / "catalogue.json"


@contextmanager
def edit():
    """Read-modify-write of the catalogue under an exclusive lock; written atomically, metrics refreshed."""
    p = path()
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p.parent / ".catalogue.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        cat = load()
        yield cat
        write_atomic(p, json.dumps(cat, ensure_ascii=False, indent=1, sort_keys=True), 0o640)
        export(cat)


def load() -> dict:
    try:
        cat = json.loads(path().read_text())
    except (OSError, ValueError):
        cat = {}
    cat.setdefault("assets", {})
    cat.setdefault("verify_round", 0)
    return cat


def derived(a: dict) -> dict:
    """The fields computed from an entry: copies and 3-2-1 status."""
    copies = 1 + bool(a.get("snapshot")) + bool(a.get("offsite"))  # the source itself, the store, the DR site
    return {"copies": copies, "ok_321": int(copies >= 3 and bool(a.get("offsite"))),
            "verify_ok": None if a.get("verify_ok") is None else int(a["verify_ok"])}


def export(cat: dict) -> Path:
    lines = []
    for name, typ, help_, field in METRICS:
        lines += [f"# HELP {name} {help_}", f"# TYPE {name} {typ}"]
        for aid, a in sorted(cat["assets"].items()):
            v = {**a, **derived(a)}.get(field)
            if v is None:
                continue
            labels = ",".join(f'{k}="{a.get(k, "")}"' for k in ("province", "site", "device", "kind")) + f',asset="{aid}"'
            lines.append(f"{name}{{{labels}}} {int(v) if isinstance(v, (bool, int)) else repr(float(v))}")
    lines.append(f"netops_backup_catalogue_updated_timestamp_seconds {time.time():.0f}")
    out = state_dir() / "metrics" / "netops_backup.prom"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, "\n".join(lines) + "\n")
    return out
