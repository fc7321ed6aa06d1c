"""Writing files so that a reader never sees half of one and a crash never leaves half a change: the
whole suite's one way to do it.

* ``write_atomic`` — one file: written beside its target, fsynced, renamed into place, and the
  directory fsynced (the rename itself survives a power cut). The directory must exist: the suite
  never creates directories as a side effect of writing a file. A caller that owns a directory
  (a report folder, a state directory) creates it itself; a path the user gave is checked with
  ``out_path`` first, so a missing directory is a one-line usage error, not a directory made as root.
* ``commit`` — several files under one directory as one change. Every file is staged (written and
  fsynced) in a staging directory beside them, then a journal naming them is written there, then
  each is renamed into place and the staging directory removed. ``recover`` completes a change whose
  journal was written (every staged file is complete by then) and discards one whose journal was
  not (the old files stand): a run killed at any point leaves the old files or, after the next
  ``recover``, the new ones — never some of each. The inventory loader runs ``recover`` before it
  reads anything.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath

from .errors import BAD_INPUT, FAILED, NetopsError, UsageError

STAGE_PREFIX = ".netops-stage-"   # a staging directory of ``commit``, beside the files it changes
JOURNAL = "journal.json"          # inside a staging directory: its files are complete, apply them

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


# --- several files as one change ------------------------------------------------------------------

def _inside(root: Path, rel: str) -> Path:
    p = PurePosixPath(rel)
    if p.is_absolute() or not p.parts or ".." in p.parts or p.parts[0].startswith(STAGE_PREFIX):
        raise ValueError(f"{rel!r}: not a relative path inside {root}")
    return root / p


def commit(root: str | Path, files: dict[str, str | bytes]) -> list[Path]:
    """Replace or create ``files`` (path relative to ``root`` → content) as one change (see the module
    text). A replaced file keeps its mode, a new one is 0644; subdirectories of ``root`` the paths
    name are created. ``root`` must exist. Returns the paths written."""
    root = Path(root)
    targets = {rel: _inside(root, rel) for rel in files}
    recover(root)
    stage = Path(tempfile.mkdtemp(prefix=STAGE_PREFIX, dir=root))
    lock = os.open(stage, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)  # held until applied: ``recover`` elsewhere waits for a live commit
        try:
            for rel, data in files.items():
                staged = stage / rel
                staged.parent.mkdir(parents=True, exist_ok=True)  # inside our own staging directory
                try:
                    mode = targets[rel].stat().st_mode & 0o7777
                except FileNotFoundError:
                    mode = 0o644
                write_atomic(staged, data, mode)
            write_atomic(stage / JOURNAL, json.dumps({"files": sorted(files)}))
        except BaseException:  # nothing was replaced yet: the old files stand
            shutil.rmtree(stage, ignore_errors=True)
            raise
        _apply(root, stage)
    finally:
        os.close(lock)
    return list(targets.values())


def _apply(root: Path, stage: Path) -> list[Path]:
    """Rename each staged file of a journalled change into place (those already moved are skipped),
    fsync the directories, remove the staging directory."""
    try:
        rels = json.loads((stage / JOURNAL).read_text(encoding="utf-8"))["files"]
        targets = [(stage / rel, _inside(root, rel)) for rel in rels]
    except (ValueError, KeyError, TypeError) as e:
        raise NetopsError(f"{stage / JOURNAL}: not a netops commit journal ({e}); "
                          "move the directory away after checking the files beside it") from None
    dirs = set()
    for src, dst in targets:
        if os.path.lexists(src):  # not yet moved
            for d in reversed(dst.relative_to(root).parents[:-1]):
                if not (root / d).is_dir():
                    (root / d).mkdir()
                    dirs.add((root / d).parent)
            os.replace(src, dst)
        dirs.add(dst.parent)
    for d in dirs:
        fsync_dir(d)
    shutil.rmtree(stage)
    fsync_dir(root)
    return [dst for _, dst in targets]


def recover(root: str | Path) -> list[Path]:
    """Finish what a killed ``commit`` under ``root`` left: complete a journalled change, discard an
    unjournalled one. Waits for a commit still running in another process. Returns the files completed."""
    done: list[Path] = []
    root = Path(root)
    for stage in sorted(root.glob(STAGE_PREFIX + "*")):
        try:
            fd = os.open(stage, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except (FileNotFoundError, NotADirectoryError):
            continue  # its commit finished meanwhile, or not ours
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                if not os.path.samestat(os.fstat(fd), os.stat(stage)):
                    continue
            except FileNotFoundError:  # the live commit we waited for has finished
                continue
            if (stage / JOURNAL).exists():
                done += _apply(root, stage)
            else:
                shutil.rmtree(stage)
                fsync_dir(root)
        finally:
            os.close(fd)
    return done
