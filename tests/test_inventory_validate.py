"""`netops inventory validate` on broken inventories: exit 2, one line per problem naming file, object
and field, no traceback, nothing on stdout; and the default inventory validates."""
from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, clean_env
from jinbao_netops.inventory import DEFAULT_INVENTORY

BROKEN = Path(__file__).parent / "fixtures" / "broken"
CASES = sorted(p.name for p in BROKEN.iterdir() if (p / "expected.txt").is_file())
PROBLEM = re.compile(r"^\S+(:\d+)?: .+: field '.+': .+$")
YAML_PROBLEM = re.compile(r"^\S+:\d+: YAML error: .+$")


@functools.cache
def validate(case: str, *extra: str) -> subprocess.CompletedProcess:
    """`netops inventory validate -i CASE` (run once per case and flags, shared by the tests below)."""
    return subprocess.run([sys.executable, "-m", "jinbao_netops.cli", "inventory", "validate", "-i", str(BROKEN / case), *extra],
                          cwd=REPO, env=clean_env(), capture_output=True, text=True, timeout=120)


def expected(case: str) -> str:
    return (BROKEN / case / "expected.txt").read_text(encoding="utf-8").strip()


def assert_one_line_problems(stderr: str) -> list[str]:
    lines = stderr.splitlines()
    assert lines, "no problem reported"
    for line in lines:
        assert PROBLEM.match(line) or YAML_PROBLEM.match(line), line
    return lines


def test_there_are_enough_cases():
    assert len(CASES) >= 15
    for must in ("yaml_syntax", "duplicate_key", "unknown_field", "plaintext_secret", "dual_homed_one_uplink",
                 "same_province_code", "v2c_without_community", "dr_under_city", "county_under_province",
                 "zone_link_without_boundary", "device_in_two_zones", "policy_unknown_zone"):
        assert must in CASES


@pytest.mark.parametrize("case", CASES)
def test_broken_case(case):
    r = validate(case)
    assert r.returncode == 2, r.stderr
    assert r.stdout == ""
    assert "Traceback" not in r.stderr
    lines = assert_one_line_problems(r.stderr)
    assert any(expected(case) in line for line in lines), f"expected {expected(case)!r} in:\n{r.stderr}"
    for line in lines:  # every problem names the file it is in
        assert line.startswith(str(BROKEN / case / "inventory.yml")), line


@pytest.mark.parametrize("case", CASES)
def test_broken_case_json(case):
    r = validate(case, "--json")
    assert r.returncode == 2
    assert "Traceback" not in r.stdout + r.stderr
    data = json.loads(r.stdout)
    assert data["ok"] is False
    assert any(expected(case) in p for p in data["problems"])


def test_reported_line_points_at_the_object():
    """`FILE:LINE: <noun> 'ID'`: LINE is the object's first line (or its key line just above)."""
    checked = 0
    for case in CASES:
        r = validate(case)
        text = (BROKEN / case / "inventory.yml").read_text(encoding="utf-8").splitlines()
        for line in r.stderr.splitlines():
            m = re.match(r"^\S+?:(\d+): (?:site|device|link|credentials) '([^']+)'", line)
            if m:
                n, oid = int(m.group(1)), m.group(2)
                assert oid in text[n - 1] or oid in text[n - 2], (case, line)
                checked += 1
    assert checked >= 15


def test_secret_value_is_not_echoed():
    for extra in ((), ("--json",)):
        r = validate("plaintext_secret", *extra)
        assert r.returncode == 2
        assert "hunter2" not in r.stdout + r.stderr


# One defect → one line: faults in one object must not echo as phantom problems elsewhere
# (references to an object that failed its own schema, interfaces of a faulty link, homing, ...).
SINGLE = ["yaml_syntax", "duplicate_key", "unknown_section", "unknown_field", "missing_required", "bad_platform",
          "bad_role", "bad_level", "unknown_parent", "link_unknown_device", "link_unknown_interface",
          "dual_homed_one_uplink", "plaintext_secret", "v2c_without_community", "same_province_code",
          "overlapping_sibling_blocks", "block_outside_parent", "duplicate_management", "loopback_outside_pools",
          "p2p_different_subnets", "p2p_slash29", "dr_under_city", "address_outside_site_block",
          "zone_link_without_boundary", "device_in_two_zones", "policy_unknown_zone"]


@pytest.mark.parametrize("case", SINGLE)
def test_one_defect_one_line(case):
    r = validate(case)
    assert len(r.stderr.splitlines()) == 1, r.stderr


