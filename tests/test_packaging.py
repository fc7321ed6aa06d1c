"""One import namespace: the suite installs as jinbao_netops.* and claims no generic top-level name
(PyPI has packages called topology, security, netops, inventory…), and the product's runtime needs
none of the test tools."""
from __future__ import annotations

import json
import subprocess
import sys
import tomllib
import zipfile

from conftest import REPO

ROOMS = ("netops", "inventory", "topology", "lab", "collectors", "backup", "security", "monitoring")


def test_a_clean_venv_with_the_suite_imports_nothing_from_outside_it(tmp_path):
    import shutil

    src, wheel_dir = tmp_path / "src", tmp_path / "wheel"  # built from a copy: setuptools writes build/ beside the source
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(".git", ".venv", "out", ".hypothesis", "build", "*.egg-info",
                                                              "__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--wheel-dir", str(wheel_dir), str(src)], check=True, capture_output=True, timeout=600)
    [wheel] = wheel_dir.glob("jinbao_netops-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")} == {"jinbao_netops"}
    assert "jinbao_netops/inventory/default/guangdong.yml" in names and "jinbao_netops/monitoring/static/app.js" in names

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    site = next((venv / "lib").glob("python3*/site-packages"))
    with zipfile.ZipFile(wheel) as z:  # installing a wheel is unpacking it
        z.extractall(site)
    # the third-party dependencies from the test's own environment, after the suite on the path (a plain
    # path entry: that environment's own .pth files, the development install among them, do not run)
    deps = next(p for p in sys.path if p.endswith("site-packages"))
    (site / "zz-deps.pth").write_text(deps + "\n")
    probe = ("import importlib.util as u, json, jinbao_netops.inventory as i, jinbao_netops.lab.plan as p\n"
             f"print(json.dumps({{'top': {{n: u.find_spec(n) is not None for n in {list(ROOMS)!r}}},"
             " 'files': [i.__file__, p.__file__]}))")
    r = subprocess.run([str(venv / "bin/python"), "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got["top"] == {n: False for n in ROOMS}  # none of the generic names is taken
    assert all(f.startswith(str(site)) for f in got["files"])  # the suite's own modules come from the suite


def test_the_development_install_claims_no_generic_name_either(tmp_path):
    probe = f"import importlib.util as u; print([n for n in {list(ROOMS)!r} if u.find_spec(n)])"
    r = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr


def test_runtime_dependencies_are_what_the_product_runs():
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    runtime = {d.split(">")[0].split("[")[0].split("=")[0].strip().lower() for d in meta["dependencies"]}
    assert not runtime & {"pytest", "hypothesis", "ansible-lint", "websockets", "snmpsim", "pysmi"}
    test = {d.split(">")[0].split("=")[0].strip().lower() for d in meta["optional-dependencies"]["test"]}
    assert {"pytest", "hypothesis", "ansible-lint", "websockets", "snmpsim"} <= test
