"""The lab's base image: one Debian bookworm root filesystem made with debootstrap, cached
outside the repository and keyed by the hash of its package list and setup script, so it is
rebuilt exactly when either changes. Nodes are copy-on-write overlays of it."""
from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import time
from pathlib import Path

from jinbao_netops.errors import UsageError

HERE = Path(__file__).parent
PACKAGES_FILE = HERE / "base-packages.txt"
SETUP_SCRIPT = HERE / "base-setup.sh"
SUITE = "bookworm"


def cache_root() -> Path:
    return Path(os.environ.get("NETOPS_CACHE_DIR", "/var/cache/jinbao-netops"))


def packages() -> list[str]:
    lines = (ln.split("#", 1)[0].strip() for ln in PACKAGES_FILE.read_text().splitlines())
    return [ln for ln in lines if ln]


def image_key() -> str:
    h = hashlib.sha256()
    h.update(SUITE.encode())
    h.update("\n".join(sorted(packages())).encode())
    h.update(SETUP_SCRIPT.read_bytes())
    return h.hexdigest()[:16]


def image_path() -> Path:
    return cache_root() / f"base-{image_key()}"


def mirror() -> str:
    return os.environ.get("NETOPS_DEBIAN_MIRROR", "http://deb.debian.org/debian")


def ensure_image(note=lambda msg: None) -> tuple[Path, bool]:
    """Return (path, built_now). Builds under a lock into a temporary directory, then renames,
    so a killed build never leaves a half image that looks complete."""
    final = image_path()
    if (final / "etc/os-release").exists():
        return final, False
    if shutil.which("debootstrap") is None:
        raise UsageError("debootstrap is not installed (run ./install.sh, or apt-get install debootstrap)")
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (final / "etc/os-release").exists():  # another process built it while we waited
            return final, False
        tmp = root / f".building-{final.name}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        started = time.monotonic()
        note(f"building the lab base image {final.name} with debootstrap (a few minutes, once)…")
        log = root / f"{final.name}.log"
        try:
            with open(log, "w") as fh:
                subprocess.run(["debootstrap", "--variant=minbase", f"--include={','.join(packages())}",
                                SUITE, str(tmp), mirror()], stdout=fh, stderr=subprocess.STDOUT, check=True)
                subprocess.run(["chroot", str(tmp), "/bin/sh", "-s"], stdin=SETUP_SCRIPT.open("rb"),
                               stdout=fh, stderr=subprocess.STDOUT, check=True)
        except subprocess.CalledProcessError:
            shutil.rmtree(tmp, ignore_errors=True)
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["?"]
            raise UsageError(f"building the base image failed (log: {log}): {tail[0]}") from None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        os.rename(tmp, final)
        note(f"base image ready in {time.monotonic() - started:.0f} s")
        _prune_old(final)
    return final, True


def _prune_old(keep: Path) -> None:
    """Remove older images no running lab still uses (an overlay's lowerdir pins its image)."""
    mounts = Path("/proc/self/mounts").read_text()
    for old in cache_root().glob("base-*"):
        if old.is_dir() and old != keep and f"lowerdir={old}" not in mounts:
            shutil.rmtree(old, ignore_errors=True)
