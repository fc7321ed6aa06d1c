"""Network-device rule packs on realistic running configs: compliant ones pass, every planted violation is flagged."""
from __future__ import annotations

from pathlib import Path

import pytest

from jinbao_netops import inventory
from jinbao_netops.inventory.platforms import PLATFORMS
from jinbao_netops.security.audit import audit_network
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
CAT = load_catalogue()
PARAMS = host_params(inventory.load(inventory.DEFAULT_INVENTORY), "gd-r1")


def run(platform: str, fixture: str, host: str | None = None) -> dict[str, dict]:
    """The device's config from ``fixture``; a platform that leaves controls to its Linux host gets that
    host's collected state from ``host`` (an FRR router's sshd, snmpd, chrony and PAM)."""
    rows = audit_network(CAT, platform, PARAMS, (FIX / fixture).read_text(), "show", "2026-11-23T00:00:00+00:00",
                         (FIX / host).read_text() if host else "")
    return {r["id"]: r for r in rows}


def failed_labels(v: dict) -> set[str]:
    return {f"{cid}:{f['label']}" for cid, r in v.items() for f in r["findings"] if not f["ok"]}


@pytest.mark.parametrize("platform,fixture,host", [("huawei_vrp", "vrp-compliant.cfg", None),
                                                   ("hp_comware", "comware-compliant.cfg", None),
                                                   ("cisco_ios", "ios-compliant.cfg", None),
                                                   ("cisco_asa", "asa-compliant.cfg", None),
                                                   ("frr", "frr-compliant.cfg", "frr-host-hardened.txt")])
def test_compliant_configs_pass(platform, fixture, host):
    v = run(platform, fixture, host)
    for cid, r in v.items():
        assert r["verdict"] in (PASS, MANUAL), (cid, r["findings"])
    assert v["net-boundary-acl"]["verdict"] == MANUAL


NETWORK_PLATFORMS = sorted(p for p, info in PLATFORMS.items() if info.kind == "network")


@pytest.mark.parametrize("platform", NETWORK_PLATFORMS)
def test_no_not_applicable_where_a_check_exists(platform):
    """Every automatable network control of the catalogue has a check on every network platform (on
    its config or, for a router on Linux, on its host), so none may come back 不适用 — whatever the
    device holds: nothing, or a host whose collection printed nothing."""
    for host in ("", "@@@dengbao sshd\n"):
        for cid, r in run_text(platform, "", host).items():
            if r["automatable"]:
                assert r["verdict"] != NA, (platform, cid, r["evidence"]["excerpt"])


def run_text(platform: str, config: str, host: str) -> dict[str, dict]:
    return {r["id"]: r for r in audit_network(CAT, platform, PARAMS, config, "show", "t", host)}


def test_not_applicable_carries_its_reason():
    """The one 不适用 a router can get: the top of the time chain (no upstream configured), with the reason."""
    top = {**PARAMS, "dengbao_ntp_server": ""}
    rows = {r["id"]: r for r in audit_network(CAT, "frr", top, (FIX / "frr-compliant.cfg").read_text(), "show", "t",
                                              (FIX / "frr-host-hardened.txt").read_text())}
    assert rows["net-ntp"]["verdict"] == NA and "最上级时间源" in rows["net-ntp"]["evidence"]["excerpt"]
    assert [cid for cid, r in rows.items() if r["verdict"] == NA] == ["net-ntp"]


