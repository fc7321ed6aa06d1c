"""The audit report for people: one self-contained HTML file (inline CSS, no scripts), Chinese with English.

Every count is tagged with data-verdict / data-scope attributes so the file can be parsed back and
checked against the JSON it was rendered from."""
from __future__ import annotations

from jinbao_netops.escape import html as escape
from jinbao_netops.inventory.model import level_label

from .audit import NOT_READ, UNREACHABLE
from .catalogue import FAIL, MANUAL, NA, PARTIAL, PASS, VERDICT_EN, VERDICTS

COLOUR = {PASS: "#1b7f3b", PARTIAL: "#b7791f", FAIL: "#c53030", NA: "#718096", MANUAL: "#2b6cb0"}
CSS = """body{font-family:"Noto Sans CJK SC","Microsoft YaHei",sans-serif;margin:24px;color:#1a202c}
table{border-collapse:collapse;margin:8px 0 20px}td,th{border:1px solid #cbd5e0;padding:3px 8px;font-size:13px;vertical-align:top}
th{background:#edf2f7}.v{font-weight:bold;white-space:nowrap}pre{white-space:pre-wrap;font-size:11px;margin:0;max-width:70em}
.unreachable{color:#c53030;font-weight:bold}.not-read{color:#2b6cb0;font-weight:bold}h2{border-bottom:2px solid #2b6cb0}"""


def _v(verdict: str) -> str:
    return f'<span class="v" style="color:{COLOUR[verdict]}">{escape(verdict)}</span>'


def _counts(verdicts: dict, scope: str) -> str:
    return "".join(f'<td data-scope="{escape(scope)}" data-verdict="{escape(v)}">{verdicts.get(v, 0)}</td>' for v in VERDICTS)


def _head() -> str:
    return "".join(f"<th>{escape(v)}<br>{escape(VERDICT_EN[v])}</th>" for v in VERDICTS)


