"""`netops harden devices` on the test doubles: a VRP, a Comware, an IOS and an FRR router start
non-compliant (telnet, communities, long idle timeouts, no ACL, no banner, a vty password), are hardened
through the provisioning engine until the audit's own device rules say 符合 for every automatable control
their configuration carries, and a second run changes nothing. A line the device refuses, or a render that
fails verification, is rolled back with the vendor's native safety; --check writes nothing; no secret (the
SNMPv3 keys given by reference, the community, the vty password) reaches a record or the output."""
from __future__ import annotations

import json
import re
import shutil
import sys

import pytest
from conftest import REPO

from jinbao_netops import inventory
from jinbao_netops.cli import main
from jinbao_netops.output import Out
from jinbao_netops.security import devicerules
from jinbao_netops.security.audit import audit_network
from jinbao_netops.security.catalogue import PASS, host_params, load_catalogue
from jinbao_netops.topology.provision import engine as en
from jinbao_netops.topology.provision import harden as hd

sys.path.insert(0, str(REPO / "tests/fixtures/provision"))
from fakedevice import FakeDevice

VENDORS = REPO / "tests/fixtures/provision/vendors"
STYLE = {"huawei_vrp": "vrp", "hp_comware": "comware", "cisco_ios": "ios", "frr": "frr"}
AUTH, PRIV, COMMUNITY, VTY_PASSWORD = "authkey-Fake-1", "privkey-Fake-1", "S3cretComm", "Zebra-S3cret"
SECRETS = (AUTH, PRIV, COMMUNITY, VTY_PASSWORD)
ARM = {"vrp": re.compile(r"commit trial \d+"), "comware": re.compile(r"configuration commit delay \d+"),
       "ios": re.compile(r"configure terminal revert timer \d+")}
SAVE = {"vrp": "save", "comware": "save force", "ios": "write memory", "frr": "write memory"}
REVERT = {"vrp": "abort trial", "ios": "configure revert now"}  # Comware and FRR: the reverse lines
MONITOR = """
  gd-mon1:
    site: gd
    role: monitor
    platform: debian
    management: 127.0.0.20
    credentials: ops
"""
# what the routers run before hardening: every automatable control broken somewhere
START = {
    "vrp": ["telnet server enable", "http server enable", f"snmp-agent community read cipher {COMMUNITY}",
            "snmp-agent sys-info version all", "user-interface vty 0 4", " authentication-mode password",
            " protocol inbound all", " idle-timeout 30 0"],
    "comware": ["telnet server enable", "ip http enable", f"snmp-agent community read {COMMUNITY}", "line vty 0 63",
                " authentication-mode none", " protocol inbound telnet", " idle-timeout 30 0"],
    "ios": ["ip http server", "service tcp-small-servers", f"snmp-server community {COMMUNITY} RO", "line con 0",
            " exec-timeout 0 0", "line vty 0 4", " transport input telnet ssh", " exec-timeout 30 0"],
    "frr": [f"password {VTY_PASSWORD}", "log file /var/log/frr/frr.log", "line vty", " exec-timeout 30 0"],
}


def start_config(dev) -> str:
    name = "sysname" if STYLE[dev.platform] in ("vrp", "comware") else "hostname"
    return "\n".join([f"{name} {dev.id}", *START[STYLE[dev.platform]]]) + "\n"


