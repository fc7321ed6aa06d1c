"""Server files and databases into the province's restic repository, then off-site to its DR site.

An asset is one stream from one node: a node's files (/etc and declared paths, as tar) or one
database dump. Streams go straight from the node into ``restic backup --stdin`` on the ops host;
a stream whose command fails leaves no snapshot (the partial one is forgotten). A server the inventory
declares no SSH access for is skipped, with the reason (``skipped``), not failed.
"""
from __future__ import annotations

import hashlib
import json
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import yaml

from jinbao_netops import escape
from jinbao_netops.access import Access, NoSshAccess, require_ssh
from jinbao_netops.errors import DeviceError
from jinbao_netops.inventory import Inventory
from jinbao_netops.inventory.engines import ENGINES, Run

from . import catalogue
from .remote import dr_store_of, store_of
from .restic import Repo, ResticError

Shell = Callable[[str], list[str]]  # device id → argv prefix that runs one shell line on it
BASEBACKUP = "basebackup"           # DEVICE:SERVICE:basebackup, the asset of the engine's whole-server backup
FINGERPRINT_TAG = "fingerprint"     # a database snapshot's tag: fingerprint=<digest of the source's fingerprint>
POLICY = Path(__file__).with_name("policy.yml")


def policy(path: Path | None = None) -> dict:
    from jinbao_netops.errors import UsageError

    p = path or POLICY
    try:
        data = yaml.safe_load(p.read_text())
        for cls in ("files", "databases"):
            for k, v in data["retention"][cls].items():
                if k not in ("keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly") \
                        or not isinstance(v, int) or v < 0:
                    raise ValueError(f"retention.{cls}.{k}: a keep_* count ≥ 0")
        int(data["verify"]["read_data_subsets"])
        data.setdefault("paths", {}).setdefault("default", ["/etc"])
        data.setdefault("basebackup", [])
        if not isinstance(data["basebackup"], list) or not all(isinstance(d, str) for d in data["basebackup"]):
            raise ValueError("basebackup: a list of device ids")
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as e:
        raise UsageError(f"{p}: {e}") from None
    return data


@dataclass
class Asset:
    id: str
    device: str
    site: str
    province: str
    kind: str            # files | databases
    stream: str          # shell line on the node that writes the stream to stdout
    filename: str        # the stream's name inside the snapshot
    service: str | None = None
    database: str | None = None

    def tags(self) -> list[str]:
        return [f"asset={self.id}", f"kind={self.kind}", f"site={self.site}", f"province={self.province}",
                f"device={self.device}"]


def fingerprint_digest(fingerprint: dict) -> str:
    """The sha256 (hex) of a database fingerprint's canonical JSON: what a database snapshot's tag
    carries, so the source's fingerprint at backup time travels with the backup (a tag holds no
    table-sized value; a digest tells a restored copy that differs, not which table)."""
    canon = json.dumps(fingerprint, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canon.encode()).hexdigest()


def service_of(asset_id: str) -> tuple[str | None, str | None]:
    """The (service, database) an asset id of ``discover`` names: DEVICE:files has neither, a base
    backup only its service."""
    parts = asset_id.split(":")
    if len(parts) != 3:
        return None, None
    return parts[1], None if parts[2] == BASEBACKUP else parts[2]


def ssh_shell(access: Access) -> Shell:
    """Streams over OpenSSH, as the access layer builds its command line (key, strict known_hosts)."""
    return access.ssh_argv


def sh(shell: Shell, device: str, command: str, timeout: float = 120, input: bytes | None = None) -> str:
    try:
        p = subprocess.run([*shell(device), command], capture_output=True, timeout=timeout, input=input)
    except subprocess.TimeoutExpired:
        raise DeviceError(device, f"timed out after {timeout:g} s") from None
    if p.returncode != 0:
        err = p.stderr.decode(errors="replace").strip().splitlines()
        raise DeviceError(device, f"{command.split()[0:3]}: exit {p.returncode}: {err[-1] if err else ''}")
    return p.stdout.decode(errors="replace")


def runner(shell: Shell, device: str, timeout: float = 120) -> Run:
    """Runs the engine table's commands on ``device`` (each one's script on its stdin)."""
    return lambda cmd: sh(shell, device, cmd.line, timeout, None if cmd.input is None else cmd.input.encode())


