#!/usr/bin/env python3
"""Regenerate the golden files the unit tests compare against, and show what changed.

The tests only compare (tests/test_provision.py: the rendered link configs under provision/;
tests/test_ansible_view.py: ansible_graph.txt); nothing in a test run writes a golden. After an
intended change to what a golden covers, run this, read the diff it prints, and commit the goldens
with the change that explains them:

    .venv/bin/python tests/golden/regenerate.py          # prints the diff, asks before writing
    .venv/bin/python tests/golden/regenerate.py --yes    # prints the diff and writes

It refuses to run under CI (``CI`` or ``GITHUB_ACTIONS`` set) and, without ``--yes``, when nobody
is at the terminal to answer: a golden rewritten unseen compares the code with itself. Exit status:
0 written or nothing changed, 1 declined at the prompt, 2 refused.
"""
from __future__ import annotations

import argparse
import difflib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from jinbao_netops import inventory
from jinbao_netops.topology.provision import allocate as al
from jinbao_netops.topology.provision import render as rd

GOLDEN = Path(__file__).resolve().parent
REPO = GOLDEN.parent.parent
VENDORS = REPO / "tests/fixtures/provision/vendors"
# (inventory, planned link): each end's rendered config is a golden provision/LINK-DEVICE.cfg
PROVISION_LINKS = ((inventory.DEFAULT_INVENTORY, "longgang-up2"), (VENDORS, "xa-up"), (VENDORS, "xb-up"), (VENDORS, "xc-up"))


def render_link(root: Path, link_id: str):
    """Reserve ``link_id``'s /31 in the inventory at ``root`` (written there: give a copy) and render
    both ends: (inventory, allocation, {device: config text})."""
    inv, alloc = al.reserve(root, link_id)
    link = inv.links[link_id]
    return inv, alloc, {e.device: rd.render_end(inv, link, e, alloc.ends) for e in link.ends()}


def provision_golden(link_id: str, device: str) -> Path:
    return GOLDEN / "provision" / f"{link_id}-{device}.cfg"


def provision() -> dict[Path, str]:
    out = {}
    with tempfile.TemporaryDirectory(prefix="golden-") as tmp:
        for n, (root, link_id) in enumerate(PROVISION_LINKS):
            copy = Path(tmp) / str(n)
            shutil.copytree(root, copy)
            out.update({provision_golden(link_id, dev): text for dev, text in render_link(copy, link_id)[2].items()})
    return out


def ansible_graph() -> dict[Path, str]:
    """`ansible-inventory --graph` of the embedded default, through the repository's ansible.cfg."""
    env = {k: v for k, v in os.environ.items() if k != "NETOPS_INVENTORY"}
    r = subprocess.run([str(Path(sys.executable).parent / "ansible-inventory"), "--graph"], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=300, check=True)
    return {GOLDEN / "ansible_graph.txt": r.stdout}


def goldens() -> dict[Path, str]:
    """Every golden as the code produces it now."""
    return {**provision(), **ansible_graph()}


def _shown(path: Path) -> str:
    return f"tests/golden/{path.relative_to(GOLDEN)}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--yes", action="store_true", help="write without asking (after printing the diff)")
    args = ap.parse_args(argv)
    ci = [v for v in ("CI", "GITHUB_ACTIONS") if os.environ.get(v)]
    if ci:
        print(f"regenerate: refused under CI ({', '.join(ci)} set): goldens are reviewed and committed by a person",
              file=sys.stderr)
        return 2
    if not args.yes and not sys.stdin.isatty():
        print("regenerate: refused: not run at a terminal; read the diff and pass --yes to write", file=sys.stderr)
        return 2
    new = goldens()
    changed = {p: t for p, t in new.items() if not p.exists() or p.read_text(encoding="utf-8") != t}
    stale = sorted(set((GOLDEN / "provision").glob("*.cfg")) - set(new))  # no case renders them any more
    for path in sorted(changed):
        old = path.read_text(encoding="utf-8").splitlines(keepends=True) if path.exists() else []
        rel = _shown(path)
        sys.stdout.writelines(difflib.unified_diff(old, changed[path].splitlines(keepends=True), f"a/{rel}", f"b/{rel}"))
    for path in stale:
        print(f"removed: {_shown(path)}")
    if not changed and not stale:
        print(f"regenerate: all {len(new)} goldens are up to date")
        return 0
    if not args.yes and input(f"write {len(changed)} and remove {len(stale)} golden files? [y/N] ").strip().lower() != "y":
        print("regenerate: nothing written")
        return 1
    for path, text in changed.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    for path in stale:
        path.unlink()
    print(f"regenerate: wrote {len(changed)}, removed {len(stale)}; review `git diff tests/golden` and commit it with the change")
    return 0


if __name__ == "__main__":
    sys.exit(main())
