"""Device-configuration archive: running configs pulled concurrently into one git repository per
province, kept on the province's backup store.

Each store holds a bare repository (STORE_ROOT/configs.git); the ops host keeps a working clone per
store under the backup state directory, writes one file per device (SITE/DEVICE.cfg), commits only
when something changed and pushes. A device that fails is reported and keeps its last archived
file; the others go on.
"""
from __future__ import annotations

import fcntl
import json
import os
import shlex
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from inventory import Device, Inventory
from netops.files import write_atomic

from . import filters
from .remote import (
    STORE_ROOT,
    Login,
    RemoteError,
    login,
    run,
    scope_devices,
    state_dir,
    store_of,
)

Fetcher = Callable[[Device], str]  # the raw running configuration of a device, or raises


# --- fetching ----------------------------------------------------------------------------------
def ssh_fetcher(inv: Inventory, timeout: float = 30) -> Fetcher:
    """The platform table decides how: a one-shot SSH exec (cli_exec) or an interactive netmiko session."""

    def fetch(dev: Device) -> str:
        p = dev.platform_info
        lg = login(inv, dev)
        if p.cli_exec:
            cmd = p.cli_exec.format(command=shlex.quote(p.show_running))
            return run(lg, cmd, timeout=timeout).stdout.decode(errors="replace")
        return _netmiko(lg, dev, timeout)

    return fetch


def _netmiko(lg: Login, dev: Device, timeout: float) -> str:
    from netmiko import ConnectHandler
    from netmiko.exceptions import NetmikoBaseException

    p = dev.platform_info
    try:
        with ConnectHandler(device_type=p.netmiko_device_type, host=lg.host, username=lg.username,
                            key_file=lg.key_file, use_keys=bool(lg.key_file), password=lg.password or "",
                            conn_timeout=timeout, auth_timeout=timeout, banner_timeout=timeout) as conn:
            if p.paging_off:
                conn.send_command(p.paging_off)
            return conn.send_command(p.show_running, read_timeout=timeout)
    except (NetmikoBaseException, OSError, EOFError) as e:
        raise RemoteError(f"{lg.host}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None


# --- the git archive ---------------------------------------------------------------------------
class ArchiveError(Exception):
    pass


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
        write_atomic(self.dir / rel, text)

    def stage(self, rels: list[str]) -> dict[str, str]:
        """Stage the files; returns rel → unified diff for each that changed."""
        if not rels:
            return {}
        self.git("add", "--", *rels)
        names = self.git("diff", "--cached", "--name-only", "-z").stdout.split("\0")
        return {n: self.git("diff", "--cached", "--no-color", "--", n).stdout for n in names if n}

    def commit(self, message: str) -> str | None:
        if self.git("diff", "--cached", "--quiet", check=False).returncode == 0:
            return None
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD").stdout.strip()

    def push(self) -> None:
        if self.git("rev-parse", "-q", "--verify", "HEAD", check=False).returncode == 0:
            self.git("push", "-q", "origin", "HEAD:refs/heads/main")

    def log(self, n: int = 20) -> list[str]:
        return self.git("log", f"-{n}", "--format=%H %s", check=False).stdout.splitlines()


def ensure_bare(store_login: Login | None, path: str) -> None:
    """Create the bare repository on the store if missing (idempotent); local path when no login."""
    script = (f"test -d {shlex.quote(path)}/objects || "
              f"{{ sudo install -d -o $(id -u) -g $(id -g) {shlex.quote(os.path.dirname(path))} && "
              f"git init -q --bare -b main {shlex.quote(path)}; }}")
    if store_login is None:
        if not Path(path, "objects").is_dir():
            subprocess.run(["git", "init", "-q", "--bare", "-b", "main", path], check=True, capture_output=True)
        return
    run(store_login, script, timeout=30)


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
        except (RemoteError, OSError) as e:
            return dev.id, (None, str(e), time.monotonic() - t0)
        finally:
            progress(1, dev.id)

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(devices)))) as pool:
        return dict(pool.map(one, devices))


def network_devices(inv: Inventory, scope: str | None) -> list[Device]:
    return [inv.devices[d] for d in scope_devices(inv, scope) if inv.devices[d].platform_info.kind == "network"]


def backup_configs(inv: Inventory, scope: str | None = None, *, fetcher: Fetcher | None = None,
                   remotes: dict[str, str] | None = None, workdir: Path | None = None, workers: int = 32,
                   timeout: float = 30, progress=lambda n=1, label=None: None) -> dict:
    """Archive the running configs of the scope's network devices. ``remotes`` (store id → git URL)
    replaces the stores' SSH URLs (tests); ``fetcher`` replaces SSH (tests, bench)."""
    started = datetime.now(timezone.utc)
    t0 = time.monotonic()
    fetcher = fetcher or ssh_fetcher(inv, timeout)
    workdir = workdir or state_dir() / "configs"
    devs = network_devices(inv, scope)
    by_store: dict[str, list[Device]] = {}
    unassigned = []
    for dev in devs:
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
        try:
            if remotes is not None:
                remote, store_login, ssh_cmd = remotes[sid], None, None
            else:
                store_login = login(inv, inv.devices[sid])
                ssh_cmd = shlex.join(store_login.ssh()[:-1])
                remote = f"{store_login.username}@{store_login.host}:{STORE_ROOT}/configs.git"
            sr.remote = remote
            ensure_bare(store_login, f"{STORE_ROOT}/configs.git" if store_login else remote)
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
        except (ArchiveError, RemoteError, OSError) as e:
            sr.error = str(e)
            diffs = {}
        finally:
            if archive:
                archive.close()
        stores.append(sr)
        for d in ds:
            text, err, secs = fetched[d.id]
            rel = rels.get(d.id)
            ok = text is not None and sr.error is None
            results.append(DeviceResult(d.id, sid, ok, changed=ok and rel in diffs,
                                        error=err or (sr.error if text is not None else None),
                                        seconds=round(secs, 3), diff=diffs.get(rel, "") if ok else ""))
    report = {
        "kind": "configs", "started": started.isoformat(timespec="seconds"), "scope": scope,
        "seconds": round(time.monotonic() - t0, 3),
        "devices": [asdict(r) for r in sorted(results, key=lambda r: r.device)],
        "stores": [asdict(s) for s in stores], "unassigned": unassigned,
        "ok": sum(r.ok for r in results), "failed": sum(not r.ok for r in results),
        "changed": sum(r.changed for r in results),
    }
    report["report"] = str(_save_report(workdir.parent / "reports", report))
    return report


def _save_report(folder: Path, report: dict) -> Path:
    path = folder / f"configs-{report['started'].replace(':', '')}-{os.getpid()}.json"
    return write_atomic(path, json.dumps(report, ensure_ascii=False, indent=1))
