"""The playbooks: lint-clean, syntax-valid, and their templates — rendered from the same parameters the
audit uses, for Debian and the RHEL family — satisfy the audit's checks."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import jinja2
import pytest
import yaml
from conftest import REPO, clean_env

from jinbao_netops.inventory import load
from jinbao_netops.security import hostchecks, logstore
from jinbao_netops.security.catalogue import PARAMS, PLAYBOOKS

ROLES = PLAYBOOKS / "roles"
LOG_ADMIT = logstore.admitted(load(None), "gd-mon1")  # a province log host: servers over RELP, network devices over UDP
BIN = Path(sys.executable).parent


def render(role: str, template: str, platform: str = "debian", **extra) -> str:
    params = {**yaml.safe_load(PARAMS.read_text()), **yaml.safe_load((ROLES / f"dengbao_params/vars/{platform}.yml").read_text()),
              "dengbao_log_host_eff": "10.254.44.15", "dengbao_ntp_server_eff": "10.254.44.15", **extra}
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(ROLES / role / "templates"), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True)
    return env.get_template(template).render(**params)


def tasks(role: str) -> list[dict]:
    return yaml.safe_load((ROLES / role / "tasks/main.yml").read_text())


AUTH_RULES = ["pw_quality", "login_lockout", "pw_history", "pw_aging", "umask", "idle_timeout", "file_permissions"]


def _script(role: str, rules: list[str], check_mode: bool = False, platform: str = "debian", **extra) -> str:
    """A one-task role's script (templates/<role with - for _>.sh.j2) as Ansible's template lookup renders it: the
    shared helpers from playbooks/templates, blocks trimmed, Ansible's quote (shlex.quote) and bool filters."""
    import shlex

    env = jinja2.Environment(loader=jinja2.FileSystemLoader([ROLES / role / "templates", PLAYBOOKS / "templates"]),
                             undefined=jinja2.StrictUndefined, trim_blocks=True)
    env.filters["quote"] = lambda v: shlex.quote(str(v))
    env.filters["bool"] = lambda v: v if isinstance(v, bool) else str(v).lower() in ("1", "true", "yes", "on")
    params = {**yaml.safe_load(PARAMS.read_text()), **yaml.safe_load((ROLES / f"dengbao_params/vars/{platform}.yml").read_text()), **extra}
    return env.get_template(f"{role.replace('_', '-')}.sh.j2").render(**params, **{f"_{role}_rules": rules}, ansible_check_mode=check_mode)


def _heredocs(script: str) -> dict[str, str]:
    """path → content of every `[VALIDATE=…] put PATH MODE … <<'CONF'` in a rendered script."""
    return dict(re.findall(r"^\t*(?:VALIDATE='[^']*' )?put (\S+) \d+[^\n]*<<'CONF'\n(.*?\n)CONF$", script, flags=re.M | re.S))


def test_ansible_lint_clean():
    r = subprocess.run(check=False, args=[str(BIN / "ansible-lint"), "deploy.yml", "harden.yml", "site.yml"], cwd=PLAYBOOKS, env=clean_env(),
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]


def test_site_runs_every_role_of_deploy_harden_and_logs_once_in_their_order():
    """site.yml (the main job's deploy + harden) is the three playbooks in one play: a role the others
    list is neither lost nor run twice, and each playbook's own order holds."""
    def roles(name: str) -> list[str]:
        (play,) = yaml.safe_load((PLAYBOOKS / name).read_text())
        return [r["role"] for r in play["roles"]]

    site = roles("site.yml")
    assert len(site) == len(set(site))
    deploy, harden, logs = (roles(p) for p in ("deploy.yml", "harden.yml", "logs.yml"))
    assert set(site) == set(deploy) | set(harden) | set(logs)
    assert site[:len(deploy)] == deploy
    assert [r for r in site if r in logs] == logs
    # then harden.yml's own order, less the roles deploy.yml has already run
    assert site[len(deploy):] == [r for r in harden if r not in deploy]


