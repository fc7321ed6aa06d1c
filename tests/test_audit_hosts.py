"""Server checks on collected outputs: a fresh lab node, a hardened node, a non-compliant openEuler host."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from jinbao_netops import inventory
from jinbao_netops.security import admits, hostchecks, records
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
NO_RECORDS = records.from_catalogue({"assets": {}}, [], "backup catalogue test")


def verdicts(fixture: str, host: str = "gd-db1", **override) -> dict[str, dict]:
    """The fixture's host output; the backup records hold a fresh, verified, off-site copy of the host."""
    params = {**host_params(INV, host), **override}
    now = time.time()
    backup = {"device": host, "last_ok": True, "last_success": now - 3600, "snapshot": "a1b2c3d4", "offsite": True,
              "dr_store": "gd-dr-bak1", "verified_at": now - 600, "verify_ok": True}
    rec = records.from_catalogue({"assets": {f"{host}:files": backup}}, [], "backup catalogue test", now)
    rows = audit_server(CAT, params, (FIX / fixture).read_text(), "2026-11-23T00:00:00+00:00", rec, host)
    return {r["id"]: r for r in rows}


def test_script_is_read_only():
    script = hostchecks.script(host_params(INV, "gd-db1"))
    for forbidden in (">", "rm ", "tee", "sed -i", "chmod", "systemctl start", "systemctl restart", "auditctl -e", "nft add", "nft -f"):
        body = script.replace("2>&1", "").replace("2>/dev/null", "").replace("->", "")
        assert forbidden not in body, forbidden


def test_fresh_lab_node_fails_the_expected_controls():
    v = verdicts("debian12-lab-fresh.txt", "huadu-srv1")
    expected_bad = {"pw-quality", "pw-history", "pw-aging", "login-lockout", "idle-timeout", "ssh-strong-crypto", "ssh-root-login", "ssh-session",
                    "separation-of-duties", "umask", "file-permissions", "audit-rules", "audit-daemon", "log-forwarding",
                    "log-retention", "time-sync", "mgmt-access", "kernel-params",
                    "core-dumps", "su-restricted", "suid-binaries", "system-accounts", "shm-noexec", "cron-permissions", "ssh-client"}
    bad = {k for k, r in v.items() if r["verdict"] in (FAIL, PARTIAL)}
    assert bad == expected_bad
    assert {k for k, r in v.items() if r["verdict"] == PASS} == {"no-empty-password", "ssh-remote-mgmt", "minimal-install",
                                                                 "high-risk-ports", "audit-protection",
                                                                 "data-backup", "data-offsite"}  # from the backup records
    # the container cannot run auditd; the evidence says so instead of pretending
    assert "container" in " ".join(f["detail"] for f in v["audit-daemon"]["findings"])


KEPT = {"host": "gd-mon1", "ok": True, "detail": "/var/log/remote/gd-db1.log kept 180 ≥ 180 days, sealed"}


def test_hardened_node_passes_every_automatable_control():
    v = verdicts("debian12-hardened.txt", "gd-db1", dengbao_log_store=KEPT)
    expected = {c.id: PASS if c.automatable else MANUAL for c in CAT.scope("server")}
    # the automation account keeps unrestricted root for Ansible: 三权分立 is partly met, and says why
    expected["separation-of-duties"] = PARTIAL
    # without the audit engine's DR view (the inventory's pairs) the host has no database to judge: test_audit_dr.py
    expected["data-realtime"] = expected["hot-redundancy"] = NA
    failed = [s for s in v["separation-of-duties"]["findings"] if not s["ok"]]
    assert [s["label"] for s in failed] == ["automation account netops bounded 自动化账户权限受限"], failed
    assert "(ALL) NOPASSWD: ALL" in failed[0]["detail"] and "README" in failed[0]["detail"]
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
    v = {r["id"]: r for r in audit_server(CAT, params, udp, "2026-11-23T00:00:00+00:00", NO_RECORDS, "gd-db1")}
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
        return {r["id"]: r for r in audit_server(CAT, params, base + text, "2026-11-23T00:00:00+00:00", NO_RECORDS, "gd-mon1")}["log-retention"]

    assert retention(facts)["verdict"] == PASS
    r = retention(facts.replace("source huadu-srv1\n", "").replace("rotate 180", "rotate 30").replace("seal installed\n", ""))
    bad = {f["label"]: f["detail"] for f in r["findings"] if not f["ok"]}
    assert r["verdict"] == PARTIAL and set(bad) == {"log store keeps ≥ 180 days, compressed 日志服务器保存期限",
                                                    "hash chain sealed at each rotation 防篡改哈希链"}
    assert bad["log store keeps ≥ 180 days, compressed 日志服务器保存期限"].startswith("30 days")
    assert "1/2 senders" in bad["log store keeps ≥ 180 days, compressed 日志服务器保存期限"]


