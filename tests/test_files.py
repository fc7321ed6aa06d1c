"""Durable, atomic writes (``jinbao_netops.files``): fsynced, no directory made as a side effect, a
user's output path checked before any work, several files committed as one change that a killed
run cannot leave half-applied, and a full disk reported in one line with nothing half-written."""
from __future__ import annotations

import errno
import os
import stat
import tempfile

import pytest

from jinbao_netops import files
from jinbao_netops.cli import main


def test_write_atomic_fsyncs_the_file_and_its_directory(tmp_path, monkeypatch):
    synced, real = [], os.fsync

    def fsync(fd):
        synced.append(stat.S_IFMT(os.fstat(fd).st_mode))
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    files.write_atomic(tmp_path / "x.json", "{}")
    assert synced == [stat.S_IFREG, stat.S_IFDIR]  # the data, then the rename
    assert (tmp_path / "x.json").read_text() == "{}" and os.listdir(tmp_path) == ["x.json"]


def test_write_atomic_makes_no_directory(tmp_path):
    with pytest.raises(FileNotFoundError):
        files.write_atomic(tmp_path / "no" / "such" / "x.svg", "<svg/>")
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize("argv", [
    ["topology", "draw", "--out", "{missing}/x.svg"],
    ["inventory", "generate", "--out", "{missing}/inv", "--provinces", "1"],
    ["monitor", "generate", "--out", "{missing}/monitoring"],
    ["link", "provision", "longgang", "--check", "--changes", "{missing}/changes"],
    ["audit", "--html", "{missing}/audit.html"],
])
def test_an_output_path_in_a_missing_directory_is_a_usage_error(netops, tmp_path, argv):
    """`--out /nonexistent/dir/x.svg` created /nonexistent/dir (as root)."""
    missing = tmp_path / "nonexistent" / "dir"
    r = netops(*(a.format(missing=missing) for a in argv))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    assert f"directory {missing} does not exist 目录不存在" in r.stderr
    assert not (tmp_path / "nonexistent").exists()


# --- several files as one change --------------------------------------------------------------------

def _interrupt_rename(monkeypatch, into, nth: int = 2):
    """The ``nth`` rename of a file into ``into`` raises KeyboardInterrupt (Ctrl-C between renames)."""
    real, seen = os.replace, []

    def replace(src, dst, **kw):
        if os.path.dirname(os.path.abspath(dst)) == str(into):
            seen.append(dst)
            if len(seen) == nth:
                raise KeyboardInterrupt
        return real(src, dst, **kw)

    monkeypatch.setattr(os, "replace", replace)


def test_a_commit_interrupted_between_renames_is_completed_by_recover(tmp_path, monkeypatch):
    (tmp_path / "a.yml").write_text("old a\n")
    (tmp_path / "b.yml").write_text("old b\n")
    os.chmod(tmp_path / "b.yml", 0o600)
    with monkeypatch.context() as m:
        _interrupt_rename(m, tmp_path)
        with pytest.raises(KeyboardInterrupt):
            files.commit(tmp_path, {"a.yml": "new a\n", "b.yml": "new b\n", "sub/c.yml": "new c\n"})
    assert (tmp_path / "a.yml").read_text() == "new a\n" and (tmp_path / "b.yml").read_text() == "old b\n"
    [stage] = tmp_path.glob(files.STAGE_PREFIX + "*")
    assert (stage / files.JOURNAL).exists()
    assert files.recover(tmp_path) == [tmp_path / "a.yml", tmp_path / "b.yml", tmp_path / "sub/c.yml"]
    assert [(tmp_path / f).read_text() for f in ("a.yml", "b.yml", "sub/c.yml")] == ["new a\n", "new b\n", "new c\n"]
    assert stat.S_IMODE((tmp_path / "b.yml").stat().st_mode) == 0o600  # a replaced file keeps its mode
    assert sorted(os.listdir(tmp_path)) == ["a.yml", "b.yml", "sub"]
    assert files.recover(tmp_path) == []


def test_a_commit_killed_before_its_journal_changes_nothing(tmp_path, monkeypatch):
    (tmp_path / "a.yml").write_text("old a\n")
    stage = tmp_path / (files.STAGE_PREFIX + "killed")  # a SIGKILL while staging: files, no journal
    stage.mkdir()
    (stage / "a.yml").write_text("new a, half wri")
    assert files.recover(tmp_path) == []
    assert (tmp_path / "a.yml").read_text() == "old a\n" and os.listdir(tmp_path) == ["a.yml"]
    # and an error while staging (a full disk) removes its own staging directory at once
    real = files.write_atomic

    def full(path, *a, **kw):
        if path.name == "b.yml":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, *a, **kw)

    monkeypatch.setattr(files, "write_atomic", full)
    with pytest.raises(OSError):
        files.commit(tmp_path, {"a.yml": "new a\n", "b.yml": "new b\n"})
    assert (tmp_path / "a.yml").read_text() == "old a\n" and os.listdir(tmp_path) == ["a.yml"]


def test_commit_paths_stay_inside_the_root(tmp_path):
    for rel in ("../x.yml", "/etc/x.yml", files.STAGE_PREFIX + "x/y.yml"):
        with pytest.raises(ValueError, match="not a relative path inside"):
            files.commit(tmp_path, {rel: "x"})
    assert os.listdir(tmp_path) == []


# --- monitor generate on a full disk ------------------------------------------------------------------

def _disk_full_after(monkeypatch, n: int):
    """Every temporary file after the first ``n`` is written to /dev/full: ENOSPC when flushed."""
    real, made = tempfile.mkstemp, []

    def mkstemp(*a, **kw):
        fd, name = real(*a, **kw)
        made.append(name)
        if len(made) > n:
            full = os.open("/dev/full", os.O_WRONLY)
            os.dup2(full, fd)
            os.close(full)
        return fd, name

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)


def test_monitor_generate_on_a_full_disk_is_one_line_and_leaves_the_directory_as_it_was(tmp_path, monkeypatch, capsys):
    """A full disk left a partial directory and a traceback."""
    out = tmp_path / "monitoring"
    with monkeypatch.context() as m:
        _disk_full_after(m, 5)
        assert main(["monitor", "generate", "--out", str(out)]) == 4
    err = capsys.readouterr().err
    assert err == f"netops: {out}: cannot write 无法写入: No space left on device\n"
    assert os.listdir(tmp_path) == []  # no partial directory
    assert main(["monitor", "generate", "--out", str(out)]) == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with monkeypatch.context() as m:
        _disk_full_after(m, 5)
        assert main(["monitor", "generate", "--out", str(out), "--scrape-interval", "30"]) == 4
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before  # the previous generation, whole
    assert sorted(os.listdir(out)) == ["alertmanager", "grafana", "ministry", "province"]  # no staging left
