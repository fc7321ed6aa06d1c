"""三权分立 judged on the effective sudo policy (`sudo -l -U` text as sudo prints it), never on sudoers files."""
from __future__ import annotations

from pathlib import Path

import pytest

from jinbao_netops import inventory
from jinbao_netops.security import hostchecks, sudopolicy
from jinbao_netops.security.catalogue import FAIL, PARTIAL, host_params

FIX = Path(__file__).parent / "fixtures/security"
PARAMS = host_params(inventory.load(inventory.DEFAULT_INVENTORY), "gd-db1")
WRAPPERS = {"/usr/local/sbin/dengbao-service": "sysadmin", "/usr/local/sbin/dengbao-account": "secadmin"}
ROLES = {"sysadmin": "sysadmin", "secadmin": "secadmin", "auditadmin": "auditadmin"}


def listing(user: str, *lines: str) -> str:
    body = "".join(f"    {ln}\n" for ln in lines)
    return (f"Matching Defaults entries for {user} on h:\n    env_reset, use_pty\n\n"
            f"User {user} may run the following commands on h:\n{body}")


def test_parse_reads_runas_tags_arguments_and_skips_negations():
    g = sudopolicy.parse(listing("u", '(root) NOPASSWD: /usr/sbin/reboot "", /usr/bin/cat /var/log/syslog, !/usr/bin/passwd',
                                 "(ALL : ALL) NOEXEC: SETENV: /usr/bin/less", "(root) /usr/bin/printf a\\, b"))
    assert [(x.runas, x.command, x.args) for x in g] == [
        ("root", "/usr/sbin/reboot", ""), ("root", "/usr/bin/cat", "/var/log/syslog"), ("ALL : ALL", "/usr/bin/less", None),
        ("root", "/usr/bin/printf", "a, b")]
    assert sudopolicy.parse("User u is not allowed to run sudo on h.\n") == []


@pytest.mark.parametrize("grant, role, why", [
    ("(ALL) NOPASSWD: ALL", "sysadmin", "unrestricted"),
    ("(root) /usr/bin/systemctl", "sysadmin", "any arguments"),
    ("(root) /usr/bin/systemctl stop auditd", "sysadmin", "audit/logging unit"),
    ("(root) /usr/bin/systemctl restart rsyslog.service", "sysadmin", "audit/logging unit"),
    ("(root) /usr/bin/systemctl status postgresql", "sysadmin", "pager"),
    ("(root) /usr/bin/systemctl edit postgresql", "sysadmin", "editor"),
    ("(root) /usr/bin/journalctl", "sysadmin", "journalctl"),
    ("(root) /usr/bin/apt-get", "sysadmin", "package manager"),
    ("(root) /usr/bin/dnf upgrade", "sysadmin", "package manager"),
    ("(root) /usr/bin/less /var/log/syslog", "auditadmin", "pager"),
    ("(root) NOEXEC: /usr/bin/vim /etc/motd", "sysadmin", "editor"),
    ("(root) /bin/bash", "sysadmin", "shell"),
    ("(root) /usr/bin/python3.11", "sysadmin", "interpreter"),
    ("(root) /usr/bin/find /srv", "sysadmin", "shell"),
    ("(root) /usr/bin/cat /var/log/*", "auditadmin", "wildcard"),
    ("(root) /usr/bin/cat", "auditadmin", "any file"),
    ("(root) /usr/local/bin/*", "sysadmin", "command path"),
    ("(root) /usr/bin/passwd", "secadmin", "root and itself"),
    ("(root) /usr/bin/passwd root", "secadmin", "root, itself"),
    ("(root) /usr/sbin/usermod -L -aG sudo secadmin", "secadmin", "root, itself or an admin group"),
    ("(root) /usr/sbin/usermod -U", "sysadmin", "outside the security administrator"),
    ("(root) /usr/sbin/auditctl -D", "auditadmin", "audit rules"),
    ("(root) NOPASSWD: /usr/local/sbin/dengbao-account", "sysadmin", "not this role's"),
])
def test_each_escape_vector_is_named(grant, role, why):
    (g,) = sudopolicy.parse(listing(role, grant))
    found = sudopolicy.escapes(g, role, role, WRAPPERS)
    assert found and why in " ".join(found), found


