"""Device-configuration archive: running configs pulled concurrently into one git repository per
province, kept on the province's backup store.

Each store holds a bare repository (STORE_ROOT/configs.git); the ops host keeps a working clone per
store under the backup state directory, writes one file per device (SITE/DEVICE.cfg), commits only
when something changed and pushes. A device that fails is reported and keeps its last archived
file; the others go on. The same history is then pushed off-site to the bare repository on the
province's DR store (fast-forward only: a DR copy that diverged is reported, never overwritten), and
every device's archived config is an asset of the backup catalogue (3-2-1: the device, the province
store, the DR store). A device the inventory declares no SSH access for is skipped, with the reason,
in the report's ``skipped`` (device → reason): neither a failure nor a catalogue asset.
"""
from __future__ import annotations

import fcntl
import json
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from jinbao_netops import escape
from jinbao_netops.access import Access, NoSshAccess, require_ssh
from jinbao_netops.errors import DeviceError, ToolError
from jinbao_netops.inventory import Device, Inventory
from jinbao_netops.inventory.platforms import redact
from jinbao_netops.files import write_atomic

from . import catalogue, filters
from .remote import STORE_ROOT, dr_store_of, state_dir, store_of

Fetcher = Callable[[Device], str]  # the raw running configuration of a device, or raises


# --- fetching ----------------------------------------------------------------------------------
def session_fetcher(access: Access) -> Fetcher:
    """The running configuration through the access layer's session (the platform table decides
    how: one SSH exec for FRR, an interactive vendor CLI with paging off for VRP, Comware, IOS)."""
    return lambda dev: access.session(dev.id).show_running()


# --- the git archive ---------------------------------------------------------------------------
class ArchiveError(ToolError):
    """git could not keep the archive (exit status 4 when it ends a command)."""


def _git(repo: Path, *args: str, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    p = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, env=env, timeout=120)
    if check and p.returncode != 0:
        raise ArchiveError(f"git {args[0]} in {repo}: {(p.stderr or p.stdout).strip().splitlines()[-1:] or ['failed']}")
    return p


