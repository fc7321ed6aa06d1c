"""Server checks on collected outputs: a fresh lab node, a hardened node, a non-compliant openEuler host."""
from __future__ import annotations

from pathlib import Path

from jinbao_netops import inventory
from jinbao_netops.security import hostchecks
from jinbao_netops.security.audit import audit_server
from jinbao_netops.security.catalogue import (
    FAIL,
    MANUAL,
    NA,
    PARTIAL,
    PASS,
    host_params,
    load_catalogue,
)

FIX = Path(__file__).parent / "fixtures/security"
INV = inventory.load(inventory.DEFAULT_INVENTORY)
CAT = load_catalogue()


def verdicts(fixture: str, host: str = "gd-db1", **override) -> dict[str, dict]:
    params = {**host_params(INV, host), **override}
    rows = audit_server(CAT, params, (FIX / fixture).read_text(), "2026-11-23T00:00:00+00:00")
    return {r["id"]: r for r in rows}


def test_script_is_read_only():
    script = hostchecks.script(host_params(INV, "gd-db1"))
    for forbidden in (">", "rm ", "tee", "sed -i", "chmod", "systemctl start", "systemctl restart", "auditctl -e", "nft add", "nft -f"):
        body = script.replace("2>&1", "").replace("2>/dev/null", "").replace("->", "")
        assert forbidden not in body, forbidden


def test_fresh_lab_node_fails_the_expected_controls():
    v = verdicts("debian12-lab-fresh.txt", "huadu-srv1")
    expected_bad = {"pw-quality", "pw-history", "pw-aging", "login-lockout", "idle-timeout", "ssh-strong-crypto", "ssh-root-login",
                    "separation-of-duties", "umask", "file-permissions", "audit-rules", "audit-daemon", "log-forwarding",
                    "log-retention", "time-sync", "mgmt-access"}
    bad = {k for k, r in v.items() if r["verdict"] in (FAIL, PARTIAL)}
    assert bad == expected_bad
    assert {k for k, r in v.items() if r["verdict"] == PASS} == {"no-empty-password", "ssh-remote-mgmt", "minimal-install",
                                                                 "high-risk-ports", "audit-protection"}
    # the container cannot run auditd; the evidence says so instead of pretending
    assert "container" in " ".join(f["detail"] for f in v["audit-daemon"]["findings"])


KEPT = {"host": "gd-mon1", "ok": True, "detail": "/var/log/remote/gd-db1.log kept 180 ≥ 180 days, sealed"}


def test_hardened_node_passes_every_automatable_control():
    v = verdicts("debian12-hardened.txt", "gd-db1", dengbao_log_store=KEPT)
    expected = {c.id: PASS if c.automatable else MANUAL for c in CAT.scope("server")}
    assert PASS in expected.values() and MANUAL in expected.values()
    assert {cid: v[cid]["verdict"] for cid in expected} == expected, \
        {cid: v[cid]["findings"] for cid in expected if v[cid]["verdict"] != expected[cid]}
    assert all(v[cid]["evidence_required"] for cid, verdict in expected.items() if verdict == MANUAL)


def test_parameters_drive_the_thresholds():
    v = verdicts("debian12-hardened.txt", "gd-db1", dengbao_pass_min_len=12, dengbao_idle_timeout=300, dengbao_lock_deny=3)
    assert v["pw-quality"]["verdict"] == PARTIAL
    assert v["idle-timeout"]["verdict"] == PARTIAL  # TMOUT and ClientAlive (600) above 300; readonly still holds
    assert v["login-lockout"]["verdict"] == PARTIAL