@pytest.mark.parametrize("fixture", ["debian12-hardened.txt", "debian12-lab-fresh.txt", "openeuler-noncompliant.txt"])
@pytest.mark.parametrize("host", ["bu-mon1", "gd-db1"])
def test_not_applicable_only_with_its_reason(fixture, host):
    """A server control is 不适用 only where NA_REASONS says why (the top of the log or time chain; for the DR
    controls, why the host is not their subject), and then the reason is the evidence."""
    params = host_params(INV, host)
    for cid, r in verdicts(fixture, host).items():
        if r["verdict"] == NA:
            reason = hostchecks.NA_REASONS.get(cid)
            assert reason, cid
            assert r["evidence"]["excerpt"] == (reason(params) if callable(reason) else reason), cid


def test_password_aging_reads_each_account_not_only_the_defaults():
    v = verdicts("debian12-hardened.txt", "gd-db1")
    subs = {s["label"]: s for s in v["pw-aging"]["findings"]}
    assert subs["zhangsan: max ≤ 90, min ≥ 1, warn ≥ 7 days 口令有效期"]["ok"]
    # key-only and locked accounts have nothing to age; named, not judged; nologin accounts not listed
    assert "netops(locked)" in v["pw-aging"]["findings"][0]["detail"] and "daemon" not in v["pw-aging"]["findings"][0]["detail"]
    o = verdicts("openeuler-noncompliant.txt", "gd-db1")
    bad = {s["label"].split(":")[0]: s for s in o["pw-aging"]["findings"] if not s["ok"]}
    assert set(bad) == {"login.defs defaults for new accounts ≤ 90/≥ 1/≥ 7 days 新账户默认值", "root", "ops1"}
    assert bad["ops1"]["detail"] == "min=0 max=99999 warn=7"


def test_an_account_left_at_never_expires_fails_even_with_good_defaults():
    text = (FIX / "debian12-hardened.txt").read_text().replace("zhangsan password 1 90 7", "zhangsan password 0 99999 7")
    params = host_params(INV, "gd-db1")
    rows = {r["id"]: r for r in audit_server(CAT, params, text, "2026-11-23T00:00:00+00:00", NO_RECORDS, "gd-db1")}
    assert rows["pw-aging"]["verdict"] == PARTIAL
    assert [s["detail"] for s in rows["pw-aging"]["findings"] if not s["ok"]] == ["min=0 max=99999 warn=7"]


def _audit_rules(facts: dict) -> dict[str, dict]:
    subs, _ = hostchecks.CHECKS["audit-rules"](facts, host_params(INV, "gd-db1"))
    return {s["label"].split()[0]: s for s in subs}


def test_audit_rules_need_both_abis_and_immutability():
    hardened = hostchecks.split((FIX / "debian12-hardened.txt").read_text())
    b64_only = "\n".join(ln for ln in hardened["audit_rules"].splitlines() if "arch=b32" not in ln and ln != "-e 2")
    container = {"virt": "systemd-nspawn\n", "auditctl": "Error sending status request (Operation not permitted)\n",
                 "auditctl_rules": "You must be root to run this program.\n"}
    subs = _audit_rules({**hardened, **container, "audit_rules": b64_only})
    assert not subs["perm_mod"]["ok"] and "chmod" in subs["perm_mod"]["detail"]
    assert not subs["rules"]["ok"]  # -e 2 gone
    assert subs["identity"]["ok"] and subs["sudoers"]["ok"]  # watches have no ABI
    assert "container" in subs["identity"]["detail"]  # read from the file, and says why


def test_loaded_rules_win_over_the_rules_file_where_kernel_audit_runs():
    hardened = hostchecks.split((FIX / "debian12-hardened.txt").read_text())
    loaded = [ln for ln in hardened["auditctl_rules"].splitlines() if "key=delete" not in ln]
    facts = {**hardened, "auditctl_rules": "\n".join(loaded) + "\n"}
    subs = _audit_rules(facts)
    assert not subs["delete"]["ok"] and "auditctl -l" in subs["delete"]["detail"]  # in the file, not in the kernel
    assert subs["perm_mod"]["ok"] and subs["rules"]["ok"]  # enabled 2: immutable


def test_kernel_audit_with_no_rules_loaded_fails_whatever_the_file_says():
    hardened = hostchecks.split((FIX / "debian12-hardened.txt").read_text())
    subs = _audit_rules({**hardened, "auditctl": "enabled 1\n", "auditctl_rules": "No rules\n"})
    assert not any(s["ok"] for s in subs.values())


