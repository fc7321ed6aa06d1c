"""Server controls: one read-only collection script per host, then one check per control.

The script only reads (cat, grep, stat, sshd -T, ss, systemctl is-*, auditctl -s, nft list); its
output is split into named sections, and each check turns sections plus the host's parameters into
sub-findings. Evidence quotes the section's command and an excerpt of its output.
"""
from __future__ import annotations

import ipaddress
import re

from jinbao_netops import escape
from jinbao_netops.backup import gtid
from jinbao_netops.backup.replication import primary_view, read_primary_view
from jinbao_netops.inventory.engines import ENGINES, MARIADB, POSTGRESQL

from . import boundary, logstore, sudopolicy
from .catalogue import FAIL, NA, PARTIAL, PASS

MARK = "@@@dengbao "
PAM_FILES = "/etc/pam.d/common-auth /etc/pam.d/common-password /etc/pam.d/system-auth /etc/pam.d/password-auth"


def _read_mariadb(line: str, r: dict, limit: float) -> dict:
    """A :func:`gtid.dump_thread` row for the replica's business address, judged: streaming while a dump thread serves the replica from its address, current
    when it has sent everything. The primary knows what it sent, not what the replica applied. A line that is not
    such a row (an error) is a ValueError."""
    host, _, state = line.strip().partition(" ")
    sent = host != "-"
    if sent and host.rpartition(":")[0] != r["address"]:
        raise ValueError(f"not a binlog dump thread from {r['address']}: {line!r}")
    return {"streaming": sent, "state": f"binlog dump thread from {host}" if sent else "no binlog dump thread 无binlog转储线程",
            "current": sent and state == gtid.SENT_ALL,
            "lag": f"state {state or '-'}; the primary sees what it has sent, not what the replica applied (its lag in "
                   "seconds: netops dr status) 主库只知已发送，回放延迟见 netops dr status",
            "sync_state": None}


def _read_postgresql(line: str, r: dict, limit: float) -> dict:
    """A replication.primary_view row, judged: streaming, replay lag within ``limit``, the sync state."""
    v = read_primary_view(line)
    lag = v["lag_seconds"]
    return {"streaming": v["state"] == "streaming", "state": f"state {v['state']}", "current": lag is not None and lag <= limit,
            "lag": f"lag {'-' if lag is None else f'{lag:g}'} s, {'-' if v['lag_bytes'] is None else v['lag_bytes']} bytes",
            "sync_state": v["sync_state"]}


# per engine: the SQL printing one line of what the primary sees of replica r, and that line read (line, r, lag target)
PRIMARY_VIEW = {
    POSTGRESQL.service: (lambda r: primary_view(r["slot"], r["standby"]), _read_postgresql),
    MARIADB.service: (lambda r: gtid.dump_thread(r["address"]), _read_mariadb),
}


def _replication_facts(params: dict) -> str:
    """What this host's engines say of each replica the inventory gives it (``dengbao_replicas``, set by the audit
    engine), per engine its administrator's client with the SQL on stdin: the replica's name on one line, then the
    primary's view of it (:data:`PRIMARY_VIEW`)."""
    reps = params.get("dengbao_replicas") or []
    out = []
    for eng in (e for e in ENGINES.values() if any(r["service"] == e.service for r in reps)):
        sql = eng.preamble + "".join(f"SELECT {eng.literal(r['standby'])};\n" + PRIMARY_VIEW[eng.service][0](r)
                                     for r in reps if r["service"] == eng.service)
        client = " ".join(escape.shell(a) for a in eng.client if "{db}" not in a)
        out.append(f"if systemctl is-active -q {eng.service}; then printf '%s' {escape.shell(sql)} | "
                   f"runuser -u {eng.admin} -- {client}; else echo '{eng.service} not running'; fi")
    return "; ".join(out) or "true"


