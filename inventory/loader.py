"""The one inventory loader: YAML files → typed objects → validated ``Inventory``.

Every other part of the suite (Ansible plugin, lab, collectors, audit, backup) reads the
inventory through ``load()``; nothing else parses the inventory YAML.
"""
from __future__ import annotations

import gc
import os
import re
from contextlib import contextmanager
from pathlib import Path

import yaml
from pydantic import ValidationError

from .model import _ENDPOINT, Credentials, Device, Link, Network, Site, _Obj
from .store import Inventory

SECTIONS = {"network": Network, "credentials": Credentials, "sites": Site, "devices": Device, "links": Link}
NOUN = {"credentials": "credentials", "sites": "site", "devices": "device", "links": "link"}
DEFAULT_INVENTORY = Path(__file__).parent / "default"


class InventoryError(Exception):
    """Bad inventory: ``problems`` holds one line per problem (file, object, field, message)."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


class _LineDict(dict):
    line = 0


_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):  # type: ignore[misc, valid-type]
    """SafeLoader that records each mapping's line and rejects duplicate keys."""


def _construct_mapping(loader, node):
    loader.flatten_mapping(node)
    out = _LineDict()
    out.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(None, None, "a mapping key must be a scalar", key_node.start_mark)
        if key in out:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        out[key] = loader.construct_object(value_node, deep=True)
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml(path: Path) -> object:
    """Parse one YAML file; raises InventoryError with a one-line message on bad YAML."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise InventoryError([f"{path}: not UTF-8 text ({e.reason} at byte {e.start})"]) from None
    except OSError as e:
        raise InventoryError([f"{path}: cannot read: {e.strerror}"]) from None
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader derives from SafeLoader
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        what = getattr(e, "problem", None) or str(e).splitlines()[0]
        return InventoryError([f"{where}: YAML error: {what}"])
    except (ValueError, RecursionError) as e:  # e.g. invalid timestamps, absurd nesting
        return InventoryError([f"{path}: YAML error: {str(e).splitlines()[0] if str(e) else type(e).__name__}"])


def inventory_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in (".yml", ".yaml") and p.is_file())
        if not files:
            raise InventoryError([f"{path}: no .yml files in this directory"])
        return files
    if path.is_file():
        return [path]
    raise InventoryError([f"{path}: no such inventory file or directory"])


_FIELD_MSG = re.compile(r"^(?:Value error, )?@([\w.]+): (.*)$", re.S)


def _pydantic_problems(where: str, obj: str, err: ValidationError) -> list[str]:
    out = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"])
        msg = e["msg"]
        m = _FIELD_MSG.match(msg)
        if m:
            loc = ".".join(p for p in (loc, m.group(1)) if p)
            msg = m.group(2)
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        if e["type"] == "extra_forbidden":
            msg = "unknown field"
        elif e["type"] == "missing":
            msg = "required field is missing"
        out.append(f"{where}: {obj}: field '{loc or '(object)'}': {msg}")
    return out


def _build(cls: type[_Obj], raw: object, file: str, line: int, key: str | None, problems: list[str], obj: str):
    where = f"{file}:{line}" if line else file
    if not isinstance(raw, dict):
        problems.append(f"{where}: {obj}: field '(object)': expected a mapping, got {type(raw).__name__}")
        return None
    data = dict(raw)
    if key is not None:
        if "id" in data:
            problems.append(f"{where}: {obj}: field 'id': the id is the mapping key; remove this field")
            return None
        data["id"] = key
    try:
        o = cls.model_validate(data)
    except ValidationError as e:
        problems.extend(_pydantic_problems(where, obj, e))
        return None
    o._file, o._line = file, line
    return o


def load(path: str | os.PathLike | None = None) -> Inventory:
    """Load and validate an inventory directory (every *.yml in it) or a single file.

    ``path`` defaults to $NETOPS_INVENTORY, then the embedded default inventory.
    Raises InventoryError listing every problem found.
    """
    path = Path(path or os.environ.get("NETOPS_INVENTORY") or DEFAULT_INVENTORY)
    with paused_gc():
        return _load(path)


@contextmanager
def paused_gc():
    """Loading builds hundreds of thousands of acyclic objects; the cyclic GC would rescan them all
    again and again (more than half the load time of a national inventory). Pause it meanwhile."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _load(path: Path) -> Inventory:
    from .validate import validate

    files = inventory_files(path)
    problems: list[str] = []
    inv = Inventory(root=path)
    seen: dict[tuple[str, str], str] = {}
    # Content that could not be read at all (bad YAML, an unknown or malformed section) may hold the
    # objects other files refer to; cross-object checks would then report phantom problems, so they
    # wait until every file reads.
    incomplete = False
    for f in files:
        fname = str(f)
        doc = read_yaml(f)
        if isinstance(doc, InventoryError):
            problems.extend(doc.problems)
            incomplete = True
            continue
        if doc is None:
            continue
        if not isinstance(doc, dict):
            problems.append(f"{fname}: top level must be a mapping of sections ({', '.join(SECTIONS)})")
            incomplete = True
            continue
        for section, body in doc.items():
            line = getattr(doc, "line", 0)
            if section not in SECTIONS:
                problems.append(f"{fname}: section {section!r}: unknown section; expected one of {', '.join(SECTIONS)}")
                incomplete = True
                continue
            if section == "network":
                if inv.network is not None:
                    problems.append(f"{fname}: network: declared again (first in {inv.network._file})")
                    continue
                n = _build(Network, body, fname, getattr(body, "line", line), None, problems, "network")
                if n is None:
                    inv.broken.add("network")
                else:
                    inv.network = n
                continue
            if body is None:
                continue
            if not isinstance(body, dict):
                problems.append(f"{fname}: section '{section}': expected a mapping of id → object, got {type(body).__name__}")
                incomplete = True
                continue
            target = getattr(inv, section)
            for key, raw in body.items():
                noun = NOUN[section]
                obj = f"{noun} '{key}'"
                if not isinstance(key, str):
                    problems.append(f"{fname}:{getattr(body, 'line', 0)}: {obj}: field '(id)': the id must be a string")
                    continue
                first = seen.get((section, key))
                if first is not None:
                    problems.append(f"{fname}:{getattr(raw, 'line', 0)}: {obj}: field '(id)': declared again (first in {first})")
                    continue
                seen[(section, key)] = fname
                o = _build(SECTIONS[section], raw, fname, getattr(raw, "line", 0), key, problems, obj)
                if o is None:
                    inv.broken.add(key)  # cross-checks skip references to it instead of repeating the fault
                    if section == "devices" and isinstance(raw, dict) and isinstance(raw.get("site"), str):
                        inv.broken_device_sites.add(raw["site"])
                    if section == "links" and isinstance(raw, dict):
                        for side in ("a", "b"):
                            m = _ENDPOINT.match(raw[side]) if isinstance(raw.get(side), str) else None
                            if m:
                                inv.broken_ends.add((m.group(1), m.group(2)))
                else:
                    target[key] = o
    if not incomplete:
        if inv.network is None and "network" not in inv.broken:
            problems.append(f"{path}: network: no file declares the 'network' section")
        problems.extend(validate(inv))
    if problems:
        raise InventoryError(problems)
    inv.index()
    return inv