def test_cases_are_base_plus_one_edit():
    """The fixtures are what make_cases.py derives from base.yml (so each holds exactly the edit it names)."""
    sys.path.insert(0, str(BROKEN))
    try:
        import make_cases
    finally:
        sys.path.remove(str(BROKEN))
    assert sorted(make_cases.CASES) == CASES
    base = (BROKEN / "base.yml").read_text(encoding="utf-8")
    for case, (edits, want) in make_cases.CASES.items():
        text = base
        for old, new in edits:
            assert text.count(old) == 1
            text = text.replace(old, new)
        assert (BROKEN / case / "inventory.yml").read_text(encoding="utf-8").endswith(text), case
        assert expected(case) == want


def test_base_is_valid(netops):
    r = netops("inventory", "validate", "-i", str(BROKEN / "base.yml"))
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""


def test_default_inventory_validates(netops):
    r = netops("inventory", "validate")
    assert r.returncode == 0, r.stderr
    assert "valid" in r.stdout and "46 devices" in r.stdout
    r = netops("inventory", "validate", "--json")
    assert r.returncode == 0
    data = json.loads(r.stdout)
    assert data["ok"] is True and data["problems"] == []
    assert data["inventory"] == str(DEFAULT_INVENTORY)
    assert sum(data["devices"].values()) == 46 and sum(data["sites"].values()) == 17
    assert data["sites"]["county"] == 8 and data["links"] == {"active": 55, "planned": 1}


def test_yaml_error_in_one_file_reports_only_that(netops, tmp_path):
    """A file that does not parse may hold what the others refer to: report its YAML error, not the
    dozens of 'unknown site' lines the other files would otherwise get."""
    inv = tmp_path / "inv"
    shutil.copytree(DEFAULT_INVENTORY, inv)
    ministry = inv / "ministry.yml"
    ministry.write_text(ministry.read_text(encoding="utf-8").replace("  bu:\n", "  bu:\n   x: [\n", 1), encoding="utf-8")
    r = netops("inventory", "validate", "-i", str(inv))
    assert r.returncode == 2
    lines = assert_one_line_problems(r.stderr)
    assert len(lines) == 1 and lines[0].startswith(f"{ministry}:") and "YAML error" in lines[0], r.stderr


def test_faulty_link_does_not_orphan_its_interfaces(netops, tmp_path):
    """A link failing its own schema: its interfaces must not be reported as addresses outside the site."""
    inv = tmp_path / "inv"
    shutil.copytree(DEFAULT_INVENTORY, inv)
    gd = inv / "guangdong.yml"
    text = gd.read_text(encoding="utf-8")
    old = '    b: "guangzhou-r1:eth5"\n    kind: mpls_vpn\n    bandwidth_mbps: 100\n'
    assert text.count(old) == 1
    gd.write_text(text.replace(old, old.replace("bandwidth_mbps: 100", "bandwidth_mbps: fast")), encoding="utf-8")
    r = netops("inventory", "validate", "-i", str(inv))
    assert r.returncode == 2
    lines = assert_one_line_problems(r.stderr)
    assert len(lines) == 1, r.stderr
    assert "link 'baoan-up2': field 'bandwidth_mbps': Input should be a valid integer" in lines[0]


def test_all_problems_at_once(netops, tmp_path):
    """Several independent defects in several files: every one is reported in one run."""
    inv = tmp_path / "inv"
    shutil.copytree(DEFAULT_INVENTORY, inv)
    gd, sc = inv / "guangdong.yml", inv / "sichuan.yml"
    gd.write_text(gd.read_text(encoding="utf-8").replace("    management: 10.254.44.28\n",
                                                         "    management: 10.254.44.27\n"), encoding="utf-8")
    sc.write_text(sc.read_text(encoding="utf-8").replace("    parent: mianyang\n", "    parent: mianyagn\n", 1),
                  encoding="utf-8")
    r = netops("inventory", "validate", "-i", str(inv))
    assert r.returncode == 2
    lines = assert_one_line_problems(r.stderr)
    assert any(f"{gd}:" in x and "device 'longgang-srv1': field 'management'" in x for x in lines), r.stderr
    assert any(f"{sc}:" in x and "field 'parent': unknown site 'mianyagn'" in x for x in lines), r.stderr


def test_missing_inventory_path(netops, tmp_path):
    r = netops("inventory", "validate", "-i", str(tmp_path / "nope"))
    assert r.returncode == 2
    assert r.stderr.strip() == f"{tmp_path / 'nope'}: no such inventory file or directory"
    assert "Traceback" not in r.stderr