@pytest.mark.parametrize("grant, role", [
    ("(root) NOPASSWD: /usr/local/sbin/dengbao-service", "sysadmin"),
    ('(root) NOPASSWD: /usr/sbin/reboot ""', "sysadmin"),
    ("(root) /usr/bin/systemctl --no-pager status postgresql.service", "sysadmin"),
    ("(root) NOPASSWD: /usr/local/sbin/dengbao-account", "secadmin"),
    ("(root) NOPASSWD: /usr/sbin/nft list ruleset", "secadmin"),
    ("(root) /usr/sbin/usermod -L zhangsan", "secadmin"),
])
def test_bounded_grants_are_not_flagged(grant, role):
    (g,) = sudopolicy.parse(listing(role, grant))
    assert sudopolicy.escapes(g, role, role, WRAPPERS) == []


def test_the_paper_only_policy_of_issue_12_is_caught_for_every_role():
    """The sudoers the issue found (sudo -l of a node carrying it): every role has a way out."""
    j = sudopolicy.assess(sudopolicy.listings((FIX / "sudo-l-paper-only.txt").read_text()), ROLES, "netops", WRAPPERS,
                          {"auditadmin": ["auditadmin"]}, ["adm"])
    text = {u: " ".join(e) for u, e in j.escapes.items()}
    for u, why in (("sysadmin", "systemctl"), ("sysadmin", "apt-get"), ("sysadmin", "journalctl"), ("secadmin", "/usr/bin/passwd"),
                   ("secadmin", "usermod -L *"), ("auditadmin", "/usr/bin/cat /var/log/*"), ("auditadmin", "less")):
        assert why in text[u], (u, why, text[u])
    assert j.operator == ["(ALL) NOPASSWD: ALL"]
    assert not j.jobs["sysadmin"][0] and not j.jobs["secadmin"][0]  # no wrapper: their job is not bounded
    assert not j.jobs["auditadmin"][0]  # neither in a log group nor without sudo


def test_overlaps_and_other_accounts_are_found():
    text = ("== sysadmin\n" + listing("sysadmin", "(root) /usr/sbin/nft list ruleset")
            + "== secadmin\n" + listing("secadmin", "(root) /usr/sbin/nft list ruleset")
            + "== zhangsan\n" + listing("zhangsan", "(root) /usr/bin/id"))
    j = sudopolicy.assess(sudopolicy.listings(text), ROLES, "netops", WRAPPERS, {"sysadmin": ["adm"]}, ["adm"])
    assert any("granted to sysadmin and secadmin" in o for o in j.overlaps)
    assert any("sysadmin reads logs" in o for o in j.overlaps)
    assert j.others == ["zhangsan: (root) /usr/bin/id"]


def test_separation_verdict_never_passes_while_a_role_escapes():
    facts = {"admins": "sysadmin:x\ngroups sysadmin sysadmin\nsecadmin:x\ngroups secadmin secadmin\nauditadmin:x\n"
                       "groups auditadmin auditadmin adm\n",
             "sudo": (FIX / "sudo-l-paper-only.txt").read_text()}
    subs, _ = hostchecks.CHECKS["separation-of-duties"](facts, PARAMS)
    assert hostchecks.verdict(subs) == PARTIAL
    bad = {s["label"] for s in subs if not s["ok"]}
    assert {"sysadmin: no escape from its duty 无越权/逃逸途径", "secadmin: no escape from its duty 无越权/逃逸途径",
            "auditadmin: no escape from its duty 无越权/逃逸途径"} <= bad
    subs, _ = hostchecks.CHECKS["audit-protection"](facts, PARAMS)
    assert not subs[1]["ok"] and "/usr/bin/cat /var/log/*" in subs[1]["detail"]


def test_no_admin_accounts_and_an_operator_with_all_is_not_compliant():
    facts = {"admins": "missing sysadmin\ngroups sysadmin \nmissing secadmin\ngroups secadmin \nmissing auditadmin\ngroups auditadmin \n",
             "sudo": "== netops\n" + listing("netops", "(ALL) NOPASSWD: ALL")}
    subs, _ = hostchecks.CHECKS["separation-of-duties"](facts, PARAMS)
    assert hostchecks.verdict(subs) in (PARTIAL, FAIL)
    assert not any(s["ok"] for s in subs if "管理" in s["label"] and "no escape" not in s["label"])
