"""Server controls: one read-only collection script per host, then one check per control.

The script only reads (cat, grep, stat, sshd -T, ss, systemctl is-*, auditctl -s, nft list); its
output is split into named sections, and each check turns sections plus the host's parameters into
sub-findings. Evidence quotes the section's command and an excerpt of its output.
"""
from __future__ import annotations

import ipaddress
import re

from jinbao_netops import escape

from . import logstore
from .catalogue import FAIL, NA, PARTIAL, PASS

MARK = "@@@dengbao "
PAM_FILES = "/etc/pam.d/common-auth /etc/pam.d/common-password /etc/pam.d/system-auth /etc/pam.d/password-auth"


def sections(params: dict) -> dict[str, str]:
    q = lambda xs: " ".join(escape.shell(x) for x in xs)
    admins = q([params["dengbao_sysadmin"], params["dengbao_secadmin"], params["dengbao_auditadmin"]])
    units = q([*params["dengbao_forbidden_services"], "ssh", "sshd", "auditd", "rsyslog", "chrony", "chronyd", "nftables"])
    return {
        "os": "grep -E '^(ID|ID_LIKE|VERSION_ID)=' /etc/os-release",
        "virt": "systemd-detect-virt -c",
        "sshd": "sshd -T | grep -Ei '^(permitrootlogin|passwordauthentication|permitemptypasswords|maxauthtries|"
                "clientaliveinterval|clientalivecountmax|ciphers|macs|kexalgorithms|listenaddress) '",
        "pam": f"grep -HsvE '^\\s*(#|$)' {PAM_FILES}",
        "pwquality": "cat /etc/security/pwquality.conf /etc/security/pwquality.conf.d/*.conf 2>/dev/null | grep -vE '^\\s*(#|$)'",
        "faillock": "grep -vE '^\\s*(#|$)' /etc/security/faillock.conf",
        "pwhistory": "grep -vE '^\\s*(#|$)' /etc/security/pwhistory.conf",
        "login_defs": "grep -E '^\\s*(PASS_MAX_DAYS|PASS_MIN_DAYS|PASS_WARN_AGE|UMASK)\\s' /etc/login.defs",
        "shell_env": "grep -HsE '^\\s*(readonly\\s+TMOUT|(export\\s+)?TMOUT=|umask\\s)' /etc/profile /etc/bash.bashrc /etc/profile.d/*.sh",
        "accounts": "awk -F: '$3==0{print \"uid0 \" $1}' /etc/passwd; awk -F: '$2==\"\"{print \"empty \" $1}' /etc/shadow",
        "perms": "stat -c '%a %U:%G %n' /etc/passwd /etc/group /etc/shadow /etc/gshadow /etc/ssh/sshd_config /var/log/audit",
        "admins": f"for u in {admins}; do getent passwd \"$u\" || echo \"missing $u\"; done",
        "sudoers": "grep -rhvE '^\\s*(#([^i]|$)|$)' /etc/sudoers /etc/sudoers.d/",
        "units": f"for u in {units}; do case $u in *.*) n=$u;; *) n=$u.service;; esac; "
                 f"echo \"$u $(systemctl is-active $n 2>/dev/null) $(systemctl is-enabled $n 2>/dev/null)\"; done",
        "packages": f"dpkg-query -W -f='${{Package}} ${{db:Status-Abbrev}}\\n' {q(params['dengbao_forbidden_packages'])} 2>/dev/null"
                    f" || rpm -q {q(params['dengbao_forbidden_packages'])} 2>/dev/null | grep -v 'not installed'",
        "audit_rules": "cat /etc/audit/rules.d/*.rules 2>/dev/null | grep -vE '^\\s*(#|$)'",
        "auditctl": "auditctl -s",
        "rsyslog": "grep -hsvE '^\\s*(#|$)' /etc/rsyslog.conf /etc/rsyslog.d/*.conf | grep -E '@|omfwd|[Tt]arget='",
        "logrotate": "grep -HsvE '^\\s*(#|$)' /etc/logrotate.d/rsyslog /etc/logrotate.d/syslog /etc/logrotate.conf",
        "logstore": logstore.STORE_FACTS,
        "chrony": "grep -hsE '^\\s*(server|pool|peer)\\s' /etc/chrony/chrony.conf /etc/chrony.conf /etc/chrony/sources.d/*.sources /etc/chrony/conf.d/*.conf",
        "listen": "ss -H -tuln",
        "nft": "nft list ruleset",
    }


