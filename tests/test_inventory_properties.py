"""Property tests: whatever the files hold, load() either returns an inventory or raises InventoryError
whose problems are one line each, in the documented format, naming a file. Never another exception."""
from __future__ import annotations

import copy
import re
import shutil
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jinbao_netops.inventory import DEFAULT_INVENTORY, InventoryError, load

PROBLEM = re.compile(r"^\S+(:\d+)?: .+: field '.+': .+$")
YAML_PROBLEM = re.compile(r"^\S+:\d+: YAML error: .+$")
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

DEFAULT_DOCS = {p.name: yaml.safe_load(p.read_text(encoding="utf-8")) for p in sorted(DEFAULT_INVENTORY.glob("*.yml"))}


def check(path: Path) -> str:
    """Load ``path``; on failure check every problem line. Returns 'ok' or 'bad'."""
    try:
        load(path)
    except InventoryError as e:
        assert e.problems, "InventoryError without problems"
        assert str(e).splitlines() == e.problems, "a problem spans several lines"
        for line in e.problems:
            assert PROBLEM.match(line) or YAML_PROBLEM.match(line), f"bad problem line: {line!r}"
            assert line.startswith(str(path)), f"problem does not name a file in the inventory: {line!r}"
        return "bad"
    return "ok"


def check_text(data: bytes | str) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "inv.yml"
        if isinstance(data, bytes):
            f.write_bytes(data)
        else:
            f.write_text(data, encoding="utf-8", errors="surrogatepass")
        return check(f)


# --- (1) arbitrary file contents ---------------------------------------------------------------
@SETTINGS
@given(st.binary(max_size=400))
def test_random_bytes(data):
    check_text(data)


YAMLISH = st.lists(st.sampled_from(list("abcdeilnorstuvwxyz019:-_ ,.'\"{}[]#&*!|>%@`?~\n\t\\/") +
                                   ["sites:", "devices:", "links:", "network:", "credentials:", "  ", "\n  ", "\n    ",
                                    "- ", ": ", "10.0.0.0/8", "level: ", "parent: ", "block: ", "null", "2020-13-45",
                                    "!!python/object:os.system", "!!int", "!!float", "!!bool", "!!binary", "<<: *a",
                                    "&a ", "*a", "\u2028", "\x85", "\x00", "\r", "广东", "---\n", "...\n", "%YAML 1.1\n"]),
                   max_size=120).map("".join)


@SETTINGS
@given(YAMLISH)
def test_random_yamlish_text(text):
    check_text(text)


# --- (2) structured mutations of the default inventory ------------------------------------------
JUNK = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
                 st.text(max_size=30), st.lists(st.integers(), max_size=3),
                 st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
                 st.sampled_from(["", "bu", "gd-r1", "guangzhou", "ops", "10.44.0.0/16", "10.254.44.11",
                                  "gd-r1:eth1", "eth1", "dual", "county", "10.44.255.2/31", "0.0.0.0/0", "v2c"]))


def paths(node, prefix=()):
    """Every path (tuple of keys/indexes) into a parsed YAML document."""
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from paths(v, (*prefix, i))


def get(node, path):
    for k in path:
        node = node[k]
    return node


def ids(docs) -> list[str]:
    out = []
    for doc in docs.values():
        for section in ("sites", "devices", "links", "credentials"):
            body = doc.get(section) if isinstance(doc, dict) else None
            if isinstance(body, dict):
                out.extend(k for k in body if isinstance(k, str))
    return out


@st.composite
def mutated(draw):
    docs = copy.deepcopy(DEFAULT_DOCS)
    for _ in range(draw(st.integers(1, 3))):
        fname = draw(st.sampled_from(sorted(docs)))
        doc = docs[fname]
        all_paths = [p for p in paths(doc) if p]
        if not all_paths:
            continue
        path = draw(st.sampled_from(all_paths))
        parent, key = get(doc, path[:-1]), path[-1]
        op = draw(st.sampled_from(["drop", "junk", "duplicate", "rename_ref", "move"]))
        if op == "drop":
            del parent[key]
        elif op == "junk":
            parent[key] = draw(JUNK)
        elif op == "duplicate":  # the same object again: in another file (same section) or under a new key
            if len(path) == 2 and isinstance(parent, dict) and draw(st.booleans()):
                other = docs[draw(st.sampled_from(sorted(docs)))]
                section = other.setdefault(path[0], {}) if isinstance(other, dict) else None
                if isinstance(section, dict):
                    section[key] = copy.deepcopy(parent[key])
            elif isinstance(parent, dict):
                parent[draw(st.sampled_from([f"{key}x", "gd-r1", "bu", "guangzhou", "ops"]))] = copy.deepcopy(parent[key])
            else:
                parent.append(copy.deepcopy(parent[key]))
        elif op == "rename_ref":  # point a string somewhere at another existing id
            if isinstance(parent[key], str):
                parent[key] = draw(st.sampled_from(ids(docs) or ["x"]))
        else:  # move an object to another section
            if isinstance(parent, dict) and len(path) == 2:
                obj = parent.pop(key)
                doc.setdefault(draw(st.sampled_from(["sites", "devices", "links", "credentials"])), {})
                section = doc[draw(st.sampled_from([s for s in doc if isinstance(doc[s], dict)] or ["sites"]))]
                if isinstance(section, dict):
                    section[key] = obj
    return docs


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_default_inventory(docs):
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "inv"
        d.mkdir()
        for name, doc in docs.items():
            (d / name).write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
        check(d)


