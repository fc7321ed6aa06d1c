"""`netops audit`: the read-only 等保 2.0 三级 compliance audit of servers and network devices."""
from __future__ import annotations

import json
from pathlib import Path

from jinbao_netops import escape
from jinbao_netops.access import Access
from jinbao_netops.inventory import load
from jinbao_netops.files import out_path, write_atomic, write_error
from jinbao_netops.errors import FINDINGS, OK, PARTIAL, UsageError
from jinbao_netops.output import Out

from .audit import NOT_READ, UNREACHABLE, diff, file_runner, run_audit, session_runner
from . import history, workbook
from .catalogue import FAIL, PASS, VERDICTS, load_catalogue
from .catalogue import PARTIAL as V_PARTIAL
from .report import render


def register(nouns, common) -> None:
    p = nouns.add_parser("audit", parents=[common],
                         help="read-only 等保 2.0 三级 compliance audit over SSH (servers and network devices)",
                         description="Check every host in scope against the baseline catalogue (security/baseline.yml) and "
                                     "report per clause: 符合 / 部分符合 / 不符合 / 不适用 / 需人工举证, with evidence. "
                                     "A host whose inventory access lacks ssh is not read: its controls are 需人工举证. "
                                     "Exit 1 when any control is 不符合, 3 when some hosts were unreachable.")
    p.add_argument("--scope", metavar="SITE", help="a site (with everything below it) or one device; default: all")
    p.add_argument("--html", metavar="PATH", help="write the self-contained HTML report here")
    p.add_argument("--save", metavar="PATH", help="write the JSON report here (for a later --diff)")
    p.add_argument("--xlsx", metavar="PATH", help="write the evaluator's record here: an .xlsx workbook shaped like a "
                                                  "GB/T 28448-2019 测评记录 (record, 差距分析 gap analysis, summary per level)")
    p.add_argument("--diff", metavar="PREVIOUS.json", help="show what changed since a previous JSON report")
    p.add_argument("--configs", metavar="DIR", help="read network-device configs from DIR/<device>.cfg instead of SSH (and a router's "
                                                                 "Linux host collection from DIR/<device>.host)")
    p.add_argument("--parallel", type=int, default=16, metavar="N", help="hosts audited at once (default 16)")
    p.add_argument("--history", metavar="DIR", help="keep this audit's JSON report in DIR as audit-<time>.json "
                                                    "(default with --save: audit-history/ beside the saved report)")
    p.set_defaults(func=cmd_audit)
    verbs = p.add_subparsers(dest="verb", metavar="VERB")  # optional: `netops audit` alone runs the audit
    t = verbs.add_parser("trend", parents=[common], help="how the 符合 counts moved per clause and level over the saved audits",
                         description="Read the saved audits (netops audit --save/--history) and show, per clause and "
                                     "level, the 符合 count of each audit and its change since the first.")
    t.add_argument("--history", metavar="DIR", default=str(history.DEFAULT),
                   help=f"the audit history directory (default: {history.DEFAULT}, the cycle's)")
    t.add_argument("--last", type=int, default=6, metavar="N", help="audits shown as columns in the table (default 6; --json has all)")
    t.set_defaults(func=cmd_trend)


