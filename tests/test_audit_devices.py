"""Network-device rule packs on realistic running configs: compliant ones pass, every planted violation is flagged."""
from __future__ import annotations

from pathlib import Path

import pytest

from jinbao_netops import inventory
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


def run(platform: str, fixture: str) -> dict[str, dict]:
    rows = audit_network(CAT, platform, PARAMS, (FIX / fixture).read_text(), "show", "2026-11-23T00:00:00+00:00")
    return {r["id"]: r for r in rows}


def failed_labels(v: dict) -> set[str]:
    return {f"{cid}:{f['label']}" for cid, r in v.items() for f in r["findings"] if not f["ok"]}


# FRR leaves login, SNMP, time and services to its Linux host (audited there with the server controls)
FRR_ON_HOST = {"net-aaa-lockout", "net-encrypted-transport", "net-ntp", "net-snmpv3", "net-unused-services"}


@pytest.mark.parametrize("platform,fixture,on_host", [("huawei_vrp", "vrp-compliant.cfg", set()),
                                                      ("hp_comware", "comware-compliant.cfg", set()),
                                                      ("cisco_ios", "ios-compliant.cfg", set()),
                                                      ("frr", "frr-compliant.cfg", FRR_ON_HOST)])
def test_compliant_configs_pass(platform, fixture, on_host):
    v = run(platform, fixture)
    for cid, r in v.items():
        assert r["verdict"] in (PASS, NA, MANUAL), (cid, r["findings"])
    assert v["net-boundary-acl"]["verdict"] == MANUAL
    na = {cid for cid, r in v.items() if r["verdict"] == NA}
    assert na == on_host
    assert all("Linux host" in v[cid]["evidence"]["excerpt"] for cid in na)


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
    ("frr", "frr-noncompliant.cfg"): {
        "net-ssh-only:no vty password (telnet vty login) 无telnet口令", "net-ssh-only:no 'no login' on vty",
        "net-idle-timeout:line vty exec-timeout ≤ limit", "net-syslog:log syslog", "net-banner:banner motd",
        "net-vty-acl:line vty access-class"},
}


@pytest.mark.parametrize("platform,fixture", sorted(PLANTED))
def test_every_planted_violation_is_flagged(platform, fixture):
    v = run(platform, fixture)
    assert failed_labels(v) == PLANTED[(platform, fixture)]


def test_fresh_lab_frr_router_fails_the_expected_rules():
    v = run("frr", "frr-lab-fresh.cfg")
    assert {cid for cid, r in v.items() if r["verdict"] == FAIL} == {"net-idle-timeout", "net-banner", "net-vty-acl"}
    assert v["net-syslog"]["verdict"] == PASS and v["net-snmpv3"]["verdict"] == NA
    assert "Linux host" in v["net-snmpv3"]["evidence"]["excerpt"]


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
