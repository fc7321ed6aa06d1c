"""Rebuilding the backup catalogue from the backups themselves: `netops backup status --rebuild`.

Each province store's restic repository names every snapshot's asset in its tags (asset, kind,
site, province, device); its DR store's copies carry the original's id; each store's config archive
holds one file per device (SITE/DEVICE.cfg). From them every asset gets its newest backup, its time,
size and copies again. Two things live only in the catalogue and cannot come back: the verification
state (run `netops backup verify`) and the per-table source fingerprints of database dumps (a database
snapshot's tag holds their digest, which verification compares; snapshots taken before that tag existed
have neither, until the next `netops backup run`). The file it replaces is kept aside by ``catalogue.replace``.

Every `netops backup verify` first brings its scope's part of the catalogue up to the same repositories
(``refresh``): assets the catalogue lacks are added (a host that takes none of its scope's backups,
the province's monitor host, starts with none) and entries whose asset has a newer snapshot there are
moved to it — merged into the catalogue rather than replacing it.
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

from jinbao_netops.access import Access
from jinbao_netops.errors import DeviceError
from jinbao_netops.inventory import Inventory

from . import catalogue
from .configs import Archive, ArchiveError, archive_exists, remote_of
from .jobs import FINGERPRINT_TAG, service_of
from .remote import dr_store_of, state_dir, store_of
from .restic import Repo, ResticError, tags_of

LOST = ("verification state (run `netops backup verify`); database fingerprints per table (a database snapshot's "
        "tag holds their digest: a differing restore is found, not which table; older snapshots have none, the next "
        "`netops backup run` records them) 校验状态与逐表数据库指纹不在仓库中（快照标签只含指纹摘要）")


def _time(snap: dict) -> float:
    return datetime.fromisoformat(snap["time"]).timestamp()


def from_snapshots(repo: Repo, dr: str | None, copied: set[str]) -> dict[str, dict]:
    """asset id → entry, from the newest snapshot of each asset in ``repo``; ``copied``: the ids of the
    snapshots the DR store ``dr`` holds a copy of."""
    newest: dict[str, dict] = {}
    for snap in repo.snapshots():
        aid = tags_of(snap).get("asset")
        if aid and (aid not in newest or _time(snap) > _time(newest[aid])):
            newest[aid] = snap
    out = {}
    for aid, snap in newest.items():
        tags, summary = tags_of(snap), snap.get("summary") or {}  # restic ≥ 0.17 records a summary
        service, database = service_of(aid)
        when = _time(snap)
        out[aid] = {"device": tags.get("device"), "site": tags.get("site"), "province": tags.get("province"),
                    "kind": tags.get("kind"), "store": repo.name, "dr_store": dr,
                    "last_attempt": when, "last_ok": True, "last_success": when, "snapshot": snap["id"][:8],
                    "size": summary.get("total_bytes_processed"),
                    "duration": (datetime.fromisoformat(summary["backup_end"]).timestamp()
                                 - datetime.fromisoformat(summary["backup_start"]).timestamp())
                    if "backup_end" in summary else None,
                    "offsite": snap["id"][:8] in copied, "service": service, "database": database,
                    "filename": (snap.get("paths") or [None])[0]}
        if FINGERPRINT_TAG in tags:  # a database snapshot's source fingerprint, as a digest
            out[aid]["fingerprint_digests"] = {snap["id"][:8]: tags[FINGERPRINT_TAG]}
    return out


def from_archive(inv: Inventory, archive: Archive, store: str, dr: str | None, dr_head: str | None) -> dict[str, dict]:
    """DEVICE:config → entry, from the files at the archive's HEAD (``dr_head``: the DR copy's HEAD).
    A device's last success is the last commit that changed its file: a run that changed nothing commits nothing."""
    head = archive.head()
    out = {}
    for rel, (size, when) in archive.files().items():
        dev = Path(rel).stem
        if dev not in inv.devices:
            continue  # an archived device the inventory no longer has
        site = inv.devices[dev].site
        out[f"{dev}:config"] = {"device": dev, "site": site, "province": (inv.province_of(site) or inv.sites[site]).id,
                                "kind": "configs", "store": store, "dr_store": dr, "last_attempt": when, "last_ok": True,
                                "last_success": when, "snapshot": head[:12], "size": size, "duration": None,
                                "offsite": dr_head == head, "filename": rel}
    return out


