"""Processes the suite started and must end: "is this pid ours and alive", ending it, waiting for it.

A pid is trusted only with a check of its command line (pids are reused); a process is waited for
through a pidfd taken while it was known to be ours, so the wait ends when *that* process has exited,
not when /proc merely stops showing its command line (it empties while the process tears down).
"""
from __future__ import annotations

import os
import select
import signal
import time
from collections.abc import Callable
from pathlib import Path


def running(pid: int | None) -> bool:
    """True while the process exists and is not a zombie waiting for its parent."""
    if not pid:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def cmdline(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
    except OSError:
        return None


def ours(pid: int | None, match: Callable[[list[str]], bool]) -> bool:
    """True if pid is alive and its command line is one the caller started (``match`` decides)."""
    if not running(pid):
        return False
    cmd = cmdline(pid)
    return bool(cmd) and match(cmd)


def reap(pid: int) -> None:
    """Collect the exit status of a child of ours (a no-op for anyone else's)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except ProcessLookupError:
        return None


def kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def wait_exit(fds: dict[int, int], timeout: float) -> dict[int, int]:
    """Wait until every process (pid → pidfd) has exited and been reaped by its parent; returns
    those still running after ``timeout``."""
    left = dict(fds)
    deadline = time.monotonic() + timeout
    while left and time.monotonic() < deadline:
        ready, _, _ = select.select(list(left.values()), [], [], max(0.0, deadline - time.monotonic()))
        for pid in [p for p, fd in left.items() if fd in ready]:
            del left[pid]
            reap(pid)
            gone = time.monotonic() + 5  # exited: its parent (init, for a detached process) reaps it at once
            while os.path.exists(f"/proc/{pid}") and time.monotonic() < gone:
                time.sleep(0.02)
    return left


def end(pids: list[int], match: Callable[[list[str]], bool], timeout: float = 10) -> list[int]:
    """SIGTERM each pid that is ours, SIGKILL what is left after ``timeout``; returns when all have
    exited (or names those that would not)."""
    fds = {pid: fd for pid in pids if ours(pid, match) and (fd := pidfd(pid)) is not None}
    try:
        for pid in fds:
            kill(pid, signal.SIGTERM)
        left = wait_exit(fds, timeout)
        for pid in left:
            kill(pid, signal.SIGKILL)
        return sorted(wait_exit(left, 5))
    finally:
        for fd in fds.values():
            os.close(fd)


class StopOnSignal:
    """SIGTERM and SIGINT ask this process to stop: ``with StopOnSignal() as stop: … stop.is_set() / stop.wait(s)``,
    the handlers restored on leaving. Not a threading.Event set by the handler: a handler runs in the main thread,
    and when the signal arrives while that thread is inside ``Event.wait`` holding the Event's lock, ``set()``
    waits for that lock for ever (`monitor web` hung on SIGTERM in CI). The flag here takes no lock; ``wait``
    sleeps in short steps, each cut short by the signal."""

    STEP = 0.2

    def __init__(self, signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT)):
        self.signals, self._set, self._previous = signals, False, {}

    def set(self) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set

    def wait(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._set and (deadline is None or (left := deadline - time.monotonic()) > 0):
            time.sleep(self.STEP if deadline is None else min(self.STEP, left))
        return self._set

    def __enter__(self) -> "StopOnSignal":
        self._previous = {sig: signal.signal(sig, lambda *_: self.set()) for sig in self.signals}
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