@pytest.fixture
def net(tmp_path, monkeypatch):
    """The vendor fixture with a monitor at the province (its log host and NTP server); every router a
    test double on its management address, all on one SSH port."""
    root = tmp_path / "vend"
    shutil.copytree(VENDORS, root)
    inv_file = root / "inventory.yml"
    text = inv_file.read_text()
    inv_file.write_text(text.replace("\nlinks:\n", MONITOR + "\nlinks:\n"))
    monkeypatch.setenv("NETOPS_TEST_PASSWORD", "pw")
    monkeypatch.setenv("NETOPS_SNMP_AUTH_KEY", AUTH)
    monkeypatch.setenv("NETOPS_SNMP_PRIV_KEY", PRIV)
    kh = tmp_path / "known_hosts"
    kh.write_text("")
    monkeypatch.setenv("ANSIBLE_SSH_COMMON_ARGS", f"-o UserKnownHostsFile={kh}")
    inv = inventory.load(root)
    fakes, port = {}, 0
    try:
        for dev in inv.devices.values():
            if dev.platform in STYLE:
                fakes[dev.id] = f = FakeDevice(dev.id, STYLE[dev.platform], start_config(dev), str(dev.loopback),
                                               address=str(dev.management), port=port)
                port = f.port
                with open(kh, "a") as fh:
                    fh.write(f.known_hosts_line())
        yield {"dir": root, "inv": inv, "fakes": fakes, "opts": lambda **kw: en.Options(port=port, **kw)}
    finally:
        for f in fakes.values():
            f.close()


GD = ["gd-r1", "sz-r1", "xa-r1", "xb-r1", "xc-r1"]  # FRR, VRP, Comware, IOS, FRR: the province and below


def verdicts(inv, device: str, config: str) -> dict[str, str]:
    """The audit's verdict per automatable control the device's configuration carries."""
    plat = inv.devices[device].platform
    rows = audit_network(load_catalogue(), plat, host_params(inv, device), config, "show", "t")
    return {r["id"]: r["verdict"] for r in rows
            if r["automatable"] and devicerules.on_config(plat, r["id"])}


def test_every_vendor_hardened_to_compliance_and_a_second_run_changes_nothing(net):
    fakes, inv = net["fakes"], net["inv"]
    for d in GD:
        assert set(verdicts(inv, d, fakes[d].running()).values()) != {PASS}, d  # non-compliant to begin with
    res = hd.harden(net["dir"], "gd", net["opts"]())
    assert sorted(res["devices"]) == GD
    for d in GD:
        r, f = res["devices"][d], fakes[d]
        assert r["result"] == "applied" and r["ok"], json.dumps(r, ensure_ascii=False, indent=1)
        v = verdicts(inv, d, f.running())
        assert v and set(v.values()) == {PASS}, v
        assert f.saved == f.running() and SAVE[f.style] in f.received
        if f.style in ARM:  # armed with the vendor's commit-confirm before it was verified
            assert any(ARM[f.style].fullmatch(x) for x in f.received), f.received
    # old values replaced, forbidden lines gone, log and time to the province's monitor, ACL from the management network
    vrp = fakes["sz-r1"].running().splitlines()
    assert " idle-timeout 10 0" in vrp and " idle-timeout 30 0" not in vrp and "telnet server enable" not in vrp, vrp
    assert "info-center loghost 127.0.0.20" in fakes["sz-r1"].running()
    assert "rule 5 permit source 127.0.0.0 0.255.255.255" in fakes["xa-r1"].running()
    assert "ntp server 127.0.0.20" in fakes["xb-r1"].running() and " exec-timeout 0 0" not in fakes["xb-r1"].running()
    assert "access-list netops-mgmt seq 5 permit 127.0.0.0/8" in fakes["xc-r1"].running()
    [rec] = [r for r in en.history(net["dir"] / "changes", hd.LOG) if r["device"] == "sz-r1"]
    assert rec["result"] == "applied" and rec["backup"] and all(c["ok"] for c in rec["verification"])
    # the second run: nothing armed, nothing pushed, nothing saved
    for f in fakes.values():
        f.received.clear()
    again = hd.harden(net["dir"], "gd", net["opts"]())
    assert {d: r["result"] for d, r in again["devices"].items()} == dict.fromkeys(GD, "no_change"), \
        {d: r["diff"] for d, r in again["devices"].items()}
    assert all(r["ok"] for r in again["devices"].values())
    for d in GD:
        f = fakes[d]
        assert not any(ARM.get(f.style, re.compile("$^")).fullmatch(x) or x == SAVE[f.style] for x in f.received), f.received


