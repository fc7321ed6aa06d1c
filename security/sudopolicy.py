"""The effective sudo policy, judged the way an evaluator reads it: ``sudo -l -U <user>`` per account.

Pure functions over that text (no I/O): ``parse`` turns one listing into grants, ``escapes`` names the
known ways a grant reaches a root shell or leaves its duty (shells and interpreters, pagers, editors,
package managers, journalctl, systemctl with open arguments or on audit/logging units, globs in paths
or arguments, ALL, identity changes outside the security administrator), and ``assess`` judges the
三权分立 roles together: each can do its job, none can escape, no two share a right, and what the
automation account keeps is said, never hidden.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

HEADER = "== "  # the collection prints "== <user>" before each account's listing that grants anything
_TAGS = re.compile(r"^(?:(?:NO)?(?:PASSWD|EXEC|SETENV|LOG_INPUT|LOG_OUTPUT|MAIL|FOLLOW|INTERCEPT):\s*"
                   r"|(?:ROLE|TYPE|CWD|CHROOT|TIMEOUT|NOTBEFORE|NOTAFTER|APPARMOR_PROFILE)=\S+\s+"
                   r"|sha(?:224|256|384|512):\S+\s+)")

SHELLS = {"sh", "bash", "dash", "zsh", "ksh", "mksh", "csh", "tcsh", "fish", "busybox", "su", "sudo", "env", "nohup", "nice",
          "ionice", "timeout", "xargs", "find", "awk", "gawk", "mawk", "nawk", "sed", "perl", "ruby", "lua", "php", "node",
          "tclsh", "wish", "expect", "gdb", "strace", "ltrace", "script", "chroot", "setsid", "stdbuf", "taskset", "flock",
          "run-parts", "watch", "time", "unshare", "nsenter", "systemd-run", "screen", "tmux", "ssh", "scp", "rsync", "tar",
          "zip", "git", "make", "vtysh", "mysql", "psql", "crontab", "at"}
PAGERS = {"less", "more", "most", "pg", "man", "view"}
EDITORS = {"vi", "vim", "nvim", "nano", "pico", "ed", "ex", "emacs", "joe", "jed", "mcedit", "sudoedit", "visudo", "vipw", "vigr"}
PACKAGES = {"apt", "apt-get", "aptitude", "dpkg", "dnf", "yum", "rpm", "zypper", "pip", "pip3", "snap", "gem", "npm", "flatpak"}
FILE_TOOLS = {"cat", "tee", "cp", "mv", "dd", "chmod", "chown", "chgrp", "chattr", "ln", "rm", "truncate", "install", "head",
              "tail", "grep", "egrep", "zcat", "zgrep", "base64", "xxd", "od", "curl", "wget", "nc", "ncat", "socat",
              "openssl", "mount", "umount", "auditctl", "augenrules", "setfacl", "nft", "iptables"}
IDENTITY = {"passwd", "usermod", "useradd", "userdel", "chage", "gpasswd", "groupadd", "groupmod", "groupdel", "chpasswd",
            "newusers", "chsh", "chfn", "faillock", "adduser", "deluser"}
SERVICE_TOOLS = {"systemctl", "service", "invoke-rc.d", "initctl"}
LOGGING_UNITS = re.compile(r"\b(auditd?|rsyslog|syslog(-ng)?|systemd-journald|journald|audit-rules)\b")
GLOB = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class Grant:
    """One command a user may run: ``args`` None = any arguments; "" = none (sudoers ``""``)."""
    runas: str
    command: str
    args: str | None
    text: str  # as sudo lists it, with its runas (and tags, where sudo printed them)

    @property
    def name(self) -> str:
        return PurePosixPath(self.command).name


@dataclass
class Judgement:
    """What ``assess`` found: per account its grants and escape findings, and the cross-role findings."""
    grants: dict[str, list[Grant]] = field(default_factory=dict)
    escapes: dict[str, list[str]] = field(default_factory=dict)
    jobs: dict[str, tuple[bool, str]] = field(default_factory=dict)
    overlaps: list[str] = field(default_factory=list)
    others: list[str] = field(default_factory=list)
    operator: list[str] = field(default_factory=list)


def listings(text: str) -> dict[str, str]:
    """The collected section (``== user`` then that user's ``sudo -l -U`` output) split per user."""
    out: dict[str, str] = {}
    user = None
    for line in text.splitlines():
        if line.startswith(HEADER):
            user = line[len(HEADER):].strip()
            out[user] = ""
        elif user:
            out[user] += line + "\n"
    return out


def _split_commands(body: str) -> list[str]:
    return [c.strip() for c in re.split(r"(?<!\\),", body) if c.strip()]


def parse(listing: str) -> list[Grant]:
    """The grants of one ``sudo -l -U`` listing (the lines under "may run the following commands")."""
    grants: list[Grant] = []
    inside = False
    for line in listing.splitlines():
        if not line.strip():
            continue
        if not line[0].isspace():
            inside = "may run the following commands" in line
            continue
        if not inside:
            continue
        m = re.match(r"^\s*\(([^)]*)\)\s*(.*)$", line)
        runas, body = (m.group(1).strip(), m.group(2)) if m else ("root", line.strip())
        for entry in _split_commands(body):
            cmd = entry
            while (t := _TAGS.match(cmd)):
                cmd = cmd[t.end():]
            if not cmd or cmd.startswith("!"):
                continue  # a negation grants nothing (and restricts nothing reliably)
            path, _, args = cmd.partition(" ")
            args = args.strip()
            grants.append(Grant(runas, path, None if not args else "" if args == '""' else args.replace("\\,", ","),
                                f"({runas}) {entry}"))
    return grants


def escapes(g: Grant, user: str, role: str | None, wrappers: dict[str, str]) -> list[str]:
    """Why this grant is a way out of ``role``'s duty (empty: none known). ``wrappers``: the suite's
    argument-checking wrappers, path → the role they are for."""
    n, args = g.name, g.args
    if g.command == "ALL":
        return ["ALL: unrestricted root 全部命令"]
    out = []
    if GLOB.search(g.command):
        out.append(f"{g.text}: wildcard in the command path 命令路径含通配符")
    if args and GLOB.search(args):
        out.append(f"{g.text}: wildcard/glob in the arguments (matches ../ and extra arguments) 参数含通配符")
    if g.command in wrappers:
        if wrappers[g.command] != role:
            out.append(f"{g.text}: the {wrappers[g.command]}'s wrapper, not this role's 越权")
        return out
    if n in SHELLS or re.fullmatch(r"python[\d.]*|perl[\d.]*|ruby[\d.]*|php[\d.]*|lua[\d.]*", n):
        out.append(f"{g.text}: shell, interpreter or command runner 可获得 shell")
    elif n in PAGERS:
        out.append(f"{g.text}: pager (!sh) 分页器可逃逸")
    elif n in EDITORS:
        out.append(f"{g.text}: editor (:!sh, edits any file) 编辑器可逃逸")
    elif n in PACKAGES:
        out.append(f"{g.text}: package manager (hooks, maintainer scripts) 包管理器可逃逸")
    elif n == "journalctl":
        out.append(f"{g.text}: journalctl (pager) 日志查看器可逃逸")
    elif n in SERVICE_TOOLS:
        if args is None:
            out.append(f"{g.text}: service control with any arguments (stop auditd, edit, a pager) 服务控制无限制")
        elif LOGGING_UNITS.search(args):
            out.append(f"{g.text}: controls an audit/logging unit 可停止审计或日志服务")
        elif re.search(r"\b(edit|set-environment|import-environment|link|mask|daemon-reexec)\b", args) or (
                re.search(r"\b(status|cat|list-\S+|log)\b", args) and "--no-pager" not in args):
            out.append(f"{g.text}: service control that opens an editor or pager 服务控制可逃逸")
    elif n in FILE_TOOLS and args is None:
        out.append(f"{g.text}: reads or writes any file as root 任意文件读写")
    elif n in FILE_TOOLS and n in ("auditctl", "augenrules"):
        out.append(f"{g.text}: changes the audit rules 可修改审计规则")
    elif n in IDENTITY:
        if role != "secadmin":
            out.append(f"{g.text}: identity change outside the security administrator 身份管理越权")
        elif args is None:
            out.append(f"{g.text}: identity change on any account, root and itself included 可修改 root 或自身")
        elif re.search(rf"(^|\s)(root|{re.escape(user)})(\s|$)|-\w*G|\bsudo\b|\bwheel\b", args):
            out.append(f"{g.text}: identity change on root, itself or an admin group 可修改 root、自身或特权组")
    return out


def assess(listing: dict[str, str], roles: dict[str, str], operator: str, wrappers: dict[str, str],
           groups: dict[str, list[str]], log_groups: list[str]) -> Judgement:
    """Judge the effective policy. ``roles``: role → account (sysadmin, secadmin, auditadmin);
    ``groups``: account → its groups; ``log_groups``: the groups that read logs (the auditor's)."""
    j = Judgement()
    role_of = {u: r for r, u in roles.items()}
    for user, text in listing.items():
        j.grants[user] = parse(text)
    for user in {*roles.values(), *listing}:
        grants = j.grants.get(user, [])
        if user == operator:
            j.operator = [g.text for g in grants if escapes(g, user, None, wrappers)]
            continue
        if user not in role_of:
            if grants:
                j.others.append(f"{user}: " + ", ".join(g.text for g in grants))
            continue
        j.escapes[user] = [e for g in grants for e in escapes(g, user, role_of[user], wrappers)]
    for role, user in roles.items():
        grants = j.grants.get(user, [])
        if role == "auditadmin":
            held = sorted(set(groups.get(user, [])) & set(log_groups))
            j.jobs[role] = (bool(held) and not grants, f"groups {','.join(held) or 'none'}; sudo rights {len(grants)}")
        else:
            mine = [p for p, r in wrappers.items() if r == role]
            has = [g.text for g in grants if g.command in mine]
            j.jobs[role] = (bool(has), ", ".join(has) or f"no {' '.join(mine) or 'wrapper'} in sudo -l")
        if role != "auditadmin":
            reading = sorted(set(groups.get(user, [])) & set(log_groups))
            if reading:
                j.overlaps.append(f"{user} reads logs (group {','.join(reading)}): the audit administrator's duty")
    seen: dict[tuple[str, str | None], str] = {}
    for user in roles.values():
        for g in j.grants.get(user, []):
            key = (g.command, g.args)
            if key in seen and seen[key] != user:
                j.overlaps.append(f"{g.text}: granted to {seen[key]} and {user}")
            seen.setdefault(key, user)
    return j
