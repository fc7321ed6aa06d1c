"""Security: the 等保 2.0 三级 baseline catalogue, audit engine, reports and device rule packs (issue 4)."""