def sections(params: dict) -> dict[str, str]:
    q = lambda xs: " ".join(escape.shell(x) for x in xs)
    admins = q([params["dengbao_sysadmin"], params["dengbao_secadmin"], params["dengbao_auditadmin"]])
    units = q([*params["dengbao_forbidden_services"], "ssh", "sshd", "auditd", "rsyslog", "chrony", "chronyd", "nftables"])
    return {
        "os": "grep -E '^(ID|ID_LIKE|VERSION_ID)=' /etc/os-release",
        "virt": "systemd-detect-virt -c",
        "sshd": "sshd -T | grep -Ei '^(permitrootlogin|passwordauthentication|permitemptypasswords|maxauthtries|"
                "clientaliveinterval|clientalivecountmax|ciphers|macs|kexalgorithms|listenaddress|x11forwarding|allowagentforwarding|"
                "allowtcpforwarding|maxsessions|loglevel|banner) '",
        "pam": f"grep -HsvE '^\\s*(#|$)' {PAM_FILES}",
        "pwquality": "cat /etc/security/pwquality.conf /etc/security/pwquality.conf.d/*.conf 2>/dev/null | grep -vE '^\\s*(#|$)'",
        "faillock": "grep -vE '^\\s*(#|$)' /etc/security/faillock.conf",
        "pwhistory": "grep -vE '^\\s*(#|$)' /etc/security/pwhistory.conf",
        "login_defs": "grep -E '^\\s*(PASS_MAX_DAYS|PASS_MIN_DAYS|PASS_WARN_AGE|UMASK)\\s' /etc/login.defs",
        # per account: name, password state (never the hash), min, max, warn days, login shell
        "aging": "awk -F: 'NR==FNR {sh[$1]=$7; next} {st = ($2 == \"\") ? \"empty\" : ($2 ~ /^[!*]/) ? \"locked\" : \"password\"; "
                 "print $1, st, ($4 == \"\" ? \"-\" : $4), ($5 == \"\" ? \"-\" : $5), ($6 == \"\" ? \"-\" : $6), sh[$1]}' "
                 "/etc/passwd /etc/shadow",
        "shell_env": "grep -HsE '^\\s*(readonly\\s+TMOUT|(export\\s+)?TMOUT=|umask\\s)' /etc/profile /etc/bash.bashrc /etc/profile.d/*.sh",
        "accounts": "awk -F: '$3==0{print \"uid0 \" $1}' /etc/passwd; awk -F: '$2==\"\"{print \"empty \" $1}' /etc/shadow",
        "perms": "stat -c '%a %U:%G %n' /etc/passwd /etc/group /etc/shadow /etc/gshadow /etc/ssh/sshd_config /var/log/audit "
                 "/etc/sudoers.d /etc/crontab",
        # the home directories of the people's accounts (UID ≥ 1000)
        "homes": "for d in $(awk -F: '!($3 < 1000) && $3 != 65534 {print $6}' /etc/passwd | sort -u); do "
                 "[ -d \"$d\" ] && stat -c '%a %U:%G %n' \"$d\"; done",
        "admins": f"for u in {admins}; do getent passwd \"$u\" || echo \"missing $u\"; echo \"groups $u $(id -nG \"$u\" 2>/dev/null)\"; done",
        # the effective policy, as sudo itself resolves it, of every account that may run anything
        "sudo": "for u in $(cut -d: -f1 /etc/passwd); do [ \"$u\" = root ] && continue; o=$(sudo -l -U \"$u\" 2>&1); "
                f"case $o in *'may run the following'*) printf '{sudopolicy.HEADER}%s\\n%s\\n' \"$u\" \"$o\";; esac; done",
        "units": f"for u in {units}; do case $u in *.*) n=$u;; *) n=$u.service;; esac; "
                 f"echo \"$u $(systemctl is-active $n 2>/dev/null) $(systemctl is-enabled $n 2>/dev/null)\"; done",
        "packages": f"dpkg-query -W -f='${{Package}} ${{db:Status-Abbrev}}\\n' {q(params['dengbao_forbidden_packages'])} 2>/dev/null"
                    f" || rpm -q {q(params['dengbao_forbidden_packages'])} 2>/dev/null | grep -v 'not installed'",
        "audit_rules": "cat /etc/audit/rules.d/*.rules 2>/dev/null | grep -vE '^\\s*(#|$)'",
        "auditctl": "auditctl -s",
        "auditctl_rules": "auditctl -l",
        "rsyslog": "grep -hsvE '^\\s*(#|$)' /etc/rsyslog.conf /etc/rsyslog.d/*.conf | grep -E '@|omfwd|[Tt]arget='",
        "logrotate": "grep -HsvE '^\\s*(#|$)' /etc/logrotate.d/rsyslog /etc/logrotate.d/syslog /etc/logrotate.conf",
        "logstore": logstore.STORE_FACTS,
        "chrony": "grep -hsE '^\\s*(server|pool|peer)\\s' /etc/chrony/chrony.conf /etc/chrony.conf /etc/chrony/sources.d/*.sources /etc/chrony/conf.d/*.conf",
        "chronyc": "chronyc -n sources",
        # the configuration the running snmpd loaded (its -c FILE, else the default), keys cut before they leave the host
        "snmpd": "p=$(ps -o args= -C snmpd | head -n 1); echo \"${p:-none}\"; c=$(echo \"$p\" | sed -n 's/.* -c *\\([^ ]*\\).*/\\1/p'); "
                 "for f in ${c:-/etc/snmp/snmpd.conf} /etc/snmp/snmpd.conf.d/*.conf; do [ -f \"$f\" ] && grep -vE '^\\s*(#|$)' \"$f\"; done"
                 " | sed -E 's/^(\\s*createUser\\s+\\S+\\s+\\S+)\\s+(\"[^\"]*\"|\\S+)(\\s+(\\S+)\\s+(\"[^\"]*\"|\\S+))?/\\1 *** \\4 ***/;"
                 " s/^(\\s*(ro|rw)community6?\\s+)\\S+/\\1***/;"
                 # the notification destinations' keys (trapsess -A/-X) and communities
                 " s/(\\s-[AX]\\s+)(\"[^\"]*\"|\\S+)/\\1***/g; s/^(\\s*(trap|trap2|inform)sink\\s+\\S+\\s+)\\S+/\\1***/'",
        # core dumps: the hard limit of the login session this script runs in (its nearest ancestor that is not
        # sudo: sudo zeroes its own limit, so `ulimit -Hc` here proves nothing), systemd's default for services,
        # the kernel's setting for setuid programs, every running process that may dump core
        "core": "p=$PPID; while [ \"$(cat /proc/$p/comm)\" = sudo ]; do p=$(cut -d' ' -f4 /proc/$p/stat); done; "
                "echo \"session $(awk '/^Max core file size/ {print $6}' /proc/$p/limits) $(cat /proc/$p/comm)\"; systemctl show -p DefaultLimitCORE; echo \"suid_dumpable $(cat /proc/sys/fs/suid_dumpable)\"; "
                "awk '/^Max core file size/ && $6 != \"0\" {split(FILENAME, a, \"/\"); print a[3], $6}' /proc/[0-9]*/limits 2>/dev/null | "
                "while read -r p h; do [ -e /proc/$p/exe ] && echo \"proc $p $(cat /proc/$p/comm) $h\"; done",
        # su's PAM stack, then the group its pam_wheel line names (wheel, else GID 0, when it names none) and
        # the accounts whose primary group it is
        "su": "grep -vE '^\\s*(#|$)' /etc/pam.d/su | sed 's/^/pam /'; "
              "g=$(awk '/^[[:space:]]*auth/ && /pam_wheel\\.so/ {for (i = 1; i <= NF; i++) if ($i ~ /^group=/) print substr($i, 7)}' "
              "/etc/pam.d/su | head -n 1); e=$(getent group \"${g:-wheel}\" || getent group root); echo \"group $e\"; "
              "awk -F: -v gid=\"$(echo \"$e\" | cut -d: -f3)\" '$4 == gid {print \"primary \" $1}' /etc/passwd",
        "suid": f"for f in {q(params['dengbao_suid_remove'])}; do [ -e \"$f\" ] && stat -L -c '%a %U:%G %n' \"$f\"; done",
        # system accounts (below UID_MIN, and nobody): name, password state (never the hash), login shell
        "sysaccounts": "m=$(awk '$1 == \"UID_MIN\" {print $2}' /etc/login.defs); awk -F: -v min=\"${m:-1000}\" "
                       "'NR == FNR {if ($3 < min || $3 == 65534) {sh[$1] = ($7 == \"\" ? \"-\" : $7); pw[$1] = $2}; next} "
                       "($1 in sh) {pw[$1] = $2} END {for (u in sh) print u, ((pw[u] ~ /^[!*]/ || pw[u] == \"x\") ? \"locked\" : "
                       "(pw[u] == \"\") ? \"empty\" : \"password\"), sh[u]}' /etc/passwd /etc/shadow",
        "shm": "echo \"mount $(findmnt -no OPTIONS /dev/shm)\"; awk '$2 == \"/dev/shm\" {print \"fstab \" $0}' /etc/fstab",
        "cron": f"for d in {q(params['dengbao_cron_dirs'])}; do [ -d \"$d\" ] && stat -c '%a %U:%G %n' \"$d\"; done",
        # the SSH client's effective settings, as root's ssh resolves them
        "ssh_client": "ssh -G localhost | grep -Ei '^(ciphers|macs|kexalgorithms|forwardagent|forwardx11|hashknownhosts) '",
        "sysctl_file": "cat /usr/lib/sysctl.d/*.conf /etc/sysctl.d/*.conf /etc/sysctl.conf 2>/dev/null | grep -vE '^\\s*([#;]|$)'",
        "sysctl": f"sysctl {q([*params['dengbao_sysctl'], 'net.ipv4.ip_forward'])}",
        "listen": "ss -H -tuln",
        "nft": "nft list ruleset",
        # a boundary device on nftables: the zone rules it holds (the audit's net-boundary-acl), else nothing
        "zones": boundary.read_command(params) or "true",
        # what a primary sees of each of its replicas: pg_stat_replication and the slot, MariaDB's binlog dump threads
        "replication": _replication_facts(params),
    }


