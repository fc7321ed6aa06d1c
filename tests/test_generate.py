"""The national-scale generator: valid, sized as asked, deterministic, written atomically."""
from __future__ import annotations

import json
import os
from collections import Counter

import pytest

import jinbao_netops.inventory.generate as gen
from jinbao_netops.inventory import InventoryError, load
from jinbao_netops.inventory.generate import PROVINCES, default_counts, generate, write
from jinbao_netops.inventory.model import Level, LinkKind, LinkState
from jinbao_netops.inventory.store import province_area


@pytest.fixture(scope="module")
def national(tmp_path_factory):
    out = tmp_path_factory.mktemp("national") / "inv"
    files = generate()
    write(files, out)
    return load(out), files


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    out = tmp_path_factory.mktemp("small") / "inv"
    write(generate(provinces=3, cities=12, counties=90, seed=7), out)
    return load(out)


def levels(inv) -> Counter:
    return Counter(s.level for s in inv.sites.values())


def test_small_set_is_valid_and_sized(small):
    c = levels(small)
    assert c[Level.ministry] == 1 and c[Level.province] == 3 and c[Level.dr] == 3
    assert c[Level.city] == 12 and c[Level.county] == 90
    assert {s.id for s in small.sites.values() if s.level == Level.province} == {"beijing", "tianjin", "hebei"}


def test_national_set_is_valid_and_sized(national):
    inv, files = national
    c = levels(inv)
    assert c[Level.province] == 32 and c[Level.dr] == 32 and c[Level.city] == 340 and c[Level.county] == 2850
    assert 9_500 <= len(inv.devices) <= 10_500
    assert set(files) == {"network.yml", "ministry.yml"} | {f"{p[1]}.yml" for p in PROVINCES}
    roles = Counter(d.role.value for d in inv.devices.values())
    assert roles["router"] == 2 + 32 * 2 + 340 + 2850
    assert roles["backup_store"] == 64 and roles["monitor"] == 33
    assert roles["database"] > 32 + 340  # provinces, cities and some counties (mariadb)
    assert any("mariadb" in d.services for d in inv.devices.values())


def test_national_address_plan(national):
    inv = national[0]
    assert str(inv.network.address_plan.management) == "100.64.0.0/14"
    for code, py, name, _, _ in PROVINCES:
        prov = inv.sites[py]
        assert prov.code == code and name in prov.name
        assert str(prov.block) == f"10.{int(code)}.0.0/16"
        assert province_area(prov) == int(code) and inv.site_area(f"p{code}c01") == int(code)
        assert inv.site_area(py) == 0  # province cores sit in the backbone
        assert inv.sites[f"{py}_zaibei"].parent == py
    prefixes = {lv: {s.block.prefixlen for s in inv.sites.values() if s.level == lv} for lv in (Level.city, Level.county)}
    assert prefixes[Level.city] and prefixes[Level.city] <= set(range(20, 23))  # cities /20-/22
    assert prefixes[Level.county] and prefixes[Level.county] <= set(range(24, 29))  # counties /24-/28
    assert all(d.management in inv.network.address_plan.management for d in inv.devices.values())


def test_national_homing(national):
    inv = national[0]
    uplinks: dict[str, list] = {}
    planned = 0
    for link in inv.links.values():
        if link.kind == LinkKind.lan:
            continue
        for end in link.ends():
            site = inv.site_of(end.device)
            if site.level == Level.county and inv.is_uplink(link, end.device):
                uplinks.setdefault(site.id, []).append(link)
        planned += link.state == LinkState.planned
    dual = [s for s in inv.sites.values() if s.level == Level.county and s.homing == "dual"]
    single = [s for s in inv.sites.values() if s.level == Level.county and s.homing == "single"]
    assert len(dual) > 500 and len(single) > 1000 and planned >= 10
    for s in dual:
        active = [lk for lk in uplinks[s.id] if lk.state == LinkState.active]
        cities = {inv.site_of(e.device).id for lk in active for e in lk.ends()} - {s.id}
        assert len(active) == 2 and len(cities) == 2, s.id
        assert {inv.sites[c].parent for c in cities} == {inv.province_of(s.id).id}
    for s in single:
        assert sum(lk.state == LinkState.active for lk in uplinks[s.id]) == 1, s.id
    # every city is uplinked to its province core and its DR router
    cities = [s for s in inv.sites.values() if s.level == Level.city]
    assert len(cities) == 340
    for s in cities:
        far = {inv.site_of(e.device).level for d in inv.devices_by_site[s.id]
               for lk in inv.links_by_device.get(d, []) for e in inv.links[lk].ends()}
        assert {Level.province, Level.dr} <= far, s.id


def test_deterministic_for_a_seed():
    assert generate(provinces=4, cities=None, counties=None, seed=3) == generate(4, None, None, seed=3)
    assert generate(4, None, None, seed=3) != generate(4, None, None, seed=4)
    assert generate(seed=0) == generate(seed=0)


def test_default_counts_follow_real_shares():
    assert default_counts(32) == (340, 2850)
    cities, counties = default_counts(3)
    assert 3 <= cities < 40 and 100 < counties < 300


@pytest.mark.parametrize("kw", [dict(provinces=0), dict(provinces=33), dict(provinces=2, cities=1),
                                dict(provinces=1, cities=100), dict(provinces=1, cities=1, counties=1000),
                                dict(counties=-1)])
def test_sizes_that_do_not_fit(kw):
    with pytest.raises(gen.GenerateError):
        generate(**kw)


def test_edge_sizes_are_valid(tmp_path):
    for i, kw in enumerate([dict(provinces=1, cities=1, counties=0), dict(provinces=2, cities=2, counties=1),
                            dict(provinces=1, cities=28, counties=300)]):
        out = tmp_path / f"inv{i}"
        write(generate(**kw), out)
        inv = load(out)
        assert levels(inv)[Level.county] == kw["counties"]