# --- hostile files: every .yml entry is read or reported, never skipped, never echoed ---------------

def _special(kind: str, path: Path) -> None:
    import os

    if kind == "dangling link":
        path.symlink_to(path.parent / "gone.yml")
    elif kind == "link loop":
        path.symlink_to(path)
    elif kind == "FIFO":
        os.mkfifo(path)
    else:
        path.mkdir()


@pytest.mark.parametrize("kind, why", [
    ("dangling link", "a dangling symbolic link 符号链接指向不存在的文件"),
    ("link loop", "a symbolic link loop 符号链接循环"),
    ("FIFO", "a FIFO, not a regular file 不是普通文件"),
    ("directory", "a directory, not a regular file 不是普通文件"),
])
def test_a_yml_entry_that_is_not_a_readable_file_is_an_error(netops, tmp_path, kind, why):
    """With guangdong.yml a dangling link, 9 of 17 sites validated as "valid" (the file was skipped)."""
    inv = tmp_path / "inv"
    shutil.copytree(DEFAULT_INVENTORY, inv)
    (inv / "guangdong.yml").unlink()
    _special(kind, inv / "guangdong.yml")
    r = netops("inventory", "validate", "-i", str(inv))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.splitlines() == [f"{inv / 'guangdong.yml'}: document: field '(file)': {why}"]
    # named directly, too (a directory so named is an inventory directory, here an empty one)
    direct = "no .yml files in this directory" if kind == "directory" else f"document: field '(file)': {why}"
    r = netops("inventory", "validate", "-i", str(inv / "guangdong.yml"))
    assert r.returncode == 2 and r.stderr.splitlines() == [f"{inv / 'guangdong.yml'}: {direct}"]


def test_hidden_entries_are_not_part_of_the_inventory(netops, tmp_path):
    inv = tmp_path / "inv"
    shutil.copytree(DEFAULT_INVENTORY, inv)
    (inv / ".#guangdong.yml").symlink_to("root@host.1234:1700000000")  # an editor's lock while guangdong.yml is open
    assert netops("inventory", "validate", "-i", str(inv)).returncode == 0


def test_a_file_that_is_no_inventory_is_not_quoted(netops, tmp_path):
    """`-i /etc/shadow` answered with its first line, the password hash included, as an 'unknown section'."""
    shadow = tmp_path / "shadow"
    shadow.write_text("root:$y$j9T$SALTsalt$HASHhashHASH:19700:0:99999:7:::\ndaemon:*:19700:0:99999:7:::\n")
    for extra in ((), ("--json",)):
        r = netops("inventory", "validate", "-i", str(shadow), *extra)
        assert r.returncode == 2 and "HASHhash" not in r.stdout + r.stderr and "19700" not in r.stdout + r.stderr
        assert r.stderr.splitlines() == [
            f"{shadow}: document: field '(top level)': expected a mapping of sections (network, credentials, sites, "
            "devices, links, zone_policy), got a mapping without any of them: not an inventory file 不是清单文件"]


@pytest.mark.parametrize("text, want", [
    ("x0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
     + "".join(f"x{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 10)) + "sites: {bu: *a9}\n",
     "inv.yml:1: YAML error: aliases expand the document by more than 100,000 nodes (an alias bomb)"),
    ("sites: &s {x: *s}\n", "inv.yml:1: YAML error: an alias refers to the node that contains it (recursive alias)"),
    ("sites: {}\n" + "#" * (16 << 20) + "\n", "inv.yml: document: field '(file)': larger than 16,777,216 bytes 文件过大"),
])
def test_bounded_yaml(netops, tmp_path, text, want):
    (tmp_path / "inv.yml").write_text(text)
    r = netops("inventory", "validate", "-i", str(tmp_path / "inv.yml"))
    assert r.returncode == 2 and r.stderr.splitlines() == [f"{tmp_path}/{want}"], r.stderr[-1000:]


def test_anchors_and_aliases_within_bounds_still_load(tmp_path):
    from jinbao_netops.inventory import load

    inv = tmp_path / "inv"
    shutil.copytree(DEFAULT_INVENTORY, inv)
    gd = inv / "guangdong.yml"
    text = gd.read_text(encoding="utf-8")
    assert text.count("carrier: china_telecom") > 2
    text = text.replace("carrier: china_telecom", "carrier: &ct china_telecom", 1).replace("carrier: china_telecom", "carrier: *ct")
    gd.write_text(text, encoding="utf-8")
    assert load(inv).links["longgang-up1"].carrier == "china_telecom"
