"""The 安全管理中心 log store (GB/T 22239-2019 8.1.5.4 c/d; 网络安全法 第二十一条: ≥ 6 months).

Who sends to whom comes from the inventory and the parameters, resolved per host as Ansible and
the audit resolve them (``catalogue.host_params``): a device's log host is ``dengbao_log_host``,
by default its province's monitor (a province's monitor sends to the ministry's).

* Servers send with RELP over TLS (rsyslog ``omrelp``/``imrelp``), mutual authentication by
  certificate name: the log host admits only the certificate names of the devices that send to it
  (the allowlist), and files every message under the device the *source address* belongs to in the
  inventory — never under the hostname the message claims (shown beside it as ``claimed``). RELP,
  not plain syslog over TLS (RFC 5425), because RELP acknowledges every message: what was in flight
  when the log host went away is sent again, where a TLS stream can lose what sat in the socket
  buffer. Senders queue with disk assistance, so a log host restart loses nothing.
* Network devices send plain syslog over UDP (what VRP, Comware and IOS offer everywhere); only
  their management addresses are admitted, filed the same way.
* A province log host relays the security-relevant streams (auth, authpriv, audit, sudo) to the
  ministry's log host over the same RELP/TLS transport.
* Files: ``/var/log/remote/<device>.log``; logrotate rotates daily to ``<device>.log-YYYYMMDD``,
  compressed, kept ``dengbao_log_retention_days``. Each rotation seals the day into a hash chain
  beside the logs (``.chain/``): a manifest of every rotated file's content hash, and a chain line
  ``DAY PREVIOUS DIGEST`` where DIGEST = sha256(PREVIOUS + "\\n" + manifest), so altering a line,
  a manifest or dropping a day breaks every later link; ``verify`` names the first break.

Remote reads go through the access layer as one read-only script on stdin under ``sudo -n sh -s``.
"""
from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from jinbao_netops import escape
from jinbao_netops.errors import UsageError
from jinbao_netops.inventory.store import Inventory

from .catalogue import host_params

STORE = "/var/log/remote"
CHAIN = f"{STORE}/.chain"
SEAL = "/usr/local/sbin/dengbao-log-seal"
ROTATE = "/etc/logrotate.d/dengbao-remote"
RECEIVE = "/etc/rsyslog.d/10-dengbao-receive.conf"
FORWARD = "/etc/rsyslog.d/90-dengbao-forward.conf"
OMRELP = "/etc/rsyslog.d/05-dengbao-omrelp.conf"  # loaded before any file that forwards or relays
TABLES = {"relp": "/etc/rsyslog.d/dengbao-senders-relp.json", "udp": "/etc/rsyslog.d/dengbao-senders-udp.json"}
GENESIS = "0" * 64
SECURITY_FILTER = 'prifilt("auth,authpriv.*") or re_match($programname, "^(audit|sudo|dengbao-log-seal)")'
ROTATED = re.compile(r"^(?P<src>[a-z][a-z0-9-]{0,39})\.log-(?P<day>\d{8})(?:\.gz)?$")


@dataclass(frozen=True)
class Sender:
    device: str
    address: str
    transport: str  # "relp" (servers: RELP over TLS) or "udp" (network devices)


# ------------------------------------------------------------------------------------ who sends where
def log_host_of(inv: Inventory, device: str) -> str | None:
    """The device id of ``device``'s log host; None at the top of the chain."""
    addr = host_params(inv, device)["dengbao_log_host"]
    if not addr:
        return None
    for did, d in inv.devices.items():
        if str(d.management) == addr or did == addr:
            return did
    raise UsageError(f"device {device!r}: parameter 'dengbao_log_host': {addr!r} is no device's management address "
                     f"in the inventory (the log host must be an inventory device: its certificate name is its id)")


def log_hosts(inv: Inventory, scope: str | None = None) -> dict[str, list[Sender]]:
    """Log host → its senders (the allowlist, built from the inventory), for the log hosts that sit in
    ``scope`` (all their senders) or receive from devices in it (those devices)."""
    hosts = set(inv.scope(scope))
    out: dict[str, list[Sender]] = {}
    for did in sorted(inv.devices):
        up = log_host_of(inv, did)
        if up is None or (up not in hosts and did not in hosts):
            continue
        kind = "relp" if inv.devices[did].platform_info.kind == "server" else "udp"
        out.setdefault(up, []).append(Sender(did, str(inv.devices[did].management), kind))
    return out