def script(params: dict) -> str:
    """One POSIX shell script printing every section after a marker line; it never writes anything."""
    lines = ["export LC_ALL=C PATH=/usr/sbin:/usr/bin:/sbin:/bin"]
    for name, cmd in sections(params).items():
        lines.append(f"echo '{MARK}{name}'; ( {cmd} ) 2>&1")
    return "\n".join(lines) + "\n"


def split(output: str, mark: str = MARK) -> dict[str, str]:
    """A collection script's output as {section: text}, sections started by ``mark``'s lines."""
    facts: dict[str, str] = {}
    name = None
    for line in output.splitlines():
        if line.startswith(mark):
            name = line[len(mark):].strip()
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


NO_LOGIN = re.compile(r"/(nologin|false|sync|halt|shutdown)$")


def pw_aging(f, p):
    """Each login account with a password, from its own /etc/shadow fields; login.defs only for new accounts.
    An account without a usable password (locked, key-only) has nothing to age and is named as such."""
    mx, mn, warn = p["dengbao_pass_max_days"], p["dengbao_pass_min_days"], p["dengbao_pass_warn_age"]
    d = _kv(f.get("login_defs", ""))
    dmx, dmn, dwarn = (_int(d.get(k), None) for k in ("pass_max_days", "pass_min_days", "pass_warn_age"))
    subs = [_sub(f"login.defs defaults for new accounts ≤ {mx}/≥ {mn}/≥ {warn} days 新账户默认值",
                 dmx is not None and 0 < dmx <= mx and (dmn or 0) >= mn and (dwarn or 0) >= warn,
                 f"PASS_MAX_DAYS={dmx} PASS_MIN_DAYS={dmn} PASS_WARN_AGE={dwarn}")]
    keyonly = []
    for line in f.get("aging", "").splitlines():
        parts = line.split()
        if len(parts) < 6 or NO_LOGIN.search(parts[5]):
            continue
        user, state, amin, amax, awarn = parts[0], parts[1], *(_int(v, None) for v in parts[2:5])
        if state != "password":
            keyonly.append(f"{user}({state})")
            continue
        subs.append(_sub(f"{user}: max ≤ {mx}, min ≥ {mn}, warn ≥ {warn} days 口令有效期", amax is not None and 0 < amax <= mx
                         and (amin or 0) >= mn and (awarn or 0) >= warn, f"min={amin} max={amax} warn={awarn}"))
    if keyonly:
        subs[0]["detail"] += f"; no password to age (key-only or locked) 无口令: {','.join(keyonly)}"
    return subs, ["login_defs", "aging"]


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


def _weak_ssh(s: dict) -> dict:
    """No weak cipher, MAC or key exchange among the algorithms an SSH configuration (``sshd -T``, ``ssh -G``) resolves to."""
    weak = [f"{k}:{a}" for k in ("ciphers", "macs", "kexalgorithms") for a in s.get(k, "").split(",")
            if re.search(r"cbc|md5|sha1(?!\d)|arcfour|3des|group1-|group14-sha1", a)]
    return _sub("no weak SSH algorithms 无弱加密算法", not weak and bool(s.get("ciphers")), ",".join(weak) or "none")


def ssh_strong_crypto(f, p):
    return [_weak_ssh(_sshd(f))], ["sshd"]


def ssh_client(f, p):
    """The servers' own SSH client as root's ``ssh -G`` resolves it: strong algorithms, no forwarding of the
    agent or X11 to the far end, known_hosts hashed."""
    s = _kv(f.get("ssh_client", ""), r"\s+")
    want = {"forwardagent": "no", "forwardx11": "no", "hashknownhosts": "yes"}
    return [_weak_ssh(s), *(_sub(f"{k} {v}", s.get(k) == v, f"{k}={s.get(k)}") for k, v in want.items())], ["ssh_client"]


def ssh_root_login(f, p):
    s = _sshd(f)
    return [_sub(f"PermitRootLogin {p['dengbao_ssh_permit_root_login']}", s.get("permitrootlogin") == p["dengbao_ssh_permit_root_login"],
                 f"permitrootlogin={s.get('permitrootlogin')}"),
            _sub(f"PasswordAuthentication {p['dengbao_ssh_password_auth']}", s.get("passwordauthentication") == p["dengbao_ssh_password_auth"],
                 f"passwordauthentication={s.get('passwordauthentication')}"),
            _sub("PermitEmptyPasswords no", s.get("permitemptypasswords") == "no"),
            _sub(f"MaxAuthTries ≤ {p['dengbao_ssh_max_auth_tries']}", 0 < _int(s.get("maxauthtries"), 99) <= p["dengbao_ssh_max_auth_tries"],
                 f"maxauthtries={s.get('maxauthtries')}")], ["sshd"]


def _banner(s: dict) -> dict:
    return _sub("login banner 登录警示", s.get("banner", "none") != "none", f"banner={s.get('banner')}")


