"""Audit history and trend: every saved audit is kept as a dated JSON report in a history directory
(``--history DIR``, else ``audit-history/`` beside the ``--save`` report: the cycle keeps
``out/audit-history/``), and ``netops audit trend`` shows, per clause and level, how the 符合 counts
moved from one audit to the next."""
from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from pathlib import Path

from jinbao_netops.errors import UsageError
from jinbao_netops.files import write_atomic
from jinbao_netops.inventory.model import LEVEL_NAMES, Level

from .audit import UNREACHABLE
from .catalogue import PASS, VERDICTS

DEFAULT = Path("out") / "audit-history"   # the cycle's output directory (netops cycle --out out)
SUBDIR = "audit-history"
PREFIX = "audit-"
ALL = "all"
LEVELS = {lv.value for lv in Level}


def history_dir(history: str | None, save: Path | None) -> Path | None:
    """Where this audit is kept: ``--history DIR``, else ``audit-history/`` beside the ``--save`` report."""
    if history:
        return Path(history)
    return save.parent / SUBDIR if save else None


def keep(folder: Path, report: dict) -> Path:
    """The report as ``audit-<finished>.json`` in ``folder`` (made here: the history is this command's own)."""
    folder.mkdir(exist_ok=True)
    stamp = datetime.fromisoformat(report["finished"]).strftime("%Y%m%dT%H%M%SZ")
    name, n = f"{PREFIX}{stamp}.json", 0
    while (folder / name).exists():  # two audits finished within the same second
        n += 1
        name = f"{PREFIX}{stamp}-{n}.json"
    return write_atomic(folder / name, json.dumps(report, ensure_ascii=False, indent=1) + "\n", 0o640)


def _check(path: Path, data) -> list[str]:
    """What keeps a file from being a saved audit, one line each (file, object, field)."""
    if not isinstance(data, dict):
        return [f"{path}: report: not a netops audit JSON report"]
    problems = [f"{path}: report: field '{k}': missing" for k in ("finished", "scope", "hosts") if k not in data]
    if "finished" in data:
        try:
            datetime.fromisoformat(str(data["finished"]))
        except ValueError:
            problems.append(f"{path}: report: field 'finished': not an ISO time: {str(data['finished'])[:40]!r}")
    hosts = data.get("hosts")
    if "hosts" in data and not isinstance(hosts, list):
        problems.append(f"{path}: report: field 'hosts': not a list")
    for i, h in enumerate(hosts if isinstance(hosts, list) else []):
        if not isinstance(h, dict) or not isinstance(h.get("results"), list) or h.get("level") not in LEVELS:
            problems.append(f"{path}: hosts[{i}]: field 'results'/'level': not an audited host")
            continue
        for j, r in enumerate(h["results"]):
            if not isinstance(r, dict) or r.get("verdict") not in VERDICTS or not isinstance(r.get("clause"), str):
                problems.append(f"{path}: hosts[{i}].results[{j}]: field 'verdict'/'clause': not a result")
    return problems


def load(folder: Path) -> list[tuple[Path, dict]]:
    """Every saved audit in ``folder``, oldest first; all problems at once, exit status 2."""
    if not folder.is_dir():
        raise UsageError(f"{folder}: audit history: no such directory (netops audit --save PATH or --history DIR keeps one)")
    out, problems = [], []
    for p in sorted(folder.glob(f"{PREFIX}*.json")):
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            problems.append(f"{p}: report: cannot read: {str(e).splitlines()[0]}")
            continue
        found = _check(p, data)
        problems += found
        if not found:
            out.append((p, data))
    if problems:
        raise UsageError(problems=problems)
    if not out:
        raise UsageError(f"{folder}: audit history: no saved audits ({PREFIX}*.json)")
    return sorted(out, key=lambda pd: (datetime.fromisoformat(pd[1]["finished"]), _sequence(pd[0])))


def _sequence(path: Path) -> tuple[int, str]:
    """Order of audits that finished within the same second: ``audit-<stamp>.json`` before
    ``audit-<stamp>-1.json`` before ``-2`` (by name, ``-`` would sort before ``.``)."""
    stem = path.stem.removeprefix(PREFIX)
    _, dash, n = stem.rpartition("-")
    return (int(n), stem) if dash and n.isdigit() else (0, stem)


def _counts(report: dict) -> dict[tuple[str, str], Counter]:
    """(clause, level) → verdict counts, with the level ``all`` and the clause ``all`` as totals."""
    out: dict[tuple[str, str], Counter] = {}
    for h in report["hosts"]:
        for r in h["results"]:
            clause = r["clause"]
            for key in ((clause, h["level"]), (clause, ALL), (ALL, h["level"]), (ALL, ALL)):
                out.setdefault(key, Counter())[r["verdict"]] += 1
    return out


def _clause_key(clause: str) -> tuple:
    if clause == ALL:
        return ((),)
    num, _, sub = clause.partition(" ")
    return (tuple(int(x) for x in num.split(".") if x.isdigit()), sub)


def _level_key(level: str) -> int:
    return -1 if level == ALL else list(LEVEL_NAMES).index(Level(level))  # senior first


def trend(saved: list[tuple[Path, dict]]) -> dict:
    """Per (clause, level): the 符合 count and the assessed total of each audit, and the change from the
    first to the last audit that assessed it."""
    audits = [{"file": str(p), "finished": r["finished"], "scope": r["scope"], "hosts": len(r["hosts"]),
               "unreachable": sum(h.get("status") == UNREACHABLE for h in r["hosts"])} for p, r in saved]
    counts = [_counts(r) for _, r in saved]
    keys = sorted({k for c in counts for k in c}, key=lambda k: (_clause_key(k[0]), _level_key(k[1])))
    rows = []
    for clause, level in keys:
        series = [{"finished": a["finished"], "pass": c[(clause, level)][PASS] if (clause, level) in c else None,
                   "total": sum(c[(clause, level)].values()) if (clause, level) in c else None,
                   "verdicts": {v: c[(clause, level)][v] for v in VERDICTS} if (clause, level) in c else None}
                  for a, c in zip(audits, counts)]
        seen = [s for s in series if s["pass"] is not None]
        rows.append({"clause": clause, "level": level, "series": series,
                     "delta_pass": seen[-1]["pass"] - seen[0]["pass"] if seen else 0})
    return {"audits": audits, "trend": rows}