def test_kernel_params_are_read_from_the_running_kernel_and_not_applicable_only_in_a_container():
    hardened = hostchecks.split((FIX / "debian12-hardened.txt").read_text())
    params = host_params(INV, "gd-db1")
    off = hardened["sysctl"].replace("kernel.randomize_va_space = 2", "kernel.randomize_va_space = 0")
    subs, _ = hostchecks.CHECKS["kernel-params"]({**hardened, "sysctl": off}, params)
    assert hostchecks.verdict(subs) == PARTIAL and subs[0]["detail"] == "kernel.randomize_va_space=0"  # file right, kernel not
    container = {**hardened, "virt": "systemd-nspawn\n", "sysctl": "sysctl: permission denied on key ...\n"}
    assert hostchecks.CHECKS["kernel-params"](container, params)[0] is None
    v = verdicts("debian12-lab-fresh.txt", "huadu-srv1")  # a container without the file: the file is ours to ship
    assert v["kernel-params"]["verdict"] == FAIL


NFT = """table inet dengbao {
	chain input {
		type filter hook input priority filter; policy %s;
%s
	}
}
"""
BASE = 'iif "lo" accept\nct state established,related accept\nmeta l4proto { icmp, ipv6-icmp } accept\n'


@pytest.mark.parametrize("policy, rules, bad", [
    ("drop", BASE + "ip saddr 10.254.0.0/16 tcp dport { 22, 5432 } accept\nip saddr 10.254.0.0/16 udp dport 161 accept", set()),
    ("accept", "ip saddr != 10.254.0.0/16 tcp dport 22 drop\nip saddr != 10.254.0.0/16 udp dport 161 drop", {"default"}),
    ("drop", BASE + "tcp dport 22 accept\nip saddr 10.254.0.0/16 udp dport 161 accept", {"22"}),
    ("drop", BASE + "ip saddr 0.0.0.0/0 accept\nip saddr 10.254.0.0/16 tcp dport 22 accept", {"22", "161"}),
    ("drop", BASE + "ip saddr 10.254.0.0/16 tcp dport 22 accept", {"161"}),  # not accepted at all: SNMP cannot be managed
    ("accept", "", {"default", "22", "161"}),
])
def test_mgmt_access_wants_default_deny_and_management_only_ports(policy, rules, bad):
    subs, _ = hostchecks.CHECKS["mgmt-access"]({"nft": NFT % (policy, rules)}, host_params(INV, "gd-db1"))
    failed = {("default" if "default" in s["label"] else s["label"].split()[1]) for s in subs if not s["ok"]}
    assert failed == bad, subs


LOG_ADMIT = [{"proto": "tcp", "port": 2514, "sources": ["10.254.44.13", "10.254.44.14"], "what": "log senders"},
             {"proto": "udp", "port": 514, "sources": ["10.254.44.11"], "what": "log senders"}]
MGMT = "ip saddr 10.254.0.0/16 tcp dport 22 accept\nip saddr 10.254.0.0/16 udp dport 161 accept\n"


@pytest.mark.parametrize("rules, bad", [
    # as nft lists the role's rules back: a set of addresses, and one address without braces
    ("ip saddr { 10.254.44.14, 10.254.44.13 } tcp dport 2514 accept\nip saddr 10.254.44.11 udp dport 514 accept", set()),
    ("ip saddr 10.254.0.0/16 tcp dport 2514 accept\nip saddr 10.254.44.11 udp dport 514 accept", {"2514/tcp"}),  # too wide
    ("ip saddr { 10.254.44.13, 10.254.44.14, 10.254.9.9 } tcp dport 2514 accept\nip saddr 10.254.44.11 udp dport 514 accept",
     {"2514/tcp"}),  # not a sender of this log host
    ("ip saddr { 10.254.44.13, 10.254.44.14 } tcp dport 2514 accept\nudp dport 514 accept", {"514/udp"}),  # from anyone
    ("ip saddr { 10.254.44.13, 10.254.44.14 } udp dport 2514 accept\nip saddr 10.254.44.11 udp dport 514 accept",
     {"2514/tcp"}),  # RELP is TCP
    ("ip saddr != 10.254.44.11 udp dport 514 accept", {"2514/tcp", "514/udp"}),  # not accepted; a negation admits the world
])
def test_a_log_hosts_log_ports_are_open_to_its_own_senders_only(rules, bad):
    params = {**host_params(INV, "gd-mon1"), "dengbao_peer_admit": LOG_ADMIT}
    subs, _ = hostchecks.CHECKS["mgmt-access"]({"nft": NFT % ("drop", BASE + MGMT + rules)}, params)
    failed = {s["label"].split()[1] for s in subs if not s["ok"]}
    assert failed == bad, subs