def senders(inv: Inventory, loghost: str) -> list[Sender]:
    """Every device whose logs go to ``loghost``."""
    return log_hosts(inv, loghost).get(loghost, [])


def admitted(inv: Inventory, loghost: str) -> list[dict]:
    """What ``loghost``'s firewall admits for the store: per transport (``proto``, ``port``) the management
    addresses of its senders (``sources``), and nothing wider. Every sender sends to the log host's management
    address, which it reaches over its own management interface on the out-of-band management network, so its
    source is its management address; the receiver files nothing from any other address anyway."""
    p = host_params(inv, loghost)
    items = senders(inv, loghost)
    out = []
    for proto, transport, port in (("tcp", "relp", p["dengbao_log_relp_port"]), ("udp", "udp", p["dengbao_log_port"])):
        sources = sorted({s.address for s in items if s.transport == transport}, key=ipaddress.ip_address)
        if sources:
            out.append({"proto": proto, "port": int(port), "sources": sources, "what": "log senders 日志源"})
    return out


# ------------------------------------------------------------------------------------ rendering
def _q(text) -> str:
    return escape.rsyslog(text)


def _tls(p: dict, peers: list[str]) -> str:
    """RELP's TLS: this host's certificate and key, the CA, and the certificate names it admits."""
    d = p["dengbao_log_tls_dir"].rstrip("/")
    return (f'tls="on" tls.caCert={_q(d + "/ca.crt")} tls.myCert={_q(d + "/node.crt")} tls.myPrivKey={_q(d + "/node.key")} '
            f'tls.authMode="name" tls.permittedPeer=[{", ".join(_q(x) for x in peers)}]')


def forward_action(target: str, peer: str, p: dict, queue: str, template: str | None = None) -> str:
    """One omrelp action on one line (the audit reads it line by line): RELP over TLS, the peer's certificate
    name checked, a disk-assisted queue kept across restarts, retried forever."""
    tpl = f" template={_q(template)}" if template else ""
    return (f'action(type="omrelp" target={_q(target)} port="{int(p["dengbao_log_relp_port"])}"{tpl} {_tls(p, [peer])} '
            f'queue.type="LinkedList" queue.filename={_q(queue)} queue.maxDiskSpace={_q(p["dengbao_log_queue_max"])} '
            f'queue.saveOnShutdown="on" action.resumeRetryCount="-1" action.resumeInterval="5")')


def render_sender(inv: Inventory, device: str) -> dict[str, str]:
    """The rsyslog file of a server: every message to its log host (none at the top of the chain)."""
    p = host_params(inv, device)
    loghost = log_host_of(inv, device)
    if not loghost:
        return {}
    return {OMRELP: '# managed by jinbao-netops\nmodule(load="omrelp")\n',
            FORWARD: "# managed by jinbao-netops — 日志经 RELP/TLS 转发至日志服务器 (等保 8.1.4.3 c, 8.1.5.4 c)\n"
                     + "*.* " + forward_action(str(inv.devices[loghost].management), loghost, p, "dengbao_fwd") + "\n"}


def lookup_table(items: list[Sender]) -> str:
    """An rsyslog lookup table: source address → inventory device id; anything else maps to ""."""
    return json.dumps({"version": 1, "nomatch": "", "type": "string",
                       "table": [{"index": s.address, "value": s.device} for s in items]}, indent=1) + "\n"


