"""Network-device rule packs: one table of requirements per platform over running-config text.

A requirement is one of
  present(regex)            some line matches (leading blanks ignored: Comware indents global commands)
  absent(regex)             no line matches
  each(header, regex)       every block whose header matches (e.g. each VTY line) has a matching line
An optional test(match, params) checks the numbers (lockout count, timeout). A control the platform
leaves to its Linux host (FRR: sshd, snmpd, chrony, PAM) is judged on that host's effective state,
read with the servers' collection script (hostchecks) in the same session: an ``OnHost`` rule.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from jinbao_netops.inventory.platforms import PLATFORMS, redact

from . import hostchecks


@dataclass(frozen=True)
class Req:
    label: str
    kind: str                 # present | absent | each
    regex: str
    header: str | None = None
    test: Callable[[re.Match, dict], bool] | None = None
    default: str | None = None  # each: the line a block acts on when it shows none (a default not printed)


def present(label, regex, test=None):
    return Req(label, "present", regex, test=test)


def absent(label, regex):
    return Req(label, "absent", regex)


def each(label, header, regex, test=None, default=None):
    return Req(label, "each", regex, header=header, test=test, default=default)


def _unprinted(platform: str, setting: str) -> str:
    """The platform's default for ``setting`` as its config would show it (indented, inside its stanza)."""
    return " " + next(x for x in PLATFORMS[platform].unprinted if x.startswith(setting))


def _minutes_ok(m: re.Match, p: dict) -> bool:
    secs = int(m.group(1)) * 60 + int(m.group(2) or 0)
    return 0 < secs <= p["dengbao_idle_timeout"]


def _deny_ok(m: re.Match, p: dict) -> bool:
    return 0 < int(m.group(1)) <= p["dengbao_lock_deny"]


def _loghost_ok(m: re.Match, p: dict) -> bool:
    """The loghost is the device's log host (the province's, from the parameters), not any address."""
    return m.group(1) == p["dengbao_log_host"]


@dataclass(frozen=True)
class OnHost:
    """A control the platform leaves to its Linux host: a hostchecks check over the host's collected
    sections; ``na_reason`` when the check finds the control not applicable (the top time source)."""
    check: Callable[[dict, dict], tuple[list[dict] | None, list[str]]]
    na_reason: str = ""