def _broken_templates(tmp_path):
    """The fault: the idle timeout is never rendered (the device keeps its 30 minutes): verification fails."""
    broken = tmp_path / "templates"
    shutil.copytree(REPO / "topology/provision/templates", broken)
    for tpl in broken.glob("*/baseline.j2"):
        tpl.write_text("".join(ln for ln in tpl.read_text().splitlines(True) if "-timeout" not in ln))
    return broken


def test_a_render_that_fails_verification_rolls_back_natively(net, tmp_path):
    fakes = net["fakes"]
    before = {d: (fakes[d].running(), fakes[d].saved) for d in GD}
    res = hd.harden(net["dir"], "gd", net["opts"](templates=_broken_templates(tmp_path)))
    for d in GD:
        r, f = res["devices"][d], fakes[d]
        assert r["result"] == "rolled_back" and not r["ok"]
        assert [c["ok"] for c in r["verification"] if c["check"].startswith("net-idle-timeout")] == [False]
        assert [rb["identical"] for rb in r["rollback"]] == [True]
        assert (f.running(), f.saved) == before[d] and SAVE[f.style] not in f.received
        if f.style in REVERT:  # the vendor's own revert of the armed change
            assert r["rollback"][0]["commands"] == [REVERT[f.style]]
    assert {r["device"]: r["result"] for r in en.history(net["dir"] / "changes", hd.LOG)} == dict.fromkeys(GD, "rolled_back")


@pytest.mark.parametrize("device, line", [("sz-r1", "header login"), ("xa-r1", "header login"),
                                          ("xb-r1", "banner login"), ("xc-r1", "access-list netops-mgmt")])
def test_a_line_the_device_refuses_rolls_back_and_the_run_goes_on(net, device, line):
    fakes = net["fakes"]
    before = (fakes[device].running(), fakes[device].saved)
    fakes[device].refuse = (line,)
    res = hd.harden(net["dir"], "gd", net["opts"]())
    r = res["devices"][device]
    assert r["result"] == "rolled_back" and [c["check"] for c in r["verification"]] == ["push 下发"]
    assert r["rollback"][0]["identical"] and (fakes[device].running(), fakes[device].saved) == before
    assert all(res["devices"][d]["result"] == "applied" for d in GD if d != device)


def test_check_shows_the_diff_and_writes_nothing(net):
    def snapshot():
        return {p.relative_to(net["dir"]): p.read_bytes() for p in sorted(net["dir"].rglob("*")) if p.is_file()}

    fakes, files = net["fakes"], snapshot()
    before = {d: fakes[d].running() for d in GD}
    res = hd.harden(net["dir"], "gd", net["opts"](check=True))
    for d in GD:
        r = res["devices"][d]
        assert r["result"] == "check" and r["diff"] and r["backup"] is None
        assert not all(c["ok"] for c in r["verification"])  # the controls that fail now
        assert fakes[d].running() == before[d]
        assert not [x for x in fakes[d].received if ARM.get(fakes[d].style, re.compile("$^")).fullmatch(x)]
    assert "- telnet server enable" in res["devices"]["sz-r1"]["diff"]
    assert snapshot() == files and not (net["dir"] / "changes").exists()


def test_secrets_never_reach_records_or_output(net, capsys):
    res = hd.harden(net["dir"], "gd", net["opts"]())
    assert all(r["result"] == "applied" for r in res["devices"].values())
    assert f"snmp-agent usm-user v3 netops authentication-mode sha cipher {AUTH}" in net["fakes"]["sz-r1"].running()
    # the removals name the community and the vty password too: redacted with the rest
    assert any("undo snmp-agent community read cipher <redacted>" in c for c in res["devices"]["sz-r1"]["commands"])
    assert any("no password <redacted>" in c for c in res["devices"]["xc-r1"]["commands"])
    hd._report(Out(json_mode=False), res)
    hd._report(Out(json_mode=True), res)
    shown = capsys.readouterr().out + json.dumps(res, ensure_ascii=False)
    shown += (net["dir"] / "changes" / hd.LOG).read_text()
    assert shown and not [s for s in SECRETS if s in shown]