class Archive:
    """One province's repository: a working clone on the ops host tracking the bare repo on the store.

    ``remote`` is a git URL (``netops@10.254.44.14:/srv/netops/configs.git`` over SSH, or a local path
    in tests). Held under an exclusive lock for the run: a leftover index.lock can then only be from a
    killed run, and is removed.
    """

    def __init__(self, workdir: Path, remote: str, ssh_command: str | None = None):
        self.dir, self.remote = workdir, remote
        self.env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
        if ssh_command:
            self.env["GIT_SSH_COMMAND"] = ssh_command
        self._lock = None

    def git(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return _git(self.dir, *args, check=check, env=self.env)

    def open(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock = open(self.dir.parent / f".{self.dir.name}.lock", "w")
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        (self.dir / ".git/index.lock").unlink(missing_ok=True)  # only a killed run leaves one behind
        if not (self.dir / ".git").is_dir():
            _git(self.dir, "init", "-q", "-b", "main", env=self.env)
            self.git("config", "user.name", "netops backup")
            self.git("config", "user.email", "netops@localhost")
            self.git("remote", "add", "origin", self.remote)
        self.git("remote", "set-url", "origin", self.remote)
        self.git("fetch", "-q", "origin")
        if self.git("rev-parse", "-q", "--verify", "refs/remotes/origin/main", check=False).returncode == 0:
            if self.git("rev-parse", "-q", "--verify", "HEAD", check=False).returncode != 0:
                self.git("reset", "-q", "--hard", "origin/main")
            elif self.git("merge", "-q", "--ff-only", "origin/main", check=False).returncode != 0 and \
                    self.git("merge-base", "--is-ancestor", "origin/main", "HEAD", check=False).returncode != 0:
                raise ArchiveError(f"{self.remote}: the store's history diverged from the working clone {self.dir}")
        self.git("reset", "-q")  # an index half-staged by a killed run

    def close(self) -> None:
        if self._lock:
            self._lock.close()
            self._lock = None

    def write(self, rel: str, text: str) -> None:
        (self.dir / rel).parent.mkdir(parents=True, exist_ok=True)  # SITE/ inside the working clone
        write_atomic(self.dir / rel, text, 0o640)  # a running config as the device holds it

    def stage(self, rels: list[str]) -> dict[str, str]:
        """Stage the files; returns rel → unified diff for each that changed."""
        if not rels:
            return {}
        self.git("add", "--", *rels)
        diffs: dict[str, str] = {}
        for part in self.git("diff", "--cached", "--no-color", "--no-renames").stdout.split("\ndiff --git "):
            if part.strip():  # one git call for the whole run; cut at each file's header
                text = part if part.startswith("diff --git ") else "diff --git " + part
                name = text.split("\n", 1)[0].split(" b/", 1)[1]
                diffs[name] = text if text.endswith("\n") else text + "\n"
        return diffs

    def commit(self, message: str) -> str | None:
        if self.git("diff", "--cached", "--quiet", check=False).returncode == 0:
            return None
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD").stdout.strip()

    def push(self) -> None:
        if self.git("rev-parse", "-q", "--verify", "HEAD", check=False).returncode == 0:
            self.git("push", "-q", "origin", "HEAD:refs/heads/main")

    def push_offsite(self, remote: str, ssh_command: str | None = None) -> None:
        """The same history to the DR store's repository; fast-forward only."""
        env = {**self.env, "GIT_SSH_COMMAND": ssh_command} if ssh_command else self.env
        if self.git("rev-parse", "-q", "--verify", "HEAD", check=False).returncode == 0:
            _git(self.dir, "push", "-q", remote, "HEAD:refs/heads/main", env=env)

    def files(self) -> dict[str, tuple[int, int]]:
        """Each archived file at HEAD → (its size, the Unix time of the commit that last changed it)."""
        if self.head() is None:
            return {}
        out = {}
        for line in self.git("ls-tree", "-r", "-l", "HEAD").stdout.splitlines():
            meta, rel = line.split("\t", 1)
            out[rel] = (int(meta.split()[3]), int(self.git("log", "-1", "--format=%ct", "--", rel).stdout))
        return out

    def remote_head(self, remote: str, ssh_command: str | None = None) -> str | None:
        """The commit another repository's main branch points at (None: it has none)."""
        env = {**self.env, "GIT_SSH_COMMAND": ssh_command} if ssh_command else self.env
        out = _git(self.dir, "ls-remote", remote, "refs/heads/main", env=env).stdout.split()
        return out[0] if out else None

    def head(self) -> str | None:
        p = self.git("rev-parse", "-q", "--verify", "HEAD", check=False)
        return p.stdout.strip() or None

    def log(self, n: int = 20) -> list[str]:
        return self.git("log", f"-{n}", "--format=%H %s", check=False).stdout.splitlines()


BARE = f"{STORE_ROOT}/configs.git"  # a store's archive


def ensure_bare(access: Access | None, store: str | None, remote: str) -> None:
    """Create the bare repository on the store if missing (idempotent); the local ``remote`` when no store."""
    path = BARE if store else remote
    script = (f"test -d {escape.shell(path)}/objects || "
              f"{{ sudo install -d -o $(id -u) -g $(id -g) {escape.shell(os.path.dirname(path))} && "
              f"git init -q --bare -b main {escape.shell(path)}; }}")
    if store is None:
        if not Path(path, "objects").is_dir():
            subprocess.run(["git", "init", "-q", "--bare", "-b", "main", path], check=True, capture_output=True)
        return
    access.session(store).run(script, timeout=30)


def archive_exists(access: Access | None, store: str | None, remote: str) -> bool:
    """Whether ``ensure_bare`` ever created the repository (a store never backed up to has none)."""
    if store is None:
        return Path(remote, "objects").is_dir()
    return access.session(store).run(f"test -d {escape.shell(BARE)}/objects && echo yes || true", timeout=30).strip() == "yes"


# --- a run ---------------------------------------------------------------------------------------
@dataclass
class DeviceResult:
    device: str
    store: str
    ok: bool
    changed: bool = False
    error: str | None = None
    seconds: float = 0.0
    diff: str = ""


@dataclass
class StoreResult:
    store: str
    remote: str
    commit: str | None = None
    pushed: bool = False
    error: str | None = None
    devices: list[str] = field(default_factory=list)
    dr_store: str | None = None      # where the off-site copy goes (None: the province has no DR store)
    offsite: bool = False            # the DR store's repository holds this run's history
    offsite_error: str | None = None


def fetch_all(devices: list[Device], fetcher: Fetcher, workers: int = 32, progress=lambda n=1, label=None: None
              ) -> dict[str, tuple[str | None, str | None, float]]:
    """device → (text, error, seconds); concurrent; one failure never stops the others."""

    def one(dev: Device):
        t0 = time.monotonic()
        try:
            text = filters.clean(dev.platform, fetcher(dev))
            if not text.strip():
                return dev.id, (None, "empty configuration returned", time.monotonic() - t0)
            return dev.id, (text, None, time.monotonic() - t0)
        except DeviceError as e:
            return dev.id, (None, e.detail, time.monotonic() - t0)
        except OSError as e:
            return dev.id, (None, str(e), time.monotonic() - t0)
        finally:
            progress(1, dev.id)

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(devices)))) as pool:
        return dict(pool.map(one, devices))


