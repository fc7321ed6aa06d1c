"""The one inventory loader: YAML files → typed objects → validated ``Inventory``.

Every other part of the suite (Ansible plugin, lab, collectors, audit, backup) reads the
inventory through ``load()``; nothing else parses the inventory YAML.
"""
from __future__ import annotations

import errno
import gc
import os
import re
import stat
from contextlib import contextmanager
from pathlib import Path

import yaml
from pydantic import ValidationError

from jinbao_netops.errors import UsageError
from jinbao_netops.files import recover

from .model import _ENDPOINT, Credentials, Device, Flow, Link, Network, Site, _Obj
from .store import Inventory

SECTIONS = {"network": Network, "credentials": Credentials, "sites": Site, "devices": Device, "links": Link,
            "zone_policy": Flow}
NOUN = {"credentials": "credentials", "sites": "site", "devices": "device", "links": "link", "zone_policy": "flow"}
DEFAULT_INVENTORY = Path(__file__).parent / "default"


class InventoryError(UsageError):
    """Bad inventory: ``problems`` holds one line per problem (file, object, field, message)."""

    def __init__(self, problems: list[str]):
        super().__init__(problems=problems)


def one_line(text: str) -> str:
    """Escape line breaks and other unprintable characters that came from the input (keys, values)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


class _LineDict(dict):
    line = 0


_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):  # type: ignore[misc, valid-type]
    """SafeLoader that records each mapping's line and rejects duplicate keys."""


_STR = "tag:yaml.org,2002:str"
_Scalar = yaml.ScalarNode


def _construct_mapping(loader, node):
    loader.flatten_mapping(node)
    out = _LineDict()
    out.line = node.start_mark.line + 1
    construct = loader.construct_object
    for key_node, value_node in node.value:
        # Fast path for plain strings (most keys and values): the generic constructor costs a third of
        # the load time of a national inventory and gives the same str.
        key = key_node.value if key_node.tag == _STR and type(key_node) is _Scalar else construct(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(None, None, "a mapping key must be a scalar", key_node.start_mark)
        if key in out:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        out[key] = (value_node.value if value_node.tag == _STR and type(value_node) is _Scalar
                    else construct(value_node, deep=True))
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
# Nothing in the inventory is a date: read timestamp-like scalars as text (also keeps a bad date
# such as 2020-13-45 from raising a bare ValueError without a line).
_Loader.add_constructor("tag:yaml.org,2002:timestamp", lambda loader, node: loader.construct_scalar(node))


def _marked(construct):
    """Wrap a scalar constructor so a bad value (``!!int abc``) becomes a YAML error with a line."""

    def wrapped(loader, node):
        try:
            return construct(loader, node)
        except (ValueError, TypeError, OverflowError, LookupError) as e:
            why = "" if isinstance(e, LookupError) else f": {e}"
            raise yaml.constructor.ConstructorError(None, None, f"bad {node.tag.rsplit(':', 1)[-1]} value "
                                                    f"{node.value!r}{why}", node.start_mark) from None

    return wrapped


for _tag in ("int", "float", "bool"):
    _full = f"tag:yaml.org,2002:{_tag}"
    _Loader.add_constructor(_full, _marked(_Loader.yaml_constructors[_full]))


def _deepest_line(text: str, limit: int = 50) -> int:
    """Line of the first node nested deeper than ``limit`` (composed by the C parser, walked iteratively)."""
    try:
        todo = [(yaml.compose(text, Loader=_Base), 0)]  # noqa: S506 - composing only, no construction
    except (yaml.YAMLError, RecursionError):
        return 1
    while todo:
        node, depth = todo.pop()
        if depth > limit:
            return node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            todo.extend((n, depth + 1) for kv in node.value for n in kv)
        elif isinstance(node, yaml.SequenceNode):
            todo.extend((n, depth + 1) for n in node.value)
    return 1


MAX_BYTES = 16 << 20          # per file: 45 × the largest province file of the national inventory
MAX_ALIAS_NODES = 100_000     # nodes aliases may add when the document is walked as a tree


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for kv in node.value for n in kv]
    return node.value if isinstance(node, yaml.SequenceNode) else []