def script(params: dict) -> str:
    """One POSIX shell script printing every section after a marker line; it never writes anything."""
    lines = ["export LC_ALL=C PATH=/usr/sbin:/usr/bin:/sbin:/bin"]
    for name, cmd in sections(params).items():
        lines.append(f"echo '{MARK}{name}'; ( {cmd} ) 2>&1")
    return "\n".join(lines) + "\n"


def split(output: str) -> dict[str, str]:
    facts: dict[str, str] = {}
    name = None
    for line in output.splitlines():
        if line.startswith(MARK):
            name = line[len(MARK):].strip()
            facts[name] = ""
        elif name:
            facts[name] += line + "\n"
    return facts


# ------------------------------------------------------------------------------------ helpers
def _kv(text: str, sep: str = r"\s*=\s*|\s+") -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        parts = re.split(sep, line.strip(), maxsplit=1)
        if len(parts) == 2 and parts[0]:
            out[parts[0].lower()] = parts[1].strip()
    return out


def _conf(text: str) -> dict[str, str]:
    """`key = value` and bare `flag` lines (faillock.conf, pwquality.conf)."""
    out = {}
    for line in text.splitlines():
        k, _, v = line.partition("=")
        if k.strip():
            out[k.strip().lower()] = v.strip()
    return out


def _int(v, default=None):
    try:
        return int(str(v).strip())
    except (TypeError, ValueError):
        return default


def _pam_parse(body: str) -> tuple[str, str, str, dict[str, str]] | None:
    """'auth [success=1 default=ignore] pam_unix.so nullok' → (type, control, module, args)."""
    m = re.match(r"^-?(\w+)\s+(\[[^\]]*\]|\S+)\s+(\S+)\s*(.*)$", body.strip())
    if not m:
        return None
    args = {a.split("=", 1)[0]: (a.split("=", 1)[1] if "=" in a else "") for a in m.group(4).split()}
    return m.group(1), m.group(2), m.group(3), args


def _pam_lines(facts: dict, kind: str, module: str) -> list[dict[str, str]]:
    """Argument maps of the `kind` lines that use `module` (every PAM file the host has)."""
    out = []
    for line in facts.get("pam", "").splitlines():
        parsed = _pam_parse(line.split(":", 1)[-1] if line.startswith("/") else line)
        if parsed and parsed[0] == kind and module in parsed[2]:
            out.append(parsed[3])
    return out


def _units(facts: dict) -> dict[str, tuple[str, str]]:
    out = {}
    for line in facts.get("units", "").splitlines():
        f = line.split()
        if f:
            out[f[0]] = (f[1] if len(f) > 1 else "", f[2] if len(f) > 2 else "")
    return out


def _sshd(facts: dict) -> dict[str, str]:
    return _kv(facts.get("sshd", ""), r"\s+")


def _sub(label: str, ok: bool, detail: str = "") -> dict:
    return {"label": label, "ok": bool(ok), "detail": detail}