def login_banner(f, p):
    """The banner sshd shows before login (``sshd -T``): a router on Linux is logged in to through its host."""
    return [_banner(_sshd(f))], ["sshd"]


def ssh_session(f, p):
    s = _sshd(f)
    subs = [_sub(f"{k} no", s.get(k) == "no", f"{k}={s.get(k)}") for k in ("x11forwarding", "allowagentforwarding", "allowtcpforwarding")]
    return subs + [
        _sub(f"MaxSessions ≤ {p['dengbao_ssh_max_sessions']}", 0 < _int(s.get("maxsessions"), 99) <= p["dengbao_ssh_max_sessions"],
             f"maxsessions={s.get('maxsessions')}"),
        _banner(s),
        _sub("LogLevel VERBOSE (key fingerprints logged) 详细日志", str(s.get("loglevel")).lower() in ("verbose", "debug", "debug1", "debug2", "debug3"),
             f"loglevel={s.get('loglevel')}")], ["sshd"]


ROLES = ("sysadmin", "secadmin", "auditadmin")
JOBS = {"sysadmin": "系统管理员可管理业务服务 system administrator manages the node's services",
        "secadmin": "安全管理员可管理账户 security administrator manages accounts",
        "auditadmin": "审计管理员可读日志 audit administrator reads the logs"}


def _groups(f: dict) -> dict[str, list[str]]:
    return {ln.split()[1]: ln.split()[2:] for ln in f.get("admins", "").splitlines() if ln.startswith("groups ") and len(ln.split()) > 1}


def sudo_judgement(f: dict, p: dict) -> sudopolicy.Judgement:
    """The effective sudo policy (``sudo -l -U`` per account) judged for the three roles and the operator."""
    wrappers = {p["dengbao_service_wrapper"]: "sysadmin", p["dengbao_account_wrapper"]: "secadmin"}
    return sudopolicy.assess(sudopolicy.listings(f.get("sudo", "")), {r: p[f"dengbao_{r}"] for r in ROLES},
                             p["dengbao_operator"], wrappers, _groups(f), p["dengbao_log_groups"])


def separation_of_duties(f, p):
    missing = [ln.split()[1] for ln in f.get("admins", "").splitlines() if ln.startswith("missing ")]
    j = sudo_judgement(f, p)
    subs = [_sub("三权 accounts exist 三类管理员账户", not missing, ",".join(missing) or "all present")]
    subs += [_sub(JOBS[r], j.jobs[r][0] and p[f"dengbao_{r}"] not in missing, j.jobs[r][1]) for r in ROLES]
    subs += [_sub(f"{p[f'dengbao_{r}']}: no escape from its duty 无越权/逃逸途径", not j.escapes[p[f"dengbao_{r}"]],
                  "; ".join(j.escapes[p[f"dengbao_{r}"]]) or "none") for r in ROLES]
    subs += [_sub("no right shared between roles 角色间无重叠权限", not j.overlaps, "; ".join(j.overlaps) or "none"),
             _sub("no other account may use sudo 无其他提权账户", not j.others, "; ".join(j.others) or "none"),
             _sub(f"automation account {p['dengbao_operator']} bounded 自动化账户权限受限", not j.operator,
                  ("; ".join(j.operator) + " — kept for Ansible become: key-only login, documented in the README "
                   "(自动化账户保留 root 权限，仅密钥登录，已书面说明)") if j.operator else "none")]
    return subs, ["admins", "sudo"]


def umask(f, p):
    want = int(str(p["dengbao_umask"]), 8)
    defs = _kv(f.get("login_defs", ""))
    um = re.findall(r"umask\s+(0?[0-7]{3})", f.get("shell_env", ""))
    ok = lambda v: (int(v, 8) & want) == want
    return [_sub(f"login.defs UMASK {p['dengbao_umask']}", "umask" in defs and ok(defs["umask"]), f"UMASK={defs.get('umask')}"),
            _sub(f"profile umask {p['dengbao_umask']}", bool(um) and all(ok(v) for v in um), f"umask={um or 'unset'}")], ["login_defs", "shell_env"]


PERM_MAX = {"/etc/passwd": 0o644, "/etc/group": 0o644, "/etc/shadow": 0o640, "/etc/gshadow": 0o640, "/etc/ssh/sshd_config": 0o600,
            "/etc/sudoers.d": 0o750, "/etc/crontab": 0o600}
OPTIONAL = {"/etc/crontab"}  # no cron installed: nothing to protect
HOME_MAX = 0o750


def file_permissions(f, p):
    seen = {}
    for line in f.get("perms", "").splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] in PERM_MAX:
            seen[parts[2]] = parts
    subs = []
    for path, most in PERM_MAX.items():
        if path not in seen:
            subs.append(_sub(f"{path} ≤ {most:o}", path in OPTIONAL, "absent"))
            continue
        mode, owner, _ = seen[path]
        subs.append(_sub(f"{path} ≤ {most:o}", int(mode, 8) & ~most == 0 and owner.startswith("root:"), f"{mode} {owner}"))
    wide = [f"{ln.split()[2]} {ln.split()[0]}" for ln in f.get("homes", "").splitlines()
            if len(ln.split()) == 3 and int(ln.split()[0], 8) & ~HOME_MAX]
    subs.append(_sub(f"home directories ≤ {HOME_MAX:o} 家目录权限", not wide, ", ".join(wide) or "all"))
    return subs, ["perms", "homes"]


NOT_READ = "not collected 未采集"  # a section missing from the output is no evidence of anything
CONTAINER_KERNEL = " (container: the host's kernel 容器内为宿主机内核)"


def core_dumps(f, p):
    """No core file anywhere: a login session's hard limit (pam_limits), services' default (systemd), every
    running process's own limit, and setuid programs (the kernel's fs.suid_dumpable, the host's in a container)."""
    c = f.get("core", "")
    kv = _kv(c, r"=|\s+")
    procs = [" ".join(ln.split()[1:]) for ln in c.splitlines() if ln.startswith("proc ")]
    container = f.get("virt", "").strip() not in ("", "none")
    session, _, who = kv.get("session", "").partition(" ")
    return [_sub("login sessions: hard core limit 0 会话禁止核心转储", session == "0", f"{who or 'session'}: {session or 'unread'}"),
            _sub("services: DefaultLimitCORE=0 服务禁止核心转储", kv.get("defaultlimitcore") == "0",
                 f"DefaultLimitCORE={kv.get('defaultlimitcore')}"),
            _sub("no running process may dump core 运行中进程无核心转储", "session" in kv and not procs,
                 f"{len(procs)} started with a core limit, until restarted 重启后生效: {', '.join(procs[:8])}" if procs else "none"),
            _sub("fs.suid_dumpable=0 (setuid programs) 特权程序不转储", kv.get("suid_dumpable") == "0",
                 f"fs.suid_dumpable={kv.get('suid_dumpable')}" + (CONTAINER_KERNEL if container else ""))], ["core", "virt"]