def network_devices(inv: Inventory, scope: str | None) -> list[Device]:
    return [inv.devices[d] for d in inv.scope(scope) if inv.devices[d].platform_info.kind == "network"]


def remote_of(access: Access, sid: str, remotes: dict[str, str] | None) -> tuple[str, str | None, str | None]:
    """A store's archive: (git URL, the store to create it on, GIT_SSH_COMMAND); ``remotes`` overrides (tests)."""
    if remotes is not None:
        return remotes[sid], None, None
    lg = access.login(sid)
    return f"{lg.username}@{lg.host}:{BARE}", sid, access.ssh_command(sid)


def backup_configs(inv: Inventory, scope: str | None = None, *, access: Access | None = None,
                   fetcher: Fetcher | None = None, remotes: dict[str, str] | None = None, workdir: Path | None = None,
                   workers: int = 32, timeout: float = 30, progress=lambda n=1, label=None: None) -> dict:
    """Archive the running configs of the scope's network devices. ``access`` reaches the devices and
    stores (default: a new one, closed at the end); ``remotes`` (store id → git URL, DR stores
    included) replaces the stores' SSH URLs (tests); ``fetcher`` replaces the sessions (tests, bench)."""
    if access is None:
        with Access(inv, timeout=timeout) as access:
            return backup_configs(inv, scope, access=access, fetcher=fetcher, remotes=remotes, workdir=workdir,
                                  workers=workers, timeout=timeout, progress=progress)
    started = datetime.now(timezone.utc)
    t0 = time.monotonic()
    fetcher = fetcher or session_fetcher(access)
    workdir = workdir or state_dir() / "configs"
    devs = network_devices(inv, scope)
    by_store: dict[str, list[Device]] = {}
    unassigned, skipped = [], {}
    for dev in devs:
        try:
            require_ssh(dev)  # its running config is only ever read over SSH
        except NoSshAccess as e:
            skipped[dev.id] = e.detail
            continue
        st = store_of(inv, dev.site)
        if st is None:
            unassigned.append(dev.id)
        else:
            by_store.setdefault(st.id, []).append(dev)
    fetched = fetch_all([d for ds in by_store.values() for d in ds], fetcher, workers, progress)

    results: list[DeviceResult] = []
    stores: list[StoreResult] = []
    for sid, ds in sorted(by_store.items()):
        sr = StoreResult(sid, "", devices=[d.id for d in ds])
        rels: dict[str, str] = {}
        diffs: dict[str, str] = {}
        archive = None
        dr = dr_store_of(inv, inv.devices[sid])
        sr.dr_store = dr.id if dr else None
        try:
            remote, store, ssh_cmd = remote_of(access, sid, remotes)
            sr.remote = remote
            ensure_bare(access, store, remote)
            archive = Archive(workdir / sid, remote, ssh_cmd)
            archive.open()
            for d in ds:
                text = fetched[d.id][0]
                if text is not None:
                    rels[d.id] = f"{d.site}/{d.id}.cfg"
                    archive.write(rels[d.id], text)
            diffs = archive.stage(list(rels.values()))
            changed = sorted(d for d, rel in rels.items() if rel in diffs)
            if changed:
                sr.commit = archive.commit(f"configs {started:%Y-%m-%dT%H:%M:%SZ}: {len(changed)} changed: "
                                           + ", ".join(changed[:20]))
            archive.push()
            sr.pushed = True
            head = archive.head()
            if dr is not None and remotes is not None and dr.id not in remotes:
                sr.offsite_error = f"no repository given for DR store {dr.id}"
            elif dr is not None:
                try:
                    dr_remote, dr_store, dr_ssh = remote_of(access, dr.id, remotes)
                    ensure_bare(access, dr_store, dr_remote)
                    archive.push_offsite(dr_remote, dr_ssh)
                    sr.offsite = True
                except (ArchiveError, DeviceError, OSError) as e:
                    sr.offsite_error = f"off-site copy to {dr.id}: {e}"
        except (ArchiveError, DeviceError, OSError) as e:
            sr.error = str(e)
            diffs = {}
            head = None
        finally:
            if archive:
                archive.close()
        stores.append(sr)
        _catalogue(inv, ds, fetched, rels, sr, head)
        for d in ds:
            text, err, secs = fetched[d.id]
            rel = rels.get(d.id)
            ok = text is not None and sr.error is None
            results.append(DeviceResult(d.id, sid, ok, changed=ok and rel in diffs,
                                        error=err or (sr.error if text is not None else None),
                                        seconds=round(secs, 3), diff=redact(d.platform, diffs.get(rel, "")) if ok else ""))
    report = {
        "kind": "configs", "started": started.isoformat(timespec="seconds"), "scope": scope,
        "seconds": round(time.monotonic() - t0, 3),
        "devices": [asdict(r) for r in sorted(results, key=lambda r: r.device)],
        "stores": [asdict(s) for s in stores], "unassigned": unassigned, "skipped": skipped,
        "ok": sum(r.ok for r in results), "changed": sum(r.changed for r in results),
        "offsite_failed": sum(bool(s.offsite_error) for s in stores),
    }
    report["failed"] = sum(not r.ok for r in results) + report["offsite_failed"]
    report["report"] = str(_save_report(workdir.parent / "reports", report))
    return report


