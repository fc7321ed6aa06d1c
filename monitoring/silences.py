"""Maintenance windows: Alertmanager silences (HTTP API v2, ``/api/v2/silences``) scoped to devices.

A device's alerts reach the Alertmanager of the monitor server whose collector covers it (its province's,
or the ministry's for the ministry's own sites: ``stack.server``, where `netops monitor up` runs them);
``$NETOPS_ALERTMANAGER`` (or a verb's ``--alertmanager``) names one Alertmanager for every device instead.
A silence matches the ``device`` label every device alert carries (monitoring/rules.py, collectors/METRICS.md)
with one regex matcher over the devices, each name an RE2 literal (``escape.re2``): a name cannot widen it.

``maintenance`` is the window a change opens around its push (link provisioning, `harden devices`, `drift
--fix` through the engine): one silence per Alertmanager with the change's author and id, ended (expired)
when the change ends, also when it fails or is interrupted, and bounded by ``endsAt`` should the run die.
When no Alertmanager answers, the change goes ahead and the window says why it could not be opened.
"""
from __future__ import annotations

import getpass
import json
import os
import re
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from jinbao_netops import escape
from jinbao_netops.errors import OK, PARTIAL, ToolError, UsageError
from jinbao_netops.inventory import load
from jinbao_netops.inventory.store import Inventory
from jinbao_netops.output import Out

from . import generate as gen
from . import stack

ENV = "NETOPS_ALERTMANAGER"
LABEL = "device"
WINDOW_S = 2 * 3600          # a maintenance window's bound (it is expired as soon as the change ends)
MAX_S = 7 * 86400            # the longest silence `monitor silence add` sets
TIMEOUT = 5.0
_ID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


class AlertmanagerError(ToolError):
    """An Alertmanager did not answer, or refused the request (exit status 4); ``status``: its HTTP status, if any."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


def parse_duration(text: str, field: str = "--duration") -> int:
    """``90m``, ``2h``, ``1h30m``, ``1d`` → seconds, between a minute and MAX_S."""
    m = _DURATION.fullmatch(text.strip())
    if not m or not any(m.groups()):
        raise UsageError(f"{field} {text!r}: give e.g. 30m, 2h, 1h30m or 1d 时长格式错误")
    secs = sum(int(v or 0) * k for v, k in zip(m.groups(), (86400, 3600, 60, 1)))
    if not 60 <= secs <= MAX_S:
        raise UsageError(f"{field} {text!r}: between 1m and {MAX_S // 86400}d 时长超出范围")
    return secs


def check_url(url: str, field: str = "--alertmanager") -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"{field} {url!r}: give http://HOST:PORT")
    return url.rstrip("/")


def check_id(sid: str) -> str:
    if not _ID.fullmatch(sid):
        raise UsageError(f"silence {sid!r}: not a silence id (a UUID as `netops monitor silence list` shows it)")
    return sid.lower()


# --- where a device's alerts go --------------------------------------------------------------------

def owner(inv: Inventory, device: str) -> str:
    """The monitor server key (a province id, or MINISTRY) whose collector covers ``device``."""
    prov = inv.province_of(inv.devices[device].site)
    return prov.id if prov else gen.MINISTRY


def override(url: str | None = None) -> str | None:
    """The one Alertmanager named (``--alertmanager``, else ``$NETOPS_ALERTMANAGER``), or None: each device's own."""
    if url:
        return check_url(url)
    env = os.environ.get(ENV)
    return check_url(env, f"${ENV}") if env else None


def route(inv: Inventory, devices: list[str], url: str | None = None) -> tuple[dict[str, list[str]], list[str]]:
    """({Alertmanager URL: its devices}, problems): the devices of a province without a monitor host are a problem
    each (no Alertmanager to silence them on), not an error."""
    one = override(url)
    if one:
        return {one: sorted(devices)}, []
    keys: dict[str, list[str]] = {}
    for d in sorted(devices):
        keys.setdefault(owner(inv, d), []).append(d)
    out, problems = {}, []
    for key, devs in keys.items():
        try:
            out.setdefault(stack.server(inv, key).url("alertmanager"), []).extend(devs)
        except UsageError as e:
            problems.append(f"{', '.join(devs)}: no Alertmanager 无告警管理器 ({e})")
    return out, problems


# --- the API ---------------------------------------------------------------------------------------