def su_restricted(f, p):
    """su refused to all but one group's members: a required pam_wheel line in su's auth stack, and that group
    (the one pam_wheel names; wheel or GID 0 when it names none) holding only the allowed accounts."""
    text = f.get("su", "")
    wheel = [parsed[3] for parsed in (_pam_parse(ln[4:]) for ln in text.splitlines() if ln.startswith("pam "))
             if parsed and parsed[0] == "auth" and "pam_wheel" in parsed[2] and parsed[1] in ("required", "requisite")
             and "deny" not in parsed[3]]
    group = next((ln.split()[1] for ln in text.splitlines() if ln.startswith("group ") and len(ln.split()) > 1), "")
    name, _, rest = group.partition(":")
    members = {m for m in rest.split(":")[-1].split(",") if m} | {ln.split()[1] for ln in text.splitlines() if ln.startswith("primary ")}
    extra = sorted(members - set(p["dengbao_su_members"]))
    return [_sub("su requires group membership (pam_wheel) su 仅限管理组", bool(wheel),
                 f"group={wheel[0].get('group', 'wheel')}" if wheel else "no required pam_wheel line in /etc/pam.d/su"),
            _sub(f"only {', '.join(p['dengbao_su_members']) or 'nobody'} may su 授权成员", bool(wheel and name) and not extra,
                 f"{name}: {', '.join(sorted(members)) or 'no members'}")], ["su"]


def suid_binaries(f, p):
    present = [ln.split() for ln in f.get("suid", "").splitlines() if len(ln.split()) == 3]
    kept = [f"{path} {mode}" for mode, _, path in present if int(mode, 8) & 0o6000]
    return [_sub("no setuid/setgid bit on programs a server does not need 多余程序无特权位", "suid" in f and not kept,
                 ", ".join(kept) or (f"none of the {len(present)} present" if "suid" in f else NOT_READ))], ["suid"]


def system_accounts(f, p):
    """Every system account (below UID_MIN, and nobody) but root and the automation account: no login shell,
    no usable password. Nothing read is no evidence (不符合)."""
    rows = [(ln.split() + ["-"])[:3] for ln in f.get("sysaccounts", "").splitlines() if ln.split()]
    rows = [r for r in rows if r[0] not in ("root", p["dengbao_operator"])]
    shells = [f"{u}({sh})" for u, _, sh in rows if not NO_LOGIN.search(sh)]
    unlocked = [f"{u}({st})" for u, st, _ in rows if st != "locked"]
    return [_sub("system accounts have no login shell 系统账户禁止登录", bool(rows) and not shells,
                 ", ".join(shells) or f"{len(rows)} accounts"),
            _sub("system accounts' passwords locked 系统账户口令锁定", bool(rows) and not unlocked,
                 ", ".join(unlocked) or f"{len(rows)} accounts")], ["sysaccounts"]


SHM_OPTS = ("nodev", "nosuid", "noexec")


def shm_noexec(f, p):
    """/dev/shm as mounted now (findmnt), and as /etc/fstab mounts it at boot."""
    text = f.get("shm", "")
    mount = next((ln.split()[1] for ln in text.splitlines() if ln.startswith("mount ") and len(ln.split()) > 1), "")
    fstab = [ln.split() for ln in text.splitlines() if ln.startswith("fstab ")]
    boot = fstab[-1][4] if fstab and len(fstab[-1]) > 4 else ""
    return [_sub(f"/dev/shm mounted {','.join(SHM_OPTS)} 共享内存不可执行", set(SHM_OPTS) <= set(mount.split(",")), mount or "not mounted"),
            _sub("the same at boot (/etc/fstab) 开机保持", set(SHM_OPTS) <= set(boot.split(",")), " ".join(fstab[-1][1:]) if fstab else
                 "no /dev/shm line")], ["shm"]


CRON_MAX = 0o700


def cron_permissions(f, p):
    """The cron directories (those present: no cron installed, nothing to protect) 0700 root."""
    present = [ln.split() for ln in f.get("cron", "").splitlines() if len(ln.split()) == 3]
    wide = [f"{path} {mode} {owner}" for mode, owner, path in present if int(mode, 8) & ~CRON_MAX or owner != "root:root"]
    return [_sub(f"cron directories ≤ {CRON_MAX:o} root 计划任务目录权限", "cron" in f and not wide,
                 ", ".join(wide) or (f"{len(present)} directories" if "cron" in f else NOT_READ))], ["cron"]


# rule family → what must be there: (what, pattern, both ABIs). A syscall rule counts only with its
# arch=b64 and arch=b32 forms (a 32-bit program would slip past a b64-only rule).
AUDIT_RULES = {
    "identity": [(w, rf"-w {w}\b", False) for w in ("/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow")],
    "privileged": [("execve by euid 0", r"-S \S*execve.*euid=0|euid=0.*-S \S*execve", True)],
    "time_change": [("adjtimex/settimeofday/clock_settime", r"-S \S*(adjtimex|settimeofday|clock_settime)", True)],
    "sudoers": [("/etc/sudoers", r"-w /etc/sudoers\b", False), ("/etc/sudoers.d", r"-w /etc/sudoers\.d\b", False)],
    "logins": [("lastlog/faillock", r"-w (/var/log/lastlog|/var/log/faillog|(/var)?/run/faillock)\b", False)],
    "session": [(w, rf"-w {w}\b", False) for w in ("(/var)?/run/utmp", "/var/log/wtmp", "/var/log/btmp")],
    "perm_mod": [("chmod", r"-S \S*chmod", True), ("chown", r"-S \S*chown", True), ("setxattr", r"-S \S*setxattr", True)],
    "delete": [("unlink", r"-S \S*unlink", True), ("rename", r"-S \S*rename", True)],
    "access": [("failed open EACCES", r"exit=-EACCES", True), ("failed open EPERM", r"exit=-EPERM", True)],
    "modules": [("init_module/finit_module", r"-S \S*init_module", True), ("delete_module", r"-S \S*delete_module", True)],
    "network": [("sethostname", r"-S \S*sethostname", True), ("/etc/hosts", r"-w /etc/hosts\b", False)],
}