def test_openeuler_noncompliant_findings():
    v = verdicts("openeuler-noncompliant.txt", "gd-db1")
    f = {k: {s["label"]: s for s in r["findings"]} for k, r in v.items()}
    assert v["ssh-remote-mgmt"]["verdict"] == PARTIAL and "21,23" in f["ssh-remote-mgmt"]["nothing on 21/23/69/512-514 明文端口未监听"]["detail"]
    assert v["minimal-install"]["verdict"] == FAIL
    assert "vsftpd" in v["minimal-install"]["findings"][0]["detail"]
    assert v["high-risk-ports"]["verdict"] == FAIL and "111" in v["high-risk-ports"]["findings"][0]["detail"]
    assert v["no-empty-password"]["verdict"] == FAIL  # guest has no password, toor is a second UID 0
    assert v["login-lockout"]["verdict"] == PARTIAL  # faillock present (system-auth) but deny=10, unlock 60, no root
    assert f["login-lockout"]["deny ≤ 5"]["detail"] == "deny=10"
    assert v["pw-quality"]["verdict"] == PARTIAL and f["pw-quality"]["minlen ≥ 8"]["detail"] == "minlen=6"
    assert v["pw-history"]["verdict"] == FAIL and v["pw-history"]["findings"][0]["detail"] == "remember=3"
    assert v["ssh-strong-crypto"]["verdict"] == FAIL and "aes128-cbc" in v["ssh-strong-crypto"]["findings"][0]["detail"]
    assert v["log-forwarding"]["verdict"] == PARTIAL  # forwards, but not to the province
    assert v["log-retention"]["findings"][0]["detail"] == "28 days"
    assert v["file-permissions"]["verdict"] == PARTIAL
    assert v["audit-protection"]["verdict"] == PARTIAL


def test_evidence_names_command_excerpt_and_time():
    v = verdicts("debian12-lab-fresh.txt", "huadu-srv1")
    ev = v["ssh-root-login"]["evidence"]
    assert ev["command"].startswith("sshd -T") and "permitrootlogin without-password" in ev["excerpt"]
    assert ev["timestamp"] == "2026-11-23T00:00:00+00:00"


def test_top_log_host_is_not_applicable_for_forwarding():
    v = verdicts("debian12-hardened.txt", "bu-mon1")
    assert v["log-forwarding"]["verdict"] == NA and v["time-sync"]["verdict"] == NA
    assert "top" in v["time-sync"]["evidence"]["excerpt"]


def test_log_verdicts_rest_on_the_transport_and_on_the_log_hosts_store():
    hardened = (FIX / "debian12-hardened.txt").read_text()
    udp = hardened.replace(next(ln for ln in hardened.splitlines() if 'target="10.254.44.15"' in ln),
                           '*.* action(type="omfwd" target="10.254.44.15" port="514" protocol="udp")')
    params = {**host_params(INV, "gd-db1"), "dengbao_log_store": KEPT}
    v = {r["id"]: r for r in audit_server(CAT, params, udp, "2026-11-23T00:00:00+00:00")}
    assert v["log-forwarding"]["verdict"] == PARTIAL  # forwards, but neither authenticated nor queued
    assert {f["label"] for f in v["log-forwarding"]["findings"] if not f["ok"]} == {
        "RELP over TLS, log host's certificate checked 可靠加密传输并认证日志服务器", "disk-assisted queue kept across restarts 磁盘队列防丢失"}
    # the local files alone never make log retention 符合: the log host's store must keep this host's logs
    for store in (None, {"host": "gd-mon1", "ok": False, "detail": "no file for gd-db1 in /var/log/remote"}):
        v = verdicts("debian12-hardened.txt", "gd-db1", **({"dengbao_log_store": store} if store else {}))
        assert v["log-retention"]["verdict"] == PARTIAL
        assert not v["log-retention"]["findings"][-1]["ok"]


def test_a_log_hosts_store_is_checked_for_rotation_and_seal():
    from jinbao_netops.security import logstore

    base = (FIX / "debian12-hardened.txt").read_text()
    good = "\n".join(logstore.render_logrotate({"dengbao_log_retention_days": 180}).splitlines()[1:])
    facts = f"{hostchecks.MARK}logstore\n{good}\nseal installed\nsource gd-db1\nsource huadu-srv1\n"
    params = {**host_params(INV, "gd-mon1"), "dengbao_log_senders": ["gd-db1", "huadu-srv1"], "dengbao_log_store": KEPT}

    def retention(text):
        return {r["id"]: r for r in audit_server(CAT, params, base + text, "2026-11-23T00:00:00+00:00")}["log-retention"]

    assert retention(facts)["verdict"] == PASS
    r = retention(facts.replace("source huadu-srv1\n", "").replace("rotate 180", "rotate 30").replace("seal installed\n", ""))
    bad = {f["label"]: f["detail"] for f in r["findings"] if not f["ok"]}
    assert r["verdict"] == PARTIAL and set(bad) == {"log store keeps ≥ 180 days, compressed 日志服务器保存期限",
                                                    "hash chain sealed at each rotation 防篡改哈希链"}
    assert bad["log store keeps ≥ 180 days, compressed 日志服务器保存期限"].startswith("30 days")
    assert "1/2 senders" in bad["log store keeps ≥ 180 days, compressed 日志服务器保存期限"]