def test_bad_input_names_the_device_and_field_before_touching_anything(net, capsys):
    """The ministry's router has no log host (no monitor at the ministry): exit 2, every problem at once."""
    rc = main(["harden", "devices", "--json", "-i", str(net["dir"])])
    env = json.loads(capsys.readouterr().out)
    assert rc == 2 == env["code"]
    assert any("device 'bu-r1': field 'dengbao_log_host'" in p for p in env["problems"])
    assert any("device 'bu-r1': field 'dengbao_ntp_server'" in p for p in env["problems"])
    assert not any(net["fakes"][d].received for d in net["fakes"])


def test_a_platform_without_a_baseline_is_reported_and_the_others_go_on(net):
    """cisco_asa has no device baseline yet: its device says so (exit 3 at the CLI), the others are hardened."""
    inv_file = net["dir"] / "inventory.yml"
    inv_file.write_text(inv_file.read_text().replace("platform: cisco_ios", "platform: cisco_asa"))
    res = hd.harden(net["dir"], "xb", net["opts"]())
    assert res["devices"]["xb-r1"]["result"] == "error" and "no device baseline for platform 'cisco_asa'" in \
        res["devices"]["xb-r1"]["error"]
    assert not net["fakes"]["xb-r1"].received  # never connected
    res = hd.harden(net["dir"], "sz", net["opts"]())
    assert {d: r["result"] for d, r in res["devices"].items()} == \
        {"sz-r1": "applied", "xa-r1": "applied", "xb-r1": "error", "xc-r1": "applied"}


@pytest.mark.parametrize("device", ["sz-r1", "xa-r1", "xb-r1"])  # FRR's banner is its host's sshd's
def test_a_hostile_banner_stays_one_banner_line(net, device):
    """The banner is free text: a line break, a quote or the banner's own delimiter cannot end it and add a line."""
    from jinbao_netops.access import Access
    from jinbao_netops.topology.provision import render as rd

    inv = net["inv"]
    dev = inv.devices[device]
    params = {**host_params(inv, device), "dengbao_login_banner": '授权 "x"^C%\nusername evil privilege 15 secret x\n%^C'}
    text = rd.render(rd.TEMPLATES, dev, hd.TEMPLATE, hd.context(inv, dev, params, "", Access(inv)))
    top = [n.line for n in rd.parse(text).children]
    banners = [ln for ln in top if ln.startswith(("banner ", "header "))]
    assert len(banners) == 1 and "username evil" in banners[0] and not any(ln.startswith("username") for ln in top)
    body = banners[0].split(None, 2)[2]
    for delim in ('"', "^C", "%"):
        if body.startswith(delim) or body.startswith("information " + delim):
            inner = body.split(delim, 1)[1].rsplit(delim, 1)[0]
            assert delim not in inner, banners[0]


def test_a_device_without_ssh_access_fails_alone_with_the_reason(net, capsys):
    """xb-r1 declared v2c-only (access: [snmp]): its result is an error naming the declared access, not a
    credential error; it is never connected to; the others in scope are hardened; exit 3 at the CLI."""
    import yaml
    from conftest import snmp_only_yaml

    inv_file = net["dir"] / "inventory.yml"
    inv_file.write_text(yaml.safe_dump(snmp_only_yaml(yaml.safe_load(inv_file.read_text()), "xb-r1"), allow_unicode=True))
    res = hd.harden(net["dir"], "sz", net["opts"]())
    r = res["devices"]["xb-r1"]
    assert (r["result"], r["ok"], r["error"]) == ("error", False, "no SSH access declared (access: [snmp]) 未声明SSH访问方式")
    assert not net["fakes"]["xb-r1"].received
    assert {d: x["result"] for d, x in res["devices"].items() if d != "xb-r1"} == dict.fromkeys(["sz-r1", "xa-r1", "xc-r1"], "applied")
    hd._report(Out(json_mode=False), res)
    assert "失败 failed: no SSH access declared (access: [snmp])" in capsys.readouterr().out