# ------------------------------------------------------------------------------------ checks
def pw_quality(f, p):
    lines = _pam_lines(f, "password", "pam_pwquality") or _pam_lines(f, "password", "pam_cracklib")
    conf = {**_conf(f.get("pwquality", "")), **(lines[0] if lines else {})}
    minlen, minclass = _int(conf.get("minlen"), 8 if lines else 0), _int(conf.get("minclass"), 0)
    credits = sum(1 for k in ("dcredit", "ucredit", "lcredit", "ocredit") if _int(conf.get(k), 0) < 0)
    return [_sub("pam_pwquality in the password stack 口令模块启用", bool(lines)),
            _sub(f"minlen ≥ {p['dengbao_pass_min_len']}", lines and minlen >= p["dengbao_pass_min_len"], f"minlen={minlen}"),
            _sub(f"≥ {p['dengbao_pass_min_class']} character classes 字符类别",
                 lines and max(minclass, credits) >= p["dengbao_pass_min_class"], f"minclass={minclass}")], ["pam", "pwquality"]


def pw_history(f, p):
    hist = _pam_lines(f, "password", "pam_pwhistory")
    conf = _conf(f.get("pwhistory", ""))
    remember = _int(hist[0].get("remember", conf.get("remember")), 0) if hist else 0
    for a in _pam_lines(f, "password", "pam_unix"):
        remember = max(remember, _int(a.get("remember"), 0))
    return [_sub(f"remember ≥ {p['dengbao_pass_history']} 历史口令", remember >= p["dengbao_pass_history"],
                 f"remember={remember}")], ["pam", "pwhistory"]


def pw_aging(f, p):
    d = _kv(f.get("login_defs", ""))
    mx, mn, warn = (_int(d.get(k), None) for k in ("pass_max_days", "pass_min_days", "pass_warn_age"))
    return [_sub(f"PASS_MAX_DAYS ≤ {p['dengbao_pass_max_days']}", mx is not None and 0 < mx <= p["dengbao_pass_max_days"], f"PASS_MAX_DAYS={mx}"),
            _sub(f"PASS_MIN_DAYS ≥ {p['dengbao_pass_min_days']}", mn is not None and mn >= p["dengbao_pass_min_days"], f"PASS_MIN_DAYS={mn}"),
            _sub(f"PASS_WARN_AGE ≥ {p['dengbao_pass_warn_age']}", warn is not None and warn >= p["dengbao_pass_warn_age"], f"PASS_WARN_AGE={warn}")], ["login_defs"]


def no_empty_password(f, p):
    uid0 = [ln.split()[1] for ln in f.get("accounts", "").splitlines() if ln.startswith("uid0 ")]
    empty = [ln.split()[1] for ln in f.get("accounts", "").splitlines() if ln.startswith("empty ")]
    return [_sub("no empty passwords 无空口令", not empty, ",".join(empty) or "none"),
            _sub("root is the only UID 0 唯一超级用户", uid0 == ["root"], ",".join(uid0))], ["accounts"]


def login_lockout(f, p):
    pre = [a for a in _pam_lines(f, "auth", "pam_faillock") if "preauth" in a]
    fail = [a for a in _pam_lines(f, "auth", "pam_faillock") if "authfail" in a]
    conf = _conf(f.get("faillock", ""))
    for a in pre + fail:
        conf.update(a)
    deny, unlock = _int(conf.get("deny"), 3), _int(conf.get("unlock_time"), 600)
    subs = [_sub("pam_faillock preauth+authfail in the auth stack 登录失败处理模块", bool(pre and fail)),
            _sub(f"deny ≤ {p['dengbao_lock_deny']}", bool(pre) and 0 < deny <= p["dengbao_lock_deny"], f"deny={deny}"),
            _sub(f"unlock_time ≥ {p['dengbao_lock_unlock_time']} s", bool(pre) and (unlock == 0 or unlock >= p["dengbao_lock_unlock_time"]),
                 f"unlock_time={unlock}")]
    if p["dengbao_lock_root"]:
        subs.append(_sub("even_deny_root 含root", bool(pre) and "even_deny_root" in conf))
    return subs, ["pam", "faillock"]