def _catalogue(inv: Inventory, ds: list[Device], fetched: dict, rels: dict[str, str], sr: StoreResult,
               head: str | None) -> None:
    """Each device's archived config as a catalogue asset ``DEVICE:config``; its snapshot is the
    archive commit that holds it, its copies the province store and (when pushed) the DR store."""
    now = time.time()
    with catalogue.edit() as cat:
        for d in ds:
            text, err, secs = fetched[d.id]
            ok = text is not None and sr.pushed
            e = cat["assets"].setdefault(f"{d.id}:config", {})
            e.update({"device": d.id, "site": d.site, "province": (inv.province_of(d.site) or inv.sites[d.site]).id,
                      "kind": "configs", "store": sr.store, "dr_store": sr.dr_store, "last_attempt": now,
                      "last_ok": ok})
            if ok:
                e.update({"last_success": now, "snapshot": head[:12] if head else None,
                          "size": len(text.encode()), "duration": round(secs, 3), "offsite": sr.offsite,
                          "filename": rels[d.id]})
                e.pop("last_error", None)
            else:
                e["last_error"] = err or sr.error


def _save_report(folder: Path, report: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)  # under the backup state directory
    path = folder / f"configs-{report['started'].replace(':', '')}-{os.getpid()}.json"
    return write_atomic(path, json.dumps(report, ensure_ascii=False, indent=1), 0o640)