def discover(inv: Inventory, scope: str | None, kinds: list[str], shell: Shell, pol: dict
             ) -> tuple[dict[str, list[Asset]], dict[str, str], dict[str, str]]:
    """store id → assets of the scope's servers; device → error for nodes that could not be listed;
    device → why it is skipped (no SSH access declared: its streams would go over SSH)."""
    from jinbao_netops.errors import UsageError

    for did in pol["basebackup"]:
        if did not in inv.devices or not inv.devices[did].services:
            raise UsageError(f"{POLICY}: basebackup: {did!r} is not a database server of the inventory")
    by_store: dict[str, list[Asset]] = {}
    errors: dict[str, str] = {}
    skipped: dict[str, str] = {}
    for did in inv.scope(scope):
        dev = inv.devices[did]
        store = store_of(inv, dev.site)
        if dev.platform_info.kind != "server" or store is None:
            continue
        try:
            require_ssh(dev)
        except NoSshAccess as e:
            skipped[did] = e.detail
            continue
        prov = (inv.province_of(dev.site) or inv.sites[dev.site]).id
        found = by_store.setdefault(store.id, [])
        if "files" in kinds:
            paths = pol["paths"].get(dev.role.value, pol["paths"]["default"])
            rel = " ".join(escape.shell(p.lstrip("/")) for p in paths)
            found.append(Asset(f"{did}:files", did, dev.site, prov, "files",
                               f"sudo tar --numeric-owner --ignore-failed-read -C / -cf - {rel}", f"/{did}/files.tar"))
        # a standby's databases are its primary's, dumped there (a read-only copy cannot take the test restore either)
        own = dev.primary_services
        if "databases" in kinds and did in pol["basebackup"]:
            role = inv.credentials[dev.credentials].username
            for svc in [s for s in own if ENGINES[s].cluster_backup]:
                eng = ENGINES[svc]
                found.append(Asset(f"{did}:{svc}:{BASEBACKUP}", did, dev.site, prov, "databases", eng.basebackup(role).line,
                                   f"/{did}/{svc}/{eng.cluster_backup_file}", svc))
        if "databases" in kinds:
            for svc in own:
                eng = ENGINES[svc]
                try:
                    dbs = eng.databases(runner(shell, did))
                except DeviceError as e:
                    errors[did] = str(e)
                    continue
                for db in dbs:
                    found.append(Asset(f"{did}:{svc}:{db}", did, dev.site, prov, "databases", eng.dump(db).line,
                                       f"/{did}/{svc}/{db}.{eng.dump_ext}", svc, db))
    return by_store, errors, skipped


@dataclass
class AssetResult:
    asset: str
    ok: bool
    snapshot: str | None = None
    size: int = 0
    seconds: float = 0.0
    error: str | None = None
    fingerprint: dict = field(default_factory=dict)
    partial: str | None = None  # a snapshot a failed stream left behind: run_store forgets it