VTY_HUAWEI = r"^user-interface vty "
VTY_LINE = r"^line vty "
RULES: dict[str, dict[str, list[Req] | str]] = {
    "huawei_vrp": {
        "net-ssh-only": [present("stelnet server enable", r"^stelnet server enable"),
                         absent("telnet server off 关闭telnet", r"^telnet server enable"),
                         each("VTY protocol inbound ssh", VTY_HUAWEI, r"^\s+protocol inbound ssh\s*$")],
        "net-aaa-lockout": [each("VTY authentication-mode aaa", VTY_HUAWEI, r"^\s+authentication-mode aaa"),
                            present("local-aaa-user wrong-password lockout 登录失败锁定",
                                    r"^\s*local-aaa-user wrong-password retry-interval \d+ retry-time (\d+) block-time \d+", _deny_ok)],
        "net-idle-timeout": [each("VTY idle-timeout ≤ limit", VTY_HUAWEI, r"^\s+idle-timeout (\d+)(?: (\d+))?", _minutes_ok)],
        "net-snmpv3": [absent("no snmp-agent community 无团体名", r"^snmp-agent community "),
                       present("snmp-agent sys-info version v3", r"^snmp-agent sys-info version v3\s*$")],
        "net-syslog": [present("info-center loghost = log host 日志服务器", r"^info-center loghost (?:source \S+ )?(\d+\.\d+\.\d+\.\d+)",
                                      _loghost_ok)],
        "net-ntp": [present("ntp-service unicast-server", r"^ntp-service unicast-server \S+")],
        "net-banner": [present("header login", r"^header (login|shell) ")],
        "net-vty-acl": [each("VTY acl inbound", VTY_HUAWEI, r"^\s+acl (ipv6 )?\d+ inbound")],
        "net-unused-services": [absent("http server off", r"^http (server|secure-server) enable"),
                                absent("ftp server off", r"^ftp (ipv6 )?server enable"),
                                absent("tftp server off", r"^tftp-server ")],
        "net-encrypted-transport": [present("SNMPv3 user with privacy 加密", r"^snmp-agent usm-user v3 \S+ .*privacy-mode (aes|des)")],
    },
    "hp_comware": {
        "net-ssh-only": [present("ssh server enable", r"^ssh server enable"),
                         absent("telnet server off 关闭telnet", r"^telnet server enable"),
                         each("line vty protocol inbound ssh", VTY_LINE, r"^\s+protocol inbound ssh\s*$")],
        "net-aaa-lockout": [each("line vty authentication-mode scheme", VTY_LINE, r"^\s+authentication-mode scheme"),
                            present("password-control enable", r"^password-control enable"),
                            present("password-control login-attempt 登录失败锁定",
                                    r"^password-control login-attempt (\d+) exceed lock(?:-time \d+)?", _deny_ok)],
        "net-idle-timeout": [each("line vty idle-timeout ≤ limit", VTY_LINE, r"^\s+idle-timeout (\d+)(?: (\d+))?", _minutes_ok)],
        "net-snmpv3": [absent("no snmp-agent community 无团体名", r"^snmp-agent community "),
                       present("snmp-agent sys-info version v3", r"^snmp-agent sys-info version v3\s*$")],
        "net-syslog": [present("info-center loghost = log host 日志服务器", r"^info-center loghost (?:vpn-instance \S+ )?(\d+\.\d+\.\d+\.\d+)",
                                      _loghost_ok)],
        "net-ntp": [present("ntp-service unicast-server", r"^ntp-service unicast-server \S+")],
        "net-banner": [present("header login/motd", r"^header (login|motd|shell) ")],
        "net-vty-acl": [present("ssh server acl", r"^ssh server (ipv6 )?acl \d+")],
        "net-unused-services": [absent("ip http off", r"^ip http enable"), absent("ftp server off", r"^ftp server enable"),
                                absent("tftp server off", r"^tftp-server ")],
        "net-encrypted-transport": [present("SNMPv3 user with privacy 加密", r"^snmp-agent usm-user v3 \S+ .*privacy-mode (aes|des)")],
    },
    "cisco_ios": {
        "net-ssh-only": [present("ip ssh version 2", r"^ip ssh version 2"),
                         each("line vty transport input ssh", VTY_LINE, r"^\s+transport input ssh\s*$")],
        "net-aaa-lockout": [present("aaa new-model", r"^aaa new-model"),
                            present("login block-for / max-fail 登录失败锁定",
                                    r"^(?:login block-for \d+ attempts|aaa local authentication attempts max-fail) (\d+)", _deny_ok)],
        "net-idle-timeout": [each("line vty exec-timeout ≤ limit", VTY_LINE, r"^\s+exec-timeout (\d+)(?: (\d+))?", _minutes_ok),
                             each("line con exec-timeout ≤ limit", r"^line con ", r"^\s+exec-timeout (\d+)(?: (\d+))?", _minutes_ok)],
        "net-snmpv3": [absent("no snmp-server community 无团体名", r"^snmp-server community "),
                       present("snmp-server group v3 priv", r"^snmp-server group \S+ v3 priv")],
        "net-syslog": [present("logging host = log host 日志服务器", r"^logging (?:host )?(\d+\.\d+\.\d+\.\d+)", _loghost_ok)],
        "net-ntp": [present("ntp server", r"^ntp server \S+")],
        "net-banner": [present("banner login/motd", r"^banner (login|motd) ")],
        "net-vty-acl": [each("line vty access-class in", VTY_LINE, r"^\s+access-class \S+ in")],
        "net-unused-services": [absent("ip http server off", r"^ip http (secure-)?server\s*$"),
                                absent("tcp/udp small servers off", r"^service (tcp|udp)-small-servers"),
                                absent("finger off", r"^(ip|service) finger")],
        "net-encrypted-transport": [present("SNMPv3 priv group 加密", r"^snmp-server group \S+ v3 priv")],
    },
    # ASA OS: management access is per interface (ssh/telnet/http ADDRESS MASK IFNAME), timeouts in minutes
    "cisco_asa": {
        "net-ssh-only": [present("ssh version 2", r"^ssh version 2\s*$"),
                         absent("no telnet access 关闭telnet", r"^telnet \d+\.\d+\.\d+\.\d+ ")],
        "net-aaa-lockout": [present("aaa authentication ssh console LOCAL", r"^aaa authentication ssh console "),
                            present("aaa local authentication attempts max-fail 登录失败锁定",
                                    r"^aaa local authentication attempts max-fail (\d+)", _deny_ok)],
        "net-idle-timeout": [present("ssh timeout ≤ limit", r"^ssh timeout (\d+)()\s*$", _minutes_ok),
                             present("console timeout ≤ limit", r"^console timeout (\d+)()\s*$", _minutes_ok)],
        "net-snmpv3": [absent("no snmp-server community 无团体名", r"^snmp-server (community |host \S+ \S+ community )"),
                       present("snmp-server group v3 priv", r"^snmp-server group \S+ v3 priv")],
        "net-syslog": [present("logging host", r"^logging host \S+ \d+\.\d+\.\d+\.\d+")],
        "net-ntp": [present("ntp server", r"^ntp server \S+")],
        "net-banner": [present("banner login/motd", r"^banner (login|motd) ")],
        "net-vty-acl": [present("ssh from the management network only", r"^ssh \d+\.\d+\.\d+\.\d+ \d+\.\d+\.\d+\.\d+ \S+"),
                        absent("no ssh from anywhere 不允许任意地址", r"^ssh 0\.0\.0\.0 0\.0\.0\.0 ")],
        "net-unused-services": [absent("http server (ASDM) off", r"^http server enable"),
                                absent("tftp server off", r"^tftp-server ")],
        "net-encrypted-transport": [present("SNMPv3 priv group 加密", r"^snmp-server group \S+ v3 priv")],
    },
    "frr": {
        "net-ssh-only": [absent("no vty password (telnet vty login) 无telnet口令", r"^\s*(enable )?password "),
                         absent("no 'no login' on vty", r"^no login")],
        "net-aaa-lockout": OnHost(hostchecks.login_lockout),
        # FRR prints the vty timeout only when it differs from its default (10 min): an absent one is that
        "net-idle-timeout": [each("line vty exec-timeout ≤ limit", r"^line vty", r"^\s+exec-timeout (\d+)(?: (\d+))?", _minutes_ok,
                                  default=_unprinted("frr", "exec-timeout "))],
        "net-snmpv3": OnHost(hostchecks.snmp_v3_only),
        "net-syslog": [present("log syslog", r"^log syslog")],
        "net-ntp": OnHost(hostchecks.time_sync_effective, hostchecks.NA_REASONS["time-sync"]),
        # who logs in to the router logs in to its host: sshd shows the banner (vtysh keeps its motd to itself)
        "net-banner": OnHost(hostchecks.login_banner),
        "net-vty-acl": [each("line vty access-class", r"^line vty", r"^\s+access-class \S+")],
        "net-unused-services": OnHost(hostchecks.unused_services),
        "net-encrypted-transport": OnHost(hostchecks.encrypted_management),
    },
}