@pytest.mark.parametrize("extra, bad", [
    ("", set()),
    # the port opened to an address neither admit names: both admits' checks fail
    ("ip saddr 10.44.9.9 tcp dport 5432 accept\n", {"replication", "zone"}),
])
def test_a_port_two_admits_share_is_open_to_both_and_no_one_else(extra, bad):
    """gd-db1's PostgreSQL: its standby (replication) and, through the boundary firewall, the 12333 portal (a zone
    flow) — each admit's rule opens 5432 to its own source, which the other admit's check must not count against it."""
    admit = admits.admitted(INV, "gd-db1")
    assert {a["what"].split()[0] for a in admit} == {"replication", "zone"}
    # (and its MariaDB, the replica of panyu-db1's: 3306 from the county primary, a replication admit of its own)
    rules = BASE + MGMT + "ip saddr 10.254.0.0/16 tcp dport 5432 accept\nip saddr 10.44.1.11 tcp dport 5432 accept\n" \
        "ip saddr 10.44.3.10 tcp dport 5432 accept\nip saddr 10.254.0.0/16 tcp dport 3306 accept\n" \
        "ip saddr 10.44.17.10 tcp dport 3306 accept\n" + extra
    subs, _ = hostchecks.CHECKS["mgmt-access"]({"nft": NFT % ("drop", rules)}, {**host_params(INV, "gd-db1"),
                                                                                 "dengbao_peer_admit": admit})
    failed = {s["label"].split(" only from its ")[1].split()[1] for s in subs if not s["ok"] and "only from its" in s["label"]}
    assert failed == bad, subs


# ------------------------------------------------------------------ the system role's controls (dengbao_system)
def _check(cid: str, fixture: str, host: str = "gd-db1", **sections) -> tuple[str, dict]:
    """One check on a fixture's sections, some replaced: (verdict, {label: finding})."""
    facts = {**hostchecks.split((FIX / fixture).read_text()), **sections}
    subs, _ = hostchecks.CHECKS[cid](facts, host_params(INV, host))
    return hostchecks.verdict(subs), {s["label"]: s for s in subs}


def test_core_dumps_read_sessions_services_running_processes_and_the_kernel():
    verdict, subs = _check("core-dumps", "debian12-lab-fresh.txt", "huadu-srv1")
    assert verdict == PARTIAL  # only the kernel's suid_dumpable (the host's, said so) is right on a fresh node
    assert subs["login sessions: hard core limit 0 会话禁止核心转储"]["detail"] == "sh: unlimited"  # the session's shell, above sudo
    assert subs["services: DefaultLimitCORE=0 服务禁止核心转储"]["detail"] == "DefaultLimitCORE=infinity"
    assert "sshd" in subs["no running process may dump core 运行中进程无核心转储"]["detail"]
    assert "container" in subs["fs.suid_dumpable=0 (setuid programs) 特权程序不转储"]["detail"]
    assert _check("core-dumps", "debian12-hardened.txt")[0] == PASS
    # configured, but a daemon started before the limit keeps its own: not 符合 until it has none
    verdict, subs = _check("core-dumps", "debian12-hardened.txt", core="session 0 sh\nDefaultLimitCORE=0\nsuid_dumpable 0\nproc 612 snmpd unlimited\n")
    assert verdict == PARTIAL and subs["no running process may dump core 运行中进程无核心转储"]["detail"].endswith(": 612 snmpd unlimited")
    assert _check("core-dumps", "debian12-hardened.txt", core="session 0 sh\nDefaultLimitCORE=0\nsuid_dumpable 2\n")[0] == PARTIAL


def test_su_is_for_the_groups_allowed_members_only():
    assert _check("su-restricted", "debian12-lab-fresh.txt", "huadu-srv1")[0] == FAIL
    assert _check("su-restricted", "debian12-hardened.txt")[0] == PASS
    hardened = hostchecks.split((FIX / "debian12-hardened.txt").read_text())["su"]
    verdict, subs = _check("su-restricted", "debian12-hardened.txt", su=hardened.replace("dengbao-su:x:996:", "dengbao-su:x:996:zhangsan"))
    assert verdict == PARTIAL and subs["only nobody may su 授权成员"]["detail"] == "dengbao-su: zhangsan"
    assert _check("su-restricted", "debian12-hardened.txt", su=hardened + "primary zhangsan\n")[0] == PARTIAL  # primary group counts
    # pam_wheel that lets the group in without a password, or denies only the group, restricts nobody
    for line in ("auth sufficient pam_wheel.so trust use_uid group=dengbao-su", "auth required pam_wheel.so deny group=dengbao-su"):
        text = hardened.replace("auth       required   pam_wheel.so use_uid group=dengbao-su", line)
        assert _check("su-restricted", "debian12-hardened.txt", su=text)[0] == FAIL, line