def call(base: str, method: str, path: str, body=None, timeout: float = TIMEOUT):
    """One request to an Alertmanager's HTTP API (``base`` its URL, ``path`` from ``/api/v2/…``), JSON both ways; the
    answer (None when empty), or an AlertmanagerError naming the server and what it said."""
    req = urllib.request.Request(base + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            data = r.read()
    except urllib.error.HTTPError as e:  # an answer: the request was refused (Alertmanager says why)
        detail = escape.one_line(e.read().decode(errors="replace")).strip().strip('"')[:300]
        raise AlertmanagerError(f"Alertmanager {base}: {method} {path}: HTTP {e.code} {detail}", e.code) from None
    except (OSError, ValueError) as e:  # URLError, a timeout, a refused connection
        raise AlertmanagerError(f"Alertmanager {base}: does not answer 无响应: {getattr(e, 'reason', None) or e}") from None
    try:
        return json.loads(data) if data.strip() else None
    except ValueError:
        raise AlertmanagerError(f"Alertmanager {base}: {method} {path}: the answer is not JSON") from None


def matchers(devices: list[str]) -> list[dict]:
    return [{"name": LABEL, "value": "|".join(escape.re2(d) for d in sorted(devices)), "isRegex": True, "isEqual": True}]


def _stamp(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def add(base: str, devices: list[str], seconds: int, author: str, comment: str) -> dict:
    """Silence the alerts of ``devices`` from now for ``seconds``; the silence as ``silences`` lists it."""
    now = datetime.now(UTC)
    body = {"matchers": matchers(devices), "startsAt": _stamp(now), "endsAt": _stamp(now + timedelta(seconds=seconds)),
            "createdBy": escape.alert(author), "comment": escape.alert(comment)}
    answer = call(base, "POST", "/api/v2/silences", body)
    sid = answer.get("silenceID") if isinstance(answer, dict) else None
    if not isinstance(sid, str):
        raise AlertmanagerError(f"Alertmanager {base}: POST /api/v2/silences: no silenceID in the answer")
    return {"alertmanager": base, "id": sid, "state": "active", "devices": sorted(devices), "matchers": _text(body["matchers"]),
            "createdBy": body["createdBy"], "comment": body["comment"], "startsAt": body["startsAt"], "endsAt": body["endsAt"]}


def _text(ms: list[dict]) -> list[str]:
    ops = {(True, False): "=", (False, False): "!=", (True, True): "=~", (False, True): "!~"}
    return [f"{m['name']}{ops[m.get('isEqual', True), m.get('isRegex', False)]}{m['value']}" for m in ms]


def silences(base: str) -> list[dict]:
    """Every silence the Alertmanager holds (active, pending and, until its retention ends, expired)."""
    try:
        return [{"alertmanager": base, "id": s["id"], "state": s["status"]["state"], "matchers": _text(s["matchers"]),
                 "createdBy": s.get("createdBy", ""), "comment": s.get("comment", ""), "startsAt": s["startsAt"],
                 "endsAt": s["endsAt"]} for s in call(base, "GET", "/api/v2/silences")]
    except (KeyError, TypeError, AttributeError) as e:
        raise AlertmanagerError(f"Alertmanager {base}: GET /api/v2/silences: not a list of silences ({e!r})") from None


def find(base: str, sid: str) -> dict | None:
    try:
        return call(base, "GET", f"/api/v2/silence/{check_id(sid)}")
    except AlertmanagerError as e:
        if e.status == 404:
            return None
        raise


def expire(base: str, sid: str) -> None:
    call(base, "DELETE", f"/api/v2/silence/{check_id(sid)}")


# --- the window around a change --------------------------------------------------------------------

@contextmanager
def maintenance(inv: Inventory, devices: list[str], change: str, what: str, author: str, seconds: int = WINDOW_S):
    """Silence ``devices`` for the change ``change`` (its id) while the block runs; yields the window as the
    change's result records it: {change, devices, silences: [{alertmanager, id, endsAt}], opened, warnings,
    expired}, or None when there are no devices. Nothing here fails the change: an Alertmanager that does not
    answer is a warning in the window."""
    if not devices:
        yield None
        return
    win = {"change": change, "devices": sorted(devices), "silences": [], "opened": False, "warnings": [], "expired": False}
    try:
        routes, win["warnings"] = route(inv, devices)
    except UsageError as e:  # a malformed $NETOPS_ALERTMANAGER
        routes, win["warnings"] = {}, [str(e)]
    for base, devs in routes.items():
        try:
            s = add(base, devs, seconds, author, f"netops change {change}: {what}")
        except AlertmanagerError as e:
            win["warnings"].append(f"{', '.join(devs)}: {e}")
        else:
            win["silences"].append({"alertmanager": base, "id": s["id"], "devices": devs, "endsAt": s["endsAt"]})
    win["opened"] = not win["warnings"]
    try:
        yield win
    finally:
        ended = True
        for s in win["silences"]:
            try:
                expire(s["alertmanager"], s["id"])
            except AlertmanagerError as e:
                ended = False
                win["warnings"].append(f"silence {s['id']} not expired 未能结束 (it ends at {s['endsAt']}): {e}")
        win["expired"] = ended and bool(win["silences"])


def summary(win: dict | None) -> str | None:
    """One line for people on a change's window, or None when the change opened none."""
    if not win:
        return None
    ids = ", ".join(f"{s['id']} @ {s['alertmanager']}" for s in win["silences"])
    if win["opened"] and not win["warnings"]:
        return f"维护窗口 maintenance window {win['change']}: silence {ids} " + \
            ("expired 已结束" if win["expired"] else "open 进行中")
    return (f"⚠ 维护窗口未能完全开启或结束 maintenance window {win['change']} not fully opened or ended (a warning: "
            f"the change went ahead; alerts of its devices may have fired) — " + "; ".join(win["warnings"]) +
            (f"; silenced 已静默: {ids}" if ids else ""))


# --- `netops monitor silence list | add | expire` ----------------------------------------------------

def register_verb(verbs, common) -> None:
    p = verbs.add_parser("silence", help="Alertmanager silences (maintenance windows): list, add, expire 告警静默")
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True

    def verb(name: str, func, help_: str):
        v = sub.add_parser(name, parents=[common], help=help_, description=help_)
        v.add_argument("--alertmanager", metavar="URL", help=f"this Alertmanager (default: ${ENV}, else each province's "
                                                              "and the ministry's, where `netops monitor up` runs them)")
        v.set_defaults(func=func, verb=f"silence {name}")  # the whole verb, as the core names it in a usage error
        return v

    ls = verb("list", cmd_list, "the silences of every Alertmanager: active and pending (exit 3 if one does not answer)")
    ls.add_argument("--all", action="store_true", help="expired silences too (kept for Alertmanager's retention)")
    a = verb("add", cmd_add, "silence the alerts of devices for a while (on the Alertmanager their alerts go to)")
    a.add_argument("--device", action="append", required=True, metavar="DEVICE", help="a device id, repeatable")
    a.add_argument("--duration", default="2h", help="how long: 30m, 2h, 1h30m, 1d (default 2h, at most 7d)")
    a.add_argument("--comment", required=True, help="why: the change or ticket 原因（变更单号）")
    a.add_argument("--author", help="who silences (default: the OS user)")
    e = verb("expire", cmd_expire, "end a silence now 结束静默")
    e.add_argument("id", help="the silence id (as `netops monitor silence list` shows it)")


def _urls(args) -> list[str]:
    """The Alertmanagers to list or search: the one named, or every monitor server's."""
    one = override(args.alertmanager)
    return [one] if one else [e["alertmanager"] for e in stack.endpoints(load(args.inventory)).values()]


def _each(urls: list[str], fn) -> tuple[dict, dict]:
    """fn(url) on every Alertmanager: ({url: answer}, {url: error}); none answering is an error."""
    done, failed = {}, {}
    with ThreadPoolExecutor(len(urls)) as pool:
        for url, fut in [(u, pool.submit(fn, u)) for u in urls]:
            try:
                done[url] = fut.result()
            except AlertmanagerError as e:
                failed[url] = str(e)
    if not done:
        raise AlertmanagerError("; ".join(failed.values()))
    return done, failed


def cmd_list(args, out: Out) -> int:
    done, failed = _each(_urls(args), silences)
    rows = [s for ss in done.values() for s in ss if args.all or s["state"] != "expired"]
    rows.sort(key=lambda s: (s["state"] != "active", s["endsAt"]))
    if out.json_mode:
        out.json({"ok": not failed, "silences": rows, "unreachable": failed})
    else:
        for url in done:
            out.table(f"告警静默 silences @ {url}", ["id", "state 状态", "matchers 匹配", "by 创建者", "comment 说明", "ends 结束 (UTC)"],
                      [[s["id"], s["state"], " ".join(s["matchers"]), s["createdBy"], s["comment"],
                        s["endsAt"][:16].replace("T", " ")] for s in rows if s["alertmanager"] == url])
        for err in failed.values():
            out.print(f"✗ {err}", markup=False)
    return PARTIAL if failed else OK


def cmd_add(args, out: Out) -> int:
    seconds = parse_duration(args.duration)
    author, comment = (args.author or getpass.getuser()).strip(), args.comment.strip()
    if not author or not comment:
        raise UsageError(f"monitor silence add: {'--author' if not author else '--comment'}: empty 不能为空")
    inv = load(args.inventory)
    unknown = [d for d in args.device if d not in inv.devices]
    if unknown:
        raise UsageError(problems=[f"{inv.root}: device {d!r}: not in the inventory 设备不存在" for d in unknown])
    routes, problems = route(inv, sorted(set(args.device)), args.alertmanager)
    if problems:
        raise UsageError(problems=problems)
    made = [add(url, devs, seconds, author, comment) for url, devs in routes.items()]
    if out.json_mode:
        out.json({"ok": True, "silences": made})
    for s in made:
        out.print(f"✓ silence {s['id']} @ {s['alertmanager']}: {' '.join(s['matchers'])} until {s['endsAt']} 已静默",
                  markup=False)
    return OK


def cmd_expire(args, out: Out) -> int:
    sid = check_id(args.id)
    done, failed = _each(_urls(args), lambda url: find(url, sid))
    where = [url for url, found in done.items() if found]
    if not where:
        raise (AlertmanagerError if failed else UsageError)(
            f"silence {sid!r}: not found on any Alertmanager that answered 未找到" + "".join(f"; {e}" for e in failed.values()))
    for url in where:
        expire(url, sid)
    if out.json_mode:
        out.json({"ok": True, "id": sid, "expired": where})
    out.print(f"✓ silence {sid} expired 已结束 @ {', '.join(where)}", markup=False)
    return OK