def idle_timeout(f, p):
    limit = p["dengbao_idle_timeout"]
    env = f.get("shell_env", "")
    vals = [int(m) for m in re.findall(r"TMOUT=(\d+)", env)]
    ro = bool(re.search(r"readonly\s+TMOUT", env))
    s = _sshd(f)
    ci, cm = _int(s.get("clientaliveinterval"), 0), _int(s.get("clientalivecountmax"), 3)
    return [_sub(f"TMOUT ≤ {limit} s", bool(vals) and 0 < min(vals) <= limit, f"TMOUT={vals or 'unset'}"),
            _sub("TMOUT readonly 不可修改", ro),
            _sub(f"sshd ClientAliveInterval×CountMax ≤ {limit} s", 0 < ci * max(cm, 1) <= limit,
                 f"clientaliveinterval={ci} clientalivecountmax={cm}")], ["shell_env", "sshd"]


def ssh_remote_mgmt(f, p):
    units = _units(f)
    active_bad = [u for u in p["dengbao_forbidden_services"] if units.get(u, ("",))[0] == "active"]
    sshd_on = any(units.get(u, ("",))[0] == "active" for u in ("ssh", "sshd"))
    ports = _listening(f)
    clear = sorted(ports & {21, 23, 69, 512, 513, 514} - _udp_syslog(f))
    return [_sub("sshd active SSH服务运行", sshd_on),
            _sub("no telnet/ftp/rsh/tftp service 无明文协议服务", not active_bad, ",".join(active_bad) or "none"),
            _sub("nothing on 21/23/69/512-514 明文端口未监听", not clear, ",".join(map(str, clear)) or "none")], ["units", "listen"]


def ssh_strong_crypto(f, p):
    s = _sshd(f)
    weak = [f"{k}:{a}" for k in ("ciphers", "macs", "kexalgorithms") for a in s.get(k, "").split(",")
            if re.search(r"cbc|md5|sha1(?!\d)|arcfour|3des|group1-|group14-sha1", a)]
    return [_sub("no weak SSH algorithms 无弱加密算法", not weak and bool(s.get("ciphers")), ",".join(weak) or "none")], ["sshd"]


def ssh_root_login(f, p):
    s = _sshd(f)
    return [_sub(f"PermitRootLogin {p['dengbao_ssh_permit_root_login']}", s.get("permitrootlogin") == p["dengbao_ssh_permit_root_login"],
                 f"permitrootlogin={s.get('permitrootlogin')}"),
            _sub(f"PasswordAuthentication {p['dengbao_ssh_password_auth']}", s.get("passwordauthentication") == p["dengbao_ssh_password_auth"],
                 f"passwordauthentication={s.get('passwordauthentication')}"),
            _sub("PermitEmptyPasswords no", s.get("permitemptypasswords") == "no"),
            _sub(f"MaxAuthTries ≤ {p['dengbao_ssh_max_auth_tries']}", 0 < _int(s.get("maxauthtries"), 99) <= p["dengbao_ssh_max_auth_tries"],
                 f"maxauthtries={s.get('maxauthtries')}")], ["sshd"]


def _sudo_rules(f: dict, user: str) -> list[str]:
    return [ln.strip() for ln in f.get("sudoers", "").splitlines() if ln.split() and ln.split()[0] in (user, f"%{user}")]


def separation_of_duties(f, p):
    names = [p["dengbao_sysadmin"], p["dengbao_secadmin"], p["dengbao_auditadmin"]]
    missing = [ln.split()[1] for ln in f.get("admins", "").splitlines() if ln.startswith("missing ")]
    rules = {u: _sudo_rules(f, u) for u in names}
    unrestricted = [u for u in names if any(re.search(r"\)\s*(NOPASSWD:\s*)?ALL\s*$", r) for r in rules[u])]
    audit_writes = [r for r in rules[p["dengbao_auditadmin"]] if re.search(r"\b(rm|truncate|tee|vi|auditctl|service|systemctl)\b", r)]
    return [_sub("三权 accounts exist 三类管理员账户", not missing, ",".join(missing) or "all present"),
            _sub("each admin has its own sudo rules 权限分离", all(rules[u] for u in names),
                 "; ".join(f"{u}:{len(r)}" for u, r in rules.items())),
            _sub("no admin has unrestricted sudo 无全权账户", not unrestricted, ",".join(unrestricted) or "none"),
            _sub("audit admin cannot change logs 审计员只读", not audit_writes, "; ".join(audit_writes) or "read-only")], ["admins", "sudoers"]