def test_unmutated_default_roundtrip_is_valid():
    """The mutation harness's baseline (default docs dumped back to YAML) is itself valid."""
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "inv"
        d.mkdir()
        for name, doc in DEFAULT_DOCS.items():
            (d / name).write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
        assert check(d) == "ok"


# --- targeted regressions found by the properties ----------------------------------------------
def test_checker_rejects_bad_lines():
    """The property's own checker can fail (so a green run means something)."""
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "inv"
        shutil.copytree(DEFAULT_INVENTORY, d)
        (d / "ministry.yml").write_text("sites: [", encoding="utf-8")
        assert check(d) == "bad"
    assert not PROBLEM.match("something went wrong")
    assert not YAML_PROBLEM.match("x.yml: YAML error: no line")


def problems_for(extra: str | bytes, name: str = "zz.yml") -> list[str]:
    """Problems of the default inventory plus one extra file (relative to the inventory directory)."""
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "inv"
        shutil.copytree(DEFAULT_INVENTORY, d)
        f = d / name
        f.write_bytes(extra) if isinstance(extra, bytes) else f.write_text(extra, encoding="utf-8")
        try:
            load(d)
        except InventoryError as e:
            for line in e.problems:
                assert PROBLEM.match(line) or YAML_PROBLEM.match(line), line
            return [line.replace(f"{d}/", "") for line in e.problems]
        return []


def test_numbers_are_not_addresses():
    """pydantic alone reads ``block: true`` as 0.0.0.1/32 and ``management: 1`` as 0.0.0.1."""
    got = problems_for("sites:\n  x: {name: x, level: city, parent: guangdong, block: true}\n")
    assert got == ["zz.yml:2: site 'x': field 'block': write the address as text (e.g. 10.44.0.0/16 or "
                   "10.254.44.11), not bool True"]
    got = problems_for("devices:\n  x-r1: {site: guangdong, role: server, platform: debian, management: 1, "
                       "credentials: ops}\n")
    assert len(got) == 1 and "device 'x-r1': field 'management': write the address as text" in got[0]


def test_ids_follow_the_patterns():
    got = problems_for("sites:\n  Guang Zhou: {name: x, level: city, parent: guangdong, block: 10.44.99.0/24}\n")
    assert got == ["zz.yml:2: site 'Guang Zhou': field 'id': String should match pattern '^[a-z][a-z0-9_]{0,39}$'"]
    got = problems_for("devices:\n  GD_R9: {site: guangdong, role: server, platform: debian, management: 10.254.44.99, "
                       "credentials: ops}\n")
    assert got == ["zz.yml:2: device 'GD_R9': field 'id': String should match pattern '^[a-z][a-z0-9-]{0,39}$'"]


def test_line_breaks_from_the_input_are_escaped():
    got = problems_for('sites:\n  "a\\nb\\u2028c": {name: x, level: city, parent: guangdong, block: 10.44.99.0/24}\n')
    assert len(got) == 1 and "site 'a\\nb\\u2028c': field 'id'" in got[0]


@pytest.mark.parametrize("text, want", [
    (b"sites:\n  bu2: {name: \xff}\n", "zz.yml:2: YAML error: not UTF-8 text (invalid start byte at byte 21)"),
    ("sites:\n  x: {name: !!int abc}\n", "zz.yml:2: YAML error: bad int value 'abc': invalid literal for int()"),
    ("sites:\n  x: {name: !!bool abc}\n", "zz.yml:2: YAML error: bad bool value 'abc'"),
    ("sites:\n\n  x: [" + "[" * 600 + "]" * 600 + "]\n", "zz.yml:3: YAML error: nested too deeply"),
    ("a: b\n\nc: \x07\n", "zz.yml:3: YAML error: control characters are not allowed"),
    ("sites: [\n", "zz.yml:2: YAML error: "),
    ("- just\n- a list\n", "zz.yml: document: field '(top level)': expected a mapping of sections"),
    ("devices: [a, b]\n", "zz.yml: document: field 'devices': expected a mapping of id → object, got list"),
    ("network: {id: x, name: x, address_plan: {national: 10.0.0.0/8, management: 10.254.0.0/16, "
     "ops_host: 10.254.0.1}}\n", "zz.yml: document: field 'network': declared again (first in "),
])
def test_file_level_problems(text, want):
    got = problems_for(text)
    assert len(got) == 1 and got[0].startswith(want), got


def test_dates_are_text():
    """Nothing in the inventory is a date: a date-like name is just a name (and 2020-13-45 is no crash)."""
    assert problems_for("sites:\n  x: {name: 2020-13-45, level: city, parent: guangdong, block: 10.44.99.0/24}\n") == []