def _alias_problem(root: yaml.Node) -> tuple[str, yaml.Node] | None:
    """What aliases do to the document walked as a tree (what validating, printing or dumping it costs):
    a problem and the node it concerns when they add more than MAX_ALIAS_NODES nodes (an alias bomb:
    a few lines, billions of nodes) or loop back into themselves. Linear in the distinct nodes."""
    size: dict[int, int] = {}  # id → nodes in its expanded subtree (Python ints do not overflow)
    shared: yaml.Node | None = None  # the first node referenced more than once
    todo: list[tuple[yaml.Node, bool]] = [(root, False)]
    while todo:
        node, done = todo.pop()
        if done:
            size[id(node)] = 1 + sum(size[id(k)] for k in _children(node))
        elif id(node) not in size:  # first reached (document order): its anchor, if it has one
            size[id(node)] = -1
            todo.append((node, True))
            todo.extend((k, False) for k in reversed(_children(node)))
        elif size[id(node)] == -1:  # not finished: we are inside it, so an alias inside its own anchor
            return "an alias refers to the node that contains it (recursive alias)", node
        else:
            shared = shared or node
    if size[id(root)] - len(size) > MAX_ALIAS_NODES:
        return (f"aliases expand the document by more than {MAX_ALIAS_NODES:,} nodes (an alias bomb)", shared or root)
    return None


def read_yaml(path: Path, sections=SECTIONS, unlike: str = "not an inventory file 不是清单文件",
              max_bytes: int = MAX_BYTES) -> object:
    """Parse one YAML file the user gave, safely: a readable regular file (never a FIFO, a device, a
    directory or a dangling link), at most ``max_bytes``, UTF-8, aliases bounded (``_alias_problem``),
    no duplicate keys, no arbitrary tags. The document must be empty or a mapping with at least one
    of ``sections`` as a key; anything else is reported as ``unlike``, without quoting the file (an
    ``-i /etc/shadow`` must not echo a line of it). Returns the data, or (not raises) an InventoryError
    with a one-line message."""
    def bad(msg: str, line: int | None = None) -> InventoryError:
        if line is None:
            return InventoryError([f"{path}: document: field '(file)': {msg}"])
        return InventoryError([f"{path}:{line}: YAML error: {msg}"])

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # a FIFO must not block the open
    except OSError as e:
        if e.errno == errno.ENOENT and os.path.islink(path):
            return bad("a dangling symbolic link 符号链接指向不存在的文件")
        if e.errno == errno.ELOOP:
            return bad("a symbolic link loop 符号链接循环")
        if e.errno == errno.ENXIO:
            return bad("a socket, not a regular file 不是普通文件")
        return bad(f"cannot read 无法读取: {e.strerror or e}")
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = {stat.S_IFDIR: "a directory", stat.S_IFIFO: "a FIFO", stat.S_IFCHR: "a device",
                    stat.S_IFBLK: "a device"}.get(stat.S_IFMT(st.st_mode), "a special file")
            return bad(f"{kind}, not a regular file 不是普通文件")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            raw = fh.read(max_bytes + 1)
    except OSError as e:
        return bad(f"cannot read 无法读取: {e.strerror or e}")
    finally:
        os.close(fd)
    if len(raw) > max_bytes:
        return bad(f"larger than {max_bytes:,} bytes 文件过大")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        return bad(f"not UTF-8 text ({e.reason} at byte {e.start})", line)
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if not (isinstance(node, yaml.MappingNode)
                and any(isinstance(k, yaml.ScalarNode) and k.value in sections for k, _ in node.value)):
            got = "a mapping without any of them" if isinstance(node, yaml.MappingNode) else \
                {yaml.SequenceNode: "a list", yaml.ScalarNode: "text"}[type(node)]
            return InventoryError([f"{path}: document: field '(top level)': expected a mapping of sections "
                                   f"({', '.join(sections)}), got {got}: {unlike}"])
        if "&" in text:  # anchors, so maybe aliases
            alias = _alias_problem(node)
            if alias:
                return bad(alias[0], alias[1].start_mark.line + 1)
        return loader.construct_document(node)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        if mark is not None:
            line = mark.line + 1
        elif isinstance(getattr(e, "position", None), int):  # reader errors (e.g. control characters)
            line = text.count("\n", 0, e.position) + 1
        else:
            line = 1
        return bad(getattr(e, "problem", None) or getattr(e, "reason", None) or str(e).splitlines()[0], line)
    except RecursionError:
        return bad("nested too deeply", _deepest_line(text))
    finally:
        loader.dispose()