def umask(f, p):
    want = int(str(p["dengbao_umask"]), 8)
    defs = _kv(f.get("login_defs", ""))
    um = re.findall(r"umask\s+(0?[0-7]{3})", f.get("shell_env", ""))
    ok = lambda v: (int(v, 8) & want) == want
    return [_sub(f"login.defs UMASK {p['dengbao_umask']}", "umask" in defs and ok(defs["umask"]), f"UMASK={defs.get('umask')}"),
            _sub(f"profile umask {p['dengbao_umask']}", bool(um) and all(ok(v) for v in um), f"umask={um or 'unset'}")], ["login_defs", "shell_env"]


PERM_MAX = {"/etc/passwd": 0o644, "/etc/group": 0o644, "/etc/shadow": 0o640, "/etc/gshadow": 0o640, "/etc/ssh/sshd_config": 0o600}


def file_permissions(f, p):
    subs = []
    for line in f.get("perms", "").splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] in PERM_MAX:
            mode = int(parts[0], 8)
            subs.append(_sub(f"{parts[2]} ≤ {PERM_MAX[parts[2]]:o}", mode & ~PERM_MAX[parts[2]] == 0 and parts[1].startswith("root:"),
                             f"{parts[0]} {parts[1]}"))
    return subs or [_sub("stat of identity files", False, "no output")], ["perms"]


AUDIT_KEYS = {
    "identity": (r"/etc/passwd", r"/etc/shadow", r"/etc/group", r"/etc/gshadow"),
    "privileged": (r"euid=0.*execve|execve.*euid=0|/usr/bin/sudo",),
    "time_change": (r"adjtimex|settimeofday|clock_settime",),
    "sudoers": (r"/etc/sudoers",),
    "logins": (r"/var/log/faillog|/var/log/lastlog|/var/run/faillock|/run/faillock",),
}


def audit_rules(f, p):
    rules = f.get("audit_rules", "")
    return [_sub(f"{name} 审计规则", all(re.search(pat, rules) for pat in AUDIT_KEYS[name]))
            for name in p["dengbao_audit_rules"] if name in AUDIT_KEYS], ["audit_rules"]


def audit_daemon(f, p):
    active, enabled = _units(f).get("auditd", ("", ""))
    st = _kv(f.get("auditctl", ""))
    container = f.get("virt", "").strip() not in ("", "none")
    note = f" (container {f.get('virt', '').strip()}: kernel audit is not available in a container)" if container else ""
    return [_sub("auditd enabled 开机启动", enabled == "enabled", enabled),
            _sub("auditd active 运行中", active == "active", active + note),
            _sub("kernel audit enabled 内核审计开启", st.get("enabled") in ("1", "2"), f"enabled={st.get('enabled')}{note}")], ["units", "auditctl", "virt"]


def log_forwarding(f, p):
    """The effective forwarding: a RELP action to the log host over TLS that checks the log host's certificate
    name, queued on disk across restarts — a plain UDP or TCP rule forwards, but proves neither."""
    host = p["dengbao_log_host"]
    if not host:
        return None, ["rsyslog"]  # this host is the top of the log chain
    active = _units(f).get("rsyslog", ("",))[0] == "active"
    fwd = f.get("rsyslog", "")
    hit = re.search(rf"(@@?\[?{re.escape(host)}\]?(:\d+)?\b|target=\"{re.escape(host)}\")", fwd)
    action = next((ln for ln in fwd.splitlines() if f'target="{host}"' in ln), "")
    tls = all(x in action for x in ('type="omrelp"', 'tls="on"', 'tls.authMode="name"', 'tls.permittedPeer=['))
    queued = "queue.filename=" in action and 'queue.saveOnShutdown="on"' in action
    return [_sub("rsyslog active 日志服务运行", active),
            _sub(f"*.* forwarded to {host} 转发至省级日志服务器", bool(hit), (hit.group(0) if hit else "no forwarding rule")),
            _sub("RELP over TLS, log host's certificate checked 可靠加密传输并认证日志服务器", tls, action.strip()[:200] or "no action to the log host"),
            _sub("disk-assisted queue kept across restarts 磁盘队列防丢失", queued, "queue.filename, saveOnShutdown" if queued else "none")], \
        ["units", "rsyslog"]