def render_receiver(inv: Inventory, loghost: str) -> dict[str, str]:
    """The log host's files: RELP/TLS and UDP inputs admitting only its senders, filing by the sender's
    inventory id, the relay of security streams upward, rotation, and the seal script."""
    p = host_params(inv, loghost)
    items = senders(inv, loghost)
    relp = [s for s in items if s.transport == "relp"]
    udp = [s for s in items if s.transport == "udp"]
    upper = log_host_of(inv, loghost)
    lines = [
        "# managed by jinbao-netops — 日志服务器接收 (安全管理中心 8.1.5.4 c/d): RELP/TLS from the inventory's servers,",
        "# UDP from its network devices; filed by the authenticated source, never by the claimed hostname",
        'template(name="DengbaoFile" type="string" string="' + STORE + '/%$.src%.log")',
        'template(name="DengbaoLine" type="string" string="%timegenerated:::date-rfc3339% %$.src% claimed=%hostname% '
        '%syslogtag%%msg:::sp-if-no-1st-sp%%msg:::drop-last-lf%\\n")',
    ]
    if upper:  # the security streams go on to the next log host up, named by the sender this host authenticated
        lines += ['template(name="DengbaoRelay" type="string" string="<%pri%>%timereported:::date-rfc3339% %$.src% %syslogtag%'
                  '%msg:::sp-if-no-1st-sp%%msg:::drop-last-lf%\\n")',
                  'ruleset(name="dengbao_relay") {',
                  f"  {forward_action(str(inv.devices[upper].management), upper, p, 'dengbao_relay', 'DengbaoRelay')}", "}"]
    for kind, group in (("relp", relp), ("udp", udp)):
        if not group:
            continue
        lines += [f'lookup_table(name="dengbao_{kind}" file={_q(TABLES[kind])} reloadOnHUP="on")',
                  f'ruleset(name="dengbao_{kind}") {{',
                  f'  set $.src = lookup("dengbao_{kind}", $fromhost-ip);',
                  '  if $.src == "" then stop',
                  '  action(type="omfile" dynaFile="DengbaoFile" template="DengbaoLine" fileCreateMode="0640" '
                  'dirCreateMode="0750" fileGroup="adm")']
        if upper:
            lines.append(f"  if {SECURITY_FILTER} then call dengbao_relay")
        lines += ["  stop", "}"]
    if relp:
        lines += ['module(load="imrelp")', f'input(type="imrelp" port="{int(p["dengbao_log_relp_port"])}" ruleset="dengbao_relp" '
                  f'{_tls(p, [s.device for s in relp])})']
    if udp:
        lines += ['module(load="imudp")', f'input(type="imudp" port="{int(p["dengbao_log_port"])}" ruleset="dengbao_udp")']
    return {RECEIVE: "\n".join(lines) + "\n", TABLES["relp"]: lookup_table(relp), TABLES["udp"]: lookup_table(udp),
            ROTATE: render_logrotate(p), SEAL: seal_script()}


def render_logrotate(p: dict) -> str:
    days = int(p["dengbao_log_retention_days"])
    return (f"# managed by jinbao-netops — 日志保存 {days} 天 (网络安全法 第二十一条), daily, compressed, sealed into the hash chain\n"
            f"{STORE}/*.log {{\n    daily\n    rotate {days}\n    maxage {days}\n    dateext\n    dateformat -%Y%m%d\n"
            "    dateyesterday\n    compress\n    missingok\n    notifempty\n    create 0640 root adm\n    sharedscripts\n"
            f"    postrotate\n        /usr/lib/rsyslog/rsyslog-rotate\n        {SEAL}\n    endscript\n}}\n")


def seal_script(store: str = STORE) -> str:
    """The seal, run on the log host (logrotate's postrotate, after rsyslog reopened its files): every
    rotated day newer than the chain's last is sealed in order; content hashes (zcat -f) survive
    compression. Its day digest is logged to authpriv, so the next log host up holds it too."""
    return f"""#!/bin/sh
# managed by jinbao-netops — 日志防篡改哈希链: seal each rotated day into {CHAIN}/chain
set -eu
umask 027
cd {escape.shell(store)}
mkdir -p .chain
last=$(tail -n 1 .chain/chain 2>/dev/null | cut -d' ' -f1)
prev=$(tail -n 1 .chain/chain 2>/dev/null | cut -d' ' -f3)
[ -n "$prev" ] || prev={GENESIS}
for day in $(ls | sed -n 's/^[a-z][a-z0-9-]*\\.log-\\([0-9]\\{{8\\}}\\)\\(\\.gz\\)\\{{0,1\\}}$/\\1/p' | sort -u); do
    if [ -n "$last" ] && [ "$day" -le "$last" ]; then continue; fi
    : > .chain/"$day".tmp
    for f in $(ls | grep -E "^[a-z][a-z0-9-]*\\.log-$day(\\.gz)?\\$" | sort); do
        h=$(zcat -f -- "$f" | sha256sum | cut -d' ' -f1)
        printf '%s  %s\\n' "$h" "${{f%.gz}}" >> .chain/"$day".tmp
    done
    mv .chain/"$day".tmp .chain/"$day".sha256
    digest=$( {{ printf '%s\\n' "$prev"; cat .chain/"$day".sha256; }} | sha256sum | cut -d' ' -f1)
    printf '%s %s %s\\n' "$day" "$prev" "$digest" >> .chain/chain
    logger -p authpriv.notice -t dengbao-log-seal "day $day digest $digest" || true
    prev=$digest
done
"""


