"""tests/golden/regenerate.py: the one way goldens are rewritten — never under CI, never unseen."""
from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from conftest import REPO, clean_env
from golden import regenerate

SCRIPT = REPO / "tests/golden/regenerate.py"
COMMITTED = REPO / "tests/golden"


def goldens(root):
    return {p.relative_to(root): p.read_text(encoding="utf-8") for p in root.rglob("*") if p.is_file() and p.suffix != ".py"
            and "__pycache__" not in p.parts}


@pytest.mark.parametrize("var", ["CI", "GITHUB_ACTIONS"])
def test_refused_under_ci(var):
    env = {k: v for k, v in clean_env().items() if k not in ("CI", "GITHUB_ACTIONS")}
    r = subprocess.run([sys.executable, str(SCRIPT), "--yes"], env={**env, var: "true"}, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2 and r.stdout == ""
    assert f"refused under CI ({var} set)" in r.stderr


def test_refused_without_a_terminal_unless_yes():
    env = {k: v for k, v in clean_env().items() if k not in ("CI", "GITHUB_ACTIONS")}
    r = subprocess.run([sys.executable, str(SCRIPT)], env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2 and r.stdout == ""
    assert "pass --yes" in r.stderr


def test_shows_the_diff_asks_then_writes(tmp_path, monkeypatch, capsys):
    for var in ("CI", "GITHUB_ACTIONS"):
        monkeypatch.delenv(var, raising=False)
    golden = tmp_path / "golden"
    shutil.copytree(COMMITTED, golden, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    monkeypatch.setattr(regenerate, "GOLDEN", golden)
    edited = golden / "provision/xa-up-xa-r1.cfg"
    committed = edited.read_text(encoding="utf-8")
    assert " ospf 1 area 0.0.0.44\n" in committed
    edited.write_text(committed.replace(" ospf 1 area 0.0.0.44\n", " ospf 1 area 0.0.0.45\n"), encoding="utf-8")
    (golden / "provision/gone-link-gone-r1.cfg").write_text("interface eth9\n", encoding="utf-8")

    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: "n")
    assert regenerate.main([]) == 1
    out = capsys.readouterr().out
    assert "--- a/tests/golden/provision/xa-up-xa-r1.cfg\n+++ b/tests/golden/provision/xa-up-xa-r1.cfg\n" in out
    assert "\n- ospf 1 area 0.0.0.45\n+ ospf 1 area 0.0.0.44\n" in out
    assert "removed: tests/golden/provision/gone-link-gone-r1.cfg" in out and "nothing written" in out
    assert "0.0.0.45" in edited.read_text(encoding="utf-8")  # declined: untouched

    assert regenerate.main(["--yes"]) == 0
    assert "wrote 1, removed 1" in capsys.readouterr().out
    assert goldens(golden) == goldens(COMMITTED)  # the edit undone, the stale file gone, nothing else touched

    assert regenerate.main(["--yes"]) == 0
    assert "goldens are up to date" in capsys.readouterr().out
