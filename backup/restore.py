"""`backup restore ASSET --to NODE`: a database into a (standby) node, or a node's files into a
restore folder on a node (never over its live /etc). Guards, each lifted only by --force:
another province's snapshot, a snapshot that is not verified, and an existing database.
"""
from __future__ import annotations

import time

from jinbao_netops import escape
from jinbao_netops.access import Access
from jinbao_netops.errors import UsageError
from jinbao_netops.inventory.engines import ENGINES

from . import catalogue
from .jobs import FINGERPRINT_TAG, Shell, runner, ssh_shell
from .remote import dr_store_of, store_of
from .restic import Repo, tags_of
from .verify import source_differs, stream_restore

RESTORE_DIR = "/var/lib/netops-restore"


class Refused(UsageError):
    """A guard said no (exit status 2): the message says which and how to override."""


def repo_for(access: Access, province_store: str, from_dr: bool) -> Repo:
    inv = access.inv
    store = inv.devices[province_store]
    if from_dr:
        dr = dr_store_of(inv, store)
        if dr is None:
            raise UsageError(f"--from-dr: store {store.id} has no DR store")
        store = dr
    return Repo.on_store(access, store.id)


def restore(access: Access, asset: str, to: str, *, snapshot: str | None = None, force: bool = False,
            from_dr: bool = False, shell: Shell | None = None, repo: Repo | None = None) -> dict:
    """Restore an asset to device ``to``; ``shell`` and ``repo`` replace the access layer's (tests)."""
    inv = access.inv
    shell = shell or ssh_shell(access)
    cat = catalogue.load()["assets"]
    entry = cat.get(asset)
    if entry is None:
        raise UsageError(f"asset {asset!r}: not in the backup catalogue (see `netops backup status`)")
    if entry.get("kind") == "configs":
        raise UsageError(f"asset {asset!r}: a device configuration lives in the province's git archive "
                         f"({entry.get('store')}:/srv/netops/configs.git, file {entry.get('filename')}); "
                         "restore it with a configuration push, not `backup restore`")
    if to not in inv.devices:
        raise UsageError(f"--to {to}: no such device in the inventory")
    t0 = time.monotonic()
    repo = repo or repo_for(access, entry["store"], from_dr)
    snaps = repo.snapshots(f"asset={asset}")
    if not snaps:
        raise Refused(f"{repo.name}: no snapshot of {asset}")
    snap = next((s for s in snaps if snapshot and (s["id"].startswith(snapshot) or s.get("original", "").startswith(snapshot))),
                None) if snapshot else max(snaps, key=lambda s: s["time"])
    if snap is None:
        raise Refused(f"{repo.name}: snapshot {snapshot} of {asset} not found")
    sid = (snap.get("original") or snap["id"])[:8]  # the primary's id: what verification recorded
    tags = tags_of(snap)
    target_store = store_of(inv, inv.devices[to].site)
    target_prov = (inv.province_of(inv.devices[to].site) or inv.sites[inv.devices[to].site]).id
    if not force and tags.get("province") != target_prov:
        raise Refused(f"snapshot {sid} of {asset} belongs to province {tags.get('province')}, {to} is in "
                      f"{target_prov}; use --force to restore across provinces")
    verified = entry.get("verified", {}).get(sid)
    if not force and verified is not True:
        raise Refused(f"snapshot {sid} of {asset} {'failed' if verified is False else 'has not passed'} verification; "
                      "run `netops backup verify` or use --force")
    out = {"asset": asset, "snapshot": sid, "repo": repo.name, "to": to, "time": snap["time"],
           "target_store": target_store.id if target_store else None}
    if entry.get("database"):
        eng = ENGINES[entry["service"]]
        db = entry["database"]
        run = runner(shell, to)
        if eng.exists(run, db):
            if not force:
                raise Refused(f"{to}: database {db} exists ({entry['service']}); use --force to replace it")
            run(eng.drop(db))
        run(eng.create(db))
        stream_restore(repo, snap["id"], entry["filename"], shell, to, eng.load(db).line)
        got = eng.fingerprint(run, db)
        digests = {**entry.get("fingerprint_digests", {}),  # the snapshot's own tag: a catalogue filled from the repositories
                   **({sid: tags[FINGERPRINT_TAG]} if FINGERPRINT_TAG in tags else {})}
        differs = source_differs(got, {**entry, "fingerprint_digests": digests}, sid, {})
        out.update(database=db, tables=len(got), matches_source=differs is None, fingerprint=got,
                   **({"differs": differs} if differs else {}))
    else:
        folder = f"{RESTORE_DIR}/{asset.replace(':', '_')}/{sid}"
        stream_restore(repo, snap["id"], entry["filename"], shell, to,
                       f"sudo install -d -m 0700 {escape.shell(folder)} && sudo tar -C {escape.shell(folder)} -xf -")
        out.update(folder=folder)
    out["seconds"] = round(time.monotonic() - t0, 3)
    return out
