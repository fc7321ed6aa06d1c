"""Evidence from the suite's own records (GB/T 22239-2019 8.1.4.9 a/b/c): the backup catalogue —
per asset its newest successful backup, its restore read-back (``netops backup verify``) and its
off-site copy at the DR store — and the DR drill journals (``netops drill run``); with the inventory's
replication pairs, what the audit engine gives each host to judge its real-time replica and hot standby on
(``dr_view``: the host itself is asked how its standbys stream).

A host's backup controls are judged on what the catalogue says of that host's assets, against the
policy's periods (params.yml): fresh and verified is 符合, stale, unverified or missing is 不符合,
and each finding quotes the catalogue entry it rests on. A catalogue that cannot be read is no
evidence at all: the controls then fall back to 需人工举证 with the reason, never to a verdict.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from jinbao_netops.backup import catalogue as backup_catalogue
from jinbao_netops.backup import replication
from jinbao_netops.backup.remote import state_dir
from jinbao_netops.inventory import Inventory
from jinbao_netops.inventory.model import Level

# the drill kind that promotes a database's standby (a failover, as 8.1.4.9 c's hot redundancy is proven)
FAILOVER = "database_failover"


@dataclass
class Records:
    assets: dict[str, dict[str, dict]]          # device → asset id → catalogue entry
    drills: list[dict]                          # drill journals, oldest first
    source: str                                 # where they were read (quoted as the evidence's command)
    now: float = field(default_factory=time.time)
    error: str = ""                             # the catalogue could not be read: no evidence


def _drill_devices(sc: dict) -> set[str]:
    fault = sc.get("fault") or {}
    return ({sc[k] for k in ("source", "standby", "router") if sc.get(k)}
            | set(fault.get("stop_services") or {}) | set(fault.get("links_down") or {}))


def _journal(path: Path) -> dict:
    """One drill journal, reduced to what the audit quotes; an unreadable one counts as a failed drill
    (a lost record must not hide a failure)."""
    try:
        jn = json.loads(path.read_text(encoding="utf-8"))
        sc = jn["scenario"]
        return {"id": sc["id"], "kind": str(sc.get("kind", "")), "started": str(jn["started"]), "verdict": str(jn["verdict"]),
                "devices": _drill_devices(sc), "standby": sc.get("standby"), "service": sc.get("service"), "journal": str(path)}
    except (OSError, ValueError, KeyError, TypeError) as e:
        return {"id": path.parent.name, "kind": "", "started": "", "verdict": f"unreadable 无法读取 ({type(e).__name__})",
                "devices": None, "standby": None, "service": None, "journal": str(path)}


def from_catalogue(cat: dict, drills: list[dict], source: str, now: float | None = None) -> Records:
    assets: dict[str, dict[str, dict]] = {}
    for aid, entry in cat.get("assets", {}).items():
        if entry.get("device"):
            assets.setdefault(entry["device"], {})[aid] = entry
    return Records(assets, sorted(drills, key=lambda d: d["started"]), source, time.time() if now is None else now)


def load() -> Records:
    """The ops host's records ($NETOPS_BACKUP_STATE): the catalogue and every drill journal."""
    folder = state_dir() / "drills"
    source = f"backup catalogue {backup_catalogue.path()}; drill journals {folder}/*/journal.json"
    try:
        cat = backup_catalogue.load()
    except backup_catalogue.CatalogueError as e:
        return Records({}, [], source, error=e.message)
    return from_catalogue(cat, [_journal(p) for p in sorted(folder.glob("*/journal.json"))], source)


def _started(d: dict) -> float | None:
    try:
        return datetime.fromisoformat(d["started"]).timestamp()
    except (ValueError, TypeError):
        return None


def dr_view(inv: Inventory, host: str, rec: Records, max_days: float) -> dict:
    """The audit's parameters for 8.1.4.9 b/c on ``host``: its database services, the replicas the inventory gives
    them (each with the engine and the business address it replicates from), the services it is itself the replica
    of (service → primary), the DR site it is at (itself the backup site), and the failover drills within
    ``max_days`` that promoted one of its replicas of that service, oldest first."""
    d = inv.devices[host]
    replicas = [{"standby": p.standby, "site": inv.devices[p.standby].site, "sync": p.sync, "slot": p.slot,
                 "service": p.service, "address": p.standby_address}
                for p in replication.pairs(inv) if p.primary == host]
    promoted = {(r["standby"], r["service"]) for r in replicas}
    drills = [x for x in rec.drills if x.get("kind") == FAILOVER and (x.get("standby"), x.get("service")) in promoted
              and (_started(x) or 0) >= rec.now - max_days * 86400]
    return {"dengbao_databases": list(d.services), "dengbao_replicas": replicas,
            "dengbao_replica_of": {d.replica.service: d.replica.of} if d.replica else {},
            "dengbao_failover_drills": drills,
            "dengbao_dr_site": inv.sites[d.site].name if inv.sites[d.site].level == Level.dr else ""}


