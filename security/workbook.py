"""The evaluator's record: the audit as an .xlsx workbook in the shape of a GB/T 28448-2019 测评记录.

Three sheets: 测评记录 (per object and test item: 测评指标, 测评对象, 测评方法, 结果记录, 符合情况),
差距分析 (every 不符合 / 部分符合 with its clause and remediation) and 汇总 (per level 部/省/市/县).
Every cell is data: text passes ``escape.cell`` and is stored as a string (a value a spreadsheet would
read as a formula keeps a quote prefix), and evidence is redacted for the host's platform.
"""
from __future__ import annotations

from io import BytesIO

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.worksheet.worksheet import Worksheet

from jinbao_netops import escape
from jinbao_netops.inventory.model import LEVEL_NAMES, Level, level_label
from jinbao_netops.inventory.platforms import redact

from .audit import UNREACHABLE
from .catalogue import FAIL, MANUAL, PARTIAL, VERDICT_EN, VERDICTS, Catalogue

NOT_ASSESSED = "未测评（无法连接） not assessed: unreachable"
RECORD, GAPS, SUMMARY = "测评记录 Record", "差距分析 Gap analysis", "汇总 Summary"
RECORD_HEAD = ["序号 No.", "测评对象 Object", "平台 Platform", "站点 Site", "层级 Level", "安全控制点 Clause",
               "测评项编号 Test item", "测评指标 Requirement", "测评方法 Method", "结果记录 Record", "符合情况 Verdict",
               "测评时间 Time"]
GAP_HEAD = ["序号 No.", "测评对象 Object", "层级 Level", "安全控制点 Clause", "测评项编号 Test item", "测评指标 Requirement",
            "符合情况 Verdict", "未满足项 Unmet", "整改措施 Remediation"]
HEAD_FILL = PatternFill("solid", fgColor="DDE6F0")


def _put(ws: Worksheet, row: int, col: int, value) -> None:
    c = ws.cell(row=row, column=col)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        c.value = value
        return
    text, formula_like = escape.cell("" if value is None else value)
    c.value = text
    c.data_type = "s"          # never a formula, whatever the text begins with
    c.quotePrefix = formula_like  # and a spreadsheet keeps it text when the cell is edited
    c.alignment = Alignment(wrap_text=True, vertical="top")


def _sheet(wb: Workbook, title: str, head: list[str], rows: list[list], widths: list[int]) -> Worksheet:
    ws = wb.create_sheet(title)
    for j, h in enumerate(head, 1):
        _put(ws, 1, j, h)
        ws.cell(row=1, column=j).font = Font(bold=True)
        ws.cell(row=1, column=j).fill = HEAD_FILL
    for i, row in enumerate(rows, 2):
        for j, v in enumerate(row, 1):
            _put(ws, i, j, v)
    for j, w in enumerate(widths, 1):
        ws.column_dimensions[ws.cell(row=1, column=j).column_letter].width = w
    ws.freeze_panes = "A2"
    return ws


def _object(h: dict) -> str:
    return f"{h['name']} ({h['host']}, {h['address']})"


def _requirement(cat: Catalogue, r: dict) -> str:
    t = cat.clause_title(r["clause"])
    return f"{t.get('zh', '')} {r['title_zh']}\n{t.get('en', '')}: {r['title_en']}".strip()


def _method(cat: Catalogue, r: dict) -> str:
    c = cat.by_id()[r["id"]]
    if r["verdict"] == MANUAL and not r["evidence"].get("command"):
        return f"访谈、文档核查 interview and document review: {r.get('evidence_required') or c.evidence or ''}"
    how = "核查（自动） automated check" if c.automatable else "访谈、文档核查 interview and document review"
    cmd = r["evidence"].get("command")
    return f"{how}: {c.check}" + (f"\n命令 command: {cmd}" if cmd else "")


def _findings(r: dict, failed_only: bool = False) -> str:
    return "\n".join(f"{'✔' if f['ok'] else '✘'} {f['label']}: {f['detail']}" for f in r["findings"]
                     if not (failed_only and f["ok"]))


def _record(h: dict, r: dict) -> str:
    excerpt = r["evidence"].get("excerpt") or ""
    findings = _findings(r)
    return redact(h["platform"], "\n".join(x for x in (findings, excerpt) if x))


def render(report: dict, cat: Catalogue) -> bytes:
    wb = Workbook()
    wb.remove(wb.active)
    record, gaps = [], []
    for h in report["hosts"]:
        where = [_object(h), h["platform"], f"{h['site_name']} ({h['site']})", level_label(h["level"])]
        if h["status"] == UNREACHABLE:  # a host not read (no SSH access declared) has its controls as 需人工举证
            record.append([len(record) + 1, *where, "", "", "", "", h.get("error") or "", NOT_ASSESSED, h.get("started")])
            continue
        for r in h["results"]:
            verdict = f"{r['verdict']} {VERDICT_EN[r['verdict']]}"
            record.append([len(record) + 1, *where, r["clause"], r["item"] or "", _requirement(cat, r), _method(cat, r),
                           _record(h, r), verdict, r["evidence"].get("timestamp") or h.get("started")])
            if r["verdict"] in (FAIL, PARTIAL):
                gaps.append([len(gaps) + 1, _object(h), level_label(h["level"]), r["clause"], r["item"] or "",
                             _requirement(cat, r), verdict, redact(h["platform"], _findings(r, failed_only=True)), r["fix"]])
    _sheet(wb, RECORD, RECORD_HEAD, record, [6, 28, 11, 20, 8, 12, 12, 34, 46, 70, 14, 22])
    _sheet(wb, GAPS, GAP_HEAD, gaps, [6, 28, 8, 12, 12, 34, 14, 60, 60])
    summary = []
    senior_first = list(LEVEL_NAMES)  # 部 → 省 → 灾备 → 市 → 县
    levels = sorted(report["rollup"]["levels"], key=lambda lv: senior_first.index(Level(lv["level"])))
    for lv in [*levels, {"level": None, "hosts": report["summary"]["hosts"], "unreachable": len(report["summary"]["unreachable"]),
                         "verdicts": report["summary"]["verdicts"]}]:
        summary.append([level_label(lv["level"]) if lv["level"] else "全部 all", lv["hosts"], lv["unreachable"],
                        *(lv["verdicts"].get(v, 0) for v in VERDICTS)])
    ws = _sheet(wb, SUMMARY, ["层级 Level", "测评对象 Objects", "未测评 Unreachable", *(f"{v} {VERDICT_EN[v]}" for v in VERDICTS)],
                summary, [16, 12, 12, *([14] * len(VERDICTS))])
    meta = [("网络 Network", report["network"]), ("范围 Scope", report["scope"]), ("依据 Baseline", report["baseline"]),
            ("开始 Started", report["started"]), ("结束 Finished", report["finished"])]
    for i, (k, v) in enumerate(meta, len(summary) + 3):
        _put(ws, i, 1, k)
        _put(ws, i, 2, v)
    buf = BytesIO()
    wb.save(buf)
    return buf.getvalue()
