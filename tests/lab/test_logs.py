"""The 安全管理中心 log store on the live lab: servers forward over TLS to their province log host, which files
by the authenticated source; a log host restart loses nothing; a node outside the allowlist is refused and
a forged hostname is filed under the real sender; the hash chain finds a modified line; retention holds."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest

from jinbao_netops import escape, inventory
from jinbao_netops.security import logstore
from jinbao_netops.security.catalogue import host_params

from .conftest import REPO, netops, until

pytestmark = pytest.mark.lab
INV = inventory.load(inventory.DEFAULT_INVENTORY)
SENDER, OTHER, OUTSIDER, LOGHOST = "huadu-srv1", "gd-db1", "sc-db1", "gd-mon1"


def sh(node: str, script: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return netops("lab", "exec", node, "--", "sh", "-c", script, timeout=timeout)


def stored(source: str) -> str:
    """What the log host holds for ``source`` (current and rotated files), as text."""
    return sh(LOGHOST, f"cd {logstore.STORE} && zcat -f -- {source}.log {source}.log-* 2>/dev/null; true").stdout


def of_loghost(stdout: str) -> dict:
    return next(h for h in json.loads(stdout)["log_hosts"] if h["log_host"] == LOGHOST)


@contextmanager
def forwarding_as(node: str, claimed: str):
    """An extra rsyslog action on ``node``: messages tagged ``jbtest`` go to the guangdong log host as the
    production action sends them (RELP over TLS, the node's own certificate), claiming hostname ``claimed``."""
    p = host_params(INV, node)
    action = logstore.forward_action(str(INV.devices[LOGHOST].management), LOGHOST, p, "jbtest_q", "JbTestForge")
    conf = (f'template(name="JbTestForge" type="string" string="<13>Dec  3 00:00:00 {claimed} jbtest: %msg%\\n")\n'
            f'if $programname == "jbtest" then {{\n  {action}\n  stop\n}}\n')
    path = "/etc/rsyslog.d/95-jbtest.conf"
    assert sh(node, f"printf '%s' {escape.shell(conf)} > {path} && rsyslogd -N1 && systemctl restart rsyslog").returncode == 0
    try:
        yield lambda text: sh(node, f"logger -t jbtest {escape.shell(text)}")
    finally:
        sh(node, f"rm -f {path}; systemctl restart rsyslog")


@contextmanager
def firewall_admits(node: str, source: str, port: int):
    """On a hardened log host the firewall drops another province's server before RELP sees it (test_security
    proves that): a test rule admits ``source`` for the duration, so the RELP allowlist is proven on its own."""
    if sh(node, "nft list table inet dengbao >/dev/null 2>&1").returncode != 0:  # not hardened: no firewall
        yield
        return
    addr, mark = INV.devices[source].management, "netops_test_admit"
    assert sh(node, f"nft insert rule inet dengbao input ip saddr {addr} tcp dport {port} accept comment {mark}").returncode == 0
    try:
        yield
    finally:
        handles = re.findall(rf"comment \"{mark}\" # handle (\d+)", sh(node, "nft -a list chain inet dengbao input").stdout)
        for h in handles:
            sh(node, f"nft delete rule inet dengbao input handle {h}")


@pytest.fixture(scope="module")
def store(lab):
    assert LOGHOST == logstore.log_host_of(INV, SENDER) and LOGHOST != logstore.log_host_of(INV, OUTSIDER)
    exe = str(Path(sys.executable).with_name("ansible-playbook"))
    env = {k: v for k, v in {**os.environ, **lab["env"]}.items() if k != "NETOPS_INVENTORY"}
    r = subprocess.run([exe, "playbooks/logs.yml"], cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    # every server's forwarding connects: its rsyslog restart message reaches the store under its own name
    until("every guangdong server heard by the log host",
          lambda: all(stored(s.device) for s in logstore.senders(INV, LOGHOST) if s.transport == "relp"), 120)
    return lab


def test_a_log_host_restart_loses_nothing(store):
    tag = uuid.uuid4().hex[:12]
    # the socket too: a message to /dev/log would otherwise start rsyslog again at once
    assert sh(LOGHOST, "systemctl stop syslog.socket rsyslog.service").returncode == 0
    try:
        assert sh(LOGHOST, "systemctl is-active rsyslog").stdout.strip() != "active"
        for i in range(20):
            assert sh(SENDER, f"logger -t restarttest 'restart-{tag}-{i:02d}'").returncode == 0
    finally:
        assert sh(LOGHOST, "systemctl start syslog.socket rsyslog.service").returncode == 0
    lines = [f"restart-{tag}-{i:02d}" for i in range(20)]
    until("all 20 lines logged while the log host was down", lambda: all(x in stored(SENDER) for x in lines), 180)
    filed = [ln for ln in stored(SENDER).splitlines() if f"restart-{tag}" in ln]
    assert all(ln.split()[1] == SENDER for ln in filed)


def test_a_node_outside_the_allowlist_is_refused_and_a_forged_hostname_is_filed_under_the_sender(store):
    tag = uuid.uuid4().hex[:12]
    # the allowlisted sender gets through claiming another's name, and is filed under its own …
    with forwarding_as(SENDER, claimed=OTHER) as send:
        send(f"forged-{tag}")
        # the line may also arrive through the sender's own forwarding (claimed as itself): wait for the forged one
        forged_lines = lambda: [ln for ln in stored(SENDER).splitlines() if f"forged-{tag}" in ln and f"claimed={OTHER}" in ln]
        until("the forged line filed", forged_lines, 60)
    forged = forged_lines()
    assert forged and all(ln.split()[1] == SENDER for ln in forged)
    assert f"forged-{tag}" not in stored(OTHER)
    # … another province's server, sending the same way with a valid lab certificate, is not on this log host's
    # allowlist: it is refused, and once a later allowlisted line is in, the outsider's is nowhere in the store
    relp = host_params(INV, LOGHOST)["dengbao_log_relp_port"]
    with firewall_admits(LOGHOST, OUTSIDER, relp), forwarding_as(OUTSIDER, claimed=OUTSIDER) as send:
        send(f"outsider-{tag}")
        refusals = f"journalctl -u rsyslog --no-pager -n 300 | grep -iE 'relp.*(auth|permit|peer)' | grep -E '{OUTSIDER}|{INV.devices[OUTSIDER].management}'; true"
        until("the log host refusing the outsider, naming it", lambda: sh(LOGHOST, refusals).stdout.strip(), 90)
        assert sh(SENDER, f"logger 'after-{tag}'").returncode == 0
        until("a later line from an allowlisted sender", lambda: f"after-{tag}" in stored(SENDER), 60)
        holders = sh(LOGHOST, f"grep -rlE 'outsider-{tag}|forged-{tag}' {logstore.STORE}; true").stdout.split()
        assert holders == [f"{logstore.STORE}/{SENDER}.log"]


def test_the_ministry_receives_the_security_streams_only(store):
    tag, top = uuid.uuid4().hex[:12], logstore.log_host_of(INV, LOGHOST)
    assert top == "bu-mon1"

    def at_ministry() -> str:
        return sh(top, f"cat {logstore.STORE}/{LOGHOST}.log 2>/dev/null; true").stdout

    assert sh(SENDER, f"logger -p user.notice 'plain-{tag}' && logger -p authpriv.notice 'auth-{tag}'").returncode == 0
    until("the authpriv line relayed to the ministry", lambda: f"auth-{tag}" in at_ministry(), 90)
    line = next(ln for ln in at_ministry().splitlines() if f"auth-{tag}" in ln)
    assert line.split()[1] == LOGHOST and f"claimed={SENDER}" in line  # the province's authenticated source travels up
    assert f"plain-{tag}" in stored(SENDER) and f"plain-{tag}" not in at_ministry()


def test_status_and_search_read_the_store(store):
    tag = uuid.uuid4().hex[:12]
    assert sh(SENDER, f"logger -t searchtest 'search-{tag}'").returncode == 0
    until("the line arrived", lambda: f"search-{tag}" in stored(SENDER), 60)
    r = netops("logs", "search", "--scope", "huadu", "--since", "1h", "--grep", f"search-{tag}", "--json", env=store["env"])
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)["lines"]
    assert [(x["log_host"], x["source"]) for x in rows] == [(LOGHOST, SENDER)] and f"search-{tag}" in rows[0]["line"]
    r = netops("logs", "status", "--scope", "guangdong", "--json", env=store["env"])
    assert r.returncode in (0, 1), r.stderr  # routers send no syslog in the lab yet: their silence is a finding
    h = of_loghost(r.stdout)
    assert h["rotation"]["kept_days"] >= 180 and h["retention_ok"]
    by = {s["source"]: s for s in h["sources"]}
    assert by[SENDER]["last_message"] and not by[SENDER]["gap"] and by[SENDER]["bytes"] > 0


def test_retention_is_configured_and_the_audit_agrees(store):
    conf = sh(LOGHOST, f"cat {logstore.ROTATE}").stdout
    words = {m.group(1): int(m.group(2)) for m in re.finditer(r"^\s*(rotate|maxage)\s+(\d+)", conf, re.MULTILINE)}
    assert re.search(r"^\s*daily\s*$", conf, re.MULTILINE) and re.search(r"^\s*compress\s*$", conf, re.MULTILINE)
    assert words["rotate"] >= 180 and words["maxage"] >= 180
    r = netops("audit", "--scope", SENDER, "--json", env=store["env"])
    assert r.returncode in (0, 1), r.stderr
    v = {x["id"]: x for x in json.loads(r.stdout)["hosts"][0]["results"]}
    assert v["log-forwarding"]["verdict"] == "符合", v["log-forwarding"]["findings"]
    assert v["log-retention"]["verdict"] == "符合", v["log-retention"]["findings"]


def test_verify_finds_a_modified_line(store):
    rot = sh(LOGHOST, f"logrotate -f {logstore.ROTATE}")
    assert rot.returncode == 0, rot.stdout + rot.stderr
    r = netops("logs", "verify", "--scope", "guangdong", "--json", env=store["env"])
    assert r.returncode == 0, r.stdout + r.stderr
    h = of_loghost(r.stdout)
    assert h["ok"] and h["days"] >= 1
    day = h["last_day"]
    f = f"{logstore.STORE}/{SENDER}.log-{day}.gz"
    edit = sh(LOGHOST, f"zcat {f} | sed '1s/claimed=/claimed=X/' | gzip > {f}.new && mv {f}.new {f}")
    assert edit.returncode == 0, edit.stderr
    r = netops("logs", "verify", "--scope", "guangdong", "--json", env=store["env"])
    assert r.returncode == 1, r.stdout + r.stderr
    broken = of_loghost(r.stdout)["broken"]
    assert broken["day"] == day and broken["file"] == f"{logstore.STORE}/{SENDER}.log-{day}"
    r = netops("logs", "verify", "--scope", "guangdong", env=store["env"])
    assert r.returncode == 1 and f"{SENDER}.log-{day}" in r.stdout
