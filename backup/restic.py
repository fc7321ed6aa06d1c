"""restic repositories: one per province on its backup store, one copy at its DR site.

restic runs on the ops host and reaches a store's repository over SFTP as the operator
(``sftp:netops@STORE:/srv/netops/restic``). Why there and not on the nodes: the repository password
and the SSH key stay on the ops host (a node never holds credentials for the store, so a
compromised county server cannot delete its province's backups), and one restic binary drives
every repository. Sources are streamed: ``ssh NODE pg_dump ... | restic backup --stdin``.

The password is the store's ``restic_password`` credentials reference in the inventory, resolved
through ``inventory.access`` at the moment of use; restic gets it as RESTIC_PASSWORD in its
environment only (a copy's source as RESTIC_FROM_PASSWORD).
"""
from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
from dataclasses import dataclass, field

from jinbao_netops.inventory import Inventory
from jinbao_netops.files import write_atomic

from .remote import STORE_ROOT, Login, login, run, secret


class ResticError(Exception):
    pass


@dataclass
class Repo:
    """A restic repository: ``url`` (sftp:... or a local path), its password and, for sftp, the login
    that reaches it."""

    name: str                 # the store's device id
    url: str
    password: str = field(repr=False)
    login: Login | None = None

    @classmethod
    def on_store(cls, inv: Inventory, store_id: str) -> "Repo":
        """The repository on a backup store; RemoteError (that store only) when a credential is missing."""
        store = inv.devices[store_id]
        lg = login(inv, store)
        cred = inv.credentials[store.credentials]
        pw = secret(inv, store, "restic_password", cred.restic_password)
        return cls(store_id, f"sftp:{lg.username}@{lg.host}:{STORE_ROOT}/restic", pw, lg)

    def env(self, **extra: str) -> dict[str, str]:
        env = {**os.environ, "RESTIC_PASSWORD": self.password, **extra}
        if self.login:  # restic runs `ssh [-l user] host -s sftp` from PATH: ours adds key and known_hosts
            env["PATH"] = f"{_ssh_wrapper(self.login)}:{env.get('PATH', '/usr/bin:/bin')}"
        return env

    def cmd(self, *args: str) -> list[str]:
        return ["restic", "-r", self.url, *args]

    def restic(self, *args: str, check: bool = True, timeout: float = 3600, input: bytes | None = None,
               stdin=None, env: dict | None = None) -> subprocess.CompletedProcess:
        try:
            p = subprocess.run(self.cmd(*args), input=input, stdin=stdin, capture_output=True, timeout=timeout,
                               env=env or self.env())
        except subprocess.TimeoutExpired:
            raise ResticError(f"{self.name}: restic {args[0]} timed out after {timeout:g} s") from None
        if check and p.returncode != 0:
            err = p.stderr.decode(errors="replace").strip().splitlines()
            raise ResticError(f"{self.name}: restic {args[0]}: {err[-1] if err else f'exit {p.returncode}'}")
        return p

    def ensure(self) -> None:
        """The repository exists (created on first use) and holds no stale lock of a killed run."""
        if self.login:
            run(self.login, f"test -d {STORE_ROOT} && test -w {STORE_ROOT} || "
                            f"sudo install -d -o $(id -u) -g $(id -g) {STORE_ROOT}", timeout=30)
        if self.restic("cat", "config", check=False).returncode != 0:
            self.restic("init")
        self.restic("unlock")  # removes only locks whose process is gone

    def ensure_copy_of(self, primary: "Repo") -> None:
        """The DR repository exists with the primary's chunker parameters (so copies deduplicate)."""
        if self.login:
            run(self.login, f"test -d {STORE_ROOT} && test -w {STORE_ROOT} || "
                            f"sudo install -d -o $(id -u) -g $(id -g) {STORE_ROOT}", timeout=30)
        if self.restic("cat", "config", check=False).returncode != 0:
            self.restic("init", "--copy-chunker-params", *primary.from_args(), env=primary.from_env(self))
        self.restic("unlock")

    def from_args(self) -> list[str]:
        """Arguments naming this repository as the source of ``copy``/``init --copy-chunker-params``."""
        return ["--from-repo", self.url]

    def from_env(self, target: "Repo") -> dict[str, str]:
        return target.env(RESTIC_FROM_PASSWORD=self.password)

    def snapshots(self, *tags: str) -> list[dict]:
        args = ["snapshots", "--json"]
        for t in tags:
            args += ["--tag", t]
        return json.loads(self.restic(*args).stdout or b"[]")

    def copy_from(self, primary: "Repo") -> None:
        self.restic("copy", *primary.from_args(), env=primary.from_env(self))


def _ssh_wrapper(lg: Login) -> str:
    """A directory holding an ``ssh`` that logs in with the store's key (both ends of a copy share it)."""
    from .remote import state_dir

    d = state_dir() / "bin" / ("ssh-" + hashlib.sha256(f"{lg.username}\0{lg.key_file}".encode()).hexdigest()[:12])
    script = "#!/bin/sh\nexec /usr/bin/ssh " + shlex.join(lg.ssh()[1:-1]) + ' "$@"\n'
    path = d / "ssh"
    if not path.exists() or path.read_text() != script:
        write_atomic(path, script, mode=0o755)
    return str(d)


def tags_of(snap: dict) -> dict[str, str]:
    return dict(t.split("=", 1) for t in snap.get("tags") or [] if "=" in t)