PLANTED = {
    ("huawei_vrp", "vrp-noncompliant.cfg"): {
        "net-ssh-only:telnet server off 关闭telnet", "net-ssh-only:VTY protocol inbound ssh",
        "net-aaa-lockout:VTY authentication-mode aaa", "net-aaa-lockout:local-aaa-user wrong-password lockout 登录失败锁定",
        "net-idle-timeout:VTY idle-timeout ≤ limit", "net-snmpv3:no snmp-agent community 无团体名",
        "net-snmpv3:snmp-agent sys-info version v3", "net-syslog:info-center loghost = log host 日志服务器", "net-ntp:ntp-service unicast-server",
        "net-banner:header login", "net-vty-acl:VTY acl inbound", "net-unused-services:http server off",
        "net-unused-services:ftp server off", "net-encrypted-transport:SNMPv3 user with privacy 加密"},
    ("hp_comware", "comware-noncompliant.cfg"): {
        "net-ssh-only:ssh server enable", "net-ssh-only:telnet server off 关闭telnet", "net-ssh-only:line vty protocol inbound ssh",
        "net-aaa-lockout:line vty authentication-mode scheme", "net-aaa-lockout:password-control enable",
        "net-aaa-lockout:password-control login-attempt 登录失败锁定", "net-idle-timeout:line vty idle-timeout ≤ limit",
        "net-snmpv3:no snmp-agent community 无团体名", "net-snmpv3:snmp-agent sys-info version v3", "net-syslog:info-center loghost = log host 日志服务器",
        "net-ntp:ntp-service unicast-server", "net-banner:header login/motd", "net-vty-acl:ssh server acl",
        "net-unused-services:ip http off", "net-unused-services:ftp server off", "net-encrypted-transport:SNMPv3 user with privacy 加密"},
    ("cisco_ios", "ios-noncompliant.cfg"): {
        "net-ssh-only:ip ssh version 2", "net-ssh-only:line vty transport input ssh", "net-aaa-lockout:aaa new-model",
        "net-aaa-lockout:login block-for / max-fail 登录失败锁定", "net-idle-timeout:line vty exec-timeout ≤ limit",
        "net-idle-timeout:line con exec-timeout ≤ limit", "net-snmpv3:no snmp-server community 无团体名",
        "net-snmpv3:snmp-server group v3 priv", "net-syslog:logging host = log host 日志服务器", "net-ntp:ntp server", "net-banner:banner login/motd",
        "net-vty-acl:line vty access-class in", "net-unused-services:ip http server off",
        "net-unused-services:tcp/udp small servers off", "net-encrypted-transport:SNMPv3 priv group 加密"},
    ("cisco_asa", "asa-noncompliant.cfg"): {
        "net-ssh-only:ssh version 2", "net-ssh-only:no telnet access 关闭telnet",
        "net-aaa-lockout:aaa authentication ssh console LOCAL", "net-aaa-lockout:aaa local authentication attempts max-fail 登录失败锁定",
        "net-idle-timeout:ssh timeout ≤ limit", "net-idle-timeout:console timeout ≤ limit",
        "net-snmpv3:no snmp-server community 无团体名", "net-snmpv3:snmp-server group v3 priv", "net-syslog:logging host",
        "net-ntp:ntp server", "net-banner:banner login/motd", "net-vty-acl:no ssh from anywhere 不允许任意地址",
        "net-unused-services:http server (ASDM) off", "net-unused-services:tftp server off",
        "net-encrypted-transport:SNMPv3 priv group 加密"},
    ("frr", "frr-noncompliant.cfg"): {
        "net-ssh-only:no vty password (telnet vty login) 无telnet口令", "net-ssh-only:no 'no login' on vty",
        "net-idle-timeout:line vty exec-timeout ≤ limit", "net-syslog:log syslog", "net-vty-acl:line vty access-class"},
}


@pytest.mark.parametrize("platform,fixture", sorted(PLANTED))
def test_every_planted_violation_is_flagged(platform, fixture):
    v = run(platform, fixture, "frr-host-hardened.txt" if platform == "frr" else None)
    assert failed_labels(v) == PLANTED[(platform, fixture)]


