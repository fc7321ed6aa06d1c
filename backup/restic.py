"""restic repositories: one per province on its backup store, one copy at its DR site.

restic runs on the ops host and reaches a store's repository over SFTP as the operator
(``sftp:netops@STORE:/srv/netops/restic``). Why there and not on the nodes: the repository password
and the SSH key stay on the ops host (a node never holds credentials for the store, so a
compromised county server cannot delete its province's backups), and one restic binary drives
every repository. Sources are streamed: ``ssh NODE pg_dump ... | restic backup --stdin``.

The password is the store's ``restic_password`` credentials reference in the inventory, resolved
through the access layer at the moment of use; restic gets it as RESTIC_PASSWORD in its
environment only (a copy's source as RESTIC_FROM_PASSWORD).
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
from dataclasses import dataclass, field

from jinbao_netops.access import Access
from jinbao_netops.errors import DeviceError, ToolError, UsageError
from jinbao_netops.files import write_atomic

from .remote import STORE_ROOT


class ResticError(ToolError):
    """restic failed on a repository (exit status 4 when it ends a command)."""


@dataclass
class Repo:
    """A restic repository: ``url`` (sftp:... or a local path), its password and, for sftp, the login
    that reaches it."""

    name: str                 # the store's device id
    url: str
    password: str = field(repr=False)
    access: Access | None = field(default=None, repr=False)  # None: a local repository (tests)

    @classmethod
    def on_store(cls, access: Access, store_id: str) -> "Repo":
        """The repository on a backup store; DeviceError (that store only) when it cannot be reached
        or a credential is missing."""
        store = access.inv.devices[store_id]
        lg = access.login(store_id)
        try:
            pw = access.secret(store.credentials, "restic_password", access.inv.credentials[store.credentials].restic_password)
        except UsageError as e:
            raise DeviceError(store_id, str(e)) from None
        return cls(store_id, f"sftp:{lg.username}@{lg.host}:{STORE_ROOT}/restic", pw, access)

    def env(self, **extra: str) -> dict[str, str]:
        env = {**os.environ, "RESTIC_PASSWORD": self.password, **extra}
        if self.access:  # restic runs `ssh [-l user] host -s sftp` from PATH: ours adds key and known_hosts
            env["PATH"] = f"{_ssh_wrapper(self.access, self.name)}:{env.get('PATH', '/usr/bin:/bin')}"
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

    def exists(self) -> bool:
        """Whether the repository has been created (a store that was never backed up to has none);
        DeviceError when its store cannot be reached."""
        if self.access is None:
            return os.path.exists(os.path.join(self.url, "config"))
        return self.access.session(self.name).run(f"test -e {STORE_ROOT}/restic/config && echo yes || true",
                                                  timeout=30).strip() == "yes"

    def ensure(self) -> None:
        """The repository exists (created on first use) and holds no stale lock of a killed run."""
        self._store_root()
        if self.restic("cat", "config", check=False).returncode != 0:
            self.restic("init")
        self.restic("unlock")  # removes only locks whose process is gone

    def ensure_copy_of(self, primary: "Repo") -> None:
        """The DR repository exists with the primary's chunker parameters (so copies deduplicate)."""
        self._store_root()
        if self.restic("cat", "config", check=False).returncode != 0:
            self.restic("init", "--copy-chunker-params", *primary.from_args(), env=primary.from_env(self))
        self.restic("unlock")

    def _store_root(self) -> None:
        """The store's root directory exists and is the operator's (created with sudo on first use)."""
        if self.access:
            self.access.session(self.name).run(f"test -d {STORE_ROOT} && test -w {STORE_ROOT} || "
                                               f"sudo install -d -o $(id -u) -g $(id -g) {STORE_ROOT}", timeout=30)

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


def _ssh_wrapper(access: Access, store: str) -> str:
    """A directory holding an ``ssh`` that logs in with the store's key and the run's known_hosts
    (the access layer's options; both ends of a copy share the operator's profile)."""
    from .remote import state_dir

    command = access.ssh_command(store)
    d = state_dir() / "bin" / ("ssh-" + hashlib.sha256(command.encode()).hexdigest()[:12])
    script = f"#!/bin/sh\nexec /usr/bin/{command} \"$@\"\n"
    path = d / "ssh"
    if not path.exists() or path.read_text() != script:
        d.mkdir(parents=True, exist_ok=True)  # under the backup state directory
        write_atomic(path, script, mode=0o755)
    return str(d)


def tags_of(snap: dict) -> dict[str, str]:
    return dict(t.split("=", 1) for t in snap.get("tags") or [] if "=" in t)