# ------------------------------------------------------------------------------------ hash chain
def digest(prev: str, manifest: str) -> str:
    return hashlib.sha256((prev + "\n" + manifest).encode()).hexdigest()


def verify_chain(chain: str, manifests: dict[str, str], hashes: dict[str, str], horizon: str) -> dict:
    """Check the chain against the files as they are. ``hashes``: rotated file name (without .gz) → the
    sha256 of its content now; ``horizon``: the oldest day retention still keeps (YYYYMMDD) — a sealed
    file older than that may be gone. Returns the days checked, the first break (day, file, reason)
    and the rotated files no day has sealed yet."""
    prev, days, broken = GENESIS, [], None
    sealed: set[str] = set()
    for n, line in enumerate(chain.splitlines(), 1):
        parts = line.split()
        if len(parts) != 3 or not re.fullmatch(r"\d{8}", parts[0]):
            broken = {"day": None, "file": f"{CHAIN}/chain", "reason": f"line {n} is not 'DAY PREVIOUS DIGEST'"}
            break
        day, link, recorded = parts
        manifest = manifests.get(day)
        why, where = None, f"{CHAIN}/chain"
        if link != prev:
            why = "chain link broken: the previous day's digest differs (a day removed or rewritten) 哈希链断裂"
        elif manifest is None:
            why, where = "manifest missing 清单缺失", f"{CHAIN}/{day}.sha256"
        elif digest(prev, manifest) != recorded:
            why, where = "manifest altered: digest differs 清单被改", f"{CHAIN}/{day}.sha256"
        else:
            for entry in manifest.splitlines():
                want, _, name = entry.partition("  ")
                sealed.add(name)
                have = hashes.get(name)
                if have is None and day >= horizon:
                    why, where = "file missing within the retention period 保存期内文件缺失", f"{STORE}/{name}"
                elif have is not None and have != want:
                    why, where = "content altered: hash differs 内容被篡改", f"{STORE}/{name}"
                if why:
                    break
        days.append(day)
        if why:
            broken = {"day": day, "file": where, "reason": why}
            break
        prev = recorded
    unsealed = sorted(set(hashes) - sealed) if broken is None else []
    return {"ok": broken is None, "days": len(days), "last_day": days[-1] if days else None, "head": prev,
            "broken": broken, "unsealed": unsealed}


# ------------------------------------------------------------------------------------ remote scripts
MARK = "@@@dengbao-logs "


def _section(name: str, cmd: str) -> str:
    return f"echo '{MARK}{name}'; ( {cmd} ) 2>&1"


def verify_script(store: str = STORE) -> str:
    return "\n".join([
        "export LC_ALL=C PATH=/usr/sbin:/usr/bin:/sbin:/bin", f"cd {escape.shell(store)} || exit 0",
        _section("chain", "cat .chain/chain 2>/dev/null"),
        _section("manifests", "for m in .chain/*.sha256; do [ -e \"$m\" ] && echo \"== ${m#.chain/}\" && cat \"$m\"; done"),
        _section("hashes", "for f in *.log-*; do [ -e \"$f\" ] && printf '%s %s\\n' \"$(zcat -f -- \"$f\" | sha256sum | cut -d' ' -f1)\" "
                           "\"${f%.gz}\"; done"),
        "exit 0",
    ]) + "\n"


def split(output: str) -> dict[str, str]:
    from .hostchecks import split as sections  # hostchecks reads the store's facts through this module
    return sections(output, MARK)


def parse_verify(output: str) -> tuple[str, dict[str, str], dict[str, str]]:
    f = split(output)
    manifests: dict[str, str] = {}
    day = None
    for line in f.get("manifests", "").splitlines():
        if line.startswith("== "):
            day = line[3:].removesuffix(".sha256")
            manifests[day] = ""
        elif day:
            manifests[day] += line + "\n"
    hashes = dict(reversed(line.split(" ", 1)) for line in f.get("hashes", "").splitlines() if " " in line)
    return f.get("chain", ""), manifests, hashes


