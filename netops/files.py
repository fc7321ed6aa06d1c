"""Writing files so that a reader never sees half of one and a crash never leaves half a change: the
whole suite's one way to do it.

* ``write_atomic`` — one file: written beside its target, fsynced, renamed into place, and the
  directory fsynced (the rename itself survives a power cut). The directory must exist: the suite
  never creates directories as a side effect of writing a file. A caller that owns a directory
  (a report folder, a state directory) creates it itself; a path the user gave is checked with
  ``out_path`` first, so a missing directory is a one-line usage error, not a directory made as root.
"""
from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from .errors import BAD_INPUT, FAILED, NetopsError, UsageError

# errors a user can fix by naming another path (everything else — a full disk, an I/O error — is the
# command failing: exit status 4)
_PATH_ERRORS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOENT, errno.ENOTDIR, errno.EISDIR,
                errno.ENAMETOOLONG, errno.ELOOP, errno.EEXIST}


def fsync_dir(path: str | Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: str | Path, data: str | bytes, mode: int = 0o644, owner: tuple[int, int] | None = None) -> Path:
    """Write ``data`` to a temporary file beside ``path``, fsync it, rename it into place and fsync the
    directory. The directory must exist (FileNotFoundError otherwise)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fchmod(f.fileno(), mode)
            if owner:
                os.fchown(f.fileno(), *owner)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)
    return path


def out_path(path: str | Path, option: str, directory: bool = False) -> Path:
    """A file (``directory``: a directory) the user named for the suite to write (``--out``, ``--html``…):
    its parent must exist, and it must not be a directory (``directory``: must be one if it exists).
    Checked before any work, so a bad path costs nothing; the suite makes at most the one directory."""
    p = Path(path)
    if not p.parent.is_dir():
        raise UsageError(f"{p}: {option}: directory {p.parent} does not exist 目录不存在 (create it first)")
    if p.is_dir() != directory and (p.exists() or p.is_symlink()):
        raise UsageError(f"{p}: {option}: " + ("exists and is not a directory 不是目录" if directory else
                                               "is a directory 是目录; give a file name"))
    return p


def write_error(path: str | Path, e: OSError) -> NetopsError:
    """A failed write as one line: a path the user can change is bad input (2), anything else — a
    full disk, an I/O error — the command failing (4)."""
    return NetopsError(f"{path}: cannot write 无法写入: {e.strerror or e}",
                       code=BAD_INPUT if e.errno in _PATH_ERRORS else FAILED)