def test_syntax_check_and_every_rule_has_its_tag():
    r = subprocess.run(check=False, args=[str(BIN / "ansible-playbook"), "--syntax-check", "playbooks/deploy.yml", "playbooks/harden.yml",
                                                           "playbooks/site.yml"],
                       cwd=REPO, env=clean_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    r = subprocess.run(check=False, args=[str(BIN / "ansible-playbook"), "--list-tags", "playbooks/harden.yml"], cwd=REPO, env=clean_env(),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    from jinbao_netops.security.catalogue import load_catalogue

    from jinbao_netops.security import records

    # no-empty-password is reported for a person to decide, never changed by a playbook; the backup
    # controls are met by the backup jobs (playbooks/backup.yml, netops backup), the real-time replica and
    # hot standby by netops dr setup, not by hardening
    elsewhere = {*records.CHECKS, "data-realtime", "hot-redundancy"}
    applied = [c for c in load_catalogue().scope("server")
               if c.automatable and c.id != "no-empty-password" and c.id not in elsewhere]
    assert applied
    for c in applied:
        assert c.tag in r.stdout, c.tag
        assert c.tag in c.fix.replace("-", "_") or c.tag.replace("rule_", "") in c.fix.replace("-", "_"), c.id


def test_rhel_family_uses_authselect_and_its_own_paths():
    for plat in ("openeuler", "kylin"):
        v = yaml.safe_load((ROLES / f"dengbao_params/vars/{plat}.yml").read_text())
        assert v["dengbao_pam_method"] == "authselect" and v["dengbao_ssh_service"] == "sshd"
        assert v["dengbao_chrony_conf"] == "/etc/chrony.conf" and v["dengbao_chrony_service"] == "chronyd"
    for plat in ("openeuler", "kylin"):
        script = _script("dengbao_auth", AUTH_RULES, platform=plat)
        assert "authselect select sssd with-faillock with-pwhistory --force" in script and "/etc/pam.d/common-" not in script
        assert _heredocs(script)["/etc/security/pwhistory.conf"] == "remember = 5\nenforce_for_root\n"
    # nothing compares VERSION_ID numerically (Kylin's is not a number)
    for f in ROLES.rglob("*.yml"):
        assert "ansible_distribution_version" not in f.read_text() and "VERSION_ID" not in f.read_text(), f


def _facts_from_rendered(platform: str) -> dict:
    """What the audit would collect from a host carrying the rendered files."""
    files = _heredocs(_script("dengbao_auth", AUTH_RULES, platform=platform))
    auth, password = render("dengbao_auth", "common-auth.j2"), render("dengbao_auth", "common-password.j2")
    pam = "".join(f"/etc/pam.d/common-auth:{ln}\n" for ln in auth.splitlines() if ln and not ln.startswith("#"))
    pam += "".join(f"/etc/pam.d/common-password:{ln}\n" for ln in password.splitlines() if ln and not ln.startswith("#"))
    params = yaml.safe_load(PARAMS.read_text())
    sshd = {ln.split()[0].lower(): ln.split(None, 1)[1] for ln in render("dengbao_ssh", "sshd-dengbao.conf.j2", platform).splitlines()
            if ln and not ln.startswith("#")}
    return {
        "pam": pam,
        "faillock": files["/etc/security/faillock.conf"],
        "pwquality": files["/etc/security/pwquality.conf"],
        "sshd": "".join(f"{k} {v}\n" for k, v in sshd.items()),
        "shell_env": "".join(f"/etc/profile.d/dengbao.sh:{ln}\n" for ln in files["/etc/profile.d/dengbao.sh"].splitlines()),
        "audit_rules": render("dengbao_audit", "dengbao.rules.j2", platform),
        "nft": render("dengbao_firewall", "nftables.conf.j2", platform, netops_role="monitor", netops_service_ports=[5432],
                      dengbao_peer_admit=LOG_ADMIT),
        "sudo": _as_sudo_l(render("dengbao_accounts", "sudoers.j2", platform)),
        "admins": "sysadmin:x:1\ngroups sysadmin sysadmin\nsecadmin:x:2\ngroups secadmin secadmin\nauditadmin:x:3\n"
                  f"groups auditadmin auditadmin {' '.join(params['dengbao_log_groups'])}\n",
    }


def _as_sudo_l(sudoers: str) -> str:
    """What `sudo -l -U` lists for the users of a sudoers file without aliases (the role's, by design)."""
    out = ""
    for line in sudoers.splitlines():
        if line and not line.startswith(("#", "Defaults")):
            user, rest = line.split(None, 1)
            out += f"== {user}\nUser {user} may run the following commands on h:\n    {rest.split('=', 1)[1]}\n"
    return out


def test_rendered_templates_pass_the_audit_checks():
    params = yaml.safe_load(PARAMS.read_text())
    facts = _facts_from_rendered("debian")
    for check in ("login-lockout", "pw-history", "pw-quality", "ssh-root-login", "ssh-strong-crypto", "ssh-session", "audit-rules"):
        subs, _ = hostchecks.CHECKS[check](facts, params)
        assert hostchecks.verdict(subs) == "符合", (check, subs)
    # every role can do its job and nothing else; only the deploy role's automation account stays broad
    subs, _ = hostchecks.CHECKS["separation-of-duties"](facts, params)
    assert [s for s in subs if not s["ok"]] == [], subs
    assert hostchecks.CHECKS["audit-protection"](facts, params)[0][1]["ok"]  # the auditor: no sudo at all
    operator = next(t for t in tasks("dengbao_deploy") if "sudo" in t["name"])["ansible.builtin.copy"]["content"]
    facts["sudo"] += _as_sudo_l(jinja2.Template(operator).render(**params))
    subs, _ = hostchecks.CHECKS["separation-of-duties"](facts, params)
    assert [s["label"] for s in subs if not s["ok"]] == ["automation account netops bounded 自动化账户权限受限"]
    subs, _ = hostchecks.CHECKS["idle-timeout"](facts, params)
    assert all(s["ok"] for s in subs), subs
    # nft rules as the kernel lists them back (same text the template writes); a log host's log ports from its senders
    subs, _ = hostchecks.CHECKS["mgmt-access"]({"nft": facts["nft"]}, {**params, "dengbao_peer_admit": LOG_ADMIT})
    assert all(s["ok"] for s in subs) and len(subs) == 1 + len(params["dengbao_mgmt_ports"]) + len(LOG_ADMIT), subs
    wide = [ln for ln in facts["nft"].splitlines() if params["dengbao_mgmt_network"] in ln]
    assert wide and not any("514" in ln for ln in wide)  # the log ports are not open to the whole management network


def test_a_site_override_moves_remediation_and_audit_together():
    params = {**yaml.safe_load(PARAMS.read_text()), "dengbao_lock_deny": 3, "dengbao_idle_timeout": 300}
    sshd = render("dengbao_ssh", "sshd-dengbao.conf.j2", dengbao_idle_timeout=300)
    assert "ClientAliveInterval 150" in sshd
    facts = {"sshd": "clientaliveinterval 150\nclientalivecountmax 2\n",
             "shell_env": "x:TMOUT=300\nx:readonly TMOUT\n"}
    subs, _ = hostchecks.CHECKS["idle-timeout"](facts, params)
    assert all(s["ok"] for s in subs)
    facts["shell_env"] = "x:TMOUT=600\nx:readonly TMOUT\n"  # a host still on the old default now fails
    subs, _ = hostchecks.CHECKS["idle-timeout"](facts, params)
    assert not all(s["ok"] for s in subs)


SYSTEM_RULES = ["core_dumps", "su_restricted", "suid_binaries", "system_accounts", "shm_noexec", "cron_permissions", "ssh_client"]


def _system_script(rules: list[str], check_mode: bool = False) -> str:
    return _script("dengbao_system", rules, check_mode)


@pytest.mark.parametrize("role, group, rules", [("dengbao_system", "system", SYSTEM_RULES), ("dengbao_auth", "auth", AUTH_RULES),
                                                ("dengbao_accounts", "accounts", ["separation_of_duties"]),
                                                ("dengbao_audit", "audit", ["audit_rules", "audit_daemon", "audit_protection"])])
def test_a_scripted_role_is_one_remote_action_for_all_its_controls(role, group, rules):
    """Speed (issue 12 §5): a role's controls cost one task per host; a change is what the script reports; each
    control keeps its tag and its dengbao_rule_<id> (dengbao_selected picks the script's sections)."""
    (task,) = tasks(role)
    assert task["ansible.builtin.shell"]["executable"] == "/bin/bash" and task["check_mode"] is False
    assert task["changed_when"] == f"'DENGBAO-CHANGED' in {role}.stdout"
    assert set(task["tags"]) == {f"rule_{r}" for r in rules} | {group}
    assert task["vars"][f"_{role}_ids"] == rules
    assert f"'{group}', ansible_run_tags, ansible_skip_tags" in task["vars"][f"_{role}_rules"]
    assert task["when"] == f"_{role}_rules | length > 0"


def test_system_role_runs_after_services():
    roles = [r["role"] for r in yaml.safe_load((PLAYBOOKS / "harden.yml").read_text())[0]["roles"]]
    assert roles.index("dengbao_system") == roles.index("dengbao_services") + 1


def test_a_control_runs_when_enabled_and_selected_by_its_tag_or_its_roles():
    import importlib.util

    spec = importlib.util.spec_from_file_location("dengbao_rules", PLAYBOOKS / "filter_plugins/dengbao_rules.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    pick = mod.dengbao_selected
    ids = ["pw_quality", "umask"]
    assert pick(ids, [True, True], "auth", ["all"], []) == ids
    assert pick(ids, [True, "false"], "auth", ["all"], []) == ["pw_quality"]  # dengbao_rule_umask: "false" (a string) off too
    assert pick(ids, [True, True], "auth", ["rule_umask"], []) == ["umask"]
    assert pick(ids, [True, True], "auth", ["auth"], ["rule_pw_quality"]) == ["umask"]
    assert pick(ids, [True, True], "auth", ["ssh"], []) == [] and pick(ids, [True, True], "auth", ["all"], ["auth"]) == []


def test_system_script_holds_only_the_selected_controls_and_is_valid_bash():
    marks = {r: f"# --- {r.replace('_', '-')} (" for r in SYSTEM_RULES}
    for rules in (SYSTEM_RULES, ["ssh_client"], []):
        script = _system_script(rules)
        assert {r for r, m in marks.items() if m in script} == set(rules)
        r = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True, check=False)
        assert r.returncode == 0, r.stderr
    assert "DRY=1" in _system_script(SYSTEM_RULES, check_mode=True) and "DRY=0" in _system_script(SYSTEM_RULES)


def test_auth_script_holds_only_the_selected_controls_and_is_valid_bash():
    pam = {"/etc/pam.d/common-auth", "/etc/pam.d/common-account", "/etc/pam.d/common-password"}
    files = {"pw_quality": {"/etc/security/pwquality.conf"}, "login_lockout": {"/etc/security/faillock.conf"} | pam,
             "pw_history": pam, "pw_aging": set(), "umask": {"/etc/profile.d/dengbao.sh"}, "idle_timeout": {"/etc/profile.d/dengbao.sh"},
             "file_permissions": set()}
    marks = {"pw_aging": ["PASS_MAX_DAYS\t90", "chage -M 90 -m 1 -W 7"], "umask": ["UMASK\t\t027"],
             "file_permissions": ["HOME_MODE\t0750", "/etc/sudoers.d:750", "find /home"]}
    for rule in AUTH_RULES:
        script = _script("dengbao_auth", [rule])
        assert set(_heredocs(script)) == files[rule], rule
        assert {m for ms in marks.values() for m in ms if m in script} == set(marks.get(rule, [])), rule
    for rules in (AUTH_RULES, [], ["idle_timeout"]):
        r = subprocess.run(["bash", "-n"], input=_script("dengbao_auth", rules), capture_output=True, text=True, check=False)
        assert r.returncode == 0, r.stderr
    assert "DRY=1" in _script("dengbao_auth", AUTH_RULES, check_mode=True)
    # the PAM stacks are the role's templates, as the audit's checks above read them
    files = _heredocs(_script("dengbao_auth", AUTH_RULES))
    assert files["/etc/pam.d/common-auth"] == render("dengbao_auth", "common-auth.j2")


def test_the_login_shell_file_keeps_both_controls_when_a_tag_selects_one():
    """--tags rule_idle_timeout rewrites /etc/profile.d/dengbao.sh: the umask stays in it (its rule is on);
    only dengbao_rule_umask: false takes it out."""
    profile = "/etc/profile.d/dengbao.sh"
    assert "umask 027" in _heredocs(_script("dengbao_auth", ["idle_timeout"]))[profile]
    off = _heredocs(_script("dengbao_auth", ["idle_timeout"], dengbao_rule_umask=False))[profile]
    assert "umask" not in off and "readonly TMOUT" in off


def _accounts_script(**extra) -> str:
    keys = {"sysadmin": "/keys/sysadmin"}  # the inventory's credential profile of that name: its .pub read on the controller
    return _script("dengbao_accounts", ["separation_of_duties"], netops_admin_key_files=keys, netops_services=["postgresql"],
                   lookup=lambda plugin, path: {"/keys/sysadmin.pub": "ssh-ed25519 AAAAsys sys@lab\n"}[path], **extra)


def test_accounts_script_puts_the_wrappers_keys_and_a_validated_sudoers():
    script = _accounts_script(dengbao_admin_keys={"secadmin": ["ssh-ed25519 AAAAsec 张三"]})
    r = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    files = _heredocs(script)
    # the sudoers drop-in only after visudo accepted it; the rendered policy is what the audit's checks above read
    assert "VALIDATE='visudo -cf' put /etc/sudoers.d/dengbao 440 <<'CONF'" in script
    assert files["/etc/sudoers.d/dengbao"] == render("dengbao_accounts", "sudoers.j2")
    assert 'UNITS="snmpd cron postgresql"' in files["/usr/local/sbin/dengbao-service"]
    assert "put /usr/local/sbin/dengbao-service 755 <<" in script and "put /usr/local/sbin/dengbao-account 755 <<" in script
    assert files["/home/sysadmin/.ssh/authorized_keys"] == "ssh-ed25519 AAAAsys sys@lab\n"
    assert files["/home/secadmin/.ssh/authorized_keys"] == "ssh-ed25519 AAAAsec 张三\n"
    assert "/home/auditadmin/.ssh" not in script  # no key for it: no .ssh made
    assert "put /home/sysadmin/.ssh/authorized_keys 600 sysadmin root <<" in script
    for name, groups in (("sysadmin", "''"), ("secadmin", "''"), ("auditadmin", "adm")):
        assert re.search(rf"^admin {name} '[^']+' {groups}$", script, flags=re.M), name
    assert "DRY=1" in _accounts_script(check_mode=True)
    assert "# ---" not in _script("dengbao_accounts", [])


def test_audit_script_loads_changed_rules_and_keeps_the_records_for_the_auditors_group():
    script = _script("dengbao_audit", ["audit_rules", "audit_daemon", "audit_protection"])
    r = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    rules = _heredocs(script)["/etc/audit/rules.d/dengbao.rules"]
    assert rules.splitlines() == [ln for ln in render("dengbao_audit", "dengbao.rules.j2").splitlines() if ln]
    assert rules.endswith("-e 2\n")  # immutable last
    assert "put /etc/audit/rules.d/dengbao.rules 640 <<" in script and "-g adm -m 750 /var/log/audit" in script
    # the handlers' work, after the files: only what changed, never in check mode
    assert script.index("RULES=$PUT") < script.index("[ \"$RULES\" = 0 ] || augenrules --load")
    assert script.index("CONF=$PUT") < script.index("[ \"$CONF\" = 0 ] || auditctl --signal hup")
    only_daemon = _script("dengbao_audit", ["audit_daemon"])
    assert "dengbao.rules" not in only_daemon and "log_group" not in only_daemon and "systemctl enable --quiet auditd" in only_daemon
    assert "DRY=1" in _script("dengbao_audit", ["audit_rules"], check_mode=True)


def test_rendered_ssh_client_config_and_sshd_share_the_algorithms_and_pass_the_audit():
    params = yaml.safe_load(PARAMS.read_text())
    script = _system_script(["ssh_client"])
    conf = script[script.index("Host *"):script.index("CONF", script.index("Host *"))]
    # what `ssh -G` prints for it: lower-case keys, the drop-in's values (ssh_config.d is read first: its values win)
    facts = {"ssh_client": "".join(f"{ln.split()[0].lower()} {ln.split()[1]}\n" for ln in conf.splitlines()[1:] if ln.strip())}
    subs, _ = hostchecks.CHECKS["ssh-client"](facts, params)
    assert hostchecks.verdict(subs) == "符合", subs
    sshd = render("dengbao_ssh", "sshd-dengbao.conf.j2")
    for key, param in (("Ciphers", "dengbao_ssh_ciphers"), ("MACs", "dengbao_ssh_macs"), ("KexAlgorithms", "dengbao_ssh_kex")):
        assert f"{key} {','.join(params[param])}\n" in sshd and f"    {key} {','.join(params[param])}\n" in conf


def test_a_hardened_monitor_host_admits_every_port_its_monitoring_serves():
    """The monitor role's firewall ports are the ports the monitoring stack listens on: a hardened monitor
    host dropped the devices' SNMP traps (UDP 162) and the trap receiver's and the service's metrics."""
    from jinbao_netops import serve
    from jinbao_netops.monitoring import generate as gen

    ports = yaml.safe_load((REPO / "security/params.yml").read_text())["dengbao_role_ports"]["monitor"]
    assert {gen.PROMETHEUS_PORT, gen.ALERTMANAGER_PORT, gen.COLLECTOR_PORT, gen.TRAP_METRICS_PORT, serve.PORT} <= set(ports["tcp"])
    assert gen.TRAP_PORT in ports["udp"]