def backup_asset(repo: Repo, asset: Asset, shell: Shell, timeout: float = 3600) -> AssetResult:
    t0 = time.monotonic()
    res = AssetResult(asset.id, False)
    try:
        if asset.database:
            res.fingerprint = ENGINES[asset.service].fingerprint(runner(shell, asset.device), asset.database)
        src = subprocess.Popen([*shell(asset.device), asset.stream], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            tags = asset.tags() + ([f"{FINGERPRINT_TAG}={fingerprint_digest(res.fingerprint)}"] if asset.database else [])
            tags = [a for t in tags for a in ("--tag", t)]
            p = subprocess.run(repo.cmd("backup", "--json", "--stdin", "--stdin-filename", asset.filename,
                                        "--host", asset.device, *tags),
                               stdin=src.stdout, capture_output=True, timeout=timeout, env=repo.env())
            src.stdout.close()
            src_err = src.stderr.read().decode(errors="replace")
            src_rc = src.wait(timeout=60)
        finally:
            if src.poll() is None:
                src.kill()
                src.wait()
        summary = next((json.loads(line) for line in p.stdout.decode().splitlines()
                        if line.startswith("{") and '"summary"' in line), None)
        if src_rc != 0:
            if summary:  # a partial stream made a snapshot: it must not pass for a backup
                res.partial = summary["snapshot_id"]
            last = src_err.strip().splitlines()
            raise DeviceError(asset.device, f"source exited {src_rc}: {last[-1] if last else ''}")
        if p.returncode != 0 or not summary:
            err = p.stderr.decode(errors="replace").strip().splitlines()
            raise ResticError(f"{repo.name}: restic backup: {err[-1] if err else f'exit {p.returncode}'}")
        res.ok, res.snapshot = True, summary["snapshot_id"][:8]
        res.size = int(summary.get("total_bytes_processed", 0))
    except (DeviceError, ResticError, OSError, subprocess.TimeoutExpired) as e:
        res.error = str(e)
    res.seconds = round(time.monotonic() - t0, 3)
    return res


def apply_retention(repo: Repo, pol: dict, kinds: list[str]) -> None:
    """Per asset: a snapshot's path (its stdin filename, /DEVICE/...) names its asset. Not by tags: a
    database snapshot's fingerprint tag differs from run to run, each would be a group of its own and
    nothing would ever be forgotten."""
    for cls in kinds:
        keep = [a for k, v in pol["retention"][cls].items() for a in (f"--{k.replace('_', '-')}", str(v))]
        repo.restic("forget", "--tag", f"kind={cls}", "--group-by", "host,paths", *keep, "--prune")


def run_store(repo: Repo, dr: Repo | None, assets: list[Asset], shell: Shell, pol: dict, kinds: list[str],
              workers: int = 4, progress=lambda n=1, label=None: None) -> dict:
    """Back up the assets into one store's repository, apply retention, copy off-site, update the catalogue."""
    out = {"store": repo.name, "dr": dr.name if dr else None, "error": None, "copied": False, "assets": []}
    try:
        repo.ensure()
    except (ResticError, DeviceError) as e:
        out["error"] = str(e)
        out["assets"] = [asdict(AssetResult(a.id, False, error=str(e))) for a in assets]
        progress(len(assets))
        return out

    def one(a: Asset) -> AssetResult:
        r = backup_asset(repo, a, shell)
        progress(1, a.id)
        return r

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(assets) or 1))) as pool:
        results = list(pool.map(one, assets))
    out["assets"] = [asdict(r) for r in results]
    try:
        partial = [r.partial for r in results if r.partial]
        if partial:  # now that no backup holds a lock: forget needs the repository to itself
            repo.restic("forget", *partial)
        apply_retention(repo, pol, sorted({a.kind for a in assets} & set(kinds)))
        if dr is not None:
            dr.ensure_copy_of(repo)
            dr.copy_from(repo)
            out["copied"] = True
    except (ResticError, DeviceError) as e:
        out["error"] = str(e)
    offsite = {s.get("original", "")[:8] for s in dr.snapshots()} if out["copied"] else set()
    now = time.time()
    with catalogue.edit() as cat:
        for a, r in zip(assets, results):
            e = cat["assets"].setdefault(a.id, {})
            e.update({"device": a.device, "site": a.site, "province": a.province, "kind": a.kind,
                      "store": repo.name, "dr_store": dr.name if dr else None, "last_attempt": now,
                      "last_ok": r.ok})
            if r.ok:
                e.update({"last_success": now, "snapshot": r.snapshot, "size": r.size, "duration": r.seconds,
                          "offsite": r.snapshot in offsite, "service": a.service, "database": a.database,
                          "filename": a.filename})
                if r.fingerprint or a.database:
                    e["fingerprints"] = {**e.get("fingerprints", {}), r.snapshot: r.fingerprint}
                    e["fingerprints"] = dict(list(e["fingerprints"].items())[-20:])
                e.pop("verify_ok", None)  # the newest snapshot is not verified yet
            else:
                e["last_error"] = r.error
    return out


def backup_servers(inv: Inventory, scope: str | None, kinds: list[str], *, access: Access | None = None,
                   shell: Shell | None = None, progress_factory=None, workers: int = 4) -> dict:
    if access is None:
        with Access(inv) as access:
            return backup_servers(inv, scope, kinds, access=access, shell=shell, progress_factory=progress_factory,
                                  workers=workers)
    started = datetime.now(timezone.utc)
    t0 = time.monotonic()
    shell = shell or ssh_shell(access)
    pol = policy()
    by_store, errors, skipped = discover(inv, scope, kinds, shell, pol)
    stores = []
    total = sum(len(v) for v in by_store.values())
    with (progress_factory("files/databases 文件与数据库", total) if progress_factory else _null()) as step:
        for sid, assets in sorted(by_store.items()):
            store = inv.devices[sid]
            try:
                repo = Repo.on_store(access, sid)
                drdev = dr_store_of(inv, store)
                dr = Repo.on_store(access, drdev.id) if drdev else None
            except (DeviceError, ResticError) as e:
                stores.append({"store": sid, "error": str(e), "copied": False,
                               "assets": [asdict(AssetResult(a.id, False, error=str(e))) for a in assets]})
                continue
            stores.append(run_store(repo, dr, assets, shell, pol, kinds, workers, step))
    failed = sum(not a["ok"] for s in stores for a in s["assets"]) + len(errors) + \
        sum(bool(s["error"]) for s in stores)
    return {"kind": "servers", "started": started.isoformat(timespec="seconds"), "scope": scope,
            "seconds": round(time.monotonic() - t0, 3), "stores": stores, "discovery_errors": errors, "skipped": skipped,
            "ok": sum(a["ok"] for s in stores for a in s["assets"]), "failed": failed}


class _null:
    def __enter__(self):
        return lambda n=1, label=None: None

    def __exit__(self, *a):
        return False