def _rule_present(lines: list[str], pattern: str, pair: bool) -> bool:
    hits = [ln for ln in lines if re.search(pattern, ln)]
    if not pair:
        return bool(hits)
    return all(any(f"arch={a}" in ln for ln in hits) for a in ("b64", "b32"))


def audit_rules(f, p):
    """Each rule's presence in the kernel's loaded rules (auditctl -l) where kernel audit runs; else in
    the rules files, with the reason the loaded rules cannot be read."""
    status = _kv(f.get("auditctl", ""))
    if status.get("enabled") in ("1", "2"):  # kernel audit runs: what it enforces is what counts
        lines, source = f.get("auditctl_rules", "").splitlines(), "auditctl -l"
        immutable = status.get("enabled") == "2"
    else:
        lines = f.get("audit_rules", "").splitlines()
        virt = f.get("virt", "").strip()
        why = f"container {virt}: no kernel audit" if virt not in ("", "none") else "kernel audit not enabled"
        source = f"/etc/audit/rules.d ({why}; the loaded rules cannot be read 无法读取内核规则)"
        immutable = any(re.match(r"^\s*-e\s+2\b", ln) for ln in lines)
    subs = []
    for name in p["dengbao_audit_rules"]:
        if name == "immutable":
            subs.append(_sub("rules immutable (-e 2) 审计规则不可修改", immutable, source))
        elif name in AUDIT_RULES:
            missing = [what for what, pat, pair in AUDIT_RULES[name] if not _rule_present(lines, pat, pair)]
            subs.append(_sub(f"{name} 审计规则", not missing, (f"missing: {', '.join(missing)}; " if missing else "") + source))
    return subs, ["audit_rules", "auditctl", "auditctl_rules", "virt"]


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


def _chronyc_has(f, server: str) -> dict:
    """What the running chronyd reports: the server among its sources (`chronyc -n sources`). In a
    container too: chronyd can follow its source there without setting the clock (chronyd -x)."""
    src = [ln.split()[1] for ln in f.get("chronyc", "").splitlines() if re.match(r"^[\^=#][*+\-?x~ ]\s", ln) and len(ln.split()) > 1]
    container = f.get("virt", "").strip() not in ("", "none")
    return _sub(f"chronyc: chronyd uses {server} 运行中的时间源", server in src,
                (",".join(src) or f.get("chronyc", "").strip()[:120] or "none")
                + (" (container: run chronyd -x to follow the source without setting the clock)" if container and not src else ""))


def time_sync_effective(f, p):
    """The configured source (time_sync) and the source the running chronyd actually uses."""
    subs, used = time_sync(f, p)
    if subs is None:
        return subs, used
    return [*subs, _chronyc_has(f, p["dengbao_ntp_server"])], [*used, "chronyc"]


def _snmpd(f) -> tuple[bool, list[str]]:
    """(snmpd running, the lines of the configuration it loaded)."""
    lines = f.get("snmpd", "").splitlines()
    return bool(lines) and re.search(r"\bsnmpd\b", lines[0]) is not None, lines[1:]


def _snmp_priv(conf: list[str]) -> dict:
    """A v3 user created with a privacy protocol that the access lines admit only at level priv, and no
    access line admitting less."""
    created = {m.group(1) for m in (re.match(r"^\s*createUser\s+(\S+)\s+\S+\s+\S+\s+(AES|DES)", ln, re.I) for ln in conf) if m}
    access = [m for m in (re.match(r"^\s*(r[ow]user)\s+(?:-s\s+usm\s+)?(\S+)(?:\s+(\S+))?", ln) for ln in conf) if m]
    priv = {m.group(2) for m in access if m.group(3) == "priv"}
    weaker = [m.group(0).strip() for m in access if m.group(3) != "priv"]
    return _sub("SNMPv3 user with privacy (authPriv) 加密", bool(created & priv) and not weaker,
                "; ".join(weaker) or ",".join(sorted(created & priv)) or "none")


def snmp_v3_only(f, p):
    running, conf = _snmpd(f)
    communities = [ln.strip() for ln in conf if re.match(r"^\s*((ro|rw)community6?|com2sec6?|trapcommunity)\b", ln)]
    return [_sub("snmpd running 运行中", running, (f.get("snmpd", "").splitlines() or ["none"])[0][:120]),
            _sub("no v1/v2c community 无团体名", not communities, "; ".join(communities) or "none"),
            _snmp_priv(conf)], ["snmpd"]


def encrypted_management(f, p):
    """Management traffic encrypted: SNMP only with privacy, SSH without weak algorithms."""
    crypto, used = ssh_strong_crypto(f, p)
    return [_snmp_priv(_snmpd(f)[1]), *crypto], ["snmpd", *used]


def unused_services(f, p):
    ports, a = high_risk_ports(f, p)
    packages, b = minimal_install(f, p)
    return [*ports, *packages], [*a, *b]


def audit_protection(f, p):
    perm = next((ln.split() for ln in f.get("perms", "").splitlines() if ln.endswith("/var/log/audit")), None)
    ok = perm is not None and len(perm) == 3 and int(perm[0], 8) & 0o027 == 0 and perm[1].startswith("root:")
    auditor = p["dengbao_auditadmin"]
    rights = [g.text for g in sudo_judgement(f, p).grants.get(auditor, [])]
    return [_sub("/var/log/audit ≤ 750 root 审计记录受保护", ok, " ".join(perm[:2]) if perm else "missing"),
            _sub("audit admin has no sudo rights (reads by group) 审计员无删改权限", not rights, "; ".join(rights) or "none")], ["perms", "sudo"]


def minimal_install(f, p):
    installed = [ln.split()[0] for ln in f.get("packages", "").splitlines()
                 if ln.split() and (ln.split()[-1].startswith("ii") or re.match(r"^\S+-\d", ln))]
    return [_sub("no clear-text/unneeded service packages 最小安装", not installed, ",".join(installed) or "none")], ["packages"]