def status_script(store: str = STORE) -> str:
    return "\n".join([
        "export LC_ALL=C PATH=/usr/sbin:/usr/bin:/sbin:/bin", f"cd {escape.shell(store)} 2>/dev/null || exit 0",
        _section("files", "for f in *.log *.log-*; do [ -e \"$f\" ] && stat -c '%s %Y %n' -- \"$f\"; done"),
        _section("last", "for f in *.log; do [ -s \"$f\" ] && printf '%s\\t%s\\n' \"$f\" \"$(tail -n 1 -- \"$f\" | cut -c1-400)\"; done"),
        _section("disk", "df -B1 --output=avail,size . | tail -n 1"),
        _section("rotate", f"grep -vE '^\\s*(#|$)' {ROTATE}"),
        "exit 0",
    ]) + "\n"


def search_script(sources: list[str], since: date, pattern: str, limit: int, store: str = STORE) -> str:
    """Lines matching ``pattern`` (an extended regular expression) in the sources' files from ``since`` on;
    every value from the user is one shell word."""
    day = since.strftime("%Y%m%d")
    srcs = " ".join(escape.shell(s) for s in sources)
    return "\n".join([
        "export LC_ALL=C.UTF-8 PATH=/usr/sbin:/usr/bin:/sbin:/bin", f"cd {escape.shell(store)} 2>/dev/null || exit 0",
        f"for s in {srcs}; do for f in \"$s\".log-* \"$s\".log; do [ -e \"$f\" ] || continue",
        f"  d=${{f#\"$s\".log-}}; d=${{d%.gz}}; case $f in *.log-*) [ \"$d\" -ge {day} ] || continue;; esac",
        f"  zcat -f -- \"$f\" | grep -aE -e {escape.shell(pattern)} | head -n {int(limit)}",
        "done; done",
        "exit 0",
    ]) + "\n"


# ------------------------------------------------------------------------------------ the audit's view
# One command of the audit's read-only collection (security/hostchecks.py): the store's rotation, whether
# the seal runs at rotation, and which sources have files in the store.
STORE_FACTS = (f"grep -vE '^\\s*(#|$)' {ROTATE}; test -x {SEAL} && echo 'seal installed'; "
               f"ls -1 {STORE} 2>/dev/null | sed -n 's/^\\([a-z][a-z0-9-]*\\)\\.log\\(-[0-9]\\{{8\\}}\\(\\.gz\\)\\{{0,1\\}}\\)\\{{0,1\\}}$/source \\1/p' | sort -u")


def store_state(text: str, retention_days: int) -> dict:
    """The store as the audit read it (STORE_FACTS' output): rotation, seal, sources present."""
    lines = text.splitlines()
    rot = parse_rotate("\n".join(ln for ln in lines if not ln.startswith(("source ", "seal "))))
    sealed = "seal installed" in lines and any(SEAL in ln for ln in lines)
    return {"rotation": rot, "retention_ok": rot["kept_days"] >= retention_days and rot["compress"], "sealed": sealed,
            "sources": sorted(ln.split()[1] for ln in lines if ln.startswith("source ") and len(ln.split()) == 2)}


def sender_evidence(loghost: str, state: dict | None, device: str, retention_days: int) -> dict:
    """Whether ``loghost``'s store, as read by this audit, keeps ``device``'s logs for the retention period."""
    if state is None:
        return {"host": loghost, "ok": False, "detail": f"log host {loghost} could not be read 日志服务器无法读取"}
    problems = [f"rotation keeps {state['rotation']['kept_days']} days" + ("" if state["rotation"]["compress"] else ", uncompressed")
                ] if not state["retention_ok"] else []
    if not state["sealed"]:
        problems.append("no hash chain seal")
    if device not in state["sources"]:
        problems.append(f"no file for {device} in {STORE}")
    return {"host": loghost, "ok": not problems,
            "detail": "; ".join(problems) or f"{STORE}/{device}.log kept {state['rotation']['kept_days']} ≥ {retention_days} days, sealed"}