def inventory_files(path: Path) -> list[Path]:
    """The files of an inventory: a directory's ``*.yml``/``*.yaml`` entries (hidden ones — editor
    locks, the suite's staging — are not part of it), or the one file named. An entry that is not a
    readable regular file is reported by ``read_yaml``, never skipped."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in (".yml", ".yaml") and not p.name.startswith("."))
        if not files:
            raise InventoryError([f"{path}: no .yml files in this directory"])
        return files
    if path.exists() or path.is_symlink():
        return [path]
    raise InventoryError([f"{path}: no such inventory file or directory"])


_FIELD_MSG = re.compile(r"^(?:Value error, )?@([\w.]+): (.*)$", re.S)


def _where(fname: str, node: object) -> str:
    line = getattr(node, "line", 0)
    return f"{fname}:{line}" if line else fname


def schema_problems(where: str, obj: str, err: ValidationError) -> list[str]:
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
        problems.extend(schema_problems(where, obj, e))
        return None
    o._file, o._line = file, line
    return o


def load(path: str | os.PathLike | None = None) -> Inventory:
    """Load and validate an inventory directory (every *.yml in it) or a single file.

    ``path`` defaults to $NETOPS_INVENTORY, then the embedded default inventory.
    Raises InventoryError listing every problem found.
    """
    path = Path(path or os.environ.get("NETOPS_INVENTORY") or DEFAULT_INVENTORY)
    complete_interrupted(path)
    with paused_gc():
        return _load(path)


def complete_interrupted(path: Path) -> None:
    """Before anything reads the inventory: complete a multi-file change (``files.commit``, e.g. a
    link's provisioning) that a killed run left half-applied, so no reader ever sees some of its files
    old and some new."""
    where = path if path.is_dir() else path.parent
    try:
        recover(where)
    except OSError as e:
        raise InventoryError([f"{where}: document: field '(journal)': an interrupted change could not be completed "
                              f"未完成的变更无法补全: {e.strerror or e} (run netops as the inventory's owner)"]) from None


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
        for section, body in doc.items():
            line = getattr(doc, "line", 0)
            if section not in SECTIONS:
                problems.append(f"{fname}: document: field '{section}': unknown section; expected one of {', '.join(SECTIONS)}")
                incomplete = True
                continue
            if section == "network":
                if inv.network is not None:
                    problems.append(f"{fname}: document: field 'network': declared again (first in {inv.network._file})")
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
                problems.append(f"{fname}: document: field '{section}': expected a mapping of id → object, got {type(body).__name__}")
                incomplete = True
                continue
            target = getattr(inv, section)
            for key, raw in body.items():
                noun = NOUN[section]
                obj = f"{noun} '{key}'"
                if not isinstance(key, str):
                    problems.append(f"{_where(fname, body)}: {obj}: field '(id)': the id must be a string")
                    continue
                first = seen.get((section, key))
                if first is not None:
                    problems.append(f"{_where(fname, raw)}: {obj}: field '(id)': declared again (first in {first})")
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
            problems.append(f"{path}: document: field 'network': no file declares the 'network' section")
        problems.extend(validate(inv))
    if problems:
        raise InventoryError([one_line(p) for p in problems])
    inv.index()
    return inv