def log_retention(f, p):
    """Where the logs are: the local syslog files (rotate × period; a file inherits logrotate.conf's global
    settings); on a log host its store (rotation, compression, the hash chain's seal); on a sender, that its log host's
    store, as this audit read it, holds its file (``dengbao_log_store``, set by the audit engine). A sender
    that is silent shows on its own verdict and in `netops logs status`, not on the log host's."""
    days_per = {"daily": 1, "weekly": 7, "monthly": 31, "yearly": 365}
    files: dict[str, dict] = {}
    for line in f.get("logrotate", "").splitlines():
        fname, _, body = line.partition(":")
        words = body.split()
        b = files.setdefault(fname, {})
        if words and words[0] in days_per:
            b["period"] = days_per[words[0]]
        elif len(words) == 2 and words[0] == "rotate":
            b["rotate"] = _int(words[1], 1)
    glob = {"period": 7, "rotate": 1, **files.pop("/etc/logrotate.conf", {})}
    kept = [{**glob, **b} for name, b in files.items() if "syslog" in name]
    best = max((b["period"] * b["rotate"] for b in kept), default=0)
    want = p["dengbao_log_retention_days"]
    subs = [_sub(f"syslog rotation keeps ≥ {want} days 日志保存期限", best >= want, f"{best} days")]
    senders = p.get("dengbao_log_senders") or []
    if senders:
        st = logstore.store_state(f.get("logstore", ""), want)
        rot = st["rotation"]
        subs += [_sub(f"log store keeps ≥ {want} days, compressed 日志服务器保存期限", st["retention_ok"],
                      f"{rot['kept_days']} days, compress={rot['compress']} ({logstore.ROTATE}); "
                      f"{len(set(senders) & set(st['sources']))}/{len(senders)} senders in the store"),
                 _sub("hash chain sealed at each rotation 防篡改哈希链", st["sealed"], logstore.SEAL if st["sealed"] else "no seal")]
    store = p.get("dengbao_log_store")
    if p["dengbao_log_host"]:
        subs.append(_sub("the log host keeps this host's logs 日志服务器保存本机日志", bool(store and store["ok"]),
                         store["detail"] if store else "the log host's store was not read in this audit"))
    return subs, ["logrotate", "logstore"]


def time_sync(f, p):
    server = p["dengbao_ntp_server"]
    if not server:
        return None, ["chrony"]  # this host is the top time source (its upstream is the site's own clock)
    src = f.get("chrony", "")
    hit = bool(server) and re.search(rf"^\s*(server|pool|peer)\s+{re.escape(server)}\b", src, re.MULTILINE)
    others = [ln.split()[1] for ln in src.splitlines() if len(ln.split()) > 1 and ln.split()[1] != server]
    active, enabled = next((_units(f)[u] for u in ("chrony", "chronyd") if _units(f).get(u, ("", ""))[1]), ("", ""))
    container = f.get("virt", "").strip() not in ("", "none")
    return [_sub(f"chrony source is the province {server} 省级时间源", bool(hit), src.strip().replace("\n", "; ") or "none"),
            _sub("no other time sources 无其他时间源", not others, ",".join(others) or "none"),
            _sub("chrony enabled 开机启动", enabled == "enabled" and (active == "active" or container),
                 f"{active}/{enabled}" + (" (container: the clock is the host's)" if container else ""))], ["chrony", "units", "virt"]