def kernel_params(f, p):
    """The running kernel's values; in a container (read-only /proc/sys, the host's kernel) 不适用, once the
    file a real host would load is there."""
    want = {k: str(v) for k, v in {**p["dengbao_sysctl"], "net.ipv4.ip_forward": p["dengbao_ip_forward"]}.items()}
    shipped = _kv(f.get("sysctl_file", ""), r"\s*=\s*")
    wrong_file = [f"{k}={shipped.get(k)}" for k, v in want.items() if shipped.get(k) != v]
    if f.get("virt", "").strip() not in ("", "none"):
        if not wrong_file:
            return None, ["sysctl_file", "virt"]
        return [_sub("sysctl file shipped 内核参数文件", False, ", ".join(wrong_file))], ["sysctl_file", "virt"]
    live = _kv(f.get("sysctl", ""), r"\s*=\s*")
    wrong_live = [f"{k}={live.get(k)}" for k, v in want.items() if live.get(k) != v]
    return [_sub("running kernel values 运行值", not wrong_live, ", ".join(wrong_live) or "all as required"),
            _sub("sysctl file for the next boot 持久配置", not wrong_file, ", ".join(wrong_file) or "all as required")], ["sysctl", "sysctl_file"]


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


_ALWAYS = re.compile(r'^(iif "?lo"? accept|ct state [\w,]*(established|related)[\w,]* accept|meta l4proto \{?[ \w,-]*icmp[ \w,-]*\}? accept'
                     r'|ip protocol icmp accept|.* drop|.* reject.*)$')


def _input_chains(ruleset: str) -> list[tuple[str, list[str]]]:
    """(policy, rules) of every chain hooked on input, from `nft list ruleset`."""
    chains, cur = [], None
    for raw in ruleset.splitlines():
        line = raw.strip()
        if line.startswith("chain "):
            cur = None
        elif "hook input" in line:
            cur = ("drop" if "policy drop" in line else "accept", [])
            chains.append(cur)
        elif cur is not None and line and line != "}":
            cur[1].append(line)
    return chains


def _dport(rule: str, port: int) -> bool:
    return bool(re.search(rf"dport ({port}\b|\{{[^}}]*\b{port}\b[^}}]*\}})", rule))


def _saddrs(rule: str) -> list | None:
    """The networks an nft rule's ``ip saddr`` matches (one address, a prefix or a ``{ … }`` set); None when
    the rule names no source, negates it or names one this check does not read (then it admits too much)."""
    m = re.search(r"ip saddr (\{[^}]*\}|[^\s!{]\S*)", rule)
    try:
        return [ipaddress.ip_network(x.strip(), strict=False) for x in m.group(1).strip("{} ").split(",")] if m else None
    except ValueError:
        return None


def _opened(deny: list[list[str]], port: int, proto: str = "") -> list[str]:
    """The accept rules of the default-deny input chains that open ``port`` (those naming no port open all)."""
    return [r for rules in deny for r in rules if r.endswith("accept") and not _ALWAYS.match(r)
            and ((_dport(r, port) and (not proto or f"{proto} dport" in r)) or "dport" not in r)]


def mgmt_access(f, p):
    """Default deny on input, and each management port accepted only from the management network; on a log
    host or a replication pair's member (``dengbao_peer_admit``, set by the audit engine from admits.admitted) each
    such port accepted only from those peers' addresses (and the management network), as the firewall role writes it."""
    net = ipaddress.ip_network(p["dengbao_mgmt_network"])
    chains = _input_chains(f.get("nft", ""))
    deny = [rules for policy, rules in chains if policy == "drop"]
    subs = [_sub("input default deny 默认拒绝", bool(deny), f"{len(deny)} of {len(chains)} input chains with policy drop")]
    for port in p["dengbao_mgmt_ports"]:
        if deny:
            opened = _opened(deny, port)
            ok = bool(opened) and all(s is not None and all(n.subnet_of(net) for n in s) for s in map(_saddrs, opened))
            detail = "; ".join(opened) or "not accepted"
        else:  # policy accept: only a drop of everyone else closes the port
            rules = f.get("nft", "")
            ok = bool(re.search(rf"ip saddr != {re.escape(str(net))} .*dport ({port}|\{{[^}}]*\b{port}\b[^}}]*\}}) .*drop", rules))
            detail = "policy accept with a drop rule" if ok else "open to all"
        subs.append(_sub(f"port {port} only from {net} 仅管理网访问", ok, detail))
    admits = p.get("dengbao_peer_admit") or []
    # a port several admits share (PostgreSQL: the replication peer and a zone flow's source) may be opened to all of them
    shared: dict[tuple, set] = {}
    for rule in admits:
        shared.setdefault((rule["port"], rule["proto"]), set()).update(
            {ipaddress.ip_network(a) for a in rule["sources"]} | ({net} if rule.get("management") else set()))
    for rule in admits:
        peers = {ipaddress.ip_network(a) for a in rule["sources"]}
        opened = _opened(deny, rule["port"], rule["proto"])
        allowed = shared[(rule["port"], rule["proto"])]  # with the management network for a service port it reaches too
        ok = bool(opened) and all(s is not None and set(s) <= allowed for s in map(_saddrs, opened))
        subs.append(_sub(f"port {rule['port']}/{rule['proto']} only from its {len(peers)} {rule['what']} 仅限对端访问", ok,
                         "; ".join(opened) or ("not accepted" if deny else "no default deny")))
    return subs, ["nft"]


def _replicas_seen(f, p) -> dict[str, dict]:
    """The replication section, judged per replica the inventory gives this host: its name → what the primary sees
    of it (:data:`PRIMARY_VIEW`'s reader, ``dengbao_replication_max_lag_seconds`` the lag target); a replica whose
    line is missing or unreadable (the engine down, the client refused) is not read."""
    lines = [ln.strip() for ln in f.get("replication", "").splitlines()]
    seen = {}
    for r in p.get("dengbao_replicas") or []:
        at = lines.index(r["standby"]) + 1 if r["standby"] in lines else len(lines)
        try:
            seen[r["standby"]] = PRIMARY_VIEW[r["service"]][1](lines[at], r, p["dengbao_replication_max_lag_seconds"])
        except (IndexError, ValueError):
            seen[r["standby"]] = {"streaming": False, "state": "not read 未读取", "current": False, "lag": "not read 未读取",
                                  "sync_state": None}
    return seen