def test_fresh_lab_frr_router_is_judged_on_its_host():
    """A fresh lab router: its config misses the VTY access list, and its Linux host runs snmpd with a v2c
    community and an auth-only user, chrony on the Debian pool, no faillock, no login banner, SHA-1 MACs in
    sshd. Its vty timeout is FRR's default (10 min, not printed): within the limit."""
    v = run("frr", "frr-lab-fresh.cfg", "frr-host-fresh.txt")
    assert {cid for cid, r in v.items() if r["verdict"] == FAIL} == {
        "net-banner", "net-vty-acl", "net-aaa-lockout", "net-encrypted-transport"}
    assert v["net-idle-timeout"]["verdict"] == PASS
    assert {cid for cid, r in v.items() if r["verdict"] == PARTIAL} == {"net-snmpv3", "net-ntp"}
    assert v["net-syslog"]["verdict"] == PASS and v["net-unused-services"]["verdict"] == PASS
    snmp = v["net-snmpv3"]
    assert {f["label"] for f in snmp["findings"] if not f["ok"]} == {"no v1/v2c community 无团体名",
                                                                     "SNMPv3 user with privacy (authPriv) 加密"}
    assert "ps -o args= -C snmpd" in snmp["evidence"]["command"] and "rocommunity <redacted>" in snmp["evidence"]["excerpt"]
    assert "chronyc -n sources" in v["net-ntp"]["evidence"]["command"]


def test_router_host_secrets_never_reach_the_report():
    """Were the host's cut to fail, the snmpd keys and communities are still redacted in the evidence."""
    host = (FIX / "frr-host-hardened.txt").read_text().replace(
        "createUser netops SHA-256 *** AES ***",
        'createUser netops SHA-256 "PLANTED-A" AES "PLANTED-P"\nrocommunity PLANTED-C 10.254.0.0/16\n'
        'trapsess -v3 -l authPriv -u netops -a SHA-256 -A "PLANTED A2" -x AES -X PLANTED-P2 10.254.44.15:162\n'
        'informsink 10.254.44.15:162 PLANTED-C2')
    rows = audit_network(CAT, "frr", PARAMS, (FIX / "frr-compliant.cfg").read_text(), "show", "t", host)
    assert "PLANTED" not in repr(rows)
    assert {r["id"]: r["verdict"] for r in rows}["net-snmpv3"] == PARTIAL


def test_partial_verdict_and_numbers():
    text = (FIX / "vrp-compliant.cfg").read_text().replace(" idle-timeout 10 0\n protocol inbound ssh\nuser-interface vty 16",
                                                           " idle-timeout 30 0\n protocol inbound ssh\nuser-interface vty 16")
    rows = {r["id"]: r for r in audit_network(CAT, "huawei_vrp", PARAMS, text, "display current-configuration", "t")}
    assert rows["net-idle-timeout"]["verdict"] == FAIL  # one of the VTY blocks is over the limit: the requirement fails
    text = (FIX / "vrp-compliant.cfg").read_text().replace("retry-time 5", "retry-time 8")
    rows = {r["id"]: r for r in audit_network(CAT, "huawei_vrp", PARAMS, text, "display current-configuration", "t")}
    assert rows["net-aaa-lockout"]["verdict"] == PARTIAL


def test_syslog_to_any_other_address_is_not_the_log_host():
    for platform, fixture, old in (("huawei_vrp", "vrp-compliant.cfg", "info-center loghost 10.254.44.15"),
                                   ("cisco_ios", "ios-compliant.cfg", "logging host 10.254.44.15")):
        text = (FIX / fixture).read_text()
        assert old in text
        rows = {r["id"]: r for r in audit_network(CAT, platform, PARAMS, text.replace(old, old.replace("44.15", "44.99")), "show", "t")}
        assert rows["net-syslog"]["verdict"] == FAIL, platform
    assert PARAMS["dengbao_log_host"] == "10.254.44.15"  # gd-r1's log host: the province's monitor


@pytest.mark.parametrize("vty, ok", [("line vty\n access-class netops-mgmt\nexit\n", True),  # FRR's default 10 min
                                     ("", True),                                             # no vty stanza at all
                                     ("line vty\n exec-timeout 30 0\nexit\n", False),
                                     ("line vty\n exec-timeout 5 0\nexit\n", True)])
def test_frr_vty_timeout_is_the_effective_one(vty, ok):
    # FRR prints the vty exec-timeout only when it differs from its default (10 min, within the limit):
    # a router hardened to 10 minutes shows none, and judging the printed line alone said 不符合
    from jinbao_netops.security import devicerules

    subs, _ = devicerules.evaluate("frr", "net-idle-timeout", f"hostname r1\n{vty}", PARAMS)
    assert [s["ok"] for s in subs] == [ok], subs
