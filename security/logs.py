"""`netops logs`: the 安全管理中心 log store — status, search and verify, on every log host in scope.

Each log host is read through the access layer with one read-only script on stdin (``sudo -n sh -s``,
as the audit reads a server); a host that cannot be read is reported and the others go on (exit 3).
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from jinbao_netops import escape
from jinbao_netops.access import Access
from jinbao_netops.errors import FINDINGS, OK, PARTIAL, DeviceError, UsageError
from jinbao_netops.inventory import load
from jinbao_netops.output import Out

from . import logstore
from .catalogue import host_params

REMOTE = "sudo -n /bin/sh -s"  # the script comes on stdin: nothing of the user's text in argv


def register(nouns, common) -> None:
    p = nouns.add_parser("logs", parents=[common], help="the 安全管理中心 log store: status, search, tamper check",
                         description="The province log hosts' store (/var/log/remote): per-source status and the "
                                     "retention horizon, search across the store, and the daily hash chain's check.")
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    s = verbs.add_parser("status", parents=[common], help="per source: last message, gaps, volume; retention and disk",
                         description="Exit 1 when a source is silent longer than dengbao_log_gap_minutes, retention is "
                                     "configured below dengbao_log_retention_days or the disk cannot hold it; 3 when "
                                     "a log host was unreachable.")
    s.add_argument("--scope", metavar="SITE", help="a site (with everything below it) or one device; default: all")
    s.set_defaults(func=cmd_status)
    q = verbs.add_parser("search", parents=[common], help="lines matching a pattern across the store",
                         description="Extended regular expression over the sources in scope, from --since on "
                                     "(reception time, UTC); exit 3 when a log host was unreachable.")
    q.add_argument("--scope", metavar="SITE", help="a site (with everything below it) or one device; default: all")
    q.add_argument("--since", default="24h", help="30m, 6h, 7d or an ISO date/time (default 24h)")
    q.add_argument("--grep", required=True, metavar="REGEX", help="extended regular expression (grep -E)")
    q.add_argument("--limit", type=int, default=1000, metavar="N", help="at most N lines per file (default 1000)")
    q.set_defaults(func=cmd_search)
    v = verbs.add_parser("verify", parents=[common], help="check the daily hash chain against the files",
                         description="Recompute every sealed day's file hashes and digests; exit 1 naming the first "
                                     "broken day and file, 3 when a log host was unreachable.")
    v.add_argument("--scope", metavar="SITE", help="a site (with everything below it) or one device; default: all")
    v.set_defaults(func=cmd_verify)


def _each_host(args, script_for):
    """(log host, its senders in scope, output or None, error or None) for every log host in scope."""
    inv = load(args.inventory)
    hosts = logstore.log_hosts(inv, args.scope)
    if not hosts:
        raise UsageError(f"--scope {args.scope}: no log host receives from anything in this scope")
    with Access(inv, args.environ) as access:
        for host, items in hosts.items():
            try:
                out = access.session(host).run(REMOTE, input=script_for(items), check=True, timeout=300)
                yield inv, host, items, out, None
            except DeviceError as e:
                yield inv, host, items, None, e.detail


def cmd_status(args, out: Out) -> int:
    now = datetime.now(UTC)
    report, code = [], OK
    for inv, host, items, output, error in _each_host(args, lambda _: logstore.status_script()):
        if error:
            report.append({"log_host": host, "status": "unreachable", "error": error})
            code = PARTIAL
            continue
        p = host_params(inv, host)
        st = logstore.parse_status(output, [s.device for s in items], now, int(p["dengbao_log_retention_days"]),
                                   int(p["dengbao_log_gap_minutes"]))
        wanted = {s.device for s in items}
        st["sources"] = [s for s in st["sources"] if s["source"] in wanted]
        findings = [f"{s['source']}: no message for {s['silent_minutes']} min 日志中断" if s["last_message"] else
                    f"{s['source']}: nothing received 未收到日志" for s in st["sources"] if s["gap"]]
        if not st["retention_ok"]:
            findings.append(f"rotation keeps {st['rotation']['kept_days']} days, compress={st['rotation']['compress']}: "
                            f"below {st['retention_days']} days 保存期限不足")
        if not st["disk"]["fits"]:
            findings.append(f"disk: {st['disk']['needed_for_retention']} bytes needed for {st['retention_days']} days, "
                            f"{st['disk']['available']} available 磁盘不足")
        report.append({"log_host": host, "status": "ok", **st, "findings": findings})
        if findings and code == OK:
            code = FINDINGS
    if out.json_mode:
        out.json({"ok": code == OK, "log_hosts": report})
        return code
    for h in report:
        if h["status"] != "ok":
            out.print(f"[red]无法连接 unreachable:[/] {h['log_host']}: {escape.rich(h['error'])}")
            continue
        out.table(f"日志服务器 log host {h['log_host']} · retention {h['rotation']['kept_days']}/{h['retention_days']} d · "
                  f"oldest {h['oldest_day'] or '-'} · {h['bytes']} B · disk {h['disk']['per_day']} B/day × "
                  f"{h['retention_days']} d = {h['disk']['needed_for_retention']} B of {h['disk']['available']} B",
                  ["source", "last message", "silent min", "gap", "missing days", "bytes", "days kept"],
                  [[s["source"], s["last_message"] or "-", s["silent_minutes"], "GAP" if s["gap"] else "",
                    ",".join(s["missing_days"]), s["bytes"], s["days_kept"]] for s in h["sources"]])
        for f in h["findings"]:
            out.print(f"[yellow]发现 finding:[/] {h['log_host']}: {escape.rich(f)}")
    return code


def cmd_search(args, out: Out) -> int:
    if args.limit < 1:
        raise UsageError(f"--limit: must be at least 1, not {args.limit}")
    since = logstore.parse_since(args.since, datetime.now(UTC))
    lines, errors = [], []
    # a rotated file is named by the day before its rotation: one day earlier covers the lines of `since`'s day
    first_day = (since - timedelta(days=1)).date()
    for _inv, host, _items, output, error in _each_host(
            args, lambda items: logstore.search_script([s.device for s in items], first_day, args.grep, args.limit)):
        if error:
            errors.append({"log_host": host, "error": error})
            continue
        lines += [{"log_host": host, **r} for r in logstore.parse_search(output, since)]
    lines.sort(key=lambda r: r["time"])
    code = PARTIAL if errors else OK
    if out.json_mode:
        out.json({"ok": not errors, "since": since.isoformat(), "lines": lines, "unreachable": errors})
        return code
    for r in lines:
        out.print(escape.rich(f"{r['time']} {r['source']} {r['line']}"))
    for e in errors:
        out.print(f"[red]无法连接 unreachable:[/] {e['log_host']}: {escape.rich(e['error'])}")
    return code


def cmd_verify(args, out: Out) -> int:
    results, code = [], OK
    now = datetime.now(UTC)
    for inv, host, _items, output, error in _each_host(args, lambda _: logstore.verify_script()):
        if error:
            results.append({"log_host": host, "status": "unreachable", "error": error})
            code = PARTIAL
            continue
        days = int(host_params(inv, host)["dengbao_log_retention_days"])
        horizon = (now - timedelta(days=days)).strftime("%Y%m%d")
        r = logstore.verify_chain(*logstore.parse_verify(output), horizon)
        results.append({"log_host": host, "status": "ok", **r})
        if not r["ok"] and code == OK:
            code = FINDINGS
    if out.json_mode:
        out.json({"ok": code == OK, "log_hosts": results})
        return code
    for r in results:
        if r["status"] != "ok":
            out.print(f"[red]无法连接 unreachable:[/] {r['log_host']}: {escape.rich(r['error'])}")
        elif r["ok"]:
            out.print(f"{r['log_host']}: 哈希链完整 chain intact — {r['days']} days sealed, last {r['last_day'] or '-'}"
                      f"{', unsealed: ' + escape.rich(', '.join(r['unsealed'])) if r['unsealed'] else ''}")
        else:
            b = r["broken"]
            out.print(f"[red]{r['log_host']}: 篡改 TAMPERED — day {b['day']}, {escape.rich(b['file'])}: {escape.rich(b['reason'])}[/]")
    return code
