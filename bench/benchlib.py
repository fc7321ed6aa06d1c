"""The contract every benchmark keeps: ONE JSON line on stdout whose ``ok`` says whether the goal the
line names (``goal_s``, …; docs/BENCHMARKS.md) was met, and exit status 1 when it was not, so a
script or a CI step can rely on the status instead of reading the line."""
from __future__ import annotations

import json


def finish(result: dict) -> int:
    """Print ``result`` as the benchmark's line; return its exit status (0 if ``result["ok"]``, else 1)."""
    ok = result["ok"]
    print(json.dumps(result, ensure_ascii=False))
    return 0 if ok else 1