def test_suid_bits_on_the_list_fail_and_a_missing_section_is_no_evidence():
    verdict, subs = _check("suid-binaries", "debian12-lab-fresh.txt", "huadu-srv1")
    assert verdict == FAIL and "/usr/bin/chfn 4755" in subs["no setuid/setgid bit on programs a server does not need 多余程序无特权位"]["detail"]
    assert _check("suid-binaries", "debian12-hardened.txt")[0] == PASS
    facts = hostchecks.split((FIX / "debian12-hardened.txt").read_text())
    del facts["suid"]
    assert hostchecks.verdict(hostchecks.suid_binaries(facts, host_params(INV, "gd-db1"))[0]) == FAIL


def test_system_accounts_without_login_and_locked():
    verdict, subs = _check("system-accounts", "debian12-lab-fresh.txt", "huadu-srv1")
    assert verdict == PARTIAL  # every password locked already; postgres keeps a login shell
    assert subs["system accounts have no login shell 系统账户禁止登录"]["detail"] == "postgres(/bin/bash)"
    assert _check("system-accounts", "debian12-hardened.txt")[0] == PASS
    verdict, subs = _check("system-accounts", "debian12-hardened.txt", sysaccounts="root locked /bin/bash\nnetops locked /bin/bash\n"
                           "daemon locked /usr/sbin/nologin\ngames password /usr/sbin/nologin\nlp empty -\n")
    assert verdict == FAIL  # root and the automation account are not judged here; a blank shell is /bin/sh
    assert subs["system accounts' passwords locked 系统账户口令锁定"]["detail"] == "games(password), lp(empty)"
    assert _check("system-accounts", "debian12-hardened.txt", sysaccounts="")[0] == FAIL  # nothing read proves nothing


def test_dev_shm_now_and_at_boot():
    assert _check("shm-noexec", "debian12-lab-fresh.txt", "huadu-srv1")[0] == FAIL
    assert _check("shm-noexec", "debian12-hardened.txt")[0] == PASS
    verdict, subs = _check("shm-noexec", "debian12-hardened.txt", shm="mount rw,nosuid,nodev,noexec,relatime\n")
    assert verdict == PARTIAL and subs["the same at boot (/etc/fstab) 开机保持"]["detail"] == "no /dev/shm line"
    assert _check("shm-noexec", "debian12-hardened.txt", shm="mount rw,nosuid,nodev,relatime\n"
                  "fstab tmpfs /dev/shm tmpfs defaults,nodev,nosuid,noexec 0 0\n")[0] == PARTIAL


def test_cron_directories_closed_and_no_cron_is_nothing_to_protect():
    verdict, subs = _check("cron-permissions", "debian12-lab-fresh.txt", "huadu-srv1")
    assert verdict == FAIL and "/etc/cron.d 755 root:root" in subs["cron directories ≤ 700 root 计划任务目录权限"]["detail"]
    assert _check("cron-permissions", "debian12-hardened.txt")[0] == PASS
    assert _check("cron-permissions", "debian12-hardened.txt", cron="")[0] == PASS  # no cron installed
    assert _check("cron-permissions", "debian12-hardened.txt", cron="700 www-data:root /etc/cron.d\n")[0] == FAIL
    facts = hostchecks.split((FIX / "debian12-hardened.txt").read_text())
    del facts["cron"]
    assert hostchecks.verdict(hostchecks.cron_permissions(facts, host_params(INV, "gd-db1"))[0]) == FAIL


def test_ssh_client_effective_settings():
    verdict, subs = _check("ssh-client", "debian12-lab-fresh.txt", "huadu-srv1")
    assert verdict == PARTIAL  # Debian's client offers SHA-1 MACs; forwarding is off and known_hosts hashed by default
    assert "macs:hmac-sha1" in subs["no weak SSH algorithms 无弱加密算法"]["detail"]
    assert _check("ssh-client", "debian12-hardened.txt")[0] == PASS
    hardened = hostchecks.split((FIX / "debian12-hardened.txt").read_text())["ssh_client"]
    verdict, subs = _check("ssh-client", "debian12-hardened.txt", ssh_client=hardened.replace("forwardagent no", "forwardagent yes"))
    assert verdict == PARTIAL and not subs["forwardagent no"]["ok"]