# --- writer ---------------------------------------------------------------------------------------
FILES = {"network.yml": "# new\n", "ministry.yml": "# new\n"}


def test_write_creates_and_refuses_to_clobber(tmp_path):
    out = tmp_path / "inv"
    write(FILES, out)
    assert sorted(p.name for p in out.iterdir()) == ["ministry.yml", "network.yml"]
    assert oct(out.stat().st_mode & 0o777) == "0o755"
    with pytest.raises(FileExistsError, match="directory is not empty; use --force"):
        write({"x.yml": ""}, out)
    assert sorted(p.name for p in out.iterdir()) == ["ministry.yml", "network.yml"]
    write({"x.yml": "# forced\n"}, out, force=True)
    assert [p.name for p in out.iterdir()] == ["x.yml"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inv"]  # no temp or old dirs left


def test_write_into_empty_dir_and_refuse_file(tmp_path):
    (tmp_path / "empty").mkdir()
    write(FILES, tmp_path / "empty")
    assert (tmp_path / "empty" / "network.yml").read_text() == "# new\n"
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError, match="exists and is not a directory"):
        write(FILES, tmp_path / "file", force=True)


def test_write_is_atomic_when_rename_fails(tmp_path, monkeypatch):
    out = tmp_path / "inv"

    def boom(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(gen.os, "rename", boom)
    with pytest.raises(OSError):
        write(FILES, out)
    assert list(tmp_path.iterdir()) == []  # neither the target nor a temp dir


def test_forced_write_keeps_old_tree_when_swap_fails(tmp_path, monkeypatch):
    out = tmp_path / "inv"
    write({"old.yml": "# old\n"}, out)
    real_rename, calls = os.rename, []

    def second_rename_fails(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:  # 1st moves the old tree aside, 2nd would swap the new one in
            raise OSError(5, "Input/output error")
        return real_rename(src, dst)

    monkeypatch.setattr(gen.os, "rename", second_rename_fails)
    with pytest.raises(OSError):
        write(FILES, out, force=True)
    assert [p.name for p in out.iterdir()] == ["old.yml"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inv"]


def test_write_is_atomic_when_a_file_fails(tmp_path, monkeypatch):
    out = tmp_path / "inv"
    real, written = gen.write_atomic, []

    def flaky(path, *a, **kw):
        if written:
            raise OSError(28, "No space left on device")
        written.append(path)
        return real(path, *a, **kw)

    monkeypatch.setattr(gen, "write_atomic", flaky)
    with pytest.raises(OSError):
        write(FILES, out)
    assert written and list(tmp_path.iterdir()) == []


# --- CLI ------------------------------------------------------------------------------------------
def test_cli_generate(netops, tmp_path):
    out = tmp_path / "gen"
    r = netops("inventory", "generate", "--out", str(out), "--provinces", "2", "--seed", "5", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["ok"] is True and data["provinces"] == 2 and data["out"] == str(out)
    cities, counties = default_counts(2)
    assert data["cities"] == cities and data["counties"] == counties
    inv = load(out)
    assert len(inv.devices) == data["devices"] and len(inv.links) == data["links"] and len(inv.sites) == data["sites"]
    assert generate(2, cities, counties, 5) == {p.name: p.read_text(encoding="utf-8") for p in out.iterdir()}
    # the same command again refuses, one line, exit 2; --force replaces
    r = netops("inventory", "generate", "--out", str(out), "--provinces", "2")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == f"netops: {out}: directory is not empty; use --force to replace it\n"
    r = netops("inventory", "generate", "--out", str(out), "--provinces", "1", "--cities", "2", "--counties", "5",
               "--force")
    assert r.returncode == 0
    assert "1 provinces 省, 2 cities 市, 5 counties 县" in r.stdout
    assert levels(load(out))[Level.county] == 5


@pytest.mark.parametrize("args, msg", [(["--provinces", "40"], "provinces must be between 1 and 32"),
                                       (["--provinces", "2", "--cities", "1"], "every province needs a city"),
                                       (["--provinces", "1", "--cities", "100"], "do not fit the address plan"),
                                       # ran 17 s and 0.5 GB before the address plan gave up
                                       (["--counties", "999999999"], "inventory generate: --counties 999999999: at most "
                                                                     "10,000 最多 (the real network has 2,850)"),
                                       (["--cities", "5000"], "--cities 5000: at most 1,000")])
def test_cli_generate_bad_sizes(netops, tmp_path, args, msg):
    r = netops("inventory", "generate", "--out", str(tmp_path / "x"), *args)
    assert r.returncode == 2
    assert len(r.stderr.splitlines()) == 1 and msg in r.stderr
    assert not (tmp_path / "x").exists()


def test_generated_inventory_validates_via_cli(netops, tmp_path):
    out = tmp_path / "gen"
    write(generate(provinces=2, cities=4, counties=20, seed=1), out)
    r = netops("inventory", "validate", "-i", str(out), "--json")
    assert r.returncode == 0, r.stdout
    assert json.loads(r.stdout)["sites"]["county"] == 20


def test_broken_generated_inventory_is_caught(tmp_path):
    """Sanity: the loader does look at generated files (a corrupted one fails)."""
    files = generate(provinces=1, cities=2, counties=4)
    files["beijing.yml"] = files["beijing.yml"].replace("block: 10.11.16.0/20", "block: 10.12.16.0/20", 1)
    write(files, tmp_path / "inv")
    with pytest.raises(InventoryError, match=r"field 'block': 10\.12\.16\.0/20 is outside the parent's block"):
        load(tmp_path / "inv")