def blocks(lines: list[str], header: str) -> list[list[str]]:
    """Indented sub-commands under every line matching header (VRP/Comware/IOS/FRR all indent them)."""
    out, cur = [], None
    for line in lines:
        if re.match(header, line):
            cur = []
            out.append(cur)
        elif cur is not None and line[:1] in (" ", "\t"):
            cur.append(line)
        else:
            cur = None
    return out


def on_host(platform: str) -> bool:
    """Whether some control of the platform is judged on its Linux host (the host is then collected too)."""
    return any(isinstance(r, OnHost) for r in RULES.get(platform, {}).values())


def on_config(platform: str, control_id: str) -> bool:
    """Whether the control is judged on the device's configuration (the platform's rule pack) — not on its
    Linux host, nor on the suite's records (the boundary control) — what hardening the config changes."""
    return isinstance(rule(platform, control_id), list)


def rule(platform: str, control_id: str) -> list[Req] | OnHost | None:
    return RULES.get(platform, {}).get(control_id)


def evaluate(platform: str, control_id: str, text: str, params: dict):
    """Sub-findings for one control's config rule on one config, or (None, reason) when the platform
    has no rule for it. A finding's detail quotes the matched lines with the platform's secrets redacted."""

    def shown(line: str) -> str:
        return redact(platform, line.strip())

    reqs = rule(platform, control_id)
    if reqs is None:
        return None, f"no rule for {platform} 该平台无此检查规则"
    lines = text.splitlines()
    subs = []
    for r in reqs:
        if r.kind == "each":
            bl = blocks(lines, r.header) or ([[]] if r.default else [])  # no stanza: every setting its default
            hits = [next((m for m in (re.match(r.regex, ln) for ln in b) if m), None)
                    or (re.match(r.regex, r.default) if r.default else None) for b in bl]
            ok = bool(bl) and all(m is not None and (r.test is None or r.test(m, params)) for m in hits)
            detail = f"{sum(h is not None for h in hits)}/{len(bl)} blocks " + "; ".join(shown(m.group(0)) for m in hits if m)
        else:
            ms = [m for m in (re.match(r.regex, ln.strip()) for ln in lines) if m]
            if r.kind == "present":
                ok = any(r.test is None or r.test(m, params) for m in ms)
                detail = shown(ms[0].group(0)) if ms else "missing 未配置"
            else:
                ok = not ms
                detail = "; ".join(shown(m.string) for m in ms) or "absent 未配置"
        subs.append({"label": r.label, "ok": ok, "detail": detail[:200]})
    return subs, ""