def _when(ts) -> str:
    return datetime.fromtimestamp(float(ts), UTC).isoformat(timespec="seconds") if ts else "never 无"


def _age_h(rec: Records, ts) -> float | None:
    return None if not ts else (rec.now - float(ts)) / 3600


def _sub(label: str, ok: bool, detail: str) -> dict:
    return {"label": label, "ok": bool(ok), "detail": detail}


def _fresh(rec: Records, entry: dict, p: dict) -> tuple[bool, str]:
    age = _age_h(rec, entry.get("last_success"))
    ok = age is not None and age <= p["dengbao_backup_max_age_hours"]
    failed = "" if entry.get("last_ok", True) else f"; last attempt {_when(entry.get('last_attempt'))} failed: {entry.get('last_error', '')}"
    return ok, (f"last success {_when(entry.get('last_success'))}" + (f" ({age:.1f} h ago)" if age is not None else "")
                + f", snapshot {entry.get('snapshot') or '-'}{failed}")


def _last_verify(entry: dict) -> bool | None:
    """The result of the asset's last restore read-back: the newest of its verified snapshots (a new
    backup clears verify_ok until it is verified in turn, but not the earlier results)."""
    verified = entry.get("verified") or {}
    return list(verified.values())[-1] if verified else entry.get("verify_ok")


def _no_assets(host: str) -> list[dict]:
    return [_sub("backup on record 有备份记录", False, f"no asset of {host} in the backup catalogue 备份目录中无此主机")]


def data_backup(rec: Records, host: str, p: dict) -> list[dict]:
    """8.1.4.9 a): every asset of the host backed up within the period, its restore read-back passed
    within the verification period, and the last DR drill that touched the host passed."""
    assets = rec.assets.get(host, {})
    if not assets:
        return _no_assets(host)
    subs = []
    for aid, e in sorted(assets.items()):
        ok, detail = _fresh(rec, e, p)
        subs.append(_sub(f"{aid}: backed up within {p['dengbao_backup_max_age_hours']} h 备份在有效期内", ok, detail))
        age, last = _age_h(rec, e.get("verified_at")), _last_verify(e)
        subs.append(_sub(f"{aid}: restore verified within {p['dengbao_backup_verify_max_days']} d 恢复验证通过",
                         last is True and age is not None and age <= p["dengbao_backup_verify_max_days"] * 24,
                         f"verified {_when(e.get('verified_at'))}, result {last}"
                         + (f": {e['verify_error']}" if e.get("verify_error") else "")))
    drills = [d for d in rec.drills if d["devices"] is None or host in d["devices"]]
    if drills:
        d = drills[-1]
        subs.append(_sub(f"last DR drill {d['id']} passed 最近恢复演练通过", d["verdict"] == "passed",
                         f"{d['started']} {d['verdict']} ({d['journal']})"))
    return subs


def data_offsite(rec: Records, host: str, p: dict) -> list[dict]:
    """8.1.4.9 b): the newest backup of every asset of the host, within the period, has its copy at the DR store."""
    assets = rec.assets.get(host, {})
    if not assets:
        return _no_assets(host)
    subs = []
    for aid, e in sorted(assets.items()):
        fresh, detail = _fresh(rec, e, p)
        subs.append(_sub(f"{aid}: newest backup copied off-site 异地副本", fresh and bool(e.get("offsite")) and bool(e.get("dr_store")),
                         f"off-site copy at {e.get('dr_store') or 'no DR store 无灾备存储'}: {'yes 有' if e.get('offsite') else 'no 无'}; {detail}"))
    return subs


CHECKS = {"data-backup": data_backup, "data-offsite": data_offsite}


def excerpt(subs: list[dict]) -> str:
    return "\n".join(f"{s['label']}: {s['detail']}" for s in subs)