def render(report: dict) -> str:
    s = report["summary"]
    h = [(f'<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"><title>等保2.0三级合规审计报告 Compliance audit</title>'
          f"<style>{CSS}</style></head><body>"),
         "<h1>等保 2.0 三级合规审计报告<br><small>Level-3 protection compliance audit (GB/T 22239-2019)</small></h1>",
         (f"<p>网络 Network: {escape(report['network'])} · 范围 Scope: {escape(report['scope'])} · "
          f"开始 Started: {escape(report['started'])} · 结束 Finished: {escape(report['finished'])} · "
          f"主机 Hosts: <span id=\"hosts\">{s['hosts']}</span> · 可达 Reachable: <span id=\"reachable\">{s['reachable']}</span></p>"),
         "<h2>总计 Summary</h2><table><tr><th>范围 scope</th>" + _head() + "</tr>",
         f"<tr><td>全部 all</td>{_counts(s['verdicts'], 'all')}</tr></table>"]
    if s["unreachable"]:
        h.append('<p class="unreachable">无法连接（未判定，不视为符合） Unreachable — not assessed, never counted as passing: '
                 + ", ".join(f'<span class="unreachable-host">{escape(x)}</span>' for x in s["unreachable"]) + "</p>")
    if s.get("not_read"):  # reports saved before the status existed have no such list
        h.append('<p class="not-read">未读取（未声明SSH访问，各项需人工举证） Not read — no SSH access declared, '
                 'every control needs manual evidence: '
                 + ", ".join(f'<span class="not-read-host">{escape(x)}</span>' for x in s["not_read"]) + "</p>")
    if report.get("diff"):
        d = report["diff"]
        h.append(f"<h2>与上次审计比较 Changes since {escape(str(d.get('previous')))}</h2><table><tr><th>主机 host</th>"
                 "<th>控制项 control</th><th>之前 before</th><th>现在 after</th></tr>")
        for c in d["changes"]:
            h.append(f'<tr class="change"><td>{escape(c["host"])}</td><td>{escape(c.get("control") or "-")}</td>'
                     f'<td>{escape(c["before"])}</td><td>{escape(c["after"])}</td></tr>')
        h.append("</table>")
    h.append("<h2>按层级 By level (县 → 市 → 省 → 部)</h2><table><tr><th>层级 level</th><th>主机 hosts</th><th>无法连接 unreachable</th>"
             + _head() + "</tr>")
    for lv in report["rollup"]["levels"]:
        h.append(f'<tr><td>{escape(level_label(lv["level"]))}</td><td>{lv["hosts"]}</td><td>{lv["unreachable"]}</td>'
                 f'{_counts(lv["verdicts"], "level:" + lv["level"])}</tr>')
    h.append("</table><h2>按站点 By site (本站 own devices)</h2><table><tr><th>站点 site</th><th>层级 level</th><th>主机 hosts</th>"
             "<th>无法连接 unreachable</th>" + _head() + "</tr>")
    for st in report["rollup"]["sites"]:
        h.append(f'<tr><td>{escape(st["name"])} ({escape(st["site"])})</td><td>{escape(st["level"])}</td><td>{st["hosts"]}</td>'
                 f'<td>{st["unreachable"]}</td>{_counts(st["verdicts"], "site:" + st["site"])}</tr>')
    h.append("</table><h2>按条款 By clause</h2><table><tr><th>条款 clause</th><th>测评项 test item</th><th>控制项 control</th>"
             + _head() + "<th>不符合主机 failing hosts</th></tr>")
    for c in report["rollup"]["controls"]:
        h.append(f'<tr><td>{escape(c["clause"])} {escape(c["clause_zh"])}</td><td>{escape(c["item"] or "-")}</td>'
                 f'<td>{escape(c["title_zh"])}<br><small>{escape(c["title_en"])}</small></td>{_counts(c["verdicts"], "control:" + c["id"])}'
                 f'<td>{escape(", ".join(c["failing_hosts"]))}</td></tr>')
    h.append("</table><h2>主机明细 Per host (证据 evidence)</h2>")
    for host in report["hosts"]:
        h.append(f'<h3 id="host-{escape(host["host"])}">{escape(host["name"])} — {escape(host["host"])} ({escape(host["address"])}, '
                 f'{escape(host["platform"])}, {escape(host["site_name"])})</h3>')
        if host["status"] == UNREACHABLE:
            h.append(f'<p class="unreachable">无法连接 unreachable: {escape(host["error"] or "")}</p>')
            continue
        if host["status"] == NOT_READ:
            h.append(f'<p class="not-read">未读取 not read: {escape(host["error"] or "")}</p>')
        h.append("<table><tr><th>条款 clause</th><th>控制项 control</th><th>结论 verdict</th><th>检查结果 findings</th>"
                 "<th>证据 evidence</th></tr>")
        for r in host["results"]:
            finds = "<br>".join(f'{"✔" if f["ok"] else "✘"} {escape(f["label"])} <small>{escape(f["detail"])}</small>' for f in r["findings"])
            ev = r["evidence"]
            evid = (f'<small>{escape(ev["timestamp"] or "")}</small><br><code>{escape(ev["command"] or "")}</code>'
                    f'<pre>{escape(ev["excerpt"] or "")}</pre>')
            h.append(f'<tr class="result" data-host="{escape(host["host"])}" data-control="{escape(r["id"])}" data-verdict="{escape(r["verdict"])}">'
                     f'<td>{escape(r["clause"])}<br><small>{escape(r["item"] or "")}</small></td>'
                     f'<td>{escape(r["title_zh"])}<br><small>{escape(r["title_en"])}</small></td><td>{_v(r["verdict"])}</td>'
                     f"<td>{finds}</td><td>{evid}</td></tr>")
        h.append("</table>")
    h.append("</body></html>\n")
    return "\n".join(h)


