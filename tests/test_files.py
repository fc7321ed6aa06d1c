"""Durable, atomic writes (``jinbao_netops.files``): fsynced, no directory made as a side effect, a
user's output path checked before any work."""
from __future__ import annotations

import os
import stat

import pytest

from jinbao_netops import files


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
