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
from pathlib import Path

import pytest

from jinbao_netops import inventory
from jinbao_netops.security import logstore

from .conftest import REPO, netops, until

pytestmark = pytest.mark.lab
INV = inventory.load(inventory.DEFAULT_INVENTORY)
SENDER, OTHER, OUTSIDER, LOGHOST = "huadu-srv1", "gd-db1", "sc-db1", "gd-mon1"
TLS = "/etc/jinbao-netops/tls"


def sh(node: str, script: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return netops("lab", "exec", node, "--", "sh", "-c", script, timeout=timeout)


def stored(source: str) -> str:
    """What the log host holds for ``source`` (current and rotated files), as text."""
    return sh(LOGHOST, f"cd {logstore.STORE} && zcat -f -- {source}.log {source}.log-* 2>/dev/null; true").stdout


def of_loghost(stdout: str) -> dict:
    return next(h for h in json.loads(stdout)["log_hosts"] if h["log_host"] == LOGHOST)


def send_raw(node: str, line: str) -> subprocess.CompletedProcess:
    """One syslog line over TLS to the log host with the node's own certificate (what a forger can do)."""
    addr = INV.devices[LOGHOST].management
    return sh(node, f"printf '%s\\n' '{line}' | timeout 20 openssl s_client -quiet -no_ign_eof -connect {addr}:6514 "
                    f"-cert {TLS}/node.crt -key {TLS}/node.key -CAfile {TLS}/ca.crt -verify_return_error >/dev/null 2>&1; true")


@pytest.fixture(scope="module")
def store(lab):
    assert LOGHOST == logstore.log_host_of(INV, SENDER) and LOGHOST != logstore.log_host_of(INV, OUTSIDER)
    exe = str(Path(sys.executable).with_name("ansible-playbook"))
    env = {k: v for k, v in {**os.environ, **lab["env"]}.items() if k != "NETOPS_INVENTORY"}
    r = subprocess.run([exe, "playbooks/logs.yml"], cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    # every server's forwarding connects: its rsyslog restart message reaches the store under its own name
    until("every guangdong server heard by the log host",
          lambda: all(stored(s.device) for s in logstore.senders(INV, LOGHOST) if s.transport == "tls"), 120)
    return lab


def test_a_log_host_restart_loses_nothing(store):
    tag = uuid.uuid4().hex[:12]
    assert sh(LOGHOST, "systemctl stop rsyslog").returncode == 0
    try:
        assert sh(LOGHOST, "systemctl is-active rsyslog").stdout.strip() != "active"
        for i in range(20):
            assert sh(SENDER, f"logger -t restarttest 'restart-{tag}-{i:02d}'").returncode == 0
    finally:
        assert sh(LOGHOST, "systemctl start rsyslog").returncode == 0
    lines = [f"restart-{tag}-{i:02d}" for i in range(20)]
    until("all 20 lines logged while the log host was down", lambda: all(x in stored(SENDER) for x in lines), 180)
    filed = [ln for ln in stored(SENDER).splitlines() if f"restart-{tag}" in ln]
    assert all(ln.split()[1] == SENDER for ln in filed)


def test_a_node_outside_the_allowlist_is_refused_and_a_forged_hostname_is_filed_under_the_sender(store):
    tag = uuid.uuid4().hex[:12]
    # the same client, certificate and CA: the allowlisted sender gets through, claiming another's name …
    send_raw(SENDER, f"<13>Dec  3 00:00:00 {OTHER} forger: forged-{tag}")
    until("the forged line filed", lambda: f"forged-{tag}" in stored(SENDER), 60)
    line = next(ln for ln in stored(SENDER).splitlines() if f"forged-{tag}" in ln)
    assert line.split()[1] == SENDER and f"claimed={OTHER}" in line
    # … another province's server, with a valid lab certificate but not on this log host's allowlist, is refused:
    # rsyslog says so naming the certificate, and once a later allowlisted line is in, the outsider's is nowhere
    send_raw(OUTSIDER, f"<13>Dec  3 00:00:00 {OUTSIDER} outsider: outsider-{tag}")
    until("the log host refusing the outsider's certificate by name",
          lambda: OUTSIDER in sh(LOGHOST, "journalctl -u rsyslog --no-pager -n 300 | grep -iE 'not permitted|not authorized'; true").stdout,
          60)
    send_raw(SENDER, f"<13>Dec  3 00:00:00 {SENDER} after: after-{tag}")
    until("the line sent after the outsider's", lambda: f"after-{tag}" in stored(SENDER), 60)
    holders = sh(LOGHOST, f"grep -rlE 'outsider-{tag}|forged-{tag}' {logstore.STORE}; true").stdout.split()
    assert holders == [f"{logstore.STORE}/{SENDER}.log"]
    assert f"forged-{tag}" not in stored(OTHER)


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