# ------------------------------------------------------------------------------------ parsing
def line_time(line: str) -> datetime | None:
    head = line.split(" ", 1)[0]
    try:
        t = datetime.fromisoformat(head)
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def parse_since(text: str, now: datetime) -> datetime:
    """``30m``, ``6h``, ``7d`` before now, or an ISO date/time (UTC unless it says otherwise)."""
    m = re.fullmatch(r"(\d+)([mhd])", text.strip())
    if m:
        unit = {"m": "minutes", "h": "hours", "d": "days"}[m.group(2)]
        return now - timedelta(**{unit: int(m.group(1))})
    try:
        t = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"--since: {text!r}: give 30m, 6h, 7d or an ISO date/time (2026-12-01T08:00)") from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def parse_search(output: str, since: datetime) -> list[dict]:
    out = []
    for line in output.splitlines():
        t = line_time(line)
        parts = line.split(" ", 2)
        if t is None or t < since or len(parts) < 3:
            continue
        out.append({"time": t.isoformat(), "source": parts[1], "line": parts[2]})
    return sorted(out, key=lambda r: r["time"])


def parse_rotate(text: str) -> dict:
    words = {ln.split()[0]: ln.split()[1:] for ln in text.splitlines() if ln.split()}
    days = {"daily": 1, "weekly": 7, "monthly": 31, "yearly": 365}
    period = next((d for k, d in days.items() if k in words), None)
    rotate = int(words["rotate"][0]) if words.get("rotate", [""])[0].isdigit() else 0
    maxage = int(words["maxage"][0]) if words.get("maxage", [""])[0].isdigit() else None
    kept = (period or 0) * rotate
    if maxage is not None:
        kept = min(kept, maxage)
    return {"period_days": period, "rotate": rotate, "maxage": maxage, "kept_days": kept, "compress": "compress" in words}


def parse_status(output: str, expected: list[str], now: datetime, retention_days: int, gap_minutes: int) -> dict:
    """Per source: last message, silence (a gap when longer than ``gap_minutes``), days missing within the
    store, volume; the retention horizon and the disk estimate for the whole retention period."""
    f = split(output)
    per: dict[str, dict] = {s: {"source": s, "bytes": 0, "days": [], "last": None, "expected": True} for s in expected}
    for line in f.get("files", "").splitlines():
        parts = line.split(" ", 2)
        if len(parts) != 3 or not parts[0].isdigit():
            continue
        size, name = int(parts[0]), parts[2]
        m = ROTATED.match(name)
        src = m.group("src") if m else name.removesuffix(".log")
        rec = per.setdefault(src, {"source": src, "bytes": 0, "days": [], "last": None, "expected": False})
        rec["bytes"] += size
        if m:
            rec["days"].append(m.group("day"))
    for line in f.get("last", "").splitlines():
        name, _, last = line.partition("\t")
        t = line_time(last)
        if t and name.removesuffix(".log") in per:
            per[name.removesuffix(".log")]["last"] = t
    rot = parse_rotate(f.get("rotate", ""))
    all_days = sorted({d for r in per.values() for d in r["days"]})
    sources, total = [], 0
    for src in sorted(per):
        r = per[src]
        total += r["bytes"]
        silent = None if r["last"] is None else int((now - r["last"]).total_seconds() // 60)
        missing = [d for d in all_days if d >= min(r["days"], default=all_days[-1] if all_days else "") and d not in r["days"]]
        sources.append({"source": src, "expected": r["expected"], "last_message": r["last"].isoformat() if r["last"] else None,
                        "silent_minutes": silent, "gap": r["last"] is None or silent > gap_minutes,
                        "missing_days": missing, "bytes": r["bytes"], "days_kept": len(r["days"])})
    disk = f.get("disk", "").split()
    avail = int(disk[0]) if len(disk) == 2 and disk[0].isdigit() else None
    per_day = total / max(1, len(all_days) or 1)
    need = int(per_day * retention_days)
    return {"sources": sources, "bytes": total, "oldest_day": all_days[0] if all_days else None,
            "retention_days": retention_days, "rotation": rot,
            "retention_ok": rot["kept_days"] >= retention_days and rot["compress"],
            "horizon": (now - timedelta(days=retention_days)).date().isoformat(),
            "disk": {"available": avail, "per_day": int(per_day), "needed_for_retention": need,
                     "fits": avail is not None and need <= avail}}