def audit_protection(f, p):
    perm = next((ln.split() for ln in f.get("perms", "").splitlines() if ln.endswith("/var/log/audit")), None)
    ok = perm is not None and len(perm) == 3 and int(perm[0], 8) & 0o027 == 0 and perm[1].startswith("root:")
    audit_writes = [r for r in _sudo_rules(f, p["dengbao_auditadmin"]) if re.search(r"\b(rm|truncate|tee|auditctl|systemctl)\b", r)]
    return [_sub("/var/log/audit ≤ 750 root 审计记录受保护", ok, " ".join(perm[:2]) if perm else "missing"),
            _sub("audit admin has no write commands 审计员无删改权限", not audit_writes, "; ".join(audit_writes) or "none")], ["perms", "sudoers"]


def minimal_install(f, p):
    installed = [ln.split()[0] for ln in f.get("packages", "").splitlines()
                 if ln.split() and (ln.split()[-1].startswith("ii") or re.match(r"^\S+-\d", ln))]
    return [_sub("no clear-text/unneeded service packages 最小安装", not installed, ",".join(installed) or "none")], ["packages"]


def _listening(f) -> set[int]:
    ports = set()
    for line in f.get("listen", "").splitlines():
        parts = line.split()
        if len(parts) >= 5 and not re.match(r"^(127\.|\[::1\]|::1)", parts[4]):
            port = _int(parts[4].rsplit(":", 1)[-1])
            if port is not None:
                ports.add(port)
    return ports


def _udp_syslog(f) -> set[int]:
    return {514} if any(ln.startswith("udp") and ln.split()[4].endswith(":514") for ln in f.get("listen", "").splitlines()
                        if len(ln.split()) >= 5) else set()


def high_risk_ports(f, p):
    open_ = sorted(_listening(f) & set(p["dengbao_high_risk_ports"]))
    return [_sub("no high-risk port listening 高危端口关闭", not open_, ",".join(map(str, open_)) or "none")], ["listen"]


def mgmt_access(f, p):
    net = ipaddress.ip_network(p["dengbao_mgmt_network"])
    rules = f.get("nft", "")
    subs = []
    for port in p["dengbao_mgmt_ports"]:
        ok = bool(re.search(rf"ip saddr != {re.escape(str(net))} .*dport ({port}|\{{[^}}]*\b{port}\b[^}}]*\}}) .*drop", rules)
                  or re.search(rf"dport ({port}|\{{[^}}]*\b{port}\b[^}}]*\}}) ip saddr != {re.escape(str(net))} .*drop", rules))
        subs.append(_sub(f"port {port} only from {net} 仅管理网访问", ok))
    return subs, ["nft"]


NA_REASONS = {
    "log-forwarding": "this host is the top of the log chain 本机为最上级日志服务器",
    "time-sync": "this host is the top time source; set dengbao_ntp_server for its upstream 本机为最上级时间源",
}

CHECKS = {
    "pw-quality": pw_quality, "pw-history": pw_history, "pw-aging": pw_aging, "no-empty-password": no_empty_password,
    "login-lockout": login_lockout, "idle-timeout": idle_timeout, "ssh-remote-mgmt": ssh_remote_mgmt,
    "ssh-strong-crypto": ssh_strong_crypto, "ssh-root-login": ssh_root_login, "separation-of-duties": separation_of_duties,
    "umask": umask, "file-permissions": file_permissions, "audit-rules": audit_rules, "audit-daemon": audit_daemon,
    "log-forwarding": log_forwarding, "log-retention": log_retention, "time-sync": time_sync,
    "audit-protection": audit_protection, "minimal-install": minimal_install, "high-risk-ports": high_risk_ports,
    "mgmt-access": mgmt_access,
}


def verdict(subs: list[dict] | None) -> str:
    if subs is None:
        return NA
    good = sum(s["ok"] for s in subs)
    return PASS if subs and good == len(subs) else FAIL if good == 0 else PARTIAL
