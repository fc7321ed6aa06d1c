"""Audit history and `netops audit trend`: saved audits are kept dated, and the trend per clause and
level follows the 符合 counts from audit to audit (synthetic saved reports)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import clean_env

from jinbao_netops.errors import UsageError
from jinbao_netops.security import history
from jinbao_netops.security.catalogue import FAIL, MANUAL, PASS

FIX = Path(__file__).parent / "fixtures/security"


def report(finished: str, results: dict[tuple[str, str], list[str]], down: int = 0) -> dict:
    """A saved audit: one host per (host, level) with the verdicts of its clauses; ``down`` unreachable hosts."""
    hosts = [{"host": host, "level": level, "status": "ok",
              "results": [{"id": f"c{i}", "clause": clause, "verdict": v} for i, (clause, v) in enumerate(verdicts)]}
             for (host, level), verdicts in results.items()]
    hosts += [{"host": f"down{i}", "level": "county", "status": "unreachable", "results": []} for i in range(down)]
    return {"finished": finished, "scope": "all", "hosts": hosts}


A, B = "8.1.4.1 a)", "8.1.4.9 b)"


@pytest.fixture
def saved(tmp_path):
    folder = tmp_path / "audit-history"
    history.keep(folder, report("2027-01-01T00:00:00+00:00", {("c1", "county"): [(A, FAIL)], ("p1", "province"): [(A, FAIL)]}))
    history.keep(folder, report("2027-01-08T00:00:00+00:00", {("c1", "county"): [(A, PASS)], ("p1", "province"): [(A, FAIL)]}, down=1))
    history.keep(folder, report("2027-01-15T00:00:00+00:00", {("c1", "county"): [(A, PASS), (B, MANUAL)],
                                                              ("p1", "province"): [(A, PASS), (B, PASS)]}))
    return folder


def test_audits_within_one_second_keep_their_order(tmp_path):
    # the second audit of the same second is audit-<stamp>-1.json, which sorts by name before audit-<stamp>.json
    folder = tmp_path / "h"
    for n in range(12):
        history.keep(folder, report("2027-01-01T00:00:00+00:00", {("c1", "county"): [(A, PASS)] * n}))
    assert [len(r["hosts"][0]["results"]) for _, r in history.load(folder)] == list(range(12))


def rows(t: dict) -> dict[tuple[str, str], dict]:
    return {(r["clause"], r["level"]): r for r in t["trend"]}


def test_trend_per_clause_and_level(saved):
    t = history.trend(history.load(saved))
    assert [a["finished"][:10] for a in t["audits"]] == ["2027-01-01", "2027-01-08", "2027-01-15"]
    assert [a["unreachable"] for a in t["audits"]] == [0, 1, 0]
    r = rows(t)
    assert [s["pass"] for s in r[(A, "county")]["series"]] == [0, 1, 1] and r[(A, "county")]["delta_pass"] == 1
    assert [s["pass"] for s in r[(A, "province")]["series"]] == [0, 0, 1]
    assert [s["pass"] for s in r[(A, "all")]["series"]] == [0, 1, 2] and r[(A, "all")]["delta_pass"] == 2
    # a clause first assessed later has no count before (not a zero), and its change starts there
    assert [s["pass"] for s in r[(B, "all")]["series"]] == [None, None, 1] and r[(B, "all")]["delta_pass"] == 0
    assert r[(B, "county")]["series"][-1]["verdicts"][MANUAL] == 1
    assert [s["total"] for s in r[("all", "all")]["series"]] == [2, 2, 4]
    # senior level first within a clause, the totals first of all
    assert [k for k in r][:4] == [("all", "all"), ("all", "province"), ("all", "county"), (A, "all")]


def test_two_audits_in_the_same_second_are_both_kept(tmp_path):
    rep = report("2027-01-01T00:00:00+00:00", {("c1", "county"): [(A, PASS)]})
    a, b = history.keep(tmp_path / "h", rep), history.keep(tmp_path / "h", rep)
    assert a != b and len(history.load(tmp_path / "h")) == 2


def test_a_bad_history_names_every_file_and_field(saved):
    (saved / "audit-20270102T000000Z.json").write_text("{not json")
    (saved / "audit-20270103T000000Z.json").write_text(json.dumps({"finished": "yesterday", "scope": "all", "hosts": [
        {"level": "county", "results": [{"clause": A, "verdict": "fine"}]}]}))
    with pytest.raises(UsageError) as e:
        history.load(saved)
    text = "\n".join(e.value.problems)
    assert len(e.value.problems) == 3
    assert "audit-20270102T000000Z.json: report: cannot read" in text
    assert "field 'finished': not an ISO time" in text and "hosts[0].results[0]: field 'verdict'" in text


def test_cli_keeps_history_beside_save_and_shows_the_trend(netops, tmp_path: Path):
    cfgs, out = tmp_path / "configs", tmp_path / "out"
    cfgs.mkdir()
    out.mkdir()
    env = clean_env(NETOPS_BACKUP_STATE=str(tmp_path / "state"))
    shutil.copy(FIX / "frr-lab-fresh.cfg", cfgs / "huadu-r1.cfg")
    shutil.copy(FIX / "frr-host-fresh.txt", cfgs / "huadu-r1.host")
    base = ["audit", "--scope", "huadu-r1", "--configs", str(cfgs), "--save", str(out / "audit.json")]
    assert netops(*base, "--json", env=env).returncode == 1
    shutil.copy(FIX / "frr-compliant.cfg", cfgs / "huadu-r1.cfg")
    shutil.copy(FIX / "frr-host-hardened.txt", cfgs / "huadu-r1.host")
    assert netops(*base, "--json", env=env).returncode == 0
    assert len(list((out / "audit-history").glob("audit-*.json"))) == 2
    r = netops("audit", "trend", "--history", str(out / "audit-history"), "--json", env=env)
    assert r.returncode == 0, r.stderr
    t = json.loads(r.stdout)
    total = rows(t)[("all", "all")]
    before, after = (s["pass"] for s in total["series"])
    assert after > before and total["delta_pass"] == after - before
    assert all(s["total"] == 11 for s in total["series"])
    r = netops("audit", "trend", "--history", str(out / "audit-history"), env=env)
    assert r.returncode == 0 and "8.1.4.1" in r.stdout and f"+{after - before}" in r.stdout
