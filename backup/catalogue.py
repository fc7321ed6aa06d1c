"""The backup catalogue: per asset its last success, size, duration, last verification and copies,
kept on the ops host (state dir) and exported as Prometheus metrics (textfile format) so
"backup stale" alerts can fire.

A catalogue that does not read is an error, never an empty catalogue (that would report every
backup as missing and let the next run overwrite the history): it stays as it is until
`netops backup status --rebuild` (``backup.rebuild``) rebuilds it from the repositories and keeps
it aside.
"""
from __future__ import annotations

import fcntl
import json
import os
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from jinbao_netops.errors import NetopsError
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


class CatalogueError(NetopsError):
    """The catalogue cannot be read or is not a catalogue: the command stops (exit status 4) and the
    file is left as it is, for ``rebuild`` to keep aside."""


@contextmanager
def _locked():
    p = path()
    p.parent.mkdir(parents=True, exist_ok=True)  # the backup state directory
    with open(p.parent / ".catalogue.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield p


@contextmanager
def edit():
    """Read-modify-write of the catalogue under an exclusive lock; written atomically, metrics refreshed.
    A corrupt catalogue raises CatalogueError before anything is written."""
    with _locked() as p:
        cat = load()
        yield cat
        _write(p, cat)


def load() -> dict:
    """The catalogue; empty before the first backup. Never guessed: a file that does not read as a
    catalogue is a CatalogueError naming what is wrong (without its content)."""
    p = path()
    try:
        cat = _parse(p.read_bytes())
    except FileNotFoundError:
        return {"assets": {}, "verify_round": 0}
    except OSError as e:
        raise CatalogueError(f"{p}: cannot read the backup catalogue 无法读取备份目录: {e.strerror or e}") from None
    except ValueError as e:
        raise CatalogueError(f"{p}: the backup catalogue is corrupt 备份目录已损坏 ({e}); left as it is — "
                             "`netops backup status --rebuild` rebuilds it from the backup repositories "
                             "and keeps this file aside") from None
    return cat


def _parse(raw: bytes) -> dict:
    try:
        cat = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise ValueError(f"not UTF-8 at byte {e.start}") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"not JSON: {e.msg}, line {e.lineno} column {e.colno}") from None
    if not isinstance(cat, dict):
        raise ValueError("not a JSON object")
    cat.setdefault("assets", {})
    cat.setdefault("verify_round", 0)
    if not isinstance(cat["assets"], dict) or not all(isinstance(a, dict) for a in cat["assets"].values()):
        raise ValueError("field 'assets': not an object of asset entries")
    if not isinstance(cat["verify_round"], int):
        raise ValueError("field 'verify_round': not an integer")
    return cat


def replace(cat: dict) -> Path | None:
    """Install a rebuilt catalogue. The file it replaces — corrupt or not — is kept beside it
    (``catalogue.json.corrupt-<time>`` or ``.replaced-<time>``), never lost; returns that path. A
    catalogue with no asset has nothing to keep: it is replaced, not set aside (None)."""
    with _locked() as p:
        aside = why = None
        if p.exists():
            try:
                why = "replaced" if _parse(p.read_bytes())["assets"] else None
            except (OSError, ValueError):
                why = "corrupt"
        if why:
            aside = p.with_name(f"{p.name}.{why}-{datetime.now(timezone.utc):%Y%m%dT%H%M%S.%fZ}")
            os.link(p, aside)  # the old file under its new name first: a crash leaves both names
        _write(p, cat)
        return aside


def _write(p: Path, cat: dict) -> None:
    write_atomic(p, json.dumps(cat, ensure_ascii=False, indent=1, sort_keys=True), 0o640)
    export(cat)


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
