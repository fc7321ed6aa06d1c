"""How the suite reaches a device: secrets resolved from the inventory's references, and the SSH
known_hosts file. Every capability (collectors, audit, provisioning, backup) uses these, so a
missing credential reads the same one-line error everywhere."""
from __future__ import annotations

import os
import shlex
from pathlib import Path

from jinbao_netops.errors import UsageError

from .model import SecretRef
from .store import Inventory


def secret(inv: Inventory, profile: str, field: str, ref: SecretRef | None) -> str:
    """The value a reference points at, or a one-line error naming the file, profile and field.
    Environment references are read here; vault references are for Ansible to resolve."""
    where = f"{inv.root}: credentials {profile!r}: field {field!r}"
    if ref is None:
        raise UsageError(f"{where}: not set")
    if ref.vault:
        raise UsageError(f"{where}: vault reference {ref.vault!r} is resolved by Ansible only; use {{env: NAME}} here")
    value = os.environ.get(ref.env)
    if not value:
        raise UsageError(f"{where}: environment variable {ref.env} is not set (for the lab: eval \"$(netops lab env)\")")
    return value


def known_hosts() -> str | None:
    """The known_hosts file that ANSIBLE_SSH_COMMON_ARGS names (the lab's, via `netops lab env`),
    else the user's own."""
    for arg in shlex.split(os.environ.get("ANSIBLE_SSH_COMMON_ARGS", "")):
        if arg.startswith("UserKnownHostsFile="):
            return arg.split("=", 1)[1]
    default = Path.home() / ".ssh/known_hosts"
    return str(default) if default.exists() else None