def _previous(path: str) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UsageError(f"{path}: --diff: cannot read a previous report: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("hosts"), list):
        raise UsageError(f"{path}: --diff: field 'hosts': not a netops audit JSON report")
    return data


def cmd_audit(args, out: Out) -> int:
    if args.parallel < 1:
        raise UsageError(f"--parallel: must be at least 1, not {args.parallel}")
    inv = load(args.inventory)
    previous = _previous(args.diff) if args.diff else None
    if args.configs and not Path(args.configs).is_dir():
        raise UsageError(f"{args.configs}: --configs: not a directory")
    outputs = {opt: out_path(path, opt) for opt, path in (("--save", args.save), ("--html", args.html), ("--xlsx", args.xlsx))
               if path}
    keep_in = history.history_dir(args.history, outputs.get("--save"))
    if args.history:
        out_path(args.history, "--history", directory=True)
    n = len(inv.scope(args.scope))
    with Access(inv, args.environ) as access, out.progress("审计 auditing", n) as advance:
        run = session_runner(access)
        if args.configs:
            run = file_runner(Path(args.configs), run, {d for d in inv.scope(args.scope)
                                                         if inv.devices[d].platform_info.kind == "network"})
        report = run_audit(inv, args.scope, run=run, parallel=args.parallel, progress=advance)
    if previous is not None:
        report["diff"] = diff(previous, report)
    renderers = {"--save": lambda: json.dumps(report, ensure_ascii=False, indent=1) + "\n", "--html": lambda: render(report),
                 "--xlsx": lambda: workbook.render(report, load_catalogue())}
    for opt, path in outputs.items():
        try:
            write_atomic(path, renderers[opt](), 0o640)
        except OSError as e:
            raise write_error(path, e) from None
    if keep_in is not None:
        try:
            history.keep(keep_in, report)
        except OSError as e:
            raise write_error(keep_in, e) from None
    s = report["summary"]
    code = PARTIAL if s["unreachable"] else FINDINGS if s["verdicts"][FAIL] else OK
    if out.json_mode:
        out.json(report)
        return code
    out.table("按条款 By clause", ["clause", "control", "title", *VERDICTS],
              [[c["clause"], c["id"], c["title_zh"], *(c["verdicts"][v] for v in VERDICTS)] for c in report["rollup"]["controls"]])
    out.table("按层级 By level", ["level", "hosts", "unreachable", *VERDICTS],
              [[lv["level"], lv["hosts"], lv["unreachable"], *(lv["verdicts"][v] for v in VERDICTS)] for lv in report["rollup"]["levels"]])
    if report.get("diff"):
        ch = report["diff"]["changes"]
        out.table(f"变化 Changes since {report['diff']['previous']}", ["host", "control", "before", "after"],
                  [[c["host"], c.get("control") or "-", c["before"], c["after"]] for c in ch])
    v = s["verdicts"]
    out.print(f"主机 hosts {s['hosts']} (reachable {s['reachable']}) · {PASS} {v[PASS]} · {V_PARTIAL} {v[V_PARTIAL]} · "
              f"{FAIL} {v[FAIL]} · 不适用 {v['不适用']} · 需人工举证 {v['需人工举证']} · {report['seconds']} s")
    for h in report["hosts"]:
        if h["status"] == UNREACHABLE:
            out.print(f"[red]无法连接 unreachable (not assessed):[/] {h['host']}: {escape.rich(h['error'])}")
        elif h["status"] == NOT_READ:
            out.print(f"[yellow]未读取 not read (需人工举证 manual evidence):[/] {h['host']}: {escape.rich(h['error'])}")
    for label, path in (("HTML report 报告", args.html), ("JSON report", args.save), ("测评记录 evaluator's record (xlsx)", args.xlsx)):
        if path:
            out.print(f"{label}: {escape.rich(Path(path).resolve())}")
    return code


def cmd_trend(args, out: Out) -> int:
    if args.last < 1:
        raise UsageError(f"--last: must be at least 1, not {args.last}")
    result = {"history": args.history, **history.trend(history.load(Path(args.history)))}
    if out.json_mode:
        out.json(result)
        return OK
    shown = result["audits"][-args.last:]
    out.table(f"符合趋势 Compliant counts over {len(result['audits'])} audits ({escape.rich(args.history)})",
              ["clause", "level", *(a["finished"][:16] for a in shown), "Δ"],
              [[row["clause"], row["level"],
                *("-" if s["pass"] is None else f"{s['pass']}/{s['total']}" for s in row["series"][-args.last:]),
                f"{row['delta_pass']:+d}"] for row in result["trend"]])
    return OK