def _judged(p) -> list[str]:
    """The host's database services this control judges: all but those it is the replica of (judged on their
    primary); none at the DR site, itself the backup site."""
    return [] if p.get("dengbao_dr_site") else [s for s in p.get("dengbao_databases") or []
                                                if s not in (p.get("dengbao_replica_of") or {})]


def _copy(svc: str, of: str) -> str:
    """Why a database service the host is the replica of is not its subject."""
    return f"this host's {svc} is the standby of {of}: it is the real-time copy, judged on its primary 本机 {svc} 为 {of} 的实时备库，由主库判定"


def _dr_na(p) -> str:
    if not p.get("dengbao_databases"):
        return "no database service on this host: its files' off-site copies are judged by data-offsite 本机无数据库服务"
    copies = p.get("dengbao_replica_of") or {}
    why = [_copy(svc, of) for svc, of in copies.items()]
    if p.get("dengbao_dr_site") and set(p["dengbao_databases"]) - set(copies):
        why.append(f"this host is at the DR site {p['dengbao_dr_site']}, itself the backup site (restores and standbys) "
                   "本机位于灾备中心（备份场地本身）")
    return "; ".join(why)


def _dr_subs(p, judge) -> list[dict] | None:
    """The host's findings for 8.1.4.9 b/c: None when it judges no service (不适用, :func:`_dr_na`); else per
    judged service ``judge(service, its replicas)``, after a note (not counted) per service it only replicates."""
    judged = _judged(p)
    if not judged:
        return None
    notes = [{**_sub(f"{svc}: not this host's subject 不适用", True, _copy(svc, of)), "na": True}
             for svc, of in (p.get("dengbao_replica_of") or {}).items()]
    reps = p.get("dengbao_replicas") or []
    return notes + [s for svc in judged for s in judge(svc, [r for r in reps if r["service"] == svc])]


def data_realtime(f, p):
    """8.1.4.9 b) 异地实时备份: every database the host is the primary of streams to a replica at another site, current
    within the lag target (and synchronously where the inventory says sync), as the host's own engine reports it."""
    seen = _replicas_seen(f, p)

    def judge(svc, reps):
        if not reps:
            return [_sub(f"{svc}: real-time replica at the DR site 异地实时备库", False,
                         f"no replica in the inventory replicates {svc} on this host (replica: {{of: HOST, service: {svc}}} "
                         "on a server at the DR site) 无实时复制备库")]
        subs = []
        for r in reps:
            st, where = seen[r["standby"]], f"{svc}: {r['standby']} at {r['site']}"
            subs.append(_sub(f"{where} streams from this host 实时复制", st["streaming"], st["state"]))
            subs.append(_sub(f"{where}: lag within {p['dengbao_replication_max_lag_seconds']:g} s 复制延迟在目标内",
                             st["current"], st["lag"]))
            if r["sync"]:
                subs.append(_sub(f"{where}: synchronous (no committed transaction lost) 同步复制", st["sync_state"] == "sync",
                                 f"sync_state {st['sync_state'] or '-'}"))
        return subs

    return _dr_subs(p, judge), ["replication"]


def hot_redundancy(f, p):
    """8.1.4.9 c) 热冗余: a hot replica of each database the host is the primary of streams and can take over, and a
    failover drill that promoted it passed within the period (``dengbao_failover_drills``, from the drill journals,
    newest last)."""
    seen = _replicas_seen(f, p)

    def judge(svc, reps):
        subs = [_sub(f"{svc}: hot standby {r['standby']} at {r['site']} streaming, able to take over 热备库在线",
                     seen[r["standby"]]["streaming"], seen[r["standby"]]["state"]) for r in reps] or \
               [_sub(f"{svc}: hot standby 热备库", False, f"no replica in the inventory for {svc} on this host 无热备库")]
        drills = [d for d in p.get("dengbao_failover_drills") or [] if d.get("service") == svc]
        last = drills[-1] if drills else None
        return subs + [_sub(f"{svc}: failover drill passed within {p['dengbao_failover_drill_max_days']} d 切换演练通过",
                            bool(last) and last["verdict"] == "passed",
                            f"{last['started']} {last['id']} {last['verdict']} ({last['journal']})" if last else
                            f"no drill on record that promoted this host's {svc} replica 无主备切换演练记录")]

    return _dr_subs(p, judge), ["replication"]


NA_REASONS = {
    "kernel-params": "container: /proc/sys is read-only and the kernel is the host's; /etc/sysctl.d/90-dengbao.conf is "
                     "shipped for a real host 容器内不适用（内核参数属宿主机）",
    "log-forwarding": "this host is the top of the log chain 本机为最上级日志服务器",
    "time-sync": "this host is the top time source; set dengbao_ntp_server for its upstream 本机为最上级时间源",
    # a callable: the reason depends on the host's parameters
    "data-realtime": _dr_na, "hot-redundancy": _dr_na,
}

CHECKS = {
    "pw-quality": pw_quality, "pw-history": pw_history, "pw-aging": pw_aging, "no-empty-password": no_empty_password,
    "login-lockout": login_lockout, "idle-timeout": idle_timeout, "ssh-remote-mgmt": ssh_remote_mgmt,
    "ssh-strong-crypto": ssh_strong_crypto, "ssh-root-login": ssh_root_login, "ssh-session": ssh_session,
    "separation-of-duties": separation_of_duties,
    "umask": umask, "file-permissions": file_permissions, "audit-rules": audit_rules, "audit-daemon": audit_daemon,
    "log-forwarding": log_forwarding, "log-retention": log_retention, "time-sync": time_sync,
    "audit-protection": audit_protection, "minimal-install": minimal_install, "high-risk-ports": high_risk_ports,
    "mgmt-access": mgmt_access, "kernel-params": kernel_params,
    "core-dumps": core_dumps, "su-restricted": su_restricted, "suid-binaries": suid_binaries, "system-accounts": system_accounts,
    "shm-noexec": shm_noexec, "cron-permissions": cron_permissions, "ssh-client": ssh_client,
    "data-realtime": data_realtime, "hot-redundancy": hot_redundancy,
}


def verdict(subs: list[dict] | None) -> str:
    if subs is None:
        return NA
    judged = [s for s in subs if not s.get("na")]  # a note on what is not the control's subject counts for nothing
    good = sum(s["ok"] for s in judged)
    return PASS if judged and good == len(judged) else FAIL if good == 0 else PARTIAL
