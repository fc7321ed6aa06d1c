"""8.1.4.9 a)/b) judged on the suite's own records: a synthetic backup catalogue and drill journals
per host — fresh, verified and copied off-site is 符合, stale, unverified, not copied or missing is
不符合, an unreadable catalogue is no evidence (需人工举证) — with the entries quoted as evidence."""
from __future__ import annotations

import json

import pytest

from jinbao_netops import inventory
from jinbao_netops.security import records
from jinbao_netops.security.audit import audit_server
from jinbao_netops.security.catalogue import FAIL, MANUAL, PARTIAL, PASS, host_params, load_catalogue

INV = inventory.load(inventory.DEFAULT_INVENTORY)
CAT = load_catalogue()
NOW = 1_800_000_000.0
HOUR = 3600.0


def entry(age_h: float = 2, verified: bool | None = True, verified_age_h: float = 1, offsite: bool = True, **kw) -> dict:
    e = {"device": "gd-db1", "kind": "postgresql", "store": "gd-bak1", "dr_store": "gd-dr-bak1", "last_ok": True,
         "last_attempt": NOW - age_h * HOUR, "last_success": NOW - age_h * HOUR, "snapshot": "a1b2c3d4", "offsite": offsite}
    if verified is not None:
        e.update(verified_at=NOW - verified_age_h * HOUR, verify_ok=verified, verified={"a1b2c3d4": verified})
    return {**e, **kw}


def drill(verdict: str, started: str = "2027-01-10T02:00:00+00:00", source: str = "gd-db1") -> dict:
    return {"scenario": {"id": "province-dc-lost", "kind": "database_restore", "source": source, "standby": "gd-dr-bak1",
                         "fault": {"stop_services": {source: ["postgresql"]}}}, "started": started, "verdict": verdict}


def judge(assets: dict, drills: list[dict] = (), host: str = "gd-db1") -> dict[str, dict]:
    rec = records.from_catalogue({"assets": assets}, [{"id": d["scenario"]["id"], "started": d["started"], "verdict": d["verdict"],
                                                       "devices": records._drill_devices(d["scenario"]), "journal": "j.json"}
                                                      for d in drills], "backup catalogue test", now=NOW)
    rows = audit_server(CAT, host_params(INV, host), "", "t", rec, host)
    return {r["id"]: r for r in rows if r["id"] in records.CHECKS}


def test_fresh_verified_offsite_backup_with_a_passed_drill_is_compliant():
    v = judge({"gd-db1/postgresql": entry(), "gd-db1:files": entry(kind="files", snapshot="e5f6a7b8")}, [drill("passed")])
    assert v["data-backup"]["verdict"] == PASS and v["data-offsite"]["verdict"] == PASS
    ev = v["data-backup"]["evidence"]
    assert ev["command"] == "backup catalogue test" and "gd-db1/postgresql" in ev["excerpt"] and "a1b2c3d4" in ev["excerpt"]
    assert "province-dc-lost" in ev["excerpt"] and "2.0 h ago" in ev["excerpt"]
    assert "gd-dr-bak1: yes" in v["data-offsite"]["evidence"]["excerpt"]


@pytest.mark.parametrize("bad,backup,offsite", [
    (dict(age_h=30), PARTIAL, FAIL),                  # stale (its older snapshot verified): the copy is stale too
    (dict(age_h=30, verified_age_h=24 * 8), FAIL, FAIL),
    (dict(verified=False), PARTIAL, PASS),            # restore read-back failed
    (dict(verified=None), PARTIAL, PASS),             # never verified
    (dict(verified_age_h=24 * 8), PARTIAL, PASS),     # verified, but longer ago than the period
    (dict(offsite=False), PASS, FAIL),                # no copy at the DR site
    (dict(dr_store=None, offsite=False), PASS, FAIL),
])
def test_stale_unverified_or_not_copied_is_not_compliant(bad, backup, offsite):
    v = judge({"gd-db1/postgresql": entry(**bad)})
    assert (v["data-backup"]["verdict"], v["data-offsite"]["verdict"]) == (backup, offsite)


def test_a_newer_unverified_backup_keeps_the_last_verification():
    """A new backup clears verify_ok until it is verified; the last read-back's result still stands."""
    e = entry()
    e.pop("verify_ok")
    assert judge({"gd-db1/postgresql": e})["data-backup"]["verdict"] == PASS


def test_no_backup_on_record_is_not_compliant():
    v = judge({"other/postgresql": {**entry(), "device": "gd-db2"}})
    assert v["data-backup"]["verdict"] == FAIL == v["data-offsite"]["verdict"]
    assert "no asset of gd-db1" in v["data-backup"]["findings"][0]["detail"]


def test_the_last_drill_touching_the_host_counts():
    older_pass, newer_fail = drill("passed", "2027-01-01T00:00:00+00:00"), drill("failed", "2027-01-09T00:00:00+00:00")
    assert judge({"gd-db1/postgresql": entry()}, [newer_fail, older_pass])["data-backup"]["verdict"] == PARTIAL
    assert judge({"gd-db1/postgresql": entry()}, [drill("failed", source="panyu-db1")])["data-backup"]["verdict"] == PASS


def test_records_read_from_the_state_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("NETOPS_BACKUP_STATE", str(tmp_path))
    (tmp_path / "catalogue.json").write_text(json.dumps({"assets": {"gd-db1/postgresql": entry(age_h=0)}, "verify_round": 0}))
    for name, jn in (("province-dc-lost-20270101T000000Z", drill("passed")), ("broken-20270102T000000Z", None)):
        (tmp_path / "drills" / name).mkdir(parents=True)
        (tmp_path / "drills" / name / "journal.json").write_text(json.dumps(jn) if jn else "{not json")
    rec = records.load()
    assert set(rec.assets) == {"gd-db1"} and not rec.error
    bad = [d for d in rec.drills if d["devices"] is None]
    assert len(bad) == 1 and "unreadable" in bad[0]["verdict"]  # a lost journal is never a passed drill


def test_an_unreadable_catalogue_is_manual_evidence_with_the_reason(tmp_path, monkeypatch):
    monkeypatch.setenv("NETOPS_BACKUP_STATE", str(tmp_path))
    (tmp_path / "catalogue.json").write_text("{corrupt")
    rec = records.load()
    rows = {r["id"]: r for r in audit_server(CAT, host_params(INV, "gd-db1"), "", "t", rec, "gd-db1")}
    for cid in records.CHECKS:
        assert rows[cid]["verdict"] == MANUAL and "corrupt" in rows[cid]["evidence"]["excerpt"]