def read(inv: Inventory, access: Access | None, stores: set[str], *, archives: bool = True,
         repos: dict[str, Repo] | None = None, remotes: dict[str, str] | None = None
         ) -> tuple[dict[str, dict], list[str], list[str]]:
    """Read the restic repositories of ``stores`` and, with ``archives``, their config archives
    (``repos`` and ``remotes`` replace the access layer's, tests). Returns (asset id → entry, what was
    read, one line per store part that could not be read)."""
    assets: dict[str, dict] = {}
    problems: list[str] = []
    done: list[str] = []
    for sid in sorted(stores):
        drdev = dr_store_of(inv, inv.devices[sid])
        dr = drdev.id if drdev else None
        try:
            repo = repos[sid] if repos is not None else Repo.on_store(access, sid)
            if repo.exists():
                copied: set[str] = set()
                try:
                    dr_repo = (repos.get(dr) if repos is not None else Repo.on_store(access, dr)) if dr else None
                    if dr_repo is not None and dr_repo.exists():
                        copied = {s.get("original", "")[:8] for s in dr_repo.snapshots()}
                except (DeviceError, ResticError) as e:
                    problems.append(f"{dr}: restic repository 备份仓库 (off-site copies unknown): {e}")
                assets.update(from_snapshots(repo, dr, copied))
                done.append(f"{sid} restic")
        except (DeviceError, ResticError) as e:
            problems.append(f"{sid}: restic repository 备份仓库: {e}")
        if not archives:
            continue
        archive = None
        try:
            remote, store, ssh = remote_of(access, sid, remotes)
            if archive_exists(access, store, remote):
                archive = Archive(state_dir() / "configs" / sid, remote, ssh)
                archive.open()
                dr_head = None
                if dr:
                    dr_remote, dr_store, dr_ssh = remote_of(access, dr, remotes)
                    dr_head = archive.remote_head(dr_remote, dr_ssh) if archive_exists(access, dr_store, dr_remote) else None
                assets.update(from_archive(inv, archive, sid, dr, dr_head))
                done.append(f"{sid} configs.git")
        except (ArchiveError, DeviceError, OSError) as e:
            problems.append(f"{sid}: config archive 配置归档: {e}")
        finally:
            if archive:
                archive.close()
    return assets, done, problems


def rebuild(inv: Inventory, access: Access | None, *, repos: dict[str, Repo] | None = None,
            remotes: dict[str, str] | None = None) -> dict:
    """Read every province store's repository and archive (``repos`` and ``remotes`` replace the
    access layer's, tests) and install the catalogue they give. A store that cannot be read is a
    problem; the rebuilt catalogue then replaces only a corrupt one (a partial rebuild is better than
    none, never better than a good one). Returns {assets, read, problems, installed, aside (the file
    replaced, kept), lost}."""
    stores = {st.id for s in inv.sites if (st := store_of(inv, s))}
    assets, done, problems = read(inv, access, stores, repos=repos, remotes=remotes)
    keep = False
    if problems:
        try:
            catalogue.load()
            keep = True  # a good catalogue stays
        except catalogue.CatalogueError:
            pass
    aside = None if keep else catalogue.replace({"assets": assets, "verify_round": 0})
    return {"assets": len(assets), "read": done, "problems": problems, "installed": not keep,
            "aside": str(aside) if aside else None, "lost": LOST}


# what a newer snapshot in the repository replaces in a catalogue entry; the rest (verification
# history and fingerprints per snapshot, failed attempts after it) is only the catalogue's
NEWER = ("device", "site", "province", "kind", "store", "dr_store", "last_success", "snapshot", "size", "duration",
         "offsite", "service", "database", "filename")


def refresh(inv: Inventory, access: Access | None, devices: set[str], *, repos: dict[str, Repo] | None = None) -> dict:
    """`backup verify`: the catalogue's entries for ``devices`` brought up to the restic repositories of
    the stores that back them up (one snapshot listing per repository). An asset the catalogue lacks
    is added (a host whose catalogue holds none of the scope's backups: the monitor host's service,
    the nodes take them); an entry whose asset has a newer snapshot there is moved to it (the nodes'
    timers keep backing up, retention forgets the old snapshots). A merge under the catalogue's lock,
    not a replacement: other scopes' entries, and what only the catalogue knows — verification and
    fingerprints of each snapshot, a failed attempt after the newest snapshot — stay, so nothing is
    set aside; the newer snapshot itself is unverified until verified. Config archives are not read:
    verification does not cover them. Returns {added, updated (asset ids), read, problems, lost}."""
    stores = {st.id for d in devices if (st := store_of(inv, inv.devices[d].site))}
    assets, done, problems = read(inv, access, stores, archives=False, repos=repos)
    found = {aid: e for aid, e in assets.items() if e["device"] in devices}
    added, updated = [], []
    if found:
        with catalogue.edit() as cat:  # under the lock: a backup recorded meanwhile is not overwritten
            for aid, new in sorted(found.items()):
                old = cat["assets"].get(aid)
                if old is None:
                    cat["assets"][aid] = new
                    added.append(aid)
                elif new["snapshot"] != old.get("snapshot") and new["last_success"] > (old.get("last_success") or 0):
                    _newer(old, new)
                    updated.append(aid)
    return {"added": added, "updated": updated, "read": done, "problems": problems, "lost": LOST}


def _newer(old: dict, new: dict) -> None:
    """Move the catalogue entry ``old`` to the repository's newer snapshot ``new``."""
    old.update({k: new[k] for k in NEWER})
    if new["last_success"] >= (old.get("last_attempt") or 0):  # the last attempt known is that snapshot
        old.update(last_attempt=new["last_success"], last_ok=True)
        old.pop("last_error", None)
    if "fingerprint_digests" in new:
        old["fingerprint_digests"] = dict(list({**old.get("fingerprint_digests", {}),
                                                **new["fingerprint_digests"]}.items())[-20:])
    for k in ("verify_ok", "verify_error"):  # the old snapshot's verdict; `verified` keeps it per snapshot
        old.pop(k, None)
